//! Bounded waiting for a peer process: the library's [`Backoff`], plus a
//! time limit and a watch on the peer, so that no test or benchmark can hang
//! on a peer that died or stalled.
//!
//! ```
//! use std::sync::atomic::{AtomicBool, Ordering};
//! use std::time::Duration;
//! use ipc_tests::wait::{BoundedWait, WaitError};
//!
//! let flag = AtomicBool::new(false);
//! let mut wait = BoundedWait::new("a flag nobody sets", Duration::from_millis(20));
//! let gave_up = loop {
//!     if flag.load(Ordering::Acquire) {
//!         break None;
//!     }
//!     if let Err(e) = wait.snooze() {
//!         break Some(e);
//!     }
//! };
//! assert!(matches!(gave_up, Some(WaitError::Timeout { .. })));
//! ```

use std::fmt;
use std::time::{Duration, Instant};

use ipc_core::wait::Backoff;
use nix::errno::Errno;
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Why a [`BoundedWait`] gave up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitError {
    /// Nothing happened within the limit.
    Timeout {
        /// What was awaited.
        waiting_for: &'static str,
        /// How long the wait lasted.
        limit: Duration,
    },
    /// The watched peer ended while this side was still waiting for it.
    PeerExited {
        /// What was awaited.
        waiting_for: &'static str,
        /// How the peer ended (it is left unreaped for its owner).
        status: WaitStatus,
    },
    /// A system call failed while waiting.
    Os {
        /// The call.
        call: &'static str,
        /// What it returned.
        errno: Errno,
    },
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitError::Timeout { waiting_for, limit } => {
                write!(f, "gave up after {limit:?} waiting for {waiting_for}")
            }
            WaitError::PeerExited {
                waiting_for,
                status,
            } => write!(
                f,
                "peer {} while we waited for {waiting_for}",
                describe(status)
            ),
            WaitError::Os { call, errno } => write!(f, "{call} failed: {errno}"),
        }
    }
}

impl std::error::Error for WaitError {}

/// How a process ended, in words: `exited with status 1`, `was killed by
/// SIGKILL`.
pub fn describe(status: &WaitStatus) -> String {
    match status {
        WaitStatus::Exited(_, code) => format!("exited with status {code}"),
        WaitStatus::Signaled(_, signal, _) => format!("was killed by {signal}"),
        other => format!("{other:?}"),
    }
}

/// A wait that spins, yields and naps as [`Backoff`] does, and gives up with
/// an error once it has lasted longer than its limit or, when it watches a
/// peer process, soon after the peer ends.
///
/// The fast path (while the backoff only spins) reads no clock and makes no
/// system call; the limit counts from the first step past spinning. Nothing
/// here allocates, so it is usable in a forked child of a threaded process.
#[derive(Debug)]
pub struct BoundedWait {
    backoff: Backoff,
    waiting_for: &'static str,
    limit: Duration,
    since: Option<Instant>,
    /// Steps past spinning so far.
    slow_steps: u32,
    /// Spin phases of the backoff to run before its first yield.
    spin_phases: u32,
    /// Spin phases still to run before the first yield.
    spin_phases_left: u32,
    peer: Option<Pid>,
    peer_ended: Option<WaitStatus>,
}

impl BoundedWait {
    /// A fresh wait for `waiting_for` (named in errors) that gives up after
    /// `limit`.
    #[inline]
    pub fn new(waiting_for: &'static str, limit: Duration) -> Self {
        BoundedWait {
            backoff: Backoff::new(),
            waiting_for,
            limit,
            since: None,
            slow_steps: 0,
            spin_phases: 1,
            spin_phases_left: 0,
            peer: None,
            peer_ended: None,
        }
    }

    /// Steps past spinning between two looks at the peer: a look is a
    /// system call, dearer than reading the clock, which every such step does.
    pub const PEER_CHECK_STEPS: u32 = 16;

    /// Spins at least `spins` times (rounded up to whole spin phases of
    /// [`Backoff`], [`Backoff::SPINS`] each) before the backoff's first yield.
    ///
    /// For a latency-bound wait on a peer that has a core of its own, such as
    /// a benchmark's: a wait of a few microseconds stays a spin and never
    /// reaches the backoff's naps.
    #[inline]
    pub fn spin_first(mut self, spins: u32) -> Self {
        self.spin_phases = spins.div_ceil(Backoff::SPINS).max(1);
        self.spin_phases_left = self.spin_phases - 1;
        self
    }

    /// Also gives up when `peer`, an unreaped child of this process, ends
    /// (seen within [`Self::PEER_CHECK_STEPS`] steps). The peer is never
    /// reaped here: its owner still collects its status.
    #[inline]
    pub fn watching(mut self, peer: impl Into<Option<Pid>>) -> Self {
        self.peer = peer.into();
        self
    }

    /// Waits a little; an error once the wait has lasted too long or the
    /// peer has ended.
    ///
    /// A peer seen to have ended fails the *next* call, not this one, so the
    /// caller looks at what it awaits once more: whatever the peer did before
    /// it ended is visible by then.
    #[inline]
    pub fn snooze(&mut self) -> Result<(), WaitError> {
        if self.spin_phases_left > 0 && !self.backoff.is_spinning() {
            // Another spin phase instead of the first yield.
            self.spin_phases_left -= 1;
            self.backoff.reset();
        }
        if self.backoff.snooze() {
            self.check()
        } else {
            Ok(())
        }
    }

