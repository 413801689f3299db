//! The results of a run: tables of latency, throughput and verified runs,
//! the project's targets, and the whole report as text or Markdown.

use std::fmt::Write as _;
use std::time::Duration;

use crate::process::Machine;
use crate::stats::{median, median_of, Histogram, Summary, Throughput};
use crate::table::{format_mb_per_sec, format_ns, format_rate, format_ratio, format_size, Table};
use crate::transport::channel::{Calls, Codec};
use crate::typed::SIZE as TYPED;
use crate::{team, Mode, Transport};

/// Round trips of one transport and size, pooled over repetitions
/// ([`crate::paired`] says how each is timed).
#[derive(Clone, Debug)]
pub struct LatencyRow {
    /// Message size in bytes.
    pub size: usize,
    /// What carried the messages (a [`Transport::name`], or a variant).
    pub transport: String,
    /// Round trips per timed batch.
    pub batch: usize,
    /// Every round trip timed one by one, in ns, one clock read included.
    pub trips: Histogram,
    /// The mean round trip of each batch timed as a whole, in ns (with
    /// batches of one: each single round trip).
    pub batch_means: Vec<f64>,
}

/// Throughput runs of one transport, size and number of producers and
/// consumers.
#[derive(Clone, Debug)]
pub struct ThroughputRow {
    /// Message size in bytes.
    pub size: usize,
    /// What carried the messages.
    pub transport: Transport,
    /// Producers.
    pub producers: usize,
    /// Consumers.
    pub consumers: usize,
    /// One result per repetition (for paired bursts: the repetition's
    /// bursts added up).
    pub runs: Vec<Throughput>,
    /// For rows measured in paired bursts ([`crate::bursts`]): the group
    /// (rows of one group were paired), and per repetition each burst's
    /// msgs/s, in the order run.
    pub bursts: Option<(usize, Vec<Vec<f64>>)>,
}

impl ThroughputRow {
    /// Whether this row belongs to the fan-in table (the transports made
    /// for several producers and consumers).
    pub(crate) fn is_fan_in(&self) -> bool {
        matches!(
            self.transport,
            Transport::Mpmc | Transport::ArrayQueue | Transport::UnixDatagram
        )
    }

    /// Wait-path system calls per million messages, over all runs; `None`
    /// where they were not counted.
    pub fn syscalls_per_million(&self) -> Option<f64> {
        let calls: Option<u64> = self.runs.iter().map(|r| r.wait_syscalls).sum();
        let messages: u64 = self.runs.iter().map(|r| r.messages).sum();
        calls.map(|c| c as f64 * 1e6 / messages.max(1) as f64)
    }

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
    /// Whether the goal is met; `None` for a comparison listed with no
    /// goal.
    pub met: Option<bool>,
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
    /// Laps timing nothing, in ns: the cost of the clock read included in
    /// every single round trip's time, measured between the round trips.
    pub clock: Histogram,
    /// Repetitions.
    pub reps: usize,
    /// What was verified byte for byte before the measurements.
    pub checks: Vec<VerifiedRun>,
    /// Round-trip results; rows measured paired (the same size and batch)
    /// hold their samples in the same order.
    pub latency: Vec<LatencyRow>,
    /// Throughput results.
    pub throughput: Vec<ThroughputRow>,
    /// Messages verified byte for byte, in the checks and (in
    /// [`Mode::Smoke`]) in the measurements.
    pub verified: u64,
    /// Wall time of the suite.
    pub elapsed: Duration,
}

impl Report {
    fn latency_row(&self, size: usize, transport: Transport, batch: usize) -> Option<&LatencyRow> {
        self.latency
            .iter()
            .find(|r| r.size == size && r.transport == transport.name() && r.batch == batch)
    }

    /// The clock read's p50 (ns), subtracted from single round trips in
    /// the targets; 0 when none was measured.
    fn clock_p50(&self) -> f64 {
        Summary::of_histogram(&self.clock).map_or(0.0, |s| s.p50)
    }

