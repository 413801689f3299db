//! Regions in shared memory made by the `shared_memory` crate (the
//! `shared_memory` feature), for programs that already use it.
//!
//! `shared_memory` 0.12.4 (its last release, 2022; it needs nix 0.23 and
//! rand 0.8, so the feature adds them to the build) makes a POSIX shm
//! object with `O_CREAT | O_EXCL`, mode 0600, sized with `ftruncate` only
//! (pages come on first touch), and maps it. A `Shmem` hands out its
//! pointer and its object's name (`get_os_id`), not its fd; opening trusts
//! the object's size, owner and mode as found; its owner removes the name
//! on drop by name, whatever object the name then holds, and so does a
//! child that drops a copy it inherited across `fork`.
//!
//! So a region takes only the name from a `Shmem`: it opens the name
//! itself, proves that this is the very object the `Shmem` maps (device and
//! inode, from the `/proc/self/maps` line of its pointer: a name replaced
//! in between is refused), and maps and checks it as [`open_shm`] does:
//! owner and mode, `SIGBUS` guard, header, participants' locks on its own
//! fd. Creating also allocates every page the ring uses, which the crate
//! does not. The ring lives in the same memory as the `Shmem`'s mapping, in
//! a mapping of the region's own; the `Shmem` keeps its mapping and its
//! owner keeps removing the name.
//!
//! [`open_shm`]: RegionOptions::open_shm

use std::os::fd::{AsFd, OwnedFd};

use shared_memory::Shmem;

use super::{open_error, shm_name, Backing, Region, RegionOptions};
use crate::error::{Error, Result};
use crate::sys::{self, OpenHow};

impl RegionOptions {
    /// Creates a region in the shm object `shmem` maps: one this process
    /// created with `shared_memory::ShmemConf::create` (its owner), of
    /// exactly [`region_size`](Self::region_size) bytes, and not holding a
    /// region yet.
    /// Unlike [`create_shm`](Self::create_shm) the region removes no name:
    /// the `Shmem`'s owner does, when it is dropped.
    ///
    /// ```
    /// use ipc_core::{spsc, RegionOptions};
    /// use shared_memory::ShmemConf;
    ///
    /// let options = RegionOptions::new().layout(spsc::layout(1 << 16, 1024)?);
    /// let shmem = ShmemConf::new().size(options.region_size()? as usize).create()?;
    /// let region = options.create_in_shmem(&shmem)?;
    /// // Another process: ShmemConf::new().os_id(id).open(), then open_in_shmem.
    /// let opened = RegionOptions::new().open_in_shmem(&shmem)?;
    /// let (mut tx, mut rx) = (spsc::Producer::attach(region)?, spsc::Consumer::attach(opened)?);
    /// tx.try_send(b"hello")?;
    /// assert_eq!(&*rx.try_recv()?, b"hello");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] when `shmem` is not this process's own or
    /// already holds a region, [`Error::InvalidSize`] when its size is not
    /// the region's, [`Error::Replaced`] when its name now names another
    /// object, and what [`create_shm`](Self::create_shm) reports.
    pub fn create_in_shmem(&self, shmem: &Shmem) -> Result<Region> {
        let layout = self.creation_layout()?;
        self.refuse_hugetlb("shm")?;
        let (name, fd) = open_mapped_object(shmem)?;
        if !shmem.is_owner() {
            // Only the creator can know that nobody else initialises it.
            return Err(Error::AlreadyExists { name });
        }
        // Exactly: openers check that the header describes the whole object.
        if shmem.len() as u64 != layout.total_size {
            return Err(Error::InvalidSize {
                requested: shmem.len() as u64,
                reason: "a shared_memory mapping must be the options' region_size() exactly",
            });
        }
        self.check_trust(fd.as_fd(), &name)?;
        if holds_a_header(&fd)? {
            return Err(Error::AlreadyExists { name });
        }
        self.create_on_fd(fd, layout, Backing::Shm(name))
    }

    /// Opens the region in the shm object `shmem` maps (made by
    /// [`create_in_shmem`](Self::create_in_shmem) in this process or
    /// another), validating it as [`open_shm`](Self::open_shm) does.
    ///
    /// # Errors
    /// [`Error::Replaced`] when `shmem`'s name now names another object,
    /// and what [`open_shm`](Self::open_shm) reports.
    pub fn open_in_shmem(&self, shmem: &Shmem) -> Result<Region> {
        let (name, fd) = open_mapped_object(shmem)?;
        self.attach_fd(fd, Backing::Shm(name))
    }
}

/// Opens the name of `shmem`'s object and checks that it is the object
/// `shmem` maps; its name as this crate writes it (one leading `/`).
fn open_mapped_object(shmem: &Shmem) -> Result<(String, OwnedFd)> {
    // The crate passes its id to `shm_open` as is, and glibc drops leading
    // slashes: "x", "/x" and "//x" are one object.
    let name = format!("/{}", shmem.get_os_id().trim_start_matches('/'));
    let cname = shm_name(&name)?;
    let fd = sys::shm_open(&cname, OpenHow::Existing, 0)
        .map_err(|e| open_error("shm_open", &name, e))?;
    let (device, inode) = sys::fd_info(fd.as_fd())
        .map_err(|e| Error::os("fstat", e))?
        .identity;
    let ours = (libc::major(device), libc::minor(device), inode);
    match mapped_object(shmem.as_ptr() as usize)? {
        Some(mapped) if mapped == ours => Ok((name, fd)),
        _ => Err(Error::Replaced { name }),
    }
}

