//! The console's judgement of seconds, its verdicts, and its failure reasons.

use std::time::Duration;

use formats::IntervalStats;
use formats::health::Cause;
use hdrhistogram::Histogram;

use super::health::{health_verdict, seconds_list};
use super::*;
use crate::core::SecondReport;

fn report(core: u32, second: u64, stats: IntervalStats) -> SecondReport {
    let mut lag = Histogram::new_with_bounds(1, 3_600_000_000, 2).unwrap();
    let late = u64::from(stats.late_requests);
    for _ in 0..u64::from(stats.requests).saturating_sub(late) {
        lag.record(5).unwrap();
    }
    for _ in 0..late {
        lag.record(2_500).unwrap();
    }
    SecondReport {
        core,
        second,
        active_users: stats.active_users,
        requests: stats.requests,
        failures: 0,
        latency: lag.clone(),
        lag,
        lag_max_us: stats.lag_max_us,
        iterations_dropped: 0,
        live: None,
        stats,
        failure_reasons: Vec::new(),
    }
}

fn whole(requests: u32, late: u32) -> IntervalStats {
    IntervalStats {
        duration_us: 1_000_000,
        requests,
        late_requests: late,
        lag_max_us: if late > 0 { 2_500 } else { 5 },
        cpu_user_us: 20_000,
        run_delay_us: Some(0),
        active_users: 20,
        users_max: 20,
        ..IntervalStats::default()
    }
}

/// The demo's first second: one late request out of 245 is noted, not judged; a preempted second
/// is judged and named; the partial interval after the end is neither counted nor judged.
#[test]
fn seconds_are_judged_by_the_shared_rule_and_the_partial_end_is_left_out() {
    let mut c = Console::new(1, Duration::from_secs(3), true);
    c.on_second(report(0, 1, whole(245, 1)));
    c.on_second(report(
        0,
        2,
        IntervalStats {
            run_delay_us: Some(8_000),
            involuntary_switches: 41,
            ..whole(250, 12)
        },
    ));
    c.on_second(report(0, 3, whole(250, 0)));
    // The grace period after the planned end: 10 ms, a busy shutdown and one late request.
    c.on_second(report(
        0,
        4,
        IntervalStats {
            duration_us: 10_000,
            cpu_user_us: 10_300,
            ..whole(6, 6)
        },
    ));
    let h = c.finish();
    assert_eq!((h.seconds, h.lagging_seconds), (3, 1));
    assert_eq!((h.requests, h.late, h.late_unjudged), (745, 13, 1));
    assert_eq!(
        h.saturated_seconds, 0,
        "the partial end is not a saturated second"
    );
    let (seconds, evidence, _) = &h.causes[&Cause::Preempted];
    assert_eq!(seconds, &[2]);
    assert!(evidence.contains("waited 8.0 ms for a CPU"), "{evidence}");
    let verdict = health_verdict(&h, 100, 0);
    assert!(verdict.contains("in 1 of 3 seconds"), "{verdict}");
    // The late requests over the requests of the lagging seconds, as the analyzer's report counts.
    assert!(
        verdict.contains("(12 of 250 requests in those seconds"),
        "{verdict}"
    );
    assert!(verdict.contains("preempted in 2s"), "{verdict}");
    assert!(verdict.contains("chrt -f 10"), "{verdict}");
    assert!(verdict.contains("note: 1 request(s)"), "{verdict}");
}

#[test]
fn a_quiet_run_is_ok_and_says_what_it_rests_on() {
    let mut c = Console::new(2, Duration::from_secs(2), true);
    for sec in 1..=2 {
        c.on_second(report(0, sec, whole(120, 0)));
        c.on_second(report(1, sec, whole(125, 0)));
    }
    let h = c.finish();
    let verdict = health_verdict(&h, 400, 0);
    assert!(
        verdict.starts_with("generator health: ok (2 seconds, 490 requests"),
        "{verdict}"
    );
}

/// A run that dropped most of its arrivals ends with the verdict `analyzer check` will give it, and
/// the fix names the command-line flag as well as the profile field.
#[test]
fn dropped_arrivals_make_the_verdict_invalid_or_suspect() {
    let mut c = Console::new(1, Duration::from_secs(2), true);
    for sec in 1..=2 {
        c.on_second(report(0, sec, whole(100, 0)));
    }
    let h = c.finish();
    let verdict = health_verdict(&h, 200, 200);
    assert!(
        verdict.contains("raise max_users (`--users` on the command line) or queue"),
        "{verdict}"
    );
    assert!(
        verdict.contains("generator health: INVALID") && verdict.contains("--allow-invalid"),
        "{verdict}"
    );
    assert!(!verdict.contains("generator health: ok"), "{verdict}");
    // One dropped arrival in many is suspect, not invalid.
    let verdict = health_verdict(&h, 100_000, 1);
    assert!(verdict.contains("generator health: SUSPECT"), "{verdict}");
    assert!(!verdict.contains("INVALID"), "{verdict}");
}

#[test]
fn failure_reasons_are_named_live_and_summed_at_the_end() {
    assert_eq!(
        short_reason("connect: Connection refused (os error 111)"),
        "connect: connection refused"
    );
    assert_eq!(
        short_reason("check Status([201]) failed: expected status 201, got 409"),
        "check Status([201]) failed: expected status 201, got 409"
    );
    assert_eq!(thousands(1880), "1,880");
    assert_eq!(thousands(1_234_567), "1,234,567");
    assert_eq!(thousands(12), "12");
    let mut c = Console::new(1, Duration::from_secs(2), true);
    for sec in 1..=2 {
        let mut r = report(0, sec, whole(940, 0));
        r.failures = 940;
        r.failure_reasons = vec![
            ("connect: Connection refused (os error 111)".into(), 930),
            ("unexpected status 503".into(), 10),
        ];
        c.on_second(r);
    }
    assert_eq!(
        c.top_reasons(2),
        vec![
            ("connect: connection refused", 1860),
            ("unexpected status 503", 20)
        ]
    );
    let summary = c.failure_summary(1880);
    assert!(
        summary.contains("failures by reason (1,880 of 1,880 requests failed)"),
        "{summary}"
    );
    assert!(
        summary.contains("1,860   98.9%  connect: connection refused"),
        "{summary}"
    );
    assert!(
        summary.contains("EVERY REQUEST FAILED (connect: connection refused)"),
        "{summary}"
    );
    assert!(!c.failure_summary(3000).contains("EVERY REQUEST FAILED"));
    assert_eq!(
        Console::new(1, Duration::from_secs(1), true).failure_summary(10),
        ""
    );
}

#[test]
fn lists_of_seconds_stay_short() {
    assert_eq!(seconds_list(&[3]), "3s");
    assert_eq!(seconds_list(&[1, 5, 9]), "1s, 5s and 9s");
    assert_eq!(
        seconds_list(&(1..=12).collect::<Vec<_>>()),
        "1s, 2s, 3s, 4s, 5s, 6s … (12 seconds)"
    );
}
