//! Pinning, forking, timing, percentiles, and the baselines measured beside
//! the ring.
//!
//! Every workload here runs in two processes: the caller (the *parent*) and
//! a child made by [`fork_child`], pinned to two different cores
//! ([`core_pair`], [`pin_parent`], [`pin_child`]). The parent does all the
//! timing with [`Instant`]:
//!
//! - **round trip**: the parent sends an N-byte message, the child echoes it,
//!   the parent reads it back. [`time_batches`] times `batch` round trips at
//!   a time and divides, so the clock's own cost does not dominate; the
//!   result is one per-round-trip time per batch.
//! - **throughput**: the child produces `count` messages, the parent consumes
//!   them; the clock runs from the parent's "go" to the last byte received.
//!
//! The same shapes run over the SPSC ring ([`Transport::Ring`],
//! [`Transport::RingBatched`]), a pipe, a Unix stream socket, and two raw
//! shared-memory references: the cache-line ping-pong floor
//! ([`Transport::Floor`]) and a two-counter copy stream
//! ([`Transport::CopyStream`]). [`ring_and_floor_round_trip`] measures the
//! ring and the floor paired, batch by batch, for a fair ratio on a machine
//! whose cross-core latency drifts.
//!
//! Messages carry a *stamp* (their sequence number plus one, little-endian,
//! in the first 8 bytes) which the receiver checks, so loss and reordering
//! fail a run. With `verify` set, shared-memory messages instead carry a
//! [`PayloadGen`] stream and every byte is checked.
//!
//! # Waiting
//! No wait can hang. Spin loops ([`Backoff`]) spin a bounded number of times,
//! then yield, and give up with [`Error::Timeout`] after [`DEADLINE`]; a
//! parent waiting for its child also notices the child's exit. Children get
//! `SIGKILL` when their parent dies (`PR_SET_PDEATHSIG`), socket reads and
//! writes time out, and pipe peers close the ends they do not use, so a dead
//! peer shows as end-of-file.
//!
//! # Example
//! ```no_run
//! use ipc_examples::measure::{self, RoundTrip, Summary, Transport};
//!
//! measure::pin_parent()?;
//! let cfg = RoundTrip::new(8);
//! let samples = Transport::Ring.round_trip(&cfg)?;
//! let summary = Summary::of(&samples).expect("samples");
//! println!("8 B round trip: p50 {}", measure::format_ns(summary.p50));
//! # Ok::<(), measure::Error>(())
//! ```

use std::cell::Cell;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ipc_core::spsc::{self, Consumer, Producer, RecvError, SendError};
use ipc_core::{Region, RegionOptions};
use nix::errno::Errno;
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, getpid, getppid, ForkResult, Pid};

use crate::payload::{PayloadError, PayloadGen};

/// How long any wait lasts before it gives up.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Spins of a [`Backoff`] before it starts yielding (a few hundred µs).
const SPINS: u32 = 1 << 12;

/// Seed of the [`PayloadGen`] streams used when verifying.
const SEED: u64 = 0x5eed_1c0d_e5a1_7e57;

/// Size of the buffer the stream baselines read into.
const READ_CHUNK: usize = 256 * 1024;

/// Offset of the copy stream's slots in its region's data area: after the
/// two counters' 128-byte lines, 256-aligned.
const SLOTS_OFFSET: u64 = 256;

// ---------------------------------------------------------------------------
// Errors

/// Why a measurement failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A system call failed.
    Os {
        /// The call.
        call: &'static str,
        /// What it returned.
        source: io::Error,
    },
    /// Creating a region or attaching a ring failed.
    Ipc(ipc_core::Error),
    /// The ring refused a message (other than being full).
    Send(SendError),
    /// The ring returned no message (other than being empty).
    Recv(RecvError),
    /// A wait gave up.
    Timeout {
        /// What was awaited.
        waiting_for: &'static str,
    },
    /// The peer exited while this side was still waiting for it.
    PeerExited {
        /// What was awaited.
        waiting_for: &'static str,
        /// How the peer ended.
        status: String,
    },
    /// The child process failed (non-zero exit or a signal).
    Child {
        /// Its pid.
        pid: i32,
        /// How it ended.
        status: String,
    },
    /// A message arrived with the wrong stamp or length.
    Mismatch {
        /// Which check failed.
        what: &'static str,
        /// Sequence number of the message expected.
        seq: u64,
        /// Value expected.
        expected: u64,
        /// Value found.
        found: u64,
    },
    /// A verified message differs from its [`PayloadGen`] stream.
    Payload {
        /// Sequence number of the message.
        seq: u64,
        /// How it differs.
        error: PayloadError,
    },
    /// The request cannot be carried out here.
    Unsupported(&'static str),
}

