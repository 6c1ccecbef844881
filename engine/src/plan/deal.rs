//! Dealing the load over shards and cores: each core's users, its share of the iteration limit, and
//! (open models) its arrivals, pool and queue.

use std::time::Duration;

use super::load::ResolvedLoad;
use super::{CorePlan, LoadPlan, OpenCore, UserPlan};
use crate::schedule::{self, CoreArrivals, Nanos, Population, Seat};
use crate::shard::Shard;

/// `n` dealt over `parts`: part `i` gets `n / parts`, plus one for the first `n % parts` parts.
pub fn share(n: u64, parts: u32, i: u32) -> u64 {
    let parts = u64::from(parts.max(1));
    n / parts + u64::from(u64::from(i) < n % parts)
}

/// This shard's cores with their part of the load, and every shard's share of it (of the users in a
/// closed model, of the arrival rate in an open one). `weights` are the user kinds' weights;
/// `max_users` is `--max-users`, the users steering may start.
pub(super) fn deal(
    resolved: &ResolvedLoad,
    weights: &[u32],
    this: Shard,
    core_count: u32,
    cpus: &[u32],
    max_users: Option<u32>,
) -> (Vec<CorePlan>, Vec<f64>) {
    let users = resolved.load_users();
    let duration = resolved.duration;
    let mut cores: Vec<CorePlan> = (0..core_count)
        .map(|i| CorePlan {
            index: i,
            cpu: (!cpus.is_empty()).then(|| cpus[i as usize % cpus.len()]),
            users: Vec::new(),
            iterations: None,
            seat: Seat {
                shard: this.index,
                shards: this.count,
                core: i,
                cores: core_count,
            },
            open: None,
        })
        .collect();
    let shares: Vec<f64> = match &resolved.load {
        LoadPlan::Closed { .. } if users > 0 => (0..this.count)
            .map(|s| share(u64::from(users), this.count, s) as f64 / f64::from(users))
            .collect(),
        _ => vec![1.0 / f64::from(this.count); this.count as usize],
    };
    match &resolved.load {
        LoadPlan::Closed { population, .. } => {
            // Users beyond the profile's that steering may start (`--max-users`): each core plans
            // their slots (connections, memory) now, and they start only when the target rises
            // above them. Kinds are dealt to them as to the profile's users (the deal's prefixes
            // do not depend on its length).
            // Only runs that can be steered (`steer::steering::refusal`) plan any: not sharded, not staged,
            // and without a run-wide iteration limit (whose split over cores counts their users).
            let steerable = this.count == 1
                && matches!(population, Population::Spawn(_))
                && resolved.iterations.is_none();
            let reserve = match max_users {
                Some(max) if steerable => max.max(users),
                _ => users,
            };
            let assignment = schedule::assign_kinds(weights, reserve);
            let end = Nanos::from_duration(duration);
            // Users are dealt over every shard's cores; this shard keeps its own. Which shards
            // have users at all decides how the iteration limit is split.
            let mut shard_has_users = vec![false; this.count as usize];
            for g in 0..users {
                // Users the schedule never wants (a spawn time past the end) are not planned.
                let Some((start, _)) = population.next_span(g, Nanos(0), end) else {
                    continue;
                };
                let (s, core, _) = schedule::deal(u64::from(g), this.count, core_count);
                shard_has_users[s as usize] = true;
                if s != this.index {
                    continue;
                }
                cores[core as usize].users.push(UserPlan {
                    global: g,
                    kind: assignment[g as usize],
                    spawn_at: Duration::from_nanos(start.0),
                });
            }
            for g in users..reserve {
                let (s, core, _) = schedule::deal(u64::from(g), this.count, core_count);
                if s == this.index {
                    cores[core as usize].users.push(UserPlan {
                        global: g,
                        kind: assignment[g as usize],
                        spawn_at: Duration::MAX,
                    });
                }
            }
            // The iteration limit is split over the shards that have users, then over the cores
            // of this shard that have users: the parts add up to the limit exactly.
            if let Some(total) = resolved.iterations {
                let busy_shards = shard_has_users.iter().filter(|&&b| b).count() as u32;
                let rank = shard_has_users[..this.index as usize]
                    .iter()
                    .filter(|&&b| b)
                    .count() as u32;
                let mine = share(total, busy_shards, rank);
                let busy: Vec<usize> = (0..cores.len())
                    .filter(|&c| !cores[c].users.is_empty())
                    .collect();
                for (i, &c) in busy.iter().enumerate() {
                    cores[c].iterations = Some(share(mine, busy.len() as u32, i as u32));
                }
            }
        }
        LoadPlan::Open {
            curve,
            max_users,
            queue,
        } => {
            // The pool and queue limits are totals over the test: this shard's part, then its
            // cores' parts.
            let shard_users = share(u64::from(*max_users), this.count, this.index);
            let shard_queue = share(u64::from(*queue), this.count, this.index);
            for core in &mut cores {
                // Every core gets at least one user, or its share of arrivals could never start.
                let mine = share(shard_users, core_count, core.index).max(1) as u32;
                let mut pool = vec![0u32; weights.len()];
                for kind in schedule::assign_kinds(weights, mine) {
                    pool[kind] += 1;
                }
                // A kind with weight gets at least one user, so its arrivals are never all dropped.
                for (kind, &w) in weights.iter().enumerate() {
                    if w > 0 && pool[kind] == 0 {
                        pool[kind] = 1;
                    }
                }
                core.open = Some(OpenCore {
                    arrivals: CoreArrivals {
                        curve: curve.clone(),
                        seat: core.seat,
                        limit: resolved.iterations,
                    },
                    pool,
                    weights: weights.to_vec(),
                    queue: share(shard_queue, core_count, core.index) as u32,
                });
            }
        }
    }
    (cores, shares)
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{CorePlan, Plan};
    use crate::cli::RunArgs;
    use crate::shard::Shard;
    use std::time::Duration;

    #[test]
    fn users_are_dealt_round_robin_with_spawn_times() {
        let plan = Plan::resolve(spec(), &RunArgs::default(), &env()).unwrap();
        assert_eq!(plan.cores.len(), 2);
        let core0: Vec<u32> = plan.cores[0].users.iter().map(|u| u.global).collect();
        assert_eq!(core0, [0, 2, 4]);
        assert_eq!(plan.cores[1].users[0].spawn_at, Duration::from_millis(100));
        assert_eq!(path(&plan, 0), "/api/items/7");
        assert_eq!(
            plan.scenario.requests[1]
                .body
                .as_ref()
                .unwrap()
                .1
                .static_bytes(),
            Some(&br#"{"user":"a","n":1}"#[..])
        );
        assert_eq!(plan.scenario.requests[1].name, "POST /login");
    }

    /// Every user of a core: (global index, kind, spawn time).
    fn dealt(core: &CorePlan) -> Vec<(u32, usize, Duration)> {
        core.users
            .iter()
            .map(|u| (u.global, u.kind, u.spawn_at))
            .collect()
    }

    /// For closed models (a spawn ramp, stages, users that do and do not divide by the seats, more
    /// seats than users): shard `s`'s core `c` of N shards x C cores gets exactly the users of core
    /// `s + N c` of one engine with N x C cores, with the same kinds and spawn times; the shares are
    /// the shards' parts of the users, summing to 1; and iteration limits split exactly.
    #[test]
    fn shards_deal_users_as_one_engine_with_every_core() {
        let loads = [
            r#"Closed(users: 7, spawn_rate: 10.0, duration: "10s")"#,
            r#"Closed(users: 24, duration: "10s")"#,
            r#"Closed(users: 2, duration: "10s")"#,
            r#"Stages(stages: [(users: 9, over: "3s"), (users: 4, over: "2s")])"#,
        ];
        for load in loads {
            for shards in 1..=4u32 {
                for cores in 1..=3u32 {
                    let one = sharded(load, None, shards * cores, Some(1001));
                    let mut iterations = 0;
                    let mut shares = Vec::new();
                    for index in 0..shards {
                        let shard = Shard {
                            index,
                            count: shards,
                        };
                        let plan = sharded(load, Some(shard), cores, Some(1001));
                        let part = plan.shard.as_ref().unwrap();
                        assert_eq!(part.shard, shard);
                        shares = part.shares.clone();
                        for core in &plan.cores {
                            assert_eq!(
                                dealt(core),
                                dealt(&one.cores[(index + shards * core.index) as usize]),
                                "{load}: {shards} shards x {cores} cores, shard {index} core {}",
                                core.index
                            );
                            iterations += core.iterations.unwrap_or(0);
                        }
                        assert_eq!(plan.profile_ron, one.profile_ron, "the same profile text");
                    }
                    assert_eq!(
                        iterations, 1001,
                        "{load}: {shards}x{cores}: the limit splits exactly"
                    );
                    assert_eq!(shares.len(), shards as usize);
                    assert!(
                        (shares.iter().sum::<f64>() - 1.0).abs() < 1e-12,
                        "{shares:?}"
                    );
                    let users = one.users;
                    for (i, share) in shares.iter().enumerate() {
                        let mine = (i as u32..users).step_by(shards as usize).count();
                        assert!(
                            (share - mine as f64 / f64::from(users)).abs() < 1e-12,
                            "{load}: shard {i} has {mine} of {users} users, share {share}"
                        );
                    }
                }
            }
        }
    }

    /// Open models: every seat's arrivals, pool and queue; the pool and queue limits split so that
    /// they add up to the profile's (when every core can have one user), and each shard's share of
    /// the rate is 1/N.
    #[test]
    fn shards_split_the_arrival_rate_and_the_pool() {
        let load = r#"Open(rate: 100.0, duration: "2s", max_users: 50, queue: 9)"#;
        for shards in [1u32, 2, 3, 5] {
            for cores in [1u32, 2, 3] {
                let mut pool = 0;
                let mut queue = 0;
                let mut arrivals = Vec::new();
                for index in 0..shards {
                    let shard = Shard {
                        index,
                        count: shards,
                    };
                    let plan = sharded(load, Some(shard), cores, None);
                    let shares = &plan.shard.as_ref().unwrap().shares;
                    assert!(shares.iter().all(|&s| s == 1.0 / f64::from(shards)));
                    for core in &plan.cores {
                        let open = core.open.as_ref().unwrap();
                        assert_eq!(open.arrivals.seat, core.seat);
                        assert_eq!(
                            (core.seat.shard, core.seat.shards, core.seat.cores),
                            (index, shards, cores)
                        );
                        pool += open.pool.iter().sum::<u32>();
                        queue += open.queue;
                        arrivals.extend((0..).map_while(|k| open.arrivals.intended_start(k)));
                    }
                }
                assert_eq!(pool, 50, "{shards}x{cores}: the pool adds up to max_users");
                assert_eq!(queue, 9, "{shards}x{cores}: the queue adds up");
                assert_eq!(
                    arrivals.len(),
                    200,
                    "{shards}x{cores}: rate x duration arrivals"
                );
                arrivals.sort();
                arrivals.dedup();
                assert_eq!(arrivals.len(), 200, "no arrival twice");
            }
        }
    }
}
