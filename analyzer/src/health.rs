//! The generator's health and the run's verdict: could the load generator apply the load it was asked
//! for, and if it could not, why?
//!
//! The engine writes, per core and per second, its schedule lag (actual minus intended start), the
//! requests that started more than 1 ms late, the iterations it started and dropped, its own CPU time,
//! and what explains lag: context switches, time runnable but not running, steal time, how late its
//! timed waits woke, users starting, and whether the core was ready at time zero
//! (`formats::IntervalStats`). A generator that falls behind its schedule or drops iterations did not
//! apply the load the profile describes, and a generator at full CPU may be what limited throughput:
//! users have published false capacity limits because nobody checked. The rules, each with its
//! reason in the report:
//!
//! | verdict | when |
//! |---|---|
//! | INVALID | more than 1 % of iterations dropped, or at least half of the seconds lagging |
//! | SUSPECT | any iteration dropped, any lagging second, or a core at 90 % CPU or more in any whole second |
//! | OK | none of these |
//! | UNKNOWN | the logs hold no interval records (a very short or damaged run) |
//!
//! A second *lags* when more than 1 % of the requests completed in it, and at least 5, started more
//! than 1 ms late, over every core; each lagging second is given the cause the evidence of its worst
//! core points to. Both rules are `formats::health`, which the engine's console applies too. Only
//! whole seconds are judged (see [`crate::timeseries`]).

use std::collections::BTreeMap;

use serde::Serialize;

use formats::IntervalStats;
use formats::health::{self as rule, Cause};

use crate::timeseries::{TimeSeries, per_second_filter};

/// Schedule lag above this (ms) makes a request late.
pub const LAG_LIMIT_MS: f64 = rule::LAG_LIMIT_US as f64 / 1000.0;
/// A core this busy may have limited throughput.
pub const CPU_LIMIT_PCT: f64 = rule::CPU_LIMIT_PCT;
/// The evidence table lists at most this many seconds (the ones with most late requests).
pub const MAX_EVIDENCE_ROWS: usize = 30;

/// The verdict on a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    /// The generator kept its schedule.
    Ok,
    /// The generator did not keep its schedule at times: read the numbers with care.
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
    /// Findings that do not change the verdict (late requests too few to judge a second by).
    pub notes: Vec<String>,
    /// Whole seconds with interval records.
    pub seconds: u32,
    /// Seconds that lagged (more than 1 % of their requests, and at least 5, over 1 ms late).
    pub lagging_seconds: u32,
    /// Requests completed in the judged seconds: what the judgements rest on.
    pub requests: u64,
    /// Those that started more than 1 ms late.
    pub late_requests: u64,
    /// Late requests in seconds that did not lag (too few to judge them by).
    pub late_unjudged: u64,
    /// Lagging seconds by cause, most seconds first.
    pub causes: Vec<CauseSummary>,
    /// The lagging seconds with their evidence (at most [`MAX_EVIDENCE_ROWS`], most late requests
    /// first, then in time order).
    pub lagging: Vec<SecondEvidence>,
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
    /// The core of that core-second.
    pub cpu_max_core: u32,
    /// Seconds in which some core used at least [`CPU_LIMIT_PCT`] of its CPU.
    pub saturated_seconds: u32,
    /// Whether the kernel reported run-queue delay and steal time (false for v1.0 logs and kernels
    /// without them): "unknown" evidence is not evidence of absence.
    pub run_delay_known: bool,
    /// See `run_delay_known`.
    pub steal_known: bool,
}

/// The lagging seconds one cause explains.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CauseSummary {
    /// `start-up`, `capacity`, `preempted`, `late wake-up`, `warm-up` or `unexplained`.
    pub cause: Cause,
    /// The seconds, numbered from 1 as the console numbers them (second 1 is 0–1 s).
    pub seconds: Vec<u32>,
    /// Requests in those seconds, and the late ones among them.
    pub requests: u64,
    /// See `requests`.
    pub late: u64,
    /// The evidence in the second with most late requests...
    pub evidence: String,
    /// ... which is this one.
    pub evidence_second: u32,
    /// What to do.
    pub advice: String,
}

