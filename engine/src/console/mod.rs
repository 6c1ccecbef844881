//! The live console and the final summary, driven by the coordinator thread from per-second core
//! reports. Live lines go to stderr (redrawn in place on a terminal, one plain line per second
//! otherwise) so that stdout carries only the summary and, last, the run directory.
//!
//! This file draws the live lines and keeps the failure reasons; `health` judges each whole second
//! by the shared rule and writes the verdict on the generator, `summary` the table at the end, and
//! `text` the shortened reasons and human-readable numbers they all print.

mod health;
mod summary;
#[cfg(test)]
mod tests;
mod text;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use formats::IntervalStats;
use formats::health as rule;
use hdrhistogram::Histogram;

use crate::core::SecondReport;

pub(crate) use health::Health;
pub(crate) use summary::summary;
use text::{clip, micros};
pub(crate) use text::{short_reason, thousands};

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
