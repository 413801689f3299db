#!/usr/bin/env bash
# The fault campaign's corruption part (random writes over every shared byte
# while try and blocking calls run) under AddressSanitizer: any out-of-bounds
# access, use after free or other sanitizer report fails it, as do panics,
# aborts and hangs. Stable Rust with RUSTC_BOOTSTRAP, as the sanitizer flag
# is unstable. ASan's own SIGBUS handler would take the faults the library's
# guard chains to (handle_sigbus=0); the workers are separate processes
# (detect_leaks=0: leak checking is not what this is for).
#
#   scripts/asan.sh [campaign options]   e.g. --seed 42, --long, --scale 0.2
set -euo pipefail
cd "$(dirname "$0")/.."
target=$(rustc -vV | sed -n 's/^host: //p')
export RUSTC_BOOTSTRAP=1
export RUSTFLAGS="-Zsanitizer=address -Cunsafe-allow-abi-mismatch=sanitizer"
export ASAN_OPTIONS="handle_sigbus=0:detect_leaks=0:abort_on_error=1"
cargo build -q --profile test -p ipc-tests --bin campaign --target "$target" --target-dir target/asan
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
"target/asan/$target/debug/campaign" --only corrupt "$@" 2>&1 | tee "$log" || status=$?
# The campaign counts a worker's sanitizer report as a failure; this is a
# second guard, in case a report comes from the campaign process itself.
if grep -q "ERROR: AddressSanitizer" "$log"; then
  echo "asan.sh: AddressSanitizer reported an error" >&2
  exit 1
fi
exit "$status"
