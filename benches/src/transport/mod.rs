//! What carries the messages: one module per transport, behind one enum.
//!
//! - [`ring`]: the library's rings: the SPSC ring per message, batched or
//!   with the blocking calls, the MPMC queue between two processes, and the
//!   verified payload streams;
//! - [`channel`]: the library's typed channels: raw bytes, plain old data
//!   and serde, side by side, and their blocking and async calls;
//! - [`mpmc`]: the MPMC queue between several producer and consumer
//!   processes;
//! - [`array_queue`]: crossbeam's `ArrayQueue` between threads, the
//!   in-process baseline of the MPMC queue;
//! - [`datagram`]: a Unix datagram socket shared by several senders;
//! - [`floor`]: a counter bounced through two cache lines, the floor of any
//!   shared-memory round trip;
//! - [`futex`]: a raw futex ping-pong, the floor of a sleeping round trip;
//! - [`stream`]: pipes and Unix stream sockets;
//! - [`copy`]: the raw two-counter copy stream, the reference for
//!   throughput of large messages.

pub mod array_queue;
pub mod channel;
pub mod copy;
pub mod datagram;
pub mod floor;
pub mod futex;
pub mod mpmc;
pub mod ring;
pub mod stream;

use ipc_core::wait::WaitStrategy;

use crate::bursts::Flow;
use crate::paired::{round_trips, Leg, RoundTrips};
use crate::stats::Throughput;
use crate::workload::{RoundTrip, Stream};
use crate::{Error, Result};
use ring::{Api, Kind, RingLeg};

/// What carries the messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// The SPSC ring, one publication per message: `try_send` /
    /// `try_recv_into` and the benchmark's own spin (a round trip uses two
    /// rings, the child echoes each message).
    Ring,
    /// The SPSC ring, `batch()` on the producer and `drain` on the consumer
    /// (throughput only).
    RingBatched,
    /// The SPSC ring with the blocking `send_deadline` /
    /// `recv_into_deadline` and [`WaitStrategy::BusyPoll`].
    RingBusyPoll,
    /// The same with the default strategy, [`WaitStrategy::SpinThenPark`].
    RingSpinThenPark,
    /// The same with [`WaitStrategy::Park`]: every wait sleeps at once.
    RingPark,
    /// The MPMC queue: `try_send` / `try_recv_into`. Round trips over two
    /// queues between two processes; throughput between a team of
    /// producer and consumer processes.
    Mpmc,
    /// crossbeam's `ArrayQueue` between threads of one process
    /// (throughput only).
    ArrayQueue,
    /// A Unix datagram socket pair shared by every producer and every
    /// consumer (throughput only).
    UnixDatagram,
    /// A pipe per direction; one `write` per message, reads of exactly N
    /// bytes (round trip) or in 256 KiB chunks (throughput).
    Pipe,
    /// A Unix stream socket pair, used like the pipe.
    UnixSocket,
    /// The floor: a counter bounced through two 128-byte-aligned cache
    /// lines, one written by each side (round trip only; size ignored).
    Floor,
    /// A raw futex ping-pong on one shared word, each side asleep while it
    /// waits (round trip only; size ignored).
    Futex,
    /// Raw shared memory: the producer copies each message into a slot and
    /// bumps a written counter, the consumer copies it out and bumps a read
    /// counter (throughput only).
    CopyStream,
    /// A typed channel ([`ipc_core::channel`]) of 32-byte messages with a
    /// codec, called one way ([`channel`]); one-way streams with the `try_`
    /// calls only.
    Channel(channel::Codec, channel::Calls),
}

