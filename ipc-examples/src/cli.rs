//! What the `producer` and `consumer` demos share: their arguments
//! (`<name> <count> <size>`, `--mpmc`, `--timeout`, `--seed`), their exit
//! status, their report line, and the messages of an MPMC queue
//! ([`Tagged`]). Both must read `<size>` and `--seed` the same way, or the
//! consumer rejects the producer's stream.

use std::error::Error;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use ipc_tests::payload::{mix, PayloadError, PayloadGen};

/// Seed of the payload stream unless `--seed` says otherwise.
pub const DEFAULT_SEED: u64 = 24301;
/// How long a demo waits for its peer unless `--timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Message sizes of the stream: `N` or `random:N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    /// Every message is this many bytes.
    Fixed(usize),
    /// Messages of 0 to this many bytes.
    Random(usize),
}

impl Size {
    /// Parses `N` or `random:N`.
    pub fn parse(s: &str) -> Result<Size, String> {
        match s.strip_prefix("random:") {
            Some(n) => parse_num(n, "random:N").map(Size::Random),
            None => parse_num(s, "<size>").map(Size::Fixed),
        }
    }

    /// The largest message.
    pub fn max_len(self) -> usize {
        match self {
            Size::Fixed(n) | Size::Random(n) => n,
        }
    }

    /// The stream of messages of these sizes.
    pub fn gen(self, seed: u64) -> PayloadGen {
        match self {
            Size::Fixed(n) => PayloadGen::fixed(seed, n),
            Size::Random(n) => PayloadGen::random(seed, n),
        }
    }
}

/// Parses a number that may contain `_` separators; `what` names it in the
/// error.
pub fn parse_num<T: FromStr>(s: &str, what: &str) -> Result<T, String> {
    s.replace('_', "")
        .parse()
        .map_err(|_| format!("{what}: {s:?} is not a valid number"))
}

/// Parses a positive number of seconds.
fn parse_secs(s: &str, what: &str) -> Result<Duration, String> {
    let secs: f64 = parse_num(s, what)?;
    if secs <= 0.0 {
        return Err(format!("{what}: must be more than 0 seconds"));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{what}: {s:?} is out of range"))
}

/// Adds the leading `/` to a shm name if it is missing and checks the name.
pub fn shm_name(name: &str) -> Result<String, String> {
    let name = if name.starts_with('/') {
        name.to_owned()
    } else {
        format!("/{name}")
    };
    ipc_core::region::shm_name(&name).map_err(|e| e.to_string())?;
    Ok(name)
}

/// The arguments both demos take, as [`parse`] found them.
#[derive(Debug)]
pub struct Args<'a> {
    /// `<name>`, `<count>` and `<size>`, unparsed: each demo parses them in
    /// its own order, so which error it reports first stays its own.
    pub positional: [&'a str; 3],
    /// `--mpmc`: an MPMC queue (several producers and consumers) instead of
    /// an SPSC ring.
    pub mpmc: bool,
    /// `--timeout`, or [`DEFAULT_TIMEOUT`].
    pub timeout: Duration,
    /// `--seed`, or [`DEFAULT_SEED`].
    pub seed: u64,
}

/// Parses the arguments after the program name; `Ok(None)` for `-h` or
/// `--help`. `--mpmc` is a switch; other options take a value as
/// `--flag value` or `--flag=value`. `--mpmc`, `--timeout` and `--seed` are
/// handled here; any other option goes to `other(flag, value)`, which
/// returns `Ok(false)` for a flag it does not know.
pub fn parse<'a>(
    args: &'a [String],
    mut other: impl FnMut(&str, &str) -> Result<bool, String>,
) -> Result<Option<Args<'a>>, String> {
    let mut positional = Vec::new();
    let mut timeout = DEFAULT_TIMEOUT;
    let mut seed = DEFAULT_SEED;
    let mut mpmc = false;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(None);
        }
        if arg == "--mpmc" {
            mpmc = true;
            continue;
        }
        if !arg.starts_with("--") {
            positional.push(arg.as_str());
            continue;
        }
        let (flag, value) = match arg.split_once('=') {
            Some((flag, value)) => (flag, Some(value)),
            None => (arg.as_str(), args.next().map(String::as_str)),
        };
        let Some(value) = value else {
            return Err(format!("{flag} needs a value"));
        };
        match flag {
            "--timeout" => timeout = parse_secs(value, flag)?,
            "--seed" => seed = parse_num(value, flag)?,
            _ if other(flag, value)? => {}
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    let [name, count, size] = positional[..] else {
        return Err(format!(
            "expected 3 arguments (<name> <count> <size>), got {}",
            positional.len()
        ));
    };
    Ok(Some(Args {
        positional: [name, count, size],
        mpmc,
        timeout,
        seed,
    }))
}