/// Result of this module's operations.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    fn os(call: &'static str, errno: Errno) -> Self {
        Error::Os {
            call,
            source: io::Error::from_raw_os_error(errno as i32),
        }
    }

    fn io(call: &'static str, source: io::Error) -> Self {
        Error::Os { call, source }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Os { call, source } => write!(f, "{call} failed: {source}"),
            Error::Ipc(e) => write!(f, "ipc: {e}"),
            Error::Send(e) => write!(f, "send: {e}"),
            Error::Recv(e) => write!(f, "receive: {e}"),
            Error::Timeout { waiting_for } => {
                write!(f, "gave up after {DEADLINE:?} waiting for {waiting_for}")
            }
            Error::PeerExited {
                waiting_for,
                status,
            } => write!(f, "peer {status} while we waited for {waiting_for}"),
            Error::Child { pid, status } => write!(f, "child {pid} {status}"),
            Error::Mismatch {
                what,
                seq,
                expected,
                found,
            } => write!(f, "message {seq}: {what} is {found}, expected {expected}"),
            Error::Payload { seq, error } => write!(f, "message {seq}: {error}"),
            Error::Unsupported(what) => write!(f, "unsupported: {what}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Os { source, .. } => Some(source),
            Error::Ipc(e) => Some(e),
            Error::Send(e) => Some(e),
            Error::Recv(e) => Some(e),
            Error::Payload { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl From<ipc_core::Error> for Error {
    fn from(e: ipc_core::Error) -> Self {
        Error::Ipc(e)
    }
}

impl From<SendError> for Error {
    fn from(e: SendError) -> Self {
        Error::Send(e)
    }
}

impl From<RecvError> for Error {
    fn from(e: RecvError) -> Self {
        Error::Recv(e)
    }
}

// ---------------------------------------------------------------------------
// The machine

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
    // SAFETY: sysconf only reads a system value; the name is a valid constant.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).unwrap_or(1).max(1)
}

// ---------------------------------------------------------------------------
// Pinning

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

// ---------------------------------------------------------------------------
// Forking

/// A child process made by [`fork_child`]. Dropping it without
/// [`wait`](Child::wait)ing kills and reaps it, so no error path leaves a
/// process behind.
#[derive(Debug)]
pub struct Child {
    pid: Pid,
    /// How it ended, once reaped.
    status: Cell<Option<WaitStatus>>,
}

impl Child {
    /// The child's pid.
    pub fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    /// Reaps the child if it has exited; its status then, else `None`.
    pub fn poll(&self) -> Result<Option<WaitStatus>> {
        if let Some(status) = self.status.get() {
            return Ok(Some(status));
        }
        match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => Ok(None),
            Ok(status @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                self.status.set(Some(status));
                Ok(Some(status))
            }
            Ok(_) => Ok(None),
            Err(Errno::EINTR) => Ok(None),
            Err(e) => Err(Error::os("waitpid", e)),
        }
    }

    /// Waits (at most [`DEADLINE`]) for the child to exit; an error unless
    /// it exited with status 0. A child still running at the deadline is
    /// killed.
    pub fn wait(self) -> Result<()> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.poll()? {
                return match status {
                    WaitStatus::Exited(_, 0) => Ok(()),
                    status => Err(Error::Child {
                        pid: self.pid(),
                        status: describe(status),
                    }),
                };
            }
            if started.elapsed() > DEADLINE {
                return Err(Error::Timeout {
                    waiting_for: "the child to exit",
                });
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.status.get().is_none() {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = waitpid(self.pid, None);
        }
    }
}

fn describe(status: WaitStatus) -> String {
    match status {
        WaitStatus::Exited(_, code) => format!("exited with status {code}"),
        WaitStatus::Signaled(_, signal, _) => format!("was killed by {signal}"),
        other => format!("{other:?}"),
    }
}

/// Forks a child that runs `f` and leaves with `_exit`: status 0 when `f`
/// returns `Ok`, 1 (after printing the error to stderr) when it returns an
/// error, 101 when it panics. The child never returns into the caller and
/// runs no destructors or exit handlers of the parent's state. It is killed
/// if the parent dies.
///
/// Only a single-threaded process may fork this way (a child of a threaded
/// process could find the allocator or stdout locked by a thread that does
/// not exist in it): this is checked, and refused with
/// [`Error::Unsupported`].
pub fn fork_child<F, E>(f: F) -> Result<Child>
where
    F: FnOnce() -> std::result::Result<(), E>,
    E: fmt::Display,
{
    if thread_count().is_some_and(|n| n > 1) {
        return Err(Error::Unsupported(
            "fork_child needs a single-threaded process",
        ));
    }
    let parent = getpid();
    // Whatever is buffered would otherwise be written by both processes.
    let _ = io::stdout().flush();
    // SAFETY: the process has one thread (checked above), so the child's copy
    // of memory holds no lock that a vanished thread owns; the child leaves
    // through `exit_now` and never returns into the caller.
    match unsafe { fork() } {
        Ok(ForkResult::Parent { child }) => Ok(Child {
            pid: child,
            status: Cell::new(None),
        }),
        Ok(ForkResult::Child) => {
            // SAFETY: PR_SET_PDEATHSIG with a valid signal only sets a flag
            // on this process; no memory is passed.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
            if getppid() != parent {
                // The parent died before the flag was set.
                exit_now(3);
            }
            let code = match catch_unwind(AssertUnwindSafe(f)) {
                Ok(Ok(())) => 0,
                Ok(Err(e)) => {
                    eprintln!("child {}: {e}", getpid());
                    1
                }
                Err(_) => 101,
            };
            let _ = io::stdout().flush();
            exit_now(code)
        }
        Err(e) => Err(Error::os("fork", e)),
    }
}

fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` ends the process at once; it runs no destructors or
    // atexit handlers, which belong to the parent's copy of the state.
    unsafe { libc::_exit(code) }
}

fn thread_count() -> Option<usize> {
    std::fs::read_dir("/proc/self/task").ok().map(|d| d.count())
}

// ---------------------------------------------------------------------------
// Waiting

/// A bounded wait: spins (with [`std::hint::spin_loop`]) up to a few thousand
/// times, then yields the CPU on every call, and after [`DEADLINE`] gives up
/// with [`Error::Timeout`]. When watching a [`Child`], it also fails with
/// [`Error::PeerExited`] soon after the child exits.
///
/// The fast path reads no clock and makes no system call.
#[derive(Debug)]
pub struct Backoff<'a> {
    spins: u32,
    yields: u32,
    since: Option<Instant>,
    waiting_for: &'static str,
    peer: Option<&'a Child>,
}

impl<'a> Backoff<'a> {
    /// A fresh wait for `waiting_for` (named in errors), optionally watching
    /// the process that should end it.
    #[inline]
    pub fn new(waiting_for: &'static str, peer: Option<&'a Child>) -> Self {
        Backoff {
            spins: 0,
            yields: 0,
            since: None,
            waiting_for,
            peer,
        }
    }

    /// Waits a little; an error once the wait has lasted too long.
    #[inline]
    pub fn snooze(&mut self) -> Result<()> {
        if self.spins < SPINS {
            self.spins += 1;
            std::hint::spin_loop();
            Ok(())
        } else {
            self.slow()
        }
    }

    /// Starts over after progress.
    #[inline]
    pub fn reset(&mut self) {
        self.spins = 0;
        self.yields = 0;
        self.since = None;
    }

    #[cold]
    #[inline(never)]
    fn slow(&mut self) -> Result<()> {
        std::thread::yield_now();
        self.yields = self.yields.wrapping_add(1);
        let now = Instant::now();
        let since = *self.since.get_or_insert(now);
        if self.yields % 64 == 0 {
            if let Some(peer) = self.peer {
                if let Some(status) = peer.poll()? {
                    return Err(Error::PeerExited {
                        waiting_for: self.waiting_for,
                        status: describe(status),
                    });
                }
            }
        }
        if now.duration_since(since) > DEADLINE {
            return Err(Error::Timeout {
                waiting_for: self.waiting_for,
            });
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Timing and statistics

/// Runs `op` `warmup * batch` times untimed, then `samples` batches of
/// `batch` timed together; returns each batch's time divided by `batch`, in
/// nanoseconds. `op` gets a running sequence number (0, 1, ...). The result
/// vector is allocated before the first timed batch.
pub fn time_batches(
    warmup: usize,
    samples: usize,
    batch: usize,
    mut op: impl FnMut(u64) -> Result<()>,
) -> Result<Vec<f64>> {
    let batch = batch.max(1);
    let mut seq = 0u64;
    for _ in 0..warmup * batch {
        op(seq)?;
        seq += 1;
    }
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        let start = Instant::now();
        for _ in 0..batch {
            op(seq)?;
            seq += 1;
        }
        out.push(start.elapsed().as_nanos() as f64 / batch as f64);
    }
    Ok(out)
}

/// The cost of one `Instant::now()` in nanoseconds (median over many runs).
pub fn clock_cost_ns() -> f64 {
    const CALLS: u32 = 1000;
    let mut runs: Vec<f64> = (0..101)
        .map(|_| {
            let start = Instant::now();
            let mut last = start;
            for _ in 0..CALLS {
                last = std::hint::black_box(Instant::now());
            }
            last.duration_since(start).as_nanos() as f64 / f64::from(CALLS)
        })
        .collect();
    median(&mut runs)
}

/// The `pct`-th percentile (0..=100) of ascending `sorted` samples, by the
/// nearest-rank method; NaN when empty.
pub fn percentile(sorted: &[f64], pct: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    // The small nudge keeps 99.9% of 1000 at rank 999 despite rounding.
    let rank = (pct / 100.0 * sorted.len() as f64 - 1e-9).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of `values` (mean of the middle two when even; NaN when
/// empty). Sorts `values` in place.
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// Order statistics of a set of samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// Number of samples.
    pub count: usize,
    /// Smallest.
    pub min: f64,
    /// Median (nearest rank).
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

impl Summary {
    /// Summarises `samples` (in any order); `None` when there are none.
    ///
    /// ```
    /// use ipc_examples::measure::Summary;
    /// let s = Summary::of(&[3.0, 1.0, 2.0, 4.0]).unwrap();
    /// assert_eq!((s.min, s.p50, s.max, s.mean), (1.0, 2.0, 4.0, 2.5));
    /// ```
    pub fn of(samples: &[f64]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(Summary {
            count: sorted.len(),
            min: sorted[0],
            p50: percentile(&sorted, 50.0),
            p99: percentile(&sorted, 99.0),
            p999: percentile(&sorted, 99.9),
            max: sorted[sorted.len() - 1],
            mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
        })
    }
}

