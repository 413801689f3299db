//! Every OS call the library makes, in one place, so that a port to another
//! OS touches only this file. Linux only for now.
//!
//! Functions return `nix::Result`; the caller turns an errno into the
//! [`crate::Error`] variant that fits what it was doing.

use std::ffi::CStr;
use std::io::IoSlice;
use std::num::NonZeroUsize;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::ptr::NonNull;

use nix::errno::Errno;

use crate::sync::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use nix::fcntl::{self, FcntlArg, OFlag, SealFlag};
use nix::sys::memfd::{self, MFdFlags};
use nix::sys::mman::{self, MapFlags, MmapAdvise, ProtFlags};
use nix::sys::socket::{self, ControlMessage, MsgFlags};
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

/// Size of the system's default huge page (`Hugepagesize` in
/// `/proc/meminfo`), read once; 2 MiB, the x86_64 and aarch64 default, when
/// it cannot be read.
pub(crate) fn huge_page_size() -> u64 {
    static SIZE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SIZE.get_or_init(|| {
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|info| parse_huge_page_size(&info))
            .unwrap_or(2 * 1024 * 1024)
    })
}

/// The `Hugepagesize:` line of `/proc/meminfo`, in bytes.
fn parse_huge_page_size(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("Hugepagesize:"))?;
    let mut words = line["Hugepagesize:".len()..].split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    match words.next()? {
        "kB" => value
            .checked_mul(1024)
            .filter(|size| size.is_power_of_two()),
        _ => None,
    }
}

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
    /// Fault every page in, writable, now (Linux 5.14+; `EINVAL` before).
    PopulateWrite,
}

/// `madvise`.
pub(crate) fn advise(ptr: NonNull<u8>, len: u64, advice: Advice) -> nix::Result<()> {
    let advice = match advice {
        Advice::DontDump => MmapAdvise::MADV_DONTDUMP,
        Advice::HugePage => MmapAdvise::MADV_HUGEPAGE,
        Advice::PopulateWrite => MmapAdvise::MADV_POPULATE_WRITE,
    };
    // SAFETY: these advices change how the kernel treats the pages
    // (dumping, page size, whether they are mapped yet), never their
    // contents.
    unsafe { mman::madvise(ptr.cast(), len as usize, advice) }
}

/// `memfd_create(MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL)`,
/// optionally with huge pages. Kernels before 6.3 do not know
/// `MFD_NOEXEC_SEAL` (`EINVAL`); there the memfd is made without it, and is
/// executable by mode, as every memfd was then.
pub(crate) fn memfd_create(name: &CStr, hugetlb: bool) -> nix::Result<OwnedFd> {
    let mut flags = MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING;
    if hugetlb {
        flags |= MFdFlags::MFD_HUGETLB;
    }
    let noexec = MFdFlags::from_bits_retain(libc::MFD_NOEXEC_SEAL as _);
    match memfd::memfd_create(name, flags | noexec) {
        Err(Errno::EINVAL) => memfd::memfd_create(name, flags),
        other => other,
    }
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

/// Whether the object behind `fd` lives on hugetlbfs (a `MFD_HUGETLB`
/// memfd): its pages can be taken away by punching a hole, which no seal
/// but a write seal forbids, and a fault on a hole with no free huge page
/// left is a `SIGBUS`. A failed `fstatfs` counts as hugetlb (guard rather
/// than trust).
pub(crate) fn is_hugetlb(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: statfs is plain data; all-zero is a valid value to overwrite.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: fstatfs writes one `statfs` for a valid fd.
    if unsafe { libc::fstatfs(fd.as_raw_fd(), &mut fs) } != 0 {
        return true;
    }
    fs.f_type == libc::HUGETLBFS_MAGIC
}

/// What `fstat` says of the object behind an fd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileInfo {
    /// Size in bytes.
    pub(crate) size: u64,
    /// A regular file (memfds and shm objects also report `S_IFREG`).
    pub(crate) regular: bool,
    /// Owner's uid.
    pub(crate) uid: u32,
    /// Permission bits.
    pub(crate) mode: u32,
    /// Device and inode: which object it is, whatever its name.
    pub(crate) identity: (u64, u64),
}

