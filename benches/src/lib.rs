//! The benchmark engine: the library's rings (SPSC and MPMC) and typed
//! channels measured against pipes, Unix stream and datagram sockets, crossbeam's
//! `ArrayQueue`, a raw futex and two raw shared-memory references, in
//! processes pinned to two cores. `cargo bench -p ipc-benches` runs it in
//! full ([`Mode::Full`]), `cargo test --benches` in smoke mode
//! ([`Mode::Smoke`], every byte verified, so it never rots), and the `demo`
//! of `ipc-examples` in quick mode ([`Mode::Quick`]).
//!
//! Most workloads run in two processes: the caller (the *parent*) and a
//! child made by [`process::fork_child`], pinned to two different cores
//! ([`process::core_pair`]). The parent does all the timing:
//!
//! - **round trip**: the parent sends an N-byte message, the child echoes it,
//!   the parent reads it back. Batches of round trips are timed one round
//!   trip at a time into an HDR histogram (each time includes one clock
//!   read, whose cost is measured in the same run) and, in turn, as a whole
//!   (a batch mean). Transports compared with each other are measured
//!   *paired* ([`paired`]): the same two processes alternate a batch of
//!   each;
//! - **throughput**: the child produces `count` messages, the parent consumes
//!   them; the clock runs from the parent's "go" to the last byte received.
//!
//! Runs with several producers and consumers are a [`team`] of processes
//! (or, for `ArrayQueue`, of threads in one child), pinned by role, from the
//! go to the last consumer's finish.
//!
//! Messages carry a stamp (their sequence number plus one, and with several
//! producers the producer's index) which the receiver checks, so loss and
//! reordering fail a run; with `verify` set they carry a
//! [`PayloadGen`](ipc_tests::payload::PayloadGen) stream instead and every
//! byte is checked ([`message`]). Typed channels carry values made from
//! their sequence number, each checked in full ([`typed`]).
//!
//! No wait can hang: every wait gives up after [`DEADLINE`] and notices the
//! child's exit ([`wait`]); children get `SIGKILL` when their parent dies,
//! socket reads and writes time out, and pipe peers close the ends they do
//! not use, so a dead peer shows as end-of-file; async calls run under a
//! timeout and see a dead peer as a disconnection.
//!
//! The modules, one concern each:
//! - [`suite`]: what each [`Mode`] runs, and [`run`];
//! - [`report`]: the results, as text, Markdown and the project's targets;
//! - [`transport`]: one module per transport behind [`Transport`];
//! - [`paired`]: round trips of several transports side by side;
//! - [`bursts`]: one-way streams of several transports in alternating
//!   short bursts;
//! - [`team`]: runs with several producer and consumer processes;
//! - [`workload`]: ring and queue geometry, round-trip and stream
//!   configurations;
//! - [`message`]: stamping and checking messages;
//! - [`typed`]: the typed channels' messages, POD and serde;
//! - [`runtime`]: the one-thread tokio runtime of the async round trip;
//! - [`wait`]: the start line between parent and child, bounded waits;
//! - [`futex`]: a raw futex between processes;
//! - [`process`]: the machine, pinning, forking;
//! - [`stats`]: single round trips timed into histograms, the clock's
//!   cost, percentiles, throughput;
//! - [`table`]: formatting numbers and tables;
//! - [`error`]: why a measurement failed.
//!
//! ```no_run
//! use ipc_benches::stats::Summary;
//! use ipc_benches::workload::RoundTrip;
//! use ipc_benches::{process, table, Transport};
//!
//! process::pin_parent()?;
//! let measured = Transport::Ring.round_trip(&RoundTrip::new(8))?;
//! let trips = Summary::of_histogram(&measured.legs[0].trips).expect("samples");
//! let clock = Summary::of_histogram(&measured.clock).expect("samples");
//! println!(
//!     "8 B single round trips: p50 {}, p99.9 {} (each with a {} clock read)",
//!     table::format_ns(trips.p50),
//!     table::format_ns(trips.p999),
//!     table::format_ns(clock.p50)
//! );
//! # Ok::<(), ipc_benches::Error>(())
//! ```

use std::time::Duration;

pub mod bursts;
pub mod error;
pub mod futex;
pub mod message;
pub mod paired;
pub mod process;
pub mod report;
pub mod runtime;
pub mod stats;
pub mod suite;
pub mod table;
pub mod team;
pub mod transport;
pub mod typed;
pub mod wait;
pub mod workload;

pub use error::{Error, Result};
pub use report::Report;
pub use suite::{run, Mode};
pub use transport::Transport;

/// How long any wait lasts before it gives up.
pub const DEADLINE: Duration = Duration::from_secs(10);
