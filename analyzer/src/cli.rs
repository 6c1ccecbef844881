//! The command line, declared with clap. `main.rs` parses it and dispatches.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The pipeline every Stampede tool's help ends with.
pub const PIPELINE: &str = "\
The pipeline:
  engine run profiles/demo.ron          # runs/<UTC-time>-demo/ (manifest.json, core-N.log)
  analyzer report runs/<id>             # runs/<id>/report.html, report.md, report.json
  analyzer report runs/2026-03-* --out cmp --baseline runs/<id>   # compare several runs
  analyzer check runs/<id> --slo slo.ron                 # CI: thresholds pass or fail (exit 0/1)
  analyzer compare runs/<main> runs/<id>                 # CI: regression beyond noise? (exit 0/1)

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
  analyzer report runs/2026-03-02T09-00-00Z-big            # a sharded run: shard-*/ merged into one
  analyzer report runs/2026-03-02T09-00-00Z-big/shard-*    # the same, its shards given one by one

The shards of one test (engines run with --shard I/N, one run directory each) are merged into one
run: counts summed, percentiles over all of their samples, time series on the common clock. Missing
or killed shards are named with their share of the load.

Exit status: 0 on success (even when some logs were damaged: see the report's data-quality section),
2 when nothing given could be read, shards cannot be merged (two runs, a shard twice, different
profiles) or an option is invalid, 1 on any other error.")]
    Report(ReportArgs),
    /// Write a realistic synthetic run (for trying the analyzer, tests and benchmarks).
    #[command(after_help = "\
Examples:
  analyzer synth --samples 1000000 --cores 2 --seed 7 --out /tmp/run && analyzer report /tmp/run
  analyzer synth --seed 8 --latency-scale 1.2 --out /tmp/slower   # every latency 20 % higher
  analyzer compare /tmp/run /tmp/slower                           # ... P50 higher, P99 undecided
  analyzer synth --shards 4 --shard-offsets-ms 0,2,3,40 --lagging-shard 2 --out /tmp/sharded
  analyzer report /tmp/sharded                                    # the four shards merged into one")]
    Synth(SynthArgs),
    /// Judge a candidate run against a baseline: per request name, the change in P50/P90/P99, error
    /// rate and throughput with a confidence interval; against each limit, within, beyond or
    /// undecided (with the run length that would decide).
    #[command(after_help = "\
Examples:
  analyzer compare runs/main-last runs/2026-03-02T09-00-00Z-checkout
  analyzer compare base cand --max-regression p99=10%,p50=5%,error_rate=0.5pp,throughput=5%
  analyzer compare base cand --skip 30s --out reports/pr-123 --junit compare-junit.xml
  analyzer compare base cand --undecided fail       # a limit the runs cannot decide fails too

--max-regression names the metrics whose regression fails the comparison and by how much each may
regress: latency percentiles (p50, p75, p90, p95, p99, p99.9) and throughput in %, the error rate in
percentage points (pp). Default: p99=10%,error_rate=0.5pp. Other metrics are shown, never judged.

Against each limit the answer is one of three:
  within     the whole confidence interval of the change keeps the limit
  beyond     the whole interval breaks it (the comparison fails)
  undecided  the interval straddles the limit, or a run has too few samples for an interval (fewer
             than 10 one-second windows with samples, or fewer than 10 samples above a percentile);
             the output says what run length would decide it
Intervals come from a moving-block bootstrap over one-second windows, 99 % family-wise over all rows
(Bonferroni); docs/ci.md explains the method and the rules.

Runs whose load generator's health is INVALID are refused.

Exit status: 0 when no limit is beyond (undecided ones pass with a warning, unless --undecided
fail), 1 when one is beyond (or undecided under --undecided fail), 2 for bad input (unreadable or
INVALID runs, a bad option).")]
    Compare(CompareArgs),
    /// Check a run against thresholds (from its profile and/or an SLO file): print each threshold, its
    /// measured value and verdict; optionally write JUnit XML and a GitHub step summary.
    #[command(after_help = "\
Examples:
  analyzer check runs/2026-03-02T09-00-00Z-checkout
  analyzer check runs/<id> --slo slo.ron --junit junit.xml --summary \"$GITHUB_STEP_SUMMARY\"
  analyzer check runs/<id> --undecided fail --json check.json

An SLO file (RON) maps request names (\"*\" is all requests together) to thresholds:
  (thresholds: {
      \"*\": [\"p99 < 200ms\", \"error_rate < 1%\", \"rps > 1000\", \"lag_p99 < 1ms\"],
      \"GET /items\": [\"p95 < 150ms per 10s\"],
  })
Metrics: p50 p75 p90 p95 p99 p99.9 max mean (latency: us, ms, s), error_rate (%), rps (requests/s),
lag_p99 (the generator's schedule lag, \"*\" only). Operators: < <= > >=. \"per 10s\": every full
10-second window must pass; the worst window is reported.

Percentiles, mean and error_rate are judged with a confidence interval over the run's one-second
windows: PASS when the whole interval keeps the threshold, FAIL when the whole interval breaks it,
UNDECIDED when it straddles it or the run has too few samples (the output says what run length would
decide). max, rps and lag_p99 are exact for the run and judged as points.

The profile's own `thresholds` field (same shape) is used too; for a request name present in both,
--slo's list replaces the profile's.

Exit status: 0 when every threshold passes (undecided ones pass with a warning, unless --undecided
fail), 1 when any fails, 2 for bad input (unreadable run, malformed SLO file, unknown metric or
request name).")]
    Check(CheckArgs),
    /// Write every sample of one or more runs to CSV, a run's HdrHistogram log, or Locust's CSV files.
    #[command(after_help = "\
Examples:
  analyzer export runs/2026-03-02T09-00-00Z-checkout --csv samples.csv
  analyzer export runs/2026-03-02T09-00-00Z-checkout --locust-csv locust/

--locust-csv writes stats.csv, stats_history.csv and failures.csv with Locust's columns. Response
times are ms from the actual start (Locust's meaning), with µs decimals; percentiles are exact
nearest-rank values, not Locust's two-digit buckets (docs/reports.md#locust-csv).")]
    Export(ExportArgs),
}

/// `analyzer report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Run directories (made by `engine run` or `analyzer synth`); a sharded run's directory, or its
    /// shard directories one by one.
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
    /// Multiplies every latency: 1.2 makes a run 20 % slower than the built-in shop.
    #[arg(long, value_name = "F", default_value_t = 1.0)]
    pub latency_scale: f64,
    /// The fraction of requests that fail outside the degraded period (0.01 = 1 %); each request name
    /// scales it by its own factor, and the degraded period multiplies it by six.
    #[arg(long, value_name = "P", default_value_t = 0.01)]
    pub error_rate: f64,
    /// Leave out the generator stall and the degraded period (a steady run, e.g. for calibration).
    #[arg(long)]
    pub no_incidents: bool,
    /// Write the run as this many shards (`--out`/shard-00, shard-01, ...), as engines started with
    /// `--shard I/N` would; each shard has --cores logs and its share of --samples.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub shards: u32,
    /// Each shard's share of the load, comma-separated in shard order (scaled to sum to 1)
    /// [default: equal shares].
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub shard_shares: Vec<f64>,
    /// How late each shard's time zero is after the common start, ms, comma-separated [default: 0].
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub shard_offsets_ms: Vec<f64>,
    /// Each shard's clock error as its kernel estimated it, µs, comma-separated [default: 200].
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub clock_errors_us: Vec<u64>,
    /// Make this shard's generator fall behind its schedule (and saturate its CPU) for a tenth of the run.
    #[arg(long, value_name = "I")]
    pub lagging_shard: Option<u32>,
    /// The run directory to write (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// `analyzer compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The reference run (e.g. the last run on the main branch).
    #[arg(value_name = "BASELINE")]
    pub baseline: PathBuf,
    /// The run under test.
    #[arg(value_name = "CANDIDATE")]
    pub candidate: PathBuf,
    /// Limits whose breach beyond noise fails the comparison, e.g. `p99=10%,error_rate=0.5pp`
    /// [default: p99=10%,error_rate=0.5pp].
    #[arg(long, value_name = "SPEC")]
    pub max_regression: Option<String>,
    /// Where to write compare.html / .md / .json [default: the candidate's directory].
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
    /// Leave out a warm-up from both runs (e.g. 10s).
    #[arg(long, value_name = "DURATION", default_value = "0s")]
    pub skip: String,
    /// Seed of the bootstrap resampling: the same runs and seed give the same intervals.
    #[arg(long, value_name = "N", default_value_t = 0x5eed)]
    pub seed: u64,
    /// What an undecided limit does: `pass` (exit 0, with a warning) or `fail` (exit 1).
    #[arg(long, value_enum, value_name = "WHAT", default_value_t = Undecided::Pass)]
    pub undecided: Undecided,
    /// Write JUnit XML here: one test case per request name and limit.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Compare a sharded run although some of its shards are missing (they are refused otherwise).
    #[arg(long)]
    pub allow_partial: bool,
}

/// `--undecided`: what a limit or threshold that the run cannot decide does to the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Undecided {
    /// Exit 0, with a warning naming each undecided one and what would decide it.
    Pass,
    /// Exit 1, as if it were broken.
    Fail,
}

impl From<Undecided> for crate::significance::OnUndecided {
    fn from(u: Undecided) -> Self {
        match u {
            Undecided::Pass => crate::significance::OnUndecided::Pass,
            Undecided::Fail => crate::significance::OnUndecided::Fail,
        }
    }
}

/// `analyzer check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The run directory to check.
    #[arg(value_name = "RUN_DIR")]
    pub run: PathBuf,
    /// An SLO file (RON) with thresholds; merged over the profile's (its list wins per request name).
    #[arg(long, value_name = "FILE")]
    pub slo: Option<PathBuf>,
    /// Write JUnit XML here: one test case per threshold.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Append a Markdown summary to this file (give it "$GITHUB_STEP_SUMMARY").
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
    /// Write the outcome as JSON here (every threshold with its value, interval and answer).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Leave out a warm-up (e.g. 10s).
    #[arg(long, value_name = "DURATION", default_value = "0s")]
    pub skip: String,
    /// What an undecided threshold does: `pass` (exit 0, with a warning) or `fail` (exit 1).
    #[arg(long, value_enum, value_name = "WHAT", default_value_t = Undecided::Pass)]
    pub undecided: Undecided,
    /// Seed of the bootstrap resampling: the same run and seed give the same intervals.
    #[arg(long, value_name = "N", default_value_t = 0x5eed)]
    pub seed: u64,
    /// Check a sharded run although some of its shards are missing (it is refused otherwise).
    #[arg(long)]
    pub allow_partial: bool,
    /// Judge a run whose load generator health is INVALID. It is refused otherwise (exit 2, and with
    /// --junit one test case in error saying why): its numbers describe another test than the
    /// profile's, so a PASS on it would be false comfort and a FAIL would blame the service.
    #[arg(long)]
    pub allow_invalid: bool,
}

