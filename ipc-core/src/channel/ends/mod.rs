//! Senders and receivers of typed channels, over either ring kind.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

#[cfg(feature = "pod")]
use super::codec::Pod;
#[cfg(feature = "serde")]
use super::codec::{self, Serde, BINCODE};
use super::codec::{Bytes, Codec};
#[cfg(any(feature = "serde", feature = "pod"))]
use super::errors::SendError;
use super::errors::{RecvError, SendFailure};
use crate::ring;
use crate::wait::deadline_after;
use crate::{mpmc, spsc, Error};

#[cfg(feature = "tokio")]
mod asynchronous;
mod iter;

pub use iter::{Iter, TryIter};

/// How long a call may wait.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Block {
    /// Not at all (`try_` calls).
    Never,
    /// Until a deadline.
    Until(Instant),
    /// As long as it takes.
    Forever,
}

/// The producing handle underneath a sender.
#[derive(Debug)]
pub(crate) enum Tx {
    Spsc(spsc::Producer),
    Mpmc(mpmc::Producer),
}

/// The consuming handle underneath a receiver.
#[derive(Debug)]
pub(crate) enum Rx {
    Spsc(spsc::Consumer),
    Mpmc(mpmc::Consumer),
}

impl Tx {
    fn grant(&mut self, len: usize, block: Block) -> Result<Grant<'_>, ring::SendError> {
        Ok(Grant(match (self, block) {
            (Tx::Spsc(p), Block::Never) => GrantOf::Spsc(p.try_reserve(len)?),
            (Tx::Spsc(p), Block::Until(t)) => GrantOf::Spsc(p.reserve_deadline(len, t)?),
            (Tx::Spsc(p), Block::Forever) => GrantOf::Spsc(p.reserve(len)?),
            (Tx::Mpmc(p), Block::Never) => GrantOf::Mpmc(p.try_reserve(len)?),
            (Tx::Mpmc(p), Block::Until(t)) => GrantOf::Mpmc(p.reserve_deadline(len, t)?),
            (Tx::Mpmc(p), Block::Forever) => GrantOf::Mpmc(p.reserve(len)?),
        }))
    }

    /// Copies `bytes` in, trusting nothing (atomic word copies).
    fn send(&mut self, bytes: &[u8], block: Block) -> Result<(), ring::SendError> {
        match (self, block) {
            (Tx::Spsc(p), Block::Never) => p.try_send(bytes),
            (Tx::Spsc(p), Block::Until(t)) => p.send_deadline(bytes, t),
            (Tx::Spsc(p), Block::Forever) => p.send(bytes),
            (Tx::Mpmc(p), Block::Never) => p.try_send(bytes),
            (Tx::Mpmc(p), Block::Until(t)) => p.send_deadline(bytes, t),
            (Tx::Mpmc(p), Block::Forever) => p.send(bytes),
        }
    }

    fn max_message(&self) -> usize {
        match self {
            Tx::Spsc(p) => p.max_message(),
            Tx::Mpmc(p) => p.max_message(),
        }
    }

    /// Messages queued and slots (MPMC only: an SPSC ring counts bytes).
    fn occupancy(&self) -> Option<(usize, usize)> {
        match self {
            Tx::Spsc(_) => None,
            Tx::Mpmc(p) => Some((p.queued(), p.capacity())),
        }
    }

    fn peers_gone(&self) -> bool {
        match self {
            Tx::Spsc(p) => p.peers_gone_now(),
            Tx::Mpmc(p) => p.peers_gone_now(),
        }
    }
}

