//! Shared memory regions: one `MAP_SHARED` mapping with a validated header.
//!
//! A [`Region`] is made by [`RegionOptions`] over one of four backings:
//!
//! | backing | create | attach from another process |
//! |---|---|---|
//! | anonymous | [`RegionOptions::create_anonymous`] | inherited across `fork` |
//! | memfd | [`RegionOptions::create_memfd`] (sealed) | [`Region::send_fd`] + [`RegionOptions::receive_fd`], or [`RegionOptions::open_fd`] on an inherited fd |
//! | POSIX shm | [`RegionOptions::create_shm`], [`RegionOptions::open_or_create_shm`] | [`RegionOptions::open_shm`] |
//! | file | [`RegionOptions::create_file`] | [`RegionOptions::open_file`] |
//!
//! ```
//! use ipc_core::{RegionOptions, Error};
//!
//! let name = format!("/ipc-core-doc-{}", std::process::id());
//! let created = RegionOptions::new().size(4096).create_shm(&name)?;
//! created.write_at(0, b"hello")?;
//!
//! let opened = RegionOptions::new().open_shm(&name)?;
//! let mut buf = [0u8; 5];
//! opened.read_at(0, &mut buf)?;
//! assert_eq!(&buf, b"hello");
//!
//! // Names are created exclusively by default.
//! assert!(matches!(
//!     RegionOptions::new().size(4096).create_shm(&name),
//!     Err(Error::AlreadyExists { .. })
//! ));
//! drop(opened);
//! drop(created); // the creator unlinks the name
//! assert!(matches!(RegionOptions::new().open_shm(&name), Err(Error::NotFound { .. })));
//! # Ok::<(), ipc_core::Error>(())
//! ```

use std::ffi::CString;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use crate::error::{Error, Result};
use crate::layout::{
    Header, Kind, Layout, MessageType, Probe, Published, FLAG_PERSISTENT, HEADER_SIZE, MAGIC,
};
use crate::participants::{Entry, Liveness, Members, Table};
use crate::sigbus::{self, Guard};
use crate::sync::{AtomicU64, Ordering, PoisonFlag, NEVER_POISONED};
use crate::sys::{self, MapFlagsWanted, OpenHow};
use crate::wait::Backoff;

#[cfg(feature = "shared_memory")]
mod shmem_crate;

/// Longest POSIX shm name accepted, leading `/` included (Linux `NAME_MAX`).
pub const MAX_SHM_NAME: usize = 255;

/// Default for how long an opener waits for the creator to publish the header.
pub const DEFAULT_INIT_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether to back the region with huge pages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HugePages {
    /// Normal pages.
    #[default]
    Off,
    /// Ask for transparent huge pages (`MADV_HUGEPAGE`); never fails.
    BestEffort,
    /// Use `MAP_HUGETLB` / `MFD_HUGETLB` pages (anonymous and memfd regions
    /// only); fail with [`Error::HugePagesUnavailable`] if there are none.
    /// The size is rounded up to 2 MiB.
    Required,
}

/// Which kind of memory backs a region.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backing {
    /// `MAP_SHARED | MAP_ANONYMOUS`: shared with children made by `fork`.
    Anonymous,
    /// A sealed memfd, made here or received.
    Memfd,
    /// A POSIX shared-memory object of this name.
    Shm(String),
    /// A file at this path.
    File(PathBuf),
}

/// Options for creating or opening a [`Region`].
///
/// Defaults: mode `0600`, no prefaulting, no `mlock`, normal pages, included
/// in core dumps, not zeroed on drop, named objects removed by their creator
/// on drop, openers wait [`DEFAULT_INIT_TIMEOUT`] for the header, received
/// fds must be sealed, named objects must belong to this user and be
/// writable by nobody else.
#[derive(Clone, Debug)]
pub struct RegionOptions {
    layout: Option<Layout>,
    message_type: Option<MessageType>,
    mode: u32,
    populate: bool,
    lock: bool,
    huge_pages: HugePages,
    dont_dump: bool,
    zero_on_drop: bool,
    persist: bool,
    init_timeout: Duration,
    require_seals: bool,
    trust_foreign: bool,
}

impl Default for RegionOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl RegionOptions {
    /// The defaults listed on the type.
    pub fn new() -> Self {
        RegionOptions {
            layout: None,
            message_type: None,
            mode: 0o600,
            populate: false,
            lock: false,
            huge_pages: HugePages::Off,
            dont_dump: false,
            zero_on_drop: false,
            persist: false,
            init_timeout: DEFAULT_INIT_TIMEOUT,
            require_seals: true,
            trust_foreign: false,
        }
    }

    /// A raw region with at least `bytes` usable bytes after the header,
    /// rounded up to the page size. When opening, the region must have at
    /// least this many.
    pub fn size(mut self, bytes: u64) -> Self {
        self.layout = Some(Layout::raw(bytes));
        self
    }

    /// The layout to create (e.g. [`crate::spsc::layout`]); when opening,
    /// the layout the region must satisfy ([`Layout::satisfies`]).
    pub fn layout(mut self, layout: Layout) -> Self {
        self.layout = Some(layout);
        self
    }

    /// The message-type tag to record (when creating) or require (when
    /// opening); see [`crate::type_tag_of`]. [`message_type`](Self::message_type)
    /// also names the type, for errors and for people.
    pub fn type_tag(mut self, tag: u64) -> Self {
        self.message_type = Some(MessageType {
            tag,
            name: format!("type tag {tag:#x}"),
        });
        self
    }

    /// The type of the region's messages: recorded in the header when
    /// creating; when opening, a region of another type fails with
    /// [`Error::TypeMismatch`], which names both.
    pub fn message_type(mut self, message_type: MessageType) -> Self {
        self.message_type = Some(message_type);
        self
    }