fn file_info(st: &libc::stat) -> FileInfo {
    FileInfo {
        size: st.st_size.max(0) as u64,
        regular: (st.st_mode & libc::S_IFMT) == libc::S_IFREG,
        uid: st.st_uid,
        mode: st.st_mode & 0o7777,
        identity: (st.st_dev, st.st_ino),
    }
}

/// `fstat`.
pub(crate) fn fd_info(fd: BorrowedFd<'_>) -> nix::Result<FileInfo> {
    stat::fstat(fd).map(|st| file_info(&st))
}

/// `lstat` of a path (a symbolic link is described, not followed).
pub(crate) fn path_info(path: &Path) -> nix::Result<FileInfo> {
    stat::lstat(path).map(|st| file_info(&st))
}

/// Where Linux keeps POSIX shm objects: `/dev/shm/NAME` for the object
/// `/NAME` (glibc's `shm_open` opens exactly that path).
pub(crate) fn shm_path(name: &CStr) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let name = std::ffi::OsStr::from_bytes(name.to_bytes());
    Path::new("/dev/shm").join(Path::new(name).strip_prefix("/").unwrap_or(Path::new(name)))
}

/// This process's effective uid.
pub(crate) fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Allocates the first `len` bytes of `fd` (`posix_fallocate`), so that a
/// mapping of them never faults for want of space: on tmpfs or a sparse
/// file, `ftruncate` alone allocates nothing, and the first write past the
/// free space would kill the process with `SIGBUS`. `ENOSPC` when the space
/// is not there. File systems without `fallocate` (`EOPNOTSUPP`) are left
/// as they are.
pub(crate) fn allocate(fd: BorrowedFd<'_>, len: u64) -> nix::Result<()> {
    let len = libc::off_t::try_from(len).map_err(|_| Errno::EFBIG)?;
    match fcntl::posix_fallocate(fd, 0, len) {
        Err(Errno::EOPNOTSUPP) => Ok(()),
        other => other,
    }
}

/// How an fd's `flock` is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileLock {
    /// `LOCK_SH`, waiting if needed: held by every process attached to a
    /// named region, for as long as it is attached.
    Shared,
    /// `LOCK_EX | LOCK_NB`: fails with `EWOULDBLOCK` while anyone holds it.
    ExclusiveNow,
}

