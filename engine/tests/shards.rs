//! One test run as several shards, on one machine as a cluster would run it: N engine processes, each
//! given its own `--shard I/N`, the same `--start-at` a few seconds ahead and the same `--run-id`,
//! against one target on loopback. Every process is bounded in time.

mod util;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use formats::RunState;
use util::*;

/// How long any engine of these tests may take before it is killed and the test fails.
const LIMIT: Duration = Duration::from_secs(90);

/// An instant `lead` from now, RFC 3339, and the same in ns since the epoch.
fn instant_ahead(lead: Duration) -> (String, i64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let ns = i64::try_from((now + lead).as_nanos()).unwrap();
    (formats::run::format_utc(ns), ns)
}

/// Starts shard `i` of `n` for every `i`, as a Kubernetes Indexed Job would (one process each, with
/// the same flags but its own index), and waits for all of them, killing any that outlives `LIMIT`.
fn run_shards(n: u32, out: &Path, args: &[&str], index_from_env: bool) -> Vec<Output> {
    let children: Vec<Child> = (0..n)
        .map(|i| {
            let mut cmd = engine();
            cmd.arg("run")
                .args(args)
                .arg("--out")
                .arg(out)
                .arg("--quiet")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            if index_from_env {
                cmd.arg("--shards")
                    .arg(n.to_string())
                    .env("JOB_COMPLETION_INDEX", i.to_string());
            } else {
                cmd.arg("--shard").arg(format!("{i}/{n}"));
            }
            cmd.spawn().expect("the engine binary runs")
        })
        .collect();
    wait_all(children)
}

