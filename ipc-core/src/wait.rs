//! Waiting for a peer: without a syscall while it keeps up, without burning
//! a core when it is slow, without missing a wake-up, and without hanging
//! when it dies.
//!
//! # Strategies
//! A blocking call (`send`, `recv` and their `_timeout`/`_deadline` forms)
//! first tries; when the ring is full or empty it waits as its handle's
//! [`WaitStrategy`] says: [`BusyPoll`](WaitStrategy::BusyPoll) spins until
//! the deadline; [`SpinThenPark`](WaitStrategy::SpinThenPark) (the default)
//! spins a bounded number of rounds with [`Backoff`], then sleeps;
//! [`Park`](WaitStrategy::Park) sleeps at once.
//!
//! # Sleeping and waking
//! A ring has two *signals* in its control block, "data" (consumers sleep
//! on it, producers notify it after publishing) and "space" (the reverse).
//! A signal is a futex word and a count of sleepers. A sleeper increments
//! the count, then re-checks its condition, then `FUTEX_WAIT`s on the word;
//! a notifier, after publishing, reads the count and makes the
//! `FUTEX_WAKE` syscall only when it is not 0. So while nobody sleeps,
//! sending and receiving make no syscall.
//!
//! That is a Dekker pair: the notifier writes its message then reads the
//! count; the sleeper writes the count then reads for a message. Without a
//! store-load barrier on both sides, both could read the old value and the
//! wake-up would be lost. A full fence on every publish would cost about
//! as much as the message itself (measured: 120 M vs 780 M stores/s), so
//! the barrier is *asymmetric*: the notifier's half is a compiler fence,
//! free, and the sleeper's half is `membarrier(GLOBAL_EXPEDITED)`, which
//! makes every CPU running a registered process execute a full barrier
//! before it returns (about 0.6 µs here, paid only by a thread about to
//! sleep). Every process that attaches a ring registers. This is the
//! pattern of folly's asymmetric fences and liburcu; the loom models check
//! the protocol with both halves as `fence(SeqCst)`, which is what the pair
//! amounts to. Where `membarrier` is unavailable (old kernels, seccomp), a
//! process that cannot register uses a real fence when it notifies, and a
//! sleeper that cannot issue the barrier sleeps at most a millisecond at a
//! time: slower wake-ups, never a lost one.
//!
//! # A sleeper that dies
//! A sleeper killed in `FUTEX_WAIT` never takes itself off the count, and
//! every later notification would pay a `FUTEX_WAKE`. So a sleeper also
//! counts itself in its participant slot (a `Mark`, after the signal's
//! count and removed before it), and whoever reaps a dead participant takes
//! the marks' total off the signals (`uncount_dead_sleepers`). A death
//! between the two steps leaves the signal counted and unmarked: a leak
//! (wake-ups for nobody), never an uncounted live sleeper (a lost
//! wake-up). The marks are cleared with one atomic swap, so two reapers, or
//! one that dies mid-reap, never take a count off twice. Until the dead one
//! is reaped (by a successor attaching in its role, or a blocked peer's
//! liveness tick), each notification still pays a wake-up.
//!
//! # Liveness
//! A sleeper also wakes every [`LIVENESS_TICK`] to ask whether the peers it
//! waits for are still alive (a lock probe each, see
//! [`crate::participants`]), so a call blocked on a process killed with
//! `SIGKILL` returns `Disconnected` within about that long, with no busy
//! loop. A stopped process is alive.
//!
//! [`Backoff`] is the spinning part, also used on its own by code that waits
//! for something else than a ring (a creator publishing a header).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use ipc_core::wait::Backoff;
//!
//! let ready = Instant::now() + Duration::from_millis(2);
//! let give_up = Instant::now() + Duration::from_secs(5);
//! let mut backoff = Backoff::new();
//! while Instant::now() < ready {
//!     if backoff.snooze() && Instant::now() > give_up {
//!         panic!("waited too long");
//!     }
//! }
//! ```

use std::time::Duration;

use crate::sync::{AtomicU32, AtomicU64, Ordering};

/// A bounded spin, then yields, then naps; see the [module docs](self).
#[derive(Clone, Debug, Default)]
pub struct Backoff {
    step: u32,
}

