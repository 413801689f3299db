//! Test support for the workspace's tests, benchmarks and demos; its own
//! integration tests (`tests/tests`) exercise `ipc-core` across processes,
//! with the helper programs in `src/bin` as unrelated peers.
//!
//! - [`payload`]: self-checking messages (sequence number, checksum) that a
//!   receiver verifies byte for byte;
//! - [`fork`]: a forked child that is killed and reaped if its test fails;
//! - [`spawn`]: the same for a spawned program, collecting its output;
//! - [`tagged`]: messages tagged with their producer and sequence number,
//!   and tallies that prove exactly-once delivery across consumers;
//! - [`name`]: unique shm names, removed when their test ends;
//! - [`typed`]: message types of the typed-channel tests, defined once so
//!   that the test and its peer name the same types;
//! - [`wait`]: waits for a peer that give up after a limit or when the peer
//!   dies, on top of the library's backoff;
//! - [`rings`]: both ring kinds behind one interface, for scenarios written
//!   once;
//! - [`probe`]: what `/proc` says of a process or thread (asleep in a futex,
//!   stopped, CPU time used);
//! - [`watchdog`]: a limit on a whole test, past which the process aborts;
//! - [`privileged`]: root-only tests that say `skipped`, and fail in CI.

pub mod fork;
pub mod name;
pub mod payload;
pub mod privileged;
pub mod probe;
pub mod rings;
pub mod spawn;
pub mod tagged;
pub mod typed;
pub mod wait;
pub mod watchdog;
