//! When things should happen, as pure functions of their inputs. No clock is read here: callers pass in
//! indexes and random numbers, so every rule is table-tested.
//!
//! Latency is measured from the intended start these functions give (see `users`): a user that
//! should have started at `t` but ran late still has its latency counted from `t`.
//!
//! | model | function | what it answers |
//! |---|---|---|
//! | closed, `Closed(users, spawn_rate)` | [`Spawn::spawn_at`] | when user `n` starts |
//! | closed, `Stages([...])` | [`UserStages::next_span`] | when user `n` is wanted, from when to when |
//! | closed, `wait: Pacing(d)` | [`paced`] | when a paced user's `k`-th iteration is due |
//! | open, `Open` / `RampingRate` | [`RateCurve::arrival`], [`CoreArrivals::intended_start`] | when the `n`-th arrival (run-wide, or of one core) is due |
//!
//! Arrivals are dealt to cores round-robin by their run-wide index (core `c` of `C` takes arrivals
//! `c, c + C, c + 2C, ...`), so the union of every core's arrivals is exactly the run's schedule,
//! whatever the rate and however it divides by the core count; the same rule deals closed users and
//! data rows. A test spread over several engines (shards) deals first to shards, then within each
//! shard to its cores ([`Seat`]), so N shards of C cores deal exactly as one engine of N × C cores.

use std::time::Duration;

use crate::plan::Wait;

/// Nanoseconds since the run's time zero: the unit of every intended start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Nanos(pub u64);

impl Nanos {
    /// `d` in nanoseconds, saturating at `u64::MAX` (about 584 years).
    pub fn from_duration(d: Duration) -> Nanos {
        Nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    /// Whole microseconds, rounded down (the sample log's unit). Rounding both the intended and the
    /// actual start down keeps `intended <= actual` whenever it holds in nanoseconds.
    pub fn as_micros(self) -> u64 {
        self.0 / 1000
    }

    /// Seconds (with a fraction), converted from `f64` seconds: rounded to the nearest nanosecond and
    /// saturated, so that `0.003 s` is exactly 3 ms rather than 2 999 999 ns.
    fn from_secs_f64(secs: f64) -> Nanos {
        let ns = (secs * 1e9).round();
        if ns.is_nan() || ns <= 0.0 {
            Nanos(0)
        } else if ns >= u64::MAX as f64 {
            Nanos(u64::MAX)
        } else {
            Nanos(ns as u64)
        }
    }

    fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
}

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

/// Where one engine thread sits when a test's users, arrivals and data rows are dealt: core `core` of
/// `cores` in shard `shard` of `shards` (a test run by one engine is shard 0 of 1).
///
/// Items are dealt round-robin by their run-wide index, first to shards, then within a shard to its
/// cores: item `n` goes to shard `n % shards` as that shard's item `m = n / shards`, and item `m` of a
/// shard goes to core `m % cores` as its item `m / cores`. When every shard has the same core count,
/// this is exactly the round-robin deal of one engine with `shards × cores` cores, shard `s`'s core
/// `c` being that engine's core `s + shards × c` (because `n mod NC = n mod N + N × ((n div N) mod C)`).
/// When shards have different core counts, each still deals only its own residue class, so the shards
/// together still take every item exactly once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Seat {
    /// The shard, `< shards`.
    pub shard: u32,
    /// Engines running the test together (at least 1).
    pub shards: u32,
    /// The engine thread within the shard, `< cores`.
    pub core: u32,
    /// Engine threads of this shard (at least 1).
    pub cores: u32,
}

impl Seat {
    /// Core `core` of `cores` of a test run by one engine.
    pub fn single(core: u32, cores: u32) -> Seat {
        Seat {
            shard: 0,
            shards: 1,
            core,
            cores,
        }
    }

    /// The run-wide index of this seat's `k`-th item (from 0); `None` past `u64::MAX`.
    pub fn item(&self, k: u64) -> Option<u64> {
        k.checked_mul(u64::from(self.cores.max(1)))?
            .checked_add(u64::from(self.core))?
            .checked_mul(u64::from(self.shards.max(1)))?
            .checked_add(u64::from(self.shard))
    }

