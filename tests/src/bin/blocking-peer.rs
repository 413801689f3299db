//! The unrelated process in the blocking tests (`tests/tests/blocking.rs`):
//! attaches to rings in named shm objects made by the test, of either kind,
//! and plays one part with the blocking calls.
//!
//! ```text
//! blocking-peer KIND hold IN OUT
//!     attach the consumer of IN and the producer of OUT (`-`: none), then
//!     sleep, out of any call, until killed
//! blocking-peer KIND echo IN OUT COUNT STRATEGY
//!     receive COUNT messages from IN, sending each back on OUT
//! blocking-peer KIND produce NAME FROM COUNT SEED MAX STRATEGY THEN
//!     send messages FROM..FROM+COUNT of `PayloadGen::random(SEED, MAX)`;
//!     THEN `exit` (detach), `linger:MS` (sleep MS ms, then detach) or
//!     `hang` (sleep out of any call until killed)
//! blocking-peer KIND consume NAME FROM COUNT SEED MAX STRATEGY THEN
//!     receive and verify those messages; THEN as for `produce`, or
//!     `disconnected` (expect the producer gone, and no more messages)
//! blocking-peer KIND wake-receiver DATA ACKS PID TID ROUNDS
//!     ROUNDS times: wait until thread TID of PID sleeps in a futex (its
//!     receive from DATA), send it a message, await its ack on ACKS
//! blocking-peer KIND wake-sender DATA ACKS PID TID ROUNDS
//!     ROUNDS times: wait until thread TID of PID sleeps in a futex (its
//!     send to the full DATA), receive one message, await its next ack
//! ```
//! KIND is `spsc` or `mpmc`; STRATEGY a word of
//! `ipc_tests::rings::parse_strategy`. Every blocking call gives up after
//! [`STALL`] without progress. On success it prints `key value` lines
//! (always `syscalls N`: the wait-path system calls it made, from
//! `ipc_core::wait::syscalls`) and exits 0. Exit codes: 1 failure
//! (printed), 2 bad arguments, 3 killed by nobody while hanging.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipc_core::wait::{syscalls, WaitStrategy};
use ipc_core::RegionOptions;
use ipc_tests::payload::PayloadGen;
use ipc_tests::probe::Task;
use ipc_tests::rings::{parse_strategy, Mpmc, Receiver, RecvError, RingKind, Sender, Spsc};
use nix::unistd::Pid;

/// Longest any blocking call waits without progress before giving up.
const STALL: Duration = Duration::from_secs(60);
/// Longest a peer told to hang sleeps before giving up on being killed.
const HANG: Duration = Duration::from_secs(300);

type Outcome = Result<(), Box<dyn std::error::Error>>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.first() {
        Some(&"spsc") => run::<Spsc>(&args[1..]),
        Some(&"mpmc") => run::<Mpmc>(&args[1..]),
        _ => None,
    };
    match result {
        None => {
            eprintln!("usage: blocking-peer spsc|mpmc hold|echo|produce|consume|wake-receiver|wake-sender ...");
            ExitCode::from(2)
        }
        Some(Ok(())) => {
            println!("syscalls {}", syscalls());
            ExitCode::SUCCESS
        }
        Some(Err(e)) => {
            eprintln!("blocking-peer {}: {e}", args.join(" "));
            ExitCode::FAILURE
        }
    }
}

/// Runs the part `args` names; `None` for arguments that name none.
fn run<K: RingKind>(args: &[&str]) -> Option<Outcome> {
    let strategy = parse_strategy;
    Some(match *args {
        ["hold", input, output] => hold::<K>(input, output),
        ["echo", input, output, count, s] => {
            echo::<K>(input, output, count.parse().ok()?, strategy(s)?)
        }
        ["produce", name, from, count, seed, max, s, then] => produce::<K>(
            name,
            Stream::parse(from, count, seed, max)?,
            strategy(s)?,
            then,
        ),
        ["consume", name, from, count, seed, max, s, then] => consume::<K>(
            name,
            Stream::parse(from, count, seed, max)?,
            strategy(s)?,
            then,
        ),
        ["wake-receiver", data, acks, pid, tid, rounds] => {
            wake_receiver::<K>(data, acks, task(pid, tid)?, rounds.parse().ok()?)
        }
        ["wake-sender", data, acks, pid, tid, rounds] => {
            wake_sender::<K>(data, acks, task(pid, tid)?, rounds.parse().ok()?)
        }
        _ => return None,
    })
}

