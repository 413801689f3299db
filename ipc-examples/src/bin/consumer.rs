//! Demo consumer: creates a named SPSC ring, receives a self-checking stream
//! of messages from the `producer` demo and verifies every byte of it.
//!
//! ```text
//! consumer <name> <count> <size> [--capacity BYTES] [--timeout SECS] [--seed N]
//! ```
//!
//! `<size>` is `N` (every message `N` bytes) or `random:N` (0..=N bytes); the
//! producer must be given the same size and seed. The consumer owns the shm
//! name: it creates it exclusively and removes it when it exits, whether it
//! succeeds, fails, times out or is stopped with SIGINT/SIGTERM/SIGHUP. A name
//! left by a consumer that was killed outright (its creator is dead) is
//! removed and created afresh; one held by a live consumer is refused. It gives up
//! when no message arrives for `--timeout` seconds (default 10), so a dead
//! producer never leaves it hanging.
//!
//! Exit status: 0 when all `count` messages arrived intact and in order, 1 on
//! any failure, 2 on bad arguments.

use std::error::Error;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipc_core::wait::Backoff;
use ipc_core::{spsc, RegionOptions};
use ipc_examples::cli::{self, parse_num, Size};
use ipc_tests::payload::PayloadError;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

const USAGE: &str = "\
usage: consumer <name> <count> <size> [--capacity BYTES] [--timeout SECS] [--seed N]
  <name>            shm name, e.g. /demo (a leading '/' is added if missing)
  <count>           messages to receive
  <size>            N = messages of N bytes; random:N = random sizes 0..=N
  --capacity BYTES  ring buffer size, a power of two (default: 1 MiB, or more for large messages)
  --timeout SECS    give up when no message arrives for this long (default 10)
  --seed N          payload seed; must match the producer's (default 24301)";

/// Default ring capacity, raised when a message needs more.
const DEFAULT_CAPACITY: u64 = 1 << 20;
/// Messages handed over per `drain` call, so space goes back to the producer
/// regularly even while it keeps the ring busy.
const DRAIN_BATCH: usize = 256;

/// Set by SIGINT/SIGTERM; the receive loop returns (and so removes the shm
/// name) when it sees it.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: std::ffi::c_int) {
    // Relaxed: a flag polled by the loop; it orders nothing else.
    STOP.store(true, Ordering::Relaxed);
}

#[derive(Debug)]
struct Config {
    name: String,
    count: u64,
    size: Size,
    capacity: u64,
    timeout: Duration,
    seed: u64,
}

/// Parses the arguments after the program name; `Ok(None)` for `--help`.
fn parse_args(args: &[String]) -> Result<Option<Config>, String> {
    let mut capacity = None;
    let capacity_flag = |flag: &str, value: &str| {
        if flag != "--capacity" {
            return Ok(false);
        }
        capacity = Some(parse_num::<u64>(value, flag)?);
        Ok(true)
    };
    let Some(args) = cli::parse(args, capacity_flag)? else {
        return Ok(None);
    };
    let [name, count, size] = args.positional;
    let size = Size::parse(size)?;
    let max = size.max_len() as u64;
    let capacity = capacity.unwrap_or_else(|| {
        // Room for at least eight of the largest records (clamped so absurd
        // sizes reach the geometry check below instead of overflowing).
        let record = spsc::record_size(max.min(spsc::MAX_CAPACITY));
        DEFAULT_CAPACITY.max((8 * record).next_power_of_two())
    });
    spsc::check_geometry(capacity, max).map_err(|reason| {
        format!(
            "--capacity {capacity} with messages of up to {max} bytes: {reason} \
             (the largest message this capacity takes is {})",
            spsc::max_message_for(capacity.max(spsc::MIN_CAPACITY))
        )
    })?;
    Ok(Some(Config {
        name: cli::shm_name(name)?,
        count: parse_num(count, "<count>")?,
        size,
        capacity,
        timeout: args.timeout,
        seed: args.seed,
    }))
}

