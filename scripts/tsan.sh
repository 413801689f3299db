#!/usr/bin/env bash
# Runs under ThreadSanitizer the untrusted-copy check
# (ipc-core/tests/untrusted_copy.rs: recv_into racing with a writer of the
# same memory must be no data race) and the threaded stress of every ring
# and the participant table (ipc-core/tests/threaded_stress.rs). Stable
# Rust with RUSTC_BOOTSTRAP, as the sanitizer flag is unstable; exits
# non-zero on any report.
set -euo pipefail
cd "$(dirname "$0")/.."
target=$(rustc -vV | sed -n 's/^host: //p')
RUSTC_BOOTSTRAP=1 \
RUSTFLAGS="-Zsanitizer=thread -Cunsafe-allow-abi-mismatch=sanitizer" \
TSAN_OPTIONS="halt_on_error=1" \
  cargo test -q -p ipc-core --test untrusted_copy --test threaded_stress --target "$target" --target-dir target/tsan
