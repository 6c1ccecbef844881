//! Per-second series: requests, failures and latency percentiles from the samples (by intended start
//! second), and the generator's health (users, schedule lag, CPU, dropped iterations) from the
//! interval blocks every core writes once a second.
//!
//! The series cover whole seconds. The interval a core closes when the run ends (the grace period
//! after the planned end, a few milliseconds, or the fraction of a second before an interrupt) is not
//! a second: a 10 ms interval would show a CPU of 103 % and a throughput of zero, and a run of 5 s
//! would have 6 seconds. It is left out of every series, chart and per-second judgement (as the
//! engine's console leaves it out), and samples meant to start after the last whole second are left
//! out of the series with it; the tables count everything.

use polars::prelude::*;

use crate::approx::Aggregates;
use crate::error::Result;
use crate::load::LoadedRun;
use crate::select::{percentiles, ppm};
use crate::stats::{chunk_slices, failures_by};

/// Equal-length per-second series. Seconds with no samples have 0 requests and no latency (`None`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimeSeries {
    /// Seconds since the run's time zero.
    pub t_s: Vec<u32>,
    /// Requests whose intended start fell in the second.
    pub requests: Vec<u64>,
    /// Failed requests among them.
    pub failures: Vec<u64>,
    /// Corrected latency P50, ms.
    pub p50_ms: Vec<Option<f64>>,
    /// Corrected latency P95, ms.
    pub p95_ms: Vec<Option<f64>>,
    /// Corrected latency P99, ms.
    pub p99_ms: Vec<Option<f64>>,
    /// Virtual users that ran during the second (the most alive at once on each core), summed over
    /// cores.
    pub users: Vec<Option<u64>>,
    /// The worst core's P99 schedule lag, ms.
    pub lag_p99_ms: Vec<Option<f64>>,
    /// The worst core's largest schedule lag, ms.
    pub lag_max_ms: Vec<Option<f64>>,
    /// Mean CPU use of the engine's threads, % of one core.
    pub cpu_mean_pct: Vec<Option<f64>>,
    /// The busiest engine thread's CPU use, % of one core.
    pub cpu_max_pct: Vec<Option<f64>>,
    /// Iterations the schedule called for but no free user could start, summed over cores.
    pub dropped: Vec<Option<u64>>,
    /// Set when data reached past [`MAX_SECONDS`] after the first second: the series stop there.
    pub cut_at_s: Option<u32>,
    /// What the series leave out at the end of the run, when any core's last interval was partial.
    pub partial_end: Option<PartialEnd>,
}

/// The partial interval at the end of a run, which the series leave out.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PartialEnd {
    /// The longest partial interval over the cores, s.
    pub duration_s: f64,
    /// Requests the engine completed in it.
    pub requests: u64,
    /// Samples meant to start after the last whole second, left out of the series (the tables
    /// include them).
    pub samples_left_out: u64,
}

/// Whether the per-second view uses `s`: whole intervals only, unless the run has none (a run shorter
/// than a second), when its partial intervals are all there is.
pub fn per_second_filter(
    intervals: &[(u32, formats::IntervalStats)],
) -> impl Fn(&formats::IntervalStats) -> bool {
    let any_whole = intervals.iter().any(|(_, s)| formats::health::is_whole(s));
    move |s| !any_whole || formats::health::is_whole(s)
}

/// The longest span the series cover (one week). A start time far beyond it can only be a clock
/// fault, and would otherwise make the series arbitrarily long.
pub const MAX_SECONDS: u32 = 7 * 24 * 3600;

impl TimeSeries {
    /// How many seconds the series cover.
    pub fn len(&self) -> usize {
        self.t_s.len()
    }

    /// Whether the series are empty.
    pub fn is_empty(&self) -> bool {
        self.t_s.is_empty()
    }

    /// Whether any interval counters were found.
    pub fn has_health(&self) -> bool {
        self.users.iter().any(Option::is_some)
    }
}

fn to_f64(df: &DataFrame, name: &str) -> Result<Vec<Option<f64>>> {
    let c = df.column(name)?.cast(&DataType::Float64)?;
    Ok(c.f64()?.iter().collect())
}

