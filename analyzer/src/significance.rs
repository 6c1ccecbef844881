//! Run-to-run comparison that tells a real change from noise (`analyzer compare`).
//!
//! # Method
//!
//! Requests in a load test are not independent: a garbage-collection pause, a slow disk or a noisy
//! neighbour slows many consecutive requests at once. Resampling single requests (the textbook
//! bootstrap) would treat those as independent evidence and claim far more certainty than the run
//! holds. We therefore use a **moving-block bootstrap over time windows**: each run is cut into windows
//! (one second by default), and a replicate of the run is built from randomly chosen stretches of
//! consecutive windows, so slow spells stay together.
//!
//! For each replicate of the baseline and an independent replicate of the candidate we compute the
//! change (log ratio of percentiles or throughputs; difference of error rates in percentage points).
//! The spread of those replicates gives the standard error `se`. The confidence interval is
//! `estimate ± z·se`, with `z` for a two-sided family-wise confidence (99 % by default) shared by all
//! the comparisons in the report (Bonferroni), so that comparing twenty rows does not produce a false
//! alarm one time in three. Latencies go into log-linear buckets with 128 sub-buckets per power of two
//! (relative error under 0.8 %), so a replicate costs a pass over a few thousand counts, not over every
//! request.
//!
//! # Verdicts
//!
//! Each comparison has a tolerance `t` (for example 10 % on P99, 0.5 percentage points on the error
//! rate). With the change oriented so that positive is worse and its interval `[lo, hi]`:
//!
//! - **regressed** when `lo > 0`: worse beyond noise. It *breaks the limit* when `lo > t`.
//! - **improved** when `hi < 0`: better beyond noise.
//! - **within noise** when the interval holds 0 and lies inside `(−t, t)`: any change is smaller than
//!   the tolerance.
//! - **not resolvable** when the interval holds 0 but reaches past `±t`: this run length cannot tell a
//!   change of size `t` from noise. The report gives the smallest change it could have detected (at
//!   80 % power), `(z + z₀.₈)·se`.

use crate::rng::Rng;

/// Sub-buckets per power of two, as a power of two.
const SUB_BITS: u32 = 7;
const SUB: u32 = 1 << SUB_BITS;

/// The number of latency buckets: exact below 128 µs, then 128 per power of two up to `u32::MAX`.
pub const BUCKETS: usize = ((32 - SUB_BITS + 1) * SUB) as usize;

/// The bucket of a latency in µs.
pub fn bucket(us: u32) -> u16 {
    if us < SUB {
        return us as u16;
    }
    let exp = 31 - us.leading_zeros();
    let mantissa = (us >> (exp - SUB_BITS)) & (SUB - 1);
    ((exp - SUB_BITS + 1) * SUB + mantissa) as u16
}

/// The smallest latency in a bucket, µs.
pub fn bucket_low(b: u16) -> u32 {
    let b = u32::from(b);
    if b < SUB {
        return b;
    }
    let exp = b / SUB + SUB_BITS - 1;
    (SUB + b % SUB) << (exp - SUB_BITS)
}

/// The value reported for a bucket: its midpoint, µs.
pub fn bucket_value(b: u16) -> f64 {
    let low = f64::from(bucket_low(b));
    let next = if usize::from(b) + 1 < BUCKETS {
        f64::from(bucket_low(b + 1))
    } else {
        f64::from(u32::MAX) + 1.0
    };
    (low + next - 1.0) / 2.0
}

/// One time window of one series: counts and a sparse latency histogram.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Window {
    /// Requests that completed in the window.
    pub requests: u64,
    /// Of those, how many failed.
    pub failures: u64,
    /// The window's length, seconds.
    pub seconds: f64,
    /// (bucket, count) for every non-empty latency bucket, in bucket order.
    pub latency: Vec<(u16, u32)>,
}

/// A run's windows for one request name (or for the whole run).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    /// Windows in time order.
    pub windows: Vec<Window>,
}

