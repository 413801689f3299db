//! An async consumer: a tokio program receiving typed messages from an
//! unrelated process over a named channel.
//!
//! ```text
//! cargo run -p ipc-examples --example async_consumer
//! ```
//!
//! The first process creates a named serde channel and starts a second copy
//! of this program, which opens the channel by name and sends readings with
//! plain blocking calls. The first receives them with `recv_async` inside a
//! tokio runtime of one thread, beside a task that keeps ticking: waiting
//! for a message never holds the runtime's thread (it sleeps on tokio's
//! blocking pool). It stops when the sender is gone and everything it sent
//! has arrived (`RecvError::Disconnected`).

use std::error::Error;
use std::process::Command;
use std::time::Duration;

use ipc_core::channel::{Channel, RecvError};

/// One sensor reading: any `serde` type will do.
#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Reading {
    seq: u64,
    sensor: String,
    values: Vec<f64>,
}

const READINGS: u64 = 20_000;

fn reading(seq: u64) -> Reading {
    Reading {
        seq,
        sensor: format!("sensor-{}", seq % 8),
        values: (0..seq % 5).map(|i| i as f64 * 0.5).collect(),
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    match std::env::args().nth(1) {
        Some(name) => produce(&name),
        None => consume(),
    }
}

/// The first process: an async consumer on a one-thread runtime.
fn consume() -> Result<(), Box<dyn Error>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    runtime.block_on(async {
        let name = format!("/ipc-example-async-{}", std::process::id());
        let channel = Channel::serde::<Reading>().capacity(256).create(&name)?;
        let mut rx = channel.receiver()?;
        let mut producer = Command::new(std::env::current_exe()?).arg(&name).spawn()?;

        // Runs on the same (only) runtime thread as the receiving loop.
        let ticker = tokio::spawn(async {
            let mut ticks = 0u64;
            loop {
                tokio::time::sleep(Duration::from_millis(1)).await;
                ticks += 1;
                if ticks % 1000 == 0 {
                    println!("still ticking: {ticks} ms");
                }
            }
        });

        let mut received = 0;
        loop {
            match rx.recv_async().await {
                Ok(got) => {
                    if got != reading(received) {
                        return Err(format!("reading {received} arrived as {got:?}").into());
                    }
                    received += 1;
                }
                Err(RecvError::Disconnected) => break,
                Err(e) => return Err(e.into()),
            }
        }
        ticker.abort();
        let status = producer.wait()?;
        if !status.success() || received != READINGS {
            return Err(format!("the producer ({status}) sent {received} readings").into());
        }
        println!(
            "received {received} readings from process {} with recv_async",
            producer.id()
        );
        Ok(())
    })
}

/// The second process: opens the channel by name and sends, blocking when
/// the channel is full.
fn produce(name: &str) -> Result<(), Box<dyn Error>> {
    let mut tx = Channel::serde::<Reading>().open(name)?.sender()?;
    for seq in 0..READINGS {
        tx.send(reading(seq))?;
    }
    Ok(())
}
