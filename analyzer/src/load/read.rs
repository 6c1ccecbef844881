//! Streaming core logs into compact per-core columns, on a pool of reader threads.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use formats::{IntervalStats, LogReader, SampleColumns};

use super::memory::{MemoryPlan, available_memory};
use super::{LoadOptions, QualityNote, Severity};
use crate::approx::Aggregates;

/// What one core's log yielded, before names are merged across cores.
#[derive(Debug, Default)]
pub(crate) struct CoreColumns {
    pub(super) core: u32,
    pub(super) t_s: Vec<u32>,
    pub(super) name: Vec<u32>,
    pub(super) latency: Vec<u32>,
    pub(super) latency_uncorrected: Vec<u32>,
    pub(super) ttfb: Vec<u32>,
    pub(super) phases: crate::phases::PhaseColumns,
    pub(super) f_t_s: Vec<u32>,
    pub(super) f_name: Vec<u32>,
    pub(super) f_kind: Vec<u32>,
    pub(super) f_status: Vec<u32>,
    pub(super) f_message: Vec<u32>,
    pub(super) bytes: Vec<(u64, u64)>,
    pub(super) names: Vec<String>,
    pub(super) messages: Vec<String>,
    pub(super) intervals: Vec<IntervalStats>,
    pub(super) load_changes: Vec<formats::LoadChange>,
    pub(super) approx: Option<Aggregates>,
    pub(super) rows: u64,
    pub(super) first_us: u64,
    pub(super) last_end_us: u64,
    pub(super) skipped: u64,
    pub(super) header: Option<formats::LogHeader>,
    /// Whether the log ends with its end-of-file block (the engine finished writing it).
    pub(super) finished: bool,
    pub(super) notes: Vec<QualityNote>,
    /// Per-task tallies while reading, then with the log's task table attached.
    pub(super) tasks: crate::tasks::CoreTasks,
    pub(super) task_tallies: Vec<crate::tasks::TaskAcc>,
}

/// One log to read, and where its samples go in the run.
#[derive(Debug, Clone)]
pub(crate) struct LogSpec {
    /// The log's core in the run: unique within it (a sharded run numbers its shards' cores on).
    pub core: u32,
    /// The core its header should name (its core within its own run directory).
    pub header_core: u32,
    /// The file.
    pub path: PathBuf,
    /// How data-quality notes name it (`core-0.log`, or `shard-03/core-0.log` in a sharded run).
    pub label: String,
    /// Added to every time in the log (µs): where its time zero lies on the run's common clock.
    pub offset_us: u64,
}

/// What one log contributed, for per-shard figures.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LogTally {
    /// Samples kept (after the warm-up).
    pub rows: u64,
    /// Failed samples among them.
    pub failures: u64,
    /// The first kept intended start and the last completion, µs on the run's clock.
    pub window_us: Option<(u64, u64)>,
}

/// Reads every log within the memory plan; returns each log's columns (in core order) and the exact
/// limit that applied.
pub(crate) fn read_logs(logs: &[LogSpec], options: LoadOptions) -> (Vec<CoreColumns>, u64) {
    let sizes: Vec<u64> = logs
        .iter()
        .map(|l| std::fs::metadata(&l.path).map_or(0, |m| m.len()))
        .collect();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let plan = MemoryPlan::new(&sizes, available_memory().unwrap_or(8 << 30), cpus);
    let limit = options.exact_limit.unwrap_or(plan.exact_limit);
    let clock = crate::timing::Clock::start();
    let cores = read_cores(logs, options.skip_us, limit, plan.readers);
    clock.lap("read logs");
    (cores, limit)
}

/// Reads every log, `readers` at a time (a pool, not a thread per log), each into its own columns.
fn read_cores(logs: &[LogSpec], skip_us: u64, limit: u64, readers: usize) -> Vec<CoreColumns> {
    let kept = AtomicU64::new(0);
    let workers = readers.min(logs.len()).max(1);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<CoreColumns>> = Mutex::new(Vec::with_capacity(logs.len()));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(spec) = logs.get(i) else {
                        break;
                    };
                    let columns = read_core(spec, skip_us, &kept, limit);
                    results
                        .lock()
                        .expect("a reader thread panicked")
                        .push(columns);
                }
            });
        }
    });
    let mut cores = results.into_inner().expect("a reader thread panicked");
    cores.sort_by_key(|c| c.core);
    cores
}