/// `flock`. The lock belongs to the open file description: the kernel
/// drops it when the last fd of that description closes, e.g. at exit.
pub(crate) fn flock(fd: BorrowedFd<'_>, how: FileLock) -> nix::Result<()> {
    let op = match how {
        FileLock::Shared => libc::LOCK_SH,
        FileLock::ExclusiveNow => libc::LOCK_EX | libc::LOCK_NB,
    };
    loop {
        // SAFETY: flock takes an fd and flags; `fd` is open for the call.
        let rc = unsafe { libc::flock(fd.as_raw_fd(), op) };
        match Errno::result(rc) {
            Err(Errno::EINTR) => continue,
            other => return other.map(drop),
        }
    }
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

/// `open` of a regular file, following no symbolic link in any component
/// of `path` (`ELOOP` if there is one): `openat2` with
/// `RESOLVE_NO_SYMLINKS`, or, where the kernel (before 5.6) or a seccomp
/// filter refuses `openat2`, a walk one component at a time from an fd of
/// the directory before it, each checked not to be a link.
pub(crate) fn open_file(path: &Path, how: OpenHow, mode: u32) -> nix::Result<OwnedFd> {
    let flags = how.flags() | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
    let mode = Mode::from_bits_truncate(mode as libc::mode_t);
    match openat2_no_symlinks(path, flags, mode) {
        Err(Errno::ENOSYS | Errno::EPERM) => open_walking(path, flags, mode),
        other => other,
    }
}

fn openat2_no_symlinks(path: &Path, flags: OFlag, mode: Mode) -> nix::Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: open_how is plain data; all-zero is a valid value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = flags.bits() as u64;
    how.mode = if flags.contains(OFlag::O_CREAT) {
        mode.bits() as u64
    } else {
        0
    };
    how.resolve = libc::RESOLVE_NO_SYMLINKS;
    // SAFETY: a NUL-terminated path and a valid `open_how` of the size
    // passed; the returned fd is ours.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            path.as_ptr(),
            &how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    let fd = Errno::result(fd)?;
    // SAFETY: a new fd, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// [`open_file`] without `openat2`: each directory on the way is opened
/// (`O_PATH | O_NOFOLLOW`) relative to the one before and checked not to
/// be a link, so nothing can swap a link in behind the check.
fn open_walking(path: &Path, flags: OFlag, mode: Mode) -> nix::Result<OwnedFd> {
    use std::path::Component;
    let mut components: Vec<Component<'_>> = path.components().collect();
    let Some(Component::Normal(last)) = components.pop() else {
        return Err(Errno::EISDIR);
    };
    let dir_flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let start = if path.is_absolute() { "/" } else { "." };
    let mut dir = fcntl::open(start, dir_flags, Mode::empty())?;
    for component in components {
        let name: &std::ffi::OsStr = match component {
            Component::RootDir | Component::CurDir => continue,
            Component::ParentDir => "..".as_ref(),
            Component::Normal(name) => name,
            Component::Prefix(_) => return Err(Errno::EINVAL),
        };
        let next = fcntl::openat(
            &dir,
            name,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let st = stat::fstat(&next)?;
        match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => dir = next,
            libc::S_IFLNK => return Err(Errno::ELOOP),
            _ => return Err(Errno::ENOTDIR),
        }
    }
    fcntl::openat(&dir, last, flags, mode)
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
///
/// The control buffer has room for the most fds one message can carry
/// (`SCM_MAX_FD`, 253), and every fd the kernel installed is taken into an
/// `OwnedFd` before anything else is looked at: a sender that packs several
/// fds (or other control messages) into one message leaks none of them into
/// this process; all but the first are closed.
pub(crate) fn recv_fd(socket: BorrowedFd<'_>) -> nix::Result<OwnedFd> {
    const MAX_FDS: usize = 253;
    // u64s keep the buffer aligned for `cmsghdr`; 16 bytes of header plus
    // the fds, rounded up, fit with room to spare.
    let mut control = [0u64; (16 + MAX_FDS * 4) / 8 + 8];
    let mut body = [0u8; 1];
    loop {
        let mut iov = libc::iovec {
            iov_base: body.as_mut_ptr().cast(),
            iov_len: body.len(),
        };
        // SAFETY: msghdr is plain data; all-zero is a valid empty header.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        // SAFETY: `msg` points at `iov`, `body` and `control`, which live on
        // this stack frame for the whole call, with their true lengths.
        let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 {
            match Errno::last() {
                Errno::EINTR => continue,
                e => return Err(e),
            }
        }
        let mut received = None;
        // SAFETY: `msg` was filled by the kernel, which set `msg_controllen`
        // to the bytes of control messages it wrote into `control`.
        let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
        while !cmsg.is_null() {
            // SAFETY: CMSG_FIRSTHDR/NXTHDR return null or a header that lies
            // inside the part of `control` the kernel wrote.
            let header = unsafe { std::ptr::read_unaligned(cmsg) };
            if header.cmsg_level == libc::SOL_SOCKET && header.cmsg_type == libc::SCM_RIGHTS {
                // SAFETY: `cmsg` is a valid header (above); its data follows it.
                let data = unsafe { libc::CMSG_DATA(cmsg) };
                let header_len = data as usize - cmsg as usize;
                let count = (header.cmsg_len as usize).saturating_sub(header_len)
                    / std::mem::size_of::<libc::c_int>();
                for i in 0..count {
                    // SAFETY: the kernel wrote `count` ints after the header,
                    // inside `control`; they may be unaligned.
                    let raw =
                        unsafe { std::ptr::read_unaligned(data.cast::<libc::c_int>().add(i)) };
                    // SAFETY: the kernel just installed `raw` in our fd table
                    // for us; nothing else owns it.
                    let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                    if received.is_none() {
                        received = Some(owned);
                    } // the others close as `owned` drops
                }
            }
            // SAFETY: as for CMSG_FIRSTHDR; `cmsg` is a header inside `msg`.
            cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
        }
        if n == 0 {
            return Err(Errno::ECONNRESET);
        }
        return received.ok_or(Errno::ENODATA);
    }
}

/// This process's id.
pub(crate) fn current_pid() -> u32 {
    nix::unistd::getpid().as_raw() as u32
}

/// What `/proc/PID/stat` says of a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProcStat {
    /// The state letter (`R`, `S`, `T`, `Z`, ...).
    pub(crate) state: u8,
    /// When it started, in clock ticks after boot (field 22).
    pub(crate) start_time: u64,
}

/// Reads this process's `/proc/self/stat` into a stack buffer: no
/// allocation, so it is safe in a child forked from a multi-threaded parent.
/// `/proc/self`, not `/proc/<getpid()>`: in a pid namespace whose `/proc` is
/// the parent namespace's mount, our pid there names another process. `None`
/// when it cannot be read (no `/proc`).
pub(crate) fn own_proc_stat() -> Option<ProcStat> {
    let path = c"/proc/self/stat";
    // SAFETY: `path` is a NUL-terminated static string.
    let raw = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if raw < 0 {
        return None;
    }
    // SAFETY: `open` just returned this fd to us; nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut buf = [0u8; 1024];
    let mut filled = 0;
    while filled < buf.len() {
        match nix::unistd::read(&fd, &mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(Errno::EINTR) => continue,
            Err(_) => return None,
        }
    }
    parse_proc_stat(&buf[..filled])
}

/// `/proc/self/fd/<number>`, built on the stack: no allocation, for code
/// that may run in a forked child.
struct ProcPath {
    bytes: [u8; 48],
}

impl ProcPath {
    fn own_fd(fd: u32) -> ProcPath {
        Self::build(b"/proc/self/fd/", fd, b"")
    }

    fn build(prefix: &[u8], number: u32, tail: &[u8]) -> ProcPath {
        let mut bytes = [0u8; 48];
        let mut digits = [0u8; 10];
        let mut first = digits.len();
        let mut n = number;
        loop {
            first -= 1;
            digits[first] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let mut len = 0;
        for part in [
            prefix,
            &digits[first..],
            if tail.is_empty() { b"" } else { b"/" },
            tail,
        ] {
            bytes[len..len + part.len()].copy_from_slice(part);
            len += part.len();
        }
        ProcPath { bytes }
    }

    fn as_c_str(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.bytes).expect("a zeroed tail ends the path")
    }
}

/// Parses "PID (COMM) STATE PPID ... STARTTIME ...". COMM may hold spaces
/// and ')' itself, so the fields are counted from the last ')'.
fn parse_proc_stat(stat: &[u8]) -> Option<ProcStat> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let mut fields = stat[close + 1..]
        .split(|&b| b == b' ')
        .filter(|f| !f.is_empty());
    let state = *fields.next()?.first()?;
    // STATE is field 3; STARTTIME is field 22, 19 fields further on.
    let start = fields.nth(18)?;
    let start_time = std::str::from_utf8(start).ok()?.trim().parse().ok()?;
    Some(ProcStat { state, start_time })
}