    /// Permission bits for named objects and files, applied exactly,
    /// whatever the umask. Default `0o600`.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode & 0o7777;
        self
    }

    /// Prefault the pages (`MAP_POPULATE`).
    pub fn populate(mut self, yes: bool) -> Self {
        self.populate = yes;
        self
    }

    /// Keep the pages resident (`mlock`); fails with
    /// [`Error::ResourceLimit`] naming `RLIMIT_MEMLOCK` when over the limit.
    pub fn lock(mut self, yes: bool) -> Self {
        self.lock = yes;
        self
    }

    /// Huge pages; see [`HugePages`].
    pub fn huge_pages(mut self, mode: HugePages) -> Self {
        self.huge_pages = mode;
        self
    }

    /// Leave the region out of core dumps (`MADV_DONTDUMP`).
    pub fn dont_dump(mut self, yes: bool) -> Self {
        self.dont_dump = yes;
        self
    }

    /// Zero the whole region before its creating process unmaps it.
    pub fn zero_on_drop(mut self, yes: bool) -> Self {
        self.zero_on_drop = yes;
        self
    }

    /// Keep a named shm object after its creator drops the region.
    pub fn persist(mut self, yes: bool) -> Self {
        self.persist = yes;
        self
    }

    /// How long an opener waits for the creator to publish the header.
    pub fn init_timeout(mut self, timeout: Duration) -> Self {
        self.init_timeout = timeout;
        self
    }

    /// Whether [`open_fd`](Self::open_fd) and [`receive_fd`](Self::receive_fd)
    /// insist on `F_SEAL_SHRINK` (default `true`). Turn it off only for fds
    /// of files whose size nobody else can change.
    pub fn require_seals(mut self, yes: bool) -> Self {
        self.require_seals = yes;
        self
    }

    /// Whether [`open_shm`](Self::open_shm) and [`open_file`](Self::open_file)
    /// accept an object owned by another user, or writable by its group or
    /// by others (default `false`: such objects fail with
    /// [`Error::Untrusted`]). `/dev/shm` is writable by every user, so
    /// anyone can create a name first and fill it with a valid-looking
    /// header; turn this on only when the object is meant to be shared
    /// between users, e.g. created with [`mode`](Self::mode) `0o660` for a
    /// group.
    pub fn trust_foreign(mut self, yes: bool) -> Self {
        self.trust_foreign = yes;
        self
    }

    /// Creates an anonymous shared region, inherited by children after `fork`.
    ///
    /// ```
    /// let region = ipc_core::RegionOptions::new().size(1 << 16).create_anonymous()?;
    /// assert!(region.data_len() >= 1 << 16);
    /// # Ok::<(), ipc_core::Error>(())
    /// ```
    ///
    /// It is a sealed memfd that is never named: children made by `fork`
    /// share its mapping (and its fd), and the fd is what participants'
    /// liveness locks are taken on (see [`crate::participants`]).
    pub fn create_anonymous(&self) -> Result<Region> {
        self.create_sealed(c"ipc-anonymous", Backing::Anonymous)
    }

    /// Creates a sealed memfd region (`name` is only a label shown in
    /// `/proc/PID/fd`). Hand it to another process with [`Region::send_fd`].
    pub fn create_memfd(&self, name: &str) -> Result<Region> {
        let label = CString::new(name).map_err(|_| Error::InvalidName {
            name: name.into(),
            reason: "contains a NUL byte",
        })?;
        if label.as_bytes().len() > 249 {
            return Err(Error::InvalidName {
                name: name.into(),
                reason: "memfd names are limited to 249 bytes",
            });
        }
        self.create_sealed(&label, Backing::Memfd)
    }

    /// A new memfd, sized, allocated, sealed against resizing, mapped and
    /// initialised.
    fn create_sealed(&self, label: &std::ffi::CStr, backing: Backing) -> Result<Region> {
        let layout = self.creation_layout()?;
        let hugetlb = self.huge_pages == HugePages::Required;
        let fd = sys::memfd_create(label, hugetlb).map_err(|e| match e {
            Errno::EINVAL if hugetlb => Error::HugePagesUnavailable {
                reason: "the kernel refused MFD_HUGETLB".into(),
            },
            Errno::EMFILE | Errno::ENFILE => resource_limit("memfd_create", "RLIMIT_NOFILE", e),
            e => Error::os("memfd_create", e),
        })?;
        sys::set_len(fd.as_fd(), layout.total_size).map_err(|e| match e {
            Errno::ENOMEM | Errno::EINVAL if hugetlb => Error::HugePagesUnavailable {
                reason: format!("sizing a hugetlb memfd failed: {e}"),
            },
            e => Error::os("ftruncate", e),
        })?;
        sys::allocate(fd.as_fd(), layout.total_size).map_err(|e| match e {
            Errno::ENOSPC | Errno::ENOMEM if hugetlb => Error::HugePagesUnavailable {
                reason: format!("allocating hugetlb pages failed: {e}"),
            },
            e => allocation_error(e),
        })?;
        sys::seal_size(fd.as_fd()).map_err(|e| Error::os("fcntl(F_ADD_SEALS)", e))?;
        let ptr = sys::map_fd(fd.as_fd(), layout.total_size, self.map_flags(false))
            .map_err(|e| self.map_error(e, hugetlb))?;
        let region = Region::new(ptr, layout, backing, Some(fd), true, self)?;
        region.initialise(self)
    }

    /// Creates the POSIX shm object `name` (`/name`); fails with
    /// [`Error::AlreadyExists`] if it exists. The creator removes the name
    /// when it drops the region, unless [`persist`](Self::persist) is set.
    pub fn create_shm(&self, name: &str) -> Result<Region> {
        let layout = self.creation_layout()?;
        self.refuse_hugetlb("shm")?;
        let cname = shm_name(name)?;
        let fd = sys::shm_open(&cname, OpenHow::CreateExclusive, self.mode)
            .map_err(|e| open_error("shm_open", name, e))?;
        let identity = sys::fd_info(fd.as_fd())
            .map_err(|e| Error::os("fstat", e))?
            .identity;
        let name_of = || Unlink {
            path: sys::shm_path(&cname),
            shm: Some(cname.clone()),
            identity,
        };
        // From here on a failure must not leave the name behind. Only the
        // guard unlinks on failure: were the half-made region to unlink too,
        // the second unlink could remove an object another process created
        // under the freed name in between.
        let cleanup = NameGuard(Some(name_of()));
        let mut region = self.create_on_fd(fd, layout, Backing::Shm(name.into()))?;
        cleanup.disarm();
        region.unlink = (!self.persist).then(name_of);
        Ok(region)
    }

    /// Opens the POSIX shm object `name`, waiting up to the init timeout for
    /// its creator to publish the header, and validates it.
    pub fn open_shm(&self, name: &str) -> Result<Region> {
        let cname = shm_name(name)?;
        let fd = sys::shm_open(&cname, OpenHow::Existing, 0)
            .map_err(|e| open_error("shm_open", name, e))?;
        self.attach_fd(fd, Backing::Shm(name.into()))
    }

    /// Opens `name` if it exists, else creates it. Whoever created it is its
    /// owner and removes it on drop. Fails with [`Error::Contended`] if
    /// others keep creating and removing the name in between our attempts.
    pub fn open_or_create_shm(&self, name: &str) -> Result<Region> {
        const ATTEMPTS: u32 = 64;
        let mut backoff = Backoff::new();
        for _ in 0..ATTEMPTS {
            match self.create_shm(name) {
                Err(Error::AlreadyExists { .. }) => {}
                other => return other,
            }
            match self.open_shm(name) {
                // Removed between our two calls: try creating again.
                Err(Error::NotFound { .. }) => backoff.snooze(),
                other => return other,
            };
        }
        Err(Error::Contended { name: name.into() })
    }

    /// Creates a region in a new file at `path` (exclusively, following no
    /// symbolic link in any component of `path`: pass a path without links,
    /// e.g. `/run`, not `/var/run`). The file stays after the region is
    /// dropped.
    pub fn create_file(&self, path: impl AsRef<Path>) -> Result<Region> {
        let path = path.as_ref();
        let layout = self.creation_layout()?;
        self.refuse_hugetlb("file")?;
        let fd = sys::open_file(path, OpenHow::CreateExclusive, self.mode)
            .map_err(|e| open_error("open", &path.display().to_string(), e))?;
        let identity = sys::fd_info(fd.as_fd())
            .map_err(|e| Error::os("fstat", e))?
            .identity;
        let cleanup = NameGuard(Some(Unlink {
            path: path.to_path_buf(),
            shm: None,
            identity,
        }));
        let region = self.create_on_fd(fd, layout, Backing::File(path.to_path_buf()))?;
        cleanup.disarm();
        Ok(region)
    }

    /// Opens the region in the file at `path` (following no symbolic link in
    /// any component of `path`), checking its size before mapping it.
    pub fn open_file(&self, path: impl AsRef<Path>) -> Result<Region> {
        let path = path.as_ref();
        let fd = sys::open_file(path, OpenHow::Existing, 0)
            .map_err(|e| open_error("open", &path.display().to_string(), e))?;
        self.attach_fd(fd, Backing::File(path.to_path_buf()))
    }

    /// Attaches to a region behind an fd this process inherited or received,
    /// e.g. `unsafe { OwnedFd::from_raw_fd(3) }`. Unless
    /// [`require_seals`](Self::require_seals) is off, the fd must be sealed
    /// against shrinking.
    pub fn open_fd(&self, fd: OwnedFd) -> Result<Region> {
        if self.require_seals
            && !sys::is_sealed_against_shrink(fd.as_fd())
                .map_err(|e| Error::os("fcntl(F_GET_SEALS)", e))?
        {
            return Err(Error::NotSealed);
        }
        self.attach_fd(fd, Backing::Memfd)
    }

    /// Receives a region's fd sent with [`Region::send_fd`] over `socket`
    /// and attaches to it as [`open_fd`](Self::open_fd) does.
    pub fn receive_fd(&self, socket: &UnixStream) -> Result<Region> {
        let fd = sys::recv_fd(socket.as_fd()).map_err(|e| match e {
            Errno::ENODATA => Error::Os {
                call: "recvmsg",
                source: io::Error::new(io::ErrorKind::InvalidData, "message carried no fd"),
            },
            e => Error::os("recvmsg", e),
        })?;
        self.open_fd(fd)
    }

    fn map_flags(&self, hugetlb: bool) -> MapFlagsWanted {
        MapFlagsWanted {
            populate: self.populate,
            hugetlb,
        }
    }

    fn map_error(&self, e: Errno, hugetlb: bool) -> Error {
        match e {
            Errno::ENOMEM | Errno::EINVAL if hugetlb => Error::HugePagesUnavailable {
                reason: format!(
                    "mmap with MAP_HUGETLB failed ({e}); see /proc/sys/vm/nr_hugepages"
                ),
            },
            Errno::EAGAIN if self.populate || self.lock => {
                resource_limit("mmap", "RLIMIT_MEMLOCK", e)
            }
            e => Error::os("mmap", e),
        }
    }

    fn refuse_hugetlb(&self, backing: &str) -> Result<()> {
        if self.huge_pages == HugePages::Required {
            return Err(Error::HugePagesUnavailable {
                reason: format!(
                    "{backing} regions cannot use hugetlb pages; use an anonymous or memfd region"
                ),
            });
        }
        Ok(())
    }

    /// How many bytes a region made with these options takes: its layout's
    /// header, table and data, rounded up to whole pages (to size memory
    /// made elsewhere, e.g. for `create_in_shmem` of the `shared_memory`
    /// feature).
    ///
    /// # Errors
    /// As creating would: [`Error::InvalidSize`] without a size or layout,
    /// or for one too large.
    pub fn region_size(&self) -> Result<u64> {
        Ok(self.creation_layout()?.total_size)
    }

    /// The layout to create: sizes checked, rounded up to whole pages.
    fn creation_layout(&self) -> Result<Layout> {
        let mut layout = self.layout.ok_or(Error::InvalidSize {
            requested: 0,
            reason: "no size or layout given",
        })?;
        if let Some(message_type) = &self.message_type {
            layout.type_tag = message_type.tag;
        }
        if layout.kind == Kind::Raw && layout.data_size == 0 {
            return Err(Error::InvalidSize {
                requested: 0,
                reason: "a region must have at least one byte",
            });
        }
        let granule = if self.huge_pages == HugePages::Required {
            sys::huge_page_size()
        } else {
            sys::page_size()
        };
        let total = layout
            .data_offset
            .checked_add(layout.data_size)
            .and_then(|end| end.checked_next_multiple_of(granule))
            .filter(|&total| total <= isize::MAX as u64 && total <= i64::MAX as u64)
            .ok_or(Error::InvalidSize {
                requested: layout.data_size,
                reason: "too large for this machine",
            })?;
        layout.total_size = total;
        if layout.kind == Kind::Raw {
            layout.data_size = total - layout.data_offset;
        }
        layout.validate(total)?;
        Ok(layout)
    }

    /// Sizes, maps and initialises a freshly created named object or file.
    /// The region removes nothing on drop; the caller arms that on success.
    fn create_on_fd(&self, fd: OwnedFd, layout: Layout, backing: Backing) -> Result<Region> {
        // The mode the caller asked for, whatever the umask took away.
        sys::set_mode(fd.as_fd(), self.mode).map_err(|e| Error::os("fchmod", e))?;
        set_size(fd.as_fd(), layout.total_size)?;
        // Allocate every page now: a mapping of an unallocated tmpfs page
        // that cannot be had later kills the process with SIGBUS.
        sys::allocate(fd.as_fd(), layout.total_size).map_err(allocation_error)?;
        // Held for as long as the fd is open: tells `remove_stale_shm` the
        // object is in use.
        sys::flock(fd.as_fd(), sys::FileLock::Shared).map_err(|e| Error::os("flock", e))?;
        let ptr = sys::map_fd(fd.as_fd(), layout.total_size, self.map_flags(false))
            .map_err(|e| self.map_error(e, false))?;
        let region = Region::new(ptr, layout, backing, Some(fd), true, self)?;
        region.initialise(self)
    }

    fn attach_fd(&self, fd: OwnedFd, backing: Backing) -> Result<Region> {
        let started = Instant::now();
        let mut backoff = Backoff::new();
        let name = backing_name(&backing);
        if let Some(path) = named_path(&backing) {
            if !sys::fd_info(fd.as_fd())
                .map_err(|e| Error::os("fstat", e))?
                .regular
            {
                return Err(not_regular(&name));
            }
            self.check_trust(fd.as_fd(), &name)?;
            // Held while attached: tells `remove_stale_shm` it is in use.
            sys::flock(fd.as_fd(), sys::FileLock::Shared).map_err(|e| Error::os("flock", e))?;
            // A cleaner may have removed the name while we waited for the
            // lock: then this object is an orphan nobody else can open.
            if !same_object(fd.as_fd(), &path) {
                return Err(Error::NotFound { name });
            }
        }
        // A creator sizes its object in one `ftruncate` from 0; wait for that.
        let size = loop {
            let sys::FileInfo { size, regular, .. } =
                sys::fd_info(fd.as_fd()).map_err(|e| Error::os("fstat", e))?;
            if !regular {
                return Err(not_regular(&name));
            }
            if size >= HEADER_SIZE {
                break size;
            }
            if size > 0 {
                return Err(Error::Truncated {
                    expected: HEADER_SIZE,
                    actual: size,
                });
            }
            if started.elapsed() >= self.init_timeout {
                return Err(Error::InitTimeout {
                    waited: started.elapsed(),
                });
            }
            backoff.snooze();
        };
        if size > isize::MAX as u64 {
            return Err(Error::InvalidSize {
                requested: size,
                reason: "too large to map",
            });
        }
        let ptr = sys::map_fd(fd.as_fd(), size, self.map_flags(false))
            .map_err(|e| self.map_error(e, false))?;
        // Provisional layout until the header is read; `Region` unmaps on error.
        let mut region = Region::new(ptr, provisional(size), backing, Some(fd), false, self)?;
        let published = region.wait_for_header(self.init_timeout, started, &mut backoff)?;
        let layout = published.layout;
        layout.validate(size)?;
        if let Some(wanted) = &self.message_type {
            if wanted.tag != 0 && layout.type_tag != wanted.tag {
                return Err(Error::TypeMismatch {
                    expected: wanted.name.clone(),
                    found: if layout.type_tag == 0 {
                        "no message type (raw bytes)".into()
                    } else {
                        published.type_name
                    },
                });
            }
        }
        if let Some(wanted) = self.wanted_layout(&layout) {
            if !layout.satisfies(&wanted) {
                return Err(Error::LayoutMismatch {
                    expected: Box::new(wanted),
                    found: Box::new(layout),
                });
            }
        }
        region.layout = layout;
        region.creator_pid = published.creator_pid;
        region.type_name = published.type_name;
        region.apply_advice(self)?;
        Ok(region)
    }

    /// Refuses an object that another user owns or that others may write,
    /// unless told to trust it.
    fn check_trust(&self, fd: std::os::fd::BorrowedFd<'_>, name: &str) -> Result<()> {
        let info = sys::fd_info(fd).map_err(|e| Error::os("fstat", e))?;
        if self.trust_foreign || (info.uid == sys::effective_uid() && info.mode & 0o022 == 0) {
            return Ok(());
        }
        Err(Error::Untrusted {
            name: name.into(),
            owner: info.uid,
            mode: info.mode,
        })
    }

    /// What an opener insists on, if anything: the layout it gave, or the
    /// region's own layout with the type tag it gave.
    fn wanted_layout(&self, found: &Layout) -> Option<Layout> {
        let mut wanted = match (self.layout, &self.message_type) {
            (None, None) => return None,
            (Some(layout), _) => layout,
            (None, Some(_)) => *found,
        };
        if let Some(message_type) = &self.message_type {
            wanted.type_tag = message_type.tag;
        }
        Some(wanted)
    }
}

