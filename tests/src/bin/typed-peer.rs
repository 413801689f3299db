//! The other process in the typed-channel tests: opens a channel the test
//! made (or makes one and forks) and plays one role, reporting on stdout.
//!
//! ```text
//! typed-peer produce NAME PRODUCER COUNT     send records 0..COUNT of PRODUCER
//! typed-peer consume NAME                    receive until disconnected; print a tally line
//! typed-peer fork spsc|mpmc PRODUCERS COUNT  anonymous channel, PRODUCERS forked children
//!                                            sending COUNT records each; check all in order
//! typed-peer open-as NAME AS                 open NAME as serde-record, serde-sample or
//!                                            pod-sample; print the type mismatch, if any
//! typed-peer report NAME                     receive until disconnected, a line per outcome
//! typed-peer send-then-hang NAME COUNT       send COUNT records, say `sent COUNT`, and
//!                                            wait to be killed
//! typed-peer pod-echo REQUESTS REPLIES       answer each sample, read in place, with one
//!                                            written in place
//! ```
//! Records are [`Record`]s, samples [`Sample`]s, both checked on arrival.
//! Exit codes: 0 success, 1 failure (printed), 2 bad arguments, 10 type
//! mismatch (`open-as`).
//!
//! The peer is single-threaded, so its forked children may do anything
//! (allocate, print), unlike children forked by the threaded test harness.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use ipc_core::channel::{Channel, RecvError};
use ipc_core::Error;
use ipc_tests::fork::ForkedChild;
use ipc_tests::tagged::{Tag, Tally, MAX_PRODUCERS};
use ipc_tests::typed::{Record, Sample};
use nix::sys::wait::WaitStatus;

/// Longest a peer waits without progress before giving up: shorter than
/// the tests' own limit, so that the peer's report of what it waited for
/// comes first.
const STALL: Duration = Duration::from_secs(30);

/// The serde channel the tests use, as seen by an opener (the creator's
/// kind, capacity and sizes apply).
fn records() -> ipc_core::channel::Builder<Record, ipc_core::channel::Serde> {
    Channel::serde::<Record>().open_timeout(STALL)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["produce", name, producer, count] => {
            parse(producer).and_then(|p| parse(count).and_then(|c| produce(name, p, c)))
        }
        ["consume", name] => consume(name),
        ["fork", kind, producers, count] => {
            parse(producers).and_then(|p| parse(count).and_then(|c| fork(kind, p, c)))
        }
        ["open-as", name, as_type] => open_as(name, as_type),
        ["report", name] => report(name),
        ["send-then-hang", name, count] => parse(count).and_then(|c| send_then_hang(name, c)),
        ["pod-echo", requests, replies] => pod_echo(requests, replies),
        _ => {
            eprintln!("usage: typed-peer produce|consume|fork|open-as|report|send-then-hang|pod-echo ... (see the source)");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("typed-peer: {e}");
            ExitCode::from(1)
        }
    }
}

type Outcome = Result<u8, Box<dyn std::error::Error>>;

fn parse<N: std::str::FromStr>(word: &str) -> Result<N, Box<dyn std::error::Error>>
where
    N::Err: std::error::Error + 'static,
{
    Ok(word.parse()?)
}

fn produce(name: &str, producer: u32, count: u64) -> Outcome {
    let mut tx = records().open(name)?.sender()?;
    send_records(&mut tx, producer, count)?;
    Ok(0)
}

fn send_records(
    tx: &mut ipc_core::channel::Sender<Record, ipc_core::channel::Serde>,
    producer: u32,
    count: u64,
) -> Result<(), String> {
    for seq in 0..count {
        tx.send_timeout(Record::new(producer, seq), STALL)
            .map_err(|e| format!("record {seq} of producer {producer}: {e}"))?;
    }
    Ok(())
}

/// Receives until every producer is gone, checks each record, and prints
/// a tally line: what came from each producer, and how many came out of
/// that producer's order (a queue hands one consumer a producer's messages
/// in the order they were sent, whoever takes the ones in between).
fn consume(name: &str) -> Outcome {
    let mut rx = records().open(name)?.receiver()?;
    let mut tally = Tally::default();
    loop {
        let record = match rx.recv_timeout(STALL) {
            Ok(record) => record,
            Err(RecvError::Disconnected) => break,
            Err(e) => return Err(format!("after {} records: {e}", tally.total()).into()),
        };
        let (producer, seq) = (record.producer as usize, record.seq);
        if !record.is_intact() || producer >= MAX_PRODUCERS {
            return Err(format!("record {seq} of producer {producer} altered: {record:?}").into());
        }
        tally.count(Tag { producer, seq });
    }
    println!("{}", tally.to_line());
    Ok(0)
}

