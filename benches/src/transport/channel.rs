//! The library's typed channels ([`ipc_core::channel`]): round trips and
//! one-way streams of the 32-byte messages of [`crate::typed`] over
//! `Channel::bytes()`, `Channel::pod` and `Channel::serde`, called the same
//! way so that only the codec differs; and the POD channel's round trip
//! with its blocking calls and with its async calls, on a one-thread tokio
//! runtime in each process ([`crate::runtime`]).
//!
//! Each channel is an SPSC ring of 1 MiB, like the ring rows', made before
//! the fork; each process attaches its own end after it. Every value
//! received is checked in full: each field of a [`Quote`] or an [`Order`],
//! each byte of a byte message.

use std::sync::atomic::Ordering;
use std::time::Instant;

use ipc_core::channel::{
    self, Builder, Bytes, Channel, Endpoint, Pod, Receiver, RecvError, SendError, SendFailure,
    Sender, Serde,
};
use ipc_core::wait::{syscalls, WaitStrategy};
use ipc_core::{spsc, RegionOptions};
use ipc_tests::fork::ForkedChild;

use crate::bursts::{Consume, Flow, Produce};
use crate::paired::{Echo, Leg, Ping};
use crate::process::{finish, fork_child, pin_child};
use crate::runtime::OneThread;
use crate::stats::{Laps, Throughput};
use crate::typed::{check_quote_bytes, quote_bytes, Order, Quote, SIZE};
use crate::wait::{bounded, Gate};
use crate::workload::{RoundTrip, Stream};
use crate::{Error, Result};

/// Which codec carries the messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// `Channel::bytes()`: a [`Quote`]'s 32 bytes, sent from an array
    /// (`try_send(&bytes)`) and copied out into one (`try_recv_into`).
    Bytes,
    /// `Channel::pod::<Quote>()`: `try_send(quote)`, `try_recv()` (copied
    /// out, as the byte row's).
    Pod,
    /// `Channel::serde::<Order>()`: encoded straight into the ring, copied
    /// out and decoded (16–20 bytes encoded).
    Serde,
}

/// How the channel's handles are called.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Calls {
    /// `try_send` / `try_recv`, waiting with the benchmark's own bounded
    /// spin, as the ring rows do.
    Try,
    /// The blocking `send_deadline` / `recv_deadline` with the default
    /// strategy, [`WaitStrategy::SpinThenPark`].
    SpinThenPark,
    /// The same with [`WaitStrategy::Park`]: every wait sleeps at once.
    Park,
    /// `send_async` / `recv_async`, each process on a one-thread tokio
    /// runtime (waits are handed to tokio's blocking pool).
    Async,
}

impl Calls {
    /// The wait strategy of the channel's handles.
    fn strategy(self) -> WaitStrategy {
        match self {
            Calls::Park => WaitStrategy::Park,
            // The others never use theirs, except for spinning blocking.
            Calls::SpinThenPark | Calls::Try | Calls::Async => WaitStrategy::default(),
        }
    }
}

/// The short name of a channel row, for tables.
pub fn name(codec: Codec, calls: Calls) -> &'static str {
    use {Calls::*, Codec::*};
    match (codec, calls) {
        (Bytes, Try) => "channel bytes",
        (Pod, Try) => "channel pod",
        (Serde, Try) => "channel serde",
        (Bytes, SpinThenPark) => "channel bytes, blocking spin-then-park",
        (Pod, SpinThenPark) => "channel pod, blocking spin-then-park",
        (Serde, SpinThenPark) => "channel serde, blocking spin-then-park",
        (Bytes, Park) => "channel bytes, blocking park",
        (Pod, Park) => "channel pod, blocking park",
        (Serde, Park) => "channel serde, blocking park",
        (Bytes, Async) => "channel bytes, async (tokio)",
        (Pod, Async) => "channel pod, async (tokio)",
        (Serde, Async) => "channel serde, async (tokio)",
    }
}

/// Bytes of the ring of every channel: as the ring rows' at small sizes.
const RING_BYTES: u64 = 1 << 20;

