//! The view of `analyzer compare`: the two-run comparison report, led by the verdicts of the
//! significance tests (one table per metric) and a pass/fail card.

use super::chart::{chart, dist_points, distribution_chart};
use super::{CardView, CellView, ChartView, ReportView, TableView, cell, header, num};
use crate::analysis::RunAnalysis;
use crate::charts::Line;
use crate::compare::{CompareResult, MetricKey};
use crate::error::Result;
use crate::format;
use crate::significance::{Comparison, Metric, Verdict};

/// Builds the view: the comparison report of both runs, with the verdicts first.
pub fn build(runs: &[RunAnalysis], result: &CompareResult) -> Result<ReportView> {
    let mut view = super::build(runs, 0)?;
    let (base, cand) = (&runs[0].info.label, &runs[1].info.label);
    let broken: Vec<String> = result
        .broken()
        .map(|(row, c)| {
            format!(
                "{} {}: {} (limit {})",
                row.name,
                c.metric.label(),
                change_text(c.metric, &c.result),
                limit_text(c.metric, c.result.tolerance)
            )
        })
        .collect();
    view.title = "Regression check".into();
    view.subtitle = format!("{cand} against the baseline {base}");
    view.cards = cards(result, &broken);
    let mut tables: Vec<TableView> = metric_tables(result);
    tables.append(&mut view.request_tables);
    view.request_tables = tables;
    view.method.insert(0, method(result));
    let mut charts = distribution_charts(base, cand, result)?;
    charts.append(&mut view.charts);
    view.charts = charts;
    Ok(view)
}

/// Request names beyond this many get no distribution chart of their own (the tables still list
/// them), so that a profile with hundreds of names does not make a page of hundreds of charts.
pub const MAX_DISTRIBUTION_CHARTS: usize = 24;

/// One chart per row (all requests first): the baseline's and the candidate's percentile curves
/// overlaid, so a shift that only the tail shows is visible at a glance.
fn distribution_charts(base: &str, cand: &str, result: &CompareResult) -> Result<Vec<ChartView>> {
    let mut out = Vec::new();
    for (i, row) in result.rows.iter().take(MAX_DISTRIBUTION_CHARTS).enumerate() {
        let line = |label: &str, color: usize, dashed: bool, points: &[(f64, f64)]| Line {
            label: format!("{label} ({})", ["baseline", "candidate"][color]),
            points: dist_points(points),
            color,
            dashed,
            fill: false,
        };
        let spec = distribution_chart(vec![
            line(base, 0, true, &row.distributions[0]),
            line(cand, 1, false, &row.distributions[1]),
        ]);
        let p99 = row
            .cells
            .iter()
            .find(|c| c.metric == MetricKey::P99)
            .map(|c| {
                format!(
                    " P99 {}: {}.",
                    change_text(MetricKey::P99, &c.result),
                    c.result.verdict.as_str()
                )
            })
            .unwrap_or_default();
        out.extend(chart(
            &format!("chart-distribution-{i}"),
            &format!("Latency distribution: {}", row.name),
            &format!(
                "Corrected latency at each percentile, baseline dashed, candidate solid; n = {} and {}.{p99}",
                format::int(row.requests.0),
                format::int(row.requests.1)
            ),
            &spec,
        )?);
    }
    Ok(out)
}

fn cards(result: &CompareResult, broken: &[String]) -> Vec<CardView> {
    let count = |v| result.tally(v);
    let mut cards = vec![CardView {
        label: "Verdict".into(),
        value: if broken.is_empty() {
            "PASS".into()
        } else {
            "FAIL".into()
        },
        detail: if broken.is_empty() {
            "no limit broken beyond noise".into()
        } else {
            broken.join(" · ")
        },
        class: if broken.is_empty() {
            String::new()
        } else {
            "bad".into()
        },
    }];
    for (verdict, what) in [
        (Verdict::Regressed, "worse beyond noise"),
        (Verdict::Improved, "better beyond noise"),
        (
            Verdict::WithinNoise,
            "any change smaller than its tolerance",
        ),
        (Verdict::NotResolvable, "the runs cannot tell"),
    ] {
        cards.push(CardView {
            label: verdict.as_str().into(),
            value: format::int(count(verdict) as u64),
            detail: format!("of {} comparisons: {what}", result.comparisons),
            class: match verdict {
                Verdict::Regressed if count(verdict) > 0 => "bad".into(),
                Verdict::NotResolvable if count(verdict) > 0 => "weak".into(),
                _ => String::new(),
            },
        });
    }
    cards
}

