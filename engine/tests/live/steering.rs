//! Steering over HTTP: users and rates raised and lowered, refusals with their reasons, and the
//! on_stop of users that steering stops.

use crate::harness::*;
use crate::util::*;

/// Steering over HTTP: bad requests are refused with a reason and change nothing; users rise to the
/// asked number (the new ones making requests), fall back (the others stop starting iterations) and
/// rise again (stopped users start again); every core's log records each change with the start the
/// engine answered.
#[test]
fn steering_over_http_raises_and_lowers_users() {
    let _serial = one_at_a_time();
    let server = server();
    let tmp = tempfile::tempdir().unwrap();
    let run = LiveRun::start_url(
        tmp.path(),
        &server,
        &[
            "--users",
            "2",
            "--cores",
            "2",
            "--duration",
            "60s",
            "--web",
            "127.0.0.1:0",
            "--max-users",
            "6",
        ],
    );
    let web = run.web.unwrap();
    let first = feed_until(web, "both users", |v| {
        v["seconds"].as_u64() >= Some(1) && v["now"]["users"].as_u64() == Some(2)
    });
    assert_eq!(first["steer"]["available"], true, "{}", first["steer"]);
    assert_eq!(first["steer"]["max"], 6.0);
    let json = "application/json";
    for (content_type, body, status, says) in [
        (json, "{\"users\":", 400, "malformed JSON"),
        (json, "{\"users\": 7}", 409, "--max-users 7"),
        (json, "{\"users\": -1}", 400, "whole number"),
        (json, "{\"users\": 1e12}", 400, "whole number"),
        (json, "{\"rate\": 10}", 400, "closed model"),
        (json, "{\"users\": 3, \"ramp_s\": 99999}", 400, "ramp_s"),
        (json, "{}", 400, "nothing to change"),
        ("text/plain", "{\"users\": 3}", 415, "JSON body"),
    ] {
        let (got, answer) = control(web, "/api/steer", content_type, body);
        assert_eq!(got, status, "{body}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains(says), "{body}: {error}");
    }
    let (status, up) = control(web, "/api/steer", json, "{\"users\": 6, \"ramp_s\": 1}");
    assert_eq!(status, 202, "{up}");
    let up_at = up["change"]["at_s"].as_f64().unwrap();
    assert_eq!(
        (up["change"]["from"].as_f64(), up["change"]["to"].as_f64()),
        (Some(2.0), Some(6.0))
    );
    feed_until(web, "six users", |v| v["now"]["users"].as_u64() == Some(6));
    let (status, down) = control(web, "/api/steer", json, "{\"users\": 1}");
    assert_eq!(status, 202, "{down}");
    let down_at = down["change"]["at_s"].as_f64().unwrap();
    let last = feed_until(web, "one user", |v| {
        v["now"]["users"].as_u64() == Some(1) && v["seconds"].as_f64() > Some(down_at + 1.0)
    });
    assert_eq!(last["steer"]["changes"].as_array().unwrap().len(), 2);
    assert_eq!(last["steer"]["target"], 1.0);
    // Up again: the users stopped before start again, as new users in their slots.
    let (status, again) = control(web, "/api/steer", json, "{\"users\": 3, \"spawn_rate\": 4}");
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["change"]["ramp_s"], 0.5);
    let again_at = again["change"]["at_s"].as_f64().unwrap();
    feed_until(web, "three users", |v| {
        v["now"]["users"].as_u64() == Some(3) && v["seconds"].as_f64() > Some(again_at + 1.0)
    });
    let (dir, stderr) = run.stop();
    assert!(stderr.contains("steered from the dashboard"), "{stderr}");

    let r = read_run(&dir);
    let micros = |s: f64| (s * 1e6).round() as u64;
    for log in &r.logs {
        let got: Vec<(u64, u8, f64)> = log
            .load_changes
            .iter()
            .map(|c| (c.at_us, c.what, c.to))
            .collect();
        assert_eq!(
            got,
            [
                (micros(up_at), formats::LoadChange::USERS, 6.0),
                (micros(down_at), formats::LoadChange::USERS, 1.0),
                (micros(again_at), formats::LoadChange::USERS, 3.0)
            ]
        );
        assert_eq!(log.load_changes[0].ramp_us, 1_000_000);
        assert_eq!(log.load_changes[0].who, "dashboard");
    }
    let rows = r.rows();
    let mut raised: Vec<u32> = rows
        .iter()
        .filter(|s| s.intended_us >= micros(up_at))
        .map(|s| s.user)
        .collect();
    raised.sort_unstable();
    raised.dedup();
    assert_eq!(
        raised,
        [0, 1, 2, 3, 4, 5],
        "the four new users made requests"
    );
    // Users 1.. finish the iteration they were in and start no other after the change (with a
    // second's room for a core that read it late).
    let late: Vec<&Row> = rows
        .iter()
        .filter(|s| {
            s.user >= 1 && s.intended_us > micros(down_at + 1.0) && s.intended_us < micros(again_at)
        })
        .collect();
    assert!(late.is_empty(), "{:?}", &late[..late.len().min(3)]);
    let mut again_users: Vec<u32> = rows
        .iter()
        .filter(|s| s.intended_us >= micros(again_at + 0.5))
        .map(|s| s.user)
        .collect();
    again_users.sort_unstable();
    again_users.dedup();
    assert_eq!(again_users, [0, 1, 2], "users 1 and 2 started again");
}

