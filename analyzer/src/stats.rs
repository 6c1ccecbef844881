//! Summaries per run and per request name: counts, throughput, and latency statistics computed with
//! polars' lazy API.
//!
//! **Percentiles are exact, by the nearest-rank method**: P(q) of n latencies is the value at rank
//! ⌈q·n⌉ of the sorted latencies (rank 1 for q = 0), so every percentile is a latency that some request
//! really had (polars calls this method `Equiprobable`). They come from [`crate::select`], which finds
//! them, and the exact counts and moments, in two passes over the compact columns; failures per name
//! come from the failures frame through polars. (At 100M samples polars' group-by aggregations over
//! the sample frame took most of the time budget: see docs/performance.md.)
//!
//! **A percentile needs samples above it.** P(q) is marked unsupported when fewer than
//! [`MIN_TAIL_SAMPLES`] samples lie above it, i.e. n·(1−q) < 10: P99.9 needs 10,000 samples, P99
//! needs 1,000. Reports still print it, marked, because it is the best available figure.

use polars::prelude::*;

use crate::approx::{LatencyAgg, Moments, NameAgg};
use crate::error::Result;
use crate::load::LoadedRun;
use crate::select::{BUCKETS, Chunk, Percentiles, bucket_bounds, percentiles, ppm};

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
        failure_pct(self.failures, self.requests)
    }
}

/// `failures` as a percentage of `requests` (0 when there were none).
pub fn failure_pct(failures: u64, requests: u64) -> f64 {
    if requests == 0 {
        0.0
    } else {
        100.0 * failures as f64 / requests as f64
    }
}

/// Summaries of a run, and its latency distributions for the percentile plot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summaries {
    /// All requests.
    pub total: Summary,
    /// One per request name, sorted by name.
    pub endpoints: Vec<Summary>,
    /// Corrected latency as (quantile, ms) points.
    pub distribution: Vec<(f64, f64)>,
    /// Uncorrected latency, likewise.
    pub distribution_uncorrected: Vec<(f64, f64)>,
}

fn latency_of(m: &Moments, percentiles: [f64; 6]) -> Latency {
    Latency {
        count: m.count,
        min: if m.count == 0 { 0.0 } else { f64::from(m.min) },
        mean: m.mean(),
        stddev: m.stddev(),
        percentiles,
        max: f64::from(m.max),
    }
}

fn approx_summary(
    name: String,
    agg: &NameAgg,
    failures: u64,
    window: f64,
    bytes: (u64, u64),
) -> Summary {
    let requests = agg.count();
    let p = |l: &LatencyAgg| latency_of(&l.moments, PERCENTILES.map(|p| l.percentile(p.2)));
    Summary {
        name,
        requests,
        failures,
        rps: if window > 0.0 {
            requests as f64 / window
        } else {
            0.0
        },
        bytes_sent: bytes.0,
        bytes_received: bytes.1,
        latency: p(&agg.corrected),
        latency_uncorrected: p(&agg.uncorrected),
    }
}

fn row_of(p: &[Option<u32>]) -> [f64; 6] {
    std::array::from_fn(|i| p[i].map_or(0.0, f64::from))
}

/// The chunks of two u32 columns of `frame`, as slices with matching boundaries.
pub(crate) fn chunk_slices<'a>(
    frame: &'a DataFrame,
    groups: &str,
    values: &str,
) -> Result<Vec<Chunk<'a>>> {
    let g = frame.column(groups)?.as_materialized_series().u32()?;
    let v = frame.column(values)?.as_materialized_series().u32()?;
    let gs: Vec<&[u32]> = g.downcast_iter().map(|a| a.values().as_slice()).collect();
    let vs: Vec<&[u32]> = v.downcast_iter().map(|a| a.values().as_slice()).collect();
    let aligned = gs.len() == vs.len() && gs.iter().zip(&vs).all(|(a, b)| a.len() == b.len());
    if !aligned {
        return Err(
            PolarsError::ComputeError("sample columns are not chunked alike".into()).into(),
        );
    }
    Ok(gs
        .into_iter()
        .zip(vs)
        .map(|(groups, values)| Chunk { groups, values })
        .collect())
}

