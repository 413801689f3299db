//! The one module that imports atomics and cells.
//!
//! Under `cfg(ipc_core_loom)` the atomics come from loom, so the ring algorithms in
//! [`crate::spsc`] are model-checked on heap memory; otherwise they are
//! `core`'s atomics, laid out in the shared mapping.
//!
//! [`Bytes`] is the ring's view of its data area. Payload bytes are read and
//! written through raw pointers; record headers, which double as commit
//! words, through [`Bytes::word`] as atomics. Loom cannot see raw-pointer
//! accesses, so under `cfg(ipc_core_loom)` every 8-byte word of the area also has a
//! `loom::cell::UnsafeCell<()>` tracker: [`Bytes::mark_written`] and
//! [`Bytes::mark_read`] record an access, and loom reports a causality
//! violation when a write and another access of the same word are not ordered
//! by happens-before; and every word has a loom atomic that stands in for it
//! when used as a header. In production the marks compile to nothing and a
//! header is the word itself.

#[cfg(not(ipc_core_loom))]
pub(crate) use core::sync::atomic::{
    compiler_fence, fence, AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};
#[cfg(ipc_core_loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
#[cfg(ipc_core_loom)]
pub(crate) use loom::sync::{Condvar, Mutex};

/// A process-local flag raised by a signal handler when a region's memory
/// is replaced (see `sigbus`). Never shared between processes and never
/// modelled by loom (no model raises it), so it is `core`'s atomic in both
/// builds.
pub(crate) type PoisonFlag = core::sync::atomic::AtomicBool;

/// The poison flag of memory nothing can replace (anonymous regions, sealed
/// memfds, loom's heap): never raised.
pub(crate) static NEVER_POISONED: PoisonFlag = PoisonFlag::new(false);

use core::ptr::NonNull;

/// Size of the words the model checker tracks; records are aligned to it.
pub(crate) const WORD: usize = 8;

/// A view of a ring's data area: `len` bytes starting at `ptr`.
///
/// It does not own the memory; whoever builds it keeps the memory alive for
/// as long as the view is used (the ring handles hold an `Arc` of the owner).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bytes {
    ptr: NonNull<u8>,
    len: usize,
    poison: &'static PoisonFlag,
    #[cfg(ipc_core_loom)]
    trackers: NonNull<loom::cell::UnsafeCell<()>>,
    #[cfg(ipc_core_loom)]
    words: NonNull<AtomicU64>,
}

impl Bytes {
    /// A view of `len` bytes at `ptr`, whose loss (see `sigbus`) raises
    /// `poison`.
    ///
    /// # Safety
    /// `ptr..ptr + len` must stay valid for reads and writes while any copy of
    /// the view is used, and `ptr` must be aligned to [`WORD`].
    #[cfg(not(ipc_core_loom))]
    pub(crate) unsafe fn new(ptr: NonNull<u8>, len: usize, poison: &'static PoisonFlag) -> Self {
        debug_assert_eq!(ptr.as_ptr() as usize % WORD, 0);
        Self { ptr, len, poison }
    }

    /// Whether the memory was lost: a peer shrank the object under it and
    /// it now reads as zeroes.
    #[inline(always)]
    pub(crate) fn is_poisoned(&self) -> bool {
        // Relaxed: a process-local flag raised once by the signal handler;
        // seeing it late only means seeing zeroes a little longer.
        self.poison.load(Ordering::Relaxed)
    }

    /// Pointer to byte `offset`.
    ///
    /// # Safety
    /// `offset <= len`.
    #[inline(always)]
    pub(crate) unsafe fn at(&self, offset: usize) -> *mut u8 {
        debug_assert!(offset <= self.len);
        // SAFETY: `offset <= len` (the caller's contract), so the result
        // stays inside the area or one past it.
        unsafe { self.ptr.as_ptr().add(offset) }
    }

    /// The 8-byte word at `offset` as an atomic, for record headers.
    ///
    /// # Safety
    /// `offset` is a multiple of [`WORD`] and below `len`.
    #[inline(always)]
    pub(crate) unsafe fn word(&self, offset: usize) -> &AtomicU64 {
        debug_assert!(offset % WORD == 0 && offset < self.len);
        #[cfg(not(ipc_core_loom))]
        // SAFETY: in bounds and 8-aligned (the area is, and so is `offset`,
        // by the caller's contract); an atomic may alias memory that other
        // processes write.
        return unsafe { &*(self.at(offset) as *const AtomicU64) };
        #[cfg(ipc_core_loom)]
        // SAFETY: `offset / WORD` indexes the atomics `HeapBytes` allocated
        // (the caller keeps `offset < len`), which outlive every view.
        return unsafe { &*self.words.as_ptr().add(offset / WORD) };
    }

    /// Copies `src` into the area at `offset` with one Relaxed atomic store
    /// per 8-byte word, the last word padded with zeroes: racing with any
    /// other access, even a hostile process's, is then no data race in
    /// Rust's memory model, only a word-by-word mix of values.
    ///
    /// # Safety
    /// `offset` is a multiple of [`WORD`] and `offset + src.len()` rounded up
    /// to a word is at most `len`.
    #[inline]
    pub(crate) unsafe fn copy_in(&self, offset: usize, src: &[u8]) {
        debug_assert!(offset % WORD == 0 && offset + src.len().next_multiple_of(WORD) <= self.len);
        #[cfg(not(ipc_core_loom))]
        {
            let mut chunks = src.chunks_exact(WORD);
            let mut at = offset;
            for chunk in &mut chunks {
                let word = u64::from_ne_bytes(chunk.try_into().expect("a whole word"));
                // SAFETY: `at` is word-aligned and inside the range the
                // caller vouched for.
                unsafe { self.word(at) }.store(word, Ordering::Relaxed);
                at += WORD;
            }
            let rest = chunks.remainder();
            if !rest.is_empty() {
                let mut last = [0u8; WORD];
                last[..rest.len()].copy_from_slice(rest);
                // SAFETY: as above; the padded last word is in range.
                unsafe { self.word(at) }.store(u64::from_ne_bytes(last), Ordering::Relaxed);
            }
        }
        #[cfg(ipc_core_loom)]
        // SAFETY: in range (the caller's contract). Loom checks the
        // protocol's ordering of these bytes through the trackers, which is
        // what matters there; the per-word atomics are for production.
        unsafe {
            core::ptr::copy_nonoverlapping(src.as_ptr(), self.at(offset), src.len())
        };
    }

