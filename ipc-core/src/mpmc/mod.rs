//! A bounded lock-free multi-producer multi-consumer queue of fixed-size
//! slots, shared by any number of processes; each message is delivered to
//! exactly one consumer.
//!
//! # Layout
//! After the region header and the participant table: a control block of
//! eight 128-byte lines (`tail`, `head`, the two recovery counters, the two
//! wait signals, the lifecycle word and a reserved line: [`CONTROL_SIZE`]
//! bytes, laid out in `layout/mpmc.rs`), then `capacity` slots (a power of
//! two). A slot is
//! a *stamp* word, a length word, and `max_message` bytes of payload
//! (rounded up to 8): see [`slot_stride`].
//!
//! # Slots and their stamps
//! In the manner of Vyukov's bounded queue (and crossbeam's `ArrayQueue`),
//! position `p` (a count that only grows) lives in slot `p % capacity`, on
//! lap `p / capacity`, and each slot's stamp says what the slot holds:
//! `lap << 19 | state << 16 | holder`, where `holder` is the participant
//! slot index + 1 of whoever is working on it (0 for nobody). Memory that is
//! all zeroes is an empty queue: every slot is `EMPTY` on lap 0.
//!
//! ```text
//!  EMPTY(lap) --producer CAS--> WRITING(lap, p) --commit--> FULL(lap)
//!      ^                              |                        |
//!      |                     abandon / p died           consumer CAS
//!      |                              v                        v
//!      +------- consumer CAS ---- ABANDONED(lap)        READING(lap, c)
//!      +-------------------- release / c died (lost) ---------+
//!                      (both to EMPTY(lap + 1))
//! ```
//!
//! A producer claims position `t` (a hint read from `tail`) by a CAS of its
//! slot's stamp from `EMPTY(lap)` to `WRITING(lap, me)`, then moves `tail` on
//! with a CAS that anyone seeing the claimed slot also tries if `tail` still
//! lags after a short backoff (see below; so `tail` never lags by more than
//! the claims in flight, and a producer that dies right after claiming does
//! not stop it). It writes the length and payload and
//! publishes them with a Release CAS of the stamp to `FULL(lap)`. A consumer
//! claims the slot at `head` the same way (`FULL` to `READING(lap, me)`),
//! reads, and frees it for the next lap with a Release CAS to
//! `EMPTY(lap + 1)`, which the producer of that lap loads with Acquire before
//! it overwrites the slot. Claiming a slot by its stamp (rather than by
//! `tail`/`head`, as Vyukov does) is what lets a stamp name its holder: a
//! process that dies between claim and publish, or between claim and
//! release, leaves its participant index in the stamp.
//!
//! # Contention
//! A handle that loses a race for a slot (its claim CAS fails, or the slot
//! at the hint is claimed already) spins a little before it looks again,
//! twice as long each time up to 64 pause instructions (crossbeam's
//! `Backoff` does the same; after 64 lost races in one call it spins no
//! more, so a hostile peer meets the retry bound as soon as it did without
//! it), and helps move the hint on only if the hint still names that slot
//! after the spin. Without this the losers pulled the hint's and the
//! stamps' cache lines away from the winner between its claim and its
//! move of the hint, once per message: two producers on two cores filled
//! a queue at 5 M messages/s against the 50–75 M/s they reach with it (and
//! `ArrayQueue`'s 100–140 M/s).
//!
//! # A participant that dies mid-operation
//! A handle that finds the queue stuck on a slot another participant holds
//! (`WRITING` at `head`, or a previous lap's `WRITING`/`READING` at `tail`)
//! for more than a millisecond asks whether that participant is alive (one
//! lock probe, see [`crate::participants`]; never while the queue moves). If
//! it is dead, the handle *reaps* it: it claims the dead entry in the table,
//! scans every slot for stamps naming it, and repairs them:
//!
//! - `WRITING` becomes `ABANDONED`: the half-written message is never
//!   delivered; consumers step over it. Counted in [`Counters::skipped`].
//! - `READING` becomes `EMPTY` on the next lap: the message whose reader died
//!   while reading it is **lost, not redelivered** (at-most-once: a reader
//!   may have acted on it before dying, and delivering it again could do
//!   that twice). Counted in [`Counters::lost`].
//!
//! Only then is the dead entry freed for reuse, so a stamp never names a
//! participant index that a new participant has taken. A reaper that dies
//! mid-reap leaves the entry claimed; the next handle that needs it reaped
//! takes the reap over (see [`crate::participants`]) and scans again, which
//! repairs only the stamps still naming the dead participant. (A reaper
//! killed between a repair and its count leaves that one uncounted.)
//!
//! A live handle whose [`Grant`] or [`ReadGuard`] was forgotten
//! (`mem::forget` is safe code) holds its slot the same way; the handle
//! counts the guards it lends (in its own memory, not the queue's), and
//! one that drops with a guard outstanding repairs its slots as above
//! before it leaves the table.
//!
//! # Untrusted memory
//! Stamps, lengths and the `tail`/`head` hints are all checked: a stamp that
//! no correct peer writes, or a length above `max_message`, gives
//! [`RecvError::Corrupted`]/[`SendError::Corrupted`], and every loop that
//! retries against changing shared words is bounded.
//!
//! # Example
//! ```
//! use ipc_core::{mpmc, RegionOptions};
//!
//! let region = RegionOptions::new()
//!     .layout(mpmc::layout(64, 256)?)
//!     .create_anonymous()?;
//! let (mut producer, mut consumer) = mpmc::channel(region)?;
//! let mut second = producer.try_clone()?; // another producer
//!
//! producer.try_send(b"one")?;
//! second.try_send(b"two")?;
//! assert_eq!(&*consumer.try_recv()?, b"one");
//! let mut buf = [0u8; 256];
//! let n = consumer.recv_into(&mut buf)?;
//! assert_eq!(&buf[..n], b"two");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::layout::mpmc::SLOT_HEADER;
pub use crate::layout::mpmc::{
    check_geometry, slot_stride, CONTROL_SIZE, MAX_CAPACITY, MAX_MESSAGE, MIN_CAPACITY,
};
use crate::participants::{Identity, Member, Members, RegisterError, Role};
pub use crate::ring::{Corruption, RecvError, SendError};
use crate::ring::{Lifecycle, Line, Presence};
use crate::sync::{AtomicU64, Bytes, Ordering, WORD};
use crate::wait::{deadline_after, Condition, Lane, Mark, Paused, Signal, Wait, WaitStrategy};

#[cfg(not(ipc_core_loom))]
mod attach;
#[cfg(not(ipc_core_loom))]
pub use attach::{channel, layout, layout_with_participants, PARTICIPANTS};

#[cfg(all(test, ipc_core_loom))]
mod loom_models;
#[cfg(all(test, not(ipc_core_loom)))]
mod tests;

/// How many times an operation retries against shared words that keep
/// changing before it reports corruption. Legitimate contention between
/// any number of processes makes progress on every retry (some other
/// participant's claim succeeded), so this is never reached by correct
/// peers; a hostile one flipping words cannot keep a call spinning. The
/// contention backoff adds at most [`Contention::MAX_ROUNDS`] spins to
/// that (see there).
const MAX_ATTEMPTS: u32 = 1 << 20;

