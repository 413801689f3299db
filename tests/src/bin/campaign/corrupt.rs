//! Random corruption of every shared byte while try and blocking calls run.
//!
//! Worker processes (this program with `--worker corrupt`) each run one
//! chunk: regions (SPSC, MPMC and typed serde channels, each in a sealed
//! memfd so that it can be opened again from its fd) are made, handles
//! attached, and then step after step a few bytes or words anywhere in the
//! mapping (header, participant table, control block, slots and records)
//! are overwritten with random or plausible values before a random mix of
//! calls: try calls, blocking calls with short deadlines, re-attaching,
//! listing the participants, and opening the region anew from its fd
//! (which validates the corrupted header). In some steps a scribbler
//! thread keeps writing while the calls run, so blocking calls see the
//! memory change under them.
//!
//! Every call runs under a watchdog thread: a call still running 5 s past
//! its deadline is a hang (the worker says which and aborts). A panic, an
//! abort, a hang, any other signal, or a sanitizer report ends the worker
//! and is counted by the parent as that kind of failure; a returned message
//! longer than the ring's maximum, or `BufferTooSmall` for a buffer of the
//! maximum, is counted as a failure by the worker. Anything else a call
//! returns is a typed error, counted by kind.
//!
//! The sequential mutations replay exactly from the seed and chunk; the
//! scribbler's interleaving with the calls does not.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::AsFd;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipc_core::channel::{Channel, Endpoint, Receiver, Sender, Serde};
use ipc_core::layout::HEADER_SIZE;
use ipc_core::{mpmc, spsc, Region, RegionOptions};
use ipc_tests::spawn::SpawnedChild;
use ipc_tests::typed::Record;
use ipc_tests::wait::wait_for_end;

use crate::report::Report;
use crate::rng::Rng;
use crate::Scale;

/// Steps per worker chunk.
const CHUNK_STEPS: u64 = 50_000;
/// Past its deadline, a call this late is a hang.
const HANG: Duration = Duration::from_secs(5);
/// A whole chunk's limit, as seen by the parent (a backstop to the
/// worker's own watchdog; generous for sanitizers on shared cores).
const CHUNK_LIMIT: Duration = Duration::from_secs(600);
/// Largest message of the rings made here.
const MAX: usize = 64;
/// Largest message of the typed channels made here.
const TYPED_MAX: usize = 256;

pub fn run(seed: u64, scale: Scale, report: &mut Report) {
    let started = Instant::now();
    // CI mode: 20 chunks of 50,000 steps, 1.25 sequential mutations each
    // on average: over 10^6 mutations.
    let chunks = scale.of(20);
    let exe = std::env::current_exe().expect("the campaign's own path");
    let mut next = 0;
    let mut running: Vec<(u64, SpawnedChild)> = Vec::new();
    // Two at a time: two cores.
    while next < chunks || !running.is_empty() {
        while running.len() < 2 && next < chunks {
            let mut command = Command::new(&exe);
            command.args([
                "--worker",
                "corrupt",
                &seed.to_string(),
                &next.to_string(),
                &CHUNK_STEPS.to_string(),
            ]);
            running.push((next, SpawnedChild::spawn(command)));
            next += 1;
        }
        let (chunk, child) = running.remove(0);
        judge(seed, chunk, child, report);
    }
    report.add("corrupt: worker chunks", chunks);
    report.timed("corrupt", started.elapsed());
}