/// One lagging second and what the engine measured in it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecondEvidence {
    /// The second, from 1 (second 1 is 0–1 s).
    pub second: u32,
    /// Requests completed in it over every core, and how many started late.
    pub requests: u64,
    /// See `requests`.
    pub late: u64,
    /// The worst core's lag P99 and max, ms.
    pub lag_p99_ms: f64,
    /// See `lag_p99_ms`.
    pub lag_max_ms: f64,
    /// The cause, and the core whose evidence names it (the one with most late requests).
    pub cause: Cause,
    /// See `cause`.
    pub core: u32,
    /// That core's figures.
    pub cpu_pct: f64,
    /// Time runnable but not running, ms (`None`: not reported).
    pub run_delay_ms: Option<f64>,
    /// Involuntary context switches.
    pub preemptions: u32,
    /// Steal time, % of the second (`None`: not reported).
    pub steal_pct: Option<f64>,
    /// The latest timed wake-up after its deadline, ms.
    pub wake_late_max_ms: f64,
    /// Users started on the core in the second.
    pub users_started: u32,
    /// The evidence as a phrase.
    pub evidence: String,
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
    let used = per_second_filter(intervals);
    let (mut started, mut dropped) = (0u64, 0u64);
    let mut by_second: BTreeMap<u32, Vec<(u32, &IntervalStats)>> = BTreeMap::new();
    for (core, s) in intervals {
        // Iterations count wherever they fell, the partial end included (an open model counts the
        // arrivals it could not start there).
        let t = (s.start_us / 1_000_000) as u32;
        if in_window(s.start_us) || (t > last && !ts.is_empty()) {
            started += u64::from(s.iterations_started);
            dropped += u64::from(s.iterations_dropped);
        }
        if in_window(s.start_us) && used(s) {
            by_second.entry(t).or_default().push((*core, s));
        }
    }
    let max = |v: &[Option<f64>]| v.iter().flatten().copied().fold(0.0, f64::max);
    let mut health = Health {
        verdict: Verdict::Ok,
        reasons: Vec::new(),
        notes: Vec::new(),
        seconds: by_second.len() as u32,
        lagging_seconds: 0,
        requests: 0,
        late_requests: 0,
        late_unjudged: 0,
        causes: Vec::new(),
        lagging: Vec::new(),
        worst_lag_p99_ms: max(&ts.lag_p99_ms),
        worst_lag_max_ms: max(&ts.lag_max_ms),
        iterations_started: started,
        iterations_dropped: dropped,
        cpu_max_pct: 0.0,
        cpu_max_core: 0,
        saturated_seconds: 0,
        run_delay_known: intervals.iter().any(|(_, s)| s.run_delay_us.is_some()),
        steal_known: intervals.iter().any(|(_, s)| s.steal_us.is_some()),
    };
    if health.seconds == 0 {
        health.verdict = Verdict::Unknown;
        health.reasons.push(
            "the logs hold no per-second health records, so the generator's lag, drops and CPU are unknown"
                .into(),
        );
        return health;
    }
    let mut causes: BTreeMap<Cause, CauseSummary> = BTreeMap::new();
    for (&t, records) in &by_second {
        let judged = rule::judge_second(records.iter().copied());
        health.requests += judged.requests;
        health.late_requests += judged.late;
        let (cpu_core, cpu) = records
            .iter()
            .map(|(c, s)| (*c, rule::cpu_pct(s)))
            .fold((0, -1.0), |a, b| if b.1 > a.1 { b } else { a });
        if cpu > health.cpu_max_pct {
            (health.cpu_max_core, health.cpu_max_pct) = (cpu_core, cpu);
        }
        health.saturated_seconds += u32::from(cpu >= CPU_LIMIT_PCT);
        if !judged.lagging {
            health.late_unjudged += judged.late;
            continue;
        }
        health.lagging_seconds += 1;
        let Some((cause, core, evidence)) = judged.cause else {
            continue;
        };
        let s = records
            .iter()
            .find(|(c, _)| *c == core)
            .map(|(_, s)| *s)
            .expect("the cause names a core of the second");
        let second = t + 1;
        let summary = causes.entry(cause).or_insert_with(|| CauseSummary {
            cause,
            seconds: Vec::new(),
            requests: 0,
            late: 0,
            evidence: String::new(),
            evidence_second: second,
            advice: cause.advice().into(),
        });
        summary.seconds.push(second);
        summary.requests += judged.requests;
        if health
            .lagging
            .iter()
            .filter(|e| e.cause == cause)
            .all(|e| e.late < judged.late)
        {
            summary.evidence.clone_from(&evidence);
            summary.evidence_second = second;
        }
        summary.late += judged.late;
        let ms = |us: u32| f64::from(us) / 1000.0;
        health.lagging.push(SecondEvidence {
            second,
            requests: judged.requests,
            late: judged.late,
            lag_p99_ms: records
                .iter()
                .map(|(_, r)| ms(r.lag_p99_us))
                .fold(0.0, f64::max),
            lag_max_ms: records
                .iter()
                .map(|(_, r)| ms(r.lag_max_us))
                .fold(0.0, f64::max),
            cause,
            core,
            cpu_pct: rule::cpu_pct(s),
            run_delay_ms: s.run_delay_us.map(ms),
            preemptions: s.involuntary_switches,
            steal_pct: rule::steal_pct(s),
            wake_late_max_ms: ms(s.wake_late_max_us),
            users_started: s.users_started,
            evidence,
        });
    }
    let mut causes: Vec<CauseSummary> = causes.into_values().collect();
    causes.sort_by_key(|c| std::cmp::Reverse(c.seconds.len()));
    health.causes = causes;
    health
        .lagging
        .sort_by_key(|e| (std::cmp::Reverse(e.late), e.second));
    health.lagging.truncate(MAX_EVIDENCE_ROWS);
    health.lagging.sort_by_key(|e| e.second);
    judge(&mut health);
    health
}