    /// Starts over after progress: spinning again, and a full limit.
    #[inline]
    pub fn reset(&mut self) {
        self.backoff.reset();
        self.since = None;
        self.slow_steps = 0;
        self.spin_phases_left = self.spin_phases - 1;
    }

    #[cold]
    #[inline(never)]
    fn check(&mut self) -> Result<(), WaitError> {
        if let Some(status) = self.peer_ended {
            return Err(WaitError::PeerExited {
                waiting_for: self.waiting_for,
                status,
            });
        }
        if let Some(pid) = self.peer {
            if self.slow_steps % Self::PEER_CHECK_STEPS == 0 {
                self.peer_ended = ended(pid)?;
                if self.peer_ended.is_some() {
                    return Ok(());
                }
            }
        }
        self.slow_steps = self.slow_steps.wrapping_add(1);
        let now = Instant::now();
        let since = *self.since.get_or_insert(now);
        if now.duration_since(since) > self.limit {
            return Err(WaitError::Timeout {
                waiting_for: self.waiting_for,
                limit: self.limit,
            });
        }
        Ok(())
    }
}

/// How `pid`, an unreaped child of this process, ended, or `None` while it
/// runs; it stays unreaped.
pub fn ended(pid: Pid) -> Result<Option<WaitStatus>, WaitError> {
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    match waitid(Id::Pid(pid), flags) {
        Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => Ok(None),
        Ok(status) => Ok(Some(status)),
        Err(errno) => Err(WaitError::Os {
            call: "waitid",
            errno,
        }),
    }
}

/// Waits up to `limit` for `pid`, an unreaped child of this process, to end;
/// how it ended. It stays unreaped.
pub fn wait_for_end(pid: Pid, limit: Duration) -> Result<WaitStatus, WaitError> {
    let mut wait = BoundedWait::new("the child to exit", limit);
    loop {
        if let Some(status) = ended(pid)? {
            return Ok(status);
        }
        wait.snooze()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gives_up_after_the_limit_and_starts_over_after_reset() {
        let limit = Duration::from_millis(30);
        let mut wait = BoundedWait::new("nothing", limit);
        let started = Instant::now();
        let e = loop {
            if let Err(e) = wait.snooze() {
                break e;
            }
        };
        assert!(started.elapsed() >= limit, "{:?}", started.elapsed());
        assert_eq!(
            e,
            WaitError::Timeout {
                waiting_for: "nothing",
                limit
            }
        );
        assert_eq!(e.to_string(), "gave up after 30ms waiting for nothing");
        wait.reset();
        assert_eq!(wait.snooze(), Ok(()));
    }

    #[test]
    fn a_watched_peer_that_ends_fails_the_wait_after_one_more_look() {
        // SAFETY: the child only returns a number.
        let child = unsafe { crate::fork::ForkedChild::fork(|| 4) }.unwrap();
        let mut wait = BoundedWait::new("a word", Duration::from_secs(60)).watching(child.pid());
        let mut looks_after_the_end = 0;
        let e = loop {
            if wait.peer_ended.is_some() {
                looks_after_the_end += 1;
            }
            if let Err(e) = wait.snooze() {
                break e;
            }
        };
        assert_eq!(looks_after_the_end, 1);
        let status = WaitStatus::Exited(child.pid(), 4);
        assert_eq!(
            e,
            WaitError::PeerExited {
                waiting_for: "a word",
                status
            }
        );
        assert_eq!(
            e.to_string(),
            "peer exited with status 4 while we waited for a word"
        );
        // Left unreaped for its owner.
        assert_eq!(child.try_wait(), Ok(Some(status)));
    }

    #[test]
    fn spin_first_spins_whole_phases_before_the_first_yield() {
        let spins = 3 * Backoff::SPINS + 1;
        let mut wait = BoundedWait::new("nothing", Duration::from_secs(60)).spin_first(spins);
        // Four whole phases: the clock is read (`since` set) only after them.
        for round in 0..2 {
            for _ in 0..4 * Backoff::SPINS {
                assert_eq!(wait.snooze(), Ok(()));
                assert!(wait.since.is_none(), "round {round}: yielded early");
            }
            assert_eq!(wait.snooze(), Ok(()));
            assert!(wait.since.is_some(), "round {round}: still spinning");
            wait.reset();
        }
    }

    #[test]
    fn describes_how_a_process_ended() {
        let pid = Pid::from_raw(1);
        assert_eq!(
            describe(&WaitStatus::Exited(pid, 3)),
            "exited with status 3"
        );
        let killed = WaitStatus::Signaled(pid, nix::sys::signal::Signal::SIGKILL, false);
        assert_eq!(describe(&killed), "was killed by SIGKILL");
    }

    #[test]
    fn a_process_that_is_not_our_child_cannot_be_watched() {
        // Pid 1 is never a child of the test process.
        let e = wait_for_end(Pid::from_raw(1), Duration::from_secs(5)).unwrap_err();
        assert_eq!(
            e,
            WaitError::Os {
                call: "waitid",
                errno: Errno::ECHILD
            }
        );
    }
}
