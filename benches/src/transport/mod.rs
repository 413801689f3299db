//! What carries the messages: one module per transport, behind one enum.
//!
//! - [`ring`]: the SPSC ring, per message or batched, and the verified
//!   payload streams;
//! - [`floor`]: a counter bounced through two cache lines, the floor of any
//!   shared-memory round trip;
//! - [`stream`]: pipes and Unix stream sockets;
//! - [`copy`]: the raw two-counter copy stream, the reference for
//!   throughput of large messages.

pub mod copy;
pub mod floor;
pub mod ring;
pub mod stream;

use crate::stats::Throughput;
use crate::workload::{RoundTrip, Stream};
use crate::{Error, Result};

/// What carries the messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// The SPSC ring, one publication per message (`try_send` /
    /// `recv_into`; a round trip uses two rings, the child echoes in place).
    Ring,
    /// The SPSC ring, `batch()` on the producer and `drain` on the consumer
    /// (throughput only).
    RingBatched,
    /// A pipe per direction; one `write` per message, reads of exactly N
    /// bytes (round trip) or in 256 KiB chunks (throughput).
    Pipe,
    /// A Unix stream socket pair, used like the pipe.
    UnixSocket,
    /// The floor: a counter bounced through two 128-byte-aligned cache
    /// lines, one written by each side (round trip only; size ignored).
    Floor,
    /// Raw shared memory: the producer copies each message into a slot and
    /// bumps a written counter, the consumer copies it out and bumps a read
    /// counter (throughput only).
    CopyStream,
}

impl Transport {
    /// A short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Ring => "ring",
            Transport::RingBatched => "ring (batched)",
            Transport::Pipe => "pipe",
            Transport::UnixSocket => "unix socket",
            Transport::Floor => "floor (2 lines)",
            Transport::CopyStream => "raw copy stream",
        }
    }

    /// Measures round trips: one per-round-trip time (ns) per batch.
    pub fn round_trip(self, cfg: &RoundTrip) -> Result<Vec<f64>> {
        match self {
            Transport::Ring => ring::round_trip(cfg),
            Transport::Floor => floor::round_trip(cfg),
            Transport::Pipe => stream::pipe_round_trip(cfg),
            Transport::UnixSocket => stream::socket_round_trip(cfg),
            Transport::RingBatched | Transport::CopyStream => Err(Error::Unsupported(
                "round trips over a batched ring or the copy stream",
            )),
        }
    }

    /// Measures one-way throughput.
    pub fn throughput(self, cfg: &Stream) -> Result<Throughput> {
        match self {
            Transport::Ring => ring::throughput(cfg, false),
            Transport::RingBatched => ring::throughput(cfg, true),
            Transport::CopyStream => copy::throughput(cfg),
            Transport::Pipe => stream::pipe_throughput(cfg),
            Transport::UnixSocket => stream::socket_throughput(cfg),
            Transport::Floor => Err(Error::Unsupported("throughput over the floor")),
        }
    }
}
