//! Judging a sharded run: each shard's generator health (with the same rules as any run's), the
//! verdict over all of them, and how well the shards line up on the common clock.

use serde::Serialize;

use super::{ALIGNMENT_WARN_US, ShardFacts, ShardSet, ShardStatus, share_pct};
use crate::error::Result;
use crate::format;
use crate::health::{self, Health, Verdict};
use crate::load::LoadedRun;
use crate::timeseries::{TimeSeries, timeseries};

/// How well the shards' time zeros and clocks line up.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alignment {
    /// The common start instant the shards waited for (`--start-at`), RFC 3339 UTC; `null` when they
    /// started at once.
    pub start_at: Option<String>,
    /// The latest shard's time zero minus the earliest's, ms.
    pub start_spread_ms: f64,
    /// The largest clock error any shard's kernel estimated at its start, ms; `null` when no shard
    /// recorded one.
    pub max_clock_error_ms: Option<f64>,
    /// The largest bound on a shard's clock error (the kernel's `maxerror`), ms.
    pub max_clock_bound_ms: Option<f64>,
    /// Shards whose clock was not synchronised when they started.
    pub unsynchronised: Vec<u32>,
    /// Shards that recorded no clock figures.
    pub clock_unknown: Vec<u32>,
    /// One sentence on how well they line up.
    pub summary: String,
    /// What may put samples in the wrong second, one sentence each (also data-quality warnings).
    pub warnings: Vec<String>,
}

/// One shard's row of the report's shard table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShardRow {
    /// The shard's index (`null` when neither its manifest nor its directory's name says).
    pub index: Option<u32>,
    /// Its directory (`null` when missing).
    pub dir: Option<String>,
    /// Its load generator's host name (the pod).
    pub host: String,
    /// `completed`, `interrupted`, `failed`, `unfinished`, `unknown`, `unreadable` or `missing`.
    pub status: ShardStatus,
    /// Its share of the load (0 when unknown).
    pub share: f64,
    /// Requests it recorded (after the warm-up).
    pub requests: u64,
    /// Failed requests among them.
    pub failures: u64,
    /// Requests per second over its own measured window.
    pub rps: f64,
    /// Its measured window, s.
    pub window_s: f64,
    /// Where its samples stop on the common clock, s (`null` without samples).
    pub last_sample_s: Option<f64>,
    /// Its worst per-second schedule lag P99 (worst core), ms; `null` without health records.
    pub lag_p99_ms: Option<f64>,
    /// Its busiest core's CPU in its busiest (whole) second, % of one core.
    pub cpu_max_pct: Option<f64>,
    /// That core, numbered within the shard.
    pub cpu_max_core: Option<u32>,
    /// Its time zero on the common clock: ms after the earliest shard's.
    pub start_offset_ms: Option<f64>,
    /// Its kernel's estimate of its clock's error at the start, ms.
    pub clock_error_ms: Option<f64>,
    /// The kernel's bound on that error, ms.
    pub clock_bound_ms: Option<f64>,
    /// Whether its clock was synchronised (`null` when not recorded).
    pub clock_synchronised: Option<bool>,
    /// Its generator's health verdict, by the same rules as a whole run's.
    pub verdict: Verdict,
    /// Why, one sentence per finding.
    pub reasons: Vec<String>,
}

/// Everything a report says about a sharded run's shards.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShardsAnalysis {
    /// How many shards the test had.
    pub count: u32,
    /// Shards whose samples are in the report.
    pub merged: u32,
    /// The share of the load whose samples are missing (missing and unreadable shards).
    pub missing_share: f64,
    /// Whether some shard is missing or unreadable: the report covers part of the test.
    pub partial: bool,
    /// Whether every shard completed.
    pub complete: bool,
    /// Loud sentences for the top of the report: each missing, unreadable or unfinished shard.
    pub alerts: Vec<String>,
    /// How well the shards line up.
    pub alignment: Alignment,
    /// One row per shard, by index.
    pub shards: Vec<ShardRow>,
}

/// Shards whose health findings the verdict lists one by one; the others are counted and named.
pub const MAX_SHARDS_NAMED: usize = 6;

fn rank(v: Verdict) -> u8 {
    match v {
        Verdict::Ok => 0,
        Verdict::Unknown => 1,
        Verdict::Suspect => 2,
        Verdict::Invalid => 3,
    }
}

