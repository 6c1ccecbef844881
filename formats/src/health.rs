//! How the generator-health fields of [`IntervalStats`] are judged: the one rule that the engine's
//! console and the analyzer both apply, so that the warning a user watches during a run and the verdict
//! in its report name the same seconds and the same causes.
//!
//! **When a second lags.** Schedule lag is a request's actual start minus its intended start. A second
//! counts as *lagging* when, over every core, at least [`MIN_LATE_REQUESTS`] of the requests completed
//! in it, and more than [`LATE_SHARE_PCT`] % of them, started more than [`LAG_LIMIT_US`] late. This is
//! "lag P99 above 1 ms" with a floor under it: at a few hundred requests a second the P99 of one second
//! is its second- or third-largest value, and one late request (the first connection of a run, a
//! single preemption) would otherwise condemn the second.
//!
//! **Why it lagged.** Each core that had late requests in a lagging second is classified by the first
//! rule that matches its own record for that second:
//!
//! | cause | evidence |
//! |---|---|
//! | [`Cause::Capacity`] | the core's thread used at least [`CPU_LIMIT_PCT`] % of a CPU |
//! | [`Cause::PoolFull`] | arrivals of an open model waited in the queue for a free user |
//! | [`Cause::Preempted`] | it waited at least [`RUN_DELAY_LIMIT_US`] runnable but not running, or its CPU's steal time reached [`STEAL_LIMIT_PCT`] %, or (where the run delay is unknown) it was preempted at least [`PREEMPTIONS_LIMIT`] times |
//! | [`Cause::Startup`] | the core finished setting up more than 1 ms after time zero (`start_late_us`, first second only) |
//! | [`Cause::LateWakeup`] | none of those, but its timed waits woke more than 1 ms after their deadlines |
//! | [`Cause::Warmup`] | none of those, and users started on the core in that second |
//! | [`Cause::Unexplained`] | nothing above |
//!
//! The second's cause is that of the core with the most late requests.

use std::fmt::Write as _;

use serde::Serialize;

use crate::IntervalStats;

/// A request that starts more than this late (µs) is *late*: the generator, not the target, set its
/// pace.
pub const LAG_LIMIT_US: u32 = 1_000;
/// A second lags only when at least this many of its requests were late...
pub const MIN_LATE_REQUESTS: u64 = 5;
/// ... and more than this share of them (%): the P99 is over the limit.
pub const LATE_SHARE_PCT: f64 = 1.0;
/// A core this busy (% of one CPU, user + system) is at the limit of its own capacity.
pub const CPU_LIMIT_PCT: f64 = 90.0;
/// Dropping more than this share of iterations (%) makes a run invalid: the target saw less load than
/// the profile asks for.
pub const DROPPED_INVALID_PCT: f64 = 1.0;
/// Lagging in at least this share of the seconds makes a run invalid: the generator, not the profile,
/// set the pace for most of it.
pub const LAGGING_INVALID_SHARE: f64 = 0.5;

/// Whether a run with `lagging` of its `seconds` lagging and `dropped_pct` % of its iterations dropped
/// is invalid (rather than only suspect). The console and the analyzer both say so by this rule.
pub fn is_invalid(lagging: u32, seconds: u32, dropped_pct: f64) -> bool {
    dropped_pct > DROPPED_INVALID_PCT
        || (lagging > 0 && f64::from(lagging) >= LAGGING_INVALID_SHARE * f64::from(seconds))
}
/// Waiting this long (µs in a second) runnable but not running means something else had the CPU.
pub const RUN_DELAY_LIMIT_US: u32 = LAG_LIMIT_US;
/// Steal time of this share of the interval (%) means the hypervisor gave the CPU to someone else.
pub const STEAL_LIMIT_PCT: f64 = 1.0;
/// Where the kernel reports no run delay: this many involuntary context switches in a second count
/// as preemption.
pub const PREEMPTIONS_LIMIT: u32 = 10;
/// An interval at least this long (µs) is a whole second. Intervals close on the first tick after
/// each second, so whole ones are about 1 s long; a shorter one is the partial interval a core closes
/// when the run ends (the grace period after the planned end, or an interrupted run's last fraction).
pub const WHOLE_INTERVAL_US: u32 = 900_000;

