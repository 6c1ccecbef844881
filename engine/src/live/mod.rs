//! The live view of a run: a dashboard in the browser (`--web`) and Prometheus metrics
//! (`--metrics`). A window onto the run, never its record: the sample logs stay the record, and the
//! analyzer's report the analysis.
//!
//! ```text
//! cores ──SecondReport (+ LiveSecond)──▶ coordinator: Console, Hub ──Arc<Snapshot>──▶ HTTP threads
//!   (per-second tick, off the request path)   (merges, makes a snapshot        (render JSON or
//!                                               once a second)                   Prometheus text)
//! ```
//!
//! Nothing here runs on an engine core or takes a lock a core waits on. The cores do what they do
//! without a live view (see [`tally`]), except that at each one-second tick they copy out their
//! per-name histogram buckets and counters. The coordinator merges those ([`hub`]) and swaps a new
//! immutable [`Snapshot`] into [`Shared`]; the HTTP threads ([`http`], [`app`]) clone the `Arc` under a
//! lock held for a pointer copy and render from their copy.

mod app;
mod http;
mod hub;
mod metrics;
mod snapshot;
pub(crate) mod tally;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use formats::RunState;

use crate::cli::LiveArgs;
use crate::core::SecondReport;
use crate::error::Error;
use crate::plan::LoadPlan;
use crate::steer::Steering;

pub(crate) use snapshot::RunInfo;

use self::http::{Bound, Server};
use self::hub::Hub;
use self::snapshot::{Phase, Snapshot};

/// How long the engine waits at the end of a run for a dashboard or scraper that was active in the
/// last [`ACTIVE_WITHIN`] to fetch the final state.
const LINGER: Duration = Duration::from_secs(5);
const ACTIVE_WITHIN: Duration = Duration::from_secs(5);

/// The listening sockets, bound before the run starts so that a taken port stops the run before it
/// writes anything.
#[derive(Debug)]
pub(crate) struct Listeners {
    web: Option<Bound>,
    metrics: Option<Bound>,
    /// `--metrics` named the `--web` address: the dashboard's listener serves both.
    metrics_on_web: bool,
}

impl Listeners {
    /// Whether the dashboard is served (and with it, steering).
    pub fn serves_web(&self) -> bool {
        self.web.is_some()
    }

    /// Binds what the flags ask for; `None` when they ask for nothing.
    pub fn bind(args: &LiveArgs) -> Result<Option<Listeners>, Error> {
        if args.web.is_none() && args.metrics.is_none() {
            return Ok(None);
        }
        let bind = |flag: &'static str, addr: SocketAddr| {
            Bound::bind(addr).map_err(|source| Error::Listen { flag, addr, source })
        };
        let web = args.web.map(|a| bind("--web", a)).transpose()?;
        // One address for both serves both from one listener.
        let metrics_on_web =
            matches!((args.metrics, args.web), (Some(m), Some(w)) if m == w && m.port() != 0);
        let metrics = match args.metrics {
            Some(m) if !metrics_on_web => Some(bind("--metrics", m)?),
            _ => None,
        };
        Ok(Some(Listeners {
            web,
            metrics,
            metrics_on_web,
        }))
    }
}

/// What Stop on the dashboard does: exactly what the first Ctrl-C does (the runner's signal thread
/// shares these flags): the cores see the stop flag at their next tick, the logs are flushed and the
/// manifest says `interrupted`. It counts as an interrupt, so a Ctrl-C after it exits at once, as a
/// second Ctrl-C does.
#[derive(Debug, Clone)]
pub(crate) struct StopHandle {
    pub stop: Arc<AtomicBool>,
    pub interrupts: Arc<AtomicU32>,
}

impl StopHandle {
    /// Asks the run to stop; returns whether this was the first request.
    pub fn request(&self) -> bool {
        let first = self.interrupts.fetch_add(1, Ordering::SeqCst) == 0;
        self.stop.store(true, Ordering::SeqCst);
        first
    }
}

/// What the coordinator and the HTTP threads share.
#[derive(Debug)]
pub(crate) struct Shared {
    snapshot: Mutex<Arc<Snapshot>>,
    activity: Mutex<Activity>,
    fetched: Condvar,
}

/// Who has been looking, so the end of the run can wait for them to see it.
#[derive(Debug, Default)]
struct Activity {
    last_page: Option<Instant>,
    last_scrape: Option<Instant>,
    page_saw_end: bool,
    scraper_saw_end: bool,
}

/// Who fetched a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Viewer {
    Page,
    Scraper,
}

impl Shared {
    fn new(first: Snapshot) -> Shared {
        Shared {
            snapshot: Mutex::new(Arc::new(first)),
            activity: Mutex::new(Activity::default()),
            fetched: Condvar::new(),
        }
    }

