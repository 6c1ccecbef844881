//! Control flow end to end (`flow: [...]`): loops that poll until a job is done or give up, bounded
//! `While` and `Break`, branches on variables and on the last response, signed requests and random
//! picks from a list, against the embedded target; each asserted on what the target received or what
//! the log says. And the load-time errors of control flow, with their line and column.

mod util;

use std::collections::{BTreeMap, BTreeSet};

use formats::Outcome;
use util::*;

const OK: u8 = Outcome::Ok as u8;
const CHECK: u8 = Outcome::Check as u8;
const STATUS: u8 = Outcome::Status as u8;

/// Runs `text` (with `{addr}` replaced by `server`'s address) on one core; requires exit 0.
fn run_profile(server: &engine::serve::Server, text: &str) -> ReadBack {
    let tmp = tempfile::tempdir().unwrap();
    let text = text.replace("{addr}", &server.addr().to_string());
    let profile = profile(tmp.path(), &text);
    let out = run(tmp.path(), &[profile.to_str().unwrap(), "--cores", "1"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    read_run(&run_dir(&out))
}

/// Polls per job id, from what the target received.
fn polls_per_job(server: &engine::serve::Server) -> BTreeMap<String, usize> {
    let mut polls = BTreeMap::new();
    for rec in server.recorded() {
        if rec.method == "GET"
            && let Some(id) = rec.path().strip_prefix("/jobs/")
        {
            *polls.entry(id.to_owned()).or_insert(0) += 1;
        }
    }
    polls
}

fn a_repeat_polls_until_the_job_is_done_and_no_longer() {
    let _serial = one_at_a_time();
    let server = recording_server();
    let r = run_profile(
        &server,
        r#"(name: "poll", host: "http://{addr}", load: Closed(users: 3, duration: "5s"),
            users: [(iterations: 4, tasks: [(flow: [
                Request(method: POST, path: "/jobs?polls=4", name: "submit", extract: {"job": Json("/id")}),
                Set("state", ""),
                Repeat(name: "job done", until: Eq("{{state}}", "done"), max: 10, wait: Constant("5ms"), do: [
                    Request(path: "/jobs/{{job}}", name: "poll", extract: {"state": Json("/state")}),
                ]),
                If(cond: Eq("{{state}}", "done"), then: [Request(path: "/jobs/{{job}}", name: "result")]),
            ])])])"#,
    );
    let failures = r.failures();
    assert!(failures.is_empty(), "{failures:?}");
    // 3 users x 4 iterations, each job polled exactly until its fourth poll said done.
    let polls = polls_per_job(&server);
    assert_eq!(r.named("submit").len(), 12);
    assert_eq!(polls.len(), 12, "{polls:?}");
    assert!(
        polls.values().all(|&n| n == 5),
        "4 polls and the result: {polls:?}"
    );
    assert_eq!(r.named("poll").len(), 48);
    assert_eq!(r.named("result").len(), 12);
    // The named loop is one sample per job, from its start to the pass that found it done.
    let done = r.named("job done");
    assert_eq!(done.len(), 12);
    for row in &done {
        assert_eq!(row.outcome, OK);
        // Three 5 ms pauses between four polls.
        assert!(row.latency_us >= 15_000, "{row:?}");
    }
}

fn a_repeat_that_runs_out_gives_up_with_a_failed_sample_and_ends_the_iteration() {
    let _serial = one_at_a_time();
    let server = recording_server();
    let r = run_profile(
        &server,
        r#"(name: "give-up", host: "http://{addr}", load: Closed(users: 2, duration: "5s"),
            users: [(iterations: 3, tasks: [(flow: [
                Request(method: POST, path: "/jobs?polls=50", name: "submit", extract: {"job": Json("/id")}),
                Repeat(until: Eq("{{state}}", "done"), max: 3, do: [
                    Request(path: "/jobs/{{job}}", name: "poll", extract: {"state": Json("/state")}),
                ]),
                Request(path: "/anything/after", name: "after"),
            ])])])"#,
    );
    let polls = polls_per_job(&server);
    assert_eq!(polls.len(), 6);
    assert!(polls.values().all(|&n| n == 3), "{polls:?}");
    assert!(r.named("after").is_empty(), "giving up ends the iteration");
    let gave_up = r.named(r#"repeat until Eq("{{state}}","done")"#);
    assert_eq!(gave_up.len(), 6, "{:?}", r.failures());
    for row in gave_up {
        assert_eq!(row.outcome, CHECK);
        assert_eq!(
            row.message.as_deref(),
            Some(r#"gave up: Eq("{{state}}","done") did not hold within 3 passes"#)
        );
    }
}

fn a_repeat_gives_up_at_its_timeout() {
    let _serial = one_at_a_time();
    let server = recording_server();
    let r = run_profile(
        &server,
        r#"(name: "timeout", host: "http://{addr}", load: Closed(users: 1, duration: "5s"),
            users: [(iterations: 2, tasks: [(flow: [
                Request(method: POST, path: "/jobs?polls=1000", name: "submit", extract: {"job": Json("/id")}),
                Repeat(name: "job done", until: Eq("{{state}}", "done"), max: 1000, timeout: "200ms",
                       wait: Constant("30ms"), do: [
                    Request(path: "/jobs/{{job}}", name: "poll", extract: {"state": Json("/state")}),
                ]),
            ])])])"#,
    );
    let gave_up = r.named("job done");
    assert_eq!(gave_up.len(), 2);
    for row in &gave_up {
        assert_eq!(row.outcome, CHECK);
        assert!(
            row.message
                .as_deref()
                .unwrap()
                .ends_with("within 1000 passes or 200ms"),
            "{row:?}"
        );
        // It gave up when the next pass (30 ms after the last one ended) would have begun at or
        // after 200 ms: the last pass ended at 170 ms or later.
        assert!(row.latency_us >= 170_000, "{row:?}");
    }
    // Each pass but the first begins 30 ms after the previous one ended, and none at or after
    // 200 ms: at most 7 passes per job, far fewer than max.
    let polls = polls_per_job(&server);
    assert_eq!(polls.len(), 2);
    assert!(polls.values().all(|&n| (1..=7).contains(&n)), "{polls:?}");
}

fn a_while_is_bounded_and_break_leaves_it() {
    let _serial = one_at_a_time();
    let server = recording_server();
    let r = run_profile(
        &server,
        r#"(name: "while", host: "http://{addr}", load: Closed(users: 1, duration: "5s"),
            users: [(iterations: 2, tasks: [(flow: [
                // Done at the 3rd poll; Break leaves the loop right after it.
                Request(method: POST, path: "/jobs?polls=3", name: "submit", extract: {"job": Json("/id")}),
                While(cond: Eq("1", "1"), max: 10, do: [
                    Request(path: "/jobs/{{job}}", name: "poll", extract: {"state": Json("/state")}),
                    If(cond: Eq("{{state}}", "done"), then: [Break]),
                ]),
                // Never done within the bound: the loop ends quietly after 2 passes and the flow goes on.
                Request(method: POST, path: "/jobs?polls=9", name: "submit slow", extract: {"slow": Json("/id")}),
                Set("state", ""),
                While(cond: Ne("{{state}}", "done"), max: 2, do: [
                    Request(path: "/jobs/{{slow}}", name: "poll slow", extract: {"state": Json("/state")}),
                ]),
                Request(path: "/anything/after", name: "after"),
            ])])])"#,
    );
    assert!(r.failures().is_empty(), "{:?}", r.failures());
    let polls = polls_per_job(&server);
    let mut counts: Vec<usize> = polls.values().copied().collect();
    counts.sort_unstable();
    assert_eq!(counts, [2, 2, 3, 3], "{polls:?}");
    assert_eq!(r.named("after").len(), 2);
}

