//! The results of a run: tables of latency, throughput and verified runs,
//! the project's targets, and the whole report as text or Markdown.

use std::fmt::Write as _;
use std::time::Duration;

use crate::process::Machine;
use crate::stats::{median, median_of, Summary, Throughput};
use crate::table::{format_mb_per_sec, format_ns, format_rate, format_ratio, format_size, Table};
use crate::{Mode, Transport};

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
        median_of(self.runs.iter().map(Throughput::msgs_per_sec))
    }

    /// Median bytes per second over the runs.
    pub fn bytes_per_sec(&self) -> f64 {
        median_of(self.runs.iter().map(Throughput::bytes_per_sec))
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

/// A run verified byte for byte before the measurements.
#[derive(Clone, Debug)]
pub struct VerifiedRun {
    /// What was sent.
    pub what: String,
    /// Messages verified.
    pub messages: u64,
    /// How fast, for one-way streams.
    pub throughput: Option<Throughput>,
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
    /// What was verified byte for byte before the measurements.
    pub checks: Vec<VerifiedRun>,
    /// Round-trip results.
    pub latency: Vec<LatencyRow>,
    /// Paired 8 B samples: ring / floor per batch.
    pub paired_ratios: Vec<f64>,
    /// Throughput results.
    pub throughput: Vec<ThroughputRow>,
    /// Messages verified byte for byte, in the checks and (in
    /// [`Mode::Smoke`]) in the measurements.
    pub verified: u64,
    /// Wall time of the suite.
    pub elapsed: Duration,
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
        let m = median(&mut ratios);
        Some([m, *ratios.first()?, *ratios.last()?])
    }

    /// The table of verified runs.
    pub fn checks_table(&self) -> Table {
        let mut t = Table::new(&["what", "messages", "msgs/s", "MB/s"]);
        for run in &self.checks {
            let rate = |f: fn(&Throughput) -> f64, format: fn(f64) -> String| {
                run.throughput.as_ref().map_or("-".into(), |t| format(f(t)))
            };
            t.row([
                run.what.clone(),
                run.messages.to_string(),
                rate(Throughput::msgs_per_sec, format_rate),
                rate(Throughput::bytes_per_sec, format_mb_per_sec),
            ]);
        }
        t
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
            let median_pair = median(&mut per_batch);
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
        if !self.checks.is_empty() {
            let _ = write!(
                s,
                "\nVerified (every byte of every message checked)\n{}",
                self.checks_table().text()
            );
        }
        let _ = writeln!(s, "\nRound-trip latency\n{}", self.latency_table().text());
        let _ = writeln!(s, "One-way throughput\n{}", self.throughput_table().text());
        match self.mode {
            Mode::Full => {
                let _ = writeln!(s, "Targets\n{}", self.targets_table().text());
            }
            Mode::Quick => {
                let _ = writeln!(s, "Targets\n{}", self.targets_table().text());
                let _ = writeln!(
                    s,
                    "A quick run: fewer and shorter repetitions than the full benchmark, \
                     `cargo bench -p ipc-benches`."
                );
            }
            Mode::Smoke => {
                let _ = writeln!(
                    s,
                    "Smoke run: {} messages verified byte for byte; the numbers above are not \
                     measurements.",
                    self.verified
                );
            }
        }
        s
    }

    /// The whole report as Markdown, for the README.
    pub fn markdown(&self) -> String {
        let mut s = String::from("## Benchmark results\n\n");
        for line in self.preamble().lines() {
            let _ = writeln!(s, "{line}  ");
        }
        if !self.checks.is_empty() {
            let _ = writeln!(
                s,
                "\n### Verified\n\nEvery byte of every message checked.\n\n{}",
                self.checks_table().markdown()
            );
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
        if self.mode != Mode::Smoke {
            let _ = writeln!(s, "### Targets\n\n{}", self.targets_table().markdown());
        }
        s
    }
}
