//! Waiting in a measurement: bounded waits for the peer, and the start line
//! between parent and child.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ipc_core::Region;
use ipc_tests::fork::ForkedChild;
use ipc_tests::wait::BoundedWait;

use crate::workload::raw_region;
use crate::{Result, DEADLINE};

/// Spins before a wait yields the CPU: a few microseconds or more, so that a
/// round trip of a large message (a wait of some 5–10 µs) is measured as a
/// spin, never as a yield or a nap.
pub const SPINS: u32 = 1 << 12;

/// A wait for `what` (named in errors) that gives up after [`DEADLINE`], and
/// soon after `peer` exits when there is one. It spins [`SPINS`] times, then
/// yields and naps as [`ipc_core::wait::Backoff`] does; the fast path reads
/// no clock and makes no system call.
#[inline(always)]
pub fn bounded(what: &'static str, peer: Option<&ForkedChild>) -> BoundedWait {
    BoundedWait::new(what, DEADLINE)
        .spin_first(SPINS)
        .watching(peer.map(ForkedChild::pid))
}

/// A wait for `what` where processes or threads may share a CPU (the
/// runs with several producers and consumers): the library's
/// [`ipc_core::wait::Backoff`] as it is, a few spins and then yields, so a
/// waiter soon lets a peer on its CPU run; gives up after [`DEADLINE`].
#[inline(always)]
pub fn yielding(what: &'static str) -> BoundedWait {
    BoundedWait::new(what, DEADLINE)
}

/// Start line between parent and child: the child says it is ready (handles
/// attached, memory touched) and waits for "go"; the parent waits for ready,
/// starts its clock and says go.
#[derive(Debug)]
pub struct Gate {
    region: Arc<Region>,
}

impl Gate {
    /// A gate in a fresh shared region; make it before forking.
    pub fn new() -> Result<Gate> {
        Ok(Gate {
            region: raw_region(384)?,
        })
    }

    /// A word the child may use to report a number to the parent.
    pub fn report(&self) -> Result<&AtomicU64> {
        Ok(self.region.atomic_u64(256)?)
    }

    fn ready(&self) -> Result<&AtomicU64> {
        Ok(self.region.atomic_u64(0)?)
    }

    fn go_word(&self) -> Result<&AtomicU64> {
        Ok(self.region.atomic_u64(128)?)
    }

    /// In the child: announces readiness, waits for the go.
    pub fn child_wait_go(&self) -> Result<()> {
        // Release/Acquire: the child's set-up happens before the parent's go.
        self.ready()?.store(1, Ordering::Release);
        let go = self.go_word()?;
        let mut wait = bounded("the parent's go", None);
        while go.load(Ordering::Acquire) == 0 {
            wait.snooze()?;
        }
        Ok(())
    }

    /// In the parent: waits until `child` is ready, reads the clock, says
    /// go; the time of the start.
    pub fn start(&self, child: &ForkedChild) -> Result<Instant> {
        let ready = self.ready()?;
        let mut wait = bounded("the child to get ready", Some(child));
        while ready.load(Ordering::Acquire) == 0 {
            wait.snooze()?;
        }
        let start = Instant::now();
        self.go_word()?.store(1, Ordering::Release);
        Ok(start)
    }
}
