//! The live console and the final summary, driven by the coordinator thread from per-second core
//! reports. Live lines go to stderr (redrawn in place on a terminal, one plain line per second
//! otherwise) so that stdout carries only the summary and, last, the run directory.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::core::{CoreDone, SecondReport};

/// Schedule lag at P99 above this means the generator, not the target, set the pace: the console
/// warns and the summary says how often it happened.
pub(crate) const LAG_P99_LIMIT_US: u64 = 1000;

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
}

/// What the live lines saw of the generator's health, for the summary.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Health {
    /// Seconds shown.
    pub seconds: u32,
    /// Seconds whose schedule lag P99 (all cores together) passed [`LAG_P99_LIMIT_US`].
    pub lagging_seconds: u32,
    /// The worst per-second lag P99, µs.
    pub worst_lag_p99_us: u64,
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
    drawn: bool,
    health: Health,
}

impl Console {
    pub fn new(cores: u32, planned: Duration, quiet: bool) -> Console {
        Console {
            cores,
            planned,
            tty: std::io::stderr().is_terminal(),
            quiet,
            seconds: BTreeMap::new(),
            failures_total: 0,
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
        });
        entry.reported += 1;
        entry.active_users += r.active_users;
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
        // The trailing partial interval after the planned end is usually empty; it would overwrite
        // the last real second on a terminal.
        let after_end = Duration::from_secs(sec) > self.planned;
        if after_end && s.requests == 0 {
            return;
        }
        let lag_p99 = s
            .lag
            .as_ref()
            .filter(|h| !h.is_empty())
            .map_or(0, |h| h.value_at_quantile(0.99));
        let lagging = lag_p99 > LAG_P99_LIMIT_US;
        self.health.seconds += 1;
        self.health.lagging_seconds += u32::from(lagging);
        self.health.worst_lag_p99_us = self.health.worst_lag_p99_us.max(lag_p99);
        if self.quiet {
            return;
        }
        let (p50, p99) = s.latency.as_ref().map_or((0, 0), |h| {
            (h.value_at_quantile(0.5), h.value_at_quantile(0.99))
        });
        // The last report of a run closes a partial interval after the planned end.
        let label = if after_end {
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
        if s.dropped > 0 {
            let _ = write!(line, "  dropped {}", s.dropped);
        }
        if lagging {
            line.push_str(
                "  WARNING lag p99 > 1ms: the generator is the bottleneck: results are suspect",
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

/// The console's verdict on the generator: facts and what they mean; the analyzer makes the
/// formal SUSPECT / INVALID call from the interval stats.
pub(crate) fn health_verdict(health: &Health, started: u64, dropped: u64) -> String {
    let mut out = String::new();
    if health.lagging_seconds > 0 {
        let _ = writeln!(
            out,
            "WARNING: schedule lag p99 passed 1ms in {} of {} seconds (worst {}): the generator is the bottleneck: results are suspect",
            health.lagging_seconds,
            health.seconds,
            micros(health.worst_lag_p99_us)
        );
    }
    if dropped > 0 {
        let share = dropped as f64 * 100.0 / (started + dropped).max(1) as f64;
        let _ = writeln!(
            out,
            "WARNING: {dropped} iterations ({share:.2}%) were dropped because no user was free: raise max_users (or queue) or lower the rate; results are suspect"
        );
    }
    if out.is_empty() {
        out.push_str(
            "generator health: ok (lag p99 under 1ms every second, no dropped iterations)\n",
        );
    }
    out
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
