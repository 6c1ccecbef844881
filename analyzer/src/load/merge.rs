//! Merging the cores' columns into one run: names and messages mapped to run-wide indices, and the
//! columns made polars frames without a copy.

use std::collections::HashMap;

use polars::prelude::*;

use super::read::CoreColumns;
use super::{LoadedRun, QualityNote, RunInfo};
use crate::approx::Aggregates;
use crate::error::Result;

/// Merges the cores' columns: request names and messages are per log, so ids are mapped to run-wide
/// indices by their text before the columns become polars frames (without copying the data).
/// Merges the cores' columns of one run (or of every shard of one) and completes it: the exact-percentile
/// limit the reading kept to, a duration from the samples when the manifest gave none, and the notes
/// gathered while reading ahead of the merge's own.
pub(crate) fn merge_run(
    cores: Vec<CoreColumns>,
    info: RunInfo,
    limit: u64,
    skip_us: u64,
    mut notes: Vec<QualityNote>,
) -> Result<LoadedRun> {
    let clock = crate::timing::Clock::start();
    let mut loaded = merge(cores, info)?;
    clock.lap("merge cores");
    loaded.exact_limit = limit;
    if loaded.info.duration_s <= 0.0
        && let Some((start, end)) = loaded.window_us
    {
        loaded.info.duration_s = end as f64 / 1e6 - start.min(skip_us) as f64 / 1e6;
    }
    notes.append(&mut loaded.notes);
    loaded.notes = notes;
    Ok(loaded)
}

