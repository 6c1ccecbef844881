//! The view of `analyzer compare`: the two-run comparison report, led by the answers against the
//! limits (one table per metric) and a pass/fail card. The words for each cell's verdict live here,
//! so the text table, JUnit and JSON say what the HTML and Markdown say.

use super::chart::{chart, dist_points, distribution_chart};
use super::{CardView, ChartView, ReportView, TableView, cell, header, num};
use crate::analysis::RunAnalysis;
use crate::charts::Line;
use crate::compare::{Cell, CompareResult, MetricKey, Row};
use crate::error::Result;
use crate::format;
use crate::significance::{Comparison, Decision, Metric, OnUndecided, Verdict};

/// Builds the view: the comparison report of both runs, with the verdicts first.
pub fn build(runs: &[RunAnalysis], result: &CompareResult) -> Result<ReportView> {
    let mut view = super::build(runs, 0)?;
    let (base, cand) = (&runs[0].info.label, &runs[1].info.label);
    view.title = "Regression check".into();
    view.subtitle = format!("{cand} against the baseline {base}");
    view.cards = cards(result);
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
                    verdict_text(c)
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

fn cards(result: &CompareResult) -> Vec<CardView> {
    // Cards name the cells briefly; the tables and the text output give each one's whole answer.
    let names = |decision: Decision| -> Vec<String> {
        result
            .decided(decision)
            .map(|(row, c)| format!("{} {}", row.name, c.metric.label()))
            .collect()
    };
    let (beyond, undecided) = (names(Decision::Beyond), names(Decision::Undecided));
    let within = result.count(Decision::Within);
    let limits = beyond.len() + undecided.len() + within;
    let passed = result.passed();
    let verdict = CardView {
        label: "Verdict".into(),
        value: match (passed, undecided.is_empty()) {
            (true, true) => "PASS".into(),
            (true, false) => "PASS, undecided".into(),
            (false, _) => "FAIL".into(),
        },
        detail: if !beyond.is_empty() {
            format!("{} of {limits} limits broken beyond noise", beyond.len())
        } else if undecided.is_empty() {
            format!("all {limits} limits decided: none broken")
        } else if result.on_undecided == OnUndecided::Pass {
            format!(
                "no limit broken, but {} of {limits} undecided: passed because --undecided pass",
                undecided.len()
            )
        } else {
            format!(
                "{} of {limits} limits undecided, and --undecided fail counts them as failures",
                undecided.len()
            )
        },
        class: if !passed {
            "bad".into()
        } else if !undecided.is_empty() {
            "warn".into()
        } else {
            "good".into()
        },
    };
    let listed = |items: &[String], what: &str| {
        const SHOWN: usize = 4;
        if items.is_empty() {
            return format!("of {limits} limits: {what}");
        }
        let mut text = items
            .iter()
            .take(SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(" · ");
        if items.len() > SHOWN {
            text.push_str(&format!(" · and {} more", items.len() - SHOWN));
        }
        text
    };
    let card = |label: &str, n: usize, detail: String, class: &str| CardView {
        label: label.into(),
        value: format::int(n as u64),
        detail,
        class: if n > 0 { class.into() } else { String::new() },
    };
    vec![
        verdict,
        card(
            "Beyond the limit",
            beyond.len(),
            listed(&beyond, "the whole interval past the limit"),
            "bad",
        ),
        card(
            "Undecided",
            undecided.len(),
            listed(
                &undecided,
                "the interval straddles the limit, or too few samples",
            ),
            "warn",
        ),
        card(
            "Within the limit",
            within,
            format!("of {limits} limits: the whole interval inside the limit"),
            "",
        ),
    ]
}

/// One table per metric: a row per request name. A metric with a limit shows the answer against it
/// and what would decide an undecided one; a metric without shows what changed and the smallest
/// change the runs could have detected.
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
            let mut headers = vec![
                header("Request", false),
                header("Baseline", true),
                header("Candidate", true),
                header("Change", true),
                header("Interval", true),
            ];
            let mut footnotes = Vec::new();
            match limit {
                Some(l) => {
                    headers.push(header(&format!("Against {}", limit_signed(metric, l)), false));
                    headers.push(header("What would decide", false));
                    footnotes.push(
                        "Within: the whole interval keeps the limit. Beyond: the whole interval breaks it (fails). \
                         Undecided: the interval straddles the limit, or a run holds too few samples for an \
                         interval; the last column says what run length would decide it, if the change stays \
                         what it is."
                            .into(),
                    );
                }
                None => {
                    headers.push(header("Change verdict", false));
                    headers.push(header("Detectable", true));
                    footnotes.push(
                        "Higher or lower: the interval excludes no change. Detectable: the smallest change in \
                         the worse direction this pair of runs would have detected (80 % power)."
                            .into(),
                    );
                }
            }
            TableView {
                id: format!("verdict-{}", metric.key()),
                title: format!("{}: candidate against baseline", metric.label()),
                caption: match limit {
                    Some(l) => format!(
                        "Limit: {} ({}). Intervals are {:.0} % family-wise over all {} comparisons.",
                        limit_signed(metric, l),
                        limit_meaning(metric),
                        result.confidence * 100.0,
                        result.comparisons
                    ),
                    None => format!(
                        "No limit: a change here is reported, never judged. \"Within noise\" means any change is under {}.",
                        limit_text(metric, metric.default_tolerance())
                    ),
                },
                headers,
                rows: result
                    .rows
                    .iter()
                    .map(|row| {
                        let cell_ = &row.cells[i];
                        let c = &cell_.result;
                        let mut name = cell(row.name.clone());
                        if row.name == crate::compare::ALL_REQUESTS {
                            name.class = "total".into();
                        }
                        let mut cells = vec![
                            name,
                            num(value_text(metric, c.baseline), c.baseline),
                            num(value_text(metric, c.candidate), c.candidate),
                            num(change_text(metric, c), c.change),
                            num(interval_text(metric, c), c.low),
                        ];
                        match &cell_.judgement {
                            Some(j) => {
                                let mut v = cell(verdict_text(cell_));
                                v.class = format!("decision {}", j.decision.as_str().replace(' ', "-"));
                                cells.push(v);
                                let mut why = cell(decide_text(cell_));
                                why.class = "why".into();
                                if let Some(s) = &c.shortfall {
                                    why.title = s.text.clone();
                                }
                                cells.push(why);
                            }
                            None => {
                                let mut v = cell(c.verdict.as_str());
                                if c.verdict == Verdict::TooFewSamples {
                                    v.class = "weak".into();
                                    v.title = c
                                        .shortfall
                                        .as_ref()
                                        .map(|s| s.text.clone())
                                        .unwrap_or_default();
                                } else if c.verdict == Verdict::NotResolvable {
                                    v.class = "weak".into();
                                }
                                cells.push(v);
                                cells.push(num(
                                    signed_text(metric, c.detectable, false),
                                    c.detectable,
                                ));
                            }
                        }
                        cells
                    })
                    .collect(),
                footnotes,
                class: String::new(),
            }
        })
        .collect()
}

