//! Scenarios end to end: every construct of the profile language against the embedded target, each
//! asserted on what the target received or what the log says, so that a construct the engine ignored
//! would fail its test.

mod util;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;

use formats::Outcome;
use util::*;

const OK: u8 = Outcome::Ok as u8;
const CHECK: u8 = Outcome::Check as u8;

/// Writes `text` (with `{addr}` replaced by `server`'s address) as a profile, plus any `files`, and
/// runs it with `args`; requires exit 0.
fn run_with(
    server: &engine::serve::Server,
    text: &str,
    files: &[(&str, &str)],
    args: &[&str],
    env: &[(&str, &str)],
) -> (ReadBack, Output) {
    let tmp = tempfile::tempdir().unwrap();
    for (name, content) in files {
        let path = tmp.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    let text = text.replace("{addr}", &server.addr().to_string());
    let profile = profile(tmp.path(), &text);
    let mut cmd = engine();
    cmd.arg("run")
        .arg(&profile)
        .args(args)
        .arg("--out")
        .arg(tmp.path().join("runs"))
        .arg("--quiet")
        // Some scenarios fail every request on purpose.
        .arg("--failures-are-data");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let r = read_run(&run_dir(&out));
    (r, out)
}

fn run_profile(server: &engine::serve::Server, text: &str, args: &[&str]) -> ReadBack {
    run_with(server, text, &[], args, &[]).0
}

fn assert_no_failures(r: &ReadBack) {
    let failures = r.failures();
    assert!(
        failures.is_empty(),
        "{} failures, first: {:?}",
        failures.len(),
        failures.first()
    );
}

fn header_of(rec: &engine::serve::Recorded, name: &str) -> String {
    rec.header(name)
        .unwrap_or_else(|| panic!("no {name} in {rec:?}"))
        .to_owned()
}

// ---------------------------------------------------------------------------------------------
// Users and tasks

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

// ---------------------------------------------------------------------------------------------
// Templates

fn templates_render_fresh_values_in_path_query_headers_and_body() {
    let _serial = one_at_a_time();
    let server = recording_server();
    let r = run_profile(
        &server,
        r#"(name: "templates", host: "http://{addr}", variables: {"greeting": "hello world"},
            load: Closed(users: 4, duration: "1s"),
            users: [(variables: {"quote": "say \"hi\"\\"}, tasks: [(requests: [(
                method: POST,
                path: "/anything/{{random_int(1, 1000)}}?u={{user_id()}}&c={{core_id()}}&s={{seq()}}&g={{urlencode(greeting)}}",
                query: {"i": "{{iteration()}}", "pick": "{{random_choice('red', 'green')}}"},
                headers: {"X-Request-Id": "{{uuid()}}", "X-Time": "{{timestamp_ms()}}", "X-Date": "{{timestamp_rfc3339()}}",
                          "X-B64": "{{base64('user-', user_id())}}", "X-Rand": "{{random_string(10)}}"},
                body: Json({"qty": "{{raw(random_int(1, 5))}}", "price": "{{raw(random_float(1, 2, 2))}}",
                            "quote": "{{quote}}", "who": "u{{user_id()}}", "list": [1, "{{greeting}}"]}),
            )])])])"#,
        &["--cores", "2"],
    );
    assert_no_failures(&r);
    let recorded = server.recorded();
    assert!(recorded.len() > 100);
    let mut uuids = BTreeSet::new();
    let mut seqs = BTreeSet::new();
    let mut ints = BTreeSet::new();
    let mut picks = BTreeSet::new();
    for rec in &recorded {
        let n: u32 = rec.path().trim_start_matches("/anything/").parse().unwrap();
        assert!((1..=1000).contains(&n));
        ints.insert(n);
        let user: u32 = rec.query("u").unwrap().parse().unwrap();
        let core: u32 = rec.query("c").unwrap().parse().unwrap();
        assert!(user < 4 && core == user % 2, "user {user} on core {core}");
        assert!(
            seqs.insert(rec.query("s").unwrap()),
            "seq() repeats across cores"
        );
        assert_eq!(rec.query("g").unwrap(), "hello world");
        assert!(rec.target.contains("g=hello%20world"), "{}", rec.target);
        picks.insert(rec.query("pick").unwrap());
        let id = header_of(rec, "X-Request-Id");
        assert_eq!(id.len(), 36);
        assert!(uuids.insert(id), "uuid() repeats");
        let ms: u64 = header_of(rec, "X-Time").parse().unwrap();
        assert!(ms > 1_700_000_000_000);
        assert!(header_of(rec, "X-Date").ends_with('Z'));
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD
            .decode(header_of(rec, "X-B64"))
            .unwrap();
        assert_eq!(String::from_utf8(b64).unwrap(), format!("user-{user}"));
        assert_eq!(header_of(rec, "X-Rand").len(), 10);
        let body: serde_json::Value = serde_json::from_slice(&rec.body).unwrap();
        assert!(
            body["qty"].as_u64().is_some_and(|q| (1..=5).contains(&q)),
            "{body}"
        );
        assert!(
            body["price"]
                .as_f64()
                .is_some_and(|p| (1.0..=2.0).contains(&p)),
            "{body}"
        );
        assert_eq!(body["quote"], "say \"hi\"\\", "escaped into valid JSON");
        assert_eq!(body["who"], format!("u{user}"));
        assert_eq!(body["list"], serde_json::json!([1, "hello world"]));
    }
    assert!(ints.len() > 50, "random_int varies");
    assert_eq!(picks.len(), 2);
    // The name is the path as written, so one name groups every rendered path.
    let names: BTreeSet<String> = r.rows().into_iter().map(|row| row.name).collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

// ---------------------------------------------------------------------------------------------
// Feeders

fn accounts_csv(rows: usize) -> String {
    let mut csv = String::from("email,password\n");
    for i in 0..rows {
        csv.push_str(&format!("user{i}@example.com,pw{i}\n"));
    }
    csv
}

fn a_unique_feeder_never_repeats_a_row_across_cores() {
    let _serial = one_at_a_time();
    let server = recording_server();
    let csv = accounts_csv(60);
    let (r, _) = run_with(
        &server,
        r#"(name: "unique", host: "http://{addr}",
            feeders: {"accounts": (file: "data/accounts.csv", order: Unique)},
            load: Closed(users: 80, duration: "1500ms"),
            users: [(wait: Constant("100ms"),
                on_start: [(method: POST, path: "/login", body: Json({"user": "{{row.email}}", "password": "{{row.password}}"}),
                            extract: {"token": Json("/token")})],
                tasks: [(requests: [(path: "/private", auth: Bearer("{{token}}"), checks: [JsonEquals("/user", "{{row.email}}")])])])])"#,
        &[("data/accounts.csv", &csv)],
        &["--cores", "2"],
        &[],
    );
    assert_no_failures(&r);
    let logins: Vec<String> = server
        .recorded()
        .iter()
        .filter(|rec| rec.path() == "/login")
        .map(|rec| {
            serde_json::from_slice::<serde_json::Value>(&rec.body).unwrap()["user"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    // 80 users, 60 rows, `Unique` stops at exhaustion: exactly 60 users start, each with its own row.
    assert_eq!(logins.len(), 60, "{logins:?}");
    let distinct: BTreeSet<&String> = logins.iter().collect();
    assert_eq!(distinct.len(), 60, "a row was used twice");
    let users: BTreeSet<u32> = r.rows().iter().map(|row| row.user).collect();
    assert_eq!(users, (0..60).collect(), "users 60..80 never started");
    // Both cores took part.
    assert!(r.rows().iter().any(|row| row.core == 1));
}

fn a_sequential_feeder_uses_each_row_once_then_stops_its_users() {
    let _serial = one_at_a_time();
    let server = recording_server();
    let csv = accounts_csv(25);
    let (r, _) = run_with(
        &server,
        r#"(name: "sequential", host: "http://{addr}",
            feeders: {"accounts": (file: "data/accounts.csv", order: Sequential, on_exhausted: Stop)},
            load: Closed(users: 4, duration: "2s"),
            users: [(tasks: [(requests: [(path: "/anything", query: {"email": "{{row.email}}"})])])])"#,
        &[("data/accounts.csv", &csv)],
        &["--cores", "2"],
        &[],
    );
    assert_no_failures(&r);
    let emails: Vec<String> = server
        .recorded()
        .iter()
        .map(|rec| rec.query("email").unwrap())
        .collect();
    let distinct: BTreeSet<&String> = emails.iter().collect();
    assert_eq!(emails.len(), 25, "each row once");
    assert_eq!(distinct.len(), 25);
}

fn json_lines_and_circular_feeders_recycle_rows() {
    let _serial = one_at_a_time();
    let server = recording_server();
    let jsonl =
        "{\"q\": \"a b\", \"n\": 1}\n{\"q\": \"c&d\", \"n\": 2}\n{\"q\": \"e\", \"n\": 3}\n";
    let (r, _) = run_with(
        &server,
        r#"(name: "circular", host: "http://{addr}",
            feeders: {"terms": (file: "terms.jsonl", order: Circular)},
            load: Closed(users: 1, duration: "1s"),
            users: [(tasks: [(requests: [(path: "/search", query: {"q": "{{terms.q}}"},
                                          checks: [JsonEquals("/query", "{{row.q}}")])])])])"#,
        &[("terms.jsonl", jsonl)],
        &["--cores", "1"],
        &[],
    );
    assert_no_failures(&r);
    let qs: Vec<String> = server
        .recorded()
        .iter()
        .map(|rec| rec.query("q").unwrap())
        .collect();
    assert!(qs.len() > 30);
    for (i, q) in qs.iter().enumerate() {
        assert_eq!(q, ["a b", "c&d", "e"][i % 3], "row {i}");
    }
}

fn a_random_feeder_draws_any_row_in_any_order() {
    let _serial = one_at_a_time();
    let server = recording_server();
    let csv = accounts_csv(5);
    let (r, _) = run_with(
        &server,
        r#"(name: "random", host: "http://{addr}",
            feeders: {"accounts": (file: "accounts.csv", order: Random)},
            load: Closed(users: 1, duration: "1s"),
            users: [(tasks: [(requests: [(path: "/anything", query: {"email": "{{row.email}}"})])])])"#,
        &[("accounts.csv", &csv)],
        &["--cores", "1"],
        &[],
    );
    assert_no_failures(&r);
    let emails: Vec<String> = server
        .recorded()
        .iter()
        .map(|rec| rec.query("email").unwrap())
        .collect();
    assert!(emails.len() > 50);
    let distinct: BTreeSet<&String> = emails.iter().collect();
    assert_eq!(distinct.len(), 5, "every row comes up");
    assert!(distinct.iter().all(|e| csv.contains(e.as_str())));
    let in_order = emails
        .iter()
        .enumerate()
        .all(|(i, e)| *e == format!("user{}@example.com", i % 5));
    assert!(!in_order, "rows are drawn at random, not in file order");
    assert!(
        emails.windows(2).any(|w| w[0] == w[1]),
        "the same row may come twice in a row"
    );
}