impl Window {
    /// Adds another window's counts to this one.
    pub fn add(&mut self, other: &Window) {
        self.requests += other.requests;
        self.failures += other.failures;
        self.seconds = self.seconds.max(other.seconds);
        let mut merged = Vec::with_capacity(self.latency.len() + other.latency.len());
        let (mut a, mut b) = (
            self.latency.iter().peekable(),
            other.latency.iter().peekable(),
        );
        loop {
            match (a.peek(), b.peek()) {
                (Some(&&(x, cx)), Some(&&(y, cy))) if x == y => {
                    merged.push((x, cx + cy));
                    a.next();
                    b.next();
                }
                (Some(&&(x, cx)), Some(&&(y, _))) if x < y => {
                    merged.push((x, cx));
                    a.next();
                }
                (_, Some(&&(y, cy))) => {
                    merged.push((y, cy));
                    b.next();
                }
                (Some(&&(x, cx)), None) => {
                    merged.push((x, cx));
                    a.next();
                }
                (None, None) => break,
            }
        }
        self.latency = merged;
    }
}

/// Builds a [`Series`] from samples pushed in any order. It keeps two bytes per sample (the latency
/// bucket) until [`SeriesBuilder::finish`] counts them.
#[derive(Debug)]
pub struct SeriesBuilder {
    window_us: u64,
    start_us: u64,
    windows: Vec<(u64, u64, Vec<u16>)>,
}

impl SeriesBuilder {
    /// Windows of `window_us` starting at `start_us` (samples before it are ignored).
    pub fn new(start_us: u64, window_us: u64) -> Self {
        SeriesBuilder {
            window_us: window_us.max(1),
            start_us,
            windows: Vec::new(),
        }
    }

    fn window(&mut self, t_us: u64) -> Option<&mut (u64, u64, Vec<u16>)> {
        let w = (t_us.checked_sub(self.start_us)? / self.window_us) as usize;
        if w >= self.windows.len() {
            self.windows.resize_with(w + 1, Default::default);
        }
        Some(&mut self.windows[w])
    }

    /// Adds a request that started (or completed; be consistent) at `t_us` with `latency_us`.
    pub fn push(&mut self, t_us: u64, latency_us: u32) {
        if let Some((requests, _, buckets)) = self.window(t_us) {
            *requests += 1;
            buckets.push(bucket(latency_us));
        }
    }

    /// Counts a failed request at `t_us` (it must also have been pushed).
    pub fn fail(&mut self, t_us: u64) {
        if let Some((_, failures, _)) = self.window(t_us) {
            *failures += 1;
        }
    }

    /// The series, with at least `windows` windows (trailing empty ones included, so that throughput
    /// counts the whole measured time).
    pub fn finish(self, windows: usize) -> Series {
        let seconds = self.window_us as f64 / 1e6;
        let mut out: Vec<Window> = self
            .windows
            .into_iter()
            .map(|(requests, failures, mut buckets)| {
                buckets.sort_unstable();
                let mut latency: Vec<(u16, u32)> = Vec::new();
                for b in buckets {
                    match latency.last_mut() {
                        Some((last, count)) if *last == b => *count += 1,
                        _ => latency.push((b, 1)),
                    }
                }
                Window {
                    requests,
                    failures,
                    seconds,
                    latency,
                }
            })
            .collect();
        out.resize_with(windows.max(out.len()), || Window {
            seconds,
            ..Window::default()
        });
        Series { windows: out }
    }
}

/// What to compare.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// A latency percentile, as a quantile in (0, 1). Higher is worse.
    Latency(f64),
    /// Failures per request. Higher is worse.
    ErrorRate,
    /// Requests per second. Lower is worse.
    Throughput,
}

impl Metric {
    /// Whether the change is a ratio (reported in %) or a difference of rates (percentage points).
    pub fn is_relative(self) -> bool {
        !matches!(self, Metric::ErrorRate)
    }
}

/// The result of one comparison.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Comparison {
    /// The metric.
    pub metric: Metric,
    /// Its value in the baseline (µs, a fraction, or requests/s).
    pub baseline: f64,
    /// Its value in the candidate.
    pub candidate: f64,
    /// The change: relative (0.2 = +20 %) for latency and throughput, absolute (0.005 = +0.5 pp) for
    /// the error rate. Positive means the value went up.
    pub change: f64,
    /// The confidence interval of the change, same units.
    pub low: f64,
    /// Upper end of the interval.
    pub high: f64,
    /// The smallest change (in the worse direction, same units) this pair of runs could have detected.
    pub detectable: f64,
    /// The tolerance the verdict used, same units.
    pub tolerance: f64,
    /// The verdict.
    pub verdict: Verdict,
    /// Whether the change is worse than the tolerance beyond noise.
    pub breaks_limit: bool,
}

