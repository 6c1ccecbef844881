//! The flat view the templates render: strings and numbers only, built from one or more
//! [`RunAnalysis`]. All formatting decisions live here, so the HTML and Markdown say the same thing.
//!
//! Text that came from a target (request names, failure messages) stays plain text in the view; the
//! HTML template's autoescaping and the Markdown renderer's escaping turn it into safe output.

use serde::Serialize;

use crate::analysis::RunAnalysis;
use crate::charts::{Line, LineChart, Scale, Unit, XAxis};
use crate::error::Result;
use crate::format;
use crate::load::Severity;
use crate::stats::{Latency, MIN_TAIL_SAMPLES, PERCENTILES, Summary, supports};

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
    /// Charts.
    pub charts: Vec<ChartView>,
    /// Failure tables.
    pub failure_tables: Vec<TableView>,
    /// Whether any run had a failure.
    pub any_failures: bool,
    /// Data-quality notes.
    pub notes: Vec<NoteView>,
    /// How the numbers were computed, one paragraph per entry.
    pub method: Vec<String>,
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

fn cell(text: impl Into<String>) -> CellView {
    CellView {
        text: text.into(),
        ..CellView::default()
    }
}

fn num(text: impl Into<String>, sort: f64) -> CellView {
    CellView {
        text: text.into(),
        class: "num".into(),
        sort: format!("{sort:.3}"),
        ..CellView::default()
    }
}

fn header(text: &str, numeric: bool) -> CellView {
    CellView {
        text: text.into(),
        class: if numeric { "num".into() } else { String::new() },
        ..CellView::default()
    }
}

/// A latency cell; an unsupported percentile is marked with † and the class `weak`.
fn latency_cell(us: f64, count: u64, q: Option<f64>) -> CellView {
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

const UNSUPPORTED_NOTE: &str = "† Fewer than 10 samples lie above this percentile (n·(1−q) < 10), so it rests on a \
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
        charts: Vec::new(),
        failure_tables: Vec::new(),
        any_failures: runs.iter().any(|r| r.total.failures > 0),
        notes: notes(runs),
        method: method(runs),
    };
    if comparison {
        view.headline = Some(headline_table(runs, baseline));
        view.request_tables = compare_request_tables(runs, baseline);
        view.charts = compare_charts(runs)?;
        view.failure_tables = compare_failure_tables(runs);
    } else {
        view.cards = cards(first);
        view.request_tables = request_tables(first);
        view.charts = charts(first)?;
        view.failure_tables = failure_tables(first);
    }
    Ok(view)
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
                    "{} · {} · {} cores",
                    or_dash(&r.info.engine_version),
                    or_dash(&r.info.io_driver),
                    r.info.cores
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

fn cards(r: &RunAnalysis) -> Vec<CardView> {
    let t = &r.total;
    let n = format!("n = {}", format::int(t.requests));
    let p = |key: &str, l: &Latency| l.percentile(key).unwrap_or(0.0);
    let q = |key: &str| PERCENTILES.iter().find(|x| x.1 == key).map_or(0.5, |x| x.2);
    let lat_card = |label: &str, key: &str| {
        let c = p(key, &t.latency);
        let u = p(key, &t.latency_uncorrected);
        let mut detail = n.clone();
        if (c - u).abs() > 0.0005 * c.max(1.0) {
            detail.push_str(&format!(" · uncorrected {}", format::latency_us(u)));
        }
        let weak = !supports(t.requests, q(key));
        CardView {
            label: label.into(),
            value: format!("{}{}", format::latency_us(c), if weak { "†" } else { "" }),
            detail,
            class: if weak { "weak".into() } else { String::new() },
        }
    };
    vec![
        CardView {
            label: "Requests".into(),
            value: format::int(t.requests),
            detail: format!("in {}", format::duration_s(r.window_s)),
            class: String::new(),
        },
        CardView {
            label: "Throughput".into(),
            value: format!("{} /s", format::rate(t.rps)),
            detail: format!(
                "{} sent · {} received",
                format::bytes(t.bytes_sent),
                format::bytes(t.bytes_received)
            ),
            class: String::new(),
        },
        CardView {
            label: "Failures".into(),
            value: format::pct(t.failure_pct()),
            detail: format!("{} failed", format::int(t.failures)),
            class: if t.failures > 0 {
                "bad".into()
            } else {
                String::new()
            },
        },
        CardView {
            label: "Mean latency".into(),
            value: format::latency_us(t.latency.mean),
            detail: format!("std dev {}", format::latency_us(t.latency.stddev)),
            class: String::new(),
        },
        lat_card("Median latency (P50)", "p50"),
        lat_card("P99 latency", "p99"),
        lat_card("P99.9 latency", "p999"),
        CardView {
            label: "Max latency".into(),
            value: format::latency_us(t.latency.max),
            detail: format!("min {}", format::latency_us(t.latency.min)),
            class: String::new(),
        },
    ]
}

