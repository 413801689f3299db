//! `async` sending and receiving, for tokio (the `tokio` feature).
//!
//! An async call first tries as the `try_` calls do, on the task's own
//! thread: while the peer keeps up that is all it does, with no syscall and
//! no allocation. When the ring is empty (or full), the task must wait
//! without holding a runtime worker, and the only way to be woken by
//! another process's notification, on a named channel as much as on a
//! passed fd, is the ring's futex. So the call hands a [`Sleeper`] (the
//! ring's signal and the condition to check, holding the mapping alive) to
//! tokio's blocking pool with `spawn_blocking`, which sleeps on the futex
//! like a blocking call and returns when notified, when the condition
//! already holds, or after a [`LIVENESS_TICK`]; the task then tries again.
//! It reaps dead peers when it starts waiting and every tick after, so a
//! peer killed mid-wait still ends the call with `Disconnected`, even when
//! the caller cancels each wait before a tick (`tokio::time::timeout` in a
//! loop).
//!
//! The cost, paid only when the call has to wait: a hand-off to a blocking
//! thread and back (an allocation, a wake-up of a pooled thread, a task
//! wake), and one blocking thread per waiting call while it waits. The
//! benchmark's async round trip shows it beside the blocking one.
//!
//! Cancellation: dropping the future of a receive loses nothing (a message
//! is taken only in the poll that returns it); dropping that of a send drops
//! the value unsent. A cancelled wait's blocking thread returns within a
//! tick.

use std::time::Instant;

#[cfg(feature = "pod")]
use super::{check_size, PodGuard};
use super::{Block, Guard, GuardOf, Receiver, Rx, Sender, Tx};
use crate::channel::codec::Bytes;
#[cfg(feature = "pod")]
use crate::channel::codec::Pod;
#[cfg(feature = "serde")]
use crate::channel::codec::Serde;
#[cfg(any(feature = "serde", feature = "pod"))]
use crate::channel::errors::SendError;
use crate::channel::errors::{RecvError, SendFailure};
use crate::ring;
use crate::wait::{Sleeper, LIVENESS_TICK};
use crate::{mpmc, spsc};

/// When an async call next checks that its peers are alive.
#[derive(Default)]
struct Ticks(Option<Instant>);

impl Ticks {
    /// Whether to check the peers now: at a call's first wait (a future
    /// cancelled before any tick, as `tokio::time::timeout` does in a loop,
    /// must still learn that a peer died), then every [`LIVENESS_TICK`].
    fn due(&mut self) -> bool {
        let now = Instant::now();
        let due = self.0.is_none_or(|next| now >= next);
        if due {
            self.0 = Some(now + LIVENESS_TICK);
        }
        due
    }
}

/// Sleeps on `sleeper` on tokio's blocking pool; see the module docs.
async fn sleep_off_runtime(sleeper: Sleeper) {
    // A `JoinError` means the runtime is shutting down (and this task with
    // it) or the sleep panicked, which it does not: either way the caller's
    // next attempt decides.
    let _ = tokio::task::spawn_blocking(move || sleeper.sleep(LIVENESS_TICK)).await;
}

impl Tx {
    /// Waits, off the runtime, for room; reaps dead consumers on ticks.
    /// (`&mut`: a `&Tx` is not `Send`, and the future must be.)
    async fn wait_for_room(&mut self, ticks: &mut Ticks) {
        let sleeper = match self {
            Tx::Spsc(p) => p.sleeper(),
            Tx::Mpmc(p) => p.sleeper(),
        };
        // The sleeper was made first: a reap's membership change makes its
        // condition ready, so the sleep then returns at once.
        if ticks.due() {
            match self {
                Tx::Spsc(p) => p.reap_dead_peers(),
                Tx::Mpmc(p) => p.reap_dead_peers(),
            }
        }
        sleep_off_runtime(sleeper).await;
    }
}

/// A message [`Rx::try_claim`] found.
enum Claim {
    Spsc(spsc::Claim),
    Mpmc(mpmc::Claim),
}

impl Rx {
    /// Waits, off the runtime, for a message; reaps dead producers on ticks.
    async fn wait_for_message(&mut self, ticks: &mut Ticks) {
        let sleeper = match self {
            Rx::Spsc(c) => c.sleeper(),
            Rx::Mpmc(c) => c.sleeper(),
        };
        // As in `wait_for_room`.
        if ticks.due() {
            match self {
                Rx::Spsc(c) => c.reap_dead_peers(),
                Rx::Mpmc(c) => c.reap_dead_peers(),
            }
        }
        sleep_off_runtime(sleeper).await;
    }