/// Removes the POSIX shm object `name`, e.g. one a crashed creator left behind.
/// Processes that have it mapped keep their mapping.
pub fn remove_shm(name: &str) -> Result<()> {
    let cname = shm_name(name)?;
    sys::shm_unlink(&cname).map_err(|e| open_error("shm_unlink", name, e))
}

/// Removes the shm object `name` if it is this library's and stale: no
/// process has it attached, and it was not made to persist. Returns whether
/// it was removed.
///
/// Every process attached to a named region holds a shared `flock` on it
/// for as long as it is attached, and the kernel drops that lock when the
/// process dies; the name is stale when an exclusive `flock` can be taken.
/// So a region being created, or used by anyone, is never removed, whatever
/// pids have been reused. Left alone, with an error saying why: another
/// user's object ([`Error::Untrusted`]), anything that does not start with
/// this library's magic number ([`Error::NotOurs`], including an all-zero
/// object, which a creator that died right after creating the name may
/// leave: remove those with [`remove_shm`]), and regions of another format
/// version. A region made with [`RegionOptions::persist`] is in use by
/// design: this returns `Ok(false)` for it, and [`remove_shm`] removes it.
pub fn remove_stale_shm(name: &str) -> Result<bool> {
    let cname = shm_name(name)?;
    let fd =
        sys::shm_open(&cname, OpenHow::Existing, 0).map_err(|e| open_error("shm_open", name, e))?;
    let options = RegionOptions::new();
    options.check_trust(fd.as_fd(), name)?;
    match sys::flock(fd.as_fd(), sys::FileLock::ExclusiveNow) {
        Err(Errno::EWOULDBLOCK) => return Ok(false),
        other => other.map_err(|e| Error::os("flock", e))?,
    }
    let size = sys::fd_info(fd.as_fd())
        .map_err(|e| Error::os("fstat", e))?
        .size;
    if size < HEADER_SIZE {
        return Err(Error::Truncated {
            expected: HEADER_SIZE,
            actual: size,
        });
    }
    let ptr = sys::map_fd(fd.as_fd(), HEADER_SIZE, options.map_flags(false))
        .map_err(|e| options.map_error(e, false))?;
    let header = Region::new(
        ptr,
        provisional(HEADER_SIZE),
        Backing::Shm(name.into()),
        None,
        false,
        &options,
    )?;
    let persistent = match header.header().probe()? {
        Probe::Ready(published) => published.flags & FLAG_PERSISTENT != 0,
        // Our magic, never published: its creator died while making it
        // (a live creator would hold its shared lock). Relaxed: nothing is
        // read through the magic; it only names the object as ours.
        Probe::Pending if header.header().magic.load(Ordering::Relaxed) == MAGIC => false,
        Probe::Pending => return Err(Error::NotOurs { found_magic: 0 }),
    };
    drop(header);
    if persistent {
        return Ok(false);
    }
    // Still holding the exclusive lock: nobody can attach in between. The
    // name must still be this object, not one made after it was removed.
    let path = sys::shm_path(&cname);
    if !same_object(fd.as_fd(), &path) {
        return Ok(false);
    }
    remove_shm(name)?;
    Ok(true)
}

