//! What both ring kinds share: their error vocabulary, and the 128-byte
//! line their shared words live on.

use core::fmt;

use crate::participants::{Members, Role};
use crate::sync::{AtomicU64, Ordering};

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
    /// Every consumer that was attached is gone (left, or died): nobody
    /// would receive the message, so it was not sent.
    Disconnected,
    /// The deadline passed before there was room.
    Timeout,
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
    /// Every producer that was attached is gone (left, or died) and every
    /// message it sent has been received.
    Disconnected,
    /// The deadline passed before a message came.
    Timeout,
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
            SendError::Disconnected => write!(f, "every consumer of the ring is gone"),
            SendError::Timeout => write!(f, "timed out waiting for room in the ring"),
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
            RecvError::Disconnected => {
                write!(
                    f,
                    "every producer of the ring is gone and the ring is empty"
                )
            }
            RecvError::Timeout => write!(f, "timed out waiting for a message"),
        }
    }
}

impl std::error::Error for SendError {}
impl std::error::Error for RecvError {}
impl std::error::Error for Corruption {}

/// How a ring's membership has changed, in one word on a line of its own:
/// an *epoch* bumped whenever a participant registers, leaves or is
/// reaped, and whether each role has ever been attached.
///
/// ```text
/// bits 0..8   EVER_PRODUCER, EVER_CONSUMER
/// bits 8..64  epoch
/// ```
///
/// A handle keeps a [`Presence`] cache of "are my peers gone" and rescans
/// the participant table only when the epoch moves, so the check costs one
/// load per message. A role that has been attached and has no entry in the
/// table any more is *gone*: its peers get `Disconnected` (after draining,
/// for consumers) instead of waiting forever. A dead participant keeps its
/// entry until it is reaped, which a blocked call does on its liveness
/// ticks. Before a role's first attach nothing is gone: a producer may fill
/// the ring for a consumer yet to come.
///
/// The word decides nothing about memory safety; a peer that corrupts it
/// can make others see a disconnection that is not there, or miss one.
#[repr(C, align(128))]
pub(crate) struct Lifecycle(AtomicU64);

const EPOCH_ONE: u64 = 1 << 8;

fn ever_bit(role: Role) -> u64 {
    match role {
        Role::Producer => 1,
        Role::Consumer => 2,
    }
}

impl Lifecycle {
    #[cfg(ipc_core_loom)]
    pub(crate) fn new() -> Lifecycle {
        Lifecycle(AtomicU64::new(0))
    }

    /// The membership changed: a participant of `joined` registered, or
    /// (with `None`) one left or was reaped.
    pub(crate) fn changed(&self, joined: Option<Role>) {
        let ever = joined.map_or(0, ever_bit);
        // Release: pairs with the Acquire load in `Presence::peers_gone`:
        // who sees the new epoch sees the table as the changer left it
        // (and, for a leaver, the messages it published before leaving).
        let _ = self
            .0
            .fetch_update(Ordering::Release, Ordering::Relaxed, |word| {
                Some(word.wrapping_add(EPOCH_ONE) | ever)
            });
    }
}

/// A handle's cached answer to "is the other side gone".
#[derive(Debug, Default)]
pub(crate) struct Presence {
    /// The lifecycle word when last checked (0: never).
    seen: u64,
    gone: bool,
}

impl Lifecycle {
    /// Whether the word differs from `seen` (a [`Presence::seen`]): only
    /// whether to look again, so a Relaxed load.
    pub(crate) fn moved_from(&self, seen: u64) -> bool {
        // Relaxed: see above; `Presence::peers_gone` acquires.
        self.0.load(Ordering::Relaxed) != seen
    }
}

impl Lifecycle {
    /// [`Presence::peers_gone`] read afresh, with no cache: one load and a
    /// scan of the table (no syscall), for `is_disconnected` reports.
    #[cfg(not(ipc_core_loom))]
    pub(crate) fn peers_gone_now(&self, members: &Members, peers: Role) -> bool {
        // Acquire: pairs with the Release in `Lifecycle::changed`, as in
        // `Presence::peers_gone`.
        self.0.load(Ordering::Acquire) & ever_bit(peers) != 0 && !members.table.has_entry(peers)
    }
}

impl Presence {
    /// The lifecycle word when last checked.
    pub(crate) fn seen(&self) -> u64 {
        self.seen
    }

    /// Whether every `peers` participant that was ever attached is gone:
    /// the role has been attached and has no entry in `members`' table.
    /// One load while the membership does not change.
    #[inline]
    pub(crate) fn peers_gone(
        &mut self,
        lifecycle: &Lifecycle,
        members: &Members,
        peers: Role,
    ) -> bool {
        // Acquire: pairs with the Release in `Lifecycle::changed`.
        let word = lifecycle.0.load(Ordering::Acquire);
        if word != self.seen {
            self.seen = word;
            self.gone = word & ever_bit(peers) != 0 && !members.table.has_entry(peers);
        }
        self.gone
    }
}
