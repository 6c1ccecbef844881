//! The open model's arrival rate over time: when the `n`-th run-wide arrival is due, and the curve a
//! steered run moves to.

use std::time::Duration;

use super::Nanos;

/// An arrival rate over time (iterations per second, run-wide), piecewise linear: the open model's
/// `Open(rate, duration)` is one flat stage, `RampingRate(start, stages)` one linear stage per entry.
///
/// Arrival `n` (from 0) is due when the expected number of arrivals so far, the integral of the rate,
/// reaches `n`; so arrival 0 is at time zero when the rate starts above zero, and a constant rate `r`
/// puts arrival `n` at exactly `n / r`, as vegeta's pacer and wrk2 do. A run of length `D` has
/// `ceil(integral over [0, D))` arrivals: 10/s for 1 s is arrivals 0..=9, the last at 900 ms.
#[derive(Debug, Clone, PartialEq)]
pub struct RateCurve {
    segments: Vec<RateSegment>,
    duration: Nanos,
    /// Expected arrivals over the whole curve.
    total: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct RateSegment {
    /// Start, seconds since time zero.
    t0: f64,
    /// Length, seconds.
    len: f64,
    /// Rate at the start and at the end, per second.
    r0: f64,
    r1: f64,
    /// Expected arrivals before `t0`.
    n0: f64,
    /// Expected arrivals within the segment.
    count: f64,
}

impl RateCurve {
    /// `rate` per second for `duration`.
    pub fn constant(rate: f64, duration: Duration) -> RateCurve {
        RateCurve::ramps(rate, &[(rate, duration)])
    }

    /// Starts at `start` per second; each stage moves linearly to its rate over its duration. A stage of
    /// length zero jumps. Negative or non-finite rates (which a valid plan never has) count as zero.
    pub fn ramps(start: f64, stages: &[(f64, Duration)]) -> RateCurve {
        let clean = |r: f64| if r.is_finite() && r > 0.0 { r } else { 0.0 };
        let mut segments = Vec::with_capacity(stages.len());
        let (mut t, mut n, mut r) = (0.0, 0.0, clean(start));
        let mut duration = Nanos(0);
        for &(to, over) in stages {
            let to = clean(to);
            let len = over.as_secs_f64();
            let count = (r + to) / 2.0 * len;
            segments.push(RateSegment {
                t0: t,
                len,
                r0: r,
                r1: to,
                n0: n,
                count,
            });
            t += len;
            n += count;
            r = to;
            duration = Nanos(duration.0.saturating_add(Nanos::from_duration(over).0));
        }
        RateCurve {
            segments,
            duration,
            total: n,
        }
    }

    /// The curve's length.
    pub fn duration(&self) -> Duration {
        Duration::from_nanos(self.duration.0)
    }

    /// How many arrivals the whole curve makes: `ceil(integral)`, saturating.
    pub fn arrivals(&self) -> u64 {
        let c = self.total.ceil();
        if c >= u64::MAX as f64 {
            u64::MAX
        } else {
            c as u64
        }
    }

    /// When run-wide arrival `n` is due; `None` if the curve ends first.
    pub fn arrival(&self, n: u64) -> Option<Nanos> {
        let target = n as f64;
        if target >= self.total {
            return None;
        }
        // The last segment whose start comes at or before the target count and that makes arrivals
        // (flat zero-rate stretches contain no arrival; their neighbours own the boundary).
        let i = self
            .segments
            .partition_point(|s| s.n0 <= target)
            .checked_sub(1)?;
        let seg = self.segments[..=i]
            .iter()
            .rev()
            .find(|s| s.count > 0.0)
            .copied()?;
        let m = (target - seg.n0).max(0.0);
        // Solve r0·τ + (r1 - r0)·τ²/(2·len) = m for τ in [0, len]. Written as 2m / (b + sqrt(b² + 4am)),
        // which has no cancellation when the ramp is nearly flat and is exactly m / r0 when it is flat.
        let a = if seg.len > 0.0 {
            (seg.r1 - seg.r0) / (2.0 * seg.len)
        } else {
            0.0
        };
        let b = seg.r0;
        let disc = (b * b + 4.0 * a * m).max(0.0);
        let denominator = b + disc.sqrt();
        let tau = if m == 0.0 {
            0.0
        } else if denominator > 0.0 {
            (2.0 * m / denominator).min(seg.len)
        } else {
            seg.len
        };
        let at = Nanos::from_secs_f64(seg.t0 + tau);
        // Rounding must not push an arrival past the end of the run.
        (at < self.duration).then_some(at)
    }

