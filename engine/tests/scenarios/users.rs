//! Users and tasks.

use super::*;

fn weighted_user_kinds_and_weighted_tasks() {
    let _serial = one_at_a_time();
    let server = recording_server();
    let r = run_profile(
        &server,
        r#"(name: "kinds", host: "http://{addr}", load: Closed(users: 8, duration: "1500ms"),
            users: [
              (name: "reader", weight: 3, tasks: [
                (weight: 3, requests: [(path: "/anything/a", headers: {"X-User": "{{user_id()}}"})]),
                (weight: 1, requests: [(path: "/anything/b", headers: {"X-User": "{{user_id()}}"})]),
              ]),
              (name: "writer", weight: 1, tasks: [(requests: [(method: POST, path: "/anything/w", headers: {"X-User": "{{user_id()}}"})])]),
            ])"#,
        &["--cores", "2"],
    );
    assert_no_failures(&r);
    let mut kind_of: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    let recorded = server.recorded();
    for rec in &recorded {
        kind_of.entry(header_of(rec, "X-User")).or_default().insert(
            if rec.path() == "/anything/w" {
                "writer"
            } else {
                "reader"
            },
        );
    }
    // Users 0..8 dealt 3:1: six readers, two writers, and no user does both.
    let writers = kind_of.values().filter(|k| k.contains("writer")).count();
    assert_eq!(kind_of.len(), 8);
    assert_eq!(writers, 2, "{kind_of:?}");
    assert!(kind_of.values().all(|k| k.len() == 1));
    let a = recorded
        .iter()
        .filter(|r| r.path() == "/anything/a")
        .count() as f64;
    let b = recorded
        .iter()
        .filter(|r| r.path() == "/anything/b")
        .count() as f64;
    assert!(a + b > 200.0, "{a} + {b}");
    assert!(
        (2.3..3.9).contains(&(a / b)),
        "task weights 3:1, got {a}:{b}"
    );
}

fn a_sequence_runs_its_children_in_order_with_think_time_between() {
    let _serial = one_at_a_time();
    let server = recording_server();
    let r = run_profile(
        &server,
        r#"(name: "seq", host: "http://{addr}", load: Closed(users: 3, duration: "2s"),
            users: [(tasks: [(wait: Constant("100ms"), sequence: [
                (requests: [(path: "/anything/1", headers: {"X-User": "{{user_id()}}"})]),
                (requests: [(path: "/anything/2", headers: {"X-User": "{{user_id()}}"}),
                            (path: "/anything/3", headers: {"X-User": "{{user_id()}}"})]),
                (requests: [(path: "/anything/4", headers: {"X-User": "{{user_id()}}"})]),
            ])])])"#,
        &["--cores", "1"],
    );
    assert_no_failures(&r);
    let mut per_user: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for rec in server.recorded() {
        per_user
            .entry(header_of(&rec, "X-User"))
            .or_default()
            .push(rec.path().trim_start_matches("/anything/").to_owned());
    }
    for (user, paths) in &per_user {
        let joined = paths.concat();
        assert!(joined.starts_with("12341234"), "user {user}: {joined}");
        assert!(
            "1234".repeat(20).starts_with(&joined),
            "user {user}: {joined}"
        );
    }
    // Think time between children, not between the requests of one child.
    // Two 100 ms pauses per pass: about nine passes in 2 s, far fewer than without think time.
    let passes = per_user["0"].len() / 4;
    // (4 allows for requests slowed down on a loaded machine.)
    assert!((4..=11).contains(&passes), "{passes} passes");
    let mut rows = r.rows();
    rows.retain(|row| row.user == 0);
    rows.sort_by_key(|row| row.intended_us);
    for pair in rows.windows(2) {
        let end = pair[0].actual_us + u64::from(pair[0].latency_us);
        let gap = pair[1].intended_us.saturating_sub(end);
        let think = pair[0].name != "GET /anything/2" && pair[0].name != "GET /anything/4";
        if think {
            assert!(
                (97_000..=101_000).contains(&gap),
                "{} -> {}: {gap} µs",
                pair[0].name,
                pair[1].name
            );
        } else {
            assert!(
                gap < 1_000,
                "no think inside a child: {} -> {}: {gap} µs",
                pair[0].name,
                pair[1].name
            );
        }
    }
}

fn a_nested_group_picks_by_weight_and_repeats() {
    let _serial = one_at_a_time();
    let server = recording_server();
    let r = run_profile(
        &server,
        r#"(name: "nested", host: "http://{addr}", load: Closed(users: 2, duration: "1500ms"),
            users: [(tasks: [(repeat: 4, tasks: [
                (weight: 3, requests: [(path: "/anything/x")]),
                (weight: 1, tasks: [(requests: [(path: "/anything/y1")]), (requests: [(path: "/anything/y2")])]),
            ])])])"#,
        &["--cores", "1"],
    );
    assert_no_failures(&r);
    let recorded = server.recorded();
    let count = |p: &str| recorded.iter().filter(|r| r.path() == p).count() as f64;
    let (x, y1, y2) = (
        count("/anything/x"),
        count("/anything/y1"),
        count("/anything/y2"),
    );
    assert!(x + y1 + y2 > 200.0);
    assert!(
        (2.4..3.7).contains(&(x / (y1 + y2))),
        "x:y = {x}:{}",
        y1 + y2
    );
    assert!((0.6..1.6).contains(&(y1 / y2)), "y1:y2 = {y1}:{y2}");
    // One iteration is four picks.
    let iterations: u64 = r
        .logs
        .iter()
        .flat_map(|l| l.intervals.iter())
        .map(|i| u64::from(i.iterations_started))
        .sum();
    let requests = r.rows().len() as u64;
    assert!(
        (4 * iterations.saturating_sub(2)..=4 * iterations).contains(&requests),
        "{requests} requests in {iterations} iterations"
    );
}