    /// How many of the run-wide items `0..n` this seat gets.
    pub fn count_of(&self, n: u64) -> u64 {
        let shard_items = crate::plan::share(n, self.shards, self.shard);
        crate::plan::share(shard_items, self.cores, self.core)
    }

    /// This seat's place among all `shards × cores` seats, as `(index, seats)`: the core it would be in
    /// one engine of `shards × cores` cores (exact when every shard has this seat's core count).
    pub fn overall(&self) -> (u64, u64) {
        let shards = u64::from(self.shards.max(1));
        (
            u64::from(self.shard) + shards * u64::from(self.core),
            shards * u64::from(self.cores.max(1)),
        )
    }
}

/// Where run-wide item `n` is dealt among `shards` shards of `cores` cores each: `(shard, core, k)`,
/// the item being that seat's `k`-th ([`Seat::item`] is the inverse).
pub fn deal(n: u64, shards: u32, cores: u32) -> (u32, u32, u64) {
    let (shards, cores) = (u64::from(shards.max(1)), u64::from(cores.max(1)));
    let local = n / shards;
    // Both remainders are below a u32 count.
    ((n % shards) as u32, (local % cores) as u32, local / cores)
}

/// One core's share of an open model's arrivals: the run-wide arrivals its [`Seat`] is dealt
/// (`core, core + cores, ...` in a one-engine test), cut off after `limit` run-wide arrivals when the
/// profile limits iterations.
#[derive(Debug, Clone, PartialEq)]
pub struct CoreArrivals {
    /// The run-wide schedule.
    pub curve: RateCurve,
    /// This core's seat in the deal.
    pub seat: Seat,
    /// The run's iteration limit, counted over every core's arrivals (of every shard).
    pub limit: Option<u64>,
}

impl CoreArrivals {
    /// When this core's `seq`-th arrival is due (`seq` from 0); `None` once its share is exhausted.
    pub fn intended_start(&self, seq: u64) -> Option<Nanos> {
        let n = self.seat.item(seq)?;
        if self.limit.is_some_and(|limit| n >= limit) {
            return None;
        }
        self.curve.arrival(n)
    }
}

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
    stages: Vec<(f64, f64)>,
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

/// A closed model's users over time: each user is wanted during spans, and runs iterations in them.
#[derive(Debug, Clone, PartialEq)]
pub enum Population {
    /// `Closed(users, spawn_rate)`: user `n` from [`Spawn::spawn_at`] until the end.
    Spawn(Spawn),
    /// `Stages([...])`.
    Stages(UserStages),
    /// `Closed(users, spawn_rate)` after the run was steered: a target curve.
    Steered(UserCurve),
}

impl Population {
    /// The most users wanted at once: how many distinct users the run needs.
    pub fn users(&self) -> u32 {
        match self {
            Population::Spawn(s) => s.users,
            Population::Stages(s) => s.max_users(),
            Population::Steered(c) => c
                .stages
                .iter()
                .map(|&(u, _)| u.max(0.0).ceil().min(f64::from(u32::MAX)) as u32)
                .max()
                .unwrap_or(0),
        }
    }

    /// The first span of `user` that ends after `after`, clipped to start no earlier; a span that
    /// never stops on its own stops at `end`.
    pub fn next_span(&self, user: u32, after: Nanos, end: Nanos) -> Option<(Nanos, Nanos)> {
        let (start, stop) = match self {
            Population::Spawn(s) => (Nanos::from_duration(s.spawn_at(user)?), end),
            Population::Stages(s) => s.next_span(user, after)?,
            Population::Steered(c) => c.next_span(user, after)?,
        };
        let (start, stop) = (start.max(after), stop.min(end));
        (start < stop).then_some((start, stop))
    }
}

