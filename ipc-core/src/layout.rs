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
//! [`crate::participants`]), then the kind's area at `data_offset`.

use std::fmt;

use crate::sync::{AtomicU32, AtomicU64, Ordering};

/// First eight bytes of every region: `b"shmipc\0\x01"` read as a little-endian `u64`.
pub const MAGIC: u64 = u64::from_le_bytes(*b"shmipc\0\x01");
/// Version of the shared format this build reads and writes.
pub const VERSION: u32 = 2;
/// Bytes taken by the header at the start of every region.
pub const HEADER_SIZE: u64 = 256;
/// Value of the `init` word once the header is complete.
pub(crate) const READY: u32 = u32::from_le_bytes(*b"RDY!");
/// Header flag: the creator asked for the named object to outlive it
/// ([`crate::RegionOptions::persist`]); stale-name cleanup leaves it alone.
pub(crate) const FLAG_PERSISTENT: u32 = 1;
/// Alignment of the header and of every area in a region: two 64-byte cache
/// lines, because adjacent-line prefetch pairs them on x86.
pub const ALIGN: u64 = 128;

/// The header as it lies in shared memory.
///
/// Every field is an atomic, so a `&Header` may exist while another process
/// writes the memory; only atomic loads and stores touch it.
#[repr(C, align(128))]
pub(crate) struct Header {
    pub(crate) magic: AtomicU64,
    pub(crate) version: AtomicU32,
    pub(crate) header_size: AtomicU32,
    pub(crate) init: AtomicU32,
    pub(crate) creator_pid: AtomicU32,
    pub(crate) kind: AtomicU32,
    pub(crate) flags: AtomicU32,
    pub(crate) total_size: AtomicU64,
    pub(crate) data_offset: AtomicU64,
    pub(crate) data_size: AtomicU64,
    pub(crate) capacity: AtomicU64,
    pub(crate) max_message: AtomicU64,
    pub(crate) type_tag: AtomicU64,
    pub(crate) participants_offset: AtomicU64,
    pub(crate) participants: AtomicU64,
    pub(crate) type_name: [AtomicU64; TYPE_NAME_WORDS],
    pub(crate) reserved_tail: [AtomicU64; 8],
}

/// Words of the header's `type_name` field.
const TYPE_NAME_WORDS: usize = 12;
/// Longest type description the header keeps, in bytes.
pub const MAX_TYPE_NAME: usize = TYPE_NAME_WORDS * 8;

const _: () = {
    assert!(core::mem::size_of::<Header>() as u64 == HEADER_SIZE);
    assert!(core::mem::align_of::<Header>() as u64 == ALIGN);
    assert!(core::mem::offset_of!(Header, init) == 16);
    assert!(core::mem::offset_of!(Header, total_size) == 32);
    assert!(core::mem::offset_of!(Header, type_tag) == 72);
    assert!(core::mem::offset_of!(Header, participants) == 88);
    assert!(core::mem::offset_of!(Header, type_name) == 96);
};

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

impl Kind {
    fn to_u32(self) -> u32 {
        match self {
            Kind::Raw => 1,
            Kind::Spsc => 2,
            Kind::Mpmc => 3,
        }
    }