/// `analyzer export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Run directories.
    #[arg(required = true, value_name = "RUN_DIR")]
    pub runs: Vec<PathBuf>,
    /// The CSV file to write: one row per sample.
    #[arg(long, value_name = "FILE", required_unless_present_any = ["hdr", "locust_csv"])]
    pub csv: Option<PathBuf>,
    /// An HdrHistogram interval log to write (one run only): corrected latency of all requests
    /// untagged, uncorrected tagged "uncorrected", µs values, one-second intervals of intended start.
    #[arg(long, value_name = "FILE")]
    pub hdr: Option<PathBuf>,
    /// With --hdr, also one corrected and one uncorrected histogram per request name and second,
    /// tagged "corrected:NAME" and "uncorrected:NAME".
    #[arg(long, requires = "hdr")]
    pub by_name: bool,
    /// A directory to write Locust's CSV files into (one run only): stats.csv, stats_history.csv
    /// and failures.csv, with Locust's column names and meanings.
    #[arg(long, value_name = "DIR")]
    pub locust_csv: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// clap wraps help lines longer than the terminal (100 columns where it cannot tell), which
    /// breaks an example's comment or a sentence mid-phrase (`analyzer report --help` printed "merged
    /// into\none"). Every line of every after-help text therefore fits in 100 columns as written.
    #[test]
    fn after_help_lines_fit_in_100_columns() {
        let cli = Cli::command();
        let mut texts = vec![(
            "analyzer".to_owned(),
            cli.get_after_help().map(ToString::to_string),
        )];
        texts.extend(cli.get_subcommands().map(|sub| {
            (
                format!("analyzer {}", sub.get_name()),
                sub.get_after_help().map(ToString::to_string),
            )
        }));
        let mut checked = 0;
        for (command, text) in texts {
            let Some(text) = text else { continue };
            for line in text.lines() {
                assert!(
                    line.chars().count() <= 100,
                    "`{command} --help` has a line of {} characters, which clap wraps: {line}",
                    line.chars().count()
                );
            }
            checked += 1;
        }
        assert!(checked >= 5, "{checked} after-help texts checked");
    }
}