impl CoreColumns {
    /// What the log contributed.
    pub(crate) fn tally(&self) -> LogTally {
        LogTally {
            rows: self.rows,
            failures: self.f_t_s.len() as u64,
            window_us: (self.rows > 0).then_some((self.first_us, self.last_end_us)),
        }
    }

    /// Its data-quality notes as `file: message`.
    pub(crate) fn note_texts(&self) -> Vec<String> {
        self.notes
            .iter()
            .map(|n| format!("{}: {}", n.file, n.message))
            .collect()
    }

    /// The log's core in the run.
    pub(crate) fn core(&self) -> u32 {
        self.core
    }

    /// The header's wall-clock start, ns since the Unix epoch, when the header was readable.
    pub(crate) fn wall_start_unix_ns(&self) -> Option<i64> {
        self.header.map(|h| h.wall_start_unix_ns)
    }

    /// Moves the exact columns into aggregates and frees them.
    pub(super) fn switch_to_approx(&mut self) {
        let mut agg = Aggregates::default();
        for i in 0..self.t_s.len() {
            agg.record(
                self.name[i],
                self.t_s[i],
                self.latency[i],
                self.latency_uncorrected[i],
            );
        }
        self.phases
            .switch_to_approx(&self.name, &self.latency_uncorrected, &self.ttfb);
        self.tasks.switch_to_approx();
        for t in &mut self.task_tallies {
            t.switch_to_approx();
        }
        self.t_s = Vec::new();
        self.name = Vec::new();
        self.latency = Vec::new();
        self.latency_uncorrected = Vec::new();
        self.ttfb = Vec::new();
        self.approx = Some(agg);
    }
}

