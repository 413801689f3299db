//! Demo consumer: creates a named SPSC ring (or, with `--mpmc`, an MPMC
//! queue), receives a self-checking stream of messages from the `producer`
//! demo and verifies every byte of it.
//!
//! ```text
//! consumer <name> <count> <size> [--mpmc] [--capacity N] [--timeout SECS] [--seed N]
//! ```
//!
//! `<size>` is `N` (every message `N` bytes) or `random:N` (0..=N bytes); the
//! producers must be given the same size and seed. The consumer owns the shm
//! name: it creates it exclusively and removes it when it exits, whether it
//! succeeds, fails, times out or is stopped with SIGINT/SIGTERM/SIGHUP. A name
//! left by a consumer that was killed outright (its creator is dead) is
//! removed and created afresh; one held by a live consumer is refused, unless
//! both are `--mpmc` consumers: the second joins the first one's queue (the
//! name goes when its creator exits).
//!
//! It waits with the library's blocking calls, so it sleeps while there is
//! nothing to read. It reports at once, with one line and exit status 1, when
//! every producer is gone before `<count>` messages came (a producer killed
//! with SIGKILL is noticed in tens of milliseconds); it gives up when no
//! message arrives for `--timeout` seconds (default 10) while a producer is
//! attached but silent, or before any attached.
//!
//! With `--mpmc`, any number of producers and consumers share the queue, and
//! each message goes to one consumer: this consumer takes `<count>` of them,
//! from whichever producers, and verifies each producer's messages byte for
//! byte and in order (their header names the producer and the message).
//!
//! Exit status: 0 when all `count` messages arrived intact and in order, 1 on
//! any failure, 2 on bad arguments.

use std::collections::HashMap;
use std::error::Error;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipc_core::spsc::RecvError;
use ipc_core::{mpmc, spsc, Region, RegionOptions};
use ipc_examples::cli::{self, parse_num, Size, Tagged};
use ipc_tests::payload::PayloadError;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

const USAGE: &str = "\
usage: consumer <name> <count> <size> [--mpmc] [--capacity N] [--timeout SECS] [--seed N]
  <name>          shm name, e.g. /demo (a leading '/' is added if missing)
  <count>         messages to receive
  <size>          N = messages of N bytes; random:N = random sizes 0..=N
  --mpmc          an MPMC queue: several producers and consumers on one name, each
                  consumer taking <count> messages (each carries a 16-byte header too)
  --capacity N    ring buffer bytes, a power of two (default: 1 MiB, or more for large
                  messages); with --mpmc, queue slots (default: as many as fit 1 MiB)
  --timeout SECS  give up when no message arrives for this long (default 10)
  --seed N        payload seed; must match the producer's (default 24301)";

/// Default ring capacity, raised when a message needs more.
const DEFAULT_CAPACITY: u64 = 1 << 20;
/// Messages handed over per `drain` call, so space goes back to the producer
/// regularly even while it keeps the ring busy.
const DRAIN_BATCH: usize = 256;
/// Longest a blocking receive lasts before the consumer looks at the signal
/// flag: the library's calls do not return on a signal.
const SLICE: Duration = Duration::from_millis(100);

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
    mpmc: bool,
    /// Bytes of the ring, or slots of the queue.
    capacity: u64,
    timeout: Duration,
    seed: u64,
}