/// How long a handle watches the queue stuck on another participant's slot
/// before it asks whether that participant is alive, and how often after.
#[cfg(not(ipc_core_loom))]
const STALL_BEFORE_CHECK: std::time::Duration = std::time::Duration::from_millis(1);

/// The queue's shared control block.
#[repr(C)]
pub(crate) struct Control {
    /// The next position to claim for writing, or one behind it. A hint:
    /// the claiming producer moves it on by CAS, and so does anyone who
    /// sees the claimed slot and, after a backoff, the hint still on it.
    tail: Line,
    /// The next position to claim for reading, or one behind it; likewise.
    head: Line,
    /// Messages whose writer died before publishing them.
    skipped: Line,
    /// Messages whose reader died while reading them.
    lost: Line,
    /// Consumers sleep on it; producers notify it after publishing.
    data: Signal,
    /// Producers sleep on it; consumers notify it after freeing a slot.
    space: Signal,
    /// Who is attached, and who has been.
    lifecycle: Lifecycle,
    reserved: Line,
}

// The layout's geometry, which other processes rely on (loom's atomics are
// larger, so not under loom).
#[cfg(not(ipc_core_loom))]
const _: () = {
    use crate::layout::mpmc::control;
    use core::mem::offset_of;
    assert!(core::mem::size_of::<Control>() as u64 == CONTROL_SIZE);
    assert!(offset_of!(Control, tail) == 0);
    assert!(offset_of!(Control, head) == control::HEAD);
    assert!(offset_of!(Control, skipped) == control::SKIPPED);
    assert!(offset_of!(Control, lost) == control::LOST);
    assert!(offset_of!(Control, data) == control::DATA);
    assert!(offset_of!(Control, space) == control::SPACE);
    assert!(offset_of!(Control, lifecycle) == control::LIFECYCLE);
};

impl Control {
    #[cfg(ipc_core_loom)]
    /// A control block for a loom model; `sleepers_modelled` when the
    /// model parks on its signals.
    pub(crate) fn new(sleepers_modelled: bool) -> Control {
        Control {
            tail: Line::new(),
            head: Line::new(),
            skipped: Line::new(),
            lost: Line::new(),
            data: Signal::new(sleepers_modelled),
            space: Signal::new(sleepers_modelled),
            lifecycle: Lifecycle::new(),
            reserved: Line::new(),
        }
    }
}

/// What recovery did, counted since the queue was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Half-written messages of producers that died: never delivered.
    pub skipped: u64,
    /// Messages whose consumer died while reading them: not redelivered.
    pub lost: u64,
}

/// What a slot's stamp says it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Empty = 0,
    Writing = 1,
    Full = 2,
    Reading = 3,
    Abandoned = 4,
}

const STATE_SHIFT: u32 = 16;
const LAP_SHIFT: u32 = 19;
const LAP_MASK: u64 = u64::MAX >> LAP_SHIFT;
const HOLDER_MASK: u64 = (1 << STATE_SHIFT) - 1;
/// Largest participant index + 1 a stamp can hold.
pub(crate) const MAX_HOLDER: u64 = HOLDER_MASK;
const _: () = assert!(MAX_HOLDER == crate::layout::mpmc::MAX_PARTICIPANTS);

/// A decoded stamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    lap: u64,
    state: State,
    /// Participant index + 1, or 0.
    holder: u64,
}

impl Stamp {
    fn new(lap: u64, state: State, holder: u64) -> Stamp {
        Stamp {
            lap: lap & LAP_MASK,
            state,
            holder,
        }
    }

    fn word(self) -> u64 {
        self.lap << LAP_SHIFT | (self.state as u64) << STATE_SHIFT | self.holder
    }

    /// Whether a consumer finding this stamp at the head, on `lap`, finds
    /// the queue empty: not written yet, being written, or still being read
    /// on the previous lap (by a slow consumer the others have lapped).
    /// `Consumer::claim` and its wait condition both ask this, so they agree.
    #[inline(always)]
    fn leaves_empty(self, lap: u64) -> bool {
        (self.lap == lap && matches!(self.state, State::Empty | State::Writing))
            || (self.lap == lap.wrapping_sub(1) & LAP_MASK && self.state == State::Reading)
    }

    /// Whether a producer finding this stamp at the tail, on `lap`, finds
    /// the queue full: the previous lap's message is still there (written,
    /// being written or read, or abandoned). Asked by `Producer::claim` and
    /// its wait condition alike.
    #[inline(always)]
    fn leaves_full(self, lap: u64) -> bool {
        self.lap == lap.wrapping_sub(1) & LAP_MASK && self.state != State::Empty
    }

    /// `None` for a word no correct peer writes.
    fn decode(word: u64) -> Option<Stamp> {
        let state = match (word >> STATE_SHIFT) & 0b111 {
            0 => State::Empty,
            1 => State::Writing,
            2 => State::Full,
            3 => State::Reading,
            4 => State::Abandoned,
            _ => return None,
        };
        let holder = word & HOLDER_MASK;
        // Only claimed slots name a holder.
        let held = matches!(state, State::Writing | State::Reading);
        (held == (holder != 0)).then_some(Stamp {
            lap: word >> LAP_SHIFT,
            state,
            holder,
        })
    }
}

/// The queue as one participant sees it. Nothing here is re-read from
/// shared memory.
#[derive(Clone, Copy)]
pub(crate) struct Ring {
    control: NonNull<Control>,
    slots: Bytes,
    members: Members,
    /// Slots: a power of two.
    capacity: u64,
    /// log2(capacity).
    shift: u32,
    /// Bytes per slot.
    stride: usize,
    max_message: u64,
}

// SAFETY: addresses and numbers; the memory is shared by design and reached
// through atomics and the protocol above. Handles keep it alive.
unsafe impl Send for Ring {}

impl Ring {
    /// # Safety
    /// `control` points to a `Control` that, like `slots` and the members'
    /// table, stays valid while the ring is used; `capacity` and
    /// `max_message` pass [`check_geometry`], and `slots` holds `capacity`
    /// slots of [`slot_stride`]`(max_message)` bytes.
    pub(crate) unsafe fn new(
        control: NonNull<Control>,
        slots: Bytes,
        members: Members,
        capacity: u64,
        max_message: u64,
    ) -> Ring {
        debug_assert!(check_geometry(capacity, max_message).is_ok());
        debug_assert_eq!(slots.len() as u64, capacity * slot_stride(max_message));
        Ring {
            control,
            slots,
            members,
            capacity,
            shift: capacity.trailing_zeros(),
            stride: slot_stride(max_message) as usize,
            max_message,
        }
    }

    fn control(&self) -> &Control {
        // SAFETY: `Ring::new`'s contract keeps the control block valid; it
        // holds only atomics, which other processes may write concurrently.
        unsafe { self.control.as_ref() }
    }

    /// Positions between the head and tail hints, for `len` reports: a
    /// snapshot, clamped to the capacity (shared values are claims).
    #[cfg(not(ipc_core_loom))]
    pub(crate) fn queued(&self) -> usize {
        // Relaxed: a report; nothing is read or written on its strength.
        let head = self.control().head.0.load(Ordering::Relaxed);
        let tail = self.control().tail.0.load(Ordering::Relaxed);
        tail.saturating_sub(head).min(self.capacity) as usize
    }

    #[inline(always)]
    fn lap(&self, position: u64) -> u64 {
        (position >> self.shift) & LAP_MASK
    }

