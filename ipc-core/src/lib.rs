//! Lock-free shared-memory messaging between processes on one Linux host.
//!
//! Read top to bottom, each layer uses only the ones before it (the
//! `layering` test checks that this list holds and that the modules import
//! each other in no circle):
//!
//! - `sync`: the only import of atomics and cells (loom's under loom);
//! - `sys`: every OS call, and how its errors map;
//! - `sigbus`: turns a `SIGBUS` from a shrunk mapping into a poisoned
//!   region instead of a crash;
//! - [`wait`]: a bounded spin-yield-nap backoff for waiting on a peer, and
//!   the futex signals a waiter parks on;
//! - [`layout`]: the header every region starts with, the layout it
//!   describes, and each ring kind's geometry and validation;
//! - [`participants`]: who is attached to a region, and whether they are
//!   alive (an open-file-description lock each, immune to pid reuse);
//! - `ring`: what both ring kinds share: their operations' errors, the
//!   128-byte line, the lifecycle word;
//! - `error`: the errors of regions and of attaching to them;
//! - [`region`]: a `MAP_SHARED` mapping (anonymous, memfd, POSIX shm or
//!   file) with a validated header, guarded against `SIGBUS`;
//! - [`spsc`]: a single-producer single-consumer ring of variable-length
//!   byte messages, with zero-copy reserve/commit;
//! - [`mpmc`]: a multi-producer multi-consumer queue of fixed-size slots,
//!   across any number of processes, that recovers from participants that
//!   die mid-operation;
//! - [`channel`]: the one way in, for most uses: typed messages (any
//!   `serde` type, or plain old data read in place) or raw bytes, over
//!   either ring, made by a builder.
//!
//! ```
//! use ipc_core::{spsc, RegionOptions};
//!
//! let region = RegionOptions::new().layout(spsc::layout(1 << 16, 1024)?).create_anonymous()?;
//! let (mut tx, mut rx) = spsc::channel(region)?;
//! tx.try_send(b"ping")?;
//! assert_eq!(&*rx.try_recv()?, b"ping");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Under `cfg(ipc_core_loom)` (this crate's own, so that a crate running
//! loom tests of its own with `--cfg loom` still builds this one normally)
//! only the ring algorithms, the participant table, the layout's geometry
//! and their `sync` shim are built, for the loom models.

#[cfg(not(ipc_core_loom))]
pub mod channel;
#[cfg(not(ipc_core_loom))]
mod error;
pub mod layout;
pub mod mpmc;
pub mod participants;
#[cfg(not(ipc_core_loom))]
pub mod region;
mod ring;
#[cfg(not(ipc_core_loom))]
mod sigbus;
pub mod spsc;
mod sync;
#[cfg(not(ipc_core_loom))]
mod sys;
pub mod wait;

/// The README's examples, compiled and run as doctests.
#[cfg(all(doctest, not(ipc_core_loom)))]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

#[cfg(not(ipc_core_loom))]
pub use error::{Error, Result};
#[cfg(not(ipc_core_loom))]
pub use layout::{type_tag_of, Kind, Layout};
#[cfg(not(ipc_core_loom))]
pub use region::{remove_shm, remove_stale_shm, Backing, HugePages, Region, RegionOptions};
