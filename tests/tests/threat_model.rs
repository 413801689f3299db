//! The README's threat model, claim by claim: what a buggy, dead or hostile
//! peer can and cannot do to a process using `ipc-core`. Each test names the
//! claim it backs.

use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use ipc_core::spsc::{self, Consumer, Producer, RecvError, SendError};
use ipc_core::{remove_shm, Error, RegionOptions};
use ipc_tests::fork::ForkedChild;
use ipc_tests::name::ShmName;
use ipc_tests::privileged;
use ipc_tests::spawn::SpawnedChild;
use nix::sys::wait::WaitStatus;

const PEER: &str = env!("CARGO_BIN_EXE_region-peer");

/// Longest any child may take.
const DEADLINE: Duration = Duration::from_secs(30);

/// Runs `region-peer` to completion (killed if it outlives [`DEADLINE`]);
/// its one-line report.
fn run_peer(command: Command) -> String {
    let done = SpawnedChild::spawn(command).finish(DEADLINE);
    done.assert_success();
    done.stdout.trim().to_string()
}

fn peer(args: &[&str]) -> Command {
    let mut command = Command::new(PEER);
    command.args(args);
    command
}

// ---------------------------------------------------------------------------
// Handles and fork

/// Claim: "a handle copied into a child by `fork` and dropped there does not
/// give up the parent's role."
#[test]
fn handles_dropped_in_a_forked_child_leave_the_roles_to_the_parent() {
    let region = Arc::new(
        RegionOptions::new()
            .layout(spsc::layout(4096, 64).unwrap())
            .create_anonymous()
            .unwrap(),
    );
    let mut handles = Some((spsc::channel(region.clone()).unwrap(), region));
    // The child takes the handles out of its copy of `handles`; the parent's
    // copy keeps them.
    let drop_handles = || {
        drop(handles.take());
        0
    };
    // SAFETY: the child only drops the handles (atomics, getpid, munmap: no
    // allocation, no locks).
    let child = unsafe { ForkedChild::fork(drop_handles) }.unwrap();
    assert!(matches!(
        child.wait(DEADLINE).unwrap(),
        WaitStatus::Exited(_, 0)
    ));
    let ((mut producer, mut consumer), region) = handles.take().expect("the parent's handles");
    // The parent still holds both roles: nobody else may attach.
    let me = std::process::id();
    assert!(matches!(
        Producer::attach(region.clone()),
        Err(Error::AlreadyAttached { role: "producer", pid }) if pid == me
    ));
    assert!(matches!(
        Consumer::attach(region.clone()),
        Err(Error::AlreadyAttached { role: "consumer", pid }) if pid == me
    ));
    producer.try_send(b"still mine").unwrap();
    assert_eq!(&*consumer.try_recv().unwrap(), b"still mine");
}

