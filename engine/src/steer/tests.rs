//! Steering against whole plans, and the curves it moves; `plan_for` is shared with the live view's
//! tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use super::*;
use crate::clock::Clock;
use crate::plan::Plan;
use crate::schedule::{Nanos, RateCurve, Spawn, UserCurve};

#[test]
fn a_user_curve_reproduces_the_spawn_ramp_and_then_the_changes() {
    let spawn = Spawn {
        users: 10,
        rate: Some(5.0),
    };
    let mut curve = UserCurve::from_spawn(&spawn);
    let end = Nanos::from_duration(Duration::from_secs(60));
    // Before any change: user n from n / 5 s on, as the spawn schedule says.
    for n in 0..10 {
        let (start, stop) = curve.next_span(n, Nanos(0)).unwrap();
        assert_eq!(
            Duration::from_nanos(start.0),
            spawn.spawn_at(n).unwrap(),
            "user {n}"
        );
        assert!(stop >= end);
    }
    assert!(curve.next_span(10, Nanos(0)).is_none());
    assert_eq!(curve.wanted(1.0), 5);
    // Up to 20 over 5 s from t = 10 s: user 10 + i from 10 + i/2 s.
    curve.steer(10.0, 20.0, 5.0);
    assert_eq!(curve.wanted(10.0), 10);
    assert_eq!(curve.wanted(12.5), 15);
    assert_eq!(curve.wanted(30.0), 20);
    let at = |n: u32| curve.next_span(n, Nanos(0)).map(|(s, _)| s.0 as f64 / 1e9);
    assert_eq!(at(14), Some(12.0));
    assert_eq!(at(19), Some(14.5));
    assert_eq!(at(20), None);
    // Down to 4 at once from t = 20 s: users 4.. stop then; users 0..4 run on.
    curve.steer(20.0, 4.0, 0.0);
    let after = Nanos::from_duration(Duration::from_secs(15));
    let (_, stop) = curve.next_span(7, after).unwrap();
    assert_eq!(stop.0, 20_000_000_000);
    let (_, stop) = curve.next_span(3, after).unwrap();
    assert!(stop >= end);
    assert!(
        curve
            .next_span(7, Nanos::from_duration(Duration::from_secs(21)))
            .is_none()
    );
    // A change during a ramp starts from where the ramp had got to.
    let mut mid = UserCurve::from_spawn(&spawn);
    mid.steer(1.0, 0.0, 2.0);
    assert_eq!(mid.at(1.0), 5.0);
    assert_eq!(mid.at(2.0), 2.5);
    assert_eq!(mid.wanted(3.0), 0);
}

#[test]
fn a_steered_rate_keeps_the_arrivals_before_the_change() {
    let curve = RateCurve::constant(100.0, Duration::from_secs(10));
    let steered = curve.steered(Duration::from_secs(2), 300.0, Duration::from_secs(2));
    for n in 0..200 {
        assert_eq!(curve.arrival(n), steered.arrival(n), "arrival {n}");
    }
    assert_eq!(steered.duration(), curve.duration());
    assert!((steered.rate_at(Duration::from_secs(3)) - 200.0).abs() < 1e-9);
    assert!((steered.rate_at(Duration::from_secs(6)) - 300.0).abs() < 1e-9);
    // 200 before, 400 in the ramp, 300/s for the last 6 s.
    assert_eq!(steered.arrivals(), 200 + 400 + 1800);
    // A ramp past the end stops where it got to.
    let late = curve.steered(Duration::from_secs(9), 300.0, Duration::from_secs(4));
    assert!((late.rate_at(Duration::from_secs(10)) - 150.0).abs() < 1e-9);
    assert_eq!(late.duration(), curve.duration());
}

/// A plan of two cores for a profile whose load is `load`.
pub(crate) fn plan_for(load: &str, max_users: Option<u32>) -> Plan {
    let text = format!(
        r#"(name: "t", host: "http://127.0.0.1:9", load: {load},
            users: [(name: "a", weight: 2, tasks: [(requests: [(path: "/")])]),
                    (name: "b", weight: 1, tasks: [(requests: [(path: "/b")])])])"#
    );
    let spec = crate::profile::load_str(&text, std::path::Path::new("t.ron")).unwrap();
    let mut args = crate::cli::RunArgs {
        cores: Some(2),
        ..crate::cli::RunArgs::default()
    };
    args.live.max_users = max_users;
    let env = crate::plan::PlanEnv {
        cpus: vec![0, 1],
        ..crate::plan::PlanEnv::default()
    };
    Plan::resolve(spec, &args, &env).unwrap()
}