/// One `MAP_SHARED` mapping, with a validated header, unmapped on drop.
///
/// The process that created a region is its owner: when the owner drops it,
/// a named shm object is unlinked (unless persisted) and the memory is zeroed
/// first if asked. Copies in other processes (attached or inherited by
/// `fork`) only unmap.
pub struct Region {
    ptr: NonNull<u8>,
    len: u64,
    layout: Layout,
    creator_pid: u32,
    /// The header's description of the message type.
    type_name: String,
    backing: Backing,
    fd: Option<OwnedFd>,
    owner_pid: Option<u32>,
    unlink: Option<Unlink>,
    zero_on_drop: bool,
    /// Set for mappings of objects others may shrink (see `sigbus`).
    guard: Option<Guard>,
}

// SAFETY: the mapping is shared memory that every holder accesses through raw
// pointers and atomics only; nothing in `Region` is tied to a thread.
unsafe impl Send for Region {}
// SAFETY: `&Region` only exposes bounds-checked copies and atomics.
unsafe impl Sync for Region {}

impl Region {
    /// Takes over a fresh mapping of `layout.total_size` bytes at `ptr`
    /// (unmapped on drop, errors included). Mappings of objects that others
    /// may shrink under us (named shm objects, files, unsealed fds, hugetlb
    /// memfds) are guarded against `SIGBUS` (see [`Region::is_poisoned`]).
    fn new(
        ptr: NonNull<u8>,
        layout: Layout,
        backing: Backing,
        fd: Option<OwnedFd>,
        owner: bool,
        options: &RegionOptions,
    ) -> Result<Region> {
        let pid = sys::current_pid();
        let mut region = Region {
            ptr,
            len: layout.total_size,
            layout,
            creator_pid: pid,
            type_name: String::new(),
            backing,
            fd,
            owner_pid: owner.then_some(pid),
            unlink: None,
            zero_on_drop: owner && options.zero_on_drop,
            guard: None,
        };
        if region.may_shrink() {
            let guard = Guard::new(ptr, region.len as usize).ok_or_else(|| Error::Os {
                call: "sigaction(SIGBUS)",
                source: io::Error::other(format!(
                    "could not guard the mapping against SIGBUS (at most {} guarded regions per process)",
                    sigbus::MAX_GUARDED
                )),
            })?;
            region.guard = Some(guard);
        }
        Ok(region)
    }