/// A one-way transfer: how much moved in how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throughput {
    /// Messages delivered.
    pub messages: u64,
    /// Payload bytes delivered.
    pub bytes: u64,
    /// From the start signal to the last byte received.
    pub elapsed: Duration,
}

impl Throughput {
    /// Messages per second.
    pub fn msgs_per_sec(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64()
    }

    /// Payload bytes per second.
    pub fn bytes_per_sec(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64()
    }
}

// ---------------------------------------------------------------------------
// Formatting

/// A duration in nanoseconds, to 3 significant digits: `183 ns`, `41.2 µs`.
pub fn format_ns(ns: f64) -> String {
    if !ns.is_finite() {
        return "-".into();
    }
    let (value, unit) = if ns < 1e3 {
        (ns, "ns")
    } else if ns < 1e6 {
        (ns / 1e3, "µs")
    } else if ns < 1e9 {
        (ns / 1e6, "ms")
    } else {
        (ns / 1e9, "s")
    };
    format!("{} {unit}", sig3(value))
}

/// A rate per second with an SI prefix: `52.3 M/s`.
pub fn format_rate(per_sec: f64) -> String {
    let (value, prefix) = si(per_sec);
    format!("{} {prefix}/s", sig3(value))
}

/// A byte rate in MB/s (10^6 bytes): `1234 MB/s`.
pub fn format_mb_per_sec(bytes_per_sec: f64) -> String {
    let mb = bytes_per_sec / 1e6;
    if mb >= 100.0 {
        format!("{mb:.0} MB/s")
    } else {
        format!("{} MB/s", sig3(mb))
    }
}

/// A size in bytes: `8 B`, `1 KiB`, `64 KiB`.
pub fn format_size(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes % (1 << 20) == 0 {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes % (1 << 10) == 0 {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} B")
    }
}

/// A ratio: `1.32×`, `215×`.
pub fn format_ratio(ratio: f64) -> String {
    if !ratio.is_finite() {
        "-".into()
    } else if ratio >= 100.0 {
        format!("{ratio:.0}×")
    } else if ratio >= 10.0 {
        format!("{ratio:.1}×")
    } else {
        format!("{ratio:.2}×")
    }
}

fn si(value: f64) -> (f64, &'static str) {
    if value >= 1e9 {
        (value / 1e9, "G")
    } else if value >= 1e6 {
        (value / 1e6, "M")
    } else if value >= 1e3 {
        (value / 1e3, "k")
    } else {
        (value, "")
    }
}

fn sig3(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// A table printed as aligned text or as Markdown. The first column (or the
/// first [`left`](Table::left) columns) is left-aligned, the others
/// right-aligned.
///
/// ```
/// use ipc_examples::measure::Table;
/// let mut t = Table::new(&["size", "p50"]);
/// t.row(["8 B".to_string(), "183 ns".to_string()]);
/// assert!(t.markdown().contains("| 8 B  | 183 ns |"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    left: usize,
}

impl Table {
    /// An empty table with these column headings.
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            left: 1,
        }
    }

    /// Left-aligns the first `n` columns (labels); the rest are numbers.
    pub fn left(mut self, n: usize) -> Table {
        self.left = n;
        self
    }

    /// Appends a row (missing cells print empty).
    pub fn row(&mut self, cells: impl IntoIterator<Item = String>) {
        self.rows.push(cells.into_iter().collect());
    }

    fn widths(&self) -> Vec<usize> {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if i >= widths.len() {
                    widths.push(0);
                }
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        widths
    }

    fn line(&self, cells: &[String], widths: &[usize], sep: &str, edge: bool) -> String {
        let mut out = String::new();
        if edge {
            out.push_str("| ");
        }
        for (i, width) in widths.iter().enumerate() {
            let cell = cells.get(i).map(String::as_str).unwrap_or("");
            let pad = width.saturating_sub(cell.chars().count());
            if i > 0 {
                out.push_str(sep);
            }
            if i < self.left {
                out.push_str(cell);
                out.push_str(&" ".repeat(pad));
            } else {
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            }
        }
        if edge {
            out.push_str(" |");
        }
        out.trim_end_matches(' ').to_string()
    }

    /// Aligned plain text with a rule under the heading.
    pub fn text(&self) -> String {
        let widths = self.widths();
        let mut out = self.line(&self.header, &widths, "  ", false);
        out.push('\n');
        let total = widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1);
        out.push_str(&"-".repeat(total));
        out.push('\n');
        for row in &self.rows {
            out.push_str(&self.line(row, &widths, "  ", false));
            out.push('\n');
        }
        out
    }

    /// A GitHub-flavoured Markdown table.
    pub fn markdown(&self) -> String {
        let widths: Vec<usize> = self.widths().into_iter().map(|w| w.max(3)).collect();
        let mut out = self.line(&self.header, &widths, " | ", true);
        out.push('\n');
        let rule: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(i, w)| {
                if i < self.left {
                    "-".repeat(*w)
                } else {
                    format!("{}:", "-".repeat(w - 1))
                }
            })
            .collect();
        out.push_str(&format!("| {} |\n", rule.join(" | ")));
        for row in &self.rows {
            out.push_str(&self.line(row, &widths, " | ", true));
            out.push('\n');
        }
        out
    }
}

