//! Runs with several producers and consumers: a *team* of forked members,
//! each pinned to a CPU by its role ([`cpu_of`]), that start together and
//! leave their results on a shared [`Board`].
//!
//! The parent only coordinates: it forks the members, sleeps until all are
//! ready, reads the clock, says go, and sleeps until all are done; its
//! sleeps are raw futex waits ([`crate::futex`]), so it takes no CPU from
//! the members. The members read the same clock ([`monotonic_ns`]) when they
//! finish; a run lasts from the parent's go to the last member's finish.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipc_core::Region;
use ipc_tests::fork::ForkedChild;
use ipc_tests::wait::{describe, ended, WaitError};
use nix::sys::wait::WaitStatus;

use crate::message::Tally;
use crate::process::{core_pair, finish, fork_child, pin_to_core};
use crate::stats::monotonic_ns;
use crate::workload::raw_region;
use crate::{futex, Error, Result, DEADLINE};

/// A member's role, which decides its CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Sends.
    Producer,
    /// Receives.
    Consumer,
}

/// How members are pinned, for the reports.
pub const PINNING: &str = "consumer i on CPU i mod 2 and producer i on CPU (i + 1) mod 2 of the \
    two CPUs, so each CPU runs one producer and one consumer in 2P2C, and the lone consumer \
    (1P) or producer (1C) has a CPU to itself in 1P1C";

/// The CPU of the `index`-th member of `role`: consumer `i` on the `i mod
/// 2`-th CPU of [`core_pair`], producer `i` on the `(i + 1) mod 2`-th;
/// `None` on a machine with fewer than two CPUs.
pub fn cpu_of(role: Role, index: usize) -> Option<usize> {
    let pair = core_pair()?;
    let cpus = [pair.parent, pair.child];
    Some(match role {
        Role::Consumer => cpus[index % 2],
        Role::Producer => cpus[(index + 1) % 2],
    })
}

/// Words each member may leave on the board.
pub const RESULT_WORDS: usize = 16;
/// Where a consumer leaves its [`Tally`].
pub const TALLY: usize = 0;
/// Where a member leaves the time it finished ([`monotonic_ns`]).
pub const FINISHED: usize = Tally::WORDS;
/// Where a member leaves its wait-path system calls.
pub const SYSCALLS: usize = Tally::WORDS + 1;

const READY: u64 = 0;
const GO: u64 = 128;
const DONE: u64 = 256;
const SCRATCH: u64 = 384;
const RESULTS: u64 = 512;
const MEMBER_BYTES: u64 = 128;

/// How long a futex sleep of the team lasts before the sleeper looks at
/// its deadline and its peers.
const TICK: Duration = Duration::from_millis(20);

/// The shared words of a team run: the start and finish lines, a scratch
/// word for the members, and each member's results.
#[derive(Debug)]
pub struct Board {
    region: Arc<Region>,
    members: usize,
}

impl Board {
    /// A board for `members` members; make it before forking.
    pub fn new(members: usize) -> Result<Board> {
        const _: () = assert!(RESULT_WORDS as u64 * 8 <= MEMBER_BYTES);
        Ok(Board {
            region: raw_region(RESULTS + members as u64 * MEMBER_BYTES)?,
            members,
        })
    }

    fn word(&self, offset: u64) -> Result<&AtomicU32> {
        futex::word(&self.region, offset)
    }

    /// Word `word` of member `member`'s results.
    pub fn result(&self, member: usize, word: usize) -> Result<&AtomicU64> {
        if member >= self.members || word >= RESULT_WORDS {
            return Err(Error::Unsupported("a result word beyond the board"));
        }
        Ok(self
            .region
            .atomic_u64(RESULTS + member as u64 * MEMBER_BYTES + word as u64 * 8)?)
    }