/// How a comparison came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Worse beyond noise.
    Regressed,
    /// Better beyond noise.
    Improved,
    /// Any change is smaller than the tolerance.
    WithinNoise,
    /// The runs cannot tell a change of the tolerance's size from noise (too short, or no data).
    NotResolvable,
}

impl Verdict {
    /// A short lower-case label.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Regressed => "regressed",
            Verdict::Improved => "improved",
            Verdict::WithinNoise => "within noise",
            Verdict::NotResolvable => "not resolvable",
        }
    }
}

/// Bootstrap settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Bootstrap replicates per comparison.
    pub replicates: usize,
    /// Family-wise confidence over all comparisons of a report, e.g. 0.99.
    pub confidence: f64,
    /// How many comparisons share that confidence (Bonferroni).
    pub family: usize,
    /// Seed for the resampling, so that a report is reproducible.
    pub seed: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            replicates: 400,
            confidence: 0.99,
            family: 1,
            seed: 0x5eed,
        }
    }
}

impl Settings {
    /// The two-sided normal quantile for one comparison of the family.
    pub fn z(&self) -> f64 {
        let alpha = (1.0 - self.confidence) / self.family.max(1) as f64;
        normal_quantile(1.0 - alpha / 2.0)
    }
}

/// Totals of one (resampled) run.
struct Totals {
    requests: u64,
    failures: u64,
    seconds: f64,
    counts: Vec<u64>,
}

impl Totals {
    fn new() -> Self {
        Totals {
            requests: 0,
            failures: 0,
            seconds: 0.0,
            counts: vec![0; BUCKETS],
        }
    }

    fn clear(&mut self) {
        self.requests = 0;
        self.failures = 0;
        self.seconds = 0.0;
        self.counts.fill(0);
    }

    fn add(&mut self, w: &Window) {
        self.requests += w.requests;
        self.failures += w.failures;
        self.seconds += w.seconds;
        for &(b, c) in &w.latency {
            self.counts[usize::from(b)] += u64::from(c);
        }
    }

    /// Nearest-rank quantile over the bucketed latencies.
    fn quantile(&self, q: f64) -> Option<f64> {
        let n: u64 = self.counts.iter().sum();
        if n == 0 {
            return None;
        }
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(bucket_value(b as u16));
            }
        }
        unreachable!("the counts sum to n and rank <= n")
    }

    fn value(&self, metric: Metric) -> Option<f64> {
        match metric {
            Metric::Latency(q) => self.quantile(q),
            Metric::ErrorRate => {
                (self.requests > 0).then(|| self.failures as f64 / self.requests as f64)
            }
            Metric::Throughput => (self.seconds > 0.0).then(|| self.requests as f64 / self.seconds),
        }
    }
}

/// Draws one moving-block bootstrap replicate of `series` into `into`.
fn resample(series: &Series, rng: &mut Rng, into: &mut Totals) {
    into.clear();
    let k = series.windows.len();
    if k == 0 {
        return;
    }
    let block = (k as f64).cbrt().round().max(1.0) as usize;
    let mut taken = 0;
    while taken < k {
        let start = rng.below((k - block + 1) as u64) as usize;
        for w in &series.windows[start..start + block.min(k - taken)] {
            into.add(w);
        }
        taken += block;
    }
}

/// The change between two values of a metric, on the scale where the bootstrap is done (log ratio for
/// relative metrics, so that +100 % and −50 % are symmetric).
fn scaled_change(metric: Metric, base: f64, cand: f64) -> f64 {
    if metric.is_relative() {
        (cand.max(1e-9) / base.max(1e-9)).ln()
    } else {
        cand - base
    }
}

fn unscale(metric: Metric, v: f64) -> f64 {
    if metric.is_relative() { v.exp_m1() } else { v }
}