/// Whether an interval record covers a whole second rather than the partial one at the end of a run.
pub fn is_whole(s: &IntervalStats) -> bool {
    s.duration_us >= WHOLE_INTERVAL_US
}

/// Requests of the interval that started more than [`LAG_LIMIT_US`] late. A v1.0 record does not
/// count them: for it this is the least number its lag P50, P99 and maximum imply (nearest rank: a
/// P99 over the limit means more than 1 % of the requests were, a P50 over it half of them).
pub fn late_requests(s: &IntervalStats) -> u64 {
    if s.late_requests > 0 {
        return u64::from(s.late_requests);
    }
    let n = u64::from(s.requests);
    // Nearest rank: the P(q) over the limit is the ⌈q·n⌉-th smallest, so it and all above it are late.
    let above = |q_pct: u64| n - (n * q_pct).div_ceil(100) + 1;
    if n == 0 {
        0
    } else if s.lag_p50_us > LAG_LIMIT_US {
        above(50)
    } else if s.lag_p99_us > LAG_LIMIT_US {
        above(99)
    } else {
        u64::from(s.lag_max_us > LAG_LIMIT_US)
    }
}

/// Whether `late` late requests out of `requests` make a lagging second.
pub fn lagging(requests: u64, late: u64) -> bool {
    late >= MIN_LATE_REQUESTS && late as f64 * 100.0 > LATE_SHARE_PCT * requests as f64
}

/// The core thread's CPU use in the interval, % of one CPU.
pub fn cpu_pct(s: &IntervalStats) -> f64 {
    if s.duration_us == 0 {
        return 0.0;
    }
    100.0 * (f64::from(s.cpu_user_us) + f64::from(s.cpu_system_us)) / f64::from(s.duration_us)
}

/// Steal time of the core's CPU, % of the interval; `None` when not reported.
pub fn steal_pct(s: &IntervalStats) -> Option<f64> {
    let steal = s.steal_us?;
    (s.duration_us > 0).then(|| 100.0 * f64::from(steal) / f64::from(s.duration_us))
}

/// What most likely made a core start requests late.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The core was not ready at time zero: its first requests waited for it.
    Startup,
    /// The core's thread was busy all the time: the generator's own capacity.
    Capacity,
    /// Every user of an open model's pool was busy: arrivals waited in the queue for a free one.
    PoolFull,
    /// Another process, thread or virtual machine had the core's CPU while it wanted to run.
    Preempted,
    /// The CPU was idle and nobody else held it, but the thread woke after its deadlines.
    LateWakeup,
    /// Users were starting (first connections, cold code paths), with no other evidence.
    Warmup,
    /// No evidence explains it.
    Unexplained,
}

impl Cause {
    /// Every cause, in the order the rules try them.
    pub const ALL: [Cause; 7] = [
        Cause::Capacity,
        Cause::PoolFull,
        Cause::Preempted,
        Cause::Startup,
        Cause::LateWakeup,
        Cause::Warmup,
        Cause::Unexplained,
    ];