    fn from_u32(value: u32) -> Option<Kind> {
        match value {
            1 => Some(Kind::Raw),
            2 => Some(Kind::Spsc),
            3 => Some(Kind::Mpmc),
            _ => None,
        }
    }
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
        HEADER_SIZE + crate::participants::table_size(participants)
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
    pub(crate) fn validate(&self, mapped: u64) -> Result<(), crate::Error> {
        let invalid = |reason: String| Err(crate::Error::InvalidLayout { reason });
        if self.total_size > mapped {
            return Err(crate::Error::Truncated {
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
        if self.participants > crate::participants::MAX_PARTICIPANTS {
            return invalid(format!(
                "{} participant slots, more than {}",
                self.participants,
                crate::participants::MAX_PARTICIPANTS
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
        match self.kind {
            Kind::Raw if self.capacity != 0 || self.max_message != 0 => {
                invalid("a raw region has no capacity or slot size".into())
            }
            Kind::Raw => Ok(()),
            Kind::Spsc => {
                crate::spsc::validate_layout(self).map_err(|reason| crate::Error::InvalidLayout {
                    reason: reason.to_string(),
                })
            }
            Kind::Mpmc => {
                crate::mpmc::validate_layout(self).map_err(|reason| crate::Error::InvalidLayout {
                    reason: reason.to_string(),
                })
            }
        }
    }
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

/// A published header's fields, before validation against the mapping.
pub(crate) struct Published {
    pub(crate) layout: Layout,
    pub(crate) creator_pid: u32,
    pub(crate) flags: u32,
    /// The `type_name` field, as far as it is valid UTF-8.
    pub(crate) type_name: String,
}

/// What an opener found before the header was published.
pub(crate) enum Probe {
    /// Published.
    Ready(Published),
    /// Not yet published (or never will be).
    Pending,
}

impl Header {
    /// Writes every field but `init`. The caller then calls [`Header::publish`].
    pub(crate) fn write(&self, layout: &Layout, creator_pid: u32, flags: u32, type_name: &str) {
        // Relaxed throughout: nobody may read these before `publish`'s
        // Release store, and the Acquire load in `probe` orders them.
        self.magic.store(MAGIC, Ordering::Relaxed);
        self.version.store(VERSION, Ordering::Relaxed);
        self.header_size
            .store(HEADER_SIZE as u32, Ordering::Relaxed);
        self.creator_pid.store(creator_pid, Ordering::Relaxed);
        self.flags.store(flags, Ordering::Relaxed);
        self.kind.store(layout.kind.to_u32(), Ordering::Relaxed);
        self.total_size.store(layout.total_size, Ordering::Relaxed);
        self.data_offset
            .store(layout.data_offset, Ordering::Relaxed);
        self.data_size.store(layout.data_size, Ordering::Relaxed);
        self.capacity.store(layout.capacity, Ordering::Relaxed);
        self.max_message
            .store(layout.max_message, Ordering::Relaxed);
        self.type_tag.store(layout.type_tag, Ordering::Relaxed);
        self.participants_offset
            .store(HEADER_SIZE, Ordering::Relaxed);
        self.participants
            .store(layout.participants, Ordering::Relaxed);
        let mut name = [0u8; MAX_TYPE_NAME];
        let mut len = type_name.len().min(MAX_TYPE_NAME);
        while !type_name.is_char_boundary(len) {
            len -= 1;
        }
        name[..len].copy_from_slice(&type_name.as_bytes()[..len]);
        for (word, chunk) in self.type_name.iter().zip(name.chunks_exact(8)) {
            word.store(
                u64::from_le_bytes(chunk.try_into().expect("8 bytes")),
                Ordering::Relaxed,
            );
        }
    }

    /// Makes the header (and everything the creator wrote before) visible.
    pub(crate) fn publish(&self) {
        // Release: pairs with the Acquire load of `init` in `probe`.
        self.init.store(READY, Ordering::Release);
    }

    /// Reads the header as an opener: `Pending` until published; an error
    /// for memory that is not ours or of another version.
    pub(crate) fn probe(&self) -> Result<Probe, crate::Error> {
        let magic = self.magic.load(Ordering::Relaxed);
        if magic != MAGIC && magic != 0 {
            return Err(crate::Error::NotOurs { found_magic: magic });
        }
        // Acquire: pairs with the Release store in `publish`, so the fields
        // below are the creator's.
        if self.init.load(Ordering::Acquire) != READY {
            return Ok(Probe::Pending);
        }
        let magic = self.magic.load(Ordering::Relaxed);
        if magic != MAGIC {
            return Err(crate::Error::NotOurs { found_magic: magic });
        }
        let version = self.version.load(Ordering::Relaxed);
        if version != VERSION {
            return Err(crate::Error::VersionMismatch {
                found: version,
                expected: VERSION,
            });
        }
        let header_size = self.header_size.load(Ordering::Relaxed);
        if u64::from(header_size) != HEADER_SIZE {
            return Err(crate::Error::InvalidLayout {
                reason: format!("header size {header_size}, expected {HEADER_SIZE}"),
            });
        }
        let kind_raw = self.kind.load(Ordering::Relaxed);
        let kind = Kind::from_u32(kind_raw).ok_or_else(|| crate::Error::InvalidLayout {
            reason: format!("unknown region kind {kind_raw}"),
        })?;
        let participants_offset = self.participants_offset.load(Ordering::Relaxed);
        if participants_offset != HEADER_SIZE {
            return Err(crate::Error::InvalidLayout {
                reason: format!(
                    "participant table at {participants_offset}, expected right after the header"
                ),
            });
        }
        let layout = Layout {
            kind,
            total_size: self.total_size.load(Ordering::Relaxed),
            data_offset: self.data_offset.load(Ordering::Relaxed),
            data_size: self.data_size.load(Ordering::Relaxed),
            capacity: self.capacity.load(Ordering::Relaxed),
            max_message: self.max_message.load(Ordering::Relaxed),
            type_tag: self.type_tag.load(Ordering::Relaxed),
            participants: self.participants.load(Ordering::Relaxed),
        };
        let mut name = [0u8; MAX_TYPE_NAME];
        for (chunk, word) in name.chunks_exact_mut(8).zip(&self.type_name) {
            chunk.copy_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
        }
        let end = name.iter().position(|&b| b == 0).unwrap_or(MAX_TYPE_NAME);
        Ok(Probe::Ready(Published {
            layout,
            creator_pid: self.creator_pid.load(Ordering::Relaxed),
            flags: self.flags.load(Ordering::Relaxed),
            type_name: String::from_utf8_lossy(&name[..end]).into_owned(),
        }))
    }
}
