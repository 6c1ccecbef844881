//! `analyzer compare`'s plain-text table, `compare.json` and JUnit XML.

use serde::Serialize;

use super::{CompareResult, MetricKey};
use crate::analysis::RunAnalysis;
use crate::check::xml_escape;
use crate::significance::{Decision, Evidence, MIN_WINDOWS, OnUndecided};
use crate::view::verdict::{
    change_text, interval_text, judgement_line, limit_signed, value_text, verdict_text,
};

impl CompareResult {
    /// A plain-text table for the terminal: one line per request name and metric (name, metric,
    /// baseline, candidate, change with its interval, verdict), then the undecided and broken limits
    /// with their reasons, and the verdict on the last line.
    pub fn text_table(&self) -> String {
        let mut lines: Vec<[String; 6]> = vec![[
            "REQUEST".into(),
            "METRIC".into(),
            "BASELINE".into(),
            "CANDIDATE".into(),
            "CHANGE [INTERVAL]".into(),
            "VERDICT".into(),
        ]];
        for row in &self.rows {
            for c in &row.cells {
                let r = &c.result;
                lines.push([
                    row.name.clone(),
                    c.metric.label().to_owned(),
                    value_text(c.metric, r.baseline),
                    value_text(c.metric, r.candidate),
                    format!(
                        "{} [{}]",
                        change_text(c.metric, r),
                        interval_text(c.metric, r)
                    ),
                    verdict_text(c),
                ]);
            }
        }
        let widths: Vec<usize> = (0..6)
            .map(|i| {
                lines
                    .iter()
                    .map(|l| l[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for l in &lines {
            let mut line = String::new();
            for (i, text) in l.iter().enumerate() {
                let pad = widths[i] - text.chars().count();
                // Numbers are right-aligned, words left-aligned.
                if (2..=3).contains(&i) {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(text);
                } else {
                    line.push_str(text);
                    if i < 5 {
                        line.push_str(&" ".repeat(pad));
                    }
                }
                if i < 5 {
                    line.push_str("  ");
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out.push_str(&format!(
            "\nIntervals: {:.0} % family-wise over {} comparisons (moving-block bootstrap, {} replicates).\n",
            self.confidence * 100.0,
            self.comparisons,
            self.replicates
        ));
        for (what, names) in [
            ("only in the baseline", &self.only_in_baseline),
            ("only in the candidate", &self.only_in_candidate),
        ] {
            if !names.is_empty() {
                out.push_str(&format!("Request names {what}: {}\n", names.join(", ")));
            }
        }
        let broken: Vec<String> = self
            .broken()
            .map(|(row, c)| judgement_line(row, c))
            .collect();
        if !broken.is_empty() {
            out.push_str(&format!("\nBEYOND THE LIMIT ({}):\n", broken.len()));
            for line in &broken {
                out.push_str(&format!("  {line}\n"));
            }
        }
        let undecided: Vec<String> = self
            .undecided()
            .map(|(row, c)| judgement_line(row, c))
            .collect();
        if !undecided.is_empty() {
            out.push_str(&format!("\nUNDECIDED ({}):\n", undecided.len()));
            for line in &undecided {
                out.push_str(&format!("  {line}\n"));
            }
        }
        out.push('\n');
        out.push_str(&self.verdict_line());
        out.push('\n');
        out
    }

    /// The last line: PASS or FAIL, and why.
    pub fn verdict_line(&self) -> String {
        let (broken, undecided) = (
            self.count(Decision::Beyond),
            self.count(Decision::Undecided),
        );
        let within = self.count(Decision::Within);
        let limits = |n: usize| format!("{n} {}", if n == 1 { "limit" } else { "limits" });
        match (broken, undecided, self.on_undecided) {
            (0, 0, _) => format!(
                "PASS: every limit decided, none broken ({} within)",
                limits(within)
            ),
            (0, u, OnUndecided::Pass) => format!(
                "PASS, UNDECIDED: no limit broken beyond noise, but {} undecided (passed because \
                 --undecided pass; --undecided fail fails on them)",
                limits(u)
            ),
            (0, u, OnUndecided::Fail) => format!(
                "FAIL: {} undecided, and --undecided fail counts them as failures",
                limits(u)
            ),
            (b, 0, _) | (b, _, OnUndecided::Pass) => format!(
                "FAIL: {} broken beyond noise (the whole interval past the limit)",
                limits(b)
            ),
            (b, u, OnUndecided::Fail) => format!(
                "FAIL: {} broken beyond noise, and {} undecided (--undecided fail counts them as failures)",
                limits(b),
                limits(u)
            ),
        }
    }

    /// JUnit XML: one test suite, one test case per request name and limit (class name: the request
    /// name; name: e.g. "P99 within +10.0 %"). A limit beyond fails; an undecided one is
    /// `skipped` under `--undecided pass` and a `failure` of type `undecided` under `--undecided
    /// fail`; its message says why and what would decide it.
    pub fn junit(&self, candidate: &str) -> String {
        let cases: Vec<(&super::Row, &super::Cell)> = self
            .rows
            .iter()
            .flat_map(|r| r.cells.iter().map(move |c| (r, c)))
            .filter(|(_, c)| c.judgement.is_some())
            .collect();
        let n = cases.len();
        let undecided = self.count(Decision::Undecided);
        let (failures, skipped) = match self.on_undecided {
            OnUndecided::Pass => (self.count(Decision::Beyond), undecided),
            OnUndecided::Fail => (self.count(Decision::Beyond) + undecided, 0),
        };
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        out.push_str(&format!(
            "<testsuites name=\"analyzer compare\" tests=\"{n}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">\n"
        ));
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{n}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">\n",
            xml_escape(&format!("regression limits of {candidate}"))
        ));
        for (row, c) in cases {
            let j = c.judgement.as_ref().expect("filtered");
            out.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"{}\" time=\"0\">\n",
                xml_escape(&row.name),
                xml_escape(&format!(
                    "{} within {}",
                    c.metric.label(),
                    limit_signed(c.metric, j.limit)
                ))
            ));
            let line = judgement_line(row, c);
            match (j.decision, self.on_undecided) {
                (Decision::Beyond, _) => out.push_str(&format!(
                    "      <failure type=\"beyond\" message=\"{}\">{}</failure>\n",
                    xml_escape(&line),
                    xml_escape(&line)
                )),
                (Decision::Undecided, OnUndecided::Fail) => out.push_str(&format!(
                    "      <failure type=\"undecided\" message=\"{}\">{} (--undecided fail)</failure>\n",
                    xml_escape(&line),
                    xml_escape(&line)
                )),
                (Decision::Undecided, OnUndecided::Pass) => out.push_str(&format!(
                    "      <skipped message=\"{}\"/>\n",
                    xml_escape(&line)
                )),
                _ => out.push_str(&format!(
                    "      <system-out>{}</system-out>\n",
                    xml_escape(&line)
                )),
            }
            out.push_str("    </testcase>\n");
        }
        out.push_str("  </testsuite>\n</testsuites>\n");
        out
    }
}

/// `compare.json`, schema 2 (docs/ci.md, "compare.json").
pub(super) fn json(runs: &[RunAnalysis], result: &CompareResult) -> String {
    #[derive(Serialize)]
    struct RunRef<'a> {
        id: &'a str,
        label: &'a str,
        dir: String,
        health: &'a crate::health::Health,
    }
    #[derive(Serialize)]
    struct Summary {
        beyond: usize,
        undecided: usize,
        within: usize,
    }
    #[derive(Serialize)]
    struct Limit<'a> {
        max_regression: f64,
        decision: Decision,
        reason: &'a str,
        decide_s: Option<f64>,
        decide: &'a str,
    }
    #[derive(Serialize)]
    struct Cell<'a> {
        metric: &'static str,
        baseline: f64,
        candidate: f64,
        change: f64,
        low: f64,
        high: f64,
        change_unit: &'static str,
        se: f64,
        z: f64,
        detectable: f64,
        tolerance: f64,
        verdict: crate::significance::Verdict,
        evidence: [Evidence; 2],
        shortfall: Option<&'a str>,
        limit: Option<Limit<'a>>,
    }
    #[derive(Serialize)]
    struct Row<'a> {
        name: &'a str,
        requests: [u64; 2],
        cells: Vec<Cell<'a>>,
    }
    #[derive(Serialize)]
    struct Doc<'a> {
        schema: u32,
        generator: String,
        baseline: RunRef<'a>,
        candidate: RunRef<'a>,
        passed: bool,
        undecided_policy: OnUndecided,
        summary: Summary,
        confidence: f64,
        comparisons: usize,
        replicates: usize,
        min_windows: usize,
        rows: Vec<Row<'a>>,
        only_in_baseline: &'a [String],
        only_in_candidate: &'a [String],
    }
    fn run(r: &RunAnalysis) -> RunRef<'_> {
        RunRef {
            id: &r.info.id,
            label: &r.info.label,
            dir: r.info.dir.display().to_string(),
            health: &r.health,
        }
    }
    // Latencies in ms, like report.json.
    let value = |metric: MetricKey, v: f64| match metric {
        MetricKey::ErrorRate | MetricKey::Throughput => v,
        _ => v / 1000.0,
    };
    let rows = result
        .rows
        .iter()
        .map(|row| Row {
            name: &row.name,
            requests: [row.requests.0, row.requests.1],
            cells: row
                .cells
                .iter()
                .map(|c| {
                    let r = &c.result;
                    Cell {
                        metric: c.metric.key(),
                        baseline: value(c.metric, r.baseline),
                        candidate: value(c.metric, r.candidate),
                        change: r.change,
                        low: r.low,
                        high: r.high,
                        change_unit: if c.metric.is_error_rate() {
                            "points"
                        } else {
                            "ratio"
                        },
                        se: r.se,
                        z: r.z,
                        detectable: r.detectable,
                        tolerance: r.tolerance,
                        verdict: r.verdict,
                        evidence: r.evidence,
                        shortfall: r.shortfall.as_ref().map(|s| s.text.as_str()),
                        limit: c.judgement.as_ref().map(|j| Limit {
                            max_regression: j.limit,
                            decision: j.decision,
                            reason: &j.reason,
                            decide_s: j.decide_s,
                            decide: &j.decide,
                        }),
                    }
                })
                .collect(),
        })
        .collect();
    let doc = Doc {
        schema: 2,
        generator: format!("analyzer {}", env!("CARGO_PKG_VERSION")),
        baseline: run(&runs[0]),
        candidate: run(&runs[1]),
        passed: result.passed(),
        undecided_policy: result.on_undecided,
        summary: Summary {
            beyond: result.count(Decision::Beyond),
            undecided: result.count(Decision::Undecided),
            within: result.count(Decision::Within),
        },
        confidence: result.confidence,
        comparisons: result.comparisons,
        replicates: result.replicates,
        min_windows: MIN_WINDOWS,
        rows,
        only_in_baseline: &result.only_in_baseline,
        only_in_candidate: &result.only_in_candidate,
    };
    serde_json::to_string_pretty(&doc).expect("the comparison serializes")
}