/// One table per metric: a row per request name.
fn metric_tables(result: &CompareResult) -> Vec<TableView> {
    let metrics: Vec<MetricKey> = result
        .rows
        .first()
        .map(|r| r.cells.iter().map(|c| c.metric).collect())
        .unwrap_or_default();
    metrics
        .iter()
        .enumerate()
        .map(|(i, &metric)| {
            let limit = result.rows.first().and_then(|r| r.cells[i].limit);
            TableView {
                id: format!("verdict-{}", metric.key()),
                title: format!("{}: candidate against baseline", metric.label()),
                caption: match limit {
                    Some(l) => format!(
                        "Fails when worse by more than {} beyond noise. Intervals are {:.0} % family-wise over all {} comparisons.",
                        limit_text(metric, l),
                        result.confidence * 100.0,
                        result.comparisons
                    ),
                    None => format!(
                        "No limit: reported only. \"Within noise\" means any change is under {}.",
                        limit_text(metric, metric.default_tolerance())
                    ),
                },
                headers: vec![
                    header("Request", false),
                    header("Baseline", true),
                    header("Candidate", true),
                    header("Change", true),
                    header("Interval", true),
                    header("Verdict", false),
                    header("Detectable", true),
                ],
                rows: result
                    .rows
                    .iter()
                    .map(|row| {
                        let c = &row.cells[i].result;
                        let mut name = cell(row.name.clone());
                        if row.name == crate::compare::ALL_REQUESTS {
                            name.class = "total".into();
                        }
                        vec![
                            name,
                            num(value_text(metric, c.baseline), c.baseline),
                            num(value_text(metric, c.candidate), c.candidate),
                            num(change_text(metric, c), c.change),
                            num(interval_text(metric, c), c.low),
                            verdict_cell(c, row.cells[i].limit.is_some()),
                            num(signed_text(metric, c.detectable, false), c.detectable),
                        ]
                    })
                    .collect(),
                footnotes: vec![
                    "Detectable: the smallest change in the worse direction this pair of runs would have detected (80 % power).".into(),
                ],
                class: String::new(),
            }
        })
        .collect()
}

fn verdict_cell(c: &Comparison, limited: bool) -> CellView {
    let mut v = cell(c.verdict.as_str());
    v.class = match c.verdict {
        Verdict::Regressed => "worse".into(),
        Verdict::Improved => "better".into(),
        Verdict::NotResolvable => "weak".into(),
        Verdict::WithinNoise => String::new(),
    };
    if c.breaks_limit && limited {
        v.text.push_str(", limit broken");
    }
    v
}

pub(crate) fn value_text(metric: MetricKey, v: f64) -> String {
    if v.is_nan() {
        return "–".into();
    }
    match metric.metric() {
        Metric::Latency(_) => format::latency_us(v),
        Metric::ErrorRate => format!("{:.2} %", v * 100.0),
        Metric::Throughput => format!("{} /s", format::rate(v)),
    }
}

fn signed_text(metric: MetricKey, v: f64, sign: bool) -> String {
    if v.is_nan() || v.is_infinite() {
        return "–".into();
    }
    let (number, unit) = if metric.is_error_rate() {
        (v * 100.0, " pp")
    } else {
        (v * 100.0, " %")
    };
    if sign {
        format!("{number:+.1}{unit}")
    } else {
        format!("{number:.1}{unit}")
    }
}

pub(crate) fn change_text(metric: MetricKey, c: &Comparison) -> String {
    signed_text(metric, c.change, true)
}

pub(crate) fn interval_text(metric: MetricKey, c: &Comparison) -> String {
    if c.low.is_nan() {
        return "–".into();
    }
    format!(
        "{} … {}",
        signed_text(metric, c.low, true),
        signed_text(metric, c.high, true)
    )
}

pub(crate) fn limit_text(metric: MetricKey, limit: f64) -> String {
    signed_text(metric, limit, false)
}

fn method(result: &CompareResult) -> String {
    format!(
        "Verdicts come from a moving-block bootstrap over one-second windows ({} replicates per comparison): \
         stretches of consecutive seconds are resampled, so slow spells stay together and the intervals are \
         not overconfident. Each interval holds with {:.0} % confidence for all {} comparisons together \
         (Bonferroni). Regressed or improved: the interval excludes no change. Within noise: the interval lies \
         inside the tolerance. Not resolvable: the interval reaches past the tolerance, so these runs cannot \
         tell a change of that size from noise; run longer. Latency is the corrected latency (from the \
         intended start), bucketed to 0.8 % for the resampling.",
        result.replicates,
        result.confidence * 100.0,
        result.comparisons
    )
}
