//! The flat view the templates render: strings and numbers only, built from one or more
//! [`RunAnalysis`]. All formatting decisions live here, so the HTML and Markdown say the same thing.
//!
//! Text that came from a target (request names, failure messages) stays plain text in the view; the
//! HTML template's autoescaping and the Markdown renderer's escaping turn it into safe output.

mod chart;
mod compare;
mod phases;
mod shards;
mod single;
mod tasks;
pub mod verdict;

pub use shards::ShardsView;

use serde::Serialize;

use crate::analysis::RunAnalysis;
use crate::error::Result;
use crate::format;
use crate::health::{self, Verdict};
use crate::load::Severity;
use crate::stats::{MIN_TAIL_SAMPLES, supports};

/// Rows of the failure-message tables beyond this are summed into one "… more" row.
pub const MAX_MESSAGE_ROWS: usize = 25;

/// Everything the report templates show.
#[derive(Debug, Clone, Serialize)]
pub struct ReportView {
    /// The page title.
    pub title: String,
    /// The line under it.
    pub subtitle: String,
    /// Whether several runs are compared.
    pub comparison: bool,
    /// `analyzer 0.1.0`.
    pub generator: String,
    /// Run facts: one column per run.
    pub facts: TableView,
    /// Headline figures of a single run.
    pub cards: Vec<CardView>,
    /// Headline figures of several runs, with deltas.
    pub headline: Option<TableView>,
    /// Per-request tables.
    pub request_tables: Vec<TableView>,
    /// The load model, user kinds and tasks, and tags of a single run (empty in a comparison).
    pub model_tables: Vec<TableView>,
    /// Charts.
    pub charts: Vec<ChartView>,
    /// Failure tables.
    pub failure_tables: Vec<TableView>,
    /// Whether any run had a failure.
    pub any_failures: bool,
    /// Data-quality notes.
    pub notes: Vec<NoteView>,
    /// The verdict on each run's load generator.
    pub health: Vec<HealthView>,
    /// The generator's health figures: one row per run.
    pub health_table: TableView,
    /// The lagging seconds of a single run with what the engine measured in each (empty title when
    /// none lagged, or in a comparison).
    pub health_seconds: TableView,
    /// The shards of each sharded run (empty when no run is sharded).
    pub shards: Vec<ShardsView>,
    /// The changes of the load made while a single run went (steering); no rows when none.
    pub load_changes: TableView,
    /// How the numbers were computed, one paragraph per entry.
    pub method: Vec<String>,
}

/// The verdict on one run's load generator.
#[derive(Debug, Clone, Serialize)]
pub struct HealthView {
    /// The run's label.
    pub run: String,
    /// `OK`, `SUSPECT`, `INVALID` or `UNKNOWN`.
    pub verdict: String,
    /// `ok`, `suspect`, `invalid` or `unknown`, for styling.
    pub class: String,
    /// What the verdict means, in one sentence.
    pub summary: String,
    /// Why, one sentence per finding.
    pub reasons: Vec<String>,
    /// Findings that do not change the verdict.
    pub notes: Vec<String>,
}

/// One headline figure.
#[derive(Debug, Clone, Serialize)]
pub struct CardView {
    /// What it is ("P99 latency").
    pub label: String,
    /// The figure ("48.2 ms").
    pub value: String,
    /// A line of context ("n = 120,000 · uncorrected 31.0 ms").
    pub detail: String,
    /// "", "bad" or "weak" for styling.
    pub class: String,
}

/// A table: headers and rows of cells.
#[derive(Debug, Clone, Serialize, Default)]
pub struct TableView {
    /// An anchor id.
    pub id: String,
    /// The heading above the table.
    pub title: String,
    /// A sentence under the heading.
    pub caption: String,
    /// Column headers.
    pub headers: Vec<CellView>,
    /// Rows.
    pub rows: Vec<Vec<CellView>>,
    /// Footnotes under the table.
    pub footnotes: Vec<String>,
    /// Extra CSS classes for the table's block: `facts`, `single` (hide the header row), `half`.
    pub class: String,
}

