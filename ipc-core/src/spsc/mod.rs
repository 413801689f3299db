//! A lock-free single-producer single-consumer ring of variable-length byte
//! messages, in a region or (under loom) on the heap.
//!
//! # Layout
//! The region's data area holds a [`Control`] block of four 128-byte lines
//! (published `tail`, released `head`, producer claim, consumer claim) and then
//! `capacity` bytes of records. A record is an 8-byte header (`marker << 32 |
//! len`) followed by the payload padded to 8 bytes. A message that would
//! cross the end of the buffer is preceded by a padding record that runs to
//! the end, so no message is ever split. Because a message's record is at most
//! half the capacity, a padded message always fits once the ring drains.
//!
//! # Protocol
//! `tail` and `head` are byte positions that only grow; the offset of a
//! position is `position & (capacity - 1)`. The producer writes records beyond `tail`, then
//! publishes them by storing the new `tail` with Release; the consumer loads
//! `tail` with Acquire, reads records, and releases their space by storing
//! `head` with Release, which the producer loads with Acquire before reusing
//! it. Each side caches the other's position and reloads it only when the
//! ring looks full (producer) or empty (consumer).
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

use crate::sync::{AtomicU64, Bytes, Ordering, WORD};

#[cfg(not(loom))]
mod attach;
#[cfg(not(loom))]
pub use attach::{channel, layout};

#[cfg(all(test, loom))]
mod loom_models;
#[cfg(all(test, not(loom)))]
mod tests;

/// Smallest capacity in bytes.
pub const MIN_CAPACITY: u64 = 32;
/// Largest capacity in bytes (1 TiB).
pub const MAX_CAPACITY: u64 = 1 << 40;
/// Bytes of the control block in front of the buffer.
pub const CONTROL_SIZE: u64 = core::mem::size_of::<Control>() as u64;

const HEADER: u64 = WORD as u64;
const MSG_MARKER: u64 = u32::from_le_bytes(*b"MSG!") as u64;
const PAD_MARKER: u64 = u32::from_le_bytes(*b"PAD!") as u64;

/// Bytes a record of a `len`-byte message takes: header plus padded payload.
#[inline(always)]
pub const fn record_size(len: u64) -> u64 {
    HEADER + len.next_multiple_of(HEADER)
}

/// The largest message a ring of `capacity` bytes accepts: its record must
/// fit in half the buffer (so a padded message always fits an empty ring) and
/// its length in the 32-bit header field.
/// 0 for capacities too small to hold any record.
pub const fn max_message_for(capacity: u64) -> u64 {
    let max = (capacity / 2).saturating_sub(HEADER);
    if max > u32::MAX as u64 {
        u32::MAX as u64 & !(HEADER - 1)
    } else {
        max
    }
}

/// Checks a capacity and message limit; the reason when they are not usable.
pub fn check_geometry(capacity: u64, max_message: u64) -> Result<(), &'static str> {
    if !capacity.is_power_of_two() {
        return Err("capacity must be a power of two");
    }
    if !(MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) {
        return Err("capacity must be between 32 bytes and 1 TiB");
    }
    if max_message > max_message_for(capacity) {
        return Err("a message's record may take at most half the capacity");
    }
    Ok(())
}

/// Checks the SPSC part of a region layout.
#[cfg(not(loom))]
pub(crate) fn validate_layout(layout: &crate::Layout) -> Result<(), &'static str> {
    check_geometry(layout.capacity, layout.slot_size)?;
    if layout.data_offset != crate::layout::HEADER_SIZE {
        return Err("an SPSC ring starts right after the header");
    }
    if layout.data_size != CONTROL_SIZE + layout.capacity {
        return Err("an SPSC ring's data area is its control block plus its capacity");
    }
    Ok(())
}

/// One 128-byte line holding a word, so words written by different sides
/// never share a cache line (nor an adjacent-line prefetch pair).
#[repr(C, align(128))]
pub(crate) struct Line(AtomicU64);

