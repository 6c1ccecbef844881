//! One run's complete analysis: what every output format renders.

use hdrhistogram::Histogram;

use crate::error::Result;
use crate::failures::{Failures, failures};
use crate::health::{Health, assess};
use crate::load::{LoadedRun, QualityNote, RunInfo, Severity};
use crate::stats::{Summary, summaries, window_s};
use crate::timeseries::{TimeSeries, timeseries};

/// How the percentiles of a run were computed, when all samples fit in memory.
pub const METHOD_EXACT: &str = "exact (nearest rank)";
/// The same, for runs aggregated into histograms.
pub const METHOD_APPROX: &str = "approximate (nearest rank over HdrHistograms with 3 significant digits: each \
     within 0.1% of the exact value; per-second percentiles within 1%)";

/// Everything a report shows about one run.
#[derive(Debug, Clone)]
pub struct RunAnalysis {
    /// Manifest facts.
    pub info: RunInfo,
    /// All requests together.
    pub total: Summary,
    /// One summary per request name, sorted by name.
    pub endpoints: Vec<Summary>,
    /// Per-second series.
    pub timeseries: TimeSeries,
    /// The generator's health and the verdict on the run.
    pub health: Health,
    /// The failure breakdown.
    pub failures: Failures,
    /// Where each request's time went: connect, TLS, waiting and receiving per name.
    pub phases: crate::phases::Phases,
    /// The corrected latency distribution as (quantile, ms) points for the plot, within about 1%
    /// (bucket midpoints; the tables are exact).
    pub distribution: Vec<(f64, f64)>,
    /// The same for uncorrected latency.
    pub distribution_uncorrected: Vec<(f64, f64)>,
    /// Data-quality notes.
    pub notes: Vec<QualityNote>,
    /// The measured window, s.
    pub window_s: f64,
    /// The warm-up dropped by `--skip`, s.
    pub skip_s: f64,
    /// Samples dropped as warm-up.
    pub skipped: u64,
    /// How percentiles were computed ([`METHOD_EXACT`]).
    pub method: String,
    /// The shards of a run made by several engines, each judged; `None` for one engine's run.
    pub shards: Option<crate::shards::ShardsAnalysis>,
    /// Per user kind, per task and per tag figures.
    pub tasks: crate::tasks::TaskAnalysis,
    /// Changes of the load made while the run went (steering from the live dashboard), in time order.
    pub load_changes: Vec<formats::LoadChange>,
}

/// Analyzes a loaded run.
pub fn analyze(run: &LoadedRun, skip_s: f64) -> Result<RunAnalysis> {
    let clock = crate::timing::Clock::start();
    let summaries = summaries(run)?;
    clock.lap("summaries");
    let first_s =
        (skip_s.floor() as u32).max(run.window_us.map_or(0, |w| (w.0 / 1_000_000) as u32));
    let timeseries = timeseries(run, first_s)?;
    clock.lap("time series");
    let failures = failures(run, &timeseries.t_s)?;
    clock.lap("failures");
    let phases = crate::phases::phases(run)?;
    clock.lap("phases");
    let mut health = assess(&run.intervals, &timeseries);
    let mut shards = None;
    if let Some(set) = &run.shards {
        let (combined, analysis) = crate::shards::assess(run, set, &timeseries, health)?;
        health = combined;
        shards = Some(analysis);
        clock.lap("shards");
    }
    let mut notes = run.notes.clone();
    if let Some(t) = timeseries.cut_at_s {
        notes.push(QualityNote {
            severity: Severity::Warning,
            file: "(all logs)".into(),
            message: format!(
                "some samples start more than a week after the first; the time series stop at second {t} \
                 (the tables include every sample)"
            ),
        });
    }
    if let Some(end) = timeseries.partial_end.filter(|e| e.samples_left_out > 0) {
        notes.push(QualityNote {
            severity: Severity::Info,
            file: "(all logs)".into(),
            message: format!(
                "the run ended {} into a second (interrupted, or stopped early): the {} requests meant to start in \
                 that partial second are left out of the per-second charts and the generator's health, and counted \
                 in every table",
                crate::format::duration_s(end.duration_s),
                crate::format::int(end.samples_left_out)
            ),
        });
    }
    if run.approx.is_some() {
        notes.push(QualityNote {
            severity: Severity::Info,
            file: "(all logs)".into(),
            message: format!(
                "{} samples are more than the {} that fit in memory for exact percentiles, so percentiles \
                 come from HdrHistograms with three significant digits (each within 0.1% of the exact \
                 value; per-second percentiles within 1%). Counts, rates, failures, min, max, mean and \
                 standard deviation are exact.",
                crate::format::int(run.rows),
                crate::format::int(run.exact_limit)
            ),
        });
    }
    Ok(RunAnalysis {
        info: run.info.clone(),
        total: summaries.total,
        endpoints: summaries.endpoints,
        failures,
        phases,
        health,
        distribution: summaries.distribution,
        distribution_uncorrected: summaries.distribution_uncorrected,
        timeseries,
        notes,
        window_s: window_s(run),
        skip_s,
        skipped: run.skipped,
        method: if run.approx.is_some() {
            METHOD_APPROX.into()
        } else {
            METHOD_EXACT.into()
        },
        shards,
        tasks: crate::tasks::analyze(&run.tasks),
        load_changes: run.load_changes.clone(),
    })
}

/// Points for an HdrHistogram-style percentile plot: quantiles 1 − 10^(−k/20), as far as the sample
/// count reaches, then the maximum.
pub fn distribution(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let n = h.len();
    if n == 0 {
        return Vec::new();
    }
    let mut points = Vec::new();
    let top = 1.0 - 1.0 / n as f64;
    for k in 0.. {
        let q = 1.0 - 10f64.powf(-f64::from(k) / 20.0);
        if q > top || k > 200 {
            break;
        }
        points.push((q, h.value_at_quantile(q) as f64 / 1000.0));
    }
    points.push((
        top.max(points.last().map_or(0.0, |p| p.0)),
        h.max() as f64 / 1000.0,
    ));
    points
}