impl Rx {
    fn guard(&mut self, block: Block) -> Result<Guard<'_>, ring::RecvError> {
        Ok(Guard(match (self, block) {
            (Rx::Spsc(c), Block::Never) => GuardOf::Spsc(c.try_recv()?),
            (Rx::Spsc(c), Block::Until(t)) => GuardOf::Spsc(c.recv_deadline(t)?),
            (Rx::Spsc(c), Block::Forever) => GuardOf::Spsc(c.recv()?),
            (Rx::Mpmc(c), Block::Never) => GuardOf::Mpmc(c.try_recv()?),
            (Rx::Mpmc(c), Block::Until(t)) => GuardOf::Mpmc(c.recv_deadline(t)?),
            (Rx::Mpmc(c), Block::Forever) => GuardOf::Mpmc(c.recv()?),
        }))
    }

    /// Copies the next message into `buf`, trusting nothing.
    fn copy(&mut self, buf: &mut [u8], block: Block) -> Result<usize, ring::RecvError> {
        match (self, block) {
            (Rx::Spsc(c), Block::Never) => c.try_recv_into(buf),
            (Rx::Spsc(c), Block::Until(t)) => c.recv_into_deadline(buf, t),
            (Rx::Spsc(c), Block::Forever) => c.recv_into(buf),
            (Rx::Mpmc(c), Block::Never) => c.try_recv_into(buf),
            (Rx::Mpmc(c), Block::Until(t)) => c.recv_into_deadline(buf, t),
            (Rx::Mpmc(c), Block::Forever) => c.recv_into(buf),
        }
    }

    /// As [`Tx::occupancy`].
    fn occupancy(&self) -> Option<(usize, usize)> {
        match self {
            Rx::Spsc(_) => None,
            Rx::Mpmc(c) => Some((c.queued(), c.capacity())),
        }
    }

    fn peers_gone(&self) -> bool {
        match self {
            Rx::Spsc(c) => c.peers_gone_now(),
            Rx::Mpmc(c) => c.peers_gone_now(),
        }
    }
}

/// Room for one message, written in place through `Deref<Target = [u8]>`;
/// [`commit`](Grant::commit) sends it, dropping it sends nothing. Like the
/// rings' grants, the view trusts the other side to follow the protocol.
#[must_use = "dropping a grant sends nothing; call `commit`"]
pub struct Grant<'a>(GrantOf<'a>);

enum GrantOf<'a> {
    Spsc(spsc::Grant<'a>),
    Mpmc(mpmc::Grant<'a>),
}

impl Grant<'_> {
    /// Sends the message.
    ///
    /// # Errors
    /// [`SendFailure::Corrupted`] only, when an MPMC slot was taken from
    /// this sender (see [`mpmc::Grant::commit`]).
    pub fn commit(self) -> Result<(), SendFailure> {
        match self.0 {
            GrantOf::Spsc(grant) => {
                grant.commit();
                Ok(())
            }
            GrantOf::Mpmc(grant) => grant.commit().map_err(SendFailure::from),
        }
    }
}

impl Deref for Grant<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            GrantOf::Spsc(grant) => grant,
            GrantOf::Mpmc(grant) => grant,
        }
    }
}

impl DerefMut for Grant<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        match &mut self.0 {
            GrantOf::Spsc(grant) => grant,
            GrantOf::Mpmc(grant) => grant,
        }
    }
}

impl fmt::Debug for Grant<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grant").field("len", &self.len()).finish()
    }
}

/// A message read in place, released when dropped. Like the rings' guards,
/// the view trusts the other side to follow the protocol.
#[must_use = "the message is released as soon as the guard is dropped"]
pub struct Guard<'a>(GuardOf<'a>);

enum GuardOf<'a> {
    Spsc(spsc::ReadGuard<'a>),
    Mpmc(mpmc::ReadGuard<'a>),
}

impl Deref for Guard<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            GuardOf::Spsc(guard) => guard,
            GuardOf::Mpmc(guard) => guard,
        }
    }
}

impl fmt::Debug for Guard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard").field("len", &self.len()).finish()
    }
}

/// The sending end of a channel of `T` carried by codec `C`: `send`
/// (waiting for room as the channel's wait strategy says), `send_timeout`,
/// `send_deadline` and `try_send`. A value that is not sent is handed back
/// in the [`SendError`].
pub struct Sender<T: ?Sized, C> {
    tx: Tx,
    _message: PhantomData<fn(&T) -> C>,
}

/// The receiving end of a channel of `T` carried by codec `C`: `recv`,
/// `recv_timeout`, `recv_deadline` and `try_recv`.
pub struct Receiver<T: ?Sized, C> {
    rx: Rx,
    /// A private copy of the message being decoded or iterated (serde
    /// receives and byte iterators; allocated once, at the channel's
    /// largest message).
    scratch: Vec<u8>,
    max_message: u64,
    _message: PhantomData<fn(&T) -> C>,
}

impl<T: ?Sized, C> fmt::Debug for Sender<T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").field("ring", &self.tx).finish()
    }
}

impl<T: ?Sized, C> fmt::Debug for Receiver<T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").field("ring", &self.rx).finish()
    }
}

