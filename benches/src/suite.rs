//! What each [`Mode`] runs, and [`run`], which runs it.
//!
//! Every mode measures, with processes pinned to two cores:
//!
//! - round-trip latency, transports that are compared measured *paired*
//!   ([`crate::paired`]), because this VM's cross-core latency changes
//!   severalfold for seconds at a time: at 8 B the spinning ones (the
//!   floor, the SPSC ring, the MPMC queue, the ring's blocking calls with
//!   busy-poll and with spin-then-park) in batches timed one round trip at
//!   a time and as a whole in turn, and the sleeping ones (a raw futex, the
//!   ring's blocking calls with park, a pipe, a Unix socket) one round trip
//!   a batch; larger messages over the ring, pipes
//!   and sockets; at 32 B the raw SPSC ring beside the typed channels of
//!   raw bytes, a plain-old-data struct and a small serde struct (their
//!   `try_` calls, so that only the codec differs), and the POD channel's
//!   blocking calls (spin-then-park, park) beside its async calls on a
//!   one-thread tokio runtime, one round trip a sample;
//! - one-way throughput over the SPSC ring (per-message `try_send`, batched
//!   `batch()` + `drain`, and the blocking calls with busy-poll and with
//!   the default strategy, counting their wait-path system calls), a pipe
//!   and a Unix socket; in paired short bursts ([`crate::bursts`]) the raw
//!   SPSC ring and the three typed channels at 32 B, and (not in quick
//!   runs) the ring and the raw two-counter copy stream at 64 KiB;
//! - throughput with several producers and consumers (1P1C, 2P1C, 1P2C,
//!   2P2C; the quick mode 1P1C and 2P2C at 8 B only) over the MPMC queue,
//!   crossbeam's `ArrayQueue` between threads, and a Unix datagram socket;
//!
//! in repetitions that interleave the transports. [`Mode::Smoke`] and
//! [`Mode::Quick`] first stream messages through the ring and verify every
//! byte; [`Mode::Smoke`] verifies every byte of everything after too.

use std::time::Instant;

use ipc_tests::payload::PayloadGen;

use crate::bursts::bursts;
use crate::process::{core_pair, pin_parent, Machine};
use crate::report::{LatencyRow, Report, ThroughputRow, VerifiedRun};
use crate::stats::{histogram, Histogram, Throughput};
use crate::table::format_size;
use crate::transport::channel::{Calls, Codec};
use crate::transport::ring;
use crate::typed::SIZE as TYPED;
use crate::workload::{RingGeometry, RoundTrip, Stream};
use crate::{paired, Result, Transport};

/// How much to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The full measurement (`cargo bench`): a couple of minutes.
    Full,
    /// Some seconds for the `demo`: verified streams, echoes and a 2P2C
    /// MPMC fan-in, then 8 B and 1 KiB over every transport (several
    /// producers and consumers: 1P1C and 2P2C at 8 B), three repetitions.
    Quick,
    /// A few seconds, every byte verified (`cargo test --benches`); the
    /// numbers are not measurements.
    Smoke,
}

/// One value per mode, in the order [`Mode::Full`], [`Mode::Quick`],
/// [`Mode::Smoke`].
type PerMode<T> = [T; 3];

/// Round trips per timed batch, and timed batches per repetition.
type BatchSamples = (usize, usize);

/// The spinning transports compared at 8 B.
const SPINNING: &[Transport] = {
    use Transport::*;
    &[Floor, Ring, Mpmc, RingBusyPoll, RingSpinThenPark]
};

/// The sleeping transports compared at 8 B.
const SLEEPING: &[Transport] = {
    use Transport::*;
    &[Futex, RingPark, Pipe, UnixSocket]
};

/// The typed channels beside the raw SPSC ring, their `try_` calls.
const CODECS: &[Transport] = {
    use Transport::*;
    &[
        Ring,
        Channel(Codec::Bytes, Calls::Try),
        Channel(Codec::Pod, Calls::Try),
        Channel(Codec::Serde, Calls::Try),
    ]
};

