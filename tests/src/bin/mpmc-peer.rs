//! The unrelated processes of the MPMC cross-process tests: each opens a
//! queue in a named shm object made by the test and plays one part, with
//! [tagged messages](ipc_tests::tagged).
//!
//! ```text
//! mpmc-peer produce NAME ID COUNT ROUNDS   send COUNT messages as producer ID,
//!                                          attaching anew for each of ROUNDS rounds
//! mpmc-peer consume NAME ROUNDS LIMIT      receive up to LIMIT messages (0: until
//!                                          disconnected) in each of ROUNDS attachments;
//!                                          print the tally
//! mpmc-peer attach NAME ROLE               attach as producer or consumer, print
//!                                          `attached PID`, wait to be killed
//! mpmc-peer hold-grant NAME ID SENT        send SENT messages, then claim a slot and
//!                                          half-write message SENT; print `holding SEQ`;
//!                                          on each SIGUSR1 finish and commit it, print
//!                                          `committed SEQ`, and claim the next
//! mpmc-peer hold-read NAME                 claim one message and keep it; print
//!                                          `holding PRODUCER SEQ`
//! mpmc-peer wait-recv NAME STRATEGY MILLIS attach as a consumer, print `waiting`, receive
//!                                          once waiting with STRATEGY (`park`,
//!                                          `spin-then-park` or `busy-poll`) for up to
//!                                          MILLIS ms; print `OUTCOME syscalls N`, N the
//!                                          wait syscalls that receive made
//! mpmc-peer in-new-pid-namespace ARGS...   run `mpmc-peer ARGS...` as pid 1 of a new
//!                                          pid namespace; print `inner-pid PID` (its pid
//!                                          here) first, or `no-pid-namespace WHY`
//! ```
//! Exit codes: 0 success, 1 failure (printed), 2 bad arguments, 77 no
//! permission to make a pid namespace. Every peer dies with the thread that
//! spawned it and after [`LIFETIME_SECS`] at the latest, so none outlives a
//! failed test.

use std::io::Write;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::Duration;

use ipc_core::mpmc::{Consumer, Producer, RecvError, SendError};
use ipc_core::wait::{syscalls, WaitStrategy};
use ipc_core::{Region, RegionOptions};
use ipc_tests::tagged::{self, Tally, TAGGED_LEN};
use ipc_tests::wait::BoundedWait;
use nix::sys::signal::{SigSet, Signal};

/// Longest a peer waits without progress before giving up.
const STALL: Duration = Duration::from_secs(60);
/// Longest a peer lives (`alarm`): hold-* peers wait to be killed.
const LIFETIME_SECS: u32 = 600;
/// The exit code of a peer refused a pid namespace.
const NO_PERMISSION: u8 = 77;

type Outcome = Result<(), Box<dyn std::error::Error>>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // Dies with the thread that spawned it (a test's), and after a while
    // in any case; SIGALRM's default action ends the process.
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    // SAFETY: alarm has no preconditions.
    unsafe { libc::alarm(LIFETIME_SECS) };
    let result = match args.as_slice() {
        ["produce", name, id, count, rounds] => {
            parse4(id, count, rounds).and_then(|(i, c, r)| produce(name, i as usize, c, r))
        }
        ["consume", name, rounds, limit] => {
            parse4(rounds, limit, "0").and_then(|(r, l, _)| consume(name, r, l))
        }
        ["attach", name, role] => attach(name, role),
        ["hold-grant", name, id, sent] => {
            parse4(id, sent, "0").and_then(|(i, s, _)| hold_grant(name, i as usize, s))
        }
        ["hold-read", name] => hold_read(name),
        ["wait-recv", name, strategy, millis] => millis
            .parse()
            .map_err(Into::into)
            .and_then(|ms| wait_recv(name, strategy, ms)),
        ["in-new-pid-namespace", rest @ ..] if !rest.is_empty() => {
            return in_new_pid_namespace(rest)
        }
        _ => {
            eprintln!("usage: see the module docs of tests/src/bin/mpmc-peer.rs");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mpmc-peer {}: {e}", args.join(" "));
            ExitCode::from(1)
        }
    }
}

