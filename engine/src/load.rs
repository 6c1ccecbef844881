//! A load model as one core runs it, with no clock or I/O of its own: the closed model's population
//! and iteration limits, and the open model's arrival release and user pool.
//!
//! **Open model.** The core's arrivals come in order ([`CoreArrivals::intended_start`]). Whenever the
//! loop calls [`Arrivals::release`], every arrival that fell due is given, with its exact intended
//! start, to an idle user of a kind picked by weight (a new user if the kind's pool is not full). When
//! every user of the kind is busy the arrival waits, if the queue allows, until a user is free or the
//! queue overflows; otherwise it is dropped and counted. Every arrival is therefore either started or
//! counted as dropped: none is skipped silently. Arrivals are released from the loop's own timer
//! structure, at most once per [`GRID`] when they come closer together than that, so that a core
//! does not wake once per arrival.

use std::time::Duration;

use crate::plan::OpenCore;
use crate::rng::Rng;
use crate::schedule::{self, Nanos, Population};

/// Arrivals closer together than this are released on a grid of this step instead of one by one:
/// every sleep and wake-up of a core costs CPU (about 20 µs on the project's virtual machine), so at
/// high rates the loop wakes at most once per step and releases every arrival that fell due, each up
/// to one step late. That lateness is recorded as schedule lag, like any other; it stays far below the
/// 1 ms health limit. Sparser arrivals are released at their exact time.
pub(crate) const GRID: Duration = Duration::from_micros(100);

/// One core's load model.
#[derive(Debug)]
pub(crate) enum Load {
    /// Users that loop.
    Closed(Closed),
    /// Iterations that arrive on a schedule (boxed: the closed model is the common case).
    Open(Box<Open>),
}

/// A closed model on one core.
#[derive(Debug)]
pub(crate) struct Closed {
    pub population: Population,
    /// Each user stops after this many iterations.
    pub per_user: Option<u64>,
    /// Iterations this core may still start (a run-wide limit's share).
    pub budget: Option<u64>,
    /// Users that have not finished for good.
    pub users_left: u32,
}

impl Closed {
    /// Takes one iteration from this core's limit; `false` when it is used up.
    pub fn take_iteration(&mut self) -> bool {
        match &mut self.budget {
            None => true,
            Some(0) => false,
            Some(n) => {
                *n -= 1;
                true
            }
        }
    }
}

/// An open model on one core.
#[derive(Debug)]
pub(crate) struct Open {
    pub pool: Pool,
    pub arrivals: Arrivals,
}

/// One core's users for an open model. Local user indexes are laid out kind by kind: kind `k` owns
/// `first[k] .. first[k] + max[k]`. Idle lists have their full capacity from the start, so nothing
/// here allocates after setup.
#[derive(Debug)]
pub(crate) struct Pool {
    first: Vec<u32>,
    max: Vec<u32>,
    /// Users started so far, per kind.
    started: Vec<u32>,
    /// Idle users per kind (local indexes), last in first out so warm connections are reused.
    idle: Vec<Vec<u32>>,
    /// Users running an iteration.
    busy: u32,
}

/// Who takes an arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handed {
    /// An idle user (by local index).
    Idle(u32),
    /// A user starting for the first time.
    New(u32),
}

impl Pool {
    pub fn new(max: &[u32]) -> Pool {
        let mut first = Vec::with_capacity(max.len());
        let mut next = 0u32;
        for &m in max {
            first.push(next);
            next += m;
        }
        Pool {
            first,
            max: max.to_vec(),
            started: vec![0; max.len()],
            idle: max
                .iter()
                .map(|&m| Vec::with_capacity(m as usize))
                .collect(),
            busy: 0,
        }
    }

    /// The kind of local user `local`.
    pub fn kind_of(&self, local: u32) -> usize {
        self.first
            .iter()
            .rposition(|&f| f <= local)
            .unwrap_or_default()
    }

    /// Whether no user is running an iteration.
    pub fn all_idle(&self) -> bool {
        self.busy == 0
    }

    /// A user of `kind` for an arrival, or `None` when every one of them is busy.
    fn hand(&mut self, kind: usize) -> Option<Handed> {
        let handed = if let Some(local) = self.idle[kind].pop() {
            Handed::Idle(local)
        } else if self.started[kind] < self.max[kind] {
            let local = self.first[kind] + self.started[kind];
            self.started[kind] += 1;
            Handed::New(local)
        } else {
            return None;
        };
        self.busy += 1;
        Some(handed)
    }