/// The POD channel's blocking calls beside its async calls.
const CHANNEL_WAITS: &[Transport] = {
    use Transport::*;
    &[
        Channel(Codec::Pod, Calls::SpinThenPark),
        Channel(Codec::Pod, Calls::Park),
        Channel(Codec::Pod, Calls::Async),
    ]
};

/// The round-trip groups: transports measured paired, size, then batch and
/// samples per mode; no samples where a mode skips the group.
const ROUND_TRIPS: [(&[Transport], usize, PerMode<BatchSamples>); 8] = {
    use Transport::*;
    [
        (SPINNING, 8, [(1000, 600), (1000, 100), (100, 20)]),
        (SLEEPING, 8, [(1, 2000), (1, 300), (1, 20)]),
        (CODECS, TYPED, [(1000, 600), (1000, 100), (100, 20)]),
        (CHANNEL_WAITS, TYPED, [(1, 2000), (1, 300), (1, 20)]),
        (&[Ring], 1024, [(1000, 300), (1000, 100), (100, 10)]),
        (&[Ring], 64 << 10, [(20, 300), (0, 0), (10, 10)]),
        (&[Pipe, UnixSocket], 1024, [(10, 200), (10, 70), (10, 10)]),
        (&[Pipe, UnixSocket], 64 << 10, [(5, 200), (0, 0), (5, 4)]),
    ]
};

/// The 32 B raw SPSC ring beside the typed channels' one-way `try_` calls.
const CHANNEL_STREAMS: &[Transport] = {
    use Transport::*;
    &[
        Ring,
        Channel(Codec::Bytes, Calls::Try),
        Channel(Codec::Pod, Calls::Try),
        Channel(Codec::Serde, Calls::Try),
    ]
};

/// Messages per burst, and rounds of bursts per repetition.
type BurstRounds = (u64, usize);

/// The one-way comparisons measured in paired bursts ([`crate::bursts`]):
/// transports, size, then messages per burst and rounds per repetition per
/// mode; no rounds where a mode skips the group. A round is some
/// milliseconds per transport (more on a slow host).
const BURSTS: [(&[Transport], usize, PerMode<BurstRounds>); 2] = {
    use Transport::*;
    [
        (
            CHANNEL_STREAMS,
            TYPED,
            [(500_000, 40), (250_000, 20), (5_000, 4)],
        ),
        (
            &[Ring, CopyStream],
            64 << 10,
            [(2000, 25), (0, 0), (100, 3)],
        ),
    ]
};

/// The one-way cases with one producer and one consumer measured alone:
/// size, transport, then messages per run per mode; 0 where a mode skips
/// the case.
const STREAMS: [(usize, Transport, PerMode<u64>); 11] = {
    use Transport::*;
    [
        (8, Ring, [50_000_000, 20_000_000, 100_000]),
        (8, RingBatched, [100_000_000, 40_000_000, 100_000]),
        (8, RingBusyPoll, [30_000_000, 10_000_000, 50_000]),
        (8, RingSpinThenPark, [30_000_000, 10_000_000, 50_000]),
        (8, Pipe, [500_000, 300_000, 10_000]),
        (8, UnixSocket, [500_000, 300_000, 10_000]),
        (1024, Ring, [2_000_000, 1_000_000, 20_000]),
        (1024, Pipe, [300_000, 200_000, 5_000]),
        (1024, UnixSocket, [300_000, 200_000, 5_000]),
        (64 << 10, Pipe, [10_000, 0, 200]),
        (64 << 10, UnixSocket, [10_000, 0, 200]),
    ]
};

/// The transports with several producers and consumers: size, transport,
/// then messages per run (all producers together) per mode.
const FAN_INS: [(usize, Transport, PerMode<u64>); 6] = {
    use Transport::*;
    [
        (8, Mpmc, [10_000_000, 4_000_000, 20_000]),
        (8, ArrayQueue, [10_000_000, 4_000_000, 20_000]),
        (8, UnixDatagram, [500_000, 200_000, 2_000]),
        (1024, Mpmc, [2_000_000, 0, 10_000]),
        (1024, ArrayQueue, [2_000_000, 0, 10_000]),
        (1024, UnixDatagram, [300_000, 0, 2_000]),
    ]
};

