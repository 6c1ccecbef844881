//! The three-way answer against a limit, the least evidence an interval may rest on, and the run
//! length that would decide an undecided answer.
//!
//! # The answer
//!
//! With the change (or value) and its interval `[lo, hi]` oriented so that the limit is broken
//! upwards:
//!
//! - **beyond** when `lo > limit`: the whole interval breaks the limit.
//! - **within** when `hi < limit`: the whole interval keeps it.
//! - **undecided** when the interval straddles the limit, or when the data are too few to compute an
//!   interval at all (see below).
//!
//! # Minimum evidence
//!
//! The bootstrap learns how much a figure varies from the one-second windows it resamples, so a run
//! whose samples of a name sit in one or two windows gives replicates that are all the same, and an
//! interval that shrinks to a point: a login run ten times in the first second "regressed by
//! +31.4 % [+29.9 % … +32.8 %]". Every interval therefore needs, in each run:
//!
//! - at least [`MIN_WINDOWS`] windows holding samples of its name: the spread of a figure is
//!   estimated from them, and from fewer its own error is large (a standard deviation estimated from
//!   m independent pieces is off by about 1/√(2(m−1)): 24 % at 10, 50 % at 3);
//! - for a latency percentile, at least [`MIN_TAIL_SAMPLES`] samples above it, i.e. n·(1−q) ≥ 10
//!   (P99 needs 1,000 requests, P99.9 10,000). With fewer, the "P99" is one of the few largest
//!   values, not a percentile; the report marks such figures with † for the same reason.
//!
//! Below that, the answer is undecided, "too few samples", with the run length that would gather
//! them at this run's rate.
//!
//! # What run length would decide
//!
//! The standard error shrinks roughly with the square root of the number of windows (the bucket
//! resolution part does not shrink). An interval `e ± z·se` clears a limit at distance `d = |e − L|`
//! once `z·se' < d`; with `se'² = s²·K/K' + r²` (s the shrinking part, r the resolution) the run
//! needs `K' = K·s² / ((d/z)² − r²)` windows, if the change stays what it was. A change that sits on
//! the limit (d = 0, or within the resolution) is not decided by any length.

use serde::Serialize;

use super::Metric;

/// The least number of one-second windows holding samples that an interval may rest on.
pub const MIN_WINDOWS: usize = 10;

/// The least number of samples above a percentile for it to count as one (the report's † rule,
/// [`crate::stats::MIN_TAIL_SAMPLES`]).
pub const MIN_TAIL_SAMPLES: f64 = crate::stats::MIN_TAIL_SAMPLES;

/// The three-way answer against a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The whole interval keeps the limit.
    Within,
    /// The whole interval breaks the limit.
    Beyond,
    /// The interval straddles the limit, or the data are too few for an interval.
    Undecided,
    /// `analyzer check` only: the value could not be measured at all (a threshold on schedule lag in
    /// a run without interval records). It fails, whatever `--undecided` says.
    NotMeasured,
}

impl Decision {
    /// A short lower-case label.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Within => "within",
            Decision::Beyond => "beyond",
            Decision::Undecided => "undecided",
            Decision::NotMeasured => "not measured",
        }
    }

    /// Whether it fails a pipeline under `policy`.
    pub fn fails(self, policy: OnUndecided) -> bool {
        match self {
            Decision::Within => false,
            Decision::Beyond | Decision::NotMeasured => true,
            Decision::Undecided => policy == OnUndecided::Fail,
        }
    }
}

/// What an undecided answer does to the exit status (`--undecided`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnUndecided {
    /// Exit 0, with a warning naming each undecided limit and the run length that would decide it.
    #[default]
    Pass,
    /// Exit 1, as if the limit were broken.
    Fail,
}

impl OnUndecided {
    /// `pass` or `fail`, as on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            OnUndecided::Pass => "pass",
            OnUndecided::Fail => "fail",
        }
    }
}

/// How much data one run holds for one figure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Evidence {
    /// Requests of the name (or of all names) in the measured window.
    pub requests: u64,
    /// One-second windows holding at least one of them.
    pub windows: usize,
    /// The length of the measured window, seconds.
    pub seconds: f64,
}

