//! One core's sample log: the samples of the shop under its load, with the stall, the degraded period
//! and a lagging shard's late starts, and an interval record for every second.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use formats::{
    IntervalStats, IoSink, LogHeader, LogWriter, MessageId, NameId, Outcome, RunId, Sample,
};

use super::shards::ShardPlan;
use super::shop::{
    ENDPOINT_TASKS, ENDPOINTS, FAILURES, LoadShape, TASKS, TIMEOUT_US, USERS_PER_CORE,
};
use super::{MONOTONIC_BASE_NS, SynthParams};
use crate::error::{Error, Result};
use crate::rng::Rng;

/// Per-second counters for the interval blocks, accumulated while samples are generated.
#[derive(Debug, Default)]
struct SecondCounters {
    requests: u32,
    failures: u32,
    /// Schedule lag in log2 buckets of µs, enough for approximate p50/p99.
    lag_buckets: [u32; 32],
    lag_max_us: u32,
    /// Requests that started more than the lag limit late.
    late: u32,
}

impl SecondCounters {
    fn lag_quantile(&self, q: f64) -> u32 {
        let total: u32 = self.lag_buckets.iter().sum();
        let rank = ((f64::from(total) * q).ceil() as u32).max(1);
        let mut seen = 0;
        for (i, n) in self.lag_buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return ((1u64 << i) - 1).min(u64::from(self.lag_max_us)) as u32;
            }
        }
        self.lag_max_us
    }
}