    /// Offset of position's slot in the slot area.
    #[inline(always)]
    fn slot(&self, position: u64) -> usize {
        (position & (self.capacity - 1)) as usize * self.stride
    }

    #[inline(always)]
    fn stamp(&self, position: u64) -> &AtomicU64 {
        // SAFETY: a masked position's slot starts inside the area, 8-aligned
        // (the stride is a multiple of 8).
        unsafe { self.slots.word(self.slot(position)) }
    }

    #[inline(always)]
    fn length(&self, position: u64) -> &AtomicU64 {
        // SAFETY: the second word of a slot, as in `stamp`.
        unsafe { self.slots.word(self.slot(position) + WORD) }
    }

    #[inline(always)]
    fn payload(&self, position: u64) -> usize {
        self.slot(position) + SLOT_HEADER as usize
    }

    fn counters(&self) -> Counters {
        let control = self.control();
        // Relaxed: statistics, ordered with nothing.
        Counters {
            skipped: control.skipped.0.load(Ordering::Relaxed),
            lost: control.lost.0.load(Ordering::Relaxed),
        }
    }

    /// Moves a position hint on from `from`, if nobody has yet.
    ///
    /// AcqRel: the hints carry what their movers saw. Whoever moves a hint
    /// past a position has seen that position's slot claimed (its own
    /// claim, or an Acquire load of the claimed stamp); Release passes that
    /// on, Acquire takes in what earlier movers saw, and read-read coherence
    /// then forbids a reader of the hint to see the slot any older. So a
    /// handle that loads a hint (with Acquire) finds every slot before it
    /// claimed, and a stamp a whole lap behind the hint is corruption, not
    /// a stale view (loom's `a_producer_behind_the_tail_sees_claimed_slots`
    /// and `consumers_follow_head_across_a_lap` fail without it). The
    /// partners: the Acquire loads of `tail` and `head` in the claims.
    #[inline(always)]
    fn advance(hint: &AtomicU64, from: u64) {
        let next = from.wrapping_add(1);
        let _ = hint.compare_exchange(from, next, Ordering::AcqRel, Ordering::Relaxed);
    }

    /// Registers a participant of `role`, reaping dead entries (and what
    /// they held) if the table is full. Every change to the table bumps the
    /// lifecycle epoch, so peers notice.
    fn join(&self, role: Role, identity: Identity) -> Result<Member, RegisterError> {
        // Dead entries of our role first: nothing else reaps a dead idle
        // consumer while producers keep up, and one that died asleep would
        // cost every notification a wake-up syscall meanwhile (a lock probe
        // per entry of the role, at attach only).
        self.reap_dead(role);
        let joined = self
            .members
            .join(role, identity, |reaping| self.recover(reaping.index));
        let control = self.control();
        control
            .lifecycle
            .changed(joined.as_ref().ok().map(|_| role));
        joined
    }

    /// Leaves the table when a handle drops, and wakes the other side so it
    /// notices. A handle that `leaked` a grant or guard (`mem::forget`)
    /// first repairs the slots naming it, as a reap of it would: once its
    /// entry is free, nobody would (and its index may name someone else).
    fn leave(&self, member: &Member, leaked: bool) {
        if leaked {
            self.recover(member.token.index());
        }
        self.members.table.free(member);
        self.membership_changed();
    }

    /// If participant index + 1 `holder` is dead, reaps it: repairs every
    /// slot it held, then frees its entry. Returns whether anything was
    /// repaired or freed.
    fn reap(&self, holder: u64) -> bool {
        let Some(index) = holder.checked_sub(1) else {
            return false;
        };
        match self
            .members
            .table
            .start_reap(index as usize, &self.members.liveness)
        {
            Some(reaping) => {
                self.recover(reaping.index);
                self.members.table.finish_reap(reaping);
                self.membership_changed();
                true
            }
            None => false,
        }
    }

    /// Reaps every dead participant of `role`; a lock probe per entry of that
    /// role, for a blocked call's liveness ticks.
    fn reap_dead(&self, role: Role) {
        let reaped = self
            .members
            .table
            .reap_dead(role, &self.members.liveness, |reaping| {
                self.recover(reaping.index)
            });
        if reaped > 0 {
            self.membership_changed();
        }
    }

    /// Bumps the lifecycle epoch and wakes every sleeper, so all re-check
    /// who is left (and the slots a reaping repaired).
    fn membership_changed(&self) {
        let control = self.control();
        control.lifecycle.changed(None);
        control.data.notify();
        control.space.notify();
    }

    /// Takes dead participant `index`'s sleeping threads off the signals'
    /// counts (see `wait::uncount_dead_sleepers`).
    fn uncount_sleepers(&self, index: usize) {
        if let Some(marks) = self.members.table.sleeping(index) {
            let control = self.control();
            crate::wait::uncount_dead_sleepers(marks, &control.data, &control.space);
        }
    }