// ---------------------------------------------------------------------------
// Workload configuration

/// The geometry of the rings a workload uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingGeometry {
    /// Ring capacity in bytes (a power of two).
    pub capacity: u64,
    /// Largest message in bytes.
    pub max_message: u64,
}

impl RingGeometry {
    /// The suggested ring for `size`-byte messages: 1 MiB with a 64 KiB
    /// limit up to 1 KiB, else at least 4 MiB.
    pub fn for_message(size: usize) -> RingGeometry {
        let size = size as u64;
        if size <= 1024 {
            return RingGeometry {
                capacity: 1 << 20,
                max_message: 64 << 10,
            };
        }
        let capacity = (4u64 << 20).max((2 * spsc::record_size(size)).next_power_of_two());
        RingGeometry {
            capacity,
            max_message: size.max(64 << 10).min(spsc::max_message_for(capacity)),
        }
    }

    fn region(&self) -> Result<Arc<Region>> {
        let region = RegionOptions::new()
            .layout(spsc::layout(self.capacity, self.max_message)?)
            .populate(true)
            .create_anonymous()?;
        Ok(Arc::new(region))
    }
}

/// A round-trip (ping-pong) workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoundTrip {
    /// Message size in bytes (both directions).
    pub size: usize,
    /// Round trips per timed batch.
    pub batch: usize,
    /// Timed batches.
    pub samples: usize,
    /// Untimed batches first.
    pub warmup: usize,
    /// Check every byte of every echo against a [`PayloadGen`] stream
    /// (slower; for correctness runs) instead of its stamp.
    pub verify: bool,
    /// The rings (one per direction).
    pub geometry: RingGeometry,
}

impl RoundTrip {
    /// `size`-byte messages; 1000 batches of 1000 round trips after 20
    /// warm-up batches, stamps checked, the suggested rings.
    pub fn new(size: usize) -> RoundTrip {
        RoundTrip {
            size,
            batch: 1000,
            samples: 1000,
            warmup: 20,
            verify: false,
            geometry: RingGeometry::for_message(size),
        }
    }

    /// Round trips in all, warm-up included.
    pub fn total(&self) -> u64 {
        ((self.warmup + self.samples) * self.batch.max(1)) as u64
    }

    fn payload(&self) -> Option<PayloadGen> {
        self.verify.then(|| PayloadGen::fixed(SEED, self.size))
    }
}

/// A one-way throughput workload: the child sends, the parent receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stream {
    /// Message size in bytes.
    pub size: usize,
    /// Messages to send.
    pub count: u64,
    /// Messages per batch for [`Transport::RingBatched`].
    pub batch: usize,
    /// Fill and check every byte from a [`PayloadGen`] stream (ring and copy
    /// stream only; slower) instead of the stamp.
    pub verify: bool,
    /// The ring (and the copy stream's buffer size).
    pub geometry: RingGeometry,
}

impl Stream {
    /// `count` messages of `size` bytes, batches of 256, stamps checked, the
    /// suggested ring.
    pub fn new(size: usize, count: u64) -> Stream {
        Stream {
            size,
            count,
            batch: 256,
            verify: false,
            geometry: RingGeometry::for_message(size),
        }
    }

    fn payload(&self) -> Option<PayloadGen> {
        self.verify.then(|| PayloadGen::fixed(SEED, self.size))
    }
}

/// What carries the messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// The SPSC ring, one publication per message (`try_send` /
    /// `recv_into`; a round trip uses two rings, the child echoes in place).
    Ring,
    /// The SPSC ring, `batch()` on the producer and `drain` on the consumer
    /// (throughput only).
    RingBatched,
    /// A pipe per direction; one `write` per message, reads of exactly N
    /// bytes (round trip) or in 256 KiB chunks (throughput).
    Pipe,
    /// A Unix stream socket pair, used like the pipe.
    UnixSocket,
    /// The floor: a counter bounced through two 128-byte-aligned cache
    /// lines, one written by each side (round trip only; size ignored).
    Floor,
    /// Raw shared memory: the producer copies each message into a slot and
    /// bumps a written counter, the consumer copies it out and bumps a read
    /// counter (throughput only).
    CopyStream,
}

impl Transport {
    /// A short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Ring => "ring",
            Transport::RingBatched => "ring (batched)",
            Transport::Pipe => "pipe",
            Transport::UnixSocket => "unix socket",
            Transport::Floor => "floor (2 lines)",
            Transport::CopyStream => "raw copy stream",
        }
    }

    /// Measures round trips: one per-round-trip time (ns) per batch.
    pub fn round_trip(self, cfg: &RoundTrip) -> Result<Vec<f64>> {
        match self {
            Transport::Ring => ring_round_trip(cfg),
            Transport::Floor => floor_round_trip(cfg),
            Transport::Pipe => {
                let (to_child_r, to_child_w) = pipe()?;
                let (to_parent_r, to_parent_w) = pipe()?;
                echo_round_trip(cfg, (to_child_w, to_parent_r), (to_child_r, to_parent_w))
            }
            Transport::UnixSocket => {
                let (a, b) = socket_pair()?;
                let a2 = a.try_clone().map_err(|e| Error::io("dup", e))?;
                let b2 = b.try_clone().map_err(|e| Error::io("dup", e))?;
                echo_round_trip(cfg, (a, a2), (b, b2))
            }
            Transport::RingBatched | Transport::CopyStream => Err(Error::Unsupported(
                "round trips over a batched ring or the copy stream",
            )),
        }
    }

    /// Measures one-way throughput.
    pub fn throughput(self, cfg: &Stream) -> Result<Throughput> {
        match self {
            Transport::Ring => ring_throughput(cfg, false),
            Transport::RingBatched => ring_throughput(cfg, true),
            Transport::CopyStream => copy_stream_throughput(cfg),
            Transport::Pipe => {
                let (r, w) = pipe()?;
                stream_throughput(cfg, r, w)
            }
            Transport::UnixSocket => {
                let (a, b) = socket_pair()?;
                stream_throughput(cfg, a, b)
            }
            Transport::Floor => Err(Error::Unsupported("throughput over the floor")),
        }
    }
}

// ---------------------------------------------------------------------------
// Shared helpers

/// A raw anonymous region with at least `bytes` of data area, prefaulted.
fn raw_region(bytes: u64) -> Result<Arc<Region>> {
    Ok(Arc::new(
        RegionOptions::new()
            .size(bytes)
            .populate(true)
            .create_anonymous()?,
    ))
}

/// Maps every page of the region into this process so it takes its page
/// faults now, not inside a measurement.
fn prefault(region: &Region) -> Result<()> {
    Ok(region.prefault()?)
}

/// Start line between parent and child: the child says it is ready (handles
/// attached, memory touched) and waits for "go"; the parent waits for ready,
/// starts its clock and says go.
struct Gate {
    region: Arc<Region>,
}

