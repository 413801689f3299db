//! The SPSC ring: round trips over two rings (alone, or paired batch by
//! batch with the floor), one-way streams per message or batched, and
//! streams of verified payloads.

use std::sync::Arc;
use std::time::Instant;

use ipc_core::spsc::{Consumer, Producer, RecvError, SendError};
use ipc_core::Region;
use ipc_tests::fork::ForkedChild;
use ipc_tests::payload::PayloadGen;

use crate::message::{check, prepare, stamp, verify};
use crate::process::{finish, fork_child, pin_child};
use crate::stats::{time_batches, Throughput};
use crate::transport::floor::Lines;
use crate::wait::{bounded, Gate};
use crate::workload::{prefault, RingGeometry, RoundTrip, Stream};
use crate::Result;

/// Ring ping-pong: the parent sends on one ring and `recv_into`s the echo
/// from the other; the child `recv_into`s each message and `try_send`s it
/// back, as the pipe and socket children read into a buffer and write it.
/// One per-round-trip time (ns) per batch.
pub fn round_trip(cfg: &RoundTrip) -> Result<Vec<f64>> {
    let rings = Rings::new(cfg)?;
    let gate = Gate::new()?;
    let total = cfg.total();
    let child = fork_child(|| -> Result<()> {
        pin_child()?;
        let mut echo = rings.echo()?;
        gate.child_wait_go()?;
        for _ in 0..total {
            echo.once()?;
        }
        Ok(())
    })?;
    let mut ping = rings.ping(cfg)?;
    gate.start(&child)?;
    let samples = time_batches(cfg.warmup, cfg.samples, cfg.batch, |seq| {
        ping.once(seq, &child)
    })?;
    drop(ping);
    finish(child)?;
    Ok(samples)
}

/// The ring and the floor measured together: the same two processes
/// alternate a timed batch of floor round trips with a timed batch of ring
/// round trips (as [`super::floor::round_trip`] and [`round_trip`] do them),
/// so both see the same state of the host. Returns (ring, floor) samples,
/// one pair per batch.
///
/// This machine's cross-core latency changes by several times for seconds at
/// a time; only paired samples compare the two fairly.
pub fn round_trip_with_floor(cfg: &RoundTrip) -> Result<(Vec<f64>, Vec<f64>)> {
    let rings = Rings::new(cfg)?;
    let line_region = Lines::region()?;
    let gate = Gate::new()?;
    let (batches, batch) = ((cfg.warmup + cfg.samples) as u64, cfg.batch.max(1) as u64);
    let child = fork_child(|| -> Result<()> {
        pin_child()?;
        let mut echo = rings.echo()?;
        let lines = Lines::of(&line_region)?;
        gate.child_wait_go()?;
        let mut i = 0;
        for _ in 0..batches {
            for _ in 0..batch {
                i += 1;
                lines.echo(i)?;
            }
            for _ in 0..batch {
                echo.once()?;
            }
        }
        Ok(())
    })?;
    let mut ping = rings.ping(cfg)?;
    let lines = Lines::of(&line_region)?;
    let mut ring = Vec::with_capacity(cfg.samples);
    let mut floor = Vec::with_capacity(cfg.samples);
    let (mut i, mut seq) = (0u64, 0u64);
    gate.start(&child)?;
    for b in 0..batches {
        let start = Instant::now();
        for _ in 0..batch {
            i += 1;
            lines.ping(i, &child)?;
        }
        let floor_ns = start.elapsed().as_nanos() as f64 / batch as f64;
        let start = Instant::now();
        for _ in 0..batch {
            ping.once(seq, &child)?;
            seq += 1;
        }
        let ring_ns = start.elapsed().as_nanos() as f64 / batch as f64;
        if b >= cfg.warmup as u64 {
            floor.push(floor_ns);
            ring.push(ring_ns);
        }
    }
    drop(ping);
    finish(child)?;
    Ok((ring, floor))
}

/// The two rings of a round trip: `there` carries the parent's messages,
/// `back` the child's echoes.
struct Rings {
    there: Arc<Region>,
    back: Arc<Region>,
    size: usize,
}

