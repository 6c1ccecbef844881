//! `analyzer compare BASELINE CANDIDATE`: per request name, the change in latency percentiles, error
//! rate and throughput, each with a confidence interval. Metrics with a limit get a three-way answer
//! (within the limit, beyond it, or undecided, with the run length that would decide); the others are
//! described (higher, lower, within noise, not resolvable, too few samples). The statistics are in
//! [`crate::significance`]; the text, JSON and JUnit outputs in `output`.

mod limits;
mod output;

use std::collections::BTreeMap;
use std::path::PathBuf;

use polars::prelude::*;
use serde::Serialize;

pub use limits::{Limits, MetricKey};

use crate::error::{Error, Result};
use crate::load::{LoadOptions, LoadedRun, load_run};
use crate::significance::{
    self, Decision, Judgement, OnUndecided, Series, SeriesBuilder, Settings,
};

/// What `compare` was asked to do.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// The reference run.
    pub baseline: PathBuf,
    /// The run under test.
    pub candidate: PathBuf,
    /// Metrics and limits.
    pub limits: Limits,
    /// Warm-up dropped from both runs.
    pub skip: std::time::Duration,
    /// Bootstrap settings (the family size is set from the number of comparisons).
    pub settings: Settings,
    /// Where to write `compare.html`, `compare.md` and `compare.json`; the candidate's directory when
    /// `None`.
    pub out: Option<PathBuf>,
    /// Which of them to write.
    pub formats: Vec<crate::report::Format>,
    /// Write JUnit XML here (one test case per limit and request name).
    pub junit: Option<PathBuf>,
    /// What an undecided limit does to the verdict.
    pub on_undecided: OnUndecided,
    /// Compare sharded runs with missing shards (otherwise refused).
    pub allow_partial: bool,
}

/// One metric of one row.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// The metric.
    pub metric: MetricKey,
    /// The limit that fails the comparison when broken beyond noise.
    pub limit: Option<f64>,
    /// Values, change, interval and verdict.
    pub result: significance::Comparison,
    /// The answer against the limit, when there is one.
    pub judgement: Option<Judgement>,
}

impl Cell {
    /// The answer against the limit; `None` for a metric shown without one.
    pub fn decision(&self) -> Option<Decision> {
        self.judgement.as_ref().map(|j| j.decision)
    }
}

/// One request name (or all requests together).
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The request name; "All requests" for the total.
    pub name: String,
    /// Requests in the baseline and the candidate.
    pub requests: (u64, u64),
    /// One cell per metric, in the order of [`Limits::metrics`].
    pub cells: Vec<Cell>,
    /// Percentile-plot points (quantile, ms) of the baseline and the candidate, for the overlaid
    /// distribution charts; not in JSON (the report JSON has the exact percentiles).
    #[serde(skip)]
    pub distributions: [Vec<(f64, f64)>; 2],
}

/// Everything `compare` found.
#[derive(Debug, Clone, Serialize)]
pub struct CompareResult {
    /// "All requests" first, then every name present in both runs, by name.
    pub rows: Vec<Row>,
    /// Names only the baseline has.
    pub only_in_baseline: Vec<String>,
    /// Names only the candidate has.
    pub only_in_candidate: Vec<String>,
    /// The family-wise confidence of all intervals together.
    pub confidence: f64,
    /// How many comparisons share it.
    pub comparisons: usize,
    /// Bootstrap replicates per comparison.
    pub replicates: usize,
    /// What an undecided limit does to the verdict (`--undecided`).
    pub on_undecided: OnUndecided,
}

impl CompareResult {
    /// The cells with a limit whose answer is `decision`, with their rows. Metrics shown without a
    /// limit never count, however far they moved.
    pub fn decided(&self, decision: Decision) -> impl Iterator<Item = (&Row, &Cell)> {
        self.rows.iter().flat_map(move |r| {
            r.cells
                .iter()
                .filter(move |c| c.decision() == Some(decision))
                .map(move |c| (r, c))
        })
    }

    /// The cells whose limit is broken beyond noise.
    pub fn broken(&self) -> impl Iterator<Item = (&Row, &Cell)> {
        self.decided(Decision::Beyond)
    }

    /// The cells whose limit is undecided.
    pub fn undecided(&self) -> impl Iterator<Item = (&Row, &Cell)> {
        self.decided(Decision::Undecided)
    }

    /// How many limits have the answer `decision`.
    pub fn count(&self, decision: Decision) -> usize {
        self.decided(decision).count()
    }

