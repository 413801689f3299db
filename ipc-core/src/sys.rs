//! Every OS call the library makes, in one place, so that a port to another
//! OS touches only this file. Linux only for now.
//!
//! Functions return `nix::Result`; the caller turns an errno into the
//! [`crate::Error`] variant that fits what it was doing.

use std::ffi::CStr;
use std::io::{IoSlice, IoSliceMut};
use std::num::NonZeroUsize;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::ptr::NonNull;

use nix::errno::Errno;
use nix::fcntl::{self, FcntlArg, OFlag, SealFlag};
use nix::sys::memfd::{self, MFdFlags};
use nix::sys::mman::{self, MapFlags, MmapAdvise, ProtFlags};
use nix::sys::socket::{self, ControlMessage, ControlMessageOwned, MsgFlags};
use nix::sys::stat::{self, Mode};

/// The system page size.
pub(crate) fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as u64
    } else {
        4096
    }
}

/// Size of the default huge page (2 MiB on x86_64 and aarch64 with 4 KiB pages).
pub(crate) const HUGE_PAGE_SIZE: u64 = 2 * 1024 * 1024;

/// What a new mapping asks for beyond read/write sharing.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct MapFlagsWanted {
    pub(crate) populate: bool,
    pub(crate) hugetlb: bool,
}

impl MapFlagsWanted {
    fn flags(self) -> MapFlags {
        let mut flags = MapFlags::MAP_SHARED;
        if self.populate {
            flags |= MapFlags::MAP_POPULATE;
        }
        if self.hugetlb {
            flags |= MapFlags::MAP_HUGETLB;
        }
        flags
    }
}

fn non_zero(len: u64) -> nix::Result<NonZeroUsize> {
    usize::try_from(len)
        .ok()
        .and_then(NonZeroUsize::new)
        .ok_or(Errno::EINVAL)
}

/// `mmap(MAP_SHARED | MAP_ANONYMOUS)`, readable and writable, never executable.
pub(crate) fn map_anonymous(len: u64, wanted: MapFlagsWanted) -> nix::Result<NonNull<u8>> {
    // SAFETY: a new anonymous mapping at an address the kernel picks aliases
    // nothing that exists.
    let ptr = unsafe {
        mman::mmap_anonymous(
            None,
            non_zero(len)?,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            wanted.flags(),
        )
    }?;
    Ok(ptr.cast())
}

/// `mmap(MAP_SHARED)` of the first `len` bytes of `fd`.
pub(crate) fn map_fd(
    fd: BorrowedFd<'_>,
    len: u64,
    wanted: MapFlagsWanted,
) -> nix::Result<NonNull<u8>> {
    // SAFETY: a new mapping at an address the kernel picks aliases nothing in
    // this process; the caller checked that the object has `len` bytes.
    let ptr = unsafe {
        mman::mmap(
            None,
            non_zero(len)?,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            wanted.flags(),
            fd,
            0,
        )
    }?;
    Ok(ptr.cast())
}

/// `munmap`.
///
/// # Safety
/// `ptr..ptr + len` is a mapping made by this module that nothing uses any more.
pub(crate) unsafe fn unmap(ptr: NonNull<u8>, len: u64) -> nix::Result<()> {
    // SAFETY: the caller guarantees the mapping is ours and unused.
    unsafe { mman::munmap(ptr.cast(), len as usize) }
}

/// `mlock`.
pub(crate) fn lock(ptr: NonNull<u8>, len: u64) -> nix::Result<()> {
    // SAFETY: mlock only changes residency of pages we mapped; it does not
    // touch their contents.
    unsafe { mman::mlock(ptr.cast(), len as usize) }
}