fn latency_differs(a: &Latency, b: &Latency) -> bool {
    a.percentiles
        .iter()
        .chain([&a.max])
        .zip(b.percentiles.iter().chain([&b.max]))
        .any(|(x, y)| (x - y).abs() > 0.0005 * x.max(1.0))
}

fn mark_total(mut cells: Vec<CellView>, total: bool) -> Vec<CellView> {
    if total {
        for c in &mut cells {
            c.class.push_str(" total");
        }
    }
    cells
}

fn name_cell(s: &Summary) -> CellView {
    CellView {
        text: s.name.clone(),
        class: "name".into(),
        ..CellView::default()
    }
}

/// Counts, rates and bytes per request name.
fn counts_table(r: &RunAnalysis) -> TableView {
    let headers = [
        "Request",
        "Requests",
        "Failures",
        "Failure %",
        "req/s",
        "Sent",
        "Received",
    ]
    .iter()
    .enumerate()
    .map(|(i, h)| header(h, i > 0))
    .collect();
    let row = |s: &Summary, total: bool| {
        let mut failures = num(format::int(s.failures), s.failures as f64);
        let mut pct = num(format::pct(s.failure_pct()), s.failure_pct());
        if s.failures > 0 {
            failures.class.push_str(" bad");
            pct.class.push_str(" bad");
        }
        let cells = vec![
            name_cell(s),
            num(format::int(s.requests), s.requests as f64),
            failures,
            pct,
            num(format::rate(s.rps), s.rps),
            num(format::bytes(s.bytes_sent), s.bytes_sent as f64),
            num(format::bytes(s.bytes_received), s.bytes_received as f64),
        ];
        mark_total(cells, total)
    };
    let mut rows: Vec<Vec<CellView>> = r.endpoints.iter().map(|s| row(s, false)).collect();
    rows.push(row(&r.total, true));
    TableView {
        id: "requests".into(),
        title: "Requests".into(),
        caption: "Requests per second are over the measured window. A failure is any outcome other than ok \
                  (see Failures below)."
            .into(),
        headers,
        rows,
        ..TableView::default()
    }
}

/// Latency statistics per request name, corrected or uncorrected, each row with its sample count.
fn latency_table(r: &RunAnalysis, corrected: bool) -> TableView {
    let mut headers: Vec<CellView> = ["Request", "n", "Min", "Mean", "Std dev"]
        .iter()
        .enumerate()
        .map(|(i, h)| header(h, i > 0))
        .collect();
    headers.extend(PERCENTILES.iter().map(|p| header(p.0, true)));
    headers.push(header("Max", true));
    let row = |s: &Summary, total: bool| {
        let l = if corrected {
            &s.latency
        } else {
            &s.latency_uncorrected
        };
        let mut cells = vec![
            name_cell(s),
            num(format::int(l.count), l.count as f64),
            latency_cell(l.min, l.count, None),
            latency_cell(l.mean, l.count, None),
            latency_cell(l.stddev, l.count, None),
        ];
        cells.extend(
            PERCENTILES
                .iter()
                .zip(l.percentiles)
                .map(|(p, v)| latency_cell(v, l.count, Some(p.2))),
        );
        cells.push(latency_cell(l.max, l.count, None));
        mark_total(cells, total)
    };
    let mut rows: Vec<Vec<CellView>> = r.endpoints.iter().map(|s| row(s, false)).collect();
    rows.push(row(&r.total, true));
    let weak = rows.iter().flatten().any(|c| c.class.contains("weak"));
    let (id, title, caption) = if corrected {
        (
            "latency",
            "Latency from the intended start (corrected)",
            "What a user arriving on schedule would have waited, including any time the load generator \
             took to start the request. n is the number of samples every figure in the row rests on.",
        )
    } else {
        (
            "latency-uncorrected",
            "Latency from the actual start (uncorrected)",
            "What the socket saw, from the moment the request was sent. It is lower than the corrected \
             latency wherever the generator started requests late; the difference is time users spent \
             waiting for it.",
        )
    };
    TableView {
        id: id.into(),
        title: title.into(),
        caption: caption.into(),
        headers,
        rows,
        footnotes: if weak {
            vec![UNSUPPORTED_NOTE.into()]
        } else {
            Vec::new()
        },
        ..TableView::default()
    }
}

