//! Lock-free shared-memory messaging between processes on one Linux host.
//!
//! - [`region`]: a `MAP_SHARED` mapping (anonymous, memfd, POSIX shm or
//!   file) with a validated header;
//! - [`spsc`]: a single-producer single-consumer ring of variable-length
//!   byte messages inside a region, with zero-copy reserve/commit;
//! - [`wait`]: a bounded spin-yield-nap backoff for waiting on a peer.
//!
//! ```
//! use std::sync::Arc;
//! use ipc_core::{spsc, RegionOptions};
//!
//! let region = RegionOptions::new().layout(spsc::layout(1 << 16, 1024)?).create_anonymous()?;
//! let (mut tx, mut rx) = spsc::channel(Arc::new(region))?;
//! tx.try_send(b"ping")?;
//! assert_eq!(&*rx.try_recv()?, b"ping");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Under `cfg(loom)` only the ring algorithm and its `sync` shim are built,
//! for the loom models.

#[cfg(not(loom))]
mod error;
#[cfg(not(loom))]
pub mod layout;
pub mod participants;
#[cfg(not(loom))]
pub mod region;
#[cfg(not(loom))]
mod sigbus;
pub mod spsc;
mod sync;
#[cfg(not(loom))]
mod sys;
#[cfg(not(loom))]
pub mod wait;

/// The README's examples, compiled and run as doctests.
#[cfg(all(doctest, not(loom)))]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

#[cfg(not(loom))]
pub use error::{Error, Result};
#[cfg(not(loom))]
pub use layout::{type_tag_of, Kind, Layout};
#[cfg(not(loom))]
pub use region::{remove_shm, remove_stale_shm, Backing, HugePages, Region, RegionOptions};
