//! Intervals that tell a real change from noise (`analyzer compare`) and a run's figures from their
//! limits (`analyzer check`).
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
//! Blocks are drawn at the same relative positions of both runs (paired in time), because runs of
//! one profile share their shape in time (a ramp, stages): resampling each run on its own would count
//! that shape as noise. For each pair of replicates we compute the change (log ratio of percentiles
//! or throughputs; difference of error rates in percentage points). The spread of those replicates
//! (their interquartile range / 1.349, robust to a few extreme replicates) gives the standard error
//! `se`. The confidence interval is `estimate ± z·se`, with `z` for a two-sided family-wise
//! confidence (99 % by default) shared by all the comparisons in the report (Bonferroni), so that
//! comparing twenty rows does not produce a false alarm one time in three. Latencies go into
//! log-linear buckets with 128 sub-buckets per power of two (relative error under 0.8 %), so a
//! replicate costs a pass over a few thousand counts, not over every request.
//!
//! # Two floors under the standard error
//!
//! The block bootstrap sees only the variation *between* windows. Where the windows agree for a
//! reason other than precision, its spread understates the uncertainty, down to zero:
//!
//! - a name whose samples sit in one window gives replicates that are all the same (the one-second
//!   login burst whose P99 "regressed by +31.4 % [+29.9 % … +32.8 %]");
//! - a schedule that is the same in both runs gives paired replicates with the same throughput ratio.
//!
//! The first is refused outright by the minimum evidence rule ([`MIN_WINDOWS`], [`shortfall`]). Against both, the
//! standard error is never below what **independent requests** would give (positive correlation
//! between requests only adds to that, so it is a floor, not an estimate): for a percentile, the
//! distribution-free one from ranks (the quantiles at q ± √(q(1−q)/n), halved); for the error rate,
//! the binomial one with one failure and one success added (Agresti–Caffo); for throughput, the
//! Poisson one (1/√N on the log scale); for the mean, s/√n. Latency buckets add their own resolution
//! (uniform rounding, width/√12 per run), which no run length shrinks.
//!
//! # Verdicts
//!
//! A comparison without a limit is described, not judged: **higher** or **lower** when the interval
//! excludes no change, **within noise** when it lies inside ± a tolerance (10 %, 0.5 percentage
//! points), **not resolvable** when it holds no change but reaches past the tolerance (the report
//! gives the smallest change it could have detected at 80 % power, `(z + z₀.₈)·se`), and **too few
//! samples** below the minimum evidence. Against a limit the answer is three-way: within, beyond or
//! undecided ([`Decision`], [`Interval::against`]).

mod decision;
mod series;

pub use decision::{
    Decision, Evidence, Interval, Length, MIN_TAIL_SAMPLES, MIN_WINDOWS, OnUndecided, Shortfall,
    about, length_words, percentile_label, shortfall, shortfall_words,
};
pub use series::{BUCKETS, Series, SeriesBuilder, Window, bucket, bucket_low, bucket_value};

use serde::Serialize;
use series::{SUB, Totals};

use crate::rng::Rng;

/// What to compare or estimate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// A latency percentile, as a quantile in (0, 1). Higher is worse.
    Latency(f64),
    /// The mean latency. Higher is worse.
    Mean,
    /// Failures per request. Higher is worse.
    ErrorRate,
    /// Requests per second. Lower is worse.
    Throughput,
    /// The share of requests at or above a latency, counted exactly into a window's `failures`
    /// (`analyzer check` judges a percentile threshold by it). Higher is worse.
    ShareAbove,
}

impl Metric {
    /// Whether the change is a ratio (reported in %) or a difference of rates (percentage points).
    pub fn is_relative(self) -> bool {
        !matches!(self, Metric::ErrorRate | Metric::ShareAbove)
    }

    /// Whether a higher value is the worse one.
    pub fn higher_is_worse(self) -> bool {
        self != Metric::Throughput
    }

    /// The resolution part of a standard error for `runs` runs: latencies are bucketed (1/128 of a
    /// power of two wide), so a percentile can only move in steps of up to 0.8 %, and replicates of
    /// two near-identical runs often all land on the same step. Each run's rounding is uniform over a
    /// bucket (sd = width/√12). A mean averages the rounding of many samples away.
    fn resolution(self, runs: usize) -> f64 {
        match self {
            Metric::Latency(_) => (1.0 / f64::from(SUB)) * (runs as f64 / 12.0).sqrt(),
            _ => 0.0,
        }
    }
}

/// The scale the statistics work on: the log for relative metrics (so that +100 % and −50 % are
/// symmetric, and an interval of a positive figure stays positive), the value itself for the error
/// rate.
pub fn scale(metric: Metric, v: f64) -> f64 {
    if metric.is_relative() {
        v.max(1e-9).ln()
    } else {
        v
    }
}