/// Waits for a worker and counts what it did and how it ended.
fn judge(seed: u64, chunk: u64, child: SpawnedChild, report: &mut Report) {
    let replay = format!("seed {seed}, chunk {chunk} (replay: campaign --worker corrupt {seed} {chunk} {CHUNK_STEPS})");
    if let Err(e) = wait_for_end(child.pid(), CHUNK_LIMIT) {
        report.fail(
            "corrupt: hang (worker past its limit)",
            format!("{replay}: {e}"),
        );
        return;
    }
    let done = child.finish(Duration::ZERO);
    // Progress lines are cumulative: the last one counts.
    let last = done.stdout.lines().rfind(|l| l.starts_with("counts "));
    if let Some(counts) = last.and_then(|l| l.strip_prefix("counts ")) {
        for field in counts.split_whitespace() {
            if let Some((k, v)) = field.split_once('=') {
                report.add(
                    &format!("corrupt: {}", k.replace('_', " ")),
                    v.parse().unwrap_or(0),
                );
            }
        }
    }
    for line in done.stdout.lines() {
        if let Some(failure) = line.strip_prefix("failure ") {
            let (kind, detail) = failure.split_once(": ").unwrap_or((failure, ""));
            report.fail(&format!("corrupt: {kind}"), format!("{replay}: {detail}"));
        }
    }
    // A worker that crashed before its first progress line is counted
    // below, by how it ended; one that exited normally must have counted.
    if last.is_none() && done.status.success() {
        report.fail("corrupt: worker printed no counts", replay.clone());
    }
    let status = done.status;
    if status.success() {
        return;
    }
    use std::os::unix::process::ExitStatusExt;
    let stderr = done.stderr;
    let kind = if stderr.contains("Sanitizer") {
        "corrupt: sanitizer report"
    } else if stderr.contains("campaign-hang") {
        "corrupt: hang (call past its deadline)"
    } else if status.code() == Some(101) || stderr.contains("panicked") {
        "corrupt: panic"
    } else if status.signal() == Some(libc::SIGABRT) {
        "corrupt: abort"
    } else if status.signal().is_some() {
        "corrupt: killed by a signal"
    } else if status.code() == Some(1) {
        // The worker's own failures, counted above from its lines.
        return;
    } else {
        "corrupt: worker failed"
    };
    // The first lines say what happened (the panic or allocation failure,
    // the sanitizer's verdict), the last ones where (frames).
    let lines: Vec<&str> = stderr.lines().collect();
    let head = lines.len().min(6);
    let tail = lines.len().saturating_sub(14).max(head);
    report.fail(
        kind,
        format!(
            "{replay}: {status}; stderr:\n{}\n    ...\n{}",
            lines[..head].join("\n"),
            lines[tail..].join("\n")
        ),
    );
}

/// A call in progress, for the watchdog.
struct Watch {
    epoch: Instant,
    /// Nanoseconds since `epoch` when the call started, 0 when idle.
    started: AtomicU64,
    /// Its deadline in nanoseconds since `epoch`.
    limit: AtomicU64,
    /// Which call, and at which step.
    op: AtomicU64,
    step: AtomicU64,
}

impl Watch {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn begin(&self, op: u64, step: u64, wait: Duration) {
        let now = self.now().max(1);
        self.op.store(op, Ordering::Relaxed);
        self.step.store(step, Ordering::Relaxed);
        self.limit
            .store(now + (wait + HANG).as_nanos() as u64, Ordering::Relaxed);
        self.started.store(now, Ordering::Release);
    }

    fn end(&self) {
        self.started.store(0, Ordering::Release);
    }
}

/// Where the scribbler writes: a live mapping's base and length, taken
/// away (under the lock) before the mapping goes.
type Target = Mutex<Option<(usize, usize)>>;

/// What a worker counts, printed as `counts k=v ...`.
#[derive(Default)]
struct Counts {
    map: BTreeMap<String, u64>,
    failures: u64,
}

impl Counts {
    fn add(&mut self, k: &str, n: u64) {
        *self.map.entry(k.to_string()).or_default() += n;
    }

    fn fail(&mut self, kind: &str, detail: String) {
        self.failures += 1;
        if self.failures <= 5 {
            println!("failure {kind}: {detail}");
        }
    }

