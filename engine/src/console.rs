//! The live console and the final summary, driven by the coordinator thread from per-second core
//! reports. Live lines go to stderr (redrawn in place on a terminal, one plain line per second
//! otherwise) so that stdout carries only the summary and, last, the run directory.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use formats::IntervalStats;
use formats::health::{self as rule, Cause};
use hdrhistogram::Histogram;

use crate::core::{CoreDone, SecondReport};

#[derive(Debug)]
struct Second {
    reported: u32,
    active_users: u32,
    requests: u64,
    failures: u64,
    dropped: u64,
    latency: Option<Histogram<u64>>,
    lag: Option<Histogram<u64>>,
    worst_lag: (u32, u32),
    /// Each core's interval record for the second.
    records: Vec<(u32, IntervalStats)>,
}

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
    /// Late requests in seconds that did not lag: too few to judge.
    pub late_unjudged: u64,
    /// Lagging seconds by cause: (second numbers, evidence of the one with most late requests, its
    /// late requests).
    pub causes: BTreeMap<Cause, (Vec<u64>, String, u64)>,
    /// Whole seconds in which an engine core used at least `CPU_LIMIT_PCT` of its CPU, and the peak.
    pub saturated_seconds: u32,
    pub cpu_max_pct: f64,
}

/// Aggregates core reports into one line a second.
#[derive(Debug)]
pub(crate) struct Console {
    cores: u32,
    planned: Duration,
    tty: bool,
    quiet: bool,
    seconds: BTreeMap<u64, Second>,
    failures_total: u64,
    /// Failures over the run by reason (the sample's message, shortened), for the live line and the
    /// summary.
    reasons: BTreeMap<String, u64>,
    drawn: bool,
    health: Health,
}

/// How many reasons the live line names.
const LIVE_REASONS: usize = 2;
/// How many reasons the summary lists.
const SUMMARY_REASONS: usize = 10;

impl Console {
    pub fn new(cores: u32, planned: Duration, quiet: bool) -> Console {
        Console {
            cores,
            planned,
            tty: std::io::stderr().is_terminal(),
            quiet,
            seconds: BTreeMap::new(),
            failures_total: 0,
            reasons: BTreeMap::new(),
            drawn: false,
            health: Health::default(),
        }
    }

    pub fn on_second(&mut self, r: SecondReport) {
        let entry = self.seconds.entry(r.second).or_insert(Second {
            reported: 0,
            active_users: 0,
            requests: 0,
            failures: 0,
            dropped: 0,
            latency: None,
            lag: None,
            worst_lag: (0, 0),
            records: Vec::new(),
        });
        entry.reported += 1;
        // Users that ran during the second, not only those still alive at its end (users leave
        // during the last second of a run, before its interval closes).
        entry.active_users += r.stats.users_max.max(r.active_users);
        entry.records.push((r.core, r.stats));
        entry.requests += u64::from(r.requests);
        entry.failures += u64::from(r.failures);
        entry.dropped += u64::from(r.iterations_dropped);
        match &mut entry.lag {
            Some(h) => {
                let _ = h.add(&r.lag);
            }
            None => entry.lag = Some(r.lag),
        }
        if r.lag_max_us >= entry.worst_lag.0 {
            entry.worst_lag = (r.lag_max_us, r.core);
        }
        match &mut entry.latency {
            Some(h) => {
                let _ = h.add(&r.latency);
            }
            None => entry.latency = Some(r.latency),
        }
        self.failures_total += u64::from(r.failures);
        for (reason, n) in &r.failure_reasons {
            *self.reasons.entry(short_reason(reason)).or_default() += u64::from(*n);
        }
        // Print every second that all cores have reported, in order.
        while let Some((&sec, s)) = self.seconds.first_key_value() {
            if s.reported < self.cores {
                break;
            }
            let s = self.seconds.remove(&sec).expect("first key exists");
            self.draw(sec, &s);
        }
    }