// ---------------------------------------------------------------------------------------------
// Correlation and checks

fn the_token_extracted_at_login_is_what_private_receives() {
    let _serial = one_at_a_time();
    let server = recording_server();
    let r = run_profile(
        &server,
        r#"(name: "login", host: "http://{addr}", load: Closed(users: 4, duration: "1s"),
            users: [(auth: Bearer("{{token}}"),
                on_start: [(method: POST, path: "/login", auth: Off, body: Json({"user": "u{{user_id()}}"}),
                            extract: {"token": Json("/token")})],
                tasks: [(requests: [(path: "/private", checks: [JsonEquals("/user", "u{{user_id()}}")])])])])"#,
        &["--cores", "2"],
    );
    assert_no_failures(&r);
    let recorded = server.recorded();
    let logins = recorded.iter().filter(|rec| rec.path() == "/login").count();
    assert_eq!(logins, 4);
    assert!(
        recorded
            .iter()
            .filter(|rec| rec.path() == "/login")
            .all(|rec| rec.header("Authorization").is_none())
    );
    let tokens: BTreeSet<String> = recorded
        .iter()
        .filter(|rec| rec.path() == "/private")
        .map(|rec| header_of(rec, "Authorization"))
        .collect();
    // Four users, four tokens, each sent on every request of its user.
    assert_eq!(tokens.len(), 4, "{tokens:?}");
    assert!(
        tokens
            .iter()
            .all(|t| t.starts_with("Bearer ") && t.len() > 20)
    );
}