impl Backoff {
    /// Spins (a pause instruction each) before the first yield.
    pub const SPINS: u32 = 64;
    /// Steps, spins included, before the first nap.
    pub const YIELDS: u32 = 128;
    /// Steps before naps grow from [`Self::SHORT_NAP`] to [`Self::LONG_NAP`]
    /// (about 50 ms of short naps).
    pub const SHORT_NAPS: u32 = 1_128;
    /// A nap early in a wait.
    pub const SHORT_NAP: Duration = Duration::from_micros(50);
    /// A nap once the wait has lasted a while.
    pub const LONG_NAP: Duration = Duration::from_millis(1);

    /// A fresh wait, starting with spins.
    pub const fn new() -> Self {
        Backoff { step: 0 }
    }

    /// Waits a little, longer each call. Returns `true` once past the
    /// spinning phase: from then on each call costs at least a yield, so it
    /// is worth looking at a clock or at the peer's health.
    #[inline]
    pub fn snooze(&mut self) -> bool {
        if self.step < Self::SPINS {
            std::hint::spin_loop();
        } else {
            self.slow();
        }
        self.step = self.step.saturating_add(1);
        self.step > Self::SPINS
    }

    #[cold]
    fn slow(&self) {
        if self.step < Self::YIELDS {
            std::thread::yield_now();
        } else if self.step < Self::SHORT_NAPS {
            std::thread::sleep(Self::SHORT_NAP);
        } else {
            std::thread::sleep(Self::LONG_NAP);
        }
    }

    /// Starts over with spins, after progress.
    #[inline]
    pub fn reset(&mut self) {
        self.step = 0;
    }

    /// Whether the next [`snooze`](Self::snooze) still only spins.
    pub fn is_spinning(&self) -> bool {
        self.step < Self::SPINS
    }
}

/// How a handle waits when its ring is full or empty; see the
/// [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitStrategy {
    /// Spin until the deadline: the lowest latency, a whole core spent
    /// waiting. Still checks the peers' liveness now and then.
    BusyPoll,
    /// Spin `spins` rounds of [`Backoff`] (the first few spin, later ones
    /// yield the CPU), then sleep until woken.
    SpinThenPark {
        /// Rounds of [`Backoff::snooze`] before sleeping.
        spins: u32,
    },
    /// Sleep at once: the least CPU, a syscall on each side per wake-up.
    Park,
}

impl WaitStrategy {
    /// The default spin budget: the spinning rounds of [`Backoff`] and a
    /// few yields, some tens of microseconds.
    pub const DEFAULT_SPINS: u32 = Backoff::SPINS + 32;
}

impl Default for WaitStrategy {
    fn default() -> Self {
        WaitStrategy::SpinThenPark {
            spins: WaitStrategy::DEFAULT_SPINS,
        }
    }
}

/// How often a sleeping call wakes to check that the peers it waits for
/// are alive.
pub const LIVENESS_TICK: Duration = Duration::from_millis(20);

/// A futex word and the count of its sleepers, on a 128-byte line of its
/// own in a ring's control block. All zeroes is a fresh signal.
#[repr(C, align(128))]
pub(crate) struct Signal {
    /// Bumped by every wake-up; the word sleepers `FUTEX_WAIT` on.
    seq: AtomicU32,
    /// Processes and threads sleeping (or about to) on `seq`.
    sleepers: AtomicU32,
    /// Loom's stand-in for the futex: the kernel's wait queue.
    #[cfg(ipc_core_loom)]
    queue: crate::sync::Mutex<()>,
    #[cfg(ipc_core_loom)]
    woken: crate::sync::Condvar,
    /// Whether the model sleeps on this signal, and so needs the barrier
    /// pair (see `barrier::light`).
    #[cfg(ipc_core_loom)]
    sleepers_modelled: bool,
}

impl Signal {
    /// A signal for a loom model; `sleepers_modelled` when the model
    /// parks on it (see `barrier::light`).
    #[cfg(ipc_core_loom)]
    pub(crate) fn new(sleepers_modelled: bool) -> Signal {
        Signal {
            seq: AtomicU32::new(0),
            sleepers: AtomicU32::new(0),
            queue: crate::sync::Mutex::new(()),
            woken: crate::sync::Condvar::new(),
            sleepers_modelled,
        }
    }

