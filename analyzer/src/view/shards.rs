//! The view of a sharded run's shards: what is missing or stopped early (at the top of the report),
//! how the shards line up, and one row per shard.

use serde::Serialize;

use super::{CellView, TableView, cell, header, num};
use crate::analysis::RunAnalysis;
use crate::format;
use crate::shards::{ShardRow, ShardStatus, ShardsAnalysis};

/// One sharded run's shards.
#[derive(Debug, Clone, Serialize)]
pub struct ShardsView {
    /// The run's label (shown in comparisons).
    pub run: String,
    /// What merging means, and whether every shard completed.
    pub summary: String,
    /// `PARTIAL` when shards are missing, `INCOMPLETE` when some stopped early, else "".
    pub badge: String,
    /// Each missing, unreadable or unfinished shard, loudly.
    pub alerts: Vec<String>,
    /// How well the shards line up on the common clock.
    pub alignment: String,
    /// What may put samples in the wrong second.
    pub alignment_warnings: Vec<String>,
    /// One row per shard.
    pub table: TableView,
}

/// The shard views of every sharded run among `runs`.
pub(super) fn views(runs: &[RunAnalysis]) -> Vec<ShardsView> {
    runs.iter()
        .enumerate()
        .filter_map(|(i, r)| r.shards.as_ref().map(|s| view(i, r, s)))
        .collect()
}

fn view(position: usize, r: &RunAnalysis, s: &ShardsAnalysis) -> ShardsView {
    let badge = if s.partial {
        "PARTIAL"
    } else if !s.complete {
        "INCOMPLETE"
    } else {
        ""
    };
    let mut summary = format!(
        "{} engines (shards) ran this test; their logs are merged into one run: counts are sums over the shards, \
         percentiles are computed once over all of their samples together (never averaged over shards), and every \
         time series is on the common clock (the earliest shard's time zero).",
        s.count
    );
    if s.complete {
        summary.push_str(&format!(" All {} shards completed.", s.count));
    } else {
        summary.push_str(&format!(" {} of {} shards are merged.", s.merged, s.count));
    }
    ShardsView {
        run: r.info.label.clone(),
        summary,
        badge: badge.into(),
        alerts: s.alerts.clone(),
        alignment: s.alignment.summary.clone(),
        alignment_warnings: s.alignment.warnings.clone(),
        table: table(position, r, s),
    }
}

/// Names the shard behind a sharded run's worst lag and peak CPU in the health figures table (one row
/// per run, in run order), so that a per-core figure never stands without its shard.
pub(super) fn name_worst_shards(table: &mut TableView, runs: &[RunAnalysis]) {
    let column = |name: &str| table.headers.iter().position(|h| h.text == name);
    let (Some(lag), Some(cpu)) = (column("Worst lag P99"), column("Peak CPU")) else {
        return;
    };
    for (row, r) in table.rows.iter_mut().zip(runs) {
        let Some(s) = &r.shards else { continue };
        let worst = |f: fn(&ShardRow) -> Option<f64>| {
            s.shards
                .iter()
                .filter_map(|row| f(row).map(|v| (v, row)))
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, row)| row)
        };
        let name = |row: &ShardRow| {
            row.index
                .map_or_else(|| "a shard".to_owned(), |i| format!("shard {i}"))
        };
        if let (Some(w), Some(cell)) = (worst(|r| r.lag_p99_ms), row.get_mut(lag)) {
            cell.sub = name(w);
        }
        if let (Some(w), Some(cell)) = (worst(|r| r.cpu_max_pct), row.get_mut(cpu)) {
            cell.sub = match w.cpu_max_core {
                Some(core) => format!("{} core {core}", name(w)),
                None => name(w),
            };
        }
    }
}

fn dash() -> CellView {
    num("–", 0.0)
}