/// Compares one metric of two series. `tolerance` is relative for latency and throughput (0.1 =
/// 10 %) and absolute for the error rate (0.005 = 0.5 percentage points).
pub fn compare(
    base: &Series,
    cand: &Series,
    metric: Metric,
    tolerance: f64,
    settings: &Settings,
) -> Comparison {
    let mut totals = Totals::new();
    let observed = |s: &Series, t: &mut Totals| {
        t.clear();
        s.windows.iter().for_each(|w| t.add(w));
        t.value(metric)
    };
    let b = observed(base, &mut totals);
    let c = observed(cand, &mut totals);
    let (Some(b), Some(c)) = (b, c) else {
        return Comparison {
            metric,
            baseline: b.unwrap_or(f64::NAN),
            candidate: c.unwrap_or(f64::NAN),
            change: f64::NAN,
            low: f64::NAN,
            high: f64::NAN,
            detectable: f64::NAN,
            tolerance,
            verdict: Verdict::NotResolvable,
            breaks_limit: false,
        };
    };
    let estimate = scaled_change(metric, b, c);

    let mut rng = Rng::new(settings.seed, 0x63_6f6d_7061_7265);
    let mut tb = Totals::new();
    let mut tc = Totals::new();
    let mut replicates = Vec::with_capacity(settings.replicates);
    for _ in 0..settings.replicates {
        resample(base, &mut rng, &mut tb);
        resample(cand, &mut rng, &mut tc);
        if let (Some(rb), Some(rc)) = (tb.value(metric), tc.value(metric)) {
            replicates.push(scaled_change(metric, rb, rc));
        }
    }
    let se = std_dev(&replicates);
    let z = settings.z();
    let (low, high) = (
        unscale(metric, estimate - z * se),
        unscale(metric, estimate + z * se),
    );
    let detectable = unscale(metric, (z + normal_quantile(0.8)) * se);

    // Orient so that positive is worse: throughput going down is the bad direction.
    let worse = if metric == Metric::Throughput {
        -1.0
    } else {
        1.0
    };
    let (lo, hi) = if worse > 0.0 {
        (low, high)
    } else {
        (-high, -low)
    };
    let verdict = if lo > 0.0 {
        Verdict::Regressed
    } else if hi < 0.0 {
        Verdict::Improved
    } else if lo > -tolerance && hi < tolerance {
        Verdict::WithinNoise
    } else {
        Verdict::NotResolvable
    };
    Comparison {
        metric,
        baseline: b,
        candidate: c,
        change: unscale(metric, estimate),
        low,
        high,
        detectable,
        tolerance,
        verdict,
        breaks_limit: lo > tolerance,
    }
}

fn std_dev(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return f64::INFINITY;
    }
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
}