/// One cell.
#[derive(Debug, Clone, Serialize, Default)]
pub struct CellView {
    /// The text.
    pub text: String,
    /// A second, smaller line (a delta against the baseline), or "".
    pub sub: String,
    /// CSS classes: `num`, `weak` (unsupported percentile), `worse`, `better`, `total`, `swatch-N`.
    pub class: String,
    /// A tooltip, or "".
    pub title: String,
    /// Sort key for numeric columns ("" sorts as text).
    pub sort: String,
}

/// A chart and its caption.
#[derive(Debug, Clone, Serialize)]
pub struct ChartView {
    /// An anchor id.
    pub id: String,
    /// The heading.
    pub title: String,
    /// What to read from it.
    pub caption: String,
    /// The SVG markup, drawn by plotters (text escaped by it).
    pub svg: String,
    /// The legend, for charts of several lines.
    pub legend: Vec<LegendView>,
}

/// One legend entry.
#[derive(Debug, Clone, Serialize)]
pub struct LegendView {
    /// The line's label.
    pub label: String,
    /// Its colour, `#rrggbb` from the chart palette.
    pub color: String,
    /// "dashed" or "".
    pub style: String,
}

/// A data-quality note.
#[derive(Debug, Clone, Serialize)]
pub struct NoteView {
    /// "warning" or "info".
    pub severity: String,
    /// The run (in a comparison) and file.
    pub file: String,
    /// What happened.
    pub message: String,
}

pub(super) fn cell(text: impl Into<String>) -> CellView {
    CellView {
        text: text.into(),
        ..CellView::default()
    }
}

pub(super) fn num(text: impl Into<String>, sort: f64) -> CellView {
    CellView {
        text: text.into(),
        class: "num".into(),
        sort: format!("{sort:.3}"),
        ..CellView::default()
    }
}

pub(super) fn header(text: &str, numeric: bool) -> CellView {
    CellView {
        text: text.into(),
        class: if numeric { "num".into() } else { String::new() },
        ..CellView::default()
    }
}

/// A latency cell; an unsupported percentile is marked with † and the class `weak`.
pub(super) fn latency_cell(us: f64, count: u64, q: Option<f64>) -> CellView {
    let mut c = num(format::latency_us(us), us);
    if count == 0 {
        return num("–", 0.0);
    }
    if let Some(q) = q
        && !supports(count, q)
    {
        c.text.push('†');
        c.class.push_str(" weak");
        c.title = format!(
            "only {:.1} of {} samples lie above this percentile; at least {MIN_TAIL_SAMPLES} are needed for a solid figure",
            count as f64 * (1.0 - q),
            format::int(count)
        );
    }
    c
}

pub(super) const UNSUPPORTED_NOTE: &str = "† Fewer than 10 samples lie above this percentile (n·(1−q) < 10), so it rests on a \
    handful of requests: read it as a rough figure.";