fn parse4(a: &str, b: &str, c: &str) -> Result<(u64, u64, u64), Box<dyn std::error::Error>> {
    Ok((a.parse()?, b.parse()?, c.parse()?))
}

fn open(name: &str) -> Result<Arc<Region>, ipc_core::Error> {
    RegionOptions::new().open_shm(name).map(Arc::new)
}

/// Prints a line and flushes it, for a test that waits for it.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Waits to be killed (or for the lifetime alarm).
fn wait_forever() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Sends producer `id`'s messages `0..count`, attaching anew for each of
/// `rounds` rounds, with every way of sending in turn.
fn produce(name: &str, id: usize, count: u64, rounds: u64) -> Outcome {
    let region = open(name)?;
    let rounds = rounds.max(1);
    let mut msg = [0u8; TAGGED_LEN];
    let mut seq = 0;
    for round in 0..rounds {
        let mut producer = Producer::attach(region.clone())?;
        let end = count * (round + 1) / rounds;
        while seq < end {
            let sent = match seq % 4 {
                0 => {
                    tagged::fill(id, seq, &mut msg);
                    producer.send(&msg)
                }
                1 => producer.reserve(TAGGED_LEN).and_then(|mut grant| {
                    tagged::fill(id, seq, &mut grant);
                    grant.commit()
                }),
                2 => {
                    tagged::fill(id, seq, &mut msg);
                    let mut wait = BoundedWait::new("room in the queue", STALL);
                    loop {
                        match producer.try_send(&msg) {
                            Err(SendError::Full) => {
                                wait.snooze().map_err(|e| format!("message {seq}: {e}"))?
                            }
                            other => break other,
                        }
                    }
                }
                _ => {
                    tagged::fill(id, seq, &mut msg);
                    producer.send_timeout(&msg, STALL)
                }
            };
            sent.map_err(|e| format!("message {seq}: {e}"))?;
            seq += 1;
        }
    }
    say(&format!("sent {seq}"));
    Ok(())
}

/// Receives (up to `limit` messages per attachment, 0 for no limit) until
/// the producers are gone, with every way of receiving in turn; prints the
/// tally.
fn consume(name: &str, rounds: u64, limit: u64) -> Outcome {
    let region = open(name)?;
    let mut tally = Tally::default();
    let mut buf = [0u8; TAGGED_LEN];
    let mut received = 0u64;
    'rounds: for _ in 0..rounds.max(1) {
        let mut consumer = Consumer::attach(region.clone())?;
        let mut wait = BoundedWait::new("a message", STALL);
        let mut got = 0;
        while limit == 0 || got < limit {
            let outcome = match received % 3 {
                0 => consumer.recv().map(|msg| {
                    let _ = tally.record(&msg);
                }),
                1 => consumer.recv_into(&mut buf).map(|n| {
                    let _ = tally.record(&buf[..n]);
                }),
                _ => match consumer.try_recv() {
                    Ok(msg) => {
                        let _ = tally.record(&msg);
                        Ok(())
                    }
                    Err(RecvError::Empty) => {
                        wait.snooze()
                            .map_err(|e| format!("after {received} messages: {e}"))?;
                        continue;
                    }
                    Err(e) => Err(e),
                },
            };
            match outcome {
                Ok(()) => {
                    received += 1;
                    got += 1;
                    wait.reset();
                }
                Err(RecvError::Disconnected) => break 'rounds,
                Err(e) => return Err(format!("after {received} messages: {e}").into()),
            }
        }
    }
    say(&tally.to_line());
    Ok(())
}

fn attach(name: &str, role: &str) -> Outcome {
    let region = open(name)?;
    let _handle: Box<dyn std::fmt::Debug> = match role {
        "producer" => Box::new(Producer::attach(region)?),
        "consumer" => Box::new(Consumer::attach(region)?),
        _ => return Err(format!("no role {role}").into()),
    };
    say(&format!("attached {}", std::process::id()));
    wait_forever()
}

