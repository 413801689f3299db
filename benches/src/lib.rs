//! The cross-process benchmark suite behind `cargo bench -p ipc-benches`.
//!
//! It measures, with two processes pinned to two cores
//! ([`ipc_examples::measure`] does the work):
//!
//! - round-trip latency of 8 B, 1 KiB and 64 KiB messages over the SPSC
//!   ring, a pipe and a Unix stream socket, and the floor (a counter bounced
//!   through two cache lines). The 8 B ring and the floor are measured
//!   *paired*: the same processes alternate a floor batch and a ring batch,
//!   because this VM's cross-core latency changes severalfold for seconds at
//!   a time;
//! - one-way throughput of 8 B (per-message `try_send` and batched
//!   `batch()` + `drain`), 1 KiB and 64 KiB messages over the ring, a pipe
//!   and a Unix socket, and at 64 KiB the raw two-counter copy stream;
//!
//! in several repetitions that interleave the transports, and reports
//! medians and spread, and the project's targets ([`Report::targets`]).
//!
//! [`Mode::Smoke`] runs a tiny version with every byte verified, so the
//! benchmark is exercised by `cargo test --benches` and never rots.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use ipc_examples::measure::{
    self, format_mb_per_sec, format_ns, format_rate, format_ratio, format_size, Machine,
    RingGeometry, RoundTrip, Stream, Summary, Table, Throughput, Transport,
};
use ipc_tests::payload::PayloadGen;

/// How much to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The full measurement (`cargo bench`): a minute or so.
    Full,
    /// A second or two, every byte verified (`cargo test --benches`).
    Smoke,
}

/// Round-trip samples of one transport and size, pooled over repetitions.
#[derive(Clone, Debug)]
pub struct LatencyRow {
    /// Message size in bytes.
    pub size: usize,
    /// What carried the messages (a [`Transport::name`], or a variant).
    pub transport: String,
    /// Round trips per timed batch.
    pub batch: usize,
    /// Per-round-trip time of each batch, in ns.
    pub samples: Vec<f64>,
}

/// Throughput runs of one transport and size.
#[derive(Clone, Debug)]
pub struct ThroughputRow {
    /// Message size in bytes.
    pub size: usize,
    /// What carried the messages.
    pub transport: Transport,
    /// One result per repetition.
    pub runs: Vec<Throughput>,
}

impl ThroughputRow {
    /// Median messages per second over the runs.
    pub fn msgs_per_sec(&self) -> f64 {
        median(self.runs.iter().map(Throughput::msgs_per_sec))
    }

    /// Median bytes per second over the runs.
    pub fn bytes_per_sec(&self) -> f64 {
        median(self.runs.iter().map(Throughput::bytes_per_sec))
    }
}

/// One of the project's targets, evaluated.
#[derive(Clone, Debug)]
pub struct Target {
    /// What is measured.
    pub name: String,
    /// The measured value.
    pub value: String,
    /// The goal.
    pub goal: String,
    /// Whether the goal is met.
    pub met: bool,
    /// How the value was obtained.
    pub detail: String,
}

