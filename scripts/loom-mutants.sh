#!/usr/bin/env bash
# Proves the loom models have teeth: weakens each ring ordering in turn, in a
# scratch copy of ipc-core, and checks that the models then fail. Exits
# non-zero if any weakened ordering goes unnoticed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp -r "$root/ipc-core" "$scratch/ipc-core"
cp "$root/Cargo.lock" "$scratch/"
# A one-member workspace with the root's settings.
sed -e 's/^members = .*/members = ["ipc-core"]/' -e 's/^default-members = .*//' \
    "$root/Cargo.toml" > "$scratch/Cargo.toml"
file="$scratch/ipc-core/src/spsc/mod.rs"
pristine=$(cat "$file")

# label | text | weakened text  (each text occurs exactly once)
mutants=(
  "commit of a record (Release)|.store(commit.1, Ordering::Release)|.store(commit.1, Ordering::Relaxed)"
  "publication of a batch (Release)|.store(header, Ordering::Release)|.store(header, Ordering::Relaxed)"
  "consumer's load of a header (Acquire)|let mut word = unsafe { ring.buf.word(offset) }.load(Ordering::Acquire)|let mut word = unsafe { ring.buf.word(offset) }.load(Ordering::Relaxed)"
  "release of head (Release)|.store(position, Ordering::Release)|.store(position, Ordering::Relaxed)"
  "producer's load of head (Acquire)|let head = self.ring.control().head.0.load(Ordering::Acquire)|let head = self.ring.control().head.0.load(Ordering::Relaxed)"
  "claim, its acquiring half (AcqRel)|token.0, Ordering::AcqRel, Ordering::Acquire)|token.0, Ordering::Release, Ordering::Acquire)"
  "claim, its releasing half (AcqRel)|token.0, Ordering::AcqRel, Ordering::Acquire)|token.0, Ordering::Acquire, Ordering::Acquire)"
  "failed claim's load (Acquire)|token.0, Ordering::AcqRel, Ordering::Acquire)|token.0, Ordering::AcqRel, Ordering::Relaxed)"
  "claim release (Release)|(token.0, 0, Ordering::Release, Ordering::Relaxed)|(token.0, 0, Ordering::Relaxed, Ordering::Relaxed)"
  "zeroing of the next header (store removed)|unsafe { ring.buf.word(ring.offset(end)) }.store(0, Ordering::Relaxed);|let _ = end;"
)
survivors=0
for mutant in "${mutants[@]}"; do
  IFS='|' read -r label from to <<< "$mutant"
  printf '%s' "$pristine" > "$file"
  count=$(grep -cF -- "$from" "$file" || true)
  if [ "$count" != 1 ]; then
    echo "loom-mutants: pattern for '$label' found $count times; update this script" >&2
    exit 2
  fi
  FROM="$from" TO="$to" perl -0pi -e 's/\Q$ENV{FROM}\E/$ENV{TO}/' "$file"
  if (cd "$scratch" && RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 \
      cargo test -q -p ipc-core --release --lib --target-dir "$root/target/loom-mutants" \
      >"$scratch/out.txt" 2>&1); then
    echo "SURVIVED: weakening the $label went unnoticed by the loom models"
    survivors=$((survivors + 1))
  elif result=$(grep -m1 -o 'test result: FAILED.*failed' "$scratch/out.txt"); then
    echo "caught: weakening the $label: ${result#test result: }"
  else
    echo "loom-mutants: the mutant for '$label' did not build or run:" >&2
    tail -20 "$scratch/out.txt" >&2
    exit 2
  fi
done
exit "$survivors"
