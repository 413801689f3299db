//! A lock-free single-producer single-consumer ring of variable-length byte
//! messages, in a region or (under loom) on the heap.
//!
//! # Layout
//! The region's data area holds a control block of eight 128-byte lines
//! (`tail`, `head`, producer claim, consumer claim, the two wait signals,
//! the lifecycle word and a reserved line: [`CONTROL_SIZE`] bytes, laid out
//! in `layout/spsc.rs`) and then `capacity` bytes of records. A record is an
//! 8-byte header (`marker << 32 | len`) followed by the payload padded to 8
//! bytes. A message that would cross the end of the buffer is preceded by a
//! padding record that runs to the end, so no message is ever split. Because
//! a message's record is at most half the capacity, a padded message always
//! fits once the ring drains.
//!
//! # Protocol
//! Positions are byte counts that only grow; the offset of a position is
//! `position & (capacity - 1)`. A record's header is its commit word, and a
//! header of 0 means "nothing here yet". The producer writes a record's
//! payload, stores 0 into the header word right after the record (so the end
//! of the published records always reads 0), and then stores the header with
//! Release. The consumer loads the header at its position with Acquire: 0 is
//! empty, anything else is a record it validates and reads. It then releases
//! the space by storing its position into `head` with Release, which the
//! producer loads with Acquire, only when the ring looks full, before reusing
//! the space. So when the consumer keeps up, each message costs the two sides
//! one shared cache line (the record's) and no other shared word; a batch
//! withholds its first header and publishes everything with one store.
//!
//! `tail` is not on that path: a producer stores its end position there when
//! it detaches, and the next producer starts from it, following committed
//! headers from `max(head, tail)` to the first 0, which also finds the end
//! left by a producer that died.
//!
//! Nothing read from shared memory is trusted: positions and record headers
//! are checked against the capacity and message limit this process validated
//! at attach, and a bad one is reported as [`Corruption`].
//!
//! # Example
//! ```
//! use std::sync::Arc;
//! use ipc_core::{spsc, RegionOptions};
//!
//! let region = RegionOptions::new()
//!     .layout(spsc::layout(4096, 256)?)
//!     .create_anonymous()?;
//! let (mut producer, mut consumer) = spsc::channel(Arc::new(region))?;
//!
//! producer.try_send(b"hello")?;
//! let mut grant = producer.try_reserve(5)?; // zero-copy: write in place
//! grant.copy_from_slice(b"world");
//! grant.commit();
//!
//! assert_eq!(&*consumer.try_recv()?, b"hello");
//! let mut buf = [0u8; 256];
//! let n = consumer.recv_into(&mut buf)?;
//! assert_eq!(&buf[..n], b"world");
//! assert!(matches!(consumer.try_recv(), Err(spsc::RecvError::Empty)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::layout::spsc::HEADER;
pub use crate::layout::spsc::{
    check_geometry, max_message_for, record_size, CONTROL_SIZE, MAX_CAPACITY, MIN_CAPACITY,
};
use crate::participants::{Identity, Member, Members, Reaping, RegisterError, Role, Token};
pub use crate::ring::{Corruption, RecvError, SendError};
use crate::ring::{Lifecycle, Line, Presence};
use crate::sync::{AtomicU64, Bytes, Ordering, WORD};
use crate::wait::{deadline_after, Condition, Lane, Mark, Paused, Signal, Wait, WaitStrategy};

#[cfg(not(ipc_core_loom))]
mod attach;
#[cfg(not(ipc_core_loom))]
pub use attach::{channel, layout, layout_for, PARTICIPANTS};

#[cfg(all(test, ipc_core_loom))]
mod loom_models;
#[cfg(all(test, not(ipc_core_loom)))]
mod tests;

const MSG_MARKER: u64 = u32::from_le_bytes(*b"MSG!") as u64;
const PAD_MARKER: u64 = u32::from_le_bytes(*b"PAD!") as u64;

/// The ring's shared control block, right after the region header.
#[repr(C)]
pub(crate) struct Control {
    /// Producer-written when it detaches: where its records ended. Read by
    /// the next producer as a hint; never on the message path.
    tail: Line,
    /// Consumer-written: end of the released records. Producer reads it.
    head: Line,
    /// Producer claim: the participant token of the attached producer, 0
    /// when free.
    producer: Line,
    /// Consumer claim, likewise.
    consumer: Line,
    /// The consumer sleeps on it; the producer notifies it after publishing.
    data: Signal,
    /// The producer sleeps on it; the consumer notifies it after releasing.
    space: Signal,
    /// Who is attached, and who has been.
    lifecycle: Lifecycle,
    reserved: Line,
}

// The layout's geometry, which other processes rely on (loom's atomics are
// larger, so not under loom).
#[cfg(not(ipc_core_loom))]
const _: () = {
    use crate::layout::spsc::control;
    use core::mem::offset_of;
    assert!(core::mem::size_of::<Control>() as u64 == CONTROL_SIZE);
    assert!(offset_of!(Control, tail) == 0);
    assert!(offset_of!(Control, head) == control::HEAD);
    assert!(offset_of!(Control, producer) == control::PRODUCER);
    assert!(offset_of!(Control, consumer) == control::CONSUMER);
    assert!(offset_of!(Control, data) == control::DATA);
    assert!(offset_of!(Control, space) == control::SPACE);
    assert!(offset_of!(Control, lifecycle) == control::LIFECYCLE);
};

impl Control {
    #[cfg(ipc_core_loom)]
    /// A control block for a loom model; `sleepers_modelled` when the
    /// model parks on its signals.
    pub(crate) fn new(sleepers_modelled: bool) -> Self {
        Control {
            tail: Line::new(),
            head: Line::new(),
            producer: Line::new(),
            consumer: Line::new(),
            data: Signal::new(sleepers_modelled),
            space: Signal::new(sleepers_modelled),
            lifecycle: Lifecycle::new(),
            reserved: Line::new(),
        }
    }

    /// The claim word of `role`.
    fn claim_of(&self, role: Role) -> &AtomicU64 {
        match role {
            Role::Producer => &self.producer.0,
            Role::Consumer => &self.consumer.0,
        }
    }
}

