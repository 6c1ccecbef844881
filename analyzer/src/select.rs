//! Exact nearest-rank percentiles of many groups at once, in two passes over the data.
//!
//! polars computes an exact quantile by copying each group and running a selection per quantile:
//! for the twelve latency percentiles of a run (six per latency column) over every request name and
//! the total, and three per second, that is some thirty copies and selections of up to 100 million
//! values, too slow for the 20-second budget at that size (measured: docs/performance.md). This
//! module finds all of them exactly with two linear passes:
//!
//! 1. count the values of every group into log-linear buckets (64 per power of two, so a bucket
//!    spans at most 1/64 of its values), and from the counts find, for every wanted rank, the
//!    bucket that holds it and the rank within that bucket;
//! 2. collect only the values that fall in those buckets, and select the wanted rank in each
//!    small collection.
//!
//! The result is the exact nearest-rank percentile: the ⌈q·n⌉-th smallest value. Passes run in
//! parallel over the chunks (one chunk per core log), one worker per CPU, each folding the chunks it
//! takes into tables of its own.

use crate::approx::Moments;

/// Sub-bucket bits: 2^7 values below 128 map to themselves, then 64 buckets per power of two.
const SUB_BITS: u32 = 7;
/// Buckets needed for every u32: 64 · 25 + 128.
pub const BUCKETS: usize = 1728;

/// The log-linear bucket of a value; monotonic in the value.
#[inline]
pub fn bucket(v: u32) -> usize {
    if v < (1 << SUB_BITS) {
        return v as usize;
    }
    let msb = 31 - v.leading_zeros();
    let shift = msb - (SUB_BITS - 1);
    ((shift << (SUB_BITS - 1)) + (v >> shift)) as usize
}

/// The nearest rank (1-based) of the quantile `ppm` (parts per million) among `count` values:
/// ⌈count · ppm / 10⁶⌉, at least 1, in integer arithmetic so that no rounding moves it.
pub fn rank(count: u64, ppm: u32) -> u64 {
    (u128::from(count) * u128::from(ppm))
        .div_ceil(1_000_000)
        .clamp(1, u128::from(count.max(1))) as u64
}

/// A quantile as parts per million (0.999 → 999,000).
pub fn ppm(q: f64) -> u32 {
    (q * 1e6).round() as u32
}

/// One chunk of data: a group id and a value per sample.
#[derive(Debug, Clone, Copy)]
pub struct Chunk<'a> {
    /// Group ids (request name index, or second).
    pub groups: &'a [u32],
    /// Values (latencies in µs).
    pub values: &'a [u32],
}

/// What [`percentiles`] found: per group, per quantile; `None` for an empty group.
#[derive(Debug, Clone, PartialEq)]
pub struct Percentiles {
    /// `groups[g][i]`: group `first_group + g`, quantile `i`.
    pub groups: Vec<Vec<Option<u32>>>,
    /// The same over every value of the groups considered.
    pub total: Vec<Option<u32>>,
    /// Values per group.
    pub counts: Vec<u64>,
    /// Exact moments per group (empty unless asked for).
    pub moments: Vec<Moments>,
    /// Exact moments of all values (default unless asked for).
    pub total_moments: Moments,
    /// Bucket counts of all values, for a distribution plot ([`bucket_bounds`] gives each range).
    pub total_buckets: Vec<u64>,
}

/// The smallest and largest value of a bucket.
pub fn bucket_bounds(b: usize) -> (u32, u32) {
    let b = b as u32;
    if b < (1 << SUB_BITS) {
        return (b, b);
    }
    let shift = (b >> (SUB_BITS - 1)) - 1;
    let lower = (b - (shift << (SUB_BITS - 1))) << shift;
    (lower, lower + ((1u32 << shift) - 1))
}

struct Target {
    /// Group index (or `n` for the total).
    group: usize,
    quantile: usize,
    collector: usize,
    rank_in_bucket: u64,
}