fn on_start_runs_once_per_user_and_on_stop_at_the_planned_end() {
    let _serial = one_at_a_time();
    let server = recording_server();
    let r = run_profile(
        &server,
        r#"(name: "lifecycle", host: "http://{addr}", load: Closed(users: 4, duration: "1500ms"),
            users: [(wait: Constant("50ms"),
                on_start: [(method: POST, path: "/login", body: Json({"user": "u{{user_id()}}"}))],
                tasks: [(requests: [(path: "/")])],
                on_stop: [(method: POST, path: "/anything/logout", name: "logout")])])"#,
        &["--cores", "2"],
    );
    assert_no_failures(&r);
    let logins = r.named("POST /login");
    let logouts = r.named("logout");
    let users = |rows: &[Row]| rows.iter().map(|r| r.user).collect::<BTreeSet<_>>();
    assert_eq!(logins.len(), 4);
    assert_eq!(users(&logins), (0..4).collect());
    assert_eq!(logouts.len(), 4, "one logout per user, at the end");
    assert_eq!(users(&logouts), (0..4).collect());
    let end_us = 1_500_000;
    assert!(
        logouts.iter().all(|l| l.intended_us >= end_us - 60_000),
        "{logouts:?}"
    );
    assert!(r.named("GET /").len() > 40);
}

/// Regression: think time was applied after on_start, so with a long wait the first task never ran.
fn the_first_task_follows_on_start_without_think_time() {
    let _serial = one_at_a_time();
    let server = server();
    let r = run_profile(
        &server,
        r#"(name: "first-task", host: "http://{addr}", load: Closed(users: 3, duration: "1s"),
            users: [(wait: Constant("1h"),
                on_start: [(method: POST, path: "/login")],
                tasks: [(requests: [(path: "/", name: "task")])])])"#,
        &["--cores", "1"],
    );
    assert_no_failures(&r);
    let logins = r.named("POST /login");
    let tasks = r.named("task");
    assert_eq!(tasks.len(), 3, "one task per user, right after its login");
    for t in &tasks {
        let login = logins.iter().find(|l| l.user == t.user).unwrap();
        let login_end = login.actual_us + u64::from(login.latency_us);
        assert!(
            t.intended_us.abs_diff(login_end) <= 1,
            "due when the login ended"
        );
    }
}

fn an_iteration_limit_stops_the_user_after_its_on_stop() {
    let _serial = one_at_a_time();
    let server = recording_server();
    let r = run_profile(
        &server,
        r#"(name: "limit", host: "http://{addr}", load: Closed(users: 3, duration: "3s"),
            users: [(iterations: 5,
                on_start: [(path: "/anything/start")],
                tasks: [(requests: [(path: "/anything/a"), (path: "/anything/b")])],
                on_stop: [(path: "/anything/stop")])])"#,
        &["--cores", "1"],
    );
    assert_no_failures(&r);
    for user in 0..3 {
        let names: Vec<String> = r
            .rows()
            .into_iter()
            .filter(|row| row.user == user)
            .map(|row| row.name)
            .collect();
        let mut expected = vec!["GET /anything/start".to_owned()];
        for _ in 0..5 {
            expected.push("GET /anything/a".into());
            expected.push("GET /anything/b".into());
        }
        expected.push("GET /anything/stop".into());
        assert_eq!(names, expected, "user {user}");
    }
    // The users were done long before the run was.
    assert!(r.rows().iter().all(|row| row.actual_us < 2_500_000));
}