    fn try_claim(&mut self) -> Result<Claim, ring::RecvError> {
        Ok(match self {
            Rx::Spsc(c) => Claim::Spsc(c.try_claim()?),
            Rx::Mpmc(c) => Claim::Mpmc(c.try_claim()?),
        })
    }

    /// The next message, read in place, waiting for it off the runtime.
    /// (Claiming first and making the guard after is what lets the loop
    /// hold no borrow while it waits.)
    async fn guard_async(&mut self) -> Result<Guard<'_>, ring::RecvError> {
        let mut ticks = Ticks::default();
        let claim = loop {
            match self.try_claim() {
                Err(ring::RecvError::Empty) => {}
                other => break other?,
            }
            self.wait_for_message(&mut ticks).await;
        };
        Ok(Guard(match (self, claim) {
            (Rx::Spsc(c), Claim::Spsc(claim)) => GuardOf::Spsc(c.guard_of(claim)),
            (Rx::Mpmc(c), Claim::Mpmc(claim)) => GuardOf::Mpmc(c.guard_of(claim)),
            _ => unreachable!("a claim comes from its own ring"),
        }))
    }
}

impl Sender<[u8], Bytes> {
    /// [`send`](Self::send) for async code: waits for room without holding
    /// a runtime thread (see [`channel`](crate::channel#async)).
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn send_async(&mut self, msg: &[u8]) -> Result<(), SendFailure> {
        let mut ticks = Ticks::default();
        loop {
            match self.tx.send(msg, Block::Never) {
                Err(ring::SendError::Full) => {}
                other => return Ok(other?),
            }
            self.tx.wait_for_room(&mut ticks).await;
        }
    }
}

impl Receiver<[u8], Bytes> {
    /// [`recv`](Self::recv) for async code: waits for a message without
    /// holding a runtime thread.
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub async fn recv_async(&mut self) -> Result<Guard<'_>, RecvError> {
        Ok(self.rx.guard_async().await?)
    }

    /// [`recv_into`](Self::recv_into) for async code.
    ///
    /// # Errors
    /// As [`recv_into`](Self::recv_into).
    pub async fn recv_into_async(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
        let mut ticks = Ticks::default();
        loop {
            match self.rx.copy(buf, Block::Never) {
                Err(ring::RecvError::Empty) => {}
                other => return Ok(other?),
            }
            self.rx.wait_for_message(&mut ticks).await;
        }
    }
}

/// The typed handles' async calls: a `try_` attempt, then a wait off the
/// runtime, until the attempt neither finds the ring full nor empty.
#[cfg(any(feature = "serde", feature = "pod"))]
macro_rules! typed_async {
    ($codec:ty, $($bound:tt)+) => {
        impl<T> Sender<T, $codec>
        where
            T: $($bound)+,
        {
            /// [`send`](Self::send) for async code: waits for room without
            /// holding a runtime thread. Dropping the future drops the
            /// value unsent.
            ///
            /// # Errors
            /// As [`send`](Self::send).
            pub async fn send_async(&mut self, mut value: T) -> Result<(), SendError<T>> {
                let mut ticks = Ticks::default();
                loop {
                    match self.send_with(value, Block::Never) {
                        Err(SendError {
                            value: back,
                            failure: SendFailure::Full,
                        }) => value = back,
                        other => return other,
                    }
                    self.tx.wait_for_room(&mut ticks).await;
                }
            }
        }

        impl<T> Receiver<T, $codec>
        where
            T: $($bound)+,
        {
            /// [`recv`](Self::recv) for async code: waits for a message
            /// without holding a runtime thread. Dropping the future loses
            /// no message.
            ///
            /// # Errors
            /// As [`recv`](Self::recv).
            pub async fn recv_async(&mut self) -> Result<T, RecvError> {
                let mut ticks = Ticks::default();
                loop {
                    match self.recv_with(Block::Never) {
                        Err(RecvError::Empty) => {}
                        other => return other,
                    }
                    self.rx.wait_for_message(&mut ticks).await;
                }
            }
        }
    };
}

#[cfg(feature = "serde")]
typed_async!(Serde, serde::Serialize + serde::de::DeserializeOwned);
#[cfg(feature = "pod")]
typed_async!(Pod, bytemuck::Pod);

#[cfg(feature = "pod")]
impl<T: bytemuck::Pod> Receiver<T, Pod> {
    /// [`recv_ref`](Self::recv_ref) for async code: the next value, read in
    /// place, waiting for it without holding a runtime thread.
    ///
    /// # Errors
    /// As [`recv_ref`](Self::recv_ref).
    pub async fn recv_ref_async(&mut self) -> Result<PodGuard<'_, T>, RecvError> {
        let guard = self.rx.guard_async().await?;
        check_size::<T>(guard.len())?;
        Ok(PodGuard {
            guard,
            _value: std::marker::PhantomData,
        })
    }
}