/// Everything one run of the suite measured.
#[derive(Clone, Debug)]
pub struct Report {
    /// How much was run.
    pub mode: Mode,
    /// Where.
    pub machine: Machine,
    /// The CPUs used (parent, child), if pinned.
    pub cores: Option<(usize, usize)>,
    /// Cost of one clock read, in ns.
    pub clock_ns: f64,
    /// Repetitions.
    pub reps: usize,
    /// Round-trip results.
    pub latency: Vec<LatencyRow>,
    /// Paired 8 B samples: ring / floor per batch.
    pub paired_ratios: Vec<f64>,
    /// Throughput results.
    pub throughput: Vec<ThroughputRow>,
    /// Messages verified byte for byte in [`Mode::Smoke`].
    pub verified: u64,
    /// Wall time of the suite.
    pub elapsed: Duration,
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    measure::median(&mut v)
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

struct Plan {
    reps: usize,
    verify: bool,
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
        match mode {
            Mode::Full => Plan {
                reps: 5,
                verify: false,
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
            Mode::Smoke => Plan {
                reps: 1,
                verify: true,
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
            },
        }
    }
}

/// Runs the suite; `log` gets a line as each step starts.
///
/// The caller must be single-threaded (the workloads `fork`). The calling
/// process is pinned to the first CPU of [`measure::core_pair`].
pub fn run(mode: Mode, mut log: impl FnMut(&str)) -> Result<Report, measure::Error> {
    let started = Instant::now();
    let plan = Plan::new(mode);
    let cores = measure::core_pair().map(|p| (p.parent, p.child));
    measure::pin_parent()?;
    let clock_ns = measure::clock_cost_ns();
    let mut verified = 0;
    if mode == Mode::Smoke {
        verified += verify_streams(&mut log)?;
    }

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
        let (ring, floor) = measure::ring_and_floor_round_trip(&cfg)?;
        verified += if cfg.verify { cfg.total() } else { 0 };
        paired_ratios.extend(ring.iter().zip(&floor).map(|(r, f)| r / f));
        add_latency(8, Transport::Floor.name(), cfg.batch, floor);
        add_latency(8, Transport::Ring.name(), cfg.batch, ring);
        if plan.single > 0 {
            (cfg.batch, cfg.samples, cfg.warmup) = (1, plan.single, 1000);
            let (ring, floor) = measure::ring_and_floor_round_trip(&cfg)?;
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
        latency,
        paired_ratios,
        throughput,
        verified,
        elapsed: started.elapsed(),
    })
}

/// Streams verified through the ring in smoke runs: fixed sizes, and random
/// lengths through a small ring so records wrap and pad.
fn verify_streams(log: &mut impl FnMut(&str)) -> Result<u64, measure::Error> {
    let small = RingGeometry {
        capacity: 16 << 10,
        max_message: 4096,
    };
    let streams = [
        (
            PayloadGen::fixed(11, 8),
            50_000,
            RingGeometry::for_message(8),
        ),
        (PayloadGen::random(12, 4096), 20_000, small),
        (PayloadGen::random(13, 2000), 20_000, small),
        (
            PayloadGen::fixed(14, 64 << 10),
            300,
            RingGeometry::for_message(64 << 10),
        ),
    ];
    let mut total = 0;
    for (gen, count, geometry) in streams {
        log(&format!(
            "verifying {count} messages of up to {} through a {} ring",
            format_size(gen.max_len()),
            format_size(geometry.capacity as usize)
        ));
        measure::ring_payload_stream(gen, count, geometry)?;
        total += count;
    }
    Ok(total)
}

impl Report {
    fn latency_row(&self, size: usize, transport: &str, batch: usize) -> Option<Summary> {
        self.latency
            .iter()
            .find(|r| r.size == size && r.transport == transport && r.batch == batch)
            .and_then(|r| Summary::of(&r.samples))
    }

    fn throughput_row(&self, size: usize, transport: Transport) -> Option<&ThroughputRow> {
        self.throughput
            .iter()
            .find(|r| r.size == size && r.transport == transport)
    }

    /// Median over repetitions of `a`'s rate / `b`'s rate in the same
    /// repetition, with the smallest and largest.
    fn paired_rate_ratio(&self, size: usize, a: Transport, b: Transport) -> Option<[f64; 3]> {
        let (a, b) = (self.throughput_row(size, a)?, self.throughput_row(size, b)?);
        let mut ratios: Vec<f64> = a
            .runs
            .iter()
            .zip(&b.runs)
            .map(|(x, y)| x.msgs_per_sec() / y.msgs_per_sec())
            .collect();
        let m = measure::median(&mut ratios);
        Some([m, *ratios.first()?, *ratios.last()?])
    }