fn branches_follow_variables_and_the_last_response() {
    let _serial = one_at_a_time();
    let server = recording_server();
    let r = run_profile(
        &server,
        r#"(name: "branches", host: "http://{addr}", load: Closed(users: 1, duration: "5s"),
            users: [(iterations: 5, tasks: [(flow: [
                Request(path: "/status/404", name: "missing", expect_status: [404]),
                If(cond: LastStatus([404]), then: [Request(path: "/anything/404-then", name: "404 then")],
                   else: [Request(path: "/anything/404-else", name: "404 else")]),
                Request(path: "/status/500", name: "broken"),
                If(cond: LastOk, then: [Request(path: "/anything/never", name: "never")]),
                If(cond: LastFailed, then: [Request(path: "/anything/failed", name: "failed then")]),
                If(cond: LastOk, then: [Request(path: "/anything/ok", name: "ok then")]),
                Request(path: "/items/7", name: "item", extract: {"id": Json("/id"), "price": Json("/price")}),
                If(cond: All([Gt("{{id}}", 5), Le("{{price}}", 7.07), Matches("{{id}}", "^7$")]),
                   then: [Request(path: "/anything/numbers", name: "numbers")]),
                If(cond: Any([Lt("{{id}}", 5), Contains("{{id}}", "8")]),
                   then: [Request(path: "/anything/never", name: "never")]),
                If(cond: Chance(0.0), then: [Request(path: "/anything/never", name: "never")],
                   else: [Request(path: "/anything/chance", name: "chance else")]),
            ])])])"#,
    );
    let failures: Vec<_> = r
        .failures()
        .into_iter()
        .filter(|(n, _)| n != "broken")
        .collect();
    assert!(failures.is_empty(), "{failures:?}");
    for (name, n) in [
        ("404 then", 5),
        ("404 else", 0),
        ("failed then", 5),
        ("ok then", 5),
        ("never", 0),
        ("numbers", 5),
        ("chance else", 5),
    ] {
        assert_eq!(r.named(name).len(), n, "{name}");
    }
    assert!(r.named("broken").iter().all(|row| row.outcome == STATUS));
}

