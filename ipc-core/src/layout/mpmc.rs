//! The MPMC queue's geometry: what its data area holds, and the limits its
//! layout is checked against.
//!
//! The data area, at the layout's `data_offset` right after the participant
//! table, is a [`CONTROL_SIZE`]-byte control block of eight 128-byte lines
//! and then `capacity` slots of [`slot_stride`] bytes each:
//!
//! ```text
//! offset  line
//!      0  tail           the next position to claim for writing (a hint)
//!    128  head           the next position to claim for reading (a hint)
//!    256  skipped        messages whose writer died before publishing
//!    384  lost           messages whose reader died while reading
//!    512  data signal    consumers sleep on it
//!    640  space signal   producers sleep on it
//!    768  lifecycle      who is attached, and who has been
//!    896  reserved       0
//!   1024  slots          a stamp word, a length word, the payload
//! ```

#[cfg(not(ipc_core_loom))]
use super::{Kind, Layout, LayoutError};
use crate::sync::WORD;

/// Fewest slots a queue may have.
pub const MIN_CAPACITY: u64 = 2;
/// Most slots a queue may have.
pub const MAX_CAPACITY: u64 = 1 << 32;
/// Largest `max_message` (the length word holds it; a slot of this size is
/// already 4 GiB).
pub const MAX_MESSAGE: u64 = u32::MAX as u64 & !(WORD as u64 - 1);
/// Bytes of the control block in front of the slots.
pub const CONTROL_SIZE: u64 = 1024;
/// Participant slots of a queue made with `mpmc::layout`: live producers
/// and consumers together, plus dead ones not yet reaped.
#[cfg(not(ipc_core_loom))]
pub const PARTICIPANTS: u64 = 64;
/// Most participant slots a queue may have: a slot's stamp names its
/// holder (participant index + 1, 0 for nobody) in 16 bits.
pub(crate) const MAX_PARTICIPANTS: u64 = (1 << 16) - 1;

/// Offsets of the control block's lines (see the table above), which the
/// queue's `Control` is checked against.
#[cfg(not(ipc_core_loom))]
// Used only by the ring's compile-time checks, which Rust 1.85 (the MSRV)
// does not count as uses.
#[allow(dead_code)]
pub(crate) mod control {
    pub(crate) const HEAD: usize = 128;
    pub(crate) const SKIPPED: usize = 256;
    pub(crate) const LOST: usize = 384;
    pub(crate) const DATA: usize = 512;
    pub(crate) const SPACE: usize = 640;
    pub(crate) const LIFECYCLE: usize = 768;
}

/// Bytes in front of each slot's payload: the stamp and the length.
pub(crate) const SLOT_HEADER: u64 = 2 * WORD as u64;

/// Bytes one slot takes for messages of up to `max_message` bytes.
pub const fn slot_stride(max_message: u64) -> u64 {
    SLOT_HEADER + max_message.next_multiple_of(WORD as u64)
}

/// Checks a capacity (in slots) and message limit; the reason when they are
/// not usable.
pub fn check_geometry(capacity: u64, max_message: u64) -> Result<(), &'static str> {
    if !capacity.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) {
        return Err("capacity must be a power of two between 2 and 2^32 slots");
    }
    if max_message > MAX_MESSAGE {
        return Err("max_message is larger than a slot's length word can say");
    }
    match capacity.checked_mul(slot_stride(max_message)) {
        Some(bytes) if bytes <= isize::MAX as u64 / 2 => Ok(()),
        _ => Err("capacity times slot size is too large"),
    }
}

/// The layout of a queue of `capacity` slots carrying messages of up to
/// `max_message` bytes, with room for `participants` producers and
/// consumers.
#[cfg(not(ipc_core_loom))]
pub(crate) fn layout(
    capacity: u64,
    max_message: u64,
    participants: u64,
) -> Result<Layout, LayoutError> {
    check_geometry(capacity, max_message).map_err(|reason| LayoutError::Size {
        requested: capacity,
        reason,
    })?;
    if !(2..=MAX_PARTICIPANTS).contains(&participants) {
        return Err(LayoutError::Size {
            requested: participants,
            reason: "an MPMC queue needs 2 to 65535 participant slots",
        });
    }
    Ok(Layout {
        kind: Kind::Mpmc,
        total_size: 0,
        data_offset: Layout::data_offset_after(participants),
        data_size: CONTROL_SIZE + capacity * slot_stride(max_message),
        capacity,
        max_message,
        type_tag: 0,
        participants,
    })
}

/// Checks the MPMC part of a region layout.
#[cfg(not(ipc_core_loom))]
pub(crate) fn validate(layout: &Layout) -> Result<(), &'static str> {
    check_geometry(layout.capacity, layout.max_message)?;
    if layout.participants < 2 || layout.participants > MAX_PARTICIPANTS {
        return Err("an MPMC queue needs 2 to 65535 participant slots");
    }
    if layout.data_offset != Layout::data_offset_after(layout.participants) {
        return Err("an MPMC queue starts right after the participant table");
    }
    if layout.data_size != CONTROL_SIZE + layout.capacity * slot_stride(layout.max_message) {
        return Err("an MPMC queue's data area is its control block plus its slots");
    }
    Ok(())
}
