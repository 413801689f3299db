//! The header as it lies in shared memory, written by a region's creator
//! and read once by each opener (the field table is in [`super`]).

use super::{Kind, Layout, LayoutError, ALIGN, HEADER_SIZE};
use crate::sync::{AtomicU32, AtomicU64, Ordering};

/// First eight bytes of every region: `b"shmipc\0\x01"` read as a little-endian `u64`.
pub const MAGIC: u64 = u64::from_le_bytes(*b"shmipc\0\x01");
/// Version of the shared format this build reads and writes.
pub const VERSION: u32 = 2;
/// Value of the `init` word once the header is complete.
pub(crate) const READY: u32 = u32::from_le_bytes(*b"RDY!");
/// Header flag: the creator asked for the named object to outlive it
/// ([`crate::RegionOptions::persist`]); stale-name cleanup leaves it alone.
pub(crate) const FLAG_PERSISTENT: u32 = 1;

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
    pub(crate) fn probe(&self) -> Result<Probe, LayoutError> {
        let magic = self.magic.load(Ordering::Relaxed);
        if magic != MAGIC && magic != 0 {
            return Err(LayoutError::NotOurs { found_magic: magic });
        }
        // Acquire: pairs with the Release store in `publish`, so the fields
        // below are the creator's.
        if self.init.load(Ordering::Acquire) != READY {
            return Ok(Probe::Pending);
        }
        let magic = self.magic.load(Ordering::Relaxed);
        if magic != MAGIC {
            return Err(LayoutError::NotOurs { found_magic: magic });
        }
        let version = self.version.load(Ordering::Relaxed);
        if version != VERSION {
            return Err(LayoutError::VersionMismatch { found: version });
        }
        let header_size = self.header_size.load(Ordering::Relaxed);
        if u64::from(header_size) != HEADER_SIZE {
            return Err(LayoutError::Invalid(format!(
                "header size {header_size}, expected {HEADER_SIZE}"
            )));
        }
        let kind_raw = self.kind.load(Ordering::Relaxed);
        let kind = Kind::from_u32(kind_raw)
            .ok_or_else(|| LayoutError::Invalid(format!("unknown region kind {kind_raw}")))?;
        let participants_offset = self.participants_offset.load(Ordering::Relaxed);
        if participants_offset != HEADER_SIZE {
            return Err(LayoutError::Invalid(format!(
                "participant table at {participants_offset}, expected right after the header"
            )));
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
