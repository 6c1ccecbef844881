//! Environments, precedence, secrets, fragments.

use super::*;

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

for_each_backend!(
    environments_and_precedence_end_to_end,
    secrets_never_reach_the_manifest_or_the_console,
    fragments_are_merged_into_the_profile,
);