/// Exact percentiles and moments of a latency column per request name and in total.
fn name_percentiles(frame: &DataFrame, column: &str, n_names: usize) -> Result<Percentiles> {
    let chunks = chunk_slices(frame, "name", column)?;
    let ppms: Vec<u32> = PERCENTILES.iter().map(|p| ppm(p.2)).collect();
    Ok(percentiles(&chunks, 0, n_names, &ppms, true))
}

/// Failed requests per value of `key` (a u32 column of the failures frame), by polars.
pub(crate) fn failures_by(
    run: &LoadedRun,
    key: &str,
) -> Result<std::collections::HashMap<u32, u64>> {
    let counts = run
        .failures
        .clone()
        .lazy()
        .group_by([col(key)])
        .agg([len().alias("n")])
        .collect()?;
    let keys = counts.column(key)?.u32()?.clone();
    let n = counts.column("n")?.cast(&DataType::UInt64)?;
    Ok(keys
        .iter()
        .zip(n.u64()?.iter())
        .map(|(k, n)| (k.unwrap_or(0), n.unwrap_or(0)))
        .collect())
}

/// Points for an HdrHistogram-style percentile plot from the selection's bucket counts: quantiles
/// 1 − 10^(−k/20) as far as the count reaches, then the maximum; each value is the middle of its
/// bucket (within 0.8%), clamped to the exact min and max.
fn bucket_distribution(buckets: &[u64], m: &Moments) -> Vec<(f64, f64)> {
    let n: u64 = buckets.iter().sum();
    if n == 0 || buckets.len() != BUCKETS {
        return Vec::new();
    }
    let value_at = |q: f64| {
        let r = crate::select::rank(n, ppm(q).min(1_000_000));
        let mut before = 0;
        for (b, &c) in buckets.iter().enumerate() {
            if before + c >= r {
                let (lo, hi) = bucket_bounds(b);
                let mid = u64::from(lo) + (u64::from(hi) - u64::from(lo)) / 2;
                return mid.clamp(u64::from(m.min), u64::from(m.max)) as f64 / 1000.0;
            }
            before += c;
        }
        f64::from(m.max) / 1000.0
    };
    let mut points = Vec::new();
    let top = 1.0 - 1.0 / n as f64;
    for k in 0..=120 {
        let q = 1.0 - 10f64.powf(-f64::from(k) / 20.0);
        if q > top {
            break;
        }
        points.push((q, value_at(q)));
    }
    points.push((
        top.max(points.last().map_or(0.0, |p| p.0)),
        f64::from(m.max) / 1000.0,
    ));
    points
}

/// The run's totals and one summary per request name, names sorted alphabetically.
pub fn summaries(run: &LoadedRun) -> Result<Summaries> {
    let window = window_s(run);
    let total_bytes = run
        .bytes
        .iter()
        .fold((0, 0), |acc, b| (acc.0 + b.0, acc.1 + b.1));
    let name_of = |id: usize| {
        run.names
            .get(id)
            .cloned()
            .unwrap_or_else(|| format!("#{id}"))
    };
    let bytes_of = |id: usize| run.bytes.get(id).copied().unwrap_or((0, 0));
    if let Some(approx) = &run.approx {
        let total_agg = approx.total();
        let failures = failures_by(run, "name")?;
        let total = approx_summary(
            "All requests".into(),
            &total_agg,
            run.failures.height() as u64,
            window,
            total_bytes,
        );
        let mut endpoints: Vec<Summary> = approx
            .names
            .iter()
            .enumerate()
            .filter(|(_, a)| a.count() > 0)
            .map(|(id, a)| {
                let f = failures.get(&(id as u32)).copied().unwrap_or(0);
                approx_summary(name_of(id), a, f, window, bytes_of(id))
            })
            .collect();
        endpoints.sort_by(|a, b| a.name.cmp(&b.name));
        return Ok(Summaries {
            total,
            endpoints,
            distribution: crate::analysis::distribution(&total_agg.corrected.histogram),
            distribution_uncorrected: crate::analysis::distribution(
                &total_agg.uncorrected.histogram,
            ),
        });
    }
    let n_names = run.names.len();
    let corrected = name_percentiles(&run.samples, "latency_us", n_names)?;
    let uncorrected = name_percentiles(&run.samples, "latency_uncorrected_us", n_names)?;
    let failures = failures_by(run, "name")?;
    let summary = |name: String,
                   c: &Moments,
                   cp: [f64; 6],
                   u: &Moments,
                   up: [f64; 6],
                   failures: u64,
                   bytes: (u64, u64)| {
        Summary {
            name,
            requests: c.count,
            failures,
            rps: if window > 0.0 {
                c.count as f64 / window
            } else {
                0.0
            },
            bytes_sent: bytes.0,
            bytes_received: bytes.1,
            latency: latency_of(c, cp),
            latency_uncorrected: latency_of(u, up),
        }
    };
    let total = summary(
        "All requests".into(),
        &corrected.total_moments,
        row_of(&corrected.total),
        &uncorrected.total_moments,
        row_of(&uncorrected.total),
        run.failures.height() as u64,
        total_bytes,
    );
    let mut endpoints: Vec<Summary> = (0..n_names)
        .filter(|&id| corrected.moments[id].count > 0)
        .map(|id| {
            summary(
                name_of(id),
                &corrected.moments[id],
                row_of(&corrected.groups[id]),
                &uncorrected.moments[id],
                row_of(&uncorrected.groups[id]),
                failures.get(&(id as u32)).copied().unwrap_or(0),
                bytes_of(id),
            )
        })
        .collect();
    endpoints.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Summaries {
        distribution: bucket_distribution(&corrected.total_buckets, &corrected.total_moments),
        distribution_uncorrected: bucket_distribution(
            &uncorrected.total_buckets,
            &uncorrected.total_moments,
        ),
        total,
        endpoints,
    })
}

