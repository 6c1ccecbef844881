//! The data the statistics resample: latencies in log-linear buckets, counted per time window.

/// Sub-buckets per power of two, as a power of two.
const SUB_BITS: u32 = 7;
pub(super) const SUB: u32 = 1 << SUB_BITS;

/// The number of latency buckets: exact below 128 µs, then 128 per power of two up to `u32::MAX`.
pub const BUCKETS: usize = ((32 - SUB_BITS + 1) * SUB) as usize;

/// The bucket of a latency in µs.
pub fn bucket(us: u32) -> u16 {
    if us < SUB {
        return us as u16;
    }
    let exp = 31 - us.leading_zeros();
    let mantissa = (us >> (exp - SUB_BITS)) & (SUB - 1);
    ((exp - SUB_BITS + 1) * SUB + mantissa) as u16
}

/// The smallest latency in a bucket, µs.
pub fn bucket_low(b: u16) -> u32 {
    let b = u32::from(b);
    if b < SUB {
        return b;
    }
    let exp = b / SUB + SUB_BITS - 1;
    (SUB + b % SUB) << (exp - SUB_BITS)
}

/// The value reported for a bucket: its midpoint, µs.
pub fn bucket_value(b: u16) -> f64 {
    let low = f64::from(bucket_low(b));
    let next = if usize::from(b) + 1 < BUCKETS {
        f64::from(bucket_low(b + 1))
    } else {
        f64::from(u32::MAX) + 1.0
    };
    (low + next - 1.0) / 2.0
}

/// One time window of one series: counts and a sparse latency histogram.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Window {
    /// Requests that completed in the window.
    pub requests: u64,
    /// Of those, how many failed.
    pub failures: u64,
    /// The window's length, seconds.
    pub seconds: f64,
    /// (bucket, count) for every non-empty latency bucket, in bucket order.
    pub latency: Vec<(u16, u32)>,
}

/// A run's windows for one request name (or for the whole run).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    /// Windows in time order.
    pub windows: Vec<Window>,
}

impl Window {
    /// Adds another window's counts to this one.
    pub fn add(&mut self, other: &Window) {
        self.requests += other.requests;
        self.failures += other.failures;
        self.seconds = self.seconds.max(other.seconds);
        let mut merged = Vec::with_capacity(self.latency.len() + other.latency.len());
        let (mut a, mut b) = (
            self.latency.iter().peekable(),
            other.latency.iter().peekable(),
        );
        loop {
            match (a.peek(), b.peek()) {
                (Some(&&(x, cx)), Some(&&(y, cy))) if x == y => {
                    merged.push((x, cx + cy));
                    a.next();
                    b.next();
                }
                (Some(&&(x, cx)), Some(&&(y, _))) if x < y => {
                    merged.push((x, cx));
                    a.next();
                }
                (_, Some(&&(y, cy))) => {
                    merged.push((y, cy));
                    b.next();
                }
                (Some(&&(x, cx)), None) => {
                    merged.push((x, cx));
                    a.next();
                }
                (None, None) => break,
            }
        }
        self.latency = merged;
    }
}

/// Builds a [`Series`] from samples pushed in any order. It keeps two bytes per sample (the latency
/// bucket) until [`SeriesBuilder::finish`] counts them.
#[derive(Debug)]
pub struct SeriesBuilder {
    window_us: u64,
    start_us: u64,
    windows: Vec<(u64, u64, Vec<u16>)>,
}

impl SeriesBuilder {
    /// Windows of `window_us` starting at `start_us` (samples before it are ignored).
    pub fn new(start_us: u64, window_us: u64) -> Self {
        SeriesBuilder {
            window_us: window_us.max(1),
            start_us,
            windows: Vec::new(),
        }
    }

    fn window(&mut self, t_us: u64) -> Option<&mut (u64, u64, Vec<u16>)> {
        let w = (t_us.checked_sub(self.start_us)? / self.window_us) as usize;
        if w >= self.windows.len() {
            self.windows.resize_with(w + 1, Default::default);
        }
        Some(&mut self.windows[w])
    }

    /// Adds a request that started (or completed; be consistent) at `t_us` with `latency_us`.
    pub fn push(&mut self, t_us: u64, latency_us: u32) {
        if let Some((requests, _, buckets)) = self.window(t_us) {
            *requests += 1;
            buckets.push(bucket(latency_us));
        }
    }

    /// Counts a failed request at `t_us` (it must also have been pushed).
    pub fn fail(&mut self, t_us: u64) {
        if let Some((_, failures, _)) = self.window(t_us) {
            *failures += 1;
        }
    }

    /// The series, with at least `windows` windows (trailing empty ones included, so that throughput
    /// counts the whole measured time).
    pub fn finish(self, windows: usize) -> Series {
        let seconds = self.window_us as f64 / 1e6;
        let mut out: Vec<Window> = self
            .windows
            .into_iter()
            .map(|(requests, failures, mut buckets)| {
                buckets.sort_unstable();
                let mut latency: Vec<(u16, u32)> = Vec::new();
                for b in buckets {
                    match latency.last_mut() {
                        Some((last, count)) if *last == b => *count += 1,
                        _ => latency.push((b, 1)),
                    }
                }
                Window {
                    requests,
                    failures,
                    seconds,
                    latency,
                }
            })
            .collect();
        out.resize_with(windows.max(out.len()), || Window {
            seconds,
            ..Window::default()
        });
        Series { windows: out }
    }
}

