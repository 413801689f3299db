//! The MPMC queue with several producer and consumer processes: a team
//! ([`crate::team`]) of `P` producers and `C` consumers, each process
//! pinned by its role, over one queue. Producers `try_send` and consumers
//! `try_recv_into` a buffer, waiting with the library's backoff when the
//! queue is full or empty ([`yielding`]), as the `ArrayQueue` threads they
//! are compared with do. Consumers stop when the queue says every producer
//! is gone (`Disconnected`).

use ipc_core::mpmc;
use ipc_core::wait::syscalls;

use crate::message::{prepare_from, FanIn, MAX_PRODUCERS};
use crate::stats::Throughput;
use crate::team::{self, role_of, Board, Role};
use crate::transport::ring::{RecvError, SendError};
use crate::wait::yielding;
use crate::workload::{prefault, Stream};
use crate::{Error, Result};

/// One-way throughput from `cfg.producers` producer processes to
/// `cfg.consumers` consumer processes over one MPMC queue.
pub fn throughput(cfg: &Stream) -> Result<Throughput> {
    if cfg.producers > MAX_PRODUCERS || cfg.size < 8 {
        return Err(Error::Unsupported(
            "fan-ins of more than 4 producers or messages under 8 bytes",
        ));
    }
    let region = cfg.queue.region()?;
    let board = Board::new(cfg.producers + cfg.consumers)?;
    let (size, per_producer, verify) = (cfg.size, cfg.per_producer(), cfg.verify);
    let start = team::run(&board, team::fan_in_cpu(cfg.consumers), |member| {
        let mut buf = vec![0u8; size];
        match role_of(member, cfg.consumers) {
            (Role::Consumer, _) => {
                let mut rx = mpmc::Consumer::attach(region.clone())?;
                prefault(&region)?;
                let mut fan = FanIn::new(cfg.producers, size, verify);
                board.ready_wait_go()?;
                let before = syscalls();
                let mut wait = yielding("a message");
                loop {
                    match rx.try_recv_into(&mut buf) {
                        Ok(len) => {
                            fan.take(&buf[..len])?;
                            wait.reset();
                        }
                        Err(RecvError::Empty) => wait.snooze()?,
                        Err(RecvError::Disconnected) => break,
                        Err(e) => return Err(e.into()),
                    }
                }
                team::report_consumer(&board, member, &fan.tally, syscalls() - before)
            }
            (Role::Producer, p) => {
                let mut tx = mpmc::Producer::attach(region.clone())?;
                prefault(&region)?;
                board.ready_wait_go()?;
                let before = syscalls();
                for seq in 0..per_producer {
                    prepare_from(&mut buf, p, seq, verify);
                    let mut wait = yielding("room in the queue");
                    loop {
                        match tx.try_send(&buf) {
                            Ok(()) => break,
                            Err(SendError::Full) => wait.snooze()?,
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
                board.put(member, team::SYSCALLS, &[syscalls() - before])?;
                // Leaving tells the consumers, once every producer has.
                drop(tx);
                Ok(())
            }
        }
    })?;
    team::fan_in_throughput(&board, cfg, start, true)
}
