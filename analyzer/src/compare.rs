//! `analyzer compare BASELINE CANDIDATE`: per request name, the change in latency percentiles, error
//! rate and throughput, each with a confidence interval and a verdict: regressed, improved, within
//! noise, or not resolvable at this run length. The statistics are in [`crate::significance`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use polars::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::load::{LoadOptions, LoadedRun, load_run};
use crate::significance::{self, Metric, Series, SeriesBuilder, Settings, Verdict};

/// A metric `compare` can judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKey {
    /// Median corrected latency.
    P50,
    /// 75th percentile.
    P75,
    /// 90th percentile.
    P90,
    /// 95th percentile.
    P95,
    /// 99th percentile.
    P99,
    /// 99.9th percentile.
    P999,
    /// Failures per request.
    ErrorRate,
    /// Requests per second.
    Throughput,
}

impl MetricKey {
    /// Every key, in display order.
    pub const ALL: [MetricKey; 8] = [
        MetricKey::P50,
        MetricKey::P75,
        MetricKey::P90,
        MetricKey::P95,
        MetricKey::P99,
        MetricKey::P999,
        MetricKey::ErrorRate,
        MetricKey::Throughput,
    ];

    /// The name used in `--max-regression` and in JSON.
    pub fn key(self) -> &'static str {
        match self {
            MetricKey::P50 => "p50",
            MetricKey::P75 => "p75",
            MetricKey::P90 => "p90",
            MetricKey::P95 => "p95",
            MetricKey::P99 => "p99",
            MetricKey::P999 => "p999",
            MetricKey::ErrorRate => "error_rate",
            MetricKey::Throughput => "throughput",
        }
    }

    /// The heading used in tables.
    pub fn label(self) -> &'static str {
        match self {
            MetricKey::P50 => "P50",
            MetricKey::P75 => "P75",
            MetricKey::P90 => "P90",
            MetricKey::P95 => "P95",
            MetricKey::P99 => "P99",
            MetricKey::P999 => "P99.9",
            MetricKey::ErrorRate => "error rate",
            MetricKey::Throughput => "throughput",
        }
    }

    fn parse(s: &str) -> Option<MetricKey> {
        let s = s.trim().to_ascii_lowercase();
        let s = match s.as_str() {
            "p99.9" => "p999",
            "rps" | "requests_per_second" => "throughput",
            "errors" | "error-rate" | "failure_rate" => "error_rate",
            other => other,
        };
        MetricKey::ALL.into_iter().find(|k| k.key() == s)
    }

    /// What significance compares.
    pub fn metric(self) -> Metric {
        match self {
            MetricKey::P50 => Metric::Latency(0.50),
            MetricKey::P75 => Metric::Latency(0.75),
            MetricKey::P90 => Metric::Latency(0.90),
            MetricKey::P95 => Metric::Latency(0.95),
            MetricKey::P99 => Metric::Latency(0.99),
            MetricKey::P999 => Metric::Latency(0.999),
            MetricKey::ErrorRate => Metric::ErrorRate,
            MetricKey::Throughput => Metric::Throughput,
        }
    }

    /// Whether the change is a difference of rates (percentage points) rather than a ratio.
    pub fn is_error_rate(self) -> bool {
        self == MetricKey::ErrorRate
    }

    /// The tolerance used for the verdict when no limit is given: 10 % for latency and throughput,
    /// 0.5 percentage points for the error rate.
    pub fn default_tolerance(self) -> f64 {
        if self == MetricKey::ErrorRate {
            0.005
        } else {
            0.10
        }
    }
}

/// Which metrics to compare, and the limits whose breach (beyond noise) fails the comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// (metric, limit) in display order; `None` means shown with its default tolerance but never fails.
    pub metrics: Vec<(MetricKey, Option<f64>)>,
}

impl Default for Limits {
    /// P50, P90, P99, error rate and throughput; P99 may not regress by more than 10 % and the error
    /// rate by more than 0.5 percentage points.
    fn default() -> Self {
        Limits {
            metrics: vec![
                (MetricKey::P50, None),
                (MetricKey::P90, None),
                (MetricKey::P99, Some(0.10)),
                (MetricKey::ErrorRate, Some(0.005)),
                (MetricKey::Throughput, None),
            ],
        }
    }
}