    /// Two transports measured paired at `size` with `batch`: their single
    /// round trips' percentiles, less the clock read's p50, and the median
    /// of the per-pair ratios of their batch means.
    fn paired_latency(
        &self,
        size: usize,
        batch: usize,
        a: Transport,
        b: Transport,
    ) -> Option<PairedLatency> {
        let (ra, rb) = (
            self.latency_row(size, a, batch)?,
            self.latency_row(size, b, batch)?,
        );
        let mut pairs: Vec<f64> = ra
            .batch_means
            .iter()
            .zip(&rb.batch_means)
            .map(|(x, y)| x / y)
            .collect();
        Some(PairedLatency {
            a: Summary::of_histogram(&ra.trips)?,
            b: Summary::of_histogram(&rb.trips)?,
            clock: self.clock_p50(),
            means: (batch > 1).then(|| {
                (
                    median_of(ra.batch_means.iter().copied()),
                    median_of(rb.batch_means.iter().copied()),
                )
            }),
            per_pair: median(&mut pairs),
        })
    }

    fn throughput_row(
        &self,
        size: usize,
        transport: Transport,
        fan: (usize, usize),
    ) -> Option<&ThroughputRow> {
        self.throughput.iter().find(|r| {
            r.size == size && r.transport == transport && (r.producers, r.consumers) == fan
        })
    }