/// How many times a claim retries when the claim word keeps changing under
/// it, before it reports the role as held: a peer flipping the word cannot
/// keep an attach spinning.
const CLAIM_ATTEMPTS: u32 = 64;

/// Most records a new producer follows from the last saved end to find
/// where the records stop (about 16 M, tens of milliseconds): a corrupted
/// ring of countless empty records cannot stall an attach. A ring with
/// more unread records than this after its producer died can be attached
/// once its consumer has read some. (Small in unit tests, to test it.)
const MAX_RECORDS_TO_FIND_END: u64 = if cfg!(test) { 1 << 10 } else { 1 << 24 };

/// The ring as one side sees it: where the memory is, and the geometry this
/// process validated. Nothing here is re-read from shared memory.
#[derive(Clone, Copy)]
pub(crate) struct Ring {
    control: NonNull<Control>,
    buf: Bytes,
    members: Members,
    capacity: u64,
    max_message: u64,
}

// SAFETY: a `Ring` is only addresses and numbers; the memory it points to
// is shared between threads and processes by design and accessed through
// atomics and the ring protocol. Handles keep that memory alive.
unsafe impl Send for Ring {}

impl Ring {
    /// # Safety
    /// `control` points to a `Control` that, like `buf` and the members'
    /// table, stays valid while the ring is used; `buf.len()` is a valid
    /// capacity and `max_message` passes [`check_geometry`] with it.
    pub(crate) unsafe fn new(
        control: NonNull<Control>,
        buf: Bytes,
        members: Members,
        max_message: u64,
    ) -> Ring {
        debug_assert!(check_geometry(buf.len() as u64, max_message).is_ok());
        Ring {
            control,
            buf,
            members,
            capacity: buf.len() as u64,
            max_message,
        }
    }

    fn control(&self) -> &Control {
        // SAFETY: `Ring::new`'s contract keeps the control block valid, and it
        // holds only atomics, which other processes may write concurrently.
        unsafe { self.control.as_ref() }
    }

    #[inline(always)]
    fn offset(&self, position: u64) -> usize {
        (position & (self.capacity - 1)) as usize
    }

    /// Registers as a participant of `role`, claims the role with its
    /// token, then runs `setup`; on any failure the claim and the
    /// registration are given back. Every change to the table bumps the
    /// lifecycle epoch, so peers notice.
    fn join_then<T>(
        &self,
        role: Role,
        identity: Identity,
        setup: impl FnOnce() -> Result<T, Corruption>,
    ) -> Result<(Member, T), AttachError> {
        let control = self.control();
        let word = control.claim_of(role);
        let joined = self
            .members
            .join(role, identity, |reaping| self.recover(reaping));
        control.lifecycle.changed(None);
        let member = joined.map_err(AttachError::Register)?;
        if let Err(holder) = self.claim(word, member.token, |t| self.members.is_alive(t)) {
            self.members.table.leave(member);
            control.lifecycle.changed(None);
            return Err(AttachError::Held(holder));
        }
        match setup() {
            Ok(value) => {
                control.lifecycle.changed(Some(role));
                Ok((member, value))
            }
            Err(corruption) => {
                Ring::release(word, member.token);
                self.members.table.leave(member);
                control.lifecycle.changed(None);
                Err(AttachError::Corrupted(corruption))
            }
        }
    }

    /// What a dead participant held: its role's claim, if the claim still
    /// names it, and its threads' counts in the signals' sleepers.
    fn recover(&self, reaping: &Reaping) {
        let control = self.control();
        if let Some(role) = reaping.role {
            Ring::release(control.claim_of(role), reaping.token());
        }
        if let Some(marks) = self.members.table.sleeping(reaping.index) {
            crate::wait::uncount_dead_sleepers(marks, &control.data, &control.space);
        }
    }

    /// Reaps every dead participant of `role` (releasing its claim); a lock
    /// probe per entry of that role, for a blocked call's liveness ticks.
    fn reap_dead(&self, role: Role) {
        let reaped = self
            .members
            .table
            .reap_dead(role, &self.members.liveness, |reaping| {
                self.recover(reaping)
            });
        if reaped > 0 {
            self.control().lifecycle.changed(None);
        }
    }

