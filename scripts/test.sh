#!/usr/bin/env bash
# The test suite. By default the quick part: unit, property, integration
# and cross-process tests, the benchmarks in smoke mode, doctests, the
# examples and the loom models. With --full, also the long part:
# ThreadSanitizer, the loom mutants, the fault campaign in CI mode
# (random SIGKILLs, corruption, hostile typed messages) and its corruption
# part under AddressSanitizer. Run from anywhere.
#
#   scripts/test.sh          the quick part
#   scripts/test.sh --full   everything (what .ci/run runs)
set -euo pipefail
cd "$(dirname "$0")/.."

full=false
case "${1:-}" in
  "") ;;
  --full) full=true ;;
  *) echo "usage: scripts/test.sh [--full]" >&2; exit 2 ;;
esac

# Root-only tests cannot run unprivileged, and the test harness hides what
# a passing test prints: say here, before the run, which will be skipped.
# (With CI=true they fail instead of skipping: see tests/src/privileged.rs.)
if [ "$(id -u)" != 0 ]; then
  echo "== NOT ROOT: these privileged tests will be SKIPPED (they pass without running):"
  # Each calls privileged::runs with "TEST_NAME: needs root to ...".
  grep -rhoE '"[a-z_]+: needs root[^"]*"' tests/tests | tr -d '"' | sed 's/^/   - /'
fi

echo "== unit, property, integration, cross-process tests; benches in smoke mode"
cargo test --workspace --all-targets

echo "== doctests"
cargo test --workspace --doc

echo "== examples (each must run and exit 0)"
# The test profile reuses the dependencies the tests above were built with.
for example in ipc-examples/examples/*.rs; do
  name=$(basename "$example" .rs)
  echo "-- $name"
  cargo run --quiet --profile test -p ipc-examples --example "$name"
done

echo "== a crate running its own loom tests (--cfg loom) still builds and tests ipc-core"
# Only `-p ipc-core`, so tokio gets just ipc-core's features: under --cfg loom
# tokio needs its `sync` feature for `time` (the dev-dependency enables it).
RUSTFLAGS="--cfg loom" cargo test -q -p ipc-core --all-features --target-dir target/downstream-loom

echo "== loom models"
# -D warnings: code compiled only for loom gets no clippy run elsewhere.
RUSTFLAGS="--cfg ipc_core_loom -D warnings" LOOM_MAX_PREEMPTIONS=2 \
  cargo test -p ipc-core --release --lib --target-dir target/loom

if [ "$full" != true ]; then
  echo "== quick part done (scripts/test.sh --full adds TSan, loom mutants, the fault campaign, ASan)"
  exit 0
fi

echo "== ThreadSanitizer: the untrusted copy is no data race; threaded stress of every ring"
scripts/tsan.sh

echo "== loom models catch every weakened ordering"
scripts/loom-mutants.sh

# Both campaign runs go to the end; either failing fails the script.
campaign=0
echo "== the fault campaign, CI mode (kills, corruption, hostile typed messages)"
# The test profile's build of the tests crate (built above).
cargo run --quiet --profile test -p ipc-tests --bin campaign || campaign=1

echo "== the corruption campaign under AddressSanitizer"
scripts/asan.sh || campaign=1
exit "$campaign"