/// The standard normal quantile function (Acklam's rational approximation, relative error < 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let low = 0.024_25;
    if p < low {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - low {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -normal_quantile(1.0 - p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_u32_with_bounded_error() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(127), 127);
        assert_eq!(bucket(128), 128);
        assert_eq!(usize::from(bucket(u32::MAX)), BUCKETS - 1);
        let mut v = 1u32;
        while v < u32::MAX / 2 {
            let b = bucket(v);
            assert!(bucket_low(b) <= v, "{v}");
            assert!(
                usize::from(b) + 1 == BUCKETS || bucket_low(b + 1) > v,
                "{v}"
            );
            let err = (bucket_value(b) - f64::from(v)).abs() / f64::from(v);
            assert!(err < 0.008, "{v}: {err}");
            v = v + v / 97 + 1;
        }
    }

    #[test]
    fn normal_quantile_matches_tables() {
        for (p, z) in [
            (0.5, 0.0),
            (0.975, 1.959_964),
            (0.995, 2.575_829),
            (0.8, 0.841_621),
            (0.001, -3.090_232),
        ] {
            assert!((normal_quantile(p) - z).abs() < 1e-5, "{p}");
        }
    }

    /// A synthetic run: `seconds` windows of `per_second` log-normal latencies (median 2 ms) scaled by
    /// `scale`, with `error_rate` failures, and one second in ten, at random, 20 % slower throughout (a
    /// GC-like stall), so that requests within a window are not independent.
    fn run(seed: u64, seconds: usize, per_second: usize, scale: f64, error_rate: f64) -> Series {
        let mut rng = Rng::new(seed, 1);
        let mut b = SeriesBuilder::new(0, 1_000_000);
        for s in 0..seconds {
            let stall = if rng.unit() < 0.1 { 1.2 } else { 1.0 };
            for i in 0..per_second {
                let n = rng.normal();
                let lat = 2_000.0 * (0.6 * n).exp() * scale * stall;
                let end = (s * 1_000_000 + i * 1_000_000 / per_second) as u64;
                b.push(end, lat as u32);
                if rng.unit() < error_rate {
                    b.fail(end);
                }
            }
        }
        b.finish(seconds)
    }

    #[test]
    fn a_twenty_percent_slowdown_is_a_regression() {
        let base = run(1, 60, 500, 1.0, 0.01);
        let cand = run(2, 60, 500, 1.2, 0.01);
        let settings = Settings {
            family: 5,
            ..Settings::default()
        };
        for q in [0.5, 0.9, 0.99] {
            let c = compare(&base, &cand, Metric::Latency(q), 0.1, &settings);
            assert_eq!(c.verdict, Verdict::Regressed, "P{}: {c:?}", q * 100.0);
            assert!((c.change - 0.2).abs() < 0.08, "P{}: {c:?}", q * 100.0);
        }
        let p50 = compare(&base, &cand, Metric::Latency(0.5), 0.1, &settings);
        assert!(
            p50.breaks_limit,
            "+20% is beyond a 10% limit with this much data: {p50:?}"
        );
    }

    #[test]
    fn same_distribution_is_within_noise_for_nineteen_of_twenty_seed_pairs() {
        let settings = Settings {
            family: 5,
            ..Settings::default()
        };
        let mut noisy = 0;
        for pair in 0..20u64 {
            let base = run(100 + pair, 120, 500, 1.0, 0.01);
            let cand = run(200 + pair, 120, 500, 1.0, 0.01);
            let verdicts = [
                compare(&base, &cand, Metric::Latency(0.5), 0.1, &settings),
                compare(&base, &cand, Metric::Latency(0.9), 0.1, &settings),
                compare(&base, &cand, Metric::Latency(0.99), 0.1, &settings),
                compare(&base, &cand, Metric::ErrorRate, 0.005, &settings),
                compare(&base, &cand, Metric::Throughput, 0.1, &settings),
            ];
            if verdicts.iter().any(|c| c.verdict != Verdict::WithinNoise) {
                noisy += 1;
                eprintln!("pair {pair}: {verdicts:#?}");
            }
        }
        assert!(
            noisy <= 1,
            "{noisy} of 20 same-distribution pairs were not within noise"
        );
    }

    #[test]
    fn a_short_run_is_not_resolvable_and_says_what_it_could_detect() {
        let base = run(1, 3, 20, 1.0, 0.01);
        let cand = run(2, 3, 20, 1.05, 0.01);
        let c = compare(
            &base,
            &cand,
            Metric::Latency(0.99),
            0.1,
            &Settings::default(),
        );
        assert_eq!(c.verdict, Verdict::NotResolvable, "{c:?}");
        assert!(c.detectable > 0.1, "{c:?}");
    }

    #[test]
    fn error_rate_changes_are_in_percentage_points() {
        let base = run(5, 60, 500, 1.0, 0.01);
        let cand = run(6, 60, 500, 1.0, 0.03);
        let c = compare(&base, &cand, Metric::ErrorRate, 0.005, &Settings::default());
        assert_eq!(c.verdict, Verdict::Regressed, "{c:?}");
        assert!((c.change - 0.02).abs() < 0.005, "{c:?}");
        assert!(c.breaks_limit);
    }

    #[test]
    fn throughput_down_is_worse() {
        let base = run(5, 60, 500, 1.0, 0.0);
        let cand = run(6, 60, 400, 1.0, 0.0);
        let c = compare(&base, &cand, Metric::Throughput, 0.1, &Settings::default());
        assert_eq!(c.verdict, Verdict::Regressed, "{c:?}");
        assert!((c.change + 0.2).abs() < 0.01, "{c:?}");
        let faster = compare(&cand, &base, Metric::Throughput, 0.1, &Settings::default());
        assert_eq!(faster.verdict, Verdict::Improved);
    }

    #[test]
    fn no_data_is_not_resolvable() {
        let empty = Series::default();
        let c = compare(
            &empty,
            &run(1, 5, 10, 1.0, 0.0),
            Metric::Latency(0.5),
            0.1,
            &Settings::default(),
        );
        assert_eq!(c.verdict, Verdict::NotResolvable);
    }
}