/// An anonymous channel shared with forked children, each a producer that
/// attaches after the fork (handles belong to the process that attached
/// them) and sends `count` records; this process receives them all, in
/// each producer's order, then sees the channel disconnected.
fn fork(kind: &str, producers: u32, count: u64) -> Outcome {
    let builder = Channel::serde::<Record>().capacity(1024).max_message(256);
    let builder = match kind {
        "spsc" => builder.spsc(),
        "mpmc" => builder.mpmc(),
        _ => return Err(format!("unknown ring kind {kind}").into()),
    };
    let endpoint = builder.anonymous()?;
    let mut rx = endpoint.receiver()?;
    // An MPMC queue's receivers see the producers gone once every producer
    // that attached has left: one child could finish before the next
    // attaches. A sender of this process's own keeps the role taken until
    // every child is done.
    let keep_producing = match kind {
        "mpmc" => Some(endpoint.sender()?),
        _ => None,
    };
    let mut children = Vec::new();
    for producer in 0..producers {
        let send_all = || {
            let sent = endpoint
                .sender()
                .map_err(|e| e.to_string())
                .and_then(|mut tx| send_records(&mut tx, producer, count));
            match sent {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("typed-peer: forked producer {producer}: {e}");
                    1
                }
            }
        };
        // SAFETY: this process has one thread, so the child may allocate and
        // print; it leaves through `_exit`.
        children.push(unsafe { ForkedChild::fork(send_all) }?);
    }
    let mut next = vec![0u64; producers as usize];
    for received in 0..u64::from(producers) * count {
        let record = rx
            .recv_timeout(STALL)
            .map_err(|e| format!("after {received} records: {e}"))?;
        let (producer, seq) = (record.producer, record.seq);
        match next.get_mut(producer as usize) {
            Some(expected) if *expected == seq && record.is_intact() => *expected += 1,
            Some(expected) => {
                return Err(format!(
                    "expected record {expected} of producer {producer}, got {record:?}"
                )
                .into())
            }
            None => return Err(format!("a record from no producer: {record:?}").into()),
        }
    }
    for child in &children {
        match child.wait(STALL)? {
            WaitStatus::Exited(_, 0) => {}
            status => return Err(format!("a producer ended with {status:?}").into()),
        }
    }
    drop(keep_producing);
    match rx.recv_timeout(STALL) {
        Err(RecvError::Disconnected) => {}
        other => return Err(format!("after the last record: {other:?}").into()),
    }
    println!(
        "received {} records in order from {producers} forked producers, then disconnected",
        next.iter().sum::<u64>()
    );
    Ok(0)
}

fn open_as(name: &str, as_type: &str) -> Outcome {
    let opened = match as_type {
        "serde-record" => Channel::serde::<Record>().open(name).map(drop),
        "serde-sample" => Channel::serde::<Sample>().open(name).map(drop),
        "pod-sample" => Channel::pod::<Sample>().open(name).map(drop),
        _ => return Err(format!("unknown type {as_type}").into()),
    };
    match opened {
        Ok(()) => {
            println!("opened");
            Ok(0)
        }
        Err(e) => {
            let Error::TypeMismatch { expected, found } = &e else {
                return Err(e.into());
            };
            println!("expected: {expected}");
            println!("found: {found}");
            println!("error: {e}");
            Ok(10)
        }
    }
}

/// Receives until every sender is gone, printing what each receive gave.
fn report(name: &str) -> Outcome {
    let mut rx = records().open(name)?.receiver()?;
    loop {
        match rx.recv_timeout(STALL) {
            Ok(record) => {
                let state = if record.is_intact() {
                    "intact"
                } else {
                    "altered"
                };
                println!("record {} {} {state}", record.producer, record.seq);
            }
            Err(RecvError::Decode { type_name, reason }) => {
                println!("decode error: {type_name}: {reason}");
            }
            Err(RecvError::Disconnected) => {
                println!("disconnected");
                return Ok(0);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Leaves `count` records in the channel for the test to receive after
/// killing this process.
fn send_then_hang(name: &str, count: u64) -> Outcome {
    let mut tx = records().open(name)?.sender()?;
    send_records(&mut tx, 3, count)?;
    // stdout is line-buffered: the test reads this at once.
    println!("sent {count}");
    // Killed here; a test that forgets to kill leaves no process behind.
    let started = Instant::now();
    while started.elapsed() < 2 * STALL {
        std::thread::sleep(Duration::from_millis(50));
    }
    Err("never killed".into())
}

/// Answers each request sample, read in place, with a reply written in
/// place: sample `seq` of the request's source + 1. Ends when the requests
/// are disconnected.
fn pod_echo(requests: &str, replies: &str) -> Outcome {
    let mut rx = Channel::pod::<Sample>()
        .open_timeout(STALL)
        .open(requests)?
        .receiver()?;
    let mut tx = Channel::pod::<Sample>()
        .open_timeout(STALL)
        .open(replies)?
        .sender()?;
    let mut answered = 0u64;
    loop {
        // Blocking calls: the test kills this process if it stalls.
        let request = match rx.recv_ref() {
            Ok(request) => request,
            Err(RecvError::Disconnected) => break,
            Err(e) => return Err(format!("after {answered} requests: {e}").into()),
        };
        if *request != Sample::new(request.source, request.seq) {
            return Err(format!("request {answered} altered: {:?}", *request).into());
        }
        let mut reply = tx.reserve()?;
        reply.fill(request.source + 1, request.seq);
        reply.commit()?;
        answered += 1;
    }
    println!("answered {answered}");
    Ok(0)
}
