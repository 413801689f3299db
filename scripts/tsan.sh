#!/usr/bin/env bash
# Runs the untrusted-copy check (ipc-core/tests/untrusted_copy.rs) under
# ThreadSanitizer: recv_into racing with a writer of the same memory must
# be no data race. Stable Rust with RUSTC_BOOTSTRAP, as the sanitizer flag
# is unstable; exits non-zero on any report.
set -euo pipefail
cd "$(dirname "$0")/.."
target=$(rustc -vV | sed -n 's/^host: //p')
RUSTC_BOOTSTRAP=1 \
RUSTFLAGS="-Zsanitizer=thread -Cunsafe-allow-abi-mismatch=sanitizer" \
TSAN_OPTIONS="halt_on_error=1" \
  cargo test -q -p ipc-core --test untrusted_copy --target "$target" --target-dir target/tsan
