//! Bounded-memory aggregation for runs too large for exact percentiles.
//!
//! Exact percentiles need every latency in memory (16 bytes a sample in the compact columns). When a
//! run has more samples than fit (see [`crate::load::LoadOptions::exact_limit`]), the loader switches
//! to these aggregates instead: per request name an HdrHistogram of corrected and of uncorrected
//! latency with three significant digits (every percentile within 0.1% of the exact value), exact
//! counts, minimum, maximum, sum and sum of squares (so the mean and standard deviation stay exact);
//! per second a histogram with two significant digits (within 1%) for the latency-over-time series.
//! Their size depends on the number of names and seconds, not on the number of samples. polars has
//! no streaming quantile sketch, so this part is hand-written.

use hdrhistogram::Histogram;

/// Histograms cover 1 µs to 1 hour; longer latencies are clamped in them (the exact maximum is kept).
const MAX_US: u64 = 3_600_000_000;

/// Significant digits of the per-name histograms: values within 10^-3 (0.1%).
pub const NAME_DIGITS: u8 = 3;
/// Significant digits of the per-second histograms: values within 10^-2 (1%).
pub const SECOND_DIGITS: u8 = 2;

fn histogram(digits: u8) -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, digits).expect("static histogram bounds are valid")
}

/// Exact moments of a latency column.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Moments {
    /// Values seen.
    pub count: u64,
    /// Their sum, exactly.
    pub sum: u128,
    /// The sum of their squares, exactly.
    pub sum_sq: u128,
    /// The smallest (`u32::MAX` when none).
    pub min: u32,
    /// The largest.
    pub max: u32,
}

impl Moments {
    /// No values yet.
    pub fn new() -> Self {
        Moments {
            min: u32::MAX,
            ..Moments::default()
        }
    }

    /// Adds one value.
    #[inline]
    pub fn record(&mut self, v: u32) {
        self.count += 1;
        self.sum += u128::from(v);
        self.sum_sq += u128::from(v) * u128::from(v);
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    /// Adds another set of values.
    pub fn add(&mut self, o: &Moments) {
        self.count += o.count;
        self.sum += o.sum;
        self.sum_sq += o.sum_sq;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }

    /// The mean.
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }

    /// The sample standard deviation (n − 1), computed from exact integer sums.
    pub fn stddev(&self) -> f64 {
        if self.count < 2 {
            return 0.0;
        }
        let n = u128::from(self.count);
        // n·Σx² − (Σx)² is exact in integers; only the final division is floating point.
        let numerator = n * self.sum_sq - self.sum * self.sum;
        (numerator as f64 / (n * (n - 1)) as f64).sqrt()
    }
}

/// One latency column of one group: exact moments and a histogram.
#[derive(Debug, Clone)]
pub struct LatencyAgg {
    /// Exact moments.
    pub moments: Moments,
    /// The histogram.
    pub histogram: Histogram<u64>,
}

impl LatencyAgg {
    pub(crate) fn new(digits: u8) -> Self {
        LatencyAgg {
            moments: Moments::new(),
            histogram: histogram(digits),
        }
    }

    #[inline]
    pub(crate) fn record(&mut self, v: u32) {
        self.moments.record(v);
        self.histogram
            .saturating_record(u64::from(v).clamp(1, MAX_US));
    }

    pub(crate) fn add(&mut self, o: &LatencyAgg) {
        self.moments.add(&o.moments);
        self.histogram
            .add(&o.histogram)
            .expect("histograms share bounds");
    }

    /// The nearest-rank percentile of the histogram: the highest value equivalent to the recorded one
    /// at rank ⌈q·n⌉, clamped to the exact min and max.
    pub fn percentile(&self, q: f64) -> f64 {
        if self.moments.count == 0 {
            return 0.0;
        }
        let v = self.histogram.value_at_quantile(q);
        v.clamp(u64::from(self.moments.min), u64::from(self.moments.max)) as f64
    }
}

/// Everything kept about one request name (failures are counted from the failures frame).
#[derive(Debug, Clone)]
pub struct NameAgg {
    /// Corrected latency.
    pub corrected: LatencyAgg,
    /// Uncorrected latency.
    pub uncorrected: LatencyAgg,
}