/// Computes the per-second series of a run, from `first_s` (the end of the warm-up) on.
pub fn timeseries(run: &LoadedRun, first_s: u32) -> Result<TimeSeries> {
    let (seconds, requests, failures, p50, p95, p99) = match &run.approx {
        Some(approx) => approx_seconds(approx, &failures_by(run, "t_s")?),
        None => exact_seconds(run)?,
    };
    let health = health(run)?;
    // The latest second any sample starts in, to tell when the series had to be cut.
    let data_last = match &run.approx {
        Some(approx) => approx.seconds.len().checked_sub(1).map(|t| t as u32),
        None => chunk_slices(&run.samples, "t_s", "latency_us")?
            .iter()
            .filter_map(|c| c.groups.iter().max())
            .max()
            .copied(),
    };
    let last = seconds
        .iter()
        .copied()
        .chain(health.iter().map(|h| h.0))
        .max();
    let Some(mut last) = last else {
        return Ok(TimeSeries::default());
    };
    // With interval records, the series end with the last whole second.
    let partial_end = partial_end(run);
    let mut samples_left_out = 0;
    if let Some(last_whole) = health.iter().map(|h| h.0).max()
        && last_whole < last
    {
        samples_left_out = seconds
            .iter()
            .zip(&requests)
            .filter(|(t, _)| **t > last_whole)
            .map(|(_, n)| n.unwrap_or(0.0) as u64)
            .sum();
        last = last_whole;
    }
    let first = first_s.min(last);
    let mut cut_at_s = None;
    if last - first >= MAX_SECONDS
        || data_last.is_some_and(|d| d.saturating_sub(first) >= MAX_SECONDS)
    {
        last = last.min(first + MAX_SECONDS - 1);
        cut_at_s = Some(first + MAX_SECONDS - 1);
    }
    let n = (last - first + 1) as usize;
    let mut ts = TimeSeries {
        t_s: (first..=last).collect(),
        requests: vec![0; n],
        failures: vec![0; n],
        p50_ms: vec![None; n],
        p95_ms: vec![None; n],
        p99_ms: vec![None; n],
        users: vec![None; n],
        lag_p99_ms: vec![None; n],
        lag_max_ms: vec![None; n],
        cpu_mean_pct: vec![None; n],
        cpu_max_pct: vec![None; n],
        dropped: vec![None; n],
        cut_at_s,
        partial_end: partial_end.map(|mut p| {
            p.samples_left_out = samples_left_out;
            p
        }),
    };
    let ms = |v: Option<f64>| v.map(|us| us / 1000.0);
    for (row, &t) in seconds.iter().enumerate() {
        let Some(i) = t.checked_sub(first).map(|i| i as usize).filter(|i| *i < n) else {
            continue;
        };
        ts.requests[i] = requests[row].unwrap_or(0.0) as u64;
        ts.failures[i] = failures[row].unwrap_or(0.0) as u64;
        ts.p50_ms[i] = ms(p50[row]);
        ts.p95_ms[i] = ms(p95[row]);
        ts.p99_ms[i] = ms(p99[row]);
    }
    for (t, h) in health {
        let Some(i) = t.checked_sub(first).map(|i| i as usize).filter(|i| *i < n) else {
            continue;
        };
        ts.users[i] = Some(h.users);
        ts.lag_p99_ms[i] = Some(h.lag_p99_us / 1000.0);
        ts.lag_max_ms[i] = Some(h.lag_max_us / 1000.0);
        ts.cpu_mean_pct[i] = Some(h.cpu_mean_pct);
        ts.cpu_max_pct[i] = Some(h.cpu_max_pct);
        ts.dropped[i] = Some(h.dropped);
    }
    Ok(ts)
}

type PerSecond = (
    Vec<u32>,
    Vec<Option<f64>>,
    Vec<Option<f64>>,
    Vec<Option<f64>>,
    Vec<Option<f64>>,
    Vec<Option<f64>>,
);

/// Seconds handled per pass of the percentile selection, bounding its count tables (about 50 MB).
const SECONDS_PER_PASS: usize = 7200;

/// Per-second counts and exact percentiles with [`crate::select`]; failures per second from the
/// failures frame, with polars.
fn exact_seconds(run: &LoadedRun) -> Result<PerSecond> {
    let chunks = chunk_slices(&run.samples, "t_s", "latency_us")?;
    let (Some(first), Some(last)) = (
        chunks
            .iter()
            .filter_map(|c| c.groups.iter().min())
            .min()
            .copied(),
        chunks
            .iter()
            .filter_map(|c| c.groups.iter().max())
            .max()
            .copied(),
    ) else {
        return Ok(Default::default());
    };
    let last = last.min(first.saturating_add(MAX_SECONDS - 1));
    // Which seconds have samples, so that the selection runs only over stretches that do.
    let span = (last - first) as usize + 1;
    let mut present = vec![false; span];
    for c in &chunks {
        for &t in c.groups {
            if let Some(slot) = t
                .checked_sub(first)
                .and_then(|i| present.get_mut(i as usize))
            {
                *slot = true;
            }
        }
    }
    let ppms = [ppm(0.5), ppm(0.95), ppm(0.99)];
    let (mut groups, mut counts) = (Vec::new(), Vec::new());
    let mut from = first;
    loop {
        let n = SECONDS_PER_PASS.min((last - from) as usize + 1);
        let offset = (from - first) as usize;
        if present[offset..offset + n].iter().any(|p| *p) {
            let p = percentiles(&chunks, from, n, &ppms, false);
            groups.extend(p.groups);
            counts.extend(p.counts);
        } else {
            groups.extend(std::iter::repeat_n(vec![None; ppms.len()], n));
            counts.extend(std::iter::repeat_n(0, n));
        }
        match from.checked_add(n as u32) {
            Some(next) if next <= last => from = next,
            _ => break,
        }
    }
    let failures = failures_by(run, "t_s")?;
    let mut out: PerSecond = Default::default();
    for (i, (p, n)) in groups.iter().zip(counts).enumerate() {
        if n == 0 {
            continue;
        }
        let t = first + i as u32;
        out.0.push(t);
        out.1.push(Some(n as f64));
        out.2
            .push(Some(failures.get(&t).copied().unwrap_or(0) as f64));
        out.3.push(p[0].map(f64::from));
        out.4.push(p[1].map(f64::from));
        out.5.push(p[2].map(f64::from));
    }
    Ok(out)
}