    /// After making progress a sleeper may be waiting for (a message
    /// published, space freed): wakes the sleepers, if there are any. No
    /// syscall when there are none.
    #[inline]
    pub(crate) fn notify(&self) {
        #[cfg(not(ipc_core_loom))]
        barrier::light();
        #[cfg(ipc_core_loom)]
        if self.sleepers_modelled {
            barrier::light();
        }
        // Relaxed: the barrier pair (see the module docs) orders this load
        // after the caller's publication, against the sleeper's increment.
        if self.sleepers.load(Ordering::Relaxed) != 0 {
            self.wake();
        }
    }

    #[cold]
    #[inline(never)]
    fn wake(&self) {
        // Release: pairs with the Acquire load of `seq` in `sleep`: a
        // sleeper that sees the new value sees what was published before.
        // (Loom cannot tell this from Relaxed: its stand-in for the
        // notifier's barrier is a full fence, which orders the publication
        // already; the real barrier is only a compiler fence.)
        self.seq.fetch_add(1, Ordering::Release);
        #[cfg(not(ipc_core_loom))]
        crate::sys::futex_wake_all(&self.seq);
        #[cfg(ipc_core_loom)]
        {
            let _queue = self.queue.lock().unwrap();
            self.woken.notify_all();
        }
    }

    /// Sleeps until a notification, unless `ready()` is already true once
    /// this sleeper is counted; at most `timeout` (ignored under loom,
    /// whose models must not lose a wake-up to pass). Whatever the reason it
    /// returns for, the caller re-checks. `mark` is the sleeper's tally in
    /// its participant slot, for a reaper should it die asleep.
    pub(crate) fn sleep(
        &self,
        mark: Option<Mark<'_>>,
        ready: impl Fn() -> bool,
        timeout: Duration,
    ) {
        self.announce(mark);
        let barrier_held = barrier::heavy();
        // Acquire: pairs with the Release increment in `wake`.
        let seq = self.seq.load(Ordering::Acquire);
        if !ready() {
            #[cfg(not(ipc_core_loom))]
            {
                let timeout = if barrier_held {
                    timeout
                } else {
                    timeout.min(Duration::from_millis(1))
                };
                crate::sys::futex_wait(&self.seq, seq, timeout);
            }
            #[cfg(ipc_core_loom)]
            {
                let _ = (timeout, barrier_held);
                let queue = self.queue.lock().unwrap();
                // Relaxed: under the wait queue's lock, as the kernel
                // compares the futex word under its own.
                if self.seq.load(Ordering::Relaxed) == seq {
                    drop(self.woken.wait(queue).unwrap());
                }
            }
        }
        self.retire(mark);
    }

    /// Counts a sleeper in, then marks it: in that order, so a reaper never
    /// uncounts what was not counted (see the module docs).
    pub(crate) fn announce(&self, mark: Option<Mark<'_>>) {
        // Relaxed: ordered against the notifier's load by the barrier pair.
        self.sleepers.fetch_add(1, Ordering::Relaxed);
        if let Some(mark) = mark {
            mark.add();
        }
    }

    /// Undoes [`announce`](Self::announce): the mark first, then the count.
    /// A mark a reaper took (it judged this participant dead: a thread left
    /// sleeping by a handle since dropped) was uncounted by that reaper.
    fn retire(&self, mark: Option<Mark<'_>>) {
        if mark.is_none_or(Mark::remove) {
            // Relaxed: only a count.
            self.sleepers.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The sleepers counted now, for loom models' checks.
    #[cfg(all(test, ipc_core_loom))]
    pub(crate) fn sleepers(&self) -> u32 {
        // Relaxed: read once every thread has been joined.
        self.sleepers.load(Ordering::Relaxed)
    }
}

/// Which of a ring's two signals a [`Mark`] tallies: its half of the
/// participant's sleeping word.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Lane {
    /// The "data" signal: the low 32 bits.
    Data,
    /// The "space" signal: the high 32 bits.
    Space,
}

impl Lane {
    const fn shift(self) -> u32 {
        match self {
            Lane::Data => 0,
            Lane::Space => 32,
        }
    }
}

/// A participant's tally of its own threads counted in a signal's
/// sleepers, in its participant slot: what a reaper takes off the signal
/// if the participant dies (see the module docs).
#[derive(Clone, Copy)]
pub(crate) struct Mark<'a> {
    word: &'a AtomicU64,
    lane: Lane,
}