/// A message type of the channel rows, as its channel carries it: how to
/// make the channel, make and check message `seq`, and send and receive
/// one each way.
trait Carried: Sized + 'static {
    /// The channel's message type.
    type Item: ?Sized + 'static;
    /// Its codec.
    type Codec: channel::Codec<Self::Item> + 'static;
    /// The largest message, encoded.
    const MAX_MESSAGE: u64;

    /// The channel's builder.
    fn builder() -> Builder<Self::Item, Self::Codec>;
    /// Message `seq`.
    fn of(seq: u64) -> Self;
    /// Checks that this is message `seq`.
    fn check(&self, seq: u64) -> Result<()>;
    /// Bytes message `seq` takes in the ring, encoded.
    fn encoded_len(seq: u64) -> usize;

    /// `try_send`: the value back when the channel is full.
    fn try_send(tx: &mut Tx<Self>, value: Self) -> Result<Option<Self>>;
    /// `try_recv`: `None` when the channel is empty.
    fn try_recv(rx: &mut Rx<Self>) -> Result<Option<Self>>;
    /// The blocking send.
    fn send_deadline(tx: &mut Tx<Self>, value: Self, deadline: Instant) -> Result<()>;
    /// The blocking receive.
    fn recv_deadline(rx: &mut Rx<Self>, deadline: Instant) -> Result<Self>;
    /// The async send.
    async fn send_async(tx: &mut Tx<Self>, value: Self) -> Result<()>;
    /// The async receive.
    async fn recv_async(rx: &mut Rx<Self>) -> Result<Self>;
}

type Tx<M> = Sender<<M as Carried>::Item, <M as Carried>::Codec>;
type Rx<M> = Receiver<<M as Carried>::Item, <M as Carried>::Codec>;

/// A byte message as received: up to [`SIZE`] bytes. Checked, its length
/// must be [`SIZE`]; sent back, it is sent as it came.
#[derive(Clone, Copy)]
struct ByteMessage {
    bytes: [u8; SIZE],
    len: usize,
}

impl Carried for ByteMessage {
    type Item = [u8];
    type Codec = Bytes;
    const MAX_MESSAGE: u64 = SIZE as u64;

    fn builder() -> Builder<[u8], Bytes> {
        Channel::bytes()
    }

    #[inline(always)]
    fn of(seq: u64) -> Self {
        ByteMessage {
            bytes: quote_bytes(seq),
            len: SIZE,
        }
    }

    #[inline(always)]
    fn check(&self, seq: u64) -> Result<()> {
        if self.len != SIZE {
            return Err(Error::Mismatch {
                what: "length",
                seq,
                expected: SIZE as u64,
                found: self.len as u64,
            });
        }
        check_quote_bytes(&self.bytes, seq)
    }

    fn encoded_len(_: u64) -> usize {
        SIZE
    }

    #[inline(always)]
    fn try_send(tx: &mut Tx<Self>, value: Self) -> Result<Option<Self>> {
        match tx.try_send(&value.bytes[..value.len]) {
            Ok(()) => Ok(None),
            Err(SendFailure::Full) => Ok(Some(value)),
            Err(e) => Err(e.into()),
        }
    }