/// What arrived, and how fast.
#[derive(Debug, Default)]
struct Tally {
    count: u64,
    bytes: u64,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Tally {
    fn print(&self) {
        let elapsed = match (self.first, self.last) {
            (Some(first), Some(last)) => last - first,
            _ => Duration::ZERO,
        };
        let secs = elapsed.as_secs_f64();
        let rates = cli::rates(self.count, self.bytes, secs);
        println!(
            "received {} messages, {} bytes in {:.3} s: {rates}",
            self.count, self.bytes, secs
        );
    }
}

fn install_signal_handlers() -> Result<(), Box<dyn Error>> {
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: `on_signal` only stores to an atomic, which is
        // async-signal-safe, and no other handler for these signals is in use.
        unsafe { sigaction(signal, &action) }?;
    }
    Ok(())
}

/// Creates the ring, receives and verifies the stream. The region lives in
/// here only, so every return, error or not, drops it and removes the name.
fn run(config: &Config) -> Result<(), Box<dyn Error>> {
    install_signal_handlers()?;
    let gen = config.size.gen(config.seed);
    let options = RegionOptions::new().layout(spsc::layout(config.capacity, gen.max_len() as u64)?);
    let region = match options.create_shm(&config.name) {
        // A consumer killed before it could remove its name leaves it
        // behind; take the name over only if its creator is gone.
        Err(e @ ipc_core::Error::AlreadyExists { .. }) => {
            // Stale means nobody has it attached any more (a consumer that
            // died mid-creation counts), whatever pids were reused.
            match ipc_core::remove_stale_shm(&config.name) {
                Ok(true) => {
                    eprintln!(
                        "consumer: removed stale {} left by a dead consumer",
                        config.name
                    );
                    options.create_shm(&config.name)?
                }
                _ => return Err(e.into()),
            }
        }
        other => other?,
    };
    let mut consumer = spsc::Consumer::attach(Arc::new(region))?;
    eprintln!(
        "consumer: waiting on {} (capacity {} bytes, messages up to {} bytes)",
        config.name,
        consumer.capacity(),
        consumer.max_message()
    );

    let mut tally = Tally::default();
    let mut bad: Option<(u64, PayloadError)> = None;
    let mut backoff = Backoff::new();
    let mut last_progress = Instant::now();
    let outcome = loop {
        if tally.count == config.count {
            break Ok(());
        }
        if STOP.load(Ordering::Relaxed) {
            break Err(format!(
                "interrupted by a signal after {} of {} messages",
                tally.count, config.count
            )
            .into());
        }
        let max = usize::try_from(config.count - tally.count)
            .unwrap_or(usize::MAX)
            .min(DRAIN_BATCH);
        let mut seq = tally.count;
        let mut bytes = 0;
        let drained = consumer.drain(max, |msg| {
            if bad.is_none() {
                if let Err(e) = gen.verify(seq, msg) {
                    bad = Some((seq, e));
                }
            }
            seq += 1;
            bytes += msg.len() as u64;
        });
        match drained {
            Ok(0) => {
                if backoff.snooze() && last_progress.elapsed() >= config.timeout {
                    break Err(format!(
                        "no message for {:.1} s after {} of {} messages; is the producer running?",
                        config.timeout.as_secs_f64(),
                        tally.count,
                        config.count
                    )
                    .into());
                }
            }
            Ok(n) => {
                let now = Instant::now();
                tally.first.get_or_insert(now);
                tally.last = Some(now);
                tally.count += n as u64;
                tally.bytes += bytes;
                last_progress = now;
                backoff.reset();
                if let Some((seq, e)) = bad {
                    break Err(format!("message {seq} of {}: {e}", config.count).into());
                }
            }
            Err(e) => break Err(e.into()),
        }
    };
    tally.print();
    if outcome.is_ok() {
        println!("verified OK");
    }
    outcome
}

fn main() -> ExitCode {
    cli::main(USAGE, parse_args, run)
}
