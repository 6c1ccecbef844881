//! The command line: bad input exits 2 with a message naming the place and the fix; help shows the
//! pipeline; `engine serve` prints its address.

mod util;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

use util::*;

/// Every file in the corpus starts with `// expect: <fragment>` lines; each fragment must appear in
/// the error, and the error must name the file.
#[test]
fn bad_profiles_exit_2_with_located_messages() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bad-profiles");
    let tmp = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "ron") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let out = run(tmp.path(), &[path.to_str().unwrap()]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{}: {err}", path.display());
        assert!(!err.contains("panicked"), "{err}");
        // An error in an included fragment names the fragment instead (its `expect` lines say so).
        let name = path.file_name().unwrap().to_str().unwrap();
        let in_fragment = text
            .lines()
            .any(|l| l.starts_with("// expect: ") && l.contains(".ron:") && !l.contains(name));
        assert!(in_fragment || err.contains(name), "names the file: {err}");
        for fragment in text.lines().filter_map(|l| l.strip_prefix("// expect: ")) {
            assert!(
                err.contains(fragment),
                "{}: expected {fragment:?} in {err}",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(checked >= 20);
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "no run directory for a bad profile"
    );
}

#[test]
fn errors_that_are_parsed_have_line_and_column() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bad-profiles/unknown-field.ron");
    let tmp = tempfile::tempdir().unwrap();
    let err = stderr(&run(tmp.path(), &[path.to_str().unwrap()]));
    assert!(
        err.contains("unknown-field.ron:7:35: in `users[0].tasks[0].requests[0].methd`"),
        "{err}"
    );
}

#[test]
fn bad_flags_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles/demo.ron");
    let demo = demo.to_str().unwrap();
    let stages = Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles/stages.ron");
    let stages = stages.to_str().unwrap().to_owned();
    let cases: &[(&[&str], &str)] = &[
        (&[demo, "--users", "0"], "--users"),
        (&[demo, "--duration", "5x"], "not a duration"),
        (&[demo, "--env", "nope"], "no environment \"nope\""),
        (&[demo, "--cores", "0"], "--cores"),
        (&[demo, "--var", "novalue"], "KEY=VALUE"),
        (&["--url", "ftp://x/"], "unsupported scheme"),
        (&["--url", "http://host.invalid./"], "cannot resolve"),
        (&[], "PROFILE"),
        // With neither, the usage names both ways to give a target.
        (&[], "engine run [OPTIONS] --url <URL>"),
        (&[demo, "--rate", "0"], "--rate"),
        (&[demo, "--rate", "10", "--spawn-rate", "5"], "--spawn-rate"),
        (&[demo, "--iterations", "0"], "--iterations"),
        (&[&stages, "--duration", "5s"], "stages set the duration"),
        (&[&stages, "--users", "5"], "stages set the users"),
        (&[demo, "--io", "bogus"], "--io"),
        (&[demo, "--no-such-flag"], "--no-such-flag"),
        (&[demo, "--users", "-3"], "-3"),
        (&[demo, "--users", "many"], "--users"),
        (&[demo, "--cores", "99999"], "--cores"),
        (&[demo, "--host", "ftp://x/"], "unsupported scheme"),
        (&["/nonexistent/profile.ron"], "/nonexistent/profile.ron"),
    ];
    for (args, fragment) in cases {
        let out = run(tmp.path(), args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(
            err.contains(fragment),
            "{args:?}: expected {fragment:?} in {err}"
        );
    }
}

