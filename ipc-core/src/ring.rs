//! What both ring kinds share: their error vocabulary, and the 128-byte
//! line their shared words live on.

use core::fmt;

use crate::sync::AtomicU64;

/// One 128-byte line holding a word, so words written by different sides
/// never share a cache line (nor an adjacent-line prefetch pair).
#[repr(C, align(128))]
pub(crate) struct Line(pub(crate) AtomicU64);

impl Line {
    #[cfg(ipc_core_loom)]
    pub(crate) fn new() -> Line {
        Line(AtomicU64::new(0))
    }
}

/// Why a ring operation refused a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
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
#[non_exhaustive]
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
    pub(crate) fn new(what: &'static str, value: u64) -> Self {
        Corruption { what, value }
    }

    /// The ring's memory was lost: another process shrank the object
    /// behind it (see [`crate::Region::is_poisoned`]).
    pub(crate) const LOST: Corruption = Corruption {
        what: "the region was shrunk by another process; its memory is lost",
        value: 0,
    };
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