    /// Repairs the slots that dead (or departing, see `leave`) participant
    /// `index` held: a message it was writing is abandoned (skipped), one it
    /// was reading is lost.
    fn recover(&self, index: usize) {
        self.uncount_sleepers(index);
        let holder = index as u64 + 1;
        let control = self.control();
        for position in 0..self.capacity {
            let word = self.stamp(position);
            // Relaxed: the death decision (`start_reap`'s liveness probe)
            // already ordered everything the dead participant did before
            // this; the CAS below only needs the value.
            let seen = word.load(Ordering::Relaxed);
            let Some(stamp) = Stamp::decode(seen) else {
                continue;
            };
            if stamp.holder != holder {
                continue;
            }
            let (repaired, counter) = match stamp.state {
                State::Writing => (Stamp::new(stamp.lap, State::Abandoned, 0), &control.skipped),
                State::Reading => (Stamp::new(stamp.lap + 1, State::Empty, 0), &control.lost),
                _ => continue,
            };
            // Release: pairs with the Acquire loads of the stamp by the
            // consumers (abandoned) or producers (freed) that take it next.
            if word
                .compare_exchange(seen, repaired.word(), Ordering::Release, Ordering::Relaxed)
                .is_ok()
            {
                // Relaxed: a statistic.
                counter.0.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Spins a little after a handle lost a race for a slot, longer each time
/// (see "Contention" in the module docs): the winner then finishes its
/// claim and moves the hint on without the loser taking the lines from it.
#[derive(Default)]
struct Contention {
    /// Races lost in this call so far.
    rounds: u32,
}

impl Contention {
    /// log2 of the longest spin: 64 pauses, crossbeam's `Backoff` limit.
    /// (With 16, two producers filled a queue at a third of the rate.)
    const MAX_STEP: u32 = 6;
    /// Lost races after which a call spins no more: some 4,000 pauses in
    /// all (about 100 µs where a pause takes 25 ns, as on the AMD EPYC
    /// measured). Legitimate contention rarely beats a handle that often in
    /// one call; a hostile peer flipping stamps then meets [`MAX_ATTEMPTS`]
    /// as soon as it would without the backoff, instead of after 2^26
    /// pauses (1.7 s there).
    const MAX_ROUNDS: u32 = 64;

    #[inline]
    fn spin(&mut self) {
        if self.rounds >= Self::MAX_ROUNDS {
            return;
        }
        let pauses = 1u32 << self.rounds.min(Self::MAX_STEP);
        // Loom explores interleavings, not time: nothing to wait for there.
        #[cfg(not(ipc_core_loom))]
        for _ in 0..pauses {
            core::hint::spin_loop();
        }
        #[cfg(ipc_core_loom)]
        let _ = pauses;
        self.rounds += 1;
    }
}

/// Watches a handle stuck on a slot that another participant holds, and
/// asks (rarely) whether that participant is alive.
#[derive(Debug, Default)]
struct Stall {
    /// The stamp the handle is stuck on.
    stamp: u64,
    /// When it was first seen, and when liveness was last asked.
    #[cfg(not(ipc_core_loom))]
    since: Option<(std::time::Instant, std::time::Instant)>,
}

impl Stall {
    fn clear(&mut self) {
        self.stamp = 0;
        #[cfg(not(ipc_core_loom))]
        {
            self.since = None;
        }
    }

    /// The handle is stuck on `word`, held by `stamp.holder`: reap the
    /// holder if it has been stuck long enough and the holder is dead.
    /// Returns whether something was repaired (so the caller retries).
    fn stuck_on(&mut self, ring: &Ring, word: u64, holder: u64) -> bool {
        if word != self.stamp {
            self.clear();
            self.stamp = word;
        }
        #[cfg(not(ipc_core_loom))]
        {
            let now = std::time::Instant::now();
            let (first, last) = *self.since.get_or_insert((now, now));
            if now - first < STALL_BEFORE_CHECK
                || (last != first && now - last < STALL_BEFORE_CHECK)
            {
                return false;
            }
            self.since = Some((first, now));
        }
        ring.reap(holder)
    }
}

/// The producing half: any number of them, in any processes.
///
/// `Send` but not `Sync`: one thread at a time, `&mut self` throughout.
/// [`try_clone`](Self::try_clone) makes another producer (a participant of
/// its own). Do not use a handle in a child after `fork`; attach there.
pub struct Producer {
    ring: Ring,
    member: Member,
    /// Our participant index + 1, as stamps name it.
    holder: u64,
    stall: Stall,
    /// Grants handed out and not yet dropped: one left when the handle
    /// drops was forgotten (`mem::forget`), and its slot is repaired then.
    lent: u32,
    /// Whether the consumers are gone, as of the lifecycle epoch last seen.
    consumers: Presence,
    strategy: WaitStrategy,
    #[cfg_attr(ipc_core_loom, allow(dead_code))] // loom models make no clones
    owner: Arc<dyn Send + Sync>,
}

/// The consuming half: any number of them, in any processes; each message
/// goes to one of them.
///
/// `Send` but not `Sync`; see [`Producer`].
pub struct Consumer {
    ring: Ring,
    member: Member,
    holder: u64,
    stall: Stall,
    /// Read guards handed out and not yet dropped; see `Producer::lent`.
    lent: u32,
    /// Whether the producers are gone, as of the lifecycle epoch last seen.
    producers: Presence,
    strategy: WaitStrategy,
    #[cfg_attr(ipc_core_loom, allow(dead_code))] // loom models make no clones
    owner: Arc<dyn Send + Sync>,
}

// SAFETY: the handles own their participant entry and keep the memory
// alive through `owner`; nothing in them is tied to a thread.
unsafe impl Send for Producer {}
// SAFETY: as above.
unsafe impl Send for Consumer {}

/// Why attaching failed, before it becomes a [`crate::Error`].
#[derive(Debug)]
pub(crate) enum AttachError {
    Register(RegisterError),
    /// The table slot is beyond what a stamp can name.
    IndexTooLarge,
}

fn holder_of(member: &Member) -> Result<u64, AttachError> {
    let holder = member.token.index() as u64 + 1;
    (holder <= MAX_HOLDER)
        .then_some(holder)
        .ok_or(AttachError::IndexTooLarge)
}

impl Producer {
    /// Registers a producer of `ring`.
    pub(crate) fn attach_ring(
        ring: Ring,
        owner: Arc<dyn Send + Sync>,
        identity: Identity,
    ) -> Result<Producer, AttachError> {
        let member = ring
            .join(Role::Producer, identity)
            .map_err(AttachError::Register)?;
        let holder = holder_of(&member).inspect_err(|_| ring.members.table.free(&member))?;
        Ok(Producer {
            ring,
            member,
            holder,
            stall: Stall::default(),
            lent: 0,
            consumers: Presence::default(),
            strategy: WaitStrategy::default(),
            owner,
        })
    }

    /// Another producer of the same queue, a participant of its own.
    #[cfg_attr(ipc_core_loom, allow(dead_code))]
    pub(crate) fn clone_with(&self, identity: Identity) -> Result<Producer, AttachError> {
        Producer::attach_ring(self.ring, self.owner.clone(), identity)
    }

    /// Messages queued, a snapshot (for the channel's `len`).
    #[cfg(not(ipc_core_loom))]
    pub(crate) fn queued(&self) -> usize {
        self.ring.queued()
    }

    /// How this handle waits (for the channel's `try_clone`).
    #[cfg(not(ipc_core_loom))]
    pub(crate) fn strategy(&self) -> WaitStrategy {
        self.strategy
    }

    /// Whether every consumer is gone, read afresh (for `is_disconnected`).
    #[cfg(not(ipc_core_loom))]
    pub(crate) fn peers_gone_now(&self) -> bool {
        let lifecycle = &self.ring.control().lifecycle;
        lifecycle.peers_gone_now(&self.ring.members, Role::Consumer)
    }

    /// Largest message this queue carries, in bytes.
    pub fn max_message(&self) -> usize {
        self.ring.max_message as usize
    }

    /// Slots in the queue.
    pub fn capacity(&self) -> usize {
        self.ring.capacity as usize
    }

    /// What recovery from dead participants has done to this queue so far.
    pub fn counters(&self) -> Counters {
        self.ring.counters()
    }

    /// Copies `msg` into a slot and publishes it. The copy trusts nothing
    /// (word by word, with atomic stores), as [`crate::spsc::Producer::try_send`]'s.
    #[inline]
    pub fn try_send(&mut self, msg: &[u8]) -> Result<(), SendError> {
        let position = self.claim(msg.len())?;
        // SAFETY: the payload of a claimed slot, `max_message` (>= len)
        // bytes rounded up to a word, inside the slot area.
        unsafe { self.ring.slots.copy_in(self.ring.payload(position), msg) };
        self.publish(position, msg.len())
    }

    /// Claims a slot for a `len`-byte message, written in place and published
    /// by [`Grant::commit`]. Dropping the grant abandons the slot (consumers
    /// step over it).
    #[inline]
    pub fn try_reserve(&mut self, len: usize) -> Result<Grant<'_>, SendError> {
        let position = self.claim(len)?;
        Ok(self.grant(position, len))
    }

    /// Copies `msg` into a slot and publishes it, waiting for a free slot as
    /// the handle's [`WaitStrategy`] says. `Disconnected` (and nothing
    /// sent) once every consumer is gone.
    pub fn send(&mut self, msg: &[u8]) -> Result<(), SendError> {
        self.send_until(msg, None)
    }

    /// [`send`](Self::send), giving up with [`SendError::Timeout`] after
    /// `timeout`.
    pub fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), SendError> {
        self.send_until(msg, Some(deadline_after(timeout)))
    }

    /// [`send`](Self::send), giving up with [`SendError::Timeout`] at
    /// `deadline`.
    pub fn send_deadline(&mut self, msg: &[u8], deadline: Instant) -> Result<(), SendError> {
        self.send_until(msg, Some(deadline))
    }

    /// Claims a slot as [`try_reserve`](Self::try_reserve) does, waiting for
    /// one as [`send`](Self::send) does.
    pub fn reserve(&mut self, len: usize) -> Result<Grant<'_>, SendError> {
        let position = self.claim_until(len, None)?;
        Ok(self.grant(position, len))
    }

    /// [`reserve`](Self::reserve), giving up at `deadline`.
    pub fn reserve_deadline(
        &mut self,
        len: usize,
        deadline: Instant,
    ) -> Result<Grant<'_>, SendError> {
        let position = self.claim_until(len, Some(deadline))?;
        Ok(self.grant(position, len))
    }

