//! `analyzer export RUN --hdr FILE`: a run's latencies as an HdrHistogram interval log, the format of
//! HdrHistogram's `HistogramLogWriter`, which its own tools (`HistogramLogProcessor`, HdrHistogram
//! plotters, the Python and Go ports' log readers) read.
//!
//! Choices, documented for users in docs/reports.md:
//!
//! - **Values** are latencies in whole **microseconds**, as recorded (HdrHistogram's Java tools assume
//!   nanoseconds by default: pass `-outputValueUnitRatio 1000` to HistogramLogProcessor for ms). The
//!   `Interval_Max` column is written in milliseconds (a max value divisor of 1000).
//! - **Intervals** are one second of intended start, from the run's time zero, which is the log's
//!   `StartTime` and `BaseTime`: a request belongs to the second it was meant to start in, as in the
//!   report's time series. Seconds without requests are left out.
//! - **Sharded runs** (a `runs/<run>/` directory holding `shard-*/`, or its shard directories given
//!   one by one) are exported as one run, as `report` merges them: the time zero is the earliest
//!   shard's, each shard's requests are placed on that common clock, and each second's histogram
//!   holds every shard's requests of that second. A missing or never-finalized shard is warned about.
//! - **Tags**: the untagged histograms are the corrected latency (from the intended start) of all
//!   requests, so tools that read untagged histograms by default show what users saw; `uncorrected`
//!   is the uncorrected latency of all requests. With `per_name`, `corrected:NAME` and
//!   `uncorrected:NAME` follow for each request name, the name percent-encoded (`%`, space, comma, CR
//!   and LF, which a tag may not hold).
//! - **Precision**: three significant decimal digits (every value within 0.1 %), auto-resizing, so a
//!   histogram covers whatever latencies occurred; each is written compressed (V2 with deflate,
//!   `HISTFAA…`), as `HistogramLogWriter` does.
//!
//! **Memory.** Histograms are kept for a range of seconds at a time, sized so that they fit in about
//! 256 MB; a run longer than that range is read once per range, so memory stays bounded however long
//! the run is.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use formats::{LogReader, Run, SampleColumns};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};

use crate::error::{Error, Result};
use crate::shards::{RunInput, ShardedInput};

/// Significant digits of every exported histogram.
pub const HDR_DIGITS: u8 = 3;

/// The tag of the uncorrected all-requests histograms.
pub const UNCORRECTED_TAG: &str = "uncorrected";

/// About this much memory goes to histograms at once; longer runs are read once per range of seconds.
const HISTOGRAM_BUDGET: usize = 256 << 20;
/// A working estimate of one auto-resizing histogram's size with `u64` counts for latencies up to a
/// few seconds (3 digits: 2048 sub-buckets, about twenty buckets of 1024 counts).
const HISTOGRAM_BYTES: usize = 160 << 10;

/// What `export --hdr` did.
#[derive(Debug, Clone, Default)]
pub struct HdrOutcome {
    /// Samples recorded.
    pub samples: u64,
    /// Intervals (one second, one tag) written.
    pub histograms: u64,
    /// Problems found while reading (damaged blocks, unreadable logs).
    pub warnings: Vec<String>,
    /// Passes over the logs (more than one for runs too long to hold at once).
    pub passes: u32,
}

/// `corrected:NAME` or `uncorrected:NAME`, the name percent-encoded so the tag is valid.
pub fn name_tag(corrected: bool, name: &str) -> String {
    let mut tag = String::from(if corrected {
        "corrected:"
    } else {
        "uncorrected:"
    });
    for c in name.chars() {
        match c {
            '%' => tag.push_str("%25"),
            ' ' => tag.push_str("%20"),
            ',' => tag.push_str("%2C"),
            '\r' => tag.push_str("%0D"),
            '\n' => tag.push_str("%0A"),
            c => tag.push(c),
        }
    }
    tag
}

/// One second's histograms: corrected and uncorrected over all requests, and per name when asked.
struct Second {
    all: [Histogram<u64>; 2],
    by_name: BTreeMap<String, [Histogram<u64>; 2]>,
}

fn histogram() -> Histogram<u64> {
    Histogram::new(HDR_DIGITS).expect("3 significant digits are valid")
}

fn record(h: &mut Histogram<u64>, v: u64) {
    // An auto-resizing histogram grows to take the value (`saturating_record` would clamp it to the
    // current range instead); a measured 0 µs is recorded as 1. Only a value beyond any histogram's
    // range, which a u32 latency plus a u64 lag cannot reach in practice, is clamped.
    if h.record(v.max(1)).is_err() {
        h.saturating_record(v);
    }
}

/// The logs of one run to export: each with where its time zero lies on the run's clock (µs after the
/// earliest shard's; 0 for an ordinary run), the run's time zero, and what names it.
struct Sources {
    logs: Vec<(PathBuf, Vec<u8>, u64)>,
    start_ns: i64,
    run_id: String,
    label: String,
}

