//! The coordinator's side of the live view: merges the cores' per-second reports into whole-run
//! figures and a per-second series, and makes [`Snapshot`]s of them.
//!
//! Definitions follow the console and the summary exactly: requests and failures are the samples
//! logged (a failure is any outcome but `ok`), latency is corrected (from the intended start) unless
//! it says uncorrected, and the per-name histograms are rebuilt bucket for bucket from the cores' (the
//! same histograms the summary table merges), so live percentiles equal the summary's.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use hdrhistogram::Histogram;

use super::metrics;
use super::snapshot::{
    Kinds, NameRow, Now, Percentiles, Phase, Point, RunInfo, Series, Snapshot, Totals,
};
use super::tally::{NAME_SIGFIG, histogram};
use crate::core::SecondReport;
use crate::plan::LoadPlan;
use crate::schedule::Population;
use crate::steer::Steering;

/// Merges reports; owned by the coordinator thread.
#[derive(Debug)]
pub(crate) struct Hub {
    info: Arc<RunInfo>,
    load: LoadPlan,
    stop: Arc<AtomicBool>,
    started: Instant,
    cores: Vec<CoreState>,
    names: Vec<NameAgg>,
    index: HashMap<String, usize>,
    /// Corrected latency of every request, all names (the summary's "(all)" row).
    all: Histogram<u64>,
    uncorrected: Histogram<u64>,
    lag: Histogram<u64>,
    pending: BTreeMap<u64, Pending>,
    series: Arc<Series>,
    now: Now,
    totals: Totals,
    seconds: u64,
    /// The run's steering, whose target replaces the plan's once the run was steered.
    steering: Option<Arc<Steering>>,
}

#[derive(Debug, Default)]
struct CoreState {
    /// Global name index of each of this core's name ids.
    names: Vec<usize>,
    /// The last second this core reported.
    last_second: u64,
    /// The core has finished: it reports no more seconds.
    done: bool,
    /// Its requests by outcome at its last report.
    kinds: Kinds,
}

#[derive(Debug)]
struct NameAgg {
    name: String,
    latency: Histogram<u64>,
    /// Each core's counters at its last report.
    per_core: Vec<NameCounts>,
}

#[derive(Debug, Clone, Default)]
struct NameCounts {
    kinds: Kinds,
    sent: u64,
    received: u64,
}

/// One second, while cores report it.
#[derive(Debug)]
struct Pending {
    users: u32,
    requests: u64,
    failures: u64,
    dropped: u64,
    latency: Histogram<u64>,
    uncorrected: Histogram<u64>,
    lag: Histogram<u64>,
    lag_max: u64,
    kinds: Kinds,
    cpu_max: f64,
    cpu_sum: f64,
    cpu_cores: u32,
    duration_us: u64,
    connections: u32,
}

impl Pending {
    fn new() -> Pending {
        Pending {
            users: 0,
            requests: 0,
            failures: 0,
            dropped: 0,
            latency: histogram(2),
            uncorrected: histogram(2),
            lag: histogram(2),
            lag_max: 0,
            kinds: Kinds::default(),
            cpu_max: 0.0,
            cpu_sum: 0.0,
            cpu_cores: 0,
            duration_us: 0,
            connections: 0,
        }
    }
}

impl Hub {
    pub fn new(info: Arc<RunInfo>, load: LoadPlan, stop: Arc<AtomicBool>) -> Hub {
        let cores = (0..info.cores).map(|_| CoreState::default()).collect();
        Hub {
            info,
            load,
            stop,
            started: Instant::now(),
            cores,
            names: Vec::new(),
            index: HashMap::new(),
            all: histogram(NAME_SIGFIG),
            uncorrected: histogram(2),
            lag: histogram(2),
            pending: BTreeMap::new(),
            series: Arc::new(Series::default()),
            now: Now::default(),
            totals: Totals::default(),
            seconds: 0,
            steering: None,
        }
    }

    /// Takes the target from `steering` once the run has been steered.
    pub fn steered_by(&mut self, steering: Option<Arc<Steering>>) {
        self.steering = steering;
    }

