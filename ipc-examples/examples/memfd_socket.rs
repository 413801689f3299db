//! A ring in a sealed memfd, handed to an unrelated process over a Unix
//! socket.
//!
//! ```text
//! cargo run -p ipc-examples --example memfd_socket
//! ```
//!
//! A memfd region has no name anywhere: the only way in is its file
//! descriptor, which `send_fd` passes over a Unix socket (`SCM_RIGHTS`). It
//! is sealed against resizing, so the receiver cannot shrink it under the
//! sender. Here the socket is one end of a socket pair, given to a second
//! copy of this program as its stdin; unrelated programs would meet at a
//! named socket (`UnixListener::bind`) instead. The sender publishes
//! batches of messages with one store each (`batch`); the receiver takes
//! what has arrived in one call (`drain`).

use std::error::Error;
use std::io::stdin;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipc_core::spsc::{self, SendError};
use ipc_core::wait::Backoff;
use ipc_core::RegionOptions;

const MESSAGES: u64 = 100_000;
const BATCH: u64 = 64;
/// How long either side waits for the other before giving up.
const TIMEOUT: Duration = Duration::from_secs(5);

fn main() -> Result<(), Box<dyn Error>> {
    match std::env::args().nth(1).as_deref() {
        Some("receive") => receive(),
        _ => send(),
    }
}

/// The first process: creates the memfd ring, starts the receiver with one
/// end of a socket pair, hands it the region's fd and sends.
fn send() -> Result<(), Box<dyn Error>> {
    let layout = spsc::layout(64 << 10, 64)?;
    let region = RegionOptions::new()
        .layout(layout)
        .create_memfd("example")?;
    let (socket, theirs) = UnixStream::pair()?;
    let mut receiver = Command::new(std::env::current_exe()?)
        .arg("receive")
        .stdin(Stdio::from(OwnedFd::from(theirs)))
        .spawn()?;
    region.send_fd(&socket)?;
    let mut producer = spsc::Producer::attach(Arc::new(region))?;

    let mut seq = 0;
    let (mut backoff, mut since) = (Backoff::new(), Instant::now());
    while seq < MESSAGES {
        let first = seq;
        let mut batch = producer.batch();
        while seq < MESSAGES && seq - first < BATCH {
            match batch.try_send(&seq.to_le_bytes()) {
                Ok(()) => seq += 1,
                Err(SendError::Full) => break,
                Err(e) => return Err(e.into()),
            }
        }
        batch.publish(); // all of the batch becomes visible at once
        if seq > first {
            (backoff, since) = (Backoff::new(), Instant::now());
        } else if backoff.snooze() && since.elapsed() > TIMEOUT {
            return Err("the receiver stopped reading".into());
        }
    }
    let status = receiver.wait()?;
    if !status.success() {
        return Err(format!("the receiver failed: {status}").into());
    }
    println!(
        "sent {MESSAGES} messages through a memfd to process {}",
        receiver.id()
    );
    Ok(())
}

/// The second process: receives the region's fd on its stdin, attaches,
/// and drains.
fn receive() -> Result<(), Box<dyn Error>> {
    let socket = UnixStream::from(stdin().as_fd().try_clone_to_owned()?);
    let region = RegionOptions::new().receive_fd(&socket)?;
    let mut consumer = spsc::Consumer::attach(Arc::new(region))?;

    let mut seq = 0;
    let mut out_of_order = None;
    let (mut backoff, mut since) = (Backoff::new(), Instant::now());
    while seq < MESSAGES {
        let got = consumer.drain(BATCH as usize, |msg| {
            if msg != seq.to_le_bytes() && out_of_order.is_none() {
                out_of_order = Some(seq);
            }
            seq += 1;
        })?;
        if let Some(seq) = out_of_order {
            return Err(format!("message {seq} is corrupt").into());
        }
        if got > 0 {
            (backoff, since) = (Backoff::new(), Instant::now());
        } else if backoff.snooze() && since.elapsed() > TIMEOUT {
            return Err(format!("no message {seq} from the sender").into());
        }
    }
    Ok(())
}
