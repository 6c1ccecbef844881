//! CI verdicts: `analyzer compare` tells a regression from noise, and `analyzer check` judges
//! thresholds, with the exit codes pipelines rely on (0 pass, 1 fail, 2 bad input). Against each
//! limit the answer is within, beyond or undecided; `--undecided` picks the exit status of the last.

mod util;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use analyzer::compare::{ALL_REQUESTS, Limits, MetricKey, compare_loaded};
use analyzer::load::{LoadOptions, load_run};
use analyzer::significance::{Decision, Settings, Verdict};
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

    let json = read_json(&out_dir.join("compare.json"));
    assert_eq!(json["schema"], 2);
    assert_eq!(json["passed"], false);
    let all = &json["rows"][0];
    assert_eq!(all["name"], ALL_REQUESTS);
    for cell in all["cells"].as_array().unwrap() {
        let metric = cell["metric"].as_str().unwrap();
        let verdict = cell["verdict"].as_str().unwrap();
        match metric {
            "p50" | "p90" | "p99" => assert_eq!(verdict, "higher", "{metric}: {cell}"),
            // The shift is in latency only: the same open-model schedule, the same failure rate.
            "error_rate" | "throughput" => {
                assert_ne!(verdict, "higher", "{metric}: {cell}");
                assert_ne!(verdict, "lower", "{metric}: {cell}");
            }
            other => panic!("unexpected metric {other}"),
        }
        if metric == "p50" {
            let change = cell["change"].as_f64().unwrap();
            assert!((change - 0.2).abs() < 0.03, "P50 moved by {change}");
            assert_eq!(cell["limit"]["decision"], "beyond", "{cell}");
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
        // may honestly be "not resolvable" (the report then says what it could have detected); the
        // all-requests median and error rate must resolve as noise.
        let all = &result.rows[0];
        let claims: Vec<String> = result
            .rows
            .iter()
            .flat_map(|r| r.cells.iter().map(move |c| (r, c)))
            .filter(|(_, c)| matches!(c.result.verdict, Verdict::Higher | Verdict::Lower))
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

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The all-requests P50 cell of a `compare.json`.
fn all_requests_p50(json: &serde_json::Value) -> serde_json::Value {
    json["rows"][0]["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["metric"] == "p50")
        .cloned()
        .unwrap()
}

/// A steady synthetic shop: 40 s, 40,000 requests, one core, no incidents (as `shop`), with every
/// latency scaled by `scale`.
fn shop_at(parent: &Path, name: &str, seed: u64, scale: f64) -> PathBuf {
    shop(&parent.join(name), seed, scale)
}

/// The three answers against a +10 % limit on the median, on synthetic runs: the same distribution
/// is within, +30 % is beyond, +8 % straddles the limit and is undecided, with the run length that
/// would decide it. The exit status follows --undecided, and every output says the same thing.
#[test]
fn compare_answers_within_beyond_or_undecided_and_every_output_agrees() {
    let tmp = tempfile::tempdir().unwrap();
    let base = shop_at(tmp.path(), "base", 1, 1.0);
    let cases = [
        (
            "within",
            shop_at(tmp.path(), "same", 2, 1.0),
            Some(0),
            Some(0),
        ),
        (
            "undecided",
            shop_at(tmp.path(), "near", 2, 1.08),
            Some(0),
            Some(1),
        ),
        (
            "beyond",
            shop_at(tmp.path(), "slow", 2, 1.3),
            Some(1),
            Some(1),
        ),
    ];
    for (answer, cand, pass_exit, fail_exit) in cases {
        for (policy, exit) in [("pass", pass_exit), ("fail", fail_exit)] {
            let out_dir = tmp.path().join(format!("cmp-{answer}-{policy}"));
            let junit = out_dir.join("junit.xml");
            std::fs::create_dir_all(&out_dir).unwrap();
            let out = analyzer(&[
                "compare",
                s(&base),
                s(&cand),
                "--max-regression",
                "p50=10%",
                "--undecided",
                policy,
                "--out",
                s(&out_dir),
                "--junit",
                s(&junit),
            ]);
            let context = format!("{answer} under --undecided {policy}: {}", text(&out));
            assert_eq!(out.status.code(), exit, "{context}");
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);

            let json = read_json(&out_dir.join("compare.json"));
            let p50 = all_requests_p50(&json);
            assert_eq!(p50["limit"]["decision"], answer, "{context}\n{p50}");
            assert_eq!(json["undecided_policy"], policy);
            assert_eq!(json["passed"], exit == Some(0), "{context}");
            let table_line = stdout
                .lines()
                .find(|l| l.starts_with("All requests") && l.contains(" P50 "))
                .unwrap_or_else(|| panic!("{context}"))
                .to_owned();
            let md = std::fs::read_to_string(out_dir.join("compare.md")).unwrap();
            let html = std::fs::read_to_string(out_dir.join("compare.html")).unwrap();
            let xml = std::fs::read_to_string(&junit).unwrap();
            let doc = roxmltree::Document::parse(&xml).expect("JUnit XML parses");
            let case = doc
                .descendants()
                .find(|n| {
                    n.has_tag_name("testcase")
                        && n.attribute("classname") == Some(ALL_REQUESTS)
                        && n.attribute("name") == Some("P50 within +10.0 %")
                })
                .unwrap_or_else(|| panic!("{xml}"));
            let failure = case.children().find(|n| n.has_tag_name("failure"));
            let skipped = case.children().find(|n| n.has_tag_name("skipped"));
            match answer {
                "within" => {
                    assert!(table_line.contains("within +10.0 %"), "{table_line}");
                    assert!(stdout.contains("\nPASS: every limit decided"), "{context}");
                    assert!(!stderr.contains("undecided"), "{context}");
                    assert!(md.contains("| within +10.0 % |"), "{md}");
                    assert!(html.contains("class=\"decision within\""));
                    assert!(failure.is_none() && skipped.is_none(), "{xml}");
                }
                "beyond" => {
                    assert!(table_line.contains("BEYOND +10.0 %"), "{table_line}");
                    assert!(stdout.contains("\nFAIL: "), "{context}");
                    assert!(stdout.contains("BEYOND THE LIMIT"), "{context}");
                    assert!(md.contains("| BEYOND +10.0 % |"), "{md}");
                    assert!(md.contains("**FAIL**"), "{md}");
                    assert!(html.contains("class=\"decision beyond\""));
                    assert_eq!(failure.unwrap().attribute("type"), Some("beyond"));
                }
                _ => {
                    assert!(
                        table_line.contains("UNDECIDED: straddles +10.0 %"),
                        "{table_line}"
                    );
                    let decide_s = p50["limit"]["decide_s"].as_f64().unwrap_or_else(|| {
                        panic!("a +8 % change is decided by a longer run: {p50}")
                    });
                    assert!(decide_s > 40.0, "longer than this 40 s run: {p50}");
                    let decide = p50["limit"]["decide"].as_str().unwrap();
                    assert!(decide.ends_with("of this load would decide"), "{p50}");
                    assert!(stdout.contains(decide), "the text says it too: {context}");
                    assert!(md.contains("UNDECIDED: straddles +10.0 %"), "{md}");
                    assert!(md.contains(decide), "{md}");
                    assert!(html.contains("class=\"decision undecided\""));
                    assert!(html.contains(decide));
                    if policy == "pass" {
                        assert!(stdout.contains("\nPASS, UNDECIDED: "), "{context}");
                        assert!(stderr.contains("warning: "), "a loud pass: {context}");
                        assert!(md.contains("**PASS, undecided**"), "{md}");
                        let message = skipped.unwrap().attribute("message").unwrap();
                        assert!(message.contains(decide), "{xml}");
                        assert!(failure.is_none(), "{xml}");
                    } else {
                        assert!(stdout.contains("\nFAIL: "), "{context}");
                        assert_eq!(failure.unwrap().attribute("type"), Some("undecided"));
                        assert!(skipped.is_none(), "{xml}");
                    }
                }
            }
        }
    }
}

/// A tiny deterministic generator for hand-made runs.
struct Lcg(u64);

impl Lcg {
    fn unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Log-normal around `median_us` with σ = 0.4 (Box–Muller).
    fn latency(&mut self, median_us: f64) -> u32 {
        let (u1, u2) = (self.unit().max(1e-12), self.unit());
        let n = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        (median_us * (0.4 * n).exp()) as u32
    }
}

/// A run written by hand into its own directory under `parent`: `samples` are (name, intended start
/// µs, latency µs, ok), and every one of `seconds` seconds has an interval record, so the
/// generator's health is known and OK.
fn timed_run(parent: &Path, seconds: u64, samples: &mut [(&str, u64, u32, bool)]) -> PathBuf {
    std::fs::create_dir_all(parent).unwrap();
    let dir = util::handmade_run(
        parent,
        &[("GET /", 1_000, Outcome::Ok, 200, None)],
        RunState::Completed,
    );
    samples.sort_by_key(|s| s.1);
    let header = LogHeader::new(RunId([3; 16]), 0, 1_000, 1_772_442_000_000_000_000);
    let mut log = LogWriter::new(&header, Vec::new()).unwrap();
    let mut second = 0;
    let mut requests = 0;
    let interval = |log: &mut LogWriter<Vec<u8>>, second: u64, requests: u32| {
        log.push_interval(IntervalStats {
            start_us: second * 1_000_000,
            duration_us: 1_000_000,
            iterations_started: requests,
            requests,
            lag_p50_us: 20,
            lag_p99_us: 50,
            lag_max_us: 80,
            ..IntervalStats::default()
        });
    };
    for &(name, t, latency, ok) in samples.iter() {
        while t >= (second + 1) * 1_000_000 {
            interval(&mut log, second, requests);
            second += 1;
            requests = 0;
        }
        let name = log.intern_name(name);
        log.push(Sample {
            name,
            intended_us: t,
            actual_us: t,
            latency_us: latency,
            outcome: if ok { Outcome::Ok } else { Outcome::Status },
            status: if ok { 200 } else { 500 },
            ..Sample::default()
        })
        .unwrap();
        requests += 1;
    }
    while second < seconds {
        interval(&mut log, second, requests);
        second += 1;
        requests = 0;
    }
    std::fs::write(dir.join("core-0.log"), log.finish().unwrap()).unwrap();
    dir
}

/// One minute of `GET /` at 50 requests a second, and a login run ten times, all in the first
/// second (users logging in as they start), `login_scale` times slower than 20 ms.
fn login_run(parent: &Path, seed: u64, login_scale: f64) -> PathBuf {
    let mut rng = Lcg(seed);
    let mut samples = Vec::new();
    for i in 0..3_000u64 {
        samples.push((
            "GET /",
            i * 20_000,
            rng.latency(12_000.0),
            rng.unit() > 0.01,
        ));
    }
    for i in 0..10u64 {
        let latency = (20_000.0 + 700.0 * i as f64) * login_scale;
        samples.push(("POST /login", i * 50_000 + 7, latency as u32, true));
    }
    timed_run(parent, 60, &mut samples)
}

/// The issue's case: the same profile run twice, its login ten times in the first second. One
/// window cannot be resampled, so the login's rows are undecided ("too few samples"), not a
/// collapsed interval that breaks its limit; both orders give the same answers and pass, and
/// `--undecided fail` fails both.
#[test]
fn ten_logins_in_the_first_second_are_undecided_in_either_order() {
    let tmp = tempfile::tempdir().unwrap();
    let a = login_run(&tmp.path().join("a"), 1, 1.0);
    let b = login_run(&tmp.path().join("b"), 2, 1.314);
    let mut answers = Vec::new();
    for (base, cand) in [(&a, &b), (&b, &a)] {
        let out_dir = tmp.path().join(format!("o{}", answers.len()));
        let out = analyzer(&["compare", s(base), s(cand), "--out", s(&out_dir)]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!stdout.contains("BEYOND"), "{stdout}");
        assert!(
            stdout.contains(
                "10 requests in 1 window in the baseline, 10 requests in 1 window in the candidate; \
                 a P99 needs at least 1,000 requests in at least 10 one-second windows"
            ),
            "{stdout}"
        );
        let json = read_json(&out_dir.join("compare.json"));
        let login = json["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "POST /login")
            .cloned()
            .unwrap();
        for cell in login["cells"].as_array().unwrap() {
            assert_eq!(cell["verdict"], "too_few_samples", "{cell}");
            assert!(cell["low"].is_null(), "no collapsed interval: {cell}");
            if !cell["limit"].is_null() {
                assert_eq!(cell["limit"]["decision"], "undecided", "{cell}");
            }
        }
        answers.push(
            json["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    r["cells"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|c| c["limit"]["decision"].clone())
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>(),
        );
        let strict = analyzer(&[
            "compare",
            s(base),
            s(cand),
            "--out",
            s(&out_dir),
            "--undecided",
            "fail",
        ]);
        assert_eq!(strict.status.code(), Some(1), "{}", text(&strict));
    }
    assert_eq!(answers[0], answers[1], "the same answers in either order");
}

/// Short runs with few samples per name (2,000 requests over 20 s, shared by six names, with the
/// synthetic shop's stall and degraded period), twenty pairs of one distribution: no limit is
/// beyond in either order, so every comparison passes both ways under the default --undecided.
#[test]
fn twenty_short_same_distribution_pairs_pass_both_ways() {
    let tmp = tempfile::tempdir().unwrap();
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
    let short = |name: String, seed: u64| {
        let params = SynthParams {
            samples: 2_000,
            cores: 1,
            seed,
            duration_s: 20,
            ..SynthParams::default()
        };
        load(&synth(&params, &tmp.path().join(name)).unwrap())
    };
    let mut undecided = 0;
    for pair in 0..20u64 {
        let (a, b) = (
            short(format!("a{pair}"), 3_000 + pair),
            short(format!("b{pair}"), 4_000 + pair),
        );
        for (base, cand) in [(&a, &b), (&b, &a)] {
            let result =
                compare_loaded(base, cand, &Limits::default(), &Settings::default()).unwrap();
            let broken: Vec<String> = result
                .broken()
                .map(|(r, c)| format!("{} {}: {:?}", r.name, c.metric.key(), c.result))
                .collect();
            assert!(broken.is_empty(), "pair {pair}: {broken:#?}");
            assert!(result.passed(), "pair {pair}");
            undecided += result.count(Decision::Undecided);
        }
    }
    // Runs this short cannot decide a P99 of most names: the answer says so rather than guessing.
    assert!(undecided > 0);
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