impl Gate {
    fn new() -> Result<Gate> {
        Ok(Gate {
            region: raw_region(256)?,
        })
    }

    fn ready(&self) -> Result<&AtomicU64> {
        Ok(self.region.atomic_u64(0)?)
    }

    fn go_word(&self) -> Result<&AtomicU64> {
        Ok(self.region.atomic_u64(128)?)
    }

    /// In the child: announce readiness, wait for the go.
    fn child_wait_go(&self) -> Result<()> {
        // Release/Acquire: the child's set-up happens before the parent's go.
        self.ready()?.store(1, Ordering::Release);
        let go = self.go_word()?;
        let mut backoff = Backoff::new("the parent's go", None);
        while go.load(Ordering::Acquire) == 0 {
            backoff.snooze()?;
        }
        Ok(())
    }

    /// In the parent: wait until the child is ready.
    fn wait_ready(&self, child: &Child) -> Result<()> {
        let ready = self.ready()?;
        let mut backoff = Backoff::new("the child to get ready", Some(child));
        while ready.load(Ordering::Acquire) == 0 {
            backoff.snooze()?;
        }
        Ok(())
    }

    fn go(&self) -> Result<()> {
        self.go_word()?.store(1, Ordering::Release);
        Ok(())
    }
}

/// Writes message `seq`'s stamp (`seq + 1`, little-endian) into the first
/// bytes of `msg` (as many as fit, up to 8).
#[inline(always)]
fn stamp(msg: &mut [u8], seq: u64) {
    let word = (seq + 1).to_le_bytes();
    match msg.first_chunk_mut::<8>() {
        // A fixed-size copy compiles to one store, not a `memcpy` call.
        Some(head) => *head = word,
        None => {
            let n = msg.len();
            msg.copy_from_slice(&word[..n]);
        }
    }
}

/// The stamp `msg` carries (its first bytes, up to 8).
#[inline(always)]
fn stamp_of(msg: &[u8]) -> u64 {
    match msg.first_chunk::<8>() {
        Some(head) => u64::from_le_bytes(*head),
        None => {
            let mut word = [0u8; 8];
            word[..msg.len()].copy_from_slice(msg);
            u64::from_le_bytes(word)
        }
    }
}

/// The stamp of message `seq` in a message of `len` bytes.
#[inline(always)]
fn expected_stamp(seq: u64, len: usize) -> u64 {
    if len >= 8 {
        seq + 1
    } else {
        (seq + 1) & ((1u64 << (8 * len)) - 1)
    }
}

/// Prepares message `seq` in `msg`: a stamp, or the whole payload.
#[inline(always)]
fn prepare(msg: &mut [u8], seq: u64, gen: Option<PayloadGen>) {
    match gen {
        None => stamp(msg, seq),
        Some(gen) => gen.fill(seq, msg),
    }
}

/// Checks that `msg` is message `seq` of `size` bytes.
#[inline(always)]
fn check(msg: &[u8], seq: u64, size: usize, gen: Option<PayloadGen>) -> Result<()> {
    if msg.len() != size {
        return Err(mismatch("length", seq, size as u64, msg.len() as u64));
    }
    match gen {
        Some(gen) => gen
            .verify(seq, msg)
            .map_err(|error| Error::Payload { seq, error }),
        None => {
            let (expected, found) = (expected_stamp(seq, msg.len()), stamp_of(msg));
            if found == expected {
                Ok(())
            } else {
                Err(mismatch("stamp", seq, expected, found))
            }
        }
    }
}

#[cold]
fn mismatch(what: &'static str, seq: u64, expected: u64, found: u64) -> Error {
    Error::Mismatch {
        what,
        seq,
        expected,
        found,
    }
}

/// Sends `msg`, waiting while the ring is full.
#[inline(always)]
fn send(tx: &mut Producer, msg: &[u8], peer: Option<&Child>) -> Result<()> {
    let mut backoff = Backoff::new("room in the ring", peer);
    loop {
        match tx.try_send(msg) {
            Ok(()) => return Ok(()),
            Err(SendError::Full) => backoff.snooze()?,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Writes message `seq` of `gen` (`len` bytes) in place, waiting while the
/// ring is full.
#[inline(always)]
fn send_generated(tx: &mut Producer, gen: PayloadGen, seq: u64, len: usize) -> Result<()> {
    let mut backoff = Backoff::new("room in the ring", None);
    loop {
        match tx.try_reserve(len) {
            Ok(mut grant) => {
                gen.fill(seq, &mut grant);
                grant.commit();
                return Ok(());
            }
            Err(SendError::Full) => backoff.snooze()?,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Receives the next message into `buf`, waiting while the ring is empty.
#[inline(always)]
fn recv(rx: &mut Consumer, buf: &mut [u8], peer: Option<&Child>) -> Result<usize> {
    let mut backoff = Backoff::new("a message", peer);
    loop {
        match rx.try_recv_into(buf) {
            Ok(n) => return Ok(n),
            Err(RecvError::Empty) => backoff.snooze()?,
            Err(e) => return Err(e.into()),
        }
    }
}

fn pipe() -> Result<(File, File)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Error::io("pipe2", io::Error::last_os_error()));
    }
    // SAFETY: pipe2 succeeded, so both are open descriptors owned by nobody else.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((File::from(r), File::from(w)))
}

fn socket_pair() -> Result<(UnixStream, UnixStream)> {
    let (a, b) = UnixStream::pair().map_err(|e| Error::io("socketpair", e))?;
    for s in [&a, &b] {
        s.set_read_timeout(Some(DEADLINE))
            .map_err(|e| Error::io("setsockopt", e))?;
        s.set_write_timeout(Some(DEADLINE))
            .map_err(|e| Error::io("setsockopt", e))?;
    }
    Ok((a, b))
}

/// Reads exactly `buf.len()` bytes; `false` on end-of-file before the first.
fn read_message(r: &mut impl Read, buf: &mut [u8]) -> Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => {
                return Err(Error::io(
                    "read",
                    io::Error::new(io::ErrorKind::UnexpectedEof, "message cut short"),
                ))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("read", e)),
        }
    }
    Ok(true)
}

// ---------------------------------------------------------------------------
// Round trips

