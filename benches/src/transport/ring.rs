//! The library's rings: round trips over two rings or two MPMC queues (one
//! per direction), with the non-blocking calls and the benchmark's own spin
//! or with the library's blocking calls and a [`WaitStrategy`]; one-way
//! streams over the SPSC ring per message, batched or blocking; and streams
//! of verified payloads.

use std::sync::Arc;
use std::time::Instant;

use ipc_core::wait::{syscalls, WaitStrategy};
use ipc_core::{mpmc, spsc, Region};
use ipc_tests::fork::ForkedChild;
use ipc_tests::payload::PayloadGen;

use crate::bursts::{Consume, Flow, Produce};
use crate::message::{check, prepare, stamp, verify};
use crate::paired::{Echo, Leg, Ping};
use crate::process::{finish, fork_child, pin_child};
use crate::stats::{Laps, Throughput};
use crate::wait::{bounded, Gate};
use crate::workload::{prefault, RingGeometry, RoundTrip, Stream};
use crate::{Error, Result, DEADLINE};

pub use ipc_core::spsc::{RecvError, SendError};

/// How a workload calls the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// `try_send` and `try_recv_into`, waiting with the benchmark's own
    /// bounded spin ([`bounded`]) when full or empty.
    Try,
    /// `batch()` and `drain` (SPSC streams only).
    Batched,
    /// The library's blocking `send_deadline` and `recv_into_deadline`,
    /// waiting as the strategy says.
    Blocking(WaitStrategy),
}

/// Which of the library's rings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The SPSC byte ring.
    Spsc,
    /// The MPMC slot queue, one producer and one consumer.
    Mpmc,
}

/// A sending handle: the SPSC or MPMC producer.
pub trait Tx {
    /// `try_send` of the handle.
    fn try_send(&mut self, msg: &[u8]) -> std::result::Result<(), SendError>;
    /// `send_deadline` of the handle.
    fn send_deadline(
        &mut self,
        msg: &[u8],
        deadline: Instant,
    ) -> std::result::Result<(), SendError>;
    /// `set_wait_strategy` of the handle.
    fn set_wait_strategy(&mut self, strategy: WaitStrategy);
}

/// A receiving handle: the SPSC or MPMC consumer.
pub trait Rx {
    /// `try_recv_into` of the handle.
    fn try_recv_into(&mut self, buf: &mut [u8]) -> std::result::Result<usize, RecvError>;
    /// `recv_into_deadline` of the handle.
    fn recv_into_deadline(
        &mut self,
        buf: &mut [u8],
        deadline: Instant,
    ) -> std::result::Result<usize, RecvError>;
    /// `set_wait_strategy` of the handle.
    fn set_wait_strategy(&mut self, strategy: WaitStrategy);
}

macro_rules! handles {
    ($producer:ty, $consumer:ty) => {
        impl Tx for $producer {
            #[inline(always)]
            fn try_send(&mut self, msg: &[u8]) -> std::result::Result<(), SendError> {
                <$producer>::try_send(self, msg)
            }
            #[inline(always)]
            fn send_deadline(
                &mut self,
                msg: &[u8],
                deadline: Instant,
            ) -> std::result::Result<(), SendError> {
                <$producer>::send_deadline(self, msg, deadline)
            }
            fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
                <$producer>::set_wait_strategy(self, strategy)
            }
        }

        impl Rx for $consumer {
            #[inline(always)]
            fn try_recv_into(&mut self, buf: &mut [u8]) -> std::result::Result<usize, RecvError> {
                <$consumer>::try_recv_into(self, buf)
            }
            #[inline(always)]
            fn recv_into_deadline(
                &mut self,
                buf: &mut [u8],
                deadline: Instant,
            ) -> std::result::Result<usize, RecvError> {
                <$consumer>::recv_into_deadline(self, buf, deadline)
            }
            fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
                <$consumer>::set_wait_strategy(self, strategy)
            }
        }
    };
}