/// The inverse of [`scale`].
pub fn unscale_value(metric: Metric, v: f64) -> f64 {
    if metric.is_relative() { v.exp() } else { v }
}

/// The result of one comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// The confidence interval of the change, same units; NaN with too few samples.
    pub low: f64,
    /// Upper end of the interval.
    pub high: f64,
    /// The standard error on the scale of the statistics (log ratio, or percentage points / 100).
    pub se: f64,
    /// The part of `se` a longer run does not shrink (latency bucket resolution).
    pub resolution: f64,
    /// The normal quantile of the interval (Bonferroni over the report's comparisons).
    pub z: f64,
    /// The smallest change (in the worse direction, same units) this pair of runs could have detected.
    pub detectable: f64,
    /// The tolerance the verdict used, same units.
    pub tolerance: f64,
    /// The verdict.
    pub verdict: Verdict,
    /// The data each run holds for it (baseline, candidate).
    pub evidence: [Evidence; 2],
    /// Why there is no interval, when there is none.
    pub shortfall: Option<Shortfall>,
}

/// What a comparison shows, without a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The value went up beyond noise.
    Higher,
    /// The value went down beyond noise.
    Lower,
    /// Any change is smaller than the tolerance.
    WithinNoise,
    /// The runs cannot tell a change of the tolerance's size from noise.
    NotResolvable,
    /// A run holds too few samples or windows for an interval ([`shortfall`]).
    TooFewSamples,
}

impl Verdict {
    /// A short lower-case label.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Higher => "higher",
            Verdict::Lower => "lower",
            Verdict::WithinNoise => "within noise",
            Verdict::NotResolvable => "not resolvable",
            Verdict::TooFewSamples => "too few samples",
        }
    }
}

/// A comparison's answer against a limit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Judgement {
    /// Within, beyond or undecided.
    pub decision: Decision,
    /// The limit, in the change's units (0.1 = 10 % worse; 0.005 = 0.5 percentage points).
    pub limit: f64,
    /// Why it is undecided ("" otherwise).
    pub reason: String,
    /// About how long each run would have to be (its measured window, seconds) to decide it; `None`
    /// when decided, or when no length would.
    pub decide_s: Option<f64>,
    /// What would decide it, in words ("" when decided).
    pub decide: String,
}

impl Comparison {
    /// The interval on the statistics' scale.
    pub fn interval(&self) -> Interval {
        Interval {
            estimate: scale_change(self.metric, self.change),
            se: self.se,
            resolution: self.resolution,
            z: self.z,
        }
    }

