//! Protocols other than HTTP: the public [`Protocol`] trait that a user's own binary implements, the
//! [`Protocols`] registry that selects one by name from a profile's `Custom(protocol: "...")` step,
//! and the built-in raw TCP and UDP steps.
//!
//! Every step, whatever its protocol, becomes exactly one `formats::Sample` through the core's
//! recorder, with the same outcome kinds as HTTP, so the analyzer needs no change. HTTP(S), raw TCP,
//! UDP and WebSocket are built in as sans-I/O machines driven by the core's event loop (no allocation
//! per request). A custom protocol is written with `async` code against the engine's [`TcpStream`]
//! (or any async client library adapted to it): each step runs as a task of a small executor hosted
//! by the same loop on the same core, at the price of one boxed future per step. [`spawn`] starts a
//! companion task (an HTTP/2 connection's driver, say) and [`sleep`] waits on the core's timers.
//! docs/extending.md walks through writing one.
//!
//! ```no_run
//! use engine::protocol::{Args, Endpoint, Protocol, StepResult, TcpStream, Value};
//!
//! /// Sends the step's `line` argument and counts the reply's bytes.
//! struct LineEcho;
//!
//! impl Protocol for LineEcho {
//!     type Step = ();
//!     type Conn = TcpStream;
//!
//!     fn compile(&self, _step: &Value) -> Result<(), String> {
//!         Ok(())
//!     }
//!
//!     async fn connect(&self, endpoint: &Endpoint) -> Result<Self::Conn, StepResult> {
//!         TcpStream::connect(endpoint.addr)
//!             .await
//!             .map_err(|e| StepResult::from_io("connect", &e))
//!     }
//!
//!     async fn execute(&self, conn: &mut Self::Conn, _step: &(), args: &Args<'_>) -> StepResult {
//!         let line = args.get("line").unwrap_or(b"ping\n");
//!         if let Err(e) = conn.write_all(line).await {
//!             return StepResult::from_io("send", &e);
//!         }
//!         let mut reply = [0u8; 512];
//!         match conn.read(&mut reply).await {
//!             Ok(n) => StepResult::ok().sent(line.len() as u32).received(n as u32),
//!             Err(e) => StepResult::from_io("receive", &e),
//!         }
//!     }
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     engine::Engine::new().protocol("line-echo", LineEcho).main()
//! }
//! ```

use std::any::Any;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

pub use crate::event_loop::hosted::{TcpStream, sleep, spawn};
pub use formats::Outcome;
pub use ron::Value;

/// Where a step's connection goes: the step's `target`, or the profile's host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The URL scheme as written (`tcp`, `udp`, `ws`, `http`, ...).
    pub scheme: String,
    /// The host as written (a name or an address literal), for SNI or a `Host` header.
    pub host: String,
    /// The port.
    pub port: u16,
    /// The path after the port, if any.
    pub path: String,
    /// The address, resolved once before the run.
    pub addr: SocketAddr,
}

/// A step's rendered arguments: the step's `args` templates, evaluated for this user and iteration.
#[derive(Debug)]
pub struct Args<'a> {
    pub(crate) names: &'a [String],
    pub(crate) values: &'a [Vec<u8>],
}

impl<'a> Args<'a> {
    /// The value of argument `name`, if the step has it.
    pub fn get(&self, name: &str) -> Option<&'a [u8]> {
        let i = self.names.iter().position(|n| n == name)?;
        Some(&self.values[i])
    }

    /// The value of argument `name` as text (lossy), if the step has it.
    pub fn text(&self, name: &str) -> Option<Cow<'a, str>> {
        self.get(name).map(String::from_utf8_lossy)
    }

    /// Every argument, in the order the profile's map sorts them.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> {
        self.names
            .iter()
            .map(String::as_str)
            .zip(self.values.iter().map(Vec::as_slice))
    }
}

/// What one step reports; the engine turns it into one sample.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepResult {
    /// How it went. `Ok` unless something failed; `Check` for a wrong answer, `Status` for an
    /// error code the protocol returned, transport kinds (`Reset`, `Timeout`, `Malformed`, `Tls`,
    /// ...) for failures that leave the connection unusable.
    pub outcome: Outcome,
    /// The protocol's status or code (an HTTP-like status, a gRPC code, ...), 0 when it has none.
    pub status: u16,
    /// Bytes written for this step.
    pub bytes_sent: u32,
    /// Bytes read for this step.
    pub bytes_received: u32,
    /// A failure's message, shown in reports; keep it short and stable (a template rather than the
    /// peer's text), because every distinct message is kept in the log's table.
    pub message: Option<Cow<'static, str>>,
    /// Values for the user's variables, by name (the step's `extract` list says which are kept).
    pub extracted: Vec<(String, Vec<u8>)>,
    /// Close the connection after this step even though it succeeded.
    pub close: bool,
}

impl StepResult {
    /// A success.
    pub fn ok() -> StepResult {
        StepResult::default()
    }

    /// A failure of kind `outcome` with `message`.
    pub fn fail(outcome: Outcome, message: impl Into<Cow<'static, str>>) -> StepResult {
        StepResult {
            outcome,
            message: Some(message.into()),
            ..StepResult::default()
        }
    }

