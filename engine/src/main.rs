//! `engine`: parse the flags, run the subcommand, turn the result into an exit code.

use std::process::ExitCode;

use clap::Parser;
use engine::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            let code = e
                .downcast_ref::<engine::Error>()
                .map_or(1, engine::Error::exit_code);
            ExitCode::from(code)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => Ok(ExitCode::from(engine::run(&args)?.exit_code())),
        Command::Serve(args) => engine::serve::serve_command(&args)
            .map(|()| ExitCode::SUCCESS)
            .map_err(Into::into),
    }
}