impl<T: ?Sized, C: Codec<T>> Sender<T, C> {
    pub(crate) fn new(tx: Tx) -> Self {
        Sender {
            tx,
            _message: PhantomData,
        }
    }

    /// The largest message this channel carries, in bytes (encoded).
    pub fn max_message(&self) -> usize {
        self.tx.max_message()
    }

    /// Messages in the channel now, on an MPMC queue; `None` on an SPSC
    /// ring, which holds records of varying size and keeps no count (see
    /// [`bytes_used`](Self::bytes_used)).
    ///
    /// A snapshot that may be stale by the time it returns, read from
    /// shared memory and clamped to the capacity: a report, not a promise
    /// that the next `try_send` succeeds. Messages being written or read
    /// at that moment may be counted or not.
    ///
    /// # Examples
    /// ```
    /// use ipc_core::channel::Channel;
    ///
    /// let endpoint = Channel::bytes().mpmc().capacity(4).max_message(16).anonymous()?;
    /// let (mut tx, _rx) = (endpoint.sender()?, endpoint.receiver()?);
    /// tx.send(b"one")?;
    /// tx.send(b"two")?;
    /// assert_eq!(tx.len(), Some(2));
    /// assert_eq!(tx.is_full(), Some(false));
    ///
    /// let spsc = Channel::bytes().spsc().anonymous()?;
    /// assert_eq!(spsc.sender()?.len(), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> Option<usize> {
        self.tx.occupancy().map(|(queued, _)| queued)
    }

    /// Whether the channel holds no message now (a snapshot, as for
    /// [`len`](Self::len)); on an SPSC ring, whether
    /// [`bytes_used`](Self::bytes_used) is 0.
    ///
    /// # Examples
    /// ```
    /// use ipc_core::channel::Channel;
    ///
    /// let endpoint = Channel::bytes().anonymous()?; // SPSC
    /// let (mut tx, mut rx) = (endpoint.sender()?, endpoint.receiver()?);
    /// assert!(tx.is_empty());
    /// tx.send(b"x")?;
    /// assert!(!tx.is_empty());
    /// drop(rx.recv()?);
    /// assert!(tx.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        match &self.tx {
            Tx::Spsc(p) => p.bytes_used() == 0,
            Tx::Mpmc(p) => p.queued() == 0,
        }
    }

    /// Whether every slot of an MPMC queue holds a message now (a
    /// snapshot, as for [`len`](Self::len)); `None` on an SPSC ring, where
    /// whether a message fits depends on its size.
    ///
    /// # Examples
    /// ```
    /// use ipc_core::channel::Channel;
    ///
    /// let endpoint = Channel::bytes().mpmc().capacity(2).max_message(8).anonymous()?;
    /// let (mut tx, _rx) = (endpoint.sender()?, endpoint.receiver()?);
    /// while tx.try_send(b"x").is_ok() {}
    /// assert_eq!(tx.is_full(), Some(true));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_full(&self) -> Option<bool> {
        self.tx.occupancy().map(|(queued, slots)| queued >= slots)
    }

    /// Bytes of the SPSC ring's buffer that hold records not yet released
    /// by the receiver (headers and padding included), clamped to its
    /// capacity; `None` on an MPMC queue, which counts messages
    /// ([`len`](Self::len)).
    ///
    /// # Examples
    /// ```
    /// use ipc_core::channel::Channel;
    ///
    /// let endpoint = Channel::bytes().spsc().anonymous()?;
    /// let mut tx = endpoint.sender()?;
    /// assert_eq!(tx.bytes_used(), Some(0));
    /// tx.send(b"hello")?;
    /// assert!(tx.bytes_used() >= Some(5));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn bytes_used(&self) -> Option<usize> {
        match &self.tx {
            Tx::Spsc(p) => Some(p.bytes_used()),
            Tx::Mpmc(_) => None,
        }
    }

    /// Whether every receiver that was attached is gone, so a send would
    /// fail with [`SendFailure::Disconnected`]. No syscall: one shared load
    /// and a scan of the participant table. A receiver that died is gone
    /// once it is reaped (a waiting call does that).
    ///
    /// # Examples
    /// ```
    /// use ipc_core::channel::Channel;
    ///
    /// let endpoint = Channel::bytes().anonymous()?;
    /// let (tx, rx) = (endpoint.sender()?, endpoint.receiver()?);
    /// assert!(!tx.is_disconnected());
    /// drop(rx);
    /// assert!(tx.is_disconnected());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_disconnected(&self) -> bool {
        self.tx.peers_gone()
    }

    /// Another sender of the same MPMC queue, in this process: a
    /// participant of its own, waiting as this one does.
    ///
    /// # Errors
    /// [`Error::AlreadyAttached`] on an SPSC ring, whose one producer is
    /// this sender; [`Error::TooManyParticipants`] when the MPMC table is
    /// full.
    ///
    /// # Examples
    /// ```
    /// use ipc_core::channel::Channel;
    ///
    /// let endpoint = Channel::bytes().mpmc().anonymous()?;
    /// let (tx, mut rx) = (endpoint.sender()?, endpoint.receiver()?);
    /// let mut other = tx.try_clone()?;
    /// std::thread::spawn(move || other.send(b"from a thread")).join().unwrap()?;
    /// assert_eq!(&*rx.recv()?, b"from a thread");
    ///
    /// let spsc = Channel::bytes().spsc().anonymous()?;
    /// assert!(spsc.sender()?.try_clone().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_clone(&self) -> Result<Self, Error> {
        match &self.tx {
            Tx::Spsc(_) => Err(Error::AlreadyAttached {
                role: "producer",
                pid: std::process::id(),
            }),
            Tx::Mpmc(p) => {
                let mut clone = p.try_clone()?;
                clone.set_wait_strategy(p.strategy());
                Ok(Sender::new(Tx::Mpmc(clone)))
            }
        }
    }
}