    fn print(&self, scribbled: u64) {
        let mut line = String::from("counts");
        for (k, v) in &self.map {
            line.push_str(&format!(" {k}={v}"));
        }
        line.push_str(&format!(
            " mutations_by_the_concurrent_scribbler={scribbled}"
        ));
        println!("{line}");
        let _ = std::io::stdout().flush();
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Spsc,
    Mpmc,
    SerdeSpsc,
    SerdeMpmc,
}

/// One is alive at a time: the size difference between variants costs
/// nothing.
#[allow(clippy::large_enum_variant)]
enum Handles {
    Spsc {
        region: Arc<Region>,
        p: Option<spsc::Producer>,
        c: Option<spsc::Consumer>,
    },
    Mpmc {
        region: Arc<Region>,
        p: [Option<mpmc::Producer>; 2],
        c: [Option<mpmc::Consumer>; 2],
    },
    Serde {
        region: Arc<Region>,
        ep: Endpoint<Record, Serde>,
        tx: Option<Sender<Record, Serde>>,
        rx: Option<Receiver<Record, Serde>>,
    },
}

/// The name of an error's variant, for counting.
fn variant(e: &impl std::fmt::Debug) -> String {
    let s = format!("{e:?}");
    let end = s.find([' ', '(', '{']).unwrap_or(s.len());
    s[..end].to_string()
}

pub fn worker(args: &[String]) -> ExitCode {
    let parsed: Vec<u64> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let [seed, chunk, steps] = parsed[..] else {
        eprintln!("usage: campaign --worker corrupt SEED CHUNK STEPS");
        return ExitCode::from(2);
    };
    let watch = Arc::new(Watch {
        epoch: Instant::now(),
        started: AtomicU64::new(0),
        limit: AtomicU64::new(0),
        op: AtomicU64::new(0),
        step: AtomicU64::new(0),
    });
    {
        let watch = watch.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(50));
            let started = watch.started.load(Ordering::Acquire);
            if started != 0 && watch.now() > watch.limit.load(Ordering::Relaxed) {
                eprintln!(
                    "campaign-hang: call {} at step {} (seed {seed}, chunk {chunk}) still running \
                     {HANG:?} past its deadline",
                    OPS.get(watch.op.load(Ordering::Relaxed) as usize)
                        .unwrap_or(&"?"),
                    watch.step.load(Ordering::Relaxed)
                );
                std::process::abort();
            }
        });
    }
    let target: Arc<Target> = Arc::new(Mutex::new(None));
    let scribbled = Arc::new(AtomicU64::new(0));
    {
        let (target, scribbled) = (target.clone(), scribbled.clone());
        let mut rng = Rng::derive(seed, 4, chunk);
        std::thread::spawn(move || loop {
            let guard = target.lock().unwrap_or_else(|e| e.into_inner());
            let Some((base, len)) = *guard else {
                drop(guard);
                std::thread::sleep(Duration::from_micros(100));
                continue;
            };
            for _ in 0..32 {
                // SAFETY: the mapping [base, base + len) stays mapped while
                // the lock is held (the worker takes the target away under
                // it before dropping the region); atomic stores may race
                // with the library's accesses, as another process's would.
                unsafe { mutate(&mut rng, base as *mut u8, len) };
            }
            scribbled.fetch_add(32, Ordering::Relaxed);
            drop(guard);
            std::thread::yield_now();
        });
    }
    let mut rng = Rng::derive(seed, 3, chunk);
    let mut counts = Counts::default();
    let mut step = 0;
    while step < steps {
        let kind = *rng.pick(&[Kind::Spsc, Kind::Mpmc, Kind::SerdeSpsc, Kind::SerdeMpmc]);
        let mut handles = match make(kind, &mut rng) {
            Ok(h) => h,
            Err(e) => {
                counts.fail("setup", format!("making a {kind:?} region: {e}"));
                break;
            }
        };
        counts.add(&format!("regions_{kind:?}"), 1);
        let region = handles.region().clone();
        // The mapping's start: the header, HEADER_SIZE... bytes before the
        // data area (`data_ptr` is inside the same mapping).
        let base = region.data_ptr().as_ptr() as usize - region.layout().data_offset as usize;
        let len = region.len() as usize;
        let areas = areas(&region);
        let life = rng.range(20, 400).min(steps - step);
        for _ in 0..life {
            step += 1;
            // Half the steps undo their mutations after their calls, so
            // that single corruptions meet a region otherwise intact.
            let undo = rng.one_in(2);
            let mutations = rng.range(0, 2) + u64::from(undo);
            let mut saved = Vec::new();
            for _ in 0..mutations {
                let area = *rng.pick(&areas);
                // SAFETY: the region is alive (held by `region`) and the
                // offsets are inside its mapping.
                saved.push(unsafe { mutate_in(&mut rng, base as *mut u8, len, area) });
            }
            counts.add("mutations", mutations);
            let concurrent = rng.one_in(32);
            if concurrent {
                *target.lock().unwrap_or_else(|e| e.into_inner()) = Some((base, len));
            }
            for _ in 0..rng.range(2, 6) {
                let blocking = rng.one_in(12);
                let wait = if blocking {
                    Duration::from_micros(rng.below(2_000))
                } else {
                    Duration::ZERO
                };
                let op = rng.below(OPS.len() as u64);
                watch.begin(op, step, wait);
                handles.op(op, blocking, wait, &mut rng, &mut counts);
                watch.end();
                counts.add(
                    if blocking {
                        "calls_blocking"
                    } else {
                        "calls_try_and_other"
                    },
                    1,
                );
            }
            if concurrent {
                *target.lock().unwrap_or_else(|e| e.into_inner()) = None;
            }
            if undo {
                for (offset, old) in saved.into_iter().rev() {
                    // SAFETY: the word saved by `mutate_in`, inside the
                    // live mapping.
                    unsafe { &*((base + offset) as *const AtomicU64) }
                        .store(old, Ordering::Relaxed);
                }
                counts.add("mutations_undone_after_their_calls", mutations);
            }
            if step % 2500 == 0 {
                // Progress survives a crash of this worker.
                counts.print(scribbled.load(Ordering::Relaxed));
            }
        }
        *target.lock().unwrap_or_else(|e| e.into_inner()) = None;
        drop(region);
        drop(handles);
    }
    counts.add("steps", step);
    counts.print(scribbled.load(Ordering::Relaxed));
    if counts.failures > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Makes a region of `kind` in a sealed memfd, with its handles attached
