//! Telemetry samples written and read in place, with no copy and no
//! encoding, between a sensor process and a collector process.
//!
//! ```text
//! cargo run -p ipc-examples --example pod_telemetry
//! ```
//!
//! A plain-old-data type (`bytemuck::Pod`: `#[repr(C)]`, no padding, any
//! bit pattern valid) travels as its bytes. The sensor reserves room for a
//! `Sample` inside the shared ring, fills in its fields there and commits
//! it; the collector borrows each `Sample` where it lies with `recv_ref`
//! and releases the slot when the borrow ends. The channel is made in
//! anonymous shared memory before `fork`; each process attaches its own end
//! after it.

use std::error::Error;
use std::time::{Duration, Instant};

use ipc_core::channel::{Channel, Pod, Receiver, RecvError, Sender};
use ipc_core::wait::Backoff;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};

/// One reading of the sensor: 32 bytes, no padding.
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Sample {
    /// Numbered from 0, so the collector can tell that none is missing.
    seq: u64,
    /// When it was taken, in nanoseconds since the sensor started.
    timestamp_ns: u64,
    temperature_c: f32,
    pressure_kpa: f32,
    sensor_id: u32,
    /// Bit 0: hotter than 29 °C.
    flags: u32,
}

const SAMPLES: u64 = 200_000;
/// How long the collector waits for a sample before giving up.
const TIMEOUT: Duration = Duration::from_secs(5);

fn main() -> Result<(), Box<dyn Error>> {
    // An SPSC ring with room for 4096 samples. `.mpmc()` instead would let
    // several sensor processes share one channel.
    let endpoint = Channel::pod::<Sample>().capacity(4096).anonymous()?;

    // SAFETY: this process has a single thread, so the child may do anything
    // the parent could.
    match unsafe { fork() }? {
        ForkResult::Child => sensor(endpoint.sender()?),
        ForkResult::Parent { child } => {
            let summary = collector(endpoint.receiver()?)?;
            match waitpid(child, None)? {
                WaitStatus::Exited(_, 0) => {
                    println!("read {summary}, from sensor process {child}");
                    Ok(())
                }
                status => Err(format!("the sensor ended with {status:?}").into()),
            }
        }
    }
}

/// The sensor: writes each sample straight into the ring.
fn sensor(mut tx: Sender<Sample, Pod>) -> Result<(), Box<dyn Error>> {
    let started = Instant::now();
    for seq in 0..SAMPLES {
        // Room for one `Sample` in shared memory, waiting while the ring is
        // full. It holds whatever bytes the slot held before: set every
        // field.
        let mut slot = tx.reserve()?;
        let wave = (seq % 1000) as f32 / 1000.0;
        slot.seq = seq;
        slot.timestamp_ns = started.elapsed().as_nanos() as u64;
        slot.temperature_c = 20.0 + 10.0 * wave;
        slot.pressure_kpa = 101.3 - wave;
        slot.sensor_id = 7;
        slot.flags = u32::from(slot.temperature_c > 29.0);
        // Now the collector can see it.
        slot.commit()?;
    }
    // Dropping the sender tells the collector that no more will come.
    Ok(())
}

/// What the collector made of the samples.
struct Summary {
    count: u64,
    flagged: u64,
    min_c: f32,
    max_c: f32,
    sum_c: f64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} samples in place: {:.1} to {:.1} °C (mean {:.2}), {} above 29 °C",
            self.count,
            self.min_c,
            self.max_c,
            self.sum_c / self.count as f64,
            self.flagged
        )
    }
}

/// The collector: reads each sample where it lies in the ring until the
/// sensor is gone.
fn collector(mut rx: Receiver<Sample, Pod>) -> Result<Summary, Box<dyn Error>> {
    let mut summary = Summary {
        count: 0,
        flagged: 0,
        min_c: f32::INFINITY,
        max_c: f32::NEG_INFINITY,
        sum_c: 0.0,
    };
    let (mut backoff, mut since) = (Backoff::new(), Instant::now());
    loop {
        // `recv_ref` would wait as long as it takes; polling with
        // `try_recv_ref` lets the collector give up on a sensor that never
        // starts (one that has started and then dies gives `Disconnected`).
        match rx.try_recv_ref() {
            Ok(sample) => {
                // `sample` borrows the slot: no copy was made.
                if sample.seq != summary.count {
                    return Err(
                        format!("sample {} arrived as {}", summary.count, sample.seq).into(),
                    );
                }
                summary.count += 1;
                summary.flagged += u64::from(sample.flags & 1);
                summary.min_c = summary.min_c.min(sample.temperature_c);
                summary.max_c = summary.max_c.max(sample.temperature_c);
                summary.sum_c += f64::from(sample.temperature_c);
                (backoff, since) = (Backoff::new(), Instant::now());
                // The slot is released here, as `sample` goes out of scope.
            }
            Err(RecvError::Empty) => {
                // Spin, yield, then nap; look at the clock once past spinning.
                if backoff.snooze() && since.elapsed() > TIMEOUT {
                    return Err(format!("no sample {} from the sensor", summary.count).into());
                }
            }
            // The sensor has left and every sample it sent has been read.
            Err(RecvError::Disconnected) => break,
            Err(e) => return Err(e.into()),
        }
    }
    if summary.count != SAMPLES {
        return Err(format!("read {} of {SAMPLES} samples", summary.count).into());
    }
    Ok(summary)
}
