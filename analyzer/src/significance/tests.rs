//! Tests of the intervals, their floors and the verdicts built on them.

use super::*;

#[test]
fn normal_quantile_matches_tables() {
    for (p, z) in [
        (0.5, 0.0),
        (0.975, 1.959_964),
        (0.995, 2.575_829),
        (0.8, 0.841_621),
        (0.001, -3.090_232),
    ] {
        assert!((normal_quantile(p) - z).abs() < 1e-5, "{p}");
    }
}

/// A synthetic run: `seconds` windows of `per_second` log-normal latencies (median 2 ms) scaled by
/// `scale`, with `error_rate` failures, and one second in ten, at random, 20 % slower throughout (a
/// GC-like stall), so that requests within a window are not independent.
fn run(seed: u64, seconds: usize, per_second: usize, scale: f64, error_rate: f64) -> Series {
    let mut rng = Rng::new(seed, 1);
    let mut b = SeriesBuilder::new(0, 1_000_000);
    for s in 0..seconds {
        let stall = if rng.unit() < 0.1 { 1.2 } else { 1.0 };
        for i in 0..per_second {
            let n = rng.normal();
            let lat = 2_000.0 * (0.6 * n).exp() * scale * stall;
            let end = (s * 1_000_000 + i * 1_000_000 / per_second) as u64;
            b.push(end, lat as u32);
            if rng.unit() < error_rate {
                b.fail(end);
            }
        }
    }
    b.finish(seconds)
}

fn five() -> Settings {
    Settings {
        family: 5,
        ..Settings::default()
    }
}

#[test]
fn a_twenty_percent_slowdown_is_higher_and_beyond_a_ten_percent_limit() {
    let base = run(1, 60, 500, 1.0, 0.01);
    let cand = run(2, 60, 500, 1.2, 0.01);
    for q in [0.5, 0.9, 0.99] {
        let c = compare(&base, &cand, Metric::Latency(q), 0.1, &five());
        assert_eq!(c.verdict, Verdict::Higher, "P{}: {c:?}", q * 100.0);
        assert!((c.change - 0.2).abs() < 0.08, "P{}: {c:?}", q * 100.0);
    }
    let p50 = compare(&base, &cand, Metric::Latency(0.5), 0.1, &five());
    assert_eq!(
        p50.against(0.1).decision,
        Decision::Beyond,
        "+20% is beyond a 10% limit with this much data: {p50:?}"
    );
    assert_eq!(p50.against(0.5).decision, Decision::Within, "{p50:?}");
}

#[test]
fn same_distribution_is_within_noise_for_nineteen_of_twenty_seed_pairs() {
    let mut noisy = 0;
    for pair in 0..20u64 {
        let base = run(100 + pair, 120, 500, 1.0, 0.01);
        let cand = run(200 + pair, 120, 500, 1.0, 0.01);
        let verdicts = [
            compare(&base, &cand, Metric::Latency(0.5), 0.1, &five()),
            compare(&base, &cand, Metric::Latency(0.9), 0.1, &five()),
            compare(&base, &cand, Metric::Latency(0.99), 0.1, &five()),
            compare(&base, &cand, Metric::ErrorRate, 0.005, &five()),
            compare(&base, &cand, Metric::Throughput, 0.1, &five()),
        ];
        if verdicts.iter().any(|c| c.verdict != Verdict::WithinNoise) {
            noisy += 1;
            eprintln!("pair {pair}: {verdicts:#?}");
        }
    }
    assert!(
        noisy <= 1,
        "{noisy} of 20 same-distribution pairs were not within noise"
    );
}

#[test]
fn a_short_run_has_too_few_samples_and_says_how_many_it_needs() {
    let base = run(1, 3, 20, 1.0, 0.01);
    let cand = run(2, 3, 20, 1.05, 0.01);
    let c = compare(
        &base,
        &cand,
        Metric::Latency(0.99),
        0.1,
        &Settings::default(),
    );
    assert_eq!(c.verdict, Verdict::TooFewSamples, "{c:?}");
    assert!(c.low.is_nan() && c.high.is_nan(), "no interval: {c:?}");
    let j = c.against(0.1);
    assert_eq!(j.decision, Decision::Undecided);
    assert!(
        j.reason.contains("a P99 needs at least 1,000 requests"),
        "{j:?}"
    );
    // 60 requests in 3 s; 1,000 need 50 s.
    assert_eq!(j.decide_s, Some(50.0), "{j:?}");
}

