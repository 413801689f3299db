//! What the kernel says about a process or one of its threads: whether it
//! is asleep in a futex wait (so a blocking call really blocks), how often it
//! has gone to sleep, whether it is stopped, and how much CPU a thread has
//! used (so a blocked call can be shown not to spin).
//!
//! Everything is read from `/proc` and allocates: use it in the test process
//! or a spawned helper, not in a forked child.
//!
//! ```
//! use ipc_tests::probe::{self, Task};
//!
//! let me = Task::current_thread();
//! let state = me.state()?;
//! assert!(!state.in_futex_wait()); // running: reading /proc
//! assert!(probe::thread_cpu_time() > std::time::Duration::ZERO);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io;
use std::time::Duration;

use nix::unistd::Pid;

use crate::wait::{BoundedWait, WaitError};

/// A thread of a process (the main thread when `tid` is the pid).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Task {
    /// The process.
    pub pid: Pid,
    /// The thread.
    pub tid: Pid,
}

/// A snapshot of a task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskState {
    /// The system call it is blocked in and that call's first two
    /// arguments, or `None` while it runs (or is between calls).
    pub syscall: Option<(i64, u64, u64)>,
    /// Times it gave up the CPU of its own accord (slept).
    pub voluntary_switches: u64,
    /// Its state letter (`R` running, `S` sleeping, `T` stopped, ...).
    pub state: char,
}

impl TaskState {
    /// Whether it is asleep in a futex wait, as a parked ring call is.
    pub fn in_futex_wait(&self) -> bool {
        // The operation without its flags (private, realtime clock).
        let flags = (libc::FUTEX_PRIVATE_FLAG | libc::FUTEX_CLOCK_REALTIME) as u64;
        let waits = [libc::FUTEX_WAIT as u64, libc::FUTEX_WAIT_BITSET as u64];
        matches!(self.syscall, Some((nr, _, op)) if nr == libc::SYS_futex && waits.contains(&(op & !flags)))
    }
}

impl Task {
    /// The main thread of `pid`.
    pub fn process(pid: Pid) -> Task {
        Task { pid, tid: pid }
    }

    /// The calling thread.
    pub fn current_thread() -> Task {
        Task {
            pid: nix::unistd::getpid(),
            tid: current_tid(),
        }
    }

    fn path(&self, file: &str) -> String {
        format!("/proc/{}/task/{}/{file}", self.pid, self.tid)
    }

    /// Reads its state.
    pub fn state(&self) -> io::Result<TaskState> {
        let syscall = std::fs::read_to_string(self.path("syscall"))?;
        let status = std::fs::read_to_string(self.path("status"))?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .map(str::trim)
                .ok_or_else(|| io::Error::other(format!("no {name} in {}", self.path("status"))))
        };
        let voluntary_switches = field("voluntary_ctxt_switches:")?
            .parse()
            .map_err(io::Error::other)?;
        let state = field("State:")?.chars().next().unwrap_or('?');
        Ok(TaskState {
            syscall: parse_syscall(&syscall),
            voluntary_switches,
            state,
        })
    }

    /// Waits up to `limit` until `ready` holds of its state; the state then.
    pub fn wait_until(
        &self,
        what: &'static str,
        limit: Duration,
        ready: impl Fn(&TaskState) -> bool,
    ) -> Result<TaskState, WaitError> {
        let mut wait = BoundedWait::new(what, limit);
        loop {
            match self.state() {
                Ok(state) if ready(&state) => return Ok(state),
                Ok(_) => {}
                Err(e) => panic!("reading the state of {self:?}: {e}"),
            }
            wait.snooze()?;
        }
    }
}

/// `/proc/.../syscall`: `running`, or the number and arguments in hex.
fn parse_syscall(text: &str) -> Option<(i64, u64, u64)> {
    let mut fields = text.split_whitespace();
    let nr = fields.next()?.parse().ok()?;
    let mut arg = || u64::from_str_radix(fields.next()?.trim_start_matches("0x"), 16).ok();
    Some((nr, arg()?, arg()?))
}

/// The calling thread's id.
pub fn current_tid() -> Pid {
    // SAFETY: gettid takes no argument and cannot fail.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) };
    Pid::from_raw(tid as i32)
}

/// CPU time (user and system) the calling thread has used so far.
pub fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the kernel to fill.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_blocked_call_and_a_running_task() {
        assert_eq!(
            parse_syscall("202 0x7f00 0x80 0x5 0x0 0x0 0x0 0x7ffc 0x7f12\n"),
            Some((202, 0x7f00, 0x80))
        );
        assert_eq!(parse_syscall("running\n"), None);
    }

    #[test]
    fn a_thread_parked_on_a_futex_is_seen_there() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let sleeper = std::thread::spawn(move || {
            tx.send(Task::current_thread()).unwrap();
            // A channel's blocking receive parks on a futex.
            let _ = done_rx.recv();
        });
        let task = rx.recv().unwrap();
        let before = task
            .wait_until("the thread to park", Duration::from_secs(30), |s| {
                s.in_futex_wait()
            })
            .unwrap();
        assert_eq!(before.state, 'S');
        done_tx.send(()).unwrap();
        sleeper.join().unwrap();
    }
}
