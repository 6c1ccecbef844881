//! The view of a single run: headline cards, per-request tables, charts, failure tables.

use super::chart::{chart, dist_points, distribution_chart, seconds_line, time_chart};
use super::{
    CardView, CellView, ChartView, MAX_MESSAGE_ROWS, TableView, UNSUPPORTED_NOTE, cell, header,
    latency_cell, num,
};
use crate::analysis::RunAnalysis;
use crate::charts::{Line, Mark, Scale, Unit};
use crate::error::Result;
use crate::format;
use crate::stats::{Latency, PERCENTILES, Summary, supports};

pub(super) fn cards(r: &RunAnalysis) -> Vec<CardView> {
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

pub(super) fn request_tables(r: &RunAnalysis) -> Vec<TableView> {
    let mut tables = vec![counts_table(r), latency_table(r, true)];
    let differs = r
        .endpoints
        .iter()
        .any(|s| latency_differs(&s.latency, &s.latency_uncorrected))
        || latency_differs(&r.total.latency, &r.total.latency_uncorrected);
    if differs {
        tables.push(latency_table(r, false));
    }
    tables.extend(super::phases::phase_table(r));
    tables
}

pub(super) fn charts(r: &RunAnalysis) -> Result<Vec<ChartView>> {
    let ts = &r.timeseries;
    let f = |v: &u64| Some(*v as f64);
    let mut out = Vec::new();
    // Every time chart marks the changes of the load, at the whole second each began.
    let marks = change_marks(r);
    let time_chart =
        |name: &'static str, y_label: &str, scale: Scale, unit: Unit, lines: Vec<Line>| {
            time_chart(name, y_label, scale, unit, lines).with_marks(&marks)
        };
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
    out.push(super::phases::phase_chart(r));
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
        "Virtual users that ran during each second (the most alive at once on each core), summed over the engine's \
         cores: the figure the engine's console shows.",
        &time_chart("users", "users", Scale::Linear, Unit::Count, vec![users]),
    )?);
    out.push(chart(
        "chart-lag",
        "Generator health: schedule lag",
        "How late the engine started requests (the worst core each second). A second lags when more than 1% of its \
         requests, and at least 5, started over 1 ms late; the health section names why. Corrected latency \
         includes lag.",
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
    if ts.dropped.iter().flatten().any(|&d| d > 0) {
        out.push(chart(
            "chart-dropped",
            "Generator health: dropped iterations",
            "Iterations the schedule called for that no free user could start, per second. Any drop means the \
             target saw less load than the profile asks for.",
            &time_chart(
                "dropped",
                "dropped/s",
                Scale::Linear,
                Unit::Count,
                vec![seconds_line(
                    r,
                    "dropped",
                    2,
                    ts.dropped.iter().map(|d| d.map(|v| v as f64)),
                )],
            ),
        )?);
    }
    out.push(chart(
        "chart-cpu",
        "Generator health: CPU",
        "CPU time of the engine's threads, as % of one core (user + system), over whole seconds. Near 100% the \
         generator saturates.",
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

/// A marker per change of the load: at the whole second it began, labelled with the new target.
fn change_marks(r: &RunAnalysis) -> Vec<Mark> {
    r.load_changes
        .iter()
        .map(|c| Mark {
            x: (c.at_us / 1_000_000) as f64,
            label: match c.what {
                formats::LoadChange::USERS => format!("→ {} users", format::count_f64(c.to)),
                formats::LoadChange::RATE => format!("→ {}/s", format::count_f64(c.to)),
                _ => "load changed".to_owned(),
            },
        })
        .collect()
}

/// The changes of the load made while the run went (steering), or an empty table.
pub(super) fn load_changes_table(r: &RunAnalysis) -> TableView {
    if r.load_changes.is_empty() {
        return TableView::default();
    }
    let what = |c: &formats::LoadChange| match c.what {
        formats::LoadChange::USERS => "users".to_owned(),
        formats::LoadChange::RATE => "arrival rate (/s)".to_owned(),
        code => format!("unknown (kind {code})"),
    };
    TableView {
        id: "load-changes".into(),
        title: "Load changes".into(),
        caption: "The run was steered while it went (the live dashboard): each change moved the run-wide target \
                  linearly from its value then to the new one over the ramp. The charts mark each at the whole \
                  second it began."
            .into(),
        headers: vec![
            header("Began", true),
            header("Second", true),
            header("What", false),
            header("From", true),
            header("To", true),
            header("Ramp", true),
            header("Who", false),
        ],
        rows: r
            .load_changes
            .iter()
            .map(|c| {
                let at_s = c.at_us as f64 / 1e6;
                let ramp_s = c.ramp_us as f64 / 1e6;
                vec![
                    num(format!("{at_s:.1} s"), at_s),
                    num(format::int(c.at_us / 1_000_000), (c.at_us / 1_000_000) as f64),
                    cell(what(c)),
                    num(format::count_f64(c.from), c.from),
                    num(format::count_f64(c.to), c.to),
                    num(
                        if c.ramp_us == 0 {
                            "at once".to_owned()
                        } else {
                            format!("{ramp_s:.1} s")
                        },
                        ramp_s,
                    ),
                    cell(c.who.clone()),
                ]
            })
            .collect(),
        ..TableView::default()
    }
}

pub(super) fn failure_tables(r: &RunAnalysis) -> Vec<TableView> {
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