/// Exact nearest-rank percentiles of the groups `first_group .. first_group + n_groups` (samples of
/// other groups are skipped) and of all of them together, for every quantile in `ppms`; with
/// `with_moments`, also each group's exact count, sum, sum of squares, minimum and maximum.
pub fn percentiles(
    chunks: &[Chunk<'_>],
    first_group: u32,
    n_groups: usize,
    ppms: &[u32],
    with_moments: bool,
) -> Percentiles {
    let in_range = |g: u32| {
        g.checked_sub(first_group)
            .map(|g| g as usize)
            .filter(|g| *g < n_groups)
    };
    // Pass 1: bucket counts (and moments) per group. Each worker folds the chunks it takes into one
    // table of its own, so the tables cost one per CPU however many chunks (core logs) there are: a
    // sharded run has many.
    let counts: Vec<(Vec<u64>, Vec<Moments>)> = fold_parallel(
        chunks,
        || {
            (
                vec![0u64; n_groups * BUCKETS],
                vec![Moments::new(); if with_moments { n_groups } else { 0 }],
            )
        },
        |(counts, moments), c| {
            for (&g, &v) in c.groups.iter().zip(c.values) {
                if let Some(g) = in_range(g) {
                    counts[g * BUCKETS + bucket(v)] += 1;
                    if with_moments {
                        moments[g].record(v);
                    }
                }
            }
        },
    );
    let mut sum = vec![0u64; (n_groups + 1) * BUCKETS];
    let mut moments = vec![Moments::new(); if with_moments { n_groups } else { 0 }];
    for (c, m) in &counts {
        for (i, &n) in c.iter().enumerate() {
            sum[i] += n;
            sum[n_groups * BUCKETS + i % BUCKETS] += n;
        }
        for (all, mine) in moments.iter_mut().zip(m) {
            all.add(mine);
        }
    }
    drop(counts);
    let mut total_moments = Moments::new();
    for m in &moments {
        total_moments.add(m);
    }
    let group_counts: Vec<u64> = (0..n_groups)
        .map(|g| sum[g * BUCKETS..(g + 1) * BUCKETS].iter().sum())
        .collect();
    let total_buckets = sum[n_groups * BUCKETS..].to_vec();

    // The bucket holding each wanted rank, and one collector per distinct (group, bucket).
    let mut slot = vec![u32::MAX; (n_groups + 1) * BUCKETS];
    let mut targets = Vec::new();
    let mut collectors = 0usize;
    for g in 0..=n_groups {
        let row = &sum[g * BUCKETS..(g + 1) * BUCKETS];
        let n: u64 = row.iter().sum();
        if n == 0 {
            continue;
        }
        for (quantile, &p) in ppms.iter().enumerate() {
            let r = rank(n, p);
            let mut before = 0u64;
            for (b, &count) in row.iter().enumerate() {
                if before + count >= r {
                    let s = &mut slot[g * BUCKETS + b];
                    if *s == u32::MAX {
                        *s = collectors as u32;
                        collectors += 1;
                    }
                    targets.push(Target {
                        group: g,
                        quantile,
                        collector: *s as usize,
                        rank_in_bucket: r - before,
                    });
                    break;
                }
                before += count;
            }
        }
    }
    drop(sum);

    // Pass 2: collect the values of the wanted buckets.
    let total_slots = &slot[n_groups * BUCKETS..];
    let parts: Vec<Vec<Vec<u32>>> = fold_parallel(
        chunks,
        || vec![Vec::new(); collectors],
        |out, c| {
            for (&g, &v) in c.groups.iter().zip(c.values) {
                let Some(g) = in_range(g) else { continue };
                let b = bucket(v);
                let s = slot[g * BUCKETS + b];
                if s != u32::MAX {
                    out[s as usize].push(v);
                }
                let t = total_slots[b];
                if t != u32::MAX {
                    out[t as usize].push(v);
                }
            }
        },
    );
    let mut collected: Vec<Vec<u32>> = vec![Vec::new(); collectors];
    for part in parts {
        for (all, mine) in collected.iter_mut().zip(part) {
            if all.is_empty() {
                *all = mine;
            } else {
                all.extend_from_slice(&mine);
            }
        }
    }

    let mut result = Percentiles {
        groups: vec![vec![None; ppms.len()]; n_groups],
        total: vec![None; ppms.len()],
        counts: group_counts,
        moments,
        total_moments,
        total_buckets,
    };
    for t in targets {
        let values = &mut collected[t.collector];
        let (_, v, _) = values.select_nth_unstable((t.rank_in_bucket - 1) as usize);
        let v = Some(*v);
        if t.group == n_groups {
            result.total[t.quantile] = v;
        } else {
            result.groups[t.group][t.quantile] = v;
        }
    }
    result
}

/// Folds every chunk into per-worker states, one worker per CPU (at most one per chunk): each worker
/// takes the next chunk when it is done with one and folds it into the state `init` made for it.
/// Returns the workers' states.
fn fold_parallel<S: Send>(
    chunks: &[Chunk<'_>],
    init: impl Fn() -> S + Sync,
    fold: impl Fn(&mut S, &Chunk<'_>) + Sync,
) -> Vec<S> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(chunks.len())
        .max(1);
    if workers == 1 {
        let mut state = init();
        for c in chunks {
            fold(&mut state, c);
        }
        return vec![state];
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut state = init();
                    while let Some(c) =
                        chunks.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                    {
                        fold(&mut state, c);
                    }
                    state
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a percentile thread panicked"))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_cover_u32() {
        let mut last = 0;
        for v in (0..1_000_000u32).chain([u32::MAX / 2, u32::MAX - 1, u32::MAX]) {
            let b = bucket(v);
            assert!(b >= last, "bucket({v}) = {b} < {last}");
            assert!(b < BUCKETS);
            last = b;
        }
        assert_eq!(bucket(u32::MAX), BUCKETS - 1);
    }

    #[test]
    fn bucket_bounds_invert_bucket() {
        for v in (0..300_000u32).chain([u32::MAX]) {
            let (lo, hi) = bucket_bounds(bucket(v));
            assert!(lo <= v && v <= hi, "{v} not in {lo}..={hi}");
        }
    }

    #[test]
    fn ranks_are_nearest_rank_in_integers() {
        assert_eq!(rank(10, ppm(0.5)), 5);
        assert_eq!(rank(10, ppm(0.9)), 9);
        assert_eq!(rank(10, ppm(0.99)), 10);
        assert_eq!(rank(1000, ppm(0.999)), 999);
        assert_eq!(rank(1001, ppm(0.999)), 1000);
        assert_eq!(rank(1, ppm(0.0)), 1);
    }

    /// Checks against sorting, over skewed data split into uneven chunks and several groups.
    #[test]
    fn percentiles_equal_sorting() {
        let mut x = 12345u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let n = 200_003;
        let groups: Vec<u32> = (0..n).map(|_| (next() % 5) as u32).collect();
        let values: Vec<u32> = (0..n)
            .map(|_| (next() % 1000).pow(3) as u32 + (next() % 7) as u32)
            .collect();
        let ppms: Vec<u32> = [0.0, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0]
            .iter()
            .map(|q| ppm(*q))
            .collect();
        let chunks = [
            Chunk {
                groups: &groups[..70_000],
                values: &values[..70_000],
            },
            Chunk {
                groups: &groups[70_000..],
                values: &values[70_000..],
            },
        ];
        let got = percentiles(&chunks, 1, 3, &ppms, true);
        // Many more chunks than workers (a sharded run's logs) give the same answer.
        let bounds = [0, 1, 9_000, 9_001, 50_000, 120_000, 199_999, n];
        let many: Vec<Chunk<'_>> = bounds
            .windows(2)
            .map(|w| Chunk {
                groups: &groups[w[0]..w[1]],
                values: &values[w[0]..w[1]],
            })
            .collect();
        assert_eq!(percentiles(&many, 1, 3, &ppms, true), got);
        let exact = |mut v: Vec<u32>| -> Vec<Option<u32>> {
            v.sort_unstable();
            ppms.iter()
                .map(|&p| Some(v[(rank(v.len() as u64, p) - 1) as usize]))
                .collect()
        };
        for g in 0..3 {
            let mine: Vec<u32> = groups
                .iter()
                .zip(&values)
                .filter(|(x, _)| **x == g as u32 + 1)
                .map(|(_, v)| *v)
                .collect();
            assert_eq!(got.groups[g], exact(mine), "group {}", g + 1);
        }
        let all: Vec<u32> = groups
            .iter()
            .zip(&values)
            .filter(|(x, _)| (1..4).contains(*x))
            .map(|(_, v)| *v)
            .collect();
        assert_eq!(got.total, exact(all));
        for g in 0..3 {
            let mine: Vec<u32> = groups
                .iter()
                .zip(&values)
                .filter(|(x, _)| **x == g as u32 + 1)
                .map(|(_, v)| *v)
                .collect();
            let m = &got.moments[g];
            assert_eq!(m.count, mine.len() as u64);
            assert_eq!(got.counts[g], mine.len() as u64);
            assert_eq!(m.min, *mine.iter().min().unwrap());
            assert_eq!(m.max, *mine.iter().max().unwrap());
            assert_eq!(m.sum, mine.iter().map(|v| u128::from(*v)).sum::<u128>());
        }
        let none = percentiles(&chunks, 10, 2, &ppms, false);
        assert_eq!(none.groups, vec![vec![None; ppms.len()]; 2]);
        assert_eq!(none.total, vec![None; ppms.len()]);
    }
}