    /// Takes `word` for `token`, or says which token holds it. A holder that
    /// is no longer alive (`is_alive`) loses its claim, and its entry is
    /// reaped. Gives up (reporting the last holder seen) after
    /// [`CLAIM_ATTEMPTS`] tries against a word that keeps changing.
    fn claim(
        &self,
        word: &AtomicU64,
        token: Token,
        is_alive: impl Fn(Token) -> bool,
    ) -> Result<(), Token> {
        let mut expected = 0;
        for _ in 0..CLAIM_ATTEMPTS {
            // AcqRel on success. Acquire: pairs with the Release in
            // `release` (or, for a dead holder, with the Release stores it
            // made while alive), so the previous holder's last position
            // store is visible to us. Release: pairs with the Acquire of a
            // rival's failed CAS below, so a rival that finds our token also
            // finds our registration, and does not judge us dead from a
            // stale table entry (loom's `one_producer_claim_wins` fails
            // without it). Acquire on failure: that rival's side.
            match word.compare_exchange(expected, token.0, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    // The dead holder's claim is ours now; its entry goes
                    // (`recover` finds the claim taken, and uncounts its
                    // sleepers).
                    if expected != 0
                        && self
                            .members
                            .reap(Token(expected), |reaping| self.recover(reaping))
                    {
                        self.control().lifecycle.changed(None);
                    }
                    return Ok(());
                }
                Err(0) => expected = 0,
                Err(holder) if holder != token.0 && !is_alive(Token(holder)) => expected = holder,
                Err(holder) => return Err(Token(holder)),
            }
        }
        // Relaxed: the holder is only named in the error.
        Err(Token(word.load(Ordering::Relaxed)))
    }

    /// Checks a `head` read at attach: 8-aligned, and far from overflowing.
    fn check_head(head: u64) -> Result<u64, Corruption> {
        if head % HEADER != 0 || head > u64::MAX / 2 {
            return Err(Corruption::new("impossible head", head));
        }
        Ok(head)
    }

    fn release(word: &AtomicU64, token: Token) {
        // Release: pairs with the Acquire in `claim` of the next holder.
        // A CAS, not a store: a claim taken over from us stays taken.
        let _ = word.compare_exchange(token.0, 0, Ordering::Release, Ordering::Relaxed);
    }

    /// Gives up `member`'s claim of `role` and leaves the table when a
    /// handle drops (unless it is a copy in a child made by `fork`), and
    /// wakes the other side so it notices.
    fn leave(&self, role: Role, member: &Member) {
        let control = self.control();
        Ring::release(control.claim_of(role), member.token);
        self.members.table.free(member);
        control.lifecycle.changed(None);
        match role {
            Role::Producer => control.data.notify(),
            Role::Consumer => control.space.notify(),
        }
    }

    /// Whether a record (or padding) is committed at `position`: only
    /// whether to look again, so a Relaxed load.
    fn has_record_at(&self, position: u64) -> bool {
        // Relaxed: see above; `Consumer::next` acquires.
        // SAFETY: a masked, 8-aligned position is a word inside the buffer.
        unsafe { self.buf.word(self.offset(position)) }.load(Ordering::Relaxed) != 0
    }

    /// Whether `word`, found at buffer `offset`, is the padding record that
    /// runs from there to the end of the buffer.
    #[inline]
    fn is_padding(&self, offset: usize, word: u64) -> bool {
        word >> 32 == PAD_MARKER && word & 0xffff_ffff == self.capacity - offset as u64 - HEADER
    }

    /// Checks that `head..tail` can be the ring's contents.
    fn check_positions(&self, head: u64, tail: u64) -> Result<(), Corruption> {
        if head > tail || tail - head > self.capacity {
            return Err(Corruption::new(
                "positions farther apart than the capacity",
                tail.wrapping_sub(head),
            ));
        }
        if head % HEADER != 0 || tail % HEADER != 0 {
            return Err(Corruption::new("misaligned position", head | tail));
        }
        Ok(())
    }
}

/// The producing half: the only writer of records.
///
/// `Send` but not `Sync`: one thread at a time, `&mut self` throughout. Do
/// not use a handle in a child after `fork`; attach there instead.
///
/// ```compile_fail
/// fn shared_between_threads<T: Sync>() {}
/// shared_between_threads::<ipc_core::spsc::Producer>();
/// ```
pub struct Producer {
    ring: Ring,
    /// End of the records written here, published or withheld by a batch.
    /// The header word at this position is 0.
    tail: u64,
    /// The consumer's `head` when last read; may be stale (only ever low).
    cached_head: u64,
    /// The commit word an open batch withholds: buffer offset and value.
    withheld: Option<(usize, u64)>,
    member: Member,
    /// Whether the consumer is gone, as of the lifecycle epoch last seen.
    consumers: Presence,
    strategy: WaitStrategy,
    _owner: Arc<dyn Send + Sync>,
}

// SAFETY: the handle owns its role (the claim) and keeps the memory alive
// through `_owner`; nothing in it is tied to the creating thread.
unsafe impl Send for Producer {}

/// Where a reservation's record goes.
#[derive(Clone, Copy)]
struct Reservation {
    /// Offset of the record header in the buffer.
    start: usize,
    /// Bytes of padding record before it, at the old offset (0 for none).
    pad: u64,
    /// Bytes of the record.
    record: u64,
    /// Payload length.
    len: usize,
}

impl Producer {
    /// Claims the producer role of `ring` and finds where the records end.
    pub(crate) fn attach_ring(
        ring: Ring,
        owner: Arc<dyn Send + Sync>,
        identity: Identity,
    ) -> Result<Producer, AttachError> {
        let (member, (head, tail)) =
            ring.join_then(Role::Producer, identity, || Self::find_end(ring))?;
        Ok(Producer {
            ring,
            tail,
            cached_head: head,
            withheld: None,
            member,
            consumers: Presence::default(),
            strategy: WaitStrategy::default(),
            _owner: owner,
        })
    }

    /// The consumer's `head` and the end of the committed records: from the
    /// last producer's `tail` (or `head`, if the consumer is past it), along
    /// committed headers to the first 0.
    fn find_end(ring: Ring) -> Result<(u64, u64), Corruption> {
        let control = ring.control();
        // Acquire: pairs with the Release store of `head` in `Consumer::release`.
        let head = Ring::check_head(control.head.0.load(Ordering::Acquire))?;
        // Relaxed: the claim's Acquire ordered the last producer's store.
        let hint = control.tail.0.load(Ordering::Relaxed);
        let mut tail = head.max(hint);
        ring.check_positions(head, tail)?;
        for _ in 0..=MAX_RECORDS_TO_FIND_END {
            let offset = ring.offset(tail);
            // Acquire: pairs with the Release commit in `Producer::commit`
            // or `publish`, by whichever producer wrote the record.
            // SAFETY: `offset` is a masked, 8-aligned position (positions
            // are checked aligned), below the capacity.
            let word = unsafe { ring.buf.word(offset) }.load(Ordering::Acquire);
            if word == 0 {
                return Ok((head, tail));
            }
            let step = match word >> 32 {
                PAD_MARKER if offset != 0 && ring.is_padding(offset, word) => {
                    ring.capacity - offset as u64
                }
                MSG_MARKER if word & 0xffff_ffff <= ring.max_message => {
                    record_size(word & 0xffff_ffff)
                }
                _ => return Err(Corruption::new("bad record header", word)),
            };
            if offset as u64 + step > ring.capacity {
                return Err(Corruption::new(
                    "record crosses the end of the buffer",
                    word,
                ));
            }
            tail += step;
            ring.check_positions(head, tail)?;
        }
        Err(Corruption::new(
            "more records to follow than a new producer reads at attach",
            MAX_RECORDS_TO_FIND_END,
        ))
    }

