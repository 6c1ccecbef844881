//! Steering a running test from the live dashboard: changing the number of users of a closed model
//! or the arrival rate of an open one, with a ramp, while the run goes (docs/live.md#steering).
//!
//! ```text
//! POST /api/steer ──▶ Steering::request (HTTP thread)        cores (each at its 50 ms tick)
//!                      checks, stamps `at` = now + LEAD ──▶ mpsc per core ──▶ try_recv: record the
//!                      keeps the run-wide curve                               change, steer its copy
//! ```
//!
//! The coordinator side ([`Steering`]) checks a request, stamps when the change begins, and sends the
//! same [`Change`] to every core over a channel of its own. A core looks at its channel once per tick
//! (a `try_recv`, off the request path: no lock, nothing shared per request), records the change in
//! its log (block kind 7) and applies it to its own copy of the load: every core holds the same
//! run-wide curve (users over time, or arrivals per second over time) and takes its part of it through
//! the deal it already uses, so the coordinator never splits anything. A change begins [`LEAD`] after
//! it is accepted, so every core has seen it by then and the users or arrivals it adds are on time.
//!
//! **Closed model.** The target becomes a curve ([`UserCurve`]): the profile's spawn ramp, then
//! each change's ramp from where the target was. User `k` of the run is wanted while the target is
//! above `k`, as with `Stages`: users start in index order as it rises (through the same spawn
//! machinery) and stop newest first as it falls, each finishing its iteration and running its on_stop.
//! Users above the profile's count exist only when the run was started with `--max-users`, which sets
//! up their slots at the start (nothing is allocated on a core while it runs).
//!
//! **Open model.** The arrival curve is cut where the change begins and ramps linearly to the new
//! rate ([`crate::schedule::RateCurve::steered`]); arrivals keep their run-wide numbers, so the cores
//! still deal one sequence of arrivals between them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;

use crate::clock::Clock;
use crate::plan::{LoadPlan, Plan};
use crate::schedule::{Population, RateCurve, UserCurve};

/// How long after it is accepted a change begins: more than a core's tick, so that every core has
/// read it by then.
pub(crate) const LEAD: Duration = Duration::from_millis(100);
/// The longest ramp accepted.
pub(crate) const MAX_RAMP_S: f64 = 3600.0;
/// The highest arrival rate accepted, per second (far above what one engine can send).
pub(crate) const MAX_RATE: f64 = 1_000_000.0;
/// Who asks, as recorded in the log.
pub(crate) const DASHBOARD: &str = "dashboard";

/// What a change moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Knob {
    /// A closed model's users.
    Users,
    /// An open model's arrivals per second.
    Rate,
}

/// One accepted change, as every core receives it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Change {
    /// When it begins, µs since time zero.
    pub at_us: u64,
    pub knob: Knob,
    /// The run-wide target when it begins, and the one asked for.
    pub from: f64,
    pub to: f64,
    /// How long the target takes to move, µs.
    pub ramp_us: u64,
}

impl Change {
    /// The record the cores write to their logs.
    pub fn record(&self) -> formats::LoadChange {
        formats::LoadChange {
            at_us: self.at_us,
            what: match self.knob {
                Knob::Users => formats::LoadChange::USERS,
                Knob::Rate => formats::LoadChange::RATE,
            },
            from: self.from,
            to: self.to,
            ramp_us: self.ramp_us,
            who: DASHBOARD.to_owned(),
        }
    }

    fn at_s(&self) -> f64 {
        self.at_us as f64 / 1e6
    }

    fn ramp_s(&self) -> f64 {
        self.ramp_us as f64 / 1e6
    }

    fn view(&self) -> ChangeView {
        ChangeView {
            at_s: self.at_s(),
            what: self.knob,
            from: self.from,
            to: self.to,
            ramp_s: self.ramp_s(),
        }
    }
}

/// How fast a change moves the target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Ramp {
    /// Over this many seconds (0: at once).
    Seconds(f64),
    /// Users per second, as Locust's spawn rate (closed models).
    PerSecond(f64),
}

/// A change as asked for, checked for form but not yet against the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Ask {
    pub knob: Knob,
    pub to: f64,
    pub ramp: Ramp,
}