pub(super) fn file_label(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Reads one log. Samples go to the exact columns while the run-wide count `kept` stays within
/// `limit`, and to aggregates after that. Times are moved onto the run's clock by `spec.offset_us`.
fn read_core(spec: &LogSpec, skip_us: u64, kept: &AtomicU64, limit: u64) -> CoreColumns {
    let (core, path, offset) = (spec.header_core, spec.path.as_path(), spec.offset_us);
    let mut out = CoreColumns {
        core: spec.core,
        first_us: u64::MAX,
        ..CoreColumns::default()
    };
    let file = spec.label.clone();
    let warn = |out: &mut CoreColumns, message: String| {
        out.notes.push(QualityNote {
            severity: Severity::Warning,
            file: file.clone(),
            message,
        });
    };
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) => {
            warn(
                &mut out,
                format!("cannot be read ({e}); its samples are missing from this report"),
            );
            return out;
        }
    };
    let mut reader = match LogReader::new(&data) {
        Ok(r) => r,
        Err(e) => {
            warn(
                &mut out,
                format!("unreadable: {e}; its samples are missing from this report"),
            );
            return out;
        }
    };
    out.header = Some(*reader.header());
    if reader.header().core != core {
        warn(
            &mut out,
            format!(
                "its header says core {}, but the run lists it as core {core}",
                reader.header().core
            ),
        );
    }
    // A guess at the sample count from the file size (about 9 bytes a sample) avoids most regrowth of
    // the columns, which would otherwise briefly need twice their memory.
    let guess = (data.len() / 9).min(usize::try_from(limit).unwrap_or(usize::MAX));
    out.t_s.reserve(guess);
    out.name.reserve(guess);
    out.latency.reserve(guess);
    out.latency_uncorrected.reserve(guess);
    out.ttfb.reserve(guess);
    let mut block = SampleColumns::default();
    let mut counts_by_name: Vec<(u64, u64)> = Vec::new();
    let mut used_names: Vec<bool> = Vec::new();
    while let Some(n) = reader.next_samples(&mut block) {
        if out.approx.is_none() {
            // A new connection's phase entries cost about what a sample does.
            let n = n as u64 + block.connect_us.iter().filter(|&&c| c > 0).count() as u64;
            if kept.load(Ordering::Relaxed) + n > limit {
                out.switch_to_approx();
            } else {
                kept.fetch_add(n, Ordering::Relaxed);
            }
        }
        for i in 0..block.len() {
            let intended = block.intended_us[i].saturating_add(offset);
            if intended < skip_us {
                out.skipped += 1;
                continue;
            }
            let actual = block.actual_us[i].saturating_add(offset);
            let latency_u = block.latency_us[i];
            let corrected = actual
                .saturating_sub(intended)
                .saturating_add(u64::from(latency_u));
            let corrected = u32::try_from(corrected).unwrap_or(u32::MAX);
            let t = u32::try_from(intended / 1_000_000).unwrap_or(u32::MAX);
            let name = block.name[i];
            let ok = block.outcome[i] == 0;
            out.rows += 1;
            out.tasks
                .record(block.task[i], block.iteration_start[i] != 0, ok, corrected);
            let phases = crate::phases::SamplePhases {
                latency: latency_u,
                connect: block.connect_us[i],
                tls: block.tls_us[i],
                ttfb: block.ttfb_us[i],
            };
            if let Some(agg) = &mut out.approx {
                agg.record(name, t, corrected, latency_u);
                out.phases.record_approx(name, phases);
            } else {
                out.t_s.push(t);
                out.name.push(name);
                out.latency.push(corrected);
                out.latency_uncorrected.push(latency_u);
                out.ttfb.push(out.phases.record_exact(name, phases));
            }
            out.first_us = out.first_us.min(intended);
            out.last_end_us = out
                .last_end_us
                .max(actual.saturating_add(u64::from(latency_u)));
            let n = name as usize;
            if n >= counts_by_name.len() {
                counts_by_name.resize(n + 1, (0, 0));
                used_names.resize(n + 1, false);
            }
            used_names[n] = true;
            counts_by_name[n].0 += u64::from(block.bytes_sent[i]);
            counts_by_name[n].1 += u64::from(block.bytes_received[i]);
            if !ok {
                out.f_t_s.push(t);
                out.f_name.push(name);
                out.f_kind.push(u32::from(block.outcome[i]));
                out.f_status.push(u32::from(block.status[i]));
                out.f_message.push(block.message[i]);
            }
        }
        block.clear();
    }
    out.bytes = counts_by_name;
    out.task_tallies = std::mem::take(&mut out.tasks).finish(reader.tasks());
    let undefined: Vec<String> = (0..used_names.len() as u32)
        .filter(|&id| used_names[id as usize] && reader.names().get(id).is_none())
        .map(|id| format!("#{id}"))
        .collect();
    if !undefined.is_empty() {
        warn(
            &mut out,
            format!(
                "samples use request names that no table block defines (it was damaged); they are shown as {}",
                undefined.join(", ")
            ),
        );
    }
    out.intervals = reader
        .intervals()
        .iter()
        .map(|r| IntervalStats {
            start_us: r.start_us.saturating_add(offset),
            ..*r
        })
        .collect();
    out.load_changes = reader
        .load_changes()
        .iter()
        .map(|c| formats::LoadChange {
            at_us: c.at_us.saturating_add(offset),
            ..c.clone()
        })
        .collect();
    let bound = |t: &formats::Table| t.id_bound();
    out.names = (0..bound(reader.names()) as u32)
        .map(|id| reader.names().display(id))
        .collect();
    out.messages = (0..bound(reader.messages()) as u32)
        .map(|id| reader.messages().get(id).unwrap_or("").to_owned())
        .collect();
    for problem in reader.problems() {
        let severity = if problem.is_tail_only() {
            Severity::Info
        } else {
            Severity::Warning
        };
        let message = match problem.kind {
            formats::DecodeErrorKind::MissingEnd if reader.end().is_none() => {
                "has no end-of-file block: the engine did not finish this log (killed, crashed, or still \
                 running); every complete block up to where it stopped was read"
                    .to_owned()
            }
            _ => problem.to_string(),
        };
        out.notes.push(QualityNote {
            severity,
            file: file.clone(),
            message,
        });
    }
    out.finished = reader.end().is_some();
    if let Some(end) = reader.end()
        && end.samples > reader.samples_read()
    {
        let lost = end.samples - reader.samples_read();
        warn(
            &mut out,
            format!(
                "{lost} of its {} samples were in damaged blocks and are missing from every figure",
                end.samples
            ),
        );
    }
    out
}
