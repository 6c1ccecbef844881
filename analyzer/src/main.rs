//! The `analyzer` binary: parses the command line and dispatches; the work is in the library.

use std::process::ExitCode;

use analyzer::cli::{Cli, Command, ExportArgs, ReportArgs, SynthArgs};
use analyzer::report::{Format, ReportOptions};
use anyhow::Context;
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            // Exit 2 means "nothing readable", so scripts can tell bad input from a failure.
            match e.downcast_ref::<analyzer::Error>() {
                Some(analyzer::Error::NothingReadable { .. }) => ExitCode::from(2),
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
        ..Default::default()
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
