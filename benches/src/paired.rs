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
//!
//! Each timed round gives every leg a batch of round trips, timed in one of
//! two ways, alternating from round to round:
//!
//! - **one by one**: a clock read after every round trip ([`Laps`]), each
//!   lap recorded in the leg's [`Histogram`], so percentiles are of single
//!   round trips. A lap includes one clock read, whose cost is measured
//!   between the batches in the same way with nothing to time (the
//!   [`RoundTrips::clock`] histogram) and reported beside the rows. The
//!   first round trip of a batch (right after the other legs' batches) is
//!   left out when the batch has more than one;
//! - **as a whole**: two clock reads around the batch, divided by its size:
//!   a *batch mean* with the clock's cost spread over the batch.
//!
//! With batches of one round trip every round is timed one by one, and that
//! one round trip is also its batch's mean.

use std::time::Instant;

use ipc_tests::fork::ForkedChild;

use crate::process::{finish, fork_child, pin_child};
use crate::stats::{histogram, Histogram, Laps};
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
    /// echo and calling [`Laps::lap`] after it; waits give up at
    /// `deadline`, or when `peer` exits.
    fn ping(
        &mut self,
        first: u64,
        n: u64,
        deadline: Instant,
        peer: &ForkedChild,
        laps: &mut Laps,
    ) -> Result<()>;
}

/// Clock reads timed with nothing between them after each batch timed one
/// by one.
const CLOCK_LAPS: usize = 16;

/// What [`round_trips`] measured for one leg.
#[derive(Clone, Debug)]
pub struct LegTimes {
    /// Every single round trip timed one by one, in ns, one clock read's
    /// cost included.
    pub trips: Histogram,
    /// The mean round trip of each batch timed as a whole, in ns, in the
    /// order measured: the `i`-th means of two legs come from neighbouring
    /// batches. With batches of one, each single round trip.
    pub batch_means: Vec<f64>,
}

/// What [`round_trips`] measured.
#[derive(Clone, Debug)]
pub struct RoundTrips {
    /// For each leg, in the order given.
    pub legs: Vec<LegTimes>,
    /// Laps with nothing timed between them: the cost of the clock read
    /// that every single round trip's time includes.
    pub clock: Histogram,
}

/// Round trips over `legs`, batch by batch in turn: `cfg.warmup` untimed
/// rounds, then `cfg.samples` timed ones, timed one by one and as a whole
/// in turn (the module's documentation says how).
pub fn round_trips(legs: Vec<Box<dyn Leg>>, cfg: &RoundTrip) -> Result<RoundTrips> {
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
    let mut out = RoundTrips {
        legs: (0..pings.len())
            .map(|_| LegTimes {
                trips: histogram(),
                batch_means: Vec::with_capacity(cfg.samples),
            })
            .collect(),
        clock: histogram(),
    };
    let mut laps = Laps::default();
    // The first round trip of a batch follows the other legs' batches.
    let skip = usize::from(batch > 1);
    gate.start(&child)?;
    for round in 0..rounds {
        let timed = round >= cfg.warmup as u64;
        let one_by_one = timed && (batch == 1 || (round - cfg.warmup as u64) % 2 == 0);
        for (ping, leg) in pings.iter_mut().zip(&mut out.legs) {
            let start = Instant::now();
            laps.start(one_by_one, batch as usize);
            ping.ping(round * batch, batch, start + DEADLINE, &child, &mut laps)?;
            let mean = start.elapsed().as_nanos() as f64 / batch as f64;
            if one_by_one {
                laps.record(&mut leg.trips, skip);
                if batch == 1 {
                    leg.batch_means
                        .extend(laps.ns().iter().map(|&ns| ns as f64));
                }
                // Reuses the laps' buffer: after the batch's laps are read.
                laps.clock(CLOCK_LAPS, &mut out.clock);
            } else if timed {
                leg.batch_means.push(mean);
            }
        }
    }
    drop(pings);
    finish(child)?;
    Ok(out)
}