/// What a limit on the metric means, in a few words.
fn limit_meaning(metric: MetricKey) -> &'static str {
    match metric {
        MetricKey::Throughput => "the candidate may be at most this much slower",
        MetricKey::ErrorRate => "the candidate's error rate may be at most this much higher",
        _ => "the candidate may be at most this much higher",
    }
}

/// The verdict of a cell in a few words: the answer against its limit, or what changed when it has
/// none.
pub(crate) fn verdict_text(c: &Cell) -> String {
    let r = &c.result;
    match &c.judgement {
        Some(j) => {
            let limit = limit_signed(c.metric, j.limit);
            match j.decision {
                Decision::Within => format!("within {limit}"),
                Decision::Beyond => format!("BEYOND {limit}"),
                _ if r.shortfall.is_some() => "UNDECIDED: too few samples".to_owned(),
                _ => format!("UNDECIDED: straddles {limit}"),
            }
        }
        None => match r.verdict {
            Verdict::NotResolvable if r.detectable.is_finite() => format!(
                "not resolvable (detectable: {})",
                limit_text(c.metric, r.detectable)
            ),
            v => v.as_str().to_owned(),
        },
    }
}

/// What would decide an undecided cell ("" when decided): the shortfall's numbers, or the run
/// length.
fn decide_text(c: &Cell) -> String {
    match &c.judgement {
        Some(j) if j.decision == Decision::Undecided => match &c.result.shortfall {
            Some(s) => format!(
                "{} ({} needs {} requests in {} windows; here as few as {} in {})",
                j.decide,
                c.result.metric.with_article(),
                format::int(s.min_requests),
                s.min_windows,
                format::int(s.requests),
                s.windows
            ),
            None => j.decide.clone(),
        },
        _ => String::new(),
    }
}

