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
    if let Some(csv) = &args.csv {
        let outcome = analyzer::export::export_csv(&args.runs, csv)?;
        for w in &outcome.warnings {
            eprintln!("warning: {w}");
        }
        eprintln!("{} rows", outcome.rows);
        println!("{}", csv.display());
    }
    if let Some(hdr) = &args.hdr {
        // The shard directories of one sharded run, given one by one, are one run, as in `report`.
        let inputs = analyzer::shards::resolve(&args.runs)?;
        let [input] = inputs.as_slice() else {
            return Err(analyzer::Error::Usage(format!(
                "--hdr writes one run's interval log, but {} runs were given; export them one at a time",
                inputs.len()
            ))
            .into());
        };
        let outcome = analyzer::hdr_export::export_hdr_input(input, hdr, args.by_name)?;
        for w in &outcome.warnings {
            eprintln!("warning: {w}");
        }
        eprintln!(
            "{} samples in {} interval histograms",
            outcome.samples, outcome.histograms
        );
        println!("{}", hdr.display());
    }
    if let Some(dir) = &args.locust_csv {
        let [run] = args.runs.as_slice() else {
            return Err(analyzer::Error::Usage(format!(
                "--locust-csv writes one run's files, but {} runs were given; export them one at a time",
                args.runs.len()
            ))
            .into());
        };
        let outcome = analyzer::locust::export_locust_csv(run, dir)?;
        for w in &outcome.warnings {
            eprintln!("warning: {w}");
        }
        for f in &outcome.files {
            println!("{}", f.display());
        }
    }
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
        junit: args.junit,
        on_undecided: args.undecided.into(),
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
    let undecided = outcome.result.undecided().count();
    if undecided > 0 && outcome.result.passed() {
        // A pass that decided less than it was asked to must not look like a clean one.
        eprintln!(
            "warning: {undecided} {} undecided: these runs can neither confirm nor rule out a breach \
             (see UNDECIDED above for what would decide); passing because --undecided pass",
            if undecided == 1 { "limit" } else { "limits" }
        );
    }
    // The HTML comparison's path is the last line, so scripts can open it.
    for path in &outcome.written {
        println!("{}", path.display());
    }
    Ok(if outcome.result.passed() {
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
        on_undecided: args.undecided.into(),
        seed: args.seed,
        allow_partial: args.allow_partial,
        allow_invalid: args.allow_invalid,
    };
    let outcome = match analyzer::check::check(&options) {
        Ok(outcome) => outcome,
        Err(e @ analyzer::Error::InvalidRun { .. }) => {
            let run = options.run.display().to_string();
            if let Some(path) = &args.junit {
                analyzer::check::write_junit_refused(&run, &e.to_string(), path)?;
            }
            if let Some(path) = &args.summary {
                analyzer::check::append_summary_refused(&run, &e.to_string(), path)?;
            }
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    };
    for w in &outcome.warnings {
        eprintln!("warning: {w}");
    }
    print!("{}", outcome.text());
    let undecided = outcome.undecided();
    if undecided > 0 && outcome.passed() {
        eprintln!(
            "warning: {undecided} {} undecided: this run can neither confirm nor rule out a breach \
             (see the UNDECIDED lines for what would decide); passing because --undecided pass",
            if undecided == 1 {
                "threshold"
            } else {
                "thresholds"
            }
        );
    }
    if let Some(path) = &args.junit {
        analyzer::check::write_junit(&outcome, path)?;
        println!("{}", path.display());
    }
    if let Some(path) = &args.json {
        analyzer::check::write_json(&outcome, path)?;
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
