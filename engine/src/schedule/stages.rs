//! A closed model's target population as a curve: the profile's `Stages([...])`, and the curve of a
//! run that was steered; user `k` is wanted while the target is above `k`.

use std::time::Duration;

use super::{Nanos, Spawn};

/// A closed model's target population over time (`Stages([(users: 100, over: "30s"), ...])`, like
/// Locust's LoadTestShape or k6's ramping-vus): starting from zero, each stage moves the target
/// linearly to its user count over its duration; a stage of length zero jumps.
///
/// User `k` (counted across cores, from 0) is wanted while the target is above `k`. So users start in
/// index order as the target rises (user `k` when it reaches `k`, as [`Spawn`] starts them) and stop
/// newest first as it falls; a user stopped on the way down starts again if the target rises again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserStages {
    /// `(target users, over)` in order.
    pub stages: Vec<(u32, Duration)>,
}

impl UserStages {
    /// The sum of the stages.
    pub fn duration(&self) -> Duration {
        self.stages
            .iter()
            .fold(Duration::ZERO, |d, &(_, over)| d.saturating_add(over))
    }

    /// The largest target: how many distinct users the run needs.
    pub fn max_users(&self) -> u32 {
        self.stages.iter().map(|&(u, _)| u).max().unwrap_or(0)
    }

    /// The first span `[start, stop)` with `stop > after` during which user `user` is wanted, clipped to
    /// start no earlier than `after`; `None` if the user is not wanted again. A span still open when the
    /// stages end stops at their end.
    pub fn next_span(&self, user: u32, after: Nanos) -> Option<(Nanos, Nanos)> {
        target_next_span(
            self.stages
                .iter()
                .map(|&(users, over)| (f64::from(users), over.as_secs_f64())),
            user,
            after,
            false,
        )
    }
}

/// The first span `[start, stop)` with `stop > after` during which user `user` is wanted by a target
/// that starts at zero users at time zero and moves linearly through `stages` (target users, length
/// in seconds; a stage of length zero jumps), clipped to start no earlier than `after`. A span still
/// open when the stages end stops at their end, or with `hold` never stops (the last target holds).
fn target_next_span(
    stages: impl IntoIterator<Item = (f64, f64)>,
    user: u32,
    after: Nanos,
    hold: bool,
) -> Option<(Nanos, Nanos)> {
    let k = f64::from(user);
    let after_s = after.as_secs_f64();
    let mut start: Option<f64> = None;
    let (mut t0, mut u0) = (0.0f64, 0.0f64);
    for (u1, len) in stages {
        let t1 = t0 + len;
        // Whether the user is wanted just after t0 and just before t1, and when the target crosses k.
        let (begins, ends) = (u0 > k || (u0 == k && u1 > k), u1 > k);
        let crossing = if u1 == u0 || len == 0.0 {
            t0
        } else {
            t0 + (k - u0) / (u1 - u0) * len
        };
        if !begins && let Some(s) = start.take() {
            // Not wanted at the start of this stage: an open span ended at its start.
            if let Some(found) = clipped(s, t0, after_s) {
                return Some(found);
            }
        }
        match (begins, ends) {
            (true, true) => start = start.or(Some(t0)),
            (false, true) => start = Some(crossing),
            (true, false) => {
                // Wanted until the crossing.
                if let Some(found) = clipped(start.take().unwrap_or(t0), crossing, after_s) {
                    return Some(found);
                }
            }
            (false, false) => {}
        }
        (t0, u0) = (t1, u1);
    }
    let stop = if hold { f64::MAX } else { t0 };
    start.and_then(|s| clipped(s, stop, after_s))
}

/// A closed model's target users once the run was steered (docs/live.md): piecewise linear from
/// zero at time zero, the last target holding until the end of the run. The profile's
/// `Closed(users, spawn_rate)` is its first stage (the spawn ramp), and each change cuts the curve where
/// it begins and adds its ramp. User `k` is wanted while the target is above `k`, as in [`UserStages`].
#[derive(Debug, Clone, PartialEq)]
pub struct UserCurve {
    /// `(target users, length in seconds)` in order, from zero users at time zero.
    pub(super) stages: Vec<(f64, f64)>,
}

impl UserCurve {
    /// The curve of `Closed(users, spawn_rate)`: user `n` is wanted from `n / rate` on.
    pub fn from_spawn(spawn: &Spawn) -> UserCurve {
        let users = f64::from(spawn.users);
        let len = match spawn.rate {
            Some(r) if r.is_finite() && r > 0.0 => users / r,
            _ => 0.0,
        };
        UserCurve {
            stages: vec![(users, len)],
        }
    }

    /// The target at `t` seconds: fractional during a ramp; [`UserCurve::wanted`] is whole users.
    pub fn at(&self, t: f64) -> f64 {
        let (mut t0, mut u0) = (0.0f64, 0.0f64);
        for &(u1, len) in &self.stages {
            if t < t0 + len {
                return u0 + (u1 - u0) * ((t - t0) / len).max(0.0);
            }
            (t0, u0) = (t0 + len, u1);
        }
        u0
    }