/// The device (major, minor) and inode of the file mapped at `address` in
/// this process, from `/proc/self/maps`; `None` if nothing is mapped there.
fn mapped_object(address: usize) -> Result<Option<(u32, u32, u64)>> {
    let maps = std::fs::read_to_string("/proc/self/maps").map_err(|e| Error::Os {
        call: "read(/proc/self/maps)",
        source: e,
    })?;
    Ok(maps.lines().find_map(|line| {
        // start-end perms offset major:minor inode [path]
        let mut fields = line.split_ascii_whitespace();
        let (start, end) = fields.next()?.split_once('-')?;
        let (start, end) = (
            usize::from_str_radix(start, 16).ok()?,
            usize::from_str_radix(end, 16).ok()?,
        );
        if !(start..end).contains(&address) {
            return None;
        }
        let (major, minor) = fields.nth(2)?.split_once(':')?;
        let inode = fields.next()?.parse().ok()?;
        Some((
            u32::from_str_radix(major, 16).ok()?,
            u32::from_str_radix(minor, 16).ok()?,
            inode,
        ))
    }))
}

/// Whether the object already starts with something other than zeroes
/// where a header's magic goes.
fn holds_a_header(fd: &OwnedFd) -> Result<bool> {
    let mut magic = [0u8; 8];
    let read =
        nix::sys::uio::pread(fd.as_fd(), &mut magic, 0).map_err(|e| Error::os("pread", e))?;
    Ok(magic[..read].iter().any(|&byte| byte != 0))
}

#[cfg(test)]
mod tests {
    use shared_memory::ShmemConf;

    use super::*;
    use crate::spsc;

    fn layout() -> crate::Layout {
        spsc::layout(1 << 14, 256).unwrap()
    }

    fn size() -> usize {
        RegionOptions::new().layout(layout()).region_size().unwrap() as usize
    }

    #[test]
    fn a_ring_lives_in_a_shmem_and_is_opened_through_another() {
        let shmem = ShmemConf::new().size(size()).create().unwrap();
        let created = RegionOptions::new()
            .layout(layout())
            .create_in_shmem(&shmem)
            .unwrap();
        let again = ShmemConf::new().os_id(shmem.get_os_id()).open().unwrap();
        let opened = RegionOptions::new().open_in_shmem(&again).unwrap();
        assert_eq!(opened.layout(), created.layout());
        let (mut tx, mut rx) = spsc::channel(opened).unwrap();
        tx.try_send(b"through shared_memory").unwrap();
        assert_eq!(&*rx.try_recv().unwrap(), b"through shared_memory");
        // The bytes are in the crate's own mapping too.
        let magic = u64::from_ne_bytes(
            // SAFETY: the mapping is at least a header long; the header's
            // magic is written once, before this read, by this thread.
            unsafe { *shmem.as_ptr().cast::<[u8; 8]>() },
        );
        assert_eq!(magic, crate::layout::MAGIC);
    }

    #[test]
    fn refuses_a_shmem_of_another_size_or_already_holding_a_region() {
        for wrong in [4096, size() + 4096] {
            let shmem = ShmemConf::new().size(wrong).create().unwrap();
            assert!(matches!(
                RegionOptions::new()
                    .layout(layout())
                    .create_in_shmem(&shmem),
                Err(Error::InvalidSize { .. })
            ));
        }
        let shmem = ShmemConf::new().size(size()).create().unwrap();
        let _first = RegionOptions::new()
            .layout(layout())
            .create_in_shmem(&shmem)
            .unwrap();
        assert!(matches!(
            RegionOptions::new()
                .layout(layout())
                .create_in_shmem(&shmem),
            Err(Error::AlreadyExists { .. })
        ));
        let opened = ShmemConf::new().os_id(shmem.get_os_id()).open().unwrap();
        assert!(matches!(
            RegionOptions::new()
                .layout(layout())
                .create_in_shmem(&opened),
            Err(Error::AlreadyExists { .. })
        ));
    }

    #[test]
    fn refuses_a_name_that_now_names_another_object() {
        let shmem = ShmemConf::new().size(size()).create().unwrap();
        let name = format!("/{}", shmem.get_os_id().trim_start_matches('/'));
        // Another process removes the name and makes a new object under it.
        crate::remove_shm(&name).unwrap();
        let impostor = RegionOptions::new()
            .layout(layout())
            .create_shm(&name)
            .unwrap();
        assert!(matches!(
            RegionOptions::new()
                .layout(layout())
                .create_in_shmem(&shmem),
            Err(Error::Replaced { .. })
        ));
        assert!(matches!(
            RegionOptions::new().open_in_shmem(&shmem),
            Err(Error::Replaced { .. })
        ));
        drop(impostor);
    }
}