impl Series {
    /// Points of a percentile plot over all windows, in the shape of
    /// [`crate::analysis::distribution`]: (quantile, latency in ms) at quantiles 1 − 10^(−k/20) as far
    /// as the sample count reaches, then the maximum. Latencies are bucket midpoints (within 0.8 %).
    pub fn distribution(&self) -> Vec<(f64, f64)> {
        let totals = self.totals();
        let n = totals.latencies();
        if n == 0 {
            return Vec::new();
        }
        let top = 1.0 - 1.0 / n as f64;
        let mut points = Vec::new();
        for k in 0..=200 {
            let q = 1.0 - 10f64.powf(-f64::from(k) / 20.0);
            if q > top {
                break;
            }
            points.extend(totals.quantile(q).map(|v| (q, v / 1000.0)));
        }
        let max = totals.counts.iter().rposition(|&c| c > 0).unwrap_or(0);
        points.push((
            top.max(points.last().map_or(0.0, |p| p.0)),
            bucket_value(max as u16) / 1000.0,
        ));
        points
    }

    /// The windows from `from` up to (not including) `to`, as a series of their own (a `per 10s`
    /// threshold judges each such stretch).
    pub fn slice(&self, from: usize, to: usize) -> Series {
        let to = to.min(self.windows.len());
        Series {
            windows: self.windows[from.min(to)..to].to_vec(),
        }
    }

    /// Requests over all windows.
    pub fn requests(&self) -> u64 {
        self.windows.iter().map(|w| w.requests).sum()
    }

    pub(super) fn totals(&self) -> Totals {
        let mut t = Totals::new();
        self.windows.iter().for_each(|w| t.add(w));
        t
    }
}

/// Totals of one (resampled) run.
pub(super) struct Totals {
    pub(super) requests: u64,
    pub(super) failures: u64,
    pub(super) seconds: f64,
    pub(super) counts: Vec<u64>,
}

impl Totals {
    pub(super) fn new() -> Self {
        Totals {
            requests: 0,
            failures: 0,
            seconds: 0.0,
            counts: vec![0; BUCKETS],
        }
    }

    pub(super) fn clear(&mut self) {
        self.requests = 0;
        self.failures = 0;
        self.seconds = 0.0;
        self.counts.fill(0);
    }

    pub(super) fn add(&mut self, w: &Window) {
        self.requests += w.requests;
        self.failures += w.failures;
        self.seconds += w.seconds;
        for &(b, c) in &w.latency {
            self.counts[usize::from(b)] += u64::from(c);
        }
    }

    /// How many latencies were counted.
    pub(super) fn latencies(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Nearest-rank quantile over the bucketed latencies.
    pub(super) fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.latencies();
        if n == 0 {
            return None;
        }
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(bucket_value(b as u16));
            }
        }
        unreachable!("the counts sum to n and rank <= n")
    }

    /// The mean and standard deviation of the bucketed latencies.
    pub(super) fn moments(&self) -> Option<(f64, f64)> {
        let n = self.latencies();
        if n == 0 {
            return None;
        }
        let (mut sum, mut squares) = (0.0, 0.0);
        for (b, &c) in self.counts.iter().enumerate().filter(|(_, c)| **c > 0) {
            let v = bucket_value(b as u16);
            sum += c as f64 * v;
            squares += c as f64 * v * v;
        }
        let mean = sum / n as f64;
        Some((mean, (squares / n as f64 - mean * mean).max(0.0).sqrt()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_u32_with_bounded_error() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(127), 127);
        assert_eq!(bucket(128), 128);
        assert_eq!(usize::from(bucket(u32::MAX)), BUCKETS - 1);
        let mut v = 1u32;
        while v < u32::MAX / 2 {
            let b = bucket(v);
            assert!(bucket_low(b) <= v, "{v}");
            assert!(
                usize::from(b) + 1 == BUCKETS || bucket_low(b + 1) > v,
                "{v}"
            );
            let err = (bucket_value(b) - f64::from(v)).abs() / f64::from(v);
            assert!(err < 0.008, "{v}: {err}");
            v = v + v / 97 + 1;
        }
    }

    #[test]
    fn slices_keep_their_windows() {
        let mut b = SeriesBuilder::new(0, 1_000_000);
        for s in 0..10u64 {
            for _ in 0..=s {
                b.push(s * 1_000_000, 1_000);
            }
        }
        let series = b.finish(12);
        assert_eq!(series.windows.len(), 12);
        let part = series.slice(2, 5);
        assert_eq!(part.windows.len(), 3);
        assert_eq!(part.requests(), 3 + 4 + 5);
        assert_eq!(series.slice(10, 20).requests(), 0);
        assert_eq!(series.slice(10, 20).windows.len(), 2);
    }
}