/// and a few messages in it.
fn make(kind: Kind, rng: &mut Rng) -> Result<Handles, ipc_core::Error> {
    let capacity = *rng.pick(&[2, 4, 8, 64]);
    let mut handles = match kind {
        Kind::Spsc => {
            let region = Arc::new(
                RegionOptions::new()
                    .layout(spsc::layout(capacity * 128, MAX as u64)?)
                    .create_memfd("campaign-spsc")?,
            );
            let (p, c) = spsc::channel(region.clone())?;
            Handles::Spsc {
                region,
                p: Some(p),
                c: Some(c),
            }
        }
        Kind::Mpmc => {
            let region = Arc::new(
                RegionOptions::new()
                    .layout(mpmc::layout_with_participants(capacity, MAX as u64, 8)?)
                    .create_memfd("campaign-mpmc")?,
            );
            let (p, c) = mpmc::channel(region.clone())?;
            let (p2, c2) = (p.try_clone()?, c.try_clone()?);
            Handles::Mpmc {
                region,
                p: [Some(p), Some(p2)],
                c: [Some(c), Some(c2)],
            }
        }
        Kind::SerdeSpsc | Kind::SerdeMpmc => {
            let builder = Channel::serde::<Record>()
                .capacity(capacity)
                .max_message(TYPED_MAX as u64);
            let mpmc = kind == Kind::SerdeMpmc;
            let builder = if mpmc { builder.mpmc() } else { builder.spsc() };
            let ep = builder.memfd("campaign-serde")?;
            let (tx, rx) = (ep.sender()?, ep.receiver()?);
            Handles::Serde {
                region: ep.region().clone(),
                ep,
                tx: Some(tx),
                rx: Some(rx),
            }
        }
    };
    let mut scratch = Counts::default();
    for _ in 0..rng.below(capacity + 1) {
        handles.op(0, false, Duration::ZERO, rng, &mut scratch);
    }
    Ok(handles)
}

/// The mapping's parts, as (start, end) byte ranges.
fn areas(region: &Region) -> Vec<(usize, usize)> {
    let data = region.layout().data_offset as usize;
    let len = region.len() as usize;
    let control = match region.layout().kind {
        ipc_core::Kind::Mpmc => mpmc::CONTROL_SIZE,
        _ => spsc::CONTROL_SIZE,
    } as usize;
    let mut areas = vec![(0, HEADER_SIZE as usize)];
    if data > HEADER_SIZE as usize {
        areas.push((HEADER_SIZE as usize, data)); // the participant table
    }
    areas.push((data, (data + control).min(len)));
    areas.push(((data + control).min(len), len)); // slots or records
    areas.retain(|(a, b)| a < b);
    areas
}

