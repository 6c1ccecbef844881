//! Stall mode and the latency mix: when the embedded target lets a response go (see the module
//! overview in `serve`).

use std::time::Duration;

use crate::profile::spec::EmbeddedSpec;

/// How the embedded target delays its responses on purpose.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Behaviour {
    /// `(every, hold)`: hold every response that falls in the first `hold` of each `every`.
    pub stall: Option<(Duration, Duration)>,
    /// `(weight, delay)`: delay responses in these proportions.
    pub latency_mix: Vec<(u32, Duration)>,
}

impl Behaviour {
    /// From a profile's `embedded` settings.
    pub fn from_spec(spec: &EmbeddedSpec) -> Behaviour {
        Behaviour {
            stall: spec.stall.map(|s| (s.every.0, s.hold.0)),
            latency_mix: spec.latency_mix.iter().map(|&(w, d)| (w, d.0)).collect(),
        }
    }

    pub(super) fn is_plain(&self) -> bool {
        self.stall.is_none() && self.latency_mix.iter().all(|&(_, d)| d.is_zero())
    }

    /// When a response that is ready at `ready_ns` (`CLOCK_MONOTONIC`) may go out: at once, or at the
    /// end of the stall window it falls in.
    pub fn release_at(&self, ready_ns: u64) -> u64 {
        match self.stall {
            Some((every, hold)) if !every.is_zero() => {
                let every = every.as_nanos() as u64;
                let hold = (hold.as_nanos() as u64).min(every);
                let phase = ready_ns % every;
                if phase < hold {
                    ready_ns - phase + hold
                } else {
                    ready_ns
                }
            }
            _ => ready_ns,
        }
    }

    /// The stall windows `[start, end)` in `CLOCK_MONOTONIC` nanoseconds that overlap `[from, to)`.
    pub fn stalls_between(&self, from: u64, to: u64) -> Vec<(u64, u64)> {
        let Some((every, hold)) = self.stall else {
            return Vec::new();
        };
        let (every, hold) = (every.as_nanos() as u64, hold.as_nanos() as u64);
        if every == 0 {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut start = from - from % every;
        while start < to {
            if start + hold > from {
                out.push((start, start + hold));
            }
            start += every;
        }
        out
    }
}

/// Deals the latency mix's delays in exact proportions (smooth weighted round-robin).
#[derive(Debug)]
pub(super) struct MixCursor {
    pub(super) current: Vec<i64>,
}

impl MixCursor {
    pub(super) fn next(&mut self, mix: &[(u32, Duration)]) -> Duration {
        let total: i64 = mix.iter().map(|&(w, _)| i64::from(w)).sum();
        if total == 0 {
            return Duration::ZERO;
        }
        for (c, &(w, _)) in self.current.iter_mut().zip(mix) {
            *c += i64::from(w);
        }
        let best = (0..mix.len())
            .max_by_key(|&i| (self.current[i], std::cmp::Reverse(i)))
            .unwrap_or(0);
        self.current[best] -= total;
        mix[best].1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stall_windows() {
        let ms = |n: u64| n * 1_000_000;
        let b = Behaviour {
            stall: Some((Duration::from_secs(2), Duration::from_millis(200))),
            latency_mix: Vec::new(),
        };
        // Inside a window: held until its end. Outside, or exactly at its end: at once.
        assert_eq!(b.release_at(ms(4_050)), ms(4_200));
        assert_eq!(b.release_at(ms(4_000)), ms(4_200));
        assert_eq!(b.release_at(ms(4_200)), ms(4_200));
        assert_eq!(b.release_at(ms(5_999)), ms(5_999));
        assert_eq!(
            b.stalls_between(ms(100), ms(4_100)),
            [(0, ms(200)), (ms(2_000), ms(2_200)), (ms(4_000), ms(4_200))]
        );
        assert_eq!(Behaviour::default().release_at(7), 7);
    }

    #[test]
    fn latency_mix_is_dealt_in_exact_proportions() {
        let mix = [
            (90, Duration::from_millis(1)),
            (9, Duration::from_millis(10)),
            (1, Duration::from_millis(100)),
        ];
        let mut cursor = MixCursor {
            current: vec![0; 3],
        };
        let dealt: Vec<Duration> = (0..100).map(|_| cursor.next(&mix)).collect();
        for (w, d) in mix {
            assert_eq!(
                dealt.iter().filter(|&&x| x == d).count(),
                w as usize,
                "{d:?}"
            );
        }
        // Interleaved, not in runs: the slow ones are spread out.
        let first_slow = dealt
            .iter()
            .position(|&d| d == Duration::from_millis(10))
            .unwrap();
        assert!(first_slow < 15, "{first_slow}");
    }
}
