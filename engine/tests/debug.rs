//! Runs you can debug: `engine try` prints every request and response with its rules and timings and
//! exits non-zero when one fails; a run in which every request failed says why and exits 4 (unless
//! `--failures-are-data`); a failed check's message in the log says what it got, and the messages of
//! one check stay bounded when what it got varies.

mod util;

use std::path::Path;
use std::process::Output;

use util::*;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A profile against the embedded target: a login that extracts a token, then a read with checks.
fn shop(check: &str) -> String {
    format!(
        r#"(
    name: "try-me",
    host: "embedded",
    secrets: {{"api_key": "sk-hidden-4242"}},
    users: [
        (
            name: "shopper",
            on_start: [
                (method: POST, path: "/login", name: "POST /login",
                 headers: {{"X-Api-Key": "${{api_key}}"}},
                 body: Json({{"user": "ann", "password": "secret"}}),
                 extract: {{"token": Json("/token"), "who": Json("/user")}}),
            ],
            tasks: [(requests: [
                (path: "/items/5", name: "GET /items/{{id}}",
                 checks: [Status([200]), {check}]),
            ])],
        ),
        (name: "browser", tasks: [(requests: [(path: "/", name: "home")])]),
    ],
)"#
    )
}

/// Runs `engine <args>` in `dir` (so that a default `runs/` would land there) with its temporary
/// directory in `dir/tmp`.
fn engine_in(dir: &Path, args: &[&str]) -> Output {
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    engine()
        .current_dir(dir)
        .env("TMPDIR", &tmp)
        .env_remove("NO_COLOR")
        .args(args)
        .output()
        .expect("the engine binary runs")
}

/// Nothing was left behind: no `runs/`, nothing in the temporary directory.
fn assert_nothing_written(dir: &Path) {
    assert!(!dir.join("runs").exists(), "engine try wrote runs/");
    assert_eq!(
        std::fs::read_dir(dir.join("tmp")).unwrap().count(),
        0,
        "engine try left its temporary run directory"
    );
}

