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

mod output;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

pub use output::{append_summary, write_json, write_junit, xml_escape};

use crate::analysis::{RunAnalysis, analyze};
use crate::error::{Error, Result};
use crate::load::{LoadOptions, LoadedRun, load_run};
use crate::significance::{
    self, Decision, Estimate, Interval, Length, MIN_WINDOWS, Metric, OnUndecided, Series, Settings,
};
use crate::slo::{self, ALL, Measure, Threshold};
use crate::stats::Summary;

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
    let manifest_path = options.run.join(formats::manifest::MANIFEST_FILE);
    let profile = match formats::Run::open(&options.run) {
        Ok(run) => run.manifest.map(|m| m.profile).unwrap_or_default(),
        Err(e) => {
            return Err(Error::NothingReadable {
                paths: vec![options.run.display().to_string()],
                reasons: vec![e.to_string()],
            });
        }
    };
    let from_profile = slo::from_profile(
        &format!("the profile in {}", manifest_path.display()),
        &profile,
    )?;
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
    let analysis = analyze(&run, options.skip.as_secs_f64())?;
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

/// One window of a `per` threshold: its span, exact value, requests and estimate.
#[derive(Debug)]
struct WindowFigure {
    from_s: u32,
    to_s: u32,
    value: f64,
    requests: u64,
    estimate: Option<Estimate>,
}

/// A threshold measured, before the family's z is known.
#[derive(Debug)]
enum Measured {
    /// Not measurable, and why.
    Missing(String),
    /// An exact value with a few words of context, and its estimate when judged with an interval.
    Whole {
        value: f64,
        context: String,
        estimate: Option<Estimate>,
    },
    /// Every full window with samples of a `per` threshold, out of `full` full windows.
    Windows {
        figures: Vec<WindowFigure>,
        full: usize,
    },
}

impl Measured {
    fn intervals(&self) -> usize {
        match self {
            Measured::Missing(_) => 0,
            Measured::Whole { estimate, .. } => usize::from(estimate.is_some()),
            Measured::Windows { figures, .. } => {
                figures.iter().filter(|f| f.estimate.is_some()).count()
            }
        }
    }
}

/// Whether a percentile threshold counts requests exactly at its latency (see [`Share`]).
fn share_inclusive(op: slo::Op) -> bool {
    matches!(op, slo::Op::Lt | slo::Op::Ge)
}

/// The one-second series a threshold's interval resamples: the key's own series for the mean and
/// the error rate; for a percentile, the key's requests per window with those at or above the
/// threshold's latency counted as `failures`, so the share is computed exactly (not from buckets).
fn threshold_series(
    run: &LoadedRun,
    series: Option<&(BTreeMap<String, Series>, Series)>,
    t: &Threshold,
) -> Result<Option<Series>> {
    if run.approx.is_some() {
        return Ok(None);
    }
    let Measure::Percentile(_) = t.measure else {
        return Ok(series.and_then(|series| {
            if t.key == ALL {
                Some(series.1.clone())
            } else {
                series.0.get(&t.key).cloned()
            }
        }));
    };
    // The same windows as `compare::series_by_name`: whole seconds from the measured window's first.
    let Some((start_us, end_us)) = run.window_us else {
        return Ok(None);
    };
    let first_s = start_us / 1_000_000;
    let len = (end_us.div_ceil(1_000_000).saturating_sub(first_s)).max(1) as usize;
    let name = if t.key == ALL {
        None
    } else {
        match run.names.iter().position(|n| *n == t.key) {
            Some(i) => Some(i as u32),
            None => return Ok(None),
        }
    };
    let inclusive = share_inclusive(t.op);
    let mut windows = vec![
        significance::Window {
            seconds: 1.0,
            ..Default::default()
        };
        len
    ];
    let [ts, ns, ls] =
        ["t_s", "name", "latency_us"].map(|c| crate::compare::u32_chunks(&run.samples, c));
    for ((ts, ns), ls) in ts?.iter().zip(&ns?).zip(&ls?) {
        for ((&ts, &n), &l) in ts.iter().zip(ns.iter()).zip(ls.iter()) {
            if name.is_some_and(|want| want != n) {
                continue;
            }
            let Some(w) = u64::from(ts)
                .checked_sub(first_s)
                .and_then(|w| windows.get_mut(w as usize))
            else {
                continue;
            };
            w.requests += 1;
            let l = f64::from(l);
            if l > t.limit || (inclusive && l == t.limit) {
                w.failures += 1;
            }
        }
    }
    Ok(Some(Series { windows }))
}

