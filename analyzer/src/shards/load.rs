//! Loading a sharded run: every shard's logs read as the logs of one run, on the common clock.

use std::path::Path;

use formats::manifest::MANIFEST_FILE;

use super::resolve::{FoundShard, ShardedInput, shard_subdirs};
use super::{ShardFacts, ShardSet, ShardStatus, share_pct};
use crate::error::{Error, Result};
use crate::format;
use crate::load::{
    LoadOptions, LoadedRun, LogSpec, QualityNote, RunInfo, Severity, merge_run, read_logs,
    tls_verification_off,
};

/// Loads the shards of one run as one run. Core `k` of the merged run is the k-th log over the shards
/// in index order; each shard's times are moved by its time zero's distance from the earliest
/// shard's. Fails only when nothing in any shard is readable.
pub fn load(input: &ShardedInput, options: LoadOptions) -> Result<LoadedRun> {
    let share = |i: Option<u32>| {
        i.and_then(|i| input.shares.get(i as usize))
            .copied()
            .unwrap_or(0.0)
    };
    let base = input.shards.iter().filter_map(time_zero).min();
    let mut facts: Vec<ShardFacts> = Vec::new();
    let mut specs: Vec<LogSpec> = Vec::new();
    let mut notes: Vec<QualityNote> = Vec::new();
    for s in &input.shards {
        let zero = time_zero(s);
        let offset_us = match (zero, base) {
            (Some(z), Some(b)) => u64::try_from((z - b) / 1_000).unwrap_or(0),
            _ => 0,
        };
        let mut f = ShardFacts {
            index: s.index,
            dir: Some(s.dir.clone()),
            status: ShardStatus::Unknown,
            share: share(s.index),
            host: String::new(),
            started_unix_ns: zero,
            offset_us,
            planned_duration_s: None,
            clock_sync: None,
            cores: Vec::new(),
            requests: 0,
            failures: 0,
            window_us: None,
            detail: None,
        };
        let label = f.dir_label();
        match &s.manifest {
            Ok(m) => {
                f.status = ShardStatus::from_state(m.state);
                f.host = m.host.name.clone();
                f.clock_sync = m.clock_sync.clone();
                f.planned_duration_s = m.planned_duration_s;
                if let Some(error) = &m.error {
                    f.detail = Some(error.clone());
                }
            }
            Err(e) if s.is_run => notes.push(warning(
                format!("{label}/{MANIFEST_FILE}"),
                format!(
                    "{e}; this shard's state, host and clock are unknown, but its logs were read and merged"
                ),
            )),
            Err(e) => {
                f.status = ShardStatus::Unreadable;
                f.detail = Some(e.clone());
            }
        }
        if f.status != ShardStatus::Unreadable {
            match formats::Run::open(&s.dir) {
                Ok(run) if !run.logs.is_empty() => {
                    for (core, path) in &run.logs {
                        let id = specs.len() as u32;
                        f.cores.push((id, *core));
                        specs.push(LogSpec {
                            core: id,
                            header_core: *core,
                            path: path.clone(),
                            label: format!("{label}/{}", file_name(path)),
                            offset_us,
                        });
                    }
                }
                Ok(_) => {
                    f.status = ShardStatus::Unreadable;
                    f.detail = Some("it has no core-N.log files".into());
                }
                Err(e) => {
                    f.status = ShardStatus::Unreadable;
                    f.detail = Some(e.kind.to_string());
                }
            }
        }
        facts.push(f);
    }
    for index in 0..input.count {
        if facts.iter().any(|f| f.index == Some(index)) {
            continue;
        }
        facts.push(ShardFacts {
            index: Some(index),
            dir: None,
            status: ShardStatus::Missing,
            share: share(Some(index)),
            host: String::new(),
            started_unix_ns: None,
            offset_us: 0,
            planned_duration_s: None,
            clock_sync: None,
            cores: Vec::new(),
            requests: 0,
            failures: 0,
            window_us: None,
            detail: Some(missing_detail(&input.dir, index)),
        });
    }
    facts.sort_by_key(|f| (f.index.is_none(), f.index));

    let (cores, limit) = read_logs(&specs, options);
    for c in &cores {
        let t = c.tally();
        let Some(f) = facts
            .iter_mut()
            .find(|f| f.cores.iter().any(|(id, _)| *id == c.core()))
        else {
            continue;
        };
        f.requests += t.rows;
        f.failures += t.failures;
        if let Some((a, b)) = t.window_us {
            f.window_us = Some(f.window_us.map_or((a, b), |(x, y)| (x.min(a), y.max(b))));
        }
    }
    for f in &mut facts {
        let any_readable = cores.iter().any(|c| {
            f.cores.iter().any(|(id, _)| *id == c.core()) && c.wall_start_unix_ns().is_some()
        });
        if f.status == ShardStatus::Unknown && !any_readable {
            f.status = ShardStatus::Unreadable;
            f.detail = Some("neither its manifest nor any of its logs is readable".into());
        }
    }
    if !cores.iter().any(|c| c.wall_start_unix_ns().is_some()) {
        let mut reasons: Vec<String> = facts
            .iter()
            .filter_map(|f| f.detail.as_ref().map(|d| format!("{}: {d}", f.dir_label())))
            .collect();
        reasons.extend(cores.iter().flat_map(|c| c.note_texts()));
        return Err(Error::NothingReadable {
            paths: vec![input.dir.display().to_string()],
            reasons,
        });
    }

    let set = ShardSet {
        count: input.count,
        start_at: input.start_at.clone(),
        base_unix_ns: base,
        shards: facts,
    };
    let mut run_notes = shard_notes(&set);
    run_notes.extend(
        super::assess::alignment(&set)
            .warnings
            .into_iter()
            .map(|w| warning("(shards)".into(), w)),
    );
    if tls_verification_off(&input.profile) {
        run_notes.push(warning(
            MANIFEST_FILE.into(),
            "TLS certificate verification was switched off for this run (`insecure: true` in the profile's \
             `tls`): the target's identity was not checked"
                .into(),
        ));
    }
    run_notes.append(&mut notes);

    let info = run_info(input, &set, specs.len());
    let mut loaded = merge_run(cores, info, limit, options.skip_us, run_notes)?;
    loaded.shards = Some(set);
    Ok(loaded)
}