/// Claim: "the child does not inherit the parent's liveness locks, so a dead
/// parent is not kept alive by its children." A process holding the
/// producer role forks a child that lives on (no handle use, it just
/// sleeps); the parent is killed; its peers must see the producer dead at
/// once (`Disconnected`, an entry no longer alive, the role free), while
/// the child still runs.
#[test]
fn a_killed_parent_is_dead_to_its_peers_while_its_forked_child_lives() {
    let region = Arc::new(
        RegionOptions::new()
            .layout(spsc::layout(4096, 64).unwrap())
            .create_anonymous()
            .unwrap(),
    );
    let mut consumer = Consumer::attach(region.clone()).unwrap();
    let (pipe_r, pipe_w) = nix::unistd::pipe().unwrap();
    let hold = || {
        let Ok(mut producer) = Producer::attach(region.clone()) else {
            return 2;
        };
        if producer.try_send(b"from the parent").is_err() {
            return 3;
        }
        // SAFETY: the grandchild reports its pid and calls `pause` until it
        // is killed: no allocation, no locks. No parent-death signal: it
        // outlives its parent. It reports from its side of `fork`, so the
        // report comes after the fork handlers ran in it (the window before,
        // when it still holds copies of the parent's lock fds, is not what
        // this test is about).
        let grandchild = unsafe { libc::fork() };
        if grandchild == 0 {
            // SAFETY: no preconditions.
            let me = unsafe { libc::getpid() };
            let _ = nix::unistd::write(&pipe_w, &me.to_le_bytes());
            loop {
                // SAFETY: no preconditions.
                unsafe { libc::pause() };
            }
        }
        if grandchild < 0 {
            return 4;
        }
        loop {
            // SAFETY: no preconditions; killed here.
            unsafe { libc::pause() };
        }
    };
    // SAFETY: the child attaches, sends, forks and writes to a pipe: no
    // allocation, no locks.
    let parent = unsafe { ForkedChild::fork(hold) }.unwrap();
    // Only the children write: a child that fails closes the pipe and the
    // read below returns, rather than wait forever.
    drop(pipe_w);
    let mut pid = [0u8; 4];
    assert_eq!(
        nix::unistd::read(&pipe_r, &mut pid),
        Ok(4),
        "the forked child's report"
    );
    let grandchild = nix::unistd::Pid::from_raw(i32::from_le_bytes(pid));
    let kill_grandchild = |_: ()| {
        let _ = nix::sys::signal::kill(grandchild, nix::sys::signal::Signal::SIGKILL);
    };
    let producer_entry = |alive: bool| {
        region.participants().iter().any(|e| {
            e.role == Some(ipc_core::participants::Role::Producer)
                && e.pid == parent.pid().as_raw() as u32
                && e.alive == alive
        })
    };
    assert!(producer_entry(true), "{:?}", region.participants());
    nix::sys::signal::kill(parent.pid(), nix::sys::signal::Signal::SIGKILL).unwrap();
    assert!(matches!(
        parent.wait(DEADLINE).unwrap(),
        WaitStatus::Signaled(_, nix::sys::signal::Signal::SIGKILL, _)
    ));
    // The grandchild lives on, holding copies of everything the parent had.
    let alive = nix::sys::signal::kill(grandchild, None).is_ok();
    let dead_entry = producer_entry(false);
    let participants = region.participants();
    let first = consumer.recv_timeout(DEADLINE).map(|m| m.to_vec());
    let then = consumer.recv_timeout(DEADLINE).map(|m| m.len());
    let taken_over = Producer::attach(region.clone()).map(drop);
    kill_grandchild(());
    assert!(
        alive,
        "the forked child died with its parent: the test shows nothing"
    );
    assert!(
        dead_entry,
        "the dead parent is listed alive: {participants:?}"
    );
    assert_eq!(first.as_deref(), Ok(&b"from the parent"[..]));
    assert_eq!(then, Err(RecvError::Disconnected));
    assert!(taken_over.is_ok(), "{taken_over:?}");
}

// ---------------------------------------------------------------------------
// Memory that can vanish: SIGBUS

/// Whether this process may make mount namespaces (root, here and in CI).
fn can_mount() -> bool {
    // SAFETY: geteuid has no preconditions.
    (unsafe { libc::geteuid() }) == 0
}

/// A `region-peer` command that runs in a private mount namespace with a
/// 1 MiB tmpfs over `/dev/shm`.
fn in_small_tmpfs(args: &[&str]) -> Command {
    let mut command = peer(args);
    // SAFETY: between fork and exec the closure only makes syscalls with
    // static, NUL-terminated arguments: no allocation, no locks.
    unsafe {
        command.pre_exec(|| {
            let ok = libc::unshare(libc::CLONE_NEWNS) == 0
                && libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ) == 0
                && libc::mount(
                    c"tmpfs".as_ptr(),
                    c"/dev/shm".as_ptr(),
                    c"tmpfs".as_ptr(),
                    0,
                    c"size=1m".as_ptr().cast(),
                ) == 0;
            if ok {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        })
    };
    command
}

