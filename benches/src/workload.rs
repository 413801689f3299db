//! What a measurement moves: the ring geometry, round-trip and one-way
//! stream configurations, and the shared memory they set up.

use std::sync::Arc;

use ipc_core::{mpmc, spsc};
use ipc_core::{Region, RegionOptions};
use ipc_tests::payload::PayloadGen;

use crate::Result;

/// Seed of the [`PayloadGen`] streams used when verifying.
const SEED: u64 = 0x5eed_1c0d_e5a1_7e57;

/// The geometry of the rings a workload uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingGeometry {
    /// Ring capacity in bytes (a power of two).
    pub capacity: u64,
    /// Largest message in bytes.
    pub max_message: u64,
}

impl RingGeometry {
    /// The suggested ring for `size`-byte messages: 1 MiB with a 64 KiB
    /// limit up to 1 KiB, else at least 4 MiB.
    pub fn for_message(size: usize) -> RingGeometry {
        let size = size as u64;
        if size <= 1024 {
            return RingGeometry {
                capacity: 1 << 20,
                max_message: 64 << 10,
            };
        }
        let capacity = (4u64 << 20).max((2 * spsc::record_size(size)).next_power_of_two());
        RingGeometry {
            capacity,
            max_message: size.max(64 << 10).min(spsc::max_message_for(capacity)),
        }
    }

    /// A fresh anonymous region holding a ring of this geometry, prefaulted.
    pub fn region(&self) -> Result<Arc<Region>> {
        let region = RegionOptions::new()
            .layout(spsc::layout(self.capacity, self.max_message)?)
            .populate(true)
            .create_anonymous()?;
        Ok(Arc::new(region))
    }
}

/// The geometry of the MPMC queues a workload uses, and of the
/// `ArrayQueue` it is compared with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueGeometry {
    /// Slots (a power of two).
    pub slots: u64,
    /// Largest message in bytes.
    pub max_message: u64,
}

impl QueueGeometry {
    /// The suggested queue for `size`-byte messages: as many slots as fit
    /// in about 1 MiB, 64 to 32768 of them.
    pub fn for_message(size: usize) -> QueueGeometry {
        let size = size as u64;
        let fit = (1u64 << 20) / mpmc::slot_stride(size);
        let slots = if fit == 0 { 1 } else { 1 << fit.ilog2() };
        QueueGeometry {
            slots: slots.clamp(64, 1 << 15),
            max_message: size,
        }
    }

    /// A fresh anonymous region holding a queue of this geometry, prefaulted.
    pub fn region(&self) -> Result<Arc<Region>> {
        let region = RegionOptions::new()
            .layout(mpmc::layout(self.slots, self.max_message)?)
            .populate(true)
            .create_anonymous()?;
        Ok(Arc::new(region))
    }
}

/// A round-trip (ping-pong) workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoundTrip {
    /// Message size in bytes (both directions).
    pub size: usize,
    /// Round trips per timed batch.
    pub batch: usize,
    /// Timed batches.
    pub samples: usize,
    /// Untimed batches first.
    pub warmup: usize,
    /// Check every byte of every echo against a [`PayloadGen`] stream
    /// (slower; for correctness runs) instead of its stamp.
    pub verify: bool,
    /// The rings (one per direction).
    pub geometry: RingGeometry,
    /// The MPMC queues (one per direction).
    pub queue: QueueGeometry,
}

impl RoundTrip {
    /// `size`-byte messages; 1000 batches of 1000 round trips after 20
    /// warm-up batches, stamps checked, the suggested rings and queues.
    pub fn new(size: usize) -> RoundTrip {
        RoundTrip {
            size,
            batch: 1000,
            samples: 1000,
            warmup: 20,
            verify: false,
            geometry: RingGeometry::for_message(size),
            queue: QueueGeometry::for_message(size),
        }
    }

    /// Round trips in all, warm-up included.
    pub fn total(&self) -> u64 {
        ((self.warmup + self.samples) * self.batch.max(1)) as u64
    }

    /// The payload stream to verify with, if verifying.
    pub fn payload(&self) -> Option<PayloadGen> {
        self.verify.then(|| PayloadGen::fixed(SEED, self.size))
    }
}

/// A one-way throughput workload: the child sends, the parent receives;
/// or, with several producers or consumers, a [`crate::team`] of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stream {
    /// Message size in bytes.
    pub size: usize,
    /// Messages to send, by all producers together.
    pub count: u64,
    /// Producers (MPMC transports; 1 for the others).
    pub producers: usize,
    /// Consumers (MPMC transports; 1 for the others).
    pub consumers: usize,
    /// Messages per batch for a batched ring.
    pub batch: usize,
    /// Fill and check every byte from a [`PayloadGen`] stream (ring only;
    /// slower) instead of the stamp.
    pub verify: bool,
    /// The ring (and the copy stream's buffer size).
    pub geometry: RingGeometry,
    /// The MPMC queue (and the `ArrayQueue`'s capacity).
    pub queue: QueueGeometry,
}

impl Stream {
    /// `count` messages of `size` bytes from one producer to one consumer,
    /// batches of 256, stamps checked, the suggested ring and queue.
    pub fn new(size: usize, count: u64) -> Stream {
        Stream {
            size,
            count,
            producers: 1,
            consumers: 1,
            batch: 256,
            verify: false,
            geometry: RingGeometry::for_message(size),
            queue: QueueGeometry::for_message(size),
        }
    }

    /// The same stream between `producers` producers and `consumers`
    /// consumers.
    pub fn fan(mut self, producers: usize, consumers: usize) -> Stream {
        (self.producers, self.consumers) = (producers, consumers);
        self
    }

    /// Messages each producer sends: `count` shared out, rounded down.
    pub fn per_producer(&self) -> u64 {
        self.count / self.producers.max(1) as u64
    }

    /// The payload stream to verify with, if verifying.
    pub fn payload(&self) -> Option<PayloadGen> {
        self.verify.then(|| PayloadGen::fixed(SEED, self.size))
    }
}

/// A raw anonymous region with at least `bytes` of data area, prefaulted.
pub fn raw_region(bytes: u64) -> Result<Arc<Region>> {
    Ok(Arc::new(
        RegionOptions::new()
            .size(bytes)
            .populate(true)
            .create_anonymous()?,
    ))
}

/// Maps every page of the region into this process so it takes its page
/// faults now, not inside a measurement.
pub fn prefault(region: &Region) -> Result<()> {
    Ok(region.prefault()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_suggestions_are_valid() {
        for size in [8, 1024, 64 << 10, 1 << 20] {
            let g = RingGeometry::for_message(size);
            assert!(spsc::check_geometry(g.capacity, g.max_message).is_ok());
            assert!(g.max_message >= size as u64);
            let q = QueueGeometry::for_message(size);
            assert!(mpmc::check_geometry(q.slots, q.max_message).is_ok());
        }
        assert_eq!(QueueGeometry::for_message(8).slots, 1 << 15);
        assert_eq!(QueueGeometry::for_message(1024).slots, 512);
    }
}