fn wait_all(mut children: Vec<Child>) -> Vec<Output> {
    let deadline = Instant::now() + LIMIT;
    let mut status = vec![None; children.len()];
    while status.iter().any(Option::is_none) {
        for (child, s) in children.iter_mut().zip(&mut status) {
            if s.is_none() {
                *s = child.try_wait().unwrap();
            }
        }
        if Instant::now() > deadline {
            for child in &mut children {
                let _ = child.kill();
            }
            panic!("a shard ran longer than {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    children
        .into_iter()
        .zip(status)
        .map(|(mut child, status)| {
            let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
            child
                .stdout
                .take()
                .unwrap()
                .read_to_end(&mut stdout)
                .unwrap();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_end(&mut stderr)
                .unwrap();
            Output {
                status: status.unwrap(),
                stdout,
                stderr,
            }
        })
        .collect()
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// Three shards of two cores each, a closed model with a `Unique` feeder that has fewer rows than
/// users: the target's own count is the sum of the shards' samples, every row is used by exactly one
/// user in the whole test, user ids are the run-wide ones dealt to each shard, the manifests agree on
/// everything the analyzer merges by, and the schedules start together.
#[test]
fn closed_shards_add_up_to_one_test() {
    let _serial = one_at_a_time();
    let server = recording_server();
    let tmp = tempfile::tempdir().unwrap();
    let mut csv = String::from("id\n");
    for i in 0..20 {
        csv.push_str(&format!("row-{i}\n"));
    }
    write(tmp.path(), "rows.csv", &csv);
    let profile = profile(
        tmp.path(),
        &format!(
            r#"(
                name: "sharded",
                host: "http://{}",
                feeders: {{"rows": (file: "rows.csv", order: Unique)}},
                load: Closed(users: 24, duration: "2s"),
                users: [(cookies: false, wait: Constant("20ms"), tasks: [(requests: [
                    (path: "/anything", name: "item",
                     query: {{"row": "{{{{rows.id}}}}", "user": "{{{{user_id()}}}}", "shard": "{{{{shard_id()}}}}"}}),
                ])])],
            )"#,
            server.addr()
        ),
    );
    let (start, start_ns) = instant_ahead(Duration::from_secs(4));
    let out = tmp.path().join("runs");
    let outputs = run_shards(
        3,
        &out,
        &[
            profile.to_str().unwrap(),
            "--cores",
            "2",
            "--start-at",
            &start,
            "--run-id",
            "closed-1",
        ],
        false,
    );
    for (i, o) in outputs.iter().enumerate() {
        assert_eq!(o.status.code(), Some(0), "shard {i}: {}", stderr(o));
        assert_eq!(
            run_dir(o),
            out.join("closed-1").join(format!("shard-{i}")),
            "shard {i} prints its directory last"
        );
    }
    let runs: Vec<ReadBack> = (0..3)
        .map(|i| read_run(&out.join("closed-1").join(format!("shard-{i}"))))
        .collect();

    // The manifests: one run id, one count, one start, the same profile text, this shard's index.
    let first = &runs[0].manifest;
    for (i, r) in runs.iter().enumerate() {
        let m = &r.manifest;
        assert_eq!(m.state, RunState::Completed);
        assert_eq!(m.run_id, first.run_id, "one run id");
        assert_eq!(m.profile, first.profile, "the same resolved profile");
        assert_eq!(
            m.started_unix_ns, start_ns,
            "time zero is the start instant"
        );
        let shard = m.shard.as_ref().expect("a shard's manifest says so");
        assert_eq!((shard.index, shard.count), (i as u32, 3));
        assert_eq!(shard.shares, [1.0 / 3.0; 3], "8 of the 24 users each");
        assert_eq!(shard.start_at.as_deref(), Some(start.as_str()));
        let sync = m.clock_sync.as_ref().expect("adjtimex answers on Linux");
        assert_eq!(sync.source, "adjtimex");
        for log in &r.logs {
            assert_eq!(
                log.header.run_id, first.run_id,
                "every log carries the run id"
            );
        }
    }

    // The target saw exactly the requests the shards logged.
    let samples: usize = runs.iter().map(|r| r.samples.len()).sum();
    assert_eq!(samples as u64, server.served(), "one sample per request");
    assert!(samples > 100, "only {samples} requests");

    // Each row belongs to one user in the whole test, and user ids are the run-wide ones: 20 rows
    // start users 0..20 (users 20..24 find no row and never start), user g on shard g % 3.
    let mut users_of_row: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    for rec in server.recorded() {
        let user: u32 = rec.query("user").unwrap().parse().unwrap();
        let shard: u32 = rec.query("shard").unwrap().parse().unwrap();
        assert_eq!(shard, user % 3, "user {user} ran on shard {shard}");
        let row = rec.query("row").unwrap();
        assert_eq!(row, format!("row-{user}"), "Unique: user g has row g");
        users_of_row.entry(row).or_default().insert(user);
    }
    assert_eq!(users_of_row.len(), 20, "every row used");
    assert!(
        users_of_row.values().all(|u| u.len() == 1),
        "a row was used by two users: {users_of_row:?}"
    );
    for (i, r) in runs.iter().enumerate() {
        let users: BTreeSet<u32> = r.rows().iter().map(|row| row.user).collect();
        let want: BTreeSet<u32> = (0..20).filter(|u| u % 3 == i as u32).collect();
        assert_eq!(users, want, "shard {i}'s users");
    }

    // The schedules started together: every shard's time zero is the start instant (above), and each
    // shard's first request went out within a few milliseconds of it.
    let firsts: Vec<i64> = runs
        .iter()
        .map(|r| {
            let first_us = r.samples.actual_us.iter().min().copied().unwrap();
            r.manifest.started_unix_ns + first_us as i64 * 1000
        })
        .collect();
    let spread = firsts.iter().max().unwrap() - firsts.iter().min().unwrap();
    for (i, r) in runs.iter().enumerate() {
        let first_intended = r.samples.intended_us.iter().min().copied().unwrap();
        assert_eq!(first_intended, 0, "shard {i}: users spawn at the start");
    }
    assert!(
        spread < 20_000_000,
        "the shards' first requests are {} ms apart",
        spread / 1_000_000
    );
    eprintln!(
        "first requests: {:?} µs after the start instant; spread {} µs",
        firsts
            .iter()
            .map(|f| (f - runs[0].manifest.started_unix_ns) / 1000)
            .collect::<Vec<_>>(),
        spread / 1000
    );
}

/// An open model over three shards, started as an Indexed Job starts them (`--shards` and
/// `JOB_COMPLETION_INDEX`): every arrival of rate x duration is scheduled exactly once over the
/// shards, and each one that started made exactly one request.
#[test]
fn open_shards_make_the_profiles_rate() {
    let _serial = one_at_a_time();
    let server = server();
    let tmp = tempfile::tempdir().unwrap();
    let profile = profile(
        tmp.path(),
        &format!(
            r#"(name: "open-sharded", host: "http://{}",
                load: Open(rate: 300.0, duration: "3s", max_users: 300),
                users: [(cookies: false, tasks: [(requests: [(path: "/")])])])"#,
            server.addr()
        ),
    );
    let (start, _) = instant_ahead(Duration::from_secs(4));
    let out = tmp.path().join("runs");
    let outputs = run_shards(
        3,
        &out,
        &[
            profile.to_str().unwrap(),
            "--cores",
            "1",
            "--start-at",
            &start,
            "--run-id",
            "open-1",
        ],
        true,
    );
    for (i, o) in outputs.iter().enumerate() {
        assert_eq!(o.status.code(), Some(0), "shard {i}: {}", stderr(o));
    }
    let runs: Vec<ReadBack> = (0..3)
        .map(|i| read_run(&out.join("open-1").join(format!("shard-{i}"))))
        .collect();
    let scheduled: u64 = runs
        .iter()
        .flat_map(|r| &r.logs)
        .flat_map(|l| &l.intervals)
        .map(|i| u64::from(i.iterations_started) + u64::from(i.iterations_dropped))
        .sum();
    assert_eq!(scheduled, 900, "300/s for 3 s, each arrival on one shard");
    let started: u64 = runs
        .iter()
        .flat_map(|r| &r.logs)
        .flat_map(|l| &l.intervals)
        .map(|i| u64::from(i.iterations_started))
        .sum();
    let samples: u64 = runs.iter().map(|r| r.samples.len() as u64).sum();
    assert_eq!(samples, server.served());
    assert_eq!(
        samples, started,
        "every arrival that started made one request"
    );
    // An arrival is dropped only when all of its shard's 100 users are busy, which takes a stall of a
    // second. Each shard pins its core to the first allowed CPU, so on a 2-core machine at a load
    // average of 5-9 the three shards shared one CPU with the builds; with 20 users each, 646 of the
    // 900 arrivals were dropped once. The arrivals are counted either way (above).
    assert!(
        900 - started <= 45,
        "{started} of 900 arrivals started: more than 5 % dropped"
    );
    for (i, r) in runs.iter().enumerate() {
        let shard = r.manifest.shard.as_ref().unwrap();
        assert_eq!(
            shard.index, i as u32,
            "the index came from JOB_COMPLETION_INDEX"
        );
        assert_eq!(shard.shares, [1.0 / 3.0; 3], "a third of the rate each");
        // Shard i's arrivals are the run-wide arrivals i, i + 3, ...: at (i + 3k) / 300 s.
        let mut intended: Vec<u64> = r.samples.intended_us.clone();
        intended.sort_unstable();
        for (k, &at) in intended.iter().take(20).enumerate() {
            let want = (i as u64 + 3 * k as u64) * 1_000_000 / 300;
            assert!(
                at.abs_diff(want) <= 1,
                "shard {i}, arrival {k}: {at} µs, want {want}"
            );
        }
    }
}

/// Data rows in file order and iteration limits are split exactly: 30 rows used once each over the
/// whole test, then a limit of 101 iterations shared by 3 shards.
#[test]
fn sequential_rows_and_iteration_limits_split_exactly() {
    let _serial = one_at_a_time();
    let server = recording_server();
    let tmp = tempfile::tempdir().unwrap();
    let mut csv = String::from("id\n");
    for i in 0..30 {
        csv.push_str(&format!("{i}\n"));
    }
    write(tmp.path(), "rows.csv", &csv);
    let profile = profile(
        tmp.path(),
        &format!(
            r#"(name: "rows", host: "http://{}",
                feeders: {{"rows": (file: "rows.csv", order: Sequential, on_exhausted: Stop)}},
                load: Closed(users: 6, duration: "20s"),
                users: [(cookies: false, tasks: [(requests: [(path: "/anything", query: {{"row": "{{{{rows.id}}}}"}})])])])"#,
            server.addr()
        ),
    );
    let (start, _) = instant_ahead(Duration::from_secs(3));
    let out = tmp.path().join("runs");
    let args = [
        profile.to_str().unwrap(),
        "--cores",
        "2",
        "--start-at",
        &start,
        "--run-id",
        "rows-1",
    ];
    // The users stop when their rows run out, long before the 20 s.
    for o in run_shards(3, &out, &args, false) {
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let mut rows: Vec<u32> = server
        .recorded()
        .iter()
        .map(|rec| rec.query("row").unwrap().parse().unwrap())
        .collect();
    rows.sort_unstable();
    assert_eq!(
        rows,
        (0..30).collect::<Vec<_>>(),
        "each row once in the whole test"
    );

    let (start, _) = instant_ahead(Duration::from_secs(3));
    let limited = profile.to_str().unwrap().to_owned();
    let before = server.served();
    let args = [
        &limited,
        "--cores",
        "2",
        "--start-at",
        &start,
        "--run-id",
        "limit-1",
        "--iterations",
        "101",
        "--users",
        "5",
    ];
    // Five users on six seats (3 shards x 2 cores) and 101 iterations; the 30 rows would stop the
    // users first, so this run recycles them.
    let text = std::fs::read_to_string(&profile)
        .unwrap()
        .replace("on_exhausted: Stop", "on_exhausted: Recycle");
    std::fs::write(&profile, text).unwrap();
    for o in run_shards(3, &out, &args, false) {
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    assert_eq!(
        server.served() - before,
        101,
        "the limit, exactly, over all shards"
    );
}

/// Bad shard input fails at once with exit 2 (or 3 for a start that has passed), names the flag and
/// the fix, and leaves no directory behind; a shard whose directory exists refuses to run again.
#[test]
fn bad_shard_input_fails_before_the_start() {
    let _serial = one_at_a_time();
    let server = server();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("runs");
    let url = format!("http://{}/", server.addr());
    let (future, _) = instant_ahead(Duration::from_secs(600));
    let (past, _) = instant_ahead(Duration::ZERO);
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/", l.local_addr().unwrap())
    };
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, i32, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            vec!["--shard", "9/8"],
            vec![],
            2,
            "shards are numbered from 0 to 7",
        ),
        (
            vec!["--shard", "0/0"],
            vec![],
            2,
            "--shard <I/N>': the shard count must be at least 1",
        ),
        (
            vec!["--shard", "1/4", "--start-at", &future],
            vec![("JOB_COMPLETION_INDEX", "2")],
            2,
            "--shard 1/4 and JOB_COMPLETION_INDEX=2 disagree",
        ),
        (
            vec!["--shard", "1/4", "--shards", "3", "--start-at", &future],
            vec![],
            2,
            "--shard 1/4 and --shards 3 disagree",
        ),
        (
            vec!["--shards", "4", "--start-at", &future],
            vec![("JOB_COMPLETION_INDEX", "4")],
            2,
            "JOB_COMPLETION_INDEX: shard 4 of 4 does not exist",
        ),
        (
            vec!["--shards", "4", "--start-at", &future],
            vec![],
            2,
            "give --shard I/4",
        ),
        (
            vec![],
            vec![("JOB_COMPLETION_INDEX", "1")],
            2,
            "add --shards N",
        ),
        (
            vec!["--shard", "1/4"],
            vec![],
            2,
            "give every one the same --start-at",
        ),
        (
            vec!["--shard", "1/4", "--start-at", "+30s"],
            vec![],
            2,
            "the same absolute instant",
        ),
        (
            vec!["--shard", "1/4", "--start-at", "2026-13-01T00:00:00Z"],
            vec![],
            2,
            "--start-at: \"2026-13-01T00:00:00Z\" is not an instant",
        ),
        (
            vec!["--shard", "1/4", "--start-at", "2126-01-01T00:00:00Z"],
            vec![],
            2,
            "check the date and the time zone",
        ),
        (
            vec!["--shard", "1/4", "--start-at", &past],
            vec![],
            3,
            "passed",
        ),
        (vec!["--start-at", &past], vec![], 3, "far enough ahead"),
        (
            vec!["--shard", "1/4", "--start-at", &future, "--run-id", "a/b"],
            vec![],
            2,
            "--run-id: \"a/b\" cannot name a run directory",
        ),
    ];
    for (flags, env, code, fragment) in &cases {
        let started = Instant::now();
        let mut cmd = engine();
        cmd.args(["run", "--url", &url, "--duration", "1s", "--quiet", "--out"])
            .arg(&out)
            .args(flags)
            .env_remove("JOB_COMPLETION_INDEX")
            .env_remove("STAMPEDE_SHARDS")
            .envs(env.iter().copied());
        let o = cmd.output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(*code), "{flags:?} {env:?}: {err}");
        assert!(
            err.contains(fragment),
            "{flags:?} {env:?}: want {fragment:?} in {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{flags:?} failed late"
        );
        assert!(
            !out.exists() || std::fs::read_dir(&out).unwrap().next().is_none(),
            "{flags:?} left a directory"
        );
    }

    // An unreachable target fails before the start instant, not at it.
    let (soon, soon_ns) = instant_ahead(Duration::from_secs(20));
    let o = engine()
        .args([
            "run",
            "--url",
            &closed_port,
            "--quiet",
            "--shard",
            "0/2",
            "--start-at",
            &soon,
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot connect to"), "{}", stderr(&o));
    assert!(
        clock_now_ns() < soon_ns,
        "it waited for the start instant first"
    );

    // A shard that has run refuses to run again under the same run name.
    let (start, _) = instant_ahead(Duration::from_secs(2));
    let args = [
        "run",
        "--url",
        &url,
        "--duration",
        "300ms",
        "--users",
        "1",
        "--quiet",
        "--shard",
        "0/1",
        "--start-at",
        &start,
        "--run-id",
        "again",
    ];
    let o = engine().args(args).arg("--out").arg(&out).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (start, _) = instant_ahead(Duration::from_secs(60));
    let mut args = args;
    args[11] = &start;
    let o = engine().args(args).arg("--out").arg(&out).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("shard 0/1 of the run \"again\" has already run here"),
        "{}",
        stderr(&o)
    );
}

fn clock_now_ns() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(d.as_nanos()).unwrap()
}
