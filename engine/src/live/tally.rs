//! What a core keeps per request name, and the extra per-second data it hands the coordinator when a
//! live view (`--web`, `--metrics`) is on.
//!
//! The request path does the same work with or without a live view: each sample goes into its name's
//! histogram *of the current second* (instead of a whole-run one), one counter indexed by its outcome
//! (instead of an ok/failed branch) and two byte counters. Everything else happens once a second, at
//! the core's tick: the second's histogram is added to the name's whole-run histogram and to the
//! all-names histogram of the second (the console's), and, with a live view, its recorded buckets are
//! copied out as `(value, count)` pairs. Those pairs are all the coordinator needs to rebuild exactly
//! the histograms the core has, so live percentiles and Prometheus buckets agree with the summary.

use formats::{IntervalStats, Outcome, Sample};
use hdrhistogram::Histogram;

/// Outcome codes this build knows; the counters are indexed by code.
pub(crate) const OUTCOMES: usize = Outcome::ALL.len();

/// 1 µs to one hour at `sigfig` significant digits; larger values saturate at the top bucket.
pub(crate) fn histogram(sigfig: u8) -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, sigfig).expect("valid histogram bounds")
}

/// Significant digits of the per-name latency histograms (the summary table's, and the live view's).
pub(crate) const NAME_SIGFIG: u8 = 3;

/// One request name's counters on one core.
#[derive(Debug)]
pub(crate) struct NameTally {
    name: String,
    /// Corrected latency (from the intended start) of every request before the current second, µs.
    total: Histogram<u64>,
    /// Corrected latency of the current second's requests, µs.
    second: Histogram<u64>,
    /// Requests since the start, by outcome code.
    outcomes: [u64; OUTCOMES],
    bytes_sent: u64,
    bytes_received: u64,
}

impl NameTally {
    pub(crate) fn new(name: &str) -> NameTally {
        NameTally {
            name: name.to_owned(),
            total: histogram(NAME_SIGFIG),
            second: histogram(NAME_SIGFIG),
            outcomes: [0; OUTCOMES],
            bytes_sent: 0,
            bytes_received: 0,
        }
    }

    /// Counts one sample whose corrected latency is `corrected` µs. On the request path.
    #[inline]
    pub(crate) fn record(&mut self, s: &Sample, corrected: u64) {
        self.second.saturating_record(corrected);
        self.outcomes[usize::from(s.outcome.code())] += 1;
        self.bytes_sent += u64::from(s.bytes_sent);
        self.bytes_received += u64::from(s.bytes_received);
    }

    /// Ends the current second: adds it to the whole-run histogram and to `all` (every name's
    /// histogram of this second), and returns its recorded buckets when `copy` is set.
    fn close_second(&mut self, all: &mut Histogram<u64>, copy: bool) -> Vec<(u64, u64)> {
        if self.second.is_empty() {
            return Vec::new();
        }
        let buckets = if copy {
            self.second
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect()
        } else {
            Vec::new()
        };
        // Same bounds and precision: these cannot fail.
        let _ = self.total.add(&self.second);
        let _ = all.add(&self.second);
        self.second.reset();
        buckets
    }

    /// The name, its whole-run corrected-latency histogram, successes and failures, for the summary.
    pub(crate) fn take_done(&mut self) -> (String, Histogram<u64>, u64, u64) {
        if !self.second.is_empty() {
            let _ = self.total.add(&self.second);
            self.second.reset();
        }
        let ok = self.outcomes[usize::from(Outcome::Ok.code())];
        let all: u64 = self.outcomes.iter().sum();
        (self.name.clone(), self.total.clone(), ok, all - ok)
    }
}

/// A core's state for the live view: how many names it has announced.
#[derive(Debug, Default)]
pub(crate) struct LiveTrack {
    names_sent: usize,
}

/// One core's second for the live view, beside the console's [`crate::core::SecondReport`] fields.
#[derive(Debug)]
pub(crate) struct LiveSecond {
    /// Request names this core interned since its previous report, in id order (every name, the first
    /// time).
    pub new_names: Vec<String>,
    /// Per request name, by id.
    pub names: Vec<NameSecond>,
    /// Uncorrected latency (from the actual start) of every request completed this second, µs.
    pub uncorrected: Histogram<u64>,
    /// The interval record the core logged for this second (CPU time, connections, iterations).
    pub interval: IntervalStats,
}

/// One request name's second on one core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NameSecond {
    /// Requests since the start, by outcome code.
    pub outcomes: [u64; OUTCOMES],
    /// Bytes written and read since the start.
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// The corrected latencies of this second, as the histogram's recorded buckets: (the highest
    /// value the bucket stands for, µs; count).
    pub latency: Vec<(u64, u64)>,
}

