//! Channels: the one way in. Messages of any `serde` type (encoded with
//! bincode 2), plain-old-data types written and read in place, or raw
//! bytes, over either ring kind, by name, across `fork`, or over a memfd
//! handed to another process.
//!
//! [`Channel`] starts a [`Builder`] for a message type and codec; the
//! builder's options cover the ring (SPSC or MPMC, capacity, largest
//! message, how handles wait) and the region ([`RegionOptions`]: mode,
//! prefaulting, locking, huge pages); its terminal methods make or open the
//! region and give an [`Endpoint`], from which [`Sender`]s and
//! [`Receiver`]s attach.
//!
//! ```
//! # #[cfg(feature = "serde")] {
//! use ipc_core::channel::Channel;
//!
//! #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
//! struct Order { id: u64, item: String, quantities: Vec<u32> }
//!
//! let name = format!("/doc-orders-{}", std::process::id());
//! // The creating process (it removes the name when the endpoint drops).
//! let created = Channel::serde::<Order>().capacity(64).max_message(512).create(&name)?;
//! let mut tx = created.sender()?;
//! // Another process, usually: open by name and attach the other side.
//! let mut rx = Channel::serde::<Order>().open(&name)?.receiver()?;
//!
//! tx.send(Order { id: 7, item: "bolts".into(), quantities: vec![1, 2] })?;
//! assert_eq!(rx.recv()?.item, "bolts");
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Across `fork`: make the endpoint before forking, then each process
//! attaches its own end. A handle belongs to the process that attached it:
//! one inherited across `fork` must not be used in the child (the child is
//! not registered as its holder, so the others would see it leave when the
//! parent's copy drops).
//!
//! ```
//! # #[cfg(feature = "pod")] {
//! use ipc_core::channel::Channel;
//!
//! #[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
//! #[repr(C)]
//! struct Tick { price: f64, volume: u64 }
//!
//! let endpoint = Channel::pod::<Tick>().mpmc().capacity(256).anonymous()?;
//! // SAFETY: this program has a single thread, so the child may allocate.
//! match unsafe { libc::fork() } {
//!     -1 => return Err(std::io::Error::last_os_error().into()),
//!     0 => {
//!         let sent = endpoint.sender().map(|mut tx| tx.send(Tick { price: 1.5, volume: 100 }));
//!         // SAFETY: leaves the child at once, running no destructor of the parent's.
//!         unsafe { libc::_exit(if matches!(sent, Ok(Ok(()))) { 0 } else { 1 }) }
//!     }
//!     child => {
//!         let mut rx = endpoint.receiver()?;
//!         assert_eq!(*rx.recv_ref()?, Tick { price: 1.5, volume: 100 }); // read in place
//!         let mut status = 0;
//!         // SAFETY: waits for our own child; `status` is a valid out-pointer.
//!         assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
//!         assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
//!     }
//! }
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! To an unrelated process, over a Unix socket: make a memfd endpoint and
//! [`Endpoint::send_fd`]; the other side calls [`Builder::receive_fd`].
//!
//! ```
//! use std::os::unix::net::UnixStream;
//! use ipc_core::channel::Channel;
//!
//! let (here, there) = UnixStream::pair()?;
//! let ours = Channel::bytes().max_message(64).memfd("doc-bytes")?;
//! ours.send_fd(&here)?;
//! let theirs = Channel::bytes().receive_fd(&there)?; // in the other process
//! ours.sender()?.send(b"over a memfd")?;
//! assert_eq!(&*theirs.receiver()?.recv()?, b"over a memfd");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The builder's other options: how handles wait, and the region's own
//! options (permissions, prefaulting, locking in RAM, huge pages).
//!
//! ```
//! use ipc_core::channel::Channel;
//! use ipc_core::wait::WaitStrategy;
//! use ipc_core::{HugePages, RegionOptions};
//!
//! let name = format!("/doc-options-{}", std::process::id());
//! let endpoint = Channel::bytes()
//!     .mpmc()
//!     .capacity(4096)
//!     .max_message(256)
//!     .wait_strategy(WaitStrategy::BusyPoll) // lowest latency, one core each
//!     .region_options(
//!         RegionOptions::new()
//!             .mode(0o600) // the default: this user only
//!             .populate(true) // fault every page in now, not on first use
//!             .lock(false) // `true`: mlock, never swapped (needs RLIMIT_MEMLOCK)
//!             .huge_pages(HugePages::BestEffort),
//!     )
//!     .create(&name)?;
//! assert_eq!(endpoint.region().layout().capacity, 4096);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Async
//! With the `tokio` feature, every handle also has `send_async` and
//! `recv_async` (and the in-place `recv_ref_async`, `recv_into_async`):
//! they try at once and, when they must wait, wait on tokio's blocking pool
//! (sleeping on the ring's futex), never on a runtime worker and never
//! spinning. They work on any channel, named ones between unrelated
//! processes included. Waiting costs a hand-off to a blocking thread and
//! back; a call that need not wait costs what `try_send`/`try_recv` do.
//!
//! ```
//! # #[cfg(feature = "tokio")]
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! use ipc_core::channel::Channel;
//!
//! let endpoint = Channel::serde::<String>().anonymous()?;
//! let (mut tx, mut rx) = (endpoint.sender()?, endpoint.receiver()?);
//! let producer = tokio::spawn(async move { tx.send_async("hello".to_string()).await });
//! assert_eq!(rx.recv_async().await?, "hello");
//! producer.await??;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Type safety between separately built programs
//! Each codec describes its messages: the type's name, size and alignment,
//! and the codec with its version (e.g. `app::Order, 48 B, align 8, serde
//! with bincode 2.0.1`). The region's header keeps that description and a
//! tag derived from it; opening, or attaching to, a region of another type
//! or codec fails with [`Error::TypeMismatch`], naming both. The name is
//! `std::any::type_name`, the same for the same source and compiler.
//!
//! # What trusts what
//! Serde messages are copied out of the ring (atomically, word by word)
//! before they are decoded, so decoding trusts nothing; bytes that do not
//! decode give [`RecvError::Decode`] naming the type, and the channel goes
//! on. A plain-old-data value is read and written in place
//! ([`Receiver::recv_ref`], [`Sender::reserve`]) under the same trust as the
//! rings' zero-copy views; [`Receiver::recv`] copies it out.