/// Writes the interval log of the run in `dir` to `file`: an ordinary run, or a sharded run's
/// directory (its shards merged, as `report` merges them).
pub fn export_hdr(dir: &Path, file: &Path, per_name: bool) -> Result<HdrOutcome> {
    let inputs = crate::shards::resolve(&[dir.to_owned()])?;
    match inputs.as_slice() {
        [input] => export_hdr_input(input, file, per_name),
        _ => export_hdr_input(&RunInput::Single(dir.to_owned()), file, per_name),
    }
}

/// Writes the interval log of one run as [`crate::shards::resolve`] found it. A sharded run's samples
/// are placed on the common clock (each shard's intended starts moved by its time zero's distance from
/// the earliest shard's), so each second's histogram holds every shard's requests of that second.
pub fn export_hdr_input(input: &RunInput, file: &Path, per_name: bool) -> Result<HdrOutcome> {
    let mut outcome = HdrOutcome::default();
    let sources = match input {
        RunInput::Single(dir) => single_sources(dir, &mut outcome.warnings)?,
        RunInput::Sharded(sharded) => sharded_sources(sharded, &mut outcome.warnings)?,
    };
    let start = if sources.start_ns >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_nanos(sources.start_ns as u64)
    } else {
        SystemTime::UNIX_EPOCH
    };

    let f = std::fs::File::create(file).map_err(|e| Error::io(file, e))?;
    let mut out = BufWriter::with_capacity(1 << 20, f);
    let mut serializer = V2DeflateSerializer::new();
    let mut writer = IntervalLogWriterBuilder::new()
        .add_comment(&format!(
            "Stampede run {} ({}): latency in microseconds, one-second intervals of intended start",
            sources.run_id, sources.label
        ))
        .add_comment(
            "Untagged: corrected latency (from the intended start) of all requests; tag \
             \"uncorrected\": from the actual start; \"corrected:NAME\" / \"uncorrected:NAME\": per \
             request name, percent-encoded. Interval_Max is in milliseconds.",
        )
        .with_start_time(start)
        .with_base_time(start)
        .with_max_value_divisor(1000.0)
        .begin_log_with(&mut out, &mut serializer)
        .map_err(|e| Error::io(file, e))?;
    writer
        .write_comment("\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"")
        .map_err(|e| Error::io(file, e))?;

    let per_second = 2 * if per_name { 8 } else { 1 };
    let range = (HISTOGRAM_BUDGET / (per_second * HISTOGRAM_BYTES)).max(60) as u64;
    let mut from = 0u64;
    let mut block = SampleColumns::default();
    loop {
        outcome.passes += 1;
        let to = from + range;
        let mut seconds: BTreeMap<u64, Second> = BTreeMap::new();
        let mut beyond = false;
        for (path, data, offset_us) in &sources.logs {
            let Ok(mut reader) = LogReader::new(data) else {
                continue;
            };
            while reader.next_samples(&mut block).is_some() {
                for i in 0..block.len() {
                    let t = (block.intended_us[i] + offset_us) / 1_000_000;
                    if t < from {
                        continue;
                    }
                    if t >= to {
                        beyond = true;
                        continue;
                    }
                    let Some(s) = block.get(i) else { break };
                    let corrected = s.corrected_latency_us();
                    let uncorrected = u64::from(s.latency_us);
                    let second = seconds.entry(t).or_insert_with(|| Second {
                        all: [histogram(), histogram()],
                        by_name: BTreeMap::new(),
                    });
                    record(&mut second.all[0], corrected);
                    record(&mut second.all[1], uncorrected);
                    if per_name {
                        let name = reader.names().display(s.name.0);
                        let h = second
                            .by_name
                            .entry(name)
                            .or_insert_with(|| [histogram(), histogram()]);
                        record(&mut h[0], corrected);
                        record(&mut h[1], uncorrected);
                    }
                    outcome.samples += 1;
                }
                block.clear();
            }
            if outcome.passes == 1 {
                for p in reader.problems() {
                    outcome.warnings.push(format!("{}: {p}", path.display()));
                }
            }
        }
        for (t, second) in &seconds {
            let at = Duration::from_secs(*t);
            let length = Duration::from_secs(1);
            let mut write = |h: &Histogram<u64>, tag: Option<Tag<'_>>| {
                writer
                    .write_histogram(h, at, length, tag)
                    .map_err(|e| Error::io(file, std::io::Error::other(e.to_string())))
            };
            write(&second.all[0], None)?;
            write(&second.all[1], Tag::new(UNCORRECTED_TAG))?;
            outcome.histograms += 2;
            for (name, [c, u]) in &second.by_name {
                let (tc, tu) = (name_tag(true, name), name_tag(false, name));
                write(c, Tag::new(&tc))?;
                write(u, Tag::new(&tu))?;
                outcome.histograms += 2;
            }
        }
        if !beyond {
            break;
        }
        from = to;
    }
    drop(writer);
    out.flush().map_err(|e| Error::io(file, e))?;
    Ok(outcome)
}