/// A shard's time zero, ns since the Unix epoch: its manifest's, or its first log header's when the
/// manifest is unreadable.
pub(crate) fn time_zero(s: &FoundShard) -> Option<i64> {
    match &s.manifest {
        Ok(m) => Some(m.started_unix_ns),
        Err(_) => s.header.map(|h| h.wall_start_unix_ns),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn warning(file: String, message: String) -> QualityNote {
    QualityNote {
        severity: Severity::Warning,
        file,
        message,
    }
}

/// Where a missing shard was looked for, and how to include it if it is there.
fn missing_detail(run_dir: &Path, index: u32) -> String {
    match shard_subdirs(run_dir)
        .into_iter()
        .find(|(i, _)| *i == index)
    {
        Some((_, dir)) => format!(
            "its directory {} exists but was not given: give {} to merge every shard",
            dir.display(),
            run_dir.display()
        ),
        None => format!(
            "no directory of it was given, and {} has none (a pod that never started, or whose results were lost)",
            run_dir.display()
        ),
    }
}

/// The loud notes: every shard that is missing, unreadable or did not complete, with its share.
fn shard_notes(set: &ShardSet) -> Vec<QualityNote> {
    let mut out = Vec::new();
    let run_end_s = set
        .shards
        .iter()
        .filter_map(|f| f.window_us.map(|w| w.1))
        .max()
        .map(|us| us as f64 / 1e6);
    for f in &set.shards {
        let share = if f.share > 0.0 {
            format!("It carried {} of the load", share_pct(f.share))
        } else {
            "Its share of the load is unknown".into()
        };
        let name = f.name();
        let stop = || {
            let at = f.window_us.map(|w| w.1 as f64 / 1e6);
            match (at, run_end_s) {
                (Some(at), Some(end)) => format!(
                    "its samples stop at {} on the run's clock, while the other shards' go on to {}",
                    format::duration_s(at),
                    format::duration_s(end)
                ),
                _ => "it has no samples".into(),
            }
        };
        let message = match f.status {
            ShardStatus::Completed | ShardStatus::Unknown => continue,
            ShardStatus::Missing => format!(
                "{name} of {} is missing: {}. {share}, which is in no figure of this report.",
                set.count,
                f.detail.as_deref().unwrap_or("")
            ),
            ShardStatus::Unreadable => format!(
                "{name} could not be read ({}). {share}, which is in no figure of this report.",
                f.detail.as_deref().unwrap_or("")
            ),
            ShardStatus::Unfinished => format!(
                "{name} was never finalized (its manifest still says \"running\": the engine was killed, crashed or \
                 is still running); {}. {share}; every complete block it wrote is included.",
                stop()
            ),
            ShardStatus::Failed => format!(
                "{name} failed ({}); {}. {share}; everything it wrote is included.",
                f.detail
                    .as_deref()
                    .unwrap_or("the engine stopped on an error"),
                stop()
            ),
            ShardStatus::Interrupted => format!(
                "{name} was interrupted (stopped early and flushed); {}. {share}.",
                stop()
            ),
        };
        let file = match f.status {
            ShardStatus::Missing | ShardStatus::Unreadable => f.dir_label(),
            _ => format!("{}/{MANIFEST_FILE}", f.dir_label()),
        };
        out.push(warning(file, message));
    }
    out
}

fn run_info(input: &ShardedInput, set: &ShardSet, cores: usize) -> RunInfo {
    let manifests: Vec<&formats::Manifest> = input
        .shards
        .iter()
        .filter_map(|s| s.manifest.as_ref().ok())
        .collect();
    let mut info = RunInfo {
        dir: input.dir.clone(),
        label: input.label.clone(),
        id: input.run_id.clone(),
        cores,
        ..RunInfo::default()
    };
    if let Some(m) = manifests.first() {
        info.profile = m.profile_name.clone();
        info.environment = m.environment.clone();
        info.target = m.target.clone();
        info.engine_version = m.engine_version.clone();
        info.io_driver = m.io_driver.clone();
        info.load_model = crate::load_model::parse(&m.profile, m.planned_duration_s);
        info.tags.clone_from(&m.tags);
    }
    let mut hosts: Vec<&str> = Vec::new();
    for f in set.shards.iter().filter(|f| !f.host.is_empty()) {
        if !hosts.contains(&f.host.as_str()) {
            hosts.push(&f.host);
        }
    }
    info.host = match hosts.len() {
        0 => String::new(),
        1..=4 => hosts.join(", "),
        n => format!("{}, … ({n} hosts)", hosts[..3].join(", ")),
    };
    info.cpu_count = manifests.iter().map(|m| m.host.cpu_count).sum();
    let mut kernels: Vec<&str> = manifests.iter().map(|m| m.host.kernel.as_str()).collect();
    kernels.sort_unstable();
    kernels.dedup();
    info.kernel = kernels.join(", ");
    if let Some(base) = set.base_unix_ns {
        info.started_at = formats::run::format_utc(base);
        info.started_unix_ns = base;
    }
    let present: Vec<&ShardFacts> = set.shards.iter().filter(|f| f.status.has_data()).collect();
    let completed = present
        .iter()
        .filter(|f| f.status == ShardStatus::Completed)
        .count();
    let missing = set.shards.len() - present.len();
    let ended: Vec<i64> = manifests.iter().filter_map(|m| m.ended_unix_ns).collect();
    if missing == 0
        && ended.len() == present.len()
        && let (Some(end), Some(base)) = (ended.iter().max(), set.base_unix_ns)
    {
        info.duration_s = (end - base) as f64 / 1e9;
    }
    info.finalized = missing == 0
        && present
            .iter()
            .all(|f| !matches!(f.status, ShardStatus::Unfinished | ShardStatus::Unknown));
    info.state = if completed == set.shards.len() {
        format!("completed (all {} shards)", set.count)
    } else {
        let others: Vec<String> = set
            .shards
            .iter()
            .filter(|f| f.status != ShardStatus::Completed)
            .map(|f| {
                format!(
                    "{} {}",
                    f.index
                        .map_or_else(|| "a shard".to_owned(), |i| format!("shard {i}")),
                    f.status.describe()
                )
            })
            .collect();
        format!(
            "{}: {completed} of {} shards completed; {}",
            if missing > 0 { "partial" } else { "incomplete" },
            set.count,
            others.join(", ")
        )
    };
    info
}