    /// A failure from an I/O error during `what` (`connect`, `send`, `receive`), classified like the
    /// HTTP client's: refused connections are `ConnectError`, resets `Reset`, and so on.
    pub fn from_io(what: &'static str, e: &io::Error) -> StepResult {
        let f = crate::http::Failure::io(what, e);
        StepResult {
            outcome: f.outcome,
            message: Some(f.message),
            ..StepResult::default()
        }
    }

    /// With this many bytes sent.
    pub fn sent(mut self, n: u32) -> StepResult {
        self.bytes_sent = n;
        self
    }

    /// With this many bytes received.
    pub fn received(mut self, n: u32) -> StepResult {
        self.bytes_received = n;
        self
    }

    /// With this status or code.
    pub fn status(mut self, status: u16) -> StepResult {
        self.status = status;
        self
    }

    /// Whether the outcome leaves the connection unusable.
    pub(crate) fn breaks_connection(&self) -> bool {
        self.close || !matches!(self.outcome, Outcome::Ok | Outcome::Status | Outcome::Check)
    }
}

/// A protocol a user's binary adds to the engine: how a user's connection is opened, how one step is
/// executed on it, and what the step reports.
///
/// One value of the implementing type serves the whole run and is shared by every core (hence
/// `Send + Sync`); connections belong to one user on one core and are never shared. Each user opens
/// its own connection on its first step and keeps it until a step breaks it
/// (`StepResult::breaks_connection`: any transport failure, or `close`).
pub trait Protocol: Send + Sync + 'static {
    /// A step compiled from the profile, once, before the run.
    type Step: Send + Sync + 'static;
    /// A user's connection.
    type Conn: 'static;

    /// Checks and compiles a step's `step: ...` value. An `Err` stops the run before it starts, with
    /// the message at the step's place in the profile: say what is wrong and how to fix it.
    fn compile(&self, step: &Value) -> Result<Self::Step, String>;

    /// Opens a user's connection. The engine bounds it with the profile's connect timeout and
    /// reports the time it took as the sample's connect time. An `Err` is logged as the step's sample.
    fn connect(&self, endpoint: &Endpoint) -> impl Future<Output = Result<Self::Conn, StepResult>>;

    /// Executes one step. The engine bounds it with the request timeout (dropping the future and the
    /// connection when it expires), measures its latency from the intended start, and logs one sample.
    fn execute(
        &self,
        conn: &mut Self::Conn,
        step: &Self::Step,
        args: &Args<'_>,
    ) -> impl Future<Output = StepResult>;
}

/// A boxed future on one core.
pub(crate) type LocalFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// [`Protocol`] with its types erased, so that a registry can hold any of them.
pub(crate) trait DynProtocol: Send + Sync {
    fn compile(&self, step: &Value) -> Result<Arc<dyn Any + Send + Sync>, String>;
    fn connect<'a>(
        &'a self,
        endpoint: &'a Endpoint,
    ) -> LocalFuture<'a, Result<Box<dyn Any>, StepResult>>;
    fn execute<'a>(
        &'a self,
        conn: &'a mut dyn Any,
        step: &'a (dyn Any + Send + Sync),
        args: &'a Args<'a>,
    ) -> LocalFuture<'a, StepResult>;
}

impl<P: Protocol> DynProtocol for P {
    fn compile(&self, step: &Value) -> Result<Arc<dyn Any + Send + Sync>, String> {
        Protocol::compile(self, step).map(|s| Arc::new(s) as Arc<dyn Any + Send + Sync>)
    }

    fn connect<'a>(
        &'a self,
        endpoint: &'a Endpoint,
    ) -> LocalFuture<'a, Result<Box<dyn Any>, StepResult>> {
        Box::pin(async move {
            Protocol::connect(self, endpoint)
                .await
                .map(|c| Box::new(c) as Box<dyn Any>)
        })
    }

    fn execute<'a>(
        &'a self,
        conn: &'a mut dyn Any,
        step: &'a (dyn Any + Send + Sync),
        args: &'a Args<'a>,
    ) -> LocalFuture<'a, StepResult> {
        Box::pin(async move {
            // The engine pairs connections and steps of the same protocol; a mismatch is a bug here.
            let (Some(conn), Some(step)) = (conn.downcast_mut::<P::Conn>(), step.downcast_ref())
            else {
                return StepResult::fail(
                    Outcome::Other,
                    "internal error: a step ran on another protocol's connection",
                );
            };
            Protocol::execute(self, conn, step, args).await
        })
    }
}

/// The custom protocols a run may use, by the name profiles select them with.
#[derive(Clone, Default)]
pub struct Protocols {
    by_name: BTreeMap<String, Arc<dyn DynProtocol>>,
}

impl fmt::Debug for Protocols {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.by_name.keys()).finish()
    }
}

impl Protocols {
    /// No custom protocols.
    pub fn new() -> Protocols {
        Protocols::default()
    }

    /// Adds `protocol` under `name` (replacing one of the same name).
    pub fn register<P: Protocol>(&mut self, name: &str, protocol: P) {
        self.by_name.insert(name.to_owned(), Arc::new(protocol));
    }

    /// The names registered.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Arc<dyn DynProtocol>> {
        self.by_name.get(name)
    }
}