pub(super) fn write_core(
    params: &SynthParams,
    run_id: RunId,
    core: u32,
    samples: u64,
    path: &Path,
    shard: Option<&ShardPlan>,
) -> Result<()> {
    let io = |e| Error::io(path, e);
    let file = File::create(path).map_err(io)?;
    let header = LogHeader::new(
        run_id,
        core,
        MONOTONIC_BASE_NS,
        ShardPlan::started_unix_ns(shard),
    );
    let mut log =
        LogWriter::new(&header, IoSink(BufWriter::with_capacity(1 << 20, file))).map_err(io)?;
    let names: Vec<NameId> = ENDPOINTS.iter().map(|e| log.intern_name(e.name)).collect();
    for (id, kind, kind_weight, task, task_weight, tags) in TASKS {
        log.define_task(formats::TaskInfo {
            id,
            role: formats::TaskRole::Task,
            kind: u32::from(kind != "browser"),
            kind_weight,
            task_weight,
            kind_name: kind.into(),
            task_name: task.into(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        });
    }
    let messages: Vec<MessageId> = FAILURES.iter().map(|f| log.intern_message(f.2)).collect();
    // Shard 0 (and a run of one engine) keeps the streams runs had before shards existed.
    let stream = u64::from(core) + 1 + (u64::from(shard.map_or(0, |p| p.index)) << 32);
    let mut rng = Rng::new(params.seed, stream);
    let d = f64::from(params.duration_s);
    let shape = LoadShape { duration_s: d };
    let ((stall_from, stall_to), (degraded_from, degraded_to)) = if params.incidents {
        ((d * 0.55, d * 0.555), (d * 0.75, d * 0.80))
    } else {
        ((0.0, 0.0), (0.0, 0.0))
    };
    // A lagging shard's generator runs out of CPU for a tenth of the run: it starts every request
    // several milliseconds late.
    let (lag_from, lag_to) = if shard.is_some_and(|p| p.lagging) {
        (d * 0.30, d * 0.40)
    } else {
        (0.0, 0.0)
    };
    let busy_second = |second: u32| (lag_from..lag_to).contains(&(f64::from(second) + 0.5));
    let cumulative: Vec<f64> = ENDPOINTS
        .iter()
        .scan(0.0, |acc, e| {
            *acc += e.weight;
            Some(*acc)
        })
        .collect();
    let stall = (stall_from, stall_to);
    let mut second = 0u32;
    let mut counters = SecondCounters::default();
    for i in 0..samples {
        let f = (i as f64 + 0.5) / samples as f64;
        let t = shape.time_at(f);
        let intended_us = (t * 1e6) as u64;
        while intended_us >= (u64::from(second) + 1) * 1_000_000 {
            log.push_interval(interval(
                &shape,
                busy_second(second),
                second,
                &counters,
                stall,
                &mut rng,
            ));
            log.flush().map_err(io)?;
            counters = SecondCounters::default();
            second += 1;
        }
        // Outside the stall the generator keeps up within tens of µs; inside it, every request waits
        // until the stall ends, which is what latency correction is for.
        let mut lag_us = rng.exponential(25.0) as u64;
        if (stall_from..stall_to).contains(&t) {
            lag_us += ((stall_to - t) * 1e6) as u64;
        }
        if (lag_from..lag_to).contains(&t) {
            lag_us += 2_000 + rng.exponential(6_000.0) as u64;
        }
        let actual_us = intended_us + lag_us;
        let pick = rng.unit() * cumulative[cumulative.len() - 1];
        let e = cumulative
            .iter()
            .position(|&c| pick < c)
            .unwrap_or(ENDPOINTS.len() - 1);
        let ep = &ENDPOINTS[e];
        let degraded = (degraded_from..degraded_to).contains(&t);
        let mut latency_ms = ep.median_ms * (ep.sigma * rng.normal()).exp();
        if rng.unit() < 0.004 {
            // The slow tail: a few requests hit a cold cache, a lock or a GC pause.
            latency_ms *= 3.0 * 10f64.powf(rng.unit());
        }
        if degraded {
            latency_ms *= 2.2;
        }
        latency_ms *= params.latency_scale;
        let mut sample = Sample {
            name: names[e],
            intended_us,
            actual_us,
            latency_us: (latency_ms * 1000.0).clamp(1.0, f64::from(TIMEOUT_US)) as u32,
            connect_us: if rng.unit() < 0.02 {
                250 + rng.exponential(150.0) as u32
            } else {
                0
            },
            tls_us: 0,
            ttfb_us: 0,
            status: 200,
            outcome: Outcome::Ok,
            message: None,
            bytes_sent: ep.bytes_sent + (rng.unit() * 40.0) as u32,
            bytes_received: ep.bytes_received
                + (rng.unit() * f64::from(ep.bytes_received) * 0.1) as u32,
            user: (rng.unit() * USERS_PER_CORE * shape.level(t)) as u32,
            task: ENDPOINT_TASKS[e].0,
            iteration_start: ENDPOINT_TASKS[e].1,
        };
        let failure_rate = params.error_rate * ep.failure_factor * if degraded { 6.0 } else { 1.0 };
        if sample.latency_us >= TIMEOUT_US {
            sample.outcome = Outcome::Timeout;
            sample.status = 0;
            sample.message = Some(messages[1]);
            sample.bytes_received = 0;
        } else if rng.unit() < failure_rate.min(1.0) {
            let mut pick = rng.unit();
            let k = FAILURES.iter().position(|f| {
                pick -= f.3;
                pick < 0.0
            });
            let k = if degraded && rng.unit() < 0.6 {
                0
            } else {
                k.unwrap_or(0)
            };
            let (outcome, status, _, _) = FAILURES[k];
            sample.outcome = outcome;
            sample.status = status;
            sample.message = Some(messages[k]);
            match outcome {
                Outcome::Timeout => {
                    sample.latency_us = TIMEOUT_US;
                    sample.bytes_received = 0;
                }
                Outcome::ConnectError => {
                    sample.latency_us = 80 + rng.exponential(150.0) as u32;
                    sample.bytes_sent = 0;
                    sample.bytes_received = 0;
                }
                Outcome::Reset => {
                    sample.latency_us =
                        (f64::from(sample.latency_us) * rng.unit()).max(50.0) as u32;
                    sample.bytes_received = 0;
                }
                Outcome::Status => sample.bytes_received = 180,
                _ => {}
            }
        }
        // The target is https: a new connection's connect time is about 40 % TCP and 60 % TLS
        // handshake, and fits inside the request. The first byte comes after the connection and most
        // of the wait; nothing arrives for a timeout, a refused connection or a reset without data.
        if sample.outcome == Outcome::ConnectError {
            sample.connect_us = 0;
        }
        sample.connect_us = sample.connect_us.min(sample.latency_us / 2);
        sample.tls_us = sample.connect_us * 3 / 5;
        let no_response = matches!(sample.outcome, Outcome::Timeout | Outcome::ConnectError)
            || (sample.outcome == Outcome::Reset && sample.bytes_received == 0);
        sample.ttfb_us = if no_response {
            0
        } else {
            sample.connect_us + (f64::from(sample.latency_us - sample.connect_us) * 0.85) as u32
        };
        counters.requests += 1;
        counters.failures += u32::from(sample.outcome != Outcome::Ok);
        let lag = u32::try_from(lag_us).unwrap_or(u32::MAX);
        counters.lag_buckets[(32 - lag.leading_zeros()).min(31) as usize] += 1;
        counters.lag_max_us = counters.lag_max_us.max(lag);
        counters.late += u32::from(lag > formats::health::LAG_LIMIT_US);
        log.push(sample).map_err(io)?;
    }
    while second < params.duration_s {
        log.push_interval(interval(
            &shape,
            busy_second(second),
            second,
            &counters,
            stall,
            &mut rng,
        ));
        counters = SecondCounters::default();
        second += 1;
    }
    let mut sink = log.finish().map_err(io)?;
    std::io::Write::flush(&mut sink.0).map_err(io)?;
    Ok(())
}

fn interval(
    shape: &LoadShape,
    saturated: bool,
    second: u32,
    c: &SecondCounters,
    stall: (f64, f64),
    rng: &mut Rng,
) -> IntervalStats {
    let level = shape.level(f64::from(second) + 0.5);
    let users = |at: f64| (USERS_PER_CORE * shape.level(at)).round() as u32;
    // The stall is another process holding the generator's CPU: the thread waits runnable for the
    // part of the stall that falls in this second.
    let from = f64::from(second);
    let stalled = (stall.1.min(from + 1.0) - stall.0.max(from)).max(0.0);
    // About 70 µs of CPU a request plus a little housekeeping: a generator comfortably below saturation
    // (or, when saturated, one that used nearly all of its core).
    let mut busy =
        (f64::from(c.requests) * 70.0 + 30_000.0 * level + rng.unit() * 20_000.0).min(1e6);
    if saturated {
        busy = busy.max(970_000.0 + rng.unit() * 25_000.0);
    }
    IntervalStats {
        start_us: u64::from(second) * 1_000_000,
        duration_us: 1_000_000,
        active_users: (USERS_PER_CORE * level).round() as u32,
        iterations_started: c.requests,
        iterations_dropped: 0,
        requests: c.requests,
        failures: c.failures,
        lag_p50_us: c.lag_quantile(0.5),
        lag_p99_us: c.lag_quantile(0.99),
        lag_max_us: c.lag_max_us,
        cpu_user_us: (busy * 0.6) as u32,
        cpu_system_us: (busy * 0.4) as u32,
        connections_opened: c.requests / 50,
        open_connections: (USERS_PER_CORE * level).round() as u32,
        users_max: users(from + 1.0).max(users(from)),
        users_started: users(from + 1.0).saturating_sub(users(from)),
        late_requests: c.late,
        voluntary_switches: c.requests,
        involuntary_switches: u32::from(stalled > 0.0) * 3,
        run_delay_us: Some((stalled * 1e6) as u32 + c.requests / 10),
        steal_us: Some(0),
        wakeups: 20,
        wake_late_p99_us: 60,
        wake_late_max_us: 80,
        start_late_us: 0,
        iterations_queued: 0,
    }
}