    /// A short name: `start-up`, `capacity`, `preempted`, `late wake-up`, `warm-up`, `unexplained`.
    pub fn name(self) -> &'static str {
        match self {
            Cause::Startup => "start-up",
            Cause::Capacity => "capacity",
            Cause::PoolFull => "pool full",
            Cause::Preempted => "preempted",
            Cause::LateWakeup => "late wake-up",
            Cause::Warmup => "warm-up",
            Cause::Unexplained => "unexplained",
        }
    }

    /// What it means, as a clause.
    pub fn meaning(self) -> &'static str {
        match self {
            Cause::Startup => "the engine was still starting up",
            Cause::Capacity => {
                "the generator's own capacity: the engine core was busy all the time"
            }
            Cause::PoolFull => {
                "every user of the open model's pool was busy, so arrivals waited in the queue for a free one"
            }
            Cause::Preempted => "another process or tenant took the CPU from the engine",
            Cause::LateWakeup => {
                "the operating system or hypervisor woke the engine late while its CPU was idle"
            }
            Cause::Warmup => "users were starting (first connections, cold code paths)",
            Cause::Unexplained => {
                "nothing the engine measures explains it (CPU, preemption, steal and wake-ups were normal)"
            }
        }
    }

    /// What to do about it.
    pub fn advice(self) -> &'static str {
        match self {
            Cause::Startup | Cause::Warmup => {
                "leave the start of the run out of the analysis (`analyzer report --skip 2s`), or ramp users up more slowly"
            }
            Cause::Capacity => {
                "give the engine more cores (`--cores`), or put fewer users or a lighter scenario on each"
            }
            Cause::PoolFull => {
                "raise max_users (the pool), or lower the rate if the target cannot keep up with it"
            }
            Cause::Preempted => {
                "give the engine CPUs of its own (isolated CPUs, a cpuset, no other busy processes), run it under `chrt -f 10`, or use a quieter host"
            }
            Cause::LateWakeup => {
                "run the engine under `chrt -f 10` on isolated CPUs, or on a host without deep CPU sleep states or an overcommitted hypervisor"
            }
            Cause::Unexplained => "rerun on a quieter host, under `chrt -f 10`",
        }
    }

    /// Whether the cause lies outside the generator's steady state, so that `--skip` removes it.
    pub fn is_startup(self) -> bool {
        matches!(self, Cause::Startup | Cause::Warmup)
    }
}

/// Why one core started requests late in the interval of `s`, by the rules in the module
/// documentation.
pub fn cause(s: &IntervalStats) -> Cause {
    let preempted = s
        .run_delay_us
        .map_or(s.involuntary_switches >= PREEMPTIONS_LIMIT, |d| {
            d >= RUN_DELAY_LIMIT_US
        })
        || steal_pct(s).is_some_and(|p| p >= STEAL_LIMIT_PCT);
    // A core preempted while it set up is late to start because it was preempted: the steady causes
    // come first, so that start-up names only a slow set-up on a core nobody held up.
    if cpu_pct(s) >= CPU_LIMIT_PCT {
        Cause::Capacity
    } else if s.iterations_queued > 0 {
        Cause::PoolFull
    } else if preempted {
        Cause::Preempted
    } else if s.start_late_us > LAG_LIMIT_US {
        Cause::Startup
    } else if s.wake_late_max_us > LAG_LIMIT_US {
        Cause::LateWakeup
    } else if s.users_started > 0 {
        Cause::Warmup
    } else {
        Cause::Unexplained
    }
}

/// `850 µs`, `3.3 ms`, `1.20 s`.
pub fn micros(us: u64) -> String {
    if us < 1000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        format!("{:.1} ms", us as f64 / 1e3)
    } else {
        format!("{:.2} s", us as f64 / 1e6)
    }
}

/// The evidence for `cause` in core `core`'s record, as a phrase: "core 0 at 97 % CPU".
pub fn evidence(cause: Cause, core: u32, s: &IntervalStats) -> String {
    let mut out = format!("core {core}");
    let delay = match s.run_delay_us {
        Some(d) => format!("waited {} for a CPU while runnable", micros(u64::from(d))),
        None => "run delay unknown (not reported by this kernel or log)".to_owned(),
    };
    let steal = match steal_pct(s) {
        Some(p) if p > 0.0 => format!(", steal {p:.0} %"),
        _ => String::new(),
    };
    let _ = match cause {
        Cause::Startup => write!(
            out,
            " was ready {} after time zero",
            micros(u64::from(s.start_late_us))
        ),
        Cause::Capacity => write!(out, " at {:.0} % CPU", cpu_pct(s)),
        Cause::PoolFull => write!(
            out,
            ": {} arrivals waited for a free user, at {:.0} % CPU",
            s.iterations_queued,
            cpu_pct(s)
        ),
        Cause::Preempted if s.involuntary_switches > 0 => write!(
            out,
            " {delay}, was preempted {}{steal}",
            times(s.involuntary_switches)
        ),
        Cause::Preempted => write!(out, " {delay}{steal}"),
        Cause::LateWakeup => write!(
            out,
            " at {:.0} % CPU, not held up by other processes, woke up to {} after its deadlines",
            cpu_pct(s),
            micros(u64::from(s.wake_late_max_us))
        ),
        Cause::Warmup => write!(
            out,
            " started {} users and opened {} connections",
            s.users_started, s.connections_opened
        ),
        Cause::Unexplained => write!(
            out,
            " at {:.0} % CPU, {delay}, preempted {}, wake-ups at most {} late{steal}",
            cpu_pct(s),
            times(s.involuntary_switches),
            micros(u64::from(s.wake_late_max_us))
        ),
    };
    out
}