/// The verdict and its reasons, from the figures.
fn judge(health: &mut Health) {
    let seconds = health.seconds;
    let (started, dropped) = (health.iterations_started, health.iterations_dropped);
    let dropped_pct = 100.0 * dropped as f64 / (started + dropped).max(1) as f64;
    let mut invalid = false;
    if dropped > 0 {
        invalid |= rule::is_invalid(0, seconds, dropped_pct);
        health.reasons.push(format!(
            "{dropped} iterations ({dropped_pct:.2}%) were dropped because no user was free: the target saw less load than \
             the profile asks for (raise max_users, `--users` on the command line, or lower the rate)"
        ));
    }
    if health.lagging_seconds > 0 {
        invalid |= rule::is_invalid(health.lagging_seconds, seconds, 0.0);
        let late = health.late_requests - health.late_unjudged;
        let requests: u64 = health.causes.iter().map(|c| c.requests).sum();
        health.reasons.push(format!(
            "more than {}% of requests (and at least {}) started over {LAG_LIMIT_MS} ms late in {} of {seconds} seconds \
             ({} of {} requests in those seconds; worst lag P99 {:.1} ms): the generator, not the target, set the pace then",
            rule::LATE_SHARE_PCT,
            rule::MIN_LATE_REQUESTS,
            health.lagging_seconds,
            crate::format::int(late),
            crate::format::int(requests),
            health.worst_lag_p99_ms
        ));
        for c in &health.causes {
            let worst = if c.seconds.len() > 1 {
                format!(" (the most late requests, in second {})", c.evidence_second)
            } else {
                String::new()
            };
            health.reasons.push(format!(
                "{} in {} ({} of {} requests late): {}: {}{worst}. Do: {}.",
                c.cause.name(),
                seconds_list(&c.seconds),
                crate::format::int(c.late),
                crate::format::int(c.requests),
                c.cause.meaning(),
                c.evidence,
                c.advice
            ));
        }
    }
    if health.saturated_seconds > 0 {
        health.reasons.push(format!(
            "core {} at {:.0} % CPU (at least {CPU_LIMIT_PCT:.0} % in {} of {seconds} seconds): the generator's own capacity \
             may have limited throughput. Do: {}.",
            health.cpu_max_core,
            health.cpu_max_pct,
            health.saturated_seconds,
            Cause::Capacity.advice()
        ));
    }
    if health.late_unjudged > 0 {
        health.notes.push(format!(
            "{} request(s) started over {LAG_LIMIT_MS} ms late in seconds that had too few late requests to count as \
             lagging (a second needs at least {} and more than {}% of its {} requests on average); they are in the \
             corrected latencies",
            crate::format::int(health.late_unjudged),
            rule::MIN_LATE_REQUESTS,
            rule::LATE_SHARE_PCT,
            crate::format::int(health.requests / u64::from(seconds.max(1)))
        ));
    }
    if !health.run_delay_known {
        health.notes.push(
            "the logs do not say how long the engine waited for a CPU (written before format v1.1, or a kernel without \
             schedstat): preemption by other processes cannot be told apart from late wake-ups"
                .into(),
        );
    }
    health.verdict = match (invalid, health.reasons.is_empty()) {
        (true, _) => Verdict::Invalid,
        (false, false) => Verdict::Suspect,
        (false, true) => Verdict::Ok,
    };
}