    /// How this handle waits in its blocking calls (default
    /// [`WaitStrategy::default`]).
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.strategy = strategy;
    }

    fn send_until(&mut self, msg: &[u8], deadline: Option<Instant>) -> Result<(), SendError> {
        let position = self.claim_until(msg.len(), deadline)?;
        // SAFETY: as in `try_send`.
        unsafe { self.ring.slots.copy_in(self.ring.payload(position), msg) };
        self.publish(position, msg.len())
    }

    /// Claims a slot, waiting for one (or the deadline, or the consumers'
    /// leaving) as the strategy says.
    fn claim_until(&mut self, len: usize, deadline: Option<Instant>) -> Result<u64, SendError> {
        let mut wait = Wait::new(self.strategy, deadline);
        loop {
            match self.claim(len) {
                Err(SendError::Full) => {}
                other => return other,
            }
            match wait.pause(&self.space_ready()) {
                Paused::Again => {}
                Paused::Tick => self.ring.reap_dead(Role::Consumer),
                Paused::TimedOut => return Err(SendError::Timeout),
            }
        }
    }

    /// What a producer that found the queue full waits for.
    fn space_ready(&self) -> SpaceReady {
        SpaceReady {
            ring: self.ring,
            me: self.member.token.index(),
            seen: self.consumers.seen(),
        }
    }

    /// Sleeping for room away from this handle (an async send's waiting).
    #[cfg(all(feature = "tokio", not(ipc_core_loom)))]
    pub(crate) fn sleeper(&self) -> crate::wait::Sleeper {
        crate::wait::Sleeper::new(self.space_ready(), self.owner.clone())
    }

    /// Reaps dead consumers: a waiting call's liveness tick.
    #[cfg(all(feature = "tokio", not(ipc_core_loom)))]
    pub(crate) fn reap_dead_peers(&self) {
        self.ring.reap_dead(Role::Consumer);
    }

    /// Claims the slot of the next position for writing.
    #[inline]
    fn claim(&mut self, len: usize) -> Result<u64, SendError> {
        let ring = self.ring;
        if ring.slots.is_poisoned() {
            return Err(SendError::Corrupted(Corruption::LOST));
        }
        if len as u64 > ring.max_message {
            return Err(SendError::TooLarge {
                len,
                max: ring.max_message as usize,
            });
        }
        if self
            .consumers
            .peers_gone(&ring.control().lifecycle, &ring.members, Role::Consumer)
        {
            return Err(SendError::Disconnected);
        }
        let tail = &ring.control().tail.0;
        let mut contention = Contention::default();
        for _ in 0..MAX_ATTEMPTS {
            // Acquire: pairs with the AcqRel CAS in `Ring::advance`.
            let position = tail.load(Ordering::Acquire);
            let lap = ring.lap(position);
            let word = ring.stamp(position);
            // Relaxed: a first look; the claim CAS below acquires the value
            // it takes.
            let seen = word.load(Ordering::Relaxed);
            let stamp = Stamp::decode(seen);
            match stamp {
                Some(Stamp {
                    lap: l,
                    state: State::Empty,
                    ..
                }) if l == lap => {
                    let mine = Stamp::new(lap, State::Writing, self.holder).word();
                    // Acquire: pairs with the Release CAS to EMPTY in
                    // `Consumer::release` (or `recover`): the last reader of
                    // the slot is done with it before we overwrite it. (No
                    // Release: whoever moves `tail` past this slot has seen
                    // the claim with an Acquire load, and read-read
                    // coherence carries that on through `Ring::advance`.)
                    if word
                        .compare_exchange(seen, mine, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                    {
                        Ring::advance(tail, position);
                        self.stall.clear();
                        ring.slots
                            .mark_written(ring.slot(position) + WORD, ring.stride - WORD);
                        return Ok(position);
                    }
                    contention.spin();
                }
                // Claimed already, or even consumed: give the claimer time
                // to move the hint on, and move it on if it has not.
                Some(Stamp { lap: l, .. }) if l == lap || l == (lap + 1) & LAP_MASK => {
                    contention.spin();
                    // Relaxed: only whether to help; `advance` orders what
                    // it moves, and the next round loads `tail` with Acquire.
                    if tail.load(Ordering::Relaxed) == position {
                        Ring::advance(tail, position);
                    }
                }
                // The previous lap's message is still there: full, unless the
                // hint moved meanwhile.
                Some(s) if s.leaves_full(lap) => {
                    // Relaxed: rereading the hint.
                    if tail.load(Ordering::Relaxed) != position {
                        continue;
                    }
                    if s.holder != 0 && self.stall.stuck_on(&ring, seen, s.holder) {
                        continue; // a dead holder's slot was repaired
                    }
                    return Err(SendError::Full);
                }
                _ => {
                    // Relaxed: only whether the hint moved on meanwhile (then
                    // the stamp was a later lap's, not corruption); nothing
                    // is read through it.
                    if tail.load(Ordering::Relaxed) == position {
                        return Err(SendError::Corrupted(Corruption::new(
                            "impossible stamp at the tail",
                            seen,
                        )));
                    }
                }
            }
        }
        Err(SendError::Corrupted(Corruption::new(
            "tail and stamps kept changing",
            MAX_ATTEMPTS as u64,
        )))
    }

    /// The grant of the slot at `position`, counted until it drops.
    #[inline]
    fn grant(&mut self, position: u64, len: usize) -> Grant<'_> {
        self.lent = self.lent.wrapping_add(1);
        Grant {
            producer: self,
            position,
            len,
            done: false,
        }
    }

    /// Publishes the message written in `position`'s slot.
    #[inline]
    fn publish(&mut self, position: u64, len: usize) -> Result<(), SendError> {
        let ring = self.ring;
        // Relaxed: published by the Release CAS of the stamp below.
        ring.length(position).store(len as u64, Ordering::Relaxed);
        let lap = ring.lap(position);
        let mine = Stamp::new(lap, State::Writing, self.holder).word();
        let full = Stamp::new(lap, State::Full, 0).word();
        // Release: pairs with the Acquire load of the stamp in
        // `Consumer::claim`: length and payload are written before a
        // consumer can see the slot full. A CAS: if the stamp is no longer
        // ours, we were taken for dead (our lock fd was closed) or a peer
        // scribbled over it, and the message must not be published.
        ring.stamp(position)
            .compare_exchange(mine, full, Ordering::Release, Ordering::Relaxed)
            .map_err(|found| {
                SendError::Corrupted(Corruption::new(
                    "the slot was taken from this producer before it published",
                    found,
                ))
            })?;
        ring.control().data.notify();
        Ok(())
    }

    /// Gives up a claimed slot: consumers step over it.
    fn abandon(&mut self, position: u64) {
        let ring = self.ring;
        let lap = ring.lap(position);
        let mine = Stamp::new(lap, State::Writing, self.holder).word();
        let abandoned = Stamp::new(lap, State::Abandoned, 0).word();
        // Release: pairs with the consumers' Acquire load of the stamp; what
        // they read of the slot (nothing) is the protocol's uniform rule.
        let _ = ring.stamp(position).compare_exchange(
            mine,
            abandoned,
            Ordering::Release,
            Ordering::Relaxed,
        );
        // A consumer waiting on this slot may step over it now.
        ring.control().data.notify();
    }

    /// The process holding this handle dies: no destructor runs; only the
    /// kernel drops its liveness lock. For tests and loom models.
    #[cfg(test)]
    pub(crate) fn die(self) {
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped or used again, so the member is
        // moved out exactly once; the rest leaks as a dead process's would.
        let member = unsafe { core::ptr::read(&this.member) };
        member.hold.die();
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        // A copy in a child made by `fork` is not the participant.
        if self.member.hold.in_this_process() {
            self.ring.leave(&self.member, self.lent != 0);
        }
    }
}