    /// Whether another process could shrink the object behind the mapping,
    /// or take pages from it: a holder of a hugetlb memfd's fd can punch a
    /// hole (not a shrink, so the seals allow it), and a fault there with
    /// no free huge page left is a `SIGBUS`.
    fn may_shrink(&self) -> bool {
        match (&self.backing, &self.fd) {
            (Backing::Anonymous | Backing::Memfd, Some(fd)) => {
                !sys::is_sealed_against_shrink(fd.as_fd()).unwrap_or(false)
                    || sys::is_hugetlb(fd.as_fd())
            }
            _ => true,
        }
    }

    /// The participant table and the liveness to judge it by; `None` when
    /// the layout has no table.
    pub(crate) fn members(&self) -> Option<Members> {
        if self.layout.participants == 0 {
            return None;
        }
        let fd = self.fd.as_ref()?;
        // SAFETY: the table lies right after the header, inside the mapping
        // (the layout was validated: data_offset is past it), 64-aligned.
        let slots = unsafe { self.offset_ptr(HEADER_SIZE) }.cast();
        // SAFETY: `participants` slots there, at most MAX_PARTICIPANTS
        // (validated); the region outlives every user of the table (ring
        // handles hold an `Arc` of it).
        let table = unsafe { Table::new(slots, self.layout.participants as usize) };
        Some(Members {
            table,
            liveness: Liveness::new(fd.as_raw_fd()),
        })
    }

    /// Who is attached: a snapshot of the participant table, dead entries
    /// not yet reaped included. Empty for regions without a table.
    pub fn participants(&self) -> Vec<Entry> {
        self.members()
            .map(|members| members.table.entries(&members.liveness))
            .unwrap_or_default()
    }

    /// Whether the region's memory was lost: another process shrank the
    /// object behind it, a `SIGBUS` followed, and the mapping now reads as
    /// zeroes (see [`Error::Poisoned`]); or a holder of a hugetlb memfd's fd
    /// punched a hole in it and no free huge page was left to fill it.
    /// Always false for other anonymous regions and sealed memfds, which
    /// nobody can shrink.
    pub fn is_poisoned(&self) -> bool {
        // Relaxed: as in `Bytes::is_poisoned`, a flag this process's SIGBUS
        // handler raises once.
        self.poison_flag().load(Ordering::Relaxed)
    }