    /// `local` (of `kind`) finished its iteration and waits for the next.
    pub fn release(&mut self, kind: usize, local: u32) {
        self.busy = self.busy.saturating_sub(1);
        self.idle[kind].push(local);
    }

    /// The users the first `n` arrivals would most likely start: each kind's share of `n` by weight
    /// (rounded up, at most the kind's pool), first users first, as [`Pool::hand`] starts them.
    pub fn first_users<'a>(&'a self, n: u32, weights: &'a [u32]) -> impl Iterator<Item = u32> + 'a {
        let total = weights.iter().map(|&w| u64::from(w)).sum::<u64>().max(1);
        self.first
            .iter()
            .zip(&self.max)
            .zip(weights)
            .flat_map(move |((&f, &max), &w)| {
                let share = (u64::from(n) * u64::from(w)).div_ceil(total);
                f..f + (share.min(u64::from(max)) as u32)
            })
    }

    /// Every user started so far.
    pub fn started_users(&self) -> impl Iterator<Item = u32> + '_ {
        self.first
            .iter()
            .zip(&self.started)
            .flat_map(|(&f, &n)| f..f + n)
    }
}

/// What became of an arrival that did not start at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tally {
    /// Every user of its kind was busy: it waits in the queue for one.
    Queued,
    /// No user was free and the queue had no room: it never starts.
    Dropped,
}

/// The open model's arrival release.
#[derive(Debug)]
pub(crate) struct Arrivals {
    open: OpenCore,
    total_weight: u32,
    /// The next arrival not yet handed out or dropped.
    seq: u64,
    /// Its kind, once picked (picked once, however long it waits).
    kind: Option<usize>,
    /// It found every user busy and was counted as queued.
    waited: bool,
    /// The intended start of the previous arrival, for the grid.
    previous: Nanos,
    /// When the loop should call [`Arrivals::release`] again, ns; `None` while waiting only for a user
    /// to become free (or when done).
    pub wake_ns: Option<u64>,
    /// Every arrival has been handed out or dropped.
    pub done: bool,
}

impl Arrivals {
    pub fn new(open: OpenCore) -> Arrivals {
        let total_weight = open.weights.iter().sum();
        Arrivals {
            open,
            total_weight,
            seq: 0,
            kind: None,
            waited: false,
            previous: Nanos(0),
            wake_ns: Some(0),
            done: false,
        }
    }

    /// How many arrivals are due before `ns` (at most `cap`).
    pub fn due_before(&self, ns: u64, cap: u32) -> u32 {
        let mut n = 0;
        while n < cap
            && self
                .open
                .arrivals
                .intended_start(u64::from(n))
                .is_some_and(|due| due.0 < ns)
        {
            n += 1;
        }
        n
    }

    /// Each user kind's weight.
    pub fn weights(&self) -> &[u32] {
        &self.open.weights
    }

    /// Hands every arrival due by `now_ns` to a user (into `out`: user, kind, intended start in µs),
    /// drops those the queue cannot hold, and sets [`Arrivals::wake_ns`]. `count` hears of each
    /// arrival that waits in the queue for a free user (once, however often it is looked at) and of
    /// each one dropped.
    pub fn release(
        &mut self,
        now_ns: u64,
        pool: &mut Pool,
        rng: &mut Rng,
        out: &mut Vec<(Handed, usize, u64)>,
        count: &mut impl FnMut(Tally),
    ) {
        let grid = GRID.as_nanos() as u64;
        self.wake_ns = None;
        loop {
            let Some(due) = self.open.arrivals.intended_start(self.seq) else {
                self.done = true;
                return;
            };
            if now_ns < due.0 {
                // Arrivals close together wake the loop on the grid; sparse ones at their own time.
                self.wake_ns = Some(if due.0 - self.previous.0 < grid {
                    due.0.div_ceil(grid).saturating_mul(grid)
                } else {
                    due.0
                });
                return;
            }
            let kind = *self.kind.get_or_insert_with(|| {
                let r = rng.below(self.total_weight);
                schedule::pick_weighted(self.open.weights.iter().copied(), r)
            });
            if let Some(h) = pool.hand(kind) {
                out.push((h, kind, due.as_micros()));
                self.advance(due);
                continue;
            }
            // Every user of this kind is busy. Wait for one while the arrivals that fell due (this one
            // included) fit in the queue: arrival `seq + queue` falling due would make one too many,
            // and the oldest waiting arrival is the one dropped.
            let overflow_at = self
                .seq
                .checked_add(u64::from(self.open.queue))
                .and_then(|s| self.open.arrivals.intended_start(s));
            let overflowed = match overflow_at {
                _ if self.open.queue == 0 => true,
                Some(at) => now_ns >= at.0,
                None => false,
            };
            if overflowed {
                count(Tally::Dropped);
                self.advance(due);
                continue;
            }
            if !self.waited {
                self.waited = true;
                count(Tally::Queued);
            }
            // Called again when a user is released, or when the queue would overflow.
            self.wake_ns = overflow_at.map(|at| at.0);
            return;
        }
    }

