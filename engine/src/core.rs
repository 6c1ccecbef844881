//! One engine thread: a pinned OS thread owning a monoio runtime, its users' connections, an RNG,
//! histograms and the `formats` log writer. Nothing here is shared with other cores except the
//! read-only plan (copied in at start), the stop flag (read by a timer, not per request) and the
//! channel for per-second reports.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::task::Waker;
use std::time::Duration;

use formats::{IntervalStats, LogHeader, LogWriter, MessageId, NameId, Outcome, Sample};
use hdrhistogram::Histogram;

use crate::clock::Clock;
use crate::driver::IoDriver;
use crate::http::{Exchange, Limits};
use crate::logsink::{LogFile, QueueSink};
use crate::open::Pool;
use crate::plan::{LoadPlan, OpenCore, UserPlan};
use crate::rng::Rng;
use crate::scenario::Scenario;
use crate::scenario::exec::{CoreScenario, Interner};
use crate::scenario::wire::Wire;
use crate::schedule::Population;
use crate::tls::TlsClient;

/// How often a core looks at the global stop flag and the clock.
pub(crate) const TICK: Duration = Duration::from_millis(50);
/// How often the file-writer task drains queued blocks.
const DRAIN_EVERY: Duration = Duration::from_millis(250);
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
    /// Engine threads in the run.
    pub cores: u32,
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
    pub plan: Arc<SharedPlan>,
    pub driver: IoDriver,
    pub clock: Clock,
    pub header: LogHeader,
    pub log_path: PathBuf,
    pub stop: Arc<AtomicBool>,
    pub reports: Sender<Report>,
}

/// What a core tells the coordinator.
#[derive(Debug)]
pub(crate) enum Report {
    /// One second of this core's activity.
    Second(SecondReport),
    /// The core has finished and its log is closed.
    Done(CoreDone),
}

#[derive(Debug)]
pub(crate) struct SecondReport {
    pub core: u32,
    /// Which second of the run this closes (1 for the first; the last may be partial).
    pub second: u64,
    pub active_users: u32,
    pub requests: u32,
    pub failures: u32,
    /// Corrected latency (from the intended start) of the requests completed this second, µs.
    pub latency: Histogram<u64>,
    /// Schedule lag (actual minus intended start) of the requests completed this second, µs.
    pub lag: Histogram<u64>,
    pub lag_max_us: u32,
    pub iterations_dropped: u32,
}

#[derive(Debug)]
pub(crate) struct CoreDone {
    pub core: u32,
    /// Per request name: name, corrected-latency histogram, successes, failures.
    pub names: Vec<(String, Histogram<u64>, u64, u64)>,
    pub samples: u64,
    /// Schedule lag (actual minus intended start) of every request, µs.
    pub lag: Option<Histogram<u64>>,
    pub iterations_started: u64,
    pub iterations_dropped: u64,
    pub pinned: bool,
    /// Set when the core could not write its log.
    pub error: Option<String>,
    /// Requests that failed because this generator ran out of something (file descriptors, ports,
    /// memory), and the first such message: the console says so, since they are not the target's fault.
    pub local_resource: (u64, Option<String>),
}

impl CoreDone {
    /// A core that could not run: no samples, and why.
    pub(crate) fn failed(core: u32, pinned: bool, error: String) -> CoreDone {
        CoreDone {
            core,
            names: Vec::new(),
            samples: 0,
            lag: None,
            iterations_started: 0,
            iterations_dropped: 0,
            pinned,
            error: Some(error),
            local_resource: (0, None),
        }
    }
}

/// A sample's failure message.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Message<'a> {
    /// None for success; for a status failure, the interned "unexpected status N".
    Default,
    /// Interned on the spot (transport failures with details).
    Text(&'a str),
    /// Interned when the core started (extraction and check failures).
    Id(MessageId),
}

/// A request on the wire, remembered so that the watchdog can time it out and the end of the run can
/// log it as cancelled.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InFlight {
    pub name: NameId,
    pub intended_us: u64,
    pub actual_us: u64,
    pub user: u32,
    /// When the request timeout expires, µs since time zero.
    pub deadline_us: u64,
}