/// Sends `sent` messages, then keeps claiming a slot, half-writing the next
/// message into it, and finishing and committing it on each SIGUSR1.
fn hold_grant(name: &str, id: usize, sent: u64) -> Outcome {
    // Blocked before anything happens, so that a SIGUSR1 sent early is
    // kept for `wait` instead of killing the process.
    let mut usr1 = SigSet::empty();
    usr1.add(Signal::SIGUSR1);
    usr1.thread_block()?;
    let mut producer = Producer::attach(open(name)?)?;
    let mut msg = [0u8; TAGGED_LEN];
    for seq in 0..sent {
        tagged::fill(id, seq, &mut msg);
        producer.send_timeout(&msg, STALL)?;
    }
    for seq in sent.. {
        let mut grant = producer.reserve_deadline(TAGGED_LEN, deadline())?;
        tagged::fill_half(id, seq, &mut grant);
        say(&format!("holding {seq}"));
        usr1.wait()?;
        tagged::fill(id, seq, &mut grant);
        grant.commit()?;
        say(&format!("committed {seq}"));
    }
    Ok(())
}

fn deadline() -> std::time::Instant {
    std::time::Instant::now() + STALL
}

/// Claims one message and never releases it.
fn hold_read(name: &str) -> Outcome {
    let mut consumer = Consumer::attach(open(name)?)?;
    let msg = consumer.recv_timeout(STALL)?;
    let tag = tagged::read(&msg)?;
    say(&format!("holding {} {}", tag.producer, tag.seq));
    wait_forever()
}

/// Receives once, waiting as `strategy` says for up to `millis` ms, and
/// prints the outcome and the wait syscalls the receive made.
fn wait_recv(name: &str, strategy: &str, millis: u64) -> Outcome {
    let strategy = match strategy {
        "park" => WaitStrategy::Park,
        "spin-then-park" => WaitStrategy::default(),
        "busy-poll" => WaitStrategy::BusyPoll,
        _ => return Err(format!("no wait strategy {strategy}").into()),
    };
    let mut consumer = Consumer::attach(open(name)?)?;
    consumer.set_wait_strategy(strategy);
    say("waiting");
    let before = syscalls();
    let outcome = match consumer.recv_timeout(Duration::from_millis(millis)) {
        Ok(_) => "received".to_string(),
        Err(e) => format!("{e:?}"),
    };
    say(&format!("{outcome} syscalls {}", syscalls() - before));
    Ok(())
}

/// Runs `mpmc-peer args…` as the first process (pid 1) of a new pid
/// namespace, as a container would; prints its pid as this namespace sees
/// it, waits for it, and ends as it ended.
fn in_new_pid_namespace(args: &[&str]) -> ExitCode {
    // SAFETY: unshare has no memory-safety preconditions; CLONE_NEWPID only
    // changes the namespace of the children made from now on.
    if unsafe { libc::unshare(libc::CLONE_NEWPID) } != 0 {
        let why = std::io::Error::last_os_error();
        say(&format!("no-pid-namespace unshare(CLONE_NEWPID): {why}"));
        return ExitCode::from(NO_PERMISSION);
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("current_exe: {e}");
            return ExitCode::from(1);
        }
    };
    let mut child = match Command::new(exe).args(args).spawn() {
        Ok(child) => child,
        Err(e) => {
            eprintln!("spawning into the new pid namespace: {e}");
            return ExitCode::from(1);
        }
    };
    say(&format!("inner-pid {}", child.id()));
    match child.wait() {
        Ok(status) => {
            use std::os::unix::process::ExitStatusExt;
            let code = status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
            ExitCode::from(code as u8)
        }
        Err(e) => {
            eprintln!("waiting for the inner process: {e}");
            ExitCode::from(1)
        }
    }
}
