//! `analyzer check`'s outputs: the text table, JUnit XML, the step-summary Markdown and JSON. Each
//! carries the three-way answer; an undecided threshold is named with what would decide it.

use std::path::Path;

use serde::Serialize;

use super::{CheckOutcome, Judged, Method, Share, WindowCounts};
use crate::error::{Error, Result};
use crate::significance::{Decision, OnUndecided};
use crate::slo::Measure;

impl Judged {
    /// PASS, FAIL or UNDECIDED, as the text and Markdown show it. A not-measured threshold fails.
    pub fn label(&self) -> &'static str {
        match self.decision {
            Decision::Within => "PASS",
            Decision::Beyond | Decision::NotMeasured => "FAIL",
            Decision::Undecided => "UNDECIDED",
        }
    }

    /// Why it is undecided and what would decide it, on one line ("" when decided).
    pub fn undecided_line(&self) -> String {
        if self.decision != Decision::Undecided {
            return String::new();
        }
        if self.decide.is_empty() {
            self.reason.clone()
        } else {
            format!("{}; {}", self.reason, self.decide)
        }
    }
}

impl CheckOutcome {
    /// The verdict in a few words: PASS, "PASS, UNDECIDED" or FAIL, and why.
    pub fn verdict_line(&self) -> String {
        let n = self.results.len();
        let (failures, undecided) = (self.failures(), self.undecided());
        if failures > 0 {
            let broken = self
                .results
                .iter()
                .filter(|r| matches!(r.decision, Decision::Beyond | Decision::NotMeasured))
                .count();
            let strict = self.on_undecided == OnUndecided::Fail && undecided > 0;
            match (broken, strict) {
                (0, _) => format!(
                    "FAIL: {undecided} of {n} thresholds undecided, and --undecided fail counts them as failures"
                ),
                (b, true) => format!(
                    "FAIL: {b} of {n} thresholds broken, {undecided} undecided (--undecided fail counts them as failures)"
                ),
                (b, false) => format!("FAIL: {b} of {n} thresholds broken"),
            }
        } else if undecided > 0 {
            format!(
                "PASS, UNDECIDED: none of {n} thresholds broken, but {undecided} undecided (passed \
                 because --undecided pass; --undecided fail fails on them)"
            )
        } else {
            format!("PASS: all {n} thresholds hold")
        }
    }

