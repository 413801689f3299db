//! A Unix datagram socket shared by the same senders: one `SOCK_DGRAM`
//! socket pair; every producer process sends on one end, every consumer
//! process receives from the other, a message per datagram, with blocking
//! calls. The team and the checks are those of the MPMC queue
//! ([`super::mpmc`]). When the last producer finishes it sends one empty
//! datagram per consumer: the queue is first in, first out, so each
//! consumer stops at one, after every message.

use std::os::unix::net::UnixDatagram;
use std::sync::atomic::Ordering;

use crate::message::{prepare_from, FanIn, MAX_PRODUCERS};
use crate::stats::Throughput;
use crate::team::{self, role_of, Board, Role};
use crate::workload::Stream;
use crate::{Error, Result, DEADLINE};

/// One-way throughput from `cfg.producers` producer processes to
/// `cfg.consumers` consumer processes over one datagram socket pair.
pub fn throughput(cfg: &Stream) -> Result<Throughput> {
    if cfg.producers > MAX_PRODUCERS || cfg.size < 8 {
        return Err(Error::Unsupported(
            "fan-ins of more than 4 producers or messages under 8 bytes",
        ));
    }
    let (tx, rx) = UnixDatagram::pair().map_err(|e| Error::io("socketpair", e))?;
    for s in [&tx, &rx] {
        s.set_read_timeout(Some(DEADLINE))
            .map_err(|e| Error::io("setsockopt", e))?;
        s.set_write_timeout(Some(DEADLINE))
            .map_err(|e| Error::io("setsockopt", e))?;
    }
    let board = Board::new(cfg.producers + cfg.consumers)?;
    let (size, per_producer, verify) = (cfg.size, cfg.per_producer(), cfg.verify);
    let start = team::run(&board, team::fan_in_cpu(cfg.consumers), |member| {
        // One byte more than a message: a longer datagram shows as such.
        let mut buf = vec![0u8; size + 1];
        match role_of(member, cfg.consumers) {
            (Role::Consumer, _) => {
                let mut fan = FanIn::new(cfg.producers, size, verify);
                board.ready_wait_go()?;
                loop {
                    match rx.recv(&mut buf).map_err(|e| Error::io("recv", e))? {
                        0 => break,
                        len => fan.take(&buf[..len])?,
                    }
                }
                team::report_consumer(&board, member, &fan.tally, 0)
            }
            (Role::Producer, p) => {
                let msg = &mut buf[..size];
                board.ready_wait_go()?;
                for seq in 0..per_producer {
                    prepare_from(msg, p, seq, verify);
                    tx.send(msg).map_err(|e| Error::io("send", e))?;
                }
                // AcqRel: the last producer to finish sends the end marks
                // after every producer's messages.
                let finished = board.scratch()?.fetch_add(1, Ordering::AcqRel) + 1;
                if finished == cfg.producers as u64 {
                    for _ in 0..cfg.consumers {
                        tx.send(&[]).map_err(|e| Error::io("send", e))?;
                    }
                }
                Ok(())
            }
        }
    })?;
    team::fan_in_throughput(&board, cfg, start, false)
}
