//! What the dashboard shows about steering: whether a change can be asked for, the target now, the
//! ramp in progress and the changes so far.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Serialize;

use super::steering::Model;
use super::{Change, ChangeView, Knob, LEAD, MAX_RATE, Steering};

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

impl Steering {
    /// What the dashboard shows now.
    pub fn status(&self) -> SteerStatus {
        self.status_at(self.clock.now_us())
    }

    pub(super) fn status_at(&self, now_us: u64) -> SteerStatus {
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