impl Rings {
    fn new(cfg: &RoundTrip) -> Result<Rings> {
        Ok(Rings {
            there: cfg.geometry.region()?,
            back: cfg.geometry.region()?,
            size: cfg.size,
        })
    }

    /// The child's ends, attached and prefaulted.
    fn echo(&self) -> Result<Echo> {
        let rx = Consumer::attach(self.there.clone())?;
        let tx = Producer::attach(self.back.clone())?;
        prefault(&self.there)?;
        prefault(&self.back)?;
        Ok(Echo {
            rx,
            tx,
            buf: vec![0u8; self.size],
        })
    }

    /// The parent's ends.
    fn ping(&self, cfg: &RoundTrip) -> Result<Ping> {
        Ok(Ping {
            tx: Producer::attach(self.there.clone())?,
            rx: Consumer::attach(self.back.clone())?,
            msg: vec![0u8; self.size],
            echo: vec![0u8; self.size],
            gen: cfg.payload(),
        })
    }
}

/// The child's side of a ring round trip.
struct Echo {
    rx: Consumer,
    tx: Producer,
    buf: Vec<u8>,
}

impl Echo {
    /// Receives one message and sends it back.
    #[inline(always)]
    fn once(&mut self) -> Result<()> {
        let n = recv(&mut self.rx, &mut self.buf, None)?;
        send(&mut self.tx, &self.buf[..n], None)
    }
}

/// The parent's side of a ring round trip.
struct Ping {
    tx: Producer,
    rx: Consumer,
    msg: Vec<u8>,
    echo: Vec<u8>,
    gen: Option<PayloadGen>,
}

impl Ping {
    /// Sends message `seq`, receives its echo from `child` and checks it.
    #[inline(always)]
    fn once(&mut self, seq: u64, child: &ForkedChild) -> Result<()> {
        prepare(&mut self.msg, seq, self.gen);
        send(&mut self.tx, &self.msg, Some(child))?;
        let n = recv(&mut self.rx, &mut self.echo, Some(child))?;
        check(&self.echo[..n], seq, self.msg.len(), self.gen)
    }
}

/// Ring one-way stream: the child sends (`try_send`, or `batch()` of
/// `cfg.batch` messages), the parent receives (`recv_into` its buffer, or
/// `drain`), checking each message.
pub fn throughput(cfg: &Stream, batched: bool) -> Result<Throughput> {
    let region = cfg.geometry.region()?;
    let gate = Gate::new()?;
    let (size, count, batch) = (cfg.size, cfg.count, cfg.batch.max(1) as u64);
    let gen = cfg.payload();
    let child = fork_child(|| -> Result<()> {
        pin_child()?;
        let mut tx = Producer::attach(region.clone())?;
        prefault(&region)?;
        let mut msg = vec![0u8; size];
        gate.child_wait_go()?;
        if batched {
            produce_batched(&mut tx, &mut msg, count, batch, gen)
        } else {
            produce_each(&mut tx, &mut msg, count, gen)
        }
    })?;
    let mut rx = Consumer::attach(region)?;
    let mut buf = vec![0u8; size];
    let start = gate.start(&child)?;
    if batched {
        consume_drained(&mut rx, count, size, gen, &child)?;
    } else {
        for seq in 0..count {
            let n = recv(&mut rx, &mut buf, Some(&child))?;
            check(&buf[..n], seq, size, gen)?;
        }
    }
    let elapsed = start.elapsed();
    drop(rx);
    finish(child)?;
    Ok(Throughput {
        messages: count,
        bytes: count * size as u64,
        elapsed,
    })
}

