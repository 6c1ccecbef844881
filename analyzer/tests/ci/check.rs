//! `analyzer check`: thresholds from an SLO file or the profile judged within, beyond or undecided,
//! the exit status pipelines rely on, a malformed SLO file located, and request names escaped in
//! JUnit and Markdown.

use formats::{Outcome, RunState};

use super::util;
use super::{analyzer, lagging_run, read_json, s, shop, text, timed_run, write};

#[test]
fn check_exits_0_when_every_threshold_holds_and_1_when_one_breaks() {
    let tmp = tempfile::tempdir().unwrap();
    let run = shop(&tmp.path().join("run"), 1, 1.0);
    let pass = write(
        tmp.path(),
        "pass.ron",
        r#"(thresholds: {
            "*": ["p99 < 2s", "error_rate < 5%", "rps > 100", "lag_p99 < 1s"],
            "GET /": ["p50 < 100ms per 10s", "max <= 10s"],
        })"#,
    );
    let junit = tmp.path().join("junit.xml");
    let summary = write(tmp.path(), "summary.md", "# Earlier step\n");
    let out = analyzer(&[
        "check",
        s(&run),
        "--slo",
        s(&pass),
        "--junit",
        s(&junit),
        "--summary",
        s(&summary),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("PASS: all 6 thresholds hold"),
        "{}",
        text(&out)
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.starts_with("# Earlier step\n"),
        "the summary is appended to: {md}"
    );
    assert!(md.contains("✅ PASS"), "{md}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("JUnit XML parses");
    assert_eq!(
        doc.descendants()
            .filter(|n| n.has_tag_name("testcase"))
            .count(),
        6
    );
    assert_eq!(
        doc.descendants()
            .filter(|n| n.has_tag_name("failure"))
            .count(),
        0
    );

    let fail = write(
        tmp.path(),
        "fail.ron",
        r#"(thresholds: {"*": ["p50 < 1ms", "error_rate < 0.5%"], "POST /api/checkout": ["p99 < 10ms per 5s"]})"#,
    );
    let out = analyzer(&["check", s(&run), "--slo", s(&fail), "--junit", s(&junit)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("FAIL: 3 of 3 thresholds broken"),
        "{}",
        text(&out)
    );
    assert!(
        stdout.contains("worst of "),
        "per-window thresholds report the worst: {stdout}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let failures: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("failure"))
        .collect();
    assert_eq!(failures.len(), 3, "{xml}");
    assert!(
        failures[0]
            .attribute("message")
            .unwrap()
            .contains("limit < "),
        "{xml}"
    );
}

#[test]
fn check_exits_2_for_a_malformed_slo_file_and_says_where() {
    let tmp = tempfile::tempdir().unwrap();
    let run = shop(&tmp.path().join("run"), 1, 1.0);
    for (contents, says) in [
        (
            "(thresholds: {\"*\": [\"p99 < 200ms\",\n  \"p99 < 200\"]})",
            "bad.ron:2:3: `p99 < 200`: a latency needs a unit",
        ),
        (
            "(thresholds: {\"*\": [\"p42 < 1s\"]})",
            "unknown metric `p42`; the metrics are p50",
        ),
        ("(thresholds: {\"*\": [\"p99 < 1s\"]", "bad.ron:1:"),
        (
            "(thresholds: {\"GET /nope\": [\"p99 < 1s\"]})",
            "\"GET /nope\" is not in",
        ),
    ] {
        let slo = write(tmp.path(), "bad.ron", contents);
        let out = analyzer(&["check", s(&run), "--slo", s(&slo)]);
        assert_eq!(out.status.code(), Some(2), "{contents}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{contents}: {}", text(&out));
    }
    let out = analyzer(&["check", s(&run)]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "no thresholds anywhere: {}",
        text(&out)
    );
}

#[test]
fn check_reads_thresholds_from_the_profile_and_the_slo_file_replaces_a_key() {
    let tmp = tempfile::tempdir().unwrap();
    let run = shop(&tmp.path().join("run"), 1, 1.0);
    let path = run.join("manifest.json");
    let mut manifest =
        formats::Manifest::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap();
    manifest.profile = r#"Profile(name: "shop", users: 10, thresholds: {"*": ["p50 < 1ms"], "GET /": ["p99 < 10s"]})"#.into();
    manifest.write_to(&run).unwrap();
    let out = analyzer(&["check", s(&run)]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the profile's p50 < 1ms fails: {}",
        text(&out)
    );
    let slo = write(
        tmp.path(),
        "slo.ron",
        r#"(thresholds: {"*": ["p50 < 10s"]})"#,
    );
    let out = analyzer(&["check", s(&run), "--slo", s(&slo)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("PASS: all 2 thresholds hold"),
        "{}",
        text(&out)
    );
}

#[test]
fn junit_and_markdown_escape_request_names() {
    let tmp = tempfile::tempdir().unwrap();
    let hostile = "GET /a?<x>&y=\"1\"";
    let run = util::handmade_run(
        tmp.path(),
        &[
            (hostile, 1_000, Outcome::Ok, 200, None),
            (hostile, 2_000, Outcome::Status, 500, None),
        ],
        RunState::Completed,
    );
    let slo = write(
        tmp.path(),
        "slo.ron",
        &format!(
            "(thresholds: {{{:?}: [\"error_rate < 1%\", \"p50 < 1s\"]}})",
            hostile
        ),
    );
    let junit = tmp.path().join("junit.xml");
    let summary = tmp.path().join("summary.md");
    // Two requests in one window decide nothing, so they fail only under --undecided fail.
    let out = analyzer(&[
        "check",
        s(&run),
        "--slo",
        s(&slo),
        "--junit",
        s(&junit),
        "--summary",
        s(&summary),
        "--undecided",
        "fail",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("escaped XML parses");
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 2);
    assert_eq!(
        cases[0].attribute("classname"),
        Some(hostile),
        "the name survives escaping"
    );
    assert_eq!(cases[0].attribute("name"), Some("error_rate < 1%"));
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(!md.contains("<x>"), "{md}");
    assert!(md.contains("&lt;x&gt;"), "{md}");
}

/// `check` on a synthetic run: a threshold far above the median is within (PASS), one far below is
/// beyond (FAIL), and a P99.9 of the checkout (2,096 requests, 4 of them at or above 1 s, the
/// percentile allowing 0.1 %) is undecided. The exit status follows --undecided, and the text, JUnit,
/// Markdown and JSON outputs say the same.
#[test]
fn check_answers_within_beyond_or_undecided_and_every_output_agrees() {
    let tmp = tempfile::tempdir().unwrap();
    let run = shop(&tmp.path().join("run"), 1, 1.0);
    for (threshold, key, answer, pass_exit, fail_exit) in [
        ("p50 < 100ms", "*", "within", 0, 0),
        ("p50 < 5ms", "*", "beyond", 1, 1),
        ("p99.9 < 1s", "POST /api/checkout", "undecided", 0, 1),
    ] {
        let slo = write(
            tmp.path(),
            "slo.ron",
            &format!("(thresholds: {{{key:?}: [{threshold:?}]}})"),
        );
        for (policy, exit) in [("pass", pass_exit), ("fail", fail_exit)] {
            let junit = tmp.path().join("junit.xml");
            let json = tmp.path().join("check.json");
            let summary = tmp.path().join("summary.md");
            let _ = std::fs::remove_file(&summary);
            let out = analyzer(&[
                "check",
                s(&run),
                "--slo",
                s(&slo),
                "--undecided",
                policy,
                "--junit",
                s(&junit),
                "--json",
                s(&json),
                "--summary",
                s(&summary),
            ]);
            let context = format!("{threshold} under --undecided {policy}: {}", text(&out));
            assert_eq!(out.status.code(), Some(exit), "{context}");
            let stdout = String::from_utf8_lossy(&out.stdout);
            let doc = read_json(&json);
            let item = &doc["thresholds"][0];
            assert_eq!(item["decision"], answer, "{context}\n{item}");
            assert_eq!(item["method"], "interval", "{item}");
            assert_eq!(item["passed"], exit == 0, "{item}");
            assert!(item["share_above"]["high"].is_number(), "{item}");
            let md = std::fs::read_to_string(&summary).unwrap();
            let xml = std::fs::read_to_string(&junit).unwrap();
            let junit_doc = roxmltree::Document::parse(&xml).unwrap();
            let case = junit_doc
                .descendants()
                .find(|n| n.has_tag_name("testcase"))
                .unwrap();
            let failure = case.children().find(|n| n.has_tag_name("failure"));
            let skipped = case.children().find(|n| n.has_tag_name("skipped"));
            match answer {
                "within" => {
                    assert!(stdout.contains("PASS: all 1 thresholds hold"), "{stdout}");
                    assert!(md.contains("| ✅ PASS |"), "{md}");
                    assert!(failure.is_none() && skipped.is_none(), "{xml}");
                }
                "beyond" => {
                    assert!(stdout.contains("\nFAIL "), "{stdout}");
                    assert!(md.contains("| ❌ FAIL |"), "{md}");
                    assert_eq!(failure.unwrap().attribute("type"), Some("threshold"));
                }
                _ => {
                    assert!(stdout.contains("\nUNDECIDED "), "{stdout}");
                    assert!(stdout.contains("\nUNDECIDED (1):\n"), "{stdout}");
                    let decide = item["decide"].as_str().unwrap();
                    assert!(decide.ends_with("of this load would decide"), "{item}");
                    assert!(item["decide_s"].as_f64().unwrap() > 40.0, "{item}");
                    assert!(stdout.contains(decide), "{stdout}");
                    assert!(md.contains("⚠️ UNDECIDED"), "{md}");
                    if policy == "pass" {
                        assert!(stdout.contains("PASS, UNDECIDED: "), "{stdout}");
                        assert!(String::from_utf8_lossy(&out.stderr).contains("warning: "));
                        let message = skipped.unwrap().attribute("message").unwrap();
                        assert!(message.contains(decide), "{xml}");
                    } else {
                        assert!(
                            stdout.contains(
                                "FAIL: 1 of 1 thresholds undecided, and --undecided fail"
                            ),
                            "{stdout}"
                        );
                        assert_eq!(failure.unwrap().attribute("type"), Some("undecided"));
                    }
                }
            }
        }
    }
}

/// A P99 of 199 ms against "< 200ms" from 30 requests is not a confident pass: none of 30 at or
/// above 200 ms cannot show that at most 1 % are. Thirty requests all above 100 ms do break
/// "p50 < 100ms", and none above 1 s keeps "p50 < 1s".
#[test]
fn thirty_requests_decide_a_median_but_not_a_p99() {
    let tmp = tempfile::tempdir().unwrap();
    let mut samples: Vec<(&str, u64, u32, bool)> = (0..30u64)
        .map(|i| {
            (
                "GET /",
                i * 1_000_000 + 500,
                150_000 + 1_700 * i as u32,
                true,
            )
        })
        .collect();
    let run = timed_run(&tmp.path().join("thirty"), 30, &mut samples);
    let slo = write(
        tmp.path(),
        "slo.ron",
        r#"(thresholds: {"GET /": ["p99 < 200ms", "p50 < 100ms", "p50 < 1s"]})"#,
    );
    let json = tmp.path().join("check.json");
    let out = analyzer(&["check", s(&run), "--slo", s(&slo), "--json", s(&json)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let doc = read_json(&json);
    let decisions: Vec<&str> = doc["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["decision"].as_str().unwrap())
        .collect();
    assert_eq!(
        decisions,
        ["undecided", "beyond", "within"],
        "{}",
        text(&out)
    );
    assert!(
        (doc["thresholds"][0]["measured"].as_f64().unwrap() - 199.3).abs() < 0.01,
        "{doc}"
    );
}

/// A run whose generator was INVALID is refused, as `compare` refuses it (exit 2, naming the reason
/// and the way to judge it anyway), and with --junit the file holds one test case in error saying so,
/// so a CI server's test report does not show an empty or stale result; with --summary the step
/// summary says the same. `--allow-invalid` judges it,
/// with the warning on stderr and in JUnit as the suite's system-err, so that a PASS on such a run is
/// not read as clean.
#[test]
fn check_refuses_an_invalid_run_unless_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let run = lagging_run(tmp.path());
    let slo = write(
        tmp.path(),
        "slo.ron",
        r#"(thresholds: {"*": ["p99 < 10s"]})"#,
    );
    let junit = tmp.path().join("junit.xml");
    let summary = tmp.path().join("summary.md");
    std::fs::write(&summary, "### An earlier step\n\n").unwrap();
    let out = analyzer(&[
        "check",
        s(&run),
        "--slo",
        s(&slo),
        "--junit",
        s(&junit),
        "--summary",
        s(&summary),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    // The step summary says why nothing was judged, after what earlier steps wrote.
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.starts_with("### An earlier step\n\n"), "{md}");
    assert!(
        md.contains("### Load-test thresholds: ⛔ REFUSED")
            && md.contains("health is INVALID")
            && md.contains("--allow-invalid"),
        "{md}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("health is INVALID") && stderr.contains("--allow-invalid"),
        "{stderr}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 1, "{xml}");
    let error = cases[0]
        .children()
        .find(|n| n.has_tag_name("error"))
        .unwrap_or_else(|| panic!("no error in {xml}"));
    assert!(
        error.attribute("message").unwrap().contains("INVALID"),
        "{xml}"
    );

    let allowed = [
        "check",
        s(&run),
        "--slo",
        s(&slo),
        "--junit",
        s(&junit),
        "--allow-invalid",
    ];
    let out = analyzer(&allowed);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("INVALID"), "{stderr}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .unwrap();
    let err = suite
        .children()
        .find(|n| n.has_tag_name("system-err"))
        .and_then(|n| n.text())
        .unwrap_or_else(|| panic!("no system-err in {xml}"));
    assert!(
        err.contains("warning: the load generator's health is INVALID"),
        "{err}"
    );
    // A healthy run has none.
    let good = shop(&tmp.path().join("good"), 1, 1.0);
    let out = analyzer(&["check", s(&good), "--slo", s(&slo), "--junit", s(&junit)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(!xml.contains("system-err"), "{xml}");
}