/// Measures one threshold: its exact value(s) and, where judged with an interval, the estimate.
fn measure(
    run: &LoadedRun,
    a: &RunAnalysis,
    series: Option<&(BTreeMap<String, Series>, Series)>,
    t: &Threshold,
    options: &CheckOptions,
) -> Result<Measured> {
    let settings = Settings {
        seed: options.seed,
        ..Settings::default()
    };
    let resampled = match t.measure.metric() {
        Some(metric) => threshold_series(run, series, t)?.map(|s| (metric, s)),
        None => None,
    };
    let Some(window_s) = t.window_s else {
        return Ok(match whole_run(a, t) {
            Err(why) => Measured::Missing(why),
            Ok((value, context)) => Measured::Whole {
                value,
                context,
                estimate: resampled
                    .map(|(metric, s)| significance::estimate(&s, metric, &settings, MIN_WINDOWS)),
            },
        });
    };
    let values = match window_values(run, a, t, window_s)? {
        Err(why) => return Ok(Measured::Missing(why)),
        Ok(v) => v,
    };
    if let Some((value, context)) = values.lag {
        return Ok(Measured::Whole {
            value,
            context,
            estimate: None,
        });
    }
    let full = values.windows.len();
    let w = window_s as usize;
    let figures = values
        .windows
        .into_iter()
        .enumerate()
        .filter_map(|(k, v)| {
            let (value, requests) = v?;
            Some(WindowFigure {
                from_s: values.first_s + k as u32 * window_s,
                to_s: values.first_s + (k as u32 + 1) * window_s,
                value,
                requests,
                estimate: resampled.as_ref().map(|(metric, s)| {
                    significance::estimate(
                        &s.slice(k * w, (k + 1) * w),
                        *metric,
                        &settings,
                        MIN_WINDOWS.min(w),
                    )
                }),
            })
        })
        .collect::<Vec<_>>();
    if figures.is_empty() {
        return Ok(Measured::Missing(format!(
            "no requests in any full {window_s} s window"
        )));
    }
    Ok(Measured::Windows { figures, full })
}

/// A value's answer against its threshold.
struct Answer {
    decision: Decision,
    low: Option<f64>,
    high: Option<f64>,
    share: Option<Share>,
    reason: String,
    decide_s: Option<f64>,
    decide: String,
}