/// The mechanism behind a collapsed interval: ten requests, all in the first second of a minute.
/// Every replicate holds that second zero or more times, so every replicate's P99 is the same
/// and the spread is zero. The minimum evidence rule refuses it.
#[test]
fn samples_in_one_window_are_too_few_whatever_the_change() {
    let burst = |scale: f64| {
        let mut b = SeriesBuilder::new(0, 1_000_000);
        for i in 0..10u64 {
            b.push(i * 50_000, ((20_000 + i * 700) as f64 * scale) as u32);
        }
        b.finish(60)
    };
    let (a, b) = (burst(1.0), burst(1.314));
    for (x, y) in [(&a, &b), (&b, &a)] {
        for metric in [
            Metric::Latency(0.99),
            Metric::Latency(0.5),
            Metric::ErrorRate,
            Metric::Throughput,
        ] {
            let c = compare(x, y, metric, 0.1, &Settings::default());
            assert_eq!(c.verdict, Verdict::TooFewSamples, "{metric:?}: {c:?}");
            assert_eq!(c.against(0.1).decision, Decision::Undecided);
            assert!(
                c.against(0.1).reason.contains("10 requests in 1 window"),
                "{c:?}"
            );
        }
    }
}

/// Swapping two runs of one distribution mirrors the change and keeps its standard error, so
/// the descriptions mirror too. Against a one-sided limit the answers may differ (+5 % may
/// straddle a +10 % limit where −5 % lies within it), but noise is beyond it in neither order.
#[test]
fn swapping_the_runs_mirrors_the_change_and_keeps_the_uncertainty() {
    let mirror = |v: Verdict| match v {
        Verdict::Higher => Verdict::Lower,
        Verdict::Lower => Verdict::Higher,
        other => other,
    };
    for seeds in [(11, 12), (13, 14), (15, 16)] {
        let a = run(seeds.0, 40, 200, 1.0, 0.02);
        let b = run(seeds.1, 40, 200, 1.0, 0.02);
        for metric in [
            Metric::Latency(0.5),
            Metric::Latency(0.99),
            Metric::ErrorRate,
            Metric::Throughput,
        ] {
            let ab = compare(&a, &b, metric, 0.1, &five());
            let ba = compare(&b, &a, metric, 0.1, &five());
            let (eab, eba) = (ab.interval().estimate, ba.interval().estimate);
            assert!((eab + eba).abs() < 1e-12, "{metric:?}: {ab:?} {ba:?}");
            assert!((ab.se - ba.se).abs() < 1e-12, "{metric:?}: {ab:?} {ba:?}");
            assert_eq!(ab.verdict, mirror(ba.verdict), "{metric:?}: {ab:?} {ba:?}");
            let limit = if metric == Metric::ErrorRate {
                0.005
            } else {
                0.1
            };
            for c in [&ab, &ba] {
                assert_ne!(c.against(limit).decision, Decision::Beyond, "{c:?}");
            }
        }
    }
}

/// Two runs of one open-model schedule have the same count in every second, so their paired
/// replicates all have the same throughput ratio. The Poisson floor keeps the interval open.
#[test]
fn identical_schedules_still_get_an_interval() {
    let a = run(1, 30, 100, 1.0, 0.0);
    let mut b = run(2, 30, 100, 1.0, 0.0);
    b.windows[29].requests -= 3;
    let c = compare(&a, &b, Metric::Throughput, 0.1, &Settings::default());
    assert!(c.low < c.change && c.change < c.high, "{c:?}");
    assert!(c.high - c.low > 0.05, "3,000 requests: ±z/√1500: {c:?}");
    assert_eq!(c.verdict, Verdict::WithinNoise, "{c:?}");
}

