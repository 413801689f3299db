//! The floor: the parent stores `i` to its line, the child waits for it and
//! stores `i` to its own line, the parent waits for that. Two cache-line
//! transfers per round trip, nothing else: no shared-memory round trip can
//! be faster.

use std::sync::atomic::{AtomicU64, Ordering};

use ipc_core::Region;
use ipc_tests::fork::ForkedChild;

use crate::process::{finish, fork_child, pin_child};
use crate::stats::time_batches;
use crate::wait::{bounded, Gate};
use crate::workload::{raw_region, RoundTrip};
use crate::Result;

/// The floor's two words, on lines of their own: the parent writes `ping`,
/// the child `pong`.
#[derive(Debug)]
pub struct Lines<'a> {
    ping: &'a AtomicU64,
    pong: &'a AtomicU64,
}

impl<'a> Lines<'a> {
    /// A region for the two lines; make it before forking.
    pub fn region() -> Result<std::sync::Arc<Region>> {
        raw_region(256)
    }

    /// The lines in `region` (made by [`Lines::region`]).
    pub fn of(region: &'a Region) -> Result<Lines<'a>> {
        Ok(Lines {
            ping: region.atomic_u64(0)?,
            pong: region.atomic_u64(128)?,
        })
    }

    /// In the child: waits for ping `i`, answers with pong `i`.
    #[inline(always)]
    pub fn echo(&self, i: u64) -> Result<()> {
        let mut wait = bounded("a ping", None);
        // Acquire/Release as a ring would use them (free on x86).
        while self.ping.load(Ordering::Acquire) != i {
            wait.snooze()?;
        }
        self.pong.store(i, Ordering::Release);
        Ok(())
    }

    /// In the parent: pings `i` and waits for the child's pong.
    #[inline(always)]
    pub fn ping(&self, i: u64, child: &ForkedChild) -> Result<()> {
        self.ping.store(i, Ordering::Release);
        let mut wait = bounded("a pong", Some(child));
        while self.pong.load(Ordering::Acquire) != i {
            wait.snooze()?;
        }
        Ok(())
    }
}

/// Floor round trips: one per-round-trip time (ns) per batch.
pub fn round_trip(cfg: &RoundTrip) -> Result<Vec<f64>> {
    let region = Lines::region()?;
    let gate = Gate::new()?;
    let total = cfg.total();
    let child = fork_child(|| -> Result<()> {
        pin_child()?;
        let lines = Lines::of(&region)?;
        gate.child_wait_go()?;
        for i in 1..=total {
            lines.echo(i)?;
        }
        Ok(())
    })?;
    let lines = Lines::of(&region)?;
    gate.start(&child)?;
    let samples = time_batches(cfg.warmup, cfg.samples, cfg.batch, |seq| {
        lines.ping(seq + 1, &child)
    })?;
    finish(child)?;
    Ok(samples)
}
