//! `analyzer compare`: a regression told from noise (a 20 % shift fails the build, the same
//! distribution is within noise for nineteen of twenty seed pairs, short runs pass both ways), the
//! three answers against a limit in every output, undecided rows from too little data, and the exit
//! status for an invalid generator and for bad input.

use std::path::{Path, PathBuf};

use analyzer::compare::{ALL_REQUESTS, Limits, MetricKey, compare_loaded};
use analyzer::load::{LoadOptions, load_run};
use analyzer::significance::{Decision, Settings, Verdict};
use analyzer::synth::{SynthParams, synth};

use super::{analyzer, lagging_run, read_json, s, shop, text, timed_run};

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

/// The case: the same profile run twice, its login ten times in the first second. One
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
