//! `engine`: parse the flags, run the subcommand, turn the result into an exit code.

use std::process::ExitCode;

use engine::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse_args();
    match run(cli) {
        Ok(code) => code,
        Err(e) => match e.downcast_ref::<engine::Error>() {
            // The engine's errors already say their cause; `{:#}` would print it twice.
            Some(engine_error) => {
                eprintln!("error: {engine_error}");
                ExitCode::from(engine_error.exit_code())
            }
            None => {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        },
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) if args.debug => {
            Ok(ExitCode::from(engine::run_debug(&args)?.exit_code()))
        }
        Command::Run(args) => Ok(ExitCode::from(engine::run(&args)?.exit_code())),
        Command::Try(args) => Ok(ExitCode::from(engine::try_run(&args)?.exit_code())),
        Command::Serve(args) => engine::serve::serve_command(&args)
            .map(|()| ExitCode::SUCCESS)
            .map_err(Into::into),
        Command::Kube(args) => Ok(match engine::kube::command(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(e.exit_code())
            }
        }),
    }
}
