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
