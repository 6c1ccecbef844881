//! [`Engine`]: the `engine` command line as a library, so that a user's own binary can add
//! protocols and still be the same tool (`my-engine run profile.ron`), as Goose load tests are.

use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::protocol::{Protocol, Protocols};

/// The engine's command line with custom protocols registered.
///
/// ```no_run
/// # struct Redis;
/// # impl engine::protocol::Protocol for Redis {
/// #     type Step = (); type Conn = ();
/// #     fn compile(&self, _: &engine::protocol::Value) -> Result<(), String> { Ok(()) }
/// #     async fn connect(&self, _: &engine::protocol::Endpoint) -> Result<(), engine::protocol::StepResult> { Ok(()) }
/// #     async fn execute(&self, _: &mut (), _: &(), _: &engine::protocol::Args<'_>) -> engine::protocol::StepResult { engine::protocol::StepResult::ok() }
/// # }
/// fn main() -> std::process::ExitCode {
///     engine::Engine::new().protocol("redis", Redis).main()
/// }
/// ```
#[derive(Debug, Default)]
pub struct Engine {
    protocols: Protocols,
}

impl Engine {
    /// The engine with no custom protocols.
    pub fn new() -> Engine {
        Engine::default()
    }

    /// Registers `protocol`; profiles select it with `Custom(protocol: "<name>", ...)`.
    pub fn protocol<P: Protocol>(mut self, name: &str, protocol: P) -> Engine {
        self.protocols.register(name, protocol);
        self
    }

    /// The protocols registered so far.
    pub fn protocols(&self) -> &Protocols {
        &self.protocols
    }

    /// Parses the process's arguments, runs the subcommand, prints any error, and returns the exit
    /// code (0 completed, 2 bad input, 4 every request failed (`engine try`: one failed), 130
    /// interrupted, 1 engine failure).
    pub fn main(self) -> ExitCode {
        let cli = Cli::parse_args();
        match cli.command {
            Command::Run(args) if args.debug => {
                report(crate::debug::run_debug(&args, &self.protocols).map(|o| o.exit_code()))
            }
            Command::Try(args) => {
                report(crate::debug::try_with(&args, &self.protocols).map(|o| o.exit_code()))
            }
            Command::Run(args) => match crate::run_with(&args, &self.protocols) {
                Ok(outcome) => ExitCode::from(outcome.exit_code()),
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(e.exit_code())
                }
            },
            Command::Kube(args) => match crate::kube::command_with(&args, &self.protocols) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(e.exit_code())
                }
            },
            Command::Serve(args) => match crate::serve::serve_command(&args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            },
        }
    }
}

/// The exit code of a command's result, printing its error.
fn report(result: Result<u8, crate::Error>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