/// Most sleeping threads one participant can have marked: a half of a
/// sleeping word above this was written by no correct peer.
const MAX_MARKED: u64 = 1 << 16;

/// Tries of [`Mark::remove`] against a word that keeps changing.
const MARK_ATTEMPTS: u32 = 64;

impl<'a> Mark<'a> {
    /// The `lane` half of the sleeping word `word` (`Table::sleeping`).
    pub(crate) fn new(word: &'a AtomicU64, lane: Lane) -> Mark<'a> {
        Mark { word, lane }
    }

    fn add(self) {
        // Release: pairs with the Acquire swap in `uncount_dead_sleepers`:
        // a reaper that takes this mark finds our increment of `sleepers`
        // before its decrement (were the two reordered, the count would dip
        // under the live sleepers, and a notifier could skip a wake-up).
        self.word
            .fetch_add(1 << self.lane.shift(), Ordering::Release);
    }

    /// Takes one off this lane's tally; `false` if it is 0 (a reaper took
    /// it), or if the word kept changing (a hostile writer: the signal's
    /// count then leaks, never dips).
    fn remove(self) -> bool {
        let unit = 1u64 << self.lane.shift();
        // Relaxed: a count this thread's own `add` raised; the signal's
        // count is ours to lower after, with no partner.
        let mut word = self.word.load(Ordering::Relaxed);
        for _ in 0..MARK_ATTEMPTS {
            if word >> self.lane.shift() & 0xffff_ffff == 0 {
                return false;
            }
            // Relaxed: as above.
            match self.word.compare_exchange(
                word,
                word - unit,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => word = now,
            }
        }
        false
    }
}

/// Takes a dead participant's marked sleepers off the `data` and `space`
/// signals, clearing its sleeping word `marks`. Only for a reaper holding
/// that participant's claim: a live one's sleepers would go uncounted.
/// The swap makes this once-only per mark, whoever else reaps.
pub(crate) fn uncount_dead_sleepers(marks: &AtomicU64, data: &Signal, space: &Signal) {
    // Relaxed: a first look, to not write the slot's line for nothing.
    if marks.load(Ordering::Relaxed) == 0 {
        return;
    }
    // Acquire: pairs with the Release increment in `Mark::add`.
    let taken = marks.swap(0, Ordering::Acquire);
    for (signal, lane) in [(data, Lane::Data), (space, Lane::Space)] {
        let marked = taken >> lane.shift() & 0xffff_ffff;
        // A tally no correct peer writes is left on the count: wake-ups for
        // nobody, never a lost one.
        if marked <= MAX_MARKED {
            // Relaxed: only a count (ordered after the increments by the
            // swap, see above).
            signal.sleepers.fetch_sub(marked as u32, Ordering::Relaxed);
        }
    }
}

/// What a blocked call waits for: the signal it sleeps on, and whether
/// its next attempt may succeed (a message or room appeared, or the
/// membership changed). Only whether to look again: the attempt itself
/// decides.
pub(crate) trait Condition {
    /// The signal whose notifications announce progress.
    fn signal(&self) -> &Signal;

    /// Whether to attempt again rather than sleep.
    fn ready(&self) -> bool;

    /// The waiter's tally in its participant slot (see [`Mark`]).
    fn mark(&self) -> Option<Mark<'_>>;
}

/// A [`Condition`] to sleep on away from the handle it came from: an async
/// call's waiting, done on a blocking thread. It keeps the ring's memory
/// mapped for as long as it lives.
#[cfg(all(feature = "tokio", not(ipc_core_loom)))]
pub(crate) struct Sleeper {
    condition: Box<dyn Condition + Send>,
    _memory: std::sync::Arc<dyn Send + Sync>,
}

#[cfg(all(feature = "tokio", not(ipc_core_loom)))]
impl Sleeper {
    /// `condition` of the ring in `memory` (the handle's owner, which keeps
    /// the mapping alive).
    pub(crate) fn new(
        condition: impl Condition + Send + 'static,
        memory: std::sync::Arc<dyn Send + Sync>,
    ) -> Sleeper {
        Sleeper {
            condition: Box::new(condition),
            _memory: memory,
        }
    }