    /// `a`'s rate over `b`'s, per repetition: for rows measured in the
    /// same paired bursts, the median of the ratios of their bursts of one
    /// round; else the ratio of their runs. The median over repetitions,
    /// with the smallest and largest, and how it was paired.
    fn paired_rate_ratio(
        &self,
        size: usize,
        fan: (usize, usize),
        a: Transport,
        b: Transport,
    ) -> Option<([f64; 3], &'static str)> {
        let (a, b) = (
            self.throughput_row(size, a, fan)?,
            self.throughput_row(size, b, fan)?,
        );
        let (mut ratios, how): (Vec<f64>, _) = match (&a.bursts, &b.bursts) {
            (Some((ga, ra)), Some((gb, rb))) if ga == gb => (
                ra.iter()
                    .zip(rb)
                    .map(|(x, y)| median_of(x.iter().zip(y).map(|(x, y)| x / y)))
                    .collect(),
                "paired bursts: median over repetitions of each one's median per-round ratio",
            ),
            _ => (
                a.runs
                    .iter()
                    .zip(&b.runs)
                    .map(|(x, y)| x.msgs_per_sec() / y.msgs_per_sec())
                    .collect(),
                "median of per-repetition ratios of one run each",
            ),
        };
        let m = median(&mut ratios);
        Some(([m, *ratios.first()?, *ratios.last()?], how))
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

    /// The round-trip table: percentiles of single round trips, then the
    /// median of the batch means.
    pub fn latency_table(&self) -> Table {
        let mut t = Table::new(&[
            "size",
            "transport",
            "single RTs",
            "single RT p50",
            "single RT p99",
            "single RT p99.9",
            "single RT max",
            "batch",
            "batches",
            "batch mean p50",
        ])
        .left(2);
        for row in &self.latency {
            let Some(s) = Summary::of_histogram(&row.trips) else {
                continue;
            };
            let (batches, mean_p50) = if row.batch > 1 {
                (
                    row.batch_means.len().to_string(),
                    format_ns(median_of(row.batch_means.iter().copied())),
                )
            } else {
                ("-".into(), "-".into())
            };
            t.row([
                format_size(row.size),
                row.transport.clone(),
                s.count.to_string(),
                format_ns(s.p50),
                format_ns(s.p99),
                format_ns(s.p999),
                format_ns(s.max),
                row.batch.to_string(),
                batches,
                mean_p50,
            ]);
        }
        t
    }

    /// The throughput table of one producer and one consumer.
    pub fn throughput_table(&self) -> Table {
        let mut t = Table::new(&[
            "size",
            "transport",
            "msgs/s",
            "MB/s",
            "msgs/s min–max",
            "runs",
            "wait syscalls / M msgs",
        ])
        .left(2);
        for row in self.throughput.iter().filter(|r| !r.is_fan_in()) {
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
                format_syscalls(row.syscalls_per_million()),
            ]);
        }
        t
    }

    /// The table of several producers and consumers: per size and
    /// topology, the MPMC queue beside `ArrayQueue` and the datagram socket.
    pub fn fan_in_table(&self) -> Table {
        let mut t = Table::new(&[
            "size",
            "P×C",
            "mpmc queue",
            "ArrayQueue (threads)",
            "unix datagram",
            "mpmc / ArrayQueue",
            "mpmc wait syscalls / M msgs",
        ])
        .left(2);
        let mut seen = Vec::new();
        for row in self.throughput.iter().filter(|r| r.is_fan_in()) {
            let key = (row.size, (row.producers, row.consumers));
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            let (size, fan) = key;
            let rate = |transport| {
                self.throughput_row(size, transport, fan)
                    .map_or("-".into(), |r| format_rate(r.msgs_per_sec()))
            };
            let ratio = self
                .paired_rate_ratio(size, fan, Transport::Mpmc, Transport::ArrayQueue)
                .map_or("-".into(), |([m, ..], _)| format_ratio(m));
            let syscalls = self
                .throughput_row(size, Transport::Mpmc, fan)
                .and_then(ThroughputRow::syscalls_per_million);
            t.row([
                format_size(size),
                format!("{}P{}C", fan.0, fan.1),
                rate(Transport::Mpmc),
                rate(Transport::ArrayQueue),
                rate(Transport::UnixDatagram),
                ratio,
                format_syscalls(syscalls),
            ]);
        }
        t
    }

    /// The project's targets: (a) 8 B round trip vs the floor, (b) 8 B
    /// one-way rate and ring/pipe ratio, (c) 64 KiB ring vs raw copy
    /// stream; (d) the blocking round trip vs a raw futex and a pipe, (e)
    /// spin-then-park vs busy-poll round trips, (f) the default strategy's
    /// streaming vs busy-poll; (g) the MPMC queue's rate and (h) its ratio
    /// to `ArrayQueue`; the typed channels beside the byte channel at 32 B:
    /// (i) the POD and (j) the serde round trip, (k) the POD and (l) the
    /// serde one-way rate; (m) the async round trip beside the blocking
    /// ones (listed, no goal); (n) the byte and POD channels' one-way rate
    /// beside the raw SPSC ring's at 32 B. Each where the run measured it.
    pub fn targets(&self) -> Vec<Target> {
        let mut out = Vec::new();
        let paired_batch = self.paired_batch();
        if let Some(p) = self.paired_latency(8, paired_batch, Transport::Ring, Transport::Floor) {
            out.push(p.target(
                "(a) 8 B round trip p50 / two-line floor p50",
                "ring",
                "floor",
                1.5,
                "paired batches",
            ));
            out.push(p.tail_target(
                "(a) 8 B round trip p99.9 / two-line floor p99.9",
                "ring",
                "floor",
                2.0,
                "paired batches",
            ));
        }
        for (transport, label) in [
            (Transport::Ring, "per-message try_send"),
            (Transport::RingBatched, "batch() + drain"),
        ] {
            if let Some(row) = self.throughput_row(8, transport, (1, 1)) {
                out.push(rate_target(format!("(b) 8 B one-way, {label}"), row, 50e6));
            }
            if let Some(r) = self.paired_rate_ratio(8, (1, 1), transport, Transport::Pipe) {
                out.push(ratio_target(
                    format!("(b) 8 B one-way ring/pipe, {label}"),
                    r,
                    20.0,
                    String::new(),
                ));
            }
        }
        if let Some(r) =
            self.paired_rate_ratio(64 << 10, (1, 1), Transport::Ring, Transport::CopyStream)
        {
            let mb = |t| {
                self.throughput_row(64 << 10, t, (1, 1))
                    .map_or("-".into(), |r| format_mb_per_sec(r.bytes_per_sec()))
            };
            out.push(ratio_target(
                "(c) 64 KiB ring / raw copy stream throughput".into(),
                r,
                0.8,
                format!(
                    "ring {} vs raw {}; ",
                    mb(Transport::Ring),
                    mb(Transport::CopyStream)
                ),
            ));
        }
        for (b, name, goal) in [
            (Transport::Futex, "raw futex", 1.1),
            (Transport::Pipe, "pipe", 1.0),
        ] {
            if let Some(p) = self.paired_latency(8, 1, Transport::RingPark, b) {
                out.push(p.target(
                    &format!("(d) 8 B blocking round trip (park) p50 / {name} p50"),
                    "park",
                    name,
                    goal,
                    "paired, one round trip a sample",
                ));
            }
        }
        if let Some(p) = self.paired_latency(
            8,
            paired_batch,
            Transport::RingSpinThenPark,
            Transport::RingBusyPoll,
        ) {
            out.push(p.target(
                "(e) 8 B round trip, spin-then-park p50 / busy-poll p50",
                "spin-then-park",
                "busy-poll",
                1.2,
                "continuous ping-pong, paired batches",
            ));
        }
        if let Some(r) = self.paired_rate_ratio(
            8,
            (1, 1),
            Transport::RingSpinThenPark,
            Transport::RingBusyPoll,
        ) {
            let calls = |t| {
                format_syscalls(
                    self.throughput_row(8, t, (1, 1))
                        .and_then(ThroughputRow::syscalls_per_million),
                )
            };
            out.push(ratio_target(
                "(f) 8 B stream, default strategy / busy-poll".into(),
                r,
                0.9,
                format!(
                    "wait syscalls per M msgs {} vs {}; ",
                    calls(Transport::RingSpinThenPark),
                    calls(Transport::RingBusyPoll)
                ),
            ));
        }
        if let Some(row) = self.throughput_row(8, Transport::Mpmc, (1, 1)) {
            out.push(rate_target("(g) 8 B MPMC 1P1C one-way".into(), row, 20e6));
        }
        for (size, fan) in [(8, (1, 1)), (1024, (1, 1)), (8, (2, 2)), (1024, (2, 2))] {
            if let Some(r) =
                self.paired_rate_ratio(size, fan, Transport::Mpmc, Transport::ArrayQueue)
            {
                out.push(ratio_target(
                    format!(
                        "(h) {} MPMC / ArrayQueue {}P{}C",
                        format_size(size),
                        fan.0,
                        fan.1
                    ),
                    r,
                    0.8,
                    String::new(),
                ));
            }
        }
        out.extend(self.channel_targets());
        out
    }

    /// Targets (i) to (n): the typed channels beside the byte channel and
    /// the raw ring.
    fn channel_targets(&self) -> Vec<Target> {
        let mut out = Vec::new();
        let channel = |codec| Transport::Channel(codec, Calls::Try);
        let bytes = channel(Codec::Bytes);
        let batch = self.batch_of(TYPED, bytes);
        let raw_ring = self
            .latency_row(TYPED, Transport::Ring, batch)
            .and_then(|r| Summary::of_histogram(&r.trips))
            .map_or("-".into(), |s| format_ns(s.p50));
        let how = format!(
            "Channel::bytes(), try_send of 32 B + try_recv_into (raw SPSC ring p50 {raw_ring} \
             with the clock), paired batches"
        );
        for (label, short, codec, goal) in [
            ("(i) 32 B POD", "pod", Codec::Pod, 1.1),
            ("(j) serde small-struct", "serde", Codec::Serde, 1.5),
        ] {
            if let Some(p) = self.paired_latency(TYPED, batch, channel(codec), bytes) {
                out.push(p.target(
                    &format!("{label} round trip p50 / byte channel p50"),
                    short,
                    "byte channel",
                    goal,
                    &how,
                ));
            }
        }
        let rate = |codec| {
            self.throughput_row(TYPED, channel(codec), (1, 1))
                .map_or("-".into(), |r| format_rate(r.msgs_per_sec()))
        };
        for (label, codec, goal) in [
            ("(k) 32 B POD", Codec::Pod, Some(1.0 / 1.1)),
            ("(l) serde small-struct", Codec::Serde, None),
        ] {
            if let Some(r) = self.paired_rate_ratio(TYPED, (1, 1), channel(codec), bytes) {
                let detail = format!(
                    "msgs/s, try_send + try_recv(_into): {} vs byte channel {}; ",
                    rate(codec),
                    rate(Codec::Bytes)
                );
                let name = format!("{label} one-way msgs/s / byte channel msgs/s");
                out.push(match goal {
                    Some(goal) => ratio_target(name, r, goal, detail),
                    None => ratio_listed(name, r, detail),
                });
            }
        }
        let ring_rate = self
            .throughput_row(TYPED, Transport::Ring, (1, 1))
            .map_or("-".into(), |r| format_rate(r.msgs_per_sec()));
        for (label, codec) in [("bytes", Codec::Bytes), ("pod", Codec::Pod)] {
            if let Some(r) = self.paired_rate_ratio(TYPED, (1, 1), channel(codec), Transport::Ring)
            {
                out.push(ratio_target(
                    format!("(n) 32 B channel {label} one-way msgs/s / raw SPSC ring msgs/s"),
                    r,
                    0.9,
                    format!(
                        "try_send + try_recv(_into) vs the ring's try_send + try_recv_into: \
                         {} vs {ring_rate}; ",
                        rate(codec)
                    ),
                ));
            }
        }
        let pod = |calls| Transport::Channel(Codec::Pod, calls);
        for (calls, name) in [
            (Calls::Park, "park"),
            (Calls::SpinThenPark, "spin-then-park"),
        ] {
            if let Some(p) = self.paired_latency(TYPED, 1, pod(Calls::Async), pod(calls)) {
                out.push(p.listed(
                    &format!("(m) 32 B POD async round trip p50 / blocking {name} p50"),
                    "async",
                    name,
                    "send_async + recv_async on a one-thread tokio runtime each side vs \
                     send_deadline + recv_deadline, paired, one round trip a sample",
                ));
            }
        }
        out
    }

    /// The batch of `transport`'s batched round trips at `size` (1 if it
    /// has none).
    fn batch_of(&self, size: usize, transport: Transport) -> usize {
        self.latency
            .iter()
            .find(|r| r.size == size && r.transport == transport.name() && r.batch > 1)
            .map_or(1, |r| r.batch)
    }

    /// The batch of the paired 8 B spinning round trips.
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
                match target.met {
                    Some(true) => "yes",
                    Some(false) => "NO",
                    None => "-",
                }
                .to_string(),
                target.detail,
            ]);
        }
        t
    }

    fn preamble(&self) -> String {
        let command = match self.mode {
            Mode::Full => "cargo bench -p ipc-benches",
            Mode::Quick => "cargo run --release -p ipc-examples --bin demo",
            Mode::Smoke => "cargo test -p ipc-benches --benches",
        };
        let mut s = format!("Command: `{command}`\nMachine: {}\n", self.machine);
        let _ = match self.cores {
            Some((p, c)) => writeln!(
                s,
                "Processes pinned to CPUs {p} (parent: timer, consumer) and {c} (child: producer, echo)."
            ),
            None => writeln!(s, "Processes not pinned (fewer than 2 CPUs)."),
        };
        if self.cores.is_some() && self.throughput.iter().any(ThroughputRow::is_fan_in) {
            let _ = writeln!(
                s,
                "Several producers and consumers: {} (ArrayQueue: threads pinned alike).",
                team::PINNING
            );
        }
        let clock = Summary::of_histogram(&self.clock).map_or("not measured".into(), |c| {
            format!(
                "p50 {}, p99 {}, p99.9 {} ({} laps timing nothing, between the round trips)",
                format_ns(c.p50),
                format_ns(c.p99),
                format_ns(c.p999),
                c.count
            )
        });
        let _ = writeln!(
            s,
            "{} repetition(s), transports interleaved; suite took {:.0} s.\n\
             Clock read included in each single round trip: {clock}.",
            self.reps,
            self.elapsed.as_secs_f64()
        );
        s
    }

    const LATENCY_NOTE: &'static str = "Round trip: ping-pong of same-size messages. Rows of the \
        same size and batch are paired: the same two processes alternate a batch of each. \
        Batches are timed in two ways, in turn. One by one: the clock is read after every round \
        trip and each round trip's time is recorded in an HDR histogram (3 significant digits); \
        \"single RTs\" counts them, the \"single RT\" p50, p99, p99.9 and max are of them, and \
        each includes one clock read (its cost, timed the same way with nothing between the \
        reads, is in the report's heading; not subtracted here). The first round trip of each \
        batch, which follows the other transports' batches, is left out when the batch has more \
        than one. As a whole: the batch's time divided by its size; \"batch mean p50\" is the \
        median of these means (the clock's cost spread over the batch), not a percentile of \
        round trips. Targets compare single round trips with the clock read's p50 subtracted (at \
        least 0). Ring and mpmc queue: `try_send` + `try_recv_into` with the benchmark's spin; \
        \"blocking\": `send_deadline` + `recv_into_deadline` with that wait strategy. Raw futex: \
        FUTEX_WAIT/FUTEX_WAKE on one shared word, each side asleep while it waits. Channel rows \
        (32 B; the ring row beside them is the raw SPSC ring): the typed channels, an SPSC ring \
        of 1 MiB each way, `try_send` + `try_recv` with the benchmark's spin. Bytes: \
        `Channel::bytes()`, 32 bytes sent from an array and copied out into one \
        (`try_recv_into`). POD: `Channel::pod` of a 32-byte `#[repr(C)]` struct, copied in and \
        out. Serde: `Channel::serde` of a struct of the same fields with a `String` symbol and \
        an enum side, 16–20 bytes with bincode; the sender builds each value (allocating its \
        symbol), the receiver decodes it (allocating it again). Every value is checked in full. \
        \"blocking\": `send_deadline` + `recv_deadline` with that strategy; \"async\": \
        `send_async` + `recv_async` on a one-thread tokio runtime in each process, whose waits \
        go to tokio's blocking pool.";

    const THROUGHPUT_NOTE: &'static str = "One-way: the child sends, the parent receives; from \
        the start signal to the last byte. Paired bursts (32 B: the ring and the channels; 64 \
        KiB: the ring and the raw copy stream): the same two processes run a short burst of each \
        transport in turn, round after round (order reversed every other round), each burst \
        timed from the parent's go (the child spinning on it) to its last message received, the \
        ring empty at each start; a row's msgs/s adds up the bursts of a repetition, and a ratio \
        between two such rows is, per repetition, the median of the ratios of their bursts of \
        one round. Other rows: one run per repetition. Ring: `try_send` + `recv_into` (one copy \
        in, one copy out), batched: `batch()` of 256 + `drain`. Pipe and socket: one `write` per \
        message, 256 KiB reads. Raw copy stream: memcpy into a slot, bump a counter; memcpy out, \
        bump the other. \"blocking\": `send_deadline` + `recv_into_deadline` with that wait \
        strategy (spin-then-park is the default). Wait syscalls: futex waits and wakes and \
        barriers of both processes (`ipc_core::wait::syscalls`). Channel rows (32 B): the typed \
        channels' `try_send` + `try_recv` (see the round trips), every value checked; MB/s \
        counts the bytes in the ring (serde: encoded). msgs/s and MB/s: median of the \
        repetitions; min–max: of the repetitions.";

    const FAN_IN_NOTE: &'static str = "One-way, P producers to C consumers, msgs/s (median of \
        the runs), from the go to the last consumer's finish. Each consumer checks every \
        producer's order, and together they must hold every message exactly once. MPMC queue: \
        one process per producer and consumer, `try_send` + `try_recv_into` (a copy in and a \
        copy out). ArrayQueue: crossbeam's, threads of one process, `push` + `pop` of an \
        N-byte array (a copy in and a copy out). Both wait with the library's backoff when \
        full or empty (a few spins, then yields). Unix datagram: one socket pair, every \
        producer sending on one end, every consumer receiving from the other, blocking. \
        mpmc / ArrayQueue: median of per-repetition ratios.";

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
        if self.throughput.iter().any(ThroughputRow::is_fan_in) {
            let _ = writeln!(
                s,
                "Several producers and consumers (msgs/s)\n{}",
                self.fan_in_table().text()
            );
        }
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
        if self.throughput.iter().any(ThroughputRow::is_fan_in) {
            let _ = writeln!(
                s,
                "### Several producers and consumers\n\n{}\n\n{}",
                Self::FAN_IN_NOTE,
                self.fan_in_table().markdown()
            );
        }
        if self.mode != Mode::Smoke {
            let _ = writeln!(s, "### Targets\n\n{}", self.targets_table().markdown());
        }
        s
    }
}