    /// The process holding this handle dies: no destructor runs; only the
    /// kernel drops its liveness lock. For tests and loom models.
    #[cfg(test)]
    pub(crate) fn die(self) {
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped or used again, so the member is
        // moved out exactly once; the rest leaks, as a dead process's state
        // stays in shared memory.
        let member = unsafe { core::ptr::read(&this.member) };
        member.hold.die();
    }

    /// Largest message this ring accepts, in bytes.
    pub fn max_message(&self) -> usize {
        self.ring.max_message as usize
    }

    /// Capacity of the ring's buffer in bytes.
    pub fn capacity(&self) -> usize {
        self.ring.capacity as usize
    }

    /// Bytes between the consumer's `head` and our end, for reports:
    /// clamped to the capacity (`head` is a claim of shared memory).
    #[cfg(not(ipc_core_loom))]
    pub(crate) fn bytes_used(&self) -> usize {
        // Relaxed: a report; no space is reused on its strength.
        let head = self.ring.control().head.0.load(Ordering::Relaxed);
        self.tail.saturating_sub(head).min(self.ring.capacity) as usize
    }

    /// Whether the consumer is gone, read afresh (for `is_disconnected`).
    #[cfg(not(ipc_core_loom))]
    pub(crate) fn peers_gone_now(&self) -> bool {
        let lifecycle = &self.ring.control().lifecycle;
        lifecycle.peers_gone_now(&self.ring.members, Role::Consumer)
    }

    /// Copies `msg` into the ring and publishes it.
    ///
    /// The copy is made word by word with atomic stores, so it is sound
    /// whatever a peer does to the ring meanwhile (see the crate's threat
    /// model); a [`Grant`] is the zero-copy alternative.
    #[inline]
    pub fn try_send(&mut self, msg: &[u8]) -> Result<(), SendError> {
        let reservation = self.try_reserve_record(msg.len())?;
        self.write_payload(reservation, msg);
        self.commit(reservation, false);
        Ok(())
    }

    #[inline(always)]
    fn write_payload(&self, r: Reservation, msg: &[u8]) {
        debug_assert_eq!(r.len, msg.len());
        // SAFETY: the reservation's payload starts a word after its 8-aligned
        // header and its padded length fits the record, inside the buffer.
        unsafe { self.ring.buf.copy_in(r.start + WORD, msg) };
    }