/// One limit's whole answer on one line: "GET / P99 +16.4 % [+2.3 % … +32.4 %] against +10.0 %:
/// undecided: the interval straddles the limit; about 4 min of this load would decide".
pub(crate) fn judgement_line(row: &Row, c: &Cell) -> String {
    let r = &c.result;
    let Some(j) = &c.judgement else {
        return format!(
            "{} {} {}: {}",
            row.name,
            c.metric.label(),
            change_text(c.metric, r),
            r.verdict.as_str()
        );
    };
    let head = format!(
        "{} {} {} [{}] against {}",
        row.name,
        c.metric.label(),
        change_text(c.metric, r),
        interval_text(c.metric, r),
        limit_signed(c.metric, j.limit)
    );
    match j.decision {
        Decision::Undecided => format!("{head}: undecided: {}; {}", j.reason, j.decide),
        Decision::Beyond => format!("{head}: BEYOND the limit"),
        _ => format!("{head}: within the limit"),
    }
}

pub(crate) fn value_text(metric: MetricKey, v: f64) -> String {
    if v.is_nan() {
        return "–".into();
    }
    match metric.metric() {
        Metric::Latency(_) | Metric::Mean => format::latency_us(v),
        Metric::ErrorRate | Metric::ShareAbove => format!("{:.2} %", v * 100.0),
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
        return "no interval".into();
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

/// A limit signed in the worse direction: "+10.0 %" for latency, "−5.0 %" for throughput,
/// "+0.5 pp" for the error rate.
pub(crate) fn limit_signed(metric: MetricKey, limit: f64) -> String {
    if metric == MetricKey::Throughput {
        signed_text(metric, -limit, true).replacen('-', "−", 1)
    } else {
        signed_text(metric, limit, true)
    }
}

fn method(result: &CompareResult) -> String {
    format!(
        "Intervals come from a moving-block bootstrap over one-second windows ({} replicates per comparison): \
         stretches of consecutive seconds are resampled, so slow spells stay together and the intervals are \
         not overconfident; they are never narrower than independent requests would give. Each interval holds \
         with {:.0} % confidence for all {} comparisons together (Bonferroni). Against a limit: within (the \
         whole interval keeps it), beyond (the whole interval breaks it; fails), or undecided (the interval \
         straddles it, or a run holds fewer than {} one-second windows with samples, or fewer than 10 samples \
         above a percentile; {} by --undecided {}). Without a limit a change is only described: higher or \
         lower (the interval excludes no change), within noise, not resolvable. Latency is the corrected \
         latency (from the intended start), bucketed to 0.8 % for the resampling.",
        result.replicates,
        result.confidence * 100.0,
        result.comparisons,
        crate::significance::MIN_WINDOWS,
        match result.on_undecided {
            OnUndecided::Pass => "passed",
            OnUndecided::Fail => "failed",
        },
        result.on_undecided.as_str(),
    )
}