    /// The flag raised when the memory is lost.
    pub(crate) fn poison_flag(&self) -> &'static PoisonFlag {
        self.guard.as_ref().map_or(&NEVER_POISONED, Guard::poisoned)
    }

    pub(crate) fn poisoned_error(&self) -> Error {
        Error::Poisoned {
            name: backing_name(&self.backing),
        }
    }

    fn header(&self) -> &Header {
        // SAFETY: every region is at least HEADER_SIZE bytes (checked before
        // mapping), page-aligned, and `Header` has only atomic fields, which
        // may be shared with writers in other processes.
        unsafe { self.ptr.cast::<Header>().as_ref() }
    }

    /// Writes and publishes the header of a fresh region.
    fn initialise(mut self, options: &RegionOptions) -> Result<Region> {
        self.apply_advice(options)?;
        // The memory is fresh zeroes, which is every kind's initial state;
        // publishing the header makes it available to openers.
        let flags = if options.persist { FLAG_PERSISTENT } else { 0 };
        if let Some(message_type) = &options.message_type {
            self.type_name = message_type.name.clone();
        }
        self.header()
            .write(&self.layout, self.creator_pid, flags, &self.type_name);
        self.header().publish();
        Ok(self)
    }

    fn apply_advice(&self, options: &RegionOptions) -> Result<()> {
        if options.dont_dump {
            sys::advise(self.ptr, self.len, sys::Advice::DontDump)
                .map_err(|e| Error::os("madvise(MADV_DONTDUMP)", e))?;
        }
        if options.huge_pages == HugePages::BestEffort {
            // Best effort by definition: kernels without THP for this memory say EINVAL.
            let _ = sys::advise(self.ptr, self.len, sys::Advice::HugePage);
        }
        if options.lock {
            sys::lock(self.ptr, self.len).map_err(|e| match e {
                Errno::ENOMEM | Errno::EPERM | Errno::EAGAIN => {
                    resource_limit("mlock", "RLIMIT_MEMLOCK", e)
                }
                e => Error::os("mlock", e),
            })?;
        }
        Ok(())
    }

    fn wait_for_header(
        &self,
        timeout: Duration,
        started: Instant,
        backoff: &mut Backoff,
    ) -> Result<Published> {
        loop {
            match self.header().probe()? {
                Probe::Ready(published) => return Ok(published),
                Probe::Pending if started.elapsed() >= timeout => {
                    return Err(Error::InitTimeout {
                        waited: started.elapsed(),
                    })
                }
                Probe::Pending => {
                    backoff.snooze();
                }
            }
        }
    }

    /// Bytes mapped, header included.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Always false: a region holds at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The validated layout, as read when this process created or attached.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The memory behind the region.
    pub fn backing(&self) -> &Backing {
        &self.backing
    }

    /// The type of the region's messages, as its header records it (tag 0
    /// and an empty name for an untyped region).
    pub fn message_type(&self) -> MessageType {
        MessageType {
            tag: self.layout.type_tag,
            name: self.type_name.clone(),
        }
    }

    /// Pid of the process that created the region (as recorded in its header).
    pub fn creator_pid(&self) -> u32 {
        self.creator_pid
    }

    /// Pointer to the data area ([`Layout::data_offset`]), for code that lays
    /// out its own structures. Other processes may write it at any time:
    /// access it with atomics or raw copies, never through `&`/`&mut`.
    pub fn data_ptr(&self) -> NonNull<u8> {
        // SAFETY: data_offset < total_size was validated, so the pointer is
        // inside the mapping.
        unsafe { self.ptr.add(self.layout.data_offset as usize) }
    }

    /// Bytes in the data area.
    pub fn data_len(&self) -> u64 {
        self.layout.data_size
    }

    fn check_range(&self, offset: u64, len: usize) -> Result<()> {
        match offset.checked_add(len as u64) {
            Some(end) if end <= self.layout.data_size => Ok(()),
            _ => Err(Error::OutOfBounds {
                offset,
                len: len as u64,
                size: self.layout.data_size,
            }),
        }
    }

    /// Copies `bytes` into the data area of a raw region at `offset`.
    ///
    /// Every word is written with atomics (a store for a whole word;
    /// `fetch_and` then `fetch_or` on the bytes of a partial one), so writing
    /// while other processes, or other threads through
    /// [`atomic_u64`](Self::atomic_u64), access the same bytes is no data
    /// race; concurrent writers of the same bytes may interleave by word.
    /// Fails with [`Error::WrongKind`] for a ring region, whose memory
    /// belongs to the ring's handles.
    pub fn write_at(&self, offset: u64, bytes: &[u8]) -> Result<()> {
        self.check_raw_range(offset, bytes.len())?;
        if self.is_poisoned() {
            return Err(self.poisoned_error());
        }
        for span in word_spans(offset, bytes.len()) {
            let word = self.raw_word(span.word);
            let chunk = &bytes[span.index..span.index + span.len];
            if span.len == 8 {
                let value = u64::from_ne_bytes(chunk.try_into().expect("a whole word"));
                // Relaxed: a raw region has no protocol of ours; callers
                // order their own accesses.
                word.store(value, Ordering::Relaxed);
            } else {
                let (mut mask, mut value) = ([0u8; 8], [0u8; 8]);
                mask[span.first..span.first + span.len].fill(0xff);
                value[span.first..span.first + span.len].copy_from_slice(chunk);
                // Relaxed: as above.
                word.fetch_and(!u64::from_ne_bytes(mask), Ordering::Relaxed);
                word.fetch_or(u64::from_ne_bytes(value), Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// Copies `buf.len()` bytes from the data area of a raw region at
    /// `offset` into `buf`, with one atomic load per word, so it is no data
    /// race against any writer; see [`write_at`](Self::write_at).
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.check_raw_range(offset, buf.len())?;
        for span in word_spans(offset, buf.len()) {
            // Relaxed: as in `write_at`.
            let value = self
                .raw_word(span.word)
                .load(Ordering::Relaxed)
                .to_ne_bytes();
            buf[span.index..span.index + span.len]
                .copy_from_slice(&value[span.first..span.first + span.len]);
        }
        // Checked after the copy: zeroes read from lost memory are no data.
        if self.is_poisoned() {
            return Err(self.poisoned_error());
        }
        Ok(())
    }

    /// The 8-byte-aligned word at `offset` in the data area of a raw region,
    /// as an atomic that any process may use concurrently. Fails with
    /// [`Error::WrongKind`] for a ring region.
    pub fn atomic_u64(&self, offset: u64) -> Result<&AtomicU64> {
        self.check_raw_range(offset, 8)?;
        if offset % 8 != 0 {
            return Err(Error::OutOfBounds {
                offset,
                len: 8,
                size: self.layout.data_size,
            });
        }
        Ok(self.raw_word(offset))
    }

    /// Maps every page of the region into this process now, so that the
    /// first accesses of a measurement or a latency-sensitive path take no
    /// page fault (`MADV_POPULATE_WRITE`; on kernels before 5.14, a read of
    /// each page). A child made by `fork` shares the pages but not their
    /// page-table entries, so it calls this too. Changes no byte.
    pub fn prefault(&self) -> Result<()> {
        match sys::advise(self.ptr, self.len, sys::Advice::PopulateWrite) {
            Ok(()) => Ok(()),
            Err(Errno::EINVAL) => {
                let page = sys::page_size() as usize;
                for offset in (0..self.len as usize).step_by(page) {
                    // SAFETY: inside the mapping (`offset < len`) and
                    // 8-aligned (the mapping is page-aligned); an atomic load
                    // may race with any writer.
                    let word = unsafe { &*(self.ptr.as_ptr().add(offset) as *const AtomicU64) };
                    // Relaxed: only the fault matters, not the value.
                    word.load(Ordering::Relaxed);
                }
                Ok(())
            }
            Err(e) => Err(Error::os("madvise(MADV_POPULATE_WRITE)", e)),
        }
    }

    /// Checks that this is a raw region and the range is in its data area.
    fn check_raw_range(&self, offset: u64, len: usize) -> Result<()> {
        if self.layout.kind != Kind::Raw {
            return Err(Error::WrongKind {
                expected: Kind::Raw,
                found: self.layout.kind,
            });
        }
        self.check_range(offset, len)
    }

    /// The word at 8-aligned `offset` of the data area, which the caller
    /// checked lies inside it (the data area's size is whole pages, so the
    /// word holding any byte in it is inside too).
    fn raw_word(&self, offset: u64) -> &AtomicU64 {
        debug_assert!(offset % 8 == 0 && offset + 8 <= self.layout.data_size);
        // SAFETY: in bounds (checked by the caller, and the data area of a
        // raw region is a whole number of pages) and 8-aligned (data_ptr is
        // 128-aligned); an atomic may alias memory other processes write.
        unsafe { &*(self.data_ptr().as_ptr().add(offset as usize) as *const AtomicU64) }
    }

    /// Sends the region's fd over a Unix socket (`SCM_RIGHTS`), to be
    /// received with [`RegionOptions::receive_fd`]. Every region made here
    /// has one (an anonymous region is an unnamed sealed memfd).
    pub fn send_fd(&self, socket: &UnixStream) -> Result<()> {
        let fd = self.fd.as_ref().ok_or_else(|| Error::Os {
            call: "sendmsg",
            source: io::Error::new(
                io::ErrorKind::Unsupported,
                "the region has no file descriptor",
            ),
        })?;
        sys::send_fd(socket.as_fd(), fd.as_fd()).map_err(|e| Error::os("sendmsg", e))
    }

    /// The fd behind the region, if it has one.
    pub fn fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.fd.as_ref().map(|fd| fd.as_fd())
    }

    /// Pointer to byte `offset` of the mapping.
    ///
    /// # Safety
    /// `offset < self.len()`.
    pub(crate) unsafe fn offset_ptr(&self, offset: u64) -> NonNull<u8> {
        debug_assert!(offset < self.len);
        // SAFETY: in bounds by the caller's contract.
        unsafe { self.ptr.add(offset as usize) }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        let owner = self.owner_pid == Some(sys::current_pid());
        if owner && self.zero_on_drop {
            // SAFETY: the mapping is ours and `len` bytes long; other
            // processes may still read it, which is what the caller chose.
            unsafe { std::ptr::write_bytes(self.ptr.as_ptr(), 0, self.len as usize) };
        }
        // Unguard first: the range may be mapped again by anyone once unmapped.
        drop(self.guard.take());
        // SAFETY: the mapping was made by `sys` with this length, and nothing
        // borrowed from `self` outlives it (ring handles hold an `Arc`).
        let _ = unsafe { sys::unmap(self.ptr, self.len) };
        if owner {
            if let Some(unlink) = &self.unlink {
                unlink.remove();
            }
        }
    }
}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Region")
            .field("backing", &self.backing)
            .field("len", &self.len)
            .field("layout", &self.layout)
            .field("creator_pid", &self.creator_pid)
            .finish_non_exhaustive()
    }
}

