//! `analyzer export RUN --locust-csv DIR`: a run as the three CSV files Locust writes with `--csv`
//! (`stats.csv`, `stats_history.csv`, `failures.csv`), with Locust's column names and meanings, so
//! that dashboards and scripts made for Locust read Stampede runs.
//!
//! Where the meanings differ, ours are the more exact (docs/reports.md#locust-csv lists them):
//!
//! - Response times are milliseconds with three decimals (µs resolution), from the request's actual
//!   start, as Locust measures them (uncorrected latency). Percentiles are exact nearest-rank values
//!   (Locust rounds response times to two significant digits before taking percentiles and writes
//!   whole milliseconds); past the analyzer's exact limit they come from HdrHistograms with three
//!   significant digits, as in the report. The history's percentiles (of every request up to the
//!   end of each second, as Locust's Aggregated row) come from an HdrHistogram with three
//!   significant digits.
//! - `Requests/s` and `Failures/s` in `stats.csv` are over the run's measured window, as the report's;
//!   in `stats_history.csv` they are the second's own counts, where Locust averages the last ten
//!   seconds.
//! - `Average Content Size` is the bytes received per request, headers included (Locust counts the
//!   body only); the history repeats the run's figure, since bytes are kept per request name only.
//! - `Type` is the HTTP method: the first word of a `METHOD path` name, else the method the profile
//!   gives the named request, else empty (steps of other protocols).
//! - `First Seen` and `Last Seen` in `failures.csv` are the UTC seconds of the intended starts of the
//!   first and last such failure; `Error` is the failure's message, or its kind and status.

use std::io::Write;
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;

use crate::analysis::{RunAnalysis, analyze};
use crate::error::{Error, Result};
use crate::load::{LoadOptions, LoadedRun, load_input};
use crate::select::{percentiles, ppm};
use crate::stats::chunk_slices;

/// Locust's percentile columns (`PERCENTILES_TO_REPORT`), as (header, quantile).
pub const PERCENTILES: [(&str, f64); 11] = [
    ("50%", 0.50),
    ("66%", 0.66),
    ("75%", 0.75),
    ("80%", 0.80),
    ("90%", 0.90),
    ("95%", 0.95),
    ("98%", 0.98),
    ("99%", 0.99),
    ("99.9%", 0.999),
    ("99.99%", 0.9999),
    ("100%", 1.0),
];

/// The header of `stats.csv`.
pub fn stats_header() -> Vec<String> {
    let mut h: Vec<String> = [
        "Type",
        "Name",
        "Request Count",
        "Failure Count",
        "Median Response Time",
        "Average Response Time",
        "Min Response Time",
        "Max Response Time",
        "Average Content Size",
        "Requests/s",
        "Failures/s",
    ]
    .map(String::from)
    .to_vec();
    h.extend(PERCENTILES.iter().map(|p| p.0.to_owned()));
    h
}

/// The header of `stats_history.csv`.
pub fn history_header() -> Vec<String> {
    let mut h: Vec<String> = [
        "Timestamp",
        "User Count",
        "Type",
        "Name",
        "Requests/s",
        "Failures/s",
    ]
    .map(String::from)
    .to_vec();
    h.extend(PERCENTILES.iter().map(|p| p.0.to_owned()));
    h.extend(
        [
            "Total Request Count",
            "Total Failure Count",
            "Total Median Response Time",
            "Total Average Response Time",
            "Total Min Response Time",
            "Total Max Response Time",
            "Total Average Content Size",
        ]
        .map(String::from),
    );
    h
}

/// The header of `failures.csv`.
pub const FAILURES_HEADER: [&str; 6] = [
    "Method",
    "Name",
    "Error",
    "Occurrences",
    "First Seen",
    "Last Seen",
];

/// What the export wrote.
#[derive(Debug, Clone, Default)]
pub struct LocustOutcome {
    /// The files written.
    pub files: Vec<PathBuf>,
    /// Problems found while reading.
    pub warnings: Vec<String>,
}

