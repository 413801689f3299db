//! Both ring kinds behind one interface, so that a cross-process scenario is
//! written once and run on each: [`Spsc`] and [`Mpmc`] implement
//! [`RingKind`], their handles [`Sender`] and [`Receiver`]. Only what the
//! two kinds share is here (the blocking and non-blocking calls, the wait
//! strategy); nothing allocates, so a forked child may use it.
//!
//! ```
//! use std::sync::Arc;
//! use ipc_core::RegionOptions;
//! use ipc_tests::rings::{Mpmc, Receiver, RingKind, Sender, Spsc};
//!
//! fn round_trip<K: RingKind>() -> Result<(), Box<dyn std::error::Error>> {
//!     let region = Arc::new(RegionOptions::new().layout(K::layout(8, 64)?).create_anonymous()?);
//!     let mut producer = K::producer(region.clone())?;
//!     let mut consumer = K::consumer(region)?;
//!     producer.send(b"hello")?;
//!     assert_eq!(consumer.recv_with(|msg| msg.to_vec())?, b"hello");
//!     Ok(())
//! }
//! round_trip::<Spsc>()?;
//! round_trip::<Mpmc>()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use ipc_core::wait::WaitStrategy;
use ipc_core::{mpmc, spsc, Error, Layout, Region};

/// What a receive can fail with: the same type for both kinds.
pub use ipc_core::spsc::RecvError;
/// What a send can fail with: the same type for both kinds.
pub use ipc_core::spsc::SendError;

/// A ring kind: how to lay it out and how to attach its two roles.
pub trait RingKind: 'static {
    /// The producing handle.
    type Producer: Sender;
    /// The consuming handle.
    type Consumer: Receiver;
    /// `"spsc"` or `"mpmc"`, as helper programs take it on their command line.
    const NAME: &'static str;

    /// The layout of a ring that holds at least `messages` messages of up to
    /// `max_message` bytes at once, whatever their sizes.
    fn layout(messages: u64, max_message: u64) -> Result<Layout, Error>;
    /// Attaches a producer to the ring in `region`.
    fn producer(region: Arc<Region>) -> Result<Self::Producer, Error>;
    /// Attaches a consumer to the ring in `region`.
    fn consumer(region: Arc<Region>) -> Result<Self::Consumer, Error>;
}

/// The single-producer single-consumer ring of variable-length records.
#[derive(Clone, Copy, Debug)]
pub struct Spsc;

/// The multi-producer multi-consumer queue of fixed slots.
#[derive(Clone, Copy, Debug)]
pub struct Mpmc;

impl RingKind for Spsc {
    type Producer = spsc::Producer;
    type Consumer = spsc::Consumer;
    const NAME: &'static str = "spsc";

    fn layout(messages: u64, max_message: u64) -> Result<Layout, Error> {
        spsc::layout_for(max_message, messages)
    }

    fn producer(region: Arc<Region>) -> Result<Self::Producer, Error> {
        spsc::Producer::attach(region)
    }

    fn consumer(region: Arc<Region>) -> Result<Self::Consumer, Error> {
        spsc::Consumer::attach(region)
    }
}

impl RingKind for Mpmc {
    type Producer = mpmc::Producer;
    type Consumer = mpmc::Consumer;
    const NAME: &'static str = "mpmc";

    fn layout(messages: u64, max_message: u64) -> Result<Layout, Error> {
        mpmc::layout(messages.max(2).next_power_of_two(), max_message)
    }

    fn producer(region: Arc<Region>) -> Result<Self::Producer, Error> {
        mpmc::Producer::attach(region)
    }

    fn consumer(region: Arc<Region>) -> Result<Self::Consumer, Error> {
        mpmc::Consumer::attach(region)
    }
}

/// The calls both producers have.
pub trait Sender: Send + 'static {
    /// Sends `msg` if there is room now.
    fn try_send(&mut self, msg: &[u8]) -> Result<(), SendError>;
    /// Sends `msg`, waiting for room as the wait strategy says.
    fn send(&mut self, msg: &[u8]) -> Result<(), SendError>;
    /// [`send`](Self::send), giving up after `timeout`.
    fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), SendError>;
    /// [`send`](Self::send), giving up at `deadline`.
    fn send_deadline(&mut self, msg: &[u8], deadline: Instant) -> Result<(), SendError>;
    /// Reserves room for `len` bytes (waiting for it until `deadline`),
    /// lets `fill` write them in place, and commits.
    fn reserve_deadline(
        &mut self,
        len: usize,
        deadline: Instant,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<(), SendError>;
    /// How the blocking calls wait.
    fn set_wait_strategy(&mut self, strategy: WaitStrategy);
}

