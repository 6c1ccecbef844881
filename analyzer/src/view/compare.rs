//! The view of several runs: a column per run with deltas against the baseline, overlaid charts.

use super::chart::{chart, dist_points, distribution_chart, seconds_line, time_chart};
use super::{CellView, ChartView, TableView, UNSUPPORTED_NOTE, cell, header, num};
use crate::analysis::RunAnalysis;
use crate::charts::{Line, Scale, Unit};
use crate::error::Result;
use crate::format;
use crate::stats::{Summary, supports};

/// A value cell with its delta against the baseline; `higher_is_worse` picks the colour.
fn delta_cell(
    text: String,
    value: f64,
    base: f64,
    is_base: bool,
    higher_is_worse: bool,
) -> CellView {
    let mut c = num(text, value);
    if is_base {
        return c;
    }
    if let Some((d, t)) = format::delta(base, value) {
        c.sub = t;
        if d.abs() >= 5.0 {
            c.class.push_str(if (d > 0.0) == higher_is_worse {
                " worse"
            } else {
                " better"
            });
        }
    }
    c
}

fn run_headers(runs: &[RunAnalysis], first: &str, baseline: usize) -> Vec<CellView> {
    let mut headers = vec![header(first, false)];
    headers.extend(runs.iter().enumerate().map(|(i, r)| CellView {
        text: r.info.label.clone(),
        sub: if i == baseline {
            "baseline".into()
        } else {
            String::new()
        },
        class: format!("num run swatch-{}", i % 8),
        ..CellView::default()
    }));
    headers
}

pub(super) fn headline_table(runs: &[RunAnalysis], baseline: usize) -> TableView {
    type Metric = (&'static str, fn(&Summary) -> f64, fn(f64) -> String, bool);
    let lat = |key: &'static str| -> fn(&Summary) -> f64 {
        match key {
            "p50" => |s| s.latency.percentiles[0],
            "p90" => |s| s.latency.percentiles[2],
            "p95" => |s| s.latency.percentiles[3],
            "p99" => |s| s.latency.percentiles[4],
            _ => |s| s.latency.percentiles[5],
        }
    };
    let metrics: Vec<Metric> = vec![
        (
            "Requests",
            |s| s.requests as f64,
            |v| format::int(v as u64),
            false,
        ),
        ("Throughput (req/s)", |s| s.rps, format::rate, false),
        ("Failures", |s| s.failure_pct(), format::pct, true),
        ("Mean latency", |s| s.latency.mean, format::latency_us, true),
        ("P50 latency", lat("p50"), format::latency_us, true),
        ("P90 latency", lat("p90"), format::latency_us, true),
        ("P95 latency", lat("p95"), format::latency_us, true),
        ("P99 latency", lat("p99"), format::latency_us, true),
        ("P99.9 latency", lat("p999"), format::latency_us, true),
        ("Max latency", |s| s.latency.max, format::latency_us, true),
        (
            "P99 uncorrected",
            |s| s.latency_uncorrected.percentiles[4],
            format::latency_us,
            true,
        ),
    ];
    let base = &runs[baseline].total;
    let rows = metrics
        .into_iter()
        .map(|(label, get, fmt, worse)| {
            let mut row = vec![CellView {
                text: label.into(),
                class: "fact".into(),
                ..CellView::default()
            }];
            for (i, r) in runs.iter().enumerate() {
                let v = get(&r.total);
                let mut c = delta_cell(fmt(v), v, get(base), i == baseline, worse);
                let q = match label {
                    "P50 latency" => Some(0.5),
                    "P90 latency" => Some(0.9),
                    "P95 latency" => Some(0.95),
                    "P99 latency" | "P99 uncorrected" => Some(0.99),
                    "P99.9 latency" => Some(0.999),
                    _ => None,
                };
                if let Some(q) = q
                    && !supports(r.total.requests, q)
                {
                    c.text.push('†');
                    c.class.push_str(" weak");
                }
                row.push(c);
            }
            row
        })
        .collect::<Vec<_>>();
    let weak = rows
        .iter()
        .flatten()
        .any(|c: &CellView| c.class.contains("weak"));
    TableView {
        id: "headline".into(),
        title: "Headline figures".into(),
        caption: "Corrected latency (from the intended start) unless stated. Deltas are against the baseline; \
                  changes of 5% or more are coloured."
            .into(),
        headers: run_headers(runs, "All requests", baseline),
        rows,
        footnotes: if weak { vec![UNSUPPORTED_NOTE.into()] } else { Vec::new() },
        class: String::new(),
    }
}

