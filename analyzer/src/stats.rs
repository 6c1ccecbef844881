//! Summaries per run and per request name: counts, throughput, and latency statistics computed with
//! polars' lazy API.
//!
//! **Percentiles are exact, by the nearest-rank method**: P(q) of n latencies is the value at rank
//! ⌈q·n⌉ of the sorted latencies (rank 1 for q = 0), so every percentile is a latency that some request
//! really had (polars calls this method `Equiprobable`). polars computes the counts and moments; the
//! percentiles come from [`crate::select`], which finds them all in two passes (see there for why).
//!
//! **A percentile needs samples above it.** P(q) is marked unsupported when fewer than
//! [`MIN_TAIL_SAMPLES`] samples lie above it, i.e. n·(1−q) < 10: P99.9 needs 10,000 samples, P99
//! needs 1,000. Reports still print it, marked, because it is the best available figure.

use polars::prelude::*;

use crate::approx::{LatencyAgg, NameAgg};
use crate::error::Result;
use crate::load::LoadedRun;
use crate::select::{Chunk, Percentiles, percentiles, ppm};

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
    let exprs = vec![
        c().min()
            .cast(DataType::Float64)
            .alias(format!("{prefix}min")),
        c().mean().alias(format!("{prefix}mean")),
        c().std(1).alias(format!("{prefix}std")),
        c().max()
            .cast(DataType::Float64)
            .alias(format!("{prefix}max")),
    ];
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

    fn latency(&self, prefix: &str, count: u64, percentiles: [f64; 6]) -> Result<Latency> {
        Ok(Latency {
            count,
            min: self.get(&format!("{prefix}min"))?,
            mean: self.get(&format!("{prefix}mean"))?,
            stddev: self.get(&format!("{prefix}std"))?,
            percentiles,
            max: self.get(&format!("{prefix}max"))?,
        })
    }

    fn summary(
        &self,
        name: String,
        window_s: f64,
        bytes: (u64, u64),
        percentiles: ([f64; 6], [f64; 6]),
    ) -> Result<Summary> {
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
            latency: self.latency("c_", requests, percentiles.0)?,
            latency_uncorrected: self.latency("u_", requests, percentiles.1)?,
        })
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
    debug_assert!(
        aligned,
        "the loader builds both columns from the same per-core vectors"
    );
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

/// Exact percentiles of a latency column per request name and in total ([`crate::select`]).
fn name_percentiles(frame: &DataFrame, column: &str, n_names: usize) -> Result<Percentiles> {
    let chunks = chunk_slices(frame, "name", column)?;
    let ppms: Vec<u32> = PERCENTILES.iter().map(|p| ppm(p.2)).collect();
    Ok(percentiles(&chunks, 0, n_names, &ppms))
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
    let n_names = run.names.len();
    let corrected = name_percentiles(&run.samples, "latency_us", n_names)?;
    let uncorrected = name_percentiles(&run.samples, "latency_uncorrected_us", n_names)?;
    let row = row_of;
    let total = run.samples.clone().lazy().select(all_exprs()).collect()?;
    let total = Row { df: &total, row: 0 }.summary(
        "All requests".into(),
        window,
        total_bytes,
        (row(&corrected.total), row(&uncorrected.total)),
    )?;
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
        let percentiles = match (corrected.groups.get(id), uncorrected.groups.get(id)) {
            (Some(c), Some(u)) => (row_of(c), row_of(u)),
            _ => ([0.0; 6], [0.0; 6]),
        };
        endpoints.push(Row { df: &per_name, row }.summary(name, window, bytes, percentiles)?);
    }
    endpoints.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((total, endpoints))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two-pass selection agrees with polars' own nearest-rank (`Equiprobable`) quantiles.
    #[test]
    fn selection_agrees_with_polars_equiprobable_quantiles() {
        let mut x = 99u64;
        let mut next = move || {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 33) as u32
        };
        let n = 50_000;
        let names: Vec<u32> = (0..n).map(|_| next() % 4).collect();
        let latency: Vec<u32> = (0..n).map(|_| (next() % 3000).pow(2) / 7 + next() % 50).collect();
        let mut names_col = Series::from_vec("name".into(), names[..20_000].to_vec());
        names_col.append_owned(Series::from_vec("name".into(), names[20_000..].to_vec())).unwrap();
        let mut latency_col = Series::from_vec("latency_us".into(), latency[..20_000].to_vec());
        latency_col.append_owned(Series::from_vec("latency_us".into(), latency[20_000..].to_vec())).unwrap();
        let df = DataFrame::new_infer_height(vec![names_col.into_column(), latency_col.into_column()]).unwrap();
        let mine = name_percentiles(&df, "latency_us", 4).unwrap();
        let exprs: Vec<Expr> = PERCENTILES
            .iter()
            .map(|p| col("latency_us").quantile(lit(p.2), QuantileMethod::Equiprobable).alias(p.1))
            .collect();
        let theirs = df.clone().lazy().group_by([col("name")]).agg(exprs.clone()).collect().unwrap();
        let ids: Vec<u32> = theirs.column("name").unwrap().u32().unwrap().iter().map(Option::unwrap).collect();
        for (row, id) in ids.iter().enumerate() {
            for (i, p) in PERCENTILES.iter().enumerate() {
                let v = theirs.column(p.1).unwrap().f64().unwrap().get(row).unwrap();
                assert_eq!(mine.groups[*id as usize][i].map(f64::from), Some(v), "name {id} {}", p.0);
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