/// What the watchdog and a user's request share: a flag the watchdog sets when the request is overdue,
/// and the user task's waker (stored once; a task's waker does not change on its own core).
#[derive(Debug, Default)]
pub(crate) struct UserSlot {
    pub timed_out: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl UserSlot {
    pub fn register(&self, waker: &Waker) {
        let mut slot = self.waker.borrow_mut();
        match &*slot {
            Some(w) if w.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }

    fn time_out(&self) {
        self.timed_out.set(true);
        self.wake();
    }

    /// Wakes the user's task (a new arrival for a pooled user, or the end of the run).
    pub fn wake(&self) {
        if let Some(w) = &*self.waker.borrow() {
            w.wake_by_ref();
        }
    }
}

/// A closed model as one core runs it.
#[derive(Debug)]
pub(crate) struct ClosedLoad {
    pub population: Population,
    /// Each user stops after this many iterations.
    pub per_user: Option<u64>,
}

/// What the users of one core share. Single-threaded: `Cell`/`RefCell`, never locks.
#[derive(Debug)]
pub(crate) struct CoreCtx {
    pub clock: Clock,
    /// Users, requests, feeder cursors, shared tokens.
    pub scenario: CoreScenario,
    pub limits: Limits,
    /// TLS for an `https://` target (the configuration is shared read-only; sessions are per user).
    pub tls: Option<TlsClient>,
    /// Where each step channel connects.
    pub endpoints: Vec<crate::protocol::Endpoint>,
    /// TLS for each step channel that needs it (`wss://`).
    pub channel_tls: Vec<Option<TlsClient>>,
    pub end_us: u64,
    pub stopping: Cell<bool>,
    /// Users running on_stop requests; the end of the run waits for them (within its grace period).
    pub lingering: Cell<u32>,
    pub rng: RefCell<Rng>,
    pub rec: RefCell<Recorder>,
    /// One per user of this core, by local index.
    pub slots: Vec<UserSlot>,
    /// The closed model's population, or `None` in an open model.
    pub closed: Option<ClosedLoad>,
    /// The open model's users, or `None` in a closed model.
    pub pool: Option<Pool>,
    /// Iterations this core may still start (closed models with a limit).
    budget: Cell<Option<u64>>,
    /// Closed-model users that have not finished for good.
    users_left: Cell<u32>,
    addrs: Vec<SocketAddr>,
    next_addr: Cell<usize>,
}

impl CoreCtx {
    /// Times out every request past its deadline. Called by the control loop every tick.
    fn expire_overdue(&self, now_us: u64) {
        let rec = self.rec.borrow();
        if rec.in_flight_count == 0 {
            return;
        }
        for (local, req) in rec.in_flight.iter().enumerate() {
            if req.is_some_and(|r| r.deadline_us <= now_us) {
                self.slots[local].time_out();
            }
        }
    }

    /// Takes one iteration from this core's limit; `false` when it is used up.
    pub fn take_iteration(&self) -> bool {
        match self.budget.get() {
            None => true,
            Some(0) => false,
            Some(n) => {
                self.budget.set(Some(n - 1));
                true
            }
        }
    }

    /// A closed-model user will run no more iterations.
    pub fn user_finished(&self) {
        self.users_left.set(self.users_left.get().saturating_sub(1));
    }

    /// Whether this core's load is over before its planned end: every closed user has finished, or
    /// the open schedule is exhausted (by an iteration limit) and every user is idle.
    fn finished_early(&self) -> bool {
        match &self.pool {
            Some(pool) => pool.done.get() && pool.all_idle(),
            None => self.users_left.get() == 0,
        }
    }

    /// Wakes every task that waits for something other than a timer, so it sees `stopping`.
    fn wake_all(&self) {
        for slot in &self.slots {
            slot.wake();
        }
        if let Some(pool) = &self.pool {
            pool.wake_scheduler();
        }
    }

    /// The target addresses, round-robin.
    pub fn next_addr(&self) -> SocketAddr {
        let i = self.next_addr.get();
        self.next_addr
            .set(if i + 1 >= self.addrs.len() { 0 } else { i + 1 });
        self.addrs[i]
    }
}

/// Counts, histograms and the log writer of one core.
#[derive(Debug)]
pub(crate) struct Recorder {
    writer: Option<LogWriter<QueueSink>>,
    sink: QueueSink,
    core: u32,
    by_name: Vec<NameStats>,
    second: Histogram<u64>,
    lag: Histogram<u64>,
    /// Schedule lag over the whole run.
    lag_total: Histogram<u64>,
    interval: IntervalStats,
    active_users: u32,
    open_connections: u32,
    in_flight: Vec<Option<InFlight>>,
    in_flight_count: usize,
    /// Interned "unexpected status N" messages, so a failing endpoint does not format per request.
    status_messages: Vec<Option<MessageId>>,
    cpu_at_interval_start: (Duration, Duration),
    started_total: u64,
    dropped_total: u64,
    local_resource: (u64, Option<String>),
}

#[derive(Debug)]
pub(crate) struct NameStats {
    name: String,
    latency: Histogram<u64>,
    ok: u64,
    failed: u64,
}

fn histogram(sigfig: u8) -> Histogram<u64> {
    // 1 µs to one hour; larger values saturate at the top bucket.
    Histogram::new_with_bounds(1, 3_600_000_000, sigfig).expect("valid histogram bounds")
}

impl Recorder {
    /// A recorder writing through `writer` (whose blocks go to `sink`), with the statistics slots of
    /// the names already interned and room for `users` requests in flight.
    pub(crate) fn new(
        writer: LogWriter<QueueSink>,
        sink: QueueSink,
        core: u32,
        by_name: Vec<NameStats>,
        users: usize,
    ) -> Recorder {
        Recorder {
            writer: Some(writer),
            sink,
            core,
            by_name,
            second: histogram(2),
            lag: histogram(2),
            lag_total: histogram(2),
            interval: IntervalStats::default(),
            active_users: 0,
            open_connections: 0,
            in_flight: vec![None; users],
            in_flight_count: 0,
            status_messages: vec![None; 600],
            cpu_at_interval_start: crate::sys::thread_cpu_time(),
            started_total: 0,
            dropped_total: 0,
            local_resource: (0, None),
        }
    }

    /// Finishes the log (its last block goes to the sink) and hands over the core's totals.
    pub(crate) fn take_done(&mut self, core: u32, pinned: bool) -> CoreDone {
        let writer = self.writer.take().expect("the writer is taken only here");
        let samples = writer.samples_written() + writer.samples_buffered() as u64;
        let _ = writer.finish();
        CoreDone {
            core,
            names: self
                .by_name
                .iter()
                .map(|n| (n.name.clone(), n.latency.clone(), n.ok, n.failed))
                .collect(),
            samples,
            lag: Some(self.lag_total.clone()),
            iterations_started: self.started_total,
            iterations_dropped: self.dropped_total,
            pinned,
            error: None,
            local_resource: std::mem::take(&mut self.local_resource),
        }
    }

    /// The queue the log writer's finished blocks go to.
    pub(crate) fn sink(&self) -> QueueSink {
        self.sink.clone()
    }

    /// The open-connections gauge, for a loop that tracks sockets itself.
    pub(crate) fn connection_opened_gauge(&mut self) {
        self.open_connections += 1;
    }

    pub(crate) fn connection_closed_gauge(&mut self) {
        self.open_connections = self.open_connections.saturating_sub(1);
    }

    pub fn user_started(&mut self) {
        self.active_users += 1;
    }

    pub fn user_stopped(&mut self, connection_open: bool) {
        self.active_users = self.active_users.saturating_sub(1);
        if connection_open {
            self.open_connections = self.open_connections.saturating_sub(1);
        }
    }

    pub fn iteration_started(&mut self) {
        self.interval.iterations_started = self.interval.iterations_started.saturating_add(1);
        self.started_total += 1;
    }

    /// An arrival found no free user and no room to wait: counted, never skipped silently.
    pub fn iteration_dropped(&mut self) {
        self.interval.iterations_dropped = self.interval.iterations_dropped.saturating_add(1);
        self.dropped_total += 1;
    }

    pub fn begin(&mut self, local: usize, request: InFlight) {
        if self.in_flight[local].replace(request).is_none() {
            self.in_flight_count += 1;
        }
    }

    /// Logs the request user `local` had in flight. Does nothing if it was already logged as cancelled.
    #[allow(clippy::too_many_arguments)]
    pub fn finish(
        &mut self,
        local: usize,
        ex: &Exchange,
        outcome: Outcome,
        message: Message<'_>,
        end_us: u64,
        was_open: bool,
        now_open: bool,
    ) {
        let Some(req) = self.in_flight[local].take() else {
            return;
        };
        self.in_flight_count -= 1;
        if ex.connected {
            self.interval.connections_opened += 1;
        }
        self.open_connections =
            (self.open_connections + u32::from(now_open)).saturating_sub(u32::from(was_open));
        if outcome == Outcome::LocalResource {
            self.local_resource.0 += 1;
            // One allocation, on the first such failure only.
            if self.local_resource.1.is_none()
                && let Message::Text(text) = message
            {
                self.local_resource.1 = Some(text.to_owned());
            }
        }
        let message = match (outcome, message) {
            (Outcome::Ok, _) => None,
            (_, Message::Id(id)) => Some(id),
            (_, Message::Text(text)) => self.writer.as_mut().map(|w| w.intern_message(text)),
            (Outcome::Status, Message::Default) => self.status_message(ex.status),
            (_, Message::Default) => None,
        };
        let sample = Sample {
            name: req.name,
            intended_us: req.intended_us,
            actual_us: req.actual_us,
            latency_us: (end_us.saturating_sub(req.actual_us).max(1)).min(u64::from(u32::MAX))
                as u32,
            connect_us: ex.connect_us,
            ttfb_us: ex.ttfb_us,
            status: ex.status,
            outcome,
            message,
            bytes_sent: ex.bytes_sent,
            bytes_received: ex.bytes_received,
            user: req.user,
        };
        self.record(&sample);
    }

    fn status_message(&mut self, status: u16) -> Option<MessageId> {
        let slot = self.status_messages.get_mut(usize::from(status))?;
        if slot.is_none() {
            *slot = self
                .writer
                .as_mut()
                .map(|w| w.intern_message(&format!("unexpected status {status}")));
        }
        *slot
    }

    fn record(&mut self, s: &Sample) {
        let Some(writer) = self.writer.as_mut() else {
            return;
        };
        let _ = writer.push(*s);
        let corrected = s.corrected_latency_us();
        let stats = &mut self.by_name[s.name.0 as usize];
        stats.latency.saturating_record(corrected);
        if s.outcome == Outcome::Ok {
            stats.ok += 1;
        } else {
            stats.failed += 1;
            self.interval.failures = self.interval.failures.saturating_add(1);
        }
        self.second.saturating_record(corrected);
        let lag = s.actual_us.saturating_sub(s.intended_us).max(1);
        self.lag.saturating_record(lag);
        self.lag_total.saturating_record(lag);
        self.interval.requests = self.interval.requests.saturating_add(1);
    }

    /// Logs every request still in flight as cancelled by the end of the run.
    pub(crate) fn cancel_in_flight(&mut self, end_us: u64) {
        let message = self
            .writer
            .as_mut()
            .map(|w| w.intern_message("the run ended before the response arrived"));
        for local in 0..self.in_flight.len() {
            if let Some(req) = self.in_flight[local].take() {
                self.in_flight_count -= 1;
                let sample = Sample {
                    name: req.name,
                    intended_us: req.intended_us,
                    actual_us: req.actual_us,
                    latency_us: end_us
                        .saturating_sub(req.actual_us)
                        .clamp(1, u64::from(u32::MAX)) as u32,
                    outcome: Outcome::Cancelled,
                    message,
                    user: req.user,
                    ..Sample::default()
                };
                self.record(&sample);
            }
        }
    }

    /// Closes the interval that started at `start_us`: logs its counters and resets them.
    pub(crate) fn close_interval(
        &mut self,
        start_us: u64,
        now_us: u64,
        second: u64,
    ) -> SecondReport {
        let cpu = crate::sys::thread_cpu_time();
        let (u0, s0) = self.cpu_at_interval_start;
        self.cpu_at_interval_start = cpu;
        let lag_at = |q: f64| self.lag.value_at_quantile(q).min(u64::from(u32::MAX)) as u32;
        let stats = IntervalStats {
            start_us,
            duration_us: now_us.saturating_sub(start_us).min(u64::from(u32::MAX)) as u32,
            active_users: self.active_users,
            lag_p50_us: lag_at(0.5),
            lag_p99_us: lag_at(0.99),
            lag_max_us: self.lag.max().min(u64::from(u32::MAX)) as u32,
            cpu_user_us: cpu.0.saturating_sub(u0).as_micros() as u32,
            cpu_system_us: cpu.1.saturating_sub(s0).as_micros() as u32,
            open_connections: self.open_connections,
            ..self.interval
        };
        let report = SecondReport {
            core: self.core,
            second,
            active_users: self.active_users,
            requests: stats.requests,
            failures: stats.failures,
            latency: self.second.clone(),
            lag: self.lag.clone(),
            lag_max_us: stats.lag_max_us,
            iterations_dropped: stats.iterations_dropped,
        };
        if let Some(w) = self.writer.as_mut() {
            w.push_interval(stats);
            let _ = w.flush();
        }
        self.interval = IntervalStats::default();
        self.second.reset();
        self.lag.reset();
        report
    }
}

/// The body of a core thread. Never panics on I/O trouble: errors are reported in [`CoreDone`].
pub(crate) fn run_core(setup: CoreSetup) {
    let pinned = setup.cpu.is_some_and(crate::sys::pin_current_thread);
    let reports = setup.reports.clone();
    let core = setup.index;
    let driver = setup.driver;
    let done = match driver {
        IoDriver::Loop(backend) => crate::event_loop::core_main(setup, pinned, backend),
        _ => match driver.block_on(core_main(setup, pinned)) {
            Ok(done) => done,
            Err(e) => CoreDone::failed(
                core,
                pinned,
                format!(
                    "core {core}: could not start the {} runtime: {e}",
                    driver.manifest_name()
                ),
            ),
        },
    };
    let _ = reports.send(Report::Done(done));
}

async fn core_main(setup: CoreSetup, pinned: bool) -> CoreDone {
    let core = setup.index;
    let fail = |error: String| CoreDone::failed(core, pinned, error);
    let file = match std::fs::File::create(&setup.log_path).and_then(LogFile::new) {
        Ok(f) => f,
        Err(e) => return fail(format!("cannot create {}: {e}", setup.log_path.display())),
    };
    let sink = QueueSink::default();
    let mut writer =
        LogWriter::new(&setup.header, sink.clone()).unwrap_or_else(|never| match never {});

    // Names and failure messages are interned once, here, in request order: the request path only
    // copies ids.
    let mut by_name: Vec<NameStats> = Vec::new();
    let scenario = {
        let mut interner = CoreInterner {
            writer: &mut writer,
            by_name: &mut by_name,
        };
        CoreScenario::new(
            &setup.plan.scenario,
            &setup.plan.wires,
            core,
            setup.plan.cores,
            u64::try_from(setup.clock.wall_ns / 1_000_000_000).unwrap_or(0),
            &mut interner,
        )
    };
    let _ = writer.flush();

    let users = setup.users;
    let pool = setup.open.as_ref().map(|open| Pool::new(&open.pool));
    let user_slots = pool.as_ref().map_or(users.len(), Pool::capacity);
    let closed = match &setup.plan.load {
        LoadPlan::Closed {
            population,
            iterations_per_user,
        } => Some(ClosedLoad {
            population: population.clone(),
            per_user: *iterations_per_user,
        }),
        LoadPlan::Open { .. } => None,
    };
    let ctx = Rc::new(CoreCtx {
        clock: setup.clock,
        scenario,
        limits: setup.plan.limits,
        tls: setup.plan.tls.clone(),
        endpoints: setup.plan.endpoints.clone(),
        channel_tls: setup.plan.channel_tls.clone(),
        end_us: crate::clock::micros(setup.plan.duration),
        stopping: Cell::new(false),
        lingering: Cell::new(0),
        rng: RefCell::new(Rng::new(
            u64::from_le_bytes(setup.header.run_id.0[..8].try_into().expect("8 bytes"))
                ^ (u64::from(core) << 56 | 0x5eed),
        )),
        rec: RefCell::new(Recorder::new(
            writer,
            sink.clone(),
            core,
            by_name,
            user_slots,
        )),
        slots: (0..user_slots).map(|_| UserSlot::default()).collect(),
        closed,
        pool,
        budget: Cell::new(setup.iterations),
        users_left: Cell::new(users.len() as u32),
        addrs: setup.plan.addrs.clone(),
        next_addr: Cell::new(core as usize % setup.plan.addrs.len().max(1)),
    });

    let file = Rc::new(RefCell::new(Some(file)));
    let write_error: Rc<RefCell<Option<String>>> = Rc::default();
    monoio::spawn(file_writer(
        Rc::clone(&ctx),
        Rc::clone(&file),
        Rc::clone(&write_error),
        setup.log_path.clone(),
        Arc::clone(&setup.stop),
    ));
    match setup.open {
        Some(open) => {
            monoio::spawn(crate::open::scheduler(Rc::clone(&ctx), open));
        }
        None => {
            monoio::spawn(spawner(Rc::clone(&ctx), users));
        }
    }

    // The control loop: checks the stop flag and the clock every tick and reports every second.
    let clock = ctx.clock;
    let mut interval_start = 0u64;
    let mut next_second = 1_000_000u64;
    let interrupted = loop {
        let now = clock.now_us();
        let next_tick = (now + TICK.as_micros() as u64)
            .min(next_second)
            .min(ctx.end_us.max(now));
        monoio::time::sleep_until(clock.at_us(next_tick).into()).await;
        let now = clock.now_us();
        ctx.expire_overdue(now);
        if now >= next_second {
            let report =
                ctx.rec
                    .borrow_mut()
                    .close_interval(interval_start, now, next_second / 1_000_000);
            let _ = setup.reports.send(Report::Second(report));
            interval_start = now;
            next_second += 1_000_000;
        }
        if setup.stop.load(Ordering::Relaxed) {
            break true;
        }
        if now >= ctx.end_us || ctx.finished_early() {
            break false;
        }
    };
    let grace = if interrupted {
        GRACE_INTERRUPTED
    } else {
        GRACE_COMPLETED.min(ctx.limits.request_timeout)
    };
    let give_up = clock.now_us() + grace.as_micros() as u64;
    // A Ctrl-C during the grace period of a completed run cuts the grace short.
    let cut_short = || !interrupted && setup.stop.load(Ordering::Relaxed);
    // An open schedule is the authority up to its end: arrivals due before the end that the scheduler
    // has not handed out yet (it fell behind, or they wait in the queue) still start, late, within the
    // grace period; whatever is left then is counted as dropped.
    if let Some(pool) = &ctx.pool
        && !interrupted
    {
        while !pool.done.get() && clock.now_us() < give_up && !cut_short() {
            monoio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    ctx.stopping.set(true);
    ctx.wake_all();

    // Let requests on the wire finish, within the grace period.
    let busy = || ctx.rec.borrow().in_flight_count > 0 || ctx.lingering.get() > 0;
    while busy() && clock.now_us() < give_up && !cut_short() {
        monoio::time::sleep(Duration::from_millis(2)).await;
        ctx.expire_overdue(clock.now_us());
    }
    let now = clock.now_us();
    let mut done = {
        let mut rec = ctx.rec.borrow_mut();
        rec.cancel_in_flight(now);
        // The last, partial interval is labelled with the second it falls in.
        let report = rec.close_interval(interval_start, now, next_second / 1_000_000);
        let _ = setup.reports.send(Report::Second(report));
        rec.take_done(core, pinned)
    };
    let mut error = write_error.borrow_mut().take();
    // The file-writer task holds the file only while a write is in progress; wait for it to give it back.
    let mut file_back = file.borrow_mut().take();
    for _ in 0..5000 {
        if file_back.is_some() {
            break;
        }
        monoio::time::sleep(Duration::from_millis(1)).await;
        file_back = file.borrow_mut().take();
    }
    let file = file_back;
    if let Some(mut file) = file {
        let sink = ctx.rec.borrow().sink.clone();
        let mut scratch = Vec::new();
        if let Err(e) = file.drain(&sink, &mut scratch).await {
            error.get_or_insert(format!("cannot write {}: {e}", setup.log_path.display()));
        }
        if let Err(e) = file.close().await {
            error.get_or_insert(format!("closing {}: {e}", setup.log_path.display()));
        }
    }
    done.error = error;
    done
}

/// Interns into the core's log writer, keeping a statistics slot per request name.
pub(crate) struct CoreInterner<'a> {
    writer: &'a mut LogWriter<QueueSink>,
    by_name: &'a mut Vec<NameStats>,
}

impl<'a> CoreInterner<'a> {
    pub(crate) fn new(
        writer: &'a mut LogWriter<QueueSink>,
        by_name: &'a mut Vec<NameStats>,
    ) -> CoreInterner<'a> {
        CoreInterner { writer, by_name }
    }
}

impl Interner for CoreInterner<'_> {
    fn name(&mut self, name: &str) -> NameId {
        let id = self.writer.intern_name(name);
        if id.0 as usize >= self.by_name.len() {
            self.by_name.push(NameStats {
                name: name.to_owned(),
                latency: histogram(3),
                ok: 0,
                failed: 0,
            });
        }
        id
    }

    fn message(&mut self, message: &str) -> MessageId {
        self.writer.intern_message(message)
    }
}

/// Starts each user at its spawn time, until the run stops. Users it never starts count as finished.
async fn spawner(ctx: Rc<CoreCtx>, users: Vec<UserPlan>) {
    let total = users.len();
    let mut spawned = 0;
    for (local, user) in users.into_iter().enumerate() {
        let at = crate::clock::micros(user.spawn_at);
        if at >= ctx.end_us {
            break;
        }
        // Early by the timer slack, like think time, so a user's first request is not "late" by
        // timer rounding; the user then starts at once and its intended start is the actual one.
        let wake = at.saturating_sub(crate::clock::micros(crate::users::TIMER_SLACK));
        if wake > ctx.clock.now_us() {
            monoio::time::sleep_until(ctx.clock.at_us(wake).into()).await;
        }
        if ctx.stopping.get() {
            break;
        }
        monoio::spawn(crate::users::run_user(Rc::clone(&ctx), local, user));
        spawned += 1;
    }
    for _ in spawned..total {
        ctx.user_finished();
    }
}

/// Writes queued log blocks to the file a few times a second. The core's control loop owns the file
/// again at the end, after this task has stopped touching it.
///
/// A write that fails (a full disk, a file-size limit) stops the whole run: load that is not recorded
/// is wasted on the target, and everything written before the failure stays readable, because blocks
/// are written whole and in order.
async fn file_writer(
    ctx: Rc<CoreCtx>,
    file: Rc<RefCell<Option<LogFile>>>,
    error: Rc<RefCell<Option<String>>>,
    path: PathBuf,
    stop: Arc<AtomicBool>,
) {
    let sink = ctx.rec.borrow().sink.clone();
    let mut scratch = Vec::new();
    while !ctx.stopping.get() {
        monoio::time::sleep(DRAIN_EVERY).await;
        // Take the file out while writing so the control loop never sees it mid-write.
        let Some(mut f) = file.borrow_mut().take() else {
            return;
        };
        let result = f.drain(&sink, &mut scratch).await;
        *file.borrow_mut() = Some(f);
        if let Err(e) = result {
            error.borrow_mut().get_or_insert(format!(
                "cannot write {}: {e}; the run stopped here, and the log keeps every block written before",
                path.display()
            ));
            stop.store(true, Ordering::SeqCst);
            return;
        }
    }
}