impl<T: ?Sized, C: Codec<T>> Receiver<T, C> {
    pub(crate) fn new(rx: Rx, max_message: u64) -> Self {
        Receiver {
            rx,
            scratch: Vec::new(),
            max_message,
            _message: PhantomData,
        }
    }

    /// Messages in the channel now, on an MPMC queue; `None` on an SPSC
    /// ring (see [`Sender::len`]: the same snapshot, from this side).
    ///
    /// # Examples
    /// ```
    /// use ipc_core::channel::Channel;
    ///
    /// let endpoint = Channel::bytes().mpmc().capacity(4).max_message(16).anonymous()?;
    /// let (mut tx, mut rx) = (endpoint.sender()?, endpoint.receiver()?);
    /// tx.send(b"one")?;
    /// assert_eq!(rx.len(), Some(1));
    /// drop(rx.recv()?);
    /// assert_eq!(rx.len(), Some(0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> Option<usize> {
        self.rx.occupancy().map(|(queued, _)| queued)
    }

    /// Whether there is no message to receive now (a snapshot). On an SPSC
    /// ring it asks what `try_recv` asks first, whether a record is
    /// committed at this receiver's position, so `false` means the next
    /// `try_recv` does not report `Empty`.
    ///
    /// # Examples
    /// ```
    /// use ipc_core::channel::Channel;
    ///
    /// let endpoint = Channel::bytes().anonymous()?; // SPSC
    /// let (mut tx, rx) = (endpoint.sender()?, endpoint.receiver()?);
    /// assert!(rx.is_empty());
    /// tx.send(b"x")?;
    /// assert!(!rx.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        match &self.rx {
            Rx::Spsc(c) => !c.has_record(),
            Rx::Mpmc(c) => c.queued() == 0,
        }
    }

    /// Whether every slot of an MPMC queue holds a message now; `None` on
    /// an SPSC ring (see [`Sender::is_full`]).
    ///
    /// # Examples
    /// ```
    /// use ipc_core::channel::Channel;
    ///
    /// let endpoint = Channel::bytes().mpmc().capacity(2).max_message(8).anonymous()?;
    /// let (mut tx, rx) = (endpoint.sender()?, endpoint.receiver()?);
    /// assert_eq!(rx.is_full(), Some(false));
    /// while tx.try_send(b"x").is_ok() {}
    /// assert_eq!(rx.is_full(), Some(true));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_full(&self) -> Option<bool> {
        self.rx.occupancy().map(|(queued, slots)| queued >= slots)
    }

    /// Whether every sender that was attached is gone (messages may still
    /// be waiting: a receive reports `Disconnected` only once they are
    /// taken). No syscall; a sender that died is gone once it is reaped.
    ///
    /// # Examples
    /// ```
    /// use ipc_core::channel::Channel;
    ///
    /// let endpoint = Channel::bytes().anonymous()?;
    /// let (mut tx, mut rx) = (endpoint.sender()?, endpoint.receiver()?);
    /// tx.send(b"last")?;
    /// drop(tx);
    /// assert!(rx.is_disconnected());
    /// assert_eq!(&*rx.recv()?, b"last");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_disconnected(&self) -> bool {
        self.rx.peers_gone()
    }

    /// Another receiver of the same MPMC queue, in this process (each
    /// message goes to one of them); see [`Sender::try_clone`].
    ///
    /// # Errors
    /// [`Error::AlreadyAttached`] on an SPSC ring;
    /// [`Error::TooManyParticipants`] when the MPMC table is full.
    ///
    /// # Examples
    /// ```
    /// use ipc_core::channel::Channel;
    ///
    /// let endpoint = Channel::bytes().mpmc().anonymous()?;
    /// let (mut tx, rx) = (endpoint.sender()?, endpoint.receiver()?);
    /// let mut other = rx.try_clone()?;
    /// tx.send(b"to either")?;
    /// assert_eq!(&*other.recv()?, b"to either");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_clone(&self) -> Result<Self, Error> {
        match &self.rx {
            Rx::Spsc(_) => Err(Error::AlreadyAttached {
                role: "consumer",
                pid: std::process::id(),
            }),
            Rx::Mpmc(c) => {
                let mut clone = c.try_clone()?;
                clone.set_wait_strategy(c.strategy());
                Ok(Receiver::new(Rx::Mpmc(clone), self.max_message))
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Raw bytes

impl Sender<[u8], Bytes> {
    /// Copies `msg` in and sends it, waiting for room.
    ///
    /// # Errors
    /// [`SendFailure::Disconnected`], [`SendFailure::TooLarge`],
    /// [`SendFailure::Corrupted`].
    pub fn send(&mut self, msg: &[u8]) -> Result<(), SendFailure> {
        Ok(self.tx.send(msg, Block::Forever)?)
    }

    /// [`send`](Self::send), or [`SendFailure::Timeout`] after `timeout`.
    pub fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), SendFailure> {
        self.send_deadline(msg, deadline_after(timeout))
    }

    /// [`send`](Self::send), or [`SendFailure::Timeout`] at `deadline`.
    pub fn send_deadline(&mut self, msg: &[u8], deadline: Instant) -> Result<(), SendFailure> {
        Ok(self.tx.send(msg, Block::Until(deadline))?)
    }

    /// [`send`](Self::send) without waiting: [`SendFailure::Full`].
    pub fn try_send(&mut self, msg: &[u8]) -> Result<(), SendFailure> {
        Ok(self.tx.send(msg, Block::Never)?)
    }

    /// Room for a `len`-byte message to write in place, waiting for it.
    pub fn reserve(&mut self, len: usize) -> Result<Grant<'_>, SendFailure> {
        Ok(self.tx.grant(len, Block::Forever)?)
    }

    /// [`reserve`](Self::reserve), or [`SendFailure::Timeout`] after
    /// `timeout`.
    pub fn reserve_timeout(
        &mut self,
        len: usize,
        timeout: Duration,
    ) -> Result<Grant<'_>, SendFailure> {
        self.reserve_deadline(len, deadline_after(timeout))
    }

    /// [`reserve`](Self::reserve), or [`SendFailure::Timeout`] at
    /// `deadline`.
    pub fn reserve_deadline(
        &mut self,
        len: usize,
        deadline: Instant,
    ) -> Result<Grant<'_>, SendFailure> {
        Ok(self.tx.grant(len, Block::Until(deadline))?)
    }

    /// [`reserve`](Self::reserve) without waiting.
    pub fn try_reserve(&mut self, len: usize) -> Result<Grant<'_>, SendFailure> {
        Ok(self.tx.grant(len, Block::Never)?)
    }
}