    /// A plain-text table: verdict, request, threshold, measured value (with its interval), then the
    /// undecided thresholds with what would decide them, and the verdict.
    pub fn text(&self) -> String {
        let rows: Vec<[String; 4]> = self
            .results
            .iter()
            .map(|r| {
                [
                    r.label().to_owned(),
                    r.threshold.key.clone(),
                    r.threshold.text.clone(),
                    r.detail.clone(),
                ]
            })
            .collect();
        let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
        let (w0, w1, w2) = (width(0).max(4), width(1).max(7), width(2).max(9));
        let mut out = format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  MEASURED\n",
            "", "REQUEST", "THRESHOLD"
        );
        for r in &rows {
            out.push_str(&format!(
                "{:<w0$}  {:<w1$}  {:<w2$}  {}\n",
                r[0], r[1], r[2], r[3]
            ));
        }
        if self.intervals > 0 {
            out.push_str(&format!(
                "\nIntervals: {:.0} % family-wise over {} intervals (moving-block bootstrap over one-second windows).\n",
                self.confidence * 100.0,
                self.intervals
            ));
        }
        let undecided: Vec<&Judged> = self
            .results
            .iter()
            .filter(|r| r.decision == Decision::Undecided)
            .collect();
        if !undecided.is_empty() {
            out.push_str(&format!("\nUNDECIDED ({}):\n", undecided.len()));
            for r in undecided {
                out.push_str(&format!(
                    "  {} `{}`: {}\n",
                    r.threshold.key,
                    r.threshold.text,
                    r.undecided_line()
                ));
            }
        }
        out.push_str(&format!("\n{}\n", self.verdict_line()));
        out
    }

    /// JUnit XML: one test suite, one test case per threshold (class name: the request name). A
    /// broken or unmeasured threshold is a `failure`; an undecided one is `skipped` under
    /// `--undecided pass` and a `failure` of type `undecided` under `--undecided fail`. The warnings
    /// (generator health, damaged logs) are the suite's `system-err`.
    pub fn junit(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let n = self.results.len();
        let f = self.failures();
        let skipped = match self.on_undecided {
            OnUndecided::Pass => self.undecided(),
            OnUndecided::Fail => 0,
        };
        out.push_str(&format!(
            "<testsuites name=\"analyzer check\" tests=\"{n}\" failures=\"{f}\" errors=\"0\" skipped=\"{skipped}\">\n"
        ));
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{n}\" failures=\"{f}\" errors=\"0\" skipped=\"{skipped}\">\n",
            xml_escape(&format!("thresholds of {}", self.run))
        ));
        for r in &self.results {
            let t = &r.threshold;
            out.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"{}\" time=\"0\">\n",
                xml_escape(&t.key),
                xml_escape(&t.text)
            ));
            let whole = format!("{}: {}: {} (from {})", t.key, t.text, r.detail, t.origin);
            match (r.decision, self.on_undecided) {
                (Decision::Within, _) => out.push_str(&format!(
                    "      <system-out>{}</system-out>\n",
                    xml_escape(&r.detail)
                )),
                (Decision::Beyond, _) => out.push_str(&format!(
                    "      <failure type=\"threshold\" message=\"{}\">{}</failure>\n",
                    xml_escape(&r.detail),
                    xml_escape(&whole)
                )),
                (Decision::NotMeasured, _) => out.push_str(&format!(
                    "      <failure type=\"not_measured\" message=\"{}\">{}</failure>\n",
                    xml_escape(&r.detail),
                    xml_escape(&whole)
                )),
                (Decision::Undecided, OnUndecided::Pass) => out.push_str(&format!(
                    "      <skipped message=\"{}\"/>\n      <system-out>{}</system-out>\n",
                    xml_escape(&format!("undecided: {}", r.undecided_line())),
                    xml_escape(&r.detail)
                )),
                (Decision::Undecided, OnUndecided::Fail) => out.push_str(&format!(
                    "      <failure type=\"undecided\" message=\"{}\">{} (--undecided fail)</failure>\n",
                    xml_escape(&format!("undecided: {}", r.undecided_line())),
                    xml_escape(&format!("{whole}; undecided: {}", r.undecided_line()))
                )),
            }
            out.push_str("    </testcase>\n");
        }
        // The warnings (an unhealthy generator, damaged logs) qualify every case: a CI server shows
        // the suite's system-err beside its results, so a PASS on an INVALID run does not read as
        // clean.
        if !self.warnings.is_empty() {
            out.push_str(&format!(
                "    <system-err>{}</system-err>\n",
                xml_escape(
                    &self
                        .warnings
                        .iter()
                        .map(|w| format!("warning: {w}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                )
            ));
        }
        out.push_str("  </testsuite>\n</testsuites>\n");
        out
    }

    /// Markdown for `$GITHUB_STEP_SUMMARY`: a heading with the verdict and one table row per
    /// threshold, then the undecided ones with what would decide them. Text from the target
    /// (request names) is escaped.
    pub fn markdown(&self) -> String {
        use crate::render::markdown::{escape, escape_code};
        let heading = if !self.passed() {
            "❌ FAIL"
        } else if self.undecided() > 0 {
            "⚠️ PASS, UNDECIDED"
        } else {
            "✅ PASS"
        };
        let mut out = format!(
            "### Load-test thresholds: {heading} ({})\n\n",
            escape(&self.run)
        );
        if self.results.is_empty() {
            out.push_str("No thresholds were given.\n\n");
            return out;
        }
        out.push_str("| | Request | Threshold | Measured |\n|---|---|---|---|\n");
        for r in &self.results {
            let icon = match r.decision {
                Decision::Within => "✅ PASS",
                Decision::Undecided => "⚠️ UNDECIDED",
                _ => "❌ FAIL",
            };
            out.push_str(&format!(
                "| {icon} | {} | `{}` | {} |\n",
                escape(&r.threshold.key),
                escape_code(&r.threshold.text),
                escape(&r.detail)
            ));
        }
        out.push('\n');
        let undecided: Vec<&Judged> = self
            .results
            .iter()
            .filter(|r| r.decision == Decision::Undecided)
            .collect();
        for r in &undecided {
            out.push_str(&format!(
                "- ⚠️ {} `{}` undecided: {}\n",
                escape(&r.threshold.key),
                escape_code(&r.threshold.text),
                escape(&r.undecided_line())
            ));
        }
        if !undecided.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!("{}\n\n", escape(&self.verdict_line())));
        for w in &self.warnings {
            out.push_str(&format!("> {}\n", escape(w)));
        }
        if !self.warnings.is_empty() {
            out.push('\n');
        }
        out
    }

    /// The outcome as JSON (schema 1, docs/ci.md "check.json"). Latencies are in milliseconds,
    /// error rates fractions, rps per second.
    pub fn json(&self) -> String {
        #[derive(Serialize)]
        struct Summary {
            within: usize,
            beyond: usize,
            undecided: usize,
            not_measured: usize,
        }
        #[derive(Serialize)]
        struct Item<'a> {
            key: &'a str,
            threshold: &'a str,
            origin: &'a str,
            metric: &'static str,
            op: &'static str,
            limit: f64,
            window_s: Option<u32>,
            method: Method,
            measured: Option<f64>,
            low: Option<f64>,
            high: Option<f64>,
            share_above: Option<Share>,
            decision: Decision,
            passed: bool,
            detail: &'a str,
            reason: &'a str,
            decide_s: Option<f64>,
            decide: &'a str,
            windows: Option<WindowCounts>,
        }
        #[derive(Serialize)]
        struct Doc<'a> {
            schema: u32,
            generator: String,
            run: &'a str,
            passed: bool,
            undecided_policy: OnUndecided,
            summary: Summary,
            confidence: f64,
            intervals: usize,
            min_windows: usize,
            thresholds: Vec<Item<'a>>,
            warnings: &'a [String],
        }
        let unit = |m: Measure, v: f64| if m.is_latency() { v / 1000.0 } else { v };
        let doc = Doc {
            schema: 1,
            generator: format!("analyzer {}", env!("CARGO_PKG_VERSION")),
            run: &self.run,
            passed: self.passed(),
            undecided_policy: self.on_undecided,
            summary: Summary {
                within: self.count(Decision::Within),
                beyond: self.count(Decision::Beyond),
                undecided: self.undecided(),
                not_measured: self.count(Decision::NotMeasured),
            },
            confidence: self.confidence,
            intervals: self.intervals,
            min_windows: crate::significance::MIN_WINDOWS,
            thresholds: self
                .results
                .iter()
                .map(|r| {
                    let t = &r.threshold;
                    Item {
                        key: &t.key,
                        threshold: &t.text,
                        origin: &t.origin,
                        metric: t.measure.name(),
                        op: t.op.as_str(),
                        limit: unit(t.measure, t.limit),
                        window_s: t.window_s,
                        method: r.method,
                        measured: r.measured.map(|v| unit(t.measure, v)),
                        low: r.low.map(|v| unit(t.measure, v)),
                        high: r.high.map(|v| unit(t.measure, v)),
                        share_above: r.share,
                        decision: r.decision,
                        passed: !r.decision.fails(self.on_undecided),
                        detail: &r.detail,
                        reason: &r.reason,
                        decide_s: r.decide_s,
                        decide: &r.decide,
                        windows: r.windows,
                    }
                })
                .collect(),
            warnings: &self.warnings,
        };
        serde_json::to_string_pretty(&doc).expect("the outcome serializes")
    }
}