impl Evidence {
    /// Counts a series' evidence.
    pub fn of(series: &super::Series) -> Evidence {
        Evidence {
            requests: series.requests(),
            windows: series.windows.iter().filter(|w| w.requests > 0).count(),
            seconds: series.windows.iter().map(|w| w.seconds).sum(),
        }
    }
}

/// Why an interval cannot be computed: a run holds too few samples or windows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Shortfall {
    /// The fewest requests of any run.
    pub requests: u64,
    /// The fewest windows holding samples of any run.
    pub windows: usize,
    /// Requests the metric needs.
    pub min_requests: u64,
    /// Windows it needs.
    pub min_windows: usize,
    /// How long each run would have to be, at its rate, to gather them; `None` when a run holds no
    /// sample at all (its rate says nothing).
    pub seconds_needed: Option<f64>,
    /// The whole reason in words, e.g. "too few samples: 10 requests in 1 window in the candidate;
    /// a P99 needs at least 1,000 requests in at least 10 one-second windows".
    pub text: String,
}

impl Metric {
    /// Requests a run needs for an interval of this metric: n·(1−q) ≥ 10 for a percentile, one per
    /// required window otherwise.
    pub fn min_requests(self) -> u64 {
        match self {
            Metric::Latency(q) => (MIN_TAIL_SAMPLES / (1.0 - q) - 1e-6).ceil().max(1.0) as u64,
            _ => MIN_WINDOWS as u64,
        }
    }

    /// The metric's name for sentences: "a P99", "an error rate".
    pub fn with_article(self) -> String {
        match self {
            Metric::Latency(q) => format!("a {}", percentile_label(q)),
            Metric::Mean => "a mean".into(),
            Metric::ErrorRate => "an error rate".into(),
            Metric::Throughput => "a throughput".into(),
            Metric::ShareAbove => "a share of requests above a latency".into(),
        }
    }
}

/// "P99", "P99.9", "P50".
pub fn percentile_label(q: f64) -> String {
    let p = q * 100.0;
    if (p - p.round()).abs() < 1e-9 {
        format!("P{}", p.round())
    } else {
        format!("P{}", (p * 10.0).round() / 10.0)
    }
}