/// Overwrites one byte or word in `area` of the mapping at `base`; returns
/// the offset and old value of the word that holds it, to undo it.
///
/// # Safety
/// `base..base + len` must be a live mapping, and `area` inside it.
unsafe fn mutate_in(
    rng: &mut Rng,
    base: *mut u8,
    len: usize,
    area: (usize, usize),
) -> (usize, u64) {
    let (start, end) = (area.0, area.1.min(len));
    let offset = start + rng.below((end - start) as u64) as usize;
    // SAFETY: the caller's contract; an aligned word inside the mapping
    // (its length is a multiple of the page size).
    let old = unsafe { &*(base.add(offset & !7) as *const AtomicU64) }.load(Ordering::Relaxed);
    // SAFETY: the caller's contract; the offset is inside the mapping.
    unsafe { write_at(rng, base, len, offset) };
    (offset & !7, old)
}

/// Overwrites one byte or word anywhere in the mapping at `base`.
///
/// # Safety
/// As [`mutate_in`].
unsafe fn mutate(rng: &mut Rng, base: *mut u8, len: usize) {
    let offset = rng.below(len as u64) as usize;
    // SAFETY: the caller's contract; the offset is inside the mapping.
    unsafe { write_at(rng, base, len, offset) }
}

/// # Safety
/// As [`mutate_in`], with `offset < len`.
unsafe fn write_at(rng: &mut Rng, base: *mut u8, len: usize, offset: usize) {
    let word_at = offset & !7;
    if rng.one_in(3) || word_at + 8 > len {
        // SAFETY: `offset < len`: a byte of the live mapping; an atomic store
        // is no data race with the library's atomic accesses.
        let byte = unsafe { &*(base.add(offset) as *const AtomicU8) };
        byte.store(rng.next() as u8, Ordering::Relaxed);
        return;
    }
    // SAFETY: as above, an aligned word (the mapping is page-aligned).
    let word = unsafe { &*(base.add(word_at) as *const AtomicU64) };
    let old = word.load(Ordering::Relaxed);
    let value = match rng.below(10) {
        0 => rng.next(),
        1 => 0,
        2 => u64::MAX,
        3 => 1 << rng.below(64),
        4 => old ^ (1 << rng.below(64)),
        5 => old.wrapping_add(rng.range(1, 8)),
        6 => old.wrapping_sub(rng.range(1, 8)),
        7 => rng.below(4096),
        // A stamp-like value: lap, state and holder all small.
        8 => (rng.below(8) << 19) | (rng.below(8) << 16) | rng.below(8),
        // Another word of the mapping, copied here.
        _ => {
            let other = (rng.below(len as u64) as usize & !7).min(len - 8);
            // SAFETY: an aligned word inside the mapping.
            unsafe { &*(base.add(other) as *const AtomicU64) }.load(Ordering::Relaxed)
        }
    };
    word.store(value, Ordering::Relaxed);
}

/// The calls, by index (for the watchdog's message).
const OPS: [&str; 10] = [
    "send",
    "recv",
    "recv_into",
    "reserve+commit",
    "drain/batch or second handle",
    "send (other handle)",
    "recv (other handle)",
    "re-attach a producer",
    "re-attach a consumer",
    "participants() and open the fd anew",
];

impl Handles {
    fn region(&self) -> &Arc<Region> {
        match self {
            Handles::Spsc { region, .. }
            | Handles::Mpmc { region, .. }
            | Handles::Serde { region, .. } => region,
        }
    }