/// Ends the second for every name (see [`NameTally::close_second`]), filling `all` with the corrected
/// latencies of the second. With a live view (`track`), also returns what the coordinator needs.
pub(crate) fn close_second(
    names: &mut [NameTally],
    all: &mut Histogram<u64>,
    uncorrected: &Histogram<u64>,
    interval: &IntervalStats,
    track: Option<&mut LiveTrack>,
) -> Option<Box<LiveSecond>> {
    all.reset();
    let copy = track.is_some();
    let per_name: Vec<NameSecond> = names
        .iter_mut()
        .map(|n| NameSecond {
            latency: n.close_second(all, copy),
            outcomes: n.outcomes,
            bytes_sent: n.bytes_sent,
            bytes_received: n.bytes_received,
        })
        .filter(|_| copy)
        .collect();
    let track = track?;
    let new_names = names[track.names_sent.min(names.len())..]
        .iter()
        .map(|n| n.name.clone())
        .collect();
    track.names_sent = names.len();
    Some(Box::new(LiveSecond {
        new_names,
        names: per_name,
        uncorrected: uncorrected.clone(),
        interval: *interval,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use formats::NameId;

    fn sample(outcome: Outcome, latency_us: u32, lag_us: u64) -> Sample {
        Sample {
            name: NameId(0),
            intended_us: 1000,
            actual_us: 1000 + lag_us,
            latency_us,
            outcome,
            bytes_sent: 10,
            bytes_received: 100,
            ..Sample::default()
        }
    }

    #[test]
    fn seconds_fold_into_the_whole_run_and_the_copied_buckets_rebuild_the_second() {
        let mut names = vec![NameTally::new("a"), NameTally::new("b")];
        let mut all = histogram(2);
        let uncorrected = histogram(2);
        let interval = IntervalStats::default();
        let mut track = LiveTrack::default();
        for (i, us) in [150u32, 1_234, 98_765, 1_234].into_iter().enumerate() {
            let s = sample(
                if i == 2 {
                    Outcome::Timeout
                } else {
                    Outcome::Ok
                },
                us,
                5,
            );
            names[i % 2].record(&s, s.corrected_latency_us());
        }
        let live = close_second(
            &mut names,
            &mut all,
            &uncorrected,
            &interval,
            Some(&mut track),
        )
        .expect("a live second");
        assert_eq!(live.new_names, ["a", "b"]);
        assert_eq!(all.len(), 4);
        // The copied buckets rebuild the second's histogram exactly.
        let mut rebuilt = histogram(NAME_SIGFIG);
        for &(v, c) in &live.names[0].latency {
            rebuilt.record_n(v, c).unwrap();
        }
        assert_eq!(rebuilt.len(), 2);
        assert_eq!(
            rebuilt.value_at_quantile(1.0),
            names[0].total.value_at_quantile(1.0)
        );
        assert_eq!(live.names[0].outcomes[0], 1);
        assert_eq!(live.names[0].outcomes[Outcome::Timeout.code() as usize], 1);
        assert_eq!(live.names[1].outcomes[0], 2);
        assert_eq!(live.names[1].bytes_received, 200);

        // The next second announces no names again and carries only its own requests.
        let s = sample(Outcome::Ok, 700, 0);
        names[1].record(&s, s.corrected_latency_us());
        let live = close_second(
            &mut names,
            &mut all,
            &uncorrected,
            &interval,
            Some(&mut track),
        )
        .expect("a live second");
        assert!(live.new_names.is_empty());
        assert!(live.names[0].latency.is_empty());
        assert_eq!(live.names[1].latency.iter().map(|b| b.1).sum::<u64>(), 1);
        assert_eq!(all.len(), 1);

        let (name, total, ok, failed) = names[1].take_done();
        assert_eq!(
            (name.as_str(), total.len(), ok, failed),
            ("b", 3, 3, 0),
            "whole-run totals"
        );
    }

    #[test]
    fn without_a_live_view_nothing_is_copied() {
        let mut names = vec![NameTally::new("a")];
        let mut all = histogram(2);
        let s = sample(Outcome::Ok, 100, 0);
        names[0].record(&s, 100);
        let live = close_second(
            &mut names,
            &mut all,
            &histogram(2),
            &IntervalStats::default(),
            None,
        );
        assert!(live.is_none());
        assert_eq!(all.len(), 1);
        assert_eq!(names[0].total.len(), 1);
    }
}