impl fmt::Debug for Producer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("mpmc::Producer")
            .field("capacity", &self.ring.capacity)
            .field("max_message", &self.ring.max_message)
            .field("participant", &self.member.token.index())
            .finish_non_exhaustive()
    }
}

/// A claimed slot, written in place through `Deref<Target = [u8]>`.
///
/// [`commit`](Grant::commit) publishes it; dropping it abandons the slot.
/// Like the SPSC grant, the view trusts the other participants to follow
/// the protocol.
#[must_use = "dropping a grant abandons the message; call `commit`"]
pub struct Grant<'a> {
    producer: &'a mut Producer,
    position: u64,
    len: usize,
    done: bool,
}

impl Grant<'_> {
    /// Publishes the message. Fails only if the slot was taken from this
    /// producer (see [`SendError::Corrupted`]).
    pub fn commit(mut self) -> Result<(), SendError> {
        self.done = true;
        self.producer.publish(self.position, self.len)
    }
}

impl Deref for Grant<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        let ring = self.producer.ring;
        // SAFETY: the payload of the slot this grant claimed, `len <=
        // max_message` bytes inside the slot area; no correct participant
        // touches it until it is published.
        unsafe { core::slice::from_raw_parts(ring.slots.at(ring.payload(self.position)), self.len) }
    }
}

impl DerefMut for Grant<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        let ring = self.producer.ring;
        // SAFETY: as in `deref`; `&mut self` makes this the only view.
        unsafe {
            core::slice::from_raw_parts_mut(ring.slots.at(ring.payload(self.position)), self.len)
        }
    }
}

impl Drop for Grant<'_> {
    fn drop(&mut self) {
        self.producer.lent = self.producer.lent.wrapping_sub(1);
        if !self.done {
            self.producer.abandon(self.position);
        }
    }
}

impl fmt::Debug for Grant<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("mpmc::Grant")
            .field("len", &self.len)
            .finish()
    }
}

impl Consumer {
    /// Registers a consumer of `ring`.
    pub(crate) fn attach_ring(
        ring: Ring,
        owner: Arc<dyn Send + Sync>,
        identity: Identity,
    ) -> Result<Consumer, AttachError> {
        let member = ring
            .join(Role::Consumer, identity)
            .map_err(AttachError::Register)?;
        let holder = holder_of(&member).inspect_err(|_| ring.members.table.free(&member))?;
        Ok(Consumer {
            ring,
            member,
            holder,
            stall: Stall::default(),
            lent: 0,
            producers: Presence::default(),
            strategy: WaitStrategy::default(),
            owner,
        })
    }

    /// Another consumer of the same queue, a participant of its own.
    #[cfg_attr(ipc_core_loom, allow(dead_code))]
    pub(crate) fn clone_with(&self, identity: Identity) -> Result<Consumer, AttachError> {
        Consumer::attach_ring(self.ring, self.owner.clone(), identity)
    }

    /// Messages queued, a snapshot (for the channel's `len`).
    #[cfg(not(ipc_core_loom))]
    pub(crate) fn queued(&self) -> usize {
        self.ring.queued()
    }

    /// How this handle waits (for the channel's `try_clone`).
    #[cfg(not(ipc_core_loom))]
    pub(crate) fn strategy(&self) -> WaitStrategy {
        self.strategy
    }

    /// Whether every producer is gone, read afresh (for `is_disconnected`).
    #[cfg(not(ipc_core_loom))]
    pub(crate) fn peers_gone_now(&self) -> bool {
        let lifecycle = &self.ring.control().lifecycle;
        lifecycle.peers_gone_now(&self.ring.members, Role::Producer)
    }

    /// Largest message this queue carries, in bytes.
    pub fn max_message(&self) -> usize {
        self.ring.max_message as usize
    }

    /// Slots in the queue.
    pub fn capacity(&self) -> usize {
        self.ring.capacity as usize
    }

    /// What recovery from dead participants has done to this queue so far.
    pub fn counters(&self) -> Counters {
        self.ring.counters()
    }