fn a_missing_extraction_fails_naming_the_rule_and_ends_the_iteration() {
    let _serial = one_at_a_time();
    let server = server();
    let r = run_profile(
        &server,
        r#"(name: "missing", host: "http://{addr}", load: Closed(users: 2, duration: "1s"),
            users: [(tasks: [(requests: [
                (path: "/items/1", name: "first", extract: {"x": Json("/nope"), "price": Optional(Json("/also-nope"))}),
                (path: "/anything/{{x}}", name: "second"),
            ])])])"#,
        &["--cores", "1"],
    );
    let first = r.named("first");
    assert!(first.len() > 50);
    for row in &first {
        assert_eq!(row.outcome, CHECK);
        assert_eq!(row.status, 200);
        assert_eq!(
            row.message.as_deref(),
            Some(r#"extract x = Json("/nope"): not found in the response"#)
        );
    }
    assert!(
        r.named("second").is_empty(),
        "the iteration ended at the failed extraction"
    );
}

fn optional_regex_header_cookie_and_status_extractions() {
    let _serial = one_at_a_time();
    let server = recording_server();
    let r = run_profile(
        &server,
        r#"(name: "extract", host: "http://{addr}", load: Closed(users: 1, duration: "1s"),
            users: [(tasks: [(requests: [
                (method: POST, path: "/login", body: Json({"user": "ann"}),
                 extract: {"user": Regex("\"user\":\"([a-z]+)\""), "session": Cookie("session"),
                           "type": Header("content-type"), "code": Status, "gone": Optional(Json("/nope")),
                           "via_path": Json("$..user")}),
                (path: "/anything/{{user}}/{{code}}", headers: {"X-Type": "{{type}}", "X-Session": "{{session}}", "X-Gone": "[{{gone}}]",
                                                              "X-Via-Path": "{{via_path}}"}),
            ])])])"#,
        &["--cores", "1"],
    );
    assert_no_failures(&r);
    let echoes: Vec<_> = server
        .recorded()
        .into_iter()
        .filter(|rec| rec.path().starts_with("/anything"))
        .collect();
    assert!(echoes.len() > 20);
    for rec in &echoes {
        assert_eq!(rec.path(), "/anything/ann/200");
        assert_eq!(header_of(rec, "X-Type"), "application/json");
        assert!(header_of(rec, "X-Session").len() > 20);
        assert_eq!(
            header_of(rec, "X-Gone"),
            "[]",
            "a missed optional extraction leaves the variable"
        );
        assert_eq!(header_of(rec, "X-Via-Path"), "ann", "JSONPath `..user`");
    }
}

