//! Round trips of several transports measured together: the same two
//! processes alternate a timed batch of each, so every transport sees the
//! same state of the host. This VM's cross-core latency changes severalfold
//! for seconds at a time; only paired samples compare transports fairly. A
//! transport measured alone is a group of one.
//!
//! Each transport is a [`Leg`], set up before the fork (shared memory,
//! pipes, sockets). After it, the child turns every leg into its
//! [`Echo`] and the parent into its [`Ping`]; each drops the other side's
//! ends, so a dead peer shows as end-of-file or a disconnection.

use std::time::Instant;

use ipc_tests::fork::ForkedChild;

use crate::process::{finish, fork_child, pin_child};
use crate::wait::Gate;
use crate::workload::RoundTrip;
use crate::{Result, DEADLINE};

/// One transport of a paired measurement, both sides of it, before the fork.
pub trait Leg {
    /// The child's side: answers each message with the same message.
    fn into_echo(self: Box<Self>) -> Result<Box<dyn Echo>>;
    /// The parent's side: sends messages and checks their echoes.
    fn into_ping(self: Box<Self>) -> Result<Box<dyn Ping>>;
}

/// The child's side of a leg.
pub trait Echo {
    /// Answers the next `n` messages; waits that block give up at
    /// `deadline`.
    fn echo(&mut self, n: u64, deadline: Instant) -> Result<()>;
}

/// The parent's side of a leg.
pub trait Ping {
    /// Makes `n` round trips, messages `first..first + n`, checking each
    /// echo; waits give up at `deadline`, or when `peer` exits.
    fn ping(&mut self, first: u64, n: u64, deadline: Instant, peer: &ForkedChild) -> Result<()>;
}

/// Round trips over `legs`, batch by batch in turn: `cfg.warmup` untimed
/// rounds, then `cfg.samples` timed ones. For each leg, in the order given,
/// one per-round-trip time (ns) per batch; the `i`-th samples of two legs
/// come from neighbouring batches.
pub fn round_trips(legs: Vec<Box<dyn Leg>>, cfg: &RoundTrip) -> Result<Vec<Vec<f64>>> {
    let gate = Gate::new()?;
    let (rounds, batch) = ((cfg.warmup + cfg.samples) as u64, cfg.batch.max(1) as u64);
    let mut legs = Some(legs);
    let child = fork_child(|| -> Result<()> {
        pin_child()?;
        let mut echoes = legs
            .take()
            .into_iter()
            .flatten()
            .map(|leg| leg.into_echo())
            .collect::<Result<Vec<_>>>()?;
        gate.child_wait_go()?;
        for _ in 0..rounds {
            // One clock read per round, outside the parent's timed batches.
            let deadline = Instant::now() + DEADLINE;
            for echo in &mut echoes {
                echo.echo(batch, deadline)?;
            }
        }
        Ok(())
    })?;
    let mut pings = legs
        .take()
        .into_iter()
        .flatten()
        .map(|leg| leg.into_ping())
        .collect::<Result<Vec<_>>>()?;
    let mut samples: Vec<Vec<f64>> = (0..pings.len())
        .map(|_| Vec::with_capacity(cfg.samples))
        .collect();
    gate.start(&child)?;
    for round in 0..rounds {
        for (ping, out) in pings.iter_mut().zip(&mut samples) {
            let start = Instant::now();
            ping.ping(round * batch, batch, start + DEADLINE, &child)?;
            let ns = start.elapsed().as_nanos() as f64 / batch as f64;
            if round >= cfg.warmup as u64 {
                out.push(ns);
            }
        }
    }
    drop(pings);
    finish(child)?;
    Ok(samples)
}
