//! The region header and the layout description it carries.
//!
//! Every region starts with a [`HEADER_SIZE`]-byte `#[repr(C)]` header. The
//! creator writes every field, then publishes the header by storing `READY`
//! into `init` with Release; an opener waits for that word with Acquire and
//! then validates every field against the size it actually mapped. The opener
//! keeps its own copy of the validated [`Layout`] and never reads the header
//! again, so a peer that scribbles over it later cannot move our bounds.
//!
//! ```text
//! offset  size  field
//!      0     8  magic          MAGIC, written first
//!      8     4  version        VERSION
//!     12     4  header_size    HEADER_SIZE
//!     16     4  init           READY once published (Release), 0 before
//!     20     4  creator_pid
//!     24     4  kind           Kind as u32
//!     28     4  flags          FLAG_PERSISTENT, or 0
//!     32     8  total_size     bytes mapped, a multiple of the page size
//!     40     8  data_offset    where the kind's area starts
//!     48     8  data_size      bytes of that area
//!     56     8  capacity       ring capacity in bytes (0 for raw)
//!     64     8  max_message    largest message in bytes (0 for raw)
//!     72     8  type_tag       the message type's tag (0: any)
//!     80     8  participants_offset  where the participant table starts
//!     88     8  participants   slots in that table (0: none)
//!     96    96  type_name      the message type, described for people:
//!                              UTF-8, NUL-padded (see `MessageType`)
//!    192    64  reserved       0
//! ```
//!
//! After the header comes the participant table (see
//! [`crate::participants`]), then the kind's area at `data_offset`, whose
//! geometry each kind's file here owns (`spsc.rs`, `mpmc.rs`): sizes,
//! offsets, limits, and the checks a layout passes before anyone maps a
//! ring onto it. Nothing here knows a ring's protocol; the rings build on
//! this module, and check their control blocks against its offsets.

use std::fmt;

#[cfg(not(ipc_core_loom))]
mod header;
pub(crate) mod mpmc;
pub(crate) mod spsc;
pub(crate) mod table;

#[cfg(not(ipc_core_loom))]
pub(crate) use header::{Header, Probe, Published, FLAG_PERSISTENT};
#[cfg(not(ipc_core_loom))]
pub use header::{MAGIC, MAX_TYPE_NAME, VERSION};

/// Bytes taken by the header at the start of every region.
pub const HEADER_SIZE: u64 = 256;
/// Alignment of the header and of every area in a region: two 64-byte cache
/// lines, because adjacent-line prefetch pairs them on x86.
pub const ALIGN: u64 = 128;

/// What a region holds after its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// Bytes for the user to lay out.
    Raw,
    /// A single-producer single-consumer ring ([`crate::spsc`]).
    Spsc,
    /// A multi-producer multi-consumer queue ([`crate::mpmc`]).
    Mpmc,
}

/// The layout description a header carries.
///
/// Build one with [`Layout::raw`] or [`crate::spsc::layout`]; the region fills
/// in `total_size` (and grows a raw `data_size` to the page boundary) when it
/// is created.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Layout {
    /// What follows the header.
    pub kind: Kind,
    /// Bytes of the whole mapping.
    pub total_size: u64,
    /// Offset of the kind's area from the start of the region.
    pub data_offset: u64,
    /// Bytes of the kind's area.
    pub data_size: u64,
    /// Ring capacity in bytes (0 for [`Kind::Raw`]).
    pub capacity: u64,
    /// Largest message in bytes (0 for [`Kind::Raw`]).
    pub max_message: u64,
    /// The user's tag for the message type, so that separately built
    /// processes can check they agree; 0 when unused.
    pub type_tag: u64,
    /// Slots in the participant table right after the header (0: no
    /// table); see [`crate::participants`].
    pub participants: u64,
}

impl Layout {
    /// A raw region with at least `data_size` usable bytes after the header.
    pub fn raw(data_size: u64) -> Layout {
        Layout {
            kind: Kind::Raw,
            total_size: 0,
            data_offset: HEADER_SIZE,
            data_size,
            capacity: 0,
            max_message: 0,
            type_tag: 0,
            participants: 0,
        }
    }

    /// Where the area after the header and a table of `participants` slots
    /// starts.
    pub const fn data_offset_after(participants: u64) -> u64 {
        HEADER_SIZE + table::table_size(participants)
    }