fn failed_checks_are_check_samples_with_messages_interned_once() {
    let _serial = one_at_a_time();
    let server = server();
    let r = run_profile(
        &server,
        r#"(name: "checks", host: "http://{addr}", load: Closed(users: 2, duration: "1s"),
            users: [(tasks: [(requests: [
                (path: "/items/3", name: "passes", checks: [Status([200]), BodyContains("item 3"), BodyMatches("\"price\":3\\.03"),
                    JsonEquals("/id", 3), JsonEquals("/name", "item 3"), JsonExists("/price"), HeaderPresent("content-type"),
                    HeaderEquals("Content-Type", "application/json"), LatencyUnder("5s"), Not(BodyContains("error"))]),
                (path: "/items/4", name: "wrong status", checks: [Status([201])]),
                (path: "/items/5", name: "wrong value", checks: [JsonEquals("/id", 6)]),
                (path: "/status/404", name: "expected 404", expect_status: [404]),
                (path: "/status/404", name: "unexpected 404"),
            ])])])"#,
        &["--cores", "1"],
    );
    let by_name = |n: &str| r.named(n);
    assert!(by_name("passes").iter().all(|row| row.outcome == OK));
    assert!(
        by_name("expected 404")
            .iter()
            .all(|row| row.outcome == OK && row.status == 404)
    );
    assert!(
        by_name("unexpected 404")
            .iter()
            .all(|row| row.outcome == Outcome::Status as u8)
    );
    // Each failure message says what the check got.
    for (name, message) in [
        (
            "wrong status",
            "check Status([201]) failed: expected status 201, got 200",
        ),
        (
            "wrong value",
            r#"check JsonEquals("/id",6) failed: got "5""#,
        ),
    ] {
        let rows = by_name(name);
        assert!(rows.len() > 20);
        for row in rows {
            assert_eq!(row.outcome, CHECK, "{name}");
            assert_eq!(row.status, 200, "a check failure keeps the status");
            assert_eq!(row.message.as_deref(), Some(message));
        }
    }
    // A check failure does not end the iteration: every request ran as often as the first.
    let n = by_name("passes").len() as i64;
    assert!((by_name("unexpected 404").len() as i64 - n).abs() <= 2);
    // Messages were interned once, when the core started (every rule's message, whether it fails
    // or not), not per failure.
    let table: Vec<String> = r.logs[0]
        .messages
        .iter()
        .map(|(_, m)| m.to_owned())
        .collect();
    let distinct: BTreeSet<&String> = table.iter().collect();
    assert_eq!(distinct.len(), table.len(), "{table:?}");
    assert!(table.len() < 20, "{table:?}");
    assert!(table.contains(&"check Status([201]) failed".to_owned()));
}

// ---------------------------------------------------------------------------------------------
// Cookies

fn cookies_set_by_the_target_are_sent_back_per_user() {
    let _serial = one_at_a_time();
    let server = recording_server();
    let r = run_profile(
        &server,
        r#"(name: "cookies", host: "http://{addr}", load: Closed(users: 3, duration: "1s"),
            users: [(
                on_start: [(method: POST, path: "/login", body: Json({"user": "c{{user_id()}}"})),
                           (path: "/cookies/set?visitor=v{{user_id()}}&path=/cookies")],
                tasks: [(requests: [
                    (path: "/session", checks: [JsonEquals("/user", "c{{user_id()}}")]),
                    (path: "/cookies", checks: [JsonEquals("/visitor", "v{{user_id()}}"), JsonExists("/session")]),
                    (path: "/anything", checks: [Not(BodyContains("visitor"))]),
                ])])])"#,
        &["--cores", "1"],
    );
    assert_no_failures(&r);
    assert!(r.named("GET /session").len() > 20);
}

fn without_a_cookie_jar_the_session_is_not_kept() {
    let _serial = one_at_a_time();
    let server = server();
    let r = run_profile(
        &server,
        r#"(name: "no-cookies", host: "http://{addr}", load: Closed(users: 1, duration: "500ms"),
            users: [(cookies: false,
                on_start: [(method: POST, path: "/login", body: Json({"user": "c"}))],
                tasks: [(requests: [(path: "/session")])])])"#,
        &["--cores", "1"],
    );
    let sessions = r.named("GET /session");
    assert!(!sessions.is_empty());
    assert!(sessions.iter().all(|row| row.status == 401));
}