/// A staged profile owns its load: steering is refused with the reason, and the page is told why.
#[test]
fn a_staged_run_refuses_steering_with_the_reason() {
    let _serial = one_at_a_time();
    let server = server();
    let tmp = tempfile::tempdir().unwrap();
    let profile = profile(
        tmp.path(),
        &format!(
            r#"(name: "staged", host: "http://{}", load: Stages(stages: [(users: 2, over: "30s")]),
                users: [(wait: Constant("20ms"), tasks: [(requests: [(path: "/")])])])"#,
            server.addr()
        ),
    );
    let run = LiveRun::start(
        &tmp.path().join("runs"),
        &[profile.to_str().unwrap(), "--quiet", "--web", "127.0.0.1:0"],
    );
    let web = run.web.unwrap();
    let feed = feed_until(web, "a first second", |v| v["seconds"].as_u64() >= Some(1));
    assert_eq!(feed["steer"]["available"], false);
    assert!(
        feed["steer"]["reason"].as_str().unwrap().contains("Stages"),
        "{}",
        feed["steer"]
    );
    let (status, answer) = control(web, "/api/steer", "application/json", "{\"users\": 5}");
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("Stages"),
        "{answer}"
    );
    let (dir, _) = run.stop();
    assert!(
        read_run(&dir)
            .logs
            .iter()
            .all(|l| l.load_changes.is_empty())
    );
}