impl Transport {
    /// A short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Ring => "ring",
            Transport::RingBatched => "ring (batched)",
            Transport::RingBusyPoll => "ring, blocking busy-poll",
            Transport::RingSpinThenPark => "ring, blocking spin-then-park",
            Transport::RingPark => "ring, blocking park",
            Transport::Mpmc => "mpmc queue",
            Transport::ArrayQueue => "ArrayQueue (threads)",
            Transport::UnixDatagram => "unix datagram",
            Transport::Pipe => "pipe",
            Transport::UnixSocket => "unix socket",
            Transport::Floor => "floor (2 lines)",
            Transport::Futex => "raw futex",
            Transport::CopyStream => "raw copy stream",
            Transport::Channel(codec, calls) => channel::name(codec, calls),
        }
    }

    /// Whether this is one of the library's rings (whose wait-path system
    /// calls are counted).
    pub fn is_library(self) -> bool {
        self.blocking().is_some()
            || matches!(
                self,
                Transport::Ring | Transport::RingBatched | Transport::Mpmc | Transport::Channel(..)
            )
    }

    /// The wait strategy of the blocking ring transports.
    fn blocking(self) -> Option<WaitStrategy> {
        match self {
            Transport::RingBusyPoll => Some(WaitStrategy::BusyPoll),
            Transport::RingSpinThenPark => Some(WaitStrategy::default()),
            Transport::RingPark => Some(WaitStrategy::Park),
            _ => None,
        }
    }

    /// This transport as a [`Leg`] of a paired round-trip measurement; set
    /// up before the fork.
    pub fn leg(self, cfg: &RoundTrip) -> Result<Box<dyn Leg>> {
        match self {
            Transport::Ring => RingLeg::leg(Kind::Spsc, Api::Try, cfg),
            Transport::Mpmc => RingLeg::leg(Kind::Mpmc, Api::Try, cfg),
            Transport::Floor => floor::Floor::leg(),
            Transport::Futex => futex::FutexPingPong::leg(),
            Transport::Pipe => stream::pipe_leg(cfg),
            Transport::UnixSocket => stream::socket_leg(cfg),
            Transport::Channel(codec, calls) => channel::leg(codec, calls, cfg),
            _ => match self.blocking() {
                Some(strategy) => RingLeg::leg(Kind::Spsc, Api::Blocking(strategy), cfg),
                None => Err(Error::Unsupported(
                    "round trips over a batched ring, an ArrayQueue, a datagram socket \
                     or the copy stream",
                )),
            },
        }
    }

    /// Measures round trips alone (a group of one leg);
    /// [`crate::paired::round_trips`] measures several side by side.
    pub fn round_trip(self, cfg: &RoundTrip) -> Result<RoundTrips> {
        round_trips(vec![self.leg(cfg)?], cfg)
    }

    /// This transport's one-way stream as a [`Flow`] of paired bursts
    /// ([`crate::bursts`]): the SPSC ring (`try_` calls), the raw copy
    /// stream and the channels' `try_` calls; set up before the fork.
    pub fn flow(self, cfg: &Stream) -> Result<Box<dyn Flow>> {
        match self {
            Transport::Ring => ring::RingFlow::flow(cfg),
            Transport::CopyStream => copy::CopyFlow::flow(cfg),
            Transport::Channel(codec, calls) => channel::flow(codec, calls, cfg),
            _ => Err(Error::Unsupported(
                "paired bursts over other than the ring, the copy stream or a channel",
            )),
        }
    }

    /// Measures one-way throughput.
    pub fn throughput(self, cfg: &Stream) -> Result<Throughput> {
        let fan_in = matches!(
            self,
            Transport::Mpmc | Transport::ArrayQueue | Transport::UnixDatagram
        );
        if !fan_in && (cfg.producers, cfg.consumers) != (1, 1) {
            return Err(Error::Unsupported(
                "several producers or consumers over a single-producer transport",
            ));
        }
        match self {
            Transport::Ring => ring::throughput(cfg, Api::Try),
            Transport::RingBatched => ring::throughput(cfg, Api::Batched),
            Transport::Mpmc => mpmc::throughput(cfg),
            Transport::ArrayQueue => array_queue::throughput(cfg),
            Transport::UnixDatagram => datagram::throughput(cfg),
            Transport::CopyStream => copy::throughput(cfg),
            Transport::Pipe => stream::pipe_throughput(cfg),
            Transport::UnixSocket => stream::socket_throughput(cfg),
            Transport::Channel(codec, calls) => channel::throughput(codec, calls, cfg),
            _ => match self.blocking() {
                Some(strategy) => ring::throughput(cfg, Api::Blocking(strategy)),
                None => Err(Error::Unsupported("throughput over the floor or a futex")),
            },
        }
    }
}
