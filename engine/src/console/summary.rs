//! The summary printed at the end of a run: one row per request name from the cores' merged
//! histograms, schedule lag, iterations, and the verdicts on the generator.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::Health;
use super::health::health_verdict;
use super::text::{micros, truncate};
use crate::core::CoreDone;

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