/// The ring's shared control block, right after the region header.
#[repr(C)]
pub(crate) struct Control {
    /// Producer-written: end of the published records. Consumer reads it.
    tail: Line,
    /// Consumer-written: end of the released records. Producer reads it.
    head: Line,
    /// Producer claim: id (pid) of the attached producer, 0 when free.
    producer: Line,
    /// Consumer claim, likewise.
    consumer: Line,
}

#[cfg(not(loom))]
const _: () = {
    assert!(core::mem::size_of::<Control>() == 512);
    assert!(core::mem::offset_of!(Control, head) == 128);
    assert!(core::mem::offset_of!(Control, producer) == 256);
    assert!(core::mem::offset_of!(Control, consumer) == 384);
};

impl Control {
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        Control {
            tail: Line(AtomicU64::new(0)),
            head: Line(AtomicU64::new(0)),
            producer: Line(AtomicU64::new(0)),
            consumer: Line(AtomicU64::new(0)),
        }
    }
}

/// What a role is claimed with: its holder's id, and how to tell whether a
/// holder is still alive (so a dead process's claim can be taken over).
#[derive(Clone, Copy)]
pub(crate) struct Claimant {
    pub(crate) id: u64,
    pub(crate) alive: fn(u64) -> bool,
}

/// The ring as one side sees it: where the memory is, and the geometry this
/// process validated. Nothing here is re-read from shared memory.
#[derive(Clone, Copy)]
pub(crate) struct Ring {
    control: NonNull<Control>,
    buf: Bytes,
    capacity: u64,
    max_message: u64,
}

// SAFETY: a `Ring` is only addresses and numbers; the memory it points to
// is shared between threads and processes by design and accessed through
// atomics and the ring protocol. Handles keep that memory alive.
unsafe impl Send for Ring {}

impl Ring {
    /// # Safety
    /// `control` points to a `Control` that, like `buf`, stays valid while
    /// the ring is used; `buf.len()` is a valid capacity and `max_message`
    /// passes [`check_geometry`] with it.
    pub(crate) unsafe fn new(control: NonNull<Control>, buf: Bytes, max_message: u64) -> Ring {
        debug_assert!(check_geometry(buf.len() as u64, max_message).is_ok());
        Ring {
            control,
            buf,
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

    /// Takes `word` for `claimant`, or says who holds it. A holder that is
    /// no longer alive loses its claim.
    fn claim(word: &AtomicU64, claimant: Claimant) -> Result<(), u64> {
        let mut expected = 0;
        loop {
            // Acquire on success: pairs with the Release in `release`, so the
            // previous holder's last position store is visible to us.
            match word.compare_exchange(expected, claimant.id, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(0) => expected = 0,
                Err(holder) if holder != claimant.id && !(claimant.alive)(holder) => {
                    expected = holder
                }
                Err(holder) => return Err(holder),
            }
        }
    }

    fn release(word: &AtomicU64, id: u64) {
        // Release: pairs with the Acquire in `claim` of the next holder.
        // A CAS, not a store: a claim taken over from us stays taken.
        let _ = word.compare_exchange(id, 0, Ordering::Release, Ordering::Relaxed);
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

/// Why a ring operation refused a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// No room now; try again after the consumer catches up.
    Full,
    /// Longer than the ring's maximum message; nothing was written.
    TooLarge {
        /// The message's length.
        len: usize,
        /// The ring's limit.
        max: usize,
    },
    /// The shared memory holds values no correct peer writes.
    Corrupted(Corruption),
}

/// Why a ring operation returned no message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecvError {
    /// No message now.
    Empty,
    /// The next message does not fit the buffer given; it stays in the ring.
    BufferTooSmall {
        /// The message's length.
        needed: usize,
    },
    /// The shared memory holds values no correct peer writes.
    Corrupted(Corruption),
}

/// A value in the ring that no correct peer writes: what it was and its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Corruption {
    /// What was wrong.
    pub what: &'static str,
    /// The offending value.
    pub value: u64,
}

impl Corruption {
    fn new(what: &'static str, value: u64) -> Self {
        Corruption { what, value }
    }
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ring corrupted: {} ({:#x})", self.what, self.value)
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Full => write!(f, "ring is full"),
            SendError::TooLarge { len, max } => {
                write!(
                    f,
                    "message of {len} bytes exceeds the ring's maximum of {max}"
                )
            }
            SendError::Corrupted(c) => c.fmt(f),
        }
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Empty => write!(f, "ring is empty"),
            RecvError::BufferTooSmall { needed } => {
                write!(f, "buffer too small for a message of {needed} bytes")
            }
            RecvError::Corrupted(c) => c.fmt(f),
        }
    }
}