    /// The verdict of the whole comparison: no limit beyond, and no limit undecided unless
    /// undecided limits pass ([`CompareResult::on_undecided`]).
    pub fn passed(&self) -> bool {
        self.rows
            .iter()
            .flat_map(|r| &r.cells)
            .filter_map(Cell::decision)
            .all(|d| !d.fails(self.on_undecided))
    }
}

/// The name of the total row.
pub const ALL_REQUESTS: &str = "All requests";

/// What `analyzer compare` did.
#[derive(Debug)]
pub struct CompareOutcome {
    /// The comparison.
    pub result: CompareResult,
    /// Files written; the HTML last.
    pub written: Vec<PathBuf>,
    /// Problems worth printing (damaged logs).
    pub warnings: Vec<String>,
    /// The two runs' labels (baseline, candidate).
    pub labels: (String, String),
}

/// Runs `analyzer compare`: loads both runs, refuses a run whose load generator was INVALID, compares,
/// and writes the reports.
pub fn run_compare(options: &CompareOptions) -> Result<CompareOutcome> {
    let skip_us = u64::try_from(options.skip.as_micros()).unwrap_or(u64::MAX);
    let mut warnings = Vec::new();
    let mut loaded = Vec::new();
    let mut analyses = Vec::new();
    for dir in [&options.baseline, &options.candidate] {
        let run = load_run(
            dir,
            LoadOptions {
                skip_us,
                exact_limit: None,
            },
        )?;
        warnings.extend(
            run.notes
                .iter()
                .filter(|n| n.severity == crate::load::Severity::Warning)
                .map(|n| format!("{}: {}: {}", dir.display(), n.file, n.message)),
        );
        crate::shards::refuse_partial(&run, dir, options.allow_partial)?;
        let analysis = crate::analysis::analyze(&run, options.skip.as_secs_f64())?;
        crate::health::refuse_invalid(dir, &analysis.health, "")?;
        loaded.push(run);
        analyses.push(analysis);
    }
    let mut result = compare_loaded(&loaded[0], &loaded[1], &options.limits, &options.settings)?;
    result.on_undecided = options.on_undecided;
    drop(loaded);

    let out_dir = options
        .out
        .clone()
        .unwrap_or_else(|| analyses[1].info.dir.clone());
    std::fs::create_dir_all(&out_dir).map_err(|e| Error::io(&out_dir, e))?;
    let view = crate::view::verdict::build(&analyses, &result)?;
    let mut written = Vec::new();
    let mut html = None;
    let mut formats = options.formats.clone();
    formats.sort();
    formats.dedup();
    use crate::report::Format;
    for format in formats {
        let (name, text) = match format {
            Format::Html => ("compare.html", crate::render::html::render(&view)?),
            Format::Markdown => ("compare.md", crate::render::markdown::render(&view)?),
            Format::Json => ("compare.json", output::json(&analyses, &result)),
            Format::Pdf => {
                let path = out_dir.join("compare.pdf");
                crate::pdf::print(&crate::render::html::render(&view)?, &path)?;
                written.push(path);
                continue;
            }
        };
        let path = out_dir.join(name);
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
        if format == Format::Html {
            html = Some(path);
        } else {
            written.push(path);
        }
    }
    if let Some(path) = &options.junit {
        std::fs::write(path, result.junit(&analyses[1].info.label))
            .map_err(|e| Error::io(path, e))?;
        written.push(path.clone());
    }
    written.extend(html);
    Ok(CompareOutcome {
        result,
        written,
        warnings,
        labels: (
            analyses[0].info.label.clone(),
            analyses[1].info.label.clone(),
        ),
    })
}