fn steering(load: &str) -> (Arc<Steering>, Vec<Option<Receiver<Change>>>) {
    let plan = plan_for(load, None);
    Steering::new(
        &plan,
        Clock::start_in(Duration::ZERO),
        Arc::new(AtomicBool::new(false)),
    )
}

#[test]
fn max_users_plans_dormant_users_dealt_like_the_others() {
    let plan = plan_for(
        "Closed(users: 3, spawn_rate: 5, duration: \"60s\")",
        Some(7),
    );
    let globals: Vec<Vec<u32>> = plan
        .cores
        .iter()
        .map(|c| c.users.iter().map(|u| u.global).collect())
        .collect();
    assert_eq!(globals, [vec![0, 2, 4, 6], vec![1, 3, 5]]);
    let kinds: Vec<usize> = (0..7)
        .map(|g| plan.cores[g % 2].users[g / 2].kind)
        .collect();
    assert_eq!(kinds, crate::schedule::assign_kinds(&[2, 1], 7));
    for u in plan.cores.iter().flat_map(|c| &c.users) {
        assert_eq!(u.spawn_at == Duration::MAX, u.global >= 3, "{u:?}");
    }
    let (s, _) = Steering::new(
        &plan,
        Clock::start_in(Duration::ZERO),
        Arc::new(AtomicBool::new(false)),
    );
    assert_eq!(s.status_at(0).max, 7.0);
    // A run that cannot be steered plans no room for more users.
    let staged = plan_for("Stages(stages: [(users: 5, over: \"10s\")])", Some(9));
    let planned: usize = staged.cores.iter().map(|c| c.users.len()).sum();
    assert_eq!(planned, 5);
}

#[test]
fn changes_go_to_every_core_with_their_start_and_are_refused_with_a_reason() {
    let (s, rx) = steering("Closed(users: 10, spawn_rate: 5, duration: \"60s\")");
    assert!(rx.iter().all(Option::is_some));
    let ask = |to: f64| Ask {
        knob: Knob::Users,
        to,
        ramp: Ramp::PerSecond(2.0),
    };
    let change = s.request_at(ask(6.0), 3_000_000).unwrap();
    assert_eq!(change.at_s, 3.1);
    assert_eq!((change.from, change.to), (10.0, 6.0));
    assert_eq!(change.ramp_s, 2.0);
    for r in rx.iter().flatten() {
        let got = r.try_recv().unwrap();
        assert_eq!(got.at_us, 3_100_000);
        assert_eq!(got.ramp_us, 2_000_000);
    }
    let status = s.status_at(4_100_000);
    assert_eq!(status.target, 8.0);
    assert!((status.ramping.unwrap().progress - 0.5).abs() < 1e-9);
    assert_eq!(status.changes.len(), 1);
    assert_eq!(s.target_at(10.0), Some(6.0));

    let over = s.request_at(ask(11.0), 5_000_000).unwrap_err();
    assert_eq!(over.status, 409);
    assert!(over.error.contains("--max-users 11"), "{}", over.error);
    let wrong = s
        .request_at(
            Ask {
                knob: Knob::Rate,
                to: 5.0,
                ramp: Ramp::Seconds(0.0),
            },
            5_000_000,
        )
        .unwrap_err();
    assert_eq!(wrong.status, 400);
    let late = s.request_at(ask(5.0), 59_950_000).unwrap_err();
    assert_eq!(late.status, 409);
    assert!(late.error.contains("ending"), "{}", late.error);
    s.stop.store(true, Ordering::SeqCst);
    let stopping = s.request_at(ask(5.0), 6_000_000).unwrap_err();
    assert!(stopping.error.contains("stopping"), "{}", stopping.error);
    assert!(!s.status_at(6_000_000).available);

    let (staged, rx) = steering("Stages(stages: [(users: 5, over: \"10s\")])");
    assert!(rx.iter().all(Option::is_none));
    let refused = staged.request_at(ask(3.0), 1_000_000).unwrap_err();
    assert_eq!(refused.status, 409);
    assert!(refused.error.contains("Stages"), "{}", refused.error);
    let status = staged.status_at(1_000_000);
    assert!(!status.available && status.reason.unwrap().contains("Stages"));

    let (open, _) = steering("Open(rate: 100, duration: \"60s\", max_users: 10)");
    let change = open
        .request_at(
            Ask {
                knob: Knob::Rate,
                to: 250.0,
                ramp: Ramp::Seconds(5.0),
            },
            1_000_000,
        )
        .unwrap();
    assert_eq!((change.from, change.to), (100.0, 250.0));
    let (ramping, _) =
        steering("RampingRate(start_rate: 1, stages: [(to: 10, over: \"60s\")], max_users: 10)");
    assert!(ramping.status_at(0).reason.unwrap().contains("RampingRate"));
}