/// Messages `from..from + count` of a payload stream.
#[derive(Clone, Copy)]
struct Stream {
    from: u64,
    count: u64,
    gen: PayloadGen,
}

impl Stream {
    fn parse(from: &str, count: &str, seed: &str, max: &str) -> Option<Stream> {
        Some(Stream {
            from: from.parse().ok()?,
            count: count.parse().ok()?,
            gen: PayloadGen::random(seed.parse().ok()?, max.parse().ok()?),
        })
    }
}

/// Thread `tid` of process `pid`.
fn task(pid: &str, tid: &str) -> Option<Task> {
    Some(Task {
        pid: Pid::from_raw(pid.parse().ok()?),
        tid: Pid::from_raw(tid.parse().ok()?),
    })
}

fn open(name: &str) -> Result<Arc<ipc_core::Region>, ipc_core::Error> {
    RegionOptions::new().open_shm(name).map(Arc::new)
}

fn deadline() -> Instant {
    Instant::now() + STALL
}

/// Sleeps out of any ring call until killed; an error if nobody does.
fn hang() -> Outcome {
    std::thread::sleep(HANG);
    std::process::exit(3)
}

fn hold<K: RingKind>(input: &str, output: &str) -> Outcome {
    let _consumer = match input {
        "-" => None,
        name => Some(K::consumer(open(name)?)?),
    };
    let _producer = match output {
        "-" => None,
        name => Some(K::producer(open(name)?)?),
    };
    hang()
}

fn echo<K: RingKind>(input: &str, output: &str, count: u64, strategy: WaitStrategy) -> Outcome {
    let mut consumer = K::consumer(open(input)?)?;
    let mut producer = K::producer(open(output)?)?;
    consumer.set_wait_strategy(strategy);
    producer.set_wait_strategy(strategy);
    let mut buf = vec![0u8; 1 << 16];
    let mut send_syscalls = 0;
    for i in 0..count {
        let n = consumer
            .recv_into_deadline(&mut buf, deadline())
            .map_err(|e| format!("receiving message {i}: {e}"))?;
        let before = syscalls();
        producer
            .send_deadline(&buf[..n], deadline())
            .map_err(|e| format!("echoing message {i}: {e}"))?;
        send_syscalls += syscalls() - before;
    }
    println!("send_syscalls {send_syscalls}");
    Ok(())
}

fn produce<K: RingKind>(name: &str, stream: Stream, strategy: WaitStrategy, then: &str) -> Outcome {
    let mut producer = K::producer(open(name)?)?;
    producer.set_wait_strategy(strategy);
    let gen = stream.gen;
    let mut buf = vec![0u8; gen.max_len()];
    for seq in stream.from..stream.from + stream.count {
        let len = gen.len_of(seq);
        let sent = if seq % 2 == 0 {
            gen.fill(seq, &mut buf[..len]);
            producer.send_deadline(&buf[..len], deadline())
        } else {
            producer.reserve_deadline(len, deadline(), |msg| gen.fill(seq, msg))
        };
        sent.map_err(|e| format!("message {seq}: {e}"))?;
    }
    finally(then)
}

/// What a peer does once its messages are through: `exit` (detach and
/// exit), `hang`, or `linger:MS` (sleep MS milliseconds, then exit).
fn finally(then: &str) -> Outcome {
    match then {
        "exit" => Ok(()),
        "hang" => hang(),
        _ => match then.strip_prefix("linger:").map(str::parse) {
            Some(Ok(ms)) => {
                std::thread::sleep(Duration::from_millis(ms));
                Ok(())
            }
            _ => Err(format!("then {then}?").into()),
        },
    }
}