/// Reads a control request's body: `{"users": N}` or `{"rate": R}`, optionally with `"ramp_s"` or
/// (users only) `"spawn_rate"`. The error says what was wrong and what is accepted.
pub(crate) fn parse(fields: &serde_json::Map<String, serde_json::Value>) -> Result<Ask, String> {
    const KNOWN: [&str; 4] = ["users", "rate", "ramp_s", "spawn_rate"];
    if let Some(unknown) = fields.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(format!(
            "unknown field {unknown:?}: a change takes \"users\" (closed model) or \"rate\" (open model), and optionally \"ramp_s\" or \"spawn_rate\""
        ));
    }
    let number = |key: &str| -> Result<Option<f64>, String> {
        match fields.get(key) {
            None => Ok(None),
            Some(v) => match v.as_f64() {
                Some(x) if x.is_finite() => Ok(Some(x)),
                _ => Err(format!("\"{key}\" must be a number, got {v}")),
            },
        }
    };
    let (knob, to) = match (fields.get("users"), number("rate")?) {
        (Some(_), Some(_)) => {
            return Err("give \"users\" or \"rate\", not both".to_owned());
        }
        (None, None) => {
            return Err(
                "nothing to change: give \"users\" (closed model) or \"rate\" (open model), e.g. {\"users\": 50, \"ramp_s\": 10}"
                    .to_owned(),
            );
        }
        (Some(v), None) => match v.as_u64() {
            Some(n) if n <= u64::from(u32::MAX) => (Knob::Users, n as f64),
            _ => {
                return Err(format!(
                    "\"users\" must be a whole number from 0 up, got {v}"
                ));
            }
        },
        (None, Some(r)) => {
            if !(r > 0.0 && r <= MAX_RATE) {
                return Err(format!(
                    "\"rate\" must be above 0 and at most {MAX_RATE} arrivals per second, got {r}"
                ));
            }
            (Knob::Rate, r)
        }
    };
    let ramp = match (number("ramp_s")?, number("spawn_rate")?) {
        (Some(_), Some(_)) => {
            return Err("give \"ramp_s\" or \"spawn_rate\", not both".to_owned());
        }
        (Some(s), None) if (0.0..=MAX_RAMP_S).contains(&s) => Ramp::Seconds(s),
        (Some(s), None) => {
            return Err(format!(
                "\"ramp_s\" must be from 0 to {MAX_RAMP_S} seconds, got {s}"
            ));
        }
        (None, Some(_)) if knob == Knob::Rate => {
            return Err(
                "\"spawn_rate\" is users per second: a rate change ramps over \"ramp_s\" seconds"
                    .to_owned(),
            );
        }
        (None, Some(r)) if r > 0.0 => Ramp::PerSecond(r),
        (None, Some(r)) => {
            return Err(format!(
                "\"spawn_rate\" must be above 0 users per second, got {r}"
            ));
        }
        (None, None) => Ramp::Seconds(0.0),
    };
    Ok(Ask { knob, to, ramp })
}

/// A refused change: the HTTP status and the reason shown to the user.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Refusal {
    pub status: u16,
    pub error: String,
}

impl Refusal {
    fn conflict(error: impl Into<String>) -> Refusal {
        Refusal {
            status: 409,
            error: error.into(),
        }
    }

    fn bad(error: impl Into<String>) -> Refusal {
        Refusal {
            status: 400,
            error: error.into(),
        }
    }
}

/// The run's steerable load, as the coordinator keeps it.
#[derive(Debug)]
enum Model {
    Users {
        curve: UserCurve,
        max: u32,
    },
    Rate {
        curve: RateCurve,
    },
    /// Steering cannot apply to this run, for this reason.
    Off {
        knob: Knob,
        reason: String,
    },
}

#[derive(Debug)]
struct Inner {
    model: Model,
    cores: Vec<Sender<Change>>,
    changes: Vec<Change>,
}

/// The coordinator's side of steering, shared by the HTTP threads and the hub (never by a core).
#[derive(Debug)]
pub(crate) struct Steering {
    inner: Mutex<Inner>,
    clock: Clock,
    end_us: u64,
    stop: Arc<AtomicBool>,
}

