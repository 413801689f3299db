//! Demo producer: opens the named SPSC ring made by the `consumer` demo and
//! sends it a self-checking stream of messages, written in place.
//!
//! ```text
//! producer <name> <count> <size> [--rate MSGS_PER_SEC] [--timeout SECS] [--seed N]
//! ```
//!
//! `<size>` is `N` (every message `N` bytes) or `random:N` (0..=N bytes); the
//! consumer must be given the same size and seed. The producer may start
//! first: it waits up to `--timeout` seconds (default 10) for the consumer to
//! create the ring, and gives up when the ring stays full that long (the
//! consumer stopped draining). `--rate 0`, the default, sends as fast as the
//! ring allows; any other rate paces the stream to about that many messages
//! per second.
//!
//! Exit status: 0 when all `count` messages were sent, 1 on any failure, 2 on
//! bad arguments.

use std::error::Error;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipc_core::spsc::{self, SendError};
use ipc_core::wait::Backoff;
use ipc_core::RegionOptions;
use ipc_examples::cli::{self, parse_num, Size};

const USAGE: &str = "\
usage: producer <name> <count> <size> [--rate MSGS_PER_SEC] [--timeout SECS] [--seed N]
  <name>               shm name the consumer created, e.g. /demo (a leading '/' is added if missing)
  <count>              messages to send
  <size>               N = messages of N bytes; random:N = random sizes 0..=N
  --rate MSGS_PER_SEC  pace the stream (default 0: as fast as possible)
  --timeout SECS       give up when the ring is missing or stays full this long (default 10)
  --seed N             payload seed; must match the consumer's (default 24301)";

#[derive(Debug)]
struct Config {
    name: String,
    count: u64,
    size: Size,
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
        rate,
        timeout: args.timeout,
        seed: args.seed,
    }))
}

/// Opens the ring, retrying while the consumer has not created it yet.
fn open(config: &Config) -> Result<spsc::Producer, Box<dyn Error>> {
    let started = Instant::now();
    let mut backoff = Backoff::new();
    let region = loop {
        match RegionOptions::new().open_shm(&config.name) {
            Ok(region) => break region,
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
    };
    Ok(spsc::Producer::attach(Arc::new(region))?)
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
    let gen = config.size.gen(config.seed);
    let mut producer = open(config)?;
    if gen.max_len() > producer.max_message() {
        return Err(format!(
            "messages of up to {} bytes do not fit {}: its maximum message is {} bytes \
             (give producer and consumer the same <size>)",
            gen.max_len(),
            config.name,
            producer.max_message()
        )
        .into());
    }

    let mut backoff = Backoff::new();
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
        let len = gen.len_of(seq);
        let mut full_since = None;
        loop {
            match producer.try_reserve(len) {
                Ok(mut grant) => {
                    gen.fill(seq, &mut grant);
                    grant.commit();
                    break;
                }
                Err(SendError::Full) => {
                    let since = *full_since.get_or_insert_with(Instant::now);
                    if backoff.snooze() && since.elapsed() >= config.timeout {
                        return Err(format!(
                            "ring full for {:.1} s after {seq} of {} messages; \
                             the consumer stopped draining",
                            config.timeout.as_secs_f64(),
                            config.count
                        )
                        .into());
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        backoff.reset();
        bytes += len as u64;
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