/// Escapes text for XML attributes and content, and drops the control characters XML 1.0 cannot
/// hold at all (a request name is data from a target and may contain anything).
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push_str(&format!("&#{};", u32::from(c))),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {
                out.push('\u{FFFD}');
            }
            c => out.push(c),
        }
    }
    out
}

/// Writes the JUnit XML file.
pub fn write_junit(outcome: &CheckOutcome, path: &Path) -> Result<()> {
    std::fs::write(path, outcome.junit()).map_err(|e| Error::io(path, e))
}

/// Writes JUnit XML for a check that judged nothing because it was refused (`why`, e.g. a run whose
/// load generator was INVALID): one test case in error, so that a CI server's test report says why
/// instead of showing no results or an earlier run's.
pub fn write_junit_refused(run: &str, why: &str, path: &Path) -> Result<()> {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <testsuites name=\"analyzer check\" tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\">\n\
         \x20 <testsuite name=\"{}\" tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\">\n\
         \x20   <testcase classname=\"analyzer check\" name=\"the run can be judged\" time=\"0\">\n\
         \x20     <error type=\"refused\" message=\"{}\">{}</error>\n\
         \x20   </testcase>\n\
         \x20 </testsuite>\n\
         </testsuites>\n",
        xml_escape(&format!("thresholds of {run}")),
        xml_escape(why),
        xml_escape(why)
    );
    std::fs::write(path, xml).map_err(|e| Error::io(path, e))
}

/// Appends to the Markdown summary at `path` (as [`append_summary`] does) the account of a check
/// that judged nothing because it was refused (`why`, e.g. a run whose load generator was
/// INVALID): a pipeline's step summary then says why the step failed instead of showing nothing.
pub fn append_summary_refused(run: &str, why: &str, path: &Path) -> Result<()> {
    use crate::render::markdown::escape;
    use std::io::Write;
    let text = format!(
        "### Load-test thresholds: ⛔ REFUSED ({})\n\nNo threshold was judged: {}\n\n",
        escape(run),
        escape(why)
    );
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    f.write_all(text.as_bytes()).map_err(|e| Error::io(path, e))
}

/// Appends the Markdown summary to `path` (created if missing), as GitHub expects of
/// `$GITHUB_STEP_SUMMARY`: several steps may write to it.
pub fn append_summary(outcome: &CheckOutcome, path: &Path) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    f.write_all(outcome.markdown().as_bytes())
        .map_err(|e| Error::io(path, e))
}

/// Writes the JSON outcome.
pub fn write_json(outcome: &CheckOutcome, path: &Path) -> Result<()> {
    std::fs::write(path, outcome.json()).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escaping_covers_markup_quotes_and_control_characters() {
        assert_eq!(
            xml_escape("GET /a?x=<1>&y=\"2\"'\u{1}\n"),
            "GET /a?x=&lt;1&gt;&amp;y=&quot;2&quot;&apos;\u{FFFD}&#10;"
        );
    }
}