use std::fmt;
use std::marker::PhantomData;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::layout::MessageType;
use crate::wait::{Backoff, WaitStrategy};
use crate::{mpmc, spsc, Error, Region, RegionOptions};

mod codec;
mod ends;
mod errors;
#[cfg(feature = "serde")]
mod nesting;
#[cfg(all(test, feature = "serde", feature = "pod"))]
mod tests;

#[cfg(feature = "pod")]
pub use codec::Pod;
#[cfg(feature = "serde")]
pub use codec::Serde;
pub use codec::{Bytes, Codec};
pub use ends::{Grant, Guard, Iter, Receiver, Sender, TryIter};
#[cfg(feature = "pod")]
pub use ends::{PodGrant, PodGuard};
pub use errors::{RecvError, SendError, SendFailure};

/// Starts a [`Builder`] for one message type and codec.
#[derive(Debug)]
pub struct Channel;

impl Channel {
    /// A channel of `T`, any `serde` type, encoded with bincode 2 (its
    /// standard configuration).
    #[cfg(feature = "serde")]
    pub fn serde<T>() -> Builder<T, Serde>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        Builder::new()
    }

    /// A channel of `T`, a plain-old-data type (any bit pattern valid, no
    /// padding: `bytemuck::Pod`), written and read in place with no
    /// encoding. Its alignment must be at most 8 (the rings' payloads are
    /// 8-aligned); a larger one fails to compile.
    #[cfg(feature = "pod")]
    pub fn pod<T: bytemuck::Pod>() -> Builder<T, Pod> {
        Builder::new()
    }

    /// A channel of raw byte messages.
    pub fn bytes() -> Builder<[u8], Bytes> {
        Builder::new()
    }
}

/// Which ring a channel uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RingKind {
    /// One producer and one consumer at a time ([`spsc`]): the fastest,
    /// and messages of any size up to the maximum take only their size.
    #[default]
    Spsc,
    /// Any number of each ([`mpmc`]); every message takes a whole slot.
    Mpmc,
}

/// Options of a channel, then the way to make or open it; see the
/// [module docs](self).
///
/// Defaults: SPSC, room for 1024 messages, a largest message of 4096 bytes
/// (plain-old-data: the type's size), [`WaitStrategy::default`], and
/// [`RegionOptions::new`]'s defaults (mode `0600`, ...).
pub struct Builder<T: ?Sized, C> {
    kind: RingKind,
    capacity: u64,
    max_message: Option<u64>,
    participants: Option<u64>,
    strategy: WaitStrategy,
    options: RegionOptions,
    open_timeout: Duration,
    _message: PhantomData<fn(&T) -> C>,
}

impl<T: ?Sized, C> fmt::Debug for Builder<T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("kind", &self.kind)
            .field("capacity", &self.capacity)
            .field("max_message", &self.max_message)
            .field("strategy", &self.strategy)
            .finish_non_exhaustive()
    }
}