/// A layout for a mapping of `len` bytes whose header is not read yet.
fn provisional(len: u64) -> Layout {
    Layout {
        total_size: len,
        ..Layout::raw(0)
    }
}

/// A name this process created, to remove on drop (the region's owner) or
/// on a failed creation. Only the object made here is removed: if the name
/// was removed and made again by someone else in the meantime, it is left.
#[derive(Debug)]
struct Unlink {
    /// The object's path: `/dev/shm/NAME` for shm.
    path: PathBuf,
    /// The shm name, for `shm_unlink`; `None` for a file.
    shm: Option<CString>,
    /// Device and inode of the object created.
    identity: (u64, u64),
}

impl Unlink {
    fn remove(&self) {
        // There is no unlink-if-inode call: between this check and the
        // unlink, the name could still be replaced, but no longer at any
        // point of a region's life.
        if sys::path_info(&self.path).map(|info| info.identity) != Ok(self.identity) {
            return;
        }
        let _ = match &self.shm {
            Some(name) => sys::shm_unlink(name).map_err(io::Error::from),
            None => sys::remove_file(&self.path),
        };
    }
}

/// Removes a just-created name unless creation got to the end.
struct NameGuard(Option<Unlink>);

impl NameGuard {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for NameGuard {
    fn drop(&mut self) {
        if let Some(unlink) = self.0.take() {
            unlink.remove();
        }
    }
}

/// The part of a byte range that falls in one 8-byte word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct WordSpan {
    /// Offset of the word.
    word: u64,
    /// First byte of the range within the word.
    first: usize,
    /// Bytes of the range within the word.
    len: usize,
    /// Index of the span's first byte within the range.
    index: usize,
}

