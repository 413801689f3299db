//! Demo producer: opens the named SPSC ring (or, with `--mpmc`, the MPMC
//! queue) made by the `consumer` demo and sends it a self-checking stream of
//! messages.
//!
//! ```text
//! producer <name> <count> <size> [--mpmc] [--rate MSGS_PER_SEC] [--timeout SECS] [--seed N]
//! ```
//!
//! `<size>` is `N` (every message `N` bytes) or `random:N` (0..=N bytes); the
//! consumers must be given the same size and seed. The producer may start
//! first: it waits up to `--timeout` seconds (default 10) for the consumer to
//! create the name. It sends with the library's blocking calls, so it sleeps
//! while the ring is full, and gives up when it stays full for `--timeout`
//! seconds (a consumer that is alive but stopped draining). It reports at
//! once, with one line and exit status 1, when every consumer is gone (left,
//! or killed: a consumer killed with SIGKILL is noticed in tens of
//! milliseconds). `--rate 0`, the default, sends as fast as the ring allows;
//! any other rate paces the stream to about that many messages per second.
//!
//! With `--mpmc`, several producers may send to the same queue at once; each
//! message carries a header with this producer's pid and the message's
//! number, which the consumers verify it by.
//!
//! Exit status: 0 when all `count` messages were sent, 1 on any failure, 2 on
//! bad arguments.

use std::error::Error;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipc_core::spsc::SendError;
use ipc_core::wait::Backoff;
use ipc_core::{mpmc, spsc, Region, RegionOptions};
use ipc_examples::cli::{self, parse_num, Size, Tagged};

const USAGE: &str = "\
usage: producer <name> <count> <size> [--mpmc] [--rate MSGS_PER_SEC] [--timeout SECS] [--seed N]
  <name>               shm name the consumer created, e.g. /demo (a leading '/' is added if missing)
  <count>              messages to send
  <size>               N = messages of N bytes; random:N = random sizes 0..=N
  --mpmc               send to an MPMC queue, which other producers may share
  --rate MSGS_PER_SEC  pace the stream (default 0: as fast as possible)
  --timeout SECS       give up when the ring is missing or stays full this long (default 10)
  --seed N             payload seed; must match the consumer's (default 24301)";

#[derive(Debug)]
struct Config {
    name: String,
    count: u64,
    size: Size,
    mpmc: bool,
    /// Messages per second; `None` for as fast as possible.
    rate: Option<f64>,
    timeout: Duration,
    seed: u64,
}

/// Parses the arguments after the program name; `Ok(None)` for `--help`.
fn parse_args(args: &[String]) -> Result<Option<Config>, String> {
    let mut rate = None;
    let rate_flag = |flag: &str, value: &str| {
        if flag != "--rate" {
            return Ok(false);
        }
        let r: f64 = parse_num(value, flag)?;
        if !r.is_finite() || r < 0.0 {
            return Err(format!("{flag}: must be 0 (unpaced) or a positive number"));
        }
        rate = (r > 0.0).then_some(r);
        Ok(true)
    };
    let Some(args) = cli::parse(args, rate_flag)? else {
        return Ok(None);
    };
    let [name, count, size] = args.positional;
    Ok(Some(Config {
        name: cli::shm_name(name)?,
        count: parse_num(count, "<count>")?,
        size: Size::parse(size)?,
        mpmc: args.mpmc,
        rate,
        timeout: args.timeout,
        seed: args.seed,
    }))
}

