//! Timing phases per request name: where each request's time went.
//!
//! Every sample records, from its actual start, the connect time (TCP connect plus TLS handshake)
//! when it opened a connection, the TLS handshake's part of it (format v1.1; 0 in older logs), the
//! time to the first response byte and the time to the last. From them each request splits into:
//!
//! | phase     | over which requests                         | value                                  |
//! |-----------|---------------------------------------------|----------------------------------------|
//! | connect   | those that opened a connection              | `connect − tls` (the TCP connect)      |
//! | TLS       | those that did a TLS handshake              | `tls`                                  |
//! | waiting   | those that got a first byte                 | `ttfb − connect` (connect 0 if reused) |
//! | receiving | those that got a first byte                 | `latency − ttfb` (the body download)   |
//!
//! so that for a request with a response, connect + TLS + waiting + receiving is its uncorrected
//! latency. DNS is not a phase: the engine resolves each target once before the run.
//!
//! **Memory.** The loader keeps one more `u32` column per sample, `ttfb_us` (bit 31 says the request
//! opened a connection), in the exact sample frame; connect, TLS and the waiting time of requests that
//! connected go to short (name, value) lists, one entry per new connection, which the loader counts
//! against the exact limit like a sample. Waiting and receiving are derived one phase at a time when
//! the report is built. Past the exact limit, per-name HdrHistograms with three significant digits
//! take their place ([`PhaseAgg`]), and the report says so.

use serde::Serialize;

use crate::approx::LatencyAgg;
use crate::error::Result;
use crate::load::LoadedRun;
use crate::select::{Chunk, Percentiles, percentiles, ppm};

/// Bit 31 of the `ttfb_us` column: the request opened a connection (its waiting time is in
/// [`PhaseColumns::waiting_opened`], since it is `ttfb − connect`).
pub const OPENED: u32 = 1 << 31;
/// The time-to-first-byte bits of the `ttfb_us` column (0: no byte arrived).
pub const TTFB_MASK: u32 = OPENED - 1;

/// The phases, in the order reports show them: (label, JSON key).
pub const PHASES: [(&str, &str); 4] = [
    ("Connect", "connect"),
    ("TLS", "tls"),
    ("Waiting", "waiting"),
    ("Receiving", "receiving"),
];

/// The percentiles reported per phase: (label, JSON key, quantile).
pub const PHASE_PERCENTILES: [(&str, &str, f64); 3] = [
    ("P50", "p50", 0.50),
    ("P90", "p90", 0.90),
    ("P99", "p99", 0.99),
];

/// What the engine does about DNS, said in every report: it resolves each host once before the run.
pub const DNS_NOTE: &str = "DNS is not a phase: the engine resolves each target host once, before \
     the run starts, so no request's time includes a lookup.";

/// Values of one phase: a request name and a value (µs) per entry.
#[derive(Debug, Clone, Default)]
pub struct Pairs {
    /// Request name index.
    pub name: Vec<u32>,
    /// Value, µs.
    pub value: Vec<u32>,
}

impl Pairs {
    fn push(&mut self, name: u32, value: u32) {
        self.name.push(name);
        self.value.push(value);
    }

    fn len(&self) -> usize {
        self.name.len()
    }

    fn chunk(&self) -> Chunk<'_> {
        Chunk {
            groups: &self.name,
            values: &self.value,
        }
    }
}

/// Per-name aggregates of the four phases, for runs too large for exact percentiles.
#[derive(Debug, Clone)]
pub struct PhaseAgg {
    /// One histogram per phase, in the order of [`PHASES`].
    pub phases: [LatencyAgg; 4],
}

impl PhaseAgg {
    fn new() -> Self {
        PhaseAgg {
            phases: std::array::from_fn(|_| LatencyAgg::new(crate::approx::NAME_DIGITS)),
        }
    }
}

/// What the loader keeps about phases besides the `ttfb_us` column: one entry per new connection.
#[derive(Debug, Clone, Default)]
pub struct PhaseColumns {
    /// TCP connect (connect − TLS) of each request that opened a connection.
    pub connect: Pairs,
    /// TLS handshake of each request that did one.
    pub tls: Pairs,
    /// Waiting (ttfb − connect) of each request that opened a connection and got a first byte.
    pub waiting_opened: Pairs,
    /// Per name (index), once the run is past the exact limit; then the lists above are empty.
    pub approx: Option<Vec<PhaseAgg>>,
}