/// `second 3`, `seconds 1, 5 and 9`, `seconds 1, 2, 3, 4, 5, 6 … (12 seconds)`.
pub fn seconds_list(seconds: &[u32]) -> String {
    const SHOWN: usize = 6;
    let names: Vec<String> = seconds.iter().take(SHOWN).map(u32::to_string).collect();
    match seconds.len() {
        0 => String::new(),
        1 => format!("second {}", names[0]),
        n if n <= SHOWN => format!("seconds {} and {}", names[..n - 1].join(", "), names[n - 1]),
        n => format!("seconds {} … ({n} seconds)", names.join(", ")),
    }
}

/// Refuses a run whose load generator health is INVALID, naming the run, the reasons and `escape`
/// (how the command judges it anyway, or ""): a verdict or comparison on it would describe a test
/// other than the one the profile asked for.
pub fn refuse_invalid(
    dir: &std::path::Path,
    health: &Health,
    escape: &'static str,
) -> crate::error::Result<()> {
    if health.verdict == Verdict::Invalid {
        return Err(crate::error::Error::InvalidRun {
            dir: dir.to_owned(),
            reasons: health.reasons.clone(),
            escape,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(n: usize) -> TimeSeries {
        TimeSeries {
            t_s: (0..n as u32).collect(),
            lag_p99_ms: vec![Some(0.1); n],
            lag_max_ms: vec![Some(0.2); n],
            ..TimeSeries::default()
        }
    }

    /// One whole second of one core: CPU %, requests, late requests, iterations started and dropped.
    fn second(t: usize, cpu_pct: f64, requests: u32, late: u32, dropped: u32) -> IntervalStats {
        IntervalStats {
            start_us: t as u64 * 1_000_000,
            duration_us: 1_000_000,
            cpu_user_us: (cpu_pct * 10_000.0) as u32,
            requests,
            late_requests: late,
            lag_p99_us: if late * 100 > requests { 2_000 } else { 50 },
            lag_max_us: if late > 0 { 3_000 } else { 80 },
            iterations_started: requests,
            iterations_dropped: dropped,
            run_delay_us: Some(0),
            steal_us: Some(0),
            ..Default::default()
        }
    }

    fn assess_seconds(seconds: &[IntervalStats]) -> Health {
        let r: Vec<(u32, IntervalStats)> = seconds.iter().map(|s| (0, *s)).collect();
        assess(&r, &series(seconds.len()))
    }

    /// Each row: per-second (CPU %, requests, late, dropped), and the verdict it earns.
    #[test]
    fn verdict_table() {
        type Second = (f64, u32, u32, u32);
        #[rustfmt::skip]
        let rows: &[(&[Second], Verdict)] = &[
            // A healthy run.
            (&[(40.0, 1000, 0, 0), (45.0, 1000, 0, 0)], Verdict::Ok),
            // One lagging second out of four: suspect.
            (&[(40.0, 1000, 0, 0), (40.0, 1000, 30, 0), (40.0, 1000, 0, 0), (40.0, 1000, 0, 0)], Verdict::Suspect),
            // One start-up outlier at demo rates (the per-second P99 is its maximum): not lagging.
            (&[(2.0, 245, 1, 0), (2.0, 245, 0, 0)], Verdict::Ok),
            // Exactly 1 % late is not more than 1 %.
            (&[(40.0, 1000, 10, 0), (40.0, 1000, 0, 0)], Verdict::Ok),
            // Lagging half of the time: invalid.
            (&[(40.0, 1000, 0, 0), (40.0, 1000, 300, 0)], Verdict::Invalid),
            // A few drops (0.05 %): suspect; more than 1 %: invalid.
            (&[(40.0, 1000, 0, 1), (40.0, 1000, 0, 0)], Verdict::Suspect),
            (&[(40.0, 1000, 0, 30), (40.0, 1000, 0, 0)], Verdict::Invalid),
            // A saturated core: suspect, however good the lag.
            (&[(95.0, 1000, 0, 0), (40.0, 1000, 0, 0)], Verdict::Suspect),
        ];
        for (i, (seconds, want)) in rows.iter().enumerate() {
            let records: Vec<IntervalStats> = seconds
                .iter()
                .enumerate()
                .map(|(t, s)| second(t, s.0, s.1, s.2, s.3))
                .collect();
            let h = assess_seconds(&records);
            assert_eq!(h.verdict, *want, "row {i}: {:?}", h.reasons);
            assert_eq!(h.reasons.is_empty(), *want == Verdict::Ok, "row {i}");
        }
    }

    /// The demo on a quiet machine: one late request in its first second is noted with the count it
    /// rests on, not judged.
    #[test]
    fn a_single_late_request_is_a_note_not_a_verdict() {
        let h = assess_seconds(&[second(0, 2.0, 86, 1, 0), second(1, 2.0, 245, 0, 0)]);
        assert_eq!(h.verdict, Verdict::Ok, "{:?}", h.reasons);
        assert_eq!((h.late_requests, h.late_unjudged), (1, 1));
        assert!(h.notes[0].starts_with("1 request(s) started over 1 ms late"));
    }

    /// Each lagging second is named by its evidence; the reasons say what to do and how many
    /// requests they rest on.
    #[test]
    fn reasons_name_causes_with_evidence_and_advice() {
        let mut preempted = second(8, 2.0, 266, 11, 0);
        preempted.run_delay_us = Some(82_400);
        preempted.involuntary_switches = 41;
        preempted.steal_us = Some(60_000);
        let mut busy = second(3, 97.0, 900, 40, 0);
        busy.run_delay_us = Some(30_000);
        let mut startup = second(0, 5.0, 86, 12, 0);
        startup.start_late_us = 6_800;
        let mut woke_late = second(5, 2.0, 250, 6, 0);
        woke_late.wake_late_max_us = 3_100;
        woke_late.run_delay_us = Some(100);
        let mut seconds: Vec<IntervalStats> = (0..10).map(|t| second(t, 2.0, 250, 0, 0)).collect();
        for s in [preempted, busy, startup, woke_late] {
            seconds[(s.start_us / 1_000_000) as usize] = s;
        }
        let h = assess_seconds(&seconds);
        assert_eq!(h.verdict, Verdict::Suspect);
        assert_eq!(h.lagging_seconds, 4);
        let cause_of = |second: u32| h.lagging.iter().find(|e| e.second == second).unwrap().cause;
        assert_eq!(cause_of(1), Cause::Startup);
        assert_eq!(cause_of(4), Cause::Capacity);
        assert_eq!(cause_of(6), Cause::LateWakeup);
        assert_eq!(cause_of(9), Cause::Preempted);
        let text = h.reasons.join("\n");
        assert!(
            text.contains("in 4 of 10 seconds (69 of 1,502 requests in those seconds"),
            "{text}"
        );
        assert!(
            text.contains(
                "preempted in second 9 (11 of 266 requests late): another process or tenant took the CPU from the \
                 engine: core 0 waited 82.4 ms for a CPU while runnable, was preempted 41 times, steal 6 %. \
                 Do: give the engine CPUs of its own"
            ),
            "{text}"
        );
        assert!(text.contains("capacity in second 4"), "{text}");
        assert!(text.contains("core 0 at 97 % CPU"), "{text}");
        assert!(text.contains("start-up in second 1"), "{text}");
        assert!(
            text.contains("core 0 was ready 6.8 ms after time zero"),
            "{text}"
        );
        assert!(text.contains("late wake-up in second 6"), "{text}");
        assert!(text.contains("--skip"), "{text}");
    }

    /// The short interval a core closes at the end of a run is neither a second nor a saturated one.
    #[test]
    fn the_partial_end_is_not_judged() {
        let mut end = second(2, 0.0, 6, 6, 0);
        end.duration_us = 10_000;
        end.cpu_user_us = 10_300;
        let records = [
            second(0, 40.0, 1000, 0, 0),
            second(1, 40.0, 1000, 0, 0),
            end,
        ];
        let r: Vec<(u32, IntervalStats)> = records.iter().map(|s| (0, *s)).collect();
        let h = assess(&r, &series(2));
        assert_eq!(h.verdict, Verdict::Ok, "{:?}", h.reasons);
        assert_eq!(h.seconds, 2);
        assert!((h.cpu_max_pct - 40.0).abs() < 0.1);
        assert_eq!(h.iterations_started, 2006, "its iterations still count");
    }

    #[test]
    fn v1_0_records_are_judged_by_their_p99_and_say_preemption_is_unknown() {
        let v10 = |t, p99| IntervalStats {
            lag_p99_us: p99,
            run_delay_us: None,
            steal_us: None,
            ..second(t, 2.0, 1000, 0, 0)
        };
        let h = assess_seconds(&[v10(0, 50), v10(1, 2_500), v10(2, 50), v10(3, 50)]);
        assert_eq!(h.verdict, Verdict::Suspect, "{:?}", h.reasons);
        assert_eq!(h.lagging[0].cause, Cause::Unexplained);
        assert!(h.notes.iter().any(|n| n.contains("cannot be told apart")));
    }

    #[test]
    fn no_records_is_unknown() {
        let h = assess(&[], &TimeSeries::default());
        assert_eq!(h.verdict, Verdict::Unknown);
        assert_eq!(h.reasons.len(), 1);
    }

    #[test]
    fn lists_of_seconds_stay_short() {
        assert_eq!(seconds_list(&[3]), "second 3");
        assert_eq!(seconds_list(&[1, 5, 9]), "seconds 1, 5 and 9");
        assert_eq!(
            seconds_list(&(1..=8).collect::<Vec<_>>()),
            "seconds 1, 2, 3, 4, 5, 6 … (8 seconds)"
        );
    }
}