/// Streams `count` messages of `gen` through a ring of `geometry` from a
/// child to the caller, written in place (`try_reserve` + fill + commit)
/// and verified byte for byte in place (`try_recv`). With random lengths
/// and a small ring this exercises wrap-around padding.
pub fn payload_stream(gen: PayloadGen, count: u64, geometry: RingGeometry) -> Result<Throughput> {
    let region = geometry.region()?;
    let gate = Gate::new()?;
    let child = fork_child(|| -> Result<()> {
        pin_child()?;
        let mut tx = Producer::attach(region.clone())?;
        prefault(&region)?;
        gate.child_wait_go()?;
        for seq in 0..count {
            send_generated(&mut tx, gen, seq, gen.len_of(seq))?;
        }
        Ok(())
    })?;
    let mut rx = Consumer::attach(region)?;
    let mut bytes = 0u64;
    let start = gate.start(&child)?;
    for seq in 0..count {
        let mut wait = bounded("a message", Some(&child));
        loop {
            match rx.try_recv() {
                Ok(msg) => {
                    verify(gen, seq, &msg)?;
                    bytes += msg.len() as u64;
                    break;
                }
                Err(RecvError::Empty) => wait.snooze()?,
                Err(e) => return Err(e.into()),
            }
        }
    }
    let elapsed = start.elapsed();
    drop(rx);
    finish(child)?;
    Ok(Throughput {
        messages: count,
        bytes,
        elapsed,
    })
}

/// Sends `msg`, waiting while the ring is full.
#[inline(always)]
fn send(tx: &mut Producer, msg: &[u8], peer: Option<&ForkedChild>) -> Result<()> {
    let mut wait = bounded("room in the ring", peer);
    loop {
        match tx.try_send(msg) {
            Ok(()) => return Ok(()),
            Err(SendError::Full) => wait.snooze()?,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Writes message `seq` of `gen` (`len` bytes) in place, waiting while the
/// ring is full.
#[inline(always)]
fn send_generated(tx: &mut Producer, gen: PayloadGen, seq: u64, len: usize) -> Result<()> {
    let mut wait = bounded("room in the ring", None);
    loop {
        match tx.try_reserve(len) {
            Ok(mut grant) => {
                gen.fill(seq, &mut grant);
                grant.commit();
                return Ok(());
            }
            Err(SendError::Full) => wait.snooze()?,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Receives the next message into `buf`, waiting while the ring is empty.
#[inline(always)]
fn recv(rx: &mut Consumer, buf: &mut [u8], peer: Option<&ForkedChild>) -> Result<usize> {
    let mut wait = bounded("a message", peer);
    loop {
        match rx.try_recv_into(buf) {
            Ok(n) => return Ok(n),
            Err(RecvError::Empty) => wait.snooze()?,
            Err(e) => return Err(e.into()),
        }
    }
}

fn produce_each(
    tx: &mut Producer,
    msg: &mut [u8],
    count: u64,
    gen: Option<PayloadGen>,
) -> Result<()> {
    for seq in 0..count {
        match gen {
            None => {
                stamp(msg, seq);
                send(tx, msg, None)?;
            }
            Some(gen) => send_generated(tx, gen, seq, msg.len())?,
        }
    }
    Ok(())
}

fn produce_batched(
    tx: &mut Producer,
    msg: &mut [u8],
    count: u64,
    batch: u64,
    gen: Option<PayloadGen>,
) -> Result<()> {
    let mut seq = 0;
    let mut wait = bounded("room in the ring", None);
    while seq < count {
        let (first, end) = (seq, (seq + batch).min(count));
        let mut b = tx.batch();
        while seq < end {
            let sent = match gen {
                None => {
                    stamp(msg, seq);
                    b.try_send(msg)
                }
                Some(gen) => b.try_reserve(msg.len()).map(|mut grant| {
                    gen.fill(seq, &mut grant);
                    grant.commit();
                }),
            };
            match sent {
                Ok(()) => seq += 1,
                Err(SendError::Full) => break,
                Err(e) => return Err(e.into()),
            }
        }
        b.publish();
        if seq == first {
            wait.snooze()?;
        } else {
            wait.reset();
        }
    }
    Ok(())
}

fn consume_drained(
    rx: &mut Consumer,
    count: u64,
    size: usize,
    gen: Option<PayloadGen>,
    child: &ForkedChild,
) -> Result<()> {
    let mut seq = 0;
    let mut bad = None;
    let mut wait = bounded("messages", Some(child));
    while seq < count {
        let n = rx.drain((count - seq) as usize, |msg| {
            if bad.is_none() {
                if let Err(e) = check(msg, seq, size, gen) {
                    bad = Some(e);
                }
            }
            seq += 1;
        })?;
        if let Some(e) = bad.take() {
            return Err(e);
        }
        if n == 0 {
            wait.snooze()?;
        } else {
            wait.reset();
        }
    }
    Ok(())
}