fn request_tables(r: &RunAnalysis) -> Vec<TableView> {
    let mut tables = vec![counts_table(r), latency_table(r, true)];
    let differs = r
        .endpoints
        .iter()
        .any(|s| latency_differs(&s.latency, &s.latency_uncorrected))
        || latency_differs(&r.total.latency, &r.total.latency_uncorrected);
    if differs {
        tables.push(latency_table(r, false));
    }
    tables
}

fn seconds_line(
    r: &RunAnalysis,
    label: &str,
    color: usize,
    values: impl Iterator<Item = Option<f64>>,
) -> Line {
    Line {
        label: label.into(),
        points: r
            .timeseries
            .t_s
            .iter()
            .map(|&t| f64::from(t))
            .zip(values)
            .collect(),
        color,
        dashed: false,
        fill: false,
    }
}

fn chart(id: &str, title: &str, caption: &str, spec: &LineChart) -> Result<Option<ChartView>> {
    if !spec.has_data() {
        return Ok(None);
    }
    Ok(Some(ChartView {
        id: id.into(),
        title: title.into(),
        caption: caption.into(),
        svg: spec.to_svg()?,
        legend: spec
            .legend()
            .into_iter()
            .map(|(label, color, dashed)| LegendView {
                label,
                color,
                style: if dashed {
                    "dashed".into()
                } else {
                    String::new()
                },
            })
            .collect(),
    }))
}

fn time_chart(
    name: &'static str,
    y_label: &str,
    y_scale: Scale,
    y_unit: Unit,
    lines: Vec<Line>,
) -> LineChart {
    LineChart {
        name,
        x: XAxis::Seconds,
        x_label: "time since start (s)".into(),
        y_label: y_label.into(),
        y_scale,
        y_unit,
        lines,
    }
}

fn distribution_chart(lines: Vec<Line>) -> LineChart {
    LineChart {
        name: "distribution",
        x: XAxis::Percentile,
        x_label: "percentile".into(),
        y_label: "latency".into(),
        y_scale: Scale::Log,
        y_unit: Unit::Millis,
        lines,
    }
}

fn dist_points(points: &[(f64, f64)]) -> Vec<(f64, Option<f64>)> {
    points.iter().map(|&(q, v)| (q, Some(v))).collect()
}

fn charts(r: &RunAnalysis) -> Result<Vec<ChartView>> {
    let ts = &r.timeseries;
    let f = |v: &u64| Some(*v as f64);
    let mut out = Vec::new();
    let mut rps = seconds_line(r, "requests/s", 0, ts.requests.iter().map(f));
    rps.fill = true;
    out.push(chart(
        "chart-rps",
        "Throughput",
        "Requests per second, by the second in which each request was meant to start.",
        &time_chart("rps", "requests/s", Scale::Linear, Unit::Count, vec![rps]),
    )?);
    out.push(chart(
        "chart-latency",
        "Latency over time",
        "Corrected latency percentiles per second, on a log scale. A second with few requests has a noisy P99.",
        &time_chart(
            "latency",
            "latency",
            Scale::Log,
            Unit::Millis,
            vec![
                seconds_line(r, "P50", 0, ts.p50_ms.iter().copied()),
                seconds_line(r, "P95", 1, ts.p95_ms.iter().copied()),
                seconds_line(r, "P99", 2, ts.p99_ms.iter().copied()),
            ],
        ),
    )?);
    let mut uncorrected = Line {
        label: "from actual start (uncorrected)".into(),
        points: dist_points(&r.distribution_uncorrected),
        color: 1,
        dashed: true,
        fill: false,
    };
    let corrected = Line {
        label: "from intended start (corrected)".into(),
        points: dist_points(&r.distribution),
        color: 0,
        dashed: false,
        fill: false,
    };
    if r.distribution == r.distribution_uncorrected {
        uncorrected.points.clear();
    }
    let lines = if uncorrected.points.is_empty() {
        vec![corrected]
    } else {
        vec![corrected, uncorrected]
    };
    out.push(chart(
        "chart-distribution",
        "Latency distribution",
        "Latency at each percentile, HdrHistogram style: the tail spreads out to the right. Drawn from a histogram \
         with three significant digits; the tables are exact.",
        &distribution_chart(lines),
    )?);
    let failure_lines: Vec<Line> = r
        .failures
        .over_time
        .iter()
        .enumerate()
        .map(|(i, (kind, counts))| seconds_line(r, kind, (i + 2) % 8, counts.iter().map(f)))
        .collect();
    out.push(chart(
        "chart-failures",
        "Failures over time",
        "Failed requests per second, by kind.",
        &time_chart(
            "failures",
            "failures/s",
            Scale::Linear,
            Unit::Count,
            failure_lines,
        ),
    )?);
    let mut users = seconds_line(
        r,
        "active users",
        3,
        ts.users.iter().map(|u| u.map(|v| v as f64)),
    );
    users.fill = true;
    out.push(chart(
        "chart-users",
        "Active users",
        "Virtual users alive at the end of each second, summed over the engine's cores.",
        &time_chart("users", "users", Scale::Linear, Unit::Count, vec![users]),
    )?);
    out.push(chart(
        "chart-lag",
        "Generator health: schedule lag",
        "How late the engine started requests (the worst core each second). Sustained lag means the generator, \
         not the target, was the bottleneck; corrected latency includes it.",
        &time_chart(
            "lag",
            "lag",
            Scale::Log,
            Unit::Millis,
            vec![
                seconds_line(r, "P99 lag", 1, ts.lag_p99_ms.iter().copied()),
                seconds_line(r, "max lag", 2, ts.lag_max_ms.iter().copied()),
            ],
        ),
    )?);
    out.push(chart(
        "chart-cpu",
        "Generator health: CPU",
        "CPU time of the engine's threads, as % of one core (user + system). Near 100% the generator saturates.",
        &time_chart(
            "cpu",
            "CPU (% of a core)",
            Scale::Linear,
            Unit::Percent,
            vec![
                seconds_line(r, "mean over cores", 0, ts.cpu_mean_pct.iter().copied()),
                seconds_line(r, "busiest core", 1, ts.cpu_max_pct.iter().copied()),
            ],
        ),
    )?);
    Ok(out.into_iter().flatten().collect())
}

