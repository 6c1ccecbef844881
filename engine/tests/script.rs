//! Scripting end to end (`script:` and `Script(call: ...)`): per-user state across iterations, results
//! in requests, a runaway script stopped by its budget, the sandbox, and load-time errors located in
//! the script, against the embedded target.

mod util;

use std::collections::BTreeMap;

use formats::Outcome;
use util::*;

const OTHER: u8 = Outcome::Other as u8;

/// Writes `profile` (with `{addr}`) and `script.lua`, runs on one core; returns the output and the
/// directory that holds the run (removed when dropped).
fn run_script(
    server: &engine::serve::Server,
    profile_text: &str,
    script: &str,
) -> (std::process::Output, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("script.lua"), script).unwrap();
    let text = profile_text.replace("{addr}", &server.addr().to_string());
    let profile = profile(tmp.path(), &text);
    let out = run(tmp.path(), &[profile.to_str().unwrap(), "--cores", "1"]);
    (out, tmp)
}

fn a_users_table_keeps_state_across_iterations_and_results_reach_requests() {
    let _serial = one_at_a_time();
    let server = recording_server();
    let (out, _dir) = run_script(
        &server,
        r#"(name: "state", host: "http://{addr}", script: "script.lua",
            load: Closed(users: 3, duration: "5s"),
            users: [(iterations: 4, tasks: [(flow: [
                Script(call: "count", args: ["{{user_id()}}"], into: "n"),
                Request(path: "/anything/{{user_id()}}/{{n}}", name: "counted"),
            ])])])"#,
        "function count(u, who)\n  u.n = (u.n or 0) + 1\n  return who .. '-' .. u.n\nend\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = read_run(&run_dir(&out));
    assert!(r.failures().is_empty(), "{:?}", r.failures());
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for rec in server.recorded() {
        let parts: Vec<&str> = rec.path().trim_start_matches('/').split('/').collect();
        if let ["anything", user, n] = parts.as_slice() {
            seen.entry((*user).to_owned())
                .or_default()
                .push((*n).to_owned());
        }
    }
    assert_eq!(seen.len(), 3);
    for (user, ns) in seen {
        let want: Vec<String> = (1..=4).map(|i| format!("{user}-{i}")).collect();
        assert_eq!(ns, want, "each user counts on its own, across iterations");
    }
}

fn a_runaway_script_is_stopped_and_fails_its_iteration_only() {
    let _serial = one_at_a_time();
    let server = recording_server();
    let (out, _dir) = run_script(
        &server,
        r#"(name: "runaway", host: "http://{addr}", script: "script.lua",
            load: Closed(users: 1, duration: "5s"),
            users: [(iterations: 3, tasks: [(flow: [
                Request(path: "/anything/before", name: "before"),
                Script(call: "spin"),
                Request(path: "/anything/after", name: "after"),
            ])])])"#,
        "function spin(u)\n  while true do end\nend\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = read_run(&run_dir(&out));
    assert_eq!(
        r.named("before").len(),
        3,
        "the user went on after each failure"
    );
    assert!(r.named("after").is_empty());
    let spins = r.named("script spin");
    assert_eq!(spins.len(), 3);
    for row in spins {
        assert_eq!(row.outcome, OTHER);
        assert_eq!(
            row.message.as_deref(),
            Some("script.lua:2: the script ran over its budget of 1000000 instructions")
        );
    }
}

fn the_sandbox_has_no_files_and_errors_name_the_line() {
    let _serial = one_at_a_time();
    let server = recording_server();
    let (out, _dir) = run_script(
        &server,
        r#"(name: "sandbox", host: "http://{addr}", script: "script.lua",
            load: Closed(users: 1, duration: "5s"),
            users: [(iterations: 2, tasks: [(flow: [Script(call: "steal", into: "x")])])])"#,
        "-- tries to read a file\nfunction steal(u)\n  return io.open('/etc/passwd'):read('a')\nend\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = read_run(&run_dir(&out));
    let rows = r.named("script steal");
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|row| row.message.as_deref()
        == Some("script.lua:3: attempt to index a nil value (global 'io')")));
}

fn the_example_profile_runs_without_failures() {
    let _serial = one_at_a_time();
    example_runs_without_failures(
        "scripting.ron",
        &[
            "GET /search",
            "GET /items/{id}",
            "POST /cart",
            "POST /checkout",
        ],
    );
}

for_each_backend!(
    a_users_table_keeps_state_across_iterations_and_results_reach_requests,
    a_runaway_script_is_stopped_and_fails_its_iteration_only,
    the_sandbox_has_no_files_and_errors_name_the_line,
    the_example_profile_runs_without_failures,
);

/// Script mistakes are load-time errors (exit 2) naming the profile's field and the script's line.
#[test]
fn script_mistakes_are_load_time_errors() {
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"script: "script.lua","#,
            "function sign(u)\n  return u ..\nend\n",
            "in `script`: syntax error: script.lua:3: unexpected symbol near 'end'",
        ),
        (
            r#"script: "script.lua","#,
            "function sign(u) return 'x' end\n",
            "in `users[0].tasks[0].flow[0].Script.call`: script.lua defines no function `sing`; did you mean `sign`? (functions: sign)",
        ),
        (
            "",
            "",
            "in `users[0].tasks[0].flow[0].Script.call`: there is no script to call",
        ),
        (
            r#"script: "missing.lua","#,
            "",
            "in `script`: cannot read the script",
        ),
    ];
    for (field, script, want) in cases {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("script.lua"), script).unwrap();
        let text = format!(
            "(name: \"bad\", host: \"http://127.0.0.1:9\", {field}\n load: Closed(users: 1, duration: \"1s\"),\n users: [(tasks: [(flow: [Script(call: \"sing\")])])])"
        );
        let profile = profile(tmp.path(), &text);
        let out = run(tmp.path(), &[profile.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{want}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(want), "want {want}\n got {err}");
    }
}