    /// Takes one core's second. Returns whether a second became complete (every core reported it).
    pub fn on_second(&mut self, r: &SecondReport) -> bool {
        let c = r.core as usize;
        if c >= self.cores.len() {
            return false;
        }
        if let Some(live) = &r.live {
            for name in &live.new_names {
                let g = self.name_index(name);
                self.cores[c].names.push(g);
            }
        }
        let p = self.pending.entry(r.second).or_insert_with(Pending::new);
        p.users += r.active_users;
        p.requests += u64::from(r.requests);
        p.failures += u64::from(r.failures);
        p.dropped += u64::from(r.iterations_dropped);
        let _ = p.latency.add(&r.latency);
        let _ = p.lag.add(&r.lag);
        p.lag_max = p.lag_max.max(u64::from(r.lag_max_us));
        let _ = self.lag.add(&r.lag);
        if let Some(live) = &r.live {
            let mut kinds = Kinds::default();
            for (local, ns) in live.names.iter().enumerate() {
                let Some(&g) = self.cores[c].names.get(local) else {
                    continue;
                };
                let agg = &mut self.names[g];
                for &(value, count) in &ns.latency {
                    agg.latency.saturating_record_n(value, count);
                    self.all.saturating_record_n(value, count);
                }
                agg.per_core[c] = NameCounts {
                    kinds: Kinds(ns.outcomes),
                    sent: ns.bytes_sent,
                    received: ns.bytes_received,
                };
                kinds.add(&Kinds(ns.outcomes));
            }
            p.kinds.add(&kinds.since(&self.cores[c].kinds));
            self.cores[c].kinds = kinds;
            let _ = p.uncorrected.add(&live.uncorrected);
            let _ = self.uncorrected.add(&live.uncorrected);
            let iv = &live.interval;
            let duration = u64::from(iv.duration_us).max(1);
            let cpu = u64::from(iv.cpu_user_us) + u64::from(iv.cpu_system_us);
            let pct = cpu as f64 * 100.0 / duration as f64;
            p.cpu_max = p.cpu_max.max(pct);
            p.cpu_sum += pct;
            p.cpu_cores += 1;
            p.duration_us = p.duration_us.max(duration);
            p.connections += iv.open_connections;
            let t = &mut self.totals;
            t.iterations_started += u64::from(iv.iterations_started);
            t.iterations_dropped += u64::from(iv.iterations_dropped);
            t.cpu_user_s += f64::from(iv.cpu_user_us) / 1e6;
            t.cpu_system_s += f64::from(iv.cpu_system_us) / 1e6;
            t.connections_opened += u64::from(iv.connections_opened);
        }
        let core = &mut self.cores[c];
        core.last_second = core.last_second.max(r.second);
        self.complete_seconds()
    }

    /// A core has finished and sends no more seconds.
    pub fn on_done(&mut self, core: u32) -> bool {
        if let Some(c) = self.cores.get_mut(core as usize) {
            c.done = true;
        }
        self.complete_seconds()
    }

