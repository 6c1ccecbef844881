//! Auth.

use super::*;

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
    // Each kind ran (the count is not the point: a loaded CI machine once left under 21 of one kind
    // in the 1 s run), and every request's check below proves its own user's token.
    let (hs, rs) = (r.named("hs").len(), r.named("rs").len());
    assert!(hs > 0 && rs > 0, "hs {hs}, rs {rs} requests");
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

for_each_backend!(
    basic_auth_sends_each_users_credentials,
    jwts_are_minted_per_user_with_hs256_and_rs256,
    oauth2_tokens_are_fetched_once_per_core_and_refreshed_before_expiry,
    a_refused_oauth2_client_makes_no_authenticated_requests,
);
