//! The `analyzer` binary: parses the command line and dispatches; the work is in the library.

use std::process::ExitCode;

use analyzer::cli::{CheckArgs, Cli, Command, CompareArgs, ExportArgs, ReportArgs, SynthArgs};
use analyzer::report::{Format, ReportOptions};
use anyhow::Context;
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            // Exit 2 means bad input (nothing readable, a bad option or SLO file), so scripts can tell
            // it from a failed check (1) and from a failure of the analyzer itself (also 1).
            match e.downcast_ref::<analyzer::Error>() {
                Some(e) if e.is_bad_input() => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Report(args) => report(args),
        Command::Synth(args) => synth(args),
        Command::Export(args) => export(args),
        Command::Compare(args) => compare(args),
        Command::Check(args) => check(args),
    }
}

fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let formats = args
        .format
        .iter()
        .map(|f| f.parse::<Format>())
        .collect::<Result<Vec<_>, _>>()?;
    let skip = analyzer::load::parse_duration(&args.skip).context("--skip")?;
    let options = ReportOptions {
        runs: args.runs,
        out: args.out,
        formats,
        skip,
        baseline: args.baseline,
        exact_limit: args.exact_limit,
    };
    let outcome = analyzer::report::report(&options)?;
    for w in &outcome.warnings {
        eprintln!("warning: {w}");
    }
    for path in outcome
        .written
        .iter()
        .filter(|p| Some(*p) != outcome.html.as_ref())
    {
        println!("{}", path.display());
    }
    // The HTML report's path is the last line, so scripts can open it.
    if let Some(html) = &outcome.html {
        println!("{}", html.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn synth(args: SynthArgs) -> anyhow::Result<ExitCode> {
    let params = analyzer::synth::SynthParams {
        samples: args.samples,
        cores: args.cores,
        seed: args.seed,
        duration_s: args.duration,
        latency_scale: args.latency_scale,
        error_rate: args.error_rate,
        incidents: !args.no_incidents,
        shards: args.shards,
        shard_shares: args.shard_shares,
        shard_offsets_ms: args.shard_offsets_ms,
        clock_errors_us: args.clock_errors_us,
        lagging_shard: args.lagging_shard,
    };
    let dir = analyzer::synth::synth(&params, &args.out).context("analyzer synth")?;
    println!("{}", dir.display());
    Ok(ExitCode::SUCCESS)
}

fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let outcome = analyzer::export::export_csv(&args.runs, &args.csv)?;
    for w in &outcome.warnings {
        eprintln!("warning: {w}");
    }
    eprintln!("{} rows", outcome.rows);
    println!("{}", args.csv.display());
    Ok(ExitCode::SUCCESS)
}

fn compare(args: CompareArgs) -> anyhow::Result<ExitCode> {
    let formats = args
        .format
        .iter()
        .map(|f| f.parse::<Format>())
        .collect::<Result<Vec<_>, _>>()?;
    let limits = match &args.max_regression {
        Some(spec) => analyzer::compare::Limits::parse(spec)?,
        None => analyzer::compare::Limits::default(),
    };
    let skip = analyzer::load::parse_duration(&args.skip).context("--skip")?;
    let options = analyzer::compare::CompareOptions {
        baseline: args.baseline,
        candidate: args.candidate,
        limits,
        skip,
        settings: analyzer::significance::Settings {
            seed: args.seed,
            ..Default::default()
        },
        out: args.out,
        formats,
        allow_partial: args.allow_partial,
    };
    let outcome = analyzer::compare::run_compare(&options)?;
    for w in &outcome.warnings {
        eprintln!("warning: {w}");
    }
    println!(
        "{} (candidate) against {} (baseline)\n",
        outcome.labels.1, outcome.labels.0
    );
    println!("{}", outcome.result.text_table());
    // The HTML comparison's path is the last line, so scripts can open it.
    for path in &outcome.written {
        println!("{}", path.display());
    }
    Ok(if outcome.result.broken().next().is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let skip = analyzer::load::parse_duration(&args.skip).context("--skip")?;
    let options = analyzer::check::CheckOptions {
        run: args.run,
        slo: args.slo,
        skip,
        allow_partial: args.allow_partial,
    };
    let outcome = analyzer::check::check(&options)?;
    for w in &outcome.warnings {
        eprintln!("warning: {w}");
    }
    print!("{}", outcome.text());
    if let Some(path) = &args.junit {
        analyzer::check::write_junit(&outcome, path)?;
        println!("{}", path.display());
    }
    if let Some(path) = &args.summary {
        analyzer::check::append_summary(&outcome, path)?;
        println!("{}", path.display());
    }
    Ok(if outcome.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