    /// The run was steered: from `at` on, the rate moves to `to` over `ramp` ([`crate::steer`]).
    /// Arrivals keep their numbers, so the run's arrivals stay one sequence dealt over its cores; the
    /// loop must call [`Arrivals::release`] again for the new next arrival's time.
    pub fn steer(&mut self, at: Duration, to: f64, ramp: Duration) {
        let curve = &mut self.open.arrivals.curve;
        *curve = curve.steered(at, to, ramp);
        self.wake_ns = Some(0);
    }

    fn advance(&mut self, due: Nanos) {
        self.previous = due;
        self.seq += 1;
        self.kind = None;
        self.waited = false;
    }

    /// The run stopped: arrivals due by `now_ns` and not handed out were dropped, not skipped.
    pub fn stop(&mut self, now_ns: u64, dropped: &mut impl FnMut()) {
        while self
            .open
            .arrivals
            .intended_start(self.seq)
            .is_some_and(|due| due.0 <= now_ns)
        {
            dropped();
            self.seq += 1;
        }
        self.done = true;
        self.wake_ns = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::{CoreArrivals, RateCurve, Seat};

    fn open(rate: f64, secs: u64, pool: u32, queue: u32) -> (Pool, Arrivals) {
        let open = OpenCore {
            arrivals: CoreArrivals {
                curve: RateCurve::constant(rate, Duration::from_secs(secs)),
                seat: Seat::single(0, 1),
                limit: None,
            },
            pool: vec![pool],
            weights: vec![1],
            queue,
        };
        (Pool::new(&open.pool), Arrivals::new(open))
    }

    #[test]
    fn due_arrivals_go_to_users_and_the_rest_wait_on_the_grid() {
        let (mut pool, mut arr) = open(1000.0, 1, 10, 0);
        let mut rng = Rng::new(1);
        let mut out = Vec::new();
        let mut drops = 0;
        // 1000/s: arrivals every 1 ms, sparser than the grid, so the wake is the next arrival itself.
        arr.release(2_500_000, &mut pool, &mut rng, &mut out, &mut |t| {
            drops += u32::from(t == Tally::Dropped);
        });
        assert_eq!(out.len(), 3, "{out:?}");
        assert_eq!(out[0].0, Handed::New(0));
        assert_eq!(out[2].2, 2_000);
        assert_eq!(arr.wake_ns, Some(3_000_000));
        assert_eq!(drops, 0);
    }

    #[test]
    fn a_full_pool_without_a_queue_drops_and_a_release_frees_a_user() {
        let (mut pool, mut arr) = open(1000.0, 1, 1, 0);
        let mut rng = Rng::new(1);
        let mut out = Vec::new();
        let mut drops = 0;
        arr.release(1_500_000, &mut pool, &mut rng, &mut out, &mut |t| {
            drops += u32::from(t == Tally::Dropped);
        });
        assert_eq!((out.len(), drops), (1, 1));
        pool.release(0, 0);
        out.clear();
        arr.release(2_000_000, &mut pool, &mut rng, &mut out, &mut |t| {
            drops += u32::from(t == Tally::Dropped);
        });
        assert_eq!(out, vec![(Handed::Idle(0), 0, 2_000)]);
    }

    /// The loop keeps room for every user in its list of handed arrivals (`event_loop/setup.rs`),
    /// so that a burst after a stall allocates nothing: one release hands each free user out at
    /// most once, however many arrivals fell due, and with every user busy it hands out none.
    #[test]
    fn one_release_hands_out_each_free_user_at_most_once() {
        for queue in [0, 1000] {
            let (mut pool, mut arr) = open(100_000.0, 1, 5, queue);
            let mut rng = Rng::new(1);
            let mut out = Vec::new();
            // 100 ms late: 10,000 arrivals are due at once.
            arr.release(100_000_000, &mut pool, &mut rng, &mut out, &mut |_| {});
            assert_eq!(out.len(), 5, "queue {queue}");
            let mut users: Vec<u32> = out
                .iter()
                .map(|(h, ..)| match h {
                    Handed::Idle(u) | Handed::New(u) => *u,
                })
                .collect();
            users.sort_unstable();
            users.dedup();
            assert_eq!(users, [0, 1, 2, 3, 4], "queue {queue}");
            out.clear();
            arr.release(200_000_000, &mut pool, &mut rng, &mut out, &mut |_| {});
            assert!(out.is_empty(), "queue {queue}: every user is busy");
            // Two users come back: the next release hands out those two, once each.
            pool.release(0, 3);
            pool.release(0, 1);
            arr.release(300_000_000, &mut pool, &mut rng, &mut out, &mut |_| {});
            assert_eq!(
                out.iter().map(|(h, ..)| *h).collect::<Vec<_>>(),
                [Handed::Idle(1), Handed::Idle(3)],
                "queue {queue}"
            );
        }
    }

    #[test]
    fn a_queue_holds_arrivals_until_it_would_overflow() {
        let (mut pool, mut arr) = open(1000.0, 1, 1, 2);
        let mut rng = Rng::new(1);
        let mut out = Vec::new();
        let mut tallies = Vec::new();
        arr.release(1_000_000, &mut pool, &mut rng, &mut out, &mut |t| {
            tallies.push(t);
        });
        // Arrival 1 waits; arrival 1 + 2 = 3 falling due (at 3 ms) would overflow the queue.
        assert_eq!((out.len(), tallies.as_slice()), (1, &[Tally::Queued][..]));
        assert_eq!(arr.wake_ns, Some(3_000_000));
        // Looked at again before anything changed, the waiting arrival is not counted twice.
        arr.release(2_000_000, &mut pool, &mut rng, &mut out, &mut |t| {
            tallies.push(t);
        });
        assert_eq!(tallies, [Tally::Queued]);
        arr.release(3_000_000, &mut pool, &mut rng, &mut out, &mut |t| {
            tallies.push(t);
        });
        assert_eq!(
            tallies,
            [Tally::Queued, Tally::Dropped, Tally::Queued],
            "the oldest waiting arrival is dropped, and the next one waits"
        );
        let mut stopped = 0;
        arr.stop(3_000_000, &mut || stopped += 1);
        assert_eq!(stopped, 2, "arrivals 2 and 3 were due and never handed out");
        assert!(arr.done);
    }

    #[test]
    fn the_first_millisecond_s_arrivals_name_the_users_to_warm() {
        // 5000/s: arrivals at 0, 200, 400, 600 and 800 µs fall before 1 ms; the sixth at 1 ms does not.
        let (pool, arr) = open(5000.0, 1, 100, 0);
        assert_eq!(arr.due_before(1_000_000, 1000), 5);
        assert_eq!(arr.due_before(1_000_000, 3), 3, "capped");
        assert_eq!(arr.due_before(0, 1000), 0);
        assert_eq!(
            pool.first_users(5, arr.weights()).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
        // Two kinds weighted 3:1 with pools of 4 and 10: kind 0 owns users 0..4, kind 1 users 4..14.
        // Eight arrivals: kind 0's share is 6, capped at its pool of 4; kind 1's is 2.
        let pool = Pool::new(&[4, 10]);
        let users: Vec<u32> = pool.first_users(8, &[3, 1]).collect();
        assert_eq!(users, [0, 1, 2, 3, 4, 5]);
        // They are the users `hand` starts first.
        let mut pool = pool;
        assert_eq!(pool.hand(1), Some(Handed::New(4)));
    }
}
