//! Summaries per run and per request name: counts, throughput, and latency statistics computed with
//! polars' lazy API.
//!
//! **Percentiles are exact, by the nearest-rank method**: P(q) of n latencies is the value at rank
//! ⌈q·n⌉ of the sorted latencies (rank 1 for q = 0), so every percentile is a latency that some request
//! really had. polars calls this method `Equiprobable`.
//!
//! **A percentile needs samples above it.** P(q) is marked unsupported when fewer than
//! [`MIN_TAIL_SAMPLES`] samples lie above it, i.e. n·(1−q) < 10: P99.9 needs 10,000 samples, P99
//! needs 1,000. Reports still print it, marked, because it is the best available figure.

use polars::prelude::*;

use crate::approx::{LatencyAgg, NameAgg};
use crate::error::Result;
use crate::load::LoadedRun;

/// The percentiles every summary carries: (label, JSON key, quantile).
pub const PERCENTILES: [(&str, &str, f64); 6] = [
    ("P50", "p50", 0.50),
    ("P75", "p75", 0.75),
    ("P90", "p90", 0.90),
    ("P95", "p95", 0.95),
    ("P99", "p99", 0.99),
    ("P99.9", "p999", 0.999),
];

/// A percentile is solid only when at least this many samples lie above it.
pub const MIN_TAIL_SAMPLES: f64 = 10.0;

/// Whether `count` samples support the percentile at quantile `q`.
pub fn supports(count: u64, q: f64) -> bool {
    count as f64 * (1.0 - q) >= MIN_TAIL_SAMPLES - 1e-9
}

/// Latency statistics of one group of samples, in µs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Latency {
    /// How many samples the figures summarize.
    pub count: u64,
    /// The smallest latency.
    pub min: f64,
    /// The arithmetic mean.
    pub mean: f64,
    /// The sample standard deviation (n − 1 in the denominator); 0 for a single sample.
    pub stddev: f64,
    /// P50, P75, P90, P95, P99, P99.9, in the order of [`PERCENTILES`].
    pub percentiles: [f64; 6],
    /// The largest latency.
    pub max: f64,
}

impl Latency {
    /// The value of the percentile with JSON key `key` (`"p99"`).
    pub fn percentile(&self, key: &str) -> Option<f64> {
        PERCENTILES
            .iter()
            .position(|p| p.1 == key)
            .map(|i| self.percentiles[i])
    }
}

/// Counts and latencies of one request name, or of the whole run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// The request name (`"All requests"` for the run's total).
    pub name: String,
    /// Requests, successful or not.
    pub requests: u64,
    /// Requests whose outcome was not `ok`.
    pub failures: u64,
    /// Requests per second over the measured window.
    pub rps: f64,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// Latency from the intended start: what a user would have waited.
    pub latency: Latency,
    /// Latency from the actual start: what the socket saw.
    pub latency_uncorrected: Latency,
}

impl Summary {
    /// Failures as a percentage of requests (0 when there were none).
    pub fn failure_pct(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            100.0 * self.failures as f64 / self.requests as f64
        }
    }
}

fn latency_exprs(column: &str, prefix: &str) -> Vec<Expr> {
    let c = || col(column);
    let mut exprs = vec![
        c().min()
            .cast(DataType::Float64)
            .alias(format!("{prefix}min")),
        c().mean().alias(format!("{prefix}mean")),
        c().std(1).alias(format!("{prefix}std")),
        c().max()
            .cast(DataType::Float64)
            .alias(format!("{prefix}max")),
    ];
    for (_, key, q) in PERCENTILES {
        exprs.push(
            c().quantile(lit(q), QuantileMethod::Equiprobable)
                .alias(format!("{prefix}{key}")),
        );
    }
    exprs
}

fn all_exprs() -> Vec<Expr> {
    let mut exprs = vec![
        len().cast(DataType::Float64).alias("requests"),
        col("ok")
            .not()
            .sum()
            .cast(DataType::Float64)
            .alias("failures"),
    ];
    exprs.extend(latency_exprs("latency_us", "c_"));
    exprs.extend(latency_exprs("latency_uncorrected_us", "u_"));
    exprs
}

/// Reads row `row` of a frame whose columns were all cast to f64 (nulls read as 0).
struct Row<'a> {
    df: &'a DataFrame,
    row: usize,
}

