//! Two unrelated processes sharing a ring by name.
//!
//! ```text
//! cargo run -p ipc-examples --example named_shm
//! ```
//!
//! The first process creates a named POSIX shm region (`/dev/shm/...`, mode
//! 0600, created exclusively) and consumes; it starts a second copy of this
//! program, a new process image that shares no memory with it, which opens
//! the region by its name and produces. Messages are written in place
//! (`try_reserve` + `commit`) and copied out (`try_recv_into`). The creator
//! removes the name when it drops the region.

use std::error::Error;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipc_core::spsc::{self, RecvError, SendError};
use ipc_core::wait::Backoff;
use ipc_core::RegionOptions;

const MESSAGES: u64 = 10_000;
const SIZE: usize = 256;
/// How long either side waits for the other before giving up.
const TIMEOUT: Duration = Duration::from_secs(5);

fn main() -> Result<(), Box<dyn Error>> {
    match std::env::args().nth(1) {
        Some(name) => produce(&name),
        None => consume(),
    }
}

/// The first process: creates the named ring, starts the producer, and
/// receives.
fn consume() -> Result<(), Box<dyn Error>> {
    let name = format!("/ipc-example-named-{}", std::process::id());
    let layout = spsc::layout(64 << 10, SIZE as u64)?;
    let region = RegionOptions::new().layout(layout).create_shm(&name)?;
    let mut consumer = spsc::Consumer::attach(Arc::new(region))?;
    let mut producer = Command::new(std::env::current_exe()?).arg(&name).spawn()?;

    let mut buf = [0u8; SIZE];
    for seq in 0..MESSAGES {
        let (mut backoff, since) = (Backoff::new(), Instant::now());
        let len = loop {
            match consumer.try_recv_into(&mut buf) {
                Ok(len) => break len,
                Err(RecvError::Empty) => {
                    // Spin, yield, then nap; look at the clock once past spinning.
                    if backoff.snooze() && since.elapsed() > TIMEOUT {
                        return Err(format!("no message {seq} from the producer").into());
                    }
                }
                Err(e) => return Err(e.into()),
            }
        };
        if buf[..len] != message(seq) {
            return Err(format!("message {seq} is corrupt").into());
        }
    }
    let status = producer.wait()?;
    if !status.success() {
        return Err(format!("the producer failed: {status}").into());
    }
    println!(
        "received {MESSAGES} messages over {name} from process {}",
        producer.id()
    );
    Ok(())
}

/// The second process: opens the ring by name and sends, writing each
/// message in place.
fn produce(name: &str) -> Result<(), Box<dyn Error>> {
    let region = RegionOptions::new().open_shm(name)?;
    let mut producer = spsc::Producer::attach(Arc::new(region))?;
    for seq in 0..MESSAGES {
        let (mut backoff, since) = (Backoff::new(), Instant::now());
        let mut grant = loop {
            match producer.try_reserve(SIZE) {
                Ok(grant) => break grant,
                Err(SendError::Full) => {
                    if backoff.snooze() && since.elapsed() > TIMEOUT {
                        return Err("the consumer stopped reading".into());
                    }
                }
                Err(e) => return Err(e.into()),
            }
        };
        grant.copy_from_slice(&message(seq));
        grant.commit();
    }
    Ok(())
}

/// Message `seq`: its number, then a byte pattern that depends on it.
fn message(seq: u64) -> [u8; SIZE] {
    let mut msg = [seq as u8; SIZE];
    msg[..8].copy_from_slice(&seq.to_le_bytes());
    msg
}