impl Limits {
    /// Parses `--max-regression`, e.g. `p99=10%,error_rate=0.5pp,throughput=5%`. The metrics named
    /// become the only limits; P50, P90, P99, error rate and throughput are shown regardless.
    pub fn parse(text: &str) -> Result<Limits> {
        let mut limits: BTreeMap<MetricKey, f64> = BTreeMap::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let bad = |why: &str| {
                Error::Usage(format!(
                    "--max-regression: `{part}`: {why}; write e.g. `p99=10%,error_rate=0.5pp` (metrics: {})",
                    MetricKey::ALL.map(MetricKey::key).join(", ")
                ))
            };
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| bad("expected metric=limit"))?;
            let key = MetricKey::parse(key).ok_or_else(|| bad("unknown metric"))?;
            let value = value.trim();
            let limit = if key == MetricKey::ErrorRate {
                let number = value
                    .strip_suffix("pp")
                    .or_else(|| value.strip_suffix('%'))
                    .ok_or_else(|| {
                        bad("give the error rate's limit in percentage points, e.g. 0.5pp")
                    })?;
                parse_number(number).ok_or_else(|| bad("not a number"))? / 100.0
            } else {
                let number = value
                    .strip_suffix('%')
                    .ok_or_else(|| bad("give the limit in percent, e.g. 10%"))?;
                parse_number(number).ok_or_else(|| bad("not a number"))? / 100.0
            };
            if !(limit >= 0.0 && limit.is_finite()) {
                return Err(bad("a limit is a non-negative number"));
            }
            limits.insert(key, limit);
        }
        if limits.is_empty() {
            return Err(Error::Usage(
                "--max-regression: no limit given; write e.g. `p99=10%`".into(),
            ));
        }
        let mut shown: Vec<MetricKey> = vec![
            MetricKey::P50,
            MetricKey::P90,
            MetricKey::P99,
            MetricKey::ErrorRate,
            MetricKey::Throughput,
        ];
        shown.extend(limits.keys().copied());
        shown.sort();
        shown.dedup();
        Ok(Limits {
            metrics: shown
                .into_iter()
                .map(|k| (k, limits.get(&k).copied()))
                .collect(),
        })
    }
}

fn parse_number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

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
}

impl CompareResult {
    /// The cells whose limit is broken beyond noise. Metrics shown without a limit never count,
    /// however far they moved: their tolerance only labels the verdict.
    pub fn broken(&self) -> impl Iterator<Item = (&Row, &Cell)> {
        self.rows.iter().flat_map(|r| {
            r.cells
                .iter()
                .filter(|c| c.limit.is_some() && c.result.breaks_limit)
                .map(move |c| (r, c))
        })
    }

    /// How many cells have a verdict.
    pub fn tally(&self, verdict: Verdict) -> usize {
        self.rows
            .iter()
            .flat_map(|r| &r.cells)
            .filter(|c| c.result.verdict == verdict)
            .count()
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
        if analysis.health.verdict == crate::health::Verdict::Invalid {
            return Err(Error::Usage(format!(
                "{}: the load generator's health is INVALID ({}), so its numbers describe another test; \
                 rerun it with fewer users or a lower rate per core, or on a bigger load generator",
                dir.display(),
                analysis.health.reasons.join("; ")
            )));
        }
        loaded.push(run);
        analyses.push(analysis);
    }
    let result = compare_loaded(&loaded[0], &loaded[1], &options.limits, &options.settings)?;
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
            Format::Json => ("compare.json", json(&analyses, &result)),
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

/// `compare.json`: `{"schema": 1, "baseline": …, "candidate": …, "comparisons": …}` (see
/// docs/ci.md).
fn json(runs: &[crate::analysis::RunAnalysis], result: &CompareResult) -> String {
    #[derive(Serialize)]
    struct RunRef<'a> {
        id: &'a str,
        label: &'a str,
        dir: String,
        health: &'a crate::health::Health,
    }
    #[derive(Serialize)]
    struct Doc<'a> {
        schema: u32,
        baseline: RunRef<'a>,
        candidate: RunRef<'a>,
        passed: bool,
        #[serde(flatten)]
        result: &'a CompareResult,
    }
    fn run(r: &crate::analysis::RunAnalysis) -> RunRef<'_> {
        RunRef {
            id: &r.info.id,
            label: &r.info.label,
            dir: r.info.dir.display().to_string(),
            health: &r.health,
        }
    }
    let doc = Doc {
        schema: 1,
        baseline: run(&runs[0]),
        candidate: run(&runs[1]),
        passed: result.broken().next().is_none(),
        result,
    };
    serde_json::to_string_pretty(&doc).expect("the comparison serializes")
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
                .map(|&(metric, limit)| Cell {
                    metric,
                    limit,
                    result: significance::compare(
                        b,
                        c,
                        metric.metric(),
                        limit.unwrap_or(metric.default_tolerance()),
                        &settings,
                    ),
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
    })
}