    fn draw(&mut self, sec: u64, s: &Second) {
        // The partial interval a core closes at the end of a run (the grace period after the planned
        // end, or the fraction of a second before an interrupt) is not a second: it is shown when it
        // holds requests, but neither counted nor judged.
        let partial = s.records.iter().any(|(_, r)| !rule::is_whole(r));
        if partial && s.requests == 0 {
            return;
        }
        let lag_p99 = s
            .lag
            .as_ref()
            .filter(|h| !h.is_empty())
            .map_or(0, |h| h.value_at_quantile(0.99));
        let judged = rule::judge_second(s.records.iter().map(|(c, r)| (*c, r)));
        if !partial {
            self.tally(sec, s, &judged, lag_p99);
        }
        if self.quiet {
            return;
        }
        let (p50, p99) = s.latency.as_ref().map_or((0, 0), |h| {
            (h.value_at_quantile(0.5), h.value_at_quantile(0.99))
        });
        let label = if partial {
            "end".to_owned()
        } else {
            format!("{sec}s")
        };
        let mut line = format!(
            "{:>5}/{}  users {:>6}  req/s {:>8}  p50 {:>8}  p99 {:>8}  failures {:>6} (total {})  lag p99 {} worst {} (core {})",
            label,
            crate::profile::spec::HumanDuration(self.planned),
            s.active_users,
            s.requests,
            micros(p50),
            micros(p99),
            s.failures,
            self.failures_total,
            micros(lag_p99),
            micros(u64::from(s.worst_lag.0)),
            s.worst_lag.1,
        );
        if self.failures_total > 0 {
            let top: Vec<String> = self
                .top_reasons(LIVE_REASONS)
                .iter()
                .map(|(reason, n)| format!("{}: {}", clip(reason, 48), thousands(*n)))
                .collect();
            let _ = write!(line, "  [{}]", top.join("; "));
        }
        if s.dropped > 0 {
            let _ = write!(line, "  dropped {}", s.dropped);
        }
        if judged.late > 0 {
            let _ = write!(line, "  late {}", judged.late);
        }
        if judged.lagging
            && !partial
            && let Some((cause, _, evidence)) = &judged.cause
        {
            let _ = write!(
                line,
                "  WARNING {} of {} requests over 1ms late: {}: {evidence}",
                judged.late,
                judged.requests,
                cause.name()
            );
        }
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{line}");
            self.drawn = true;
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }

