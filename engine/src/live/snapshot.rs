//! What the live view shows: an immutable [`Snapshot`] of the run, made by the coordinator once a
//! second and read by the HTTP threads, which turn it into the dashboard's JSON or Prometheus text.

use std::sync::Arc;

use formats::Outcome;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use super::tally::OUTCOMES;

/// Facts about the run that do not change while it goes.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RunInfo {
    pub profile: String,
    pub run_id: String,
    pub environment: Option<String>,
    pub target: String,
    /// The load model in a few words, as the console's first line says it.
    pub load: String,
    /// Whether the load model is open (arrival rate) rather than closed (users).
    pub open_model: bool,
    pub planned_s: f64,
    pub cores: u32,
    pub io: String,
    pub started_at: String,
    pub dir: String,
    pub engine_version: String,
    /// This shard's index and the shard count, in a sharded run.
    pub shard: Option<(u32, u32)>,
    /// Whether the dashboard offers Stop.
    pub can_stop: bool,
}

/// Where the run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Phase {
    Running,
    /// Stop was asked for (Ctrl-C, SIGTERM or the dashboard); the cores are finishing.
    Stopping,
    Completed,
    Interrupted,
    Failed,
}

impl Phase {
    pub fn ended(self) -> bool {
        matches!(self, Phase::Completed | Phase::Interrupted | Phase::Failed)
    }
}

/// Latency percentiles, µs (0 with no requests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub(crate) struct Percentiles {
    pub p50: u64,
    pub p90: u64,
    pub p95: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

impl Percentiles {
    pub fn of(h: &hdrhistogram::Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p95: h.value_at_quantile(0.95),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: h.mean(),
        }
    }
}

/// Requests by outcome code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Kinds(pub [u64; OUTCOMES]);

impl Default for Kinds {
    fn default() -> Kinds {
        Kinds([0; OUTCOMES])
    }
}

impl Kinds {
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    pub fn failures(&self) -> u64 {
        self.total() - self.0[usize::from(Outcome::Ok.code())]
    }

    pub fn add(&mut self, other: &Kinds) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }

    /// `self − earlier`, counter by counter (never below zero).
    pub fn since(&self, earlier: &Kinds) -> Kinds {
        let mut out = *self;
        for (a, b) in out.0.iter_mut().zip(earlier.0) {
            *a = a.saturating_sub(b);
        }
        out
    }
}

/// Failures only, as `{"timeout": 3, ...}` (kinds with none are left out).
impl Serialize for Kinds {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let failed = Outcome::ALL
            .iter()
            .zip(self.0)
            .filter(|(o, n)| **o != Outcome::Ok && *n > 0);
        let mut map = s.serialize_map(None)?;
        for (o, n) in failed {
            map.serialize_entry(o.as_str(), &n)?;
        }
        map.end()
    }
}

/// One request name since the start (or every name together).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct NameRow {
    pub name: String,
    pub requests: u64,
    pub failures: u64,
    /// Failures by kind.
    pub kinds: Kinds,
    /// Corrected latency (from the intended start).
    pub latency: Percentiles,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Cumulative counts of the Prometheus buckets ([`super::metrics::BUCKETS_US`]).
    #[serde(skip)]
    pub buckets: Vec<u64>,
    /// The sum of the latencies, seconds (from the histogram's buckets).
    #[serde(skip)]
    pub sum_s: f64,
}

/// Whole-run figures.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Totals {
    /// Uncorrected latency (from the actual start), all requests.
    pub uncorrected: Percentiles,
    /// Schedule lag (actual minus intended start), all requests.
    pub lag: Percentiles,
    pub iterations_started: u64,
    pub iterations_dropped: u64,
    pub cpu_user_s: f64,
    pub cpu_system_s: f64,
    pub connections_opened: u64,
}

/// The last complete second (or, after merging, seconds) of the run.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Point {
    /// The second the point ends at, counted from the start of the run.
    pub t: u64,
    /// How many seconds it covers (1 until old points are merged), and their measured length.
    pub seconds: u32,
    pub duration_s: f64,
    pub requests: u64,
    pub failures: u64,
    /// Failures by kind.
    pub kinds: Kinds,
    /// Corrected latency percentiles over the point, µs.
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
    /// Uncorrected latency percentiles, µs.
    pub u50: u64,
    pub u99: u64,
    pub users: u32,
    /// What the load model asked for at the end of the point: users (closed) or iterations per
    /// second (open).
    pub target: f64,
    pub lag_p99: u64,
    pub lag_max: u64,
    /// The busiest core's CPU use, percent of one CPU.
    pub cpu_max: f64,
    /// The cores' mean CPU use, percent of one CPU.
    pub cpu_mean: f64,
    pub dropped: u64,
    pub connections: u32,
}