    fn op(&mut self, op: u64, blocking: bool, wait: Duration, rng: &mut Rng, counts: &mut Counts) {
        let mut buf = [0u8; TYPED_MAX];
        let len = rng.below(MAX as u64 + 1) as usize;
        match op {
            7 | 8 => return self.reattach(op == 7, counts),
            9 => return self.reopen(counts),
            _ => {}
        }
        match self {
            Handles::Spsc { p, c, .. } => match (op, p.as_mut(), c.as_mut()) {
                (0 | 5, Some(p), _) => sent(
                    counts,
                    "spsc",
                    if blocking {
                        p.send_timeout(&buf[..len], wait)
                    } else {
                        p.try_send(&buf[..len])
                    },
                ),
                (1 | 6, _, Some(c)) => got(
                    counts,
                    "spsc",
                    MAX,
                    if blocking {
                        c.recv_timeout(wait).map(|m| m.len())
                    } else {
                        c.try_recv().map(|m| m.len())
                    },
                ),
                (2, _, Some(c)) => got(
                    counts,
                    "spsc",
                    MAX,
                    if blocking {
                        c.recv_into_deadline(&mut buf[..MAX], Instant::now() + wait)
                    } else {
                        c.try_recv_into(&mut buf[..MAX])
                    },
                ),
                (3, Some(p), _) => {
                    let grant = if blocking {
                        p.reserve_deadline(len, Instant::now() + wait)
                    } else {
                        p.try_reserve(len)
                    };
                    sent(counts, "spsc", grant.map(|g| g.commit()));
                }
                (4, Some(p), Some(c)) => {
                    if rng.one_in(2) {
                        let mut batch = p.batch();
                        for _ in 0..3 {
                            if let Err(e) = batch.try_send(&buf[..len]) {
                                sent(counts, "spsc", Err(e));
                                break;
                            }
                        }
                        batch.publish();
                    } else {
                        let mut longest = 0;
                        let r = c.drain(8, |m| longest = longest.max(m.len()));
                        got(counts, "spsc", MAX, r.map(|_| longest));
                    }
                }
                _ => counts.add("calls_without_a_handle", 1),
            },
            Handles::Mpmc { p, c, .. } => {
                let which = (op >= 5) as usize;
                match (op, p[which].as_mut(), c[which].as_mut()) {
                    (0 | 5, Some(p), _) => sent(
                        counts,
                        "mpmc",
                        if blocking {
                            p.send_timeout(&buf[..len], wait)
                        } else {
                            p.try_send(&buf[..len])
                        },
                    ),
                    (1 | 6, _, Some(c)) => got(
                        counts,
                        "mpmc",
                        MAX,
                        if blocking {
                            c.recv_timeout(wait).map(|m| m.len())
                        } else {
                            c.try_recv().map(|m| m.len())
                        },
                    ),
                    (2, _, Some(c)) => got(
                        counts,
                        "mpmc",
                        MAX,
                        if blocking {
                            c.recv_into_deadline(&mut buf[..MAX], Instant::now() + wait)
                        } else {
                            c.try_recv_into(&mut buf[..MAX])
                        },
                    ),
                    (3, Some(p), _) => {
                        let grant = if blocking {
                            p.reserve_deadline(len, Instant::now() + wait)
                        } else {
                            p.try_reserve(len)
                        };
                        sent(counts, "mpmc", grant.and_then(|g| g.commit()));
                    }
                    (4, Some(p), Some(c)) => {
                        let _ = (p.counters(), c.counters());
                        match p.try_clone() {
                            Ok(extra) => {
                                counts.add("mpmc_clones", 1);
                                drop(extra);
                            }
                            Err(e) => counts.add(&format!("error_attach_{}", variant(&e)), 1),
                        }
                    }
                    _ => counts.add("calls_without_a_handle", 1),
                }
            }
            Handles::Serde { tx, rx, .. } => match (op, tx.as_mut(), rx.as_mut()) {
                (0 | 3 | 5, Some(tx), _) => {
                    let record = Record::new(rng.below(4) as u32, rng.below(1 << 20));
                    let r = if blocking {
                        tx.send_timeout(record, wait)
                    } else {
                        tx.try_send(record)
                    };
                    match r {
                        Ok(()) => counts.add("sent", 1),
                        Err(e) => {
                            counts.add(&format!("error_serde_send_{}", variant(&e.failure)), 1)
                        }
                    }
                }
                (1 | 2 | 4 | 6, _, Some(rx)) => {
                    let r = if blocking {
                        rx.recv_timeout(wait)
                    } else {
                        rx.try_recv()
                    };
                    match r {
                        // A record that decodes but is not what any sender
                        // sent is corrupt data, which the channel cannot
                        // know: counted, not a failure.
                        Ok(r) if r.is_intact() => counts.add("received", 1),
                        Ok(_) => counts.add("received_decodable_but_altered", 1),
                        Err(e) => counts.add(&format!("error_serde_recv_{}", variant(&e)), 1),
                    }
                }
                _ => counts.add("calls_without_a_handle", 1),
            },
        }
    }

