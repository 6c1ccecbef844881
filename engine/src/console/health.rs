//! The generator's health as the live lines saw it: each whole second judged by the rule the analyzer
//! applies (`formats::health`), tallied for the summary, and the verdict with causes and advice.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use formats::health::{self as rule, Cause};

use super::text::micros;
use super::{Console, Second};

/// What the live lines saw of the generator's health, for the summary. Whole seconds only: the
/// partial interval at the end of a run is shown but not judged, as in the analyzer's report.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Health {
    /// Whole seconds shown.
    pub seconds: u32,
    /// Seconds that lagged by `formats::health::lagging`.
    pub lagging_seconds: u32,
    /// The worst per-second lag P99 (all cores together), µs.
    pub worst_lag_p99_us: u64,
    /// Requests completed in those seconds, and how many of them started late.
    pub requests: u64,
    pub late: u64,
    /// Requests completed in the seconds that lagged (the analyzer's report gives the same figure).
    pub lagging_requests: u64,
    /// Late requests in seconds that did not lag: too few to judge.
    pub late_unjudged: u64,
    /// Lagging seconds by cause: (second numbers, evidence of the one with most late requests, its
    /// late requests).
    pub causes: BTreeMap<Cause, (Vec<u64>, String, u64)>,
    /// Whole seconds in which an engine core used at least `CPU_LIMIT_PCT` of its CPU, and the peak.
    pub saturated_seconds: u32,
    pub cpu_max_pct: f64,
}

impl Console {
    /// Counts a whole second towards the summary's verdict.
    pub(super) fn tally(
        &mut self,
        sec: u64,
        s: &Second,
        judged: &rule::SecondJudgement,
        lag_p99: u64,
    ) {
        let h = &mut self.health;
        h.seconds += 1;
        h.worst_lag_p99_us = h.worst_lag_p99_us.max(lag_p99);
        h.requests += judged.requests;
        h.late += judged.late;
        if judged.lagging {
            h.lagging_seconds += 1;
            h.lagging_requests += judged.requests;
            if let Some((cause, _, evidence)) = &judged.cause {
                let entry = h
                    .causes
                    .entry(*cause)
                    .or_insert_with(|| (Vec::new(), String::new(), 0));
                entry.0.push(sec);
                if judged.late > entry.2 {
                    entry.1.clone_from(evidence);
                    entry.2 = judged.late;
                }
            }
        } else {
            h.late_unjudged += judged.late;
        }
        let cpu = s
            .records
            .iter()
            .map(|(_, r)| rule::cpu_pct(r))
            .fold(0.0, f64::max);
        h.cpu_max_pct = h.cpu_max_pct.max(cpu);
        h.saturated_seconds += u32::from(cpu >= rule::CPU_LIMIT_PCT);
    }
}

/// The console's verdict on the generator: facts, their likely cause and what to do; the analyzer
/// makes the formal SUSPECT / INVALID call from the same interval records by the same rule
/// (`formats::health`).
pub(crate) fn health_verdict(health: &Health, started: u64, dropped: u64) -> String {
    let mut out = String::new();
    let dropped_pct = dropped as f64 * 100.0 / (started + dropped).max(1) as f64;
    // The same word as the report's verdict: invalid past the rule's limits, suspect below them.
    let invalid = rule::is_invalid(health.lagging_seconds, health.seconds, dropped_pct);
    let results_are = if invalid {
        "results are invalid (the generator, not the profile, set the load)"
    } else {
        "results are suspect"
    };
    if health.lagging_seconds > 0 {
        let _ = writeln!(
            out,
            "WARNING: more than 1% of requests (and at least {}) started over 1ms late in {} of {} seconds ({} of {} requests in those seconds, worst lag p99 {}); {results_are}:",
            rule::MIN_LATE_REQUESTS,
            health.lagging_seconds,
            health.seconds,
            health.late - health.late_unjudged,
            health.lagging_requests,
            micros(health.worst_lag_p99_us)
        );
        for (cause, (seconds, evidence, _)) in &health.causes {
            let _ = writeln!(
                out,
                "  {} in {}: {}; {evidence}; do: {}",
                cause.name(),
                seconds_list(seconds),
                cause.meaning(),
                cause.advice()
            );
        }
    }
    if health.late_unjudged > 0 {
        let _ = writeln!(
            out,
            "note: {} request(s) started over 1ms late in seconds with too few to count as lagging (a second needs at least {} and more than 1% of its requests)",
            health.late_unjudged,
            rule::MIN_LATE_REQUESTS
        );
    }
    if health.saturated_seconds > 0 {
        let _ = writeln!(
            out,
            "WARNING: an engine core used {:.0}% of its CPU (at least {:.0}% in {} of {} seconds): the generator's own capacity may have limited throughput; do: {}",
            health.cpu_max_pct,
            rule::CPU_LIMIT_PCT,
            health.saturated_seconds,
            health.seconds,
            Cause::Capacity.advice()
        );
    }
    if dropped > 0 {
        let _ = writeln!(
            out,
            "WARNING: {dropped} iterations ({dropped_pct:.2}%) were dropped because no user was free: raise max_users (`--users` on the command line) or queue, or lower the rate; {results_are}"
        );
    }
    // The verdict word the report and `analyzer check` will use, said here too, so that a refusal
    // by `check` later is no surprise.
    if invalid {
        let _ = writeln!(
            out,
            "generator health: INVALID (the warnings above say why and what to do): `analyzer check` and `analyzer compare` refuse to judge this run (`check --allow-invalid` judges it anyway)"
        );
    } else if health.lagging_seconds > 0 || health.saturated_seconds > 0 || dropped > 0 {
        let _ = writeln!(
            out,
            "generator health: SUSPECT (the warnings above say why and what to do)"
        );
    } else {
        let _ = writeln!(
            out,
            "generator health: ok ({} seconds, {} requests: no second with more than 1% of its requests over 1ms late, no core at {:.0}% CPU, no dropped iterations)",
            health.seconds,
            health.requests,
            rule::CPU_LIMIT_PCT
        );
    }
    out
}

/// `3s`, `1s, 5s and 9s`, `1s, 2s, 3s … (12 seconds)`.
pub(super) fn seconds_list(seconds: &[u64]) -> String {
    const SHOWN: usize = 6;
    let names: Vec<String> = seconds
        .iter()
        .take(SHOWN)
        .map(|s| format!("{s}s"))
        .collect();
    match seconds.len() {
        0 => String::new(),
        1 => names[0].clone(),
        n if n <= SHOWN => format!("{} and {}", names[..n - 1].join(", "), names[n - 1]),
        n => format!("{} … ({n} seconds)", names.join(", ")),
    }
}
