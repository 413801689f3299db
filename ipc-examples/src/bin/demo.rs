//! The demo: with no set-up, stream verified messages between two processes
//! through the SPSC ring, then measure it beside a pipe and a Unix socket.
//!
//! ```text
//! cargo run --release -p ipc-examples --bin demo
//! ```
//!
//! The parent creates anonymous regions, forks a peer, and the two run
//! pinned to the first two CPUs. The demo first streams self-checking
//! messages ([`PayloadGen`]) and verifies every byte; then it measures
//! one-way throughput and ping-pong round trips over the ring, a pipe and a
//! Unix stream socket with the same workload, and prints them side by side.
//! It exits non-zero if any message is lost, reordered or corrupted.

use std::process::ExitCode;
use std::time::Instant;

use ipc_examples::measure::{
    self, format_mb_per_sec, format_ns, format_rate, format_ratio, format_size, Machine,
    RingGeometry, RoundTrip, Stream, Summary, Table, Throughput, Transport,
};
use ipc_tests::payload::PayloadGen;

/// Runs of each throughput measurement; the median is shown.
const RUNS: usize = 3;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), measure::Error> {
    let started = Instant::now();
    println!("machine: {}", Machine::detect());
    match (measure::pin_parent()?, measure::core_pair()) {
        (Some(_), Some(pair)) => println!(
            "pinned:  parent (consumer, timer) on CPU {}, child (producer, echo) on CPU {}",
            pair.parent, pair.child
        ),
        _ => println!("pinned:  no (fewer than 2 CPUs); results will be poor"),
    }
    println!();

    verify_streams()?;
    let throughput = throughput_table()?;
    let (latency, floor_note) = latency_table()?;

    println!("One-way throughput (child sends, parent receives; median of {RUNS} runs)");
    println!("{}", throughput.text());
    println!("Round trip (ping-pong, same size both ways; per-round-trip time of batches)");
    println!("{}", latency.text());
    println!("{floor_note}");
    println!(
        "Round trips are timed in batches (1000 for the ring, 10 for pipe and socket); \
         percentiles are over batches."
    );
    println!();
    println!(
        "done in {:.1} s; the full benchmark is `cargo bench -p ipc-benches`",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Streams self-checking messages through the ring and verifies each byte.
fn verify_streams() -> Result<(), measure::Error> {
    println!("Verified streams (every byte of every message checked):");
    let small_ring = RingGeometry {
        capacity: 64 << 10,
        max_message: 4096,
    };
    let streams = [
        (
            "8 B messages",
            PayloadGen::fixed(1, 8),
            2_000_000,
            RingGeometry::for_message(8),
        ),
        (
            "1 KiB messages",
            PayloadGen::fixed(2, 1024),
            200_000,
            RingGeometry::for_message(1024),
        ),
        (
            "0..=4 KiB random lengths, 64 KiB ring (wraps)",
            PayloadGen::random(3, 4096),
            100_000,
            small_ring,
        ),
    ];
    for (label, gen, count, geometry) in streams {
        let t = measure::ring_payload_stream(gen, count, geometry)?;
        println!(
            "  {label:<48} {count:>9} ok  ({}, {})",
            format_rate(t.msgs_per_sec()),
            format_mb_per_sec(t.bytes_per_sec())
        );
    }
    for size in [8, 1024] {
        let mut cfg = RoundTrip::new(size);
        cfg.verify = true;
        cfg.warmup = 0;
        cfg.samples = 100;
        cfg.batch = 100;
        Transport::Ring.round_trip(&cfg)?;
        println!(
            "  {:<48} {:>9} ok",
            format!("{} ping-pong echoes", format_size(size)),
            cfg.total()
        );
    }
    println!();
    Ok(())
}

fn median_of(runs: &[Throughput], f: impl Fn(&Throughput) -> f64) -> f64 {
    let mut values: Vec<f64> = runs.iter().map(f).collect();
    measure::median(&mut values)
}

fn throughput_table() -> Result<Table, measure::Error> {
    let mut table = Table::new(&[
        "size",
        "ring msg/s",
        "ring MB/s",
        "pipe msg/s",
        "pipe MB/s",
        "socket msg/s",
        "socket MB/s",
        "ring/pipe",
    ]);
    // (size, messages through the ring, through a pipe or socket)
    for (size, ring_count, base_count) in [(8, 20_000_000, 300_000), (1024, 1_000_000, 200_000)] {
        let [mut each, mut batched, mut pipe, mut socket] = [(); 4].map(|()| Vec::new());
        // The runs interleave the transports, so a change in the host's
        // state during the demo affects them alike.
        for _ in 0..RUNS {
            each.push(Transport::Ring.throughput(&Stream::new(size, ring_count))?);
            if size == 8 {
                batched
                    .push(Transport::RingBatched.throughput(&Stream::new(size, 2 * ring_count))?);
            }
            pipe.push(Transport::Pipe.throughput(&Stream::new(size, base_count))?);
            socket.push(Transport::UnixSocket.throughput(&Stream::new(size, base_count))?);
        }
        let pipe_rate = median_of(&pipe, Throughput::msgs_per_sec);
        for (label, ring) in [
            (format_size(size), &each),
            (format!("{} batched", format_size(size)), &batched),
        ] {
            if ring.is_empty() {
                continue;
            }
            let ring_rate = median_of(ring, Throughput::msgs_per_sec);
            table.row([
                label,
                format_rate(ring_rate),
                format_mb_per_sec(median_of(ring, Throughput::bytes_per_sec)),
                format_rate(pipe_rate),
                format_mb_per_sec(median_of(&pipe, Throughput::bytes_per_sec)),
                format_rate(median_of(&socket, Throughput::msgs_per_sec)),
                format_mb_per_sec(median_of(&socket, Throughput::bytes_per_sec)),
                format_ratio(ring_rate / pipe_rate),
            ]);
        }
    }
    Ok(table)
}

fn percentiles(samples: &[f64]) -> String {
    match Summary::of(samples) {
        Some(s) => format!(
            "{} / {} / {}",
            format_ns(s.p50),
            format_ns(s.p99),
            format_ns(s.p999)
        ),
        None => "-".into(),
    }
}

fn latency_table() -> Result<(Table, String), measure::Error> {
    let mut table = Table::new(&[
        "size",
        "ring p50 / p99 / p99.9",
        "pipe p50 / p99 / p99.9",
        "socket p50 / p99 / p99.9",
        "pipe/ring p50",
    ]);
    let p50 = |s: &[f64]| Summary::of(s).map_or(f64::NAN, |s| s.p50);
    let mut floor_note = String::new();
    for size in [8, 1024] {
        let mut ring_cfg = RoundTrip::new(size);
        ring_cfg.samples = 300;
        let mut base_cfg = RoundTrip::new(size);
        base_cfg.batch = 10;
        base_cfg.samples = 200;
        base_cfg.warmup = 2;
        let ring = if size == 8 {
            // Paired with the floor, batch by batch: this VM's cross-core
            // latency changes for seconds at a time.
            let (ring, floor) = measure::ring_and_floor_round_trip(&ring_cfg)?;
            floor_note = format!(
                "Floor (a counter bounced through two cache lines, timed in the same batches \
                 as the 8 B ring): {}; ring/floor p50 {}.",
                percentiles(&floor),
                format_ratio(p50(&ring) / p50(&floor))
            );
            ring
        } else {
            Transport::Ring.round_trip(&ring_cfg)?
        };
        let pipe = Transport::Pipe.round_trip(&base_cfg)?;
        let socket = Transport::UnixSocket.round_trip(&base_cfg)?;
        table.row([
            format_size(size),
            percentiles(&ring),
            percentiles(&pipe),
            percentiles(&socket),
            format_ratio(p50(&pipe) / p50(&ring)),
        ]);
    }
    Ok((table, floor_note))
}