/// The calls both consumers have; a message read in place is handed to a
/// closure (the guards of the two kinds are different types).
pub trait Receiver: Send + 'static {
    /// Copies the next message into `buf` if there is one now.
    fn try_recv_into(&mut self, buf: &mut [u8]) -> Result<usize, RecvError>;
    /// Copies the next message into `buf`, waiting for it.
    fn recv_into(&mut self, buf: &mut [u8]) -> Result<usize, RecvError>;
    /// [`recv_into`](Self::recv_into), giving up at `deadline`.
    fn recv_into_deadline(&mut self, buf: &mut [u8], deadline: Instant)
        -> Result<usize, RecvError>;
    /// Waits for the next message and hands it to `f`, read in place.
    fn recv_with<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Result<R, RecvError>;
    /// [`recv_with`](Self::recv_with), giving up after `timeout`.
    fn recv_timeout_with<R>(
        &mut self,
        timeout: Duration,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, RecvError>;
    /// [`recv_with`](Self::recv_with), giving up at `deadline`.
    fn recv_deadline_with<R>(
        &mut self,
        deadline: Instant,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, RecvError>;
    /// How the blocking calls wait.
    fn set_wait_strategy(&mut self, strategy: WaitStrategy);
}

/// What a grant's `commit` returns, as a send result (an SPSC commit cannot
/// fail; an MPMC one can).
trait Committed {
    fn into_result(self) -> Result<(), SendError>;
}

impl Committed for () {
    fn into_result(self) -> Result<(), SendError> {
        Ok(())
    }
}

impl Committed for Result<(), SendError> {
    fn into_result(self) -> Result<(), SendError> {
        self
    }
}

/// Implements [`Sender`] and [`Receiver`] for the handles of one kind, whose
/// methods have the same names and shapes.
macro_rules! handles {
    ($kind:ident) => {
        impl Sender for $kind::Producer {
            fn try_send(&mut self, msg: &[u8]) -> Result<(), SendError> {
                $kind::Producer::try_send(self, msg)
            }

            fn send(&mut self, msg: &[u8]) -> Result<(), SendError> {
                $kind::Producer::send(self, msg)
            }

            fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), SendError> {
                $kind::Producer::send_timeout(self, msg, timeout)
            }

            fn send_deadline(&mut self, msg: &[u8], deadline: Instant) -> Result<(), SendError> {
                $kind::Producer::send_deadline(self, msg, deadline)
            }

            fn reserve_deadline(
                &mut self,
                len: usize,
                deadline: Instant,
                fill: impl FnOnce(&mut [u8]),
            ) -> Result<(), SendError> {
                let mut grant = $kind::Producer::reserve_deadline(self, len, deadline)?;
                fill(&mut grant);
                grant.commit().into_result()
            }

            fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
                $kind::Producer::set_wait_strategy(self, strategy)
            }
        }

        impl Receiver for $kind::Consumer {
            fn try_recv_into(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
                $kind::Consumer::try_recv_into(self, buf)
            }

            fn recv_into(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
                $kind::Consumer::recv_into(self, buf)
            }

            fn recv_into_deadline(
                &mut self,
                buf: &mut [u8],
                deadline: Instant,
            ) -> Result<usize, RecvError> {
                $kind::Consumer::recv_into_deadline(self, buf, deadline)
            }

            fn recv_with<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Result<R, RecvError> {
                $kind::Consumer::recv(self).map(|msg| f(&msg))
            }

            fn recv_timeout_with<R>(
                &mut self,
                timeout: Duration,
                f: impl FnOnce(&[u8]) -> R,
            ) -> Result<R, RecvError> {
                $kind::Consumer::recv_timeout(self, timeout).map(|msg| f(&msg))
            }

            fn recv_deadline_with<R>(
                &mut self,
                deadline: Instant,
                f: impl FnOnce(&[u8]) -> R,
            ) -> Result<R, RecvError> {
                $kind::Consumer::recv_deadline(self, deadline).map(|msg| f(&msg))
            }

            fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
                $kind::Consumer::set_wait_strategy(self, strategy)
            }
        }
    };
}

handles!(spsc);
handles!(mpmc);

/// A wait strategy as a command-line word: `busy`, `park`, `default`, or
/// `spin:N` (spin-then-park with `N` spins).
pub fn strategy_arg(strategy: WaitStrategy) -> String {
    match strategy {
        WaitStrategy::BusyPoll => "busy".into(),
        WaitStrategy::Park => "park".into(),
        s if s == WaitStrategy::default() => "default".into(),
        WaitStrategy::SpinThenPark { spins } => format!("spin:{spins}"),
        other => panic!("no command-line word for {other:?}"),
    }
}

/// The wait strategy a [`strategy_arg`] word names.
pub fn parse_strategy(word: &str) -> Option<WaitStrategy> {
    match word {
        "busy" => Some(WaitStrategy::BusyPoll),
        "park" => Some(WaitStrategy::Park),
        "default" => Some(WaitStrategy::default()),
        _ => word
            .strip_prefix("spin:")
            .and_then(|spins| spins.parse().ok())
            .map(|spins| WaitStrategy::SpinThenPark { spins }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_round_trip_through_their_words() {
        for strategy in [
            WaitStrategy::BusyPoll,
            WaitStrategy::Park,
            WaitStrategy::default(),
            WaitStrategy::SpinThenPark { spins: 7 },
        ] {
            assert_eq!(parse_strategy(&strategy_arg(strategy)), Some(strategy));
        }
        assert_eq!(parse_strategy("spin:x"), None);
        assert_eq!(parse_strategy("sometimes"), None);
    }
}