/// Judges every shard with [`health::assess`] over its own cores' interval records (within the run's
/// window, `ts`), and combines: the run's verdict is the worst shard's, each reason names its shard,
/// and a missing, unreadable or unfinished shard makes the run at least SUSPECT. The figures of
/// `merged` (the whole run's health) are kept.
pub fn assess(
    run: &LoadedRun,
    set: &ShardSet,
    ts: &TimeSeries,
    merged: Health,
) -> Result<(Health, ShardsAnalysis)> {
    let first_s = ts.t_s.first().copied().unwrap_or(0);
    let mut rows = Vec::new();
    let mut verdicts: Vec<(&ShardFacts, Health)> = Vec::new();
    for f in &set.shards {
        let mut row = row(f);
        if f.status.has_data() {
            let intervals: Vec<(u32, formats::IntervalStats)> = run
                .intervals
                .iter()
                .filter(|(core, _)| f.cores.iter().any(|(id, _)| id == core))
                .copied()
                .collect();
            let busiest = busiest_core(f, &intervals, ts);
            let shard_run = LoadedRun::intervals_only(intervals)?;
            let shard_ts = timeseries(&shard_run, first_s)?;
            let h = health::assess(&shard_run.intervals, &shard_ts);
            row.verdict = h.verdict;
            row.reasons = h.reasons.clone();
            if h.verdict != Verdict::Unknown {
                row.lag_p99_ms = Some(h.worst_lag_p99_ms);
                row.cpu_max_pct = busiest.map(|b| b.0);
                row.cpu_max_core = busiest.map(|b| b.1);
            }
            verdicts.push((f, h));
        }
        rows.push(row);
    }

    let mut health = merged.clone();
    let mut worst = 0u8;
    let mut reasons = Vec::new();
    let known = verdicts.iter().any(|(_, h)| h.verdict != Verdict::Unknown);
    // Shards with findings, the worst first: each shard's reasons, named.
    let mut findings: Vec<(u8, &ShardFacts, Vec<String>)> = Vec::new();
    for (f, h) in &verdicts {
        match h.verdict {
            Verdict::Ok => {}
            Verdict::Unknown if known => findings.push((
                rank(Verdict::Suspect),
                f,
                vec![format!(
                    "{}: its logs hold no per-second health records, so whether it kept its schedule is unknown",
                    f.name()
                )],
            )),
            Verdict::Unknown => worst = worst.max(rank(Verdict::Unknown)),
            v => findings.push((
                rank(v),
                f,
                h.reasons
                    .iter()
                    .map(|r| format!("{}: {r}", f.name()))
                    .collect(),
            )),
        }
    }
    findings.sort_by_key(|(r, f, _)| (std::cmp::Reverse(*r), f.index));
    let mut shard_reasons = Vec::new();
    for (r, _, texts) in findings.iter().take(MAX_SHARDS_NAMED) {
        worst = worst.max(*r);
        shard_reasons.extend(texts.iter().cloned());
    }
    if findings.len() > MAX_SHARDS_NAMED {
        let rest: Vec<u32> = findings[MAX_SHARDS_NAMED..]
            .iter()
            .map(|(_, f, _)| f.index.unwrap_or(u32::MAX))
            .collect();
        for (r, _, _) in &findings[MAX_SHARDS_NAMED..] {
            worst = worst.max(*r);
        }
        let named = if rest.len() > 12 {
            format!("{}, …", shard_list(&rest[..12]).replacen(" and ", ", ", 1))
        } else {
            shard_list(&rest)
        };
        shard_reasons.push(format!(
            "{} more shards have findings too ({named}): their reasons are in the shard table",
            rest.len()
        ));
    }
    let any_completed = set
        .shards
        .iter()
        .any(|f| f.status == ShardStatus::Completed);
    for f in &set.shards {
        let share = share_pct(f.share);
        let stop = f
            .window_us
            .map(|w| {
                format!(
                    " at {} on the run's clock",
                    format::duration_s(w.1 as f64 / 1e6)
                )
            })
            .unwrap_or_default();
        let reason = match f.status {
            ShardStatus::Missing | ShardStatus::Unreadable => Some(format!(
                "{} is {}: its {share} of the load is in no figure, and whether its generator kept its \
                 schedule is unknown",
                f.name(),
                f.status.describe()
            )),
            ShardStatus::Unfinished | ShardStatus::Failed => Some(format!(
                "{} {} and stopped applying its {share} of the load{stop}: the target saw less load than \
                 the profile asks for from then on",
                f.name(),
                if f.status == ShardStatus::Failed {
                    "failed"
                } else {
                    "was never finalized"
                }
            )),
            ShardStatus::Interrupted if any_completed => Some(format!(
                "{} was interrupted{stop} while other shards completed: its {share} of the load stopped early",
                f.name()
            )),
            _ => None,
        };
        if let Some(r) = reason {
            worst = worst.max(rank(Verdict::Suspect));
            reasons.push(r);
        }
    }
    reasons.append(&mut shard_reasons);
    if !known && reasons.is_empty() {
        worst = worst.max(rank(merged.verdict));
        reasons = merged.reasons.clone();
    } else if rank(merged.verdict) > worst && merged.verdict != Verdict::Unknown {
        // A rule over the whole run that no single shard breaks.
        worst = rank(merged.verdict);
        reasons.extend(merged.reasons.iter().cloned());
    }
    health.verdict = match worst {
        0 => Verdict::Ok,
        1 => Verdict::Unknown,
        2 => Verdict::Suspect,
        _ => Verdict::Invalid,
    };
    health.reasons = reasons;

    let merged_count = set.shards.iter().filter(|f| f.status.has_data()).count() as u32;
    let analysis = ShardsAnalysis {
        count: set.count,
        merged: merged_count,
        missing_share: set.missing_share(),
        partial: set.shards.iter().any(|f| !f.status.has_data()),
        complete: set
            .shards
            .iter()
            .all(|f| f.status == ShardStatus::Completed),
        alerts: alerts(set),
        alignment: alignment(set),
        shards: rows,
    };
    Ok((health, analysis))
}