    /// The round-trip table.
    pub fn latency_table(&self) -> Table {
        let mut t = Table::new(&[
            "size",
            "transport",
            "batch",
            "samples",
            "p50",
            "p99",
            "p99.9",
            "min",
            "max",
        ])
        .left(2);
        for row in &self.latency {
            let Some(s) = Summary::of(&row.samples) else {
                continue;
            };
            t.row([
                format_size(row.size),
                row.transport.clone(),
                row.batch.to_string(),
                s.count.to_string(),
                format_ns(s.p50),
                format_ns(s.p99),
                format_ns(s.p999),
                format_ns(s.min),
                format_ns(s.max),
            ]);
        }
        t
    }

    /// The throughput table.
    pub fn throughput_table(&self) -> Table {
        let mut t = Table::new(&[
            "size",
            "transport",
            "msgs/s",
            "MB/s",
            "msgs/s min–max",
            "runs",
        ])
        .left(2);
        for row in &self.throughput {
            let rates: Vec<f64> = row.runs.iter().map(Throughput::msgs_per_sec).collect();
            let min = rates.iter().copied().fold(f64::INFINITY, f64::min);
            let max = rates.iter().copied().fold(0.0, f64::max);
            t.row([
                format_size(row.size),
                row.transport.name().to_string(),
                format_rate(row.msgs_per_sec()),
                format_mb_per_sec(row.bytes_per_sec()),
                format!("{} – {}", format_rate(min), format_rate(max)),
                row.runs.len().to_string(),
            ]);
        }
        t
    }

    /// The project's targets: (a) 8 B round trip vs the floor, (b) 8 B
    /// one-way rate and ring/pipe ratio, (c) 64 KiB ring vs raw copy stream.
    pub fn targets(&self) -> Vec<Target> {
        let mut out = Vec::new();
        let ring = self.latency_row(8, Transport::Ring.name(), self.paired_batch());
        let floor = self.latency_row(8, Transport::Floor.name(), self.paired_batch());
        if let (Some(ring), Some(floor)) = (ring, floor) {
            let ratio = ring.p50 / floor.p50;
            let mut per_batch = self.paired_ratios.clone();
            let median_pair = measure::median(&mut per_batch);
            out.push(Target {
                name: "(a) 8 B round trip p50 / two-line floor p50".into(),
                value: format_ratio(ratio),
                goal: "≤ 1.5×".into(),
                met: ratio <= 1.5,
                detail: format!(
                    "ring {} vs floor {}, paired batches; median of per-batch ratios {}",
                    format_ns(ring.p50),
                    format_ns(floor.p50),
                    format_ratio(median_pair)
                ),
            });
        }
        for (transport, label) in [
            (Transport::Ring, "per-message try_send"),
            (Transport::RingBatched, "batch() + drain"),
        ] {
            if let Some(row) = self.throughput_row(8, transport) {
                let rate = row.msgs_per_sec();
                out.push(Target {
                    name: format!("(b) 8 B one-way, {label}"),
                    value: format!("{:.1} M msgs/s", rate / 1e6),
                    goal: "≥ 50 M msgs/s".into(),
                    met: rate >= 50e6,
                    detail: format!("median of {} runs", row.runs.len()),
                });
            }
            if let Some([m, lo, hi]) = self.paired_rate_ratio(8, transport, Transport::Pipe) {
                out.push(Target {
                    name: format!("(b) 8 B one-way ring/pipe, {label}"),
                    value: format_ratio(m),
                    goal: "≥ 20×".into(),
                    met: m >= 20.0,
                    detail: format!(
                        "median of per-repetition ratios (range {} – {})",
                        format_ratio(lo),
                        format_ratio(hi)
                    ),
                });
            }
        }
        if let Some([m, lo, hi]) =
            self.paired_rate_ratio(64 << 10, Transport::Ring, Transport::CopyStream)
        {
            let (ring, raw) = (
                self.throughput_row(64 << 10, Transport::Ring),
                self.throughput_row(64 << 10, Transport::CopyStream),
            );
            out.push(Target {
                name: "(c) 64 KiB ring / raw copy stream throughput".into(),
                value: format_ratio(m),
                goal: "≥ 0.8×".into(),
                met: m >= 0.8,
                detail: format!(
                    "ring {} vs raw {}; median of per-repetition ratios (range {} – {})",
                    ring.map_or("-".into(), |r| format_mb_per_sec(r.bytes_per_sec())),
                    raw.map_or("-".into(), |r| format_mb_per_sec(r.bytes_per_sec())),
                    format_ratio(lo),
                    format_ratio(hi)
                ),
            });
        }
        out
    }

