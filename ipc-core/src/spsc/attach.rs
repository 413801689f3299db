//! Attaching ring handles to a [`Region`].

use std::ptr::NonNull;
use std::sync::Arc;

use super::{AttachError, Consumer, Control, Producer, Ring, CONTROL_SIZE};
use crate::layout::{Kind, Layout};
use crate::participants::Identity;
use crate::sync::Bytes;
use crate::{Error, Region};

pub use crate::layout::spsc::PARTICIPANTS;

/// The layout of an SPSC ring of `capacity` bytes (a power of two) carrying
/// messages of up to `max_message` bytes (at most [`super::max_message_for`]
/// the capacity). Pass it to [`crate::RegionOptions::layout`].
///
/// Memory footprint: `256 (header) + 1024 (participant table) + 1024
/// (control block) + capacity`, rounded up to the page size.
pub fn layout(capacity: u64, max_message: u64) -> Result<Layout, Error> {
    Ok(crate::layout::spsc::layout(capacity, max_message)?)
}

/// The layout of the smallest SPSC ring that holds `messages` messages of
/// up to `max_message` bytes at once, whatever their sizes and wherever the
/// wrap point falls; see [`layout`].
///
/// ```
/// use ipc_core::{spsc, RegionOptions};
///
/// let region = RegionOptions::new()
///     .layout(spsc::layout_for(64, 100)?)
///     .create_anonymous()?;
/// let (mut producer, _consumer) = spsc::channel(region)?;
/// for _ in 0..100 {
///     producer.try_send(&[7; 64])?; // no consumer needed for 100 of them
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::InvalidSize`] when no ring up to [`super::MAX_CAPACITY`] fits.
pub fn layout_for(max_message: u64, messages: u64) -> Result<Layout, Error> {
    let capacity =
        crate::layout::spsc::capacity_for(max_message, messages).ok_or(Error::InvalidSize {
            requested: messages,
            reason: "no ring is large enough for that many messages of that size",
        })?;
    layout(capacity, max_message)
}

fn ring_of(region: &Region) -> Result<Ring, Error> {
    let layout = region.layout();
    if layout.kind != Kind::Spsc {
        return Err(Error::WrongKind {
            expected: Kind::Spsc,
            found: layout.kind,
        });
    }
    if region.is_poisoned() {
        return Err(region.poisoned_error());
    }
    // Before this process can notify anyone (see `wait::barrier`).
    crate::wait::barrier::prepare();
    // SAFETY: the layout was validated against the mapping when the region
    // was made or attached (`Layout::validate`, with
    // `layout::spsc::validate`), so the control block lies inside it.
    let control = unsafe { region.offset_ptr(layout.data_offset) }.cast::<Control>();
    // SAFETY: likewise, the buffer follows the control block inside the
    // mapping.
    let buf: NonNull<u8> = unsafe { region.offset_ptr(layout.data_offset + CONTROL_SIZE) };
    // SAFETY: the buffer is `capacity` bytes inside the mapping, 128-aligned
    // (data_offset and CONTROL_SIZE are multiples of 128, the mapping is
    // page-aligned), and the handles keep the region alive through an `Arc`.
    let bytes = unsafe { Bytes::new(buf, layout.capacity as usize, region.poison_flag()) };
    let members = region.members().ok_or_else(|| Error::InvalidLayout {
        reason: "an SPSC ring needs a participant table".into(),
    })?;
    // SAFETY: `control` is the 128-aligned control block inside the mapping,
    // zero-initialised by the creator, and the geometry passed validation;
    // the members' table is in the same mapping.
    Ok(unsafe { Ring::new(control, bytes, members, layout.max_message) })
}

fn attach_error(region: &Region, role: &'static str, e: AttachError) -> Error {
    match e {
        AttachError::Held(holder) => Error::AlreadyAttached {
            role,
            pid: region
                .members()
                .and_then(|members| members.pid_of(holder))
                .unwrap_or(0),
        },
        AttachError::Corrupted(c) => Error::Corrupted(c),
        AttachError::Register(e) => Error::register(e, region.layout().participants),
    }
}

impl Producer {
    /// Claims the producer role of the ring in `region`. Fails with
    /// [`Error::AlreadyAttached`] while a live process (this one included)
    /// holds it; a claim left by a dead process is taken over.
    ///
    /// # Errors
    /// [`Error::AlreadyAttached`] while another live producer holds the
    /// role, [`Error::WrongKind`] for a region that is not an SPSC ring,
    /// [`Error::Corrupted`] when its positions are impossible,
    /// [`Error::Poisoned`] when its memory was lost.
    pub fn attach(region: impl Into<Arc<Region>>) -> Result<Producer, Error> {
        let region = region.into();
        let ring = ring_of(&region)?;
        Producer::attach_ring(ring, region.clone(), Identity::of_this_process())
            .map_err(|e| attach_error(&region, "producer", e))
    }
}

impl Consumer {
    /// Claims the consumer role of the ring in `region`; see
    /// [`Producer::attach`]. A consumer that takes over from one that died
    /// resumes where it stopped.
    ///
    /// # Errors
    /// As for [`Producer::attach`].
    pub fn attach(region: impl Into<Arc<Region>>) -> Result<Consumer, Error> {
        let region = region.into();
        let ring = ring_of(&region)?;
        Consumer::attach_ring(ring, region.clone(), Identity::of_this_process())
            .map_err(|e| attach_error(&region, "consumer", e))
    }
}

/// Both handles of the ring in `region`, for use within this process (or
/// handed to threads).
pub fn channel(region: impl Into<Arc<Region>>) -> Result<(Producer, Consumer), Error> {
    let region = region.into();
    let producer = Producer::attach(region.clone())?;
    let consumer = Consumer::attach(region)?;
    Ok((producer, consumer))
}