    /// Sleeps until a notification, or `timeout`, unless the condition
    /// already holds once this sleeper is counted.
    pub(crate) fn sleep(&self, timeout: Duration) {
        let condition = &*self.condition;
        condition
            .signal()
            .sleep(condition.mark(), || condition.ready(), timeout);
    }
}

/// The two halves of the asymmetric store-load barrier; see the module
/// docs.
pub(crate) mod barrier {
    #[cfg(not(ipc_core_loom))]
    use crate::sync::{AtomicU32, Ordering};

    #[cfg(not(ipc_core_loom))]
    const UNKNOWN: u32 = 0;
    #[cfg(not(ipc_core_loom))]
    const REGISTERED: u32 = 1;
    #[cfg(not(ipc_core_loom))]
    const UNAVAILABLE: u32 = 2;

    /// Whether this process is registered for global `membarrier`.
    #[cfg(not(ipc_core_loom))]
    static STATE: AtomicU32 = AtomicU32::new(UNKNOWN);

    /// Registers this process for the sleeper's half, once; called when a
    /// ring handle attaches, before it can notify anyone.
    #[cfg(not(ipc_core_loom))]
    pub(crate) fn prepare() {
        // Relaxed: a process-local flag; registration is a syscall the
        // kernel orders by itself.
        if STATE.load(Ordering::Relaxed) == UNKNOWN {
            let state = if crate::sys::register_for_membarrier() {
                REGISTERED
            } else {
                UNAVAILABLE
            };
            STATE.store(state, Ordering::Relaxed);
        }
    }

    /// The notifier's half, between publishing and reading the sleepers.
    ///
    /// In production it is a compiler fence, which orders nothing between
    /// threads; loom models it as `fence(SeqCst)` (the pair's meaning), but
    /// only on signals whose model sleeps: a full fence on every publish
    /// would also order the rings' own Release/Acquire pairs, and their
    /// models would no longer notice a weakened one.
    #[inline(always)]
    pub(crate) fn light() {
        #[cfg(not(ipc_core_loom))]
        // Relaxed: see `prepare`.
        if STATE.load(Ordering::Relaxed) == REGISTERED {
            // SeqCst: keeps the compiler from moving the sleepers' load
            // above the publication; the CPU's half is the sleeper's
            // membarrier.
            crate::sync::compiler_fence(Ordering::SeqCst);
        } else {
            // SeqCst: unregistered, this process must fence for real (the
            // sleeper's membarrier does not reach it).
            crate::sync::fence(Ordering::SeqCst);
        }
        #[cfg(ipc_core_loom)]
        {
            // SeqCst: what the asymmetric pair amounts to; see the module docs.
            crate::sync::fence(crate::sync::Ordering::SeqCst);
        }
    }

