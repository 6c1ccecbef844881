//! What `analyzer compare` judges: the metrics, and the `--max-regression` limits.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::significance::Metric;

/// A metric `compare` can judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKey {
    /// Median corrected latency.
    P50,
    /// 75th percentile.
    P75,
    /// 90th percentile.
    P90,
    /// 95th percentile.
    P95,
    /// 99th percentile.
    P99,
    /// 99.9th percentile.
    P999,
    /// Failures per request.
    ErrorRate,
    /// Requests per second.
    Throughput,
}

impl MetricKey {
    /// Every key, in display order.
    pub const ALL: [MetricKey; 8] = [
        MetricKey::P50,
        MetricKey::P75,
        MetricKey::P90,
        MetricKey::P95,
        MetricKey::P99,
        MetricKey::P999,
        MetricKey::ErrorRate,
        MetricKey::Throughput,
    ];

    /// The name used in `--max-regression` and in JSON.
    pub fn key(self) -> &'static str {
        match self {
            MetricKey::P50 => "p50",
            MetricKey::P75 => "p75",
            MetricKey::P90 => "p90",
            MetricKey::P95 => "p95",
            MetricKey::P99 => "p99",
            MetricKey::P999 => "p999",
            MetricKey::ErrorRate => "error_rate",
            MetricKey::Throughput => "throughput",
        }
    }

    /// The heading used in tables.
    pub fn label(self) -> &'static str {
        match self {
            MetricKey::P50 => "P50",
            MetricKey::P75 => "P75",
            MetricKey::P90 => "P90",
            MetricKey::P95 => "P95",
            MetricKey::P99 => "P99",
            MetricKey::P999 => "P99.9",
            MetricKey::ErrorRate => "error rate",
            MetricKey::Throughput => "throughput",
        }
    }

    fn parse(s: &str) -> Option<MetricKey> {
        let s = s.trim().to_ascii_lowercase();
        let s = match s.as_str() {
            "p99.9" => "p999",
            "rps" | "requests_per_second" => "throughput",
            "errors" | "error-rate" | "failure_rate" => "error_rate",
            other => other,
        };
        MetricKey::ALL.into_iter().find(|k| k.key() == s)
    }

    /// What significance compares.
    pub fn metric(self) -> Metric {
        match self {
            MetricKey::P50 => Metric::Latency(0.50),
            MetricKey::P75 => Metric::Latency(0.75),
            MetricKey::P90 => Metric::Latency(0.90),
            MetricKey::P95 => Metric::Latency(0.95),
            MetricKey::P99 => Metric::Latency(0.99),
            MetricKey::P999 => Metric::Latency(0.999),
            MetricKey::ErrorRate => Metric::ErrorRate,
            MetricKey::Throughput => Metric::Throughput,
        }
    }

    /// Whether the change is a difference of rates (percentage points) rather than a ratio.
    pub fn is_error_rate(self) -> bool {
        self == MetricKey::ErrorRate
    }

    /// The tolerance used for the verdict when no limit is given: 10 % for latency and throughput,
    /// 0.5 percentage points for the error rate.
    pub fn default_tolerance(self) -> f64 {
        if self == MetricKey::ErrorRate {
            0.005
        } else {
            0.10
        }
    }
}

/// Which metrics to compare, and the limits whose breach (beyond noise) fails the comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// (metric, limit) in display order; `None` means shown with its default tolerance but never fails.
    pub metrics: Vec<(MetricKey, Option<f64>)>,
}

impl Default for Limits {
    /// P50, P90, P99, error rate and throughput; P99 may not regress by more than 10 % and the error
    /// rate by more than 0.5 percentage points.
    fn default() -> Self {
        Limits {
            metrics: vec![
                (MetricKey::P50, None),
                (MetricKey::P90, None),
                (MetricKey::P99, Some(0.10)),
                (MetricKey::ErrorRate, Some(0.005)),
                (MetricKey::Throughput, None),
            ],
        }
    }
}

impl Limits {
    /// Parses `--max-regression`, e.g. `p99=10%,error_rate=0.5pp,throughput=5%`. The metrics named
    /// become the only limits; P50, P90, P99, error rate and throughput are shown regardless.
    pub fn parse(text: &str) -> Result<Limits> {
        let mut limits: BTreeMap<MetricKey, f64> = BTreeMap::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let bad = |why: &str| {
                Error::Usage(format!(
                    "--max-regression: `{part}`: {why}; write e.g. `p99=10%,error_rate=0.5pp` (metrics: {})",
                    MetricKey::ALL.map(MetricKey::key).join(", ")
                ))
            };
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| bad("expected metric=limit"))?;
            let key = MetricKey::parse(key).ok_or_else(|| bad("unknown metric"))?;
            let value = value.trim();
            let limit = if key == MetricKey::ErrorRate {
                let number = value
                    .strip_suffix("pp")
                    .or_else(|| value.strip_suffix('%'))
                    .ok_or_else(|| {
                        bad("give the error rate's limit in percentage points, e.g. 0.5pp")
                    })?;
                parse_number(number).ok_or_else(|| bad("not a number"))? / 100.0
            } else {
                let number = value
                    .strip_suffix('%')
                    .ok_or_else(|| bad("give the limit in percent, e.g. 10%"))?;
                parse_number(number).ok_or_else(|| bad("not a number"))? / 100.0
            };
            if !(limit >= 0.0 && limit.is_finite()) {
                return Err(bad("a limit is a non-negative number"));
            }
            limits.insert(key, limit);
        }
        if limits.is_empty() {
            return Err(Error::Usage(
                "--max-regression: no limit given; write e.g. `p99=10%`".into(),
            ));
        }
        let mut shown: Vec<MetricKey> = vec![
            MetricKey::P50,
            MetricKey::P90,
            MetricKey::P99,
            MetricKey::ErrorRate,
            MetricKey::Throughput,
        ];
        shown.extend(limits.keys().copied());
        shown.sort();
        shown.dedup();
        Ok(Limits {
            metrics: shown
                .into_iter()
                .map(|k| (k, limits.get(&k).copied()))
                .collect(),
        })
    }
}

fn parse_number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}