/// Runs a demo: parses `std::env::args` with `parse` and runs `run` with the
/// result. Exit status 0 on success (and after printing `usage` for
/// `--help`), 1 when `run` fails, 2 on bad arguments.
pub fn main<C>(
    usage: &str,
    parse: impl FnOnce(&[String]) -> Result<Option<C>, String>,
    run: impl FnOnce(&C) -> Result<(), Box<dyn Error>>,
) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match parse(&args) {
        Ok(Some(config)) => config,
        Ok(None) => {
            println!("{usage}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}\n{usage}");
            return ExitCode::from(2);
        }
    };
    match run(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The messages of an MPMC queue: a 16-byte header (the producer's pid and
/// the message's sequence number, little-endian) and a body from the
/// producer's own payload stream (the seed mixed with its pid). A consumer
/// receives some messages of each of several producers: the header says
/// whose stream, and which message of it, to verify the body against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tagged {
    /// The sending producer's pid.
    pub producer: u64,
    /// The message's number in that producer's stream.
    pub seq: u64,
}

impl Tagged {
    /// Bytes of the header in front of the body.
    pub const HEADER: usize = 16;

    /// The body stream of `producer`'s messages of `size`.
    pub fn gen(size: Size, seed: u64, producer: u64) -> PayloadGen {
        size.gen(mix(seed ^ producer))
    }

    /// Writes the header and body of message `seq` of `producer` into
    /// `msg`, which must be [`Tagged::HEADER`] bytes longer than the body
    /// (`gen.len_of(seq)`).
    pub fn fill(self, gen: PayloadGen, msg: &mut [u8]) {
        msg[..8].copy_from_slice(&self.producer.to_le_bytes());
        msg[8..16].copy_from_slice(&self.seq.to_le_bytes());
        gen.fill(self.seq, &mut msg[Self::HEADER..]);
    }

    /// Reads and verifies a message: whose it is, if every byte of its body
    /// is what that producer sends as that message.
    pub fn check(msg: &[u8], size: Size, seed: u64) -> Result<Tagged, String> {
        let (Some(producer), Some(seq)) = (
            msg.first_chunk::<8>(),
            msg[8.min(msg.len())..].first_chunk::<8>(),
        ) else {
            return Err(format!("a message of {} bytes has no header", msg.len()));
        };
        let tag = Tagged {
            producer: u64::from_le_bytes(*producer),
            seq: u64::from_le_bytes(*seq),
        };
        Self::gen(size, seed, tag.producer)
            .verify(tag.seq, &msg[Self::HEADER..])
            .map_err(|e: PayloadError| {
                format!("message {} of producer {}: {e}", tag.seq, tag.producer)
            })?;
        Ok(tag)
    }
}

/// `"{count/secs} msgs/s, {bytes/secs} MB/s"`, or `n/a` when no time passed.
pub fn rates(count: u64, bytes: u64, secs: f64) -> String {
    if secs > 0.0 {
        format!(
            "{:.0} msgs/s, {:.1} MB/s",
            count as f64 / secs,
            bytes as f64 / secs / 1e6
        )
    } else {
        "n/a msgs/s, n/a MB/s".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_take_a_value_either_way() {
        let args = strings(&["/x", "--seed=7", "1_000", "--timeout", "2.5", "random:64"]);
        let parsed = parse(&args, |_, _| Ok(false)).unwrap().unwrap();
        assert_eq!(parsed.positional, ["/x", "1_000", "random:64"]);
        assert_eq!(parsed.seed, 7);
        assert_eq!(parsed.timeout, Duration::from_millis(2500));
        assert_eq!(Size::parse("random:64"), Ok(Size::Random(64)));
        assert_eq!(parse_num::<u64>("1_000", "<count>"), Ok(1000));
    }

    #[test]
    fn other_options_go_to_the_caller() {
        let args = strings(&["--rate=5", "a", "b", "c"]);
        let mut seen = None;
        let parsed = parse(&args, |flag, value| {
            seen = Some((flag.to_owned(), value.to_owned()));
            Ok(flag == "--rate")
        });
        assert!(parsed.unwrap().is_some());
        assert_eq!(seen, Some(("--rate".to_owned(), "5".to_owned())));
        let err = parse(&strings(&["--bogus", "1"]), |_, _| Ok(false)).unwrap_err();
        assert_eq!(err, "unknown option --bogus");
    }

    #[test]
    fn help_and_errors() {
        assert!(parse(&strings(&["a", "--help"]), |_, _| Ok(false))
            .unwrap()
            .is_none());
        let err = parse(&strings(&["a", "b", "c", "--timeout"]), |_, _| Ok(false)).unwrap_err();
        assert_eq!(err, "--timeout needs a value");
        let err = parse(&strings(&["a", "b"]), |_, _| Ok(false)).unwrap_err();
        assert_eq!(err, "expected 3 arguments (<name> <count> <size>), got 2");
        assert_eq!(shm_name("demo"), Ok("/demo".to_owned()));
        assert!(shm_name("/a/b").is_err());
        let args = strings(&["--mpmc", "a", "1", "8"]);
        assert!(parse(&args, |_, _| Ok(false)).unwrap().unwrap().mpmc);
    }

    #[test]
    fn tagged_messages_name_their_producer_and_are_verified() {
        let size = Size::Fixed(40);
        let tag = Tagged {
            producer: 4242,
            seq: 17,
        };
        let gen = Tagged::gen(size, 5, tag.producer);
        let mut msg = vec![0u8; Tagged::HEADER + gen.len_of(tag.seq)];
        tag.fill(gen, &mut msg);
        assert_eq!(Tagged::check(&msg, size, 5), Ok(tag));
        // Another seed, a flipped byte, no header: rejected.
        assert!(Tagged::check(&msg, size, 6).is_err());
        let last = msg.len() - 1;
        msg[last] ^= 1;
        assert!(Tagged::check(&msg, size, 5).is_err());
        assert!(Tagged::check(&msg[..12], size, 5).is_err());
    }
}