impl Receiver<[u8], Bytes> {
    /// The next message, read in place, waiting for it.
    ///
    /// # Errors
    /// [`RecvError::Disconnected`], [`RecvError::Corrupted`].
    pub fn recv(&mut self) -> Result<Guard<'_>, RecvError> {
        Ok(self.rx.guard(Block::Forever)?)
    }

    /// [`recv`](Self::recv), or [`RecvError::Timeout`] after `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Guard<'_>, RecvError> {
        self.recv_deadline(deadline_after(timeout))
    }

    /// [`recv`](Self::recv), or [`RecvError::Timeout`] at `deadline`.
    pub fn recv_deadline(&mut self, deadline: Instant) -> Result<Guard<'_>, RecvError> {
        Ok(self.rx.guard(Block::Until(deadline))?)
    }

    /// [`recv`](Self::recv) without waiting: [`RecvError::Empty`].
    pub fn try_recv(&mut self) -> Result<Guard<'_>, RecvError> {
        Ok(self.rx.guard(Block::Never)?)
    }

    /// Copies the next message into `buf`, waiting for it; trusts nothing.
    pub fn recv_into(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
        Ok(self.rx.copy(buf, Block::Forever)?)
    }

    /// [`recv_into`](Self::recv_into), or [`RecvError::Timeout`] after
    /// `timeout`.
    pub fn recv_into_timeout(
        &mut self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, RecvError> {
        self.recv_into_deadline(buf, deadline_after(timeout))
    }

    /// [`recv_into`](Self::recv_into), or [`RecvError::Timeout`] at
    /// `deadline`.
    pub fn recv_into_deadline(
        &mut self,
        buf: &mut [u8],
        deadline: Instant,
    ) -> Result<usize, RecvError> {
        Ok(self.rx.copy(buf, Block::Until(deadline))?)
    }

    /// [`recv_into`](Self::recv_into) without waiting.
    pub fn try_recv_into(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
        Ok(self.rx.copy(buf, Block::Never)?)
    }
}