    #[inline(always)]
    fn try_recv(rx: &mut Rx<Self>) -> Result<Option<Self>> {
        let mut bytes = [0; SIZE];
        match rx.try_recv_into(&mut bytes) {
            Ok(len) => Ok(Some(ByteMessage { bytes, len })),
            Err(RecvError::Empty) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn send_deadline(tx: &mut Tx<Self>, value: Self, deadline: Instant) -> Result<()> {
        Ok(tx.send_deadline(&value.bytes[..value.len], deadline)?)
    }

    fn recv_deadline(rx: &mut Rx<Self>, deadline: Instant) -> Result<Self> {
        let mut bytes = [0; SIZE];
        let len = rx.recv_into_deadline(&mut bytes, deadline)?;
        Ok(ByteMessage { bytes, len })
    }

    async fn send_async(tx: &mut Tx<Self>, value: Self) -> Result<()> {
        Ok(tx.send_async(&value.bytes[..value.len]).await?)
    }

    async fn recv_async(rx: &mut Rx<Self>) -> Result<Self> {
        let mut bytes = [0; SIZE];
        let len = rx.recv_into_async(&mut bytes).await?;
        Ok(ByteMessage { bytes, len })
    }
}

/// [`Carried`] for a typed channel's message type: its handles' calls are
/// the same for every codec.
macro_rules! typed {
    ($message:ty, $codec:ty, $builder:expr, $max_message:expr, $encoded_len:expr) => {
        impl Carried for $message {
            type Item = $message;
            type Codec = $codec;
            const MAX_MESSAGE: u64 = $max_message;

            fn builder() -> Builder<$message, $codec> {
                $builder
            }

            #[inline(always)]
            fn of(seq: u64) -> Self {
                <$message>::of(seq)
            }

            #[inline(always)]
            fn check(&self, seq: u64) -> Result<()> {
                <$message>::check(self, seq)
            }

            fn encoded_len(seq: u64) -> usize {
                ($encoded_len)(seq)
            }

            #[inline(always)]
            fn try_send(tx: &mut Tx<Self>, value: Self) -> Result<Option<Self>> {
                match tx.try_send(value) {
                    Ok(()) => Ok(None),
                    Err(SendError {
                        value,
                        failure: SendFailure::Full,
                    }) => Ok(Some(value)),
                    Err(e) => Err(e.into()),
                }
            }

            #[inline(always)]
            fn try_recv(rx: &mut Rx<Self>) -> Result<Option<Self>> {
                match rx.try_recv() {
                    Ok(value) => Ok(Some(value)),
                    Err(RecvError::Empty) => Ok(None),
                    Err(e) => Err(e.into()),
                }
            }

            fn send_deadline(tx: &mut Tx<Self>, value: Self, deadline: Instant) -> Result<()> {
                Ok(tx.send_deadline(value, deadline)?)
            }

            fn recv_deadline(rx: &mut Rx<Self>, deadline: Instant) -> Result<Self> {
                Ok(rx.recv_deadline(deadline)?)
            }

            async fn send_async(tx: &mut Tx<Self>, value: Self) -> Result<()> {
                Ok(tx.send_async(value).await?)
            }

            async fn recv_async(rx: &mut Rx<Self>) -> Result<Self> {
                Ok(rx.recv_async().await?)
            }
        }
    };
}

typed!(Quote, Pod, Channel::pod::<Quote>(), SIZE as u64, |_| SIZE);
// Room to spare: an `Order` below sequence number 2³² encodes to 20 bytes.
typed!(
    Order,
    Serde,
    Channel::serde::<Order>(),
    64,
    Order::encoded_len
);

/// A fresh channel of `M` with handles waiting as `calls` says; make it
/// before forking.
fn endpoint<M: Carried>(calls: Calls) -> Result<Endpoint<M::Item, M::Codec>> {
    // Half the ring in records of the largest message: the builder rounds
    // the ring up to the next power of two, `RING_BYTES`.
    let messages = (RING_BYTES / 2) / spsc::record_size(M::MAX_MESSAGE);
    Ok(M::builder()
        .max_message(M::MAX_MESSAGE)
        .capacity(messages)
        .wait_strategy(calls.strategy())
        .region_options(RegionOptions::new().populate(true))
        .anonymous()?)
}

/// Sends `value` as `calls` says: blocking until `deadline`, or spinning
/// while the channel is full (giving up if `peer` exits).
#[inline(always)]
fn send<M: Carried>(
    tx: &mut Tx<M>,
    mut value: M,
    calls: Calls,
    deadline: Instant,
    peer: Option<&ForkedChild>,
) -> Result<()> {
    if calls != Calls::Try {
        return M::send_deadline(tx, value, deadline);
    }
    let mut wait = bounded("room in the channel", peer);
    loop {
        match M::try_send(tx, value)? {
            None => return Ok(()),
            Some(back) => {
                value = back;
                wait.snooze()?;
            }
        }
    }
}

/// Receives the next value as `calls` says.
#[inline(always)]
fn recv<M: Carried>(
    rx: &mut Rx<M>,
    calls: Calls,
    deadline: Instant,
    peer: Option<&ForkedChild>,
) -> Result<M> {
    if calls != Calls::Try {
        return M::recv_deadline(rx, deadline);
    }
    let mut wait = bounded("a message", peer);
    loop {
        match M::try_recv(rx)? {
            Some(value) => return Ok(value),
            None => wait.snooze()?,
        }
    }
}

/// A channel round trip as a [`Leg`] (`cfg.size` must be [`SIZE`]): the
/// parent sends message `seq` on one channel and checks the echo from the
/// other; the child receives each value and sends it back.
pub fn leg(codec: Codec, calls: Calls, cfg: &RoundTrip) -> Result<Box<dyn Leg>> {
    if cfg.size != SIZE {
        return Err(Error::Unsupported(
            "typed channel rows carry 32-byte messages only",
        ));
    }
    match codec {
        Codec::Bytes => ChannelLeg::<ByteMessage>::leg(calls),
        Codec::Pod => ChannelLeg::<Quote>::leg(calls),
        Codec::Serde => ChannelLeg::<Order>::leg(calls),
    }
}

/// The two channels of a round trip, before the fork.
struct ChannelLeg<M: Carried> {
    there: Endpoint<M::Item, M::Codec>,
    back: Endpoint<M::Item, M::Codec>,
    calls: Calls,
}

impl<M: Carried> ChannelLeg<M> {
    fn leg(calls: Calls) -> Result<Box<dyn Leg>> {
        Ok(Box::new(ChannelLeg::<M> {
            there: endpoint::<M>(calls)?,
            back: endpoint::<M>(calls)?,
            calls,
        }))
    }

    /// One side: receiving from `from`, sending to `to`; with its own
    /// runtime for async calls.
    fn side(
        &self,
        from: &Endpoint<M::Item, M::Codec>,
        to: &Endpoint<M::Item, M::Codec>,
    ) -> Result<Sides<M>> {
        let runtime = match self.calls {
            Calls::Async => Some(OneThread::new()?),
            _ => None,
        };
        Ok(Sides {
            rx: from.receiver()?,
            tx: to.sender()?,
            calls: self.calls,
            runtime,
        })
    }
}

impl<M: Carried> Leg for ChannelLeg<M> {
    fn into_echo(self: Box<Self>) -> Result<Box<dyn Echo>> {
        let echo = self.side(&self.there, &self.back)?;
        self.there.region().prefault()?;
        self.back.region().prefault()?;
        Ok(Box::new(echo))
    }

    fn into_ping(self: Box<Self>) -> Result<Box<dyn Ping>> {
        Ok(Box::new(self.side(&self.back, &self.there)?))
    }
}

/// One side of a channel round trip.
struct Sides<M: Carried> {
    rx: Rx<M>,
    tx: Tx<M>,
    calls: Calls,
    /// For [`Calls::Async`].
    runtime: Option<OneThread>,
}

impl<M: Carried> Echo for Sides<M> {
    fn echo(&mut self, n: u64, deadline: Instant) -> Result<()> {
        let Sides {
            rx,
            tx,
            calls,
            runtime,
        } = self;
        if let Some(runtime) = runtime {
            return runtime.run_until(deadline, "async echoes", async {
                for _ in 0..n {
                    let value = M::recv_async(rx).await?;
                    M::send_async(tx, value).await?;
                }
                Ok(())
            });
        }
        for _ in 0..n {
            let value = recv::<M>(rx, *calls, deadline, None)?;
            send(tx, value, *calls, deadline, None)?;
        }
        Ok(())
    }
}

impl<M: Carried> Ping for Sides<M> {
    fn ping(
        &mut self,
        first: u64,
        n: u64,
        deadline: Instant,
        peer: &ForkedChild,
        laps: &mut Laps,
    ) -> Result<()> {
        let Sides {
            rx,
            tx,
            calls,
            runtime,
        } = self;
        if let Some(runtime) = runtime {
            // A dead peer shows as `Disconnected` within the channel's
            // liveness tick.
            return runtime.run_until(deadline, "async round trips", async {
                for seq in first..first + n {
                    M::send_async(tx, M::of(seq)).await?;
                    M::recv_async(rx).await?.check(seq)?;
                    laps.lap();
                }
                Ok(())
            });
        }
        for seq in first..first + n {
            send(tx, M::of(seq), *calls, deadline, Some(peer))?;
            recv::<M>(rx, *calls, deadline, Some(peer))?.check(seq)?;
            laps.lap();
        }
        Ok(())
    }
}

/// One-way throughput over a channel (`try_` calls only; `cfg.size` must
/// be [`SIZE`]): the child sends messages `0..cfg.count`, the parent
/// receives and checks each. Counts both processes' wait-path system calls.
pub fn throughput(codec: Codec, calls: Calls, cfg: &Stream) -> Result<Throughput> {
    if calls != Calls::Try {
        return Err(Error::Unsupported(
            "one-way streams over a channel's blocking or async calls",
        ));
    }
    if cfg.size != SIZE {
        return Err(Error::Unsupported(
            "typed channel rows carry 32-byte messages only",
        ));
    }
    match codec {
        Codec::Bytes => stream::<ByteMessage>(cfg.count),
        Codec::Pod => stream::<Quote>(cfg.count),
        Codec::Serde => stream::<Order>(cfg.count),
    }
}

fn stream<M: Carried>(count: u64) -> Result<Throughput> {
    let endpoint = endpoint::<M>(Calls::Try)?;
    let gate = Gate::new()?;
    let child = fork_child(|| -> Result<()> {
        pin_child()?;
        let mut tx = endpoint.sender()?;
        endpoint.region().prefault()?;
        gate.child_wait_go()?;
        let before = syscalls();
        // `try_` calls take no deadline; their spin has its own.
        let never = Instant::now();
        for seq in 0..count {
            send(&mut tx, M::of(seq), Calls::Try, never, None)?;
        }
        // Release: pairs with the parent's Acquire load after our exit.
        gate.report()?.store(syscalls() - before, Ordering::Release);
        Ok(())
    })?;
    let mut rx = endpoint.receiver()?;
    let before = syscalls();
    let start = gate.start(&child)?;
    for seq in 0..count {
        recv::<M>(&mut rx, Calls::Try, start, Some(&child))?.check(seq)?;
    }
    let elapsed = start.elapsed();
    let ours = syscalls() - before;
    drop(rx);
    finish(child)?;
    // Acquire: pairs with the child's Release store, before it exited.
    let theirs = gate.report()?.load(Ordering::Acquire);
    Ok(Throughput {
        messages: count,
        bytes: (0..count).map(|seq| M::encoded_len(seq) as u64).sum(),
        elapsed,
        wait_syscalls: Some(ours + theirs),
    })
}

/// A channel's one-way stream as a [`Flow`] (`try_` calls only;
/// `cfg.size` must be [`SIZE`]), as [`throughput`].
pub fn flow(codec: Codec, calls: Calls, cfg: &Stream) -> Result<Box<dyn Flow>> {
    if calls != Calls::Try {
        return Err(Error::Unsupported(
            "one-way streams over a channel's blocking or async calls",
        ));
    }
    if cfg.size != SIZE {
        return Err(Error::Unsupported(
            "typed channel rows carry 32-byte messages only",
        ));
    }
    Ok(match codec {
        Codec::Bytes => Box::new(ChannelFlow::<ByteMessage>(endpoint::<ByteMessage>(calls)?)),
        Codec::Pod => Box::new(ChannelFlow::<Quote>(endpoint::<Quote>(calls)?)),
        Codec::Serde => Box::new(ChannelFlow::<Order>(endpoint::<Order>(calls)?)),
    })
}

/// A channel of one-way messages, before the fork.
struct ChannelFlow<M: Carried>(Endpoint<M::Item, M::Codec>);

impl<M: Carried> Flow for ChannelFlow<M> {
    fn into_producer(self: Box<Self>) -> Result<Box<dyn Produce>> {
        let tx = self.0.sender()?;
        self.0.region().prefault()?;
        Ok(Box::new(ChannelProducer::<M>(tx)))
    }

    fn into_consumer(self: Box<Self>) -> Result<Box<dyn Consume>> {
        Ok(Box::new(ChannelConsumer::<M>(self.0.receiver()?)))
    }
}

struct ChannelProducer<M: Carried>(Tx<M>);

impl<M: Carried> Produce for ChannelProducer<M> {
    fn produce(&mut self, first: u64, n: u64) -> Result<()> {
        // `try_` calls take no deadline; their spin has its own.
        let never = Instant::now();
        for seq in first..first + n {
            send(&mut self.0, M::of(seq), Calls::Try, never, None)?;
        }
        Ok(())
    }
}

struct ChannelConsumer<M: Carried>(Rx<M>);

impl<M: Carried> Consume for ChannelConsumer<M> {
    fn consume(&mut self, first: u64, n: u64, peer: &ForkedChild) -> Result<u64> {
        let never = Instant::now();
        let mut bytes = 0;
        for seq in first..first + n {
            recv::<M>(&mut self.0, Calls::Try, never, Some(peer))?.check(seq)?;
            bytes += M::encoded_len(seq) as u64;
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_channel_has_a_ring_of_ring_bytes() {
        fn capacity<M: Carried>() -> u64 {
            endpoint::<M>(Calls::Try)
                .unwrap()
                .region()
                .layout()
                .capacity
        }
        assert_eq!(capacity::<ByteMessage>(), RING_BYTES);
        assert_eq!(capacity::<Quote>(), RING_BYTES);
        assert_eq!(capacity::<Order>(), RING_BYTES);
    }
}