/// Ring ping-pong: the parent sends on one ring and `recv_into`s the echo
/// from the other; the child `recv_into`s each message and `try_send`s it
/// back, as the pipe and socket children read into a buffer and write it.
pub fn ring_round_trip(cfg: &RoundTrip) -> Result<Vec<f64>> {
    let there = cfg.geometry.region()?;
    let back = cfg.geometry.region()?;
    let gate = Gate::new()?;
    let (total, size) = (cfg.total(), cfg.size);
    let child = fork_child(|| -> Result<()> {
        pin_child()?;
        let mut rx = Consumer::attach(there.clone())?;
        let mut tx = Producer::attach(back.clone())?;
        prefault(&there)?;
        prefault(&back)?;
        let mut buf = vec![0u8; size];
        gate.child_wait_go()?;
        for _ in 0..total {
            let n = recv(&mut rx, &mut buf, None)?;
            send(&mut tx, &buf[..n], None)?;
        }
        Ok(())
    })?;
    let mut tx = Producer::attach(there)?;
    let mut rx = Consumer::attach(back)?;
    let gen = cfg.payload();
    let size = cfg.size;
    let mut msg = vec![0u8; size];
    let mut echo = vec![0u8; size];
    gate.wait_ready(&child)?;
    gate.go()?;
    let samples = time_batches(cfg.warmup, cfg.samples, cfg.batch, |seq| {
        prepare(&mut msg, seq, gen);
        send(&mut tx, &msg, Some(&child))?;
        let n = recv(&mut rx, &mut echo, Some(&child))?;
        check(&echo[..n], seq, size, gen)
    })?;
    drop((tx, rx));
    child.wait()?;
    Ok(samples)
}

/// The floor: the parent stores `i` to its line, the child waits for it and
/// stores `i` to its own line, the parent waits for that. Two cache-line
/// transfers per round trip, nothing else.
pub fn floor_round_trip(cfg: &RoundTrip) -> Result<Vec<f64>> {
    let lines = raw_region(256)?;
    let gate = Gate::new()?;
    let total = cfg.total();
    let child = fork_child(|| -> Result<()> {
        pin_child()?;
        let ping = lines.atomic_u64(0)?;
        let pong = lines.atomic_u64(128)?;
        gate.child_wait_go()?;
        for i in 1..=total {
            let mut backoff = Backoff::new("a ping", None);
            // Acquire/Release as a ring would use them (free on x86).
            while ping.load(Ordering::Acquire) != i {
                backoff.snooze()?;
            }
            pong.store(i, Ordering::Release);
        }
        Ok(())
    })?;
    let ping = lines.atomic_u64(0)?;
    let pong = lines.atomic_u64(128)?;
    gate.wait_ready(&child)?;
    gate.go()?;
    let samples = time_batches(cfg.warmup, cfg.samples, cfg.batch, |seq| {
        let i = seq + 1;
        ping.store(i, Ordering::Release);
        let mut backoff = Backoff::new("a pong", Some(&child));
        while pong.load(Ordering::Acquire) != i {
            backoff.snooze()?;
        }
        Ok(())
    })?;
    child.wait()?;
    Ok(samples)
}

/// The ring and the floor measured together: the same two processes
/// alternate a timed batch of floor round trips with a timed batch of ring
/// round trips (as [`floor_round_trip`] and [`ring_round_trip`] do them), so
/// both see the same state of the host. Returns (ring, floor) samples, one
/// pair per batch.
///
/// This machine's cross-core latency changes by several times for seconds at
/// a time; only paired samples compare the two fairly.
pub fn ring_and_floor_round_trip(cfg: &RoundTrip) -> Result<(Vec<f64>, Vec<f64>)> {
    let there = cfg.geometry.region()?;
    let back = cfg.geometry.region()?;
    let lines = raw_region(256)?;
    let gate = Gate::new()?;
    let (batches, batch) = ((cfg.warmup + cfg.samples) as u64, cfg.batch.max(1) as u64);
    let size = cfg.size;
    let child = fork_child(|| -> Result<()> {
        pin_child()?;
        let mut rx = Consumer::attach(there.clone())?;
        let mut tx = Producer::attach(back.clone())?;
        let ping = lines.atomic_u64(0)?;
        let pong = lines.atomic_u64(128)?;
        prefault(&there)?;
        prefault(&back)?;
        let mut buf = vec![0u8; size];
        gate.child_wait_go()?;
        let mut i = 0;
        for _ in 0..batches {
            for _ in 0..batch {
                i += 1;
                let mut backoff = Backoff::new("a ping", None);
                while ping.load(Ordering::Acquire) != i {
                    backoff.snooze()?;
                }
                pong.store(i, Ordering::Release);
            }
            for _ in 0..batch {
                let n = recv(&mut rx, &mut buf, None)?;
                send(&mut tx, &buf[..n], None)?;
            }
        }
        Ok(())
    })?;
    let mut tx = Producer::attach(there)?;
    let mut rx = Consumer::attach(back)?;
    let ping = lines.atomic_u64(0)?;
    let pong = lines.atomic_u64(128)?;
    let gen = cfg.payload();
    let size = cfg.size;
    let mut msg = vec![0u8; size];
    let mut echo = vec![0u8; size];
    let mut ring = Vec::with_capacity(cfg.samples);
    let mut floor = Vec::with_capacity(cfg.samples);
    let (mut i, mut seq) = (0u64, 0u64);
    gate.wait_ready(&child)?;
    gate.go()?;
    for b in 0..batches {
        let start = Instant::now();
        for _ in 0..batch {
            i += 1;
            ping.store(i, Ordering::Release);
            let mut backoff = Backoff::new("a pong", Some(&child));
            while pong.load(Ordering::Acquire) != i {
                backoff.snooze()?;
            }
        }
        let floor_ns = start.elapsed().as_nanos() as f64 / batch as f64;
        let start = Instant::now();
        for _ in 0..batch {
            prepare(&mut msg, seq, gen);
            send(&mut tx, &msg, Some(&child))?;
            let n = recv(&mut rx, &mut echo, Some(&child))?;
            check(&echo[..n], seq, size, gen)?;
            seq += 1;
        }
        let ring_ns = start.elapsed().as_nanos() as f64 / batch as f64;
        if b >= cfg.warmup as u64 {
            floor.push(floor_ns);
            ring.push(ring_ns);
        }
    }
    drop((tx, rx));
    child.wait()?;
    Ok((ring, floor))
}

/// Ping-pong over byte streams: `parent` is (to child, from child), `child`
/// is (from parent, to parent). The child echoes until end-of-file.
fn echo_round_trip<PW, PR, CR, CW>(
    cfg: &RoundTrip,
    parent: (PW, PR),
    child: (CR, CW),
) -> Result<Vec<f64>>
where
    PW: Write,
    PR: Read,
    CR: Read,
    CW: Write,
{
    let gate = Gate::new()?;
    let size = cfg.size;
    let mut parent_side = Some(parent);
    let peer = fork_child(|| -> Result<()> {
        // Close the parent's ends here, so the parent's death shows as EOF.
        drop(parent_side.take());
        let (mut r, mut w) = child;
        pin_child()?;
        let mut buf = vec![0u8; size];
        gate.child_wait_go()?;
        while read_message(&mut r, &mut buf)? {
            w.write_all(&buf).map_err(|e| Error::io("write", e))?;
        }
        Ok(())
    })?;
    let (mut w, mut r) = parent_side
        .take()
        .ok_or(Error::Unsupported("parent ends already taken"))?;
    let gen = cfg.payload();
    let mut msg = vec![0u8; size];
    let mut echo = vec![0u8; size];
    gate.wait_ready(&peer)?;
    gate.go()?;
    let samples = time_batches(cfg.warmup, cfg.samples, cfg.batch, |seq| {
        prepare(&mut msg, seq, gen);
        w.write_all(&msg).map_err(|e| Error::io("write", e))?;
        if !read_message(&mut r, &mut echo)? {
            return Err(Error::PeerExited {
                waiting_for: "an echo",
                status: "closed its end".into(),
            });
        }
        check(&echo, seq, size, gen)
    })?;
    drop((w, r));
    peer.wait()?;
    Ok(samples)
}

