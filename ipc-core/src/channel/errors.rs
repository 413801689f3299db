//! What typed channels report.

use std::fmt;

use crate::ring::{self, Corruption};

/// Why a message was not sent.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendFailure {
    /// No room now (from `try_send`).
    Full,
    /// Every receiver that was attached is gone.
    Disconnected,
    /// The deadline passed before there was room.
    Timeout,
    /// The message, encoded, is longer than the channel's largest.
    TooLarge {
        /// Its length.
        len: usize,
        /// The channel's largest.
        max: usize,
    },
    /// The value could not be encoded (serde refused it).
    Encode(String),
    /// The ring's shared memory holds values no correct peer writes.
    Corrupted(Corruption),
}

impl From<ring::SendError> for SendFailure {
    fn from(e: ring::SendError) -> Self {
        match e {
            ring::SendError::Full => SendFailure::Full,
            ring::SendError::Disconnected => SendFailure::Disconnected,
            ring::SendError::Timeout => SendFailure::Timeout,
            ring::SendError::TooLarge { len, max } => SendFailure::TooLarge { len, max },
            ring::SendError::Corrupted(c) => SendFailure::Corrupted(c),
        }
    }
}

impl fmt::Display for SendFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendFailure::Full => write!(f, "the channel is full"),
            SendFailure::Disconnected => write!(f, "every receiver of the channel is gone"),
            SendFailure::Timeout => write!(f, "timed out waiting for room in the channel"),
            SendFailure::TooLarge { len, max } => write!(
                f,
                "the message takes {len} bytes, more than the channel's largest of {max}"
            ),
            SendFailure::Encode(reason) => write!(f, "the message could not be encoded: {reason}"),
            SendFailure::Corrupted(c) => c.fmt(f),
        }
    }
}

impl std::error::Error for SendFailure {}

/// A value that was not sent, handed back, and why.
#[derive(Clone, PartialEq, Eq)]
pub struct SendError<T> {
    /// The value, back to the caller.
    pub value: T,
    /// Why it was not sent.
    pub failure: SendFailure,
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendError")
            .field("failure", &self.failure)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.failure.fmt(f)
    }
}

impl<T> std::error::Error for SendError<T> {}

/// Why no message was received.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecvError {
    /// No message now (from `try_recv`).
    Empty,
    /// Every sender that was attached is gone, and everything sent has been
    /// received.
    Disconnected,
    /// The deadline passed before a message came.
    Timeout,
    /// A message did not decode as the channel's type; it was consumed and
    /// the channel goes on.
    Decode {
        /// The type it should have been.
        type_name: &'static str,
        /// What the decoder said.
        reason: String,
    },
    /// A plain-old-data message of the wrong size; consumed.
    WrongSize {
        /// The type's size.
        expected: usize,
        /// The message's.
        found: usize,
    },
    /// The next message does not fit the buffer given; it stays in the
    /// channel.
    BufferTooSmall {
        /// Its length.
        needed: usize,
    },
    /// The ring's shared memory holds values no correct peer writes.
    Corrupted(Corruption),
}

impl From<ring::RecvError> for RecvError {
    fn from(e: ring::RecvError) -> Self {
        match e {
            ring::RecvError::Empty => RecvError::Empty,
            ring::RecvError::Disconnected => RecvError::Disconnected,
            ring::RecvError::Timeout => RecvError::Timeout,
            ring::RecvError::BufferTooSmall { needed } => RecvError::BufferTooSmall { needed },
            ring::RecvError::Corrupted(c) => RecvError::Corrupted(c),
        }
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Empty => write!(f, "the channel is empty"),
            RecvError::Disconnected => {
                write!(f, "every sender of the channel is gone and it is empty")
            }
            RecvError::Timeout => write!(f, "timed out waiting for a message"),
            RecvError::Decode { type_name, reason } => {
                write!(f, "a message did not decode as {type_name}: {reason}")
            }
            RecvError::WrongSize { expected, found } => write!(
                f,
                "a message of {found} bytes where the channel's type takes {expected}"
            ),
            RecvError::BufferTooSmall { needed } => {
                write!(f, "buffer too small for a message of {needed} bytes")
            }
            RecvError::Corrupted(c) => c.fmt(f),
        }
    }
}

impl std::error::Error for RecvError {}
