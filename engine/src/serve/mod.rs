//! The embedded target: a small HTTP/1.1 server on monoio for demos and tests. It counts the requests
//! it answered, so tests can compare the count with the samples the engine logged.
//!
//! | route            | answer                                                          |
//! |------------------|-----------------------------------------------------------------|
//! | `/`              | 200 `ok`                                                        |
//! | `/items/{id}`    | 200 JSON describing item `id` (digits), else 404                |
//! | `/delay/{ms}`    | 200 after `ms` milliseconds (at most 60 000)                    |
//! | `/status/{code}` | that status (100-599)                                           |
//! | `/bytes/{n}`     | `n` bytes (at most 16 MiB)                                      |
//! | `/echo`          | the request body, with its content type                         |
//!
//! Two behaviours make it a test bench for measurement ([`Behaviour`], `engine serve --stall-every 2s
//! --stall-for 200ms --latency-mix 90:1ms,10:20ms`, or `embedded: (...)` in a profile):
//!
//! - **Stall mode**: every `every`, all responses are held for `hold`, like a stop-the-world garbage
//!   collection. Windows are aligned to `CLOCK_MONOTONIC` (a window starts whenever the clock is a
//!   multiple of `every`), so a test can tell from a sample's absolute time whether it met a stall.
//! - **Latency mix**: responses are delayed by fixed proportions, dealt by smooth weighted round-robin
//!   so that every 100 responses of a `90:1ms,10:20ms` mix have exactly 90 of 1 ms and 10 of 20 ms.
//!   Delays count from the moment the request was read, and are waited out on a precise timer, so the
//!   true latency distribution is known to well under a millisecond.
//!
//! Log in, tokens (login, OAuth2, JWT), cookies, a CRUD store, search and `/anything` are in
//! the `api` module's table. With [`ServerConfig::record`], the server also keeps every request it answered
//! (method, target, headers, body) for tests to inspect.

mod api;
mod behaviour;
mod connection;
mod jobs;
mod routes;
mod runtime;
mod timer;
mod websocket;

pub use api::{CLIENT_SECRET, JWT_SECRET};
pub use behaviour::Behaviour;
pub use jobs::SIGNING_SECRET;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use monoio::net::TcpListener;

use crate::cli::{IoChoice, ServeArgs};
use behaviour::MixCursor;
use connection::{State, accept_loop};
use runtime::Runtime;

const MAX_REQUEST_HEAD: usize = 64 << 10;
const MAX_REQUEST_BODY: usize = 1 << 20;

/// A running embedded server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    served: Arc<AtomicU64>,
    tls_failures: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    recorded: Option<Arc<Mutex<Vec<Recorded>>>>,
}

/// How to run the embedded server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to bind; port 0 picks a free port.
    pub addr: String,
    /// Server threads.
    pub threads: u32,
    /// The I/O driver.
    pub io: IoChoice,
    /// A CPU to pin the threads to.
    pub cpu: Option<u32>,
    /// Keep every request answered (for tests; at most [`MAX_RECORDED`]).
    pub record: bool,
    /// Stall mode and latency mix.
    pub behaviour: Behaviour,
}

/// The most requests a recording server keeps.
pub const MAX_RECORDED: usize = 1_000_000;

