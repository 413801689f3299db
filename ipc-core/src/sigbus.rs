//! Surviving a peer that shrinks a named object under us.
//!
//! Touching a page of a `MAP_SHARED` mapping past the end of its object
//! raises `SIGBUS`, which kills the process. A sealed memfd cannot shrink and
//! an anonymous region has no object anyone else can resize, but a POSIX shm
//! object or a file can be truncated by any process allowed to write it, and
//! a hugetlb memfd can lose pages to a hole punched by any holder of its fd
//! (the seals allow it: it is not a shrink), which a fault cannot refill
//! once the pool of huge pages is empty.
//! Regions over those are *guarded*: their address range is listed in a
//! fixed table, and a `SIGBUS` handler (installed once, the first time a
//! guarded region is made) that finds the faulting address in it maps
//! private zero pages over the whole region (`MAP_FIXED`) and marks it
//! poisoned. The faulting access then restarts on zeroes, and the region's
//! operations report the loss ([`crate::Error::Poisoned`], or `Corrupted`
//! from a ring) instead of the process dying: the way Wayland compositors
//! survive clients that shrink their buffers.
//!
//! A `SIGBUS` at any other address goes to the handler that was installed
//! before ours (Rust's own, for stack overflows), or kills the process as it
//! would have. So does one that another process sent (`kill`, `sigqueue`:
//! `si_code` <= 0), whatever address it names: only a fault the kernel
//! raised poisons a region, and a sent one leaves the guard in place. A
//! handler installed later by other code, without chaining to ours,
//! disables the guard. Everything the handler does is async-signal-safe:
//! atomic loads and stores on a static table, `mmap`, `sigaction`, `raise`.

use std::ptr::NonNull;
use std::sync::OnceLock;

use crate::sync::{AtomicUsize, Ordering, PoisonFlag};
use crate::sys;

/// Guarded regions a process can hold at once.
pub(crate) const MAX_GUARDED: usize = 1024;

/// One guarded address range; free while `start` is 0.
struct Slot {
    /// First address, or 0 for a free slot. Claimed by a CAS from 0.
    start: AtomicUsize,
    /// Bytes, or 0 while the slot is being filled or emptied.
    len: AtomicUsize,
    poisoned: PoisonFlag,
}

static SLOTS: [Slot; MAX_GUARDED] = [const {
    Slot {
        start: AtomicUsize::new(0),
        len: AtomicUsize::new(0),
        poisoned: PoisonFlag::new(false),
    }
}; MAX_GUARDED];

/// The `SIGBUS` action before ours, set once before ours is installed.
static PREVIOUS: OnceLock<sys::SignalAction> = OnceLock::new();

/// A registered range; unregistered on drop.
#[derive(Debug)]
pub(crate) struct Guard {
    slot: &'static Slot,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot").finish_non_exhaustive()
    }
}

impl Guard {
    /// Guards `len` bytes at `ptr` (a mapping of this process). `None` when
    /// the handler cannot be installed or [`MAX_GUARDED`] ranges are
    /// guarded already.
    pub(crate) fn new(ptr: NonNull<u8>, len: usize) -> Option<Guard> {
        install()?;
        let start = ptr.as_ptr() as usize;
        for slot in &SLOTS {
            // Relaxed: the slot's fields are published by the Release
            // store of `len` below.
            if slot
                .start
                .compare_exchange(0, start, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                slot.poisoned.store(false, Ordering::Relaxed);
                // Release: pairs with the Acquire load of `len` in the
                // handler, which then sees `start` and the cleared flag.
                slot.len.store(len, Ordering::Release);
                return Some(Guard { slot });
            }
        }
        None
    }

    /// The flag the handler raises when it replaced the range.
    pub(crate) fn poisoned(&self) -> &'static PoisonFlag {
        &self.slot.poisoned
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // Relaxed, then Release: the slot is free once `start` is 0; a
        // handler that still sees the old range finds `len` 0 first.
        self.slot.len.store(0, Ordering::Relaxed);
        self.slot.start.store(0, Ordering::Release);
    }
}

/// Installs the handler once; whether it is in place.
fn install() -> Option<()> {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    let installed = *INSTALLED.get_or_init(|| {
        let Ok(previous) = sys::sigbus_action() else {
            return false;
        };
        let _ = PREVIOUS.set(previous);
        sys::set_sigbus_handler(on_sigbus).is_ok()
    });
    installed.then_some(())
}

/// The `SIGBUS` handler: replaces a guarded range that faulted, or passes
/// the signal on.
extern "C" fn on_sigbus(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    // SAFETY: the kernel hands a valid siginfo to an SA_SIGINFO handler.
    let code = unsafe { (*info).si_code };
    // Only a fault the kernel raised (`si_code > 0`) names an address we
    // may trust: another process can send `SIGBUS` (`kill`, `sigqueue`)
    // only with a `si_code` <= 0, and any "address" it likes.
    if code <= 0 {
        // SAFETY: the kernel's arguments, unchanged.
        unsafe { sent_by_a_process(signal, info, context) };
        return;
    }
    // SAFETY: as above; a fault's siginfo carries its address.
    let address = unsafe { (*info).si_addr() } as usize;
    for slot in &SLOTS {
        // Acquire: pairs with the Release store of `len` in `Guard::new`.
        let len = slot.len.load(Ordering::Acquire);
        let start = slot.start.load(Ordering::Relaxed);
        if len == 0 || start == 0 || address < start || address - start >= len {
            continue;
        }
        // Relaxed: readers only need to see it eventually; until then they
        // see zeroes, which read as an empty ring.
        slot.poisoned.store(true, Ordering::Relaxed);
        // SAFETY: `start..start + len` is a region mapping of this process
        // (registered by its `Region` until it is unmapped), which nothing
        // borrows as a Rust reference; zero pages in its place keep every
        // address valid.
        if unsafe { sys::map_zeroes_over(start, len) }.is_ok() {
            return;
        }
        break;
    }
    if let Some(previous) = PREVIOUS.get() {
        // SAFETY: the arguments are the kernel's, passed on unchanged.
        unsafe { sys::pass_signal_on(previous, signal, info, context) };
    } else {
        sys::restore_default_sigbus();
    }
}

/// A `SIGBUS` a process sent: no fault, nothing to repair. The action
/// before ours decides what it does, as without this library, and ours
/// stays in place.
///
/// # Safety
/// Called from the handler with the kernel's arguments, unchanged.
unsafe fn sent_by_a_process(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    match PREVIOUS
        .get()
        .map(|previous| (previous, previous.sa_sigaction))
    {
        Some((_, libc::SIG_IGN)) => {}
        Some((previous, handler)) if handler != libc::SIG_DFL => {
            // SAFETY: the kernel's arguments, passed on unchanged.
            unsafe { sys::pass_signal_on(previous, signal, info, context) };
            // A handler that expects a fault to recur may have put the
            // default back (Rust's does, for all but stack overflows); a
            // sent signal does not recur, so that would only leave later
            // faults unguarded.
            if sys::sigbus_action().is_ok_and(|now| now.sa_sigaction == libc::SIG_DFL) {
                let _ = sys::set_sigbus_handler(on_sigbus);
            }
        }
        // The default action (death): taken when the handler returns, as
        // the signal, blocked while it runs, is delivered again.
        _ => {
            sys::restore_default_sigbus();
            sys::raise_sigbus();
        }
    }
}