/// Per-second counts and percentiles from the per-second histograms of a large run.
fn approx_seconds(
    approx: &Aggregates,
    failures: &std::collections::HashMap<u32, u64>,
) -> PerSecond {
    let mut out: PerSecond = Default::default();
    for (t, s) in approx.seconds.iter().enumerate() {
        let Some(s) = s else { continue };
        out.0.push(t as u32);
        out.1.push(Some(s.corrected.moments.count as f64));
        out.2
            .push(Some(failures.get(&(t as u32)).copied().unwrap_or(0) as f64));
        out.3.push(Some(s.corrected.percentile(0.5)));
        out.4.push(Some(s.corrected.percentile(0.95)));
        out.5.push(Some(s.corrected.percentile(0.99)));
    }
    out
}

/// One second of generator health, over all cores.
#[derive(Debug, Clone, Copy, Default)]
struct Health {
    users: u64,
    dropped: u64,
    lag_p99_us: f64,
    lag_max_us: f64,
    cpu_mean_pct: f64,
    cpu_max_pct: f64,
}

/// The partial intervals the series leave out, over every core.
fn partial_end(run: &LoadedRun) -> Option<PartialEnd> {
    let used = per_second_filter(&run.intervals);
    let left_out: Vec<_> = run.intervals.iter().filter(|(_, s)| !used(s)).collect();
    if left_out.is_empty() {
        return None;
    }
    Some(PartialEnd {
        duration_s: left_out
            .iter()
            .map(|(_, s)| f64::from(s.duration_us) / 1e6)
            .fold(0.0, f64::max),
        requests: left_out.iter().map(|(_, s)| u64::from(s.requests)).sum(),
        samples_left_out: 0,
    })
}

/// Aggregates the interval records of every core by second (whole seconds only).
fn health(run: &LoadedRun) -> Result<Vec<(u32, Health)>> {
    let used = per_second_filter(&run.intervals);
    let r: Vec<&(u32, formats::IntervalStats)> =
        run.intervals.iter().filter(|(_, s)| used(s)).collect();
    if r.is_empty() {
        return Ok(Vec::new());
    }
    let col_u32 = |name: &str, f: &dyn Fn(&formats::IntervalStats) -> u32| {
        Column::new(
            name.into(),
            r.iter().map(|(_, s)| f(s)).collect::<Vec<u32>>(),
        )
    };
    let cpu: Vec<f64> = r.iter().map(|(_, s)| formats::health::cpu_pct(s)).collect();
    let df = DataFrame::new_infer_height(vec![
        col_u32("t_s", &|s| {
            u32::try_from(s.start_us / 1_000_000).unwrap_or(u32::MAX)
        }),
        // v1.0 records have no users_max: their end-of-second count is the best there is.
        col_u32("users", &|s| s.users_max.max(s.active_users)),
        col_u32("dropped", &|s| s.iterations_dropped),
        col_u32("lag_p99", &|s| s.lag_p99_us),
        col_u32("lag_max", &|s| s.lag_max_us),
        Column::new("cpu".into(), cpu),
    ])?;
    let agg = df
        .lazy()
        .group_by([col("t_s")])
        .agg([
            col("users").cast(DataType::UInt64).sum().alias("users"),
            col("dropped").cast(DataType::UInt64).sum().alias("dropped"),
            col("lag_p99").max().alias("lag_p99"),
            col("lag_max").max().alias("lag_max"),
            col("cpu").mean().alias("cpu_mean"),
            col("cpu").max().alias("cpu_max"),
        ])
        .sort(["t_s"], SortMultipleOptions::default())
        .collect()?;
    let t: Vec<u32> = agg
        .column("t_s")?
        .u32()?
        .iter()
        .map(|v| v.unwrap_or(0))
        .collect();
    let get = |name| to_f64(&agg, name);
    let (users, dropped, lag_p99, lag_max, cpu_mean, cpu_max) = (
        get("users")?,
        get("dropped")?,
        get("lag_p99")?,
        get("lag_max")?,
        get("cpu_mean")?,
        get("cpu_max")?,
    );
    Ok(t.into_iter()
        .enumerate()
        .map(|(i, t)| {
            let v = |c: &[Option<f64>]| c[i].unwrap_or(0.0);
            (
                t,
                Health {
                    users: v(&users) as u64,
                    dropped: v(&dropped) as u64,
                    lag_p99_us: v(&lag_p99),
                    lag_max_us: v(&lag_max),
                    cpu_mean_pct: v(&cpu_mean),
                    cpu_max_pct: v(&cpu_max),
                },
            )
        })
        .collect())
}