    /// How many users are wanted at `t` seconds (user `k` is while the target is above `k`).
    pub fn wanted(&self, t: f64) -> u32 {
        self.at(t).max(0.0).ceil().min(f64::from(u32::MAX)) as u32
    }

    /// From `at` seconds on, the target moves linearly from where it is to `to` over `ramp` seconds,
    /// then stays there; what the curve said after `at` is forgotten.
    pub fn steer(&mut self, at: f64, to: f64, ramp: f64) {
        let from = self.at(at);
        let mut kept = Vec::with_capacity(self.stages.len() + 3);
        let mut t0 = 0.0;
        for &(u1, len) in &self.stages {
            if t0 + len <= at {
                kept.push((u1, len));
                t0 += len;
            } else {
                break;
            }
        }
        // The stage in progress at `at`, cut there; then a hold up to `at` if the stages ended before.
        if at > t0 {
            kept.push((from, at - t0));
        }
        kept.push((to, ramp.max(0.0)));
        self.stages = kept;
    }

    /// The first span of `user` that ends after `after`, clipped to start no earlier.
    pub fn next_span(&self, user: u32, after: Nanos) -> Option<(Nanos, Nanos)> {
        target_next_span(self.stages.iter().copied(), user, after, true)
    }
}

/// The span `[start, stop)` cut to begin no earlier than `after`, if anything of it is left.
fn clipped(start: f64, stop: f64, after: f64) -> Option<(Nanos, Nanos)> {
    if stop <= after {
        return None;
    }
    span(start.max(after), stop)
}

/// A non-empty span in nanoseconds.
fn span(start: f64, stop: f64) -> Option<(Nanos, Nanos)> {
    let (a, b) = (Nanos::from_secs_f64(start), Nanos::from_secs_f64(stop));
    (b > a).then_some((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::testing::{ms, secs};

    /// When closed-model user k is wanted under Stages. Rows: (stages, user, after, expected span).
    #[test]
    fn user_stages_table() {
        let st = |stages: &[(u32, u64)]| UserStages {
            stages: stages.iter().map(|&(u, s)| (u, secs(s))).collect(),
        };
        let up_hold_down = st(&[(10, 10), (10, 10), (0, 10)]);
        type Row = (UserStages, u32, Nanos, Option<(Nanos, Nanos)>);
        #[rustfmt::skip]
        let rows: Vec<Row> = vec![
            // Ramp 0 -> 10 over 10 s: user k starts when the target reaches k (k s), as Spawn would at
            // 1 user/s; the ramp down stops the newest first: user 9 when the target falls to 9 (21 s).
            (up_hold_down.clone(), 0, Nanos(0), Some((ms(0), ms(30_000)))),
            (
                up_hold_down.clone(),
                9,
                Nanos(0),
                Some((ms(9_000), ms(21_000))),
            ),
            (
                up_hold_down.clone(),
                5,
                Nanos(0),
                Some((ms(5_000), ms(25_000))),
            ),
            // Asked from the middle of the span: clipped to start then.
            (
                up_hold_down.clone(),
                5,
                ms(12_000),
                Some((ms(12_000), ms(25_000))),
            ),
            // After its span: never again.
            (up_hold_down.clone(), 5, ms(25_000), None),
            // Beyond the peak: never wanted.
            (up_hold_down.clone(), 10, Nanos(0), None),
            // A jump (length-zero stage) to 3 users, hold 5 s, then down to 1 instantly, hold, then up
            // to 3 again: user 2 runs twice.
            (
                st(&[(3, 0), (3, 5), (1, 0), (1, 5), (3, 0), (3, 5)]),
                2,
                Nanos(0),
                Some((ms(0), ms(5_000))),
            ),
            (
                st(&[(3, 0), (3, 5), (1, 0), (1, 5), (3, 0), (3, 5)]),
                2,
                ms(5_000),
                Some((ms(10_000), ms(15_000))),
            ),
            (
                st(&[(3, 0), (3, 5), (1, 0), (1, 5), (3, 0), (3, 5)]),
                0,
                ms(1_000),
                Some((ms(1_000), ms(15_000))),
            ),
            // No stages, or zero users throughout: nobody.
            (st(&[]), 0, Nanos(0), None),
            (st(&[(0, 10)]), 0, Nanos(0), None),
            // Stage edge: a hold at exactly k users does not want user k.
            (st(&[(2, 2), (2, 2)]), 2, Nanos(0), None),
            (
                st(&[(2, 2), (2, 2)]),
                1,
                Nanos(0),
                Some((ms(1_000), ms(4_000))),
            ),
        ];
        for (i, (stages, user, after, want)) in rows.into_iter().enumerate() {
            assert_eq!(stages.next_span(user, after), want, "row {i}");
        }
        assert_eq!(up_hold_down.max_users(), 10);
        assert_eq!(up_hold_down.duration(), secs(30));
    }
}
