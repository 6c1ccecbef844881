//! Measuring a threshold: the whole run's exact value, or every full window of a `per` threshold,
//! each with the one-second series its interval resamples.

use std::collections::BTreeMap;

use super::CheckOptions;
use crate::analysis::RunAnalysis;
use crate::error::{Error, Result};
use crate::load::LoadedRun;
use crate::significance::{self, Estimate, MIN_WINDOWS, Series, Settings};
use crate::slo::{self, ALL, Measure, Threshold};
use crate::stats::Summary;

/// One window of a `per` threshold: its span, exact value, requests and estimate.
#[derive(Debug)]
pub(super) struct WindowFigure {
    pub(super) from_s: u32,
    pub(super) to_s: u32,
    pub(super) value: f64,
    pub(super) requests: u64,
    pub(super) estimate: Option<Estimate>,
}

/// A threshold measured, before the family's z is known.
#[derive(Debug)]
pub(super) enum Measured {
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
    pub(super) fn intervals(&self) -> usize {
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
pub(super) fn share_inclusive(op: slo::Op) -> bool {
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
pub(super) fn measure(
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