    /// Reserves room for a `len`-byte message, to be written in place and
    /// made visible by [`Grant::commit`]. Dropping the grant publishes nothing.
    #[inline]
    pub fn try_reserve(&mut self, len: usize) -> Result<Grant<'_>, SendError> {
        let reservation = self.try_reserve_record(len)?;
        Ok(Grant {
            producer: self,
            reservation,
            defer: false,
        })
    }

    /// Copies `msg` into the ring and publishes it, waiting for room as the
    /// handle's [`WaitStrategy`] says. `Disconnected` (and nothing sent)
    /// once the consumer is gone.
    pub fn send(&mut self, msg: &[u8]) -> Result<(), SendError> {
        self.send_until(msg, None)
    }

    /// [`send`](Self::send), giving up with [`SendError::Timeout`] after
    /// `timeout`.
    pub fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), SendError> {
        self.send_until(msg, Some(deadline_after(timeout)))
    }

    /// [`send`](Self::send), giving up with [`SendError::Timeout`] at
    /// `deadline` (at once if it has passed and there is no room).
    pub fn send_deadline(&mut self, msg: &[u8], deadline: Instant) -> Result<(), SendError> {
        self.send_until(msg, Some(deadline))
    }

    /// Reserves room for a `len`-byte message as
    /// [`try_reserve`](Self::try_reserve) does, waiting for it as
    /// [`send`](Self::send) does.
    pub fn reserve(&mut self, len: usize) -> Result<Grant<'_>, SendError> {
        let reservation = self.reserve_until(len, None)?;
        Ok(Grant {
            producer: self,
            reservation,
            defer: false,
        })
    }

    /// [`reserve`](Self::reserve), giving up at `deadline`.
    pub fn reserve_deadline(
        &mut self,
        len: usize,
        deadline: Instant,
    ) -> Result<Grant<'_>, SendError> {
        let reservation = self.reserve_until(len, Some(deadline))?;
        Ok(Grant {
            producer: self,
            reservation,
            defer: false,
        })
    }

    /// How this handle waits in its blocking calls (default
    /// [`WaitStrategy::default`]).
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.strategy = strategy;
    }

    fn send_until(&mut self, msg: &[u8], deadline: Option<Instant>) -> Result<(), SendError> {
        let reservation = self.reserve_until(msg.len(), deadline)?;
        self.write_payload(reservation, msg);
        self.commit(reservation, false);
        Ok(())
    }

    /// Reserves room, waiting for it (or the deadline, or the consumer's
    /// leaving) as the strategy says.
    fn reserve_until(
        &mut self,
        len: usize,
        deadline: Option<Instant>,
    ) -> Result<Reservation, SendError> {
        let mut wait = Wait::new(self.strategy, deadline);
        loop {
            match self.try_reserve_record(len) {
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

    /// What a producer that found the ring full waits for.
    fn space_ready(&self) -> SpaceReady {
        SpaceReady {
            ring: self.ring,
            me: self.member.token.index(),
            head: self.cached_head,
            seen: self.consumers.seen(),
        }
    }

    /// Sleeping for room away from this handle (an async send's waiting).
    #[cfg(all(feature = "tokio", not(ipc_core_loom)))]
    pub(crate) fn sleeper(&self) -> crate::wait::Sleeper {
        crate::wait::Sleeper::new(self.space_ready(), self._owner.clone())
    }

    /// Reaps a dead consumer: a waiting call's liveness tick.
    #[cfg(all(feature = "tokio", not(ipc_core_loom)))]
    pub(crate) fn reap_dead_peers(&self) {
        self.ring.reap_dead(Role::Consumer);
    }

    /// Starts a batch: its commits become visible together, with one
    /// Release store, when the batch is dropped or [`Batch::publish`]ed.
    pub fn batch(&mut self) -> Batch<'_> {
        Batch { producer: self }
    }

    #[inline]
    fn try_reserve_record(&mut self, len: usize) -> Result<Reservation, SendError> {
        let ring = self.ring;
        if ring.buf.is_poisoned() {
            return Err(SendError::Corrupted(Corruption::LOST));
        }
        // `self.ring`, not the copy `ring`: borrowing the copy made the
        // compiler store all of it on the stack in every call, a few ns on
        // the round trip's critical path.
        if self.consumers.peers_gone(
            &self.ring.control().lifecycle,
            &self.ring.members,
            Role::Consumer,
        ) {
            // Whatever a batch withholds becomes visible, for a consumer
            // that attaches later.
            self.publish();
            return Err(SendError::Disconnected);
        }
        if len as u64 > ring.max_message {
            return Err(SendError::TooLarge {
                len,
                max: ring.max_message as usize,
            });
        }
        let record = record_size(len as u64);
        let offset = ring.offset(self.tail);
        let contiguous = ring.capacity - offset as u64;
        let pad = if record <= contiguous { 0 } else { contiguous };
        // The next record's header word must be free too: commit zeroes it.
        let need = pad + record + HEADER;
        if ring.capacity - (self.tail - self.cached_head) < need {
            self.refresh_head()?;
            if ring.capacity - (self.tail - self.cached_head) < need {
                // Whatever a batch withholds must become visible, or the
                // consumer could never make room.
                self.publish();
                return Err(SendError::Full);
            }
        }
        let start = if pad == 0 { offset } else { 0 };
        ring.buf.mark_written(start + WORD, record as usize - WORD);
        Ok(Reservation {
            start,
            pad,
            record,
            len,
        })
    }

    #[cold]
    fn refresh_head(&mut self) -> Result<(), SendError> {
        // Acquire: pairs with the Release store of `head` in
        // `Consumer::release`: the consumer's reads of the space we are
        // about to reuse happened before.
        let head = self.ring.control().head.0.load(Ordering::Acquire);
        self.ring
            .check_positions(head, self.tail)
            .map_err(SendError::Corrupted)?;
        if head < self.cached_head {
            return Err(SendError::Corrupted(Corruption::new(
                "head moved backwards",
                head,
            )));
        }
        self.cached_head = head;
        Ok(())
    }

    /// Makes a reserved record committed: visible now, or with the batch.
    #[inline]
    fn commit(&mut self, r: Reservation, defer: bool) {
        let ring = self.ring;
        let end = self.tail + r.pad + r.record;
        // Relaxed: the header of the next record, zeroed so the end of the
        // records reads 0; the Release commit below orders it first.
        // SAFETY: a masked, 8-aligned position is a word inside the buffer.
        unsafe { ring.buf.word(ring.offset(end)) }.store(0, Ordering::Relaxed);
        let message = MSG_MARKER << 32 | r.len as u64;
        let commit = if r.pad == 0 {
            (r.start, message)
        } else {
            // Relaxed: reachable only through the padding record, whose
            // commit below publishes it.
            // SAFETY: `r.start` is 0 here, the first word of the buffer.
            unsafe { ring.buf.word(r.start) }.store(message, Ordering::Relaxed);
            (ring.offset(self.tail), PAD_MARKER << 32 | (r.pad - HEADER))
        };
        self.tail = end;
        if self.withheld.is_some() {
            // Relaxed: reachable only through the withheld first commit of
            // the batch, which `publish` stores with Release.
            // SAFETY: `commit.0` is a record header's offset: 8-aligned,
            // inside the buffer (from `reserve`).
            unsafe { ring.buf.word(commit.0) }.store(commit.1, Ordering::Relaxed);
            if !defer {
                // A commit outside any batch while one is withheld: the
                // batch was forgotten (`mem::forget`) instead of dropped.
                // Publish, or this and every later message stays invisible.
                self.publish();
            }
        } else if defer {
            self.withheld = Some(commit);
        } else {
            // Release: pairs with the Acquire load of the header in
            // `Consumer::next`: payload and the next header's 0 are written
            // before the consumer can see the record.
            // SAFETY: as above.
            unsafe { ring.buf.word(commit.0) }.store(commit.1, Ordering::Release);
            ring.control().data.notify();
        }
    }

    /// Publishes what a batch withholds.
    #[inline]
    fn publish(&mut self) {
        if let Some((offset, header)) = self.withheld.take() {
            // Release: pairs with the Acquire load of the header in
            // `Consumer::next`, for every record of the batch.
            // SAFETY: a withheld commit is a record header's offset, as in
            // `commit`.
            unsafe { self.ring.buf.word(offset) }.store(header, Ordering::Release);
            self.ring.control().data.notify();
        }
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        // A copy of the handle in a child made by `fork` is not the
        // producer: the parent still writes records and holds the claim.
        if !self.member.hold.in_this_process() {
            return;
        }
        self.publish();
        // Relaxed: the claim's Release in `Ring::release` orders it for the
        // next producer, which reads it after its claim's Acquire.
        self.ring
            .control()
            .tail
            .0
            .store(self.tail, Ordering::Relaxed);
        self.ring.leave(Role::Producer, &self.member);
    }
}

impl fmt::Debug for Producer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.ring.capacity)
            .field("max_message", &self.ring.max_message)
            .field("tail", &self.tail)
            .finish_non_exhaustive()
    }
}

/// Room for one message, written in place through `Deref<Target = [u8]>`.
///
/// [`commit`](Grant::commit) makes it visible; dropping it abandons it. The
/// zero-copy view trusts the consumer to follow the protocol (not to write
/// into space it has not been given); [`Producer::try_send`] trusts nothing.
///
/// A grant that is never used is a mistake the compiler points out:
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// # fn f(producer: &mut ipc_core::spsc::Producer) {
/// producer.try_reserve(8).unwrap(); // dropped at once: nothing is sent
/// # }
/// ```
#[must_use = "dropping a grant abandons the message; call `commit`"]
pub struct Grant<'a> {
    producer: &'a mut Producer,
    reservation: Reservation,
    /// Inside a batch: leave publication to the batch.
    defer: bool,
}