    /// Leaves `words` at `first..` of member `member`'s results.
    pub fn put(&self, member: usize, first: usize, words: &[u64]) -> Result<()> {
        for (i, &w) in words.iter().enumerate() {
            // Relaxed: published by the Release increment in `done`.
            self.result(member, first + i)?.store(w, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Member `member`'s results `first..first + N`.
    pub fn get<const N: usize>(&self, member: usize, first: usize) -> Result<[u64; N]> {
        let mut out = [0; N];
        for (i, w) in out.iter_mut().enumerate() {
            // Relaxed: acquired by the parent's load of the done count.
            *w = self.result(member, first + i)?.load(Ordering::Relaxed);
        }
        Ok(out)
    }

    /// A word all members share, 0 at the start.
    pub fn scratch(&self) -> Result<&AtomicU64> {
        Ok(self.region.atomic_u64(SCRATCH)?)
    }

    /// In a member: says it is ready, and sleeps until the go.
    pub fn ready_wait_go(&self) -> Result<()> {
        let ready = self.word(READY)?;
        // Release: the member's set-up happens before the parent's go.
        ready.fetch_add(1, Ordering::Release);
        futex::wake(ready, 1)?;
        let go = self.word(GO)?;
        let deadline = Instant::now() + DEADLINE;
        // Acquire: pairs with the parent's Release store of go.
        while go.load(Ordering::Acquire) == 0 {
            futex::wait(go, 0, TICK)?;
            if Instant::now() > deadline {
                return Err(Error::Wait(WaitError::Timeout {
                    waiting_for: "the go of the team",
                    limit: DEADLINE,
                }));
            }
        }
        Ok(())
    }

    /// In a member: says it is done; its results are on the board.
    fn done(&self) -> Result<()> {
        let done = self.word(DONE)?;
        // Release: the results are stored before the parent sees the count.
        done.fetch_add(1, Ordering::Release);
        futex::wake(done, 1).map(drop)
    }
}

/// Forks `members` members on `board`, member `i` pinned to `cpu(i)`
/// (unpinned for `None`) and running `work(i)`, which must call
/// [`Board::ready_wait_go`] once set up. Returns when all are done, with the
/// time of the go ([`monotonic_ns`]).
///
/// The caller must be single-threaded (it forks).
pub fn run(
    board: &Board,
    cpu: impl Fn(usize) -> Option<usize>,
    work: impl Fn(usize) -> Result<()>,
) -> Result<u64> {
    let mut children = Vec::with_capacity(board.members);
    for i in 0..board.members {
        children.push(fork_child(|| -> Result<()> {
            if let Some(cpu) = cpu(i) {
                pin_to_core(cpu)?;
            }
            work(i)?;
            board.done()
        })?);
    }
    let n = board.members as u32;
    sleep_until_count(
        board.word(READY)?,
        n,
        &children,
        DEADLINE,
        "the team to get ready",
    )?;
    let start = monotonic_ns();
    let go = board.word(GO)?;
    // Release: pairs with the members' Acquire load of go.
    go.store(1, Ordering::Release);
    futex::wake(go, u32::MAX)?;
    // A run may last long; each member's own waits are bounded.
    let limit = 6 * DEADLINE;
    sleep_until_count(board.word(DONE)?, n, &children, limit, "the team to finish")?;
    for child in children {
        finish(child)?;
    }
    Ok(start)
}

/// Sleeps until `word` reaches `n`; gives up after `limit`, or when a
/// member exits first.
fn sleep_until_count(
    word: &AtomicU32,
    n: u32,
    members: &[ForkedChild],
    limit: Duration,
    what: &'static str,
) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        // Acquire: pairs with the members' Release increments.
        let seen = word.load(Ordering::Acquire);
        if seen >= n {
            return Ok(());
        }
        futex::wait(word, seen, TICK)?;
        if word.load(Ordering::Acquire) != seen {
            continue;
        }
        for member in members {
            // A member that exited 0 said it was done first; any other end
            // is a failure.
            let status = ended(member.pid())?;
            if let Some(status) = status.filter(|s| !matches!(s, WaitStatus::Exited(_, 0))) {
                return Err(Error::Child {
                    pid: member.pid().as_raw(),
                    status: format!("{} while we waited for {what}", describe(&status)),
                });
            }
        }
        if Instant::now() > deadline {
            return Err(Error::Wait(WaitError::Timeout {
                waiting_for: what,
                limit,
            }));
        }
    }
}

/// The member numbering of a fan-in: consumers `0..consumers`, then the
/// producers. Member `member`'s role and its index among its role.
pub fn role_of(member: usize, consumers: usize) -> (Role, usize) {
    if member < consumers {
        (Role::Consumer, member)
    } else {
        (Role::Producer, member - consumers)
    }
}

/// The CPU of member `member` of a fan-in with `consumers` consumers.
pub fn fan_in_cpu(consumers: usize) -> impl Fn(usize) -> Option<usize> {
    move |member| {
        let (role, index) = role_of(member, consumers);
        cpu_of(role, index)
    }
}

/// In a consumer of a fan-in, once it has received everything: leaves its
/// tally, the time, and its wait-path system calls on the board.
pub fn report_consumer(board: &Board, member: usize, tally: &Tally, syscalls: u64) -> Result<()> {
    let finished = monotonic_ns();
    board.put(member, TALLY, &tally.to_words())?;
    board.put(member, FINISHED, &[finished, syscalls])
}

/// The result of a fan-in run of `cfg` that started at `start`: checks that
/// the consumers' tallies hold every message exactly once, and times the
/// run to the last consumer's finish. `syscalls`: whether the members
/// counted their wait-path system calls.
pub fn fan_in_throughput(
    board: &Board,
    cfg: &crate::workload::Stream,
    start: u64,
    syscalls: bool,
) -> Result<crate::stats::Throughput> {
    let mut total = Tally::default();
    let mut finished = start;
    let mut calls = 0;
    for member in 0..board.members {
        if member < cfg.consumers {
            total.add(&Tally::from_words(&board.get(member, TALLY)?));
            finished = finished.max(board.get::<1>(member, FINISHED)?[0]);
        }
        calls += board.get::<1>(member, SYSCALLS)?[0];
    }
    crate::message::check_fan_in(&total, cfg.producers, cfg.per_producer())?;
    let messages = cfg.per_producer() * cfg.producers as u64;
    Ok(crate::stats::Throughput {
        messages,
        bytes: messages * cfg.size as u64,
        elapsed: Duration::from_nanos(finished - start),
        wait_syscalls: syscalls.then_some(calls),
    })
}
