//! What each [`Mode`] runs, and [`run`], which runs it.
//!
//! Every mode measures, with two processes pinned to two cores:
//!
//! - round-trip latency over the SPSC ring, a pipe and a Unix stream socket,
//!   and the floor (a counter bounced through two cache lines). The 8 B ring
//!   and the floor are measured *paired*: the same processes alternate a
//!   floor batch and a ring batch, because this VM's cross-core latency
//!   changes severalfold for seconds at a time;
//! - one-way throughput over the ring (per-message `try_send` and batched
//!   `batch()` + `drain` at 8 B), a pipe and a Unix socket, and in full runs
//!   at 64 KiB the raw two-counter copy stream;
//!
//! in repetitions that interleave the transports. [`Mode::Smoke`] and
//! [`Mode::Quick`] first stream messages through the ring and verify every
//! byte.

use std::time::Instant;

use ipc_tests::payload::PayloadGen;

use crate::process::{core_pair, pin_parent, Machine};
use crate::report::{LatencyRow, Report, ThroughputRow, VerifiedRun};
use crate::stats::clock_cost_ns;
use crate::table::format_size;
use crate::transport::ring;
use crate::workload::{RingGeometry, RoundTrip, Stream};
use crate::{Result, Transport};

/// How much to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The full measurement (`cargo bench`): a minute or so.
    Full,
    /// A few seconds for the `demo`: verified streams, then 8 B and 1 KiB
    /// over every transport, three repetitions.
    Quick,
    /// A second or two, every byte verified (`cargo test --benches`); the
    /// numbers are not measurements.
    Smoke,
}

/// A round-trip case: size and transport, batch size and samples per rep.
struct RtCase {
    size: usize,
    transport: Transport,
    batch: usize,
    samples: usize,
}

/// A throughput case: size, transport and messages per run.
struct TpCase {
    size: usize,
    transport: Transport,
    count: u64,
}

/// One value per mode, in the order [`Mode::Full`], [`Mode::Quick`],
/// [`Mode::Smoke`].
type PerMode<T> = [T; 3];

/// Round trips per timed batch, and timed batches per repetition.
type BatchSamples = (usize, usize);

/// The round-trip cases besides the paired 8 B ring and floor: size,
/// transport, then batch and samples per mode; no samples where a mode skips
/// the case.
const ROUND_TRIPS: [(usize, Transport, PerMode<BatchSamples>); 8] = {
    use Transport::*;
    [
        (1024, Ring, [(1000, 300), (1000, 100), (100, 10)]),
        (64 << 10, Ring, [(20, 300), (0, 0), (10, 10)]),
        (8, Pipe, [(10, 200), (10, 70), (10, 10)]),
        (8, UnixSocket, [(10, 200), (10, 70), (10, 10)]),
        (1024, Pipe, [(10, 200), (10, 70), (10, 10)]),
        (1024, UnixSocket, [(10, 200), (10, 70), (10, 10)]),
        (64 << 10, Pipe, [(5, 200), (0, 0), (5, 4)]),
        (64 << 10, UnixSocket, [(5, 200), (0, 0), (5, 4)]),
    ]
};

/// The throughput cases: size, transport, then messages per run per mode; 0
/// where a mode skips the case.
const STREAMS: [(usize, Transport, PerMode<u64>); 11] = {
    use Transport::*;
    [
        (8, Ring, [50_000_000, 20_000_000, 100_000]),
        (8, RingBatched, [100_000_000, 40_000_000, 100_000]),
        (8, Pipe, [500_000, 300_000, 10_000]),
        (8, UnixSocket, [500_000, 300_000, 10_000]),
        (1024, Ring, [2_000_000, 1_000_000, 20_000]),
        (1024, Pipe, [300_000, 200_000, 5_000]),
        (1024, UnixSocket, [300_000, 200_000, 5_000]),
        (64 << 10, Ring, [50_000, 0, 500]),
        (64 << 10, CopyStream, [50_000, 0, 500]),
        (64 << 10, Pipe, [10_000, 0, 200]),
        (64 << 10, UnixSocket, [10_000, 0, 200]),
    ]
};

/// Something verified byte for byte before the measurements.
enum Check {
    /// `count` messages of `gen` through a ring of `geometry`, one way.
    Stream {
        label: &'static str,
        gen: PayloadGen,
        count: u64,
        geometry: RingGeometry,
    },
    /// `batches` of `batch` ring round trips of `size`-byte messages.
    Echoes {
        size: usize,
        batches: usize,
        batch: usize,
    },
}

