//! What the `producer` and `consumer` demos share ([`cli`]): their
//! arguments, exit status, report lines and MPMC messages.
//!
//! The crate's programs are what a user of `ipc-core` reads first:
//!
//! - `src/bin/demo.rs`: the rings against a raw futex, a pipe, Unix
//!   sockets and crossbeam's `ArrayQueue`, verified and measured (a quick
//!   run of the `ipc-benches` engine);
//! - `src/bin/producer.rs`, `src/bin/consumer.rs`: a named ring between two
//!   unrelated processes, or an MPMC queue between several, started by
//!   hand, with the library's blocking calls;
//! - `examples/`: short programs to copy from
//!   (`cargo run -p ipc-examples --example <name>`).

pub mod cli;
