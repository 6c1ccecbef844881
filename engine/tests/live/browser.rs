//! The dashboard in headless Chromium, steered and stopped, and the analyzer's report of it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use formats::RunState;

use crate::harness::*;
use crate::util::*;

/// Headless Chromium loads the dashboard during a run, sees its numbers move and its charts drawn
/// with no error in the console, then clicks Stop: the run ends early, interrupted, its manifest
/// final. `STAMPEDE_SCREENSHOT=path` keeps the screenshot (docs/live-dashboard.png is one).
#[test]
fn the_dashboard_in_a_browser() {
    let _serial = one_at_a_time();
    let Some(chromium) = tool("chromium", &["/usr/bin/chromium"], "chromium") else {
        return;
    };
    let Some(driver) = tool(
        "chromedriver",
        &["/usr/bin/chromedriver"],
        "chromium-driver",
    ) else {
        return;
    };
    let python = ["/usr/bin/python3", "python3"].into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import selenium"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    let Some(python) = python else {
        missing("Selenium for Python", "python3-selenium");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let profile = profile(
        tmp.path(),
        r#"(name: "shop", host: "embedded", load: Closed(users: 8, spawn_rate: 8.0, duration: "60s"),
            users: [(wait: Between("20ms", "60ms"), tasks: [
                (weight: 4, requests: [(path: "/", name: "GET /")]),
                (weight: 2, requests: [(path: "/delay/15", name: "GET /delay")]),
                (weight: 1, requests: [(path: "/status/503", name: "GET /status/503")]),
            ])])"#,
    );
    let started = Instant::now();
    let run = LiveRun::start(
        &tmp.path().join("runs"),
        &[
            profile.to_str().unwrap(),
            "--quiet",
            "--web",
            "127.0.0.1:0",
            "--max-users",
            "16",
        ],
    );
    let web = run.web.unwrap();
    let shot = std::env::var("STAMPEDE_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| tmp.path().join("dashboard.png"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/dashboard.py");
    let mut browser = Command::new(python)
        .arg(&script)
        .arg(format!("http://{web}/"))
        .arg(&shot)
        .arg(chromium)
        .arg(driver)
        .arg(tmp.path().join("chromium-profile"))
        .arg("12")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while browser.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = browser.kill();
            panic!("the browser script did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = browser.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser script failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert!(seen["second"].as_u64() > seen["first"].as_u64(), "{seen}");
    assert_eq!(seen["phase"], "running");
    let names: Vec<&str> = seen["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(names, ["GET /", "GET /delay", "GET /status/503"], "{seen}");
    assert!(seen["chart_paths"].as_u64() > Some(0), "{seen}");
    assert_eq!(seen["console_errors"], serde_json::json!([]), "{seen}");
    assert_eq!(seen["final_phase"], "interrupted", "{seen}");
    assert!(seen["banner"].as_str().unwrap().contains("runs/"), "{seen}");
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);
    // Steering: the page offered it, the engine accepted 8 → 12 users, and the users rose.
    assert!(
        seen["steer_status"]
            .as_str()
            .unwrap()
            .contains("target 8 users"),
        "{seen}"
    );
    assert!(seen["users_before"].as_u64() <= Some(8), "{seen}");
    assert!(seen["users_after"].as_u64() >= Some(12), "{seen}");
    assert!(
        seen["steer_result"]
            .as_str()
            .unwrap()
            .starts_with("Accepted: 8 users → 12 users"),
        "{seen}"
    );
    let at_s = seen["steer_at_s"].as_f64().unwrap();
    assert!(
        seen["marks"].as_u64() >= Some(6),
        "every chart marks the change: {seen}"
    );

    let (code, dir, stderr) = run.finish();
    assert_eq!(code, 130, "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(55),
        "Stop did not end the run early"
    );
    let r = read_run(&dir);
    assert_eq!(r.manifest.state, RunState::Interrupted);
    assert!(r.manifest.ended_at.is_some());

    // The analyzer lists the change at the second the engine said it began, and marks it.
    let out = Command::new(analyzer_binary())
        .args(["report", "--format", "json,html"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    let changes = report["runs"][0]["load_changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    let change = &changes[0];
    assert_eq!(change["what"], "users");
    assert_eq!(
        (change["from"].as_f64(), change["to"].as_f64()),
        (Some(8.0), Some(12.0))
    );
    assert!(
        (change["at_s"].as_f64().unwrap() - at_s).abs() < 1e-3,
        "{change} vs {at_s}"
    );
    let second = change["second"].as_f64().unwrap();
    assert!((second - at_s).abs() <= 1.0, "{change} vs {at_s}");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("→ 12 users"), "the charts mark the change");
}
