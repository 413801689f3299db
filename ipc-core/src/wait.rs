//! Waiting for a peer without a syscall on the fast path and without burning
//! a core when the peer is slow.
//!
//! [`Backoff`] spins a bounded number of times, then yields the CPU, then
//! naps: first briefly, then for a millisecond at a time, so that a wait for
//! an idle peer costs little CPU and two processes oversubscribed on one core
//! still make progress. It never gives up by itself: callers bound their
//! waits with a deadline of their own, checked when [`Backoff::snooze`] says
//! the wait is past its spinning phase.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use ipc_core::wait::Backoff;
//!
//! let ready = Instant::now() + Duration::from_millis(2);
//! let give_up = Instant::now() + Duration::from_secs(5);
//! let mut backoff = Backoff::new();
//! while Instant::now() < ready {
//!     if backoff.snooze() && Instant::now() > give_up {
//!         panic!("waited too long");
//!     }
//! }
//! ```

use std::time::Duration;

/// A bounded spin, then yields, then naps; see the [module docs](self).
#[derive(Clone, Debug, Default)]
pub struct Backoff {
    step: u32,
}

impl Backoff {
    /// Spins (a pause instruction each) before the first yield.
    pub const SPINS: u32 = 64;
    /// Steps, spins included, before the first nap.
    pub const YIELDS: u32 = 128;
    /// Steps before naps grow from [`Self::SHORT_NAP`] to [`Self::LONG_NAP`]
    /// (about 50 ms of short naps).
    pub const SHORT_NAPS: u32 = 1_128;
    /// A nap early in a wait.
    pub const SHORT_NAP: Duration = Duration::from_micros(50);
    /// A nap once the wait has lasted a while.
    pub const LONG_NAP: Duration = Duration::from_millis(1);

    /// A fresh wait, starting with spins.
    pub const fn new() -> Self {
        Backoff { step: 0 }
    }

    /// Waits a little, longer each call. Returns `true` once past the
    /// spinning phase: from then on each call costs at least a yield, so it
    /// is worth looking at a clock or at the peer's health.
    #[inline]
    pub fn snooze(&mut self) -> bool {
        if self.step < Self::SPINS {
            std::hint::spin_loop();
        } else {
            self.slow();
        }
        self.step = self.step.saturating_add(1);
        self.step > Self::SPINS
    }

    #[cold]
    fn slow(&self) {
        if self.step < Self::YIELDS {
            std::thread::yield_now();
        } else if self.step < Self::SHORT_NAPS {
            std::thread::sleep(Self::SHORT_NAP);
        } else {
            std::thread::sleep(Self::LONG_NAP);
        }
    }

    /// Starts over with spins, after progress.
    #[inline]
    pub fn reset(&mut self) {
        self.step = 0;
    }

    /// Whether the next [`snooze`](Self::snooze) still only spins.
    pub fn is_spinning(&self) -> bool {
        self.step < Self::SPINS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_end_of_spinning_and_resets() {
        let mut backoff = Backoff::new();
        for _ in 0..Backoff::SPINS - 1 {
            assert!(!backoff.snooze());
        }
        assert!(backoff.is_spinning());
        assert!(!backoff.snooze());
        assert!(!backoff.is_spinning());
        assert!(backoff.snooze());
        backoff.reset();
        assert!(backoff.is_spinning());
        assert!(!backoff.snooze());
    }
}
