//! `analyzer check RUN_DIR`: judges a run against thresholds ([`crate::slo`]) and says, for each, what
//! was measured and whether it passed. Renders the outcome as text, JUnit XML (one test case per
//! threshold) and Markdown for a CI step summary.
//!
//! Whole-run values are the report's exact figures ([`crate::stats`]). A `per N s` threshold cuts the
//! measured window into consecutive N-second windows from its start, judges every full one (a partial
//! window at the end would judge a handful of requests) and reports the worst. Schedule lag is
//! recorded by the engine per core and second, not per request, so `lag_p99` is the highest
//! per-second P99 of the worst core: an upper bound of the run's P99 (if at most 1 % of each second's
//! lags exceed a value, at most 1 % of all of them do).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::analysis::{RunAnalysis, analyze};
use crate::error::{Error, Result};
use crate::load::{LoadOptions, LoadedRun, load_run};
use crate::slo::{self, ALL, Measure, Threshold};
use crate::stats::Summary;

/// What `check` was asked to do.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// The run directory.
    pub run: PathBuf,
    /// An SLO file merged over the profile's thresholds.
    pub slo: Option<PathBuf>,
    /// Warm-up to leave out.
    pub skip: std::time::Duration,
    /// Check a sharded run with missing shards (otherwise refused).
    pub allow_partial: bool,
}

/// One threshold's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Judged {
    /// The threshold.
    pub threshold: Threshold,
    /// The measured value (the worst window's for `per` thresholds); `None` when not measured.
    pub measured: Option<f64>,
    /// Whether it passed. A threshold that could not be measured fails.
    pub passed: bool,
    /// The measured value and its context, or why there is none, in words.
    pub detail: String,
}

/// Everything `check` found.
#[derive(Debug, Clone, Serialize)]
pub struct CheckOutcome {
    /// The run's label.
    pub run: String,
    /// One entry per threshold, in the order written (profile keys first).
    pub results: Vec<Judged>,
    /// Problems worth printing (damaged logs, generator health).
    pub warnings: Vec<String>,
}

impl CheckOutcome {
    /// Whether every threshold passed (and there was at least one).
    pub fn passed(&self) -> bool {
        !self.results.is_empty() && self.results.iter().all(|r| r.passed)
    }

    /// How many thresholds failed.
    pub fn failures(&self) -> usize {
        self.results.iter().filter(|r| !r.passed).count()
    }

    /// A plain-text table: verdict, request, threshold, measured value.
    pub fn text(&self) -> String {
        let rows: Vec<[String; 4]> = self
            .results
            .iter()
            .map(|r| {
                [
                    if r.passed { "PASS" } else { "FAIL" }.to_owned(),
                    r.threshold.key.clone(),
                    r.threshold.text.clone(),
                    r.detail.clone(),
                ]
            })
            .collect();
        let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
        let (w1, w2) = (width(1).max(7), width(2).max(9));
        let mut out = format!(
            "{:<4}  {:<w1$}  {:<w2$}  MEASURED\n",
            "", "REQUEST", "THRESHOLD"
        );
        for r in &rows {
            out.push_str(&format!(
                "{:<4}  {:<w1$}  {:<w2$}  {}\n",
                r[0], r[1], r[2], r[3]
            ));
        }
        out.push_str(&if self.passed() {
            format!("\nPASS: all {} thresholds hold\n", self.results.len())
        } else {
            format!(
                "\nFAIL: {} of {} thresholds broken\n",
                self.failures(),
                self.results.len()
            )
        });
        out
    }