impl Config {
    /// The largest message on the ring or queue.
    fn max_message(&self) -> u64 {
        self.size.max_len() as u64 + if self.mpmc { Tagged::HEADER as u64 } else { 0 }
    }
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
    let mut config = Config {
        name: cli::shm_name(name)?,
        count: parse_num(count, "<count>")?,
        size,
        mpmc: args.mpmc,
        capacity: 0,
        timeout: args.timeout,
        seed: args.seed,
    };
    let max = config.max_message();
    config.capacity = if config.mpmc {
        let slots = capacity.unwrap_or_else(|| {
            let fit = DEFAULT_CAPACITY / mpmc::slot_stride(max.min(mpmc::MAX_MESSAGE));
            (1u64 << fit.max(1).ilog2()).clamp(16, 1 << 16)
        });
        mpmc::check_geometry(slots, max).map_err(|reason| {
            format!(
                "--capacity {slots} with messages of up to {max} bytes (header included): {reason}"
            )
        })?;
        slots
    } else {
        let capacity = capacity.unwrap_or_else(|| {
            // Room for at least eight of the largest records (clamped so
            // absurd sizes reach the geometry check below instead of
            // overflowing).
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
        capacity
    };
    Ok(Some(config))
}

/// What arrived, and how fast.
#[derive(Debug, Default)]
struct Tally {
    count: u64,
    bytes: u64,
    first: Option<Instant>,
    /// When the last message arrived, as of the last look at the clock.
    last: Option<Instant>,
    /// Producers seen (MPMC).
    producers: Option<usize>,
}

impl Tally {
    /// Counts `n` messages of `bytes` in all; reads the clock only for the
    /// first.
    fn add(&mut self, n: u64, bytes: u64) {
        if self.first.is_none() {
            self.first = Some(Instant::now());
        }
        self.count += n;
        self.bytes += bytes;
    }

    fn print(&self) {
        let elapsed = match (self.first, self.last) {
            (Some(first), Some(last)) => last.saturating_duration_since(first),
            _ => Duration::ZERO,
        };
        let secs = elapsed.as_secs_f64();
        let rates = cli::rates(self.count, self.bytes, secs);
        let from = match self.producers {
            Some(n) => format!(" from {n} producer(s)"),
            None => String::new(),
        };
        println!(
            "received {} messages{from}, {} bytes in {:.3} s: {rates}",
            self.count, self.bytes, secs
        );
    }
}

/// Waiting when there is nothing to read: when to give up, and a slice at a
/// time so that a signal is seen.
#[derive(Debug)]
struct Idle {
    timeout: Duration,
    /// Since when nothing has arrived (`None` while messages flow).
    since: Option<Instant>,
}

impl Idle {
    /// Messages flowing; give up after `timeout` of silence.
    fn new(timeout: Duration) -> Idle {
        Idle {
            timeout,
            since: None,
        }
    }

    /// The deadline of the next blocking receive, or why to stop waiting.
    fn deadline(&mut self, tally: &mut Tally, count: u64) -> Result<Instant, Box<dyn Error>> {
        let now = Instant::now();
        let since = *self.since.get_or_insert_with(|| {
            // The first look at the clock since the last message.
            tally.last = Some(now);
            now
        });
        if STOP.load(Ordering::Relaxed) {
            return Err(interrupted(tally, count));
        }
        if now.duration_since(since) >= self.timeout {
            return Err(format!(
                "no message for {:.1} s after {} of {count} messages; is the producer running?",
                self.timeout.as_secs_f64(),
                tally.count,
            )
            .into());
        }
        Ok((now + SLICE).min(since + self.timeout))
    }

    /// A message arrived.
    fn progress(&mut self) {
        self.since = None;
    }
}

fn interrupted(tally: &Tally, count: u64) -> Box<dyn Error> {
    format!(
        "interrupted by a signal after {} of {count} messages",
        tally.count
    )
    .into()
}

/// A receive that failed: the ring's reason, and how far the stream got.
/// `Disconnected` is the one line a dead or departed producer gets.
fn failed(e: RecvError, tally: &Tally, count: u64) -> Box<dyn Error> {
    format!("{e}; {} of {count} messages received", tally.count).into()
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

/// Creates the region under the name, taking over one left by a dead
/// consumer; an MPMC consumer joins a live one's queue.
fn create(config: &Config) -> Result<Region, Box<dyn Error>> {
    let layout = if config.mpmc {
        mpmc::layout(config.capacity, config.max_message())?
    } else {
        spsc::layout(config.capacity, config.max_message())?
    };
    let options = RegionOptions::new().layout(layout);
    match options.create_shm(&config.name) {
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
                    Ok(options.create_shm(&config.name)?)
                }
                _ if config.mpmc => {
                    eprintln!(
                        "consumer: joining the queue {} another consumer made",
                        config.name
                    );
                    Ok(RegionOptions::new().open_shm(&config.name)?)
                }
                _ => Err(e.into()),
            }
        }
        other => Ok(other?),
    }
}

/// Creates the ring or queue, receives and verifies the stream. The region
/// lives in here only, so every return, error or not, drops it and removes
/// the name.
fn run(config: &Config) -> Result<(), Box<dyn Error>> {
    install_signal_handlers()?;
    let region = Arc::new(create(config)?);
    let mut tally = Tally::default();
    let outcome = if config.mpmc {
        tally.producers = Some(0);
        receive_mpmc(region, config, &mut tally)
    } else {
        receive_spsc(region, config, &mut tally)
    };
    if outcome.is_ok() {
        tally.last = Some(Instant::now());
    }
    tally.print();
    if outcome.is_ok() {
        println!("verified OK");
    }
    outcome
}

