//! The unrelated process in the SPSC cross-process tests: attaches to a ring
//! made by the test process and plays one role.
//!
//! ```text
//! spsc-peer produce-shm NAME COUNT MAX_LEN SEED   produce COUNT random-size messages
//! spsc-peer consume-memfd SOCKET COUNT MAX_LEN SEED   receive the ring's fd, verify COUNT messages
//! spsc-peer attach-producer NAME                 try to claim the producer role
//! ```
//! Exit codes: 0 success, 1 failure (printed), 2 bad arguments, 10 role
//! already attached.

use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use ipc_core::spsc::{Consumer, Producer, RecvError, SendError};
use ipc_core::{Error, RegionOptions};
use ipc_tests::payload::PayloadGen;
use ipc_tests::wait::BoundedWait;

/// Longest a peer waits without progress before giving up.
const STALL: Duration = Duration::from_secs(20);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["produce-shm", name, count, max, seed] => {
            parse(count, max, seed).and_then(|(c, m, s)| produce_shm(name, c, m, s))
        }
        ["consume-memfd", socket, count, max, seed] => {
            parse(count, max, seed).and_then(|(c, m, s)| consume_memfd(socket, c, m, s))
        }
        ["attach-producer", name] => attach_producer(name),
        _ => {
            eprintln!("usage: spsc-peer produce-shm|consume-memfd|attach-producer ...");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("spsc-peer: {e}");
            ExitCode::from(1)
        }
    }
}

type Outcome = Result<u8, Box<dyn std::error::Error>>;

fn parse(
    count: &str,
    max: &str,
    seed: &str,
) -> Result<(u64, usize, u64), Box<dyn std::error::Error>> {
    Ok((count.parse()?, max.parse()?, seed.parse()?))
}

fn produce_shm(name: &str, count: u64, max: usize, seed: u64) -> Outcome {
    let region = Arc::new(RegionOptions::new().open_shm(name)?);
    let mut producer = Producer::attach(region)?;
    let gen = PayloadGen::random(seed, max);
    let mut wait = BoundedWait::new("room in the ring", STALL);
    let mut seq = 0;
    while seq < count {
        let len = gen.len_of(seq);
        match producer.try_reserve(len) {
            Ok(mut grant) => {
                gen.fill(seq, &mut grant);
                grant.commit();
                seq += 1;
                wait.reset();
            }
            Err(SendError::Full) => wait.snooze().map_err(|e| format!("message {seq}: {e}"))?,
            Err(e) => return Err(format!("message {seq}: {e}").into()),
        }
    }
    Ok(0)
}

fn consume_memfd(socket: &str, count: u64, max: usize, seed: u64) -> Outcome {
    let socket = UnixStream::connect(socket)?;
    let region = Arc::new(RegionOptions::new().receive_fd(&socket)?);
    let mut consumer = Consumer::attach(region)?;
    let gen = PayloadGen::random(seed, max);
    let mut wait = BoundedWait::new("a message", STALL);
    let mut seq = 0;
    let mut failure = None;
    while seq < count {
        let result = consumer.drain(256, |msg| {
            if failure.is_none() {
                if let Err(e) = gen.verify(seq, msg) {
                    failure = Some(format!("message {seq}: {e}"));
                }
            }
            seq += 1;
        });
        match result {
            Ok(0) | Err(RecvError::Empty) => wait
                .snooze()
                .map_err(|e| format!("stalled at message {seq}: {e}"))?,
            Ok(_) => wait.reset(),
            Err(e) => return Err(e.into()),
        }
        if let Some(failure) = failure.take() {
            return Err(failure.into());
        }
    }
    if seq != count {
        return Err(format!("received {seq} messages, expected {count}").into());
    }
    Ok(0)
}

fn attach_producer(name: &str) -> Outcome {
    let region = Arc::new(RegionOptions::new().open_shm(name)?);
    match Producer::attach(region) {
        Ok(_) => Ok(0),
        Err(e @ Error::AlreadyAttached { .. }) => {
            eprintln!("{e}");
            Ok(10)
        }
        Err(e) => Err(e.into()),
    }
}
