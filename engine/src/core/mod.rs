//! What every core shares, whatever runs it: the read-only plan a core starts with, the reports it
//! sends the coordinator, and the [`Recorder`] that turns every request into one sample (the log
//! writer, histograms, interval records). The loop itself is `event_loop`. Nothing here is shared
//! with other cores except the read-only plan (copied in at start), the stop flag (read on the loop's
//! tick, not per request) and the channel for per-second reports.
//!
//! `report` holds what a core sends the coordinator, `recorder` the [`Recorder`], and `failures` how a
//! sample's failure message is interned and counted by reason each second.

mod failures;
mod recorder;
mod report;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Sender;
use std::time::Duration;

use formats::{LogHeader, LogWriter, MessageId, NameId};

use crate::clock::Clock;
use crate::driver::IoDriver;
use crate::http::Limits;
use crate::live::tally::NameTally;
use crate::logsink::QueueSink;
use crate::plan::{LoadPlan, OpenCore, UserPlan};
use crate::scenario::Scenario;
use crate::scenario::exec::Interner;
use crate::scenario::wire::Wire;
use crate::tls::TlsClient;

pub(crate) use failures::Message;
pub(crate) use recorder::{InFlight, Recorder, TaskMark};
pub(crate) use report::{CoreDone, Report, SecondReport};

/// How often a core looks at the global stop flag and the clock.
pub(crate) const TICK: Duration = Duration::from_millis(50);
/// How far ahead of now the run's time zero is set: the time every core has to set up (runtime,
/// io_uring, log file, users' memory) before its schedule starts. On the shared 2-core VM, under
/// builds, cores were ready in time with this lead; only a deliberately starved core (a busy thread on
/// its CPU, the engine at nice 19) was late. A late core records how late in its first interval
/// (`start_late_us`), and its first second is then reported as start-up.
pub(crate) const STARTUP_LEAD: Duration = Duration::from_millis(50);
/// How long in-flight requests may take to finish after a planned end.
pub(crate) const GRACE_COMPLETED: Duration = Duration::from_secs(2);
/// ... and after Ctrl-C, which must finalize the run within a second.
pub(crate) const GRACE_INTERRUPTED: Duration = Duration::from_millis(300);

/// The read-only part of the plan every core copies at start.
#[derive(Debug)]
pub(crate) struct SharedPlan {
    pub scenario: Scenario,
    /// Each request's wire template, for the target's Host header.
    pub wires: Vec<Wire>,
    pub limits: Limits,
    pub addrs: Vec<SocketAddr>,
    /// TLS for an `https://` target.
    pub tls: Option<TlsClient>,
    /// Where each step channel connects.
    pub endpoints: Vec<crate::protocol::Endpoint>,
    /// TLS for each step channel that needs it (`wss://`).
    pub channel_tls: Vec<Option<TlsClient>>,
    pub duration: Duration,
    pub load: LoadPlan,
    /// Whether a live view (`--web`, `--metrics`) wants per-name data every second.
    pub live: bool,
    /// The values of the profile's secrets, hidden where failure messages quote a response.
    pub secrets: Vec<String>,
    /// `engine try`: every exchange is traced. `None` in a normal run.
    pub trace: Option<Arc<crate::debug::TraceOptions>>,
    /// How long an io_uring wait may linger for more completions, µs (`--linger`; 0: never).
    pub linger_us: u32,
}

/// Everything a core thread is started with.
#[derive(Debug)]
pub(crate) struct CoreSetup {
    pub index: u32,
    pub cpu: Option<u32>,
    pub users: Vec<UserPlan>,
    /// This core's share of a closed model's iteration limit.
    pub iterations: Option<u64>,
    /// This core's arrivals and pool, in an open model.
    pub open: Option<OpenCore>,
    /// Where this core sits in the deal of users, arrivals and rows (its shard and core).
    pub seat: crate::schedule::Seat,
    pub plan: Arc<SharedPlan>,
    pub driver: IoDriver,
    pub clock: Clock,
    pub header: LogHeader,
    pub log_path: PathBuf,
    pub stop: Arc<AtomicBool>,
    pub reports: Sender<Report>,
    /// Changes of the load from the dashboard ([`crate::steer`]), read once per tick; `None` when the
    /// run cannot be steered.
    pub steer: Option<std::sync::mpsc::Receiver<crate::steer::Change>>,
}

/// The body of a core thread: the event loop on the run's backend. Never panics on I/O trouble:
/// errors are reported in [`CoreDone`].
pub(crate) fn run_core(setup: CoreSetup) {
    let pinned = setup.cpu.is_some_and(crate::sys::pin_current_thread);
    let reports = setup.reports.clone();
    let driver = setup.driver;
    let done = crate::event_loop::core_main(setup, pinned, driver);
    let _ = reports.send(Report::Done(done));
}

/// Interns into the core's log writer, keeping a statistics slot per request name.
pub(crate) struct CoreInterner<'a> {
    writer: &'a mut LogWriter<QueueSink>,
    by_name: &'a mut Vec<NameTally>,
}

impl<'a> CoreInterner<'a> {
    pub(crate) fn new(
        writer: &'a mut LogWriter<QueueSink>,
        by_name: &'a mut Vec<NameTally>,
    ) -> CoreInterner<'a> {
        CoreInterner { writer, by_name }
    }
}

impl Interner for CoreInterner<'_> {
    fn name(&mut self, name: &str) -> NameId {
        let id = self.writer.intern_name(name);
        if id.0 as usize >= self.by_name.len() {
            self.by_name.push(NameTally::new(name));
        }
        id
    }

    fn message(&mut self, message: &str) -> MessageId {
        self.writer.intern_message(message)
    }
}