/// Builds the view for one run (a single-run report) or several (a comparison against `baseline`).
pub fn build(runs: &[RunAnalysis], baseline: usize) -> Result<ReportView> {
    let comparison = runs.len() > 1;
    let first = &runs[0];
    let profile = if first.info.profile.is_empty() {
        "unnamed profile"
    } else {
        first.info.profile.as_str()
    };
    let (title, subtitle) = if comparison {
        (
            format!("Comparison of {} runs", runs.len()),
            format!(
                "Deltas against {} (the baseline)",
                runs[baseline].info.label
            ),
        )
    } else {
        (
            format!("Load test report: {profile}"),
            first.info.label.clone(),
        )
    };
    let mut view = ReportView {
        title,
        subtitle,
        comparison,
        generator: format!("analyzer {}", env!("CARGO_PKG_VERSION")),
        facts: facts(runs),
        cards: Vec::new(),
        headline: None,
        request_tables: Vec::new(),
        model_tables: Vec::new(),
        charts: Vec::new(),
        failure_tables: Vec::new(),
        any_failures: runs.iter().any(|r| r.total.failures > 0),
        notes: notes(runs),
        health: runs.iter().map(health_view).collect(),
        health_table: health_table(runs),
        health_seconds: if comparison {
            TableView::default()
        } else {
            health_seconds(first)
        },
        shards: shards::views(runs),
        load_changes: if comparison {
            TableView::default()
        } else {
            single::load_changes_table(first)
        },
        method: method(runs),
    };
    shards::name_worst_shards(&mut view.health_table, runs);
    if comparison {
        view.headline = Some(compare::headline_table(runs, baseline));
        view.request_tables = compare::request_tables(runs, baseline);
        view.charts = compare::charts(runs)?;
        view.failure_tables = compare::failure_tables(runs);
    } else {
        view.cards = single::cards(first);
        view.request_tables = single::request_tables(first);
        view.model_tables = tasks::tables(first);
        view.charts = single::charts(first)?;
        view.failure_tables = single::failure_tables(first);
    }
    Ok(view)
}

fn health_view(r: &RunAnalysis) -> HealthView {
    let v = r.health.verdict;
    let h = &r.health;
    let summary = match v {
        Verdict::Ok => format!(
            "the generator kept its schedule: in none of {} seconds ({} requests) did more than {}% of the requests \
             start over {} ms late, no iteration was dropped, no core reached {} % CPU",
            h.seconds,
            format::int(h.requests),
            formats::health::LATE_SHARE_PCT,
            health::LAG_LIMIT_MS,
            health::CPU_LIMIT_PCT
        ),
        Verdict::Suspect => {
            "the generator did not keep its schedule at times (why is below): read the numbers with care".into()
        }
        Verdict::Invalid => {
            "the generator did not apply the load the profile asks for: these numbers describe a different test".into()
        }
        Verdict::Unknown => "the generator's health cannot be judged".into(),
    };
    HealthView {
        run: r.info.label.clone(),
        verdict: v.as_str().into(),
        class: v.as_str().to_ascii_lowercase(),
        summary,
        reasons: r.health.reasons.clone(),
        notes: r.health.notes.clone(),
    }
}

fn health_table(runs: &[RunAnalysis]) -> TableView {
    let rows = runs
        .iter()
        .map(|r| {
            let h = &r.health;
            vec![
                cell(r.info.label.clone()),
                CellView {
                    text: h.verdict.as_str().into(),
                    class: format!("verdict-{}", h.verdict.as_str().to_ascii_lowercase()),
                    ..CellView::default()
                },
                num(
                    format::latency_us(h.worst_lag_p99_ms * 1000.0),
                    h.worst_lag_p99_ms,
                ),
                num(
                    format!("{} of {}", h.lagging_seconds, h.seconds),
                    f64::from(h.lagging_seconds),
                ),
                num(
                    format!(
                        "{} of {}",
                        format::int(h.late_requests),
                        format::int(h.requests)
                    ),
                    h.late_requests as f64,
                ),
                cell(if h.causes.is_empty() {
                    "–".to_owned()
                } else {
                    h.causes
                        .iter()
                        .map(|c| format!("{} ({} s)", c.cause.name(), c.seconds.len()))
                        .collect::<Vec<_>>()
                        .join(", ")
                }),
                num(
                    format::int(h.iterations_started),
                    h.iterations_started as f64,
                ),
                num(
                    format::int(h.iterations_dropped),
                    h.iterations_dropped as f64,
                ),
                num(format!("{:.0} %", h.cpu_max_pct), h.cpu_max_pct),
            ]
        })
        .collect();
    TableView {
        id: "health-figures".into(),
        title: "Health figures".into(),
        caption: format!(
            "From the engine's per-second records, whole seconds only. Schedule lag is actual minus intended start \
             (worst core each second). A request is late when it started more than {} ms late; a second lags when \
             more than {}% of its requests, and at least {}, were late. CPU is the busiest engine core's, in its \
             busiest second.",
            health::LAG_LIMIT_MS,
            formats::health::LATE_SHARE_PCT,
            formats::health::MIN_LATE_REQUESTS
        ),
        headers: vec![
            header("Run", false),
            header("Verdict", false),
            header("Worst lag P99", true),
            header("Seconds lagging", true),
            header("Late requests", true),
            header("Causes", false),
            header("Iterations", true),
            header("Dropped", true),
            header("Peak CPU", true),
        ],
        rows,
        ..TableView::default()
    }
}