/// Checks the minimum evidence of every run (named in `who`, e.g. "the baseline"; "" for a single
/// run). `min_windows` is [`MIN_WINDOWS`] except for a `per` window shorter than that.
pub fn shortfall(
    metric: Metric,
    runs: &[(&str, Evidence)],
    min_windows: usize,
) -> Option<Shortfall> {
    let min_requests = metric.min_requests();
    let short: Vec<&(&str, Evidence)> = runs
        .iter()
        .filter(|(_, e)| e.requests < min_requests || e.windows < min_windows)
        .collect();
    if short.is_empty() {
        return None;
    }
    let requests = runs.iter().map(|r| r.1.requests).min().unwrap_or(0);
    let windows = runs.iter().map(|r| r.1.windows).min().unwrap_or(0);
    // At a run's own rate, the length that gathers enough requests and enough windows with samples.
    let seconds_needed = short
        .iter()
        .map(|(_, e)| {
            if e.requests == 0 || e.windows == 0 || e.seconds <= 0.0 {
                return None;
            }
            let for_requests = e.seconds * min_requests as f64 / e.requests as f64;
            let for_windows = e.seconds * min_windows as f64 / e.windows as f64;
            Some(for_requests.max(for_windows).max(e.seconds))
        })
        .try_fold(0.0f64, |acc, s| s.map(|s| acc.max(s)));
    let has = |e: &Evidence| {
        format!(
            "{} {} in {} {}",
            crate::format::int(e.requests),
            if e.requests == 1 {
                "request"
            } else {
                "requests"
            },
            e.windows,
            if e.windows == 1 { "window" } else { "windows" }
        )
    };
    let found = short
        .iter()
        .map(|(who, e)| {
            if who.is_empty() {
                has(e)
            } else {
                format!("{} in {who}", has(e))
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let text = format!(
        "too few samples: {found}; {} needs at least {} requests in at least {min_windows} one-second windows",
        metric.with_article(),
        crate::format::int(min_requests)
    );
    Some(Shortfall {
        requests,
        windows,
        min_requests,
        min_windows,
        seconds_needed,
        text,
    })
}

/// An interval on the scale where the statistics are done (log ratio for relative metrics): the
/// estimate ± z standard errors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// The estimate.
    pub estimate: f64,
    /// Its standard error, including the resolution part.
    pub se: f64,
    /// The part of `se` that a longer run does not shrink (latency bucket resolution).
    pub resolution: f64,
    /// The normal quantile of the interval.
    pub z: f64,
}

/// How long a run would decide an undecided answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Length {
    /// About this many seconds (the measured window of each run), if the change stays the same.
    Seconds(f64),
    /// The estimate sits on the limit: no length decides it.
    OnTheLimit,
    /// The estimate is closer to the limit than the latency buckets resolve: no length decides it.
    WithinResolution,
}

impl Interval {
    /// The low end.
    pub fn low(&self) -> f64 {
        self.estimate - self.z * self.se
    }

    /// The high end.
    pub fn high(&self) -> f64 {
        self.estimate + self.z * self.se
    }

    /// The three-way answer against `bound` (same scale); `beyond_above` says which side breaks it.
    /// For an undecided answer, also the length of run that would decide it, given that this one
    /// measured `seconds`.
    pub fn against(
        &self,
        bound: f64,
        beyond_above: bool,
        seconds: f64,
    ) -> (Decision, Option<Length>) {
        let (lo, hi) = (self.low(), self.high());
        let (beyond, within) = if beyond_above {
            (lo > bound, hi < bound)
        } else {
            (hi < bound, lo > bound)
        };
        if beyond {
            return (Decision::Beyond, None);
        }
        if within {
            return (Decision::Within, None);
        }
        let d = (self.estimate - bound).abs();
        if !d.is_finite() || !self.se.is_finite() {
            return (Decision::Undecided, None);
        }
        if d == 0.0 {
            return (Decision::Undecided, Some(Length::OnTheLimit));
        }
        let shrinking = (self.se * self.se - self.resolution * self.resolution).max(0.0);
        let room = (d / self.z).powi(2) - self.resolution * self.resolution;
        if room <= 0.0 {
            return (Decision::Undecided, Some(Length::WithinResolution));
        }
        (
            Decision::Undecided,
            Some(Length::Seconds((seconds * shrinking / room).max(seconds))),
        )
    }
}

/// A length in plain words, rounded: "about 40 s", "about 4 min", "about 2.5 h", "about 3 days".
pub fn about(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "an unbounded time".into();
    }
    let round = |v: f64| {
        if v < 10.0 {
            let r = (v * 2.0).ceil() / 2.0;
            if r.fract() == 0.0 {
                format!("{r:.0}")
            } else {
                format!("{r:.1}")
            }
        } else {
            format!("{:.0}", v.ceil())
        }
    };
    if seconds < 90.0 {
        format!("about {} s", (seconds / 5.0).ceil() as u64 * 5)
    } else if seconds < 90.0 * 60.0 {
        format!("about {} min", round(seconds / 60.0))
    } else if seconds < 48.0 * 3600.0 {
        format!("about {} h", round(seconds / 3600.0))
    } else {
        format!("about {} days", round(seconds / 86_400.0))
    }
}

/// What would decide an undecided answer, in words. `subject` is what sits on the limit ("the
/// change", "the value"); `unit` is what to lengthen ("of this load" for a run, "windows of" for a
/// `per` threshold).
pub fn length_words(length: Option<Length>, subject: &str, per_window: bool) -> String {
    match length {
        Some(Length::Seconds(s)) if per_window => format!("windows of {} would decide", about(s)),
        Some(Length::Seconds(s)) => format!("{} of this load would decide", about(s)),
        Some(Length::OnTheLimit) => {
            format!("{subject} sits on the limit: no run length decides it")
        }
        Some(Length::WithinResolution) => format!(
            "{subject} is too close to the limit for the latency buckets (0.8 % wide) to tell: no run length decides it"
        ),
        None => "no run length can be estimated".into(),
    }
}

