//! Errors of regions and of attaching to them.
//!
//! Ring operations have their own small error enums ([`crate::spsc::SendError`],
//! [`crate::spsc::RecvError`]) so that the hot path never builds this one.

use std::fmt;
use std::io;
use std::time::Duration;

use crate::layout::{Kind, Layout, LayoutError, VERSION};
use crate::participants::RegisterError;

/// Everything that can go wrong creating, opening or attaching to a region.
///
/// Variants carry enough context for the message to say what happened; match
/// on the variant to decide what to do.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The named object or file does not exist.
    NotFound {
        /// The name or path looked for.
        name: String,
    },
    /// The OS refused access to the object.
    PermissionDenied {
        /// The name or path.
        name: String,
    },
    /// The path is, or passes through, a symbolic link, which is never
    /// followed: whoever can write its directory could point it anywhere.
    SymbolicLink {
        /// The path.
        name: String,
    },
    /// The named object belongs to another user, or others than its owner
    /// may write it, so anyone among them could have forged its contents.
    /// [`RegionOptions::trust_foreign`](crate::RegionOptions::trust_foreign)
    /// accepts it.
    Untrusted {
        /// The name or path.
        name: String,
        /// The object's owner.
        owner: u32,
        /// Its permission bits.
        mode: u32,
    },
    /// A name kept being created and removed by others while
    /// [`RegionOptions::open_or_create_shm`](crate::RegionOptions::open_or_create_shm)
    /// tried to open or create it.
    Contended {
        /// The name.
        name: String,
    },
    /// The name no longer names the object it is supposed to: another
    /// process removed it, or replaced it with another object.
    Replaced {
        /// The name.
        name: String,
    },
    /// Create-exclusive found an object of that name already.
    AlreadyExists {
        /// The name or path.
        name: String,
    },
    /// The memory does not start with this library's magic number.
    NotOurs {
        /// The first eight bytes found.
        found_magic: u64,
    },
    /// The region was written by an incompatible version of the format.
    VersionMismatch {
        /// Version in the region.
        found: u32,
        /// Version this build speaks.
        expected: u32,
    },
    /// The region's layout is not the one the caller expects.
    LayoutMismatch {
        /// What the caller asked for.
        expected: Box<Layout>,
        /// What the region's header says.
        found: Box<Layout>,
    },
    /// The region carries messages of another type (or another codec) than
    /// the one asked for.
    TypeMismatch {
        /// What this side asked for.
        expected: String,
        /// What the region's header says its messages are.
        found: String,
    },
    /// The header's layout is self-contradictory or out of range.
    InvalidLayout {
        /// Which rule the layout breaks.
        reason: String,
    },
    /// The region holds another kind of structure than the one asked for,
    /// e.g. an SPSC ring where an MPMC ring was expected.
    WrongKind {
        /// What the caller needs.
        expected: Kind,
        /// What the region's header says it holds.
        found: Kind,
    },
    /// The ring's shared state holds values no correct peer writes; found
    /// while attaching to it.
    Corrupted(crate::ring::Corruption),
    /// The mapping is smaller than its header claims.
    Truncated {
        /// Size the header (or the format's minimum) requires.
        expected: u64,
        /// Size actually there.
        actual: u64,
    },
    /// The creator did not publish the header in time.
    InitTimeout {
        /// How long the opener waited.
        waited: Duration,
    },
    /// A shared-memory name breaks the naming rules.
    InvalidName {
        /// The rejected name.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A size that is zero, too large or overflows.
    InvalidSize {
        /// The requested size.
        requested: u64,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// An OS resource limit stopped the call.
    ResourceLimit {
        /// The call that failed.
        call: &'static str,
        /// The limit's name, e.g. `RLIMIT_MEMLOCK`.
        limit: &'static str,
        /// The limit's current (soft) value in bytes, if it could be read.
        current: Option<u64>,
        /// The OS error.
        source: io::Error,
    },
    /// Huge pages were required and could not be had.
    HugePagesUnavailable {
        /// What the OS said, or why the backing cannot have them.
        reason: String,
    },
    /// A file descriptor handed to us is not sealed against resizing, so a
    /// peer could truncate it under us (SIGBUS).
    NotSealed,
    /// The ring role (producer or consumer) is held by a live process.
    AlreadyAttached {
        /// `"producer"` or `"consumer"`.
        role: &'static str,
        /// The holder's pid (in the pid namespace of the process that
        /// attached it).
        pid: u32,
    },
    /// Another process shrank the object behind the region (a named shm
    /// object or a file) while it was mapped. The `SIGBUS` that followed
    /// was caught, and the mapping now holds zeroes; nothing read from it
    /// since is data. Drop the region.
    Poisoned {
        /// The name or path.
        name: String,
    },
    /// Every slot of the region's participant table is taken by a live
    /// participant.
    TooManyParticipants {
        /// Slots in the table.
        slots: u64,
    },
    /// An offset and length fall outside the region's data area.
    OutOfBounds {
        /// Requested offset.
        offset: u64,
        /// Requested length.
        len: u64,
        /// Bytes in the data area.
        size: u64,
    },
    /// An OS call failed.
    Os {
        /// The call that failed.
        call: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

impl Error {
    pub(crate) fn os(call: &'static str, errno: nix::errno::Errno) -> Self {
        Error::Os {
            call,
            source: io::Error::from_raw_os_error(errno as i32),
        }
    }

    /// Why registering in a participant table of `slots` slots failed.
    pub(crate) fn register(e: RegisterError, slots: u64) -> Self {
        match e {
            RegisterError::Full => Error::TooManyParticipants { slots },
            RegisterError::Lock(errno) => Error::os("fcntl(F_OFD_SETLK)", errno),
        }
    }
}

impl From<LayoutError> for Error {
    fn from(e: LayoutError) -> Self {
        match e {
            LayoutError::NotOurs { found_magic } => Error::NotOurs { found_magic },
            LayoutError::VersionMismatch { found } => Error::VersionMismatch {
                found,
                expected: VERSION,
            },
            LayoutError::Truncated { expected, actual } => Error::Truncated { expected, actual },
            LayoutError::Invalid(reason) => Error::InvalidLayout { reason },
            LayoutError::Size { requested, reason } => Error::InvalidSize { requested, reason },
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound { name } => write!(f, "shared region {name:?} not found"),
            Error::PermissionDenied { name } => {
                write!(f, "permission denied opening shared region {name:?}")
            }
            Error::SymbolicLink { name } => {
                write!(
                    f,
                    "{name:?} is or passes through a symbolic link, which is never followed"
                )
            }
            Error::Untrusted { name, owner, mode } => write!(
                f,
                "refusing {name:?}: owned by uid {owner} with mode {mode:#o}; only objects of this user, writable by nobody else, are trusted (see RegionOptions::trust_foreign)"
            ),
            Error::Contended { name } => write!(
                f,
                "{name:?} kept being created and removed by others; gave up opening or creating it"
            ),
            Error::Replaced { name } => write!(
                f,
                "{name:?} now names another object than the one mapped (removed or replaced by another process)"
            ),
            Error::AlreadyExists { name } => write!(f, "shared region {name:?} already exists"),
            Error::NotOurs { found_magic } => write!(
                f,
                "not a region of this library (magic {found_magic:#018x}, expected {:#018x})",
                crate::layout::MAGIC
            ),
            Error::VersionMismatch { found, expected } => write!(
                f,
                "region format version {found} is not supported (this build speaks {expected})"
            ),
            Error::LayoutMismatch { expected, found } => {
                write!(f, "layout mismatch: expected {expected}, region has {found}")
            }
            Error::InvalidLayout { reason } => write!(f, "invalid region layout: {reason}"),
            Error::TypeMismatch { expected, found } => write!(
                f,
                "message type mismatch: this side sends or receives {expected}, the region carries {found}"
            ),
            Error::WrongKind { expected, found } => {
                write!(f, "region holds {found:?}, not {expected:?}")
            }
            Error::Corrupted(corruption) => write!(f, "{corruption}"),
            Error::Truncated { expected, actual } => write!(
                f,
                "region truncated: needs {expected} bytes but only {actual} are mapped"
            ),
            Error::InitTimeout { waited } => write!(
                f,
                "region not initialised after waiting {waited:?}: its creator may have died before publishing the header"
            ),
            Error::InvalidName { name, reason } => {
                write!(f, "invalid shared-memory name {name:?}: {reason}")
            }
            Error::InvalidSize { requested, reason } => {
                write!(f, "invalid region size {requested}: {reason}")
            }
            Error::ResourceLimit {
                call,
                limit,
                current,
                source,
            } => {
                write!(f, "{call} failed ({source}): limited by {limit}")?;
                match current {
                    Some(v) if *v == libc::RLIM_INFINITY => write!(f, " (currently unlimited)"),
                    Some(v) => write!(f, " (currently {v} bytes)"),
                    None => Ok(()),
                }
            }
            Error::HugePagesUnavailable { reason } => {
                write!(f, "huge pages required but unavailable: {reason}")
            }
            Error::NotSealed => write!(
                f,
                "file descriptor is not sealed against shrinking (F_SEAL_SHRINK); a peer could truncate it"
            ),
            Error::AlreadyAttached { role, pid } => {
                write!(f, "ring {role} already attached by live process {pid}")
            }
            Error::Poisoned { name } => write!(
                f,
                "{name} was shrunk by another process while mapped; its memory is lost"
            ),
            Error::TooManyParticipants { slots } => write!(
                f,
                "all {slots} participant slots of the region are taken by live participants"
            ),
            Error::OutOfBounds { offset, len, size } => write!(
                f,
                "{len} bytes at offset {offset} fall outside the {size}-byte data area"
            ),
            Error::Os { call, source } => write!(f, "{call} failed: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::ResourceLimit { source, .. } | Error::Os { source, .. } => Some(source),
            Error::Corrupted(corruption) => Some(corruption),
            _ => None,
        }
    }
}