    /// Whether a region with layout `self` serves a caller that asked for
    /// `wanted`: same kind, capacity, message size and participant slots, at
    /// least the data bytes asked for, and the same type tag unless
    /// `wanted`'s is 0 (any).
    pub fn satisfies(&self, wanted: &Layout) -> bool {
        self.kind == wanted.kind
            && self.capacity == wanted.capacity
            && self.max_message == wanted.max_message
            && self.participants == wanted.participants
            && (wanted.type_tag == 0 || self.type_tag == wanted.type_tag)
            && self.data_size >= wanted.data_size
    }

    /// Checks the rules every layout obeys, against the `mapped` bytes
    /// really there.
    #[cfg(not(ipc_core_loom))]
    pub(crate) fn validate(&self, mapped: u64) -> Result<(), LayoutError> {
        let invalid = |reason: String| Err(LayoutError::Invalid(reason));
        if self.total_size > mapped {
            return Err(LayoutError::Truncated {
                expected: self.total_size,
                actual: mapped,
            });
        }
        if self.total_size != mapped {
            return invalid(format!(
                "header says {} bytes but {mapped} are mapped",
                self.total_size
            ));
        }
        if self.participants > table::MAX_PARTICIPANTS {
            return invalid(format!(
                "{} participant slots, more than {}",
                self.participants,
                table::MAX_PARTICIPANTS
            ));
        }
        if self.data_offset < Layout::data_offset_after(self.participants)
            || self.data_offset % ALIGN != 0
        {
            return invalid(format!("data offset {} is misplaced", self.data_offset));
        }
        match self.data_offset.checked_add(self.data_size) {
            Some(end) if end <= self.total_size => {}
            _ => {
                return invalid(format!(
                    "data area {}+{} overruns the region of {} bytes",
                    self.data_offset, self.data_size, self.total_size
                ))
            }
        }
        let kind = match self.kind {
            Kind::Raw if self.capacity != 0 || self.max_message != 0 => {
                Err("a raw region has no capacity or slot size")
            }
            Kind::Raw => Ok(()),
            Kind::Spsc => spsc::validate(self),
            Kind::Mpmc => mpmc::validate(self),
        };
        kind.map_err(|reason| LayoutError::Invalid(reason.to_string()))
    }
}

/// Why a header or a layout was refused; the region turns it into a
/// [`crate::Error`].
#[cfg(not(ipc_core_loom))]
#[derive(Debug)]
pub(crate) enum LayoutError {
    /// Not this library's magic number.
    NotOurs { found_magic: u64 },
    /// Another version of the format.
    VersionMismatch { found: u32 },
    /// Fewer bytes mapped than the header says.
    Truncated { expected: u64, actual: u64 },
    /// A self-contradictory or out-of-range field.
    Invalid(String),
    /// A size asked for that no layout of the kind can have.
    Size {
        requested: u64,
        reason: &'static str,
    },
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} {{ total {} B, data {}+{} B, capacity {} B, max message {} B, type tag {:#x}, participants {} }}",
            self.kind,
            self.total_size,
            self.data_offset,
            self.data_size,
            self.capacity,
            self.max_message,
            self.type_tag,
            self.participants
        )
    }
}

/// A stable 64-bit tag for a type name (FNV-1a of `std::any::type_name`).
///
/// Both sides of a channel built from the same source get the same tag; it is
/// a cheap guard against mixing message types, not a schema check.
pub fn type_tag_of<T: ?Sized>() -> u64 {
    fnv1a(std::any::type_name::<T>())
}

fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// What a region's messages are: a description for people (kept in the
/// header, at most [`MAX_TYPE_NAME`] bytes) and a tag derived from it, so
/// that separately built processes check they agree. Typed channels make
/// one from the message type's name, size and alignment and the codec and
/// its version (see [`crate::channel`]).
///
/// ```
/// use ipc_core::layout::MessageType;
///
/// let a = MessageType::new("app::Order (bincode 2.0.1, serde)");
/// assert_eq!(a, MessageType::new("app::Order (bincode 2.0.1, serde)"));
/// assert_ne!(a.tag, MessageType::new("app::Quote (bincode 2.0.1, serde)").tag);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MessageType {
    /// FNV-1a of the description: never 0 (0 means "any type").
    pub tag: u64,
    /// The description.
    pub name: String,
}

impl MessageType {
    /// The message type described by `name`.
    pub fn new(name: impl Into<String>) -> MessageType {
        let name = name.into();
        MessageType {
            tag: fnv1a(&name).max(1),
            name,
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (tag {:#018x})", self.name, self.tag)
    }
}