    /// Counts a whole second towards the summary's verdict.
    fn tally(&mut self, sec: u64, s: &Second, judged: &rule::SecondJudgement, lag_p99: u64) {
        let h = &mut self.health;
        h.seconds += 1;
        h.worst_lag_p99_us = h.worst_lag_p99_us.max(lag_p99);
        h.requests += judged.requests;
        h.late += judged.late;
        if judged.lagging {
            h.lagging_seconds += 1;
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

    /// The `n` most frequent failure reasons so far, most frequent first.
    fn top_reasons(&self, n: usize) -> Vec<(&str, u64)> {
        let mut all: Vec<(&str, u64)> =
            self.reasons.iter().map(|(r, n)| (r.as_str(), *n)).collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        all.truncate(n);
        all
    }

    /// The summary's failure reasons, most frequent first, with their share of the `requests`; and a
    /// loud line when every request failed.
    pub fn failure_summary(&self, requests: u64) -> String {
        let mut out = String::new();
        let failed: u64 = self.reasons.values().sum();
        if failed == 0 {
            return out;
        }
        let _ = writeln!(
            out,
            "failures by reason ({} of {} requests failed):",
            thousands(failed),
            thousands(requests)
        );
        for (reason, n) in self.top_reasons(SUMMARY_REASONS) {
            let _ = writeln!(
                out,
                "  {:>10}  {:>5.1}%  {reason}",
                thousands(n),
                n as f64 * 100.0 / requests.max(1) as f64
            );
        }
        if self.reasons.len() > SUMMARY_REASONS {
            let _ = writeln!(
                out,
                "  ({} other reasons; `analyzer report` lists them all)",
                self.reasons.len() - SUMMARY_REASONS
            );
        }
        if failed >= requests {
            let top = self.top_reasons(1);
            let _ = writeln!(
                out,
                "EVERY REQUEST FAILED ({}): nothing was measured of the target",
                top.first().map_or("", |(r, _)| r)
            );
        }
        out
    }

    /// Ends the in-place line so later output starts on a fresh line; returns what the lines saw of
    /// the generator's health.
    pub fn finish(&mut self) -> Health {
        if self.drawn {
            eprintln!();
            self.drawn = false;
        }
        self.health.clone()
    }
}

/// The summary table: one row per request name, from histograms merged across cores, then the
/// generator's health.
pub(crate) fn summary(done: &[CoreDone], elapsed: Duration, health: &Health) -> String {
    let mut merged: BTreeMap<&str, (Histogram<u64>, u64, u64)> = BTreeMap::new();
    for core in done {
        for (name, hist, ok, failed) in &core.names {
            let entry = merged
                .entry(name.as_str())
                .or_insert_with(|| (Histogram::new_from(hist), 0, 0));
            let _ = entry.0.add(hist);
            entry.1 += ok;
            entry.2 += failed;
        }
    }
    let secs = elapsed.as_secs_f64().max(1e-9);
    let width = merged
        .keys()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 48);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<width$}  {:>10}  {:>8}  {:>9}  {:>8}  {:>8}  {:>8}  {:>8}",
        "name", "requests", "failed", "req/s", "p50", "p90", "p99", "max"
    );
    let mut total: Option<(Histogram<u64>, u64, u64)> = None;
    let mut row = |name: &str, (h, ok, failed): &(Histogram<u64>, u64, u64)| {
        let n = ok + failed;
        let _ = writeln!(
            out,
            "{:<width$}  {:>10}  {:>8}  {:>9.1}  {:>8}  {:>8}  {:>8}  {:>8}",
            truncate(name, width),
            n,
            failed,
            n as f64 / secs,
            micros(h.value_at_quantile(0.5)),
            micros(h.value_at_quantile(0.9)),
            micros(h.value_at_quantile(0.99)),
            micros(h.max()),
        );
    };
    for (name, stats) in &merged {
        row(name, stats);
        match &mut total {
            Some(t) => {
                let _ = t.0.add(&stats.0);
                t.1 += stats.1;
                t.2 += stats.2;
            }
            None => total = Some((stats.0.clone(), stats.1, stats.2)),
        }
    }
    if merged.len() > 1
        && let Some(t) = &total
    {
        row("(all)", t);
    }
    let mut lag: Option<Histogram<u64>> = None;
    for h in done.iter().filter_map(|d| d.lag.as_ref()) {
        match &mut lag {
            Some(l) => {
                let _ = l.add(h);
            }
            None => lag = Some(h.clone()),
        }
    }
    let _ = writeln!(
        out,
        "latencies are measured from each request's intended start (corrected for coordinated omission)"
    );
    if let Some(l) = lag.filter(|l| !l.is_empty()) {
        let _ = writeln!(
            out,
            "schedule lag (actual minus intended start): p50 {}, p99 {}, max {}",
            micros(l.value_at_quantile(0.5)),
            micros(l.value_at_quantile(0.99)),
            micros(l.max())
        );
    }
    let started: u64 = done.iter().map(|d| d.iterations_started).sum();
    let dropped: u64 = done.iter().map(|d| d.iterations_dropped).sum();
    let _ = writeln!(
        out,
        "iterations: {started} started ({:.1}/s), {dropped} dropped",
        started as f64 / secs
    );
    out.push_str(&health_verdict(health, started, dropped));
    out.push_str(&local_resource_verdict(done));
    out
}

/// Failures that are the generator's own (it ran out of file descriptors or ports), which would
/// otherwise read as the target's.
fn local_resource_verdict(done: &[CoreDone]) -> String {
    let failed: u64 = done.iter().map(|d| d.local_resource.0).sum();
    if failed == 0 {
        return String::new();
    }
    let example = done
        .iter()
        .find_map(|d| d.local_resource.1.as_deref())
        .unwrap_or("a local resource ran out");
    format!(
        "WARNING: {failed} requests failed because this machine ran out of file descriptors or ports ({example}), not because of the target: raise the open-file limit (ulimit -n) or use fewer users; results are suspect\n"
    )
}

