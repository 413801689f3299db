//! Helpers shared by the demo binaries and the benchmarks.
//!
//! - [`cli`]: the arguments, exit status and backoff of the producer and
//!   consumer demos;
//! - [`measure`]: pinning, forking, timing and percentiles, and the baselines
//!   (pipe, Unix socket, cache-line floor) measured beside the ring.

pub mod cli;
pub mod measure;