    /// The next message, read in place; its slot is freed when the guard
    /// drops.
    #[inline]
    pub fn try_recv(&mut self) -> Result<ReadGuard<'_>, RecvError> {
        let (position, len) = self.claim(usize::MAX)?;
        Ok(self.guard(position, len))
    }

    /// The next message, read in place, waiting for it as the handle's
    /// [`WaitStrategy`] says; `Disconnected` once every producer is gone and
    /// everything sent has been received.
    pub fn recv(&mut self) -> Result<ReadGuard<'_>, RecvError> {
        let (position, len) = self.claim_until(usize::MAX, None)?;
        Ok(self.guard(position, len))
    }

    /// [`recv`](Self::recv), giving up with [`RecvError::Timeout`] after
    /// `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<ReadGuard<'_>, RecvError> {
        self.recv_deadline(deadline_after(timeout))
    }

    /// [`recv`](Self::recv), giving up with [`RecvError::Timeout`] at
    /// `deadline`.
    pub fn recv_deadline(&mut self, deadline: Instant) -> Result<ReadGuard<'_>, RecvError> {
        let (position, len) = self.claim_until(usize::MAX, Some(deadline))?;
        Ok(self.guard(position, len))
    }

    /// Copies the next message into `buf`, waiting for it as
    /// [`recv`](Self::recv) does; see [`try_recv_into`](Self::try_recv_into).
    pub fn recv_into(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
        let (position, len) = self.claim_until(buf.len(), None)?;
        Ok(self.copy_out(position, len, buf))
    }

    /// [`recv_into`](Self::recv_into), giving up at `deadline`.
    pub fn recv_into_deadline(
        &mut self,
        buf: &mut [u8],
        deadline: Instant,
    ) -> Result<usize, RecvError> {
        let (position, len) = self.claim_until(buf.len(), Some(deadline))?;
        Ok(self.copy_out(position, len, buf))
    }

    /// How this handle waits in its blocking calls (default
    /// [`WaitStrategy::default`]).
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.strategy = strategy;
    }

    /// What a consumer that found the queue empty waits for.
    fn data_ready(&self) -> DataReady {
        DataReady {
            ring: self.ring,
            me: self.member.token.index(),
            seen: self.producers.seen(),
        }
    }

    /// Sleeping for a message away from this handle (an async receive's
    /// waiting).
    #[cfg(all(feature = "tokio", not(ipc_core_loom)))]
    pub(crate) fn sleeper(&self) -> crate::wait::Sleeper {
        crate::wait::Sleeper::new(self.data_ready(), self.owner.clone())
    }

    /// Reaps dead producers: a waiting call's liveness tick.
    #[cfg(all(feature = "tokio", not(ipc_core_loom)))]
    pub(crate) fn reap_dead_peers(&self) {
        self.ring.reap_dead(Role::Producer);
    }

    /// [`try_recv`](Self::try_recv) in two steps, for a caller that loops
    /// on an empty queue and must hold no borrow meanwhile (an async
    /// receive): the claimed slot, then its guard.
    #[cfg(all(feature = "tokio", not(ipc_core_loom)))]
    pub(crate) fn try_claim(&mut self) -> Result<Claim, RecvError> {
        let (position, len) = self.claim(usize::MAX)?;
        Ok(Claim { position, len })
    }

    /// The guard of the slot [`try_claim`](Self::try_claim) just claimed.
    #[cfg(all(feature = "tokio", not(ipc_core_loom)))]
    pub(crate) fn guard_of(&mut self, claim: Claim) -> ReadGuard<'_> {
        self.guard(claim.position, claim.len)
    }

    /// Claims the slot at the head, waiting for a message (or the deadline,
    /// or the producers' leaving) as the strategy says.
    fn claim_until(
        &mut self,
        room: usize,
        deadline: Option<Instant>,
    ) -> Result<(u64, usize), RecvError> {
        let mut wait = Wait::new(self.strategy, deadline);
        loop {
            match self.claim(room) {
                Err(RecvError::Empty) => {}
                other => return other,
            }
            match wait.pause(&self.data_ready()) {
                Paused::Again => {}
                Paused::Tick => self.ring.reap_dead(Role::Producer),
                Paused::TimedOut => return Err(RecvError::Timeout),
            }
        }
    }

    /// Copies the next message into `buf` and frees its slot; returns its
    /// length. A message longer than `buf` stays in the queue
    /// ([`RecvError::BufferTooSmall`]). Does not wait: `Empty` when there
    /// is none. Like [`crate::spsc::Consumer::try_recv_into`], the copy
    /// trusts nothing and what lands in `buf` cannot change after this
    /// returns.
    #[inline]
    pub fn try_recv_into(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
        let (position, len) = self.claim(buf.len())?;
        Ok(self.copy_out(position, len, buf))
    }

    /// Copies a claimed slot's message out and frees the slot.
    #[inline]
    fn copy_out(&mut self, position: u64, len: usize, buf: &mut [u8]) -> usize {
        // SAFETY: the payload of the slot we claimed, `len <= max_message`
        // bytes rounded up to a word, inside the slot area.
        unsafe {
            self.ring
                .slots
                .copy_out(self.ring.payload(position), &mut buf[..len])
        };
        self.release(position);
        len
    }

    /// Claims the slot at the head for reading: its position and length. A
    /// message longer than `room` is left in place (`BufferTooSmall`).
    #[inline]
    fn claim(&mut self, room: usize) -> Result<(u64, usize), RecvError> {
        let ring = self.ring;
        let head = &ring.control().head.0;
        let mut contention = Contention::default();
        for _ in 0..MAX_ATTEMPTS {
            // Acquire: pairs with the AcqRel CAS in `Ring::advance`.
            let position = head.load(Ordering::Acquire);
            let lap = ring.lap(position);
            let word = ring.stamp(position);
            // Acquire: pairs with the Release CAS to FULL in
            // `Producer::publish`: length and payload are visible.
            let seen = word.load(Ordering::Acquire);
            match Stamp::decode(seen) {
                Some(Stamp {
                    lap: l,
                    state: State::Full,
                    ..
                }) if l == lap => {
                    // Relaxed: published by the stamp we acquired.
                    let len = ring.length(position).load(Ordering::Relaxed);
                    if len > room as u64 && len <= ring.max_message {
                        return Err(RecvError::BufferTooSmall {
                            needed: len as usize,
                        });
                    }
                    let mine = Stamp::new(lap, State::Reading, self.holder).word();
                    // Relaxed: the load above acquired the very value this
                    // compares (laps make it unique), and whoever moves
                    // `head` past this slot has seen the claim with an
                    // Acquire load (see the producer's claim).
                    if word
                        .compare_exchange(seen, mine, Ordering::Relaxed, Ordering::Relaxed)
                        .is_err()
                    {
                        contention.spin();
                        continue;
                    }
                    Ring::advance(head, position);
                    self.stall.clear();
                    // Relaxed: as above; reread now the slot is ours, since
                    // a hostile writer could have changed it in between.
                    let len = ring.length(position).load(Ordering::Relaxed);
                    if len > ring.max_message || len > room as u64 {
                        self.release(position);
                        return Err(RecvError::Corrupted(Corruption::new(
                            "message longer than the maximum",
                            len,
                        )));
                    }
                    ring.slots
                        .mark_read(ring.payload(position), ring.stride - SLOT_HEADER as usize);
                    return Ok((position, len as usize));
                }
                Some(Stamp {
                    lap: l,
                    state: State::Abandoned,
                    ..
                }) if l == lap => {
                    let next = Stamp::new(lap + 1, State::Empty, 0).word();
                    // AcqRel. Release: pairs with the producers' Acquire
                    // load of the stamp, as every freeing of a slot does;
                    // Acquire: for whoever moves `head` past it, as a claim.
                    if word
                        .compare_exchange(seen, next, Ordering::AcqRel, Ordering::Relaxed)
                        .is_ok()
                    {
                        Ring::advance(head, position);
                        ring.control().space.notify();
                    }
                }
                // Being read by another consumer, or consumed already: give
                // the claimer time to move the hint on, and move it on if it
                // has not.
                Some(Stamp {
                    lap: l,
                    state: State::Reading,
                    ..
                }) if l == lap => {
                    contention.spin();
                    // Relaxed: as in the producer's claim.
                    if head.load(Ordering::Relaxed) == position {
                        Ring::advance(head, position);
                    }
                }
                Some(Stamp { lap: l, .. }) if l == (lap + 1) & LAP_MASK => {
                    contention.spin();
                    // Relaxed: as above.
                    if head.load(Ordering::Relaxed) == position {
                        Ring::advance(head, position);
                    }
                }
                // Not written yet, being written, or still being read on the
                // previous lap by a slow consumer that the others have since
                // lapped: empty, unless the hint moved meanwhile.
                Some(s) if s.leaves_empty(lap) => {
                    // Relaxed: rereading the hint.
                    if head.load(Ordering::Relaxed) != position {
                        continue;
                    }
                    if s.holder != 0 && self.stall.stuck_on(&ring, seen, s.holder) {
                        continue; // a dead holder's slot was repaired
                    }
                    // Lost memory reads as zeroes: an empty queue, forever.
                    if ring.slots.is_poisoned() {
                        return Err(RecvError::Corrupted(Corruption::LOST));
                    }
                    // Asked in every empty case, not only for `Empty`: the
                    // wait condition compares the epoch this records
                    // (`DataReady::seen`), and one never recorded reads as
                    // moved, which made a parked consumer spin. (Gone
                    // producers write no slot: any empty case is the end.)
                    if self.producers.peers_gone(
                        &ring.control().lifecycle,
                        &ring.members,
                        Role::Producer,
                    ) {
                        // Producers publish before they leave, and leaving
                        // is acquired by `peers_gone`: look once more.
                        // Acquire: as the stamp load above.
                        if word.load(Ordering::Acquire) == seen {
                            return Err(RecvError::Disconnected);
                        }
                        continue;
                    }
                    return Err(RecvError::Empty);
                }
                _ => {
                    // Relaxed: as for `tail` in `Producer::claim`.
                    if head.load(Ordering::Relaxed) == position {
                        return Err(RecvError::Corrupted(Corruption::new(
                            "impossible stamp at the head",
                            seen,
                        )));
                    }
                }
            }
        }
        Err(RecvError::Corrupted(Corruption::new(
            "head and stamps kept changing",
            MAX_ATTEMPTS as u64,
        )))
    }

    /// The guard of the slot at `position`, counted until it drops.
    #[inline]
    fn guard(&mut self, position: u64, len: usize) -> ReadGuard<'_> {
        self.lent = self.lent.wrapping_add(1);
        ReadGuard {
            consumer: self,
            position,
            len,
        }
    }

    /// Frees a slot we read, for the next lap's producer.
    #[inline]
    fn release(&mut self, position: u64) {
        let ring = self.ring;
        let lap = ring.lap(position);
        let mine = Stamp::new(lap, State::Reading, self.holder).word();
        let free = Stamp::new(lap + 1, State::Empty, 0).word();
        // Release: pairs with the Acquire of the producer's claim CAS in
        // `Producer::claim`: our reads are done before the slot is reused.
        // A CAS: a slot taken from us (we were taken for dead) stays taken.
        let _ =
            ring.stamp(position)
                .compare_exchange(mine, free, Ordering::Release, Ordering::Relaxed);
        ring.control().space.notify();
    }

    /// The process holding this handle dies; see [`Producer::die`].
    #[cfg(test)]
    pub(crate) fn die(self) {
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: as in `Producer::die`.
        let member = unsafe { core::ptr::read(&this.member) };
        member.hold.die();
    }

    /// The process dies asleep in a receive: counted as a sleeper on the
    /// data signal, never to uncount itself. For loom models.
    #[cfg(all(test, ipc_core_loom))]
    pub(crate) fn die_asleep(self) {
        let ready = self.data_ready();
        ready.signal().announce(ready.mark());
        self.die();
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        // A copy in a child made by `fork` is not the participant.
        if self.member.hold.in_this_process() {
            self.ring.leave(&self.member, self.lent != 0);
        }
    }
}