/// Judges one value against the threshold: as a point without an estimate; else with an interval
/// `± z·se` on the statistics' scale, around the value itself (mean, error rate) or, for a
/// percentile, around the share of requests at or above its latency, against the share it allows.
/// For a `per` threshold, the window's length is what would have to grow.
fn answer(t: &Threshold, value: f64, estimate: Option<&Estimate>, z: f64) -> Answer {
    let mut out = Answer {
        decision: if t.op.holds(value, t.limit) {
            Decision::Within
        } else {
            Decision::Beyond
        },
        low: None,
        high: None,
        share: None,
        reason: String::new(),
        decide_s: None,
        decide: String::new(),
    };
    let (Some(e), Some(metric)) = (estimate, t.measure.metric()) else {
        return out;
    };
    let per_window = t.window_s.is_some();
    let (judged, bound) = match t.measure {
        Measure::Percentile(i) => {
            let allowed = 1.0 - crate::stats::PERCENTILES[i].2;
            out.share = Some(Share {
                value: e.value,
                low: None,
                high: None,
                allowed,
                inclusive: share_inclusive(t.op),
            });
            (e.value, allowed)
        }
        _ => (value, t.limit),
    };
    if let Some(s) = &e.shortfall {
        out.decision = Decision::Undecided;
        out.reason = s.text.clone();
        out.decide_s = s.seconds_needed;
        out.decide = significance::shortfall_words(s, per_window);
        return out;
    }
    if judged.is_nan() {
        return out;
    }
    let iv = Interval {
        estimate: significance::scale(metric, judged),
        se: e.se,
        resolution: e.resolution,
        z,
    };
    // A lower bound on a percentile ("p50 > 1ms") is a lower bound on the share above it.
    let (decision, length) = iv.against(
        significance::scale(metric, bound),
        t.op.is_upper_bound(),
        e.evidence.seconds,
    );
    let to_value = |v: f64| {
        let v = significance::unscale_value(metric, v);
        if metric.is_relative() {
            v
        } else {
            v.clamp(0.0, 1.0)
        }
    };
    let (low, high) = (to_value(iv.low()), to_value(iv.high()));
    match &mut out.share {
        Some(share) => {
            share.low = Some(low);
            share.high = Some(high);
        }
        None => {
            out.low = Some(low);
            out.high = Some(high);
        }
    }
    out.decision = decision;
    if decision == Decision::Undecided {
        out.reason = "the interval straddles the threshold".into();
        out.decide_s = match length {
            Some(Length::Seconds(s)) => Some(s),
            _ => None,
        };
        out.decide = significance::length_words(length, "the value", per_window);
    }
    out
}

/// The threshold's outcome, from its measurement and the family's z.
fn judge(threshold: Threshold, measured: Measured, z: f64) -> Judged {
    let t = &threshold;
    let fmt = |v: f64| t.measure.format(v);
    let pct = |v: f64| format!("{:.2} %", v * 100.0);
    let describe = |value: f64, a: &Answer| -> String {
        match (&a.share, a.low, a.high) {
            (Some(share), _, _) => {
                let interval = match (share.low, share.high) {
                    (Some(l), Some(h)) => format!(" [{} … {}]", pct(l), pct(h)),
                    _ => String::new(),
                };
                format!(
                    "{}: {}{interval} of requests {} {}, {} allows {}",
                    fmt(value),
                    pct(share.value),
                    if share.inclusive {
                        "at or above"
                    } else {
                        "above"
                    },
                    fmt(t.limit),
                    t.measure.name().to_ascii_uppercase(),
                    pct(share.allowed)
                )
            }
            (None, Some(l), Some(h)) => format!("{} [{} … {}]", fmt(value), fmt(l), fmt(h)),
            _ => fmt(value),
        }
    };
    let limit_note = format!("; limit {} {}", t.op.as_str(), fmt(t.limit));
    let (value, context, a, method, windows) = match measured {
        Measured::Missing(why) => {
            return Judged {
                measured: None,
                low: None,
                high: None,
                share: None,
                method: if t.measure.metric().is_some() {
                    Method::Interval
                } else {
                    Method::Point
                },
                decision: Decision::NotMeasured,
                detail: format!("not measured: {why}"),
                reason: why,
                decide_s: None,
                decide: String::new(),
                windows: None,
                threshold,
            };
        }
        Measured::Whole {
            value,
            context,
            estimate,
        } => {
            let method = if estimate.is_some() {
                Method::Interval
            } else {
                Method::Point
            };
            let a = answer(t, value, estimate.as_ref(), z);
            (value, context, a, method, None)
        }
        Measured::Windows { figures, full } => {
            let answers: Vec<Answer> = figures
                .iter()
                .map(|f| answer(t, f.value, f.estimate.as_ref(), z))
                .collect();
            let beyond = answers
                .iter()
                .filter(|a| a.decision == Decision::Beyond)
                .count();
            let undecided = answers
                .iter()
                .filter(|a| a.decision == Decision::Undecided)
                .count();
            let decision = if beyond > 0 {
                Decision::Beyond
            } else if undecided > 0 {
                Decision::Undecided
            } else {
                Decision::Within
            };
            // Report the worst window among those with the overall answer: the highest value for
            // an upper bound, the lowest for a lower one.
            let upper = t.op.is_upper_bound();
            let (i, _) = figures
                .iter()
                .enumerate()
                .filter(|(i, _)| answers[*i].decision == decision)
                .max_by(|x, y| {
                    if upper {
                        x.1.value.total_cmp(&y.1.value)
                    } else {
                        y.1.value.total_cmp(&x.1.value)
                    }
                })
                .expect("the answer comes from some window");
            let f = &figures[i];
            let mut context = format!(
                "worst of {} windows: {}–{} s, n = {}",
                figures.len(),
                f.from_s,
                f.to_s,
                crate::format::int(f.requests)
            );
            if figures.len() < full {
                context.push_str(&format!(
                    "; {} of {full} windows had no samples",
                    full - figures.len()
                ));
            }
            if beyond > 0 {
                context.push_str(&format!("; {beyond} beyond"));
            }
            if undecided > 0 {
                context.push_str(&format!("; {undecided} undecided"));
            }
            let method = if f.estimate.is_some() {
                Method::Interval
            } else {
                Method::Point
            };
            let counts = WindowCounts {
                judged: figures.len(),
                beyond,
                undecided,
            };
            let a = answers.into_iter().nth(i).expect("one answer per window");
            (f.value, context, a, method, Some(counts))
        }
    };
    let mut detail = describe(value, &a);
    if !context.is_empty() {
        detail.push_str(&format!(" ({context})"));
    }
    if a.decision == Decision::Beyond {
        detail.push_str(&limit_note);
    }
    Judged {
        measured: Some(value),
        low: a.low,
        high: a.high,
        share: a.share,
        method,
        decision: a.decision,
        detail,
        reason: a.reason,
        decide_s: a.decide_s,
        decide: a.decide,
        windows,
        threshold,
    }
}