/// Opens the region, retrying while the consumer has not created it yet.
fn open(config: &Config) -> Result<Arc<Region>, Box<dyn Error>> {
    let started = Instant::now();
    let mut backoff = Backoff::new();
    loop {
        match RegionOptions::new().open_shm(&config.name) {
            Ok(region) => return Ok(Arc::new(region)),
            Err(ipc_core::Error::NotFound { .. }) if started.elapsed() < config.timeout => {
                backoff.snooze();
            }
            Err(e @ ipc_core::Error::NotFound { .. }) => {
                return Err(format!(
                    "{e} after waiting {:.1} s; is the consumer running?",
                    started.elapsed().as_secs_f64()
                )
                .into())
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// A producer of either kind: sends with a deadline.
trait Sender {
    fn max_message(&self) -> usize;
    fn send_deadline(&mut self, msg: &[u8], deadline: Instant) -> Result<(), SendError>;
}

impl Sender for spsc::Producer {
    fn max_message(&self) -> usize {
        spsc::Producer::max_message(self)
    }
    fn send_deadline(&mut self, msg: &[u8], deadline: Instant) -> Result<(), SendError> {
        spsc::Producer::send_deadline(self, msg, deadline)
    }
}

impl Sender for mpmc::Producer {
    fn max_message(&self) -> usize {
        mpmc::Producer::max_message(self)
    }
    fn send_deadline(&mut self, msg: &[u8], deadline: Instant) -> Result<(), SendError> {
        mpmc::Producer::send_deadline(self, msg, deadline)
    }
}

/// Sleeps or yields until `due`.
fn wait_until(due: Instant) {
    loop {
        let now = Instant::now();
        if now >= due {
            return;
        }
        let left = due - now;
        if left > Duration::from_micros(200) {
            std::thread::sleep(left - Duration::from_micros(100));
        } else {
            std::thread::yield_now();
        }
    }
}

fn run(config: &Config) -> Result<(), Box<dyn Error>> {
    let region = open(config)?;
    if config.mpmc {
        send(config, mpmc::Producer::attach(region)?)
    } else {
        send(config, spsc::Producer::attach(region)?)
    }
}

/// Sends the stream: each message is made in a buffer and sent with a
/// blocking call that gives up after `--timeout` of a full ring.
fn send(config: &Config, mut producer: impl Sender) -> Result<(), Box<dyn Error>> {
    let me = u64::from(std::process::id());
    let (gen, header) = if config.mpmc {
        (Tagged::gen(config.size, config.seed, me), Tagged::HEADER)
    } else {
        (config.size.gen(config.seed), 0)
    };
    if header + gen.max_len() > producer.max_message() {
        return Err(format!(
            "messages of up to {} bytes do not fit {}: its maximum message is {} bytes \
             (give producer and consumer the same <size>)",
            header + gen.max_len(),
            config.name,
            producer.max_message() - header.min(producer.max_message())
        )
        .into());
    }

    let mut msg = vec![0u8; header + gen.max_len()];
    // A deadline already passed: the first try at each message gives up at
    // once when the ring is full, and only then is the clock read for a
    // real one. While there is room, no message reads the clock.
    let passed = Instant::now();
    let mut bytes = 0u64;
    let start = Instant::now();
    for seq in 0..config.count {
        if let Some(rate) = config.rate {
            let due = Duration::try_from_secs_f64(seq as f64 / rate)
                .ok()
                .and_then(|offset| start.checked_add(offset))
                .ok_or("--rate is too low to schedule the next message")?;
            wait_until(due);
        }
        let len = header + gen.len_of(seq);
        let msg = &mut msg[..len];
        if config.mpmc {
            Tagged { producer: me, seq }.fill(gen, msg);
        } else {
            gen.fill(seq, msg);
        }
        let sent = match producer.send_deadline(msg, passed) {
            Err(SendError::Timeout) => producer.send_deadline(msg, Instant::now() + config.timeout),
            other => other,
        };
        match sent {
            Ok(()) => bytes += len as u64,
            Err(SendError::Timeout) => {
                return Err(format!(
                    "ring full for {:.1} s after {seq} of {} messages; \
                     the consumer stopped draining",
                    config.timeout.as_secs_f64(),
                    config.count
                )
                .into())
            }
            // `Disconnected` says every consumer is gone: one line, at once.
            Err(e) => return Err(format!("{e}; {seq} of {} messages sent", config.count).into()),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let rates = cli::rates(config.count, bytes, secs);
    println!(
        "sent {} messages, {bytes} bytes in {secs:.3} s: {rates}",
        config.count
    );
    Ok(())
}

fn main() -> ExitCode {
    cli::main(USAGE, parse_args, run)
}