/// The intended start of a paced user's `k`-th iteration (from 0): on a fixed grid from its first
/// start, whatever the iterations took (Gatling's `pace`, LoadRunner's pacing). A user that overran
/// starts the next iteration at once, and its lateness is schedule lag that counts in corrected
/// latency, as wrk2 counts a late request.
pub fn paced(first: Nanos, pace: Duration, k: u64) -> Nanos {
    let step = Nanos::from_duration(pace).0;
    Nanos(first.0.saturating_add(step.saturating_mul(k)))
}

/// The closed model's spawn schedule: user `n` (counted across all cores) starts at `n / rate`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spawn {
    /// Users in total.
    pub users: u32,
    /// Users per second; `None` starts everyone at time zero.
    pub rate: Option<f64>,
}

impl Spawn {
    /// When user `n` starts, from the run's time zero; `None` past the last user.
    pub fn spawn_at(&self, n: u32) -> Option<Duration> {
        if n >= self.users {
            return None;
        }
        match self.rate {
            None => Some(Duration::ZERO),
            // Non-positive or non-finite rates never reach here (the plan refuses them); treat them as
            // "all at once" rather than dividing by zero.
            Some(r) if !(r.is_finite() && r > 0.0) => Some(Duration::ZERO),
            Some(r) => Some(Duration::try_from_secs_f64(f64::from(n) / r).unwrap_or(Duration::MAX)),
        }
    }
}

/// Think time for a random `unit` in [0, 1).
pub fn think(wait: Wait, unit: f64) -> Duration {
    match wait {
        Wait::None => Duration::ZERO,
        Wait::Constant(d) => d,
        // Paced users compute their next start with `paced` (on a grid from their start); between
        // iterations they do not think.
        Wait::Pacing(_) => Duration::ZERO,
        Wait::Between(min, max) => {
            let span = max.saturating_sub(min);
            min + span.mul_f64(unit.clamp(0.0, 1.0))
        }
    }
}

/// Deals `users` users to kinds by weight so that every prefix is as close as possible to the weights
/// (smooth weighted round-robin, as nginx balances upstreams). Zero weights get no users.
pub fn assign_kinds(weights: &[u32], users: u32) -> Vec<usize> {
    let total: i64 = weights.iter().map(|&w| i64::from(w)).sum();
    if total == 0 {
        return vec![0; users as usize];
    }
    let mut current = vec![0i64; weights.len()];
    (0..users)
        .map(|_| {
            for (c, &w) in current.iter_mut().zip(weights) {
                *c += i64::from(w);
            }
            let best = (0..weights.len())
                .max_by_key(|&i| (current[i], std::cmp::Reverse(i)))
                .unwrap_or(0);
            current[best] -= total;
            best
        })
        .collect()
}

