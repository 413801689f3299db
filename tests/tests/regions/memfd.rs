//! memfd regions: handed to an unrelated process over a socket, and sealed.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::{fs, io};

use ipc_core::{Error, RegionOptions};
use ipc_tests::spawn::SpawnedChild;
use nix::errno::Errno;

use crate::{
    assert_holds, assert_mentions, err, make_region_file, ok_details, report, temp_dir,
    CHILD_TIMEOUT, PEER, REPLY_OFFSET,
};

#[test]
fn memfd_region_is_shared_with_an_unrelated_process_over_a_socket() {
    const MESSAGE: &str = "hello from the test over a memfd";
    const REPLY: &str = "reply from region-peer";
    let region = RegionOptions::new()
        .size(8192)
        .create_memfd("ipc-tests-memfd")
        .expect("create memfd region");
    region.write_at(0, MESSAGE.as_bytes()).unwrap();

    let (mut ours, theirs) = UnixStream::pair().unwrap();
    ours.set_read_timeout(Some(CHILD_TIMEOUT)).unwrap();
    let their_fd = theirs.as_raw_fd();
    let mut command = Command::new(PEER);
    command.args(["memfd-reply", &their_fd.to_string(), MESSAGE, REPLY]);
    // SAFETY: the closure runs in the child between fork and exec and only
    // calls fcntl (async-signal-safe) to let the peer's socket end survive exec;
    // in this process the fd stays close-on-exec, so no other child inherits it.
    unsafe {
        command.pre_exec(move || {
            if libc::fcntl(their_fd, libc::F_SETFD, 0) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let peer = SpawnedChild::spawn(command);
    drop(theirs);

    region.send_fd(&ours).expect("send the memfd");
    let mut done = [0u8; 1];
    ours.read_exact(&mut done).expect("peer's completion byte");
    assert_eq!(&done, b"D", "peer could not attach or check the region");
    let mut reply = vec![0u8; REPLY.len()];
    region.read_at(REPLY_OFFSET, &mut reply).unwrap();
    assert_eq!(reply, REPLY.as_bytes());
    // Closing our end releases the peer, which waits for it.
    drop(ours);
    let report = report(peer);
    assert_eq!(
        ok_details(&report),
        std::process::id().to_string(),
        "creator pid seen by the peer"
    );
}

#[test]
fn memfd_is_sealed_against_resizing() {
    let region = RegionOptions::new()
        .size(4096)
        .create_memfd("ipc-tests-sealed")
        .unwrap();
    region.write_at(0, b"still here").unwrap();
    let fd = region.fd().expect("memfd region has an fd");
    assert_eq!(nix::unistd::ftruncate(fd, 0), Err(Errno::EPERM));
    assert_eq!(nix::unistd::ftruncate(fd, 4096), Err(Errno::EPERM));
    let grown = i64::try_from(region.len() * 2).unwrap();
    assert_eq!(nix::unistd::ftruncate(fd, grown), Err(Errno::EPERM));
    assert_eq!(
        nix::sys::stat::fstat(fd).unwrap().st_size as u64,
        region.len()
    );
    assert_holds(&region, 0, b"still here");
}

#[test]
fn open_fd_refuses_unsealed_fds() {
    let dir = temp_dir();
    let path = dir.path().join("region");
    make_region_file(&path, RegionOptions::new().size(4096), b"file region");

    // A plain file's fd: anyone could truncate it.
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let e = err(RegionOptions::new().open_fd(OwnedFd::from(file)));
    assert!(matches!(e, Error::NotSealed), "{e:?}");
    assert_mentions(&e, &["F_SEAL_SHRINK"]);

    // A memfd made without sealing.
    // SAFETY: memfd_create reads a NUL-terminated name and returns a new fd or -1.
    let raw = unsafe { libc::memfd_create(c"ipc-tests-unsealed".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(raw >= 0, "memfd_create: {}", io::Error::last_os_error());
    // SAFETY: the kernel just installed this fd for us.
    let memfd = unsafe { OwnedFd::from_raw_fd(raw) };
    nix::unistd::ftruncate(memfd.as_fd(), 8192).unwrap();
    let e = err(RegionOptions::new().open_fd(memfd));
    assert!(matches!(e, Error::NotSealed), "{e:?}");

    // Opting out works for a file whose size nobody else changes.
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let region = RegionOptions::new()
        .require_seals(false)
        .open_fd(OwnedFd::from(file))
        .expect("open_fd without seal check");
    assert_holds(&region, 0, b"file region");
}

/// Claim: "a hugetlb memfd region survives a holder of its fd punching a
/// hole in it": the seals do not forbid it (it is not a shrink), and a
/// fault on the hole when no free huge page is left raises `SIGBUS`. Such
/// regions are guarded as shm objects are: both the creator's mapping and a
/// received one report `Poisoned`. Needs 2 free huge pages; as root, adds
/// them to the pool for the test's length (a system-wide setting, restored
/// after).
#[test]
fn a_hole_punched_in_a_hugetlb_memfd_poisons_the_region_not_the_process() {
    let Some(_pool) = HugePool::with_free(2) else {
        println!("skipped: needs 2 free huge pages, or root to add them to the pool");
        return;
    };
    let (_, report) = crate::run_peer(&["hugetlb-punched"]);
    assert!(report.starts_with("OK"), "{report}");
}

/// Free huge pages for a test: the pool's size before, restored on drop
/// when it was raised.
struct HugePool {
    raised_from: Option<u64>,
}

const NR_HUGEPAGES: &str = "/proc/sys/vm/nr_hugepages";

impl HugePool {
    /// At least `pages` free huge pages, raising the pool if need be (root
    /// only); `None` if that cannot be had.
    fn with_free(pages: u64) -> Option<HugePool> {
        let free = huge_pages_free();
        if free >= pages {
            return Some(HugePool { raised_from: None });
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return None;
        }
        let before: u64 = fs::read_to_string(NR_HUGEPAGES).ok()?.trim().parse().ok()?;
        let pool = HugePool {
            raised_from: Some(before),
        };
        fs::write(NR_HUGEPAGES, (before + pages - free).to_string()).ok()?;
        (huge_pages_free() >= pages).then_some(pool)
    }
}

impl Drop for HugePool {
    fn drop(&mut self) {
        if let Some(before) = self.raised_from {
            let _ = fs::write(NR_HUGEPAGES, before.to_string());
        }
    }
}

/// `HugePages_Free` of `/proc/meminfo`.
fn huge_pages_free() -> u64 {
    fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("HugePages_Free:")?.trim().parse().ok())
        .unwrap_or(0)
}
