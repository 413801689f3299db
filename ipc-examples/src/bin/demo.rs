//! The demo: with no set-up, stream verified messages between two processes
//! through the SPSC ring, then measure the library's rings beside a raw
//! futex, a pipe, Unix sockets and crossbeam's `ArrayQueue`.
//!
//! ```text
//! cargo run --release -p ipc-examples --bin demo
//! ```
//!
//! This is the quick mode of the benchmark engine ([`ipc_benches`], whose
//! full mode is `cargo bench -p ipc-benches`): the parent creates anonymous
//! regions, forks a peer, and the two run pinned to the first two CPUs. It
//! first streams self-checking messages and verifies every byte; then it
//! measures, with the same workloads, round trips over the ring (spinning,
//! and blocking with each wait strategy), the MPMC queue, a raw futex, a
//! pipe and a Unix stream socket; one-way throughput over the ring, a pipe
//! and a socket; and throughput from one and two producer processes to one
//! and two consumer processes over the MPMC queue, beside `ArrayQueue`
//! threads and a Unix datagram socket. It prints them with the project's
//! targets, and exits non-zero if any message is lost, reordered or
//! corrupted.

use std::process::ExitCode;

use ipc_benches::{run, Mode};

fn main() -> ExitCode {
    match run(Mode::Quick, |step| eprintln!("demo: {step}")) {
        Ok(report) => {
            println!("{}", report.text());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("demo failed: {e}");
            ExitCode::FAILURE
        }
    }
}