impl Check {
    fn stream(label: &'static str, gen: PayloadGen, count: u64, geometry: RingGeometry) -> Check {
        Check::Stream {
            label,
            gen,
            count,
            geometry,
        }
    }

    /// What each mode verifies first: nothing in full runs (they measure),
    /// the demo's streams and echoes in quick runs, and in smoke runs streams
    /// whose random lengths wrap a small ring (everything after is verified
    /// too).
    fn plan(mode: Mode) -> Vec<Check> {
        let ring = RingGeometry::for_message;
        let small = |capacity| RingGeometry {
            capacity,
            max_message: 4096,
        };
        match mode {
            Mode::Full => Vec::new(),
            Mode::Quick => vec![
                Check::stream("8 B messages", PayloadGen::fixed(1, 8), 2_000_000, ring(8)),
                Check::stream(
                    "1 KiB messages",
                    PayloadGen::fixed(2, 1024),
                    200_000,
                    ring(1024),
                ),
                Check::stream(
                    "0..=4 KiB random lengths, 64 KiB ring (wraps)",
                    PayloadGen::random(3, 4096),
                    100_000,
                    small(64 << 10),
                ),
                Check::Echoes {
                    size: 8,
                    batches: 100,
                    batch: 100,
                },
                Check::Echoes {
                    size: 1024,
                    batches: 100,
                    batch: 100,
                },
            ],
            Mode::Smoke => vec![
                Check::stream("8 B messages", PayloadGen::fixed(11, 8), 50_000, ring(8)),
                Check::stream(
                    "0..=4 KiB random lengths, 16 KiB ring (wraps)",
                    PayloadGen::random(12, 4096),
                    20_000,
                    small(16 << 10),
                ),
                Check::stream(
                    "0..=2000 B random lengths, 16 KiB ring (wraps)",
                    PayloadGen::random(13, 2000),
                    20_000,
                    small(16 << 10),
                ),
                Check::stream(
                    "64 KiB messages",
                    PayloadGen::fixed(14, 64 << 10),
                    300,
                    ring(64 << 10),
                ),
            ],
        }
    }
}

struct Plan {
    reps: usize,
    verify: bool,
    checks: Vec<Check>,
    /// Paired ring/floor at 8 B: batch and samples per rep.
    paired: (usize, usize),
    /// Individually timed paired round trips per rep (0 for none).
    single: usize,
    rt: Vec<RtCase>,
    tp: Vec<TpCase>,
}

impl Plan {
    fn new(mode: Mode) -> Plan {
        let column = match mode {
            Mode::Full => 0,
            Mode::Quick => 1,
            Mode::Smoke => 2,
        };
        let rt = ROUND_TRIPS
            .iter()
            .filter(|(.., modes)| modes[column].1 > 0)
            .map(|&(size, transport, modes)| RtCase {
                size,
                transport,
                batch: modes[column].0,
                samples: modes[column].1,
            })
            .collect();
        let tp = STREAMS
            .iter()
            .filter(|(.., counts)| counts[column] > 0)
            .map(|&(size, transport, counts)| TpCase {
                size,
                transport,
                count: counts[column],
            })
            .collect();
        let (reps, verify, paired, single) = match mode {
            Mode::Full => (5, false, (1000, 600), 20_000),
            Mode::Quick => (3, false, (1000, 100), 0),
            Mode::Smoke => (1, true, (100, 20), 200),
        };
        Plan {
            reps,
            verify,
            checks: Check::plan(mode),
            paired,
            single,
            rt,
            tp,
        }
    }
}