/// Claim: "creating a region larger than the free space of its tmpfs (or
/// file system) fails with `ResourceLimit` at creation; it never 'succeeds'
/// and then kills the process with SIGBUS on first touch."
#[test]
fn creation_in_a_full_tmpfs_fails_instead_of_faulting_later() {
    if !privileged::runs(
        can_mount(),
        "creation_in_a_full_tmpfs_fails_instead_of_faulting_later: needs root to mount a small tmpfs",
    ) {
        return;
    }
    // Fits: 256 KiB in 1 MiB.
    let report = run_peer(in_small_tmpfs(&["create-sized", "shm", "/fits", "262144"]));
    assert!(report.starts_with("OK"), "{report}");
    // Does not fit: 4 MiB in 1 MiB, for a shm object and a file.
    for (kind, name) in [("shm", "/too-big"), ("file", "/dev/shm/too-big-file")] {
        let report = run_peer(in_small_tmpfs(&["create-sized", kind, name, "4194304"]));
        assert!(report.starts_with("ERR ResourceLimit"), "{kind}: {report}");
        assert!(report.contains("posix_fallocate"), "{kind}: {report}");
    }
}

/// Claim: "a peer that shrinks a named shm object or a file under us makes
/// our calls return errors (`Poisoned`, or `Corrupted` from a ring); it
/// cannot kill us with SIGBUS."
#[test]
fn a_peer_that_shrinks_the_object_causes_errors_not_sigbus() {
    // A raw shm region: read_at and write_at report the loss.
    let name = ShmName::new("shrunk-raw");
    let region = RegionOptions::new()
        .size(1 << 16)
        .create_shm(&name)
        .unwrap();
    region.write_at(40_000, b"before").unwrap();
    assert_eq!(run_peer(peer(&["shrink", "shm", &name])), "OK");
    let mut buf = [0u8; 6];
    let e = region.read_at(40_000, &mut buf).unwrap_err();
    assert!(matches!(e, Error::Poisoned { .. }), "{e:?}");
    assert!(region.is_poisoned());
    assert!(matches!(
        region.write_at(0, b"x"),
        Err(Error::Poisoned { .. })
    ));
    drop(region);

    // A ring in a file: every operation reports the loss.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ring");
    let region = Arc::new(
        RegionOptions::new()
            .layout(spsc::layout(1 << 16, 1024).unwrap())
            .create_file(&path)
            .unwrap(),
    );
    let (mut producer, mut consumer) = spsc::channel(region.clone()).unwrap();
    producer.try_send(b"sent before").unwrap();
    assert_eq!(
        run_peer(peer(&["shrink", "file", path.to_str().unwrap()])),
        "OK"
    );
    assert!(matches!(
        consumer.try_recv().map(|m| m.to_vec()),
        Err(RecvError::Corrupted(_))
    ));
    assert!(matches!(
        producer.try_send(b"after"),
        Err(SendError::Corrupted(_))
    ));
    let mut buf = [0u8; 64];
    assert!(matches!(
        consumer.try_recv_into(&mut buf),
        Err(RecvError::Corrupted(_))
    ));
    assert!(region.is_poisoned());
    assert!(matches!(
        Producer::attach(region.clone()),
        Err(Error::Poisoned { .. })
    ));
    drop((producer, consumer, region));
    dir.close().unwrap();
}

/// Claim: "a SIGBUS that is not about a region still ends the process as
/// it would have without this library."
#[test]
fn a_sigbus_elsewhere_still_kills() {
    let name = ShmName::new("sigbus-elsewhere");
    // Install the handler in this process: a guarded region exists.
    let _region = RegionOptions::new().size(4096).create_shm(&name).unwrap();
    let file = tempfile::tempfile().unwrap();
    file.set_len(8192).unwrap();
    // SAFETY: a private mapping of our own temp file, touched only in the
    // child below.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            8192,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_fd().as_raw_fd(),
            0,
        )
    };
    assert_ne!(ptr, libc::MAP_FAILED);
    file.set_len(0).unwrap();
    let touch = || {
        // SAFETY: a valid mapping whose object was truncated: SIGBUS.
        let byte = unsafe { std::ptr::read_volatile(ptr.cast::<u8>().add(4096)) };
        i32::from(byte) + 10
    };
    // SAFETY: the child touches the mapping (which faults): no allocation,
    // no locks.
    let child = unsafe { ForkedChild::fork(touch) }.unwrap();
    let status = child.wait(DEADLINE).unwrap();
    assert!(
        matches!(
            status,
            WaitStatus::Signaled(_, nix::sys::signal::Signal::SIGBUS, _)
        ),
        "{status:?}"
    );
}