impl std::error::Error for SendError {}
impl std::error::Error for RecvError {}
impl std::error::Error for Corruption {}

/// The producing half: the only writer of records and of `tail`.
///
/// `Send` but not `Sync`: one thread at a time, `&mut self` throughout. Do
/// not use a handle in a child after `fork`; attach there instead.
pub struct Producer {
    ring: Ring,
    /// End of the records committed here; `published <= tail`.
    tail: u64,
    /// Last value stored to the shared `tail`.
    published: u64,
    /// The consumer's `head` when last read; may be stale (only ever low).
    cached_head: u64,
    id: u64,
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
    /// Padding record to write first at the old offset (0 for none).
    pad: u64,
    /// Bytes of the record.
    record: u64,
    /// Payload length.
    len: usize,
}

impl Producer {
    /// Claims the producer role of `ring`.
    pub(crate) fn attach_ring(
        ring: Ring,
        owner: Arc<dyn Send + Sync>,
        claimant: Claimant,
    ) -> Result<Producer, AttachError> {
        let control = ring.control();
        Ring::claim(&control.producer.0, claimant).map_err(AttachError::Held)?;
        // Relaxed: only producers write `tail`, and the claim's Acquire
        // ordered the previous producer's last store before this load.
        let tail = control.tail.0.load(Ordering::Relaxed);
        // Acquire: pairs with the Release store of `head` in `Consumer::release`.
        let head = control.head.0.load(Ordering::Acquire);
        if let Err(c) = ring.check_positions(head, tail).and_then(|()| {
            if tail > u64::MAX / 2 {
                Err(Corruption::new("position too large", tail))
            } else {
                Ok(())
            }
        }) {
            Ring::release(&control.producer.0, claimant.id);
            return Err(AttachError::Corrupted(c));
        }
        Ok(Producer {
            ring,
            tail,
            published: tail,
            cached_head: head,
            id: claimant.id,
            _owner: owner,
        })
    }

    /// Largest message this ring accepts, in bytes.
    pub fn max_message(&self) -> usize {
        self.ring.max_message as usize
    }

    /// Capacity of the ring's buffer in bytes.
    pub fn capacity(&self) -> usize {
        self.ring.capacity as usize
    }

    /// Copies `msg` into the ring and publishes it.
    #[inline]
    pub fn try_send(&mut self, msg: &[u8]) -> Result<(), SendError> {
        let mut grant = self.try_reserve(msg.len())?;
        grant.copy_from_slice(msg);
        grant.commit();
        Ok(())
    }

