//! `analyzer report`: load each run, analyze it, and write the requested formats.
//!
//! Runs are loaded one after another and each run's frames are dropped once it is analyzed, so a
//! comparison of several large runs needs the memory of the largest, not of all of them.

use std::path::{Path, PathBuf};

use crate::analysis::{RunAnalysis, analyze};
use crate::error::{Error, Result};
use crate::load::{LoadOptions, Severity, load_input};
use crate::render;
use crate::view;

/// An output format of `analyzer report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Format {
    /// `report.html`.
    Html,
    /// `report.md`.
    Markdown,
    /// `report.json`.
    Json,
    /// `report.pdf`, printed from the HTML by headless Chromium.
    Pdf,
}

impl std::str::FromStr for Format {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "html" => Ok(Format::Html),
            "md" | "markdown" => Ok(Format::Markdown),
            "json" => Ok(Format::Json),
            "pdf" => Ok(Format::Pdf),
            other => Err(Error::Usage(format!(
                "unknown format {other:?}: use html, md, json or pdf"
            ))),
        }
    }
}

/// What to report on and where.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// Run directories, in the order their columns appear.
    pub runs: Vec<PathBuf>,
    /// Where to write; defaults to the run directory (one run) or the current directory (several).
    pub out: Option<PathBuf>,
    /// Formats to write.
    pub formats: Vec<Format>,
    /// Warm-up to leave out, from each run's time zero.
    pub skip: std::time::Duration,
    /// The run the others are compared with; defaults to the first.
    pub baseline: Option<PathBuf>,
    /// Samples kept exactly before switching to histograms; `None` decides from available memory.
    pub exact_limit: Option<u64>,
}

/// What `report` did.
#[derive(Debug, Clone, Default)]
pub struct ReportOutcome {
    /// Files written, in format order.
    pub written: Vec<PathBuf>,
    /// The HTML report, when written.
    pub html: Option<PathBuf>,
    /// Problems worth printing on stderr (unreadable runs, damaged logs).
    pub warnings: Vec<String>,
}

/// Loads and analyzes every readable run; the shards of a sharded run (its directory, or its shard
/// directories given one by one) are merged into one run first. Unreadable runs become warnings; none
/// readable is an error, and so are shards that cannot be merged.
pub fn analyze_runs(
    dirs: &[PathBuf],
    skip: std::time::Duration,
    exact_limit: Option<u64>,
) -> Result<(Vec<RunAnalysis>, Vec<String>)> {
    let options = LoadOptions {
        skip_us: u64::try_from(skip.as_micros()).unwrap_or(u64::MAX),
        exact_limit,
    };
    let mut runs = Vec::new();
    let mut warnings = Vec::new();
    let mut reasons = Vec::new();
    for input in crate::shards::resolve(dirs)? {
        let dir = input.dir();
        let clock = crate::timing::Clock::start();
        let loaded = load_input(&input, options);
        clock.lap("load");
        match loaded {
            Ok(loaded) => {
                for note in loaded
                    .notes
                    .iter()
                    .filter(|n| n.severity == Severity::Warning)
                {
                    warnings.push(format!(
                        "{}: {}: {}",
                        dir.display(),
                        note.file,
                        note.message
                    ));
                }
                runs.push(analyze(&loaded, skip.as_secs_f64())?);
            }
            Err(Error::NothingReadable { reasons: r, .. }) => {
                warnings.push(format!("skipped {}: {}", dir.display(), r.join("; ")));
                reasons.extend(r);
            }
            Err(e) => return Err(e),
        }
    }
    if runs.is_empty() {
        return Err(Error::NothingReadable {
            paths: dirs.iter().map(|d| d.display().to_string()).collect(),
            reasons,
        });
    }
    Ok((runs, warnings))
}

/// Runs `analyzer report`.
pub fn report(options: &ReportOptions) -> Result<ReportOutcome> {
    if options.runs.is_empty() {
        return Err(Error::Usage("give at least one run directory".into()));
    }
    let mut dirs = options.runs.clone();
    // The baseline may be one of the runs or an extra directory, which then comes first.
    let baseline_dir = options.baseline.clone();
    if let Some(b) = &baseline_dir
        && !dirs.iter().any(|d| same_dir(d, b))
    {
        dirs.insert(0, b.clone());
    }
    let (runs, warnings) = analyze_runs(&dirs, options.skip, options.exact_limit)?;
    let baseline = baseline_dir
        .as_ref()
        .and_then(|b| runs.iter().position(|r| same_dir(&r.info.dir, b)))
        .unwrap_or(0);
    let out_dir = match (&options.out, runs.len()) {
        (Some(out), _) => out.clone(),
        (None, 1) => runs[0].info.dir.clone(),
        (None, _) => PathBuf::from("."),
    };
    std::fs::create_dir_all(&out_dir).map_err(|e| Error::io(&out_dir, e))?;
    let mut formats = options.formats.clone();
    formats.sort();
    formats.dedup();
    let mut outcome = ReportOutcome {
        warnings,
        ..ReportOutcome::default()
    };
    let clock = crate::timing::Clock::start();
    let view = view::build(&runs, baseline)?;
    clock.lap("view and charts");
    let mut html_text = None;
    for format in formats {
        let (name, text) = match format {
            Format::Html => (
                "report.html",
                html_text
                    .get_or_insert(render::html::render(&view)?)
                    .clone(),
            ),
            Format::Markdown => ("report.md", render::markdown::render(&view)?),
            Format::Json => (
                "report.json",
                render::json::render(&runs, (runs.len() > 1).then_some(baseline)),
            ),
            Format::Pdf => {
                let html = match &html_text {
                    Some(h) => h.clone(),
                    None => render::html::render(&view)?,
                };
                let pdf = out_dir.join("report.pdf");
                crate::pdf::print(&html, &pdf)?;
                outcome.written.push(pdf);
                continue;
            }
        };
        let path = out_dir.join(name);
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
        if format == Format::Html {
            outcome.html = Some(path.clone());
        }
        outcome.written.push(path);
    }
    Ok(outcome)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}