fn a_signed_request_carries_the_hmac_of_its_body() {
    let _serial = one_at_a_time();
    for (secret, want) in [
        (engine::serve::SIGNING_SECRET, OK),
        ("not-the-secret", STATUS),
    ] {
        let server = recording_server();
        let r = run_profile(
            &server,
            &r#"(name: "signed", host: "http://{addr}", load: Closed(users: 2, duration: "5s"),
                variables: {"key": "SECRET"},
                users: [(iterations: 5, tasks: [(flow: [
                    Set("payload", "{\"order\":{{seq()}}}"),
                    Request(method: POST, path: "/signed", name: "signed",
                            headers: {"X-Signature": "{{hmac_sha256(key, payload)}}"},
                            body: Text("{{payload}}")),
                ])])])"#
                .replace("SECRET", secret),
        );
        let rows = r.named("signed");
        assert_eq!(rows.len(), 10);
        assert!(
            rows.iter().all(|row| row.outcome == want),
            "{secret}: {rows:?}"
        );
        // Every body was different, and signed as sent.
        let bodies: BTreeSet<Vec<u8>> = server.recorded().into_iter().map(|rec| rec.body).collect();
        assert_eq!(bodies.len(), 10);
    }
}

fn a_random_pick_opens_only_listed_items_and_all_of_them() {
    let _serial = one_at_a_time();
    let server = recording_server();
    let r = run_profile(
        &server,
        r#"(name: "pick", host: "http://{addr}", load: Closed(users: 1, duration: "5s"),
            users: [(iterations: 60, tasks: [(flow: [
                Request(path: "/search?q=tea", name: "list", extract: {"item": Random(Json("$.results[*].id"))}),
                Request(path: "/items/{{item}}", name: "open", checks: [JsonEquals("/id", "{{raw(item)}}")]),
            ])])])"#,
    );
    assert!(r.failures().is_empty(), "{:?}", r.failures());
    // What /search?q=tea lists: three ids derived from the query.
    let listing: serde_json::Value = serde_json::from_str(&get(&server, "/search?q=tea")).unwrap();
    let listed: BTreeSet<String> = listing["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].to_string())
        .collect();
    let opened: BTreeSet<String> = server
        .recorded()
        .iter()
        .filter_map(|rec| rec.path().strip_prefix("/items/").map(str::to_owned))
        .collect();
    assert_eq!(r.named("open").len(), 60);
    assert_eq!(
        opened, listed,
        "only listed items, and each of them in 60 picks"
    );
}