#[test]
fn error_rate_changes_are_in_percentage_points() {
    let base = run(5, 60, 500, 1.0, 0.01);
    let cand = run(6, 60, 500, 1.0, 0.03);
    let c = compare(&base, &cand, Metric::ErrorRate, 0.005, &Settings::default());
    assert_eq!(c.verdict, Verdict::Higher, "{c:?}");
    assert!((c.change - 0.02).abs() < 0.005, "{c:?}");
    assert_eq!(c.against(0.005).decision, Decision::Beyond);
}

#[test]
fn throughput_down_is_lower_and_breaks_a_throughput_limit() {
    let base = run(5, 60, 500, 1.0, 0.0);
    let cand = run(6, 60, 400, 1.0, 0.0);
    let c = compare(&base, &cand, Metric::Throughput, 0.1, &Settings::default());
    assert_eq!(c.verdict, Verdict::Lower, "{c:?}");
    assert!((c.change + 0.2).abs() < 0.01, "{c:?}");
    assert_eq!(c.against(0.05).decision, Decision::Beyond, "{c:?}");
    assert_eq!(c.against(0.5).decision, Decision::Within, "{c:?}");
    let faster = compare(&cand, &base, Metric::Throughput, 0.1, &Settings::default());
    assert_eq!(faster.verdict, Verdict::Higher);
    assert_eq!(faster.against(0.05).decision, Decision::Within);
}

#[test]
fn a_change_near_the_limit_is_undecided_with_the_length_that_would_decide() {
    let base = run(21, 30, 200, 1.0, 0.0);
    let cand = run(22, 30, 200, 1.12, 0.0);
    let c = compare(&base, &cand, Metric::Latency(0.5), 0.1, &five());
    let j = c.against(0.1);
    assert_eq!(j.decision, Decision::Undecided, "{c:?}");
    let s = j
        .decide_s
        .expect("a length decides a change 2 % off the limit");
    assert!(s > 30.0, "longer than this run: {j:?}");
    assert!(j.decide.ends_with("of this load would decide"), "{j:?}");
    let exact = Comparison {
        change: 0.1,
        ..c.clone()
    };
    assert_eq!(exact.against(0.1).decide_s, None);
    assert!(
        exact
            .against(0.1)
            .decide
            .contains("no run length decides it"),
        "{:?}",
        exact.against(0.1)
    );
}

#[test]
fn no_data_is_too_few_samples() {
    let empty = Series::default();
    let c = compare(
        &empty,
        &run(1, 5, 10, 1.0, 0.0),
        Metric::Latency(0.5),
        0.1,
        &Settings::default(),
    );
    assert_eq!(c.verdict, Verdict::TooFewSamples);
    assert_eq!(c.against(0.1).decision, Decision::Undecided);
}

#[test]
fn a_single_run_estimate_covers_its_figure_and_refuses_too_few_samples() {
    let r = run(31, 60, 500, 1.0, 0.01);
    let e = estimate(&r, Metric::Latency(0.99), &Settings::default(), MIN_WINDOWS);
    assert!(e.shortfall.is_none(), "{e:?}");
    // Log-normal with σ = 0.6 and median 2 ms: P99 = 2 ms · e^(0.6·2.326) ≈ 8.1 ms; the stalls
    // push it up a little.
    assert!((7_500.0..9_500.0).contains(&e.value), "{e:?}");
    assert!(e.se > 0.0 && e.se < 0.1, "{e:?}");
    let mean = estimate(&r, Metric::Mean, &Settings::default(), MIN_WINDOWS);
    assert!(mean.se > 0.0 && mean.se < 0.05, "{mean:?}");
    let short = run(32, 5, 500, 1.0, 0.01);
    let e = estimate(
        &short,
        Metric::Latency(0.5),
        &Settings::default(),
        MIN_WINDOWS,
    );
    assert!(e.se.is_nan(), "{e:?}");
    assert!(
        e.shortfall
            .unwrap()
            .text
            .contains("2,500 requests in 5 windows")
    );
    let per_5s = estimate(&short, Metric::Latency(0.5), &Settings::default(), 5);
    assert!(per_5s.shortfall.is_none() && per_5s.se > 0.0, "{per_5s:?}");
}
