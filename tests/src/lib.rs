//! Test support for the workspace's tests, benchmarks and demos.
//!
//! - [`payload`]: self-checking messages (sequence number, checksum) that a
//!   receiver verifies byte for byte.

pub mod payload;