fn requests(s: &Series) -> u64 {
    s.windows.iter().map(|w| w.requests).sum()
}

/// Per request name, one-second windows over the measured window: requests, failures and a latency
/// histogram of the corrected latency (what the report's tables show).
fn series_by_name(run: &LoadedRun) -> Result<BTreeMap<String, Series>> {
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
fn total(series: &BTreeMap<String, Series>) -> Series {
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

impl CompareResult {
    /// A plain-text table for the terminal: one line per request name and metric (name, metric,
    /// baseline, candidate, change with its interval, verdict), then the limits broken, if any.
    pub fn text_table(&self) -> String {
        use crate::view::verdict::{change_text, interval_text, limit_text, value_text};
        let mut lines: Vec<[String; 6]> = vec![[
            "REQUEST".into(),
            "METRIC".into(),
            "BASELINE".into(),
            "CANDIDATE".into(),
            "CHANGE [INTERVAL]".into(),
            "VERDICT".into(),
        ]];
        for row in &self.rows {
            for c in &row.cells {
                let r = &c.result;
                let mut verdict = r.verdict.as_str().to_owned();
                if r.verdict == Verdict::NotResolvable && r.detectable.is_finite() {
                    verdict.push_str(&format!(
                        " (detectable: {})",
                        limit_text(c.metric, r.detectable)
                    ));
                }
                if r.breaks_limit && c.limit.is_some() {
                    verdict.push_str(&format!(
                        ", LIMIT {} BROKEN",
                        limit_text(c.metric, r.tolerance)
                    ));
                }
                lines.push([
                    row.name.clone(),
                    c.metric.label().to_owned(),
                    value_text(c.metric, r.baseline),
                    value_text(c.metric, r.candidate),
                    format!(
                        "{} [{}]",
                        change_text(c.metric, r),
                        interval_text(c.metric, r)
                    ),
                    verdict,
                ]);
            }
        }
        let widths: Vec<usize> = (0..6)
            .map(|i| {
                lines
                    .iter()
                    .map(|l| l[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for l in &lines {
            let mut line = String::new();
            for (i, text) in l.iter().enumerate() {
                let pad = widths[i] - text.chars().count();
                // Numbers are right-aligned, words left-aligned.
                if (2..=3).contains(&i) {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(text);
                } else {
                    line.push_str(text);
                    if i < 5 {
                        line.push_str(&" ".repeat(pad));
                    }
                }
                if i < 5 {
                    line.push_str("  ");
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out.push_str(&format!(
            "\nIntervals: {:.0} % family-wise over {} comparisons (moving-block bootstrap, {} replicates).\n",
            self.confidence * 100.0,
            self.comparisons,
            self.replicates
        ));
        for (what, names) in [
            ("only in the baseline", &self.only_in_baseline),
            ("only in the candidate", &self.only_in_candidate),
        ] {
            if !names.is_empty() {
                out.push_str(&format!("Request names {what}: {}\n", names.join(", ")));
            }
        }
        let broken: Vec<String> = self
            .broken()
            .map(|(row, c)| {
                format!(
                    "{} {} {} (limit {})",
                    row.name,
                    c.metric.label(),
                    change_text(c.metric, &c.result),
                    limit_text(c.metric, c.result.tolerance)
                )
            })
            .collect();
        if broken.is_empty() {
            out.push_str("PASS: no limit broken beyond noise\n");
        } else {
            out.push_str(&format!("FAIL: {}\n", broken.join("; ")));
        }
        out
    }
}
