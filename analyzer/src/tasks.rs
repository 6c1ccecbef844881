//! Per user kind, per task and per tag figures: iterations, requests, failures and corrected latency.
//!
//! Since log format 1.2 every sample carries the id of the task it was made for, and the first
//! request of each iteration carries a flag; each log's task table says what the ids mean (user
//! kind, task, weights, tags). The loader tallies the samples of each task while it streams a log
//! (`CoreTasks`), tasks of the same user kind and name are merged across logs by their names
//! ([`RunTasks`]), and [`analyze`] turns the tallies into rows.
//!
//! **Iterations** are counted from the flags, so an iteration that made no request (it failed
//! before its first one could be sent, or the run ended first) is not counted; the interval
//! records' `iterations_started` count those too, for the whole run.
//!
//! **Percentiles are exact** (nearest rank, like the per-request tables) while the run fits in
//! memory: each task keeps its corrected latencies, 4 bytes a sample. Past the exact limit they come
//! from HdrHistograms with three significant digits, like everything else in the report.
//!
//! Logs older than 1.2 have no task ids: their requests are counted under [`UNKNOWN_TASK`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use formats::{TaskRole, TaskTable};

use crate::approx::{LatencyAgg, Moments, NAME_DIGITS};
use crate::select::{ppm, rank};
use crate::stats::{Latency, PERCENTILES};

/// The task name under which samples without a known task are counted.
pub const UNKNOWN_TASK: &str = "(unknown task)";

/// What identifies a task across the logs of a run: its user kind, role and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskKey {
    /// The user kind's name ("" for the unknown task).
    pub kind: String,
    /// `task`, `on_start`, `on_stop` (or `unknown`).
    pub role: String,
    /// The task's name.
    pub task: String,
}

/// One task's tally.
#[derive(Debug, Clone)]
pub(crate) struct TaskAcc {
    pub key: TaskKey,
    /// Whether a task table defined it (false for the unknown task).
    pub known: bool,
    pub kind_index: u32,
    pub kind_weight: u32,
    pub task_weight: u32,
    /// The task-table id in the first log that defined it, for ordering.
    pub first_id: u32,
    pub tags: Vec<String>,
    pub iterations: u64,
    pub requests: u64,
    pub failures: u64,
    pub moments: Moments,
    /// Corrected latencies (µs) while exact.
    pub exact: Vec<u32>,
    /// The same as a histogram once the run is too large to keep them.
    pub approx: Option<LatencyAgg>,
}

impl TaskAcc {
    fn new(key: TaskKey) -> Self {
        TaskAcc {
            key,
            known: false,
            kind_index: u32::MAX,
            kind_weight: 0,
            task_weight: 0,
            first_id: 0,
            tags: Vec::new(),
            iterations: 0,
            requests: 0,
            failures: 0,
            moments: Moments::new(),
            exact: Vec::new(),
            approx: None,
        }
    }

    fn unknown() -> Self {
        TaskAcc::new(TaskKey {
            kind: String::new(),
            role: "unknown".into(),
            task: UNKNOWN_TASK.into(),
        })
    }

    pub(crate) fn switch_to_approx(&mut self) {
        if self.approx.is_none() {
            let mut agg = LatencyAgg::new(NAME_DIGITS);
            for &v in &self.exact {
                agg.record(v);
            }
            self.exact = Vec::new();
            self.approx = Some(agg);
        }
    }

    /// Adds `o`'s counts and latencies (both exact, or both approximate).
    fn add(&mut self, mut o: TaskAcc) {
        self.iterations += o.iterations;
        self.requests += o.requests;
        self.failures += o.failures;
        self.moments.add(&o.moments);
        match (&mut self.approx, &o.approx) {
            (Some(mine), Some(theirs)) => mine.add(theirs),
            (None, None) => self.exact.append(&mut o.exact),
            (Some(mine), None) => o.exact.iter().for_each(|&v| mine.record(v)),
            (None, Some(_)) => {
                self.switch_to_approx();
                if let (Some(mine), Some(theirs)) = (&mut self.approx, &o.approx) {
                    mine.add(theirs);
                }
            }
        }
    }
}

/// One log's tallies, by task id (0: no task).
#[derive(Debug, Default)]
pub(crate) struct CoreTasks {
    by_id: Vec<TaskAcc>,
    approx: bool,
}