fn row(f: &ShardFacts) -> ShardRow {
    let window_s = f.window_us.map_or(0.0, |(a, b)| (b - a) as f64 / 1e6);
    let ms = |us: u64| us as f64 / 1000.0;
    ShardRow {
        index: f.index,
        dir: f.dir.as_ref().map(|d| d.display().to_string()),
        host: f.host.clone(),
        status: f.status,
        share: f.share,
        requests: f.requests,
        failures: f.failures,
        rps: if window_s > 0.0 {
            f.requests as f64 / window_s
        } else {
            0.0
        },
        window_s,
        last_sample_s: f.window_us.map(|w| w.1 as f64 / 1e6),
        lag_p99_ms: None,
        cpu_max_pct: None,
        cpu_max_core: None,
        start_offset_ms: f.started_unix_ns.map(|_| f.offset_us as f64 / 1000.0),
        clock_error_ms: f.clock_sync.as_ref().map(|c| ms(c.estimated_error_us)),
        clock_bound_ms: f.clock_sync.as_ref().map(|c| ms(c.max_error_us)),
        clock_synchronised: f.clock_sync.as_ref().map(|c| c.synchronised),
        verdict: Verdict::Unknown,
        reasons: Vec::new(),
    }
}

/// The shard's busiest core in its busiest whole second within the run's window: (CPU %, its core
/// within the shard).
fn busiest_core(
    f: &ShardFacts,
    intervals: &[(u32, formats::IntervalStats)],
    ts: &TimeSeries,
) -> Option<(f64, u32)> {
    let (first, last) = (*ts.t_s.first()?, *ts.t_s.last()?);
    intervals
        .iter()
        .filter(|(_, s)| {
            formats::health::is_whole(s)
                && (first..=last).contains(&((s.start_us / 1_000_000) as u32))
        })
        .map(|(core, s)| {
            let busy = f64::from(s.cpu_user_us) + f64::from(s.cpu_system_us);
            let local = f
                .cores
                .iter()
                .find(|(id, _)| id == core)
                .map_or(*core, |c| c.1);
            (100.0 * busy / f64::from(s.duration_us), local)
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

/// The sentences for the top of the report: what is not in it, or stopped early.
fn alerts(set: &ShardSet) -> Vec<String> {
    let mut out = Vec::new();
    let missing: Vec<&ShardFacts> = set.shards.iter().filter(|f| !f.status.has_data()).collect();
    if !missing.is_empty() {
        out.push(format!(
            "{} of {} shards {} not in this report ({}): {} of the load is in no figure, so totals and \
             throughput describe {} of the test",
            missing.len(),
            set.count,
            if missing.len() == 1 { "is" } else { "are" },
            missing
                .iter()
                .map(|f| format!("{} {}", f.name(), f.status.describe()))
                .collect::<Vec<_>>()
                .join(", "),
            share_pct(set.missing_share()),
            share_pct(1.0 - set.missing_share())
        ));
    }
    for f in &set.shards {
        if matches!(
            f.status,
            ShardStatus::Unfinished | ShardStatus::Failed | ShardStatus::Interrupted
        ) {
            let planned = f
                .planned_duration_s
                .map(|p| format!(" ({} planned)", format::duration_s(p)))
                .unwrap_or_default();
            let stop = f.window_us.map_or_else(
                || "before its first sample".to_owned(),
                |w| format!("at {}{planned}", format::duration_s(w.1 as f64 / 1e6)),
            );
            out.push(format!(
                "{} {} ({}): its samples stop {stop} on the run's clock; it carried {} of the load",
                f.name(),
                f.status.describe(),
                match f.status {
                    ShardStatus::Unfinished =>
                        "killed or crashed; every complete block is included",
                    ShardStatus::Failed => "the engine stopped on an error",
                    _ => "stopped early and flushed",
                },
                share_pct(f.share)
            ));
        }
    }
    out
}

/// How well the shards line up: the spread of their time zeros and their clocks' errors, with a
/// warning for each figure above [`ALIGNMENT_WARN_US`] and each unsynchronised clock.
pub fn alignment(set: &ShardSet) -> Alignment {
    let present: Vec<&ShardFacts> = set.shards.iter().filter(|f| f.status.has_data()).collect();
    let offsets: Vec<u64> = present
        .iter()
        .filter(|f| f.started_unix_ns.is_some())
        .map(|f| f.offset_us)
        .collect();
    let spread_us =
        offsets.iter().max().copied().unwrap_or(0) - offsets.iter().min().copied().unwrap_or(0);
    let with_clock: Vec<(&ShardFacts, &formats::ClockSync)> = present
        .iter()
        .filter_map(|f| f.clock_sync.as_ref().map(|c| (*f, c)))
        .collect();
    let max_error = with_clock.iter().map(|(_, c)| c.estimated_error_us).max();
    let max_bound = with_clock.iter().map(|(_, c)| c.max_error_us).max();
    let index = |f: &ShardFacts| f.index.unwrap_or(u32::MAX);
    let unsynchronised: Vec<u32> = with_clock
        .iter()
        .filter(|(_, c)| !c.synchronised)
        .map(|(f, _)| index(f))
        .collect();
    let clock_unknown: Vec<u32> = present
        .iter()
        .filter(|f| f.clock_sync.is_none())
        .map(|f| index(f))
        .collect();
    let ms = |us: u64| format::latency_us(us as f64);
    let mut summary = match &set.start_at {
        Some(at) => format!(
            "The shards waited for the common start {at}; their time zeros lie within {} of each other.",
            ms(spread_us)
        ),
        None => format!(
            "The shards started without a common start instant (no `--start-at`); their time zeros lie within {} \
             of each other.",
            ms(spread_us)
        ),
    };
    summary.push_str(" Each shard's samples are placed on the common clock by its own time zero.");
    match (max_error, max_bound) {
        (Some(e), Some(b)) => summary.push_str(&format!(
            " Clock error at the start, as the kernels estimated it: at most {} (bound {}){}.",
            ms(e),
            ms(b),
            if clock_unknown.is_empty() {
                String::new()
            } else {
                format!("; {} recorded no clock figures", shard_list(&clock_unknown))
            }
        )),
        _ => summary.push_str(
            " No shard recorded its clock's synchronisation, so their clock error is unknown.",
        ),
    }
    let mut warnings = Vec::new();
    if spread_us > ALIGNMENT_WARN_US {
        warnings.push(match &set.start_at {
            Some(at) => format!(
                "the shards' time zeros spread over {} although every shard waited for {at}: some started late or \
                 their clocks disagree, so near the start and the end some seconds hold only part of the load",
                ms(spread_us)
            ),
            None => format!(
                "the shards started {} apart (they did not wait for a common start: `engine run --start-at`), so \
                 the first and last seconds on the common clock hold only some shards' load",
                ms(spread_us)
            ),
        });
    }
    for (f, c) in &with_clock {
        if c.estimated_error_us > ALIGNMENT_WARN_US {
            warnings.push(format!(
                "{}'s clock may be off by {} (the kernel's estimate; bound {}), more than {} of the one-second \
                 resolution: its samples may sit in a neighbouring second on the common clock",
                f.name(),
                ms(c.estimated_error_us),
                ms(c.max_error_us),
                ms(ALIGNMENT_WARN_US)
            ));
        }
    }
    match unsynchronised.len() {
        0 => {}
        1 => warnings.push(format!(
            "the clock of {} was not synchronised (no NTP, PTP or chrony disciplining it) when it started: its \
             place on the common clock is only as good as its wall clock",
            shard_list(&unsynchronised)
        )),
        _ => warnings.push(format!(
            "the clocks of {} were not synchronised (no NTP, PTP or chrony disciplining them) when they started: \
             their places on the common clock are only as good as their wall clocks",
            shard_list(&unsynchronised)
        )),
    }
    Alignment {
        start_at: set.start_at.clone(),
        start_spread_ms: spread_us as f64 / 1000.0,
        max_clock_error_ms: max_error.map(|e| e as f64 / 1000.0),
        max_clock_bound_ms: max_bound.map(|e| e as f64 / 1000.0),
        unsynchronised,
        clock_unknown,
        summary,
        warnings,
    }
}

/// `shard 3`, `shards 3 and 5`, `shards 1, 2 and 7`.
fn shard_list(indices: &[u32]) -> String {
    let names: Vec<String> = indices
        .iter()
        .map(|i| {
            if *i == u32::MAX {
                "?".into()
            } else {
                i.to_string()
            }
        })
        .collect();
    match names.as_slice() {
        [one] => format!("shard {one}"),
        [init @ .., last] => format!("shards {} and {last}", init.join(", ")),
        [] => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(index: u32, offset_us: u64, clock: Option<(bool, u64)>) -> ShardFacts {
        ShardFacts {
            index: Some(index),
            dir: Some(format!("r/shard-{index:02}").into()),
            status: ShardStatus::Completed,
            share: 0.5,
            host: format!("pod-{index}"),
            started_unix_ns: Some(1_000_000_000 + offset_us as i64 * 1000),
            offset_us,
            planned_duration_s: Some(60.0),
            clock_sync: clock.map(|(synchronised, error)| formats::ClockSync {
                synchronised,
                estimated_error_us: error,
                max_error_us: error * 4,
                source: "adjtimex".into(),
            }),
            cores: Vec::new(),
            requests: 0,
            failures: 0,
            window_us: None,
            detail: None,
        }
    }

    fn set(shards: Vec<ShardFacts>, start_at: Option<&str>) -> ShardSet {
        ShardSet {
            count: shards.len() as u32,
            start_at: start_at.map(str::to_owned),
            base_unix_ns: Some(1_000_000_000),
            shards,
        }
    }

    #[test]
    fn aligned_shards_earn_no_warning() {
        let a = alignment(&set(
            vec![
                facts(0, 0, Some((true, 300))),
                facts(1, 900, Some((true, 500))),
            ],
            Some("2026-03-02T09:00:00Z"),
        ));
        assert!(a.warnings.is_empty(), "{:?}", a.warnings);
        assert_eq!(a.start_spread_ms, 0.9);
        assert_eq!(a.max_clock_error_ms, Some(0.5));
        assert!(a.summary.contains("2026-03-02T09:00:00Z"), "{}", a.summary);
    }

    #[test]
    fn a_wide_spread_a_large_clock_error_and_an_unsynchronised_clock_are_each_warned() {
        let a = alignment(&set(
            vec![
                facts(0, 0, Some((true, 300))),
                facts(1, 25_000, Some((true, 40_000))),
                facts(2, 1_000, Some((false, 100))),
                facts(3, 2_000, None),
            ],
            None,
        ));
        assert_eq!(a.warnings.len(), 3, "{:?}", a.warnings);
        assert!(a.warnings[0].contains("25.0 ms apart"), "{}", a.warnings[0]);
        assert!(a.warnings[0].contains("--start-at"), "{}", a.warnings[0]);
        assert!(
            a.warnings[1].starts_with("shard 1 (pod-1)'s clock may be off by 40.0 ms"),
            "{}",
            a.warnings[1]
        );
        assert!(
            a.warnings[2].contains("shard 2 was not synchronised"),
            "{}",
            a.warnings[2]
        );
        assert_eq!(a.clock_unknown, vec![3]);
        assert!(
            a.summary.contains("shard 3 recorded no clock figures"),
            "{}",
            a.summary
        );
    }

    #[test]
    fn shard_lists_read_as_english() {
        assert_eq!(shard_list(&[3]), "shard 3");
        assert_eq!(shard_list(&[3, 5]), "shards 3 and 5");
        assert_eq!(shard_list(&[1, 2, 7]), "shards 1, 2 and 7");
    }
}
