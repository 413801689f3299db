//! The processes of a measurement: the machine they run on, the two cores
//! they are pinned to, and the forked child.

use std::fmt;
use std::io::{self, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ipc_tests::fork::ForkedChild;
use ipc_tests::wait::describe;
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::sys::wait::WaitStatus;
use nix::unistd::{sysconf, Pid, SysconfVar};

use crate::{Error, Result, DEADLINE};

/// What the measurements ran on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Machine {
    /// CPU model, from `/proc/cpuinfo`.
    pub cpu: String,
    /// Online CPUs.
    pub cores: usize,
    /// Kernel release, from `/proc/sys/kernel/osrelease` (`uname -r`).
    pub kernel: String,
}

impl Machine {
    /// Reads the CPU model, core count and kernel release.
    pub fn detect() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines().find_map(|line| {
                    let (key, value) = line.split_once(':')?;
                    (key.trim() == "model name").then(|| value.trim().to_string())
                })
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        Machine {
            cpu,
            cores: online_cpus(),
            kernel,
        }
    }
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, {} cores, Linux {}",
            self.cpu, self.cores, self.kernel
        )
    }
}

fn online_cpus() -> usize {
    let n = sysconf(SysconfVar::_NPROCESSORS_ONLN).ok().flatten();
    n.and_then(|n| usize::try_from(n).ok()).unwrap_or(1).max(1)
}

/// The two CPUs a measurement uses: the parent's and the child's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CorePair {
    /// CPU of the calling (timing) process.
    pub parent: usize,
    /// CPU of the forked peer.
    pub child: usize,
}

static CORES: OnceLock<Option<CorePair>> = OnceLock::new();

/// The first two CPUs this process may run on (cores 0 and 1 on an
/// unrestricted machine), or `None` when it may use fewer than two.
///
/// Read once, on the first call, before any pinning narrows the set; later
/// calls return the same answer.
pub fn core_pair() -> Option<CorePair> {
    *CORES.get_or_init(|| {
        let set = sched_getaffinity(Pid::from_raw(0)).ok()?;
        let mut allowed = (0..CpuSet::count()).filter(|&cpu| set.is_set(cpu).unwrap_or(false));
        Some(CorePair {
            parent: allowed.next()?,
            child: allowed.next()?,
        })
    })
}

/// Pins the calling process (its calling thread) to `cpu`.
pub fn pin_to_core(cpu: usize) -> Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu).map_err(|e| Error::os("CPU_SET", e))?;
    sched_setaffinity(Pid::from_raw(0), &set).map_err(|e| Error::os("sched_setaffinity", e))
}

/// Pins the caller to the parent CPU of [`core_pair`]; the CPU, or `None`
/// (nothing done) on a machine with fewer than two CPUs.
pub fn pin_parent() -> Result<Option<usize>> {
    match core_pair() {
        Some(pair) => pin_to_core(pair.parent).map(|()| Some(pair.parent)),
        None => Ok(None),
    }
}

/// Pins the caller to the child CPU of [`core_pair`]; see [`pin_parent`].
pub fn pin_child() -> Result<Option<usize>> {
    match core_pair() {
        Some(pair) => pin_to_core(pair.child).map(|()| Some(pair.child)),
        None => Ok(None),
    }
}

/// Forks a child that runs `f`: exit status 0 when `f` returns `Ok`, 1
/// (after printing the error to stderr) when it returns an error, 101 when
/// it panics. The child never returns into the caller and is killed if the
/// parent dies; the guard kills it if dropped before [`finish`].
///
/// Only a single-threaded process may fork this way (a child of a threaded
/// process could find the allocator or stdout locked by a thread that does
/// not exist in it): this is checked, and refused with
/// [`Error::Unsupported`].
pub fn fork_child<F, E>(f: F) -> Result<ForkedChild>
where
    F: FnOnce() -> std::result::Result<(), E>,
    E: fmt::Display,
{
    if thread_count().is_some_and(|n| n > 1) {
        return Err(Error::Unsupported(
            "fork_child needs a single-threaded process",
        ));
    }
    // Whatever is buffered would otherwise be written by both processes.
    let _ = io::stdout().flush();
    let run = || {
        let code = match catch_unwind(AssertUnwindSafe(f)) {
            Ok(Ok(())) => 0,
            Ok(Err(e)) => {
                eprintln!("child {}: {e}", std::process::id());
                1
            }
            Err(_) => 101,
        };
        let _ = io::stdout().flush();
        code
    };
    // SAFETY: the process has one thread (checked above), so the child's copy
    // of memory holds no lock that a vanished thread owns: it may allocate,
    // print and unwind.
    unsafe { ForkedChild::fork(run) }.map_err(|e| Error::os("fork", e))
}

/// Waits (at most [`DEADLINE`]) for the child to exit; an error unless it
/// exited with status 0. A child still running at the deadline is killed
/// when its guard drops.
pub fn finish(child: ForkedChild) -> Result<()> {
    match child.wait(DEADLINE)? {
        WaitStatus::Exited(_, 0) => Ok(()),
        status => Err(Error::Child {
            pid: child.pid().as_raw(),
            status: describe(&status),
        }),
    }
}

fn thread_count() -> Option<usize> {
    std::fs::read_dir("/proc/self/task").ok().map(|d| d.count())
}

/// Waits, up to `limit`, until this process has one thread again (as
/// [`fork_child`] needs): a thread that was just joined may still be
/// listed while the kernel finishes its exit.
///
/// # Errors
/// [`Error::Unsupported`] if other threads remain after `limit`.
pub fn await_single_thread(limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    while thread_count().is_some_and(|n| n > 1) {
        if Instant::now() >= deadline {
            return Err(Error::Unsupported("threads outlived their runtime"));
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fork_is_refused_with_threads() {
        // The test harness usually runs tests on threads of its own.
        let threads = thread_count();
        match fork_child(|| Ok::<(), Error>(())) {
            Err(Error::Unsupported(_)) => assert!(threads.is_some_and(|n| n > 1)),
            Ok(child) => finish(child).unwrap(),
            Err(e) => panic!("{e}"),
        }
    }
}
