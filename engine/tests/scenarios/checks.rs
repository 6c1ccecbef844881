//! Correlation and checks.

use super::*;

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

for_each_backend!(
    the_token_extracted_at_login_is_what_private_receives,
    a_missing_extraction_fails_naming_the_rule_and_ends_the_iteration,
    optional_regex_header_cookie_and_status_extractions,
    failed_checks_are_check_samples_with_messages_interned_once,
);