    /// The sleeper's half, between counting itself and re-checking; whether
    /// it took effect (if not, sleep only briefly).
    pub(crate) fn heavy() -> bool {
        #[cfg(not(ipc_core_loom))]
        {
            // SeqCst: this side's own store-load order; the membarrier then
            // orders every registered process's running threads.
            crate::sync::fence(Ordering::SeqCst);
            crate::sys::global_membarrier()
        }
        #[cfg(ipc_core_loom)]
        {
            // SeqCst: see light.
            crate::sync::fence(crate::sync::Ordering::SeqCst);
            true
        }
    }
}

/// A deadline `timeout` from now (a century away for a timeout too large
/// to add).
pub(crate) fn deadline_after(timeout: Duration) -> std::time::Instant {
    let now = std::time::Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// What a [`Wait::pause`] ended with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(ipc_core_loom, allow(dead_code))] // loom models have no clock
pub(crate) enum Paused {
    /// Try again.
    Again,
    /// Try again, and first check that the peers are alive: a
    /// [`LIVENESS_TICK`] has passed, or the deadline has (a call that
    /// times out checks its peers once first).
    Tick,
    /// The deadline passed.
    TimedOut,
}

/// One blocking call's waiting: its strategy, how far along it is, and its
/// deadline.
#[derive(Debug)]
pub(crate) struct Wait {
    strategy: WaitStrategy,
    #[cfg_attr(ipc_core_loom, allow(dead_code))] // loom yields instead
    backoff: Backoff,
    rounds: u32,
    #[cfg(not(ipc_core_loom))]
    deadline: Option<std::time::Instant>,
    #[cfg(not(ipc_core_loom))]
    next_tick: Option<std::time::Instant>,
    /// Whether the deadline's own liveness check was handed out.
    #[cfg(not(ipc_core_loom))]
    checked_at_deadline: bool,
}

impl Wait {
    /// A wait with `strategy` that gives up at `deadline` (never if `None`;
    /// loom models have no clock, and ignore it).
    pub(crate) fn new(strategy: WaitStrategy, deadline: Option<std::time::Instant>) -> Wait {
        #[cfg(ipc_core_loom)]
        let _ = deadline;
        Wait {
            strategy,
            backoff: Backoff::new(),
            rounds: 0,
            #[cfg(not(ipc_core_loom))]
            deadline,
            #[cfg(not(ipc_core_loom))]
            next_tick: None,
            #[cfg(not(ipc_core_loom))]
            checked_at_deadline: false,
        }
    }

    /// Waits a little after an attempt that found the ring full or empty:
    /// spins, or sleeps on the condition's signal until a notification
    /// (unless the condition says the next attempt may succeed once this
    /// sleeper is counted).
    pub(crate) fn pause(&mut self, condition: &impl Condition) -> Paused {
        let (signal, mark, ready) = (condition.signal(), condition.mark(), || condition.ready());
        self.rounds = self.rounds.saturating_add(1);
        let spinning = match self.strategy {
            WaitStrategy::BusyPoll => true,
            WaitStrategy::SpinThenPark { spins } => self.rounds <= spins,
            WaitStrategy::Park => false,
        };
        #[cfg(ipc_core_loom)]
        {
            if spinning {
                loom::thread::yield_now();
            } else {
                signal.sleep(mark, ready, Duration::MAX);
            }
            Paused::Again
        }
        #[cfg(not(ipc_core_loom))]
        {
            if spinning {
                // The clock is read once the spin has lasted a while.
                let busy = self.strategy == WaitStrategy::BusyPoll;
                if busy {
                    std::hint::spin_loop();
                }
                if (busy && self.rounds % 1024 != 0) || (!busy && !self.backoff.snooze()) {
                    return Paused::Again;
                }
            }
            let now = std::time::Instant::now();
            let next_tick = *self.next_tick.get_or_insert(now + LIVENESS_TICK);
            if !spinning {
                let mut until = next_tick;
                if let Some(deadline) = self.deadline {
                    until = until.min(deadline);
                }
                // A deadline already passed: no sleep, no syscall.
                if until > now {
                    signal.sleep(mark, ready, until - now);
                }
            }
            let now = std::time::Instant::now();
            if self.deadline.is_some_and(|deadline| now >= deadline) {
                // One check of the peers before giving up: a wait shorter
                // than the tick, repeated in a loop, would otherwise never
                // learn that its peer died. A lock probe per peer, on a
                // path that has already waited.
                if self.checked_at_deadline {
                    Paused::TimedOut
                } else {
                    self.checked_at_deadline = true;
                    Paused::Tick
                }
            } else if now >= next_tick {
                self.next_tick = Some(now + LIVENESS_TICK);
                Paused::Tick
            } else {
                Paused::Again
            }
        }
    }
}

/// Wait-path system calls (futex waits and wakes, barriers) this process
/// has made so far: a stream whose peer keeps up makes none, which tests
/// and the benchmark check with this.
#[cfg(not(ipc_core_loom))]
pub fn syscalls() -> u64 {
    crate::sys::wait_syscalls()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_end_of_spinning_and_resets() {
        let mut backoff = Backoff::new();
        for _ in 0..Backoff::SPINS - 1 {
            assert!(!backoff.snooze());
        }
        assert!(backoff.is_spinning());
        assert!(!backoff.snooze());
        assert!(!backoff.is_spinning());
        assert!(backoff.snooze());
        backoff.reset();
        assert!(backoff.is_spinning());
        assert!(!backoff.snooze());
    }
}