/// `never`, `once`, `41 times`.
fn times(n: u32) -> String {
    match n {
        0 => "never".into(),
        1 => "once".into(),
        n => format!("{n} times"),
    }
}

/// The judgement of one second over every core.
#[derive(Debug, Clone, PartialEq)]
pub struct SecondJudgement {
    /// Requests completed in the second, over every core: the sample the judgement rests on.
    pub requests: u64,
    /// Those that started more than [`LAG_LIMIT_US`] late.
    pub late: u64,
    /// Whether the second lags ([`lagging`]).
    pub lagging: bool,
    /// Why, from the core with the most late requests: (cause, core, evidence). `None` when no
    /// request was late.
    pub cause: Option<(Cause, u32, String)>,
}

/// Judges one second from the records every core wrote for it (`(core, record)`).
pub fn judge_second<'a>(
    records: impl IntoIterator<Item = (u32, &'a IntervalStats)>,
) -> SecondJudgement {
    let (mut requests, mut late) = (0u64, 0u64);
    let mut worst: Option<(u64, u32, &IntervalStats)> = None;
    for (core, s) in records {
        let l = late_requests(s);
        requests += u64::from(s.requests);
        late += l;
        if l > 0 && worst.is_none_or(|w| l > w.0) {
            worst = Some((l, core, s));
        }
    }
    SecondJudgement {
        requests,
        late,
        lagging: lagging(requests, late),
        cause: worst.map(|(_, core, s)| {
            let c = cause(s);
            (c, core, evidence(c, core, s))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn second(requests: u32, late: u32) -> IntervalStats {
        IntervalStats {
            duration_us: 1_000_000,
            requests,
            late_requests: late,
            lag_max_us: if late > 0 { 2_000 } else { 10 },
            ..IntervalStats::default()
        }
    }

    /// Each row: requests, late requests, and whether the second lags.
    #[test]
    fn lagging_needs_enough_late_requests() {
        #[rustfmt::skip]
        let rows: &[(u64, u64, bool)] = &[
            // One start-up outlier at demo rates: the P99 is the maximum, but one request is not a trend.
            (245, 1, false),
            // Three of 245 (1.2 %) pass the share but not the floor.
            (245, 3, false),
            // Five of 245 (2 %): lagging.
            (245, 5, true),
            // Ten of 1000 is exactly 1 %: not more than 1 %.
            (1000, 10, false),
            (1000, 11, true),
            // A slow second where every request was late.
            (5, 5, true),
            (4, 4, false),
            (0, 0, false),
        ];
        for &(n, late, want) in rows {
            assert_eq!(lagging(n, late), want, "{late} of {n}");
        }
    }

    #[test]
    fn v1_0_records_imply_their_late_requests_from_p99_and_max() {
        let v10 = |requests, p99, max| IntervalStats {
            requests,
            lag_p99_us: p99,
            lag_max_us: max,
            ..IntervalStats::default()
        };
        // P99 over the limit at 245 requests: the 243rd smallest is late, so at least three are.
        assert_eq!(late_requests(&v10(245, 2_000, 3_000)), 3);
        assert_eq!(late_requests(&v10(100, 2_000, 3_000)), 2);
        let mut slow = v10(100, 5_000, 5_000);
        slow.lag_p50_us = 5_000;
        assert_eq!(late_requests(&slow), 51);
        assert_eq!(late_requests(&v10(245, 500, 3_000)), 1);
        assert_eq!(late_requests(&v10(245, 500, 900)), 0);
        assert_eq!(late_requests(&v10(0, 0, 0)), 0);
        // A v1.1 record's own count wins.
        let mut s = v10(245, 2_000, 3_000);
        s.late_requests = 40;
        assert_eq!(late_requests(&s), 40);
    }

    /// Each row: a record and the cause it earns, in the rules' order of precedence.
    #[test]
    fn cause_table() {
        let base = second(300, 20);
        #[rustfmt::skip]
        let rows: Vec<(IntervalStats, Cause)> = vec![
            // Late to start on an idle, unhindered core: start-up; busy, or held up, the steady cause wins.
            (IntervalStats { start_late_us: 7_000, run_delay_us: Some(200), ..base }, Cause::Startup),
            (IntervalStats { start_late_us: 7_000, cpu_user_us: 950_000, ..base }, Cause::Capacity),
            (IntervalStats { start_late_us: 7_000, run_delay_us: Some(69_000), ..base }, Cause::Preempted),
            // Saturated and preempted: capacity.
            (IntervalStats { cpu_user_us: 600_000, cpu_system_us: 330_000, run_delay_us: Some(50_000), ..base }, Cause::Capacity),
            // Arrivals queued for a free user, on a core with CPU to spare.
            (IntervalStats { iterations_queued: 30, run_delay_us: Some(5_000), ..base }, Cause::PoolFull),
            // Idle but waiting for the CPU.
            (IntervalStats { cpu_user_us: 20_000, run_delay_us: Some(8_000), involuntary_switches: 41, ..base }, Cause::Preempted),
            // A short wait on the run queue is not preemption; late timers then explain it.
            (IntervalStats { run_delay_us: Some(200), involuntary_switches: 41, wake_late_max_us: 3_000, ..base }, Cause::LateWakeup),
            // Steal alone is preemption by the hypervisor.
            (IntervalStats { run_delay_us: Some(0), steal_us: Some(60_000), ..base }, Cause::Preempted),
            // Without schedstat, many involuntary switches count.
            (IntervalStats { run_delay_us: None, involuntary_switches: 12, ..base }, Cause::Preempted),
            (IntervalStats { run_delay_us: None, involuntary_switches: 2, users_started: 10, ..base }, Cause::Warmup),
            (IntervalStats { run_delay_us: Some(0), ..base }, Cause::Unexplained),
        ];
        for (i, (s, want)) in rows.iter().enumerate() {
            assert_eq!(cause(s), *want, "row {i}: {s:?}");
        }
    }

    #[test]
    fn the_second_takes_the_cause_of_the_core_with_most_late_requests() {
        let idle = IntervalStats {
            run_delay_us: Some(0),
            ..second(200, 2)
        };
        let preempted = IntervalStats {
            run_delay_us: Some(9_000),
            involuntary_switches: 41,
            steal_us: Some(60_000),
            ..second(200, 9)
        };
        let j = judge_second([(0, &idle), (1, &preempted)]);
        assert_eq!((j.requests, j.late, j.lagging), (400, 11, true));
        let (cause, core, evidence) = j.cause.unwrap();
        assert_eq!((cause, core), (Cause::Preempted, 1));
        assert_eq!(
            evidence,
            "core 1 waited 9.0 ms for a CPU while runnable, was preempted 41 times, steal 6 %"
        );
        let quiet = judge_second([(0, &second(200, 0))]);
        assert!(!quiet.lagging);
        assert_eq!(quiet.cause, None);
    }

    #[test]
    fn invalid_needs_half_the_seconds_lagging_or_over_one_percent_dropped() {
        assert!(!is_invalid(0, 10, 0.0));
        assert!(!is_invalid(4, 10, 0.0));
        assert!(is_invalid(5, 10, 0.0));
        assert!(!is_invalid(0, 10, 1.0));
        assert!(is_invalid(0, 10, 1.01));
        // A run without whole seconds is not invalid for lag it could not have had.
        assert!(!is_invalid(0, 0, 0.0));
    }
}
