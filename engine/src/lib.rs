//! # Stampede's load generator
//!
//! `engine run profile.ron` turns a RON profile into a [`plan::Plan`], starts one pinned thread per core
//! (each running one event loop that owns its connections, virtual users, RNG, histograms and
//! sample-log writer), and writes a run directory through the `formats` crate, the only contract with
//! the analyzer.
//!
//! ```text
//! profile.ron ──profile::load──▶ ProfileSpec ──Plan::resolve──▶ Plan ──runner──▶ cores ──▶ runs/<id>/
//!                                                                      └──▶ console (coordinator thread)
//! ```
//!
//! Module map, in the order a run touches them: [`cli`] (flags), [`profile`] (the file as written, with
//! located errors), [`plan`] (the resolved, typed plan), `scenario` (templates, feeders, extraction,
//! checks, cookies, auth compiled once; the users' programs as state machines), [`schedule`] (pure
//! timing functions), `runner` (orchestration, run directory, manifest), `core` (what every core
//! shares: setup, recorder, reports), `event_loop` (the per-core loop on io_uring or epoll:
//! connections, TLS, HTTP exchanges, built-in protocol steps, timers, the hosted executor of custom
//! protocols), `load` (closed users, the open model's arrivals and pool), [`http`] (request rendering,
//! the sans-I/O response reader), [`protocol`] (custom protocols), `console` (live lines and the
//! summary), `logsink` (moves finished log blocks to the file off the request path), [`serve`] (the
//! embedded target, on monoio), [`shard`] (one test spread over several engines: shard identity, start
//! instant, run name), `clock_sync` (how well the machine's clock is synchronised), `live` (the dashboard and Prometheus metrics, `--web` and
//! `--metrics`). [`kube`] renders the Kubernetes manifests that run a profile as shards
//! (`engine kube`).

pub mod cli;
mod clock;
mod clock_sync;
mod console;
mod core;
pub mod debug;
mod driver;
mod engine_main;
mod error;
mod event_loop;
pub mod http;
pub mod kube;
mod live;
mod load;
mod logsink;
pub mod plan;
pub mod profile;
pub mod protocol;
mod rng;
mod runner;
mod scenario;
pub mod schedule;
pub mod serve;
pub mod shard;
mod steer;
mod sys;
pub mod tls;
mod ws;

pub use driver::IoDriver;
pub use engine_main::Engine;
pub use error::Error;
pub use runner::{RunOutcome, run, run_with};

/// `engine try`: one user of each kind, every request and response printed ([`debug`]).
pub fn try_run(args: &cli::TryArgs) -> Result<debug::TryOutcome, Error> {
    debug::try_with(args, &protocol::Protocols::default())
}

/// `engine run --debug`: the same as `engine try` with the run's flags.
pub fn run_debug(args: &cli::RunArgs) -> Result<debug::TryOutcome, Error> {
    debug::run_debug(args, &protocol::Protocols::default())
}
