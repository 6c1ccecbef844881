//! The deal: which core of which shard takes run-wide user, arrival, row or `seq()` number `n`.

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