/// Runs the suite; `log` gets a line as each step starts.
///
/// The caller must be single-threaded (the workloads `fork`). The calling
/// process is pinned to the first CPU of [`core_pair`].
pub fn run(mode: Mode, mut log: impl FnMut(&str)) -> Result<Report> {
    let started = Instant::now();
    let plan = Plan::new(mode);
    let cores = core_pair().map(|p| (p.parent, p.child));
    pin_parent()?;
    let clock_ns = clock_cost_ns();
    let checks = run_checks(&plan.checks, &mut log)?;
    let mut verified = checks.iter().map(|c| c.messages).sum();

    let mut latency: Vec<LatencyRow> = Vec::new();
    let mut paired_ratios = Vec::new();
    let mut add_latency =
        |size: usize, transport: &str, batch: usize, samples: Vec<f64>| match latency
            .iter_mut()
            .find(|r| r.size == size && r.transport == transport && r.batch == batch)
        {
            Some(row) => row.samples.extend(samples),
            None => latency.push(LatencyRow {
                size,
                transport: transport.to_string(),
                batch,
                samples,
            }),
        };
    let mut throughput: Vec<ThroughputRow> = plan
        .tp
        .iter()
        .map(|c| ThroughputRow {
            size: c.size,
            transport: c.transport,
            runs: Vec::new(),
        })
        .collect();

    for rep in 1..=plan.reps {
        log(&format!("repetition {rep}/{}: round trips", plan.reps));
        let mut cfg = RoundTrip::new(8);
        (cfg.batch, cfg.samples, cfg.verify) = (plan.paired.0, plan.paired.1, plan.verify);
        let (ring, floor) = ring::round_trip_with_floor(&cfg)?;
        verified += if cfg.verify { cfg.total() } else { 0 };
        paired_ratios.extend(ring.iter().zip(&floor).map(|(r, f)| r / f));
        add_latency(8, Transport::Floor.name(), cfg.batch, floor);
        add_latency(8, Transport::Ring.name(), cfg.batch, ring);
        if plan.single > 0 {
            (cfg.batch, cfg.samples, cfg.warmup) = (1, plan.single, 1000);
            let (ring, floor) = ring::round_trip_with_floor(&cfg)?;
            verified += if cfg.verify { cfg.total() } else { 0 };
            add_latency(8, Transport::Floor.name(), 1, floor);
            add_latency(8, Transport::Ring.name(), 1, ring);
        }
        for case in &plan.rt {
            let mut cfg = RoundTrip::new(case.size);
            cfg.batch = case.batch;
            cfg.samples = case.samples;
            cfg.warmup = (case.samples / 20).max(2);
            cfg.verify = plan.verify;
            let samples = case.transport.round_trip(&cfg)?;
            verified += if cfg.verify { cfg.total() } else { 0 };
            add_latency(case.size, case.transport.name(), case.batch, samples);
        }
        log(&format!("repetition {rep}/{}: throughput", plan.reps));
        for (case, row) in plan.tp.iter().zip(&mut throughput) {
            let mut cfg = Stream::new(case.size, case.count);
            cfg.verify = plan.verify && case.transport != Transport::CopyStream;
            row.runs.push(case.transport.throughput(&cfg)?);
            if cfg.verify {
                verified += case.count;
            }
        }
    }
    // Keep the sizes together in the tables.
    latency.sort_by_key(|r| (r.size, r.batch == 1));
    Ok(Report {
        mode,
        machine: Machine::detect(),
        cores,
        clock_ns,
        reps: plan.reps,
        checks,
        latency,
        paired_ratios,
        throughput,
        verified,
        elapsed: started.elapsed(),
    })
}

/// Runs the checks of a plan: streams through the ring, and round trips,
/// with every byte verified.
fn run_checks(checks: &[Check], log: &mut impl FnMut(&str)) -> Result<Vec<VerifiedRun>> {
    let mut runs = Vec::new();
    for check in checks {
        runs.push(match *check {
            Check::Stream {
                label,
                gen,
                count,
                geometry,
            } => {
                log(&format!(
                    "verifying {count} messages of up to {} through a {} ring",
                    format_size(gen.max_len()),
                    format_size(geometry.capacity as usize)
                ));
                VerifiedRun {
                    what: label.to_string(),
                    messages: count,
                    throughput: Some(ring::payload_stream(gen, count, geometry)?),
                }
            }
            Check::Echoes {
                size,
                batches,
                batch,
            } => {
                let mut cfg = RoundTrip::new(size);
                (cfg.verify, cfg.warmup, cfg.samples, cfg.batch) = (true, 0, batches, batch);
                log(&format!("verifying {} ring round trips", cfg.total()));
                Transport::Ring.round_trip(&cfg)?;
                VerifiedRun {
                    what: format!("{} ping-pong echoes", format_size(size)),
                    messages: cfg.total(),
                    throughput: None,
                }
            }
        });
    }
    Ok(runs)
}
