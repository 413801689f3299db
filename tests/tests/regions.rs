//! Cross-process tests of regions: every backing shared with a real second
//! process (a `fork`ed child, or the unrelated `region-peer` binary), the
//! permissions and lifetime of named objects, one provocation of every error
//! variant, and a fuzz of the header an opener validates.
//!
//! Every wait is bounded: children are waited for through a pidfd with a
//! deadline and killed when it passes, sockets have read timeouts, and
//! openers of objects nobody initialises have short init timeouts.

use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{symlink, FileExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ipc_core::layout::{HEADER_SIZE, MAGIC, VERSION};
use ipc_core::{
    remove_shm, remove_stale_shm, Error, HugePages, Kind, Layout, Region, RegionOptions,
};
use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

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

// ---------------------------------------------------------------------------
// Helpers: unique names, cleanup guards, bounded waits for children.
// ---------------------------------------------------------------------------

/// A shm name unique to this test process and `suffix`, removed on drop
/// (also when the test fails).
struct ShmName(String);

impl ShmName {
    fn new(suffix: &str) -> ShmName {
        let name = format!("/ipc-tests-regions-{}-{suffix}", std::process::id());
        let _ = remove_shm(&name);
        ShmName(name)
    }

    fn dev_shm(&self) -> PathBuf {
        Path::new("/dev/shm").join(&self.0[1..])
    }
}

impl std::ops::Deref for ShmName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Drop for ShmName {
    fn drop(&mut self) {
        let _ = remove_shm(&self.0);
    }
}

/// A fresh directory under the temp dir, removed with its contents on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(suffix: &str) -> TempDir {
        let path =
            std::env::temp_dir().join(format!("ipc-tests-regions-{}-{suffix}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Waits until process `pid` (our unreaped child) has exited, without
/// reaping it; false if it is still running after `timeout`.
fn wait_for_exit(pid: u32, timeout: Duration) -> bool {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    assert!(raw >= 0, "pidfd_open: {}", io::Error::last_os_error());
    // SAFETY: the kernel just installed this fd for us; nobody else owns it.
    let pidfd = unsafe { OwnedFd::from_raw_fd(raw as RawFd) };
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut poll = libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; a pidfd polls readable once the process exits.
        let n = unsafe { libc::poll(&mut poll, 1, left.as_millis().min(i32::MAX as u128) as i32) };
        match n {
            1.. => return true,
            0 => return false,
            _ if Errno::last() == Errno::EINTR => continue,
            _ => panic!("poll(pidfd): {}", io::Error::last_os_error()),
        }
    }
}

/// A spawned `region-peer`, killed and reaped on drop unless finished.
struct Peer {
    child: Option<Child>,
}

impl Peer {
    fn spawn(args: &[&str]) -> Peer {
        let mut command = Command::new(PEER);
        command.args(args);
        Peer::spawn_command(command)
    }

    fn spawn_command(mut command: Command) -> Peer {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Peer {
            child: Some(command.spawn().expect("spawn region-peer")),
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("peer running").id()
    }

    /// Waits (bounded) until the peer has exited, leaving it unreaped.
    fn wait_exited(&self) {
        let pid = self.pid();
        assert!(
            wait_for_exit(pid, CHILD_TIMEOUT),
            "region-peer {pid} still running after {CHILD_TIMEOUT:?}"
        );
    }

    /// Waits (bounded) for the peer, checks it exited 0, returns its report line.
    fn finish(mut self) -> String {
        self.wait_exited();
        let child = self.child.take().expect("peer running");
        let output = child.wait_with_output().expect("reap region-peer");
        assert!(
            output.status.success(),
            "region-peer failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout)
            .expect("utf-8 report")
            .trim_end()
            .to_string()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `region-peer args…` to completion; its pid and report line.
fn run_peer(args: &[&str]) -> (u32, String) {
    let peer = Peer::spawn(args);
    let pid = peer.pid();
    (pid, peer.finish())
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

/// A `fork`ed child, killed and reaped on drop unless waited for.
struct Forked(Option<Pid>);

impl Forked {
    /// Waits (bounded) for the child; its exit code.
    fn wait(mut self) -> i32 {
        let pid = self.0.expect("child running");
        assert!(
            wait_for_exit(pid.as_raw() as u32, CHILD_TIMEOUT),
            "forked child {pid} still running after {CHILD_TIMEOUT:?}"
        );
        self.0 = None;
        match waitpid(pid, None).expect("waitpid") {
            WaitStatus::Exited(_, code) => code,
            other => panic!("forked child ended with {other:?}"),
        }
    }
}

impl Drop for Forked {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
    }
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

/// Creates a raw file region of 4096 bytes at `path` holding `contents`,
/// drops it, and returns the file's bytes.
/// Asserts that the region's data area holds `expected` at `offset`.
#[track_caller]
fn assert_holds(region: &Region, offset: u64, expected: &[u8]) {
    let mut seen = vec![0u8; expected.len()];
    region.read_at(offset, &mut seen).unwrap();
    assert_eq!(seen, expected);
}

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

// ---------------------------------------------------------------------------
// 1. Anonymous regions across fork.
// ---------------------------------------------------------------------------

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

    // SAFETY: the child only makes raw copies into and out of the mapping
    // (no allocation, no locks), reads a pipe and leaves with `_exit`.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            let mut seen = [0u8; 16];
            let mut byte = [0u8; 1];
            let code = if region.read_at(0, &mut seen).is_err() || &seen != BEFORE {
                1
            } else if region.write_at(100, FROM_CHILD).is_err() {
                2
            // SAFETY: reads one byte into a valid one-byte buffer.
            } else if unsafe { libc::read(read_end.as_raw_fd(), byte.as_mut_ptr().cast(), 1) } != 1
            {
                3
            } else if region.read_at(200, &mut seen).is_err() || &seen != AFTER {
                4
            } else {
                0
            };
            // SAFETY: ends the child at once, running no destructor or atexit
            // handler of the parent's copied state.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            let child = Forked(Some(child));
            drop(read_end);
            // Written after the fork: only a shared mapping shows it to the child.
            region.write_at(200, AFTER).unwrap();
            let mut pipe = fs::File::from(write_end);
            pipe.write_all(b"go").unwrap();
            let code = child.wait();
            assert_eq!(
                code, 0,
                "child reported failure {code} (1: pre-fork bytes, 3: pipe, 4: post-fork bytes)"
            );
            let mut seen = [0u8; 16];
            region.read_at(100, &mut seen).unwrap();
            assert_eq!(
                &seen, FROM_CHILD,
                "the child's write is not visible to the parent"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// 2. memfd regions passed to an unrelated process.
// ---------------------------------------------------------------------------

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
    let peer = Peer::spawn_command(command);
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
    let report = peer.finish();
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
    let dir = TempDir::new("unsealed");
    let path = dir.join("region");
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

// ---------------------------------------------------------------------------
// 3. Named POSIX shm.
// ---------------------------------------------------------------------------

#[test]
fn shm_region_is_shared_with_an_unrelated_process_and_removed_by_its_creator() {
    const MESSAGE: &str = "hello over named shm";
    const REPLY: &str = "named reply";
    let name = ShmName::new("roundtrip");
    let region = RegionOptions::new().size(8192).create_shm(&name).unwrap();
    region.write_at(0, MESSAGE.as_bytes()).unwrap();
    assert_eq!(fs::metadata(name.dev_shm()).unwrap().len(), region.len());

    let (_, report) = run_peer(&["shm-reply", &name, MESSAGE, REPLY]);
    assert_eq!(ok_details(&report), std::process::id().to_string());
    let mut reply = vec![0u8; REPLY.len()];
    region.read_at(REPLY_OFFSET, &mut reply).unwrap();
    assert_eq!(reply, REPLY.as_bytes());

    drop(region);
    assert!(
        !name.dev_shm().exists(),
        "the creator's drop must unlink the name"
    );
    let e = err(RegionOptions::new().open_shm(&name));
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    let (_, report) = run_peer(&["shm-reply", &name, MESSAGE, REPLY]);
    err_display(&report, "NotFound");
}

#[test]
fn create_shm_is_exclusive() {
    let name = ShmName::new("exclusive");
    let first = RegionOptions::new().size(4096).create_shm(&name).unwrap();
    first.write_at(0, b"first").unwrap();
    let e = err(RegionOptions::new().size(4096).create_shm(&name));
    assert!(
        matches!(&e, Error::AlreadyExists { name: n } if *n == *name),
        "{e:?}"
    );
    assert_mentions(&e, &[&name, "already exists"]);
    // The failed create must not have removed or touched the first object.
    let opened = RegionOptions::new().open_shm(&name).expect("still there");
    assert_holds(&opened, 0, b"first");
}

#[test]
fn persisted_shm_outlives_its_creator_until_removed() {
    let name = ShmName::new("persist");
    let region = RegionOptions::new()
        .size(4096)
        .persist(true)
        .create_shm(&name)
        .unwrap();
    region.write_at(0, b"kept").unwrap();
    drop(region);
    assert!(name.dev_shm().exists(), "persist(true) must keep the name");
    let opened = RegionOptions::new().open_shm(&name).unwrap();
    assert_holds(&opened, 0, b"kept");
    drop(opened);
    assert!(name.dev_shm().exists(), "an opener's drop must not unlink");

    remove_shm(&name).unwrap();
    assert!(!name.dev_shm().exists());
    let e = err(RegionOptions::new().open_shm(&name));
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    let e = remove_shm(&name).unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
}

#[test]
fn open_or_create_shm_opens_or_creates() {
    let name = ShmName::new("open-or-create");
    let options = RegionOptions::new().size(4096);

    // Creates when missing: this process owns it.
    let created = options.open_or_create_shm(&name).unwrap();
    assert_eq!(created.creator_pid(), std::process::id());
    created.write_at(0, b"first").unwrap();
    // Opens when present: same memory.
    let opened = options.open_or_create_shm(&name).unwrap();
    assert_holds(&opened, 0, b"first");
    drop(opened);
    assert!(name.dev_shm().exists(), "the opener must not unlink");
    drop(created);
    assert!(!name.dev_shm().exists(), "the creator unlinks");

    // Opens one another process created (and left behind).
    let (peer_pid, report) = run_peer(&["shm-create", &name, "made by the peer"]);
    assert_eq!(ok_details(&report), peer_pid.to_string());
    let opened = options.open_or_create_shm(&name).unwrap();
    assert_eq!(opened.creator_pid(), peer_pid);
    assert_holds(&opened, 0, b"made by the peer");
    drop(opened);
    assert!(
        name.dev_shm().exists(),
        "we did not create it, so we must not unlink it"
    );
}

#[test]
fn remove_stale_shm_removes_only_names_of_dead_creators() {
    // A creator that has exited (and been reaped).
    let stale = ShmName::new("stale-dead");
    let (_, report) = run_peer(&["shm-abandon", &stale, "orphan"]);
    ok_details(&report);
    assert!(stale.dev_shm().exists());
    assert!(remove_stale_shm(&stale).unwrap());
    assert!(!stale.dev_shm().exists());
    let e = err(RegionOptions::new().open_shm(&stale));
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");

    // A live creator (this process).
    let live = ShmName::new("stale-live");
    let region = RegionOptions::new().size(4096).create_shm(&live).unwrap();
    assert!(!remove_stale_shm(&live).unwrap());
    assert!(live.dev_shm().exists());
    RegionOptions::new()
        .open_shm(&live)
        .expect("live name left alone");
    drop(region);

    // Missing names are reported, not invented.
    let e = remove_stale_shm(&stale).unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
}

#[test]
fn remove_stale_shm_treats_an_unreaped_creator_as_dead() {
    // A creator that has exited but that its parent (us) has not reaped yet:
    // a zombie still answers kill(pid, 0), yet it will never come back.
    let name = ShmName::new("stale-zombie");
    let peer = Peer::spawn(&["shm-abandon", &name, "zombie's"]);
    peer.wait_exited();
    assert!(
        remove_stale_shm(&name).unwrap(),
        "a creator that exited but is not reaped yet is dead"
    );
    assert!(!name.dev_shm().exists());
    ok_details(&peer.finish());
}

#[test]
fn remove_stale_shm_removes_unfinished_regions_and_keeps_everything_else() {
    // Our magic but never published: the creator died while making it.
    let unfinished = ShmName::new("stale-unfinished");
    let mut bytes = vec![0u8; 4096];
    bytes[..8].copy_from_slice(&ipc_core::layout::MAGIC.to_le_bytes());
    fs::write(unfinished.dev_shm(), &bytes).unwrap();
    assert!(remove_stale_shm(&unfinished).unwrap());
    assert!(!unfinished.dev_shm().exists());

    // Created but never sized, or sized but all zeroes: nothing says these
    // are ours, so they are left alone (remove_shm removes them).
    let empty = ShmName::new("stale-empty");
    fs::File::create(empty.dev_shm()).unwrap();
    let e = remove_stale_shm(&empty).unwrap_err();
    assert!(matches!(e, Error::Truncated { .. }), "{e:?}");
    assert!(empty.dev_shm().exists());
    let zeroes = ShmName::new("stale-zeroes");
    fs::File::create(zeroes.dev_shm())
        .unwrap()
        .set_len(4096)
        .unwrap();
    let e = remove_stale_shm(&zeroes).unwrap_err();
    assert!(matches!(e, Error::NotOurs { found_magic: 0 }), "{e:?}");
    assert!(zeroes.dev_shm().exists());

    // Somebody else's object: left alone.
    let foreign = ShmName::new("stale-foreign");
    fs::write(foreign.dev_shm(), "not a region of ours ".repeat(200)).unwrap();
    let e = remove_stale_shm(&foreign).unwrap_err();
    assert!(matches!(e, Error::NotOurs { .. }), "{e:?}");
    assert!(foreign.dev_shm().exists());
}

#[test]
fn remove_stale_shm_keeps_persisted_regions_and_names_in_use() {
    // Made to outlive its creator, which has exited: in use by design.
    let persisted = ShmName::new("stale-persisted");
    let (_, report) = run_peer(&["shm-create", &persisted, "kept"]);
    ok_details(&report);
    assert!(!remove_stale_shm(&persisted).unwrap());
    assert_holds(
        &RegionOptions::new().open_shm(&persisted).unwrap(),
        0,
        b"kept",
    );

    // Its creator exited, but another process still has it attached.
    let attached = ShmName::new("stale-attached");
    let (_, report) = run_peer(&["shm-create", &attached, "still used"]);
    ok_details(&report);
    let user = RegionOptions::new().open_shm(&attached).unwrap();
    assert!(!remove_stale_shm(&attached).unwrap());
    drop(user);
    // Once detached, a persisted region is still kept; remove_shm removes it.
    assert!(!remove_stale_shm(&attached).unwrap());
    remove_shm(&attached).unwrap();
}

// ---------------------------------------------------------------------------
// 4. File-backed regions.
// ---------------------------------------------------------------------------

#[test]
fn file_region_outlives_its_creator_process() {
    let dir = TempDir::new("file");
    let path = dir.join("region");
    let path_str = path.to_str().unwrap();
    let (peer_pid, report) = run_peer(&["file-create", path_str, "written by the peer"]);
    let len: u64 = ok_details(&report).parse().unwrap();
    assert!(path.exists(), "the file must stay after its creator exits");
    assert_eq!(fs::metadata(&path).unwrap().len(), len);

    let region = RegionOptions::new().open_file(&path).expect("reopen");
    assert_eq!(region.creator_pid(), peer_pid);
    assert_eq!(region.len(), len);
    assert_eq!(region.layout().kind, Kind::Raw);
    assert_holds(&region, 0, b"written by the peer");
    region.write_at(0, b"rewritten").unwrap();
    drop(region);
    assert!(path.exists(), "an opener's drop must not remove the file");
    let bytes = fs::read(&path).unwrap();
    assert_eq!(
        &bytes[HEADER_SIZE as usize..HEADER_SIZE as usize + 9],
        b"rewritten"
    );

    // Exclusive creation: the existing file is refused and left intact.
    let e = err(RegionOptions::new().size(4096).create_file(&path));
    assert!(matches!(e, Error::AlreadyExists { .. }), "{e:?}");
    assert_mentions(&e, &[path_str]);
    assert_eq!(fs::read(&path).unwrap(), bytes);
}

#[test]
fn file_regions_never_follow_symlinks() {
    let dir = TempDir::new("symlink");
    let target = dir.join("target");
    let original = make_region_file(&target, RegionOptions::new().size(4096), b"target");
    let link = dir.join("link");
    symlink(&target, &link).unwrap();
    let e = err(RegionOptions::new().open_file(&link));
    assert!(matches!(e, Error::SymbolicLink { .. }), "{e:?}");
    assert_mentions(&e, &[link.to_str().unwrap(), "symbolic link"]);

    // Creating through a dangling link must not create its target.
    let nowhere = dir.join("nowhere");
    let dangling = dir.join("dangling");
    symlink(&nowhere, &dangling).unwrap();
    let e = err(RegionOptions::new().size(4096).create_file(&dangling));
    assert!(matches!(e, Error::AlreadyExists { .. }), "{e:?}");
    assert!(!nowhere.exists());
    // Nor through a link to an existing region.
    let e = err(RegionOptions::new().size(4096).create_file(&link));
    assert!(matches!(e, Error::AlreadyExists { .. }), "{e:?}");
    assert_eq!(fs::read(&target).unwrap(), original);
}

// ---------------------------------------------------------------------------
// 5. Permissions.
// ---------------------------------------------------------------------------

/// Creates a shm object and a file region from a peer running with `umask`
/// and `mode` ("default" for none) and returns their modes.
fn modes_created_with(umask: &str, mode: &str, dir: &TempDir) -> (u32, u32) {
    let name = ShmName::new(&format!("mode-{umask}-{mode}"));
    let (_, report) = run_peer(&["create-umask", umask, mode, "shm", &name]);
    ok_details(&report);
    let shm_mode = mode_of(&name.dev_shm());
    let path = dir.join(&format!("mode-{umask}-{mode}"));
    let (_, report) = run_peer(&["create-umask", umask, mode, "file", path.to_str().unwrap()]);
    ok_details(&report);
    (shm_mode, mode_of(&path))
}

#[test]
fn default_mode_is_0600_whatever_the_umask() {
    let dir = TempDir::new("mode-default");
    for umask in ["077", "000", "022"] {
        assert_eq!(
            modes_created_with(umask, "default", &dir),
            (0o600, 0o600),
            "umask {umask}"
        );
    }
}

#[test]
fn custom_mode_is_applied_exactly() {
    let dir = TempDir::new("mode-custom");
    for umask in ["077", "000"] {
        for mode in [0o640, 0o666, 0o400] {
            let mode_arg = format!("{mode:o}");
            assert_eq!(
                modes_created_with(umask, &mode_arg, &dir),
                (mode, mode),
                "umask {umask}, mode {mode_arg}"
            );
        }
    }
}

#[test]
fn zero_on_drop_clears_the_memory_only_for_the_creator() {
    let name = ShmName::new("zero-on-drop");
    let options = RegionOptions::new()
        .size(4096)
        .persist(true)
        .zero_on_drop(true);
    let created = options.create_shm(&name).unwrap();
    created.write_at(0, b"secret").unwrap();
    // An opener asking for the same never zeroes: it does not own the memory.
    drop(options.open_shm(&name).unwrap());
    let bytes = fs::read(name.dev_shm()).unwrap();
    assert_eq!(&bytes[HEADER_SIZE as usize..][..6], b"secret");
    drop(created);
    let bytes = fs::read(name.dev_shm()).unwrap();
    assert!(
        bytes.iter().all(|&b| b == 0),
        "the creator's drop must zero the object"
    );
}

#[test]
fn mapping_options_are_accepted_on_every_backing() {
    let dir = TempDir::new("options");
    let name = ShmName::new("options");
    let options = RegionOptions::new()
        .size(1 << 16)
        .populate(true)
        .dont_dump(true)
        .huge_pages(HugePages::BestEffort);
    let regions = [
        options.create_anonymous().unwrap(),
        options.create_memfd("ipc-tests-options").unwrap(),
        options.create_shm(&name).unwrap(),
        options.create_file(dir.join("region")).unwrap(),
        options.open_shm(&name).unwrap(),
        options.open_file(dir.join("region")).unwrap(),
    ];
    for region in &regions {
        region.write_at(region.data_len() - 3, b"end").unwrap();
        region
            .atomic_u64(0)
            .unwrap()
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    // The opened ones share memory with the created ones.
    assert_eq!(
        regions[4]
            .atomic_u64(0)
            .unwrap()
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    assert_eq!(
        regions[5]
            .atomic_u64(0)
            .unwrap()
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

#[test]
fn in_process_creation_applies_the_mode() {
    let dir = TempDir::new("mode-in-process");
    let name = ShmName::new("mode-in-process");
    let _shm = RegionOptions::new()
        .size(4096)
        .mode(0o640)
        .create_shm(&name)
        .unwrap();
    assert_eq!(mode_of(&name.dev_shm()), 0o640);
    let path = dir.join("region");
    let _file = RegionOptions::new().size(4096).create_file(&path).unwrap();
    assert_eq!(mode_of(&path), 0o600);
}

// ---------------------------------------------------------------------------
// 6. Every error variant.
// ---------------------------------------------------------------------------

#[test]
fn error_not_found() {
    let name = ShmName::new("not-found");
    let e = err(RegionOptions::new().open_shm(&name));
    assert!(
        matches!(&e, Error::NotFound { name: n } if *n == *name),
        "{e:?}"
    );
    assert_mentions(&e, &[&name, "not found"]);

    let dir = TempDir::new("not-found");
    let path = dir.join("missing");
    let e = err(RegionOptions::new().open_file(&path));
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    assert_mentions(&e, &[path.to_str().unwrap()]);
    let e = err(RegionOptions::new()
        .size(4096)
        .create_file(dir.join("no-dir/region")));
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
}

#[test]
fn error_permission_denied() {
    // As root, permission bits are bypassed (CAP_DAC_OVERRIDE); the peer drops
    // to uid 65534, which loses every capability, before opening.
    let dir = TempDir::new("denied");
    let closed = ShmName::new("denied-closed");
    let _closed = RegionOptions::new()
        .size(4096)
        .mode(0o600)
        .create_shm(&closed)
        .unwrap();
    let (_, report) = run_peer(&["open-unprivileged", "shm", &closed]);
    assert_mentions(
        &err_display(&report, "PermissionDenied"),
        &[&closed, "permission denied"],
    );

    let path = dir.join("closed");
    let _file = RegionOptions::new()
        .size(4096)
        .mode(0o600)
        .create_file(&path)
        .unwrap();
    fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o755)).unwrap();
    let (_, report) = run_peer(&["open-unprivileged", "file", path.to_str().unwrap()]);
    assert_mentions(
        &err_display(&report, "PermissionDenied"),
        &[path.to_str().unwrap()],
    );

    // The same peer may open an object whose mode lets it, once it trusts
    // another user's object: the denial above was the mode's doing.
    let open = ShmName::new("denied-open");
    let _open = RegionOptions::new()
        .size(4096)
        .mode(0o666)
        .create_shm(&open)
        .unwrap();
    let (_, report) = run_peer(&["open-unprivileged", "shm", &open, "trust"]);
    ok_details(&report);
}

#[test]
fn error_already_exists() {
    let dir = TempDir::new("exists");
    let path = dir.join("region");
    let _region = RegionOptions::new().size(4096).create_file(&path).unwrap();
    let e = err(RegionOptions::new().size(4096).create_file(&path));
    assert!(matches!(e, Error::AlreadyExists { .. }), "{e:?}");
    assert_mentions(&e, &[path.to_str().unwrap(), "already exists"]);
    // (create_shm's case is in `create_shm_is_exclusive`.)
}

#[test]
fn error_not_ours() {
    let dir = TempDir::new("not-ours");
    let path = dir.join("text");
    let text = "This is a text file, not a shared-memory region.\n".repeat(8);
    assert!(text.len() >= 256);
    fs::write(&path, &text).unwrap();
    let e = err(RegionOptions::new()
        .init_timeout(Duration::from_millis(200))
        .open_file(&path));
    let magic = u64::from_le_bytes(text.as_bytes()[..8].try_into().unwrap());
    assert!(
        matches!(e, Error::NotOurs { found_magic } if found_magic == magic),
        "{e:?}"
    );
    assert_mentions(&e, &[&format!("{magic:#018x}"), &format!("{MAGIC:#018x}")]);
}

#[test]
fn error_version_mismatch() {
    // In a file, rewritten through the file system after the creator left.
    let dir = TempDir::new("version");
    let path = dir.join("region");
    make_region_file(&path, RegionOptions::new().size(4096), b"v1");
    patch(&path, field::VERSION, &(VERSION + 1).to_le_bytes());
    let e = err(RegionOptions::new().open_file(&path));
    assert!(
        matches!(e, Error::VersionMismatch { found, expected } if found == VERSION + 1 && expected == VERSION),
        "{e:?}"
    );
    assert_mentions(
        &e,
        &[
            &format!("version {}", VERSION + 1),
            &format!("speaks {VERSION}"),
        ],
    );

    // In a live shm object, through a second mapping of the same object.
    let name = ShmName::new("version");
    let region = RegionOptions::new().size(4096).create_shm(&name).unwrap();
    let object = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.dev_shm())
        .unwrap();
    // SAFETY: a new shared mapping of a 4096-byte prefix of the object, at an
    // address the kernel picks; only written through raw pointers below.
    let raw = unsafe {
        nix::sys::mman::mmap(
            None,
            std::num::NonZeroUsize::new(4096).unwrap(),
            nix::sys::mman::ProtFlags::PROT_READ | nix::sys::mman::ProtFlags::PROT_WRITE,
            nix::sys::mman::MapFlags::MAP_SHARED,
            object.as_fd(),
            0,
        )
    }
    .unwrap();
    // SAFETY: offset 8 is inside the 4096-byte mapping and 4-aligned.
    unsafe {
        raw.cast::<u8>()
            .add(field::VERSION as usize)
            .cast::<u32>()
            .write_volatile(7)
    };
    // SAFETY: our own mapping, no longer used.
    unsafe { nix::sys::mman::munmap(raw, 4096) }.unwrap();
    let e = err(RegionOptions::new().open_shm(&name));
    assert!(
        matches!(e, Error::VersionMismatch { found: 7, .. }),
        "{e:?}"
    );
    drop(region);
}

#[test]
fn error_layout_mismatch() {
    let name = ShmName::new("layout");
    let created = RegionOptions::new()
        .size(4096)
        .type_tag(0x1234)
        .create_shm(&name)
        .unwrap();
    let found = *created.layout();

    // More data than there is.
    let e = err(RegionOptions::new().size(1 << 20).open_shm(&name));
    match &e {
        Error::LayoutMismatch { expected, found: f } => {
            assert_eq!(**f, found);
            assert_eq!(expected.data_size, 1 << 20);
            assert_mentions(&e, &[&expected.to_string(), &found.to_string()]);
        }
        _ => panic!("{e:?}"),
    }
    // Another message type.
    let e = err(RegionOptions::new().type_tag(0x9999).open_shm(&name));
    assert!(matches!(e, Error::LayoutMismatch { .. }), "{e:?}");
    assert_mentions(&e, &["0x9999", "0x1234"]);
    // Another kind.
    let spsc = ipc_core::spsc::layout(1024, 64).unwrap();
    let e = err(RegionOptions::new().layout(spsc).open_shm(&name));
    assert!(matches!(e, Error::LayoutMismatch { .. }), "{e:?}");
    assert_mentions(&e, &["Spsc", "Raw"]);

    // The matching requests succeed.
    RegionOptions::new()
        .type_tag(0x1234)
        .open_shm(&name)
        .unwrap();
    RegionOptions::new().size(1024).open_shm(&name).unwrap();
    RegionOptions::new().open_shm(&name).unwrap();
}

#[test]
fn error_invalid_layout() {
    let dir = TempDir::new("invalid-layout");
    let path = dir.join("region");
    let original = make_region_file(&path, RegionOptions::new().size(4096), b"");
    let cases: [(u64, Vec<u8>, &str); 6] = [
        (
            field::KIND,
            7u32.to_le_bytes().to_vec(),
            "unknown region kind 7",
        ),
        (
            field::HEADER_SIZE,
            128u32.to_le_bytes().to_vec(),
            "header size 128",
        ),
        (
            field::TOTAL_SIZE,
            512u64.to_le_bytes().to_vec(),
            "header says 512 bytes",
        ),
        (
            field::DATA_OFFSET,
            100u64.to_le_bytes().to_vec(),
            "data offset 100",
        ),
        (
            field::DATA_SIZE,
            u64::MAX.to_le_bytes().to_vec(),
            "overruns",
        ),
        (field::CAPACITY, 64u64.to_le_bytes().to_vec(), "no capacity"),
    ];
    for (offset, bytes, reason) in cases {
        fs::write(&path, &original).unwrap();
        patch(&path, offset, &bytes);
        let e = err(RegionOptions::new().open_file(&path));
        assert!(
            matches!(e, Error::InvalidLayout { .. }),
            "offset {offset}: {e:?}"
        );
        assert_mentions(&e, &["invalid region layout", reason]);
    }
    // Not a regular file or memory object at all.
    let e = err(RegionOptions::new().open_file("/dev/null"));
    assert!(matches!(e, Error::InvalidLayout { .. }), "{e:?}");
    assert_mentions(&e, &["/dev/null", "not a regular file"]);
}

#[test]
fn error_truncated() {
    let dir = TempDir::new("truncated");
    // Too small for a header.
    let small = dir.join("small");
    fs::write(&small, [0xAAu8; 100]).unwrap();
    let e = err(RegionOptions::new().open_file(&small));
    assert!(
        matches!(
            e,
            Error::Truncated {
                expected: HEADER_SIZE,
                actual: 100
            }
        ),
        "{e:?}"
    );
    assert_mentions(&e, &["256", "100"]);

    // A header claiming more than the file holds.
    let path = dir.join("region");
    let original = make_region_file(&path, RegionOptions::new().size(4096), b"");
    let len = original.len() as u64;
    patch(&path, field::TOTAL_SIZE, &(len * 2).to_le_bytes());
    let e = err(RegionOptions::new().open_file(&path));
    assert!(
        matches!(e, Error::Truncated { expected, actual } if expected == len * 2 && actual == len),
        "{e:?}"
    );
    assert_mentions(&e, &[&(len * 2).to_string(), &len.to_string()]);

    // A region file someone cut short after its creator left.
    fs::write(&path, &original).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let e = err(RegionOptions::new().open_file(&path));
    assert!(
        matches!(e, Error::Truncated { expected, actual } if expected == len && actual == len / 2),
        "{e:?}"
    );
}

/// Opens `path` with a 200 ms init timeout and checks it gives up in time.
fn assert_init_timeout(path: &Path) {
    let timeout = Duration::from_millis(200);
    let started = Instant::now();
    let e = err(RegionOptions::new().init_timeout(timeout).open_file(path));
    let elapsed = started.elapsed();
    match e {
        Error::InitTimeout { waited } => {
            assert!(waited >= timeout, "gave up after {waited:?}");
            assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
        }
        _ => panic!("{}: {e:?}", path.display()),
    }
    assert_mentions(&e, &["not initialised", "creator may have died"]);
}

#[test]
fn error_init_timeout() {
    let dir = TempDir::new("init-timeout");
    // Sized, never written.
    let zeroes = dir.join("zeroes");
    fs::File::create(&zeroes).unwrap().set_len(4096).unwrap();
    assert_init_timeout(&zeroes);

    // Created, never sized.
    let empty = dir.join("empty");
    fs::File::create(&empty).unwrap();
    assert_init_timeout(&empty);

    // Every field written but the init word not yet published.
    let unpublished = dir.join("unpublished");
    let mut bytes = make_region_file(&unpublished, RegionOptions::new().size(4096), b"");
    bytes[field::INIT as usize..field::INIT as usize + 4].fill(0);
    fs::write(&unpublished, &bytes).unwrap();
    assert_init_timeout(&unpublished);

    // Only the magic written so far.
    let magic_only = dir.join("magic-only");
    let mut bytes = vec![0u8; 4096];
    let at = field::MAGIC as usize;
    bytes[at..at + 8].copy_from_slice(&MAGIC.to_le_bytes());
    fs::write(&magic_only, &bytes).unwrap();
    assert_init_timeout(&magic_only);
}

#[test]
fn opener_waits_for_a_late_publish() {
    let dir = TempDir::new("late-publish");
    let path = dir.join("region");
    let bytes = make_region_file(&path, RegionOptions::new().size(4096), b"late");
    let ready = read_u32(&bytes, field::INIT);
    patch(&path, field::INIT, &0u32.to_le_bytes());
    let opener = {
        let path = path.clone();
        std::thread::spawn(move || {
            RegionOptions::new()
                .init_timeout(CHILD_TIMEOUT)
                .open_file(&path)
        })
    };
    // Publish; the opener may be waiting already or not started yet: either
    // way it must end up with the region.
    patch(&path, field::INIT, &ready.to_le_bytes());
    let region = opener
        .join()
        .unwrap()
        .expect("opener sees the late publish");
    assert_holds(&region, 0, b"late");
}

#[test]
fn error_invalid_name() {
    let long = format!("/{}", "x".repeat(255));
    let cases = [
        ("no-slash", "must start with '/'"),
        ("", "must start with '/'"),
        ("/", "after '/'"),
        ("/inner/slash", "must not contain '/'"),
        (long.as_str(), "longer than 255"),
        ("/nul\0byte", "NUL"),
        ("/..", "not names"),
    ];
    for (name, reason) in cases {
        for result in [
            RegionOptions::new().size(4096).create_shm(name).map(drop),
            RegionOptions::new().open_shm(name).map(drop),
            remove_shm(name),
        ] {
            let e = result.unwrap_err();
            assert!(matches!(e, Error::InvalidName { .. }), "{name:?}: {e:?}");
            assert_mentions(&e, &["invalid shared-memory name", reason]);
        }
    }
    // The longest valid name is accepted.
    let longest = ShmName::new(&"y".repeat(200));
    let padded = format!("{}{}", &*longest, "z".repeat(255 - longest.len()));
    assert_eq!(padded.len(), 255);
    let padded = ShmName(padded);
    RegionOptions::new().size(4096).create_shm(&padded).unwrap();
    // memfd labels.
    let e = err(RegionOptions::new().size(4096).create_memfd("nul\0label"));
    assert!(matches!(e, Error::InvalidName { .. }), "{e:?}");
    let e = err(RegionOptions::new()
        .size(4096)
        .create_memfd(&"m".repeat(250)));
    assert!(matches!(e, Error::InvalidName { .. }), "{e:?}");
    assert_mentions(&e, &["249"]);
}

#[test]
fn error_invalid_size() {
    let e = err(RegionOptions::new().size(0).create_anonymous());
    assert!(
        matches!(e, Error::InvalidSize { requested: 0, .. }),
        "{e:?}"
    );
    assert_mentions(&e, &["invalid region size 0"]);
    let e = err(RegionOptions::new().size(u64::MAX).create_anonymous());
    assert!(
        matches!(
            e,
            Error::InvalidSize {
                requested: u64::MAX,
                ..
            }
        ),
        "{e:?}"
    );
    assert_mentions(&e, &[&u64::MAX.to_string(), "too large"]);
    let e = err(RegionOptions::new().size(u64::MAX / 2).create_memfd("huge"));
    assert!(matches!(e, Error::InvalidSize { .. }), "{e:?}");
    let e = err(RegionOptions::new().create_anonymous());
    assert!(matches!(e, Error::InvalidSize { .. }), "{e:?}");
    assert_mentions(&e, &["no size"]);

    // A rejected size leaves no name behind.
    let name = ShmName::new("invalid-size");
    let e = err(RegionOptions::new().size(u64::MAX).create_shm(&name));
    assert!(matches!(e, Error::InvalidSize { .. }), "{e:?}");
    assert!(!name.dev_shm().exists());
    let dir = TempDir::new("invalid-size");
    let e = err(RegionOptions::new().size(0).create_file(dir.join("region")));
    assert!(matches!(e, Error::InvalidSize { .. }), "{e:?}");
    assert!(!dir.join("region").exists());
}

#[test]
fn error_resource_limit_memlock() {
    // RLIMIT_MEMLOCK of 64 KiB, enforced because the peer drops to an
    // unprivileged uid (root's CAP_IPC_LOCK would bypass it).
    let (_, report) = run_peer(&["mlock-limited", "65536", &(1u64 << 20).to_string()]);
    let message = err_display(&report, "ResourceLimit");
    assert_mentions(&message, &["mlock", "RLIMIT_MEMLOCK", "65536"]);
    // Under the limit, locking works.
    let (_, report) = run_peer(&["mlock-limited", "65536", "4096"]);
    ok_details(&report);
}

#[test]
fn failed_creation_leaves_no_name_behind() {
    // The peer's create fails after the object exists (mlock over the
    // limit); whatever the persist setting, the half-made object is removed.
    let dir = TempDir::new("failed-create");
    // The peer runs unprivileged: let it create files here.
    fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o1777)).unwrap();
    let big = (1u64 << 20).to_string();
    for persist in [&[][..], &["persist"][..]] {
        let name = ShmName::new(&format!("failed-create-{}", persist.len()));
        let path = dir.join(&format!("region-{}", persist.len()));
        let path = path.to_str().unwrap();
        for (kind, target) in [("shm", &*name), ("file", path)] {
            let mut args = vec!["mlock-limited", "65536", &big, kind, target];
            args.extend_from_slice(persist);
            let (_, report) = run_peer(&args);
            err_display(&report, "ResourceLimit");
        }
        assert!(
            !name.dev_shm().exists(),
            "{persist:?}: shm name left behind"
        );
        assert!(!Path::new(path).exists(), "{persist:?}: file left behind");
    }
}

#[test]
fn error_resource_limit_nofile() {
    // RLIMIT_NOFILE of 3 with fds 0..=2 open: no new fd can be made.
    let (_, report) = run_peer(&["nofile-limited", "memfd", "ipc-tests-nofile"]);
    assert_mentions(
        &err_display(&report, "ResourceLimit"),
        &["memfd_create", "RLIMIT_NOFILE"],
    );
    let name = ShmName::new("nofile");
    let (_, report) = run_peer(&["nofile-limited", "shm", &name]);
    assert_mentions(
        &err_display(&report, "ResourceLimit"),
        &["shm_open", "RLIMIT_NOFILE"],
    );
    assert!(!name.dev_shm().exists());
}

fn huge_pages_configured() -> u64 {
    ["nr_hugepages", "nr_overcommit_hugepages"]
        .iter()
        .map(|file| {
            fs::read_to_string(Path::new("/proc/sys/vm").join(file))
                .ok()
                .and_then(|text| text.trim().parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
}

#[test]
fn error_huge_pages_unavailable() {
    let required = RegionOptions::new()
        .size(4096)
        .huge_pages(HugePages::Required);
    // Named objects and files cannot have hugetlb pages at all.
    let name = ShmName::new("huge");
    let e = err(required.create_shm(&name));
    assert!(matches!(e, Error::HugePagesUnavailable { .. }), "{e:?}");
    assert_mentions(&e, &["huge pages required", "shm"]);
    assert!(!name.dev_shm().exists());
    let dir = TempDir::new("huge");
    let e = err(required.create_file(dir.join("region")));
    assert!(matches!(e, Error::HugePagesUnavailable { .. }), "{e:?}");
    assert!(!dir.join("region").exists());

    // Anonymous and memfd regions fail only when the pool is empty.
    for result in [
        required.create_anonymous(),
        required.create_memfd("ipc-tests-huge"),
    ] {
        match result {
            Err(e @ Error::HugePagesUnavailable { .. }) => {
                assert_mentions(&e, &["huge pages required"]);
            }
            Ok(region) => {
                assert!(
                    huge_pages_configured() > 0,
                    "got huge pages from an empty pool"
                );
                assert_eq!(region.len() % (2 << 20), 0);
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    if huge_pages_configured() == 0 {
        assert!(required.create_anonymous().is_err());
    }
    // Best effort never fails.
    RegionOptions::new()
        .size(4 << 20)
        .huge_pages(HugePages::BestEffort)
        .create_anonymous()
        .unwrap();
}

#[test]
fn error_out_of_bounds() {
    let region = RegionOptions::new().size(4096).create_anonymous().unwrap();
    let size = region.data_len();
    region.write_at(size - 4, b"last").unwrap();
    let cases = [
        region.write_at(size, b"x"),
        region.write_at(size - 3, b"last"),
        region.write_at(u64::MAX, b"x"),
        region.read_at(size - 1, &mut [0u8; 2]),
        region.atomic_u64(size - 4).map(drop),
        region.atomic_u64(4).map(drop),
    ];
    for result in cases {
        let e = result.unwrap_err();
        assert!(
            matches!(e, Error::OutOfBounds { size: s, .. } if s == size),
            "{e:?}"
        );
    }
    let e = region.write_at(size, b"xy").unwrap_err();
    assert_mentions(
        &e,
        &[
            &format!("2 bytes at offset {size}"),
            &format!("{size}-byte data area"),
        ],
    );
    region.atomic_u64(size - 8).unwrap();
}

#[test]
fn error_os() {
    let dir = TempDir::new("os");
    // A directory cannot be opened read-write.
    let e = err(RegionOptions::new().open_file(&dir.0));
    match &e {
        Error::Os { call, source } => {
            assert_eq!(*call, "open");
            assert_eq!(source.raw_os_error(), Some(libc::EISDIR));
        }
        _ => panic!("{e:?}"),
    }
    assert_mentions(&e, &["open failed"]);
    assert!(std::error::Error::source(&e).is_some());

    // Sending to a peer that is gone.
    let region = RegionOptions::new().size(4096).create_anonymous().unwrap();
    let (closed, gone) = UnixStream::pair().unwrap();
    drop(gone);
    let e = region.send_fd(&closed).unwrap_err();
    match &e {
        Error::Os { call, source } => {
            assert_eq!(*call, "sendmsg");
            assert_eq!(source.raw_os_error(), Some(libc::EPIPE));
        }
        _ => panic!("{e:?}"),
    }
    let (mut a, b) = UnixStream::pair().unwrap();
    b.set_read_timeout(Some(CHILD_TIMEOUT)).unwrap();
    // A message without an fd, then a closed socket.
    a.write_all(b"x").unwrap();
    let e = err(RegionOptions::new().receive_fd(&b));
    assert!(
        matches!(
            e,
            Error::Os {
                call: "recvmsg",
                ..
            }
        ),
        "{e:?}"
    );
    assert_mentions(&e, &["recvmsg failed", "no fd"]);
    drop(a);
    let e = err(RegionOptions::new().receive_fd(&b));
    assert!(
        matches!(
            e,
            Error::Os {
                call: "recvmsg",
                ..
            }
        ),
        "{e:?}"
    );
}

// ---------------------------------------------------------------------------
// 7. No panic on any header.
// ---------------------------------------------------------------------------

#[test]
fn corrupted_headers_never_panic() {
    use proptest::collection::vec;
    use proptest::option;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    /// (offset, width) of every header field.
    const FIELDS: [(usize, usize); 13] = [
        (0, 8),
        (8, 4),
        (12, 4),
        (16, 4),
        (20, 4),
        (24, 4),
        (28, 4),
        (32, 8),
        (40, 8),
        (48, 8),
        (56, 8),
        (64, 8),
        (72, 8),
    ];

    let dir = TempDir::new("fuzz");
    let raw = make_region_file(&dir.join("raw"), RegionOptions::new().size(4096), b"raw");
    let spsc = make_region_file(
        &dir.join("spsc"),
        RegionOptions::new().layout(ipc_core::spsc::layout(4096, 256).unwrap()),
        b"",
    );
    let ready = u64::from(read_u32(&raw, field::INIT));
    let target = dir.join("case");

    let value = prop_oneof![
        any::<u64>(),
        prop::sample::select(vec![
            0,
            1,
            2,
            7,
            32,
            64,
            128,
            255,
            256,
            384,
            768,
            4095,
            4096,
            4097,
            8192,
            4096 + 512,
            1 << 40,
            u64::from(u32::MAX),
            u64::MAX,
            1 << 63,
            ready,
            MAGIC,
        ]),
        0u64..10_000,
    ];
    let strategy = (
        any::<bool>(),
        vec((0..FIELDS.len(), value), 0..4),
        option::weighted(0.2, (0usize..HEADER_SIZE as usize, vec(any::<u8>(), 1..32))),
        option::weighted(0.2, 0usize..12_000),
    );
    let mut runner = TestRunner::new(Config {
        cases: 1000,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy, |(use_spsc, patches, scribble, new_len)| {
            let mut bytes = if use_spsc { spsc.clone() } else { raw.clone() };
            for (field, value) in patches {
                let (offset, width) = FIELDS[field];
                bytes[offset..offset + width].copy_from_slice(&value.to_le_bytes()[..width]);
            }
            if let Some((offset, data)) = scribble {
                for (i, byte) in data.into_iter().enumerate() {
                    if let Some(slot) = bytes.get_mut(offset + i) {
                        *slot = byte;
                    }
                }
            }
            if let Some(len) = new_len {
                bytes.resize(len, 0);
            }
            fs::write(&target, &bytes).unwrap();
            let opened = RegionOptions::new()
                .init_timeout(Duration::ZERO)
                .open_file(&target);
            let region = match opened {
                Ok(region) => region,
                Err(e) => {
                    // Every error renders.
                    prop_assert!(!e.to_string().is_empty());
                    return Ok(());
                }
            };
            let len = bytes.len() as u64;
            let layout: Layout = *region.layout();
            prop_assert_eq!(region.len(), len);
            prop_assert_eq!(layout.total_size, len);
            prop_assert!(layout.data_offset >= HEADER_SIZE);
            prop_assert!(layout
                .data_offset
                .checked_add(layout.data_size)
                .is_some_and(|end| end <= len));
            prop_assert_eq!(region.data_len(), layout.data_size);
            // Touch every byte of the data area the region claims: a bad
            // bound would read outside the mapping (SIGSEGV/SIGBUS).
            // (Through the raw pointer: `read_at` serves raw regions only.)
            let mut data = vec![0u8; layout.data_size as usize];
            // SAFETY: the data area the region claims is what is under
            // test; nothing else maps this file.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    region.data_ptr().as_ptr(),
                    data.as_mut_ptr(),
                    data.len(),
                )
            };
            let start = layout.data_offset as usize;
            prop_assert_eq!(&data[..], &bytes[start..start + data.len()]);
            if let Some(last) = layout.data_size.checked_sub(1) {
                // SAFETY: as above, the last byte the region claims.
                unsafe { region.data_ptr().as_ptr().add(last as usize).write(0x5A) };
            }
            Ok(())
        })
        .unwrap();
}