/// The soft `RLIMIT_MEMLOCK` in bytes, if it can be read.
pub(crate) fn memlock_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` through a valid pointer.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) };
    (rc == 0).then_some(limit.rlim_cur)
}

/// Advice for a mapping.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Advice {
    /// Leave out of core dumps.
    DontDump,
    /// Back with transparent huge pages where possible.
    HugePage,
}

/// `madvise`.
pub(crate) fn advise(ptr: NonNull<u8>, len: u64, advice: Advice) -> nix::Result<()> {
    let advice = match advice {
        Advice::DontDump => MmapAdvise::MADV_DONTDUMP,
        Advice::HugePage => MmapAdvise::MADV_HUGEPAGE,
    };
    // SAFETY: these two advices change how the kernel treats the pages
    // (dumping, page size), never their contents.
    unsafe { mman::madvise(ptr.cast(), len as usize, advice) }
}

/// `memfd_create(MFD_CLOEXEC | MFD_ALLOW_SEALING)`, optionally with huge pages.
pub(crate) fn memfd_create(name: &CStr, hugetlb: bool) -> nix::Result<OwnedFd> {
    let mut flags = MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING;
    if hugetlb {
        flags |= MFdFlags::MFD_HUGETLB;
    }
    memfd::memfd_create(name, flags)
}

/// Seals a memfd against shrinking, growing and further sealing.
pub(crate) fn seal_size(fd: BorrowedFd<'_>) -> nix::Result<()> {
    let seals = SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SEAL;
    fcntl::fcntl(fd, FcntlArg::F_ADD_SEALS(seals)).map(drop)
}

/// Whether `fd` is sealed against shrinking (`EINVAL` for non-memfds means no).
pub(crate) fn is_sealed_against_shrink(fd: BorrowedFd<'_>) -> nix::Result<bool> {
    match fcntl::fcntl(fd, FcntlArg::F_GET_SEALS) {
        Ok(bits) => Ok(SealFlag::from_bits_truncate(bits).contains(SealFlag::F_SEAL_SHRINK)),
        Err(Errno::EINVAL) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Size in bytes of the object behind `fd`, and whether it is a regular file
/// (or memfd/shm object, which also report `S_IFREG`).
pub(crate) fn fd_size(fd: BorrowedFd<'_>) -> nix::Result<(u64, bool)> {
    let st = stat::fstat(fd)?;
    let regular = (st.st_mode & libc::S_IFMT) == libc::S_IFREG;
    Ok((st.st_size.max(0) as u64, regular))
}

/// `ftruncate`.
pub(crate) fn set_len(fd: BorrowedFd<'_>, len: u64) -> nix::Result<()> {
    let len = libc::off_t::try_from(len).map_err(|_| Errno::EFBIG)?;
    nix::unistd::ftruncate(fd, len)
}

/// `fchmod`: sets the exact mode, whatever the umask did at creation.
pub(crate) fn set_mode(fd: BorrowedFd<'_>, mode: u32) -> nix::Result<()> {
    stat::fchmod(fd, Mode::from_bits_truncate(mode as libc::mode_t))
}

/// How to open a named object or file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpenHow {
    /// Create it; fail with `EEXIST` if it exists.
    CreateExclusive,
    /// Open it; fail with `ENOENT` if it does not exist.
    Existing,
}

impl OpenHow {
    fn flags(self) -> OFlag {
        match self {
            OpenHow::CreateExclusive => OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL,
            OpenHow::Existing => OFlag::O_RDWR,
        }
    }
}

/// `shm_open`.
pub(crate) fn shm_open(name: &CStr, how: OpenHow, mode: u32) -> nix::Result<OwnedFd> {
    mman::shm_open(
        name,
        how.flags() | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(mode as libc::mode_t),
    )
}

/// `shm_unlink`.
pub(crate) fn shm_unlink(name: &CStr) -> nix::Result<()> {
    mman::shm_unlink(name)
}

/// `open` of a regular file, never following a final symbolic link.
pub(crate) fn open_file(path: &Path, how: OpenHow, mode: u32) -> nix::Result<OwnedFd> {
    fcntl::open(
        path,
        how.flags() | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::from_bits_truncate(mode as libc::mode_t),
    )
}

/// Removes a file (a region's backing file whose creation failed).
pub(crate) fn remove_file(path: &Path) -> std::io::Result<()> {
    std::fs::remove_file(path)
}

/// Sends `fd` over the Unix socket `socket` (`SCM_RIGHTS`) with a one-byte body.
pub(crate) fn send_fd(socket: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> nix::Result<()> {
    let fds = [fd.as_raw_fd()];
    let body = [b'F'];
    let iov = [IoSlice::new(&body)];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    loop {
        match socket::sendmsg::<()>(
            socket.as_raw_fd(),
            &iov,
            &cmsg,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(_) => return Ok(()),
        }
    }
}

/// Receives one fd sent by [`send_fd`]. `ENODATA` when the message carried
/// none, `ECONNRESET` when the peer closed the socket first.
pub(crate) fn recv_fd(socket: BorrowedFd<'_>) -> nix::Result<OwnedFd> {
    let mut body = [0u8; 1];
    let mut cmsg_space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    loop {
        let mut iov = [IoSliceMut::new(&mut body)];
        let msg = match socket::recvmsg::<()>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg_space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(msg) => msg,
        };
        if msg.bytes == 0 {
            return Err(Errno::ECONNRESET);
        }
        let mut received = None;
        for cmsg in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(fds) = cmsg {
                for raw in fds {
                    // SAFETY: the kernel just installed `raw` in our fd table
                    // for us; nothing else owns it.
                    let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                    if received.is_none() {
                        received = Some(owned);
                    } // extra fds are closed by dropping them
                }
            }
        }
        return received.ok_or(Errno::ENODATA);
    }
}

/// This process's id.
pub(crate) fn current_pid() -> u32 {
    nix::unistd::getpid().as_raw() as u32
}

/// Whether a process with this pid is alive (it may be a reused pid).
///
/// A zombie (exited, not yet reaped by its parent) is dead: it will never run
/// again, yet `kill(pid, 0)` still succeeds on it, so `/proc` is asked too.
pub(crate) fn process_exists(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // EPERM means it exists but belongs to someone else.
    let exists = !matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Err(Errno::ESRCH)
    );
    exists && !is_zombie(pid)
}

/// Whether `/proc/PID/stat` says the process has exited (state `Z` or `X`).
/// False when it cannot tell (no `/proc`).
fn is_zombie(pid: i32) -> bool {
    let Ok(stat) = std::fs::read(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "PID (COMM) STATE ...": COMM may itself hold ')' and spaces, so the
    // state follows the last ')'.
    let Some(close) = stat.iter().rposition(|&b| b == b')') else {
        return false;
    };
    matches!(stat.get(close + 2), Some(b'Z' | b'X'))
}