#[test]
fn try_prints_requests_responses_extractions_checks_and_timings() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let p = profile(dir.path(), &shop(r#"JsonEquals("/id", 5)"#));
    let out = engine_in(dir.path(), &["try", p.to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    for want in [
        // The request line as a URL, its headers and its body.
        "> POST http://127.0.0.1:",
        "> POST /login HTTP/1.1",
        "\"password\":\"secret\"",
        // The response.
        "< HTTP/1.1 200 OK",
        // Extractions with their values (a token's hidden: its name looks secret).
        "✓ extract who = Json(\"/user\")",
        "\"ann\"",
        "✓ extract token = Json(\"/token\")  ***",
        // Checks with what they saw.
        "✓ check Status([200])",
        "expected status 200, got 200",
        "✓ check JsonEquals(\"/id\",5)",
        "got \"5\"",
        // Timings.
        "time: connect ",
        "waiting ",
        "result: ok",
        // Both kinds ran, one iteration each.
        "── shopper #0 · iteration 1 · GET /items/{id}",
        "── browser #1 · iteration 1 · home",
        "PASSED",
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }
    // The secret's value is hidden wherever it appears, and the header that carries it too.
    assert!(!text.contains("sk-hidden-4242"), "{text}");
    assert!(text.contains("> X-Api-Key: ***"), "{text}");
    // So is the value extracted into `token`, in the login response it came from.
    assert!(text.contains("< {\"token\":\"***\""), "{text}");
    assert!(
        !text.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
    assert_eq!(text.matches("── shopper").count(), 2, "login and one read");
    assert_nothing_written(dir.path());
}

#[test]
fn try_exits_4_when_a_check_fails_and_says_what_it_got() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let p = profile(dir.path(), &shop(r#"JsonEquals("/id", 6)"#));
    let out = engine_in(dir.path(), &["try", p.to_str().unwrap(), "-i", "2"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(4), "{text}\n{}", stderr(&out));
    assert!(
        text.contains("✗ check JsonEquals(\"/id\",6)"),
        "the failed check is marked:\n{text}"
    );
    assert!(
        text.contains("FAILED (check): check JsonEquals(\"/id\",6) failed: got \"5\""),
        "the sample's message says what it got:\n{text}"
    );
    assert_eq!(
        text.matches("· GET /items/{id}").count(),
        2,
        "two iterations:\n{text}"
    );
    assert!(text.contains("FAILED: exit 4"), "{text}");
    assert_nothing_written(dir.path());

    // `run --debug` is the same thing, and `--json` is one object per request.
    let out = engine_in(
        dir.path(),
        &["run", p.to_str().unwrap(), "--debug", "--json"],
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 3, "login, read, home");
    let read = lines
        .iter()
        .find(|v| v["name"] == "GET /items/{id}")
        .unwrap();
    assert_eq!(read["outcome"], "check");
    assert_eq!(read["response"]["status"], 200);
    assert_eq!(read["rules"][1]["passed"], false);
    assert_eq!(read["rules"][1]["detail"], "got \"5\"");
    assert!(
        read["request"]["url"]
            .as_str()
            .unwrap()
            .ends_with("/items/5")
    );
    assert_nothing_written(dir.path());
}

/// A login that fails (here: nothing listens) counts as one of the user's iterations, so `engine try`
/// shows the one failed attempt and ends, instead of retrying the login after each think time until
/// its time limit; with `-i 3` it makes three attempts.
#[test]
fn try_stops_after_a_failed_on_start() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let refused = {
        // A port that was free a moment ago: nothing accepts on it.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let p = profile(
        dir.path(),
        &format!(
            r#"(name: "down", host: "http://{refused}",
    users: [(wait: Constant("10ms"),
             on_start: [(method: POST, path: "/login", name: "POST /login")],
             tasks: [(requests: [(path: "/", name: "home")])])])"#
        ),
    );
    for (iterations, attempts) in [("1", 1), ("3", 3)] {
        let out = engine_in(
            dir.path(),
            &[
                "try",
                p.to_str().unwrap(),
                "-i",
                iterations,
                "-d",
                "30s",
                "--no-preflight",
            ],
        );
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(4), "{text}\n{}", stderr(&out));
        assert_eq!(
            text.matches("· POST /login").count(),
            attempts,
            "-i {iterations}:\n{text}"
        );
        assert_eq!(text.matches("· home").count(), 0, "{text}");
        assert!(text.contains("connect_error"), "{text}");
    }
    assert_nothing_written(dir.path());
}

#[test]
fn try_keeps_a_run_directory_only_with_out() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let p = profile(dir.path(), &shop(r#"JsonExists("/id")"#));
    let runs = dir.path().join("kept");
    let out = engine_in(
        dir.path(),
        &["try", p.to_str().unwrap(), "--out", runs.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = read_run(&run_dir(&out));
    assert_eq!(
        r.samples.len(),
        3,
        "login, read, home: the same samples as a run"
    );
}

/// A closed loopback port: every request fails as connection refused. The console names the reason
/// as it happens, the summary lists it, and the run exits 4; `--failures-are-data` keeps 0.
#[test]
fn a_run_where_every_request_failed_says_why_and_exits_4() {
    let _serial = one_at_a_time();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/");
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "run",
        "--url",
        &url,
        "--no-preflight",
        "-u",
        "2",
        "-t",
        "1s",
        "-c",
        "1",
    ];
    let out = engine()
        .args(args)
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(4), "{text}\n{err}");
    assert!(
        err.contains("[connect: connection refused: "),
        "the live line names the reason:\n{err}"
    );
    assert!(err.contains("ERROR: every one of the"), "{err}");
    assert!(text.contains("failures by reason ("), "{text}");
    assert!(text.contains("%  connect: connection refused"), "{text}");
    assert!(
        text.contains("EVERY REQUEST FAILED (connect: connection refused)"),
        "{text}"
    );
    // The run directory is still the last line, and the log has the samples.
    let r = read_run(&run_dir(&out));
    assert!(!r.samples.is_empty());

    let out = engine()
        .args(args)
        .args(["--failures-are-data", "--quiet", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("exit status 0 (--failures-are-data)"));
}

/// A status check that fails logs what it got, so reports show "expected status 201, got 409"; a
/// check whose seen value changes every request keeps at most 16 messages, then one shared.
#[test]
fn failed_checks_log_what_they_got_with_a_bounded_message_table() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let p = profile(
        dir.path(),
        r#"(
    name: "got",
    host: "embedded",
    load: Closed(users: 1, duration: "20s", iterations: 40),
    users: [(tasks: [(requests: [
        (method: POST, path: "/status/409", name: "conflict", expect_status: [201, 409],
         checks: [Status([201])]),
        (path: "/items/{{seq()}}", name: "item", checks: [JsonEquals("/id", -1)]),
    ])])],
)"#,
    );
    // Every request fails here by design: `run` passes --failures-are-data.
    let out = run(dir.path(), &[p.to_str().unwrap(), "-c", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = read_run(&run_dir(&out));
    let conflict = r.named("conflict");
    assert_eq!(conflict.len(), 40);
    for row in &conflict {
        assert_eq!(
            row.message.as_deref(),
            Some("check Status([201]) failed: expected status 201, got 409")
        );
    }
    let items = r.named("item");
    assert_eq!(items.len(), 40);
    let distinct: std::collections::BTreeSet<String> =
        items.iter().filter_map(|r| r.message.clone()).collect();
    assert_eq!(distinct.len(), 17, "16 values and the rest: {distinct:?}");
    let got = distinct
        .iter()
        .filter(|m| m.starts_with("check JsonEquals(\"/id\",-1) failed: got \""))
        .count();
    assert_eq!(got, 16, "{distinct:?}");
    assert!(
        distinct.contains("check JsonEquals(\"/id\",-1) failed: … (other values)"),
        "{distinct:?}"
    );
    let others = items
        .iter()
        .filter(|r| {
            r.message
                .as_deref()
                .is_some_and(|m| m.ends_with("(other values)"))
        })
        .count();
    assert_eq!(others, 40 - 16);
}