/// Two paired round-trip rows compared.
struct PairedLatency {
    /// `a`'s single round trips.
    a: Summary,
    /// `b`'s single round trips.
    b: Summary,
    /// The clock read's p50, subtracted from both.
    clock: f64,
    /// Median batch means of `a` and `b`, for batches of more than one.
    means: Option<(f64, f64)>,
    /// Median of the per-pair ratios of batch means.
    per_pair: f64,
}

impl PairedLatency {
    /// `x` less the clock read, at least 0.
    fn net(&self, x: f64) -> f64 {
        (x - self.clock).max(0.0)
    }

    /// The p50s' ratio, each less the clock read.
    fn ratio(&self) -> f64 {
        self.net(self.a.p50) / self.net(self.b.p50)
    }

    fn target(&self, name: &str, a: &str, b: &str, at_most: f64, how: &str) -> Target {
        let ratio = self.ratio();
        Target {
            name: name.into(),
            value: format_ratio(ratio),
            goal: format!("≤ {}", format_ratio(at_most)),
            met: Some(ratio <= at_most),
            detail: self.detail(a, b, how, |s| s.p50, "p50"),
        }
    }

    /// The same for the p99.9s.
    fn tail_target(&self, name: &str, a: &str, b: &str, at_most: f64, how: &str) -> Target {
        let ratio = self.net(self.a.p999) / self.net(self.b.p999);
        Target {
            name: name.into(),
            value: format_ratio(ratio),
            goal: format!("≤ {}", format_ratio(at_most)),
            met: Some(ratio <= at_most),
            detail: self.detail(a, b, how, |s| s.p999, "p99.9"),
        }
    }

