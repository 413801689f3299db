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
        use Transport::*;
        let rt = |size, transport, batch, samples| RtCase {
            size,
            transport,
            batch,
            samples,
        };
        let tp = |size, transport, count| TpCase {
            size,
            transport,
            count,
        };
        let stream = |label, gen, count, geometry| Check::Stream {
            label,
            gen,
            count,
            geometry,
        };
        let ring = RingGeometry::for_message;
        match mode {
            Mode::Full => Plan {
                reps: 5,
                verify: false,
                checks: Vec::new(),
                paired: (1000, 600),
                single: 20_000,
                rt: vec![
                    rt(1024, Ring, 1000, 300),
                    rt(64 << 10, Ring, 20, 300),
                    rt(8, Pipe, 10, 200),
                    rt(8, UnixSocket, 10, 200),
                    rt(1024, Pipe, 10, 200),
                    rt(1024, UnixSocket, 10, 200),
                    rt(64 << 10, Pipe, 5, 200),
                    rt(64 << 10, UnixSocket, 5, 200),
                ],
                tp: vec![
                    tp(8, Ring, 50_000_000),
                    tp(8, RingBatched, 100_000_000),
                    tp(8, Pipe, 500_000),
                    tp(8, UnixSocket, 500_000),
                    tp(1024, Ring, 2_000_000),
                    tp(1024, Pipe, 300_000),
                    tp(1024, UnixSocket, 300_000),
                    tp(64 << 10, Ring, 50_000),
                    tp(64 << 10, CopyStream, 50_000),
                    tp(64 << 10, Pipe, 10_000),
                    tp(64 << 10, UnixSocket, 10_000),
                ],
            },
            Mode::Quick => Plan {
                reps: 3,
                verify: false,
                checks: vec![
                    stream("8 B messages", PayloadGen::fixed(1, 8), 2_000_000, ring(8)),
                    stream(
                        "1 KiB messages",
                        PayloadGen::fixed(2, 1024),
                        200_000,
                        ring(1024),
                    ),
                    stream(
                        "0..=4 KiB random lengths, 64 KiB ring (wraps)",
                        PayloadGen::random(3, 4096),
                        100_000,
                        RingGeometry {
                            capacity: 64 << 10,
                            max_message: 4096,
                        },
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
                paired: (1000, 100),
                single: 0,
                rt: vec![
                    rt(1024, Ring, 1000, 100),
                    rt(8, Pipe, 10, 70),
                    rt(8, UnixSocket, 10, 70),
                    rt(1024, Pipe, 10, 70),
                    rt(1024, UnixSocket, 10, 70),
                ],
                tp: vec![
                    tp(8, Ring, 20_000_000),
                    tp(8, RingBatched, 40_000_000),
                    tp(8, Pipe, 300_000),
                    tp(8, UnixSocket, 300_000),
                    tp(1024, Ring, 1_000_000),
                    tp(1024, Pipe, 200_000),
                    tp(1024, UnixSocket, 200_000),
                ],
            },
            Mode::Smoke => {
                let small = RingGeometry {
                    capacity: 16 << 10,
                    max_message: 4096,
                };
                Plan {
                    reps: 1,
                    verify: true,
                    checks: vec![
                        stream("8 B messages", PayloadGen::fixed(11, 8), 50_000, ring(8)),
                        stream(
                            "0..=4 KiB random lengths, 16 KiB ring (wraps)",
                            PayloadGen::random(12, 4096),
                            20_000,
                            small,
                        ),
                        stream(
                            "0..=2000 B random lengths, 16 KiB ring (wraps)",
                            PayloadGen::random(13, 2000),
                            20_000,
                            small,
                        ),
                        stream(
                            "64 KiB messages",
                            PayloadGen::fixed(14, 64 << 10),
                            300,
                            ring(64 << 10),
                        ),
                    ],
                    paired: (100, 20),
                    single: 200,
                    rt: vec![
                        rt(1024, Ring, 100, 10),
                        rt(64 << 10, Ring, 10, 10),
                        rt(8, Pipe, 10, 10),
                        rt(8, UnixSocket, 10, 10),
                        rt(1024, Pipe, 10, 10),
                        rt(1024, UnixSocket, 10, 10),
                        rt(64 << 10, Pipe, 5, 4),
                        rt(64 << 10, UnixSocket, 5, 4),
                    ],
                    tp: vec![
                        tp(8, Ring, 100_000),
                        tp(8, RingBatched, 100_000),
                        tp(8, Pipe, 10_000),
                        tp(8, UnixSocket, 10_000),
                        tp(1024, Ring, 20_000),
                        tp(1024, Pipe, 5_000),
                        tp(1024, UnixSocket, 5_000),
                        tp(64 << 10, Ring, 500),
                        tp(64 << 10, CopyStream, 500),
                        tp(64 << 10, Pipe, 200),
                        tp(64 << 10, UnixSocket, 200),
                    ],
                }
            }
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