fn failure_tables(r: &RunAnalysis) -> Vec<TableView> {
    if r.total.failures == 0 {
        return Vec::new();
    }
    let total = r.total.failures as f64;
    let share = |n: u64| num(format::pct(100.0 * n as f64 / total), n as f64);
    let by_kind = TableView {
        id: "failures-kind".into(),
        title: "By kind".into(),
        class: "half".into(),
        headers: vec![
            header("Kind", false),
            header("Failures", true),
            header("Share", true),
        ],
        rows: r
            .failures
            .by_kind
            .iter()
            .map(|(k, n)| vec![cell(k.clone()), num(format::int(*n), *n as f64), share(*n)])
            .collect(),
        ..TableView::default()
    };
    let by_status = TableView {
        id: "failures-status".into(),
        title: "By status code".into(),
        class: "half".into(),
        headers: vec![
            header("Status", false),
            header("Failures", true),
            header("Share", true),
        ],
        rows: r
            .failures
            .by_status
            .iter()
            .map(|(s, n)| {
                let status = if *s == 0 {
                    "no response".to_owned()
                } else {
                    s.to_string()
                };
                vec![cell(status), num(format::int(*n), *n as f64), share(*n)]
            })
            .collect(),
        ..TableView::default()
    };
    let mut rows: Vec<Vec<CellView>> = r
        .failures
        .messages
        .iter()
        .take(MAX_MESSAGE_ROWS)
        .map(|m| {
            vec![
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
            ]
        })
        .collect();
    let mut footnotes = Vec::new();
    if r.failures.messages.len() > MAX_MESSAGE_ROWS {
        let rest: u64 = r.failures.messages[MAX_MESSAGE_ROWS..]
            .iter()
            .map(|m| m.count)
            .sum();
        footnotes.push(format!(
            "{} more distinct (request, kind, status, message) combinations with {} failures are in report.json.",
            format::int((r.failures.messages.len() - MAX_MESSAGE_ROWS) as u64),
            format::int(rest)
        ));
    }
    rows.truncate(MAX_MESSAGE_ROWS);
    let messages = TableView {
        id: "failures-messages".into(),
        title: "Messages".into(),
        caption: "Each distinct failure, most frequent first. Messages are shown as recorded, as plain text.".into(),
        headers: vec![header("Request", false), header("Kind", false), header("Status", false), header("Message", false), header("Count", true)],
        rows,
        footnotes,
        class: "wide".into(),
    };
    vec![by_kind, by_status, messages]
}

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

fn headline_table(runs: &[RunAnalysis], baseline: usize) -> TableView {
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

fn compare_request_tables(runs: &[RunAnalysis], baseline: usize) -> Vec<TableView> {
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

fn compare_charts(runs: &[RunAnalysis]) -> Result<Vec<ChartView>> {
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

fn compare_failure_tables(runs: &[RunAnalysis]) -> Vec<TableView> {
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
    ]
}