/// The words that `len` bytes at `offset` touch, in order.
fn word_spans(offset: u64, len: usize) -> impl Iterator<Item = WordSpan> {
    let mut index = 0;
    std::iter::from_fn(move || {
        if index == len {
            return None;
        }
        let at = offset + index as u64;
        let first = (at % 8) as usize;
        let span = WordSpan {
            word: at - first as u64,
            first,
            len: (8 - first).min(len - index),
            index,
        };
        index += span.len;
        Some(span)
    })
}

/// The path of a named backing, whose name may be removed or replaced by
/// others while we hold the object.
fn named_path(backing: &Backing) -> Option<PathBuf> {
    match backing {
        Backing::Shm(name) => Some(sys::shm_path(&CString::new(name.as_str()).ok()?)),
        Backing::File(path) => Some(path.clone()),
        Backing::Anonymous | Backing::Memfd => None,
    }
}

/// Whether `path` names the object behind `fd`.
fn same_object(fd: std::os::fd::BorrowedFd<'_>, path: &Path) -> bool {
    match (sys::fd_info(fd), sys::path_info(path)) {
        (Ok(ours), Ok(named)) => ours.identity == named.identity,
        _ => false,
    }
}

/// Validates a POSIX shm name: one leading `/`, no other `/`, no NUL, at
/// most [`MAX_SHM_NAME`] bytes.
pub fn shm_name(name: &str) -> Result<CString> {
    let invalid = |reason| {
        Err(Error::InvalidName {
            name: name.into(),
            reason,
        })
    };
    if !name.starts_with('/') {
        return invalid("must start with '/'");
    }
    if name.len() < 2 {
        return invalid("must have a character after '/'");
    }
    if name[1..].contains('/') {
        return invalid("must not contain '/' after the first character");
    }
    if name.len() > MAX_SHM_NAME {
        return invalid("longer than 255 bytes");
    }
    if name == "/." || name == "/.." {
        return invalid("'.' and '..' are not names");
    }
    CString::new(name).or_else(|_| invalid("contains a NUL byte"))
}

fn backing_name(backing: &Backing) -> String {
    match backing {
        Backing::Anonymous => "anonymous region".into(),
        Backing::Memfd => "memfd".into(),
        Backing::Shm(name) => name.clone(),
        Backing::File(path) => path.display().to_string(),
    }
}

fn open_error(call: &'static str, name: &str, e: Errno) -> Error {
    match e {
        Errno::ENOENT => Error::NotFound { name: name.into() },
        Errno::EACCES | Errno::EPERM => Error::PermissionDenied { name: name.into() },
        Errno::EEXIST => Error::AlreadyExists { name: name.into() },
        Errno::ENAMETOOLONG => Error::InvalidName {
            name: name.into(),
            reason: "too long for the file system",
        },
        Errno::ELOOP => Error::SymbolicLink { name: name.into() },
        Errno::EMFILE | Errno::ENFILE => resource_limit(call, "RLIMIT_NOFILE", e),
        e => Error::os(call, e),
    }
}

fn not_regular(name: &str) -> Error {
    Error::InvalidLayout {
        reason: format!("{name} is not a regular file or memory object"),
    }
}

/// A failed `posix_fallocate` of a new object's pages.
/// Sizes a fresh object or file.
fn set_size(fd: std::os::fd::BorrowedFd<'_>, size: u64) -> Result<()> {
    sys::set_len(fd, size).map_err(|e| match e {
        Errno::EFBIG | Errno::ENOSPC => Error::ResourceLimit {
            call: "ftruncate",
            limit: "free space of the backing file system",
            current: None,
            source: io::Error::from_raw_os_error(e as i32),
        },
        e => Error::os("ftruncate", e),
    })
}

fn allocation_error(e: Errno) -> Error {
    match e {
        Errno::ENOSPC | Errno::EFBIG | Errno::ENOMEM => Error::ResourceLimit {
            call: "posix_fallocate",
            limit: "free space of the backing file system",
            current: None,
            source: io::Error::from_raw_os_error(e as i32),
        },
        e => Error::os("posix_fallocate", e),
    }
}

fn resource_limit(call: &'static str, limit: &'static str, e: Errno) -> Error {
    let current = match limit {
        "RLIMIT_MEMLOCK" => sys::memlock_limit(),
        _ => None,
    };
    Error::ResourceLimit {
        call,
        limit,
        current,
        source: io::Error::from_raw_os_error(e as i32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_spans_cover_a_range_word_by_word() {
        let spans: Vec<_> = word_spans(5, 13).collect();
        assert_eq!(
            spans,
            [
                WordSpan {
                    word: 0,
                    first: 5,
                    len: 3,
                    index: 0
                },
                WordSpan {
                    word: 8,
                    first: 0,
                    len: 8,
                    index: 3
                },
                WordSpan {
                    word: 16,
                    first: 0,
                    len: 2,
                    index: 11
                },
            ]
        );
        assert_eq!(word_spans(16, 0).count(), 0);
        assert_eq!(
            word_spans(3, 2).collect::<Vec<_>>(),
            [WordSpan {
                word: 0,
                first: 3,
                len: 2,
                index: 0
            }]
        );
    }

    #[test]
    fn partial_word_writes_keep_the_neighbouring_bytes() {
        let region = RegionOptions::new().size(64).create_anonymous().unwrap();
        region.write_at(0, &[0xEE; 24]).unwrap();
        region.write_at(5, b"abcdefghijk").unwrap();
        let mut all = [0u8; 24];
        region.read_at(0, &mut all).unwrap();
        assert_eq!(
            &all,
            b"\xEE\xEE\xEE\xEE\xEEabcdefghijk\xEE\xEE\xEE\xEE\xEE\xEE\xEE\xEE"
        );
        let mut middle = [0u8; 3];
        region.read_at(7, &mut middle).unwrap();
        assert_eq!(&middle, b"cde");
    }
}