fn table(position: usize, r: &RunAnalysis, s: &ShardsAnalysis) -> TableView {
    let total_requests = r.total.requests.max(1) as f64;
    let rows = s
        .shards
        .iter()
        .map(|row| shard_row(row, total_requests))
        .collect();
    TableView {
        id: format!("shards-table-{position}"),
        title: String::new(),
        caption: "One row per engine. Share is the shard's planned share of the load; under Requests, its share of \
                  the requests recorded. Throughput is over the shard's own measured window. Lag P99 is the shard's \
                  worst per-second schedule lag P99 (worst core), Peak CPU its busiest core's busiest second. \
                  Start is where the shard's time zero lies on the common clock; clock error is its kernel's \
                  estimate when it started."
            .into(),
        headers: vec![
            header("Shard", false),
            header("Host", false),
            header("State", false),
            header("Share", true),
            header("Requests", true),
            header("req/s", true),
            header("Failures", true),
            header("Lag P99", true),
            header("Peak CPU", true),
            header("Start", true),
            header("Clock error", true),
            header("Verdict", false),
        ],
        rows,
        footnotes: Vec::new(),
        class: "wide".into(),
    }
}

fn shard_row(row: &ShardRow, total_requests: f64) -> Vec<CellView> {
    let index = CellView {
        text: row.index.map_or_else(|| "?".to_owned(), |i| i.to_string()),
        title: row.dir.clone().unwrap_or_default(),
        class: "name".into(),
        ..CellView::default()
    };
    let mut state = cell(row.status.describe());
    if row.status != ShardStatus::Completed {
        state.class = "bad".into();
    }
    let share = if row.share > 0.0 {
        num(format::pct(row.share * 100.0), row.share)
    } else {
        dash()
    };
    if !row.status.has_data() {
        let mut cells = vec![index, host(&row.host), state, share];
        cells.extend((0..7).map(|_| dash()));
        cells.push(cell("–"));
        return cells;
    }
    let mut requests = num(format::int(row.requests), row.requests as f64);
    requests.sub = format::pct(100.0 * row.requests as f64 / total_requests);
    let mut failures = num(format::int(row.failures), row.failures as f64);
    if row.failures > 0 {
        failures.sub = format::pct(crate::stats::failure_pct(row.failures, row.requests));
        failures.class.push_str(" bad");
    }
    let lag = row
        .lag_p99_ms
        .map_or_else(dash, |l| num(format::latency_us(l * 1000.0), l));
    let cpu = match (row.cpu_max_pct, row.cpu_max_core) {
        (Some(pct), Some(core)) => {
            let mut c = num(format!("{pct:.0} %"), pct);
            c.sub = format!("core {core}");
            c
        }
        _ => dash(),
    };
    let start = row.start_offset_ms.map_or_else(dash, |o| {
        num(format!("+{}", format::latency_us(o * 1000.0)), o)
    });
    let clock = match (row.clock_error_ms, row.clock_synchronised) {
        (_, Some(false)) => {
            let mut c = num("unsynchronised", f64::MAX);
            c.class.push_str(" bad");
            c
        }
        (Some(e), _) => {
            let mut c = num(format::latency_us(e * 1000.0), e);
            if let Some(b) = row.clock_bound_ms {
                c.title = format!("bound {}", format::latency_us(b * 1000.0));
            }
            c
        }
        _ => dash(),
    };
    let verdict = CellView {
        text: row.verdict.as_str().into(),
        class: format!("verdict-{}", row.verdict.as_str().to_ascii_lowercase()),
        title: row.reasons.join(" "),
        ..CellView::default()
    };
    vec![
        index,
        host(&row.host),
        state,
        share,
        requests,
        num(format::rate(row.rps), row.rps),
        failures,
        lag,
        cpu,
        start,
        clock,
        verdict,
    ]
}

fn host(name: &str) -> CellView {
    CellView {
        text: or_dash(name),
        class: "name".into(),
        ..CellView::default()
    }
}

fn or_dash(s: &str) -> String {
    if s.is_empty() { "–".into() } else { s.into() }
}