/// Picks an index from `weights` for a random `r` in `0..sum(weights)`.
pub fn pick_weighted(weights: impl IntoIterator<Item = u32>, mut r: u32) -> usize {
    let mut last = 0;
    for (i, w) in weights.into_iter().enumerate() {
        if r < w {
            return i;
        }
        r -= w;
        if w > 0 {
            last = i;
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawn_table() {
        let ms = Duration::from_millis;
        let rows: &[(Spawn, u32, Option<Duration>)] = &[
            // No rate: everyone at time zero.
            (
                Spawn {
                    users: 3,
                    rate: None,
                },
                2,
                Some(ms(0)),
            ),
            // 10 users/s: the n-th user at n × 100 ms, starting with user 0 at zero.
            (
                Spawn {
                    users: 3,
                    rate: Some(10.0),
                },
                0,
                Some(ms(0)),
            ),
            (
                Spawn {
                    users: 3,
                    rate: Some(10.0),
                },
                2,
                Some(ms(200)),
            ),
            // Past the last user: nobody.
            (
                Spawn {
                    users: 3,
                    rate: Some(10.0),
                },
                3,
                None,
            ),
            // A fractional rate: one user every 2 s.
            (
                Spawn {
                    users: 5,
                    rate: Some(0.5),
                },
                4,
                Some(ms(8000)),
            ),
            // A rate of zero cannot come from a valid plan; it must not divide by zero.
            (
                Spawn {
                    users: 2,
                    rate: Some(0.0),
                },
                1,
                Some(ms(0)),
            ),
            // A tiny rate overflows Duration: saturate rather than panic.
            (
                Spawn {
                    users: u32::MAX,
                    rate: Some(1e-300),
                },
                u32::MAX - 1,
                Some(Duration::MAX),
            ),
        ];
        for (i, (spawn, n, want)) in rows.iter().enumerate() {
            assert_eq!(spawn.spawn_at(*n), *want, "row {i}");
        }
    }

    fn ms(n: u64) -> Nanos {
        Nanos(n * 1_000_000)
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// The intended start of the n-th arrival of one core, for open models. Each row is
    /// (rate curve, cores, core, limit, seq, expected).
    #[test]
    fn intended_start_table() {
        let flat = |rate: f64, d: u64| RateCurve::constant(rate, secs(d));
        let ramp = |start: f64, stages: &[(f64, Duration)]| RateCurve::ramps(start, stages);
        type Row = (RateCurve, u32, u32, Option<u64>, u64, Option<Nanos>);
        #[rustfmt::skip]
        let rows: Vec<Row> = vec![
            // 1000/s on one core: arrival n at exactly n ms, the first at time zero.
            (flat(1000.0, 1), 1, 0, None, 0, Some(ms(0))),
            (flat(1000.0, 1), 1, 0, None, 3, Some(ms(3))),
            // 1000/s for 1 s is 1000 arrivals: the last at 999 ms, none at the end itself.
            (flat(1000.0, 1), 1, 0, None, 999, Some(ms(999))),
            (flat(1000.0, 1), 1, 0, None, 1000, None),
            // Zero rate: no arrival at all, not one at time zero.
            (flat(0.0, 10), 1, 0, None, 0, None),
            // A rate that does not divide a second: 3/s puts arrival 1 at 333 333 333 ns (rounded), and
            // makes 3 arrivals in 1 s.
            (flat(3.0, 1), 1, 0, None, 1, Some(Nanos(333_333_333))),
            (flat(3.0, 1), 1, 0, None, 2, Some(Nanos(666_666_667))),
            (flat(3.0, 1), 1, 0, None, 3, None),
            // Two cores share 1000/s: core 1's arrival k is run-wide arrival 2k + 1.
            (flat(1000.0, 1), 2, 1, None, 0, Some(ms(1))),
            (flat(1000.0, 1), 2, 1, None, 499, Some(ms(999))),
            (flat(1000.0, 1), 2, 1, None, 500, None),
            // Three cores and 10/s for 1 s: 10 arrivals, so cores 0, 1, 2 get 4, 3 and 3.
            (flat(10.0, 1), 3, 0, None, 3, Some(ms(900))),
            (flat(10.0, 1), 3, 1, None, 2, Some(ms(700))),
            (flat(10.0, 1), 3, 1, None, 3, None),
            // Very low rate: one arrival every 1000 s; a 1 h run has 4 (0, 1000, 2000, 3000 s).
            (
                flat(0.001, 3600),
                1,
                0,
                None,
                3,
                Some(Nanos(3_000_000_000_000)),
            ),
            (flat(0.001, 3600), 1, 0, None, 4, None),
            // Very high rate: 1e9/s is one arrival per nanosecond.
            (
                flat(1e9, 1),
                1,
                0,
                None,
                123_456_789,
                Some(Nanos(123_456_789)),
            ),
            // A rate so low that nothing but arrival 0 fits, and overflow-sized seq numbers.
            (flat(1e-300, 1), 1, 0, None, 0, Some(ms(0))),
            (flat(1e-300, 1), 1, 0, None, 1, None),
            (flat(1000.0, 1), 4, 3, None, u64::MAX / 2, None),
            // The iteration limit counts run-wide arrivals: 5 in total over 2 cores is 3 + 2.
            (flat(1000.0, 1), 2, 0, Some(5), 2, Some(ms(4))),
            (flat(1000.0, 1), 2, 1, Some(5), 1, Some(ms(3))),
            (flat(1000.0, 1), 2, 1, Some(5), 2, None),
            // A ramp from 0 to 200/s over 1 s makes 100 arrivals; arrival n is at sqrt(n / 100) s.
            (ramp(0.0, &[(200.0, secs(1))]), 1, 0, None, 0, Some(ms(0))),
            (
                ramp(0.0, &[(200.0, secs(1))]),
                1,
                0,
                None,
                25,
                Some(ms(500)),
            ),
            (
                ramp(0.0, &[(200.0, secs(1))]),
                1,
                0,
                None,
                99,
                Some(Nanos(994_987_437)),
            ),
            (ramp(0.0, &[(200.0, secs(1))]), 1, 0, None, 100, None),
            // Stage edge: ramp 0 -> 100/s over 2 s (100 arrivals), then hold 100/s: arrival 100 is the
            // first of the second stage, exactly at its start.
            (
                ramp(0.0, &[(100.0, secs(2)), (100.0, secs(1))]),
                1,
                0,
                None,
                100,
                Some(ms(2000)),
            ),
            (
                ramp(0.0, &[(100.0, secs(2)), (100.0, secs(1))]),
                1,
                0,
                None,
                150,
                Some(ms(2500)),
            ),
            // A ramp down to zero: 100/s -> 0 over 2 s makes 100 arrivals, the last ones sparse.
            (
                ramp(100.0, &[(0.0, secs(2))]),
                1,
                0,
                None,
                75,
                Some(ms(1000)),
            ),
            (ramp(100.0, &[(0.0, secs(2))]), 1, 0, None, 100, None),
            // A zero-rate pause between two stages: 10/s for 1 s, nothing for 1 s, then a jump (a stage
            // of length zero) back to 10/s: arrival 10 waits for the jump at 2 s.
            (
                ramp(
                    10.0,
                    &[
                        (10.0, secs(1)),
                        (0.0, Duration::ZERO),
                        (0.0, secs(1)),
                        (10.0, Duration::ZERO),
                        (10.0, secs(1)),
                    ],
                ),
                1,
                0,
                None,
                10,
                Some(ms(2000)),
            ),
        ];
        for (i, (curve, cores, core, limit, seq, want)) in rows.into_iter().enumerate() {
            let a = CoreArrivals {
                curve,
                seat: Seat::single(core, cores),
                limit,
            };
            assert_eq!(a.intended_start(seq), want, "row {i}");
        }
    }

    /// Rounding across cores: for awkward rates and core counts, the union of every core's arrivals is
    /// exactly the run-wide schedule (same count, same instants), and every core's own arrivals are in
    /// order.
    #[test]
    fn cores_together_make_the_run_wide_schedule() {
        let curves = [
            RateCurve::constant(7.0, secs(3)),
            RateCurve::constant(999.9, secs(1)),
            RateCurve::ramps(1.0, &[(333.0, Duration::from_millis(1700)), (0.5, secs(1))]),
        ];
        for curve in curves {
            let global: Vec<Nanos> = (0..).map_while(|n| curve.arrival(n)).collect();
            assert_eq!(global.len() as u64, curve.arrivals(), "{curve:?}");
            assert!(global.windows(2).all(|w| w[0] <= w[1]), "{curve:?}");
            for cores in [1u32, 2, 3, 7] {
                let mut union = Vec::new();
                for core in 0..cores {
                    let a = CoreArrivals {
                        curve: curve.clone(),
                        seat: Seat::single(core, cores),
                        limit: None,
                    };
                    let mine: Vec<Nanos> = (0..).map_while(|k| a.intended_start(k)).collect();
                    assert!(mine.windows(2).all(|w| w[0] <= w[1]));
                    union.extend(mine);
                }
                union.sort();
                assert_eq!(union, global, "{cores} cores, {curve:?}");
            }
        }
    }

    /// Where item `n` goes among shards × cores. Rows: (n, shards, cores, (shard, core, k)).
    #[test]
    fn deal_table() {
        type Row = (u64, u32, u32, (u32, u32, u64));
        #[rustfmt::skip]
        let rows: &[Row] = &[
            // One engine: round-robin over its cores.
            (0, 1, 2, (0, 0, 0)),
            (5, 1, 2, (0, 1, 2)),
            // Two shards of two cores: items 0, 1, 2, 3 go to shard 0 core 0, shard 1 core 0, shard 0
            // core 1, shard 1 core 1, as one engine's cores 0, 1, 2, 3 would take them.
            (0, 2, 2, (0, 0, 0)),
            (1, 2, 2, (1, 0, 0)),
            (2, 2, 2, (0, 1, 0)),
            (3, 2, 2, (1, 1, 0)),
            (4, 2, 2, (0, 0, 1)),
            // Eight shards of one core: shard n % 8.
            (19, 8, 1, (3, 0, 2)),
            // Zero counts (never in a valid plan) act as one.
            (7, 0, 0, (0, 0, 7)),
        ];
        for (i, &(n, shards, cores, want)) in rows.iter().enumerate() {
            assert_eq!(deal(n, shards, cores), want, "row {i}");
            let (shard, core, k) = want;
            let seat = Seat {
                shard,
                shards: shards.max(1),
                core,
                cores: cores.max(1),
            };
            assert_eq!(seat.item(k), Some(n), "row {i}: item() inverts deal()");
        }
        assert_eq!(
            Seat {
                shard: 1,
                shards: 2,
                core: 1,
                cores: 2
            }
            .item(u64::MAX / 2),
            None,
            "overflow is the end of the seat's items, not a wrap"
        );
    }

    /// For every shard count N, core count C and item count n: the seats of N shards × C cores take
    /// every item of `0..n` exactly once, each seat as many as `count_of` says, and every item lands
    /// on the seat that one engine with N × C cores would give it.
    #[test]
    fn shards_times_cores_deal_as_one_engine_with_every_core() {
        for shards in 1..=7u32 {
            for cores in 1..=5u32 {
                for n in [0u64, 1, 2, 5, 11, 12, 35, 36, 37, 100] {
                    let mut taken = vec![0u32; n as usize];
                    for shard in 0..shards {
                        for core in 0..cores {
                            let seat = Seat {
                                shard,
                                shards,
                                core,
                                cores,
                            };
                            let count = seat.count_of(n);
                            let (overall, seats) = seat.overall();
                            assert_eq!(seats, u64::from(shards * cores));
                            for k in 0..count {
                                let item = seat.item(k).unwrap();
                                assert!(
                                    item < n,
                                    "{shards}x{cores}, n={n}: item {item} out of range"
                                );
                                taken[item as usize] += 1;
                                assert_eq!(item % seats, overall, "one engine's core");
                            }
                            assert!(seat.item(count).unwrap() >= n, "count_of is exact");
                        }
                    }
                    assert!(
                        taken.iter().all(|&t| t == 1),
                        "{shards}x{cores}, n={n}: {taken:?}"
                    );
                }
            }
        }
        // Shards with different core counts (machines of different sizes) still partition the items.
        let mut taken = vec![0u32; 50];
        for (shard, cores) in [(0u32, 2u32), (1, 3), (2, 1)] {
            for core in 0..cores {
                let seat = Seat {
                    shard,
                    shards: 3,
                    core,
                    cores,
                };
                for k in 0..seat.count_of(50) {
                    taken[seat.item(k).unwrap() as usize] += 1;
                }
            }
        }
        assert!(taken.iter().all(|&t| t == 1), "{taken:?}");
    }

    /// The arrivals of every core of every shard make the run-wide schedule exactly (same count, same
    /// instants), with and without an iteration limit.
    #[test]
    fn shards_together_make_the_run_wide_schedule() {
        let curves = [
            RateCurve::constant(7.0, secs(3)),
            RateCurve::constant(999.9, secs(1)),
            RateCurve::ramps(1.0, &[(333.0, Duration::from_millis(1700)), (0.5, secs(1))]),
        ];
        for curve in curves {
            for limit in [None, Some(1), Some(17), Some(u64::MAX)] {
                let global: Vec<Nanos> = (0..)
                    .map_while(|n| curve.arrival(n))
                    .take(limit.unwrap_or(u64::MAX).try_into().unwrap_or(usize::MAX))
                    .collect();
                for (shards, cores) in [(1u32, 1u32), (2, 1), (3, 2), (4, 3), (16, 1)] {
                    let mut union = Vec::new();
                    for shard in 0..shards {
                        for core in 0..cores {
                            let a = CoreArrivals {
                                curve: curve.clone(),
                                seat: Seat {
                                    shard,
                                    shards,
                                    core,
                                    cores,
                                },
                                limit,
                            };
                            let mine: Vec<Nanos> =
                                (0..).map_while(|k| a.intended_start(k)).collect();
                            assert!(mine.windows(2).all(|w| w[0] <= w[1]));
                            union.extend(mine);
                        }
                    }
                    union.sort();
                    assert_eq!(union, global, "{shards}x{cores}, {limit:?}, {curve:?}");
                }
            }
        }
    }

    #[test]
    fn rate_curve_counts_and_rates() {
        let c = RateCurve::ramps(0.0, &[(1000.0, secs(60)), (5000.0, secs(300))]);
        assert_eq!(c.duration(), secs(360));
        // 30 000 in the first minute, 900 000 in the next five.
        assert_eq!(c.arrivals(), 930_000);
        assert!((c.rate_at(secs(30)) - 500.0).abs() < 1e-9);
        assert!((c.rate_at(secs(210)) - 3000.0).abs() < 1e-9);
    }

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

    #[test]
    fn paced_table() {
        let rows: &[(Nanos, Duration, u64, Nanos)] = &[
            // The first iteration at the user's start, then one every pace.
            (ms(100), Duration::from_millis(250), 0, ms(100)),
            (ms(100), Duration::from_millis(250), 4, ms(1100)),
            // A pace of zero degenerates to "as fast as possible": every iteration is due at once.
            (ms(5), Duration::ZERO, 1000, ms(5)),
            // Overflow saturates instead of wrapping to the past.
            (ms(1), Duration::from_secs(u64::MAX / 2), 3, Nanos(u64::MAX)),
        ];
        for (i, &(first, pace, k, want)) in rows.iter().enumerate() {
            assert_eq!(paced(first, pace, k), want, "row {i}");
        }
    }

    #[test]
    fn think_table() {
        let s = Duration::from_secs;
        let rows: &[(Wait, f64, Duration)] = &[
            (Wait::None, 0.7, s(0)),
            (Wait::Constant(s(2)), 0.7, s(2)),
            (Wait::Between(s(1), s(3)), 0.0, s(1)),
            (Wait::Between(s(1), s(3)), 0.5, s(2)),
            // Out-of-range randoms are clamped, never extrapolated.
            (Wait::Between(s(1), s(3)), 7.0, s(3)),
            // min > max cannot come from a valid profile; it yields min, not a panic.
            (Wait::Between(s(3), s(1)), 0.5, s(3)),
        ];
        for (i, (wait, unit, want)) in rows.iter().enumerate() {
            assert_eq!(think(*wait, *unit), *want, "row {i}");
        }
    }

    #[test]
    fn kinds_follow_weights_in_every_prefix() {
        assert_eq!(assign_kinds(&[3, 1], 8), [0, 0, 1, 0, 0, 0, 1, 0]);
        assert_eq!(assign_kinds(&[1, 0, 1], 4), [0, 2, 0, 2]);
        assert_eq!(assign_kinds(&[0, 0], 2), [0, 0]);
        assert!(assign_kinds(&[5], 0).is_empty());
    }

    #[test]
    fn weighted_pick() {
        assert_eq!(pick_weighted([1, 2, 1], 0), 0);
        assert_eq!(pick_weighted([1, 2, 1], 2), 1);
        assert_eq!(pick_weighted([1, 2, 1], 3), 2);
        // Zero-weight entries are never picked, even by an out-of-range random.
        assert_eq!(pick_weighted([0, 4, 0], 0), 1);
        assert_eq!(pick_weighted([0, 4, 0], 99), 1);
    }
}