impl<T: ?Sized, C> Clone for Builder<T, C> {
    fn clone(&self) -> Self {
        Builder {
            kind: self.kind,
            capacity: self.capacity,
            max_message: self.max_message,
            participants: self.participants,
            strategy: self.strategy,
            options: self.options.clone(),
            open_timeout: self.open_timeout,
            _message: PhantomData,
        }
    }
}

impl<T: ?Sized, C: Codec<T>> Builder<T, C> {
    fn new() -> Self {
        Builder {
            kind: RingKind::Spsc,
            capacity: 1024,
            max_message: None,
            participants: None,
            strategy: WaitStrategy::default(),
            options: RegionOptions::new(),
            open_timeout: Duration::ZERO,
            _message: PhantomData,
        }
    }

    /// An SPSC ring (the default).
    pub fn spsc(mut self) -> Self {
        self.kind = RingKind::Spsc;
        self
    }

    /// An MPMC queue.
    pub fn mpmc(mut self) -> Self {
        self.kind = RingKind::Mpmc;
        self
    }

    /// Room for at least `messages` messages at once (an MPMC queue rounds
    /// it up to a power of two).
    pub fn capacity(mut self, messages: u64) -> Self {
        self.capacity = messages.max(1);
        self
    }

    /// The largest message in bytes, encoded (for plain-old-data types it is
    /// the type's size and cannot be changed).
    pub fn max_message(mut self, bytes: u64) -> Self {
        self.max_message = Some(bytes);
        self
    }

    /// Participant slots of an MPMC queue (default [`mpmc::PARTICIPANTS`]).
    pub fn participants(mut self, slots: u64) -> Self {
        self.participants = Some(slots);
        self
    }

