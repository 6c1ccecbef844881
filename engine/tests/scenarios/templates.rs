//! Templates.

use super::*;

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

for_each_backend!(templates_render_fresh_values_in_path_query_headers_and_body,);