// ---------------------------------------------------------------------------
// Typed values: the calls both typed codecs share

/// The blocking, bounded and `try_` calls of the typed handles, over each
/// codec's own `send_with` and `recv_with`.
#[cfg(any(feature = "serde", feature = "pod"))]
macro_rules! typed_calls {
    ($codec:ty, $send:literal, $recv:literal, $($bound:tt)+) => {
        impl<T> Sender<T, $codec>
        where
            T: $($bound)+,
        {
            #[doc = $send]
            /// Waits for room as the channel's wait strategy says.
            ///
            /// # Errors
            /// The value comes back with [`SendFailure::Disconnected`] (every
            /// receiver is gone), [`SendFailure::TooLarge`] (nothing is sent),
            /// [`SendFailure::Encode`] or [`SendFailure::Corrupted`].
            pub fn send(&mut self, value: T) -> Result<(), SendError<T>> {
                self.send_with(value, Block::Forever)
            }

            /// [`send`](Self::send), or [`SendFailure::Timeout`] after `timeout`.
            pub fn send_timeout(&mut self, value: T, timeout: Duration) -> Result<(), SendError<T>> {
                self.send_with(value, Block::Until(deadline_after(timeout)))
            }

            /// [`send`](Self::send), or [`SendFailure::Timeout`] at `deadline`.
            pub fn send_deadline(&mut self, value: T, deadline: Instant) -> Result<(), SendError<T>> {
                self.send_with(value, Block::Until(deadline))
            }

            /// [`send`](Self::send) without waiting: [`SendFailure::Full`].
            pub fn try_send(&mut self, value: T) -> Result<(), SendError<T>> {
                self.send_with(value, Block::Never)
            }
        }

        impl<T> Receiver<T, $codec>
        where
            T: $($bound)+,
        {
            #[doc = $recv]
            /// Waits for it as the channel's wait strategy says.
            ///
            /// # Errors
            /// [`RecvError::Disconnected`] once every sender is gone and
            /// everything sent has been received; [`RecvError::Decode`] or
            /// [`RecvError::WrongSize`] for a message that is not a `T` (it is
            /// consumed, and the channel goes on); [`RecvError::Corrupted`].
            pub fn recv(&mut self) -> Result<T, RecvError> {
                self.recv_with(Block::Forever)
            }

            /// [`recv`](Self::recv), or [`RecvError::Timeout`] after `timeout`.
            pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T, RecvError> {
                self.recv_with(Block::Until(deadline_after(timeout)))
            }

            /// [`recv`](Self::recv), or [`RecvError::Timeout`] at `deadline`.
            pub fn recv_deadline(&mut self, deadline: Instant) -> Result<T, RecvError> {
                self.recv_with(Block::Until(deadline))
            }

            /// [`recv`](Self::recv) without waiting: [`RecvError::Empty`].
            pub fn try_recv(&mut self) -> Result<T, RecvError> {
                self.recv_with(Block::Never)
            }
        }
    };
}