/// Steering an open model: the arrival rate follows each change on the loop's own schedule, so the
/// log holds exactly the arrivals the new rate asks for, second by second, at once or along a ramp.
#[test]
fn steering_an_open_model_changes_the_arrival_rate() {
    let _serial = one_at_a_time();
    let server = server();
    let tmp = tempfile::tempdir().unwrap();
    let run = LiveRun::start_url(
        tmp.path(),
        &server,
        &[
            "--rate",
            "50",
            "--cores",
            "2",
            "--duration",
            "60s",
            "--web",
            "127.0.0.1:0",
        ],
    );
    let web = run.web.unwrap();
    let first = feed_until(web, "a first second", |v| v["seconds"].as_u64() >= Some(2));
    assert_eq!(first["steer"]["knob"], "rate", "{}", first["steer"]);
    let json = "application/json";
    let (status, answer) = control(web, "/api/steer", json, "{\"users\": 5}");
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("open model"),
        "{answer}"
    );
    let (status, answer) = control(web, "/api/steer", json, "{\"rate\": 50, \"spawn_rate\": 2}");
    assert_eq!(status, 400, "{answer}");
    let (status, up) = control(web, "/api/steer", json, "{\"rate\": 200}");
    assert_eq!(status, 202, "{up}");
    let up_at = up["change"]["at_s"].as_f64().unwrap();
    assert_eq!(up["change"]["from"], 50.0);
    feed_until(web, "three seconds at 200/s", |v| {
        v["seconds"].as_f64() > Some(up_at + 3.0)
    });
    let (status, down) = control(web, "/api/steer", json, "{\"rate\": 100, \"ramp_s\": 2}");
    assert_eq!(status, 202, "{down}");
    let down_at = down["change"]["at_s"].as_f64().unwrap();
    let last = feed_until(web, "the ramp's end", |v| {
        v["seconds"].as_f64() > Some(down_at + 3.0)
    });
    assert_eq!(last["now"]["target"], 100.0, "{}", last["now"]);
    let (dir, _) = run.stop();

    let r = read_run(&dir);
    let dropped: u32 = r
        .logs
        .iter()
        .flat_map(|l| &l.intervals)
        .map(|i| i.iterations_dropped)
        .sum();
    assert_eq!(dropped, 0, "every arrival found a user");
    let starts: Vec<f64> = r
        .rows()
        .iter()
        .map(|s| s.intended_us as f64 / 1e6)
        .collect();
    let arrivals = |from: f64, to: f64| starts.iter().filter(|&&t| t >= from && t < to).count();
    let near = |got: usize, want: f64, what: &str| {
        assert!(
            (got as f64 - want).abs() <= 2.0,
            "{what}: {got} arrivals, want {want}"
        );
    };
    near(arrivals(up_at - 1.5, up_at - 0.5), 50.0, "before");
    near(arrivals(up_at + 0.5, up_at + 1.5), 200.0, "after the jump");
    near(
        arrivals(down_at, down_at + 2.0),
        300.0,
        "along the ramp 200 → 100",
    );
    near(
        arrivals(down_at + 2.0, down_at + 3.0),
        100.0,
        "after the ramp",
    );
    for log in &r.logs {
        let got: Vec<(u8, f64, f64, u64)> = log
            .load_changes
            .iter()
            .map(|c| (c.what, c.from, c.to, c.ramp_us))
            .collect();
        assert_eq!(
            got,
            [
                (formats::LoadChange::RATE, 50.0, 200.0, 0),
                (formats::LoadChange::RATE, 200.0, 100.0, 2_000_000)
            ]
        );
    }
}

/// A user that steering stops finishes its iteration (or cuts its think time short) and runs its
/// on_stop then, as Locust's users do; the users that stay run theirs only at the run's end (not at
/// all when it is interrupted).
#[test]
fn users_stopped_by_steering_run_their_on_stop() {
    let _serial = one_at_a_time();
    let server = server();
    let tmp = tempfile::tempdir().unwrap();
    let profile = profile(
        tmp.path(),
        &format!(
            r#"(name: "bye", host: "http://{}", load: Closed(users: 4, duration: "60s"),
                users: [(wait: Constant("30s"),
                         tasks: [(requests: [(path: "/", name: "work")])],
                         on_stop: [(path: "/", name: "bye")])])"#,
            server.addr()
        ),
    );
    let run = LiveRun::start(
        &tmp.path().join("runs"),
        &[
            profile.to_str().unwrap(),
            "--quiet",
            "--cores",
            "2",
            "--web",
            "127.0.0.1:0",
        ],
    );
    let web = run.web.unwrap();
    feed_until(web, "four users", |v| v["now"]["users"].as_u64() == Some(4));
    let (status, down) = control(web, "/api/steer", "application/json", "{\"users\": 1}");
    assert_eq!(status, 202, "{down}");
    let down_at = down["change"]["at_s"].as_f64().unwrap();
    feed_until(web, "one user", |v| {
        v["now"]["users"].as_u64() == Some(1) && v["seconds"].as_f64() > Some(down_at + 1.0)
    });
    let (dir, _) = run.stop();
    let byes = read_run(&dir).named("bye");
    let mut users: Vec<u32> = byes.iter().map(|s| s.user).collect();
    users.sort_unstable();
    assert_eq!(
        users,
        [1, 2, 3],
        "one on_stop each, for the stopped users only"
    );
    // They were thinking for 30 s: they stop at the change, not when their think time is over.
    let at = (down_at * 1e6) as u64;
    assert!(
        byes.iter()
            .all(|s| s.intended_us >= at && s.intended_us < at + 1_000_000),
        "{byes:?}"
    );
}
