//! The example profiles.

use super::*;

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

for_each_backend!(
    every_example_profile_runs_against_the_embedded_target,
    thresholds_are_kept_in_the_manifest_for_the_analyzer,
);
