//! The SPSC ring's geometry: what its data area holds, and the limits its
//! layout is checked against.
//!
//! The data area, at the layout's `data_offset` right after the participant
//! table, is a [`CONTROL_SIZE`]-byte control block of eight 128-byte lines
//! and then `capacity` bytes of records:
//!
//! ```text
//! offset  line
//!      0  tail            where a detached producer's records ended
//!    128  head            end of the records the consumer released
//!    256  producer claim  the attached producer's participant token
//!    384  consumer claim  likewise for the consumer
//!    512  data signal     the consumer sleeps on it
//!    640  space signal    the producer sleeps on it
//!    768  lifecycle       who is attached, and who has been
//!    896  reserved        0
//!   1024  records         `capacity` bytes
//! ```
//!
//! A record is a [`HEADER`]-byte header followed by the payload padded to
//! 8 bytes ([`record_size`]).

#[cfg(not(ipc_core_loom))]
use super::{Kind, Layout, LayoutError};
use crate::sync::WORD;

/// Smallest capacity in bytes.
pub const MIN_CAPACITY: u64 = 32;
/// Largest capacity in bytes (1 TiB).
pub const MAX_CAPACITY: u64 = 1 << 40;
/// Bytes of the control block in front of the buffer.
pub const CONTROL_SIZE: u64 = 1024;
/// Participant slots of an SPSC ring: the producer and the consumer, and
/// room for dead ones not yet reaped and for attaches in flight.
#[cfg(not(ipc_core_loom))]
pub const PARTICIPANTS: u64 = 16;

/// Offsets of the control block's lines (see the table above), which the
/// ring's `Control` is checked against.
#[cfg(not(ipc_core_loom))]
// Used only by the ring's compile-time checks, which Rust 1.85 (the MSRV)
// does not count as uses.
#[allow(dead_code)]
pub(crate) mod control {
    pub(crate) const HEAD: usize = 128;
    pub(crate) const PRODUCER: usize = 256;
    pub(crate) const CONSUMER: usize = 384;
    pub(crate) const DATA: usize = 512;
    pub(crate) const SPACE: usize = 640;
    pub(crate) const LIFECYCLE: usize = 768;
}

/// Bytes of a record's header (`marker << 32 | len`).
pub(crate) const HEADER: u64 = WORD as u64;

/// Bytes a record of a `len`-byte message takes: header plus padded payload.
#[inline(always)]
pub const fn record_size(len: u64) -> u64 {
    HEADER + len.next_multiple_of(HEADER)
}

/// The largest message a ring of `capacity` bytes accepts: its record must
/// fit in half the buffer (so a padded message, plus the next record's header
/// word, always fits an empty ring) and its length in the 32-bit header field.
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

/// The layout of a ring of `capacity` bytes carrying messages of up to
/// `max_message` bytes.
#[cfg(not(ipc_core_loom))]
pub(crate) fn layout(capacity: u64, max_message: u64) -> Result<Layout, LayoutError> {
    check_geometry(capacity, max_message).map_err(|reason| LayoutError::Size {
        requested: capacity,
        reason,
    })?;
    Ok(Layout {
        kind: Kind::Spsc,
        total_size: 0,
        data_offset: Layout::data_offset_after(PARTICIPANTS),
        data_size: CONTROL_SIZE + capacity,
        capacity,
        max_message,
        type_tag: 0,
        participants: PARTICIPANTS,
    })
}

/// The capacity of the smallest ring that holds `messages` messages of up
/// to `max_message` bytes at once, whatever their sizes and wherever the
/// wrap point falls; `None` when no ring up to [`MAX_CAPACITY`] does.
#[cfg(not(ipc_core_loom))]
pub(crate) fn capacity_for(max_message: u64, messages: u64) -> Option<u64> {
    if max_message > max_message_for(MAX_CAPACITY) {
        return None;
    }
    let record = record_size(max_message);
    // Every record, the padding a wrap can waste (less than one record), and
    // the zeroed header word after the last record.
    let needed = messages
        .checked_mul(record)
        .and_then(|bytes| bytes.checked_add(record + HEADER))?;
    // A message's record may take at most half the ring.
    needed
        .max(2 * (max_message + HEADER))
        .max(MIN_CAPACITY)
        .checked_next_power_of_two()
        .filter(|&capacity| capacity <= MAX_CAPACITY)
}

/// Checks the SPSC part of a region layout.
#[cfg(not(ipc_core_loom))]
pub(crate) fn validate(layout: &Layout) -> Result<(), &'static str> {
    check_geometry(layout.capacity, layout.max_message)?;
    if layout.participants < 2 {
        return Err("an SPSC ring needs participant slots for both sides");
    }
    if layout.data_offset != Layout::data_offset_after(layout.participants) {
        return Err("an SPSC ring starts right after the participant table");
    }
    if layout.data_size != CONTROL_SIZE + layout.capacity {
        return Err("an SPSC ring's data area is its control block plus its capacity");
    }
    Ok(())
}
