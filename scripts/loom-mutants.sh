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

# file (under ipc-core/src) | models to run | label | text | weakened text
# Each text occurs exactly once in its file; `\n` in a text is a newline
# (for orderings that only their next line tells apart). Not here, because
# no model can tell: the Release of the futex word's bump in `Signal::wake`
# (under loom the notifier's barrier is a full fence, which already orders
# the publication before the bump; in production that barrier is only a
# compiler fence, so the Release stays).
mutants=(
  "spsc/mod.rs|spsc::|commit of a record (Release)|.store(commit.1, Ordering::Release)|.store(commit.1, Ordering::Relaxed)"
  "spsc/mod.rs|spsc::|publication of a batch (Release)|.store(header, Ordering::Release)|.store(header, Ordering::Relaxed)"
  "spsc/mod.rs|spsc::|consumer's load of a header (Acquire)|let mut word = unsafe { ring.buf.word(offset) }.load(Ordering::Acquire)|let mut word = unsafe { ring.buf.word(offset) }.load(Ordering::Relaxed)"
  "spsc/mod.rs|spsc::|release of head (Release)|.store(position, Ordering::Release)|.store(position, Ordering::Relaxed)"
  "spsc/mod.rs|spsc::|producer's load of head (Acquire)|let head = self.ring.control().head.0.load(Ordering::Acquire)|let head = self.ring.control().head.0.load(Ordering::Relaxed)"
  "spsc/mod.rs|spsc::|claim, its acquiring half (AcqRel)|token.0, Ordering::AcqRel, Ordering::Acquire)|token.0, Ordering::Release, Ordering::Acquire)"
  "spsc/mod.rs|spsc::|claim, its releasing half (AcqRel)|token.0, Ordering::AcqRel, Ordering::Acquire)|token.0, Ordering::Acquire, Ordering::Acquire)"
  "spsc/mod.rs|spsc::|failed claim's load (Acquire)|token.0, Ordering::AcqRel, Ordering::Acquire)|token.0, Ordering::AcqRel, Ordering::Relaxed)"
  "spsc/mod.rs|spsc::|claim release (Release)|(token.0, 0, Ordering::Release, Ordering::Relaxed)|(token.0, 0, Ordering::Relaxed, Ordering::Relaxed)"
  "spsc/mod.rs|spsc::|zeroing of the next header (store removed)|unsafe { ring.buf.word(ring.offset(end)) }.store(0, Ordering::Relaxed);|let _ = end;"
  "mpmc/mod.rs|mpmc::|producer's claim (Acquire)|.compare_exchange(seen, mine, Ordering::Acquire, Ordering::Relaxed)\n                        .is_ok()|.compare_exchange(seen, mine, Ordering::Relaxed, Ordering::Relaxed)\n                        .is_ok()"
  "mpmc/mod.rs|mpmc::|publication of a message (Release)|.compare_exchange(mine, full, Ordering::Release, Ordering::Relaxed)|.compare_exchange(mine, full, Ordering::Relaxed, Ordering::Relaxed)"
  "mpmc/mod.rs|mpmc::|consumer's load of a stamp (Acquire)|length and payload are visible.\n            let seen = word.load(Ordering::Acquire);|length and payload are visible.\n            let seen = word.load(Ordering::Relaxed);"
  "mpmc/mod.rs|mpmc::|consumer's release of a slot (Release)|.compare_exchange(mine, free, Ordering::Release, Ordering::Relaxed)|.compare_exchange(mine, free, Ordering::Relaxed, Ordering::Relaxed)"
  "mpmc/mod.rs|mpmc::|producers' load of tail (Acquire)|let position = tail.load(Ordering::Acquire);|let position = tail.load(Ordering::Relaxed);"
  "mpmc/mod.rs|mpmc::|hint advance (AcqRel)|hint.compare_exchange(from, next, Ordering::AcqRel, Ordering::Relaxed)|hint.compare_exchange(from, next, Ordering::Relaxed, Ordering::Relaxed)"
  "mpmc/mod.rs|mpmc::|consumers' load of head (Acquire)|let position = head.load(Ordering::Acquire);|let position = head.load(Ordering::Relaxed);"
  "mpmc/mod.rs|mpmc::|recovery's repair of a slot (Release)|.compare_exchange(seen, repaired.word(), Ordering::Release, Ordering::Relaxed)|.compare_exchange(seen, repaired.word(), Ordering::Relaxed, Ordering::Relaxed)"
  "participants.rs|a_reap_whose|takeover of a dead reaper's reap (refused)|            REAPING => found,|            REAPING => return None,"
  "wait.rs|parked|notifier's half of the barrier (fence removed)|// SeqCst: what the asymmetric pair amounts to; see the module docs.\n            crate::sync::fence(crate::sync::Ordering::SeqCst);|// (removed)"
  "wait.rs|parked|sleeper's half of the barrier (fence removed)|// SeqCst: see light.\n            crate::sync::fence(crate::sync::Ordering::SeqCst);|// (removed)"
  "wait.rs|parked|sleeper's re-check after counting itself (removed)|if !ready() {|if { let _ = &ready; true } {"
  "wait.rs|parked|sleeper's load of the futex word (Acquire)|let seq = self.seq.load(Ordering::Acquire)|let seq = self.seq.load(Ordering::Relaxed)"
  "wait.rs|parked|sleeper's mark in its slot (removed)|            mark.add();|            let _ = mark;"
  "wait.rs|parked|reaper's uncounting of a dead sleeper (removed)|let taken = marks.swap(0, Ordering::Acquire);|let taken = marks.swap(0, Ordering::Acquire) & 0;"
)
survivors=0
for mutant in "${mutants[@]}"; do
  IFS='|' read -r path filter label from to <<< "$mutant"
  file="$scratch/ipc-core/src/$path"
  cp "$root/ipc-core/src/$path" "$file"
  count=$(FROM="$from" perl -0ne '$f = $ENV{FROM}; $f =~ s/\\n/\n/g; $n = () = /\Q$f\E/g; print $n' "$file")
  if [ "$count" != 1 ]; then
    echo "loom-mutants: pattern for '$label' found $count times in $path; update this script" >&2
    exit 2
  fi
  FROM="$from" TO="$to" perl -0pi -e '$f = $ENV{FROM}; $t = $ENV{TO}; $f =~ s/\\n/\n/g; $t =~ s/\\n/\n/g; s/\Q$f\E/$t/' "$file"
  if (cd "$scratch" && RUSTFLAGS="--cfg ipc_core_loom" LOOM_MAX_PREEMPTIONS=2 \
      cargo test -q -p ipc-core --release --lib --target-dir "$root/target/loom-mutants" \
        -- "$filter" >"$scratch/out.txt" 2>&1); then
    echo "SURVIVED: weakening the $label went unnoticed by the loom models"
    survivors=$((survivors + 1))
  elif result=$(grep -m1 -o 'test result: FAILED.*failed' "$scratch/out.txt"); then
    echo "caught: weakening the $label: ${result#test result: }"
  elif grep -q 'deadlock' "$scratch/out.txt" && ! grep -q 'could not compile' "$scratch/out.txt"; then
    # A lost wake-up: loom reports the deadlock, and the model's
    # destructors panic on the way out, which aborts the test binary.
    echo "caught: weakening the $label: a model deadlocked (a lost wake-up)"
  else
    echo "loom-mutants: the mutant for '$label' did not build or run:" >&2
    tail -20 "$scratch/out.txt" >&2
    exit 2
  fi
  cp "$root/ipc-core/src/$path" "$file"
done
exit "$survivors"