    fn paired_batch(&self) -> usize {
        self.latency
            .iter()
            .find(|r| r.size == 8 && r.transport == Transport::Floor.name() && r.batch > 1)
            .map_or(1, |r| r.batch)
    }

    /// The targets as a table.
    pub fn targets_table(&self) -> Table {
        let mut t = Table::new(&["target", "measured", "goal", "met", "how"]).left(5);
        for target in self.targets() {
            t.row([
                target.name,
                target.value,
                target.goal,
                if target.met { "yes" } else { "NO" }.to_string(),
                target.detail,
            ]);
        }
        t
    }

    fn preamble(&self) -> String {
        let mut s = format!("Machine: {}\n", self.machine);
        let _ = match self.cores {
            Some((p, c)) => writeln!(
                s,
                "Processes pinned to CPUs {p} (parent: timer, consumer) and {c} (child: producer, echo)."
            ),
            None => writeln!(s, "Processes not pinned (fewer than 2 CPUs)."),
        };
        let _ = writeln!(
            s,
            "{} repetition(s), transports interleaved; clock read costs {}; suite took {:.0} s.",
            self.reps,
            format_ns(self.clock_ns),
            self.elapsed.as_secs_f64()
        );
        s
    }

    const LATENCY_NOTE: &'static str = "Round trip: ping-pong of same-size messages. Each sample \
        is one timed batch of round trips divided by the batch size (batch 1 rows are single \
        round trips, clock cost included). The 8 B ring and floor rows are paired: the same \
        two processes alternate a floor batch and a ring batch.";

    const THROUGHPUT_NOTE: &'static str = "One-way: the child sends, the parent receives; \
        from the start signal to the last byte. Ring: `try_send` + `recv_into` (one copy in, \
        one copy out), batched: `batch()` of 256 + `drain`. Pipe and socket: one `write` per \
        message, 256 KiB reads. Raw copy stream: memcpy into a slot, bump a counter; memcpy \
        out, bump the other. Median of the runs.";

    /// The whole report as plain text.
    pub fn text(&self) -> String {
        let mut s = self.preamble();
        let _ = writeln!(s, "\nRound-trip latency\n{}", self.latency_table().text());
        let _ = writeln!(s, "One-way throughput\n{}", self.throughput_table().text());
        if self.mode == Mode::Full {
            let _ = writeln!(s, "Targets\n{}", self.targets_table().text());
        } else {
            let _ = writeln!(
                s,
                "Smoke run: {} messages verified byte for byte; the numbers above are not \
                 measurements.",
                self.verified
            );
        }
        s
    }

    /// The whole report as Markdown, for the README.
    pub fn markdown(&self) -> String {
        let mut s = String::from("## Benchmark results\n\n");
        for line in self.preamble().lines() {
            let _ = writeln!(s, "{line}  ");
        }
        let _ = writeln!(
            s,
            "\n### Round-trip latency\n\n{}\n\n{}",
            Self::LATENCY_NOTE,
            self.latency_table().markdown()
        );
        let _ = writeln!(
            s,
            "### One-way throughput\n\n{}\n\n{}",
            Self::THROUGHPUT_NOTE,
            self.throughput_table().markdown()
        );
        if self.mode == Mode::Full {
            let _ = writeln!(s, "### Targets\n\n{}", self.targets_table().markdown());
        }
        s
    }
}