/// Producers and consumers of the fan-ins, and whether each mode runs them.
const TOPOLOGIES: [((usize, usize), PerMode<bool>); 4] = [
    ((1, 1), [true, true, true]),
    ((2, 1), [true, false, true]),
    ((1, 2), [true, false, true]),
    ((2, 2), [true, true, true]),
];

/// A round-trip group of one mode.
struct RtGroup {
    transports: &'static [Transport],
    size: usize,
    batch: usize,
    samples: usize,
}

/// A group of paired bursts of one mode.
struct BurstGroup {
    transports: &'static [Transport],
    size: usize,
    burst: u64,
    rounds: usize,
}

/// A throughput case of one mode.
struct TpCase {
    size: usize,
    transport: Transport,
    fan: (usize, usize),
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
    /// `count` messages of `size` bytes from `fan.0` producer processes to
    /// `fan.1` consumer processes through an MPMC queue.
    FanIn {
        size: usize,
        fan: (usize, usize),
        count: u64,
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
    /// the demo's streams, echoes and an MPMC fan-in in quick runs, and in
    /// smoke runs streams whose random lengths wrap a small ring (everything
    /// after is verified too).
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
                Check::FanIn {
                    size: 1024,
                    fan: (2, 2),
                    count: 200_000,
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
    rt: Vec<RtGroup>,
    bursts: Vec<BurstGroup>,
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
            .map(|&(transports, size, modes)| RtGroup {
                transports,
                size,
                batch: modes[column].0,
                samples: modes[column].1,
            })
            .collect();
        let bursts = BURSTS
            .iter()
            .filter(|(.., modes)| modes[column].1 > 0)
            .map(|&(transports, size, modes)| BurstGroup {
                transports,
                size,
                burst: modes[column].0,
                rounds: modes[column].1,
            })
            .collect();
        let one_to_one = STREAMS.iter().map(|&(size, transport, counts)| TpCase {
            size,
            transport,
            fan: (1, 1),
            count: counts[column],
        });
        // Sizes together, topologies together, the transports side by side.
        let mut fan_ins = Vec::new();
        for size in [8, 1024] {
            for (fan, modes) in TOPOLOGIES {
                for &(s, transport, counts) in &FAN_INS {
                    if s == size && modes[column] {
                        fan_ins.push(TpCase {
                            size,
                            transport,
                            fan,
                            count: counts[column],
                        });
                    }
                }
            }
        }
        let tp = one_to_one.chain(fan_ins).filter(|c| c.count > 0).collect();
        let (reps, verify) = match mode {
            Mode::Full => (5, false),
            Mode::Quick => (3, false),
            Mode::Smoke => (1, true),
        };
        Plan {
            reps,
            verify,
            checks: Check::plan(mode),
            rt,
            bursts,
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
    let mut clock = histogram();
    let checks = run_checks(&plan.checks, &mut log)?;
    let mut verified = checks.iter().map(|c| c.messages).sum();

    let mut latency: Vec<LatencyRow> = Vec::new();
    let mut paired_rows: Vec<ThroughputRow> = plan
        .bursts
        .iter()
        .enumerate()
        .flat_map(|(group, g)| {
            g.transports.iter().map(move |&transport| ThroughputRow {
                size: g.size,
                transport,
                producers: 1,
                consumers: 1,
                runs: Vec::new(),
                bursts: Some((group, Vec::new())),
            })
        })
        .collect();
    let mut throughput: Vec<ThroughputRow> = plan
        .tp
        .iter()
        .map(|c| ThroughputRow {
            size: c.size,
            transport: c.transport,
            producers: c.fan.0,
            consumers: c.fan.1,
            runs: Vec::new(),
            bursts: None,
        })
        .collect();

    for rep in 1..=plan.reps {
        log(&format!("repetition {rep}/{}: round trips", plan.reps));
        for group in &plan.rt {
            let mut cfg = RoundTrip::new(group.size);
            cfg.batch = group.batch;
            cfg.samples = group.samples;
            cfg.warmup = (group.samples / 20).max(2);
            cfg.verify = plan.verify;
            let legs = group
                .transports
                .iter()
                .map(|t| t.leg(&cfg))
                .collect::<Result<Vec<_>>>()?;
            let measured = paired::round_trips(legs, &cfg)?;
            add(&mut clock, &measured.clock);
            for (&transport, times) in group.transports.iter().zip(measured.legs) {
                verified += if cfg.verify { cfg.total() } else { 0 };
                match latency.iter_mut().find(|r| {
                    (r.size, r.transport.as_str(), r.batch)
                        == (group.size, transport.name(), group.batch)
                }) {
                    Some(row) => {
                        add(&mut row.trips, &times.trips);
                        row.batch_means.extend(times.batch_means);
                    }
                    None => latency.push(LatencyRow {
                        size: group.size,
                        transport: transport.name().to_string(),
                        batch: group.batch,
                        trips: times.trips,
                        batch_means: times.batch_means,
                    }),
                }
            }
        }
        log(&format!("repetition {rep}/{}: throughput", plan.reps));
        let mut rows = paired_rows.iter_mut();
        for group in &plan.bursts {
            let flows = group
                .transports
                .iter()
                .map(|t| {
                    let mut cfg = Stream::new(group.size, group.burst);
                    cfg.verify = plan.verify && *t != Transport::CopyStream;
                    t.flow(&cfg)
                })
                .collect::<Result<Vec<_>>>()?;
            let measured = bursts(flows, group.burst, group.rounds)?;
            for (flow, row) in measured.into_iter().zip(rows.by_ref()) {
                let mut run = flow.total();
                if !row.transport.is_library() {
                    run.wait_syscalls = None;
                }
                if plan.verify && row.transport != Transport::CopyStream {
                    verified += run.messages;
                }
                row.runs.push(run);
                if let Some((_, reps)) = &mut row.bursts {
                    reps.push(flow.bursts.iter().map(Throughput::msgs_per_sec).collect());
                }
            }
        }
        for (case, row) in plan.tp.iter().zip(&mut throughput) {
            let mut cfg = Stream::new(case.size, case.count).fan(case.fan.0, case.fan.1);
            cfg.verify = plan.verify && case.transport != Transport::CopyStream;
            let run = case.transport.throughput(&cfg)?;
            if cfg.verify {
                verified += run.messages;
            }
            row.runs.push(run);
        }
    }
    // Keep the sizes together in the tables, batches before single trips,
    // paired bursts before the transports measured alone.
    latency.sort_by_key(|r| (r.size, r.batch == 1));
    paired_rows.append(&mut throughput);
    let mut throughput = paired_rows;
    throughput.sort_by_key(|r| (r.is_fan_in(), r.size));
    Ok(Report {
        mode,
        machine: Machine::detect(),
        cores,
        clock,
        reps: plan.reps,
        checks,
        latency,
        throughput,
        verified,
        elapsed: started.elapsed(),
    })
}

/// Adds the values of `from` to `to` (histograms of the same bounds).
fn add(to: &mut Histogram, from: &Histogram) {
    to.add(from).expect("histograms of the same bounds");
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
            Check::FanIn { size, fan, count } => {
                let mut cfg = Stream::new(size, count).fan(fan.0, fan.1);
                cfg.verify = true;
                log(&format!(
                    "verifying {count} messages from {} to {} processes through an MPMC queue",
                    fan.0, fan.1
                ));
                VerifiedRun {
                    what: format!(
                        "{} messages, MPMC queue {}P{}C",
                        format_size(size),
                        fan.0,
                        fan.1
                    ),
                    messages: count,
                    throughput: Some(Transport::Mpmc.throughput(&cfg)?),
                }
            }
        });
    }
    Ok(runs)
}
