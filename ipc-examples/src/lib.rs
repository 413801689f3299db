//! What the `producer` and `consumer` demos share ([`cli`]): their
//! arguments, exit status and report lines.
//!
//! The crate's programs are what a user of `ipc-core` reads first:
//!
//! - `src/bin/demo.rs`: the ring against a pipe and a Unix socket, verified
//!   and measured (a quick run of the `ipc-benches` engine);
//! - `src/bin/producer.rs`, `src/bin/consumer.rs`: a named ring between two
//!   unrelated processes, started by hand;
//! - `examples/`: short programs to copy from
//!   (`cargo run -p ipc-examples --example <name>`).

pub mod cli;