    /// How the channel's handles wait in their blocking calls.
    pub fn wait_strategy(mut self, strategy: WaitStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// The region's options (mode, prefaulting, locking, huge pages, ...);
    /// the builder sets their layout and message type itself.
    pub fn region_options(mut self, options: RegionOptions) -> Self {
        self.options = options;
        self
    }

    /// How long [`open`](Self::open) waits for the name to appear (a creator
    /// that has not made it yet); default 0, at once.
    pub fn open_timeout(mut self, timeout: Duration) -> Self {
        self.open_timeout = timeout;
        self
    }

    /// The region layout these options describe.
    fn layout(&self) -> Result<crate::Layout, Error> {
        let max_message = C::max_message(self.max_message);
        match self.kind {
            RingKind::Spsc => spsc::layout_for(max_message, self.capacity),
            RingKind::Mpmc => {
                let slots = self
                    .capacity
                    .checked_next_power_of_two()
                    .unwrap_or(u64::MAX)
                    .max(mpmc::MIN_CAPACITY);
                let participants = self.participants.unwrap_or(mpmc::PARTICIPANTS);
                mpmc::layout_with_participants(slots, max_message, participants)
            }
        }
    }

    fn creating(&self) -> Result<RegionOptions, Error> {
        Ok(self
            .options
            .clone()
            .layout(self.layout()?)
            .message_type(C::message_type()))
    }

    fn opening(&self) -> RegionOptions {
        let options = self.options.clone();
        match C::typed() {
            true => options.message_type(C::message_type()),
            false => options,
        }
    }

    fn endpoint(&self, region: Region) -> Result<Endpoint<T, C>, Error> {
        let found = region.layout().kind;
        let kind = match found {
            crate::Kind::Spsc => RingKind::Spsc,
            crate::Kind::Mpmc => RingKind::Mpmc,
            found => {
                return Err(Error::WrongKind {
                    expected: match self.kind {
                        RingKind::Spsc => crate::Kind::Spsc,
                        RingKind::Mpmc => crate::Kind::Mpmc,
                    },
                    found,
                })
            }
        };
        C::check(region.layout().max_message)?;
        Ok(Endpoint {
            region: Arc::new(region),
            kind,
            strategy: self.strategy,
            _message: PhantomData,
        })
    }

    /// Creates the channel in the POSIX shm object `name` (exclusively,
    /// mode 0600 unless the region options say otherwise); the name is
    /// removed when this endpoint and every handle from it are dropped.
    ///
    /// # Errors
    /// As [`RegionOptions::create_shm`] (e.g. [`Error::AlreadyExists`]), or
    /// [`Error::InvalidSize`] for a capacity and message size no ring takes.
    pub fn create(&self, name: &str) -> Result<Endpoint<T, C>, Error> {
        self.endpoint(self.creating()?.create_shm(name)?)
    }

    /// Opens the channel in the POSIX shm object `name`, waiting up to the
    /// [`open_timeout`](Self::open_timeout) for it to appear. Its ring kind,
    /// capacity and sizes are the creator's.
    ///
    /// # Errors
    /// As [`RegionOptions::open_shm`], and [`Error::TypeMismatch`] when the
    /// channel carries another message type or codec.
    pub fn open(&self, name: &str) -> Result<Endpoint<T, C>, Error> {
        let deadline = Instant::now() + self.open_timeout;
        let mut backoff = Backoff::new();
        loop {
            match self.opening().open_shm(name) {
                Err(Error::NotFound { .. }) if Instant::now() < deadline => {
                    backoff.snooze();
                }
                other => return self.endpoint(other?),
            }
        }
    }

    /// Makes the channel in anonymous shared memory, for processes this one
    /// forks: make the endpoint, fork, then attach each end in the process
    /// that uses it (see the [module docs](self)).
    ///
    /// # Errors
    /// As [`RegionOptions::create_anonymous`].
    pub fn anonymous(&self) -> Result<Endpoint<T, C>, Error> {
        self.endpoint(self.creating()?.create_anonymous()?)
    }

    /// Makes the channel in a sealed memfd, to hand to another process with
    /// [`Endpoint::send_fd`] (`label` shows in `/proc/PID/fd`).
    ///
    /// # Errors
    /// As [`RegionOptions::create_memfd`].
    pub fn memfd(&self, label: &str) -> Result<Endpoint<T, C>, Error> {
        self.endpoint(self.creating()?.create_memfd(label)?)
    }

    /// Receives a channel's memfd sent with [`Endpoint::send_fd`] over
    /// `socket`.
    ///
    /// # Errors
    /// As [`RegionOptions::receive_fd`], and [`Error::TypeMismatch`].
    pub fn receive_fd(&self, socket: &UnixStream) -> Result<Endpoint<T, C>, Error> {
        self.endpoint(self.opening().receive_fd(socket)?)
    }
}

/// A channel's region, made or opened: attach senders and receivers to it.
/// Handles keep the region alive; a named region's creator removes the name
/// when the last of its endpoint and handles is dropped.
pub struct Endpoint<T: ?Sized, C> {
    region: Arc<Region>,
    kind: RingKind,
    strategy: WaitStrategy,
    _message: PhantomData<fn(&T) -> C>,
}

impl<T: ?Sized, C> fmt::Debug for Endpoint<T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("kind", &self.kind)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl<T: ?Sized, C: Codec<T>> Endpoint<T, C> {
    /// Attaches a sender: the producer of an SPSC ring (one at a time), or
    /// one more producer of an MPMC queue.
    ///
    /// # Errors
    /// [`Error::AlreadyAttached`] for a second SPSC producer,
    /// [`Error::TooManyParticipants`] for a full MPMC table.
    pub fn sender(&self) -> Result<Sender<T, C>, Error> {
        let tx = match self.kind {
            RingKind::Spsc => {
                let mut producer = spsc::Producer::attach(self.region.clone())?;
                producer.set_wait_strategy(self.strategy);
                ends::Tx::Spsc(producer)
            }
            RingKind::Mpmc => {
                let mut producer = mpmc::Producer::attach(self.region.clone())?;
                producer.set_wait_strategy(self.strategy);
                ends::Tx::Mpmc(producer)
            }
        };
        Ok(Sender::new(tx))
    }

    /// Attaches a receiver; see [`sender`](Self::sender).
    ///
    /// # Errors
    /// As for [`sender`](Self::sender).
    pub fn receiver(&self) -> Result<Receiver<T, C>, Error> {
        let rx = match self.kind {
            RingKind::Spsc => {
                let mut consumer = spsc::Consumer::attach(self.region.clone())?;
                consumer.set_wait_strategy(self.strategy);
                ends::Rx::Spsc(consumer)
            }
            RingKind::Mpmc => {
                let mut consumer = mpmc::Consumer::attach(self.region.clone())?;
                consumer.set_wait_strategy(self.strategy);
                ends::Rx::Mpmc(consumer)
            }
        };
        Ok(Receiver::new(rx, self.region.layout().max_message))
    }

    /// Sends the channel's fd over a Unix socket, for
    /// [`Builder::receive_fd`] in another process.
    ///
    /// # Errors
    /// As [`Region::send_fd`].
    pub fn send_fd(&self, socket: &UnixStream) -> Result<(), Error> {
        self.region.send_fd(socket)
    }

    /// The ring kind.
    pub fn kind(&self) -> RingKind {
        self.kind
    }

    /// The region underneath.
    pub fn region(&self) -> &Arc<Region> {
        &self.region
    }

    /// What the channel's messages are, as the region's header says.
    pub fn message_type(&self) -> MessageType {
        self.region.message_type()
    }
}