impl CoreTasks {
    /// Counts one kept sample.
    #[inline]
    pub(crate) fn record(&mut self, task: u32, iteration_start: bool, ok: bool, corrected: u32) {
        let i = task as usize;
        if i >= self.by_id.len() {
            self.by_id.resize_with(i + 1, TaskAcc::unknown);
        }
        let t = &mut self.by_id[i];
        t.requests += 1;
        t.iterations += u64::from(iteration_start);
        t.failures += u64::from(!ok);
        t.moments.record(corrected);
        match &mut t.approx {
            Some(agg) => agg.record(corrected),
            None if self.approx => {
                let mut agg = LatencyAgg::new(NAME_DIGITS);
                agg.record(corrected);
                t.approx = Some(agg);
            }
            None => t.exact.push(corrected),
        }
    }

    /// Keeps histograms instead of latencies from now on.
    pub(crate) fn switch_to_approx(&mut self) {
        self.approx = true;
        for t in &mut self.by_id {
            t.switch_to_approx();
        }
    }

    /// The tallies with what the log's task table says about them: every task it defines (those that
    /// made no request too), and the unknown task if any sample had no (defined) task.
    pub(crate) fn finish(self, table: &TaskTable) -> Vec<TaskAcc> {
        let mut by_id = self.by_id;
        if by_id.len() < table.id_bound() {
            by_id.resize_with(table.id_bound(), TaskAcc::unknown);
        }
        let approx = self.approx;
        let mut out = Vec::new();
        for (id, mut t) in by_id.into_iter().enumerate() {
            if approx {
                t.switch_to_approx();
            }
            match table.get(id as u32) {
                Some(info) => {
                    t.key = TaskKey {
                        kind: info.kind_name.clone(),
                        role: info.role.as_str().to_owned(),
                        task: info.task_name.clone(),
                    };
                    t.known = true;
                    t.kind_index = info.kind;
                    t.kind_weight = info.kind_weight;
                    t.task_weight = if info.role == TaskRole::Task {
                        info.task_weight
                    } else {
                        0
                    };
                    t.first_id = id as u32;
                    t.tags.clone_from(&info.tags);
                    out.push(t);
                }
                None if t.requests > 0 => {
                    t.key = TaskAcc::unknown().key;
                    out.push(t);
                }
                None => {}
            }
        }
        out
    }
}

/// The tallies of a whole run, merged across its logs by task key.
#[derive(Debug, Default)]
pub struct RunTasks {
    pub(crate) tasks: Vec<TaskAcc>,
    index: HashMap<TaskKey, usize>,
}

impl RunTasks {
    /// Adds one log's tallies.
    pub(crate) fn merge(&mut self, core: Vec<TaskAcc>) {
        for t in core {
            match self.index.get(&t.key) {
                Some(&i) => {
                    let mine = &mut self.tasks[i];
                    if !mine.known && t.known {
                        mine.known = true;
                        mine.kind_index = t.kind_index;
                        mine.kind_weight = t.kind_weight;
                        mine.task_weight = t.task_weight;
                        mine.first_id = t.first_id;
                        mine.tags.clone_from(&t.tags);
                    }
                    mine.add(t);
                }
                None => {
                    self.index.insert(t.key.clone(), self.tasks.len());
                    self.tasks.push(t);
                }
            }
        }
    }

    /// Whether any log had a task table (format 1.2 or later, written by an engine that knows tasks).
    pub fn any_known(&self) -> bool {
        self.tasks.iter().any(|t| t.known)
    }
}

/// One row of the per-task, per-kind or per-tag tables.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskRow {
    /// The user kind ("" for the unknown task; the tag for a tag row).
    pub kind: String,
    /// `task`, `on_start`, `on_stop`, `unknown`; "" for kind and tag rows.
    pub role: String,
    /// The task's name ("" for kind and tag rows).
    pub task: String,
    /// The kind's weight (kind and task rows), or the task's weight among its kind's tasks.
    pub weight: u32,
    /// The task's tags (its own, its kind's and its requests'); for a kind row, the kind's tasks'.
    pub tags: Vec<String>,
    /// Iterations that made at least one request.
    pub iterations: u64,
    /// Requests.
    pub requests: u64,
    /// Failed requests.
    pub failures: u64,
    /// Corrected latency, µs.
    pub latency: Latency,
}

impl TaskRow {
    /// Failures as a percentage of requests (0 when there were none).
    pub fn failure_pct(&self) -> f64 {
        crate::stats::failure_pct(self.failures, self.requests)
    }
}

/// Per task, per user kind and per tag figures of a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskAnalysis {
    /// Whether the logs said which task each request was for (format 1.2); when false, every request
    /// is counted under [`UNKNOWN_TASK`].
    pub known: bool,
    /// Each user kind, in profile order, with the tasks under it: (kind row, its task rows).
    pub kinds: Vec<(TaskRow, Vec<TaskRow>)>,
    /// Requests without a known task, if any.
    pub unknown: Option<TaskRow>,
    /// Each tag: the tasks that carry it together. Empty when the profile has no tags.
    pub tags: Vec<TaskRow>,
    /// Whether the percentiles are exact (else from histograms with three significant digits).
    pub exact: bool,
}