impl fmt::Debug for Consumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("mpmc::Consumer")
            .field("capacity", &self.ring.capacity)
            .field("max_message", &self.ring.max_message)
            .field("participant", &self.member.token.index())
            .finish_non_exhaustive()
    }
}

/// What a producer that found the queue full waits for: the slot at the
/// tail freed, or a membership change.
#[derive(Clone, Copy)]
struct SpaceReady {
    ring: Ring,
    /// The waiter's participant slot, for its sleeping mark.
    me: usize,
    seen: u64,
}

impl Condition for SpaceReady {
    fn signal(&self) -> &Signal {
        &self.ring.control().space
    }

    fn mark(&self) -> Option<Mark<'_>> {
        let word = self.ring.members.table.sleeping(self.me)?;
        Some(Mark::new(word, Lane::Space))
    }

    /// Exactly when `Producer::claim` would not report `Full` (it claims,
    /// steps past a claimed slot, or reports corruption or lost memory):
    /// a condition looser than the claim would make a parked producer spin,
    /// a stricter one would sleep through progress until the next tick.
    fn ready(&self) -> bool {
        let (ring, control) = (&self.ring, self.ring.control());
        // Relaxed: only whether to look again; `claim` acquires.
        let tail = control.tail.0.load(Ordering::Relaxed);
        let full = Stamp::decode(ring.stamp(tail).load(Ordering::Relaxed))
            .is_some_and(|s| s.leaves_full(ring.lap(tail)));
        !full || ring.slots.is_poisoned() || control.lifecycle.moved_from(self.seen)
    }
}

/// What a consumer that found the queue empty waits for: the slot at the
/// head has something to take (or the head moved on), or a membership
/// change. A slot still being written is waited for: its producer notifies
/// when it publishes.
#[derive(Clone, Copy)]
struct DataReady {
    ring: Ring,
    /// The waiter's participant slot, for its sleeping mark.
    me: usize,
    seen: u64,
}

impl Condition for DataReady {
    fn signal(&self) -> &Signal {
        &self.ring.control().data
    }

    fn mark(&self) -> Option<Mark<'_>> {
        let word = self.ring.members.table.sleeping(self.me)?;
        Some(Mark::new(word, Lane::Data))
    }

    /// Exactly when `Consumer::claim` would not report `Empty` (see
    /// `SpaceReady::ready`). A slot a lapped consumer still reads is empty
    /// to both: calling it ready made a parked consumer waiting behind a
    /// held `ReadGuard` spin through the sleeper's barrier (issue 13).
    fn ready(&self) -> bool {
        let (ring, control) = (&self.ring, self.ring.control());
        // Relaxed: only whether to look again; `claim` acquires.
        let head = control.head.0.load(Ordering::Relaxed);
        let empty = Stamp::decode(ring.stamp(head).load(Ordering::Relaxed))
            .is_some_and(|s| s.leaves_empty(ring.lap(head)));
        !empty || ring.slots.is_poisoned() || control.lifecycle.moved_from(self.seen)
    }
}

/// A slot [`Consumer::try_claim`] claimed, for [`Consumer::guard_of`].
#[cfg(all(feature = "tokio", not(ipc_core_loom)))]
pub(crate) struct Claim {
    position: u64,
    len: usize,
}

/// A message read in place; its slot is freed when the guard drops. The
/// `&[u8]` trusts the producers to follow the protocol, as the SPSC
/// [`ReadGuard`](crate::spsc::ReadGuard) does; [`Consumer::recv_into`]
/// trusts nothing.
#[must_use = "the message is released as soon as the guard is dropped"]
pub struct ReadGuard<'a> {
    consumer: &'a mut Consumer,
    position: u64,
    len: usize,
}

impl Deref for ReadGuard<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        let ring = self.consumer.ring;
        // SAFETY: the payload of the slot this guard claimed, `len <=
        // max_message` bytes inside the slot area, which no correct
        // participant writes until we free it.
        unsafe { core::slice::from_raw_parts(ring.slots.at(ring.payload(self.position)), self.len) }
    }
}

impl Drop for ReadGuard<'_> {
    fn drop(&mut self) {
        self.consumer.lent = self.consumer.lent.wrapping_sub(1);
        self.consumer.release(self.position);
    }
}

impl fmt::Debug for ReadGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("mpmc::ReadGuard")
            .field("len", &self.len)
            .finish()
    }
}