/// `Between(1s, 3s)`: each think time lies in [1 s, 3 s] with a mean of 2 s, so a 7 s run starts
/// about four iterations per user. Think times are read from the log (the next iteration's intended
/// start minus the previous response's end): a schedule, not a stopwatch, so this holds on a loaded
/// machine too.
fn between_think_time_gives_the_expected_iteration_rate() {
    let _serial = one_at_a_time();
    let server = server();
    let users = 60;
    let r = run_profile(
        &server,
        &format!(
            r#"(name: "between", host: "http://{{addr}}", load: Closed(users: {users}, duration: "7s"),
                users: [(wait: Between("1s", "3s"), tasks: [(requests: [(path: "/")])])])"#
        ),
        &["--cores", "2"],
    );
    assert_no_failures(&r);
    let mut by_user: BTreeMap<u32, Vec<Row>> = BTreeMap::new();
    for row in r.rows() {
        by_user.entry(row.user).or_default().push(row);
    }
    assert_eq!(by_user.len(), users);
    let mut thinks = Vec::new();
    for rows in by_user.values_mut() {
        rows.sort_by_key(|row| row.intended_us);
        // The first two gaps always end before 7 s (2 × 3 s plus latency): no truncation bias.
        for pair in rows.windows(2).take(2) {
            let end = pair[0].actual_us + u64::from(pair[0].latency_us);
            thinks.push(pair[1].intended_us.saturating_sub(end) as f64 / 1e6);
        }
    }
    assert_eq!(thinks.len(), 2 * users);
    let mean = thinks.iter().sum::<f64>() / thinks.len() as f64;
    let (min, max) = thinks
        .iter()
        .fold((f64::MAX, 0f64), |(a, b), &t| (a.min(t), b.max(t)));
    // Timers fire up to 2 ms early (TIMER_SLACK), never more.
    assert!(
        min >= 0.995 && max <= 3.001,
        "think times from {min} to {max}"
    );
    // Uniform on [1, 3]: standard deviation 0.58 s, so the mean of 120 is 2 ± 0.053 s.
    assert!((1.75..=2.25).contains(&mean), "mean think {mean}");
    assert!(thinks.iter().any(|&t| t < 1.5) && thinks.iter().any(|&t| t > 2.5));
    // The iteration rate: about 4 per user in 7 s (3.3 to 4.8 allows for a loaded machine); far
    // from the thousands a missing think time would give.
    let iterations: u64 = r
        .logs
        .iter()
        .flat_map(|l| l.intervals.iter())
        .map(|i| u64::from(i.iterations_started))
        .sum();
    let per_user = iterations as f64 / users as f64;
    assert!(
        (3.3..=4.8).contains(&per_user),
        "{per_user} iterations per user"
    );
}

fn pacing_keeps_a_grid_and_an_overrun_starts_the_next_at_once_as_lag() {
    let _serial = one_at_a_time();
    let server = server();
    let r = run_profile(
        &server,
        r#"(name: "pacing", host: "http://{addr}", load: Closed(users: 4, duration: "2s"),
            users: [
              (name: "paced", tasks: [(requests: [(path: "/delay/50", name: "short")])], wait: Pacing("250ms")),
              (name: "overrun", tasks: [(requests: [(path: "/delay/150", name: "long")])], wait: Pacing("100ms")),
            ])"#,
        &["--cores", "1"],
    );
    assert_no_failures(&r);
    let mut by_user: BTreeMap<u32, Vec<Row>> = BTreeMap::new();
    for row in r.rows().into_iter().filter(|row| row.outcome == OK) {
        by_user.entry(row.user).or_default().push(row);
    }
    let (mut paced, mut overrun) = (0, 0);
    for rows in by_user.values_mut() {
        rows.sort_by_key(|row| row.intended_us);
        for pair in rows.windows(2) {
            let gap = pair[1].intended_us - pair[0].intended_us;
            let end = pair[0].actual_us + u64::from(pair[0].latency_us);
            if pair[0].name == "short" {
                // A 50 ms request slowed past the interval by a loaded machine is an overrun.
                if end > pair[0].intended_us + 247_000 {
                    continue;
                }
                // 250 ms apart, start to start, whatever the request took (timers may fire up to
                // 2 ms early, which starts the iteration early, never late).
                assert!((247_000..=253_000).contains(&gap), "paced gap {gap} µs");
                paced += 1;
            } else {
                // The request takes longer than the interval: the next iteration starts at once, but
                // it was due at its slot on the grid (a multiple of the interval from the user's
                // first slot), so the lateness shows as lag rather than moving the schedule.
                // (The first iteration may start up to the timer slack early; the rest are exact.)
                if pair[0].intended_us != rows[0].intended_us {
                    assert!(
                        gap.is_multiple_of(100_000),
                        "overrun: gap {gap} µs is off the grid"
                    );
                }
                assert!(
                    pair[1].actual_us >= end.saturating_sub(1) && pair[1].actual_us - end < 50_000,
                    "overrun: next started at {} vs end {end}",
                    pair[1].actual_us
                );
                assert!(
                    pair[1].actual_us - pair[1].intended_us >= 40_000,
                    "overrun: lateness of {} µs not counted as lag",
                    pair[1].actual_us - pair[1].intended_us
                );
                overrun += 1;
            }
        }
    }
    assert!(
        paced >= 8 && overrun >= 8,
        "{paced} paced and {overrun} overrun gaps"
    );
}

for_each_backend!(
    weighted_user_kinds_and_weighted_tasks,
    a_sequence_runs_its_children_in_order_with_think_time_between,
    a_nested_group_picks_by_weight_and_repeats,
    on_start_runs_once_per_user_and_on_stop_at_the_planned_end,
    the_first_task_follows_on_start_without_think_time,
    an_iteration_limit_stops_the_user_after_its_on_stop,
    between_think_time_gives_the_expected_iteration_rate,
    pacing_keeps_a_grid_and_an_overrun_starts_the_next_at_once_as_lag,
);