/// One sample's phase fields, as read from the log.
#[derive(Debug, Clone, Copy)]
pub struct SamplePhases {
    /// Uncorrected latency, µs.
    pub latency: u32,
    /// Connect time including the TLS handshake, µs; 0 for a reused connection.
    pub connect: u32,
    /// TLS handshake, µs; 0 without one.
    pub tls: u32,
    /// Time to first byte from the actual start, µs; 0 when none arrived.
    pub ttfb: u32,
}

impl SamplePhases {
    /// The four phase values; `None` for a phase the request did not have.
    fn values(self) -> [Option<u32>; 4] {
        let opened = self.connect > 0;
        let responded = self.ttfb > 0;
        [
            opened.then(|| self.connect - self.tls.min(self.connect)),
            (self.tls > 0).then_some(self.tls),
            responded.then(|| self.ttfb.saturating_sub(self.connect)),
            responded.then(|| self.latency.saturating_sub(self.ttfb)),
        ]
    }
}

impl PhaseColumns {
    /// Records a sample kept exactly; returns its value for the `ttfb_us` column.
    #[inline]
    pub fn record_exact(&mut self, name: u32, s: SamplePhases) -> u32 {
        if s.connect == 0 {
            return s.ttfb.min(TTFB_MASK);
        }
        let [connect, tls, waiting, _] = s.values();
        if let Some(v) = connect {
            self.connect.push(name, v);
        }
        if let Some(v) = tls {
            self.tls.push(name, v);
        }
        if let Some(v) = waiting {
            self.waiting_opened.push(name, v);
        }
        if s.ttfb == 0 {
            0
        } else {
            s.ttfb.min(TTFB_MASK) | OPENED
        }
    }

    /// Records a sample into the aggregates (after [`PhaseColumns::switch_to_approx`]).
    #[inline]
    pub fn record_approx(&mut self, name: u32, s: SamplePhases) {
        let aggs = self.approx.get_or_insert_with(Vec::new);
        let n = name as usize;
        while aggs.len() <= n {
            aggs.push(PhaseAgg::new());
        }
        for (agg, v) in aggs[n].phases.iter_mut().zip(s.values()) {
            if let Some(v) = v {
                agg.record(v);
            }
        }
    }

    /// Moves what was kept exactly into aggregates: `name`, `latency` and `ttfb` are the core's exact
    /// columns (uncorrected latency and the `ttfb_us` column).
    pub fn switch_to_approx(&mut self, name: &[u32], latency: &[u32], ttfb: &[u32]) {
        let mut aggs: Vec<PhaseAgg> = Vec::new();
        let mut record = |n: u32, phase: usize, v: u32| {
            let n = n as usize;
            while aggs.len() <= n {
                aggs.push(PhaseAgg::new());
            }
            aggs[n].phases[phase].record(v);
        };
        for ((&n, &l), &t) in name.iter().zip(latency).zip(ttfb) {
            if t == 0 {
                continue;
            }
            if t & OPENED == 0 {
                record(n, 2, t);
            }
            record(n, 3, l.saturating_sub(t & TTFB_MASK));
        }
        for (phase, pairs) in [
            (0, &self.connect),
            (1, &self.tls),
            (2, &self.waiting_opened),
        ] {
            for (&n, &v) in pairs.name.iter().zip(&pairs.value) {
                record(n, phase, v);
            }
        }
        *self = PhaseColumns {
            approx: Some(aggs),
            ..PhaseColumns::default()
        };
    }

    /// Entries in the connection lists (each counted like one exactly kept sample).
    pub fn entries(&self) -> usize {
        self.connect.len() + self.tls.len() + self.waiting_opened.len()
    }

