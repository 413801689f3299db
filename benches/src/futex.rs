//! A raw futex between processes, with nothing of the library in it: the
//! floor of a sleeping wake-up ([`crate::transport::futex`]), and the start
//! line and finish line of runs with many processes ([`crate::team`]).
//!
//! The words live in shared memory and the calls are plain `FUTEX_WAIT` and
//! `FUTEX_WAKE` *without* `FUTEX_PRIVATE_FLAG`: a private futex is keyed by
//! the process's address space, and another process would never wake it.

use std::ptr;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use ipc_core::Region;

use crate::{Error, Result};

/// The 32-bit futex word at `offset` (a multiple of 8) of a raw region.
///
/// Whoever uses the word must use it through this function only: the 8 bytes
/// there are never accessed as a 64-bit atomic.
pub fn word(region: &Region, offset: u64) -> Result<&AtomicU32> {
    // Checked by the region: a raw region, inside it, 8-aligned.
    let ptr = region.atomic_u64(offset)?.as_ptr();
    // SAFETY: `ptr` is 8-aligned (more than a u32 needs) and points into the
    // mapping, which lives as long as `region` is borrowed. Every access to
    // these bytes is atomic: through words made here, by the contract above.
    Ok(unsafe { AtomicU32::from_ptr(ptr.cast()) })
}

/// Sleeps while `word` holds `expected`: returns when woken, when the word
/// already differs, on a signal, or after `timeout`. The caller re-checks
/// its condition whatever the reason.
pub fn wait(word: &AtomicU32, expected: u32, timeout: Duration) -> Result<()> {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `word` is a valid, aligned u32 for the call's duration, shared
    // between processes (hence no PRIVATE flag); `ts` lives on our stack;
    // the last two arguments are unused by FUTEX_WAIT.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
            ptr::null::<u32>(),
            0u32,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        // The word changed before we slept, a signal, the timeout.
        Some(libc::EAGAIN | libc::EINTR | libc::ETIMEDOUT) => Ok(()),
        _ => Err(Error::io("futex(FUTEX_WAIT)", e)),
    }
}

/// Wakes up to `count` sleepers on `word`; how many were woken.
pub fn wake(word: &AtomicU32, count: u32) -> Result<usize> {
    let count = count.min(i32::MAX as u32);
    // SAFETY: `word` is a valid, aligned u32; FUTEX_WAKE only uses its
    // address as the key, and ignores the last three arguments.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            count,
            ptr::null::<libc::timespec>(),
            ptr::null::<u32>(),
            0u32,
        )
    };
    if r < 0 {
        return Err(Error::io(
            "futex(FUTEX_WAKE)",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(r as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    use crate::workload::raw_region;

    #[test]
    fn a_changed_word_or_a_timeout_returns() {
        let region = raw_region(256).unwrap();
        let w = word(&region, 8).unwrap();
        w.store(1, Ordering::Relaxed);
        // The word is not 0: returns at once.
        wait(w, 0, Duration::from_secs(10)).unwrap();
        // The word is 1: sleeps until the timeout.
        let start = std::time::Instant::now();
        wait(w, 1, Duration::from_millis(5)).unwrap();
        assert!(start.elapsed() >= Duration::from_millis(4));
        assert_eq!(wake(w, 1).unwrap(), 0);
    }
}
