//! The floor: the parent stores `i` to its line, the child waits for it and
//! stores `i` to its own line, the parent waits for that. Two cache-line
//! transfers per round trip, nothing else: no shared-memory round trip can
//! be faster.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ipc_core::Region;
use ipc_tests::fork::ForkedChild;

use crate::paired::{Echo, Leg, Ping};
use crate::stats::Laps;
use crate::wait::bounded;
use crate::workload::raw_region;
use crate::Result;

/// The floor's two words, on lines of their own: the parent writes `ping`,
/// the child `pong`.
#[derive(Debug)]
struct Lines<'a> {
    ping: &'a AtomicU64,
    pong: &'a AtomicU64,
}

impl<'a> Lines<'a> {
    fn of(region: &'a Region) -> Result<Lines<'a>> {
        Ok(Lines {
            ping: region.atomic_u64(0)?,
            pong: region.atomic_u64(128)?,
        })
    }
}

/// The floor as a [`Leg`] of a paired measurement: the two lines, and the
/// count each side has reached.
#[derive(Debug)]
pub struct Floor {
    region: Arc<Region>,
    i: u64,
}

impl Floor {
    /// A fresh pair of lines; make it before forking.
    pub fn leg() -> Result<Box<dyn Leg>> {
        Ok(Box::new(Floor {
            region: raw_region(256)?,
            i: 0,
        }))
    }
}

impl Leg for Floor {
    fn into_echo(self: Box<Self>) -> Result<Box<dyn Echo>> {
        Ok(self)
    }

    fn into_ping(self: Box<Self>) -> Result<Box<dyn Ping>> {
        Ok(self)
    }
}

impl Echo for Floor {
    fn echo(&mut self, n: u64, _: Instant) -> Result<()> {
        let lines = Lines::of(&self.region)?;
        for _ in 0..n {
            self.i += 1;
            let mut wait = bounded("a ping", None);
            // Acquire/Release as a ring would use them (free on x86).
            while lines.ping.load(Ordering::Acquire) != self.i {
                wait.snooze()?;
            }
            lines.pong.store(self.i, Ordering::Release);
        }
        Ok(())
    }
}

impl Ping for Floor {
    fn ping(
        &mut self,
        _: u64,
        n: u64,
        _: Instant,
        peer: &ForkedChild,
        laps: &mut Laps,
    ) -> Result<()> {
        let lines = Lines::of(&self.region)?;
        for _ in 0..n {
            self.i += 1;
            lines.ping.store(self.i, Ordering::Release);
            let mut wait = bounded("a pong", Some(peer));
            while lines.pong.load(Ordering::Acquire) != self.i {
                wait.snooze()?;
            }
            laps.lap();
        }
        Ok(())
    }
}