/// Inode of this process's pid namespace (`/proc/self/ns/pid`), or 0.
pub(crate) fn pid_namespace() -> u64 {
    stat::stat(c"/proc/self/ns/pid").map_or(0, |st| st.st_ino)
}

/// A participant's lock: a byte-range lock taken on an open file
/// description of its own, released when the description's last fd closes
/// (at the latest when the process dies). Dropped in the process that took
/// it, it closes the fd; in a child made by `fork` it does nothing (the
/// child's copy of the fd was closed at the fork, see
/// `in_child`).
#[derive(Debug)]
pub(crate) struct HeldLock {
    fd: RawFd,
    pid: u32,
    fork_slot: usize,
}

impl HeldLock {
    /// Whether this is the process that took the lock.
    pub(crate) fn in_this_process(&self) -> bool {
        current_pid() == self.pid
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        if self.in_this_process() {
            // Under the gate, as the listing: a fork between unlisting and
            // closing would hand the child the lock; closing first would let
            // a child close whatever reused the number.
            let _no_fork = ForkGate::enter();
            forget_in_forked_children(self.fork_slot);
            // SAFETY: `fd` was opened by `hold_lock` for this lock alone and
            // is closed once, here, in the process that opened it.
            unsafe { libc::close(self.fd) };
        }
    }
}