// ---------------------------------------------------------------------------
// Throughput

/// Ring one-way stream: the child sends (`try_send`, or `batch()` of
/// `cfg.batch` messages), the parent receives (`recv_into` its buffer, or
/// `drain`), checking each message.
pub fn ring_throughput(cfg: &Stream, batched: bool) -> Result<Throughput> {
    let region = cfg.geometry.region()?;
    let gate = Gate::new()?;
    let (size, count, batch) = (cfg.size, cfg.count, cfg.batch.max(1) as u64);
    let gen = cfg.payload();
    let child = fork_child(|| -> Result<()> {
        pin_child()?;
        let mut tx = Producer::attach(region.clone())?;
        prefault(&region)?;
        let mut msg = vec![0u8; size];
        gate.child_wait_go()?;
        if batched {
            produce_batched(&mut tx, &mut msg, count, batch, gen)
        } else {
            produce_each(&mut tx, &mut msg, count, gen)
        }
    })?;
    let mut rx = Consumer::attach(region)?;
    let mut buf = vec![0u8; size];
    gate.wait_ready(&child)?;
    let start = Instant::now();
    gate.go()?;
    if batched {
        consume_drained(&mut rx, count, size, gen, &child)?;
    } else {
        for seq in 0..count {
            let n = recv(&mut rx, &mut buf, Some(&child))?;
            check(&buf[..n], seq, size, gen)?;
        }
    }
    let elapsed = start.elapsed();
    drop(rx);
    child.wait()?;
    Ok(Throughput {
        messages: count,
        bytes: count * size as u64,
        elapsed,
    })
}

fn produce_each(
    tx: &mut Producer,
    msg: &mut [u8],
    count: u64,
    gen: Option<PayloadGen>,
) -> Result<()> {
    for seq in 0..count {
        match gen {
            None => {
                stamp(msg, seq);
                send(tx, msg, None)?;
            }
            Some(gen) => send_generated(tx, gen, seq, msg.len())?,
        }
    }
    Ok(())
}

fn produce_batched(
    tx: &mut Producer,
    msg: &mut [u8],
    count: u64,
    batch: u64,
    gen: Option<PayloadGen>,
) -> Result<()> {
    let mut seq = 0;
    let mut backoff = Backoff::new("room in the ring", None);
    while seq < count {
        let (first, end) = (seq, (seq + batch).min(count));
        let mut b = tx.batch();
        while seq < end {
            let sent = match gen {
                None => {
                    stamp(msg, seq);
                    b.try_send(msg)
                }
                Some(gen) => b.try_reserve(msg.len()).map(|mut grant| {
                    gen.fill(seq, &mut grant);
                    grant.commit();
                }),
            };
            match sent {
                Ok(()) => seq += 1,
                Err(SendError::Full) => break,
                Err(e) => return Err(e.into()),
            }
        }
        b.publish();
        if seq == first {
            backoff.snooze()?;
        } else {
            backoff.reset();
        }
    }
    Ok(())
}

fn consume_drained(
    rx: &mut Consumer,
    count: u64,
    size: usize,
    gen: Option<PayloadGen>,
    child: &Child,
) -> Result<()> {
    let mut seq = 0;
    let mut bad = None;
    let mut backoff = Backoff::new("messages", Some(child));
    while seq < count {
        let n = rx.drain((count - seq) as usize, |msg| {
            if bad.is_none() {
                if let Err(e) = check(msg, seq, size, gen) {
                    bad = Some(e);
                }
            }
            seq += 1;
        })?;
        if let Some(e) = bad.take() {
            return Err(e);
        }
        if n == 0 {
            backoff.snooze()?;
        } else {
            backoff.reset();
        }
    }
    Ok(())
}

/// The raw two-counter copy stream: a buffer of `capacity / size` slots; the
/// child copies each message into the next slot and stores `written`; the
/// parent waits for it, copies the slot out, and stores `read`. Each side
/// caches the other's counter and reloads it only when it must wait, as the
/// ring does. One copy in, one copy out: the ring's `try_send` + `recv_into`.
pub fn copy_stream_throughput(cfg: &Stream) -> Result<Throughput> {
    let size = cfg.size.max(8);
    let slots = (cfg.geometry.capacity as usize / size).max(2);
    let region = raw_region(SLOTS_OFFSET + (slots * size) as u64)?;
    let gate = Gate::new()?;
    let count = cfg.count;
    let child = fork_child(|| -> Result<()> {
        pin_child()?;
        let written = region.atomic_u64(0)?;
        let read = region.atomic_u64(128)?;
        prefault(&region)?;
        let base = region.data_ptr().as_ptr();
        let mut src = vec![0u8; size];
        let mut cached_read = 0;
        let mut slot = 0;
        gate.child_wait_go()?;
        for i in 0..count {
            if i - cached_read >= slots as u64 {
                let mut backoff = Backoff::new("a free slot", None);
                loop {
                    // Acquire: pairs with the consumer's Release of `read`;
                    // its copy out of the slot is done.
                    cached_read = read.load(Ordering::Acquire);
                    if i - cached_read < slots as u64 {
                        break;
                    }
                    backoff.snooze()?;
                }
            }
            stamp(&mut src, i);
            // SAFETY: slot `slot` lies inside the data area (`SLOTS_OFFSET +
            // slots * size` bytes were requested); the consumer has copied out
            // its previous message (`read > i - slots`) and does not read it
            // again until `written > i`.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    src.as_ptr(),
                    base.add(SLOTS_OFFSET as usize + slot * size),
                    size,
                )
            };
            // Release: pairs with the consumer's Acquire load of `written`.
            written.store(i + 1, Ordering::Release);
            slot = if slot + 1 == slots { 0 } else { slot + 1 };
        }
        Ok(())
    })?;
    let written = region.atomic_u64(0)?;
    let read = region.atomic_u64(128)?;
    let base = region.data_ptr().as_ptr();
    let mut dst = vec![0u8; size];
    let mut cached_written = 0;
    let mut slot = 0;
    gate.wait_ready(&child)?;
    let start = Instant::now();
    gate.go()?;
    for i in 0..count {
        if cached_written <= i {
            let mut backoff = Backoff::new("a written slot", Some(&child));
            loop {
                // Acquire: pairs with the producer's Release of `written`.
                cached_written = written.load(Ordering::Acquire);
                if cached_written > i {
                    break;
                }
                backoff.snooze()?;
            }
        }
        // SAFETY: the slot is inside the data area, and the producer wrote
        // it before publishing `written > i`; it does not write it again
        // until we store `read > i`.
        unsafe {
            std::ptr::copy_nonoverlapping(
                base.add(SLOTS_OFFSET as usize + slot * size),
                dst.as_mut_ptr(),
                size,
            )
        };
        // Release: pairs with the producer's Acquire load of `read`.
        read.store(i + 1, Ordering::Release);
        check(&dst, i, size, None)?;
        slot = if slot + 1 == slots { 0 } else { slot + 1 };
    }
    let elapsed = start.elapsed();
    child.wait()?;
    Ok(Throughput {
        messages: count,
        bytes: count * size as u64,
        elapsed,
    })
}

