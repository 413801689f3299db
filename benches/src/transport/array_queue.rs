//! The in-process baseline of the MPMC queue: crossbeam's `ArrayQueue`
//! shared by threads, as many producers and consumers as the queue's
//! processes, pinned the same way ([`crate::team::cpu_of`]), with the same
//! copies: a producer stamps its `N`-byte array and `push`es it (a copy
//! into the slot), a consumer `pop`s it (a copy out) and checks it. Waits
//! are the same backoff ([`yielding`]). Consumers stop once every producer
//! has finished and the queue is empty.
//!
//! The threads run in one forked child (a team of one), so the benchmark's
//! own process stays single-threaded and may go on forking.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;
use std::thread;

use crossbeam_queue::ArrayQueue;

use crate::message::{prepare_from, FanIn, Tally, MAX_PRODUCERS};
use crate::process::pin_to_core;
use crate::stats::{monotonic_ns, Throughput};
use crate::team::{self, cpu_of, Board, Role};
use crate::wait::yielding;
use crate::workload::Stream;
use crate::{Error, Result};

/// One-way throughput from `cfg.producers` producer threads to
/// `cfg.consumers` consumer threads over one `ArrayQueue` of
/// `cfg.queue.slots` messages. Message sizes 8 B and 1 KiB.
pub fn throughput(cfg: &Stream) -> Result<Throughput> {
    match cfg.size {
        8 => run::<8>(cfg),
        1024 => run::<1024>(cfg),
        _ => Err(Error::Unsupported(
            "ArrayQueue messages other than 8 B or 1 KiB",
        )),
    }
}

fn run<const N: usize>(cfg: &Stream) -> Result<Throughput> {
    if cfg.producers > MAX_PRODUCERS {
        return Err(Error::Unsupported("fan-ins of more than 4 producers"));
    }
    let board = Board::new(1)?;
    let start = team::run(
        &board,
        |_| None,
        |member| {
            let queue = ArrayQueue::<[u8; N]>::new(cfg.queue.slots as usize);
            let finished = AtomicUsize::new(0);
            let start_line = Barrier::new(cfg.producers + cfg.consumers + 1);
            let (queue, finished, start_line) = (&queue, &finished, &start_line);
            let tallies = thread::scope(|s| -> Result<Vec<(Tally, u64)>> {
                let consumers: Vec<_> = (0..cfg.consumers)
                    .map(|c| {
                        s.spawn(move || -> Result<(Tally, u64)> {
                            let pinned = pin(Role::Consumer, c);
                            start_line.wait();
                            pinned?;
                            consume(queue, finished, cfg)
                        })
                    })
                    .collect();
                let producers: Vec<_> = (0..cfg.producers)
                    .map(|p| {
                        s.spawn(move || -> Result<()> {
                            let pinned = pin(Role::Producer, p);
                            start_line.wait();
                            pinned?;
                            let sent = produce(queue, p, cfg);
                            // Release: pairs with the consumers' Acquire load:
                            // every push happens before they see the count.
                            finished.fetch_add(1, Ordering::Release);
                            sent
                        })
                    })
                    .collect();
                let go = board.ready_wait_go();
                start_line.wait();
                go?;
                for producer in producers {
                    producer
                        .join()
                        .map_err(|_| Error::Unsupported("a producer panicked"))??;
                }
                consumers
                    .into_iter()
                    .map(|c| {
                        c.join()
                            .map_err(|_| Error::Unsupported("a consumer panicked"))?
                    })
                    .collect()
            })?;
            let mut total = Tally::default();
            let mut last = 0;
            for (tally, finished) in &tallies {
                total.add(tally);
                last = last.max(*finished);
            }
            board.put(member, team::TALLY, &total.to_words())?;
            board.put(member, team::FINISHED, &[last])
        },
    )?;
    // The team is one process; its tally stands for all the consumers.
    let one = Stream {
        consumers: 1,
        ..*cfg
    };
    team::fan_in_throughput(&board, &one, start, false)
}

fn pin(role: Role, index: usize) -> Result<()> {
    cpu_of(role, index).map_or(Ok(()), pin_to_core)
}

fn produce<const N: usize>(queue: &ArrayQueue<[u8; N]>, p: usize, cfg: &Stream) -> Result<()> {
    let mut msg = [0u8; N];
    for seq in 0..cfg.per_producer() {
        prepare_from(&mut msg, p, seq, cfg.verify);
        let mut wait = yielding("room in the ArrayQueue");
        while queue.push(msg).is_err() {
            wait.snooze()?;
        }
    }
    Ok(())
}

fn consume<const N: usize>(
    queue: &ArrayQueue<[u8; N]>,
    finished: &AtomicUsize,
    cfg: &Stream,
) -> Result<(Tally, u64)> {
    let mut fan = FanIn::new(cfg.producers, N, cfg.verify);
    let mut wait = yielding("a message from the ArrayQueue");
    loop {
        match queue.pop() {
            Some(msg) => {
                fan.take(&msg)?;
                wait.reset();
            }
            // Acquire: pairs with the producers' Release increment; then an
            // empty queue stays empty.
            None if finished.load(Ordering::Acquire) == cfg.producers => match queue.pop() {
                Some(msg) => fan.take(&msg)?,
                None => break,
            },
            None => wait.snooze()?,
        }
    }
    Ok((fan.tally, monotonic_ns()))
}