    /// Copies `dst.len()` bytes at `offset` out of the area with one Relaxed
    /// atomic load per 8-byte word; the counterpart of [`Bytes::copy_in`].
    /// What lands in `dst` is private memory: it cannot change afterwards,
    /// whatever a peer writes.
    ///
    /// # Safety
    /// As for [`Bytes::copy_in`] with `dst.len()`.
    #[inline]
    pub(crate) unsafe fn copy_out(&self, offset: usize, dst: &mut [u8]) {
        debug_assert!(offset % WORD == 0 && offset + dst.len().next_multiple_of(WORD) <= self.len);
        #[cfg(not(ipc_core_loom))]
        {
            let mut chunks = dst.chunks_exact_mut(WORD);
            let mut at = offset;
            for chunk in &mut chunks {
                // SAFETY: `at` is word-aligned and inside the caller's range.
                let word = unsafe { self.word(at) }.load(Ordering::Relaxed);
                chunk.copy_from_slice(&word.to_ne_bytes());
                at += WORD;
            }
            let rest = chunks.into_remainder();
            if !rest.is_empty() {
                // SAFETY: as above; the padded last word is in range.
                let word = unsafe { self.word(at) }.load(Ordering::Relaxed);
                rest.copy_from_slice(&word.to_ne_bytes()[..rest.len()]);
            }
        }
        #[cfg(ipc_core_loom)]
        // SAFETY: as in `copy_in`.
        unsafe {
            core::ptr::copy_nonoverlapping(self.at(offset), dst.as_mut_ptr(), dst.len())
        };
    }

    /// Length of the area in bytes.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Tells the model checker that this thread writes `[offset, offset + len)`.
    #[inline(always)]
    pub(crate) fn mark_written(&self, offset: usize, len: usize) {
        #[cfg(ipc_core_loom)]
        self.each_tracker(offset, len, |cell| cell.with_mut(|_| ()));
        #[cfg(not(ipc_core_loom))]
        let _ = (offset, len);
    }

    /// Tells the model checker that this thread reads `[offset, offset + len)`.
    #[inline(always)]
    pub(crate) fn mark_read(&self, offset: usize, len: usize) {
        #[cfg(ipc_core_loom)]
        self.each_tracker(offset, len, |cell| cell.with(|_| ()));
        #[cfg(not(ipc_core_loom))]
        let _ = (offset, len);
    }

    #[cfg(ipc_core_loom)]
    fn each_tracker(&self, offset: usize, len: usize, f: impl Fn(&loom::cell::UnsafeCell<()>)) {
        assert!(offset + len <= self.len, "tracked access out of bounds");
        let first = offset / WORD;
        let end = (offset + len).div_ceil(WORD);
        for word in first..end {
            // SAFETY: `word < len / WORD`, the number of trackers `HeapBytes`
            // allocated, and the `HeapBytes` outlives every view of it.
            f(unsafe { &*self.trackers.as_ptr().add(word) });
        }
    }
}

/// Heap memory standing in for a mapping in loom models.
#[cfg(ipc_core_loom)]
#[derive(Debug)]
pub(crate) struct HeapBytes {
    bytes: Box<[core::cell::UnsafeCell<u64>]>,
    trackers: Box<[loom::cell::UnsafeCell<()>]>,
    words: Box<[AtomicU64]>,
}

#[cfg(ipc_core_loom)]
impl HeapBytes {
    /// `len` zeroed bytes (a multiple of [`WORD`]).
    pub(crate) fn new(len: usize) -> Self {
        assert_eq!(len % WORD, 0);
        Self {
            bytes: (0..len / WORD)
                .map(|_| core::cell::UnsafeCell::new(0))
                .collect(),
            trackers: (0..len / WORD)
                .map(|_| loom::cell::UnsafeCell::new(()))
                .collect(),
            words: (0..len / WORD).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// A view of the whole area; valid while `self` lives.
    pub(crate) fn view(&self) -> Bytes {
        Bytes {
            ptr: NonNull::new(self.bytes.as_ptr() as *mut u8).expect("boxed slice is non-null"),
            len: self.bytes.len() * WORD,
            poison: &NEVER_POISONED,
            trackers: NonNull::new(self.trackers.as_ptr() as *mut _)
                .expect("boxed slice is non-null"),
            words: NonNull::new(self.words.as_ptr() as *mut _).expect("boxed slice is non-null"),
        }
    }
}

// SAFETY: the bytes are only reached through `Bytes` views, whose users follow
// the ring protocol (and loom checks that protocol through the trackers).
#[cfg(ipc_core_loom)]
unsafe impl Sync for HeapBytes {}
// SAFETY: as above; moving the owner between threads moves no aliasing.
#[cfg(ipc_core_loom)]
unsafe impl Send for HeapBytes {}
