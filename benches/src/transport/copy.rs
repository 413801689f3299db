//! The raw copy stream: the reference for one-way throughput of large
//! messages. One copy in, one copy out, as the ring's `try_send` +
//! `recv_into`, with nothing else: no headers, no padding, no checks beyond
//! the stamp.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ipc_core::Region;
use ipc_tests::fork::ForkedChild;

use crate::bursts::{bursts, Consume, Flow, Produce};
use crate::message::{check, stamp};
use crate::stats::Throughput;
use crate::wait::bounded;
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
    let run = bursts(vec![CopyFlow::flow(cfg)?], cfg.count, 1)?;
    Ok(Throughput {
        wait_syscalls: None,
        ..run[0].total()
    })
}

/// The copy stream as a [`Flow`]; messages keep their numbers from burst
/// to burst, as do both counters.
#[derive(Debug)]
pub struct CopyFlow {
    region: Arc<Region>,
    size: usize,
    slots: usize,
}

impl CopyFlow {
    /// A fresh buffer for `cfg`'s messages (`cfg.geometry.capacity` bytes
    /// of slots); make it before forking.
    pub fn flow(cfg: &Stream) -> Result<Box<dyn Flow>> {
        let size = cfg.size.max(8);
        let slots = (cfg.geometry.capacity as usize / size).max(2);
        Ok(Box::new(CopyFlow {
            region: raw_region(SLOTS_OFFSET + (slots * size) as u64)?,
            size,
            slots,
        }))
    }

    fn side(self) -> CopySide {
        CopySide {
            buf: vec![0u8; self.size],
            cached: 0,
            slot: 0,
            flow: self,
        }
    }
}

impl Flow for CopyFlow {
    fn into_producer(self: Box<Self>) -> Result<Box<dyn Produce>> {
        prefault(&self.region)?;
        Ok(Box::new((*self).side()))
    }

    fn into_consumer(self: Box<Self>) -> Result<Box<dyn Consume>> {
        Ok(Box::new((*self).side()))
    }
}

/// One side of the copy stream: its buffer, its cached copy of the other
/// side's counter, and its next slot.
struct CopySide {
    flow: CopyFlow,
    buf: Vec<u8>,
    cached: u64,
    slot: usize,
}

impl CopySide {
    /// The data area's address of the current slot, and moves to the next.
    fn next_slot(&mut self) -> *mut u8 {
        let offset = SLOTS_OFFSET as usize + self.slot * self.flow.size;
        self.slot = if self.slot + 1 == self.flow.slots {
            0
        } else {
            self.slot + 1
        };
        // SAFETY: `offset + size` lies inside the data area: `SLOTS_OFFSET +
        // slots * size` bytes were requested and `slot < slots`.
        unsafe { self.flow.region.data_ptr().as_ptr().add(offset) }
    }
}

/// The counters: `written` (by the producer) and `read`, on lines of their
/// own.
fn counters(region: &Region) -> Result<(&AtomicU64, &AtomicU64)> {
    Ok((region.atomic_u64(0)?, region.atomic_u64(128)?))
}

impl Produce for CopySide {
    fn produce(&mut self, first: u64, n: u64) -> Result<()> {
        let region = self.flow.region.clone();
        let (written, read) = counters(&region)?;
        let (slots, size) = (self.flow.slots as u64, self.flow.size);
        for i in first..first + n {
            if i - self.cached >= slots {
                let mut wait = bounded("a free slot", None);
                loop {
                    // Acquire: pairs with the consumer's Release of `read`;
                    // its copy out of the slot is done.
                    self.cached = read.load(Ordering::Acquire);
                    if i - self.cached < slots {
                        break;
                    }
                    wait.snooze()?;
                }
            }
            stamp(&mut self.buf, i);
            let dst = self.next_slot();
            // SAFETY: the slot is inside the data area (`next_slot`); the
            // consumer has copied out its previous message (`read > i -
            // slots`) and does not read it again until `written > i`.
            unsafe { std::ptr::copy_nonoverlapping(self.buf.as_ptr(), dst, size) };
            // Release: pairs with the consumer's Acquire load of `written`.
            written.store(i + 1, Ordering::Release);
        }
        Ok(())
    }
}

impl Consume for CopySide {
    fn consume(&mut self, first: u64, n: u64, peer: &ForkedChild) -> Result<u64> {
        let region = self.flow.region.clone();
        let (written, read) = counters(&region)?;
        let size = self.flow.size;
        for i in first..first + n {
            if self.cached <= i {
                let mut wait = bounded("a written slot", Some(peer));
                loop {
                    // Acquire: pairs with the producer's Release of `written`.
                    self.cached = written.load(Ordering::Acquire);
                    if self.cached > i {
                        break;
                    }
                    wait.snooze()?;
                }
            }
            let src = self.next_slot();
            // SAFETY: the slot is inside the data area, and the producer
            // wrote it before publishing `written > i`; it does not write it
            // again until we store `read > i`.
            unsafe { std::ptr::copy_nonoverlapping(src, self.buf.as_mut_ptr(), size) };
            // Release: pairs with the producer's Acquire load of `read`.
            read.store(i + 1, Ordering::Release);
            check(&self.buf, i, size, None)?;
        }
        Ok(n * size as u64)
    }
}