fn flock_at(kind: libc::c_short, offset: u64) -> nix::Result<libc::flock> {
    // SAFETY: flock is plain data; all-zero is a valid value.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = kind;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = libc::off_t::try_from(offset).map_err(|_| Errno::EINVAL)?;
    lock.l_len = 1;
    Ok(lock)
}

/// Takes a write lock on byte `offset` of the file behind `fd`, on a new open
/// file description (`/proc/self/fd/N` reopened), without waiting: `EAGAIN`
/// (or `EACCES`) while another description holds it.
///
/// The new fd is listed to be closed in forked children before the lock is
/// taken, and no `fork` can happen between its opening and its listing (see
/// [`ForkGate`]): a child never keeps a copy that would hold the lock after
/// this process died.
pub(crate) fn hold_lock(fd: RawFd, offset: u64) -> nix::Result<HeldLock> {
    let number = u32::try_from(fd).map_err(|_| Errno::EBADF)?;
    let path = ProcPath::own_fd(number);
    let lock = flock_at(libc::F_WRLCK as libc::c_short, offset)?;
    // Dropped (on failure) only once out of the gate: its drop enters it.
    let held = {
        let _no_fork = ForkGate::enter();
        // SAFETY: `path` is a NUL-terminated string on our stack.
        let own = unsafe { libc::open(path.as_c_str().as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if own < 0 {
            return Err(Errno::last());
        }
        // SAFETY: just opened, owned here until handed to `HeldLock`.
        let owned = unsafe { OwnedFd::from_raw_fd(own) };
        let fork_slot = close_in_forked_children(own).ok_or(Errno::EMFILE)?;
        HeldLock {
            fd: std::os::fd::IntoRawFd::into_raw_fd(owned),
            pid: current_pid(),
            fork_slot,
        }
    };
    // SAFETY: F_OFD_SETLK reads one valid `flock`.
    Errno::result(unsafe { libc::fcntl(held.fd, libc::F_OFD_SETLK, &lock) })?;
    Ok(held)
}

/// Keeps `fork` out of the few instructions between opening a participant
/// fd and listing it for closing in children, and between unlisting it and
/// closing it (`HeldLock::drop`). Registrations (and drops) count
/// themselves in; the `pthread_atfork` prepare handler raises `FORKING` and
/// waits for the count to drain; the parent and child handlers lower it.
/// (A Dekker pair: each side stores, then loads the other's word, both
/// SeqCst, so they cannot both miss each other.)
struct ForkGate;

static FORKING: AtomicU32 = AtomicU32::new(0);
static REGISTERING: AtomicU32 = AtomicU32::new(0);

impl ForkGate {
    fn enter() -> ForkGate {
        install_fork_handlers();
        loop {
            // SeqCst: the registering half of the Dekker pair with
            // `before_fork` (see the type's docs).
            REGISTERING.fetch_add(1, Ordering::SeqCst);
            if FORKING.load(Ordering::SeqCst) == 0 {
                return ForkGate;
            }
            REGISTERING.fetch_sub(1, Ordering::SeqCst);
            while FORKING.load(Ordering::Relaxed) != 0 {
                std::thread::yield_now();
            }
        }
    }
}

impl Drop for ForkGate {
    fn drop(&mut self) {
        // Release: the listing is done before a fork may proceed.
        REGISTERING.fetch_sub(1, Ordering::Release);
    }
}

fn install_fork_handlers() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        // SAFETY: the handlers only touch atomics, yield and close fds.
        unsafe { libc::pthread_atfork(Some(before_fork), Some(after_fork), Some(in_child)) };
    });
}

/// `pthread_atfork` prepare handler: waits until no registration is between
/// opening and listing its fd.
extern "C" fn before_fork() {
    // SeqCst: the forking half of the Dekker pair with `ForkGate::enter`.
    FORKING.store(1, Ordering::SeqCst);
    while REGISTERING.load(Ordering::SeqCst) != 0 {
        std::thread::yield_now();
    }
}

/// `pthread_atfork` parent handler.
extern "C" fn after_fork() {
    // Release: nothing to publish beyond the flag itself.
    FORKING.store(0, Ordering::Release);
}

