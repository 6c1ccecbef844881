//! Sharded runs (issue 15): the shards of one test merged into one run, exactly; every shard judged;
//! what is missing, unfinished or mixed up said loudly or refused.
//!
//! One test binary with a module per concern: the merge (`merge`), each shard's health (`health`),
//! missing and unfinished shards (`partial`), what is refused (`resolve`), and `check` and `compare`
//! (`verdicts`).

#[path = "../util/mod.rs"]
mod util;

mod health;
mod merge;
mod partial;
mod resolve;
mod verdicts;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use analyzer::analysis::RunAnalysis;
use analyzer::report::analyze_runs;
use analyzer::stats::PERCENTILES;
use util::nearest_rank;

const PERMILLE: [u64; 6] = [500, 750, 900, 950, 990, 999];

fn analyze(dirs: &[PathBuf]) -> RunAnalysis {
    let (mut runs, _) = analyze_runs(dirs, std::time::Duration::ZERO, None).unwrap();
    assert_eq!(runs.len(), 1, "one merged run");
    runs.remove(0)
}

fn analyzer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_analyzer"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Exact nearest rank over the union of every shard's samples, total and per name, against sorting.
fn assert_exact_over_all_shards(a: &RunAnalysis, raw: &[(String, u64, u64, bool, u64)]) {
    assert_eq!(a.total.requests, raw.len() as u64);
    assert_eq!(a.total.failures, raw.iter().filter(|r| !r.3).count() as u64);
    let mut names: Vec<&str> = raw.iter().map(|r| r.0.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut groups: Vec<(&str, &analyzer::stats::Summary)> = vec![("total", &a.total)];
    for name in &names {
        groups.push((name, a.endpoints.iter().find(|e| e.name == *name).unwrap()));
    }
    for (label, summary) in groups {
        let mut lat: Vec<u64> = raw
            .iter()
            .filter(|r| label == "total" || r.0 == label)
            .map(|r| r.1)
            .collect();
        lat.sort_unstable();
        assert_eq!(summary.requests, lat.len() as u64, "{label}");
        assert_eq!(summary.latency.max, *lat.last().unwrap() as f64, "{label}");
        for (i, permille) in PERMILLE.iter().enumerate() {
            assert_eq!(
                summary.latency.percentiles[i],
                nearest_rank(&lat, *permille) as f64,
                "{label}: {}",
                PERCENTILES[i].0
            );
        }
    }
}