    fn name_index(&mut self, name: &str) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.names.len();
        self.names.push(NameAgg {
            name: name.to_owned(),
            latency: histogram(NAME_SIGFIG),
            per_core: vec![NameCounts::default(); self.cores.len()],
        });
        self.index.insert(name.to_owned(), i);
        i
    }

    /// Turns every second all cores have reported (or finished before) into a point.
    fn complete_seconds(&mut self) -> bool {
        let mut any = false;
        while let Some((&second, _)) = self.pending.first_key_value() {
            if !self.cores.iter().all(|c| c.done || c.last_second >= second) {
                break;
            }
            let p = self.pending.remove(&second).expect("first key exists");
            self.close(second, &p);
            any = true;
        }
        any
    }

    fn close(&mut self, second: u64, p: &Pending) {
        let at = |h: &Histogram<u64>, q: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(q)
            }
        };
        let duration_s = if p.duration_us > 0 {
            p.duration_us as f64 / 1e6
        } else {
            1.0
        };
        let point = Point {
            t: second,
            seconds: 1,
            duration_s,
            requests: p.requests,
            failures: p.failures,
            kinds: p.kinds,
            p50: at(&p.latency, 0.5),
            p90: at(&p.latency, 0.9),
            p99: at(&p.latency, 0.99),
            max: p.latency.max(),
            u50: at(&p.uncorrected, 0.5),
            u99: at(&p.uncorrected, 0.99),
            users: p.users,
            target: self.target_at(second as f64),
            lag_p99: at(&p.lag, 0.99),
            lag_max: p.lag_max,
            cpu_max: p.cpu_max,
            cpu_mean: p.cpu_sum / f64::from(p.cpu_cores.max(1)),
            dropped: p.dropped,
            connections: p.connections,
        };
        self.now = Now {
            users: point.users,
            target: point.target,
            rate: point.rate(),
            lag_p50: at(&p.lag, 0.5),
            lag_p99: point.lag_p99,
            lag_max: point.lag_max,
            cpu_max: point.cpu_max,
            connections: point.connections,
        };
        self.seconds = second;
        let series = Arc::make_mut(&mut self.series);
        // A short last interval (the run ended within a second) joins the second before it, so its
        // rate is not a few requests over a few milliseconds.
        match series.points.last_mut() {
            Some(last) if duration_s < 0.5 => {
                last.absorb(&point);
                self.now.rate = last.rate();
            }
            _ => series.push(point),
        }
    }

    /// What the load model asks for at `t` seconds: users (closed) or iterations per second (open).
    fn target_at(&self, t: f64) -> f64 {
        if let Some(target) = self.steering.as_ref().and_then(|s| s.target_at(t)) {
            return target;
        }
        match &self.load {
            LoadPlan::Open { curve, .. } => {
                curve.rate_at(std::time::Duration::from_secs_f64(t.max(0.0)))
            }
            LoadPlan::Closed { population, .. } => match population {
                Population::Spawn(s) => match s.rate {
                    Some(r) if r.is_finite() && r > 0.0 => {
                        f64::from(s.users).min((t * r).floor() + 1.0)
                    }
                    _ => f64::from(s.users),
                },
                Population::Stages(st) => {
                    let (mut t0, mut u0) = (0.0f64, 0.0f64);
                    for &(users, over) in &st.stages {
                        let (len, u1) = (over.as_secs_f64(), f64::from(users));
                        if t < t0 + len {
                            let f = if len > 0.0 { (t - t0) / len } else { 1.0 };
                            return (u0 + (u1 - u0) * f).ceil();
                        }
                        (t0, u0) = (t0 + len, u1);
                    }
                    u0
                }
                // The plan never holds a steered population; the steering above answers for it.
                Population::Steered(c) => f64::from(c.wanted(t)),
            },
        }
    }

    /// The run as it stands.
    pub fn snapshot(&self, phase: Phase, error: Option<String>) -> Snapshot {
        let phase = if phase == Phase::Running && self.stop.load(Ordering::Relaxed) {
            Phase::Stopping
        } else {
            phase
        };
        let mut names: Vec<NameRow> = self
            .names
            .iter()
            .map(|n| {
                let mut counts = NameCounts::default();
                for c in &n.per_core {
                    counts.kinds.add(&c.kinds);
                    counts.sent += c.sent;
                    counts.received += c.received;
                }
                row(&n.name, &counts, &n.latency)
            })
            .collect();
        names.sort_by(|a, b| a.name.cmp(&b.name));
        let mut all = NameCounts::default();
        for n in &names {
            all.kinds.add(&n.kinds);
            all.sent += n.bytes_sent;
            all.received += n.bytes_received;
        }
        let totals = Totals {
            uncorrected: Percentiles::of(&self.uncorrected),
            lag: Percentiles::of(&self.lag),
            ..self.totals.clone()
        };
        Snapshot {
            run: Arc::clone(&self.info),
            phase,
            error,
            elapsed_s: self.started.elapsed().as_secs_f64(),
            seconds: self.seconds,
            now: self.now.clone(),
            totals,
            all: row("(all)", &all, &self.all),
            names,
            series: Arc::clone(&self.series),
        }
    }
}