/// `engine try --help` explains why a run refuses the trace flags without sending the reader to
/// the `--debug` docs first.
#[test]
fn try_help_says_what_run_needs_for_the_trace_flags() {
    let out = engine().args(["try", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let said = "A load test (`engine run`) prints no requests, so it accepts this only with \
                `--debug`, which makes it run the profile as `engine try` does";
    // Once under --body-limit and once under --json.
    assert_eq!(words.matches(said).count(), 2, "{text}");
    assert!(!words.contains("takes it only with"), "{text}");
}

#[test]
fn help_ends_with_the_pipeline() {
    for args in [&["--help"][..], &["run", "--help"]] {
        let out = engine().args(args).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap();
        assert!(
            last.contains("engine run profiles/demo.ron")
                && last.contains("analyzer report runs/<id>"),
            "{last}"
        );
    }
}

#[test]
fn serve_prints_its_address_and_answers() {
    let mut child = engine()
        .args(["serve", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: std::net::SocketAddr = line.trim().parse().expect("an address on the first line");
    assert_ne!(addr.port(), 0);
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.write_all(b"GET /items/5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    conn.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    assert!(reply.contains(r#""id":5"#), "{reply}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(child.wait().unwrap().success());
}

/// `engine serve --latency-mix 1:150ms` delays every response by 150 ms, measured from the request;
/// a bad stall (hold not shorter than the period) is refused.
#[test]
fn serve_latency_mix_and_stall_flags() {
    let mut child = engine()
        .args(["serve", "--addr", "127.0.0.1:0", "--latency-mix", "1:150ms"])
        .args(["--stall-every", "10s", "--stall-for", "1ms"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: std::net::SocketAddr = line.trim().parse().expect("an address on the first line");
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    let sent = std::time::Instant::now();
    conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    conn.read_to_string(&mut reply).unwrap();
    let took = sent.elapsed();
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    assert!(
        took >= std::time::Duration::from_millis(150),
        "answered after {took:?}"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(child.wait().unwrap().success());

    let out = engine()
        .args(["serve", "--stall-every", "1s", "--stall-for", "1s"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--stall-for must be shorter"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn demo_profile_runs_against_the_embedded_target() {
    let _serial = one_at_a_time();
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles/demo.ron");
    let tmp = tempfile::tempdir().unwrap();
    let out = run(tmp.path(), &[demo.to_str().unwrap(), "--duration", "2s"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = read_run(&run_dir(&out));
    let names: std::collections::BTreeSet<&str> = r
        .logs
        .iter()
        .flat_map(|l| l.names.iter().map(|(_, n)| n))
        .collect();
    assert!(
        names.contains("POST /login") && names.contains("GET /items/{id}"),
        "{names:?}"
    );
    // The demo's one deliberately failing request fails on its status, and only it.
    let failed: Vec<usize> = (0..r.samples.len())
        .filter(|&i| r.samples.outcome[i] != 0)
        .collect();
    assert!(!failed.is_empty());
    for log in &r.logs {
        for i in 0..log.samples.len() {
            let name = log.names.get(log.samples.name[i]).unwrap();
            assert_eq!(
                log.samples.outcome[i] != 0,
                name.contains("fails"),
                "{name}"
            );
        }
    }
}

/// Every `--help` of every subcommand: the file paths it cites exist, it does not call the engine an
/// HTTP/1.1-only generator, and `engine try` documents its exit status.
#[test]
fn help_texts_cite_files_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut cited = 0;
    for args in [
        &["--help"][..],
        &["run", "--help"],
        &["try", "--help"],
        &["serve", "--help"],
        &["kube", "--help"],
        &["-h"],
        &["run", "-h"],
        &["try", "-h"],
    ] {
        let out = engine().args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        for (i, _) in text.match_indices("profiles/") {
            let path: String = text[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || "/._-".contains(*c))
                .collect();
            let path = path.trim_end_matches('.');
            assert!(
                root.join(path).exists(),
                "`engine {}` cites {path}, which does not exist",
                args.join(" ")
            );
            cited += 1;
        }
        for (i, _) in text.match_indices("docs/") {
            let path: String = text[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || "/._-".contains(*c))
                .collect();
            let path = path.trim_end_matches('.');
            assert!(
                root.join(path).exists(),
                "`engine {}` cites {path}",
                args.join(" ")
            );
        }
    }
    assert!(cited >= 4, "the help texts cite example profiles");
    // Examples are one command a line: clap wraps lines longer than the terminal (100 columns), which
    // would break a comment mid-phrase.
    for args in [
        &["--help"][..],
        &["run", "--help"],
        &["try", "--help"],
        &["kube", "--help"],
    ] {
        let out = engine().args(args).env("COLUMNS", "100").output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let examples = text
            .split("Examples:\n")
            .nth(1)
            .and_then(|rest| rest.split("\n\n").next())
            .unwrap_or_else(|| panic!("`engine {}` has examples", args.join(" ")));
        for line in examples.lines() {
            assert!(
                line.starts_with("  engine "),
                "`engine {}`: an example line is wrapped: {line:?}",
                args.join(" ")
            );
        }
    }
    let top = engine().arg("--help").output().unwrap();
    let top = String::from_utf8_lossy(&top.stdout);
    assert!(top.contains("WebSocket") && top.contains("UDP"), "{top}");
    assert!(top.contains("try"), "{top}");
    let try_help = engine().args(["try", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&try_help.stdout).contains("4 a request or check failed"));
}

/// Locust's flags: `-u` users, `-r` spawn rate, `-t`/`--run-time` duration; and a profile without
/// `load` runs when the flags give one, and otherwise says which flags to add.
#[test]
fn locust_flags_and_a_profile_without_load() {
    let _serial = one_at_a_time();
    let server = server();
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("http://{}/", server.addr());
    for duration_flag in ["-t", "--run-time"] {
        let out = run(
            tmp.path(),
            &[
                "--url",
                &url,
                "-u",
                "3",
                "-r",
                "100",
                duration_flag,
                "1s",
                "-c",
                "1",
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let r = read_run(&run_dir(&out));
        assert_eq!(r.manifest.planned_duration_s, Some(1.0));
        let users: std::collections::BTreeSet<u32> = r.samples.user.iter().copied().collect();
        assert_eq!(users.len(), 3, "{users:?}");
    }
    let p = profile(
        tmp.path(),
        &format!(
            r#"(name: "no-load", host: "http://{}", users: [(tasks: [(requests: [(path: "/")])])])"#,
            server.addr()
        ),
    );
    let p = p.to_str().unwrap();
    let out = run(tmp.path(), &[p, "-u", "2", "-t", "1s", "-c", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!read_run(&run_dir(&out)).samples.is_empty());
    for (args, missing) in [
        (&[p][..], "add --users and --duration"),
        (&[p, "-u", "2"], "add --duration"),
        (&[p, "-t", "1s"], "add --users"),
    ] {
        let out = run(tmp.path(), args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("the profile has no `load`"), "{err}");
        assert!(err.contains(missing), "{args:?}: {err}");
        assert!(err.contains("profile.ron"), "names the file: {err}");
    }
    // Flags that only mean something with --debug are refused without it.
    let out = run(tmp.path(), &[p, "-u", "1", "-t", "1s", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--json"), "{}", stderr(&out));
}

/// An `--out` that cannot hold a run directory (here a path through a regular file) is bad input:
/// exit 2 before anything runs, naming the flag and the fix, not exit 1 with only the OS's words.
#[test]
fn an_out_directory_that_cannot_be_created_exits_2_naming_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let out_dir = file.join("runs");
    for extra in [&[][..], &["--run-id", "named"][..]] {
        let mut args = vec![
            "run",
            "--url",
            "http://127.0.0.1:1/",
            "--no-preflight",
            "-d",
            "1s",
            "--out",
            out_dir.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let out = engine().args(&args).output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(&format!("--out {}", out_dir.display()))
                && err.contains("cannot create a run directory there")
                && err.contains("give --out a directory this user may write to"),
            "{args:?}: {err}"
        );
    }
}

/// More cores than the CPUs the process may use is allowed (the health verdict says what it cost),
/// but said before the run starts, with the count to give instead.
#[test]
fn more_cores_than_cpus_is_a_warning() {
    let _serial = one_at_a_time();
    let server = server();
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("http://{}/", server.addr());
    // The CPUs this process may run on, as the engine counts them (its affinity mask, which
    // `available_parallelism` would also cut by a cgroup quota).
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim();
    let cpus: usize = list
        .split(',')
        .map(|range| match range.split_once('-') {
            Some((a, b)) => b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1,
            None => 1,
        })
        .sum();
    let too_many = (cpus + 1).to_string();
    let out = run(
        tmp.path(),
        &["--url", &url, "-u", "2", "-d", "1s", "-c", &too_many],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "warning: --cores {too_many} is more than the {cpus} CPU(s)"
        )) && err.contains(&format!("give --cores {cpus} or fewer")),
        "{err}"
    );
    let out = run(
        tmp.path(),
        &["--url", &url, "-u", "1", "-d", "1s", "-c", "1"],
    );
    assert!(!stderr(&out).contains("more than the"), "{}", stderr(&out));
}

/// A loopback port nothing listens on: bound to port 0, then released, so connecting is refused.
fn refused_port() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// Nothing is left under `out`: it does not exist, or it is empty.
fn assert_nothing_under(out: &Path, what: &str) {
    assert!(
        !out.exists() || std::fs::read_dir(out).unwrap().next().is_none(),
        "{what} left something under {}",
        out.display()
    );
}

/// A run against a target that refuses connections stops before it starts: exit 2, a message naming
/// the URL, the address, the reason, where the target was given and the flag that skips the check,
/// well within the duration asked for, and no run directory. `engine try` checks the same way.
#[test]
fn a_target_that_refuses_fails_fast_before_anything_is_written() {
    let addr = refused_port();
    let url = format!("http://{addr}/");
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("runs");
    // `timeout` bounds the test if the check did not happen: the run would take its 60 s.
    let commands: [&[&str]; 2] = [
        &["run", "--url", &url, "--duration", "60s", "--users", "5"],
        &["try", "--url", &url, "--duration", "60s"],
    ];
    for args in commands {
        let started = std::time::Instant::now();
        let out = std::process::Command::new("timeout")
            .arg("20")
            .arg(env!("CARGO_BIN_EXE_engine"))
            .args(args)
            .arg("--out")
            .arg(&out_dir)
            .output()
            .unwrap();
        let took = started.elapsed();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            took < std::time::Duration::from_secs(15),
            "{args:?} took {took:?}"
        );
        for fragment in [
            format!("error: cannot connect to http://{addr} ({addr}): connection refused"),
            "nothing ran and no run directory was written".into(),
            "Start the target, or check --url".into(),
            "pass --no-preflight".into(),
        ] {
            assert!(
                err.contains(&fragment),
                "{args:?}: want {fragment:?} in {err}"
            );
        }
        assert!(!err.contains("panicked"), "{err}");
        assert_nothing_under(&out_dir, args[0]);
    }
}

/// `--no-preflight` starts the load anyway (a target that comes up during the test): the run goes its
/// duration and records the connection failures, alone, with `--start-at`, and as a shard.
#[test]
fn no_preflight_runs_and_records_the_connection_failures() {
    let _serial = one_at_a_time();
    let url = format!("http://{}/", refused_port());
    let tmp = tempfile::tempdir().unwrap();
    let flags: [&[&str]; 2] = [&[], &["--shard", "0/1", "--start-at", "+1s"]];
    for (i, extra) in flags.iter().enumerate() {
        let out_dir = tmp.path().join(i.to_string());
        let mut args = vec![
            "--url",
            &url,
            "--no-preflight",
            "-u",
            "1",
            "-d",
            "1s",
            "-c",
            "1",
        ];
        args.extend_from_slice(extra);
        let out = run(&out_dir, &args);
        assert_eq!(out.status.code(), Some(0), "{extra:?}: {}", stderr(&out));
        let r = read_run(&run_dir(&out));
        assert_eq!(r.manifest.state, formats::RunState::Completed);
        assert!(!r.samples.is_empty(), "{extra:?}");
        assert!(
            r.samples
                .outcome
                .iter()
                .all(|&o| o == formats::Outcome::ConnectError.code()),
            "{extra:?}"
        );
    }
}

/// Every TCP target is checked, not only the host: a profile whose host is up but whose TCP step's
/// `target` is down is refused naming that target and its line; a host that is down names `host`
/// and its line. A UDP target has no connection to check and does not stop the run.
#[test]
fn a_step_target_that_is_down_is_refused_naming_its_line() {
    let _serial = one_at_a_time();
    let server = server();
    let down = refused_port();
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("runs");
    let profile_with = |dir: &str, host: String, step_target: String| {
        let dir = tmp.path().join(dir);
        std::fs::create_dir(&dir).unwrap();
        profile(
            &dir,
            &format!(
                r#"(
    name: "mixed",
    host: "{host}",
    load: Closed(users: 1, duration: "60s"),
    users: [(tasks: [
        (requests: [(path: "/")]),
        (steps: [
            Tcp(name: "echo", target: "{step_target}", send: "x\n", read: Until("\n")),
        ]),
    ])],
)"#
            ),
        )
    };
    let cases = [
        (
            profile_with(
                "step-down",
                format!("http://{}", server.addr()),
                format!("tcp://{down}"),
            ),
            format!("cannot connect to tcp://{down} ({down}): connection refused"),
            "check `users[0].tasks[1].steps[0].target` in ",
            ":8;",
        ),
        (
            profile_with(
                "host-down",
                format!("http://{down}"),
                format!("tcp://{}", server.addr()),
            ),
            format!("cannot connect to http://{down} ({down}): connection refused"),
            "check `host` in ",
            ":3;",
        ),
    ];
    for (p, target, field, line) in cases {
        let out = engine()
            .args(["run", p.to_str().unwrap(), "--quiet", "--out"])
            .arg(&out_dir)
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(&target), "want {target:?} in {err}");
        let location = format!("{field}{}{line}", p.display());
        assert!(err.contains(&location), "want {location:?} in {err}");
        assert_nothing_under(&out_dir, "a refused step target");
    }
    // UDP is connectionless: its target is not checked, and the run goes.
    let p = profile(
        tmp.path(),
        &format!(
            r#"(name: "udp", host: "http://{}", load: Closed(users: 1, duration: "300ms"),
    users: [(tasks: [(steps: [Udp(target: "udp://{down}", send: "x")])])])"#,
            server.addr()
        ),
    );
    let out = run(&out_dir, &[p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// A target that does not answer (its accept queue is full, so the kernel drops the connection
/// attempt: what a firewall that drops packets looks like) fails within the profile's
/// `connect_timeout`, and the message says so and asks to check the route too.
#[test]
fn a_target_that_does_not_answer_fails_within_the_connect_timeout() {
    use nix::sys::socket::{Backlog, listen};
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    // Listening again with a backlog of 0 leaves room for one connection waiting to be accepted;
    // this test's own connection takes it, and later attempts get no answer.
    listen(&silent, Backlog::new(0).unwrap()).unwrap();
    let addr = silent.local_addr().unwrap();
    let _queued = std::net::TcpStream::connect(addr).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let p = profile(
        tmp.path(),
        &format!(
            r#"(name: "silent", host: "http://{addr}", http: (connect_timeout: "700ms"),
    load: Closed(users: 1, duration: "60s"), users: [(tasks: [(requests: [(path: "/")])])])"#
        ),
    );
    let out_dir = tmp.path().join("runs");
    let started = std::time::Instant::now();
    let out = engine()
        .args(["run", p.to_str().unwrap(), "--quiet", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    let took = started.elapsed();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        took >= std::time::Duration::from_millis(700) && took < std::time::Duration::from_secs(15),
        "took {took:?}: {err}"
    );
    for fragment in [
        format!("cannot connect to http://{addr} ({addr}): no answer within 700 ms"),
        format!("Check `host` in {}:1, that the target is up", p.display()),
        "(firewall, network policy)".into(),
    ] {
        assert!(err.contains(&fragment), "want {fragment:?} in {err}");
    }
    assert_nothing_under(&out_dir, "a target that does not answer");
}