/// What the dashboard shows about steering.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SteerStatus {
    /// Whether a change can be asked for now; when not, `reason` says why.
    pub available: bool,
    pub reason: Option<String>,
    pub knob: Knob,
    /// The highest target accepted.
    pub max: f64,
    /// The target now (users wanted, or arrivals per second).
    pub target: f64,
    /// The last change while it ramps: how far it has got, from 0 to 1.
    pub ramping: Option<Ramping>,
    pub changes: Vec<ChangeView>,
}

/// A ramp in progress.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Ramping {
    pub change: ChangeView,
    pub progress: f64,
}

/// A change as the dashboard and the API show it.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct ChangeView {
    /// When it began, seconds since the start.
    pub at_s: f64,
    pub what: Knob,
    pub from: f64,
    pub to: f64,
    pub ramp_s: f64,
}

/// Why steering cannot apply to this plan, if it cannot.
pub(crate) fn refusal(plan: &Plan) -> Option<String> {
    if plan.shard.is_some() {
        return Some(
            "steering a sharded run is not supported: shards never coordinate, so a change on one engine would leave the others at the old load while the report shows one run; stop the run and start it with the new load".to_owned(),
        );
    }
    let kind_limit = plan.scenario.kinds.iter().any(|k| k.iterations.is_some());
    let per_user = matches!(
        plan.load,
        LoadPlan::Closed {
            iterations_per_user: Some(_),
            ..
        }
    );
    if plan.iterations.is_some() || per_user || kind_limit {
        return Some(
            "the profile limits iterations, so the run ends when they are done; steering applies to runs that go on for a duration".to_owned(),
        );
    }
    match &plan.load {
        LoadPlan::Closed {
            population: Population::Stages(_),
            ..
        } => Some(
            "the profile's Stages set the number of users over time; use Closed(users, spawn_rate) to steer users by hand".to_owned(),
        ),
        LoadPlan::Open { curve, .. } if !curve.is_constant() => Some(
            "the profile's RampingRate sets the arrival rate over time; use Open(rate, duration) to steer the rate by hand".to_owned(),
        ),
        _ => None,
    }
}

impl Steering {
    /// The steering of `plan`'s run, and each core's end of the channel (none when steering cannot
    /// apply: the cores then never look).
    pub fn new(
        plan: &Plan,
        clock: Clock,
        stop: Arc<AtomicBool>,
    ) -> (Arc<Steering>, Vec<Option<Receiver<Change>>>) {
        let knob = match plan.load {
            LoadPlan::Closed { .. } => Knob::Users,
            LoadPlan::Open { .. } => Knob::Rate,
        };
        let model = match (refusal(plan), &plan.load) {
            (Some(reason), _) => Model::Off { knob, reason },
            (
                None,
                LoadPlan::Closed {
                    population: Population::Spawn(spawn),
                    ..
                },
            ) => Model::Users {
                curve: UserCurve::from_spawn(spawn),
                // The profile's users and those `--max-users` planned beyond them.
                max: plan
                    .cores
                    .iter()
                    .map(|c| c.users.len() as u32)
                    .sum::<u32>()
                    .max(plan.users),
            },
            (None, LoadPlan::Open { curve, .. }) => Model::Rate {
                curve: curve.clone(),
            },
            (None, LoadPlan::Closed { .. }) => Model::Off {
                knob,
                reason: "this run's users cannot be steered".to_owned(),
            },
        };
        let mut senders = Vec::new();
        let receivers = plan
            .cores
            .iter()
            .map(|_| {
                if matches!(model, Model::Off { .. }) {
                    return None;
                }
                let (tx, rx) = channel();
                senders.push(tx);
                Some(rx)
            })
            .collect();
        let steering = Steering {
            inner: Mutex::new(Inner {
                model,
                cores: senders,
                changes: Vec::new(),
            }),
            clock,
            end_us: crate::clock::micros(plan.duration),
            stop,
        };
        (Arc::new(steering), receivers)
    }