#[cfg(feature = "serde")]
typed_calls!(
    Serde,
    "Encodes `value` straight into the ring (no buffer) and sends it.",
    "The next message, decoded. It is copied out of the ring first, so nothing a peer does meanwhile can change it.",
    serde::Serialize + serde::de::DeserializeOwned
);
#[cfg(feature = "pod")]
typed_calls!(
    Pod,
    "Copies `value` in (its bytes, no encoding) and sends it.",
    "The next message, copied out (trusting nothing).",
    bytemuck::Pod
);

// ---------------------------------------------------------------------------
// serde, with bincode

#[cfg(feature = "serde")]
impl<T> Sender<T, Serde>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    /// Two passes and no buffer: the encoded size first, then the encoding
    /// itself into exactly that much reserved ring space.
    fn send_with(&mut self, value: T, block: Block) -> Result<(), SendError<T>> {
        let fail = |value, failure| Err(SendError { value, failure });
        let mut size = bincode::enc::write::SizeWriter::default();
        if let Err(e) = bincode::serde::encode_into_writer(&value, &mut size, codec::encoding()) {
            return fail(value, SendFailure::Encode(e.to_string()));
        }
        let len = size.bytes_written;
        let mut grant = match self.tx.grant(len, block) {
            Ok(grant) => grant,
            Err(e) => return fail(value, e.into()),
        };
        match bincode::serde::encode_into_slice(&value, &mut grant, codec::encoding()) {
            Ok(written) if written == len => {}
            Ok(written) => {
                // Serialize was not deterministic (the two passes disagree);
                // send nothing.
                drop(grant);
                return fail(
                    value,
                    SendFailure::Encode(format!("encoded {written} bytes after measuring {len}")),
                );
            }
            Err(e) => {
                drop(grant);
                return fail(value, SendFailure::Encode(e.to_string()));
            }
        }
        grant
            .commit()
            .map_err(|failure| SendError { value, failure })
    }
}

#[cfg(feature = "serde")]
impl<T> Receiver<T, Serde>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    fn recv_with(&mut self, block: Block) -> Result<T, RecvError> {
        if self.scratch.len() as u64 != self.max_message {
            self.scratch = vec![0; self.max_message as usize];
        }
        let len = self.rx.copy(&mut self.scratch, block)?;
        let bytes = &self.scratch[..len];
        let decode_error = |reason: String| RecvError::Decode {
            type_name: std::any::type_name::<T>(),
            reason: format!("{reason} ({BINCODE})"),
        };
        match codec::decode::<T>(bytes) {
            Ok((value, used)) if used == len => Ok(value),
            Ok((_, used)) => Err(decode_error(format!(
                "{} bytes left over after the value",
                len - used
            ))),
            Err(e) => Err(decode_error(e.to_string())),
        }
    }
}

// ---------------------------------------------------------------------------
// Plain old data

#[cfg(feature = "pod")]
impl<T: bytemuck::Pod> Sender<T, Pod> {
    fn send_with(&mut self, value: T, block: Block) -> Result<(), SendError<T>> {
        self.tx
            .send(bytemuck::bytes_of(&value), block)
            .map_err(|e| SendError {
                value,
                failure: e.into(),
            })
    }

    /// A `T` to fill in place, in the ring, waiting for room; sent by
    /// [`PodGrant::commit`]. It starts as whatever bytes the slot held.
    pub fn reserve(&mut self) -> Result<PodGrant<'_, T>, SendFailure> {
        self.reserve_with(Block::Forever)
    }

    /// [`reserve`](Self::reserve), or [`SendFailure::Timeout`] after
    /// `timeout`.
    pub fn reserve_timeout(&mut self, timeout: Duration) -> Result<PodGrant<'_, T>, SendFailure> {
        self.reserve_with(Block::Until(deadline_after(timeout)))
    }

    /// [`reserve`](Self::reserve), or [`SendFailure::Timeout`] at
    /// `deadline`.
    pub fn reserve_deadline(&mut self, deadline: Instant) -> Result<PodGrant<'_, T>, SendFailure> {
        self.reserve_with(Block::Until(deadline))
    }

    /// [`reserve`](Self::reserve) without waiting.
    pub fn try_reserve(&mut self) -> Result<PodGrant<'_, T>, SendFailure> {
        self.reserve_with(Block::Never)
    }

    fn reserve_with(&mut self, block: Block) -> Result<PodGrant<'_, T>, SendFailure> {
        let grant = self.tx.grant(std::mem::size_of::<T>(), block)?;
        Ok(PodGrant {
            grant,
            _value: PhantomData,
        })
    }
}