    /// Drops a producer (or consumer) and attaches a new one.
    fn reattach(&mut self, producer: bool, counts: &mut Counts) {
        let r = match self {
            Handles::Spsc { region, p, c } => {
                if producer {
                    *p = None;
                    spsc::Producer::attach(region.clone()).map(|h| *p = Some(h))
                } else {
                    *c = None;
                    spsc::Consumer::attach(region.clone()).map(|h| *c = Some(h))
                }
            }
            Handles::Mpmc { region, p, c } => {
                if producer {
                    p[0] = None;
                    mpmc::Producer::attach(region.clone()).map(|h| p[0] = Some(h))
                } else {
                    c[0] = None;
                    mpmc::Consumer::attach(region.clone()).map(|h| c[0] = Some(h))
                }
            }
            Handles::Serde { ep, tx, rx, .. } => {
                if producer {
                    *tx = None;
                    ep.sender().map(|h| *tx = Some(h))
                } else {
                    *rx = None;
                    ep.receiver().map(|h| *rx = Some(h))
                }
            }
        };
        match r {
            Ok(()) => counts.add("reattached", 1),
            Err(e) => counts.add(&format!("error_attach_{}", variant(&e)), 1),
        }
    }

    /// Lists the participants, and opens the region anew from a copy of its
    /// fd, validating the (maybe corrupted) header, then attaches to it.
    fn reopen(&mut self, counts: &mut Counts) {
        let region = self.region();
        let entries = region.participants();
        counts.add("participant_listings", 1);
        counts.add("participant_entries_listed", entries.len() as u64);
        let Some(fd) = region.fd() else { return };
        let fd = match fd.as_fd().try_clone_to_owned() {
            Ok(fd) => fd,
            Err(e) => return counts.fail("setup", format!("dup: {e}")),
        };
        match RegionOptions::new()
            .init_timeout(Duration::ZERO)
            .open_fd(fd)
        {
            Ok(opened) => {
                counts.add("reopened", 1);
                let opened = Arc::new(opened);
                let r = match opened.layout().kind {
                    ipc_core::Kind::Mpmc => mpmc::Consumer::attach(opened.clone()).map(|mut c| {
                        let mut buf = [0u8; TYPED_MAX];
                        let _ = c.try_recv_into(&mut buf);
                    }),
                    ipc_core::Kind::Spsc => spsc::Producer::attach(opened.clone()).map(|mut p| {
                        let _ = p.try_send(b"reopened");
                    }),
                    _ => Ok(()),
                };
                if let Err(e) = r {
                    counts.add(&format!("error_attach_{}", variant(&e)), 1);
                }
            }
            Err(e) => counts.add(&format!("error_open_{}", variant(&e)), 1),
        }
    }
}

fn sent<E: std::fmt::Debug>(counts: &mut Counts, ring: &str, r: Result<(), E>) {
    match r {
        Ok(()) => counts.add("sent", 1),
        Err(e) => counts.add(&format!("error_{ring}_send_{}", variant(&e)), 1),
    }
}

fn got<E: std::fmt::Debug>(counts: &mut Counts, ring: &str, max: usize, r: Result<usize, E>) {
    match r {
        Ok(n) if n <= max => counts.add("received", 1),
        Ok(n) => counts.fail(
            "longer than the maximum",
            format!("{ring}: a message of {n} bytes, maximum {max}"),
        ),
        Err(e) => {
            let name = variant(&e);
            if name == "BufferTooSmall" {
                counts.fail(
                    "BufferTooSmall for a buffer of the maximum",
                    format!("{ring}: {e:?}"),
                );
            }
            counts.add(&format!("error_{ring}_recv_{name}"), 1)
        }
    }
}