/// `pthread_atfork` child handler: closes the listed fds, reopens the gate.
extern "C" fn in_child() {
    for slot in &FORK_CLOSED {
        // Relaxed: the child is single-threaded here.
        let fd = slot.swap(-1, Ordering::Relaxed);
        if fd >= 0 {
            // SAFETY: the child's copy of a listed fd; its handle does not
            // close it (it checks the pid), so this is the only close.
            unsafe { libc::close(fd) };
        }
    }
    // Relaxed: single-threaded child.
    FORKING.store(0, Ordering::Relaxed);
}

/// Whether any open file description holds a lock on byte `offset` of the
/// file behind `fd` (other than `fd`'s own description).
pub(crate) fn lock_is_held(fd: RawFd, offset: u64) -> nix::Result<bool> {
    let mut lock = flock_at(libc::F_WRLCK as libc::c_short, offset)?;
    // SAFETY: F_OFD_GETLK reads and rewrites one valid `flock`.
    Errno::result(unsafe { libc::fcntl(fd, libc::F_OFD_GETLK, &mut lock) })?;
    Ok(lock.l_type != libc::F_UNLCK as libc::c_short)
}

/// Fds that a child made by `fork` must not keep: participant locks, whose
/// descriptions would otherwise outlive the parent in the child.
const MAX_FORK_CLOSED: usize = 4096;
static FORK_CLOSED: [AtomicI32; MAX_FORK_CLOSED] = [const { AtomicI32::new(-1) }; MAX_FORK_CLOSED];

/// Lists `fd` to be closed in every child this process forks from now on
/// (by the `pthread_atfork` child handler); its slot in the list, or `None`
/// when [`MAX_FORK_CLOSED`] fds are listed already.
fn close_in_forked_children(fd: RawFd) -> Option<usize> {
    FORK_CLOSED.iter().position(|slot| {
        // Relaxed: the list is read in a forked child, after `fork`, which
        // orders everything this thread did before it.
        slot.compare_exchange(-1, fd, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    })
}

/// Takes a listed fd off the list (before closing it).
fn forget_in_forked_children(slot: usize) {
    // Relaxed: as in `close_in_forked_children`.
    FORK_CLOSED[slot].store(-1, Ordering::Relaxed);
}

/// `FUTEX_WAIT` (shared, not `FUTEX_PRIVATE_FLAG`, so that it works across
/// processes): sleeps while `word` holds `expected`, at most `timeout`.
/// Returns on a wake, a timeout, a signal, or at once when the word already
/// differs; the caller re-checks whatever it waits for in every case.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: std::time::Duration) {
    let timeout = libc::timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    count_syscall();
    // SAFETY: `word` is a live, 4-aligned atomic (in shared memory, which is
    // what a non-private futex is for); the timespec lives on our stack.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &timeout as *const libc::timespec,
        )
    };
}

/// `FUTEX_WAKE` of every process and thread sleeping on `word`.
pub(crate) fn futex_wake_all(word: &AtomicU32) {
    count_syscall();
    // SAFETY: `word` is a live, 4-aligned atomic; FUTEX_WAKE only reads its
    // address.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX) };
}

/// Registers this process for `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)`
/// (Linux 4.16+), so that a barrier another process asks for reaches this
/// process's running threads at once. Whether it worked.
pub(crate) fn register_for_membarrier() -> bool {
    // SAFETY: membarrier with a command and no pointers.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_membarrier,
            libc::MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED,
            0,
            0,
        )
    };
    rc == 0
}

/// `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)`: a full memory barrier on
/// every CPU running a thread of a registered process, before it returns.
/// Whether it worked.
pub(crate) fn global_membarrier() -> bool {
    count_syscall();
    // SAFETY: membarrier with a command and no pointers.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_membarrier,
            libc::MEMBARRIER_CMD_GLOBAL_EXPEDITED,
            0,
            0,
        )
    };
    rc == 0
}

/// System calls made on the paths of sending and receiving (futex waits and
/// wakes, barriers), counted so tests and benchmarks can show that a stream
/// whose peer keeps up makes none.
static WAIT_SYSCALLS: AtomicU64 = AtomicU64::new(0);

fn count_syscall() {
    // Relaxed: a statistic.
    WAIT_SYSCALLS.fetch_add(1, Ordering::Relaxed);
}

