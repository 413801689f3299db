//! Attaching queue handles to a [`Region`].

use std::ptr::NonNull;
use std::sync::Arc;

use super::{
    slot_stride, AttachError, Consumer, Control, Producer, Ring, CONTROL_SIZE, MAX_HOLDER,
};
use crate::layout::{Kind, Layout};
use crate::participants::Identity;
use crate::sync::Bytes;
use crate::{Error, Region};

pub use crate::layout::mpmc::PARTICIPANTS;

/// The layout of a queue of `capacity` slots (a power of two, 2 to 2^32)
/// carrying messages of up to `max_message` bytes, with room for
/// [`PARTICIPANTS`] producers and consumers. Pass it to
/// [`crate::RegionOptions::layout`].
///
/// Memory footprint: `256 (header) + 64 × participants (table) + 1024
/// (control block) + capacity × (16 + max_message rounded up to 8)`,
/// rounded up to the page size.
pub fn layout(capacity: u64, max_message: u64) -> Result<Layout, Error> {
    layout_with_participants(capacity, max_message, PARTICIPANTS)
}

/// [`layout`] with room for `participants` producers and consumers
/// (2 to 65535).
pub fn layout_with_participants(
    capacity: u64,
    max_message: u64,
    participants: u64,
) -> Result<Layout, Error> {
    Ok(crate::layout::mpmc::layout(
        capacity,
        max_message,
        participants,
    )?)
}

fn ring_of(region: &Region) -> Result<Ring, Error> {
    let layout = region.layout();
    if layout.kind != Kind::Mpmc {
        return Err(Error::WrongKind {
            expected: Kind::Mpmc,
            found: layout.kind,
        });
    }
    if region.is_poisoned() {
        return Err(region.poisoned_error());
    }
    // Before this process can notify anyone (see `wait::barrier`).
    crate::wait::barrier::prepare();
    let members = region.members().ok_or_else(|| Error::InvalidLayout {
        reason: "an MPMC queue needs a participant table".into(),
    })?;
    // SAFETY: the layout was validated against the mapping when the region
    // was made or attached (`Layout::validate` with `layout::mpmc::validate`),
    // so the control block lies inside it.
    let control = unsafe { region.offset_ptr(layout.data_offset) }.cast::<Control>();
    // SAFETY: likewise, the slots follow the control block in the mapping.
    let slots: NonNull<u8> = unsafe { region.offset_ptr(layout.data_offset + CONTROL_SIZE) };
    let len = layout.capacity * slot_stride(layout.max_message);
    // SAFETY: `len` bytes of slots inside the mapping, 128-aligned, kept
    // alive by the handles' `Arc` of the region.
    let bytes = unsafe { Bytes::new(slots, len as usize, region.poison_flag()) };
    // SAFETY: the control block is zero-initialised by the creator (an empty
    // queue), the geometry passed validation, the table is in the mapping.
    Ok(unsafe { Ring::new(control, bytes, members, layout.capacity, layout.max_message) })
}

fn attach_error(region: &Region, e: AttachError) -> Error {
    match e {
        AttachError::Register(e) => Error::register(e, region.layout().participants),
        AttachError::IndexTooLarge => Error::TooManyParticipants { slots: MAX_HOLDER },
    }
}

impl Producer {
    /// Registers a producer of the queue in `region`. Any number of
    /// producers, in any processes, may be attached at once, up to the
    /// participant slots of its layout ([`Error::TooManyParticipants`]).
    ///
    /// # Errors
    /// [`Error::WrongKind`] for a region that is not an MPMC queue,
    /// [`Error::Poisoned`] for one whose memory was lost,
    /// [`Error::TooManyParticipants`] when the table is full of live ones.
    pub fn attach(region: impl Into<Arc<Region>>) -> Result<Producer, Error> {
        let region = region.into();
        let ring = ring_of(&region)?;
        Producer::attach_ring(ring, region.clone(), Identity::of_this_process())
            .map_err(|e| attach_error(&region, e))
    }

    /// Another producer of the same queue, a participant of its own (which
    /// is why this is not `Clone`: it can fail, when the table is full).
    pub fn try_clone(&self) -> Result<Producer, Error> {
        self.clone_with(Identity::of_this_process())
            .map_err(|e| self.attach_error(e))
    }

    fn attach_error(&self, e: AttachError) -> Error {
        match e {
            AttachError::Register(crate::participants::RegisterError::Lock(errno)) => {
                Error::os("fcntl(F_OFD_SETLK)", errno)
            }
            _ => Error::TooManyParticipants {
                slots: self.ring.members.table.len() as u64,
            },
        }
    }
}

impl Consumer {
    /// Registers a consumer of the queue in `region`; see
    /// [`Producer::attach`]. Each message goes to exactly one consumer.
    ///
    /// # Errors
    /// As for [`Producer::attach`].
    pub fn attach(region: impl Into<Arc<Region>>) -> Result<Consumer, Error> {
        let region = region.into();
        let ring = ring_of(&region)?;
        Consumer::attach_ring(ring, region.clone(), Identity::of_this_process())
            .map_err(|e| attach_error(&region, e))
    }

    /// Another consumer of the same queue, a participant of its own.
    pub fn try_clone(&self) -> Result<Consumer, Error> {
        self.clone_with(Identity::of_this_process())
            .map_err(|e| match e {
                AttachError::Register(crate::participants::RegisterError::Lock(errno)) => {
                    Error::os("fcntl(F_OFD_SETLK)", errno)
                }
                _ => Error::TooManyParticipants {
                    slots: self.ring.members.table.len() as u64,
                },
            })
    }
}

/// A producer and a consumer of the queue in `region`, for use within this
/// process (or handed to threads); clone either for more.
pub fn channel(region: impl Into<Arc<Region>>) -> Result<(Producer, Consumer), Error> {
    let region = region.into();
    Ok((Producer::attach(region.clone())?, Consumer::attach(region)?))
}