    /// The curve steered at `at`: the same up to `at`, then moving linearly from the rate there to `to`
    /// over `ramp`, then flat until the curve's end (steering a run, docs/live.md). Every arrival due before `at`
    /// keeps its number and time, so cores that each steer their copy at the same instant still deal
    /// the run's arrivals as one sequence.
    pub fn steered(&self, at: Duration, to: f64, ramp: Duration) -> RateCurve {
        let clean = |r: f64| if r.is_finite() && r > 0.0 { r } else { 0.0 };
        let to = clean(to);
        let end = self.duration().as_secs_f64();
        let at_s = at.as_secs_f64().min(end);
        let from = self.rate_at(at);
        let mut segments = Vec::with_capacity(self.segments.len() + 2);
        let (mut t, mut n) = (0.0, 0.0);
        for seg in &self.segments {
            if seg.t0 + seg.len <= at_s {
                segments.push(*seg);
                (t, n) = (seg.t0 + seg.len, seg.n0 + seg.count);
            } else {
                break;
            }
        }
        let push = |segments: &mut Vec<RateSegment>, t: &mut f64, n: &mut f64, r0, r1, len| {
            let count = (r0 + r1) / 2.0 * len;
            segments.push(RateSegment {
                t0: *t,
                len,
                r0,
                r1,
                n0: *n,
                count,
            });
            (*t, *n) = (*t + len, *n + count);
        };
        // The segment in progress at `at`, cut there (or the flat end of a curve that had ended).
        if at_s > t {
            let r0 = self.rate_at(Duration::from_secs_f64(t));
            let len = at_s - t;
            push(&mut segments, &mut t, &mut n, r0, from, len);
        }
        let ramp_s = ramp.as_secs_f64().max(0.0);
        let left = (end - at_s).max(0.0);
        if ramp_s >= left {
            // The run ends during the ramp: it stops where the ramp has got to.
            let reached = if ramp_s > 0.0 {
                from + (to - from) * (left / ramp_s)
            } else {
                to
            };
            push(&mut segments, &mut t, &mut n, from, reached, left);
        } else {
            push(&mut segments, &mut t, &mut n, from, to, ramp_s);
            let rest = left - ramp_s;
            push(&mut segments, &mut t, &mut n, to, to, rest);
        }
        RateCurve {
            segments,
            duration: self.duration,
            total: n,
        }
    }

    /// Whether the rate never changes (the profile's `Open(rate, duration)`).
    pub fn is_constant(&self) -> bool {
        self.segments.iter().all(|s| s.r0 == s.r1)
            && self.segments.windows(2).all(|w| w[0].r1 == w[1].r0)
    }

    /// The rate at time `t`, per second (for console and docs; the schedule never needs it).
    pub fn rate_at(&self, t: Duration) -> f64 {
        let t = t.as_secs_f64();
        self.segments
            .iter()
            .rev()
            .find(|s| s.t0 <= t)
            .map_or(0.0, |s| {
                if s.len > 0.0 {
                    s.r0 + (s.r1 - s.r0) * ((t - s.t0) / s.len).min(1.0)
                } else {
                    s.r1
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::testing::secs;

    #[test]
    fn rate_curve_counts_and_rates() {
        let c = RateCurve::ramps(0.0, &[(1000.0, secs(60)), (5000.0, secs(300))]);
        assert_eq!(c.duration(), secs(360));
        // 30 000 in the first minute, 900 000 in the next five.
        assert_eq!(c.arrivals(), 930_000);
        assert!((c.rate_at(secs(30)) - 500.0).abs() < 1e-9);
        assert!((c.rate_at(secs(210)) - 3000.0).abs() < 1e-9);
    }
}