fn row(name: &str, c: &NameCounts, latency: &Histogram<u64>) -> NameRow {
    let (buckets, sum_s) = metrics::buckets(latency);
    NameRow {
        name: name.to_owned(),
        requests: c.kinds.total(),
        failures: c.kinds.failures(),
        kinds: c.kinds,
        latency: Percentiles::of(latency),
        bytes_sent: c.sent,
        bytes_received: c.received,
        buckets,
        sum_s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::tally::{LiveSecond, NameSecond, OUTCOMES};
    use crate::schedule::{RateCurve, Spawn, UserStages};
    use formats::{IntervalStats, Outcome};
    use std::time::Duration;

    fn info(cores: u32) -> Arc<RunInfo> {
        Arc::new(RunInfo {
            profile: "p".into(),
            run_id: "id".into(),
            environment: None,
            target: "http://t".into(),
            load: "l".into(),
            open_model: false,
            planned_s: 10.0,
            cores,
            io: "epoll".into(),
            started_at: "now".into(),
            dir: "runs/x".into(),
            engine_version: "0".into(),
            shard: None,
            can_stop: true,
        })
    }

    fn closed(users: u32) -> LoadPlan {
        LoadPlan::Closed {
            population: Population::Spawn(Spawn { users, rate: None }),
            iterations_per_user: None,
        }
    }

    /// A core's report of `second` with `ok` and `timeouts` cumulative counts for the name "GET /",
    /// whose latencies this second are `latencies`.
    fn report(core: u32, second: u64, ok: u64, timeouts: u64, latencies: &[u64]) -> SecondReport {
        let mut outcomes = [0u64; OUTCOMES];
        outcomes[0] = ok;
        outcomes[Outcome::Timeout.code() as usize] = timeouts;
        let mut h = histogram(NAME_SIGFIG);
        let mut second_h = histogram(2);
        for &l in latencies {
            h.record(l).unwrap();
            second_h.record(l).unwrap();
        }
        SecondReport {
            core,
            second,
            active_users: 5,
            requests: latencies.len() as u32,
            failures: 0,
            latency: second_h.clone(),
            lag: histogram(2),
            lag_max_us: 0,
            iterations_dropped: 0,
            stats: IntervalStats::default(),
            failure_reasons: Vec::new(),
            live: Some(Box::new(LiveSecond {
                new_names: if second == 1 {
                    vec!["GET /".into()]
                } else {
                    Vec::new()
                },
                names: vec![NameSecond {
                    outcomes,
                    bytes_sent: 10 * (ok + timeouts),
                    bytes_received: 0,
                    latency: h
                        .iter_recorded()
                        .map(|v| (v.value_iterated_to(), v.count_at_value()))
                        .collect(),
                }],
                uncorrected: second_h,
                interval: IntervalStats {
                    duration_us: 1_000_000,
                    cpu_user_us: 250_000,
                    ..IntervalStats::default()
                },
            })),
        }
    }

    #[test]
    fn seconds_complete_when_every_core_reported_and_counts_add_up() {
        let mut hub = Hub::new(info(2), closed(10), Arc::new(AtomicBool::new(false)));
        assert!(!hub.on_second(&report(0, 1, 2, 0, &[1000, 2000])));
        assert!(hub.on_second(&report(1, 1, 1, 1, &[3000, 4000])));
        // Core 0 runs ahead; second 2 waits for core 1.
        assert!(!hub.on_second(&report(0, 2, 3, 0, &[1000])));
        let s = hub.snapshot(Phase::Running, None);
        assert_eq!(s.seconds, 1);
        assert_eq!(s.series.points.len(), 1);
        let p = &s.series.points[0];
        assert_eq!((p.requests, p.kinds.failures(), p.users), (4, 1, 10));
        assert!((p.cpu_max - 25.0).abs() < 1e-9);
        // Cumulative counters are the cores' latest, so the counter already includes core 0's second 2.
        assert_eq!((s.all.requests, s.all.failures), (5, 1));
        // Exact to the histogram's resolution, as in the summary.
        assert!((4000..=4004).contains(&s.names[0].latency.max));
        // The histogram holds exactly what the counters count.
        assert_eq!(*s.names[0].buckets.last().unwrap(), 5);
        // A core that finishes does not hold seconds back.
        assert!(hub.on_done(1));
        let s = hub.snapshot(Phase::Completed, None);
        assert_eq!(s.seconds, 2);
        assert_eq!(s.phase, Phase::Completed);
    }

    #[test]
    fn the_stop_flag_shows_as_stopping_until_the_end() {
        let stop = Arc::new(AtomicBool::new(true));
        let hub = Hub::new(info(1), closed(1), stop);
        assert_eq!(hub.snapshot(Phase::Running, None).phase, Phase::Stopping);
        assert_eq!(
            hub.snapshot(Phase::Interrupted, None).phase,
            Phase::Interrupted
        );
    }

    #[test]
    fn targets_follow_the_load_model() {
        let flag = Arc::new(AtomicBool::new(false));
        let spawn = Hub::new(
            info(1),
            LoadPlan::Closed {
                population: Population::Spawn(Spawn {
                    users: 10,
                    rate: Some(2.0),
                }),
                iterations_per_user: None,
            },
            Arc::clone(&flag),
        );
        assert_eq!(spawn.target_at(0.0), 1.0);
        assert_eq!(spawn.target_at(2.0), 5.0);
        assert_eq!(spawn.target_at(100.0), 10.0);
        let stages = Hub::new(
            info(1),
            LoadPlan::Closed {
                population: Population::Stages(UserStages {
                    stages: vec![(10, Duration::from_secs(10)), (0, Duration::from_secs(10))],
                }),
                iterations_per_user: None,
            },
            Arc::clone(&flag),
        );
        assert_eq!(stages.target_at(5.0), 5.0);
        assert_eq!(stages.target_at(15.0), 5.0);
        assert_eq!(stages.target_at(25.0), 0.0);
        let open = Hub::new(
            info(1),
            LoadPlan::Open {
                curve: RateCurve::ramps(0.0, &[(100.0, Duration::from_secs(10))]),
                max_users: 10,
                queue: 0,
            },
            flag,
        );
        assert!((open.target_at(5.0) - 50.0).abs() < 1e-9);
    }
}
