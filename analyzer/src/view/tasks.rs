//! The load model, user kinds and tasks, and tags of a single run.

use super::{CellView, TableView, cell, header, latency_cell, num};
use crate::analysis::RunAnalysis;
use crate::format;
use crate::tasks::TaskRow;

/// The tables of the "Load model and user kinds" section; empty when there is nothing to show.
pub(super) fn tables(r: &RunAnalysis) -> Vec<TableView> {
    let mut out = Vec::new();
    out.extend(load_model_table(r));
    out.extend(tasks_table(r));
    out.extend(tags_table(r));
    out
}

fn fact(label: &str, value: String) -> Vec<CellView> {
    vec![cell(label), cell(value)]
}

fn load_model_table(r: &RunAnalysis) -> Option<TableView> {
    let m = r.info.load_model.as_ref()?;
    let mut rows = vec![fact("Model", m.describe())];
    if !m.stages.is_empty() {
        rows.push(fact("Stages", m.stages_text()));
    }
    if let Some(s) = m.planned_duration_s {
        rows.push(fact("Planned duration", format::duration_s(s)));
    }
    if matches!(m.model.as_str(), "open" | "ramping_rate") {
        rows.push(fact(
            "Users (pool limit)",
            m.users
                .map_or("1,000 (default)".into(), |u| format::int(u64::from(u))),
        ));
        rows.push(fact(
            "Queue",
            m.queue
                .map_or("0 (an arrival with no free user is dropped)".into(), |q| {
                    format::int(u64::from(q))
                }),
        ));
    }
    if let Some(n) = m.iterations {
        rows.push(fact("Iteration limit (run)", format::int(n)));
    }
    if let Some(n) = m.iterations_per_user {
        rows.push(fact("Iteration limit (per user)", format::int(n)));
    }
    let total: u64 = m.user_kinds.iter().map(|k| u64::from(k.weight)).sum();
    for k in &m.user_kinds {
        let share = if total > 0 {
            100.0 * f64::from(k.weight) / total as f64
        } else {
            0.0
        };
        let mut text = format!(
            "weight {} ({}), {} task{}",
            k.weight,
            format::pct(share),
            k.tasks,
            if k.tasks == 1 { "" } else { "s" }
        );
        if let Some(n) = k.iterations {
            text.push_str(&format!(", {} iterations per user", format::int(n)));
        }
        if !k.tags.is_empty() {
            text.push_str(&format!(", tags: {}", k.tags.join(", ")));
        }
        rows.push(fact(&format!("User kind “{}”", k.name), text));
    }
    if let Some(t) = &r.info.tags {
        rows.push(fact("Tags in the profile", t.known.join(", ")));
        if !t.selected.is_empty() {
            rows.push(fact("Selected (--tags)", t.selected.join(", ")));
        }
        if !t.excluded.is_empty() {
            rows.push(fact("Excluded (--exclude-tags)", t.excluded.join(", ")));
        }
    }
    Some(TableView {
        id: "load-model".into(),
        title: "Load model".into(),
        caption: "As the run's manifest records the resolved profile (command-line overrides and tag selection applied)."
            .into(),
        headers: vec![header("", false), header("", false)],
        rows,
        class: "facts single".into(),
        ..TableView::default()
    })
}

fn figures(row: &TaskRow) -> Vec<CellView> {
    let mut failures = num(format::int(row.failures), row.failures as f64);
    let mut pct = num(format::pct(row.failure_pct()), row.failure_pct());
    if row.failures > 0 {
        failures.class.push_str(" bad");
        pct.class.push_str(" bad");
    }
    let l = &row.latency;
    // on_start and on_stop are not iterations.
    let iterations = if matches!(row.role.as_str(), "on_start" | "on_stop") {
        num("–", 0.0)
    } else {
        num(format::int(row.iterations), row.iterations as f64)
    };
    vec![
        iterations,
        num(format::int(row.requests), row.requests as f64),
        failures,
        pct,
        latency_cell(l.percentiles[0], l.count, Some(0.50)),
        latency_cell(l.percentiles[3], l.count, Some(0.95)),
        latency_cell(l.percentiles[4], l.count, Some(0.99)),
    ]
}

const FIGURE_HEADERS: [&str; 7] = [
    "Iterations",
    "Requests",
    "Failures",
    "Failure %",
    "P50",
    "P95",
    "P99",
];

fn tasks_table(r: &RunAnalysis) -> Option<TableView> {
    let a = &r.tasks;
    if a.kinds.is_empty() && a.unknown.is_none() {
        return None;
    }
    let mut rows = Vec::new();
    for (kind, tasks) in &a.kinds {
        let mut cells = vec![
            CellView {
                text: kind.kind.clone(),
                class: "name total".into(),
                ..CellView::default()
            },
            num(kind.weight.to_string(), f64::from(kind.weight)),
        ];
        cells.extend(figures(kind));
        for c in &mut cells[1..] {
            c.class.push_str(" total");
        }
        rows.push(cells);
        for t in tasks {
            let label = match t.role.as_str() {
                "task" => t.task.clone(),
                role => format!("({role})"),
            };
            let mut name = CellView {
                text: format!("{} / {label}", t.kind),
                class: "name".into(),
                ..CellView::default()
            };
            if !t.tags.is_empty() {
                name.sub = t.tags.join(", ");
            }
            let weight = if t.role == "task" {
                num(t.weight.to_string(), f64::from(t.weight))
            } else {
                num("–", 0.0)
            };
            let mut cells = vec![name, weight];
            cells.extend(figures(t));
            rows.push(cells);
        }
    }
    if let Some(u) = &a.unknown {
        let mut cells = vec![
            CellView {
                text: u.task.clone(),
                class: "name".into(),
                ..CellView::default()
            },
            num("–", 0.0),
        ];
        cells.extend(figures(u));
        rows.push(cells);
    }
    let mut headers = vec![header("User kind / task", false), header("Weight", true)];
    headers.extend(FIGURE_HEADERS.iter().map(|h| header(h, true)));
    let mut caption =
        "Per user kind (its own row, then its tasks): iterations (those that made a request), \
        requests, failures and corrected latency. A task's tags follow its name."
            .to_owned();
    if !a.known {
        caption = format!(
            "This run's logs do not say which task each request was for (they predate log format 1.2), so every \
             request is counted under “{}”.",
            crate::tasks::UNKNOWN_TASK
        );
    }
    let mut footnotes = Vec::new();
    if !a.exact {
        footnotes.push(
            "Percentiles here come from HdrHistograms with three significant digits (within 0.1%), as the run is \
             larger than fits in memory."
                .to_owned(),
        );
    }
    Some(TableView {
        id: "tasks".into(),
        title: "User kinds and tasks".into(),
        caption,
        headers,
        rows,
        footnotes,
        ..TableView::default()
    })
}

fn tags_table(r: &RunAnalysis) -> Option<TableView> {
    if r.tasks.tags.is_empty() {
        return None;
    }
    let rows = r
        .tasks
        .tags
        .iter()
        .map(|t| {
            let mut cells = vec![CellView {
                text: t.kind.clone(),
                class: "name".into(),
                ..CellView::default()
            }];
            cells.extend(figures(t));
            cells
        })
        .collect();
    let mut headers = vec![header("Tag", false)];
    headers.extend(FIGURE_HEADERS.iter().map(|h| header(h, true)));
    Some(TableView {
        id: "tags".into(),
        title: "By tag".into(),
        caption: "Each tag's tasks together: a task counts under every tag it, its user kind or one of its \
                  requests carries, so a request can count under several tags."
            .into(),
        headers,
        rows,
        ..TableView::default()
    })
}
