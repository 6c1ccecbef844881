//! One core's arrivals: the run-wide arrival curve dealt over shards and cores.

use super::{Nanos, RateCurve, Seat};

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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::schedule::testing::{ms, secs};

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
}