/// Byte-stream one-way throughput: the child writes each stamped message
/// with one `write`; the parent reads 256 KiB chunks and counts bytes.
fn stream_throughput<PR, CW>(cfg: &Stream, parent: PR, child: CW) -> Result<Throughput>
where
    PR: Read,
    CW: Write,
{
    let gate = Gate::new()?;
    let (size, count) = (cfg.size, cfg.count);
    let mut parent_side = Some(parent);
    let peer = fork_child(|| -> Result<()> {
        drop(parent_side.take());
        let mut w = child;
        pin_child()?;
        let mut msg = vec![0u8; size];
        gate.child_wait_go()?;
        for seq in 0..count {
            stamp(&mut msg, seq);
            w.write_all(&msg).map_err(|e| Error::io("write", e))?;
        }
        Ok(())
    })?;
    let mut r = parent_side
        .take()
        .ok_or(Error::Unsupported("parent end already taken"))?;
    let mut buf = vec![0u8; READ_CHUNK];
    let want = count * size as u64;
    let mut got = 0u64;
    gate.wait_ready(&peer)?;
    let start = Instant::now();
    gate.go()?;
    while got < want {
        match r.read(&mut buf) {
            Ok(0) => {
                return Err(Error::PeerExited {
                    waiting_for: "the rest of the stream",
                    status: format!("closed its end after {got} of {want} bytes"),
                })
            }
            Ok(n) => got += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("read", e)),
        }
    }
    let elapsed = start.elapsed();
    drop(r);
    peer.wait()?;
    Ok(Throughput {
        messages: count,
        bytes: got,
        elapsed,
    })
}

/// Streams `count` messages of `gen` through a ring of `geometry` from a
/// child to the caller, written in place (`try_reserve` + fill + commit)
/// and verified byte for byte in place (`try_recv`). With random lengths
/// and a small ring this exercises wrap-around padding.
pub fn ring_payload_stream(
    gen: PayloadGen,
    count: u64,
    geometry: RingGeometry,
) -> Result<Throughput> {
    let region = geometry.region()?;
    let gate = Gate::new()?;
    let child = fork_child(|| -> Result<()> {
        pin_child()?;
        let mut tx = Producer::attach(region.clone())?;
        prefault(&region)?;
        gate.child_wait_go()?;
        for seq in 0..count {
            send_generated(&mut tx, gen, seq, gen.len_of(seq))?;
        }
        Ok(())
    })?;
    let mut rx = Consumer::attach(region)?;
    let mut bytes = 0u64;
    gate.wait_ready(&child)?;
    let start = Instant::now();
    gate.go()?;
    for seq in 0..count {
        let mut backoff = Backoff::new("a message", Some(&child));
        loop {
            match rx.try_recv() {
                Ok(msg) => {
                    gen.verify(seq, &msg)
                        .map_err(|error| Error::Payload { seq, error })?;
                    bytes += msg.len() as u64;
                    break;
                }
                Err(RecvError::Empty) => backoff.snooze()?,
                Err(e) => return Err(e.into()),
            }
        }
    }
    let elapsed = start.elapsed();
    drop(rx);
    child.wait()?;
    Ok(Throughput {
        messages: count,
        bytes,
        elapsed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let sorted: Vec<f64> = (1..=1000).map(f64::from).collect();
        assert_eq!(percentile(&sorted, 50.0), 500.0);
        assert_eq!(percentile(&sorted, 99.0), 990.0);
        assert_eq!(percentile(&sorted, 99.9), 999.0);
        assert_eq!(percentile(&sorted, 100.0), 1000.0);
        assert_eq!(percentile(&sorted, 0.0), 1.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }

    #[test]
    fn summary_orders_samples() {
        let s = Summary::of(&[5.0, 1.0, 4.0, 2.0, 3.0]).unwrap();
        assert_eq!(
            (s.count, s.min, s.p50, s.max, s.mean),
            (5, 1.0, 3.0, 5.0, 3.0)
        );
        assert!(Summary::of(&[]).is_none());
    }

    #[test]
    fn stamps_round_trip_and_catch_reordering() {
        let mut msg = [0u8; 16];
        stamp(&mut msg, 41);
        assert!(check(&msg, 41, 16, None).is_ok());
        assert!(check(&msg, 42, 16, None).is_err());
        assert!(check(&msg[..8], 41, 16, None).is_err());
        // An all-zero message is never a valid stamp.
        assert!(check(&[0u8; 8], 0, 8, None).is_err());
    }

    #[test]
    fn formats() {
        assert_eq!(format_ns(183.4), "183 ns");
        assert_eq!(format_ns(41_230.0), "41.2 µs");
        assert_eq!(format_rate(52_300_000.0), "52.3 M/s");
        assert_eq!(format_size(65536), "64 KiB");
        assert_eq!(format_size(8), "8 B");
        assert_eq!(format_ratio(1.3), "1.30×");
    }

    #[test]
    fn tables_render() {
        let mut t = Table::new(&["size", "p50"]);
        t.row(["8 B".to_string(), "183 ns".to_string()]);
        let text = t.text();
        assert!(text.contains("8 B   183 ns"), "{text}");
        let md = t.markdown();
        assert!(
            md.starts_with("| size |    p50 |\n| ---- | -----: |\n"),
            "{md}"
        );
        assert!(md.contains("| 8 B  | 183 ns |"), "{md}");
    }

    #[test]
    fn geometry_suggestions_are_valid() {
        for size in [8, 1024, 64 << 10, 1 << 20] {
            let g = RingGeometry::for_message(size);
            assert!(spsc::check_geometry(g.capacity, g.max_message).is_ok());
            assert!(g.max_message >= size as u64);
        }
    }

    #[test]
    fn fork_is_refused_with_threads() {
        // The test harness usually runs tests on threads of its own.
        let threads = thread_count();
        match fork_child(|| Ok::<(), Error>(())) {
            Err(Error::Unsupported(_)) => assert!(threads.is_some_and(|n| n > 1)),
            Ok(child) => child.wait().unwrap(),
            Err(e) => panic!("{e}"),
        }
    }
}