pub(super) fn request_tables(runs: &[RunAnalysis], baseline: usize) -> Vec<TableView> {
    let mut names: Vec<&str> = runs
        .iter()
        .flat_map(|r| r.endpoints.iter().map(|e| e.name.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    type Metric = (
        &'static str,
        &'static str,
        fn(&Summary) -> f64,
        fn(f64) -> String,
        bool,
        Option<f64>,
    );
    let metrics: [Metric; 4] = [
        (
            "compare-rps",
            "Throughput by request (req/s)",
            |s| s.rps,
            format::rate,
            false,
            None,
        ),
        (
            "compare-p50",
            "P50 latency by request",
            |s| s.latency.percentiles[0],
            format::latency_us,
            true,
            Some(0.5),
        ),
        (
            "compare-p99",
            "P99 latency by request",
            |s| s.latency.percentiles[4],
            format::latency_us,
            true,
            Some(0.99),
        ),
        (
            "compare-failures",
            "Failures by request",
            |s| s.failure_pct(),
            format::pct,
            true,
            None,
        ),
    ];
    metrics
        .into_iter()
        .map(|(id, title, get, fmt, worse, q)| {
            let rows = names
                .iter()
                .map(|name| {
                    let find =
                        |r: &RunAnalysis| r.endpoints.iter().find(|e| e.name == *name).cloned();
                    let base = find(&runs[baseline]);
                    let mut row = vec![CellView {
                        text: (*name).to_owned(),
                        class: "name".into(),
                        ..CellView::default()
                    }];
                    for (i, r) in runs.iter().enumerate() {
                        row.push(match find(r) {
                            None => num("–", 0.0),
                            Some(s) => {
                                let v = get(&s);
                                let b = base.as_ref().map_or(f64::NAN, get);
                                let mut c = delta_cell(fmt(v), v, b, i == baseline, worse);
                                if let Some(q) = q
                                    && !supports(s.requests, q)
                                {
                                    c.text.push('†');
                                    c.class.push_str(" weak");
                                }
                                c
                            }
                        });
                    }
                    row
                })
                .collect::<Vec<_>>();
            let weak = rows
                .iter()
                .flatten()
                .any(|c: &CellView| c.class.contains("weak"));
            TableView {
                id: id.into(),
                title: title.into(),
                headers: run_headers(runs, "Request", baseline),
                rows,
                footnotes: if weak {
                    vec![UNSUPPORTED_NOTE.into()]
                } else {
                    Vec::new()
                },
                ..TableView::default()
            }
        })
        .collect()
}

pub(super) fn charts(runs: &[RunAnalysis]) -> Result<Vec<ChartView>> {
    let per_run = |get: &dyn Fn(&RunAnalysis) -> Vec<Option<f64>>| -> Vec<Line> {
        runs.iter()
            .enumerate()
            .map(|(i, r)| seconds_line(r, &r.info.label, i, get(r).into_iter()))
            .collect()
    };
    let mut out = vec![
        chart(
            "chart-rps",
            "Throughput",
            "Requests per second of each run, against seconds since its start.",
            &time_chart(
                "rps",
                "requests/s",
                Scale::Linear,
                Unit::Count,
                per_run(&|r| {
                    r.timeseries
                        .requests
                        .iter()
                        .map(|v| Some(*v as f64))
                        .collect()
                }),
            ),
        )?,
        chart(
            "chart-latency",
            "P99 latency over time",
            "Corrected P99 latency per second of each run, on a log scale.",
            &time_chart(
                "latency",
                "P99 latency",
                Scale::Log,
                Unit::Millis,
                per_run(&|r| r.timeseries.p99_ms.clone()),
            ),
        )?,
        chart(
            "chart-distribution",
            "Latency distribution",
            "Corrected latency at each percentile, one line per run (from histograms with three significant digits).",
            &distribution_chart(
                runs.iter()
                    .enumerate()
                    .map(|(i, r)| Line {
                        label: r.info.label.clone(),
                        points: dist_points(&r.distribution),
                        color: i,
                        dashed: false,
                        fill: false,
                    })
                    .collect(),
            ),
        )?,
        chart(
            "chart-failures",
            "Failures over time",
            "Failed requests per second of each run.",
            &time_chart(
                "failures",
                "failures/s",
                Scale::Linear,
                Unit::Count,
                per_run(&|r| {
                    r.timeseries
                        .failures
                        .iter()
                        .map(|v| Some(*v as f64))
                        .collect()
                }),
            ),
        )?,
        chart(
            "chart-users",
            "Active users",
            "Virtual users of each run.",
            &time_chart(
                "users",
                "users",
                Scale::Linear,
                Unit::Count,
                per_run(&|r| {
                    r.timeseries
                        .users
                        .iter()
                        .map(|u| u.map(|v| v as f64))
                        .collect()
                }),
            ),
        )?,
        chart(
            "chart-lag",
            "Generator health: P99 schedule lag",
            "How late each run's engine started requests (worst core per second).",
            &time_chart(
                "lag",
                "P99 lag",
                Scale::Log,
                Unit::Millis,
                per_run(&|r| r.timeseries.lag_p99_ms.clone()),
            ),
        )?,
        chart(
            "chart-cpu",
            "Generator health: CPU",
            "Mean CPU use of each run's engine threads, % of one core.",
            &time_chart(
                "cpu",
                "CPU (% of a core)",
                Scale::Linear,
                Unit::Percent,
                per_run(&|r| r.timeseries.cpu_mean_pct.clone()),
            ),
        )?,
    ];
    Ok(out.drain(..).flatten().collect())
}

pub(super) fn failure_tables(runs: &[RunAnalysis]) -> Vec<TableView> {
    if runs.iter().all(|r| r.total.failures == 0) {
        return Vec::new();
    }
    let mut kinds: Vec<&str> = runs
        .iter()
        .flat_map(|r| r.failures.by_kind.iter().map(|k| k.0.as_str()))
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    let by_kind = TableView {
        id: "failures-kind".into(),
        title: "Failures by kind".into(),
        headers: run_headers(runs, "Kind", usize::MAX),
        class: "half".into(),
        rows: kinds
            .iter()
            .map(|k| {
                let mut row = vec![cell(*k)];
                row.extend(runs.iter().map(|r| {
                    let n = r
                        .failures
                        .by_kind
                        .iter()
                        .find(|x| x.0 == *k)
                        .map_or(0, |x| x.1);
                    num(format::int(n), n as f64)
                }));
                row
            })
            .collect(),
        ..TableView::default()
    };
    let mut rows = Vec::new();
    for r in runs {
        for m in r.failures.messages.iter().take(10) {
            rows.push(vec![
                cell(r.info.label.clone()),
                cell(m.name.clone()),
                cell(m.kind.clone()),
                cell(if m.status == 0 {
                    "–".to_owned()
                } else {
                    m.status.to_string()
                }),
                CellView {
                    text: m.message.clone(),
                    class: "message".into(),
                    ..CellView::default()
                },
                num(format::int(m.count), m.count as f64),
            ]);
        }
    }
    let messages = TableView {
        id: "failures-messages".into(),
        title: "Most frequent failure messages".into(),
        caption: "The ten most frequent of each run; report.json has them all.".into(),
        class: "wide".into(),
        headers: vec![
            header("Run", false),
            header("Request", false),
            header("Kind", false),
            header("Status", false),
            header("Message", false),
            header("Count", true),
        ],
        rows,
        ..TableView::default()
    };
    vec![by_kind, messages]
}
