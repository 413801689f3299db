//! Counts and failures, printed as a plain summary at the end.

use std::collections::BTreeMap;
use std::time::Duration;

/// Failures shown in detail; the rest are only counted.
const DETAILED: usize = 12;

#[derive(Debug)]
pub struct Report {
    seed: u64,
    /// What was done and seen, by name (kills, mutations, messages...).
    counts: BTreeMap<String, u64>,
    /// Failures by kind.
    failures: BTreeMap<String, u64>,
    /// The first failures, in full.
    details: Vec<String>,
    /// Wall time of each part.
    timings: Vec<(String, Duration)>,
}

impl Report {
    pub fn new(seed: u64) -> Report {
        Report {
            seed,
            counts: BTreeMap::new(),
            failures: BTreeMap::new(),
            details: Vec::new(),
            timings: Vec::new(),
        }
    }

    pub fn add(&mut self, what: &str, n: u64) {
        *self.counts.entry(what.to_string()).or_default() += n;
    }

    /// Records a failure of `kind`; `detail` says where (part, round, the
    /// seed to replay) and what.
    pub fn fail(&mut self, kind: &str, detail: String) {
        *self.failures.entry(kind.to_string()).or_default() += 1;
        if self.details.len() < DETAILED {
            self.details.push(format!("[{kind}] {detail}"));
        }
        // Seen as it happens too, for long runs.
        eprintln!("FAILURE [{kind}] {}", first_lines(&detail, 6));
    }

    pub fn timed(&mut self, part: &str, took: Duration) {
        self.timings.push((part.to_string(), took));
    }

    pub fn failed(&self) -> bool {
        !self.failures.is_empty()
    }

    pub fn print(&self, took: Duration) {
        println!();
        println!("== campaign summary (seed {})", self.seed);
        for (what, n) in &self.counts {
            println!("{what:<48} {n}");
        }
        for (part, t) in &self.timings {
            println!("{:<48} {:.1} s", format!("time: {part}"), t.as_secs_f64());
        }
        println!("{:<48} {:.1} s", "time: total", took.as_secs_f64());
        if self.failures.is_empty() {
            println!("failures                                         0");
            println!("PASS");
            return;
        }
        let total: u64 = self.failures.values().sum();
        println!("failures                                         {total}");
        for (kind, n) in &self.failures {
            println!("  {kind:<46} {n}");
        }
        println!("first failures:");
        for d in &self.details {
            println!("- {}", first_lines(d, 20));
        }
        println!("FAIL (replay with --seed {})", self.seed);
    }
}

/// The first `n` lines of `text`, for messages carrying a child's stderr.
pub fn first_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() <= n {
        text.trim_end().to_string()
    } else {
        format!(
            "{}\n    ... ({} more lines)",
            lines[..n].join("\n"),
            lines.len() - n
        )
    }
}