impl NameAgg {
    fn new() -> Self {
        NameAgg {
            corrected: LatencyAgg::new(NAME_DIGITS),
            uncorrected: LatencyAgg::new(NAME_DIGITS),
        }
    }

    /// Adds another group's aggregates.
    pub fn add(&mut self, o: &NameAgg) {
        self.corrected.add(&o.corrected);
        self.uncorrected.add(&o.uncorrected);
    }

    /// Requests.
    pub fn count(&self) -> u64 {
        self.corrected.moments.count
    }
}

/// Everything kept about one second.
#[derive(Debug, Clone)]
pub struct SecondAgg {
    /// Corrected latency, two significant digits.
    pub corrected: LatencyAgg,
}

impl SecondAgg {
    fn new() -> Self {
        SecondAgg {
            corrected: LatencyAgg::new(SECOND_DIGITS),
        }
    }
}

/// The aggregates of one log or, merged, of a run.
#[derive(Debug, Clone, Default)]
pub struct Aggregates {
    /// By name index (per log while reading; run-wide after merging).
    pub names: Vec<NameAgg>,
    /// By second since the run's time zero.
    pub seconds: Vec<Option<SecondAgg>>,
}

impl Aggregates {
    /// Records one sample.
    #[inline]
    pub fn record(&mut self, name: u32, t_s: u32, corrected: u32, uncorrected: u32) {
        let n = name as usize;
        while self.names.len() <= n {
            self.names.push(NameAgg::new());
        }
        let agg = &mut self.names[n];
        agg.corrected.record(corrected);
        agg.uncorrected.record(uncorrected);
        // A start more than a week in is a clock fault; it shares the last slot rather than growing
        // the per-second table without bound (the time series stop there and say so).
        let t = t_s.min(crate::timeseries::MAX_SECONDS) as usize;
        if self.seconds.len() <= t {
            self.seconds.resize(t + 1, None);
        }
        let second = self.seconds[t].get_or_insert_with(SecondAgg::new);
        second.corrected.record(corrected);
    }

    /// Adds another log's aggregates, mapping its name indices through `map_name`.
    pub fn merge(&mut self, other: &Aggregates, map_name: &[u32]) {
        for (local, agg) in other.names.iter().enumerate() {
            let g = map_name[local] as usize;
            while self.names.len() <= g {
                self.names.push(NameAgg::new());
            }
            self.names[g].add(agg);
        }
        if self.seconds.len() < other.seconds.len() {
            self.seconds.resize(other.seconds.len(), None);
        }
        for (t, s) in other.seconds.iter().enumerate() {
            let Some(s) = s else { continue };
            match &mut self.seconds[t] {
                Some(mine) => mine.corrected.add(&s.corrected),
                slot @ None => *slot = Some(s.clone()),
            }
        }
    }

    /// All names together.
    pub fn total(&self) -> NameAgg {
        let mut total = NameAgg::new();
        for n in &self.names {
            total.add(n);
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_are_exact() {
        let mut m = Moments::new();
        for v in [2, 4, 4, 4, 5, 5, 7, 9] {
            m.record(v);
        }
        assert_eq!(m.mean(), 5.0);
        // The sample standard deviation of this classic example is sqrt(32 / 7).
        assert!((m.stddev() - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert_eq!((m.min, m.max), (2, 9));
    }

    #[test]
    fn percentiles_are_within_the_stated_error() {
        let mut a = Aggregates::default();
        let mut values: Vec<u32> = (0..100_000u32)
            .map(|i| 100 + (i * 7919) % 2_000_000)
            .collect();
        for (i, v) in values.iter().enumerate() {
            a.record(0, (i / 1000) as u32, *v, *v);
        }
        values.sort_unstable();
        let total = a.total();
        for q in [0.5, 0.9, 0.99, 0.999] {
            let exact = f64::from(values[((q * values.len() as f64).ceil() as usize).max(1) - 1]);
            let approx = total.corrected.percentile(q);
            assert!(
                (approx - exact).abs() <= exact * 1e-3,
                "q {q}: {approx} vs {exact}"
            );
        }
    }
}
