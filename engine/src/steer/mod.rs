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
//! **Closed model.** The target becomes a curve ([`crate::schedule::UserCurve`]): the profile's
//! spawn ramp, then each change's ramp from where the target was. User `k` of the run is wanted
//! while the target is above `k`, as with `Stages`: users start in index order as it rises (through
//! the same spawn machinery) and stop newest first as it falls, each finishing its iteration and
//! running its on_stop. Users above the profile's count exist only when the run was started with
//! `--max-users`, which sets up their slots at the start (nothing is allocated on a core while it
//! runs).
//!
//! **Open model.** The arrival curve is cut where the change begins and ramps linearly to the new
//! rate ([`crate::schedule::RateCurve::steered`]); arrivals keep their run-wide numbers, so the cores
//! still deal one sequence of arrivals between them.
//!
//! `ask` reads a change from the request's body, `steering` checks it against the run and sends it to
//! the cores, and `status` is what the dashboard shows about it.

mod ask;
mod status;
mod steering;
#[cfg(test)]
pub(crate) mod tests;

use std::time::Duration;

use serde::Serialize;

pub(crate) use ask::{Ask, Ramp, parse};
pub(crate) use status::SteerStatus;
pub(crate) use steering::Steering;

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