    /// The comparison listed, with no goal.
    fn listed(&self, name: &str, a: &str, b: &str, how: &str) -> Target {
        Target {
            name: name.into(),
            value: format_ratio(self.ratio()),
            goal: LISTED.into(),
            met: None,
            detail: self.detail(a, b, how, |s| s.p50, "p50"),
        }
    }

    fn detail(&self, a: &str, b: &str, how: &str, at: fn(&Summary) -> f64, pct: &str) -> String {
        let (x, y) = (at(&self.a), at(&self.b));
        let mut s = format!(
            "single round trips' {pct} less the clock read's p50 ({}): {a} {} vs {b} {} \
             (with the clock {} vs {}), {how}",
            format_ns(self.clock),
            format_ns(self.net(x)),
            format_ns(self.net(y)),
            format_ns(x),
            format_ns(y),
        );
        match self.means {
            Some((ma, mb)) => {
                let _ = write!(
                    s,
                    "; batch means p50 {} vs {}, median of per-pair ratios {}",
                    format_ns(ma),
                    format_ns(mb),
                    format_ratio(self.per_pair)
                );
            }
            None => {
                let _ = write!(
                    s,
                    "; median of per-pair ratios {}",
                    format_ratio(self.per_pair)
                );
            }
        }
        s
    }
}