/// A request the server answered, as recorded.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The method.
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// Headers in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Recorded {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// A query parameter, decoded.
    pub fn query(&self, key: &str) -> Option<String> {
        let q = self.target.split_once('?')?.1;
        api::form(q)
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

impl Server {
    /// Binds `addr` (port 0 picks a free port) and serves on `threads` threads, pinned to `cpu` if given.
    pub fn start(addr: &str, threads: u32, io: IoChoice, cpu: Option<u32>) -> io::Result<Server> {
        Server::start_with(&ServerConfig {
            addr: addr.to_owned(),
            threads,
            io,
            cpu,
            record: false,
            behaviour: Behaviour::default(),
        })
    }

    /// Starts a server as configured.
    pub fn start_with(config: &ServerConfig) -> io::Result<Server> {
        Server::start_tls(config, None)
    }

    /// Starts a server as configured, serving TLS when `tls` is given (every connection; ALPN
    /// `http/1.1`). A connection whose handshake fails is counted ([`Server::tls_failures`]) and
    /// closed.
    pub fn start_tls(
        config: &ServerConfig,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> io::Result<Server> {
        let ServerConfig {
            addr,
            threads,
            io,
            cpu,
            record,
            behaviour,
        } = config.clone();
        let listener = crate::sys::bind_listener(&addr)?;
        // monoio's epoll driver expects a non-blocking socket; a blocking accept would stall the thread.
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let driver = Runtime::select(io)?;
        let served = Arc::new(AtomicU64::new(0));
        let tls_failures = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let secret = u64::from_le_bytes(crate::rng::random_id()[..8].try_into().expect("8 bytes"));
        let api = Arc::new(api::Api {
            secret,
            items: Mutex::default(),
            jobs: Mutex::default(),
        });
        let recorded = record.then(|| Arc::new(Mutex::new(Vec::new())));
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let listener = listener.try_clone()?;
            let (served, stop) = (Arc::clone(&served), Arc::clone(&stop));
            let tls_failures = Arc::clone(&tls_failures);
            let acceptor = tls.clone().map(monoio_rustls::TlsAcceptor::from);
            let behaviour = behaviour.clone();
            let (api, recorded) = (Arc::clone(&api), recorded.clone());
            let handle = std::thread::Builder::new()
                .name(format!("stampede-serve-{i}"))
                .spawn(move || {
                    if let Some(cpu) = cpu {
                        crate::sys::pin_current_thread(cpu);
                    }
                    let result = driver.block_on(async move {
                        let listener = match TcpListener::from_std(listener) {
                            Ok(l) => l,
                            Err(e) => return eprintln!("embedded server: {e}"),
                        };
                        let mix = std::cell::RefCell::new(MixCursor {
                            current: vec![0; behaviour.latency_mix.len()],
                        });
                        let state = std::rc::Rc::new(State {
                            served,
                            tls_failures,
                            acceptor,
                            api,
                            recorded,
                            behaviour,
                            mix,
                        });
                        monoio::select! {
                            () = accept_loop(listener, state) => {},
                            () = wait_for(stop) => {},
                        }
                    });
                    if let Err(e) = result {
                        eprintln!("embedded server: cannot start the runtime: {e}");
                    }
                })?;
            handles.push(handle);
        }
        Ok(Server {
            addr,
            served,
            tls_failures,
            stop,
            threads: handles,
            recorded,
        })
    }

    /// The requests answered so far, when recording.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.recorded
            .as_ref()
            .map(|r| {
                r.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone()
            })
            .unwrap_or_default()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests answered so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// TLS handshakes that failed so far.
    pub fn tls_failures(&self) -> u64 {
        self.tls_failures.load(Ordering::Relaxed)
    }

    /// Stops serving and waits for the threads (within about 50 ms).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// `engine serve`: serves until Ctrl-C or SIGTERM, printing the bound address first.
pub fn serve_command(args: &ServeArgs) -> io::Result<()> {
    // Handlers first: a signal that arrives once the address is printed must stop the server cleanly.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])?;
    let behaviour = Behaviour {
        stall: args.stall_every.zip(args.stall_for),
        latency_mix: args
            .latency_mix
            .as_ref()
            .map(|m| m.0.clone())
            .unwrap_or_default(),
    };
    if let Some((every, hold)) = behaviour.stall
        && (every.is_zero() || hold >= every)
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--stall-for must be shorter than --stall-every",
        ));
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(
            crate::tls::server_config(cert, key)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
        ),
        _ => None,
    };
    let server = Server::start_tls(
        &ServerConfig {
            addr: args.addr.clone(),
            threads: args.threads,
            io: args.io,
            cpu: None,
            record: false,
            behaviour,
        },
        tls,
    )?;
    println!("{}", server.addr());
    let _ = signals.forever().next();
    eprintln!("served {} requests", server.served());
    server.stop();
    Ok(())
}
async fn wait_for(stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        monoio::time::sleep(Duration::from_millis(50)).await;
    }
}