    /// Adds another log's phase data, mapping its name indices through `map_name`.
    pub fn merge(&mut self, other: PhaseColumns, map_name: &[u32]) {
        let map = |n: u32| map_name.get(n as usize).copied().unwrap_or(n);
        for (mine, theirs) in [
            (&mut self.connect, &other.connect),
            (&mut self.tls, &other.tls),
            (&mut self.waiting_opened, &other.waiting_opened),
        ] {
            mine.name.extend(theirs.name.iter().map(|&n| map(n)));
            mine.value.extend_from_slice(&theirs.value);
        }
        if let Some(theirs) = other.approx {
            let aggs = self.approx.get_or_insert_with(Vec::new);
            for (local, agg) in theirs.into_iter().enumerate() {
                let g = map(local as u32) as usize;
                while aggs.len() <= g {
                    aggs.push(PhaseAgg::new());
                }
                for (a, b) in aggs[g].phases.iter_mut().zip(&agg.phases) {
                    a.add(b);
                }
            }
        }
    }
}

/// One phase of one group of requests, in µs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct PhaseStat {
    /// Requests that had the phase: the sample count every figure rests on.
    pub count: u64,
    /// The mean.
    pub mean: f64,
    /// P50, P90, P99, in the order of [`PHASE_PERCENTILES`].
    pub percentiles: [f64; 3],
    /// The largest value.
    pub max: f64,
}

/// The four phases of one request name (or of all requests).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NamePhases {
    /// The request name, or "All requests".
    pub name: String,
    /// In the order of [`PHASES`].
    pub phases: [PhaseStat; 4],
}

/// The timing phases of a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Phases {
    /// Per request name, sorted by name; names without any phase are left out.
    pub endpoints: Vec<NamePhases>,
    /// All requests together.
    pub total: NamePhases,
    /// Whether the percentiles are exact (else from HdrHistograms with three significant digits).
    pub exact: bool,
    /// Whether any request recorded a TLS handshake time.
    pub any_tls: bool,
}

fn stat_of(p: &Percentiles, group: Option<usize>) -> PhaseStat {
    let (m, values) = match group {
        Some(g) => (p.moments[g], &p.groups[g]),
        None => (p.total_moments, &p.total),
    };
    if m.count == 0 {
        return PhaseStat::default();
    }
    PhaseStat {
        count: m.count,
        mean: m.mean(),
        percentiles: std::array::from_fn(|i| values[i].map_or(0.0, f64::from)),
        max: f64::from(m.max),
    }
}

fn stat_of_agg(a: &LatencyAgg) -> PhaseStat {
    if a.moments.count == 0 {
        return PhaseStat::default();
    }
    PhaseStat {
        count: a.moments.count,
        mean: a.moments.mean(),
        percentiles: std::array::from_fn(|i| a.percentile(PHASE_PERCENTILES[i].2)),
        max: f64::from(a.moments.max),
    }
}