/// Compares two loaded runs.
pub fn compare_loaded(
    base: &LoadedRun,
    cand: &LoadedRun,
    limits: &Limits,
    settings: &Settings,
) -> Result<CompareResult> {
    for run in [base, cand] {
        if run.approx.is_some() {
            return Err(Error::Usage(format!(
                "{}: {} samples are more than fit in memory for the per-second windows `compare` resamples; \
                 compare a shorter stretch with --skip, or shorter runs",
                run.info.dir.display(),
                run.rows
            )));
        }
    }
    let base_series = series_by_name(base)?;
    let cand_series = series_by_name(cand)?;

    let mut names: Vec<&String> = base_series
        .keys()
        .filter(|n| cand_series.contains_key(*n))
        .collect();
    names.sort();
    let only_in_baseline = base_series
        .keys()
        .filter(|n| !cand_series.contains_key(*n))
        .cloned()
        .collect();
    let only_in_candidate = cand_series
        .keys()
        .filter(|n| !base_series.contains_key(*n))
        .cloned()
        .collect();

    let (base_total, cand_total) = (total(&base_series), total(&cand_series));
    let mut pairs: Vec<(String, &Series, &Series)> =
        vec![(ALL_REQUESTS.to_owned(), &base_total, &cand_total)];
    for name in names {
        pairs.push((name.clone(), &base_series[name], &cand_series[name]));
    }

    let comparisons = pairs.len() * limits.metrics.len();
    let settings = Settings {
        family: comparisons,
        ..settings.clone()
    };
    let rows = pairs
        .iter()
        .map(|(name, b, c)| Row {
            name: name.clone(),
            requests: (requests(b), requests(c)),
            distributions: [b.distribution(), c.distribution()],
            cells: limits
                .metrics
                .iter()
                .map(|&(metric, limit)| {
                    let result = significance::compare(
                        b,
                        c,
                        metric.metric(),
                        limit.unwrap_or(metric.default_tolerance()),
                        &settings,
                    );
                    Cell {
                        metric,
                        limit,
                        judgement: limit.map(|l| result.against(l)),
                        result,
                    }
                })
                .collect(),
        })
        .collect();
    Ok(CompareResult {
        rows,
        only_in_baseline,
        only_in_candidate,
        confidence: settings.confidence,
        comparisons,
        replicates: settings.replicates,
        on_undecided: OnUndecided::default(),
    })
}

fn requests(s: &Series) -> u64 {
    s.windows.iter().map(|w| w.requests).sum()
}

/// Per request name, one-second windows over the measured window: requests, failures and a latency
/// histogram of the corrected latency (what the report's tables show).
pub(crate) fn series_by_name(run: &LoadedRun) -> Result<BTreeMap<String, Series>> {
    let Some((start_us, end_us)) = run.window_us else {
        return Ok(BTreeMap::new());
    };
    let first_s = start_us / 1_000_000;
    let windows = (end_us.div_ceil(1_000_000).saturating_sub(first_s)).max(1) as usize;
    let mut builders: Vec<SeriesBuilder> = run
        .names
        .iter()
        .map(|_| SeriesBuilder::new(first_s * 1_000_000, 1_000_000))
        .collect();
    let columns = ["t_s", "name", "latency_us"].map(|c| u32_chunks(&run.samples, c));
    let [t, name, latency] = columns;
    let (t, name, latency) = (t?, name?, latency?);
    for ((t, name), latency) in t.iter().zip(&name).zip(&latency) {
        for ((&t, &n), &l) in t.iter().zip(name.iter()).zip(latency.iter()) {
            if let Some(b) = builders.get_mut(n as usize) {
                b.push(u64::from(t) * 1_000_000, l);
            }
        }
    }
    let f = ["t_s", "name"].map(|c| u32_chunks(&run.failures, c));
    let [ft, fname] = f;
    let (ft, fname) = (ft?, fname?);
    for (t, name) in ft.iter().zip(&fname) {
        for (&t, &n) in t.iter().zip(name.iter()) {
            if let Some(b) = builders.get_mut(n as usize) {
                b.fail(u64::from(t) * 1_000_000);
            }
        }
    }
    Ok(run
        .names
        .iter()
        .cloned()
        .zip(builders)
        .map(|(name, b)| (name, b.finish(windows)))
        .filter(|(_, s)| requests(s) > 0)
        .collect())
}

/// All names' windows added together.
pub(crate) fn total(series: &BTreeMap<String, Series>) -> Series {
    let len = series.values().map(|s| s.windows.len()).max().unwrap_or(0);
    let mut out = Series {
        windows: vec![significance::Window::default(); len],
    };
    for s in series.values() {
        for (o, w) in out.windows.iter_mut().zip(&s.windows) {
            o.add(w);
        }
    }
    out
}

/// The chunks of a `u32` column.
pub(crate) fn u32_chunks<'a>(frame: &'a DataFrame, column: &str) -> Result<Vec<&'a [u32]>> {
    if frame.height() == 0 {
        return Ok(Vec::new());
    }
    let c = frame.column(column)?.as_materialized_series().u32()?;
    Ok(c.downcast_iter().map(|a| a.values().as_slice()).collect())
}
