//! Feeders.

use super::*;

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

for_each_backend!(
    a_unique_feeder_never_repeats_a_row_across_cores,
    a_sequential_feeder_uses_each_row_once_then_stops_its_users,
    json_lines_and_circular_feeders_recycle_rows,
    a_random_feeder_draws_any_row_in_any_order,
);
