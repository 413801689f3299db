//! Cross-process tests of regions: every backing shared with a real second
//! process (a `fork`ed child, or the unrelated `region-peer` binary), the
//! permissions and lifetime of named objects, one provocation of every error
//! variant, and a fuzz of the header an opener validates. One module per
//! concern: the backings (`anonymous`, `memfd`, `shm`, `file`),
//! `permissions`, `header` (what an opener validates), `errors` (every other
//! error variant) and `fuzz`; the shared helpers are here.
//!
//! Every wait is bounded: children are waited for with a deadline and killed
//! when it passes (the guards of `ipc_tests`), sockets have read timeouts,
//! and openers of objects nobody initialises have short init timeouts.

use std::fs;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use ipc_core::{Error, Region, RegionOptions};
use ipc_tests::spawn::SpawnedChild;
use tempfile::TempDir;

/// The helper binary, an unrelated process for the other side.
const PEER: &str = env!("CARGO_BIN_EXE_region-peer");
/// Upper bound on any child's life; far above what a healthy run takes.
const CHILD_TIMEOUT: Duration = Duration::from_secs(30);
/// Where the peer writes its reply in the data area (see `region-peer`).
const REPLY_OFFSET: u64 = 4096;

/// Byte offsets of the header fields (see `ipc_core::layout`).
mod field {
    pub const MAGIC: u64 = 0;
    pub const VERSION: u64 = 8;
    pub const HEADER_SIZE: u64 = 12;
    pub const INIT: u64 = 16;
    pub const KIND: u64 = 24;
    pub const TOTAL_SIZE: u64 = 32;
    pub const DATA_OFFSET: u64 = 40;
    pub const DATA_SIZE: u64 = 48;
    pub const CAPACITY: u64 = 56;
}

mod anonymous;
mod errors;
mod file;
mod fuzz;
mod header;
mod memfd;
mod permissions;
mod shm;

// Helpers: temp dirs, peer reports, assertions.

/// A fresh directory, removed with its contents on drop.
fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("ipc-tests-regions-")
        .tempdir()
        .expect("create temp dir")
}

/// Waits (bounded) for a `region-peer`, checks it exited 0, returns its
/// report line.
fn report(peer: SpawnedChild) -> String {
    let done = peer.finish(CHILD_TIMEOUT);
    done.assert_success();
    done.stdout.trim_end().to_string()
}

/// Runs `region-peer args…` to completion; its pid and report line.
fn run_peer(args: &[&str]) -> (u32, String) {
    let peer = SpawnedChild::run(PEER, args);
    let pid = peer.pid().as_raw() as u32;
    (pid, report(peer))
}

/// The details of an `OK …` report.
fn ok_details(line: &str) -> &str {
    match line.strip_prefix("OK") {
        Some(rest) => rest.trim(),
        None => panic!("region-peer reported {line:?}, expected OK"),
    }
}

/// The Display text of an `ERR <variant> …` report.
fn err_display<'a>(line: &'a str, variant: &str) -> &'a str {
    line.strip_prefix("ERR ")
        .and_then(|rest| rest.strip_prefix(variant))
        .and_then(|rest| rest.strip_prefix(' '))
        .unwrap_or_else(|| panic!("region-peer reported {line:?}, expected ERR {variant}"))
}

/// The error of a call that must fail.
fn err<T: std::fmt::Debug>(result: Result<T, Error>) -> Error {
    match result {
        Ok(value) => panic!("expected an error, got Ok({value:?})"),
        Err(e) => e,
    }
}

/// Asserts that `e`'s message mentions every one of `parts`.
fn assert_mentions(e: &impl std::fmt::Display, parts: &[&str]) {
    let text = e.to_string();
    for part in parts {
        assert!(text.contains(part), "{text:?} does not mention {part:?}");
    }
}

/// Asserts that the region's data area holds `expected` at `offset`.
#[track_caller]
fn assert_holds(region: &Region, offset: u64, expected: &[u8]) {
    let mut seen = vec![0u8; expected.len()];
    region.read_at(offset, &mut seen).unwrap();
    assert_eq!(seen, expected);
}

/// Creates a file region at `path` with `options` holding `contents`, drops
/// it, and returns the file's bytes.
fn make_region_file(path: &Path, options: RegionOptions, contents: &[u8]) -> Vec<u8> {
    let region = options.create_file(path).expect("create file region");
    if !contents.is_empty() {
        region.write_at(0, contents).expect("write contents");
    }
    drop(region);
    fs::read(path).expect("read region file")
}

/// Overwrites bytes of the file at `path` at `offset`.
fn patch(path: &Path, offset: u64, bytes: &[u8]) {
    let file = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open for patching");
    file.write_all_at(bytes, offset).expect("patch");
}

fn read_u32(bytes: &[u8], offset: u64) -> u32 {
    let offset = offset as usize;
    u32::from_le_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes"))
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}