    /// The three-way answer against `limit`: how much worse (in the change's units) the candidate
    /// may be. Too few samples make it undecided whatever the change.
    pub fn against(&self, limit: f64) -> Judgement {
        let seconds = self.evidence[0].seconds.max(self.evidence[1].seconds);
        if let Some(s) = &self.shortfall {
            return Judgement {
                decision: Decision::Undecided,
                limit,
                reason: s.text.clone(),
                decide_s: s.seconds_needed,
                decide: shortfall_words(s, false),
            };
        }
        if self.change.is_nan() || self.se.is_nan() {
            return Judgement {
                decision: Decision::Undecided,
                limit,
                reason: "no value in one of the runs".into(),
                decide_s: None,
                decide: String::new(),
            };
        }
        // The boundary on the statistics' scale: a throughput limit of 5 % is a fall to 95 %.
        let bound = if self.metric.higher_is_worse() {
            scale_change(self.metric, limit)
        } else if limit < 1.0 {
            scale_change(self.metric, -limit)
        } else {
            f64::NEG_INFINITY
        };
        let (decision, length) =
            self.interval()
                .against(bound, self.metric.higher_is_worse(), seconds);
        if decision != Decision::Undecided {
            return Judgement {
                decision,
                limit,
                reason: String::new(),
                decide_s: None,
                decide: String::new(),
            };
        }
        Judgement {
            decision,
            limit,
            reason: "the interval straddles the limit".into(),
            decide_s: match length {
                Some(Length::Seconds(s)) => Some(s),
                _ => None,
            },
            decide: length_words(length, "the change", false),
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

impl Totals {
    fn value(&self, metric: Metric) -> Option<f64> {
        match metric {
            Metric::Latency(q) => self.quantile(q),
            Metric::Mean => self.moments().map(|m| m.0),
            Metric::ErrorRate | Metric::ShareAbove => {
                (self.requests > 0).then(|| self.failures as f64 / self.requests as f64)
            }
            Metric::Throughput => (self.seconds > 0.0).then(|| self.requests as f64 / self.seconds),
        }
    }

    /// The variance of the metric's estimate (on the statistics' scale) if the requests were
    /// independent: the floor under the bootstrap's (see the module documentation).
    fn independent_variance(&self, metric: Metric) -> f64 {
        match metric {
            Metric::Latency(q) => {
                let n = self.latencies();
                if n == 0 {
                    return f64::INFINITY;
                }
                // Distribution-free: the rank of the q-quantile in n samples has a standard error of
                // √(n·q·(1−q)); the quantiles one such step either side span about two standard
                // errors of the percentile.
                let step = (q * (1.0 - q) / n as f64).sqrt();
                let low = self.quantile((q - step).max(0.0));
                let high = self.quantile((q + step).min(1.0));
                match (low, high) {
                    (Some(l), Some(h)) => ((h.ln() - l.ln()) / 2.0).powi(2),
                    _ => f64::INFINITY,
                }
            }
            Metric::Mean => match self.moments() {
                Some((mean, sd)) if mean > 0.0 => (sd / mean).powi(2) / self.latencies() as f64,
                _ => f64::INFINITY,
            },
            Metric::ErrorRate | Metric::ShareAbove => {
                let n = self.requests as f64 + 2.0;
                let p = (self.failures as f64 + 1.0) / n;
                p * (1.0 - p) / n
            }
            Metric::Throughput => {
                if self.requests == 0 {
                    f64::INFINITY
                } else {
                    1.0 / self.requests as f64
                }
            }
        }
    }
}

/// Draws one moving-block bootstrap replicate of each run, **paired in time**: every block is taken
/// at the same relative position of both runs (the same seconds when they are equally long).
///
/// Runs of one profile share their shape in time: a ramp, stages, a warm cache. Resampling each run
/// on its own would treat that shape as noise (a replicate that draws mostly ramp seconds has a far
/// lower throughput), which inflated the intervals of two identical open-model runs to ±40 % on
/// throughput. Drawing the same blocks from both keeps the shape in both replicates, so what varies
/// between replicates is what differs between the runs: noise, and any real change.
fn resample_pair(base: &Series, cand: &Series, rng: &mut Rng, tb: &mut Totals, tc: &mut Totals) {
    tb.clear();
    tc.clear();
    let (kb, kc) = (base.windows.len(), cand.windows.len());
    if kb == 0 || kc == 0 {
        return;
    }
    let k = kb.max(kc);
    let block = (k as f64).cbrt().round().max(1.0) as usize;
    let (bb, bc) = (block.min(kb), block.min(kc));
    let mut taken = 0;
    while taken < k {
        let u = rng.unit();
        let start_b = ((u * (kb - bb + 1) as f64) as usize).min(kb - bb);
        let start_c = ((u * (kc - bc + 1) as f64) as usize).min(kc - bc);
        let take = block.min(k - taken);
        for w in base.windows[start_b..].iter().take(bb.min(take)) {
            tb.add(w);
        }
        for w in cand.windows[start_c..].iter().take(bc.min(take)) {
            tc.add(w);
        }
        taken += block;
    }
}

/// Draws one moving-block bootstrap replicate of a single run into `t`: blocks of about the cube
/// root of the number of windows, from random positions, until the run's length is filled.
fn resample_one(series: &Series, rng: &mut Rng, t: &mut Totals) {
    t.clear();
    let k = series.windows.len();
    if k == 0 {
        return;
    }
    let block = (k as f64).cbrt().round().max(1.0) as usize;
    let mut taken = 0;
    while taken < k {
        let start = ((rng.unit() * (k - block + 1) as f64) as usize).min(k - block);
        for w in series.windows[start..].iter().take(block.min(k - taken)) {
            t.add(w);
        }
        taken += block;
    }
}

/// The change between two values of a metric, on the scale where the bootstrap is done (log ratio for
/// relative metrics, so that +100 % and −50 % are symmetric).
fn scaled_change(metric: Metric, base: f64, cand: f64) -> f64 {
    scale(metric, cand) - scale(metric, base)
}

/// A change in its reported units (0.2 = +20 %; 0.005 = +0.5 pp) on the statistics' scale.
pub fn scale_change(metric: Metric, change: f64) -> f64 {
    if metric.is_relative() {
        change.max(-1.0 + 1e-12).ln_1p()
    } else {
        change
    }
}

/// The inverse of [`scale_change`].
pub fn unscale_change(metric: Metric, v: f64) -> f64 {
    if metric.is_relative() { v.exp_m1() } else { v }
}

/// Compares one metric of two series. `tolerance` is relative for latency and throughput (0.1 =
/// 10 %) and absolute for the error rate (0.005 = 0.5 percentage points); it only labels the
/// verdict. Judge a limit with [`Comparison::against`].
pub fn compare(
    base: &Series,
    cand: &Series,
    metric: Metric,
    tolerance: f64,
    settings: &Settings,
) -> Comparison {
    let evidence = [Evidence::of(base), Evidence::of(cand)];
    let (base_totals, cand_totals) = (base.totals(), cand.totals());
    let b = base_totals.value(metric);
    let c = cand_totals.value(metric);
    let z = settings.z();
    let short = shortfall(
        metric,
        &[
            ("the baseline", evidence[0]),
            ("the candidate", evidence[1]),
        ],
        MIN_WINDOWS,
    );
    let mut out = Comparison {
        metric,
        baseline: b.unwrap_or(f64::NAN),
        candidate: c.unwrap_or(f64::NAN),
        change: f64::NAN,
        low: f64::NAN,
        high: f64::NAN,
        se: f64::NAN,
        resolution: metric.resolution(2),
        z,
        detectable: f64::NAN,
        tolerance,
        verdict: Verdict::TooFewSamples,
        evidence,
        shortfall: short,
    };
    let (Some(b), Some(c)) = (b, c) else {
        return out;
    };
    let estimate = scaled_change(metric, b, c);
    out.change = unscale_change(metric, estimate);
    if out.shortfall.is_some() {
        return out;
    }

    let mut rng = Rng::new(settings.seed, 0x0063_6f6d_7061_7265);
    let mut tb = Totals::new();
    let mut tc = Totals::new();
    let mut replicates = Vec::with_capacity(settings.replicates);
    for _ in 0..settings.replicates {
        resample_pair(base, cand, &mut rng, &mut tb, &mut tc);
        if let (Some(rb), Some(rc)) = (tb.value(metric), tc.value(metric)) {
            replicates.push(scaled_change(metric, rb, rc));
        }
    }
    let floor = (base_totals.independent_variance(metric)
        + cand_totals.independent_variance(metric))
    .sqrt();
    let se = robust_sd(&mut replicates).max(floor).hypot(out.resolution);
    out.se = se;
    out.low = unscale_change(metric, estimate - z * se);
    out.high = unscale_change(metric, estimate + z * se);
    out.detectable = unscale_change(metric, (z + normal_quantile(0.8)) * se);
    // The tolerance applies on the statistics' scale, so that swapping the runs mirrors the verdict:
    // a ratio within 10 % either way lies between 1/1.1 and 1.1.
    let band = scale_change(metric, tolerance);
    let (lo, hi) = (estimate - z * se, estimate + z * se);
    out.verdict = if lo > 0.0 {
        Verdict::Higher
    } else if hi < 0.0 {
        Verdict::Lower
    } else if lo > -band && hi < band {
        Verdict::WithinNoise
    } else {
        Verdict::NotResolvable
    };
    out
}

/// One run's figure with the standard error the bootstrap and the floors give it, for a threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// The figure from the bucketed latencies (within 0.8 % of the exact one).
    pub value: f64,
    /// The standard error on the statistics' scale; NaN with too few samples.
    pub se: f64,
    /// The part of `se` a longer run does not shrink.
    pub resolution: f64,
    /// The data the run holds for it.
    pub evidence: Evidence,
    /// Why there is no standard error, when there is none.
    pub shortfall: Option<Shortfall>,
}

/// Estimates one metric of one run: a moving-block bootstrap over its windows, with the same floors
/// as [`compare`]. `min_windows` is [`MIN_WINDOWS`], or the window's length for a `per` threshold
/// shorter than that.
pub fn estimate(
    series: &Series,
    metric: Metric,
    settings: &Settings,
    min_windows: usize,
) -> Estimate {
    let evidence = Evidence::of(series);
    let totals = series.totals();
    let mut out = Estimate {
        value: totals.value(metric).unwrap_or(f64::NAN),
        se: f64::NAN,
        resolution: metric.resolution(1),
        evidence,
        shortfall: shortfall(metric, &[("", evidence)], min_windows),
    };
    if out.shortfall.is_some() || out.value.is_nan() {
        return out;
    }
    let mut rng = Rng::new(settings.seed, 0x0065_7374_696d_6174);
    let mut t = Totals::new();
    let mut replicates = Vec::with_capacity(settings.replicates);
    for _ in 0..settings.replicates {
        resample_one(series, &mut rng, &mut t);
        if let Some(v) = t.value(metric) {
            replicates.push(scale(metric, v));
        }
    }
    let floor = totals.independent_variance(metric).sqrt();
    out.se = robust_sd(&mut replicates).max(floor).hypot(out.resolution);
    out
}

/// The spread of the replicates as a standard deviation estimated from their interquartile range
/// (IQR / 1.349 for a normal distribution): a few extreme replicates, such as those that happen to
/// draw a run's only stall several times, do not blow up every interval.
fn robust_sd(v: &mut [f64]) -> f64 {
    if v.len() < 8 {
        return f64::INFINITY;
    }
    v.sort_unstable_by(f64::total_cmp);
    let at = |q: f64| v[((q * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)];
    (at(0.75) - at(0.25)) / 1.349
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
mod tests;