impl Grant<'_> {
    /// Makes the message visible (at the end of the batch, inside one).
    #[inline]
    pub fn commit(self) {
        self.producer.commit(self.reservation, self.defer);
    }
}

impl Deref for Grant<'_> {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        let r = self.reservation;
        // SAFETY: the payload lies inside the buffer (`start + record <=
        // capacity`), is reserved for this grant, and no other party reads or
        // writes it until commit publishes it, as long as the consumer
        // follows the protocol (which this zero-copy view trusts).
        unsafe { core::slice::from_raw_parts(self.producer.ring.buf.at(r.start + WORD), r.len) }
    }
}

impl DerefMut for Grant<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        let r = self.reservation;
        // SAFETY: as in `deref`; `&mut self` makes this the only view.
        unsafe { core::slice::from_raw_parts_mut(self.producer.ring.buf.at(r.start + WORD), r.len) }
    }
}

impl fmt::Debug for Grant<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grant")
            .field("len", &self.reservation.len)
            .finish()
    }
}

/// Commits made through a batch become visible together, with one Release
/// store, when it is dropped or published.
///
/// ```
/// # use std::sync::Arc;
/// # use ipc_core::{spsc, RegionOptions};
/// # let region = RegionOptions::new().layout(spsc::layout(4096, 64)?).create_anonymous()?;
/// # let (mut producer, mut consumer) = spsc::channel(Arc::new(region))?;
/// let mut batch = producer.batch();
/// batch.try_send(b"one")?;
/// batch.try_send(b"two")?;
/// assert!(consumer.try_recv().is_err()); // nothing published yet
/// batch.publish();
/// assert_eq!(consumer.drain(usize::MAX, |_| {})?, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// # fn f(producer: &mut ipc_core::spsc::Producer) {
/// producer.batch(); // a batch nobody sends through
/// # }
/// ```
#[must_use = "a batch publishes its messages when dropped"]
pub struct Batch<'a> {
    producer: &'a mut Producer,
}

impl Batch<'_> {
    /// Copies `msg` into the ring, as [`Producer::try_send`] does; visible
    /// when the batch is published.
    #[inline]
    pub fn try_send(&mut self, msg: &[u8]) -> Result<(), SendError> {
        let reservation = self.producer.try_reserve_record(msg.len())?;
        self.producer.write_payload(reservation, msg);
        self.producer.commit(reservation, true);
        Ok(())
    }

    /// Reserves room as [`Producer::try_reserve`] does; the commit is
    /// published with the batch.
    #[inline]
    pub fn try_reserve(&mut self, len: usize) -> Result<Grant<'_>, SendError> {
        let reservation = self.producer.try_reserve_record(len)?;
        Ok(Grant {
            producer: self.producer,
            reservation,
            defer: true,
        })
    }

    /// Publishes the batch's commits now.
    pub fn publish(self) {}
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        self.producer.publish();
    }
}

impl fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch").finish_non_exhaustive()
    }
}

/// The consuming half: the only reader of records and writer of `head`.
///
/// `Send` but not `Sync`; `&mut self` throughout.
///
/// ```compile_fail
/// fn shared_between_threads<T: Sync>() {}
/// shared_between_threads::<ipc_core::spsc::Consumer>();
/// ```
///
/// A message read in place borrows the consumer, so it cannot outlive the
/// next receive (which may reuse its space):
///
/// ```compile_fail
/// # fn f(consumer: &mut ipc_core::spsc::Consumer) {
/// let first = consumer.try_recv().unwrap();
/// let second = consumer.try_recv().unwrap();
/// assert_ne!(&*first, &*second);
/// # }
/// ```
pub struct Consumer {
    ring: Ring,
    /// End of the records released here; what the shared `head` holds.
    head: u64,
    member: Member,
    /// Whether the producer is gone, as of the lifecycle epoch last seen.
    producers: Presence,
    strategy: WaitStrategy,
    _owner: Arc<dyn Send + Sync>,
}

// SAFETY: as for `Producer`.
unsafe impl Send for Consumer {}

/// What a consumer that found the ring empty waits for: a record at its
/// head, or a membership change.
#[derive(Clone, Copy)]
struct DataReady {
    ring: Ring,
    /// The waiter's participant slot, for its sleeping mark.
    me: usize,
    head: u64,
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

    fn ready(&self) -> bool {
        self.ring.has_record_at(self.head) || self.ring.control().lifecycle.moved_from(self.seen)
    }
}

/// What a producer that found the ring full waits for: the consumer's head
/// moved on from what it last read, or a membership change.
#[derive(Clone, Copy)]
struct SpaceReady {
    ring: Ring,
    /// The waiter's participant slot, for its sleeping mark.
    me: usize,
    head: u64,
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

    fn ready(&self) -> bool {
        let control = self.ring.control();
        // Relaxed: only whether to look again; `reserve` acquires.
        control.head.0.load(Ordering::Relaxed) != self.head
            || control.lifecycle.moved_from(self.seen)
    }
}

/// A record [`Consumer::try_claim`] found, for [`Consumer::guard_of`].
#[cfg(all(feature = "tokio", not(ipc_core_loom)))]
pub(crate) struct Claim(Record);

/// A validated record: payload at `start`, `len` bytes, and the position
/// after it (past any padding before it).
#[derive(Clone, Copy)]
struct Record {
    start: usize,
    len: usize,
    end: u64,
}

impl Consumer {
    /// Claims the consumer role of `ring`.
    pub(crate) fn attach_ring(
        ring: Ring,
        owner: Arc<dyn Send + Sync>,
        identity: Identity,
    ) -> Result<Consumer, AttachError> {
        let control = ring.control();
        let (member, head) = ring.join_then(Role::Consumer, identity, || {
            // Acquire: pairs with the Release store of `head` in
            // `Consumer::release` by the last consumer. A clean detach's
            // claim release would order it too, but a consumer that died
            // released nothing.
            Ring::check_head(control.head.0.load(Ordering::Acquire))
        })?;
        Ok(Consumer {
            ring,
            head,
            member,
            producers: Presence::default(),
            strategy: WaitStrategy::default(),
            _owner: owner,
        })
    }