/// Writes the Locust CSV files of the run `dir` (a run, or a sharded run's directory) into `out`.
pub fn export_locust_csv(dir: &Path, out: &Path) -> Result<LocustOutcome> {
    let inputs = crate::shards::resolve(&[dir.to_owned()])?;
    let [input] = inputs.as_slice() else {
        return Err(Error::Usage(format!(
            "--locust-csv writes one run, but {} were found in {}",
            inputs.len(),
            dir.display()
        )));
    };
    let run = load_input(input, LoadOptions::default())?;
    let analysis = analyze(&run, 0.0)?;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let mut outcome = LocustOutcome {
        warnings: run
            .notes
            .iter()
            .filter(|n| n.severity == crate::load::Severity::Warning)
            .map(|n| format!("{}: {}", n.file, n.message))
            .collect(),
        ..LocustOutcome::default()
    };
    let methods = analysis
        .info
        .load_model
        .as_ref()
        .map(|m| m.methods.clone())
        .unwrap_or_default();
    let type_and_name = |name: &str| -> (String, String) {
        if let Some((m, rest)) = name.split_once(' ')
            && matches!(
                m,
                "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS"
            )
        {
            return (m.to_owned(), rest.to_owned());
        }
        (
            methods.get(name).cloned().unwrap_or_default(),
            name.to_owned(),
        )
    };

    let stats = stats_rows(&run, &analysis, &type_and_name)?;
    outcome
        .files
        .push(write_csv(&out.join("stats.csv"), &stats_header(), &stats)?);
    let history = history_rows(&run, &analysis)?;
    if history.approximate {
        outcome.warnings.push(
            "the run is larger than the exact limit: stats_history.csv's percentiles are N/A (the per-second \
             figures past the limit keep corrected latency only)"
                .into(),
        );
    }
    outcome.files.push(write_csv(
        &out.join("stats_history.csv"),
        &history_header(),
        &history.rows,
    )?);
    let failures = failure_rows(&run, &analysis, &type_and_name)?;
    let header: Vec<String> = FAILURES_HEADER.iter().map(|h| (*h).to_owned()).collect();
    outcome
        .files
        .push(write_csv(&out.join("failures.csv"), &header, &failures)?);
    Ok(outcome)
}

/// Milliseconds from µs, three decimals, without trailing zeros (`12.5`, `3`, `0.042`).
fn ms(us: f64) -> String {
    let s = format!("{:.3}", us / 1000.0);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".into()
    } else {
        s.to_owned()
    }
}

