//! `analyzer check RUN_DIR`: judges a run against thresholds ([`crate::slo`]) and says, for each, what
//! was measured and whether it holds: PASS, FAIL or UNDECIDED. Renders the outcome as text, JUnit XML
//! (one test case per threshold), Markdown for a CI step summary and JSON (`output`).
//!
//! Whole-run values are the report's exact figures ([`crate::stats`]). Percentiles, the mean and the
//! error rate are estimates of what the service does under this load, so each gets a
//! confidence interval from the moving-block bootstrap over the run's one-second windows
//! ([`crate::significance::estimate`], 99 % family-wise over all intervals of the check), and a
//! three-way answer: PASS when the whole interval keeps the threshold, FAIL when the whole interval
//! breaks it, UNDECIDED when it straddles the threshold or the run holds too few samples for an
//! interval. `max`, `rps` and `lag_p99` are exact for the run (a count, a maximum, the engine's own
//! records) and are judged as points.
//!
//! A `per N s` threshold cuts the measured window into consecutive N-second windows from its start,
//! judges every full one (a partial window at the end would judge a handful of requests), each with
//! its own interval over its N seconds: FAIL when any window is beyond, PASS when every window is
//! within, UNDECIDED otherwise; the worst window is reported. Schedule lag is recorded by the engine
//! per core and second, not per request, so `lag_p99` is the highest per-second P99 of the worst core:
//! an upper bound of the run's P99 (if at most 1 % of each second's lags exceed a value, at most 1 %
//! of all of them do).

mod judge;
mod measure;
mod output;

use std::path::PathBuf;

use serde::Serialize;

use judge::judge;
use measure::{Measured, measure};
pub use output::{
    append_summary, append_summary_refused, write_json, write_junit, write_junit_refused,
    xml_escape,
};

use crate::analysis::analyze;
use crate::error::{Error, Result};
use crate::load::{LoadOptions, load_run};
use crate::significance::{Decision, Metric, OnUndecided, Settings};
use crate::slo::{self, ALL, Measure, Threshold};

/// What `check` was asked to do.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// The run directory.
    pub run: PathBuf,
    /// An SLO file merged over the profile's thresholds.
    pub slo: Option<PathBuf>,
    /// Warm-up to leave out.
    pub skip: std::time::Duration,
    /// What an undecided threshold does to the verdict.
    pub on_undecided: OnUndecided,
    /// Seed of the bootstrap resampling.
    pub seed: u64,
    /// Check a sharded run with missing shards (otherwise refused).
    pub allow_partial: bool,
    /// Judge a run whose load generator health is INVALID (otherwise refused).
    pub allow_invalid: bool,
}

/// How a threshold was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// With a confidence interval.
    Interval,
    /// As an exact value (`max`, `lag_p99`, or a run too large for per-second windows).
    Point,
}

/// How the windows of a `per` threshold came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WindowCounts {
    /// Full windows with samples, all judged.
    pub judged: usize,
    /// Of those, beyond the threshold.
    pub beyond: usize,
    /// Of those, undecided.
    pub undecided: usize,
}

/// One threshold's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Judged {
    /// The threshold.
    pub threshold: Threshold,
    /// The measured value (the reported window's for `per` thresholds); `None` when not measured.
    pub measured: Option<f64>,
    /// The low end of its confidence interval, when judged with one.
    pub low: Option<f64>,
    /// The high end.
    pub high: Option<f64>,
    /// For a percentile judged with an interval: the share of requests at or above its latency,
    /// which is what the interval is about (`low` and `high` are then `None`).
    pub share: Option<Share>,
    /// With an interval or as a point.
    pub method: Method,
    /// Within (PASS), beyond (FAIL), undecided, or not measured (FAIL).
    pub decision: Decision,
    /// The measured value and its context, or why there is none, in words.
    pub detail: String,
    /// Why it is undecided ("" otherwise).
    pub reason: String,
    /// About how long a run (or, for `per` thresholds, a window) would decide it, seconds.
    pub decide_s: Option<f64>,
    /// What would decide it, in words ("" when decided).
    pub decide: String,
    /// For `per` thresholds: how the windows came out.
    pub windows: Option<WindowCounts>,
}