/// Receives the stream of one producer: whatever is in the ring is drained
/// and verified in place; when it is empty, a blocking receive waits.
fn receive_spsc(
    region: Arc<Region>,
    config: &Config,
    tally: &mut Tally,
) -> Result<(), Box<dyn Error>> {
    let mut consumer = spsc::Consumer::attach(region)?;
    eprintln!(
        "consumer: waiting on {} (capacity {} bytes, messages up to {} bytes)",
        config.name,
        consumer.capacity(),
        consumer.max_message()
    );
    let gen = config.size.gen(config.seed);
    let count = config.count;
    let mut idle = Idle::new(config.timeout);
    let mut bad: Option<(u64, PayloadError)> = None;
    while tally.count < count {
        if STOP.load(Ordering::Relaxed) {
            return Err(interrupted(tally, count));
        }
        let max = usize::try_from(count - tally.count)
            .unwrap_or(usize::MAX)
            .min(DRAIN_BATCH);
        let (mut seq, mut bytes) = (tally.count, 0);
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
            Ok(0) => {}
            Ok(n) => {
                tally.add(n as u64, bytes);
                idle.progress();
                if let Some((seq, e)) = bad {
                    return Err(format!("message {seq} of {count}: {e}").into());
                }
                continue;
            }
            Err(RecvError::Empty) => {}
            Err(e) => return Err(failed(e, tally, count)),
        }
        // Nothing to read: sleep until a message, a deadline or the end.
        let deadline = idle.deadline(tally, count)?;
        match consumer.recv_deadline(deadline) {
            Ok(msg) => {
                let seq = tally.count;
                gen.verify(seq, &msg)
                    .map_err(|e| format!("message {seq} of {count}: {e}"))?;
                tally.add(1, msg.len() as u64);
                idle.progress();
            }
            Err(RecvError::Timeout) => {}
            Err(e) => return Err(failed(e, tally, count)),
        }
    }
    Ok(())
}

/// Receives `<count>` messages from the queue's producers, checking each
/// producer's messages in order.
fn receive_mpmc(
    region: Arc<Region>,
    config: &Config,
    tally: &mut Tally,
) -> Result<(), Box<dyn Error>> {
    let mut consumer = mpmc::Consumer::attach(region)?;
    if (consumer.max_message() as u64) < config.max_message() {
        return Err(format!(
            "{} carries messages of up to {} bytes; these need {} (header included): \
             give every producer and consumer the same <size>",
            config.name,
            consumer.max_message(),
            config.max_message()
        )
        .into());
    }
    eprintln!(
        "consumer: waiting on {} (MPMC, {} slots, messages up to {} bytes)",
        config.name,
        consumer.capacity(),
        consumer.max_message()
    );
    let count = config.count;
    let mut idle = Idle::new(config.timeout);
    let mut buf = vec![0u8; consumer.max_message()];
    // Per producer, the lowest sequence number it may send next.
    let mut next: HashMap<u64, u64> = HashMap::new();
    while tally.count < count {
        if STOP.load(Ordering::Relaxed) {
            return Err(interrupted(tally, count));
        }
        let len = match consumer.try_recv_into(&mut buf) {
            Ok(len) => len,
            Err(RecvError::Empty) => {
                let deadline = idle.deadline(tally, count)?;
                match consumer.recv_into_deadline(&mut buf, deadline) {
                    Ok(len) => len,
                    Err(RecvError::Timeout) => continue,
                    Err(e) => return Err(failed(e, tally, count)),
                }
            }
            Err(e) => return Err(failed(e, tally, count)),
        };
        let tag = Tagged::check(&buf[..len], config.size, config.seed)
            .map_err(|e| format!("message {} of {count}: {e}", tally.count))?;
        let expected = next.entry(tag.producer).or_insert(0);
        if tag.seq < *expected {
            return Err(format!(
                "message {} of producer {} came after its message {}: out of order or twice",
                tag.seq,
                tag.producer,
                *expected - 1
            )
            .into());
        }
        *expected = tag.seq + 1;
        tally.producers = Some(next.len());
        tally.add(1, len as u64);
        idle.progress();
    }
    Ok(())
}

fn main() -> ExitCode {
    cli::main(USAGE, parse_args, run)
}
