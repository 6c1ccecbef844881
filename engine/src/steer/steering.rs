//! The coordinator's side of steering: whether the run can be steered at all, and each change checked
//! against the run, stamped, applied to the run-wide curve and sent to every core.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::{Ask, Change, ChangeView, Knob, LEAD, MAX_RAMP_S, Ramp};
use crate::clock::Clock;
use crate::plan::{LoadPlan, Plan};
use crate::schedule::{Population, RateCurve, UserCurve};

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
pub(super) enum Model {
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
pub(super) struct Inner {
    pub(super) model: Model,
    cores: Vec<Sender<Change>>,
    pub(super) changes: Vec<Change>,
}

/// The coordinator's side of steering, shared by the HTTP threads and the hub (never by a core).
#[derive(Debug)]
pub(crate) struct Steering {
    inner: Mutex<Inner>,
    pub(super) clock: Clock,
    pub(super) end_us: u64,
    pub(super) stop: Arc<AtomicBool>,
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

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Checks `ask` against the run and, if it can apply, sends it to every core; returns the change
    /// as it will begin, or why it was refused.
    pub fn request(&self, ask: Ask) -> Result<ChangeView, Refusal> {
        self.request_at(ask, self.clock.now_us())
    }

    pub(super) fn request_at(&self, ask: Ask, now_us: u64) -> Result<ChangeView, Refusal> {
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
}
