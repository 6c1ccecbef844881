//! The analyzer's behaviour, feature by feature: exact percentiles and counts (`exact`), the report
//! formats and escaping of hostile text (`output`), damaged input (`damage`), the time series
//! (`series`), and the command line (`cli`). One test binary, so polars is linked once.

#[path = "../util/mod.rs"]
mod util;

mod cli;
mod damage;
mod exact;
mod output;
mod series;

use std::path::{Path, PathBuf};

use analyzer::analysis::RunAnalysis;
use analyzer::report::{Format, ReportOptions, analyze_runs};

fn analyze_one(dir: &Path) -> RunAnalysis {
    let (mut runs, _) = analyze_runs(&[dir.to_owned()], std::time::Duration::ZERO, None).unwrap();
    runs.remove(0)
}

fn all_formats(runs: Vec<PathBuf>, out: Option<PathBuf>) -> ReportOptions {
    ReportOptions {
        runs,
        out,
        formats: vec![Format::Html, Format::Markdown, Format::Json],
        skip: std::time::Duration::ZERO,
        baseline: None,
        exact_limit: None,
    }
}

/// Compares `text` with the committed snapshot, or rewrites it when UPDATE_SNAPSHOTS is set.
fn assert_snapshot(name: &str, text: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no snapshot {}; run with UPDATE_SNAPSHOTS=1 to create it",
            path.display()
        )
    });
    if expected != text {
        let line = expected
            .lines()
            .zip(text.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "{name} differs from its snapshot from line {}:\n  snapshot: {}\n  now:      {}\nrun with UPDATE_SNAPSHOTS=1 to accept",
            line + 1,
            expected.lines().nth(line).unwrap_or(""),
            text.lines().nth(line).unwrap_or("")
        );
    }
}