impl Row<'_> {
    fn get(&self, name: &str) -> Result<f64> {
        let column = self.df.column(name)?.cast(&DataType::Float64)?;
        Ok(column
            .f64()?
            .get(self.row)
            .filter(|v| v.is_finite())
            .unwrap_or(0.0))
    }

    fn latency(&self, prefix: &str, count: u64) -> Result<Latency> {
        let mut percentiles = [0.0; 6];
        for (slot, (_, key, _)) in percentiles.iter_mut().zip(PERCENTILES) {
            *slot = self.get(&format!("{prefix}{key}"))?;
        }
        Ok(Latency {
            count,
            min: self.get(&format!("{prefix}min"))?,
            mean: self.get(&format!("{prefix}mean"))?,
            stddev: self.get(&format!("{prefix}std"))?,
            percentiles,
            max: self.get(&format!("{prefix}max"))?,
        })
    }

    fn summary(&self, name: String, window_s: f64, bytes: (u64, u64)) -> Result<Summary> {
        let requests = self.get("requests")? as u64;
        Ok(Summary {
            name,
            requests,
            failures: self.get("failures")? as u64,
            rps: if window_s > 0.0 {
                requests as f64 / window_s
            } else {
                0.0
            },
            bytes_sent: bytes.0,
            bytes_received: bytes.1,
            latency: self.latency("c_", requests)?,
            latency_uncorrected: self.latency("u_", requests)?,
        })
    }
}

/// The measured window in seconds.
pub fn window_s(run: &LoadedRun) -> f64 {
    run.window_us.map_or(0.0, |(a, b)| (b - a) as f64 / 1e6)
}

fn approx_latency(l: &LatencyAgg) -> Latency {
    let m = &l.moments;
    Latency {
        count: m.count,
        min: if m.count == 0 { 0.0 } else { f64::from(m.min) },
        mean: m.mean(),
        stddev: m.stddev(),
        percentiles: PERCENTILES.map(|p| l.percentile(p.2)),
        max: f64::from(m.max),
    }
}

fn approx_summary(name: String, agg: &NameAgg, window: f64, bytes: (u64, u64)) -> Summary {
    let requests = agg.count();
    Summary {
        name,
        requests,
        failures: agg.failures,
        rps: if window > 0.0 {
            requests as f64 / window
        } else {
            0.0
        },
        bytes_sent: bytes.0,
        bytes_received: bytes.1,
        latency: approx_latency(&agg.corrected),
        latency_uncorrected: approx_latency(&agg.uncorrected),
    }
}

/// The run's totals and one summary per request name, names sorted alphabetically.
pub fn summaries(run: &LoadedRun) -> Result<(Summary, Vec<Summary>)> {
    let window = window_s(run);
    if let Some(approx) = &run.approx {
        let total_bytes = run
            .bytes
            .iter()
            .fold((0, 0), |acc, b| (acc.0 + b.0, acc.1 + b.1));
        let total = approx_summary("All requests".into(), &approx.total(), window, total_bytes);
        let mut endpoints: Vec<Summary> = approx
            .names
            .iter()
            .enumerate()
            .filter(|(_, a)| a.count() > 0)
            .map(|(id, a)| {
                let name = run
                    .names
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| format!("#{id}"));
                approx_summary(
                    name,
                    a,
                    window,
                    run.bytes.get(id).copied().unwrap_or((0, 0)),
                )
            })
            .collect();
        endpoints.sort_by(|a, b| a.name.cmp(&b.name));
        return Ok((total, endpoints));
    }
    let total_bytes = run
        .bytes
        .iter()
        .fold((0, 0), |acc, b| (acc.0 + b.0, acc.1 + b.1));
    let total = run.samples.clone().lazy().select(all_exprs()).collect()?;
    let total = Row { df: &total, row: 0 }.summary("All requests".into(), window, total_bytes)?;
    let per_name = run
        .samples
        .clone()
        .lazy()
        .group_by([col("name")])
        .agg(all_exprs())
        .collect()?;
    let ids = per_name.column("name")?.u32()?.clone();
    let mut endpoints = Vec::with_capacity(per_name.height());
    for (row, id) in ids.iter().enumerate() {
        let id = id.unwrap_or(0) as usize;
        let name = run
            .names
            .get(id)
            .cloned()
            .unwrap_or_else(|| format!("#{id}"));
        let bytes = run.bytes.get(id).copied().unwrap_or((0, 0));
        endpoints.push(Row { df: &per_name, row }.summary(name, window, bytes)?);
    }
    endpoints.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((total, endpoints))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn support_needs_ten_samples_above_the_percentile() {
        assert!(!supports(200, 0.999));
        assert!(supports(10_000, 0.999));
        assert!(!supports(9_999, 0.999));
        assert!(supports(1_000, 0.99));
        assert!(supports(20, 0.5));
        assert!(!supports(19, 0.5));
    }
}
