//! The generator's health and the run's verdict: could the load generator apply the load it was asked
//! for, and so can the numbers be trusted?
//!
//! The engine writes, per core and per second, its schedule lag (actual minus intended start), the
//! iterations it started and dropped, and its own CPU time (`formats::IntervalStats`). A generator
//! that falls behind its schedule or drops iterations did not apply the load the profile describes,
//! and a generator at full CPU may be what limited throughput: users have published false capacity
//! limits because nobody checked. The rules, each with its reason in the report:
//!
//! | verdict | when |
//! |---|---|
//! | INVALID | more than 1 % of iterations dropped, or the schedule lag P99 above 1 ms in at least half of the seconds |
//! | SUSPECT | any iteration dropped, any second with lag P99 above 1 ms, or a core at 90 % CPU or more in any (whole) second |
//! | OK | none of these |
//! | UNKNOWN | the logs hold no interval records (a very short or damaged run) |
//!
//! Lag is judged per second on the worst core, the same figure the engine's console warns about.

use serde::Serialize;

use formats::IntervalStats;

use crate::timeseries::TimeSeries;

/// Schedule lag P99 above this means the generator, not the target, set the pace.
pub const LAG_LIMIT_MS: f64 = 1.0;
/// A core this busy may have limited throughput.
pub const CPU_LIMIT_PCT: f64 = 90.0;
/// Dropping more than this share of iterations makes the run invalid.
pub const DROPPED_INVALID_PCT: f64 = 1.0;
/// Intervals shorter than this (µs) do not count towards CPU saturation.
pub const MIN_CPU_INTERVAL_US: u32 = 500_000;
/// Lagging in at least this share of seconds makes the run invalid.
pub const LAGGING_INVALID_SHARE: f64 = 0.5;

/// The verdict on a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    /// The generator kept its schedule.
    Ok,
    /// The generator struggled at times: read the numbers with care.
    Suspect,
    /// The generator did not apply the load asked for: the numbers describe another test.
    Invalid,
    /// No health records to judge by.
    Unknown,
}

impl Verdict {
    /// `OK`, `SUSPECT`, `INVALID` or `UNKNOWN`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "OK",
            Verdict::Suspect => "SUSPECT",
            Verdict::Invalid => "INVALID",
            Verdict::Unknown => "UNKNOWN",
        }
    }
}

/// The generator's health over the measured window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Health {
    /// The verdict.
    pub verdict: Verdict,
    /// Why, one sentence per finding (empty when OK).
    pub reasons: Vec<String>,
    /// Seconds with interval records.
    pub seconds: u32,
    /// Seconds whose worst-core schedule lag P99 passed [`LAG_LIMIT_MS`].
    pub lagging_seconds: u32,
    /// The largest per-second lag P99 (worst core), ms.
    pub worst_lag_p99_ms: f64,
    /// The largest lag of any request, ms.
    pub worst_lag_max_ms: f64,
    /// Iterations started.
    pub iterations_started: u64,
    /// Iterations the schedule called for that no free user could start.
    pub iterations_dropped: u64,
    /// The busiest core-second's CPU use, % of one core.
    pub cpu_max_pct: f64,
    /// Seconds in which some core used at least [`CPU_LIMIT_PCT`] of its CPU.
    pub saturated_seconds: u32,
}