// ---------------------------------------------------------------------------------------------
// Auth

fn basic_auth_sends_each_users_credentials() {
    let _serial = one_at_a_time();
    let server = recording_server();
    let r = run_profile(
        &server,
        r#"(name: "basic", host: "http://{addr}", secrets: {"pw": "p:w"}, load: Closed(users: 2, duration: "500ms"),
            users: [(auth: Basic(user: "u{{user_id()}}", password: "${pw}"), tasks: [(requests: [(path: "/anything")])])])"#,
        &["--cores", "1"],
    );
    assert_no_failures(&r);
    use base64::Engine as _;
    let seen: BTreeSet<String> = server
        .recorded()
        .iter()
        .map(|rec| {
            let b64 = header_of(rec, "Authorization")
                .strip_prefix("Basic ")
                .unwrap()
                .to_owned();
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap(),
            )
            .unwrap()
        })
        .collect();
    assert_eq!(
        seen,
        BTreeSet::from(["u0:p:w".to_owned(), "u1:p:w".to_owned()])
    );
}

fn demo_key() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles/keys/demo-rs256.pem")
}

fn jwts_are_minted_per_user_with_hs256_and_rs256() {
    let _serial = one_at_a_time();
    let server = server();
    let profile = format!(
        r#"(name: "jwt", host: "http://{{addr}}", load: Closed(users: 4, duration: "1s"),
            users: [
              (name: "hs", auth: Jwt(algorithm: HS256, secret: "{secret}", ttl: "1h", claims: {{"sub": "hs-{{{{user_id()}}}}"}}),
               tasks: [(requests: [(path: "/private", name: "hs", checks: [JsonEquals("/user", "hs-{{{{user_id()}}}}")])])]),
              (name: "rs", auth: Jwt(algorithm: RS256, key_file: {key:?}, ttl: "1h", claims: {{"sub": "rs-{{{{user_id()}}}}"}}),
               tasks: [(requests: [(path: "/private", name: "rs", checks: [JsonEquals("/user", "rs-{{{{user_id()}}}}")])])]),
              (name: "forged", auth: Jwt(algorithm: HS256, secret: "not-the-secret", claims: {{"sub": "x"}}),
               tasks: [(requests: [(path: "/private", name: "forged")])]),
            ])"#,
        secret = engine::serve::JWT_SECRET,
        key = demo_key()
    );
    let r = run_profile(&server, &profile, &["--cores", "1", "--users", "6"]);
    assert!(r.named("hs").len() > 20 && r.named("rs").len() > 20);
    assert!(
        r.named("hs")
            .iter()
            .chain(&r.named("rs"))
            .all(|row| row.outcome == OK),
        "{:?}",
        r.failures().first()
    );
    // The target does check signatures.
    assert!(r.named("forged").iter().all(|row| row.status == 401));
}

fn oauth_profile(cache: &str, secret: &str) -> String {
    format!(
        r#"(name: "oauth", host: "http://{{addr}}", load: Closed(users: 6, duration: "4500ms"),
            users: [(wait: Constant("50ms"),
                auth: OAuth2(token_url: "/oauth/token?ttl=2", client_id: "svc", client_secret: "{secret}", cache: {cache}, refresh_before: "1s"),
                tasks: [(requests: [(path: "/private", checks: [JsonEquals("/user", "svc")])])])])"#
    )
}

/// Tokens live 2 s and are renewed 1 s before they expire; the target refuses expired ones, so a
/// missing refresh shows up as 401s after 2 s.
fn oauth2_tokens_are_fetched_once_per_core_and_refreshed_before_expiry() {
    let _serial = one_at_a_time();
    let server = server();
    let r = run_profile(
        &server,
        &oauth_profile("PerCore", engine::serve::CLIENT_SECRET),
        &["--cores", "2"],
    );
    assert_no_failures(&r);
    let fetches = r.named("POST /oauth/token (OAuth2 token)");
    assert!(r.named("GET /private").len() > 100);
    // One token per core at a time, renewed about every second: ~5 per core in 4.5 s.
    assert!(
        (2 * 3..=2 * 7).contains(&fetches.len()),
        "{} token fetches",
        fetches.len()
    );
    let cores: BTreeSet<usize> = fetches.iter().map(|f| f.core).collect();
    assert_eq!(cores.len(), 2);

    let r = run_profile(
        &server,
        &oauth_profile("PerUser", engine::serve::CLIENT_SECRET),
        &["--cores", "2"],
    );
    assert_no_failures(&r);
    let fetches = r.named("POST /oauth/token (OAuth2 token)").len();
    assert!(
        (6 * 3..=6 * 7).contains(&fetches),
        "{fetches} token fetches for 6 users"
    );
}

