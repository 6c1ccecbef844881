//! Weighted choices: user kinds dealt by weight, and a weighted pick for a random number.

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