    /// Reserves room for a `len`-byte message, to be written in place and
    /// made visible by [`Grant::commit`]. Dropping the grant publishes nothing.
    #[inline]
    pub fn try_reserve(&mut self, len: usize) -> Result<Grant<'_>, SendError> {
        let reservation = self.reserve(len)?;
        Ok(Grant {
            producer: self,
            reservation,
            publish: true,
        })
    }

    /// Starts a batch: its commits become visible together, with one store of
    /// `tail`, when the batch is dropped or [`Batch::publish`]ed.
    pub fn batch(&mut self) -> Batch<'_> {
        Batch { producer: self }
    }

    #[inline]
    fn reserve(&mut self, len: usize) -> Result<Reservation, SendError> {
        let ring = self.ring;
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
        let need = pad + record;
        if ring.capacity - (self.tail - self.cached_head) < need {
            self.refresh_head()?;
            if ring.capacity - (self.tail - self.cached_head) < need {
                // Whatever a batch committed must become visible, or the
                // consumer could never make room.
                self.publish();
                return Err(SendError::Full);
            }
        }
        let start = if pad == 0 { offset } else { 0 };
        if pad != 0 {
            ring.buf.mark_written(offset, WORD);
        }
        ring.buf.mark_written(start, record as usize);
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

    #[inline]
    fn commit(&mut self, r: Reservation) {
        let buf = self.ring.buf;
        if r.pad != 0 {
            let offset = self.ring.offset(self.tail);
            // SAFETY: `offset` is 8-aligned and `offset + 8 <= capacity`
            // (a pad is at least one word), inside the space `reserve` found
            // free; the consumer reads it only after we publish.
            unsafe { (buf.at(offset) as *mut u64).write(PAD_MARKER << 32 | (r.pad - HEADER)) };
        }
        // SAFETY: `start` is 8-aligned and the record lies inside the buffer
        // and the reserved free space, which the consumer does not read until
        // the publication below.
        unsafe { (buf.at(r.start) as *mut u64).write(MSG_MARKER << 32 | r.len as u64) };
        self.tail += r.pad + r.record;
    }

    #[inline]
    fn publish(&mut self) {
        if self.tail != self.published {
            // Release: pairs with the Acquire load of `tail` in
            // `Consumer::refresh_tail`: the records are written before the
            // consumer can see their position.
            self.ring
                .control()
                .tail
                .0
                .store(self.tail, Ordering::Release);
            self.published = self.tail;
        }
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.publish();
        Ring::release(&self.ring.control().producer.0, self.id);
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
/// [`commit`](Grant::commit) makes it visible; dropping it abandons it.
pub struct Grant<'a> {
    producer: &'a mut Producer,
    reservation: Reservation,
    publish: bool,
}

impl Grant<'_> {
    /// Makes the message visible (at the end of the batch, inside one).
    #[inline]
    pub fn commit(self) {
        self.producer.commit(self.reservation);
        if self.publish {
            self.producer.publish();
        }
    }
}

impl Deref for Grant<'_> {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        let r = self.reservation;
        // SAFETY: the payload lies inside the buffer (`start + record <=
        // capacity`), is reserved for this grant, and no other party reads or
        // writes it until commit publishes it.
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

/// Commits made through a batch become visible together when it is dropped
/// or published.
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
pub struct Batch<'a> {
    producer: &'a mut Producer,
}

