//! Why a measurement failed.

use std::fmt;
use std::io;

use ipc_core::channel;
use ipc_core::spsc::{RecvError, SendError};
use ipc_tests::payload::PayloadError;
use ipc_tests::wait::WaitError;
use nix::errno::Errno;

/// Why a measurement failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A system call failed.
    Os {
        /// The call.
        call: &'static str,
        /// What it returned.
        source: io::Error,
    },
    /// Creating a region or attaching a ring failed.
    Ipc(ipc_core::Error),
    /// The ring refused a message (other than being full).
    Send(SendError),
    /// The ring returned no message (other than being empty).
    Recv(RecvError),
    /// A typed channel refused a message (other than being full).
    ChannelSend(channel::SendFailure),
    /// A typed channel returned no message (other than being empty).
    ChannelRecv(channel::RecvError),
    /// A wait gave up, or the peer died during it.
    Wait(WaitError),
    /// The peer closed its end of a pipe or socket too early.
    PeerClosed {
        /// What was awaited.
        waiting_for: &'static str,
        /// What had arrived.
        detail: String,
    },
    /// The child process failed (non-zero exit or a signal).
    Child {
        /// Its pid.
        pid: i32,
        /// How it ended.
        status: String,
    },
    /// A message arrived with the wrong stamp or length.
    Mismatch {
        /// Which check failed.
        what: &'static str,
        /// Sequence number of the message expected.
        seq: u64,
        /// Value expected.
        expected: u64,
        /// Value found.
        found: u64,
    },
    /// A typed message arrived with the wrong value.
    Value {
        /// Sequence number of the message expected.
        seq: u64,
        /// The value expected.
        expected: String,
        /// The value found.
        found: String,
    },
    /// A verified message differs from its payload stream.
    Payload {
        /// Sequence number of the message.
        seq: u64,
        /// How it differs.
        error: PayloadError,
    },
    /// The request cannot be carried out here.
    Unsupported(&'static str),
}

/// Result of the engine's operations.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn os(call: &'static str, errno: Errno) -> Self {
        Error::Os {
            call,
            source: io::Error::from_raw_os_error(errno as i32),
        }
    }

    pub(crate) fn io(call: &'static str, source: io::Error) -> Self {
        Error::Os { call, source }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Os { call, source } => write!(f, "{call} failed: {source}"),
            Error::Ipc(e) => write!(f, "ipc: {e}"),
            Error::Send(e) => write!(f, "send: {e}"),
            Error::Recv(e) => write!(f, "receive: {e}"),
            Error::ChannelSend(e) => write!(f, "channel send: {e}"),
            Error::ChannelRecv(e) => write!(f, "channel receive: {e}"),
            Error::Wait(e) => e.fmt(f),
            Error::PeerClosed {
                waiting_for,
                detail,
            } => write!(f, "peer {detail} while we waited for {waiting_for}"),
            Error::Child { pid, status } => write!(f, "child {pid} {status}"),
            Error::Mismatch {
                what,
                seq,
                expected,
                found,
            } => write!(f, "message {seq}: {what} is {found}, expected {expected}"),
            Error::Value {
                seq,
                expected,
                found,
            } => write!(f, "message {seq} is {found}, expected {expected}"),
            Error::Payload { seq, error } => write!(f, "message {seq}: {error}"),
            Error::Unsupported(what) => write!(f, "unsupported: {what}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Os { source, .. } => Some(source),
            Error::Ipc(e) => Some(e),
            Error::Send(e) => Some(e),
            Error::Recv(e) => Some(e),
            Error::ChannelSend(e) => Some(e),
            Error::ChannelRecv(e) => Some(e),
            Error::Wait(e) => Some(e),
            Error::Payload { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl From<ipc_core::Error> for Error {
    fn from(e: ipc_core::Error) -> Self {
        Error::Ipc(e)
    }
}

impl From<SendError> for Error {
    fn from(e: SendError) -> Self {
        Error::Send(e)
    }
}

impl From<RecvError> for Error {
    fn from(e: RecvError) -> Self {
        Error::Recv(e)
    }
}

impl From<channel::SendFailure> for Error {
    fn from(e: channel::SendFailure) -> Self {
        Error::ChannelSend(e)
    }
}

impl<T> From<channel::SendError<T>> for Error {
    fn from(e: channel::SendError<T>) -> Self {
        Error::ChannelSend(e.failure)
    }
}

impl From<channel::RecvError> for Error {
    fn from(e: channel::RecvError) -> Self {
        Error::ChannelRecv(e)
    }
}

impl From<WaitError> for Error {
    fn from(e: WaitError) -> Self {
        Error::Wait(e)
    }
}