fn a_refused_oauth2_client_makes_no_authenticated_requests() {
    let _serial = one_at_a_time();
    let server = server();
    let r = run_profile(
        &server,
        &oauth_profile("PerCore", "wrong"),
        &["--cores", "1", "--duration", "1s"],
    );
    let fetches = r.named("POST /oauth/token (OAuth2 token)");
    assert!(!fetches.is_empty());
    assert!(
        fetches
            .iter()
            .all(|f| f.status == 401 && f.outcome == Outcome::Status as u8)
    );
    assert!(r.named("GET /private").is_empty());
}

// ---------------------------------------------------------------------------------------------
// Environments, precedence, secrets, fragments

const ENVIRONMENTS: &str = r#"(
    name: "envs",
    host: "http://127.0.0.1:1",
    variables: {"tier": "profile", "who": "profile"},
    environments: {
        "staging": (host: "http://{addr}/staging", variables: {"tier": "staging"}, headers: {"X-Env": "staging"}),
        "dev": (host: "http://{addr}/dev"),
    },
    load: Closed(users: 1, duration: "300ms"),
    users: [(tasks: [(requests: [(path: "/anything", headers: {"X-Tier": "{{tier}}", "X-Who": "${who}"})])])],
)"#;

/// Flags > STAMPEDE_* environment variables > the selected environment > profile defaults.
fn environments_and_precedence_end_to_end() {
    let _serial = one_at_a_time();
    // (flags, environment variables, expected path, X-Tier, X-Who)
    type Case<'a> = (
        &'a [&'a str],
        &'a [(&'a str, &'a str)],
        &'a str,
        &'a str,
        &'a str,
    );
    let runs: &[Case<'_>] = &[
        (
            &["--env", "staging"],
            &[],
            "/staging/anything",
            "staging",
            "profile",
        ),
        (
            &[],
            &[("STAMPEDE_ENV", "dev")],
            "/dev/anything",
            "profile",
            "profile",
        ),
        (
            &["--env", "staging"],
            &[("STAMPEDE_VAR_who", "process")],
            "/staging/anything",
            "staging",
            "process",
        ),
        (
            &[
                "--env",
                "staging",
                "--var",
                "who=flag",
                "--var",
                "tier=flag",
            ],
            &[("STAMPEDE_VAR_who", "process"), ("STAMPEDE_ENV", "dev")],
            "/staging/anything",
            "flag",
            "flag",
        ),
    ];
    for (args, env, path, tier, who) in runs {
        let server = recording_server();
        let mut all_args = vec!["--cores", "1"];
        all_args.extend_from_slice(args);
        let (r, _) = run_with(&server, ENVIRONMENTS, &[], &all_args, env);
        assert_no_failures(&r);
        let rec = server.recorded().into_iter().next().expect("a request");
        assert_eq!(rec.path(), *path, "{args:?} {env:?}");
        assert_eq!(header_of(&rec, "X-Tier"), *tier, "{args:?} {env:?}");
        assert_eq!(header_of(&rec, "X-Who"), *who, "{args:?} {env:?}");
    }
    // STAMPEDE_HOST beats the environment's host, --host beats STAMPEDE_HOST.
    let server = recording_server();
    let other = recording_server();
    let (_, _) = run_with(
        &server,
        ENVIRONMENTS,
        &[],
        &["--cores", "1", "--env", "staging"],
        &[(
            "STAMPEDE_HOST",
            &format!("http://{}/from-env", other.addr()),
        )],
    );
    assert!(server.recorded().is_empty());
    assert_eq!(other.recorded()[0].path(), "/from-env/anything");
}

fn secrets_never_reach_the_manifest_or_the_console() {
    let _serial = one_at_a_time();
    let server = recording_server();
    let (r, out) = run_with(
        &server,
        r#"(name: "secrets", host: "http://{addr}",
            secrets: {"api_key": "${SHOP_API_KEY}"},
            variables: {"password": "hunter2-literal", "plain": "visible"},
            load: Closed(users: 1, duration: "300ms"),
            users: [(auth: Basic(user: "ann", password: "basic-pw-literal"),
                     tasks: [(requests: [(path: "/anything", headers: {"X-Api-Key": "${api_key}", "X-Pw": "{{password}}", "X-Plain": "${plain}"})])])])"#,
        &[],
        &["--cores", "1"],
        &[("SHOP_API_KEY", "sk-live-123456")],
    );
    let rec = &server.recorded()[0];
    assert_eq!(
        header_of(rec, "X-Api-Key"),
        "sk-live-123456",
        "the real value is sent"
    );
    assert_eq!(header_of(rec, "X-Pw"), "hunter2-literal");
    let manifest = &r.manifest.profile;
    let console = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    for secret in ["sk-live-123456", "hunter2-literal", "basic-pw-literal"] {
        assert!(
            !manifest.contains(secret),
            "{secret} in the manifest: {manifest}"
        );
        assert!(!console.contains(secret), "{secret} on the console");
    }
    assert!(manifest.contains("***"));
    assert!(manifest.contains("visible"), "{manifest}");
}

