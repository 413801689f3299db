//! Anonymous regions: shared with a forked child.

use std::fs;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use ipc_core::RegionOptions;
use ipc_tests::fork::ForkedChild;
use nix::sys::wait::WaitStatus;

use crate::CHILD_TIMEOUT;

#[test]
fn anonymous_region_is_shared_with_a_forked_child() {
    const BEFORE: &[u8; 16] = b"parent, pre-fork";
    const FROM_CHILD: &[u8; 16] = b"child was here!!";
    const AFTER: &[u8; 16] = b"parent post-fork";

    let region = RegionOptions::new()
        .size(4096)
        .create_anonymous()
        .expect("create anonymous region");
    region.write_at(0, BEFORE).unwrap();
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two fds into a valid two-element array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 just made these fds for us alone.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };

    let check_and_touch = || {
        let mut seen = [0u8; 16];
        let mut byte = [0u8; 1];
        if region.read_at(0, &mut seen).is_err() || &seen != BEFORE {
            1
        } else if region.write_at(100, FROM_CHILD).is_err() {
            2
        // SAFETY: reads one byte into a valid one-byte buffer.
        } else if unsafe { libc::read(read_end.as_raw_fd(), byte.as_mut_ptr().cast(), 1) } != 1 {
            3
        } else if region.read_at(200, &mut seen).is_err() || &seen != AFTER {
            4
        } else {
            0
        }
    };
    // SAFETY: the child only makes raw copies into and out of the mapping
    // and reads a pipe: no allocation, no locks.
    let child = unsafe { ForkedChild::fork(check_and_touch) }.expect("fork");
    drop(read_end);
    // Written after the fork: only a shared mapping shows it to the child.
    region.write_at(200, AFTER).unwrap();
    let mut pipe = fs::File::from(write_end);
    pipe.write_all(b"go").unwrap();
    let status = child.wait(CHILD_TIMEOUT).expect("forked child");
    assert_eq!(
        status,
        WaitStatus::Exited(child.pid(), 0),
        "child reported failure (1: pre-fork bytes, 3: pipe, 4: post-fork bytes)"
    );
    let mut seen = [0u8; 16];
    region.read_at(100, &mut seen).unwrap();
    assert_eq!(
        &seen, FROM_CHILD,
        "the child's write is not visible to the parent"
    );
}