/// How many wait-path system calls this process has made so far.
pub(crate) fn wait_syscalls() -> u64 {
    // Relaxed: a statistic.
    WAIT_SYSCALLS.load(Ordering::Relaxed)
}

/// A signal's disposition, as `sigaction` reports it.
pub(crate) type SignalAction = libc::sigaction;

/// The current `SIGBUS` action.
pub(crate) fn sigbus_action() -> nix::Result<SignalAction> {
    // SAFETY: sigaction is plain data; all-zero is a valid value to overwrite.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only reads the current one into `old`.
    let rc = unsafe { libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut old) };
    Errno::result(rc).map(|_| old)
}

/// Installs `handler` for `SIGBUS` (`SA_SIGINFO | SA_ONSTACK`, so it runs on
/// a thread's alternate stack where it has one).
pub(crate) fn set_sigbus_handler(
    handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void),
) -> nix::Result<()> {
    // SAFETY: as in `sigbus_action`.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = handler as usize;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
    // SAFETY: `sa_mask` is a valid sigset to empty.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // SAFETY: `action` is a complete, valid action; the handler is
    // async-signal-safe (see `sigbus`).
    let rc = unsafe { libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()) };
    Errno::result(rc).map(drop)
}

/// Puts `SIGBUS` back to its default action, so that a fault that returns
/// from the handler and happens again kills the process as it would have
/// without us.
pub(crate) fn restore_default_sigbus() {
    // SAFETY: as in `sigbus_action`.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = libc::SIG_DFL;
    // SAFETY: a valid default action; async-signal-safe.
    unsafe { libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()) };
}

/// Sends `SIGBUS` to the calling thread. Async-signal-safe.
pub(crate) fn raise_sigbus() {
    // SAFETY: raise is async-signal-safe and takes a signal number.
    unsafe { libc::raise(libc::SIGBUS) };
}

/// Hands a signal to the action that was installed before ours: calls its
/// handler, or, for the default and ignore dispositions, restores the
/// default so that the faulting access, restarted, takes it.
///
/// # Safety
/// Called from a signal handler with the kernel's arguments, unchanged.
pub(crate) unsafe fn pass_signal_on(
    previous: &SignalAction,
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    match previous.sa_sigaction {
        libc::SIG_DFL | libc::SIG_IGN => restore_default_sigbus(),
        handler if previous.sa_flags & libc::SA_SIGINFO != 0 => {
            // SAFETY: an SA_SIGINFO handler has this signature; `handler`
            // is the address sigaction reported for it.
            let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                unsafe { std::mem::transmute(handler) };
            handler(signal, info, context)
        }
        handler => {
            // SAFETY: a plain handler takes the signal number only.
            let handler: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
            handler(signal)
        }
    }
}