    /// The latest snapshot, noting who asked.
    pub fn fetch(&self, viewer: Viewer) -> Arc<Snapshot> {
        let snap = Arc::clone(&self.snapshot.lock().unwrap_or_else(PoisonError::into_inner));
        let mut a = self.activity.lock().unwrap_or_else(PoisonError::into_inner);
        let ended = snap.phase.ended();
        match viewer {
            Viewer::Page => {
                a.last_page = Some(Instant::now());
                a.page_saw_end |= ended;
            }
            Viewer::Scraper => {
                a.last_scrape = Some(Instant::now());
                a.scraper_saw_end |= ended;
            }
        }
        drop(a);
        if ended {
            self.fetched.notify_all();
        }
        snap
    }

    fn publish(&self, s: Snapshot) {
        *self.snapshot.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(s);
    }

    /// Waits (at most [`LINGER`]) until every kind of viewer seen in the last [`ACTIVE_WITHIN`] has
    /// fetched the final snapshot.
    fn linger(&self) {
        let deadline = Instant::now() + LINGER;
        let recent = |t: Option<Instant>| t.is_some_and(|t| t.elapsed() < ACTIVE_WITHIN);
        let mut a = self.activity.lock().unwrap_or_else(PoisonError::into_inner);
        let (page, scraper) = (recent(a.last_page), recent(a.last_scrape));
        loop {
            let waiting = (page && !a.page_saw_end) || (scraper && !a.scraper_saw_end);
            let left = deadline.saturating_duration_since(Instant::now());
            if !waiting || left.is_zero() {
                return;
            }
            a = self
                .fetched
                .wait_timeout(a, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// The live view of one run, owned by the coordinator.
#[derive(Debug)]
pub(crate) struct Live {
    hub: Hub,
    shared: Arc<Shared>,
    servers: Vec<Server>,
}

impl Live {
    /// Starts serving `listeners` for the run `info`; prints where, and warns about addresses other
    /// machines can reach.
    pub fn start(
        listeners: Listeners,
        mut info: RunInfo,
        load: LoadPlan,
        stop: StopHandle,
        steering: Option<Arc<Steering>>,
    ) -> Result<Live, Error> {
        info.can_stop = listeners.web.is_some();
        let info = Arc::new(info);
        let mut hub = Hub::new(Arc::clone(&info), load, Arc::clone(&stop.stop));
        hub.steered_by(steering.clone());
        let shared = Arc::new(Shared::new(hub.snapshot(Phase::Running, None)));
        let mut servers = Vec::new();
        let mut serve = |bound: Bound, services: app::Services| -> Result<(), Error> {
            let addr = bound.addr();
            let app = app::App::new(Arc::clone(&shared), services, addr, stop.clone())
                .steering(steering.clone());
            let server = Server::start(bound, Arc::new(app), http::LIMITS).map_err(|source| {
                Error::System {
                    context: "starting the live view's server thread",
                    source,
                }
            })?;
            servers.push(server);
            Ok(())
        };
        if let Some(web) = listeners.web {
            let addr = web.addr();
            eprintln!("live dashboard: http://{addr}/");
            if listeners.metrics_on_web {
                eprintln!("prometheus metrics: http://{addr}/metrics");
            }
            warn_if_exposed("--web", addr, "see the run, steer it and stop it");
            // The dashboard's address serves /metrics too.
            serve(
                web,
                app::Services {
                    web: true,
                    metrics: true,
                },
            )?;
        }
        if let Some(metrics) = listeners.metrics {
            let addr = metrics.addr();
            eprintln!("prometheus metrics: http://{addr}/metrics");
            warn_if_exposed("--metrics", addr, "read the metrics");
            serve(
                metrics,
                app::Services {
                    web: false,
                    metrics: true,
                },
            )?;
        }
        Ok(Live {
            hub,
            shared,
            servers,
        })
    }

    /// Takes a core's second; publishes a new snapshot when a second is complete.
    pub fn on_second(&mut self, r: &SecondReport) {
        if self.hub.on_second(r) {
            self.shared.publish(self.hub.snapshot(Phase::Running, None));
        }
    }

    /// A core has finished.
    pub fn on_done(&mut self, core: u32) {
        if self.hub.on_done(core) {
            self.shared.publish(self.hub.snapshot(Phase::Running, None));
        }
    }

    /// Publishes the final state once the manifest is written.
    pub fn ended(&mut self, state: RunState, error: Option<String>) {
        let phase = match state {
            RunState::Completed => Phase::Completed,
            RunState::Interrupted => Phase::Interrupted,
            RunState::Failed | RunState::Running => Phase::Failed,
        };
        self.shared.publish(self.hub.snapshot(phase, error));
    }

    /// Gives viewers that were watching a moment to fetch the final state, then stops serving.
    pub fn close(self) {
        self.shared.linger();
        for s in self.servers {
            s.stop();
        }
    }
}

fn warn_if_exposed(flag: &str, addr: SocketAddr, what: &str) {
    if !addr.ip().is_loopback() {
        eprintln!(
            "warning: {flag} {addr} listens beyond this machine: anyone who can reach it can {what}; use 127.0.0.1 unless that is what you want"
        );
    }
}
