//! A ring used like a pipe between a parent and its forked child.
//!
//! ```text
//! cargo run -p ipc-examples --example fork_pipe
//! ```
//!
//! An anonymous region is `MAP_SHARED` memory that a child made by `fork`
//! shares with its parent: no name, no file, nothing to clean up. Each
//! process attaches its own handle after the fork (a handle is never used
//! across a fork). The child sends numbered lines; the parent reads them in
//! place and checks them.

use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipc_core::spsc::{self, RecvError, SendError};
use ipc_core::wait::Backoff;
use ipc_core::RegionOptions;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};

const LINES: u64 = 10_000;
/// How long either side waits for the other before giving up.
const TIMEOUT: Duration = Duration::from_secs(5);

fn main() -> Result<(), Box<dyn Error>> {
    // A 64 KiB ring for messages of up to 1 KiB.
    let layout = spsc::layout(64 << 10, 1024)?;
    let region = Arc::new(RegionOptions::new().layout(layout).create_anonymous()?);

    // SAFETY: this process has a single thread, so the child may do anything
    // the parent could.
    match unsafe { fork() }? {
        ForkResult::Child => send_lines(spsc::Producer::attach(region)?),
        ForkResult::Parent { child } => {
            let received = receive_lines(spsc::Consumer::attach(region)?)?;
            match waitpid(child, None)? {
                WaitStatus::Exited(_, 0) => {
                    println!("parent received {received} lines from child {child}");
                    Ok(())
                }
                status => Err(format!("child ended with {status:?}").into()),
            }
        }
    }
}

/// The child: sends `LINES` numbered lines, waiting while the ring is full.
fn send_lines(mut producer: spsc::Producer) -> Result<(), Box<dyn Error>> {
    for i in 0..LINES {
        let line = format!("line {i}");
        let (mut backoff, since) = (Backoff::new(), Instant::now());
        loop {
            match producer.try_send(line.as_bytes()) {
                Ok(()) => break,
                Err(SendError::Full) => {
                    // Spin, yield, then nap; look at the clock once past spinning.
                    if backoff.snooze() && since.elapsed() > TIMEOUT {
                        return Err("the parent stopped reading".into());
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// The parent: reads each line in place and checks it.
fn receive_lines(mut consumer: spsc::Consumer) -> Result<u64, Box<dyn Error>> {
    for i in 0..LINES {
        let (mut backoff, since) = (Backoff::new(), Instant::now());
        loop {
            match consumer.try_recv() {
                Ok(line) => {
                    if *line != *format!("line {i}").as_bytes() {
                        return Err(format!("line {i} arrived as {:?}", &*line).into());
                    }
                    break;
                }
                Err(RecvError::Empty) => {
                    if backoff.snooze() && since.elapsed() > TIMEOUT {
                        return Err(format!("no line {i} from the child").into());
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(LINES)
}