/// The whole run's value, with a few words of context; or why there is none.
fn whole_run(a: &RunAnalysis, t: &Threshold) -> Result<(f64, String), String> {
    if t.measure == Measure::LagP99 {
        return lag(a, None);
    }
    let summary: &Summary = if t.key == ALL {
        &a.total
    } else {
        a.endpoints
            .iter()
            .find(|s| s.name == t.key)
            .ok_or_else(|| "no requests of this name".to_owned())?
    };
    if summary.requests == 0 {
        return Err("no requests in the measured window".into());
    }
    let n = format!("n = {}", crate::format::int(summary.requests));
    let l = &summary.latency;
    Ok(match t.measure {
        Measure::Percentile(i) => (l.percentiles[i], n),
        Measure::Max => (l.max, n),
        Measure::Mean => (l.mean, n),
        Measure::ErrorRate => (
            summary.failures as f64 / summary.requests as f64,
            format!(
                "{} of {}",
                crate::format::int(summary.failures),
                crate::format::int(summary.requests)
            ),
        ),
        Measure::Rps => (
            summary.rps,
            format!("over {}", crate::format::duration_s(a.window_s)),
        ),
        Measure::LagP99 => unreachable!("handled above"),
    })
}

/// The schedule lag P99 of the worst core in the worst second, over the seconds of `range` (or all).
fn lag(a: &RunAnalysis, range: Option<(u32, u32)>) -> Result<(f64, String), String> {
    let ts = &a.timeseries;
    let worst = ts
        .t_s
        .iter()
        .zip(&ts.lag_p99_ms)
        .filter(|(t, _)| range.is_none_or(|(from, to)| (from..to).contains(*t)))
        .filter_map(|(t, l)| l.map(|l| (*t, l)))
        .max_by(|x, y| x.1.total_cmp(&y.1));
    match worst {
        Some((t, ms)) => Ok((ms * 1000.0, format!("worst second: {t}–{} s", t + 1))),
        None => Err(
            "the run's logs hold no per-second interval records, so the generator's schedule lag is unknown"
                .into(),
        ),
    }
}

/// The exact values of a `per` threshold's full windows.
struct WindowValues {
    /// The first window's start, seconds since the run's start.
    first_s: u32,
    /// One entry per full window: (value, requests), or `None` when it holds no samples.
    windows: Vec<Option<(f64, u64)>>,
    /// For `lag_p99`, the worst second over all full windows instead.
    lag: Option<(f64, String)>,
}