/// The goal column of a comparison listed with no goal.
const LISTED: &str = "none (listed)";

/// A rate target: the row's median rate at least `at_least` msgs/s.
fn rate_target(name: String, row: &ThroughputRow, at_least: f64) -> Target {
    let rate = row.msgs_per_sec();
    Target {
        name,
        value: format!("{:.1} M msgs/s", rate / 1e6),
        goal: format!("≥ {:.0} M msgs/s", at_least / 1e6),
        met: Some(rate >= at_least),
        detail: format!("median of {} runs", row.runs.len()),
    }
}

/// A throughput ratio target: the median per-repetition ratio at least
/// `at_least`; `detail` goes before how it was paired and the range.
fn ratio_target(name: String, ratios: ([f64; 3], &str), at_least: f64, detail: String) -> Target {
    Target {
        goal: format!("≥ {}", format_ratio(at_least)),
        met: Some(ratios.0[0] >= at_least),
        ..ratio_listed(name, ratios, detail)
    }
}

/// A throughput ratio listed with no goal; as [`ratio_target`].
fn ratio_listed(name: String, ([m, lo, hi], how): ([f64; 3], &str), detail: String) -> Target {
    Target {
        name,
        value: format_ratio(m),
        goal: LISTED.into(),
        met: None,
        detail: format!(
            "{detail}{how} (repetitions' range {} – {})",
            format_ratio(lo),
            format_ratio(hi)
        ),
    }
}