/// The console's verdict on the generator: facts, their likely cause and what to do; the analyzer
/// makes the formal SUSPECT / INVALID call from the same interval records by the same rule
/// (`formats::health`).
pub(crate) fn health_verdict(health: &Health, started: u64, dropped: u64) -> String {
    let mut out = String::new();
    let dropped_pct = dropped as f64 * 100.0 / (started + dropped).max(1) as f64;
    // The same word as the report's verdict: invalid past the rule's limits, suspect below them.
    let results_are = if rule::is_invalid(health.lagging_seconds, health.seconds, dropped_pct) {
        "results are invalid (the generator, not the profile, set the load)"
    } else {
        "results are suspect"
    };
    if health.lagging_seconds > 0 {
        let _ = writeln!(
            out,
            "WARNING: more than 1% of requests (and at least {}) started over 1ms late in {} of {} seconds ({} of {} requests, worst lag p99 {}); {results_are}:",
            rule::MIN_LATE_REQUESTS,
            health.lagging_seconds,
            health.seconds,
            health.late - health.late_unjudged,
            health.requests,
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
            "WARNING: {dropped} iterations ({dropped_pct:.2}%) were dropped because no user was free: raise max_users (or queue) or lower the rate; {results_are}"
        );
    }
    if health.lagging_seconds == 0 && health.saturated_seconds == 0 && dropped == 0 {
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
fn seconds_list(seconds: &[u64]) -> String {
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

/// A failure message as the console shows it: without the OS's error number, and `Connection
/// refused` as `connection refused` after a colon (`connect: connection refused`).
pub(crate) fn short_reason(message: &str) -> String {
    let mut text = message.trim();
    if let Some(i) = text.rfind(" (os error ")
        && text.ends_with(')')
    {
        text = &text[..i];
    }
    let mut out = String::with_capacity(text.len());
    let mut after_colon = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if after_colon
            && c.is_ascii_uppercase()
            && chars.peek().is_some_and(char::is_ascii_lowercase)
        {
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
        after_colon = c == ' ' && out.ends_with(": ");
    }
    out
}

/// `1,880`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// `text` cut to `width` characters with `…`.
fn clip(text: &str, width: usize) -> String {
    truncate(text, width)
}

fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_owned()
    } else {
        s.chars().take(width - 1).chain(['…']).collect()
    }
}

/// `850µs`, `12.3ms`, `4.20s`.
fn micros(us: u64) -> String {
    if us < 1000 {
        format!("{us}µs")
    } else if us < 1_000_000 {
        format!("{:.1}ms", us as f64 / 1e3)
    } else {
        format!("{:.2}s", us as f64 / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(core: u32, second: u64, stats: IntervalStats) -> SecondReport {
        let mut lag = Histogram::new_with_bounds(1, 3_600_000_000, 2).unwrap();
        let late = u64::from(stats.late_requests);
        for _ in 0..u64::from(stats.requests).saturating_sub(late) {
            lag.record(5).unwrap();
        }
        for _ in 0..late {
            lag.record(2_500).unwrap();
        }
        SecondReport {
            core,
            second,
            active_users: stats.active_users,
            requests: stats.requests,
            failures: 0,
            latency: lag.clone(),
            lag,
            lag_max_us: stats.lag_max_us,
            iterations_dropped: 0,
            live: None,
            stats,
            failure_reasons: Vec::new(),
        }
    }

    fn whole(requests: u32, late: u32) -> IntervalStats {
        IntervalStats {
            duration_us: 1_000_000,
            requests,
            late_requests: late,
            lag_max_us: if late > 0 { 2_500 } else { 5 },
            cpu_user_us: 20_000,
            run_delay_us: Some(0),
            active_users: 20,
            users_max: 20,
            ..IntervalStats::default()
        }
    }

    /// The demo's first second: one late request out of 245 is noted, not judged; a preempted second
    /// is judged and named; the partial interval after the end is neither counted nor judged.
    #[test]
    fn seconds_are_judged_by_the_shared_rule_and_the_partial_end_is_left_out() {
        let mut c = Console::new(1, Duration::from_secs(3), true);
        c.on_second(report(0, 1, whole(245, 1)));
        c.on_second(report(
            0,
            2,
            IntervalStats {
                run_delay_us: Some(8_000),
                involuntary_switches: 41,
                ..whole(250, 12)
            },
        ));
        c.on_second(report(0, 3, whole(250, 0)));
        // The grace period after the planned end: 10 ms, a busy shutdown and one late request.
        c.on_second(report(
            0,
            4,
            IntervalStats {
                duration_us: 10_000,
                cpu_user_us: 10_300,
                ..whole(6, 6)
            },
        ));
        let h = c.finish();
        assert_eq!((h.seconds, h.lagging_seconds), (3, 1));
        assert_eq!((h.requests, h.late, h.late_unjudged), (745, 13, 1));
        assert_eq!(
            h.saturated_seconds, 0,
            "the partial end is not a saturated second"
        );
        let (seconds, evidence, _) = &h.causes[&Cause::Preempted];
        assert_eq!(seconds, &[2]);
        assert!(evidence.contains("waited 8.0 ms for a CPU"), "{evidence}");
        let verdict = health_verdict(&h, 100, 0);
        assert!(verdict.contains("in 1 of 3 seconds"), "{verdict}");
        assert!(verdict.contains("preempted in 2s"), "{verdict}");
        assert!(verdict.contains("chrt -f 10"), "{verdict}");
        assert!(verdict.contains("note: 1 request(s)"), "{verdict}");
    }

    #[test]
    fn a_quiet_run_is_ok_and_says_what_it_rests_on() {
        let mut c = Console::new(2, Duration::from_secs(2), true);
        for sec in 1..=2 {
            c.on_second(report(0, sec, whole(120, 0)));
            c.on_second(report(1, sec, whole(125, 0)));
        }
        let h = c.finish();
        let verdict = health_verdict(&h, 400, 0);
        assert!(
            verdict.starts_with("generator health: ok (2 seconds, 490 requests"),
            "{verdict}"
        );
    }

    #[test]
    fn failure_reasons_are_named_live_and_summed_at_the_end() {
        assert_eq!(
            short_reason("connect: Connection refused (os error 111)"),
            "connect: connection refused"
        );
        assert_eq!(
            short_reason("check Status([201]) failed: expected status 201, got 409"),
            "check Status([201]) failed: expected status 201, got 409"
        );
        assert_eq!(thousands(1880), "1,880");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(12), "12");
        let mut c = Console::new(1, Duration::from_secs(2), true);
        for sec in 1..=2 {
            let mut r = report(0, sec, whole(940, 0));
            r.failures = 940;
            r.failure_reasons = vec![
                ("connect: Connection refused (os error 111)".into(), 930),
                ("unexpected status 503".into(), 10),
            ];
            c.on_second(r);
        }
        assert_eq!(
            c.top_reasons(2),
            vec![
                ("connect: connection refused", 1860),
                ("unexpected status 503", 20)
            ]
        );
        let summary = c.failure_summary(1880);
        assert!(
            summary.contains("failures by reason (1,880 of 1,880 requests failed)"),
            "{summary}"
        );
        assert!(
            summary.contains("1,860   98.9%  connect: connection refused"),
            "{summary}"
        );
        assert!(
            summary.contains("EVERY REQUEST FAILED (connect: connection refused)"),
            "{summary}"
        );
        assert!(!c.failure_summary(3000).contains("EVERY REQUEST FAILED"));
        assert_eq!(
            Console::new(1, Duration::from_secs(1), true).failure_summary(10),
            ""
        );
    }

    #[test]
    fn lists_of_seconds_stay_short() {
        assert_eq!(seconds_list(&[3]), "3s");
        assert_eq!(seconds_list(&[1, 5, 9]), "1s, 5s and 9s");
        assert_eq!(
            seconds_list(&(1..=12).collect::<Vec<_>>()),
            "1s, 2s, 3s, 4s, 5s, 6s … (12 seconds)"
        );
    }
}
