//! Timing and statistics: single round trips timed into histograms, the
//! clock's own cost, percentiles, summaries and throughput.

use std::time::{Duration, Instant};

/// Round-trip times in ns, every one recorded, to 3 significant digits
/// (the precision of the tables), from 1 ns to 100 s.
pub type Histogram = hdrhistogram::Histogram<u64>;

/// An empty [`Histogram`].
pub fn histogram() -> Histogram {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("bounds are valid")
}

/// Times single round trips: [`lap`](Laps::lap) reads the clock after each
/// one, so each lap is one round trip plus the cost of one clock read and
/// a store into a buffer. The laps go into a [`Histogram`] after the batch,
/// outside the timing. [`clock`](Laps::clock) times the same steps with no
/// round trip between them: the cost each lap includes.
#[derive(Debug)]
pub struct Laps {
    on: bool,
    last: Instant,
    ns: Vec<u64>,
}

impl Default for Laps {
    fn default() -> Laps {
        Laps {
            on: false,
            last: Instant::now(),
            ns: Vec::new(),
        }
    }
}

impl Laps {
    /// Starts a batch of `n` round trips, timed one by one when `on`
    /// (a clock read now), else not at all ([`lap`](Laps::lap) does
    /// nothing).
    pub fn start(&mut self, on: bool, n: usize) {
        self.on = on;
        self.ns.clear();
        if on {
            self.ns.reserve(n);
            self.last = Instant::now();
        }
    }

    /// Ends a round trip, and starts the next.
    #[inline(always)]
    pub fn lap(&mut self) {
        if self.on {
            let now = Instant::now();
            self.ns
                .push(now.duration_since(self.last).as_nanos() as u64);
            self.last = now;
        }
    }

    /// The laps of the batch, in ns.
    pub fn ns(&self) -> &[u64] {
        &self.ns
    }

    /// Records the laps of the batch into `hist`, leaving out the first
    /// `skip`.
    pub fn record(&self, hist: &mut Histogram, skip: usize) {
        for &ns in self.ns.iter().skip(skip) {
            hist.saturating_record(ns);
        }
    }

    /// Records `n` laps with nothing between them into `hist`: the cost of
    /// a clock read as [`lap`](Laps::lap) pays it.
    pub fn clock(&mut self, n: usize, hist: &mut Histogram) {
        self.start(true, n);
        for _ in 0..n {
            self.lap();
        }
        self.record(hist, 0);
        self.on = false;
    }
}

/// The `pct`-th percentile (0..=100) of ascending `sorted` samples, by the
/// nearest-rank method; NaN when empty.
pub fn percentile(sorted: &[f64], pct: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    // The small nudge keeps 99.9% of 1000 at rank 999 despite rounding.
    let rank = (pct / 100.0 * sorted.len() as f64 - 1e-9).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of `values` (mean of the middle two when even; NaN when
/// empty). Sorts `values` in place.
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// The median of some values in any order; NaN when there are none.
pub fn median_of(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    median(&mut v)
}

/// Order statistics of a set of samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// Number of samples.
    pub count: usize,
    /// Smallest.
    pub min: f64,
    /// Median (nearest rank).
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

impl Summary {
    /// Summarises `samples` (in any order); `None` when there are none.
    ///
    /// ```
    /// use ipc_benches::stats::Summary;
    /// let s = Summary::of(&[3.0, 1.0, 2.0, 4.0]).unwrap();
    /// assert_eq!((s.min, s.p50, s.max, s.mean), (1.0, 2.0, 4.0, 2.5));
    /// ```
    pub fn of(samples: &[f64]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(Summary {
            count: sorted.len(),
            min: sorted[0],
            p50: percentile(&sorted, 50.0),
            p99: percentile(&sorted, 99.0),
            p999: percentile(&sorted, 99.9),
            max: sorted[sorted.len() - 1],
            mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
        })
    }

    /// Summarises the values recorded in `hist` (each to 3 significant
    /// digits; percentiles by nearest rank); `None` when it is empty.
    ///
    /// ```
    /// use ipc_benches::stats::{histogram, Summary};
    /// let mut h = histogram();
    /// for ns in 1..=1000 {
    ///     h.record(ns).unwrap();
    /// }
    /// let s = Summary::of_histogram(&h).unwrap();
    /// assert_eq!((s.count, s.p50, s.p99, s.p999), (1000, 500.0, 990.0, 999.0));
    /// ```
    pub fn of_histogram(hist: &Histogram) -> Option<Summary> {
        if hist.is_empty() {
            return None;
        }
        // The nudge keeps 99.9% of 1000 at rank 999 despite rounding (as
        // in `percentile`); it moves no rank below 10^11 samples.
        let at = |pct: f64| hist.value_at_quantile(pct / 100.0 - 1e-12) as f64;
        Some(Summary {
            count: hist.len() as usize,
            min: hist.min() as f64,
            p50: at(50.0),
            p99: at(99.0),
            p999: at(99.9),
            max: hist.max() as f64,
            mean: hist.mean(),
        })
    }
}

/// A one-way transfer: how much moved in how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throughput {
    /// Messages delivered.
    pub messages: u64,
    /// Payload bytes delivered.
    pub bytes: u64,
    /// From the start signal to the last byte received.
    pub elapsed: Duration,
    /// Wait-path system calls of every process taking part
    /// ([`ipc_core::wait::syscalls`]), for the library's rings.
    pub wait_syscalls: Option<u64>,
}

impl Throughput {
    /// Messages per second.
    pub fn msgs_per_sec(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64()
    }

    /// Payload bytes per second.
    pub fn bytes_per_sec(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64()
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds: the clock of [`Instant`], as a number
/// that other processes can compare (an `Instant` cannot be shared).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec on our stack for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let sorted: Vec<f64> = (1..=1000).map(f64::from).collect();
        assert_eq!(percentile(&sorted, 50.0), 500.0);
        assert_eq!(percentile(&sorted, 99.0), 990.0);
        assert_eq!(percentile(&sorted, 99.9), 999.0);
        assert_eq!(percentile(&sorted, 100.0), 1000.0);
        assert_eq!(percentile(&sorted, 0.0), 1.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }

    #[test]
    fn laps_time_each_round_trip_and_skip_the_first() {
        let mut laps = Laps::default();
        let mut hist = histogram();
        laps.start(true, 3);
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(2));
            laps.lap();
        }
        laps.record(&mut hist, 1);
        assert_eq!(hist.len(), 2);
        assert!(hist.min() >= 2_000_000, "{}", hist.min());
        // Off: nothing timed, nothing recorded.
        laps.start(false, 3);
        laps.lap();
        laps.record(&mut hist, 0);
        assert_eq!(hist.len(), 2);
        let mut clock = histogram();
        laps.clock(100, &mut clock);
        assert_eq!(clock.len(), 100);
        assert!(clock.value_at_quantile(0.5) < 1_000_000);
    }

    #[test]
    fn summary_orders_samples() {
        let s = Summary::of(&[5.0, 1.0, 4.0, 2.0, 3.0]).unwrap();
        assert_eq!(
            (s.count, s.min, s.p50, s.max, s.mean),
            (5, 1.0, 3.0, 5.0, 3.0)
        );
        assert!(Summary::of(&[]).is_none());
    }
}