/// Replaces `len` bytes of mappings at `start` with private zero pages
/// (`MAP_FIXED`), keeping every address valid. Async-signal-safe.
///
/// # Safety
/// `start..start + len` is a mapping of this process that no Rust reference
/// points into.
pub(crate) unsafe fn map_zeroes_over(start: usize, len: usize) -> nix::Result<()> {
    // SAFETY: the caller's range is ours to replace; MAP_FIXED over it
    // swaps the pages atomically for every thread.
    let ptr = unsafe {
        libc::mmap(
            start as *mut libc::c_void,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_fields_are_counted_from_the_last_parenthesis() {
        let line = b"42 (a) b) c) T 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 100 10";
        let stat = parse_proc_stat(line).unwrap();
        assert_eq!(stat.state, b'T');
        assert_eq!(stat.start_time, 987654);
        assert_eq!(parse_proc_stat(b"42 (x) S 1 2"), None);
    }

    #[test]
    fn this_process_reads_its_own_stat() {
        let stat = own_proc_stat().expect("this machine has /proc");
        assert!(matches!(stat.state, b'R' | b'S'), "{}", stat.state as char);
        assert!(stat.start_time > 0);
        assert_eq!(own_proc_stat().map(|s| s.start_time), Some(stat.start_time));
        assert_ne!(pid_namespace(), 0);
    }

    /// Participant locks taken and dropped on one thread while another
    /// forks: no child ever keeps a lock's fd (it would keep the lock, and
    /// a participant that left or died would look alive). Each child counts
    /// the fds it has on the locked file and exits with that count: only
    /// the test's own fd may be left.
    #[test]
    fn a_lock_dropped_while_forking_is_never_kept_by_a_child() {
        const FORKS: usize = 2000;
        let file = memfd::memfd_create(c"held-lock-fork", MFdFlags::MFD_CLOEXEC).unwrap();
        let target = stat::fstat(&file).unwrap();
        let fd = file.as_raw_fd();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let churn = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut cycles = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // EAGAIN while a child that kept a copy lives.
                    match hold_lock(fd, LOCK_OFFSET) {
                        Ok(held) => drop(held),
                        Err(Errno::EAGAIN) => {}
                        Err(e) => panic!("{e}"),
                    }
                    cycles += 1;
                }
                cycles
            })
        };
        let mut kept = 0;
        for _ in 0..FORKS {
            // SAFETY: the child makes only system calls (no allocation, no
            // lock) and leaves with `_exit`.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork: {}", Errno::last());
            if pid == 0 {
                let mut count = 0;
                for fd in 0..1024 {
                    // SAFETY: `st` is written by a successful `fstat` only.
                    let mut st: libc::stat = unsafe { core::mem::zeroed() };
                    // SAFETY: fstat of any number is harmless; EBADF if closed.
                    let found = unsafe { libc::fstat(fd, &mut st) } == 0;
                    if found && st.st_ino == target.st_ino && st.st_dev == target.st_dev {
                        count += 1;
                    }
                }
                // SAFETY: leaves the child without running the parent's
                // exit handlers or destructors.
                unsafe { libc::_exit(count) };
            }
            let mut status = 0;
            // SAFETY: waits for our own child.
            assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
            assert!(libc::WIFEXITED(status), "child status {status:#x}");
            if libc::WEXITSTATUS(status) != 1 {
                kept += 1;
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let cycles = churn.join().unwrap();
        println!("{FORKS} forks while {cycles} locks were taken and dropped: {kept} children kept a lock's fd");
        assert_eq!(kept, 0);
    }

    /// The walk `open_file` falls back on without `openat2` refuses a link
    /// in any component, as `openat2` does, and opens plain paths.
    #[test]
    fn the_walking_open_follows_no_symlink() {
        let dir = std::env::temp_dir().join(format!("ipc-core-walk-{}", std::process::id()));
        let real = dir.join("real");
        std::fs::create_dir_all(&real).unwrap();
        std::fs::write(real.join("file"), b"x").unwrap();
        std::os::unix::fs::symlink(&real, dir.join("linked")).unwrap();
        std::os::unix::fs::symlink(real.join("file"), real.join("link")).unwrap();
        let rw = OFlag::O_RDWR | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
        let open = |path: &Path, flags| open_walking(path, flags, Mode::from_bits_truncate(0o600));
        assert!(open(&real.join("file"), rw).is_ok());
        assert!(open(&dir.join("real/../real/./file"), rw).is_ok());
        for linked in [
            dir.join("linked/file"),
            real.join("link"),
            dir.join("real/../linked/file"),
        ] {
            assert_eq!(open(&linked, rw).err(), Some(Errno::ELOOP), "{linked:?}");
        }
        let create = rw | OFlag::O_CREAT | OFlag::O_EXCL;
        assert_eq!(
            open(&dir.join("linked/new"), create).err(),
            Some(Errno::ELOOP)
        );
        assert!(!real.join("new").exists());
        assert!(open(&real.join("new"), create).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A lock byte for `a_lock_dropped_while_forking_is_never_kept_by_a_child`:
    /// any will do.
    const LOCK_OFFSET: u64 = 1 << 40;

    #[test]
    fn huge_page_size_is_read_from_meminfo() {
        let info = "MemTotal: 1 kB\nHugepagesize:    1048576 kB\nHugetlb: 0 kB\n";
        assert_eq!(parse_huge_page_size(info), Some(1 << 30));
        assert_eq!(parse_huge_page_size("Hugepagesize: 3 kB\n"), None);
        assert_eq!(parse_huge_page_size("nothing"), None);
        assert!(huge_page_size().is_power_of_two());
    }
}