    /// The process holding this handle dies: no destructor runs; only the
    /// kernel drops its liveness lock. For tests and loom models.
    #[cfg(test)]
    pub(crate) fn die(self) {
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped or used again, so the member is
        // moved out exactly once; the rest leaks, as a dead process's state
        // stays in shared memory.
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

    /// Largest message this ring carries, in bytes.
    pub fn max_message(&self) -> usize {
        self.ring.max_message as usize
    }

    /// Capacity of the ring's buffer in bytes.
    pub fn capacity(&self) -> usize {
        self.ring.capacity as usize
    }

    /// Whether a record (or padding, which precedes one) is committed at
    /// our head: what makes `try_recv` not report `Empty`.
    #[cfg(not(ipc_core_loom))]
    pub(crate) fn has_record(&self) -> bool {
        self.ring.has_record_at(self.head)
    }

    /// Whether the producer is gone, read afresh (for `is_disconnected`).
    #[cfg(not(ipc_core_loom))]
    pub(crate) fn peers_gone_now(&self) -> bool {
        let lifecycle = &self.ring.control().lifecycle;
        lifecycle.peers_gone_now(&self.ring.members, Role::Producer)
    }

    /// The next message, read in place; its space is released when the
    /// guard drops.
    #[inline]
    pub fn try_recv(&mut self) -> Result<ReadGuard<'_>, RecvError> {
        let record = self.next(self.head)?;
        Ok(ReadGuard {
            consumer: self,
            record,
        })
    }