impl Batch<'_> {
    /// Copies `msg` into the ring; visible when the batch is published.
    #[inline]
    pub fn try_send(&mut self, msg: &[u8]) -> Result<(), SendError> {
        let mut grant = self.try_reserve(msg.len())?;
        grant.copy_from_slice(msg);
        grant.commit();
        Ok(())
    }

    /// Reserves room as [`Producer::try_reserve`] does; the commit is
    /// published with the batch.
    #[inline]
    pub fn try_reserve(&mut self, len: usize) -> Result<Grant<'_>, SendError> {
        let reservation = self.producer.reserve(len)?;
        Ok(Grant {
            producer: self.producer,
            reservation,
            publish: false,
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
pub struct Consumer {
    ring: Ring,
    /// End of the records released here; what the shared `head` holds.
    head: u64,
    /// The producer's `tail` when last read; may be stale (only ever low).
    cached_tail: u64,
    id: u64,
    _owner: Arc<dyn Send + Sync>,
}

// SAFETY: as for `Producer`.
unsafe impl Send for Consumer {}

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
        claimant: Claimant,
    ) -> Result<Consumer, AttachError> {
        let control = ring.control();
        Ring::claim(&control.consumer.0, claimant).map_err(AttachError::Held)?;
        // Relaxed: only consumers write `head`; the claim ordered the last one.
        let head = control.head.0.load(Ordering::Relaxed);
        // Acquire: pairs with the Release store of `tail` in `Producer::publish`.
        let tail = control.tail.0.load(Ordering::Acquire);
        if let Err(c) = ring.check_positions(head, tail).and_then(|()| {
            if tail > u64::MAX / 2 {
                Err(Corruption::new("position too large", tail))
            } else {
                Ok(())
            }
        }) {
            Ring::release(&control.consumer.0, claimant.id);
            return Err(AttachError::Corrupted(c));
        }
        Ok(Consumer {
            ring,
            head,
            cached_tail: tail,
            id: claimant.id,
            _owner: owner,
        })
    }

    /// Largest message this ring carries, in bytes.
    pub fn max_message(&self) -> usize {
        self.ring.max_message as usize
    }

    /// Capacity of the ring's buffer in bytes.
    pub fn capacity(&self) -> usize {
        self.ring.capacity as usize
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

    /// Copies the next message into `buf` and releases it; returns its length.
    /// A message longer than `buf` stays in the ring
    /// ([`RecvError::BufferTooSmall`]).
    #[inline]
    pub fn recv_into(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
        let record = self.next(self.head)?;
        if record.len > buf.len() {
            return Err(RecvError::BufferTooSmall { needed: record.len });
        }
        buf[..record.len].copy_from_slice(self.payload(record));
        self.release(record.end);
        Ok(record.len)
    }

    /// Hands up to `max` messages to `f` in order and releases their space
    /// with one store; returns how many there were (0 when empty).
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
        // SAFETY: `next` checked that the payload lies inside the buffer and
        // inside the published, unreleased records, which the producer does
        // not write until we release them; `&self` ties the slice to the
        // consumer so no release can happen while it lives.
        unsafe { core::slice::from_raw_parts(self.ring.buf.at(record.start), record.len) }
    }

    /// The record at `position` (skipping a padding record), validated.
    #[inline]
    fn next(&mut self, position: u64) -> Result<Record, RecvError> {
        if position == self.cached_tail {
            self.refresh_tail()?;
            if position == self.cached_tail {
                return Err(RecvError::Empty);
            }
        }
        let ring = self.ring;
        let corrupted = |what, value| Err(RecvError::Corrupted(Corruption::new(what, value)));
        let mut position = position;
        let mut word = self.read_header(position);
        if word >> 32 == PAD_MARKER {
            let offset = ring.offset(position) as u64;
            let pad = ring.capacity - offset;
            if offset == 0 || word & 0xffff_ffff != pad - HEADER {
                return corrupted("bad padding record", word);
            }
            position += pad;
            if position >= self.cached_tail {
                return corrupted("padding record without a message after it", word);
            }
            word = self.read_header(position);
        }
        if word >> 32 != MSG_MARKER {
            return corrupted("bad record marker", word);
        }
        let len = word & 0xffff_ffff;
        if len > ring.max_message {
            return corrupted("record longer than the maximum message", len);
        }
        let record = record_size(len);
        let offset = ring.offset(position);
        if offset as u64 + record > ring.capacity || position + record > self.cached_tail {
            return corrupted("record overruns the published data", len);
        }
        ring.buf.mark_read(offset + WORD, record as usize - WORD);
        Ok(Record {
            start: offset + WORD,
            len: len as usize,
            end: position + record,
        })
    }

    #[inline(always)]
    fn read_header(&self, position: u64) -> u64 {
        let offset = self.ring.offset(position);
        self.ring.buf.mark_read(offset, WORD);
        // SAFETY: `offset` is 8-aligned (positions are validated multiples of
        // 8) and below the capacity; `position < cached_tail`, so the word is
        // published and the producer does not write it until we release it.
        unsafe { (self.ring.buf.at(offset) as *const u64).read() }
    }

    #[cold]
    fn refresh_tail(&mut self) -> Result<(), RecvError> {
        // Acquire: pairs with the Release store of `tail` in
        // `Producer::publish`, so the records before it are visible.
        let tail = self.ring.control().tail.0.load(Ordering::Acquire);
        self.ring
            .check_positions(self.head, tail)
            .map_err(RecvError::Corrupted)?;
        if tail < self.cached_tail {
            return Err(RecvError::Corrupted(Corruption::new(
                "tail moved backwards",
                tail,
            )));
        }
        self.cached_tail = tail;
        Ok(())
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
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        Ring::release(&self.ring.control().consumer.0, self.id);
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
#[cfg_attr(loom, allow(dead_code))] // loom models only look at is_ok
pub(crate) enum AttachError {
    /// Held by this live id.
    Held(u64),
    /// The positions in shared memory are impossible.
    Corrupted(Corruption),
}