/// Claim: "a SIGBUS that a process sends (`kill`, `sigqueue`), not a
/// fault, poisons no region, even with a forged address in one, and does
/// not take the guard down; it goes to the action before ours." The peer
/// sends itself both kinds; with Rust's handler before ours (which ignores
/// a signal that is no fault) it survives, its region intact, and a later
/// truncation is still caught. With the default action before ours, the
/// signal kills it, as it would have without this library.
#[test]
fn a_sigbus_sent_by_a_process_poisons_nothing() {
    let name = ShmName::new("forged-sigbus");
    assert_eq!(run_peer(peer(&["forged-sigbus", &name, "inherited"])), "OK");
    let name = ShmName::new("forged-sigbus-default");
    let done = SpawnedChild::spawn(peer(&["forged-sigbus", &name, "default"])).finish(DEADLINE);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&done.status),
        Some(libc::SIGBUS),
        "{}: {}{}",
        done.status,
        done.stdout,
        done.stderr
    );
}

// ---------------------------------------------------------------------------
// Who made this object?

/// Claim: "an opener refuses a named object owned by another user, or
/// writable by group or others, unless told to trust it: a squatter in
/// `/dev/shm` cannot feed it a forged region."
#[test]
fn objects_others_could_have_written_are_refused() {
    if !privileged::runs(
        can_mount(),
        "objects_others_could_have_written_are_refused: needs root to give an object to another user",
    ) {
        return;
    }
    // A squatter (uid 65534) made the name first, with a valid header.
    let name = ShmName::new("squatted");
    let forged = RegionOptions::new()
        .layout(spsc::layout(4096, 64).unwrap())
        .mode(0o666)
        .persist(true)
        .create_shm(&name)
        .unwrap();
    nix::unistd::fchown(
        forged.fd().unwrap(),
        Some(nix::unistd::Uid::from_raw(65534)),
        Some(nix::unistd::Gid::from_raw(65534)),
    )
    .unwrap();
    let e = RegionOptions::new().open_shm(&name).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Untrusted {
                owner: 65534,
                mode: 0o666,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("trust_foreign"), "{e}");
    // Opting in opens it.
    RegionOptions::new()
        .trust_foreign(true)
        .open_shm(&name)
        .unwrap();

    // Our own object, but group-writable: refused too.
    let shared = ShmName::new("group-writable");
    let _ours = RegionOptions::new()
        .size(4096)
        .mode(0o620)
        .create_shm(&shared)
        .unwrap();
    let e = RegionOptions::new().open_shm(&shared).unwrap_err();
    assert!(matches!(e, Error::Untrusted { mode: 0o620, .. }), "{e:?}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("foreign-file");
    let file = RegionOptions::new()
        .size(4096)
        .mode(0o644)
        .create_file(&path)
        .unwrap();
    nix::unistd::fchown(
        file.fd().unwrap(),
        Some(nix::unistd::Uid::from_raw(65534)),
        None,
    )
    .unwrap();
    let e = RegionOptions::new().open_file(&path).unwrap_err();
    assert!(matches!(e, Error::Untrusted { owner: 65534, .. }), "{e:?}");
    std::fs::remove_file(&path).unwrap();
}

/// Claim: "the creator removes only the object it made: a name removed and
/// made again by someone else is left alone when the creator drops its
/// region."
#[test]
fn the_creator_does_not_remove_a_replacement_object() {
    let name = ShmName::new("replaced");
    let first = RegionOptions::new().size(4096).create_shm(&name).unwrap();
    remove_shm(&name).unwrap();
    let second = RegionOptions::new()
        .size(4096)
        .persist(true)
        .create_shm(&name)
        .unwrap();
    second.write_at(0, b"second").unwrap();
    drop(first);
    assert!(name.dev_shm().exists(), "the replacement was removed");
    let opened = RegionOptions::new().open_shm(&name).unwrap();
    let mut buf = [0u8; 6];
    opened.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"second");
}