impl Point {
    /// Requests per second over the point.
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.duration_s.max(1e-3)
    }

    /// Folds the later point `next` into this one. Counts add up; percentiles, lag and CPU keep the
    /// worse of the two, so merging never hides a bad second; gauges take the later value.
    pub fn absorb(&mut self, next: &Point) {
        let total = (self.duration_s + next.duration_s).max(1e-9);
        self.cpu_mean = (self.cpu_mean * self.duration_s + next.cpu_mean * next.duration_s) / total;
        self.t = next.t;
        self.seconds += next.seconds;
        self.duration_s += next.duration_s;
        self.requests += next.requests;
        self.failures += next.failures;
        self.kinds.add(&next.kinds);
        self.p50 = self.p50.max(next.p50);
        self.p90 = self.p90.max(next.p90);
        self.p99 = self.p99.max(next.p99);
        self.max = self.max.max(next.max);
        self.u50 = self.u50.max(next.u50);
        self.u99 = self.u99.max(next.u99);
        self.lag_p99 = self.lag_p99.max(next.lag_p99);
        self.lag_max = self.lag_max.max(next.lag_max);
        self.cpu_max = self.cpu_max.max(next.cpu_max);
        self.dropped += next.dropped;
        self.users = next.users;
        self.target = next.target;
        self.connections = next.connections;
    }
}

/// The run's seconds so far, bounded: past [`Series::CAPACITY`] points, neighbours are merged
/// pairwise (so a day-long soak keeps at most that many points, each a few minutes long).
#[derive(Debug, Clone, Default)]
pub(crate) struct Series {
    pub points: Vec<Point>,
    /// Bumped each time points are merged, so a page that asked for "points after the n-th" knows its
    /// copy no longer lines up.
    pub generation: u32,
}

impl Series {
    pub const CAPACITY: usize = 1800;

    pub fn push(&mut self, p: Point) {
        if self.points.len() >= Self::CAPACITY {
            let merged = self
                .points
                .chunks(2)
                .map(|pair| {
                    let mut a = pair[0].clone();
                    if let Some(b) = pair.get(1) {
                        a.absorb(b);
                    }
                    a
                })
                .collect();
            self.points = merged;
            self.generation += 1;
        }
        self.points.push(p);
    }
}

/// Gauges of the last complete second, for the cards and Prometheus.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Now {
    pub users: u32,
    pub target: f64,
    pub rate: f64,
    pub lag_p50: u64,
    pub lag_p99: u64,
    pub lag_max: u64,
    pub cpu_max: f64,
    pub connections: u32,
}

/// Everything the live view shows at one moment.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Snapshot {
    #[serde(serialize_with = "shared")]
    pub run: Arc<RunInfo>,
    pub phase: Phase,
    /// Why the run failed, when it did.
    pub error: Option<String>,
    /// Seconds since the start when this snapshot was made.
    pub elapsed_s: f64,
    /// Seconds every core has reported.
    pub seconds: u64,
    pub now: Now,
    pub totals: Totals,
    /// Every request name together.
    pub all: NameRow,
    pub names: Vec<NameRow>,
    #[serde(skip)]
    pub series: Arc<Series>,
}

fn shared<S: Serializer, T: Serialize>(v: &Arc<T>, s: S) -> Result<S::Ok, S::Error> {
    T::serialize(v, s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(t: u64, requests: u64, p99: u64) -> Point {
        Point {
            t,
            seconds: 1,
            duration_s: 1.0,
            requests,
            p99,
            cpu_mean: 50.0,
            ..Point::default()
        }
    }

    #[test]
    fn a_full_series_merges_pairs_keeping_counts_and_worst_percentiles() {
        let mut s = Series::default();
        for t in 1..=Series::CAPACITY as u64 {
            s.push(point(t, 10, t));
        }
        assert_eq!((s.points.len(), s.generation), (Series::CAPACITY, 0));
        s.push(point(1801, 10, 1));
        assert_eq!(s.generation, 1);
        assert_eq!(s.points.len(), Series::CAPACITY / 2 + 1);
        let first = &s.points[0];
        assert_eq!(
            (first.t, first.seconds, first.requests, first.p99),
            (2, 2, 20, 2)
        );
        assert!((first.rate() - 10.0).abs() < 1e-9);
        assert!((first.cpu_mean - 50.0).abs() < 1e-9);
        let total: u64 = s.points.iter().map(|p| p.requests).sum();
        assert_eq!(total, 18_010);
    }

    #[test]
    fn kinds_serialise_failures_only() {
        let mut k = Kinds::default();
        k.0[0] = 5;
        k.0[Outcome::Timeout.code() as usize] = 2;
        assert_eq!(serde_json::to_string(&k).unwrap(), r#"{"timeout":2}"#);
        assert_eq!((k.total(), k.failures()), (7, 2));
    }
}