fn per_s(x: f64) -> String {
    let s = format!("{x:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The uncorrected latency at each of Locust's quantiles, µs; `None` for no requests.
type Quantiles = Option<Vec<f64>>;

/// Per request name (index) and in total: the uncorrected latency at each of Locust's quantiles.
fn quantiles(run: &LoadedRun) -> Result<(Vec<Quantiles>, Quantiles)> {
    let n = run.names.len();
    if let Some(agg) = &run.approx {
        let per = (0..n)
            .map(|i| {
                agg.names.get(i).filter(|a| a.count() > 0).map(|a| {
                    PERCENTILES
                        .iter()
                        .map(|q| a.uncorrected.percentile(q.1))
                        .collect()
                })
            })
            .collect();
        let mut total = crate::approx::LatencyAgg::new(crate::approx::NAME_DIGITS);
        for a in &agg.names {
            total.add(&a.uncorrected);
        }
        let total = (total.moments.count > 0)
            .then(|| PERCENTILES.iter().map(|q| total.percentile(q.1)).collect());
        return Ok((per, total));
    }
    let chunks = chunk_slices(&run.samples, "name", "latency_uncorrected_us")?;
    let ppms: Vec<u32> = PERCENTILES.iter().map(|q| ppm(q.1)).collect();
    let p = percentiles(&chunks, 0, n, &ppms, false);
    let row =
        |v: &Vec<Option<u32>>| -> Option<Vec<f64>> { v.iter().map(|x| x.map(f64::from)).collect() };
    Ok((p.groups.iter().map(row).collect(), row(&p.total)))
}

fn stats_rows(
    run: &LoadedRun,
    a: &RunAnalysis,
    type_and_name: &dyn Fn(&str) -> (String, String),
) -> Result<Vec<Vec<String>>> {
    let (per_name, total) = quantiles(run)?;
    let window = a.window_s;
    let row = |kind: String, name: String, s: &crate::stats::Summary, q: Option<&Vec<f64>>| {
        let l = &s.latency_uncorrected;
        let failures_per_s = if window > 0.0 {
            s.failures as f64 / window
        } else {
            0.0
        };
        let mut r = vec![
            kind,
            name,
            s.requests.to_string(),
            s.failures.to_string(),
            q.map_or("0".into(), |q| ms(q[0])),
            ms(l.mean),
            ms(l.min),
            ms(l.max),
            per_s(if s.requests > 0 {
                s.bytes_received as f64 / s.requests as f64
            } else {
                0.0
            }),
            per_s(s.rps),
            per_s(failures_per_s),
        ];
        match q {
            Some(q) if s.requests > 0 => r.extend(q.iter().map(|&v| ms(v))),
            _ => r.extend(PERCENTILES.iter().map(|_| "N/A".to_owned())),
        }
        r
    };
    let mut rows: Vec<(String, String, Vec<String>)> = a
        .endpoints
        .iter()
        .map(|s| {
            let (kind, name) = type_and_name(&s.name);
            let q = run
                .names
                .iter()
                .position(|n| n == &s.name)
                .and_then(|i| per_name.get(i))
                .and_then(Option::as_ref);
            (name.clone(), kind.clone(), row(kind, name, s, q))
        })
        .collect();
    // Locust sorts its entries by (name, method).
    rows.sort_by(|x, y| (&x.0, &x.1).cmp(&(&y.0, &y.1)));
    let mut out: Vec<Vec<String>> = rows.into_iter().map(|r| r.2).collect();
    out.push(row(
        String::new(),
        "Aggregated".into(),
        &a.total,
        total.as_ref(),
    ));
    Ok(out)
}

struct History {
    rows: Vec<Vec<String>>,
    approximate: bool,
}

/// One Aggregated row per whole second of the run: that second's requests and failures, and the
/// totals up to its end.
fn history_rows(run: &LoadedRun, a: &RunAnalysis) -> Result<History> {
    let ts = &a.timeseries;
    let approximate = run.approx.is_some();
    // Uncorrected latencies by the second of their intended start.
    let mut by_second: Vec<Vec<u32>> =
        vec![Vec::new(); ts.t_s.last().map_or(0, |&t| t as usize + 1)];
    if !approximate {
        for c in chunk_slices(&run.samples, "t_s", "latency_uncorrected_us")? {
            for (&t, &v) in c.groups.iter().zip(c.values) {
                if let Some(slot) = by_second.get_mut(t as usize) {
                    slot.push(v);
                }
            }
        }
    }
    let mut cumulative = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)
        .expect("static histogram bounds are valid");
    let mut moments = crate::approx::Moments::new();
    let (mut requests, mut failures) = (0u64, 0u64);
    let content = if a.total.requests > 0 {
        a.total.bytes_received as f64 / a.total.requests as f64
    } else {
        0.0
    };
    let start_s = a.info.started_unix_ns.div_euclid(1_000_000_000);
    let mut rows = Vec::with_capacity(ts.t_s.len());
    for (i, &t) in ts.t_s.iter().enumerate() {
        if let Some(values) = by_second.get(t as usize) {
            for &v in values {
                cumulative.saturating_record(u64::from(v).max(1));
                moments.record(v);
            }
        }
        requests += ts.requests[i];
        failures += ts.failures[i];
        let mut r = vec![
            // The end of the second, when Locust would have written the row.
            (start_s + i64::from(t) + 1).to_string(),
            ts.users[i].unwrap_or(0).to_string(),
            String::new(),
            "Aggregated".into(),
            per_s(ts.requests[i] as f64),
            per_s(ts.failures[i] as f64),
        ];
        let q = |q: f64| {
            let v = cumulative.value_at_quantile(q);
            ms(v.clamp(u64::from(moments.min), u64::from(moments.max)) as f64)
        };
        if approximate || moments.count == 0 {
            r.extend(PERCENTILES.iter().map(|_| "N/A".to_owned()));
        } else {
            r.extend(PERCENTILES.iter().map(|p| q(p.1)));
        }
        let have = !approximate && moments.count > 0;
        r.extend([
            requests.to_string(),
            failures.to_string(),
            if have { q(0.5) } else { "0".into() },
            if have { ms(moments.mean()) } else { "0".into() },
            if have {
                ms(f64::from(moments.min))
            } else {
                "0".into()
            },
            if have {
                ms(f64::from(moments.max))
            } else {
                "0".into()
            },
            per_s(content),
        ]);
        rows.push(r);
    }
    Ok(History { rows, approximate })
}

fn failure_rows(
    run: &LoadedRun,
    a: &RunAnalysis,
    type_and_name: &dyn Fn(&str) -> (String, String),
) -> Result<Vec<Vec<String>>> {
    use std::collections::BTreeMap;
    let f = &run.failures;
    let column = |name: &str| -> Result<Vec<u32>> {
        Ok(f.column(name)?
            .as_materialized_series()
            .u32()?
            .into_no_null_iter()
            .collect())
    };
    let (t_s, names, kinds, statuses, messages) = (
        column("t_s")?,
        column("name")?,
        column("kind")?,
        column("status")?,
        column("message")?,
    );
    // (method, name, error) → (occurrences, first second, last second)
    let mut groups: BTreeMap<(String, String, String), (u64, u32, u32)> = BTreeMap::new();
    for i in 0..t_s.len() {
        let full = run
            .names
            .get(names[i] as usize)
            .cloned()
            .unwrap_or_default();
        let (method, name) = type_and_name(&full);
        let message = run
            .messages
            .get(messages[i] as usize)
            .map_or("", String::as_str);
        let error = if message.is_empty() {
            let kind = formats::Outcome::name_of_code(kinds[i] as u8);
            if statuses[i] == 0 {
                kind
            } else {
                format!("{kind} (status {})", statuses[i])
            }
        } else {
            message.to_owned()
        };
        let e = groups
            .entry((name, method, error))
            .or_insert((0, t_s[i], t_s[i]));
        e.0 += 1;
        e.1 = e.1.min(t_s[i]);
        e.2 = e.2.max(t_s[i]);
    }
    let start_s = a.info.started_unix_ns.div_euclid(1_000_000_000);
    // Locust's format: whole seconds, `2026-03-02T09:00:00Z`.
    let utc = |t: u32| {
        let text = formats::run::format_utc((start_s + i64::from(t)).saturating_mul(1_000_000_000));
        match (text.find('.'), text.rfind('Z')) {
            (Some(dot), Some(z)) if dot < z => format!("{}Z", &text[..dot]),
            _ => text,
        }
    };
    Ok(groups
        .into_iter()
        .map(|((name, method, error), (n, first, last))| {
            vec![method, name, error, n.to_string(), utc(first), utc(last)]
        })
        .collect())
}

fn write_csv(path: &Path, header: &[String], rows: &[Vec<String>]) -> Result<PathBuf> {
    let io = |e| Error::io(path, e);
    let file = std::fs::File::create(path).map_err(io)?;
    let mut out = std::io::BufWriter::new(file);
    for r in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        let line: Vec<String> = r
            .iter()
            .map(|f| crate::export::csv_field(f).into_owned())
            .collect();
        // Python's csv module (which Locust writes with) ends rows with CRLF.
        write!(out, "{}\r\n", line.join(",")).map_err(io)?;
    }
    out.flush().map_err(io)?;
    Ok(path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_keep_microseconds_without_trailing_zeros() {
        assert_eq!(ms(12_500.0), "12.5");
        assert_eq!(ms(3_000.0), "3");
        assert_eq!(ms(42.0), "0.042");
        assert_eq!(ms(0.0), "0");
        assert_eq!(per_s(2.5), "2.5");
        assert_eq!(per_s(0.0), "0");
    }

    #[test]
    fn headers_are_locusts() {
        let h = stats_header();
        assert_eq!(h[..4], ["Type", "Name", "Request Count", "Failure Count"]);
        assert_eq!(h.last().unwrap(), "100%");
        assert_eq!(h.len(), 22);
        let h = history_header();
        assert_eq!(h[..2], ["Timestamp", "User Count"]);
        assert_eq!(h.len(), 24);
    }
}