// ---------------------------------------------------------------------------
// File descriptors handed over

/// Claim: "receiving a region's fd leaks no descriptor, whatever else the
/// sender packs into the message."
#[test]
fn receiving_an_fd_leaks_none_of_the_extra_fds() {
    let region = RegionOptions::new()
        .size(4096)
        .create_memfd("threat-fds")
        .unwrap();
    let (ours, theirs) = UnixStream::pair().unwrap();
    let theirs_fd = theirs.as_raw_fd();
    let mut command = peer(&["receive-fds", &theirs_fd.to_string()]);
    // SAFETY: clears FD_CLOEXEC on one fd between fork and exec: a plain
    // fcntl, no allocation.
    unsafe {
        command.pre_exec(move || {
            if libc::fcntl(theirs_fd, libc::F_SETFD, 0) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        })
    };
    // One message carrying the region and four more fds.
    let extra: Vec<_> = (0..4).map(|_| tempfile::tempfile().unwrap()).collect();
    let mut fds = vec![region.fd().unwrap().as_raw_fd()];
    fds.extend(extra.iter().map(|f| f.as_raw_fd()));
    nix::sys::socket::sendmsg::<()>(
        ours.as_raw_fd(),
        &[std::io::IoSlice::new(b"F")],
        &[nix::sys::socket::ControlMessage::ScmRights(&fds)],
        nix::sys::socket::MsgFlags::empty(),
        None,
    )
    .unwrap();
    let report = run_peer(command);
    drop(theirs);
    let counts: Vec<usize> = report
        .strip_prefix("OK ")
        .unwrap_or_else(|| panic!("{report}"))
        .split(' ')
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(
        counts[0], counts[1],
        "fds before and after receiving: {report}"
    );
}

/// Claim: "a memfd region can never shrink or grow (sealed), and, on Linux
/// 6.3 and later, never be made executable."
#[test]
fn memfds_are_sealed_against_resizing_and_execution() {
    let region = RegionOptions::new()
        .size(4096)
        .create_memfd("threat-seals")
        .unwrap();
    let fd = region.fd().unwrap();
    let seals = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GET_SEALS).unwrap();
    for (seal, name) in [
        (libc::F_SEAL_SHRINK, "F_SEAL_SHRINK"),
        (libc::F_SEAL_GROW, "F_SEAL_GROW"),
        (libc::F_SEAL_SEAL, "F_SEAL_SEAL"),
    ] {
        assert_ne!(seals & seal, 0, "{name} missing from {seals:#x}");
    }
    // Does this kernel know MFD_NOEXEC_SEAL (6.3+)?
    // SAFETY: memfd_create with a static name; the fd is closed below.
    let probe = unsafe { libc::memfd_create(c"probe".as_ptr(), libc::MFD_NOEXEC_SEAL) };
    if probe < 0 {
        eprintln!("skipped the exec seal: this kernel has no MFD_NOEXEC_SEAL");
        return;
    }
    // SAFETY: closes the probe fd made just above.
    unsafe { libc::close(probe) };
    const F_SEAL_EXEC: i32 = 0x0020;
    assert_ne!(
        seals & F_SEAL_EXEC,
        0,
        "F_SEAL_EXEC missing from {seals:#x}"
    );
    let mode = nix::sys::stat::fstat(fd).unwrap().st_mode;
    assert_eq!(mode & 0o111, 0, "memfd mode {mode:o} is executable");
}
