//! The fault campaign: the threat model tried as an attacker would, with
//! counts. One command, seeded, replayable:
//!
//! ```text
//! campaign [--long] [--seed N] [--only PARTS] [--scale X] [--round N]
//!     PARTS: a comma-separated subset of kills,corrupt,hostile (default all)
//!     --long:  about ten times the CI mode's work
//!     --scale: multiply the mode's work by X (e.g. 0.1 for a smoke run)
//!     --round: run only round N of the kills part (a replay; the kills'
//!              timing is not replayed, only the round's choices)
//! ```
//!
//! - `kills`: forked producers and consumers (and so reapers: every handle
//!   reaps the dead peers it finds) of SPSC, MPMC and typed channels, using
//!   try and blocking calls, are `SIGKILL`ed at random moments by a timer;
//!   each round checks that every message sent arrived once and intact,
//!   except what the queue's counters report and one in-flight message per
//!   killed consumer, and that every survivor finished within its deadline.
//! - `corrupt`: worker processes mutate every byte of live regions (header,
//!   participant table, control block, slots, records), in between and
//!   during try and blocking calls, each call under a watchdog; only typed
//!   errors may come out: no panic, abort, hang or sanitizer report
//!   (`scripts/asan.sh` runs this part under AddressSanitizer).
//! - `hostile`: hostile typed messages (length bombs, deep nesting, invalid
//!   UTF-8, bad enum tags, wrong POD sizes) sent with a raw bytes channel to
//!   typed receivers, each case in its own process: the receiver must report
//!   a decode error and go on.
//!
//! The summary lists counts, then failures by kind with the first few in
//! detail and the seed to replay; the exit status is 1 on any failure.
//! Worker processes are this program again, with `--worker`.

mod corrupt;
mod hostile;
mod kills;
mod report;
mod rng;

use std::process::ExitCode;
use std::time::Instant;

use report::Report;

/// How much work each part does.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    /// CI mode (`false`) or long mode.
    pub long: bool,
    /// A multiplier of the mode's work.
    pub factor: f64,
}

impl Scale {
    /// `ci` units of work in CI mode, ten times as many in long mode, times
    /// the factor; at least 1.
    pub fn of(&self, ci: u64) -> u64 {
        let base = if self.long { ci * 10 } else { ci };
        ((base as f64 * self.factor) as u64).max(1)
    }
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: campaign [--long] [--seed N] [--only kills,corrupt,hostile] [--scale X] [--round N]\n\
         (workers: campaign --worker corrupt|hostile ...)"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--worker") {
        return match args.get(1).map(String::as_str) {
            Some("corrupt") => corrupt::worker(&args[2..]),
            Some("hostile") => hostile::worker(&args[2..]),
            _ => usage(),
        };
    }
    let mut seed = None;
    let mut only: Vec<String> = vec!["kills".into(), "corrupt".into(), "hostile".into()];
    let mut scale = Scale {
        long: false,
        factor: 1.0,
    };
    let mut round = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--long" => scale.long = true,
            "--seed" => match it.next().and_then(|s| s.parse().ok()) {
                Some(s) => seed = Some(s),
                None => return usage(),
            },
            "--scale" => match it.next().and_then(|s| s.parse().ok()) {
                Some(f) if f > 0.0 => scale.factor = f,
                _ => return usage(),
            },
            "--round" => match it.next().and_then(|s| s.parse().ok()) {
                Some(r) => round = Some(r),
                None => return usage(),
            },
            "--only" => match it.next() {
                Some(parts) => only = parts.split(',').map(str::to_string).collect(),
                None => return usage(),
            },
            _ => return usage(),
        }
    }
    if only
        .iter()
        .any(|p| !["kills", "corrupt", "hostile"].contains(&p.as_str()))
    {
        return usage();
    }
    let seed = seed.unwrap_or_else(rng::seed_from_clock);
    println!(
        "campaign: seed {seed} ({} mode, scale {}, parts {}); replay with --seed {seed}",
        if scale.long { "long" } else { "CI" },
        scale.factor,
        only.join(",")
    );
    let started = Instant::now();
    let mut report = Report::new(seed);
    // Kills first: that part forks, and must do so while this process has
    // only one thread.
    if only.iter().any(|p| p == "kills") {
        kills::run(seed, scale, round, &mut report);
    }
    if only.iter().any(|p| p == "corrupt") {
        corrupt::run(seed, scale, &mut report);
    }
    if only.iter().any(|p| p == "hostile") {
        hostile::run(seed, &mut report);
    }
    report.print(started.elapsed());
    if report.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