fn consume<K: RingKind>(name: &str, stream: Stream, strategy: WaitStrategy, then: &str) -> Outcome {
    let mut consumer = K::consumer(open(name)?)?;
    consumer.set_wait_strategy(strategy);
    let gen = stream.gen;
    let mut buf = vec![0u8; gen.max_len()];
    for seq in stream.from..stream.from + stream.count {
        let verified = if seq % 2 == 0 {
            let n = consumer.recv_into_deadline(&mut buf, deadline());
            n.map(|n| gen.verify(seq, &buf[..n]))
        } else {
            consumer.recv_deadline_with(deadline(), |msg| gen.verify(seq, msg))
        };
        verified
            .map_err(|e| format!("message {seq}: {e}"))?
            .map_err(|e| format!("message {seq}: {e}"))?;
    }
    match then {
        "disconnected" => match consumer.recv_into_deadline(&mut buf, deadline()) {
            Err(RecvError::Disconnected) => Ok(()),
            Ok(n) => Err(format!("a message of {n} bytes after the last").into()),
            Err(e) => Err(format!("after the last message: {e}").into()),
        },
        _ => finally(then),
    }
}

/// Waits until `task` sleeps in a futex: blocked in a ring call.
fn until_asleep(task: Task) -> Result<(), Box<dyn std::error::Error>> {
    task.wait_until("the test's thread to block", STALL, |s| s.in_futex_wait())?;
    Ok(())
}

/// Receives the acknowledgement numbered `ack`.
fn await_ack(acks: &mut impl Receiver, ack: u64) -> Outcome {
    let got = acks
        .recv_deadline_with(deadline(), |msg| msg.try_into().map(u64::from_le_bytes))
        .map_err(|e| format!("waiting for ack {ack}: {e}"))?;
    match got {
        Ok(n) if n == ack => Ok(()),
        other => Err(format!("ack {other:?}, expected {ack}").into()),
    }
}

/// Prints how many of `rounds` notifications made exactly one system call
/// (the `FUTEX_WAKE` of a sleeper), and the most any made.
fn report_wakes(deltas: &[u64]) {
    println!("rounds {}", deltas.len());
    println!("wakes {}", deltas.iter().filter(|&&d| d == 1).count());
    println!("max_delta {}", deltas.iter().max().unwrap_or(&0));
}

fn wake_receiver<K: RingKind>(data: &str, acks: &str, receiver: Task, rounds: u64) -> Outcome {
    let mut producer = K::producer(open(data)?)?;
    let mut acks = K::consumer(open(acks)?)?;
    let mut deltas = Vec::new();
    for round in 0..rounds {
        until_asleep(receiver)?;
        let before = syscalls();
        producer
            .send_deadline(&round.to_le_bytes(), deadline())
            .map_err(|e| format!("round {round}: {e}"))?;
        deltas.push(syscalls() - before);
        await_ack(&mut acks, round)?;
    }
    report_wakes(&deltas);
    Ok(())
}

fn wake_sender<K: RingKind>(data: &str, acks: &str, sender: Task, rounds: u64) -> Outcome {
    let mut consumer = K::consumer(open(data)?)?;
    let mut acks = K::consumer(open(acks)?)?;
    let mut buf = [0u8; 8];
    let mut deltas = Vec::new();
    // The sender acknowledges each message once sent; it fills the ring,
    // then blocks on the next send.
    let mut acked = 0;
    for round in 0..rounds {
        until_asleep(sender)?;
        if round == 0 {
            // Asleep, it has acknowledged all it sent: the ring's worth.
            while acks.try_recv_into(&mut buf) == Ok(8) {
                if u64::from_le_bytes(buf) != acked {
                    return Err(format!("ack {buf:?}, expected {acked}").into());
                }
                acked += 1;
            }
        }
        let before = syscalls();
        let received = consumer.try_recv_into(&mut buf);
        deltas.push(syscalls() - before);
        match received {
            Ok(8) if u64::from_le_bytes(buf) == round => {}
            other => return Err(format!("round {round}: received {other:?}").into()),
        }
        // The room made lets the blocked send through; once it is
        // acknowledged, the next sleep seen is the next send's.
        await_ack(&mut acks, acked)?;
        acked += 1;
    }
    report_wakes(&deltas);
    Ok(())
}
