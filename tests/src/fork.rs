//! A forked child process that cannot outlive its test: killed and reaped
//! when its guard drops, and killed by the kernel when its parent dies.
//!
//! ```
//! use std::time::Duration;
//! use ipc_tests::fork::ForkedChild;
//! use nix::sys::wait::WaitStatus;
//!
//! // SAFETY: the child only returns a number; it allocates nothing and takes
//! // no lock, so it is sound even in a threaded test process.
//! let child = unsafe { ForkedChild::fork(|| 7) }?;
//! assert!(matches!(child.wait(Duration::from_secs(30))?, WaitStatus::Exited(_, 7)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::cell::Cell;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::prctl::set_pdeathsig;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, getpid, getppid, ForkResult, Pid};

use crate::wait::{wait_for_end, WaitError};

/// A forked child; killed (`SIGKILL`) and reaped on drop unless it was
/// reaped already, so no failing test or benchmark leaves a process behind.
#[derive(Debug)]
pub struct ForkedChild {
    pid: Pid,
    /// How it ended, once reaped.
    reaped: Cell<Option<WaitStatus>>,
}

impl ForkedChild {
    /// The exit status of a child whose parent died before the child could
    /// ask to be killed with it; it never ran its work.
    pub const ORPHANED: i32 = 126;

    /// Forks a child that runs `work` and leaves with `_exit(work())`: it
    /// never returns into the caller and runs no destructor or exit handler
    /// of the parent's copied state. The child gets `SIGKILL` when the
    /// calling thread's process dies (`PR_SET_PDEATHSIG`).
    ///
    /// # Safety
    /// The child holds a copy of the caller's memory but only the calling
    /// thread. If the process has other threads (the test harness has), a
    /// lock they held stays locked forever in the child, so `work` must do
    /// only what needs no lock: no allocation, no printing, nothing that may
    /// take a lock of the standard library or libc. Atomics, raw memory,
    /// system calls and the non-allocating parts of `ipc_core` are fine. A
    /// single-threaded caller may do anything.
    pub unsafe fn fork(work: impl FnOnce() -> i32) -> Result<ForkedChild, Errno> {
        let parent = getpid();
        // SAFETY: the caller upholds this function's contract for `work`,
        // the only code the child runs besides the async-signal-safe calls
        // below; the child leaves through `_exit`.
        match unsafe { fork() }? {
            ForkResult::Parent { child } => Ok(ForkedChild {
                pid: child,
                reaped: Cell::new(None),
            }),
            ForkResult::Child => {
                let orphaned = set_pdeathsig(Signal::SIGKILL).is_err() || getppid() != parent;
                let code = if orphaned { Self::ORPHANED } else { work() };
                // SAFETY: `_exit` ends the process at once; it runs no
                // destructors or atexit handlers, which belong to the
                // parent's copy of the state.
                unsafe { libc::_exit(code) }
            }
        }
    }

    /// The child's pid.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Reaps the child if it has ended: how it ended, else `None`.
    pub fn try_wait(&self) -> Result<Option<WaitStatus>, WaitError> {
        if let Some(status) = self.reaped.get() {
            return Ok(Some(status));
        }
        match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(status @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                self.reaped.set(Some(status));
                Ok(Some(status))
            }
            Ok(_) | Err(Errno::EINTR) => Ok(None),
            Err(errno) => Err(WaitError::Os {
                call: "waitpid",
                errno,
            }),
        }
    }

    /// Waits up to `limit` for the child to end, and reaps it. A child still
    /// running at the limit is left to the guard's drop, which kills it.
    pub fn wait(&self, limit: Duration) -> Result<WaitStatus, WaitError> {
        if self.reaped.get().is_none() {
            wait_for_end(self.pid, limit)?;
        }
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
        }
    }
}

impl Drop for ForkedChild {
    fn drop(&mut self) {
        if self.reaped.get().is_none() {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = waitpid(self.pid, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(30);

    #[test]
    fn reports_the_exit_code_once_reaped() {
        // SAFETY: the child only returns a number.
        let child = unsafe { ForkedChild::fork(|| 5) }.unwrap();
        let status = child.wait(LIMIT).unwrap();
        assert_eq!(status, WaitStatus::Exited(child.pid(), 5));
        // Reaped: the status stays, and the pid is no longer ours to wait for.
        assert_eq!(child.try_wait(), Ok(Some(status)));
        assert_eq!(child.wait(LIMIT), Ok(status));
        assert_eq!(waitpid(child.pid(), None), Err(Errno::ECHILD));
    }

    #[test]
    fn a_child_still_running_is_killed_and_reaped_on_drop() {
        // SAFETY: the child only sleeps (a system call) until it is killed.
        let child = unsafe {
            ForkedChild::fork(|| loop {
                std::thread::sleep(Duration::from_secs(1));
            })
        }
        .unwrap();
        let pid = child.pid();
        assert_eq!(child.try_wait(), Ok(None));
        let e = child.wait(Duration::from_millis(50)).unwrap_err();
        assert!(matches!(e, WaitError::Timeout { .. }), "{e:?}");
        drop(child);
        assert_eq!(waitpid(pid, None), Err(Errno::ECHILD));
    }
}