    /// Why this run cannot be steered, if it cannot.
    pub fn refused(&self) -> Option<String> {
        match &self.lock().model {
            Model::Off { reason, .. } => Some(reason.clone()),
            _ => None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Checks `ask` against the run and, if it can apply, sends it to every core; returns the change
    /// as it will begin, or why it was refused.
    pub fn request(&self, ask: Ask) -> Result<ChangeView, Refusal> {
        self.request_at(ask, self.clock.now_us())
    }

    fn request_at(&self, ask: Ask, now_us: u64) -> Result<ChangeView, Refusal> {
        let mut inner = self.lock();
        let at_us = now_us.saturating_add(crate::clock::micros(LEAD));
        let at_s = at_us as f64 / 1e6;
        let (knob, from) = match &inner.model {
            Model::Off { reason, .. } => return Err(Refusal::conflict(reason.clone())),
            Model::Users { curve, max } => {
                if ask.knob != Knob::Users {
                    return Err(Refusal::bad(
                        "this run has a closed model: steer its users ({\"users\": N}), not an arrival rate",
                    ));
                }
                if ask.to > f64::from(*max) {
                    return Err(Refusal::conflict(format!(
                        "{} users is above this run's limit of {max}: start the run with --max-users {} (each core sets up room for its share at the start)",
                        ask.to, ask.to
                    )));
                }
                (Knob::Users, curve.at(at_s))
            }
            Model::Rate { curve } => {
                if ask.knob != Knob::Rate {
                    return Err(Refusal::bad(
                        "this run has an open model: steer its arrival rate ({\"rate\": R}), not users",
                    ));
                }
                (
                    Knob::Rate,
                    curve.rate_at(Duration::from_micros(at_us.min(self.end_us))),
                )
            }
        };
        if self.stop.load(Ordering::SeqCst) {
            return Err(Refusal::conflict(
                "the run is stopping: there is nothing left to steer",
            ));
        }
        if at_us >= self.end_us {
            return Err(Refusal::conflict(
                "the run is ending: there is nothing left to steer",
            ));
        }
        let ramp_s = match ask.ramp {
            Ramp::Seconds(s) => s,
            Ramp::PerSecond(r) => (ask.to - from).abs() / r,
        };
        if ramp_s > MAX_RAMP_S {
            return Err(Refusal::bad(format!(
                "that spawn rate makes a ramp of {ramp_s:.0} s; the longest is {MAX_RAMP_S} s"
            )));
        }
        let change = Change {
            at_us,
            knob,
            from,
            to: ask.to,
            ramp_us: (ramp_s * 1e6).round() as u64,
        };
        match &mut inner.model {
            Model::Users { curve, .. } => curve.steer(at_s, change.to, change.ramp_s()),
            Model::Rate { curve } => {
                *curve = curve.steered(
                    Duration::from_micros(at_us),
                    change.to,
                    Duration::from_micros(change.ramp_us),
                );
            }
            Model::Off { .. } => {}
        }
        // A core that has finished has dropped its end; the others still take the change.
        for core in &inner.cores {
            let _ = core.send(change);
        }
        inner.changes.push(change);
        Ok(change.view())
    }

    /// The steered target at `t` seconds, once the run has been steered (before, the plan's).
    pub fn target_at(&self, t: f64) -> Option<f64> {
        let inner = self.lock();
        if inner.changes.is_empty() {
            return None;
        }
        match &inner.model {
            Model::Users { curve, .. } => Some(f64::from(curve.wanted(t))),
            Model::Rate { curve } => Some(curve.rate_at(Duration::from_secs_f64(t.max(0.0)))),
            Model::Off { .. } => None,
        }
    }

    /// What the dashboard shows now.
    pub fn status(&self) -> SteerStatus {
        self.status_at(self.clock.now_us())
    }

    fn status_at(&self, now_us: u64) -> SteerStatus {
        let inner = self.lock();
        let now_s = now_us as f64 / 1e6;
        let stopping = self.stop.load(Ordering::SeqCst);
        let ending = now_us.saturating_add(crate::clock::micros(LEAD)) >= self.end_us;
        let (knob, max, target, reason) = match &inner.model {
            Model::Users { curve, max } => (Knob::Users, f64::from(*max), curve.at(now_s), None),
            Model::Rate { curve } => (
                Knob::Rate,
                MAX_RATE,
                curve.rate_at(Duration::from_micros(now_us.min(self.end_us))),
                None,
            ),
            Model::Off { knob, reason } => (*knob, 0.0, 0.0, Some(reason.clone())),
        };
        let reason = reason.or_else(|| {
            if stopping {
                Some("the run is stopping".to_owned())
            } else if ending {
                Some("the run is ending".to_owned())
            } else {
                None
            }
        });
        let ramping = inner.changes.last().and_then(|c| {
            let (start, end) = (c.at_s(), c.at_s() + c.ramp_s());
            (now_s < end).then(|| Ramping {
                change: c.view(),
                progress: if c.ramp_us == 0 || now_s <= start {
                    0.0
                } else {
                    ((now_s - start) / c.ramp_s()).clamp(0.0, 1.0)
                },
            })
        });
        SteerStatus {
            available: reason.is_none(),
            reason,
            knob,
            max,
            target: if knob == Knob::Users {
                target.max(0.0).ceil()
            } else {
                target
            },
            ramping,
            changes: inner.changes.iter().map(Change::view).collect(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::schedule::{Nanos, Spawn};

    fn fields(json: &str) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::from_str(json).unwrap() {
            serde_json::Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn requests_are_read_strictly() {
        let ok = [
            (
                r#"{"users": 50}"#,
                Ask {
                    knob: Knob::Users,
                    to: 50.0,
                    ramp: Ramp::Seconds(0.0),
                },
            ),
            (
                r#"{"users": 0, "ramp_s": 2.5}"#,
                Ask {
                    knob: Knob::Users,
                    to: 0.0,
                    ramp: Ramp::Seconds(2.5),
                },
            ),
            (
                r#"{"users": 8, "spawn_rate": 4}"#,
                Ask {
                    knob: Knob::Users,
                    to: 8.0,
                    ramp: Ramp::PerSecond(4.0),
                },
            ),
            (
                r#"{"rate": 120.5, "ramp_s": 10}"#,
                Ask {
                    knob: Knob::Rate,
                    to: 120.5,
                    ramp: Ramp::Seconds(10.0),
                },
            ),
        ];
        for (json, want) in ok {
            assert_eq!(parse(&fields(json)), Ok(want), "{json}");
        }
        let bad = [
            ("{}", "nothing to change"),
            (r#"{"users": -1}"#, "whole number"),
            (r#"{"users": 2.5}"#, "whole number"),
            (r#"{"users": "10"}"#, "whole number"),
            (r#"{"users": 4294967296}"#, "whole number"),
            (r#"{"users": 1, "rate": 2}"#, "not both"),
            (r#"{"rate": 0}"#, "above 0"),
            (r#"{"rate": 1e9}"#, "at most"),
            (r#"{"rate": "x"}"#, "must be a number"),
            (r#"{"users": 5, "ramp_s": -1}"#, "from 0 to"),
            (r#"{"users": 5, "ramp_s": 1e6}"#, "from 0 to"),
            (r#"{"users": 5, "ramp_s": 1, "spawn_rate": 2}"#, "not both"),
            (r#"{"users": 5, "spawn_rate": 0}"#, "above 0"),
            (r#"{"rate": 5, "spawn_rate": 2}"#, "ramp_s"),
            (r#"{"users": 5, "userz": 1}"#, "unknown field \"userz\""),
        ];
        for (json, want) in bad {
            let err = parse(&fields(json)).unwrap_err();
            assert!(err.contains(want), "{json}: {err}");
        }
    }

    #[test]
    fn a_user_curve_reproduces_the_spawn_ramp_and_then_the_changes() {
        let spawn = Spawn {
            users: 10,
            rate: Some(5.0),
        };
        let mut curve = UserCurve::from_spawn(&spawn);
        let end = Nanos::from_duration(Duration::from_secs(60));
        // Before any change: user n from n / 5 s on, as the spawn schedule says.
        for n in 0..10 {
            let (start, stop) = curve.next_span(n, Nanos(0)).unwrap();
            assert_eq!(
                Duration::from_nanos(start.0),
                spawn.spawn_at(n).unwrap(),
                "user {n}"
            );
            assert!(stop >= end);
        }
        assert!(curve.next_span(10, Nanos(0)).is_none());
        assert_eq!(curve.wanted(1.0), 5);
        // Up to 20 over 5 s from t = 10 s: user 10 + i from 10 + i/2 s.
        curve.steer(10.0, 20.0, 5.0);
        assert_eq!(curve.wanted(10.0), 10);
        assert_eq!(curve.wanted(12.5), 15);
        assert_eq!(curve.wanted(30.0), 20);
        let at = |n: u32| curve.next_span(n, Nanos(0)).map(|(s, _)| s.0 as f64 / 1e9);
        assert_eq!(at(14), Some(12.0));
        assert_eq!(at(19), Some(14.5));
        assert_eq!(at(20), None);
        // Down to 4 at once from t = 20 s: users 4.. stop then; users 0..4 run on.
        curve.steer(20.0, 4.0, 0.0);
        let after = Nanos::from_duration(Duration::from_secs(15));
        let (_, stop) = curve.next_span(7, after).unwrap();
        assert_eq!(stop.0, 20_000_000_000);
        let (_, stop) = curve.next_span(3, after).unwrap();
        assert!(stop >= end);
        assert!(
            curve
                .next_span(7, Nanos::from_duration(Duration::from_secs(21)))
                .is_none()
        );
        // A change during a ramp starts from where the ramp had got to.
        let mut mid = UserCurve::from_spawn(&spawn);
        mid.steer(1.0, 0.0, 2.0);
        assert_eq!(mid.at(1.0), 5.0);
        assert_eq!(mid.at(2.0), 2.5);
        assert_eq!(mid.wanted(3.0), 0);
    }

    #[test]
    fn a_steered_rate_keeps_the_arrivals_before_the_change() {
        let curve = RateCurve::constant(100.0, Duration::from_secs(10));
        let steered = curve.steered(Duration::from_secs(2), 300.0, Duration::from_secs(2));
        for n in 0..200 {
            assert_eq!(curve.arrival(n), steered.arrival(n), "arrival {n}");
        }
        assert_eq!(steered.duration(), curve.duration());
        assert!((steered.rate_at(Duration::from_secs(3)) - 200.0).abs() < 1e-9);
        assert!((steered.rate_at(Duration::from_secs(6)) - 300.0).abs() < 1e-9);
        // 200 before, 400 in the ramp, 300/s for the last 6 s.
        assert_eq!(steered.arrivals(), 200 + 400 + 1800);
        // A ramp past the end stops where it got to.
        let late = curve.steered(Duration::from_secs(9), 300.0, Duration::from_secs(4));
        assert!((late.rate_at(Duration::from_secs(10)) - 150.0).abs() < 1e-9);
        assert_eq!(late.duration(), curve.duration());
    }

    /// A plan of two cores for a profile whose load is `load`.
    pub(crate) fn plan_for(load: &str, max_users: Option<u32>) -> Plan {
        let text = format!(
            r#"(name: "t", host: "http://127.0.0.1:9", load: {load},
                users: [(name: "a", weight: 2, tasks: [(requests: [(path: "/")])]),
                        (name: "b", weight: 1, tasks: [(requests: [(path: "/b")])])])"#
        );
        let spec = crate::profile::load_str(&text, std::path::Path::new("t.ron")).unwrap();
        let mut args = crate::cli::RunArgs {
            cores: Some(2),
            ..crate::cli::RunArgs::default()
        };
        args.live.max_users = max_users;
        let env = crate::plan::PlanEnv {
            cpus: vec![0, 1],
            ..crate::plan::PlanEnv::default()
        };
        Plan::resolve(spec, &args, &env).unwrap()
    }

    fn steering(load: &str) -> (Arc<Steering>, Vec<Option<Receiver<Change>>>) {
        let plan = plan_for(load, None);
        Steering::new(
            &plan,
            Clock::start_in(Duration::ZERO),
            Arc::new(AtomicBool::new(false)),
        )
    }

    #[test]
    fn max_users_plans_dormant_users_dealt_like_the_others() {
        let plan = plan_for(
            "Closed(users: 3, spawn_rate: 5, duration: \"60s\")",
            Some(7),
        );
        let globals: Vec<Vec<u32>> = plan
            .cores
            .iter()
            .map(|c| c.users.iter().map(|u| u.global).collect())
            .collect();
        assert_eq!(globals, [vec![0, 2, 4, 6], vec![1, 3, 5]]);
        let kinds: Vec<usize> = (0..7)
            .map(|g| plan.cores[g % 2].users[g / 2].kind)
            .collect();
        assert_eq!(kinds, crate::schedule::assign_kinds(&[2, 1], 7));
        for u in plan.cores.iter().flat_map(|c| &c.users) {
            assert_eq!(u.spawn_at == Duration::MAX, u.global >= 3, "{u:?}");
        }
        let (s, _) = Steering::new(
            &plan,
            Clock::start_in(Duration::ZERO),
            Arc::new(AtomicBool::new(false)),
        );
        assert_eq!(s.status_at(0).max, 7.0);
        // A run that cannot be steered plans no room for more users.
        let staged = plan_for("Stages(stages: [(users: 5, over: \"10s\")])", Some(9));
        let planned: usize = staged.cores.iter().map(|c| c.users.len()).sum();
        assert_eq!(planned, 5);
    }

    #[test]
    fn changes_go_to_every_core_with_their_start_and_are_refused_with_a_reason() {
        let (s, rx) = steering("Closed(users: 10, spawn_rate: 5, duration: \"60s\")");
        assert!(rx.iter().all(Option::is_some));
        let ask = |to: f64| Ask {
            knob: Knob::Users,
            to,
            ramp: Ramp::PerSecond(2.0),
        };
        let change = s.request_at(ask(6.0), 3_000_000).unwrap();
        assert_eq!(change.at_s, 3.1);
        assert_eq!((change.from, change.to), (10.0, 6.0));
        assert_eq!(change.ramp_s, 2.0);
        for r in rx.iter().flatten() {
            let got = r.try_recv().unwrap();
            assert_eq!(got.at_us, 3_100_000);
            assert_eq!(got.ramp_us, 2_000_000);
        }
        let status = s.status_at(4_100_000);
        assert_eq!(status.target, 8.0);
        assert!((status.ramping.unwrap().progress - 0.5).abs() < 1e-9);
        assert_eq!(status.changes.len(), 1);
        assert_eq!(s.target_at(10.0), Some(6.0));

        let over = s.request_at(ask(11.0), 5_000_000).unwrap_err();
        assert_eq!(over.status, 409);
        assert!(over.error.contains("--max-users 11"), "{}", over.error);
        let wrong = s
            .request_at(
                Ask {
                    knob: Knob::Rate,
                    to: 5.0,
                    ramp: Ramp::Seconds(0.0),
                },
                5_000_000,
            )
            .unwrap_err();
        assert_eq!(wrong.status, 400);
        let late = s.request_at(ask(5.0), 59_950_000).unwrap_err();
        assert_eq!(late.status, 409);
        assert!(late.error.contains("ending"), "{}", late.error);
        s.stop.store(true, Ordering::SeqCst);
        let stopping = s.request_at(ask(5.0), 6_000_000).unwrap_err();
        assert!(stopping.error.contains("stopping"), "{}", stopping.error);
        assert!(!s.status_at(6_000_000).available);

        let (staged, rx) = steering("Stages(stages: [(users: 5, over: \"10s\")])");
        assert!(rx.iter().all(Option::is_none));
        let refused = staged.request_at(ask(3.0), 1_000_000).unwrap_err();
        assert_eq!(refused.status, 409);
        assert!(refused.error.contains("Stages"), "{}", refused.error);
        let status = staged.status_at(1_000_000);
        assert!(!status.available && status.reason.unwrap().contains("Stages"));

        let (open, _) = steering("Open(rate: 100, duration: \"60s\", max_users: 10)");
        let change = open
            .request_at(
                Ask {
                    knob: Knob::Rate,
                    to: 250.0,
                    ramp: Ramp::Seconds(5.0),
                },
                1_000_000,
            )
            .unwrap();
        assert_eq!((change.from, change.to), (100.0, 250.0));
        let (ramping, _) = steering(
            "RampingRate(start_rate: 1, stages: [(to: 10, over: \"60s\")], max_users: 10)",
        );
        assert!(ramping.status_at(0).reason.unwrap().contains("RampingRate"));
    }
}