/// Everything `check` found.
#[derive(Debug, Clone, Serialize)]
pub struct CheckOutcome {
    /// The run's label.
    pub run: String,
    /// One entry per threshold, in the order written (profile keys first).
    pub results: Vec<Judged>,
    /// Problems worth printing (damaged logs, generator health).
    pub warnings: Vec<String>,
    /// What an undecided threshold does to the verdict.
    pub on_undecided: OnUndecided,
    /// The family-wise confidence of all intervals together.
    pub confidence: f64,
    /// How many intervals share it (every whole-run interval and every judged window).
    pub intervals: usize,
}

impl CheckOutcome {
    /// Whether every threshold passed (and there was at least one); an undecided one passes only
    /// under `--undecided pass`.
    pub fn passed(&self) -> bool {
        !self.results.is_empty()
            && self
                .results
                .iter()
                .all(|r| !r.decision.fails(self.on_undecided))
    }

    /// How many thresholds fail the check.
    pub fn failures(&self) -> usize {
        self.results
            .iter()
            .filter(|r| r.decision.fails(self.on_undecided))
            .count()
    }

    /// How many thresholds are undecided.
    pub fn undecided(&self) -> usize {
        self.count(Decision::Undecided)
    }

    /// How many thresholds have the answer `decision`.
    pub fn count(&self, decision: Decision) -> usize {
        self.results
            .iter()
            .filter(|r| r.decision == decision)
            .count()
    }
}

impl Measure {
    /// What the statistics estimate for a measure judged with an interval; `None` for the exact
    /// ones. A percentile threshold is judged by the share of requests at or above its latency
    /// ([`Share`]), the mean and the error rate by themselves.
    pub fn metric(self) -> Option<Metric> {
        match self {
            Measure::Percentile(_) => Some(Metric::ShareAbove),
            Measure::Mean => Some(Metric::Mean),
            Measure::ErrorRate => Some(Metric::ErrorRate),
            // Throughput is a count over the measured window, exact for the run. Its variation from
            // second to second is mostly the load's shape (a ramp, stages), which resampling one
            // run's seconds cannot tell from noise (compare pairs two runs in time for that reason),
            // so an interval would mostly measure the profile.
            Measure::Rps | Measure::Max | Measure::LagP99 => None,
        }
    }
}

/// How a percentile threshold was judged: the share of requests at or above its latency against
/// the share the percentile allows. `P99 < 200ms` holds exactly when at most 1 % of requests took
/// 200 ms or more (with nearest-rank percentiles the two statements agree for every n), and that
/// share is a proportion, decided soundly from any number of requests: 10 requests over 200 ms out
/// of 10 break it; 0 out of 30 do not prove it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Share {
    /// The share of requests counted (at or above the latency for `<` and `>=`, above it for `<=`
    /// and `>`).
    pub value: f64,
    /// Its interval, when there is one.
    pub low: Option<f64>,
    /// High end.
    pub high: Option<f64>,
    /// The share the percentile allows: 1 − q.
    pub allowed: f64,
    /// Whether requests exactly at the latency count.
    pub inclusive: bool,
}