    /// JUnit XML: one test suite, one test case per threshold (class name: the request name), a
    /// `failure` element for each broken one.
    pub fn junit(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let (n, f) = (self.results.len(), self.failures());
        out.push_str(&format!(
            "<testsuites name=\"analyzer check\" tests=\"{n}\" failures=\"{f}\" errors=\"0\">\n"
        ));
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{n}\" failures=\"{f}\" errors=\"0\" skipped=\"0\">\n",
            xml_escape(&format!("thresholds of {}", self.run))
        ));
        for r in &self.results {
            let t = &r.threshold;
            out.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"{}\" time=\"0\"",
                xml_escape(&t.key),
                xml_escape(&t.text)
            ));
            if r.passed {
                out.push_str(&format!(
                    ">\n      <system-out>{}</system-out>\n    </testcase>\n",
                    xml_escape(&r.detail)
                ));
            } else {
                out.push_str(&format!(
                    ">\n      <failure type=\"threshold\" message=\"{}\">{} (from {})</failure>\n    </testcase>\n",
                    xml_escape(&r.detail),
                    xml_escape(&format!("{}: {}: {}", t.key, t.text, r.detail)),
                    xml_escape(&t.origin)
                ));
            }
        }
        out.push_str("  </testsuite>\n</testsuites>\n");
        out
    }

    /// Markdown for `$GITHUB_STEP_SUMMARY`: a heading with the verdict and one table row per
    /// threshold. Text from the target (request names) is escaped.
    pub fn markdown(&self) -> String {
        use crate::render::markdown::escape;
        let mut out = format!(
            "### Load-test thresholds: {} ({})\n\n",
            if self.passed() {
                "✅ PASS"
            } else {
                "❌ FAIL"
            },
            escape(&self.run)
        );
        if self.results.is_empty() {
            out.push_str("No thresholds were given.\n\n");
            return out;
        }
        out.push_str("| | Request | Threshold | Measured |\n|---|---|---|---|\n");
        for r in &self.results {
            out.push_str(&format!(
                "| {} | {} | `{}` | {} |\n",
                if r.passed { "✅" } else { "❌" },
                escape(&r.threshold.key),
                crate::render::markdown::escape_code(&r.threshold.text),
                escape(&r.detail)
            ));
        }
        out.push('\n');
        for w in &self.warnings {
            out.push_str(&format!("> {}\n", escape(w)));
        }
        if !self.warnings.is_empty() {
            out.push('\n');
        }
        out
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

/// Runs `analyzer check`: reads the thresholds (profile, then `--slo`), loads and analyzes the run,
/// and judges every threshold. Bad thresholds and unknown request names are [`Error::Slo`] and
/// [`Error::Usage`], before anything is measured.
pub fn check(options: &CheckOptions) -> Result<CheckOutcome> {
    // A sharded run's shards all ran the same profile (the merge refuses them otherwise).
    let profile = crate::shards::profile_of(&options.run)?;
    let manifest_path = options.run.join(formats::manifest::MANIFEST_FILE);
    let origin = if manifest_path.exists() {
        format!("the profile in {}", manifest_path.display())
    } else {
        format!("the profile of the shards in {}", options.run.display())
    };
    let from_profile = slo::from_profile(&origin, &profile)?;
    let from_file = match &options.slo {
        Some(path) => slo::read_file(path)?,
        None => Vec::new(),
    };
    if from_profile.is_empty() && from_file.is_empty() {
        return Err(Error::Usage(format!(
            "no thresholds: the profile of {} has no `thresholds` field and no --slo file was given; \
             write one, e.g. (thresholds: {{\"*\": [\"p99 < 200ms\", \"error_rate < 1%\"]}})",
            options.run.display()
        )));
    }
    let thresholds: Vec<Threshold> = slo::merge(from_profile, from_file)
        .into_iter()
        .flat_map(|(_, list)| list)
        .collect();

    let skip_us = u64::try_from(options.skip.as_micros()).unwrap_or(u64::MAX);
    let run = load_run(
        &options.run,
        LoadOptions {
            skip_us,
            exact_limit: None,
        },
    )?;
    crate::shards::refuse_partial(&run, &options.run, options.allow_partial)?;
    let analysis = analyze(&run, options.skip.as_secs_f64())?;
    let names: Vec<&str> = analysis.endpoints.iter().map(|s| s.name.as_str()).collect();
    for t in &thresholds {
        if t.key != ALL && !names.contains(&t.key.as_str()) {
            return Err(Error::Usage(format!(
                "{}: request name {:?} is not in {}; the names are: \"*\" (all requests), {}",
                t.origin,
                t.key,
                options.run.display(),
                names
                    .iter()
                    .map(|n| format!("{n:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let mut warnings: Vec<String> = run
        .notes
        .iter()
        .filter(|n| n.severity == crate::load::Severity::Warning)
        .map(|n| format!("{}: {}", n.file, n.message))
        .collect();
    if analysis.health.verdict != crate::health::Verdict::Ok {
        warnings.push(format!(
            "the load generator's health is {}: {}",
            analysis.health.verdict.as_str(),
            analysis.health.reasons.join("; ")
        ));
    }
    let results = thresholds
        .into_iter()
        .map(|t| judge(&run, &analysis, t))
        .collect::<Result<Vec<_>>>()?;
    Ok(CheckOutcome {
        run: analysis.info.label.clone(),
        results,
        warnings,
    })
}

/// Measures one threshold and judges it.
fn judge(run: &LoadedRun, analysis: &RunAnalysis, threshold: Threshold) -> Result<Judged> {
    let measured = match threshold.window_s {
        None => whole_run(analysis, &threshold),
        Some(w) => worst_window(run, analysis, &threshold, w)?,
    };
    Ok(match measured {
        Ok((value, context)) => {
            let passed = threshold.op.holds(value, threshold.limit);
            let mut detail = threshold.measure.format(value);
            if !context.is_empty() {
                detail.push_str(&format!(" ({context})"));
            }
            if !passed {
                detail.push_str(&format!(
                    "; limit {} {}",
                    threshold.op.as_str(),
                    threshold.measure.format(threshold.limit)
                ));
            }
            Judged {
                threshold,
                measured: Some(value),
                passed,
                detail,
            }
        }
        Err(reason) => Judged {
            threshold,
            measured: None,
            passed: false,
            detail: format!("not measured: {reason}"),
        },
    })
}

/// The whole run's value, with a few words of context; or why there is none.
fn whole_run(a: &RunAnalysis, t: &Threshold) -> Result<(f64, String), String> {
    if t.measure == Measure::LagP99 {
        return lag(a, None);
    }
    let summary: &Summary = if t.key == ALL {
        &a.total
    } else {
        a.endpoints
            .iter()
            .find(|s| s.name == t.key)
            .ok_or_else(|| "no requests of this name".to_owned())?
    };
    if summary.requests == 0 {
        return Err("no requests in the measured window".into());
    }
    let n = format!("n = {}", crate::format::int(summary.requests));
    let l = &summary.latency;
    Ok(match t.measure {
        Measure::Percentile(i) => (l.percentiles[i], n),
        Measure::Max => (l.max, n),
        Measure::Mean => (l.mean, n),
        Measure::ErrorRate => (
            summary.failures as f64 / summary.requests as f64,
            format!(
                "{} of {}",
                crate::format::int(summary.failures),
                crate::format::int(summary.requests)
            ),
        ),
        Measure::Rps => (
            summary.rps,
            format!("over {}", crate::format::duration_s(a.window_s)),
        ),
        Measure::LagP99 => unreachable!("handled above"),
    })
}

/// The schedule lag P99 of the worst core in the worst second, over the seconds of `range` (or all).
fn lag(a: &RunAnalysis, range: Option<(u32, u32)>) -> Result<(f64, String), String> {
    let ts = &a.timeseries;
    let worst = ts
        .t_s
        .iter()
        .zip(&ts.lag_p99_ms)
        .filter(|(t, _)| range.is_none_or(|(from, to)| (from..to).contains(*t)))
        .filter_map(|(t, l)| l.map(|l| (*t, l)))
        .max_by(|x, y| x.1.total_cmp(&y.1));
    match worst {
        Some((t, ms)) => Ok((ms * 1000.0, format!("worst second: {t}–{} s", t + 1))),
        None => Err(
            "the run's logs hold no per-second interval records, so the generator's schedule lag is unknown"
                .into(),
        ),
    }
}

/// The worst full window's value.
fn worst_window(
    run: &LoadedRun,
    a: &RunAnalysis,
    t: &Threshold,
    window_s: u32,
) -> Result<Result<(f64, String), String>> {
    let Some((start_us, end_us)) = run.window_us else {
        return Ok(Err("no requests in the measured window".into()));
    };
    let first_s = (start_us / 1_000_000) as u32;
    let full_windows = ((end_us / 1_000_000) as u32).saturating_sub(first_s) / window_s;
    if full_windows == 0 {
        return Ok(Err(format!(
            "the measured window ({}) is shorter than one {window_s} s window",
            crate::format::duration_s(a.window_s)
        )));
    }
    let span = |k: u32| (first_s + k * window_s, first_s + (k + 1) * window_s);
    if t.measure == Measure::LagP99 {
        return Ok(lag(a, Some((first_s, span(full_windows - 1).1))));
    }
    if run.approx.is_some() {
        return Err(Error::Usage(format!(
            "{}: `{}`: per-window thresholds need every sample in memory, and this run has more \
             ({} samples) than fit; check a shorter stretch, or drop `per`",
            t.origin,
            t.text,
            crate::format::int(run.rows)
        )));
    }
    let name = if t.key == ALL {
        None
    } else {
        run.names.iter().position(|n| *n == t.key).map(|i| i as u32)
    };
    let windows = full_windows as usize;
    let index = |t_s: u32| {
        let w = (t_s.checked_sub(first_s)? / window_s) as usize;
        (w < windows).then_some(w)
    };
    let wanted = |n: u32| name.is_none_or(|want| want == n);
    let mut latencies: Vec<Vec<u32>> = vec![Vec::new(); windows];
    let mut requests = vec![0u64; windows];
    let mut failures = vec![0u64; windows];
    let [ts, ns, ls] =
        ["t_s", "name", "latency_us"].map(|c| crate::compare::u32_chunks(&run.samples, c));
    for ((ts, ns), ls) in ts?.iter().zip(&ns?).zip(&ls?) {
        for ((&ts, &n), &l) in ts.iter().zip(ns.iter()).zip(ls.iter()) {
            if let Some(w) = index(ts).filter(|_| wanted(n)) {
                requests[w] += 1;
                if t.measure.is_latency() {
                    latencies[w].push(l);
                }
            }
        }
    }
    if t.measure == Measure::ErrorRate {
        let [ts, ns] = ["t_s", "name"].map(|c| crate::compare::u32_chunks(&run.failures, c));
        for (ts, ns) in ts?.iter().zip(&ns?) {
            for (&ts, &n) in ts.iter().zip(ns.iter()) {
                if let Some(w) = index(ts).filter(|_| wanted(n)) {
                    failures[w] += 1;
                }
            }
        }
    }
    let value = |w: usize| -> Option<f64> {
        match t.measure {
            Measure::Rps => Some(requests[w] as f64 / f64::from(window_s)),
            Measure::ErrorRate => {
                (requests[w] > 0).then(|| failures[w] as f64 / requests[w] as f64)
            }
            _ => {
                let l = &latencies[w];
                if l.is_empty() {
                    return None;
                }
                Some(match t.measure {
                    Measure::Percentile(i) => {
                        let q = crate::stats::PERCENTILES[i].2;
                        let rank = ((q * l.len() as f64).ceil() as usize).clamp(1, l.len());
                        let mut l = l.clone();
                        f64::from(*l.select_nth_unstable(rank - 1).1)
                    }
                    Measure::Max => f64::from(*l.iter().max().expect("not empty")),
                    _ => l.iter().map(|&v| f64::from(v)).sum::<f64>() / l.len() as f64,
                })
            }
        }
    };
    let upper = t.op.is_upper_bound();
    let worst = (0..windows)
        .filter_map(|w| value(w).map(|v| (w, v)))
        .max_by(|x, y| {
            if upper {
                x.1.total_cmp(&y.1)
            } else {
                y.1.total_cmp(&x.1)
            }
        });
    Ok(match worst {
        Some((w, v)) => {
            let (from, to) = span(w as u32);
            Ok((
                v,
                format!(
                    "worst of {windows} windows: {from}–{to} s, n = {}",
                    crate::format::int(requests[w])
                ),
            ))
        }
        None => Err(format!("no requests in any full {window_s} s window")),
    })
}

/// Writes the JUnit XML file.
pub fn write_junit(outcome: &CheckOutcome, path: &Path) -> Result<()> {
    std::fs::write(path, outcome.junit()).map_err(|e| Error::io(path, e))
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
