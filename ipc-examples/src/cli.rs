//! What the `producer` and `consumer` demos share: their arguments
//! (`<name> <count> <size>`, `--timeout`, `--seed`), their exit status and
//! their report line. Both must read `<size>` and `--seed` the same way, or
//! the consumer rejects the producer's stream.

use std::error::Error;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use ipc_tests::payload::PayloadGen;

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
    /// `--timeout`, or [`DEFAULT_TIMEOUT`].
    pub timeout: Duration,
    /// `--seed`, or [`DEFAULT_SEED`].
    pub seed: u64,
}

/// Parses the arguments after the program name; `Ok(None)` for `-h` or
/// `--help`. Options take a value as `--flag value` or `--flag=value`.
/// `--timeout` and `--seed` are handled here; any other option goes to
/// `other(flag, value)`, which returns `Ok(false)` for a flag it does not know.
pub fn parse<'a>(
    args: &'a [String],
    mut other: impl FnMut(&str, &str) -> Result<bool, String>,
) -> Result<Option<Args<'a>>, String> {
    let mut positional = Vec::new();
    let mut timeout = DEFAULT_TIMEOUT;
    let mut seed = DEFAULT_SEED;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(None);
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
    }
}