/// Wait-path system calls per million messages, or `-`.
fn format_syscalls(per_million: Option<f64>) -> String {
    match per_million {
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.1}"),
        None => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::histogram;

    fn hist(values: impl IntoIterator<Item = u64>) -> Histogram {
        let mut h = histogram();
        for v in values {
            h.record(v).unwrap();
        }
        h
    }

    fn latency(transport: Transport, trips: Histogram, batch_means: Vec<f64>) -> LatencyRow {
        LatencyRow {
            size: 8,
            transport: transport.name().into(),
            batch: 1000,
            trips,
            batch_means,
        }
    }

    fn stream(transport: Transport, rates: &[Vec<f64>]) -> ThroughputRow {
        ThroughputRow {
            size: 64 << 10,
            transport,
            producers: 1,
            consumers: 1,
            // One second per repetition: msgs/s is the first burst's rate.
            runs: rates
                .iter()
                .map(|r| Throughput {
                    messages: r[0] as u64,
                    bytes: 0,
                    elapsed: Duration::from_secs(1),
                    wait_syscalls: None,
                })
                .collect(),
            bursts: Some((0, rates.to_vec())),
        }
    }

    fn report(latency: Vec<LatencyRow>, throughput: Vec<ThroughputRow>) -> Report {
        Report {
            mode: Mode::Full,
            machine: Machine {
                cpu: "test CPU".into(),
                cores: 2,
                kernel: "test".into(),
            },
            cores: Some((0, 1)),
            clock: hist([20; 100]),
            reps: 2,
            checks: Vec::new(),
            latency,
            throughput,
            verified: 0,
            elapsed: Duration::from_secs(1),
        }
    }

    #[test]
    fn percentile_columns_are_of_single_round_trips_and_means_apart() {
        let r = report(
            vec![latency(
                Transport::Ring,
                hist(1..=1000),
                vec![300.0, 310.0, 320.0],
            )],
            Vec::new(),
        );
        let text = r.latency_table().text();
        let header = text.lines().next().unwrap();
        for column in [
            "single RT p50",
            "single RT p99",
            "single RT p99.9",
            "batch mean p50",
        ] {
            assert!(header.contains(column), "{header}");
        }
        let row: Vec<&str> = text.lines().nth(2).unwrap().split("  ").collect();
        let row: Vec<&str> = row
            .into_iter()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(
            row,
            [
                "8 B", "ring", "1000", "500 ns", "990 ns", "999 ns", "1.00 µs", "1000", "3",
                "310 ns"
            ]
        );
        assert!(r.text().contains("Machine: test CPU"));
    }

    #[test]
    fn round_trip_targets_subtract_the_clock_from_single_round_trips() {
        let r = report(
            vec![
                latency(Transport::Floor, hist([100; 1000]), vec![90.0]),
                latency(Transport::Ring, hist([160; 1000]), vec![135.0]),
            ],
            Vec::new(),
        );
        let targets = r.targets();
        // (160 - 20) / (100 - 20), not 160 / 100 nor the batch means' 1.5.
        assert_eq!(targets[0].value, "1.75×");
        assert!(targets[1].name.contains("p99.9"), "{}", targets[1].name);
        assert_eq!(targets[1].value, "1.75×");
    }

    #[test]
    fn paired_bursts_give_per_repetition_medians_of_per_round_ratios() {
        let r = report(
            Vec::new(),
            vec![
                stream(Transport::Ring, &[vec![10.0, 20.0, 30.0], vec![10.0; 3]]),
                stream(Transport::CopyStream, &[vec![10.0; 3], vec![20.0; 3]]),
            ],
        );
        let ([m, lo, hi], how) = r
            .paired_rate_ratio(64 << 10, (1, 1), Transport::Ring, Transport::CopyStream)
            .unwrap();
        // Repetition 1: ratios 1, 2, 3 (median 2); repetition 2: 0.5 each.
        assert_eq!((m, lo, hi), (1.25, 0.5, 2.0));
        assert!(how.starts_with("paired bursts"), "{how}");
        // Rows not from the same bursts: the ratio of their runs.
        let mut unpaired = r.clone();
        unpaired.throughput[1].bursts = Some((1, vec![vec![10.0; 3], vec![20.0; 3]]));
        let ([m, ..], how) = unpaired
            .paired_rate_ratio(64 << 10, (1, 1), Transport::Ring, Transport::CopyStream)
            .unwrap();
        assert_eq!(m, 0.75);
        assert!(how.contains("one run each"), "{how}");
    }
}