/// Latency statistics of a group of tallies.
fn latency_of(parts: &[&TaskAcc]) -> Latency {
    let mut m = Moments::new();
    for p in parts {
        m.add(&p.moments);
    }
    let mut out = Latency {
        count: m.count,
        min: if m.count == 0 { 0.0 } else { f64::from(m.min) },
        mean: m.mean(),
        stddev: m.stddev(),
        percentiles: [0.0; 6],
        max: f64::from(m.max),
    };
    if m.count == 0 {
        return out;
    }
    if parts.iter().any(|p| p.approx.is_some()) {
        let mut agg = LatencyAgg::new(NAME_DIGITS);
        for p in parts {
            match &p.approx {
                Some(a) => agg.add(a),
                None => p.exact.iter().for_each(|&v| agg.record(v)),
            }
        }
        out.percentiles = PERCENTILES.map(|q| agg.percentile(q.2));
        return out;
    }
    let mut values: Vec<u32> = if parts.len() == 1 {
        parts[0].exact.clone()
    } else {
        parts.iter().flat_map(|p| p.exact.iter().copied()).collect()
    };
    // Nearest rank, as in `select`: the ⌈q·n⌉-th smallest. The quantiles ascend, so each selection
    // only needs the part above the previous one.
    let n = values.len() as u64;
    let mut from = 0usize;
    for (i, q) in PERCENTILES.iter().enumerate() {
        let r = (rank(n, ppm(q.2)) - 1) as usize;
        let (_, v, _) = values[from..].select_nth_unstable(r - from);
        out.percentiles[i] = f64::from(*v);
        from = r;
    }
    out
}

fn row(
    kind: &str,
    role: &str,
    task: &str,
    weight: u32,
    tags: Vec<String>,
    parts: &[&TaskAcc],
) -> TaskRow {
    TaskRow {
        kind: kind.to_owned(),
        role: role.to_owned(),
        task: task.to_owned(),
        weight,
        tags,
        iterations: parts.iter().map(|p| p.iterations).sum(),
        requests: parts.iter().map(|p| p.requests).sum(),
        failures: parts.iter().map(|p| p.failures).sum(),
        latency: latency_of(parts),
    }
}

fn role_rank(role: &str) -> u8 {
    match role {
        "on_start" => 0,
        "task" => 1,
        "on_stop" => 2,
        _ => 3,
    }
}