    /// The next message, read in place, waiting for it as the handle's
    /// [`WaitStrategy`] says; `Disconnected` once the producer is gone and
    /// everything it sent has been received.
    pub fn recv(&mut self) -> Result<ReadGuard<'_>, RecvError> {
        let record = self.next_until(None)?;
        Ok(ReadGuard {
            consumer: self,
            record,
        })
    }

    /// [`recv`](Self::recv), giving up with [`RecvError::Timeout`] after
    /// `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<ReadGuard<'_>, RecvError> {
        self.recv_deadline(deadline_after(timeout))
    }

    /// [`recv`](Self::recv), giving up with [`RecvError::Timeout`] at
    /// `deadline` (at once if it has passed and nothing is there).
    pub fn recv_deadline(&mut self, deadline: Instant) -> Result<ReadGuard<'_>, RecvError> {
        let record = self.next_until(Some(deadline))?;
        Ok(ReadGuard {
            consumer: self,
            record,
        })
    }

    /// Copies the next message into `buf`, waiting for it as
    /// [`recv`](Self::recv) does; see [`try_recv_into`](Self::try_recv_into).
    pub fn recv_into(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
        let record = self.next_until(None)?;
        self.copy_out(record, buf)
    }

    /// [`recv_into`](Self::recv_into), giving up at `deadline`.
    pub fn recv_into_deadline(
        &mut self,
        buf: &mut [u8],
        deadline: Instant,
    ) -> Result<usize, RecvError> {
        let record = self.next_until(Some(deadline))?;
        self.copy_out(record, buf)
    }

    /// How this handle waits in its blocking calls (default
    /// [`WaitStrategy::default`]).
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.strategy = strategy;
    }

    /// The next record, waiting for one (or the deadline, or the producer's
    /// leaving) as the strategy says.
    fn next_until(&mut self, deadline: Option<Instant>) -> Result<Record, RecvError> {
        let mut wait = Wait::new(self.strategy, deadline);
        loop {
            match self.next(self.head) {
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

    /// What a consumer that found the ring empty waits for.
    fn data_ready(&self) -> DataReady {
        DataReady {
            ring: self.ring,
            me: self.member.token.index(),
            head: self.head,
            seen: self.producers.seen(),
        }
    }

    /// Sleeping for a message away from this handle (an async receive's
    /// waiting).
    #[cfg(all(feature = "tokio", not(ipc_core_loom)))]
    pub(crate) fn sleeper(&self) -> crate::wait::Sleeper {
        crate::wait::Sleeper::new(self.data_ready(), self._owner.clone())
    }

    /// Reaps a dead producer: a waiting call's liveness tick.
    #[cfg(all(feature = "tokio", not(ipc_core_loom)))]
    pub(crate) fn reap_dead_peers(&self) {
        self.ring.reap_dead(Role::Producer);
    }

    /// [`try_recv`](Self::try_recv) in two steps, for a caller that loops
    /// on an empty ring and must hold no borrow meanwhile (an async
    /// receive): the next record, then its guard.
    #[cfg(all(feature = "tokio", not(ipc_core_loom)))]
    pub(crate) fn try_claim(&mut self) -> Result<Claim, RecvError> {
        self.next(self.head).map(Claim)
    }

    /// The guard of what [`try_claim`](Self::try_claim) just returned.
    #[cfg(all(feature = "tokio", not(ipc_core_loom)))]
    pub(crate) fn guard_of(&mut self, claim: Claim) -> ReadGuard<'_> {
        ReadGuard {
            consumer: self,
            record: claim.0,
        }
    }

    /// Copies the next message into `buf` and releases it; returns its
    /// length. A message longer than `buf` stays in the ring
    /// ([`RecvError::BufferTooSmall`]). Does not wait: `Empty` when there
    /// is none.
    ///
    /// This is the receive path that trusts nothing: the copy is made word
    /// by word with atomic loads, so it is sound whatever a peer writes
    /// meanwhile, and the bytes in `buf` are private to the caller: they
    /// cannot change after this returns. (A hostile producer can still send
    /// any bytes it likes: validate them as you would any input.)
    #[inline]
    pub fn try_recv_into(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
        let record = self.next(self.head)?;
        self.copy_out(record, buf)
    }

    #[inline]
    fn copy_out(&mut self, record: Record, buf: &mut [u8]) -> Result<usize, RecvError> {
        if record.len > buf.len() {
            return Err(RecvError::BufferTooSmall { needed: record.len });
        }
        // SAFETY: `next` checked the record: its payload starts 8-aligned
        // and its padded length lies inside the buffer.
        unsafe { self.ring.buf.copy_out(record.start, &mut buf[..record.len]) };
        self.release(record.end);
        Ok(record.len)
    }

    /// Hands up to `max` messages to `f` in order and releases their space
    /// with one store; returns how many there were (0 when empty). Like a
    /// [`ReadGuard`], the slices `f` sees are zero-copy views that trust the
    /// producer to follow the protocol.
    pub fn drain(&mut self, max: usize, mut f: impl FnMut(&[u8])) -> Result<usize, RecvError> {
        let mut position = self.head;
        let mut count = 0;
        let mut outcome = Ok(());
        while count < max {
            match self.next(position) {
                Ok(record) => {
                    f(self.payload(record));
                    position = record.end;
                    count += 1;
                }
                Err(RecvError::Empty) => break,
                // What came before the disconnection is still delivered.
                Err(RecvError::Disconnected) if count > 0 => break,
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        self.release(position);
        outcome.map(|()| count)
    }

    #[inline(always)]
    fn payload(&self, record: Record) -> &[u8] {
        // SAFETY: `next` checked that the payload lies inside the buffer, in
        // a committed record that we have not released, which a producer
        // that follows the protocol (as this zero-copy view trusts it to)
        // does not write until we do; `&self` ties the slice to the
        // consumer so no release can happen while it lives.
        unsafe { core::slice::from_raw_parts(self.ring.buf.at(record.start), record.len) }
    }

    /// The committed record at `position` (after a padding record, if one
    /// is there), validated; `Empty` if none is committed yet.
    #[inline]
    fn next(&mut self, position: u64) -> Result<Record, RecvError> {
        let ring = self.ring;
        let corrupted = |what, value| Err(RecvError::Corrupted(Corruption::new(what, value)));
        let mut offset = ring.offset(position);
        // Acquire: pairs with the Release commit in `Producer::commit` or
        // `Producer::publish`: the record (and every record a batch or a
        // padding record publishes with it) is written before we see it.
        // SAFETY: `offset` is a masked, 8-aligned position inside the buffer.
        let mut word = unsafe { ring.buf.word(offset) }.load(Ordering::Acquire);
        if word == 0 {
            // Lost memory reads as zeroes: as an empty ring, forever.
            if ring.buf.is_poisoned() {
                return corrupted(Corruption::LOST.what, 0);
            }
            // `self.ring`, not the copy: see `Producer::try_reserve_record`.
            if !self.producers.peers_gone(
                &self.ring.control().lifecycle,
                &self.ring.members,
                Role::Producer,
            ) {
                return Err(RecvError::Empty);
            }
            // A producer publishes everything before it leaves, and its
            // leaving is acquired by `peers_gone`: look once more.
            // Acquire: as above.
            // SAFETY: as above.
            word = unsafe { ring.buf.word(offset) }.load(Ordering::Acquire);
            if word == 0 {
                return Err(RecvError::Disconnected);
            }
        }
        let mut position = position;
        if word >> 32 == PAD_MARKER {
            let pad = ring.capacity - offset as u64;
            if offset == 0 || !ring.is_padding(offset, word) {
                return corrupted("bad padding record", word);
            }
            position += pad;
            offset = 0;
            // Relaxed: published by the padding record's commit, acquired above.
            // SAFETY: offset 0 is the buffer's first word.
            word = unsafe { ring.buf.word(0) }.load(Ordering::Relaxed);
        }
        if word >> 32 != MSG_MARKER {
            return corrupted("bad record marker", word);
        }
        let len = word & 0xffff_ffff;
        if len > ring.max_message {
            return corrupted("record longer than the maximum message", len);
        }
        let record = record_size(len);
        if offset as u64 + record > ring.capacity {
            return corrupted("record crosses the end of the buffer", len);
        }
        if position + record - self.head > ring.capacity {
            return corrupted("records run past a whole lap", position);
        }
        ring.buf.mark_read(offset + WORD, record as usize - WORD);
        Ok(Record {
            start: offset + WORD,
            len: len as usize,
            end: position + record,
        })
    }

    #[inline]
    fn release(&mut self, position: u64) {
        if position != self.head {
            self.head = position;
            // Release: pairs with the Acquire load of `head` in
            // `Producer::refresh_head`: our reads of the records are done
            // before the producer may overwrite them.
            self.ring
                .control()
                .head
                .0
                .store(position, Ordering::Release);
            self.ring.control().space.notify();
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        // In a child made by `fork`, the parent still holds the role.
        if self.member.hold.in_this_process() {
            self.ring.leave(Role::Consumer, &self.member);
        }
    }
}

impl fmt::Debug for Consumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("capacity", &self.ring.capacity)
            .field("max_message", &self.ring.max_message)
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}

/// A message read in place. Its space goes back to the producer on drop.
///
/// The `&[u8]` it derefs to lies in shared memory: it is sound, and its
/// bytes stay put while the guard lives, only if the producer follows the
/// protocol (never writes a record it has committed until it is released).
/// A buggy or hostile producer can change them under the borrow; use
/// [`Consumer::recv_into`] for a private copy that trusts nothing.
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// # fn f(consumer: &mut ipc_core::spsc::Consumer) {
/// consumer.try_recv().unwrap(); // read and released unseen
/// # }
/// ```
#[must_use = "the message is released as soon as the guard is dropped"]
pub struct ReadGuard<'a> {
    consumer: &'a mut Consumer,
    record: Record,
}

impl Deref for ReadGuard<'_> {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        self.consumer.payload(self.record)
    }
}

impl Drop for ReadGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.consumer.release(self.record.end);
    }
}

impl fmt::Debug for ReadGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadGuard")
            .field("len", &self.record.len)
            .finish()
    }
}

/// Why claiming a role failed, before it becomes a [`crate::Error`].
#[derive(Debug)]
#[cfg_attr(ipc_core_loom, allow(dead_code))] // loom models only look at is_ok
pub(crate) enum AttachError {
    /// Held by the participant with this token.
    Held(Token),
    /// The positions in shared memory are impossible.
    Corrupted(Corruption),
    /// Registering in the participant table failed.
    Register(RegisterError),
}
