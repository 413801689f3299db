#!/usr/bin/env bash
# The whole test suite: unit, property, integration and cross-process tests,
# the benchmarks in smoke mode, doctests, the examples, a ThreadSanitizer
# run, then the loom models (and a check that they catch weakened orderings).
# Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."

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

echo "== ThreadSanitizer: the untrusted copy is no data race"
scripts/tsan.sh

echo "== loom models catch every weakened ordering"
scripts/loom-mutants.sh

echo "== a crate running its own loom tests (--cfg loom) still builds and tests ipc-core"
# Only `-p ipc-core`, so tokio gets just ipc-core's features: under --cfg loom
# tokio needs its `sync` feature for `time` (the dev-dependency enables it).
RUSTFLAGS="--cfg loom" cargo test -q -p ipc-core --all-features --target-dir target/downstream-loom

echo "== loom models"
# -D warnings: code compiled only for loom gets no clippy run elsewhere.
RUSTFLAGS="--cfg ipc_core_loom -D warnings" LOOM_MAX_PREEMPTIONS=2 \
  cargo test -p ipc-core --release --lib --target-dir target/loom