/// The rows of a run's tallies.
pub fn analyze(run: &RunTasks) -> TaskAnalysis {
    let exact = run.tasks.iter().all(|t| t.approx.is_none());
    let mut known: Vec<&TaskAcc> = run.tasks.iter().filter(|t| t.known).collect();
    known.sort_by(|a, b| {
        (
            a.kind_index,
            &a.key.kind,
            role_rank(&a.key.role),
            a.first_id,
        )
            .cmp(&(
                b.kind_index,
                &b.key.kind,
                role_rank(&b.key.role),
                b.first_id,
            ))
    });
    let mut kinds: Vec<(TaskRow, Vec<TaskRow>)> = Vec::new();
    let mut start = 0;
    while start < known.len() {
        let kind = &known[start].key.kind;
        let end = start
            + known[start..]
                .iter()
                .take_while(|t| &t.key.kind == kind)
                .count();
        let group = &known[start..end];
        let tags: BTreeSet<String> = group.iter().flat_map(|t| t.tags.iter().cloned()).collect();
        let kind_row = row(
            kind,
            "",
            "",
            group[0].kind_weight,
            tags.into_iter().collect(),
            group,
        );
        let task_rows = group
            .iter()
            .map(|t| {
                row(
                    kind,
                    &t.key.role,
                    &t.key.task,
                    t.task_weight,
                    t.tags.clone(),
                    std::slice::from_ref(t),
                )
            })
            .collect();
        kinds.push((kind_row, task_rows));
        start = end;
    }
    let unknown: Vec<&TaskAcc> = run
        .tasks
        .iter()
        .filter(|t| !t.known && t.requests > 0)
        .collect();
    let unknown =
        (!unknown.is_empty()).then(|| row("", "unknown", UNKNOWN_TASK, 0, Vec::new(), &unknown));
    let mut by_tag: BTreeMap<&str, Vec<&TaskAcc>> = BTreeMap::new();
    for t in &known {
        for tag in &t.tags {
            by_tag.entry(tag).or_default().push(t);
        }
    }
    let tags = by_tag
        .into_iter()
        .map(|(tag, parts)| row(tag, "", "", 0, Vec::new(), &parts))
        .collect();
    TaskAnalysis {
        known: !known.is_empty(),
        kinds,
        unknown,
        tags,
        exact,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use formats::TaskInfo;

    fn table() -> TaskTable {
        let mut t = TaskTable::default();
        for (id, role, kind, task, tags) in [
            (1, TaskRole::Task, "shopper", "browse", vec!["web"]),
            (2, TaskRole::Task, "shopper", "buy", vec!["web", "pay"]),
            (3, TaskRole::OnStart, "shopper", "on_start", vec!["web"]),
            (4, TaskRole::Task, "admin", "audit", vec![]),
        ] {
            t.insert(TaskInfo {
                id,
                role,
                kind: u32::from(kind == "admin"),
                kind_weight: if kind == "admin" { 1 } else { 3 },
                task_weight: 2,
                kind_name: kind.into(),
                task_name: task.into(),
                tags: tags.into_iter().map(String::from).collect(),
            });
        }
        t
    }

    #[test]
    fn tallies_merge_across_logs_and_group_by_kind_and_tag() {
        let mut run = RunTasks::default();
        for core in 0..2u32 {
            let mut c = CoreTasks::default();
            for i in 0..100u32 {
                // task 1: 50 requests a log, an iteration every 5; task 2: 30; on_start: 20.
                let task = match i % 10 {
                    0..=4 => 1,
                    5..=7 => 2,
                    _ => 3,
                };
                c.record(task, i % 5 == 0, i % 7 != 0, 1_000 * (i + 1) + core);
            }
            c.record(0, true, true, 5);
            if core == 1 {
                c.switch_to_approx();
            }
            run.merge(c.finish(&table()));
        }
        let a = analyze(&run);
        assert!(a.known);
        assert!(
            !a.exact,
            "one log past the exact limit makes the tallies approximate"
        );
        assert_eq!(a.kinds.len(), 2);
        let (shopper, tasks) = &a.kinds[0];
        assert_eq!(shopper.kind, "shopper");
        assert_eq!(shopper.weight, 3);
        assert_eq!(shopper.requests, 200);
        assert_eq!(
            tasks
                .iter()
                .map(|t| (t.task.as_str(), t.requests))
                .collect::<Vec<_>>(),
            [("on_start", 40), ("browse", 100), ("buy", 60)],
            "on_start first, then tasks in table order"
        );
        // An iteration starts at i = 0, 5, 10, ...: i % 10 = 0 (browse) or 5 (buy).
        assert_eq!(tasks[1].iterations, 20);
        assert_eq!(tasks[2].iterations, 20);
        assert_eq!(tasks[0].iterations, 0);
        let (admin, admin_tasks) = &a.kinds[1];
        assert_eq!(
            (admin.requests, admin_tasks[0].requests),
            (0, 0),
            "a task that never ran is listed"
        );
        assert_eq!(a.unknown.as_ref().unwrap().requests, 2);
        let tags: Vec<_> = a
            .tags
            .iter()
            .map(|t| (t.kind.as_str(), t.requests))
            .collect();
        assert_eq!(tags, [("pay", 60), ("web", 200)]);
    }

    #[test]
    fn exact_percentiles_are_nearest_rank() {
        let mut c = CoreTasks::default();
        for v in (1..=1000u32).rev() {
            c.record(1, false, true, v);
        }
        let mut run = RunTasks::default();
        run.merge(c.finish(&table()));
        let a = analyze(&run);
        assert!(a.exact);
        let browse = &a.kinds[0]
            .1
            .iter()
            .find(|t| t.task == "browse")
            .unwrap()
            .latency;
        assert_eq!(
            browse.percentiles,
            [500.0, 750.0, 900.0, 950.0, 990.0, 999.0]
        );
        assert_eq!((browse.min, browse.max, browse.count), (1.0, 1000.0, 1000));
    }

    #[test]
    fn logs_without_task_tables_count_every_request_as_unknown() {
        let mut c = CoreTasks::default();
        for i in 0..10 {
            c.record(0, false, i != 3, 100);
        }
        let mut run = RunTasks::default();
        run.merge(c.finish(&TaskTable::default()));
        let a = analyze(&run);
        assert!(!a.known);
        assert!(a.kinds.is_empty() && a.tags.is_empty());
        let u = a.unknown.unwrap();
        assert_eq!(
            (u.requests, u.failures, u.task.as_str()),
            (10, 1, UNKNOWN_TASK)
        );
    }
}
