//! The command line, declared with clap. `main.rs` parses it and dispatches.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The pipeline every Stampede tool's help ends with.
pub const PIPELINE: &str = "\
The pipeline:
  engine run profiles/demo.ron          # runs/<UTC-time>-demo/ (manifest.json, core-N.log)
  analyzer report runs/<id>             # runs/<id>/report.html, report.md, report.json
  analyzer report runs/2026-03-* --out cmp --baseline runs/<id>   # compare several runs

Try it without a load generator:
  analyzer synth --samples 1000000 --cores 2 --seed 1 --out /tmp/demo-run
  analyzer report /tmp/demo-run";

/// Turns Stampede runs into reports: summaries, exact percentiles, time series, failures, comparisons.
#[derive(Debug, Parser)]
#[command(name = "analyzer", version, after_help = PIPELINE)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a report of one run, or a comparison of several.
    #[command(after_help = "\
Examples:
  analyzer report runs/2026-03-02T09-00-00Z-checkout
  analyzer report runs/2026-03-* --out reports/march --format html,md
  analyzer report runs/a runs/b --baseline runs/a --skip 30s
  analyzer report runs/a --format pdf        # needs the Debian package chromium

Exit status: 0 on success (even when some logs were damaged: see the report's data-quality section),
2 when nothing given could be read, 1 on any other error.")]
    Report(ReportArgs),
    /// Write a realistic synthetic run (for trying the analyzer, tests and benchmarks).
    #[command(after_help = "\
Example:
  analyzer synth --samples 1000000 --cores 2 --seed 7 --out /tmp/run && analyzer report /tmp/run")]
    Synth(SynthArgs),
    /// Write every sample of one or more runs to CSV.
    #[command(after_help = "\
Example:
  analyzer export runs/2026-03-02T09-00-00Z-checkout --csv samples.csv")]
    Export(ExportArgs),
}

/// `analyzer report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Run directories (made by `engine run` or `analyzer synth`).
    #[arg(required = true, value_name = "RUN_DIR")]
    pub runs: Vec<PathBuf>,
    /// Where to write the reports [default: the run directory for one run, the current directory for several].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Formats to write, comma-separated: html, md, json, pdf.
    #[arg(
        long,
        value_name = "LIST",
        default_value = "html,md,json",
        value_delimiter = ','
    )]
    pub format: Vec<String>,
    /// Leave out a warm-up: samples meant to start within this long of the run's start (e.g. 10s, 500ms, 2m).
    #[arg(long, value_name = "DURATION", default_value = "0s")]
    pub skip: String,
    /// The run the others are compared with [default: the first].
    #[arg(long, value_name = "RUN_DIR")]
    pub baseline: Option<PathBuf>,
    /// Keep at most this many samples in memory for exact percentiles; past it, percentiles come from
    /// HdrHistograms (within 0.1%) [default: what half the available memory holds].
    #[arg(long, value_name = "SAMPLES")]
    pub exact_limit: Option<u64>,
}

/// `analyzer synth`.
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Samples over all cores.
    #[arg(long, default_value_t = 100_000)]
    pub samples: u64,
    /// Core logs to write.
    #[arg(long, default_value_t = 2)]
    pub cores: u32,
    /// Random seed: the same seed gives the same run.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The run's length in seconds.
    #[arg(long, default_value_t = 120)]
    pub duration: u32,
    /// The run directory to write (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// `analyzer export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Run directories.
    #[arg(required = true, value_name = "RUN_DIR")]
    pub runs: Vec<PathBuf>,
    /// The CSV file to write.
    #[arg(long, value_name = "FILE")]
    pub csv: PathBuf,
}