handles!(spsc::Producer, spsc::Consumer);
handles!(mpmc::Producer, mpmc::Consumer);

/// Sends `msg` as `api` says: blocking until `deadline`, or spinning while
/// the ring is full (giving up if `peer` exits).
#[inline(always)]
pub fn send<T: Tx>(
    tx: &mut T,
    msg: &[u8],
    api: Api,
    deadline: Instant,
    peer: Option<&ForkedChild>,
) -> Result<()> {
    if let Api::Blocking(_) = api {
        return Ok(tx.send_deadline(msg, deadline)?);
    }
    let mut wait = bounded("room in the ring", peer);
    loop {
        match tx.try_send(msg) {
            Ok(()) => return Ok(()),
            Err(SendError::Full) => wait.snooze()?,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Receives the next message into `buf` as `api` says; its length.
#[inline(always)]
pub fn recv<R: Rx>(
    rx: &mut R,
    buf: &mut [u8],
    api: Api,
    deadline: Instant,
    peer: Option<&ForkedChild>,
) -> Result<usize> {
    if let Api::Blocking(_) = api {
        return Ok(rx.recv_into_deadline(buf, deadline)?);
    }
    let mut wait = bounded("a message", peer);
    loop {
        match rx.try_recv_into(buf) {
            Ok(n) => return Ok(n),
            Err(RecvError::Empty) => wait.snooze()?,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Ring ping-pong as a [`Leg`]: the parent sends on one ring (or queue)
/// and receives the echo from the other; the child receives each message
/// into a buffer and sends it back, as the pipe and socket children read
/// into a buffer and write it.
#[derive(Debug)]
pub struct RingLeg {
    kind: Kind,
    api: Api,
    there: Arc<Region>,
    back: Arc<Region>,
    size: usize,
    gen: Option<PayloadGen>,
}

impl RingLeg {
    /// Two fresh rings (or queues) for `cfg`'s messages; make them before
    /// forking.
    pub fn leg(kind: Kind, api: Api, cfg: &RoundTrip) -> Result<Box<dyn Leg>> {
        if api == Api::Batched {
            return Err(Error::Unsupported("round trips over a batched ring"));
        }
        let region = || match kind {
            Kind::Spsc => cfg.geometry.region(),
            Kind::Mpmc => cfg.queue.region(),
        };
        Ok(Box::new(RingLeg {
            kind,
            api,
            there: region()?,
            back: region()?,
            size: cfg.size,
            gen: cfg.payload(),
        }))
    }

    fn sides<R: Rx, T: Tx>(&self, mut rx: R, mut tx: T) -> Sides<R, T> {
        if let Api::Blocking(strategy) = self.api {
            rx.set_wait_strategy(strategy);
            tx.set_wait_strategy(strategy);
        }
        Sides {
            rx,
            tx,
            api: self.api,
            msg: vec![0u8; self.size],
            buf: vec![0u8; self.size],
            gen: self.gen,
        }
    }
}

impl Leg for RingLeg {
    fn into_echo(self: Box<Self>) -> Result<Box<dyn Echo>> {
        let echo: Box<dyn Echo> = match self.kind {
            Kind::Spsc => Box::new(self.sides(
                spsc::Consumer::attach(self.there.clone())?,
                spsc::Producer::attach(self.back.clone())?,
            )),
            Kind::Mpmc => Box::new(self.sides(
                mpmc::Consumer::attach(self.there.clone())?,
                mpmc::Producer::attach(self.back.clone())?,
            )),
        };
        prefault(&self.there)?;
        prefault(&self.back)?;
        Ok(echo)
    }

    fn into_ping(self: Box<Self>) -> Result<Box<dyn Ping>> {
        Ok(match self.kind {
            Kind::Spsc => Box::new(self.sides(
                spsc::Consumer::attach(self.back.clone())?,
                spsc::Producer::attach(self.there.clone())?,
            )),
            Kind::Mpmc => Box::new(self.sides(
                mpmc::Consumer::attach(self.back.clone())?,
                mpmc::Producer::attach(self.there.clone())?,
            )),
        })
    }
}

/// One side of a ring round trip: what it receives from and sends to.
struct Sides<R, T> {
    rx: R,
    tx: T,
    api: Api,
    msg: Vec<u8>,
    buf: Vec<u8>,
    gen: Option<PayloadGen>,
}

impl<R: Rx, T: Tx> Echo for Sides<R, T> {
    fn echo(&mut self, n: u64, deadline: Instant) -> Result<()> {
        for _ in 0..n {
            let len = recv(&mut self.rx, &mut self.buf, self.api, deadline, None)?;
            send(&mut self.tx, &self.buf[..len], self.api, deadline, None)?;
        }
        Ok(())
    }
}

impl<R: Rx, T: Tx> Ping for Sides<R, T> {
    fn ping(
        &mut self,
        first: u64,
        n: u64,
        deadline: Instant,
        peer: &ForkedChild,
        laps: &mut Laps,
    ) -> Result<()> {
        for seq in first..first + n {
            prepare(&mut self.msg, seq, self.gen);
            send(&mut self.tx, &self.msg, self.api, deadline, Some(peer))?;
            let len = recv(&mut self.rx, &mut self.buf, self.api, deadline, Some(peer))?;
            check(&self.buf[..len], seq, self.msg.len(), self.gen)?;
            laps.lap();
        }
        Ok(())
    }
}

/// Deadlines of blocking streams are renewed every this many messages, so
/// a stream may last any time while no single wait lasts [`DEADLINE`].
const DEADLINE_EVERY: u64 = 1 << 16;

/// SPSC ring one-way stream: the child sends (`try_send`, `batch()` of
/// `cfg.batch` messages, or blocking `send_deadline`), the parent receives
/// (`try_recv_into` its buffer, `drain`, or blocking
/// `recv_into_deadline`), checking each message. Counts both processes'
/// wait-path system calls.
pub fn throughput(cfg: &Stream, api: Api) -> Result<Throughput> {
    let region = cfg.geometry.region()?;
    let gate = Gate::new()?;
    let (size, count, batch) = (cfg.size, cfg.count, cfg.batch.max(1) as u64);
    let gen = cfg.payload();
    let child = fork_child(|| -> Result<()> {
        pin_child()?;
        let mut tx = spsc::Producer::attach(region.clone())?;
        if let Api::Blocking(strategy) = api {
            tx.set_wait_strategy(strategy);
        }
        prefault(&region)?;
        let mut msg = vec![0u8; size];
        gate.child_wait_go()?;
        let before = syscalls();
        match api {
            Api::Batched => produce_batched(&mut tx, &mut msg, count, batch, gen)?,
            _ => produce_each(&mut tx, &mut msg, 0..count, api, gen)?,
        }
        gate.report()?
            .store(syscalls() - before, std::sync::atomic::Ordering::Release);
        Ok(())
    })?;
    let mut rx = spsc::Consumer::attach(region)?;
    if let Api::Blocking(strategy) = api {
        rx.set_wait_strategy(strategy);
    }
    let mut buf = vec![0u8; size];
    let before = syscalls();
    let start = gate.start(&child)?;
    if api == Api::Batched {
        consume_drained(&mut rx, count, size, gen, &child)?;
    } else {
        let mut deadline = start;
        for seq in 0..count {
            if seq % DEADLINE_EVERY == 0 {
                deadline = Instant::now() + DEADLINE;
            }
            let n = recv(&mut rx, &mut buf, api, deadline, Some(&child))?;
            check(&buf[..n], seq, size, gen)?;
        }
    }
    let elapsed = start.elapsed();
    let ours = syscalls() - before;
    drop(rx);
    finish(child)?;
    // Acquire: pairs with the child's Release store, before it exited.
    let theirs = gate.report()?.load(std::sync::atomic::Ordering::Acquire);
    Ok(Throughput {
        messages: count,
        bytes: count * size as u64,
        elapsed,
        wait_syscalls: Some(ours + theirs),
    })
}

/// An SPSC ring stream as a [`Flow`]: per-message `try_send` (or, when
/// verifying, written in place) and `try_recv_into` a buffer, as
/// [`throughput`] with [`Api::Try`].
#[derive(Debug)]
pub struct RingFlow {
    region: Arc<Region>,
    size: usize,
    gen: Option<PayloadGen>,
}

impl RingFlow {
    /// A fresh ring for `cfg`'s messages; make it before forking.
    pub fn flow(cfg: &Stream) -> Result<Box<dyn Flow>> {
        Ok(Box::new(RingFlow {
            region: cfg.geometry.region()?,
            size: cfg.size,
            gen: cfg.payload(),
        }))
    }
}

impl Flow for RingFlow {
    fn into_producer(self: Box<Self>) -> Result<Box<dyn Produce>> {
        let tx = spsc::Producer::attach(self.region.clone())?;
        prefault(&self.region)?;
        Ok(Box::new(RingProducer {
            tx,
            msg: vec![0u8; self.size],
            gen: self.gen,
        }))
    }

    fn into_consumer(self: Box<Self>) -> Result<Box<dyn Consume>> {
        Ok(Box::new(RingConsumer {
            rx: spsc::Consumer::attach(self.region)?,
            buf: vec![0u8; self.size],
            gen: self.gen,
        }))
    }
}

struct RingProducer {
    tx: spsc::Producer,
    msg: Vec<u8>,
    gen: Option<PayloadGen>,
}

impl Produce for RingProducer {
    fn produce(&mut self, first: u64, n: u64) -> Result<()> {
        produce_each(
            &mut self.tx,
            &mut self.msg,
            first..first + n,
            Api::Try,
            self.gen,
        )
    }
}

struct RingConsumer {
    rx: spsc::Consumer,
    buf: Vec<u8>,
    gen: Option<PayloadGen>,
}

impl Consume for RingConsumer {
    fn consume(&mut self, first: u64, n: u64, peer: &ForkedChild) -> Result<u64> {
        // `try_` calls take no deadline; their spin has its own.
        let never = Instant::now();
        let size = self.buf.len();
        for seq in first..first + n {
            let len = recv(&mut self.rx, &mut self.buf, Api::Try, never, Some(peer))?;
            check(&self.buf[..len], seq, size, self.gen)?;
        }
        Ok(n * size as u64)
    }
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
        let mut tx = spsc::Producer::attach(region.clone())?;
        prefault(&region)?;
        gate.child_wait_go()?;
        for seq in 0..count {
            send_generated(&mut tx, gen, seq, gen.len_of(seq))?;
        }
        Ok(())
    })?;
    let mut rx = spsc::Consumer::attach(region)?;
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
        wait_syscalls: None,
    })
}

/// Writes message `seq` of `gen` (`len` bytes) in place, waiting while the
/// ring is full.
#[inline(always)]
fn send_generated(tx: &mut spsc::Producer, gen: PayloadGen, seq: u64, len: usize) -> Result<()> {
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

fn produce_each(
    tx: &mut spsc::Producer,
    msg: &mut [u8],
    seqs: std::ops::Range<u64>,
    api: Api,
    gen: Option<PayloadGen>,
) -> Result<()> {
    let mut deadline = Instant::now();
    for seq in seqs {
        if let (Api::Blocking(_), 0) = (api, seq % DEADLINE_EVERY) {
            deadline = Instant::now() + DEADLINE;
        }
        match (api, gen) {
            (Api::Try, Some(gen)) => send_generated(tx, gen, seq, msg.len())?,
            _ => {
                prepare(msg, seq, gen);
                send(tx, msg, api, deadline, None)?;
            }
        }
    }
    Ok(())
}

fn produce_batched(
    tx: &mut spsc::Producer,
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
    rx: &mut spsc::Consumer,
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
