//! The raw copy stream: the reference for one-way throughput of large
//! messages. One copy in, one copy out, as the ring's `try_send` +
//! `recv_into`, with nothing else: no headers, no padding, no checks beyond
//! the stamp.

use std::sync::atomic::Ordering;

use crate::message::{check, stamp};
use crate::process::{finish, fork_child, pin_child};
use crate::stats::Throughput;
use crate::wait::{bounded, Gate};
use crate::workload::{prefault, raw_region, Stream};
use crate::Result;

/// Offset of the slots in the region's data area: after the two counters'
/// 128-byte lines, 256-aligned.
const SLOTS_OFFSET: u64 = 256;

/// The raw two-counter copy stream: a buffer of `capacity / size` slots; the
/// child copies each message into the next slot and stores `written`; the
/// parent waits for it, copies the slot out, and stores `read`. Each side
/// caches the other's counter and reloads it only when it must wait, as the
/// ring does. One copy in, one copy out: the ring's `try_send` + `recv_into`.
pub fn throughput(cfg: &Stream) -> Result<Throughput> {
    let size = cfg.size.max(8);
    let slots = (cfg.geometry.capacity as usize / size).max(2);
    let region = raw_region(SLOTS_OFFSET + (slots * size) as u64)?;
    let gate = Gate::new()?;
    let count = cfg.count;
    let child = fork_child(|| -> Result<()> {
        pin_child()?;
        let written = region.atomic_u64(0)?;
        let read = region.atomic_u64(128)?;
        prefault(&region)?;
        let base = region.data_ptr().as_ptr();
        let mut src = vec![0u8; size];
        let mut cached_read = 0;
        let mut slot = 0;
        gate.child_wait_go()?;
        for i in 0..count {
            if i - cached_read >= slots as u64 {
                let mut wait = bounded("a free slot", None);
                loop {
                    // Acquire: pairs with the consumer's Release of `read`;
                    // its copy out of the slot is done.
                    cached_read = read.load(Ordering::Acquire);
                    if i - cached_read < slots as u64 {
                        break;
                    }
                    wait.snooze()?;
                }
            }
            stamp(&mut src, i);
            // SAFETY: slot `slot` lies inside the data area (`SLOTS_OFFSET +
            // slots * size` bytes were requested); the consumer has copied out
            // its previous message (`read > i - slots`) and does not read it
            // again until `written > i`.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    src.as_ptr(),
                    base.add(SLOTS_OFFSET as usize + slot * size),
                    size,
                )
            };
            // Release: pairs with the consumer's Acquire load of `written`.
            written.store(i + 1, Ordering::Release);
            slot = if slot + 1 == slots { 0 } else { slot + 1 };
        }
        Ok(())
    })?;
    let written = region.atomic_u64(0)?;
    let read = region.atomic_u64(128)?;
    let base = region.data_ptr().as_ptr();
    let mut dst = vec![0u8; size];
    let mut cached_written = 0;
    let mut slot = 0;
    let start = gate.start(&child)?;
    for i in 0..count {
        if cached_written <= i {
            let mut wait = bounded("a written slot", Some(&child));
            loop {
                // Acquire: pairs with the producer's Release of `written`.
                cached_written = written.load(Ordering::Acquire);
                if cached_written > i {
                    break;
                }
                wait.snooze()?;
            }
        }
        // SAFETY: the slot is inside the data area, and the producer wrote
        // it before publishing `written > i`; it does not write it again
        // until we store `read > i`.
        unsafe {
            std::ptr::copy_nonoverlapping(
                base.add(SLOTS_OFFSET as usize + slot * size),
                dst.as_mut_ptr(),
                size,
            )
        };
        // Release: pairs with the producer's Acquire load of `read`.
        read.store(i + 1, Ordering::Release);
        check(&dst, i, size, None)?;
        slot = if slot + 1 == slots { 0 } else { slot + 1 };
    }
    let elapsed = start.elapsed();
    finish(child)?;
    Ok(Throughput {
        messages: count,
        bytes: count * size as u64,
        elapsed,
        wait_syscalls: None,
    })
}
