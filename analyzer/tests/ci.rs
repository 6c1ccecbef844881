//! CI verdicts: `analyzer compare` tells a regression from noise, and `analyzer check` judges
//! thresholds, with the exit codes pipelines rely on (0 pass, 1 fail, 2 bad input).

mod util;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use analyzer::compare::{ALL_REQUESTS, Limits, MetricKey, compare_loaded};
use analyzer::load::{LoadOptions, load_run};
use analyzer::significance::{Settings, Verdict};
use analyzer::synth::{SynthParams, synth};
use formats::{IntervalStats, LogHeader, LogWriter, Outcome, RunId, RunState, Sample};

/// Small enough that twenty pairs run in seconds in a debug build, long enough (40 one-second
/// windows, 1,000 requests a second) for the bootstrap to resolve a 20 % shift. Without the stall and
/// the degraded period: two seconds of 2.2x latency in a 40 s run make its P90 and P99 unresolvable
/// at 10 % (correctly: such a run cannot tell), and these tests are about calibration.
fn shop(dir: &Path, seed: u64, latency_scale: f64) -> PathBuf {
    let params = SynthParams {
        samples: 40_000,
        cores: 1,
        seed,
        duration_s: 40,
        latency_scale,
        incidents: false,
        ..SynthParams::default()
    };
    synth(&params, dir).expect("synth writes a run")
}

fn analyzer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_analyzer"))
        .args(args)
        .output()
        .expect("the analyzer binary runs")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_twenty_percent_latency_shift_is_a_regression_and_fails_the_build() {
    let tmp = tempfile::tempdir().unwrap();
    let base = shop(&tmp.path().join("base"), 1, 1.0);
    let cand = shop(&tmp.path().join("cand"), 2, 1.2);
    let out_dir = tmp.path().join("cmp");
    let out = analyzer(&[
        "compare",
        s(&base),
        s(&cand),
        "--max-regression",
        "p50=10%,p90=10%",
        "--out",
        s(&out_dir),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("\nFAIL: "), "{}", text(&out));
    assert!(
        stdout.trim_end().ends_with("compare.html"),
        "the HTML path is the last line: {}",
        text(&out)
    );

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("compare.json")).unwrap())
            .unwrap();
    assert_eq!(json["passed"], false);
    let all = &json["rows"][0];
    assert_eq!(all["name"], ALL_REQUESTS);
    for cell in all["cells"].as_array().unwrap() {
        let metric = cell["metric"].as_str().unwrap();
        let verdict = cell["result"]["verdict"].as_str().unwrap();
        match metric {
            "p50" | "p90" | "p99" => assert_eq!(verdict, "regressed", "{metric}: {cell}"),
            // The shift is in latency only: the same open-model schedule, the same failure rate.
            "error_rate" | "throughput" => {
                assert_ne!(verdict, "regressed", "{metric}: {cell}");
                assert_ne!(verdict, "improved", "{metric}: {cell}");
            }
            other => panic!("unexpected metric {other}"),
        }
        if metric == "p50" {
            let change = cell["result"]["change"].as_f64().unwrap();
            assert!((change - 0.2).abs() < 0.03, "P50 moved by {change}");
        }
    }
    let html = std::fs::read_to_string(out_dir.join("compare.html")).unwrap();
    assert!(html.contains("Latency distribution: All requests"));
    assert_eq!(
        html.matches("Latency distribution: ").count(),
        7,
        "an overlaid chart for all requests and for each of the six names"
    );
    assert!(html.contains("FAIL"));
}

#[test]
fn same_distribution_is_within_noise_for_nineteen_of_twenty_seed_pairs() {
    let tmp = tempfile::tempdir().unwrap();
    let mut quiet = 0;
    let mut report = Vec::new();
    for pair in 0..20u64 {
        let base = shop(&tmp.path().join(format!("b{pair}")), 1000 + pair, 1.0);
        let cand = shop(&tmp.path().join(format!("c{pair}")), 2000 + pair, 1.0);
        let load = |d: &Path| {
            load_run(
                d,
                LoadOptions {
                    skip_us: 0,
                    exact_limit: None,
                },
            )
            .unwrap()
        };
        let result = compare_loaded(
            &load(&base),
            &load(&cand),
            &Limits::default(),
            &Settings::default(),
        )
        .unwrap();
        // A false alarm is a limit broken, or any change claimed beyond noise. The tails of a 40 s run
        // with a degraded period may honestly be "not resolvable" (the report then says what it
        // could have detected); the all-requests median and error rate must resolve as noise.
        let all = &result.rows[0];
        let claims: Vec<String> = result
            .rows
            .iter()
            .flat_map(|r| r.cells.iter().map(move |c| (r, c)))
            .filter(|(_, c)| matches!(c.result.verdict, Verdict::Regressed | Verdict::Improved))
            .map(|(r, c)| format!("{} {}: {:?}", r.name, c.metric.key(), c.result))
            .collect();
        let resolved = all
            .cells
            .iter()
            .filter(|c| matches!(c.metric, MetricKey::P50 | MetricKey::ErrorRate))
            .all(|c| c.result.verdict == Verdict::WithinNoise);
        if claims.is_empty() && resolved && result.broken().next().is_none() {
            quiet += 1;
        } else {
            report.push(format!("pair {pair}: resolved {resolved}, {claims:#?}"));
        }
    }
    assert!(
        quiet >= 19,
        "{quiet} of 20 pairs within noise:\n{}",
        report.join("\n")
    );
}

#[test]
fn compare_refuses_a_run_whose_generator_was_invalid() {
    let tmp = tempfile::tempdir().unwrap();
    let good = shop(&tmp.path().join("good"), 1, 1.0);
    let bad = lagging_run(tmp.path());
    let out = analyzer(&[
        "compare",
        s(&good),
        s(&bad),
        "--out",
        s(&tmp.path().join("o")),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("INVALID"),
        "{}",
        text(&out)
    );
}

#[test]
fn compare_exits_2_for_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let good = shop(&tmp.path().join("good"), 1, 1.0);
    let missing = tmp.path().join("missing");
    let out = analyzer(&["compare", s(&good), s(&missing)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = analyzer(&["compare", s(&good), s(&good), "--max-regression", "p98=10%"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown metric"),
        "{}",
        text(&out)
    );
}

/// A run whose generator fell more than 1 ms behind its schedule in every second: INVALID.
fn lagging_run(parent: &Path) -> PathBuf {
    let dir = util::handmade_run(
        parent,
        &[("GET /", 1_000, Outcome::Ok, 200, None)],
        RunState::Completed,
    );
    let header = LogHeader::new(RunId([3; 16]), 0, 1_000, 1_772_442_000_000_000_000);
    let mut log = LogWriter::new(&header, Vec::new()).unwrap();
    let name = log.intern_name("GET /");
    for second in 0..4u64 {
        for i in 0..100u64 {
            let t = second * 1_000_000 + i * 10_000;
            log.push(Sample {
                name,
                intended_us: t,
                actual_us: t + 5_000,
                latency_us: 1_000,
                outcome: Outcome::Ok,
                status: 200,
                ..Sample::default()
            })
            .unwrap();
        }
        log.push_interval(IntervalStats {
            start_us: second * 1_000_000,
            duration_us: 1_000_000,
            iterations_started: 100,
            requests: 100,
            lag_p50_us: 5_000,
            lag_p99_us: 5_000,
            lag_max_us: 5_000,
            ..IntervalStats::default()
        });
    }
    std::fs::write(dir.join("core-0.log"), log.finish().unwrap()).unwrap();
    dir
}

fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

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
