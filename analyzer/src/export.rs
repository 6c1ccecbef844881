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
use crate::shards::{RunInput, ShardedInput};

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

/// One log to export: the run label of its rows, its core number, its path, and how far its times
/// move onto the run's clock (µs; 0 but for the shards of a sharded run).
struct Source {
    label: String,
    core: u32,
    path: PathBuf,
    offset_us: u64,
}

/// The logs of one ordinary run directory.
fn run_sources(dir: &Path, run: &Run) -> Vec<Source> {
    let label = run
        .manifest
        .as_ref()
        .map(|m| m.run_id.to_string())
        .unwrap_or_else(|_| {
            dir.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
    run.logs
        .iter()
        .map(|(core, path)| Source {
            label: label.clone(),
            core: *core,
            path: path.clone(),
            offset_us: 0,
        })
        .collect()
}

/// The logs of a sharded run's directory (`runs/<run>/` holding `shard-*/`), as `report` merges
/// them: cores numbered on through the shards in index order, each shard's times moved onto the
/// common clock (its time zero minus the earliest shard's).
fn sharded_sources(input: &ShardedInput, outcome: &mut ExportOutcome) -> Vec<Source> {
    let base = input
        .shards
        .iter()
        .filter_map(crate::shards::time_zero)
        .min();
    let mut out = Vec::new();
    for shard in &input.shards {
        let offset_us = match (crate::shards::time_zero(shard), base) {
            (Some(z), Some(b)) => u64::try_from((z - b) / 1_000).unwrap_or(0),
            _ => 0,
        };
        match Run::open(&shard.dir) {
            Ok(run) => {
                for (_, path) in &run.logs {
                    out.push(Source {
                        label: input.run_id.clone(),
                        core: out.len() as u32,
                        path: path.clone(),
                        offset_us,
                    });
                }
            }
            Err(e) => outcome.warnings.push(format!("skipped: {e}")),
        }
    }
    for index in 0..input.count {
        if !input.shards.iter().any(|s| s.index == Some(index)) {
            outcome.warnings.push(format!(
                "{}: shard {index} of {} is missing: its samples are not in the export",
                input.dir.display(),
                input.count
            ));
        }
    }
    out
}

/// Whether `dir` is a sharded run's directory: no run of its own, but `shard-*` directories.
fn is_sharded_dir(dir: &Path) -> bool {
    !dir.join(formats::manifest::MANIFEST_FILE).exists()
        && !crate::shards::shard_subdirs(dir).is_empty()
}

/// Writes every sample of `runs` to `csv`. A sharded run's directory is exported as one run, as
/// `report` merges it: the run id in every row, cores numbered on through the shards in index order,
/// and times on the common clock.
pub fn export_csv(runs: &[PathBuf], csv: &Path) -> Result<ExportOutcome> {
    let file = std::fs::File::create(csv).map_err(|e| Error::io(csv, e))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let io = |e| Error::io(csv, e);
    writeln!(out, "{CSV_HEADER}").map_err(io)?;
    let mut outcome = ExportOutcome::default();
    let mut readable = 0;
    let mut reasons = Vec::new();
    for dir in runs {
        let sources = if is_sharded_dir(dir) {
            let mut sources = Vec::new();
            for input in crate::shards::resolve(std::slice::from_ref(dir))? {
                if let RunInput::Sharded(sharded) = input {
                    sources.extend(sharded_sources(&sharded, &mut outcome));
                }
            }
            sources
        } else {
            match Run::open(dir) {
                Ok(run) => run_sources(dir, &run),
                Err(e) => {
                    let reason = crate::load::open_failure(dir, &e);
                    outcome
                        .warnings
                        .push(format!("skipped {}: {reason}", dir.display()));
                    reasons.push(reason);
                    continue;
                }
            }
        };
        for source in &sources {
            let path = &source.path;
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
                        source.label,
                        source.core,
                        csv_field(&name),
                        s.intended_us + source.offset_us,
                        s.actual_us + source.offset_us,
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
pub(crate) fn csv_field(text: &str) -> std::borrow::Cow<'_, str> {
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
