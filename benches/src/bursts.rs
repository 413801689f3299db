//! One-way streams of several transports measured together, in short
//! bursts: the same two processes run a burst of each transport in turn,
//! round after round (the order reversed every other round), each burst
//! timed on its own. Two transports' bursts of one round are milliseconds
//! apart, so they see the same state of the host, whose memory bandwidth
//! and cross-core latency change severalfold for seconds at a time here;
//! the ratio of their rates in each round compares them fairly, where two
//! long runs one after the other did not (0.14–1.09× between repetitions
//! for the 64 KiB ring over the raw copy stream).
//!
//! Each transport is a [`Flow`], set up before the fork; after it the child
//! turns every flow into its [`Produce`] and the parent into its
//! [`Consume`]. Each burst starts with the ring empty: the parent reads the
//! clock and raises a go word the child spins on, then receives the burst's
//! `n` messages; the burst's time runs to the last one received.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use ipc_core::wait::syscalls;
use ipc_tests::fork::ForkedChild;
use ipc_tests::wait::WaitError;

use crate::error::Error;
use crate::process::{finish, fork_child, pin_child};
use crate::stats::Throughput;
use crate::wait::Gate;
use crate::workload::raw_region;
use crate::{Result, DEADLINE};

/// One transport of a paired stream, both sides of it, before the fork.
pub trait Flow {
    /// The child's side: sends messages.
    fn into_producer(self: Box<Self>) -> Result<Box<dyn Produce>>;
    /// The parent's side: receives and checks them.
    fn into_consumer(self: Box<Self>) -> Result<Box<dyn Consume>>;
}

/// The child's side of a flow.
pub trait Produce {
    /// Sends messages `first..first + n`.
    fn produce(&mut self, first: u64, n: u64) -> Result<()>;
}

/// The parent's side of a flow.
pub trait Consume {
    /// Receives messages `first..first + n`, checking each, giving up when
    /// `peer` exits or after [`DEADLINE`]; the payload bytes received.
    fn consume(&mut self, first: u64, n: u64, peer: &ForkedChild) -> Result<u64>;
}

/// What [`bursts`] measured for one flow.
#[derive(Clone, Debug)]
pub struct FlowBursts {
    /// Each burst, in the order run; the `i`-th bursts of two flows come
    /// from the same round. Their `wait_syscalls` are `None`.
    pub bursts: Vec<Throughput>,
    /// Wait-path system calls of both processes over all the bursts.
    pub wait_syscalls: u64,
}

impl FlowBursts {
    /// All the bursts as one run: messages, bytes and times added.
    pub fn total(&self) -> Throughput {
        Throughput {
            messages: self.bursts.iter().map(|b| b.messages).sum(),
            bytes: self.bursts.iter().map(|b| b.bytes).sum(),
            elapsed: self.bursts.iter().map(|b| b.elapsed).sum(),
            wait_syscalls: Some(self.wait_syscalls),
        }
    }
}

/// Offset of the child's per-flow system call counts in the control region
/// (the go word is at 0, on a line of its own).
const COUNTS: u64 = 128;

/// `rounds` rounds of one burst of `burst` messages over each of `flows`,
/// in the order given in even rounds and reversed in odd ones. For each
/// flow, in the order given, its bursts.
pub fn bursts(flows: Vec<Box<dyn Flow>>, burst: u64, rounds: usize) -> Result<Vec<FlowBursts>> {
    let n = flows.len();
    let control = raw_region(COUNTS + 8 * n as u64)?;
    let gate = Gate::new()?;
    let order = |round: usize| -> Vec<usize> {
        if round % 2 == 0 {
            (0..n).collect()
        } else {
            (0..n).rev().collect()
        }
    };
    let mut flows = Some(flows);
    let child = fork_child(|| -> Result<()> {
        pin_child()?;
        let mut producers = flows
            .take()
            .into_iter()
            .flatten()
            .map(|f| f.into_producer())
            .collect::<Result<Vec<_>>>()?;
        let go = control.atomic_u64(0)?;
        let mut counts = vec![0u64; n];
        let mut step = 0;
        gate.child_wait_go()?;
        for round in 0..rounds {
            for i in order(round) {
                step += 1;
                spin_until(go, step)?;
                let before = syscalls();
                producers[i].produce(round as u64 * burst, burst)?;
                counts[i] += syscalls() - before;
            }
        }
        for (i, count) in counts.iter().enumerate() {
            // Release: pairs with the parent's Acquire load after our exit.
            control
                .atomic_u64(COUNTS + 8 * i as u64)?
                .store(*count, Ordering::Release);
        }
        Ok(())
    })?;
    let mut consumers = flows
        .take()
        .into_iter()
        .flatten()
        .map(|f| f.into_consumer())
        .collect::<Result<Vec<_>>>()?;
    let go = control.atomic_u64(0)?;
    let mut out: Vec<FlowBursts> = (0..n)
        .map(|_| FlowBursts {
            bursts: Vec::with_capacity(rounds),
            wait_syscalls: 0,
        })
        .collect();
    let mut step = 0;
    gate.start(&child)?;
    for round in 0..rounds {
        for i in order(round) {
            step += 1;
            let before = syscalls();
            let start = Instant::now();
            // Release: pairs with the child's Acquire load in `spin_until`;
            // the previous burst is wholly received, the ring empty.
            go.store(step, Ordering::Release);
            let bytes = consumers[i].consume(round as u64 * burst, burst, &child)?;
            let elapsed = start.elapsed();
            out[i].wait_syscalls += syscalls() - before;
            out[i].bursts.push(Throughput {
                messages: burst,
                bytes,
                elapsed,
                wait_syscalls: None,
            });
        }
    }
    drop(consumers);
    finish(child)?;
    for (i, flow) in out.iter_mut().enumerate() {
        // Acquire: pairs with the child's Release store, before it exited.
        flow.wait_syscalls += control
            .atomic_u64(COUNTS + 8 * i as u64)?
            .load(Ordering::Acquire);
    }
    Ok(out)
}

/// Spins until `word` reaches `value`: no yield or nap, so that the child
/// starts the moment the parent's clock does (the two run on CPUs of their
/// own); gives up after [`DEADLINE`] (the parent's death kills the child).
fn spin_until(word: &AtomicU64, value: u64) -> Result<()> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        for _ in 0..1024 {
            // Acquire: pairs with the parent's Release store of the go.
            if word.load(Ordering::Acquire) >= value {
                return Ok(());
            }
            std::hint::spin_loop();
        }
        if Instant::now() >= deadline {
            return Err(Error::Wait(WaitError::Timeout {
                waiting_for: "the parent's go for a burst",
                limit: DEADLINE,
            }));
        }
    }
}