/// The measured window in seconds.
pub fn window_s(run: &LoadedRun) -> f64 {
    run.window_us.map_or(0.0, |(a, b)| (b - a) as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two-pass selection agrees with polars' own nearest-rank (`Equiprobable`) quantiles.
    #[test]
    fn selection_agrees_with_polars_equiprobable_quantiles() {
        let mut x = 99u64;
        let mut next = move || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as u32
        };
        let n = 50_000;
        let names: Vec<u32> = (0..n).map(|_| next() % 4).collect();
        let latency: Vec<u32> = (0..n)
            .map(|_| (next() % 3000).pow(2) / 7 + next() % 50)
            .collect();
        let mut names_col = Series::from_vec("name".into(), names[..20_000].to_vec());
        names_col
            .append_owned(Series::from_vec("name".into(), names[20_000..].to_vec()))
            .unwrap();
        let mut latency_col = Series::from_vec("latency_us".into(), latency[..20_000].to_vec());
        latency_col
            .append_owned(Series::from_vec(
                "latency_us".into(),
                latency[20_000..].to_vec(),
            ))
            .unwrap();
        let df =
            DataFrame::new_infer_height(vec![names_col.into_column(), latency_col.into_column()])
                .unwrap();
        let mine = name_percentiles(&df, "latency_us", 4).unwrap();
        let exprs: Vec<Expr> = PERCENTILES
            .iter()
            .map(|p| {
                col("latency_us")
                    .quantile(lit(p.2), QuantileMethod::Equiprobable)
                    .alias(p.1)
            })
            .collect();
        let theirs = df
            .clone()
            .lazy()
            .group_by([col("name")])
            .agg(exprs.clone())
            .collect()
            .unwrap();
        let ids: Vec<u32> = theirs
            .column("name")
            .unwrap()
            .u32()
            .unwrap()
            .iter()
            .map(Option::unwrap)
            .collect();
        for (row, id) in ids.iter().enumerate() {
            for (i, p) in PERCENTILES.iter().enumerate() {
                let v = theirs.column(p.1).unwrap().f64().unwrap().get(row).unwrap();
                assert_eq!(
                    mine.groups[*id as usize][i].map(f64::from),
                    Some(v),
                    "name {id} {}",
                    p.0
                );
            }
        }
        let total = df.lazy().select(exprs).collect().unwrap();
        for (i, p) in PERCENTILES.iter().enumerate() {
            let v = total.column(p.1).unwrap().f64().unwrap().get(0).unwrap();
            assert_eq!(mine.total[i].map(f64::from), Some(v), "total {}", p.0);
        }
    }

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