/// Computes the phases of a loaded run: exact nearest-rank percentiles, or from the aggregates.
pub fn phases(run: &LoadedRun) -> Result<Phases> {
    let n_names = run.names.len();
    let name_of = |id: usize| {
        run.names
            .get(id)
            .cloned()
            .unwrap_or_else(|| format!("#{id}"))
    };
    let data = &run.phases;
    let mut per_name: Vec<[PhaseStat; 4]> = vec![Default::default(); n_names];
    let mut total: [PhaseStat; 4] = Default::default();
    let exact = data.approx.is_none() && run.approx.is_none();
    if let Some(aggs) = &data.approx {
        let mut all = PhaseAgg::new();
        for (id, agg) in aggs.iter().enumerate() {
            if id < n_names {
                per_name[id] = std::array::from_fn(|i| stat_of_agg(&agg.phases[i]));
            }
            for (a, b) in all.phases.iter_mut().zip(&agg.phases) {
                a.add(b);
            }
        }
        total = std::array::from_fn(|i| stat_of_agg(&all.phases[i]));
    } else {
        let ppms: Vec<u32> = PHASE_PERCENTILES.iter().map(|p| ppm(p.2)).collect();
        let mut store = |phase: usize, p: Percentiles| {
            for (id, row) in per_name.iter_mut().enumerate() {
                row[phase] = stat_of(&p, Some(id));
            }
            total[phase] = stat_of(&p, None);
        };
        store(
            0,
            percentiles(&[data.connect.chunk()], 0, n_names, &ppms, true),
        );
        store(1, percentiles(&[data.tls.chunk()], 0, n_names, &ppms, true));
        // Waiting and receiving are derived from the ttfb column one phase at a time, so only one
        // derived copy exists at once.
        let ttfb = crate::stats::chunk_slices(&run.samples, "name", "ttfb_us")?;
        let latency = crate::stats::chunk_slices(&run.samples, "name", "latency_uncorrected_us")?;
        let waiting: Vec<Pairs> = ttfb
            .iter()
            .map(|c| {
                let mut out = Pairs::default();
                for (&n, &t) in c.groups.iter().zip(c.values) {
                    if t != 0 && t & OPENED == 0 {
                        out.push(n, t);
                    }
                }
                out
            })
            .collect();
        let mut chunks: Vec<Chunk<'_>> = waiting.iter().map(Pairs::chunk).collect();
        chunks.push(data.waiting_opened.chunk());
        store(2, percentiles(&chunks, 0, n_names, &ppms, true));
        drop(chunks);
        drop(waiting);
        let receiving: Vec<Pairs> = ttfb
            .iter()
            .zip(&latency)
            .map(|(c, l)| {
                let mut out = Pairs::default();
                for ((&n, &t), &lat) in c.groups.iter().zip(c.values).zip(l.values) {
                    if t != 0 {
                        out.push(n, lat.saturating_sub(t & TTFB_MASK));
                    }
                }
                out
            })
            .collect();
        let chunks: Vec<Chunk<'_>> = receiving.iter().map(Pairs::chunk).collect();
        store(3, percentiles(&chunks, 0, n_names, &ppms, true));
    }
    let mut endpoints: Vec<NamePhases> = per_name
        .into_iter()
        .enumerate()
        .filter(|(_, row)| row.iter().any(|s| s.count > 0))
        .map(|(id, phases)| NamePhases {
            name: name_of(id),
            phases,
        })
        .collect();
    endpoints.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Phases {
        endpoints,
        any_tls: total[1].count > 0,
        total: NamePhases {
            name: "All requests".into(),
            phases: total,
        },
        exact,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(latency: u32, connect: u32, tls: u32, ttfb: u32) -> SamplePhases {
        SamplePhases {
            latency,
            connect,
            tls,
            ttfb,
        }
    }

    #[test]
    fn phases_add_up_to_the_latency() {
        for sample in [
            s(10_000, 0, 0, 9_000),
            s(10_000, 1_500, 900, 9_000),
            s(10_000, 1_500, 0, 1_600),
        ] {
            let v = sample.values();
            let sum: u32 = v.iter().flatten().sum();
            assert_eq!(sum, sample.latency, "{v:?}");
        }
        // No response: only the connection phases.
        assert_eq!(
            s(5_000, 1_000, 600, 0).values(),
            [Some(400), Some(600), None, None]
        );
        assert_eq!(s(5_000, 0, 0, 0).values(), [None; 4]);
    }

    #[test]
    fn the_ttfb_column_marks_new_connections() {
        let mut p = PhaseColumns::default();
        assert_eq!(p.record_exact(3, s(10_000, 0, 0, 9_000)), 9_000);
        assert_eq!(p.record_exact(3, s(10_000, 0, 0, 0)), 0);
        let v = p.record_exact(4, s(10_000, 1_500, 900, 9_000));
        assert_eq!(v, 9_000 | OPENED);
        assert_eq!(p.connect.value, [600]);
        assert_eq!(p.tls.value, [900]);
        assert_eq!(p.waiting_opened.value, [7_500]);
        assert_eq!(p.entries(), 3);
        // Replaying into aggregates gives the same counts.
        p.switch_to_approx(&[3, 3, 4], &[10_000, 10_000, 10_000], &[9_000, 0, v]);
        let aggs = p.approx.as_ref().unwrap();
        let counts = |n: usize| aggs[n].phases.each_ref().map(|a| a.moments.count);
        assert_eq!(counts(3), [0, 0, 1, 1]);
        assert_eq!(counts(4), [1, 1, 1, 1]);
        assert_eq!(aggs[4].phases[3].moments.max, 1_000);
        assert_eq!(p.entries(), 0);
    }
}