/// The body of a GET to the test server.
fn get(server: &engine::serve::Server, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(server.addr()).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap()
}

fn the_example_profile_runs_without_failures() {
    let _serial = one_at_a_time();
    let r = example_runs_without_failures(
        "control-flow.ron",
        &[
            "POST /jobs",
            "GET /jobs/{id}",
            "job done",
            "GET /jobs/{id} (result)",
            "POST /signed",
            "GET /search",
            "GET /items/{id}",
        ],
    );
    // The analyzer reads the manifest's profile generically (thresholds, TLS settings): flows must
    // come out as RON any reader parses.
    let profile = &r.manifest.profile;
    assert!(profile.contains("Repeat("), "{profile}");
    if let Err(e) = ron::Options::default().from_str::<ron::Value>(profile) {
        panic!("the manifest's profile is not RON: {e}\n{profile}");
    }
}

for_each_backend!(
    a_repeat_polls_until_the_job_is_done_and_no_longer,
    a_repeat_that_runs_out_gives_up_with_a_failed_sample_and_ends_the_iteration,
    a_repeat_gives_up_at_its_timeout,
    a_while_is_bounded_and_break_leaves_it,
    branches_follow_variables_and_the_last_response,
    a_signed_request_carries_the_hmac_of_its_body,
    a_random_pick_opens_only_listed_items_and_all_of_them,
    the_example_profile_runs_without_failures,
);

/// Load-time errors: `engine run` refuses the profile with exit status 2, naming the file, line,
/// column and field.
#[test]
fn control_flow_mistakes_are_located_load_time_errors() {
    let cases: &[(&str, &str)] = &[
        (
            r#"Request(path: "/"), Break"#,
            "profile.ron:3:50: in `users[0].tasks[0].flow[1]`: `Break` leaves a `While` or `Repeat`, and there is none around it",
        ),
        (
            r#"If(cond: Eq("{{stat}}", "done"), then: [Request(path: "/")])"#,
            "profile.ron:3:43: in `users[0].tasks[0].flow[0].If.cond`: unknown variable `stat`",
        ),
        (
            r#"Request(path: "/"), If(cond: Matches("abc", "a(b"), then: [Request(path: "/")])"#,
            "in `users[0].tasks[0].flow[1].If.cond`: invalid regex",
        ),
        (
            r#"If(cond: Gt("many", 3), then: [Request(path: "/")])"#,
            r#"in `users[0].tasks[0].flow[0].If.cond`: "many" is never a number"#,
        ),
        (
            r#"If(cond: Chance(1.5), then: [Request(path: "/")])"#,
            "Chance(1.5) is not a probability",
        ),
        (
            r#"While(cond: LastOk, max: 5, do: [Set("x", "1")])"#,
            "the loop neither sends a request nor waits",
        ),
        (
            r#"Repeat(until: LastOk, max: 0, do: [Request(path: "/")])"#,
            "max must be at least 1",
        ),
        (
            r#"Request(path: "/", extract: {"x": Random(Header("Location"))})"#,
            "Random(...) draws one of the values a JSON selector matches",
        ),
        (
            r#"If(cond: Eq("{{x}}", "1"), then: [Request(path: "/", name: "{{x}}")]), Set("x", "2")"#,
            "a request name groups samples",
        ),
        (
            r#"Iff(cond: LastOk, then: [])"#,
            "profile.ron:3:30: in `users[0].tasks[0].flow[0]`: unknown variant `Iff` for `Flow`; did you mean `If`?",
        ),
    ];
    for (flow, want) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let text = format!(
            "(name: \"bad\", host: \"http://127.0.0.1:9\", load: Closed(users: 1, duration: \"1s\"),\n    variables: {{}},\n    users: [(tasks: [(flow: [{flow}])])],\n)"
        );
        let profile = profile(tmp.path(), &text);
        let out = run(tmp.path(), &[profile.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{flow}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(want), "{flow}:\n  want {want}\n  got  {err}");
    }
}