#[cfg(feature = "pod")]
impl<T: bytemuck::Pod> Receiver<T, Pod> {
    fn recv_with(&mut self, block: Block) -> Result<T, RecvError> {
        let mut value = T::zeroed();
        let len = self.rx.copy(bytemuck::bytes_of_mut(&mut value), block)?;
        check_size::<T>(len)?;
        Ok(value)
    }

    /// The next message, read in place (no copy), waiting for it; its slot
    /// is released when the guard drops.
    pub fn recv_ref(&mut self) -> Result<PodGuard<'_, T>, RecvError> {
        self.recv_ref_with(Block::Forever)
    }

    /// [`recv_ref`](Self::recv_ref), or [`RecvError::Timeout`] after
    /// `timeout`.
    pub fn recv_ref_timeout(&mut self, timeout: Duration) -> Result<PodGuard<'_, T>, RecvError> {
        self.recv_ref_with(Block::Until(deadline_after(timeout)))
    }

    /// [`recv_ref`](Self::recv_ref), or [`RecvError::Timeout`] at
    /// `deadline`.
    pub fn recv_ref_deadline(&mut self, deadline: Instant) -> Result<PodGuard<'_, T>, RecvError> {
        self.recv_ref_with(Block::Until(deadline))
    }

    /// [`recv_ref`](Self::recv_ref) without waiting.
    pub fn try_recv_ref(&mut self) -> Result<PodGuard<'_, T>, RecvError> {
        self.recv_ref_with(Block::Never)
    }

    fn recv_ref_with(&mut self, block: Block) -> Result<PodGuard<'_, T>, RecvError> {
        let guard = self.rx.guard(block)?;
        check_size::<T>(guard.len())?;
        Ok(PodGuard {
            guard,
            _value: PhantomData,
        })
    }
}

#[cfg(feature = "pod")]
fn check_size<T>(len: usize) -> Result<(), RecvError> {
    if len == std::mem::size_of::<T>() {
        Ok(())
    } else {
        Err(RecvError::WrongSize {
            expected: std::mem::size_of::<T>(),
            found: len,
        })
    }
}

/// A plain-old-data value being written in place; see
/// [`Sender::reserve`](Sender#method.reserve-1).
#[cfg(feature = "pod")]
#[must_use = "dropping a grant sends nothing; call `commit`"]
pub struct PodGrant<'a, T> {
    grant: Grant<'a>,
    _value: PhantomData<&'a mut T>,
}

#[cfg(feature = "pod")]
impl<T: bytemuck::Pod> PodGrant<'_, T> {
    /// Sends the value.
    ///
    /// # Errors
    /// As [`Grant::commit`].
    pub fn commit(self) -> Result<(), SendFailure> {
        self.grant.commit()
    }
}

#[cfg(feature = "pod")]
impl<T: bytemuck::Pod> Deref for PodGrant<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // The grant is `size_of::<T>()` bytes at an 8-aligned offset, and
        // `T` is at most 8-aligned (checked at compile time by the codec):
        // the cast cannot fail; every bit pattern is a valid `T`.
        bytemuck::from_bytes(&self.grant)
    }
}

#[cfg(feature = "pod")]
impl<T: bytemuck::Pod> DerefMut for PodGrant<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // As in `deref`.
        bytemuck::from_bytes_mut(&mut self.grant)
    }
}

#[cfg(feature = "pod")]
impl<T> fmt::Debug for PodGrant<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PodGrant").finish_non_exhaustive()
    }
}

/// A plain-old-data value read in place; see
/// [`Receiver::recv_ref`](Receiver#method.recv_ref).
#[cfg(feature = "pod")]
#[must_use = "the message is released as soon as the guard is dropped"]
pub struct PodGuard<'a, T> {
    guard: Guard<'a>,
    _value: PhantomData<&'a T>,
}

#[cfg(feature = "pod")]
impl<T: bytemuck::Pod> Deref for PodGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // As in `PodGrant::deref`: a whole `T` (checked), 8-aligned.
        bytemuck::from_bytes(&self.guard)
    }
}

#[cfg(feature = "pod")]
impl<T> fmt::Debug for PodGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PodGuard").finish_non_exhaustive()
    }
}