/// Reads a run directory's logs; an unreadable log becomes a warning.
fn read_logs(
    run: &Run,
    offset_us: u64,
    logs: &mut Vec<(PathBuf, Vec<u8>, u64)>,
    warnings: &mut Vec<String>,
) {
    for (_, path) in &run.logs {
        match std::fs::read(path) {
            Ok(data) => match LogReader::new(&data) {
                Ok(_) => logs.push((path.clone(), data, offset_us)),
                Err(e) => warnings.push(format!("{}: {e}", path.display())),
            },
            Err(e) => warnings.push(format!("{}: {e}", path.display())),
        }
    }
}

fn nothing_readable(dir: &Path, warnings: &[String], none: &str) -> Error {
    Error::NothingReadable {
        paths: vec![dir.display().to_string()],
        reasons: if warnings.is_empty() {
            vec![none.into()]
        } else {
            warnings.to_vec()
        },
    }
}

fn dir_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn single_sources(dir: &Path, warnings: &mut Vec<String>) -> Result<Sources> {
    let run = Run::open(dir).map_err(|e| Error::NothingReadable {
        paths: vec![dir.display().to_string()],
        reasons: vec![crate::load::open_failure(dir, &e)],
    })?;
    let mut logs = Vec::new();
    read_logs(&run, 0, &mut logs, warnings);
    if logs.is_empty() {
        return Err(nothing_readable(
            dir,
            warnings,
            "the run has no core-N.log files",
        ));
    }
    let start_ns = match &run.manifest {
        Ok(m) => m.started_unix_ns,
        Err(_) => LogReader::new(&logs[0].1)
            .map(|r| r.header().wall_start_unix_ns)
            .unwrap_or(0),
    };
    Ok(Sources {
        logs,
        start_ns,
        run_id: run
            .manifest
            .as_ref()
            .map(|m| m.run_id.to_string())
            .unwrap_or_default(),
        label: dir_name(dir),
    })
}

/// Every shard's logs, each moved onto the common clock. A shard that is missing, or whose engine
/// never finalized it, is said in a warning with its share of the load: the histograms hold only what
/// was recorded.
fn sharded_sources(input: &ShardedInput, warnings: &mut Vec<String>) -> Result<Sources> {
    let base = input
        .shards
        .iter()
        .filter_map(crate::shards::time_zero)
        .min();
    let share = |i: u32| {
        input
            .shares
            .get(i as usize)
            .map(|s| format!(", {} of the load", crate::shards::share_pct(*s)))
            .unwrap_or_default()
    };
    let mut logs = Vec::new();
    for shard in &input.shards {
        let offset_us = match (crate::shards::time_zero(shard), base) {
            (Some(z), Some(b)) => u64::try_from((z - b) / 1_000).unwrap_or(0),
            _ => 0,
        };
        if let Ok(m) = &shard.manifest
            && m.state == formats::RunState::Running
        {
            warnings.push(format!(
                "{}: shard {} was never finalized (its manifest still says \"running\"){}: its logs end \
                 wherever its engine stopped, and their complete blocks are exported",
                shard.dir.display(),
                shard.index.map_or_else(|| "?".to_owned(), |i| i.to_string()),
                shard.index.map(share).unwrap_or_default()
            ));
        }
        match Run::open(&shard.dir) {
            Ok(run) => read_logs(&run, offset_us, &mut logs, warnings),
            Err(e) => warnings.push(format!("{}: {e}", shard.dir.display())),
        }
    }
    for index in 0..input.count {
        if !input.shards.iter().any(|s| s.index == Some(index)) {
            warnings.push(format!(
                "{}: shard {index} of {} is missing{}: its requests are in no histogram",
                input.dir.display(),
                input.count,
                share(index)
            ));
        }
    }
    if logs.is_empty() {
        return Err(nothing_readable(
            &input.dir,
            warnings,
            "no shard has core-N.log files",
        ));
    }
    Ok(Sources {
        logs,
        start_ns: base.unwrap_or(0),
        run_id: input.run_id.clone(),
        label: input.label.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_tags_are_valid_and_reversible() {
        for name in ["GET /", "a,b", "100%", "x\r\ny", "plain"] {
            let tag = name_tag(true, name);
            assert!(Tag::new(&tag).is_some(), "{tag}");
            let decoded = tag
                .strip_prefix("corrected:")
                .unwrap()
                .replace("%20", " ")
                .replace("%2C", ",")
                .replace("%0D", "\r")
                .replace("%0A", "\n")
                .replace("%25", "%");
            assert_eq!(decoded, name);
        }
        assert_eq!(name_tag(false, "GET /a b"), "uncorrected:GET%20/a%20b");
    }
}