/// The lagging seconds of a run, one row each, with the figures that name their cause.
fn health_seconds(r: &RunAnalysis) -> TableView {
    let h = &r.health;
    if h.lagging.is_empty() {
        return TableView::default();
    }
    let ms = |v: f64| num(format::latency_us(v * 1000.0), v);
    let unknown = || num("unknown", -1.0);
    let rows = h
        .lagging
        .iter()
        .map(|e| {
            vec![
                num(
                    format!("{} ({}–{} s)", e.second, e.second - 1, e.second),
                    f64::from(e.second),
                ),
                num(
                    format!("{} of {}", format::int(e.late), format::int(e.requests)),
                    e.late as f64,
                ),
                ms(e.lag_p99_ms),
                ms(e.lag_max_ms),
                cell(e.cause.name()),
                num(e.core.to_string(), f64::from(e.core)),
                num(format!("{:.0} %", e.cpu_pct), e.cpu_pct),
                e.run_delay_ms.map_or_else(unknown, ms),
                num(e.preemptions.to_string(), f64::from(e.preemptions)),
                e.steal_pct
                    .map_or_else(unknown, |p| num(format!("{p:.0} %"), p)),
                ms(e.wake_late_max_ms),
                num(e.users_started.to_string(), f64::from(e.users_started)),
            ]
        })
        .collect();
    let mut footnotes = Vec::new();
    if h.lagging_seconds as usize > h.lagging.len() {
        footnotes.push(format!(
            "The {} seconds with most late requests of {}; report.json lists the same.",
            h.lagging.len(),
            h.lagging_seconds
        ));
    }
    TableView {
        id: "health-seconds".into(),
        title: "Lagging seconds and their evidence".into(),
        caption: "Second n is the n-th second of the run, as the engine's console numbers it. The figures are the \
                  core with most late requests: its CPU use, the time it waited for a CPU while runnable \
                  (run delay), how often the kernel preempted it, its CPU's steal time, how late its timed waits \
                  woke, and users it started. docs/load-models.md#generator-health has the rules."
            .into(),
        headers: vec![
            header("Second", true),
            header("Late requests", true),
            header("Lag P99", true),
            header("Lag max", true),
            header("Cause", false),
            header("Core", true),
            header("CPU", true),
            header("Run delay", true),
            header("Preempted", true),
            header("Steal", true),
            header("Wake-up late", true),
            header("Users started", true),
        ],
        rows,
        footnotes,
        class: "wide".into(),
    }
}

