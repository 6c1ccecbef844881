//! `analyzer export`: every sample of one or more runs as CSV, one row per sample, for people who
//! analyse elsewhere.
//!
//! The export streams: each log is decoded one samples block at a time and written straight out, so it
//! needs the memory of one block however large the run. (Building a polars frame first would need the
//! whole run in memory for no gain; Parquet output would add a large polars feature to the build and is
//! left out for now.)

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use formats::{LogReader, Outcome, Run, SampleColumns};

use crate::error::{Error, Result};

/// The CSV header line.
pub const CSV_HEADER: &str = "run,core,name,intended_us,actual_us,latency_us,corrected_latency_us,ttfb_us,connect_us,status,outcome,message,bytes_sent,bytes_received,user";

/// What `export` did.
#[derive(Debug, Clone, Default)]
pub struct ExportOutcome {
    /// Rows written.
    pub rows: u64,
    /// Problems found while reading (damaged blocks, unreadable logs).
    pub warnings: Vec<String>,
}

/// Writes every sample of `runs` to `csv`.
pub fn export_csv(runs: &[PathBuf], csv: &Path) -> Result<ExportOutcome> {
    let file = std::fs::File::create(csv).map_err(|e| Error::io(csv, e))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let io = |e| Error::io(csv, e);
    writeln!(out, "{CSV_HEADER}").map_err(io)?;
    let mut outcome = ExportOutcome::default();
    let mut readable = 0;
    let mut reasons = Vec::new();
    for dir in runs {
        let run = match Run::open(dir) {
            Ok(r) => r,
            Err(e) => {
                outcome.warnings.push(format!("skipped: {e}"));
                reasons.push(e.to_string());
                continue;
            }
        };
        let label = run
            .manifest
            .as_ref()
            .map(|m| m.run_id.to_string())
            .unwrap_or_else(|_| {
                dir.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            });
        for (core, path) in &run.logs {
            let data = match std::fs::read(path) {
                Ok(d) => d,
                Err(e) => {
                    outcome.warnings.push(format!("{}: {e}", path.display()));
                    continue;
                }
            };
            let mut reader = match LogReader::new(&data) {
                Ok(r) => r,
                Err(e) => {
                    outcome.warnings.push(format!("{}: {e}", path.display()));
                    continue;
                }
            };
            readable += 1;
            let mut block = SampleColumns::default();
            while reader.next_samples(&mut block).is_some() {
                for i in 0..block.len() {
                    let Some(s) = block.get(i) else { break };
                    let name = reader.names().display(s.name.0);
                    let message = s
                        .message
                        .and_then(|m| reader.messages().get(m.get()))
                        .unwrap_or("");
                    writeln!(
                        out,
                        "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                        label,
                        core,
                        csv_field(&name),
                        s.intended_us,
                        s.actual_us,
                        s.latency_us,
                        s.corrected_latency_us(),
                        s.ttfb_us,
                        s.connect_us,
                        s.status,
                        Outcome::name_of_code(block.outcome[i]),
                        csv_field(message),
                        s.bytes_sent,
                        s.bytes_received,
                        s.user
                    )
                    .map_err(io)?;
                    outcome.rows += 1;
                }
                block.clear();
            }
            for p in reader.problems() {
                outcome.warnings.push(format!("{}: {p}", path.display()));
            }
        }
    }
    out.flush().map_err(io)?;
    if readable == 0 {
        return Err(Error::NothingReadable {
            paths: runs.iter().map(|d| d.display().to_string()).collect(),
            reasons,
        });
    }
    Ok(outcome)
}

/// Quotes a field when it holds a comma, quote or line break (RFC 4180).
fn csv_field(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\"")).into()
    } else {
        text.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("GET /"), "GET /");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