fn fragments_are_merged_into_the_profile() {
    let _serial = one_at_a_time();
    let server = recording_server();
    let (r, _) = run_with(
        &server,
        r#"(name: "main", host: "http://{addr}", include: ["shared/common.ron"],
            variables: {"team": "main"},
            load: Closed(users: 2, duration: "500ms"),
            users: [(name: "own", tasks: [(requests: [(path: "/anything/own", headers: {"X-Team": "{{team}}"})])])])"#,
        &[
            (
                "shared/common.ron",
                r#"(include: ["more.ron"], headers: {"X-Shared": "yes"}, variables: {"team": "fragment", "extra": "from-fragment"},
                    users: [(name: "shared", tasks: [(requests: [(path: "/anything/shared", headers: {"X-Extra": "{{extra}}"})])])])"#,
            ),
            ("shared/more.ron", r#"(headers: {"X-More": "deeper"})"#),
        ],
        &["--cores", "1"],
        &[],
    );
    assert_no_failures(&r);
    let recorded = server.recorded();
    let own = recorded
        .iter()
        .find(|rec| rec.path() == "/anything/own")
        .expect("the profile's user ran");
    let shared = recorded
        .iter()
        .find(|rec| rec.path() == "/anything/shared")
        .expect("the fragment's user ran");
    assert_eq!(
        header_of(own, "X-Team"),
        "main",
        "the profile wins over its fragments"
    );
    assert_eq!(header_of(own, "X-Shared"), "yes");
    assert_eq!(header_of(own, "X-More"), "deeper");
    assert_eq!(header_of(shared, "X-Extra"), "from-fragment");
}

// ---------------------------------------------------------------------------------------------
// The example profiles

fn every_example_profile_runs_against_the_embedded_target() {
    let _serial = one_at_a_time();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles");
    let examples: &[(&str, &[&str])] = &[
        (
            "rest-api.ron",
            &[
                "POST /login",
                "POST /api/items",
                "GET /api/items/{id}",
                "PUT /api/items/{id}",
                "DELETE /api/items/{id}",
                "GET /api/items/{id} (deleted)",
                "POST /logout",
            ],
        ),
        (
            "browsing.ron",
            &[
                "GET /",
                "GET /items/{id}",
                "GET /cookies/set",
                "POST /cart",
                "POST /checkout",
            ],
        ),
        (
            "data-driven.ron",
            &[
                "POST /login",
                "GET /private",
                "GET /search",
                "GET /search (account's term)",
            ],
        ),
        (
            "auth.ron",
            &[
                "GET /private (OAuth2)",
                "GET /private (JWT HS256)",
                "GET /private (JWT RS256)",
                "GET /anything (Basic)",
                "POST /oauth/token (OAuth2 token)",
            ],
        ),
    ];
    for (file, names) in examples {
        let tmp = tempfile::tempdir().unwrap();
        let out = run(
            tmp.path(),
            &[dir.join(file).to_str().unwrap(), "--duration", "3s"],
        );
        assert_eq!(out.status.code(), Some(0), "{file}: {}", stderr(&out));
        let r = read_run(&run_dir(&out));
        assert_no_failures(&r);
        let seen: BTreeSet<String> = r.rows().into_iter().map(|row| row.name).collect();
        for name in *names {
            assert!(seen.contains(*name), "{file}: no {name:?} in {seen:?}");
        }
    }
}

fn thresholds_are_kept_in_the_manifest_for_the_analyzer() {
    let _serial = one_at_a_time();
    let server = server();
    let r = run_profile(
        &server,
        r#"(name: "slo", host: "http://{addr}", load: Closed(users: 1, duration: "200ms"),
            thresholds: {"*": ["p99 < 200ms", "error_rate < 1%"], "GET /": ["p95 < 150ms per 10s"]},
            users: [(tasks: [(requests: [(path: "/")])])])"#,
        &["--cores", "1"],
    );
    let manifest = &r.manifest.profile;
    for kept in [
        "thresholds",
        "p99 < 200ms",
        "error_rate < 1%",
        "p95 < 150ms per 10s",
    ] {
        assert!(manifest.contains(kept), "{kept} missing from {manifest}");
    }
}

// ---------------------------------------------------------------------------------------------
// Tags and the task table

const TAGGED: &str = r#"(name: "tags", host: "http://{addr}", load: Closed(users: 4, duration: "800ms"),
    users: [
      (name: "shopper", weight: 3, tags: ["web"], on_start: [(path: "/anything/login")], tasks: [
        (name: "browse", tags: ["browse"], requests: [(path: "/anything/home"), (path: "/anything/item")]),
        (name: "buy", tags: ["checkout"], requests: [(path: "/anything/cart")]),
      ]),
      (name: "admin", tags: ["admin"], tasks: [(requests: [(path: "/anything/admin")])]),
    ])"#;