/// What would gather enough samples for a shortfall, in words.
pub fn shortfall_words(s: &Shortfall, per_window: bool) -> String {
    match s.seconds_needed {
        Some(t) if per_window => format!("windows of {} at this rate would hold enough", about(t)),
        Some(t) => format!("at least {} of this load would gather enough", about(t)),
        None => "a run holds no sample of it".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(estimate: f64, se: f64) -> Interval {
        Interval {
            estimate,
            se,
            resolution: 0.0,
            z: 2.0,
        }
    }

    #[test]
    fn an_interval_is_beyond_within_or_undecided() {
        assert_eq!(iv(0.3, 0.05).against(0.1, true, 60.0).0, Decision::Beyond);
        assert_eq!(iv(0.0, 0.02).against(0.1, true, 60.0).0, Decision::Within);
        assert_eq!(
            iv(0.15, 0.05).against(0.1, true, 60.0).0,
            Decision::Undecided
        );
        // A lower bound (throughput may not fall by more than 5 %): below it is beyond.
        assert_eq!(
            iv(-0.3, 0.05).against(-0.05, false, 60.0).0,
            Decision::Beyond
        );
        assert_eq!(
            iv(0.0, 0.01).against(-0.05, false, 60.0).0,
            Decision::Within
        );
    }

    #[test]
    fn the_length_that_decides_grows_with_the_square_of_the_closeness() {
        // z·se = 0.1 and the change is 0.05 from the limit: the standard error must halve, which
        // takes four times the windows.
        let (d, len) = iv(0.15, 0.05).against(0.1, true, 60.0);
        assert_eq!(d, Decision::Undecided);
        let Some(Length::Seconds(s)) = len else {
            panic!("{len:?}")
        };
        assert!((s - 240.0).abs() < 1e-6, "{s}");
        let (_, len) = iv(0.1, 0.05).against(0.1, true, 60.0);
        assert_eq!(len, Some(Length::OnTheLimit));
        let coarse = Interval {
            resolution: 0.004,
            ..iv(0.105, 0.05)
        };
        assert_eq!(
            coarse.against(0.1, true, 60.0).1,
            Some(Length::WithinResolution)
        );
    }

    #[test]
    fn a_percentile_needs_its_tail_and_ten_windows() {
        assert_eq!(Metric::Latency(0.99).min_requests(), 1_000);
        assert_eq!(Metric::Latency(0.999).min_requests(), 10_000);
        assert_eq!(Metric::Latency(0.5).min_requests(), 20);
        assert_eq!(Metric::ErrorRate.min_requests(), MIN_WINDOWS as u64);
        let login = Evidence {
            requests: 10,
            windows: 1,
            seconds: 60.0,
        };
        let plenty = Evidence {
            requests: 60_000,
            windows: 60,
            seconds: 60.0,
        };
        let s = shortfall(
            Metric::Latency(0.99),
            &[("the baseline", plenty), ("the candidate", login)],
            MIN_WINDOWS,
        )
        .expect("10 samples cannot carry a P99");
        assert_eq!((s.requests, s.windows), (10, 1));
        assert!(
            s.text
                .contains("10 requests in 1 window in the candidate; a P99 needs at least 1,000"),
            "{}",
            s.text
        );
        // 10 requests a minute: 1,000 take 100 minutes.
        assert_eq!(s.seconds_needed, Some(6_000.0));
        assert!(shortfall(Metric::Latency(0.99), &[("", plenty)], MIN_WINDOWS).is_none());
        let spread = Evidence {
            requests: 5_000,
            windows: 5,
            seconds: 5.0,
        };
        let s = shortfall(Metric::Latency(0.5), &[("", spread)], MIN_WINDOWS).unwrap();
        assert_eq!(s.seconds_needed, Some(10.0), "five windows short: {s:?}");
    }

    #[test]
    fn lengths_read_plainly() {
        assert_eq!(about(12.0), "about 15 s");
        assert_eq!(about(240.0), "about 4 min");
        assert_eq!(about(6_000.0), "about 2 h");
        assert_eq!(about(40.0 * 3600.0), "about 40 h");
        assert_eq!(about(5.0 * 86_400.0), "about 5 days");
        assert_eq!(percentile_label(0.99), "P99");
        assert_eq!(percentile_label(0.999), "P99.9");
    }
}