/// Judges a run from its interval records (`(core, record)`, as loaded) and its per-second series,
/// over the seconds of `ts` (the window after any warm-up).
pub fn assess(intervals: &[(u32, IntervalStats)], ts: &TimeSeries) -> Health {
    let first = ts.t_s.first().copied().unwrap_or(0);
    let last = ts.t_s.last().copied().unwrap_or(0);
    let in_window = |start_us: u64| {
        let t = (start_us / 1_000_000) as u32;
        (first..=last).contains(&t)
    };
    let (mut started, mut dropped) = (0u64, 0u64);
    // CPU over a short interval (the partial one a core closes at the end of the run) is mostly
    // start-up or shutdown work and rounding: only whole-enough seconds count towards saturation.
    let mut cpu_by_second: std::collections::BTreeMap<u64, f64> = std::collections::BTreeMap::new();
    for (_, s) in intervals.iter().filter(|(_, s)| in_window(s.start_us)) {
        started += u64::from(s.iterations_started);
        dropped += u64::from(s.iterations_dropped);
        if s.duration_us >= MIN_CPU_INTERVAL_US {
            let busy = f64::from(s.cpu_user_us) + f64::from(s.cpu_system_us);
            let pct = 100.0 * busy / f64::from(s.duration_us);
            let slot = cpu_by_second.entry(s.start_us / 1_000_000).or_default();
            *slot = slot.max(pct);
        }
    }
    let lags: Vec<f64> = ts.lag_p99_ms.iter().flatten().copied().collect();
    let seconds = lags.len() as u32;
    let lagging_seconds = lags.iter().filter(|&&l| l > LAG_LIMIT_MS).count() as u32;
    let max = |v: &[Option<f64>]| v.iter().flatten().copied().fold(0.0, f64::max);
    let cpu_max_pct = cpu_by_second.values().copied().fold(0.0, f64::max);
    let saturated_seconds = cpu_by_second
        .values()
        .filter(|&&c| c >= CPU_LIMIT_PCT)
        .count() as u32;
    let mut health = Health {
        verdict: Verdict::Ok,
        reasons: Vec::new(),
        seconds,
        lagging_seconds,
        worst_lag_p99_ms: max(&ts.lag_p99_ms),
        worst_lag_max_ms: max(&ts.lag_max_ms),
        iterations_started: started,
        iterations_dropped: dropped,
        cpu_max_pct,
        saturated_seconds,
    };
    if seconds == 0 {
        health.verdict = Verdict::Unknown;
        health.reasons.push(
            "the logs hold no per-second health records, so the generator's lag, drops and CPU are unknown"
                .into(),
        );
        return health;
    }
    let dropped_pct = 100.0 * dropped as f64 / (started + dropped).max(1) as f64;
    let mut invalid = false;
    if dropped > 0 {
        invalid |= dropped_pct > DROPPED_INVALID_PCT;
        health.reasons.push(format!(
            "{dropped} iterations ({dropped_pct:.2}%) were dropped because no user was free: the target saw less load than \
             the profile asks for (raise max_users, or lower the rate)"
        ));
    }
    if lagging_seconds > 0 {
        invalid |= f64::from(lagging_seconds) >= LAGGING_INVALID_SHARE * f64::from(seconds);
        health.reasons.push(format!(
            "schedule lag P99 passed {LAG_LIMIT_MS} ms in {lagging_seconds} of {seconds} seconds (worst {:.1} ms): the \
             generator, not the target, set the pace then",
            health.worst_lag_p99_ms
        ));
    }
    if saturated_seconds > 0 {
        health.reasons.push(format!(
            "an engine core used {:.0}% of its CPU (at least {CPU_LIMIT_PCT:.0}% in {saturated_seconds} of {seconds} \
             seconds): throughput may have been limited by the generator",
            cpu_max_pct
        ));
    }
    health.verdict = match (invalid, health.reasons.is_empty()) {
        (true, _) => Verdict::Invalid,
        (false, false) => Verdict::Suspect,
        (false, true) => Verdict::Ok,
    };
    health
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(lag_p99_ms: &[f64], cpu_max_pct: &[f64]) -> TimeSeries {
        let n = lag_p99_ms.len();
        TimeSeries {
            t_s: (0..n as u32).collect(),
            lag_p99_ms: lag_p99_ms.iter().map(|&v| Some(v)).collect(),
            lag_max_ms: lag_p99_ms.iter().map(|&v| Some(v * 2.0)).collect(),
            cpu_max_pct: cpu_max_pct.iter().map(|&v| Some(v)).collect(),
            ..TimeSeries::default()
        }
    }

    fn intervals(per_second: &[(f64, u32, u32)]) -> Vec<(u32, IntervalStats)> {
        per_second
            .iter()
            .enumerate()
            .map(|(t, &(cpu_pct, started, dropped))| {
                (
                    0,
                    IntervalStats {
                        start_us: t as u64 * 1_000_000,
                        duration_us: 1_000_000,
                        cpu_user_us: (cpu_pct * 10_000.0) as u32,
                        iterations_started: started,
                        iterations_dropped: dropped,
                        ..Default::default()
                    },
                )
            })
            .collect()
    }

    /// Each row: per-second (lag P99 ms, CPU %, started, dropped), and the verdict it earns.
    #[test]
    fn verdict_table() {
        type Second = (f64, f64, u32, u32);
        #[rustfmt::skip]
        let rows: &[(&[Second], Verdict)] = &[
            // A healthy run.
            (&[(0.1, 40.0, 1000, 0), (0.2, 45.0, 1000, 0)], Verdict::Ok),
            // One second over 1 ms of lag out of four: suspect.
            (&[(0.1, 40.0, 1000, 0), (1.5, 40.0, 1000, 0), (0.1, 40.0, 1000, 0), (0.1, 40.0, 1000, 0)], Verdict::Suspect),
            // Exactly 1 ms is within the limit.
            (&[(1.0, 40.0, 1000, 0)], Verdict::Ok),
            // Lagging half of the time: invalid.
            (&[(0.1, 40.0, 1000, 0), (3.0, 40.0, 1000, 0)], Verdict::Invalid),
            // A few drops (0.05 %): suspect; more than 1 %: invalid.
            (&[(0.1, 40.0, 1000, 1), (0.1, 40.0, 1000, 0)], Verdict::Suspect),
            (&[(0.1, 40.0, 1000, 30), (0.1, 40.0, 1000, 0)], Verdict::Invalid),
            // A saturated core: suspect, however good the lag.
            (&[(0.1, 95.0, 1000, 0), (0.1, 40.0, 1000, 0)], Verdict::Suspect),
        ];
        for (i, (seconds, want)) in rows.iter().enumerate() {
            let ts = series(
                &seconds.iter().map(|s| s.0).collect::<Vec<_>>(),
                &seconds.iter().map(|s| s.1).collect::<Vec<_>>(),
            );
            let r = intervals(&seconds.iter().map(|s| (s.1, s.2, s.3)).collect::<Vec<_>>());
            let h = assess(&r, &ts);
            assert_eq!(h.verdict, *want, "row {i}: {:?}", h.reasons);
            assert_eq!(h.reasons.is_empty(), *want == Verdict::Ok, "row {i}");
        }
    }

    /// The short interval a core closes at the end of a run does not count as a saturated second.
    #[test]
    fn a_short_last_interval_is_not_saturation() {
        let ts = series(&[0.1, 0.1], &[40.0, 150.0]);
        let mut r = intervals(&[(40.0, 1000, 0), (0.0, 10, 0)]);
        r[1].1.duration_us = 20_000;
        r[1].1.cpu_user_us = 30_000;
        let h = assess(&r, &ts);
        assert_eq!(h.verdict, Verdict::Ok, "{:?}", h.reasons);
        assert!((h.cpu_max_pct - 40.0).abs() < 0.1);
    }

    #[test]
    fn no_records_is_unknown() {
        let h = assess(&[], &TimeSeries::default());
        assert_eq!(h.verdict, Verdict::Unknown);
        assert_eq!(h.reasons.len(), 1);
    }
}