fn tags_select_tasks_and_every_sample_names_its_task() {
    let _serial = one_at_a_time();
    let server = server();
    let (r, _) = run_with(
        &server,
        TAGGED,
        &[],
        &["--cores", "2", "--tags", "browse"],
        &[],
    );
    assert_no_failures(&r);
    let seen: BTreeSet<String> = r.rows().into_iter().map(|row| row.name).collect();
    let want: BTreeSet<String> = [
        "GET /anything/login",
        "GET /anything/home",
        "GET /anything/item",
    ]
    .map(String::from)
    .into();
    assert_eq!(
        seen, want,
        "only the browse task (and the kept kind's on_start) ran"
    );
    let tags = r
        .manifest
        .tags
        .as_ref()
        .expect("the manifest lists the tags");
    assert_eq!(tags.known, ["admin", "browse", "checkout", "web"]);
    assert_eq!(tags.selected, ["browse"]);
    let mut iterations = 0;
    let mut homes = 0;
    for log in &r.logs {
        // The task table describes what ran: the shopper's one task and its on_start.
        let table: Vec<(String, String, Vec<String>)> = log
            .tasks
            .iter()
            .map(|t| (t.kind_name.clone(), t.task_name.clone(), t.tags.clone()))
            .collect();
        assert_eq!(
            table,
            [
                (
                    "shopper".to_owned(),
                    "browse".to_owned(),
                    vec!["browse".to_owned(), "web".to_owned()]
                ),
                (
                    "shopper".to_owned(),
                    "on_start".to_owned(),
                    vec!["web".to_owned()]
                ),
            ]
        );
        for i in 0..log.samples.len() {
            let name = log.names.get(log.samples.name[i]).unwrap();
            let task = log
                .tasks
                .get(log.samples.task[i])
                .expect("every sample names a defined task");
            let (role, first) = match name {
                "GET /anything/login" => (formats::TaskRole::OnStart, false),
                "GET /anything/home" => (formats::TaskRole::Task, true),
                _ => (formats::TaskRole::Task, false),
            };
            assert_eq!(task.role, role, "{name}");
            // The first request of each iteration, and only it, carries the flag.
            assert_eq!(log.samples.iteration_start[i] == 1, first, "{name}");
            iterations += usize::from(log.samples.iteration_start[i]);
            homes += usize::from(name == "GET /anything/home");
        }
    }
    assert!(iterations > 10, "{iterations} iterations");
    assert_eq!(iterations, homes);
}

fn exclude_tags_leave_out_what_carries_them_and_unknown_tags_are_errors() {
    let _serial = one_at_a_time();
    let server = server();
    let (r, _) = run_with(
        &server,
        TAGGED,
        &[],
        &["--cores", "1", "--exclude-tags", "browse,admin"],
        &[],
    );
    let seen: BTreeSet<String> = r.rows().into_iter().map(|row| row.name).collect();
    let want: BTreeSet<String> = ["GET /anything/login", "GET /anything/cart"]
        .map(String::from)
        .into();
    assert_eq!(seen, want);

    let tmp = tempfile::tempdir().unwrap();
    let path = profile(
        tmp.path(),
        &TAGGED.replace("{addr}", &server.addr().to_string()),
    );
    let out = run(
        tmp.path(),
        &[
            path.to_str().unwrap(),
            "--tags",
            "brwse",
            "--duration",
            "1s",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "a bad flag is exit 2: {}",
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(err.contains("--tags"), "{err}");
    assert!(
        err.contains("unknown tag `brwse` (did you mean `browse`?)"),
        "{err}"
    );
    assert!(
        err.contains("admin, browse, checkout, web"),
        "the known tags are listed: {err}"
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
    templates_render_fresh_values_in_path_query_headers_and_body,
    a_unique_feeder_never_repeats_a_row_across_cores,
    a_sequential_feeder_uses_each_row_once_then_stops_its_users,
    json_lines_and_circular_feeders_recycle_rows,
    a_random_feeder_draws_any_row_in_any_order,
    the_token_extracted_at_login_is_what_private_receives,
    a_missing_extraction_fails_naming_the_rule_and_ends_the_iteration,
    optional_regex_header_cookie_and_status_extractions,
    failed_checks_are_check_samples_with_messages_interned_once,
    cookies_set_by_the_target_are_sent_back_per_user,
    without_a_cookie_jar_the_session_is_not_kept,
    basic_auth_sends_each_users_credentials,
    jwts_are_minted_per_user_with_hs256_and_rs256,
    oauth2_tokens_are_fetched_once_per_core_and_refreshed_before_expiry,
    a_refused_oauth2_client_makes_no_authenticated_requests,
    environments_and_precedence_end_to_end,
    secrets_never_reach_the_manifest_or_the_console,
    fragments_are_merged_into_the_profile,
    every_example_profile_runs_against_the_embedded_target,
    thresholds_are_kept_in_the_manifest_for_the_analyzer,
    tags_select_tasks_and_every_sample_names_its_task,
    exclude_tags_leave_out_what_carries_them_and_unknown_tags_are_errors,
);