/// Runs `analyzer check`: reads the thresholds (profile, then `--slo`), loads and analyzes the run,
/// and judges every threshold. Bad thresholds and unknown request names are [`Error::Slo`] and
/// [`Error::Usage`], before anything is measured.
pub fn check(options: &CheckOptions) -> Result<CheckOutcome> {
    // A sharded run's shards all ran the same profile (the merge refuses them otherwise).
    let profile = crate::shards::profile_of(&options.run)?;
    let manifest_path = options.run.join(formats::manifest::MANIFEST_FILE);
    let origin = if manifest_path.exists() {
        format!("the profile in {}", manifest_path.display())
    } else {
        format!("the profile of the shards in {}", options.run.display())
    };
    let from_profile = slo::from_profile(&origin, &profile)?;
    let from_file = match &options.slo {
        Some(path) => slo::read_file(path)?,
        None => Vec::new(),
    };
    if from_profile.is_empty() && from_file.is_empty() {
        return Err(Error::Usage(format!(
            "no thresholds: the profile of {} has no `thresholds` field and no --slo file was given; \
             write one, e.g. (thresholds: {{\"*\": [\"p99 < 200ms\", \"error_rate < 1%\"]}})",
            options.run.display()
        )));
    }
    let thresholds: Vec<Threshold> = slo::merge(from_profile, from_file)
        .into_iter()
        .flat_map(|(_, list)| list)
        .collect();

    let skip_us = u64::try_from(options.skip.as_micros()).unwrap_or(u64::MAX);
    let run = load_run(
        &options.run,
        LoadOptions {
            skip_us,
            exact_limit: None,
        },
    )?;
    crate::shards::refuse_partial(&run, &options.run, options.allow_partial)?;
    let analysis = analyze(&run, options.skip.as_secs_f64())?;
    if !options.allow_invalid {
        crate::health::refuse_invalid(
            &options.run,
            &analysis.health,
            "; or judge it anyway with --allow-invalid",
        )?;
    }
    let names: Vec<&str> = analysis.endpoints.iter().map(|s| s.name.as_str()).collect();
    for t in &thresholds {
        if t.key != ALL && !names.contains(&t.key.as_str()) {
            return Err(Error::Usage(format!(
                "{}: request name {:?} is not in {}; the names are: \"*\" (all requests), {}",
                t.origin,
                t.key,
                options.run.display(),
                names
                    .iter()
                    .map(|n| format!("{n:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let mut warnings: Vec<String> = run
        .notes
        .iter()
        .filter(|n| n.severity == crate::load::Severity::Warning)
        .map(|n| format!("{}: {}", n.file, n.message))
        .collect();
    if analysis.health.verdict != crate::health::Verdict::Ok {
        warnings.push(format!(
            "the load generator's health is {}: {}",
            analysis.health.verdict.as_str(),
            analysis.health.reasons.join("; ")
        ));
    }
    let intervals_wanted = thresholds.iter().any(|t| t.measure.metric().is_some());
    if intervals_wanted && run.approx.is_some() {
        warnings.push(format!(
            "{} samples are more than fit in memory for per-second intervals: percentiles, mean and \
             error rate are judged as points (check a shorter stretch with --skip for intervals)",
            crate::format::int(run.rows)
        ));
    }
    // Percentile thresholds count their shares from the raw columns; only the mean and the error
    // rate resample the per-name latency series.
    let needs_series = thresholds
        .iter()
        .any(|t| matches!(t.measure, Measure::Mean | Measure::ErrorRate));
    let series = if needs_series && run.approx.is_none() {
        let by_name = crate::compare::series_by_name(&run)?;
        let total = crate::compare::total(&by_name);
        Some((by_name, total))
    } else {
        None
    };
    let measured = thresholds
        .iter()
        .map(|t| measure(&run, &analysis, series.as_ref(), t, options))
        .collect::<Result<Vec<_>>>()?;
    let intervals: usize = measured.iter().map(Measured::intervals).sum();
    let settings = Settings {
        family: intervals,
        seed: options.seed,
        ..Settings::default()
    };
    let z = settings.z();
    let results = thresholds
        .into_iter()
        .zip(measured)
        .map(|(t, m)| judge(t, m, z))
        .collect();
    Ok(CheckOutcome {
        run: analysis.info.label.clone(),
        results,
        warnings,
        on_undecided: options.on_undecided,
        confidence: settings.confidence,
        intervals,
    })
}
