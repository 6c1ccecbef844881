//! Cookies.

use super::*;

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

for_each_backend!(
    cookies_set_by_the_target_are_sent_back_per_user,
    without_a_cookie_jar_the_session_is_not_kept,
);