fn facts(runs: &[RunAnalysis]) -> TableView {
    let mut headers = vec![header("", false)];
    headers.extend(runs.iter().enumerate().map(|(i, r)| CellView {
        text: r.info.label.clone(),
        class: format!("run swatch-{}", i % 8),
        ..CellView::default()
    }));
    let or_dash = |s: &str| {
        if s.is_empty() {
            "–".to_owned()
        } else {
            s.to_owned()
        }
    };
    type Fact<'a> = (&'static str, Box<dyn Fn(&RunAnalysis) -> String + 'a>);
    let rows: Vec<Fact<'_>> = vec![
        ("Profile", Box::new(|r| or_dash(&r.info.profile))),
        (
            "Environment",
            Box::new(|r| or_dash(r.info.environment.as_deref().unwrap_or(""))),
        ),
        (
            "Target",
            Box::new(|r| or_dash(r.info.target.as_deref().unwrap_or(""))),
        ),
        (
            "Started (UTC)",
            Box::new(|r| or_dash(&r.info.started_at.replace('T', " "))),
        ),
        (
            "Duration",
            Box::new(|r| format::duration_s(r.info.duration_s)),
        ),
        (
            "Measured window",
            Box::new(|r| {
                let mut s = format::duration_s(r.window_s);
                if r.skip_s > 0.0 {
                    s.push_str(&format!(
                        " (first {} skipped as warm-up)",
                        format::duration_s(r.skip_s)
                    ));
                }
                s
            }),
        ),
        ("State", Box::new(|r| or_dash(&r.info.state))),
        (
            "Host",
            Box::new(|r| {
                let mut s = or_dash(&r.info.host);
                if r.info.cpu_count > 0 {
                    s.push_str(&format!(" ({} CPUs, {})", r.info.cpu_count, r.info.kernel));
                }
                s
            }),
        ),
        (
            "Engine",
            Box::new(|r| {
                format!(
                    "{} · {} · {}",
                    or_dash(&r.info.engine_version),
                    or_dash(&r.info.io_driver),
                    format::count(r.info.cores as u64, "core")
                )
            }),
        ),
        ("Run id", Box::new(|r| or_dash(&r.info.id))),
    ];
    let rows = rows
        .into_iter()
        .map(|(label, f)| {
            let mut row = vec![CellView {
                text: label.into(),
                class: "fact".into(),
                ..CellView::default()
            }];
            row.extend(runs.iter().map(|r| cell(f(r))));
            row
        })
        .collect();
    let class = if runs.len() == 1 {
        "facts single"
    } else {
        "facts"
    };
    TableView {
        id: "run".into(),
        headers,
        rows,
        class: class.into(),
        ..TableView::default()
    }
}

fn notes(runs: &[RunAnalysis]) -> Vec<NoteView> {
    let mut out = Vec::new();
    for r in runs {
        let prefix = if runs.len() > 1 {
            format!("{}: ", r.info.label)
        } else {
            String::new()
        };
        for n in &r.notes {
            out.push(NoteView {
                severity: match n.severity {
                    Severity::Warning => "warning".into(),
                    Severity::Info => "info".into(),
                },
                file: format!("{prefix}{}", n.file),
                message: n.message.clone(),
            });
        }
        if r.skipped > 0 {
            out.push(NoteView {
                severity: "info".into(),
                file: format!("{prefix}--skip"),
                message: format!(
                    "{} samples that were meant to start in the first {} were left out as warm-up.",
                    format::int(r.skipped),
                    format::duration_s(r.skip_s)
                ),
            });
        }
    }
    out
}

fn method(runs: &[RunAnalysis]) -> Vec<String> {
    let methods: Vec<&str> = runs.iter().map(|r| r.method.as_str()).collect();
    vec![
        format!(
            "Percentiles are {}: P(q) of n latencies is the ⌈q·n⌉-th smallest, a latency some request really had. \
             Each is computed from all n samples of its row (n is the Requests column).",
            methods[0]
        ),
        "Corrected latency counts from the moment the schedule meant a request to start, so time spent waiting \
         for a busy load generator is included (coordinated omission is corrected). Uncorrected latency counts \
         from the moment the request was actually sent."
            .into(),
        "Throughput is requests divided by the measured window: from the first request's intended start (after \
         any --skip) to the last response."
            .into(),
        "Per-second series, charts and the generator's health cover whole seconds. The interval each engine core \
         closes when the run ends (the grace period after the planned end, or the fraction of a second before an \
         interrupt) is left out of them, as the engine's console leaves it out; the tables count every request."
            .into(),
    ]
}
