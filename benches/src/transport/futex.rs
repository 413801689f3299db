//! The raw futex ping-pong: the floor of a *sleeping* round trip. Two
//! processes alternate on one shared word: the parent stores an odd value
//! and `FUTEX_WAKE`s, the child (asleep in `FUTEX_WAIT` until the word
//! changes) stores the next even value and wakes the parent, asleep in its
//! turn. Each side sleeps at once, with no spinning and no bookkeeping: two
//! wake-ups per round trip and nothing else, which no blocking ring can beat.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipc_core::Region;
use ipc_tests::fork::ForkedChild;
use ipc_tests::wait::{ended, WaitError};

use crate::futex;
use crate::paired::{Echo, Leg, Ping};
use crate::stats::Laps;
use crate::workload::raw_region;
use crate::{Error, Result};

/// How long one `FUTEX_WAIT` lasts at most before the waiter looks at its
/// deadline and its peer.
const TICK: Duration = Duration::from_millis(20);

/// The futex ping-pong as a [`Leg`]: the word, and the round trips made.
#[derive(Debug)]
pub struct FutexPingPong {
    region: Arc<Region>,
    round: u32,
}

impl FutexPingPong {
    /// A fresh word; make it before forking.
    pub fn leg() -> Result<Box<dyn Leg>> {
        Ok(Box::new(FutexPingPong {
            region: raw_region(256)?,
            round: 0,
        }))
    }
}

impl Leg for FutexPingPong {
    fn into_echo(self: Box<Self>) -> Result<Box<dyn Echo>> {
        Ok(self)
    }

    fn into_ping(self: Box<Self>) -> Result<Box<dyn Ping>> {
        Ok(self)
    }
}

/// Sleeps until `word` holds `target`; gives up at `deadline` or when
/// `peer` has exited.
fn sleep_until(
    word: &AtomicU32,
    target: u32,
    deadline: Instant,
    peer: Option<&ForkedChild>,
    what: &'static str,
) -> Result<()> {
    loop {
        // Acquire: pairs with the peer's Release store of `target`.
        let seen = word.load(Ordering::Acquire);
        if seen == target {
            return Ok(());
        }
        futex::wait(word, seen, TICK)?;
        if word.load(Ordering::Acquire) == target {
            return Ok(());
        }
        // Woken for nothing, or a tick: the slow path may read the clock.
        if Instant::now() > deadline {
            return Err(Error::Wait(WaitError::Timeout {
                waiting_for: what,
                limit: crate::DEADLINE,
            }));
        }
        if let Some(peer) = peer {
            if let Some(status) = ended(peer.pid())? {
                return Err(Error::Wait(WaitError::PeerExited {
                    waiting_for: what,
                    status,
                }));
            }
        }
    }
}

/// Stores `value` and wakes the peer.
fn publish(word: &AtomicU32, value: u32) -> Result<()> {
    // Release: pairs with the peer's Acquire load in `sleep_until`.
    word.store(value, Ordering::Release);
    futex::wake(word, 1).map(drop)
}

impl Echo for FutexPingPong {
    fn echo(&mut self, n: u64, deadline: Instant) -> Result<()> {
        let word = futex::word(&self.region, 0)?;
        for _ in 0..n {
            self.round = self.round.wrapping_add(1);
            let ping = self.round.wrapping_mul(2).wrapping_sub(1);
            sleep_until(word, ping, deadline, None, "a futex ping")?;
            publish(word, ping.wrapping_add(1))?;
        }
        Ok(())
    }
}

impl Ping for FutexPingPong {
    fn ping(
        &mut self,
        _: u64,
        n: u64,
        deadline: Instant,
        peer: &ForkedChild,
        laps: &mut Laps,
    ) -> Result<()> {
        let word = futex::word(&self.region, 0)?;
        for _ in 0..n {
            self.round = self.round.wrapping_add(1);
            let ping = self.round.wrapping_mul(2).wrapping_sub(1);
            publish(word, ping)?;
            sleep_until(
                word,
                ping.wrapping_add(1),
                deadline,
                Some(peer),
                "a futex pong",
            )?;
            laps.lap();
        }
        Ok(())
    }
}