pub(crate) fn merge(cores: Vec<CoreColumns>, info: RunInfo) -> Result<LoadedRun> {
    let mut names: Vec<String> = Vec::new();
    let mut name_index: HashMap<String, u32> = HashMap::new();
    let mut messages: Vec<String> = vec![String::new()];
    let mut message_index: HashMap<String, u32> = HashMap::new();
    let mut bytes: Vec<(u64, u64)> = Vec::new();
    let mut intervals = Vec::new();
    let mut load_changes: Vec<formats::LoadChange> = Vec::new();
    let mut notes = Vec::new();
    let mut skipped = 0;
    let mut rows = 0;
    let (mut first, mut last) = (u64::MAX, 0u64);
    // One log past the limit makes the whole run approximate, so that all of it is computed one way.
    let mut cores = cores;
    let mut approx = if cores.iter().any(|c| c.approx.is_some()) {
        for c in cores.iter_mut().filter(|c| c.approx.is_none()) {
            c.switch_to_approx();
        }
        Some(Aggregates::default())
    } else {
        None
    };
    let mut sample_cols: Vec<[Series; 5]> = Vec::new();
    let mut phases = crate::phases::PhaseColumns::default();
    let mut failure_cols: Vec<[Series; 5]> = Vec::new();
    let mut tasks = crate::tasks::RunTasks::default();
    for mut c in cores {
        notes.append(&mut c.notes);
        tasks.merge(std::mem::take(&mut c.task_tallies));
        skipped += c.skipped;
        if c.header.is_none() {
            continue;
        }
        // Ids used by samples but missing from the table (its block was damaged) show as "#id".
        let used_max = c
            .name
            .iter()
            .chain(&c.f_name)
            .copied()
            .max()
            .map_or(0, |m| m as usize + 1)
            .max(c.approx.as_ref().map_or(0, |a| a.names.len()));
        while c.names.len() < used_max {
            c.names.push(format!("#{}", c.names.len()));
        }
        let map_name: Vec<u32> = c
            .names
            .iter()
            .map(|n| {
                *name_index.entry(n.clone()).or_insert_with(|| {
                    names.push(n.clone());
                    (names.len() - 1) as u32
                })
            })
            .collect();
        let used_max = c
            .f_message
            .iter()
            .copied()
            .max()
            .map_or(0, |m| m as usize + 1);
        while c.messages.len() < used_max {
            let id = c.messages.len();
            c.messages
                .push(format!("#{id} (message lost with a damaged block)"));
        }
        let map_message: Vec<u32> = c
            .messages
            .iter()
            .enumerate()
            .map(|(id, m)| {
                if id == 0 {
                    return 0;
                }
                *message_index.entry(m.clone()).or_insert_with(|| {
                    messages.push(m.clone());
                    (messages.len() - 1) as u32
                })
            })
            .collect();
        for n in c.name.iter_mut().chain(c.f_name.iter_mut()) {
            *n = map_name[*n as usize];
        }
        for m in &mut c.f_message {
            *m = map_message[*m as usize];
        }
        for (local, (sent, received)) in c.bytes.iter().enumerate() {
            let g = map_name.get(local).copied().unwrap_or(0) as usize;
            if g >= bytes.len() {
                bytes.resize(g + 1, (0, 0));
            }
            bytes[g].0 += sent;
            bytes[g].1 += received;
        }
        if let (Some(all), Some(mine)) = (&mut approx, &c.approx) {
            all.merge(mine, &map_name);
        }
        phases.merge(std::mem::take(&mut c.phases), &map_name);
        rows += c.rows;
        if c.rows > 0 {
            first = first.min(c.first_us);
            last = last.max(c.last_end_us);
        }
        intervals.extend(c.intervals.iter().map(|r| (c.core, *r)));
        load_changes.append(&mut c.load_changes);
        sample_cols.push([
            Series::from_vec("t_s".into(), c.t_s),
            Series::from_vec("name".into(), c.name),
            Series::from_vec("latency_us".into(), c.latency),
            Series::from_vec("latency_uncorrected_us".into(), c.latency_uncorrected),
            Series::from_vec("ttfb_us".into(), c.ttfb),
        ]);
        failure_cols.push([
            Series::from_vec("t_s".into(), c.f_t_s),
            Series::from_vec("name".into(), c.f_name),
            Series::from_vec("kind".into(), c.f_kind),
            Series::from_vec("status".into(), c.f_status),
            Series::from_vec("message".into(), c.f_message),
        ]);
    }
    let samples = frame(
        sample_cols,
        [
            "t_s",
            "name",
            "latency_us",
            "latency_uncorrected_us",
            "ttfb_us",
        ],
    )?;
    let failures = frame(failure_cols, ["t_s", "name", "kind", "status", "message"])?;
    bytes.resize(names.len(), (0, 0));
    let window_us = (first != u64::MAX).then(|| (first, last.max(first + 1)));
    let load_changes = merge_load_changes(load_changes);
    Ok(LoadedRun {
        info,
        names,
        messages,
        samples,
        failures,
        approx,
        phases,
        rows,
        exact_limit: 0,
        bytes,
        intervals,
        load_changes,
        window_us,
        skipped,
        notes,
        shards: None,
        tasks,
    })
}

/// Every core records every change: one of each (same start, kind and target) is kept, in time
/// order. Changes whose figures are not finite (which no engine writes) are left out.
pub(crate) fn merge_load_changes(
    mut changes: Vec<formats::LoadChange>,
) -> Vec<formats::LoadChange> {
    changes.retain(|c| c.from.is_finite() && c.to.is_finite());
    changes.sort_by(|a, b| {
        (a.at_us, a.what)
            .cmp(&(b.at_us, b.what))
            .then(a.to.total_cmp(&b.to))
    });
    changes.dedup_by(|a, b| a.at_us == b.at_us && a.what == b.what && a.to == b.to);
    changes
}

/// Appends each core's columns as chunks of one frame: no sample is copied.
pub(super) fn frame<const N: usize>(
    parts: Vec<[Series; N]>,
    names: [&str; N],
) -> Result<DataFrame> {
    let mut columns: Vec<Option<Series>> = vec![None; N];
    for part in parts {
        for (slot, s) in columns.iter_mut().zip(part) {
            match slot {
                Some(acc) => {
                    acc.append_owned(s)?;
                }
                None => *slot = Some(s),
            }
        }
    }
    let columns: Vec<Column> = columns
        .into_iter()
        .zip(names)
        .map(|(s, name)| {
            s.unwrap_or_else(|| Series::new_empty(name.into(), &DataType::UInt32))
                .into_column()
        })
        .collect();
    Ok(DataFrame::new_infer_height(columns)?)
}