/// Every full window's exact value; or why there is none.
fn window_values(
    run: &LoadedRun,
    a: &RunAnalysis,
    t: &Threshold,
    window_s: u32,
) -> Result<Result<WindowValues, String>> {
    let Some((start_us, end_us)) = run.window_us else {
        return Ok(Err("no requests in the measured window".into()));
    };
    let first_s = (start_us / 1_000_000) as u32;
    let full_windows = ((end_us / 1_000_000) as u32).saturating_sub(first_s) / window_s;
    if full_windows == 0 {
        return Ok(Err(format!(
            "the measured window ({}) is shorter than one {window_s} s window",
            crate::format::duration_s(a.window_s)
        )));
    }
    if t.measure == Measure::LagP99 {
        return Ok(
            lag(a, Some((first_s, first_s + full_windows * window_s))).map(|l| WindowValues {
                first_s,
                windows: Vec::new(),
                lag: Some(l),
            }),
        );
    }
    if run.approx.is_some() {
        return Err(Error::Usage(format!(
            "{}: `{}`: per-window thresholds need every sample in memory, and this run has more \
             ({} samples) than fit; check a shorter stretch, or drop `per`",
            t.origin,
            t.text,
            crate::format::int(run.rows)
        )));
    }
    let name = if t.key == ALL {
        None
    } else {
        run.names.iter().position(|n| *n == t.key).map(|i| i as u32)
    };
    let windows = full_windows as usize;
    let index = |t_s: u32| {
        let w = (t_s.checked_sub(first_s)? / window_s) as usize;
        (w < windows).then_some(w)
    };
    let wanted = |n: u32| name.is_none_or(|want| want == n);
    let mut latencies: Vec<Vec<u32>> = vec![Vec::new(); windows];
    let mut requests = vec![0u64; windows];
    let mut failures = vec![0u64; windows];
    let [ts, ns, ls] =
        ["t_s", "name", "latency_us"].map(|c| crate::compare::u32_chunks(&run.samples, c));
    for ((ts, ns), ls) in ts?.iter().zip(&ns?).zip(&ls?) {
        for ((&ts, &n), &l) in ts.iter().zip(ns.iter()).zip(ls.iter()) {
            if let Some(w) = index(ts).filter(|_| wanted(n)) {
                requests[w] += 1;
                if t.measure.is_latency() {
                    latencies[w].push(l);
                }
            }
        }
    }
    if t.measure == Measure::ErrorRate {
        let [ts, ns] = ["t_s", "name"].map(|c| crate::compare::u32_chunks(&run.failures, c));
        for (ts, ns) in ts?.iter().zip(&ns?) {
            for (&ts, &n) in ts.iter().zip(ns.iter()) {
                if let Some(w) = index(ts).filter(|_| wanted(n)) {
                    failures[w] += 1;
                }
            }
        }
    }
    let value = |w: usize| -> Option<f64> {
        match t.measure {
            Measure::Rps => Some(requests[w] as f64 / f64::from(window_s)),
            Measure::ErrorRate => {
                (requests[w] > 0).then(|| failures[w] as f64 / requests[w] as f64)
            }
            _ => {
                let l = &latencies[w];
                if l.is_empty() {
                    return None;
                }
                Some(match t.measure {
                    Measure::Percentile(i) => {
                        let q = crate::stats::PERCENTILES[i].2;
                        let rank = ((q * l.len() as f64).ceil() as usize).clamp(1, l.len());
                        let mut l = l.clone();
                        f64::from(*l.select_nth_unstable(rank - 1).1)
                    }
                    Measure::Max => f64::from(*l.iter().max().expect("not empty")),
                    _ => l.iter().map(|&v| f64::from(v)).sum::<f64>() / l.len() as f64,
                })
            }
        }
    };
    Ok(Ok(WindowValues {
        first_s,
        windows: (0..windows)
            .map(|w| value(w).map(|v| (v, requests[w])))
            .collect(),
        lag: None,
    }))
}
