//! The engine's per-core loop: one thread, one loop, every feature. Users are state machines
//! (`scenario::program`), connections are state machines ([`conn`]), responses are read by the
//! sans-I/O reader (`http::Reader`), TLS sessions are rustls on buffers, and every deadline of the core
//! (spawn times, think times, pacing slots, open-model arrivals, on_stop times, step windows) waits in
//! one timer heap ([`timers`]) whose earliest entry bounds the loop's wait. No futures, wakers or tasks
//! are on the request path.
//!
//! The loop talks to the kernel through a small completion interface ([`backend::Backend`]) with two
//! implementations: io_uring (`uring.rs`, with the only `unsafe` of the engine in `ring.rs`) and epoll
//! (`epoll.rs`) where io_uring is refused. Both run the same state machines and produce the same
//! samples.
//!
//! **One turn of the loop.** Fire the timers that are due (users wake, arrivals are released), stamp
//! the actual start of every request submitted since the last wait, wait for completions until the
//! next deadline (the backend submits everything queued as it enters the wait), then handle what
//! completed, all with one clock reading taken when the wait returned: a response's end, and the ready
//! time of whatever its user does next. Every 50 ms the tick runs the request watchdog, hands finished
//! log blocks to the backend, sends the per-second report, and looks at the stop flag.

mod backend;
mod conn;
mod epoll;
mod log;
mod ring;
mod timers;
mod uring;

use std::sync::atomic::Ordering;
use std::time::Duration;

use formats::{LogWriter, Outcome};

use crate::core::{
    CoreDone, CoreInterner, CoreSetup, GRACE_COMPLETED, GRACE_INTERRUPTED, InFlight, Message,
    Recorder, Report, TICK,
};
use crate::http::{Exchange, Failure, Limits};
use crate::load::{Arrivals, Closed, Handed, Load, Open, Pool};
use crate::logsink::QueueSink;
use crate::plan::LoadPlan;
use crate::rng::Rng;
use crate::scenario::exec::CoreScenario;
use crate::scenario::program::{Cx, Input, Next, Program};
use crate::scenario::user::{Rendered, UserState, failure_flow};
use crate::scenario::{Node, Scenario};

use backend::{Addr, Backend, Event, EventKind, GENERATION_MASK, Interned, SockKind, Src};
use conn::{Conn, Fed, HttpSink, Link, SendOp, feed, tls_failure, write_plain};
use log::LogOut;
use timers::{Owner, Timers};

pub(crate) use epoll::Epoll;
pub(crate) use uring::Uring;

/// How often queued log blocks go to the file.
const DRAIN_EVERY_US: u64 = 250_000;
/// Decrypted bytes are read from a TLS session this many at a time.
const PLAIN_CHUNK: usize = 16 << 10;

/// Which kernel interface the loop runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopBackend {
    /// io_uring (Linux 6.1+, where allowed).
    Uring,
    /// epoll, everywhere.
    Epoll,
}

/// Whether this machine can run the io_uring backend.
pub(crate) fn probe_uring() -> std::io::Result<()> {
    Uring::probe()
}

/// Why a plan cannot run on the loop yet, or `Ok` when it can.
pub(crate) fn eligible(scenario: &Scenario) -> Result<(), String> {
    if scenario.nodes.iter().any(|n| matches!(n, Node::Step(_))) {
        return Err("a task has steps of another protocol".into());
    }
    Ok(())
}

/// The body of a core thread on the loop. Never panics on I/O trouble: errors are reported in
/// [`CoreDone`].
pub(crate) fn core_main(setup: CoreSetup, pinned: bool, backend: LoopBackend) -> CoreDone {
    let core = setup.index;
    let conns = connections_for(&setup);
    match backend {
        LoopBackend::Uring => match Uring::new(conns) {
            Ok(io) => run(setup, pinned, io),
            Err(e) => CoreDone::failed(
                core,
                pinned,
                format!("core {core}: could not set up io_uring: {e}"),
            ),
        },
        LoopBackend::Epoll => match Epoll::new(conns) {
            Ok(io) => run(setup, pinned, io),
            Err(e) => CoreDone::failed(
                core,
                pinned,
                format!("core {core}: could not set up epoll: {e}"),
            ),
        },
    }
}

/// Users on this core (the open model's pool at its largest).
fn users_for(setup: &CoreSetup) -> usize {
    match &setup.open {
        Some(open) => open.pool.iter().map(|&m| m as usize).sum(),
        None => setup.users.len(),
    }
}

/// Connection slots: one per user and channel (the HTTP connection is channel 0).
fn connections_for(setup: &CoreSetup) -> usize {
    users_for(setup) * (1 + setup.plan.scenario.channels.len())
}

/// What a user has on the wire.
#[derive(Debug, Clone, Copy)]
struct Flight {
    /// An exchange is in progress.
    active: bool,
    /// Its start was stamped and logged as in flight.
    stamped: bool,
    /// The request, and how its bytes were made.
    r: usize,
    rendered: Rendered,
    /// Its connection slot.
    c: u32,
    actual_us: u64,
    /// When the TCP connect completed, for the TLS handshake's time.
    connected_at_us: u64,
    connect_us: u32,
    ttfb_us: u32,
    bytes_sent: u32,
    bytes_received: u32,
    connected: bool,
    /// Plaintext length of the request, and whether it was handed to the transport.
    req_len: u32,
    request_out: bool,
}

impl Default for Flight {
    fn default() -> Flight {
        Flight {
            active: false,
            stamped: false,
            r: 0,
            rendered: Rendered::Fixed,
            c: 0,
            actual_us: 0,
            connected_at_us: 0,
            connect_us: 0,
            ttfb_us: 0,
            bytes_sent: 0,
            bytes_received: 0,
            connected: false,
            req_len: 0,
            request_out: false,
        }
    }
}

/// One user of the core.
#[derive(Debug)]
struct User {
    prog: Program,
    state: UserState,
    /// The time it sleeps until (its entry in the timer heap), `u64::MAX` when not sleeping.
    wake_at: u64,
    flight: Flight,
    done: bool,
}

/// One core's loop state.
struct Core<B: Backend> {
    io: B,
    users: Vec<User>,
    conns: Vec<Conn>,
    /// Connection slots per user.
    per_user: u32,
    sc: CoreScenario,
    /// Each request's bytes rendered once for the run, interned, if it has such bytes.
    fixed: Vec<Option<Interned>>,
    addrs: Vec<Addr>,
    next_addr: usize,
    rec: Recorder,
    rng: Rng,
    clock: crate::clock::Clock,
    limits: Limits,
    tls: Option<crate::tls::TlsClient>,
    load: Load,
    timers: Timers,
    /// When the arrivals timer is set for, µs.
    arrivals_at: u64,
    /// A pooled user went back to the pool: waiting arrivals may go now.
    arrivals_dirty: bool,
    /// Users whose request goes out with the next wait (their actual start is stamped then).
    queued: Vec<u32>,
    /// Failures found while starting a request, handled on the next turn (never recursively).
    deferred: Vec<(u32, Failure)>,
    /// Users to wake (a per-core token they waited for arrived).
    wake: Vec<u32>,
    handed: Vec<(Handed, usize, u64)>,
    events: Vec<Event<B::Buf>>,
    /// Exchanges in progress.
    exchanges: usize,
    lingering: u32,
    stopping: bool,
    end_us: u64,
    /// Decrypted bytes, read from TLS sessions.
    plain: Vec<u8>,
    /// The per-second report's interval.
    interval_start: u64,
    next_second: u64,
}

fn run<B: Backend>(setup: CoreSetup, pinned: bool, io: B) -> CoreDone {
    let core = setup.index;
    let fail = |error: String| CoreDone::failed(core, pinned, error);
    let file = match std::fs::File::create(&setup.log_path) {
        Ok(f) => f,
        Err(e) => return fail(format!("cannot create {}: {e}", setup.log_path.display())),
    };
    let mut cl = match Core::new(&setup, io) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let mut log = LogOut {
        file,
        offset: 0,
        sink: cl.rec.sink(),
        scratch: Vec::new(),
        done: Vec::new(),
        error: None,
        path: setup.log_path.clone(),
    };
    let loop_error = cl.run(&setup, &mut log);

    // Requests still on the wire are logged as cancelled; users still running stop.
    let now = cl.clock.now_us();
    for u in 0..cl.users.len() {
        if cl.users[u].prog.is_active() {
            cl.rec.user_stopped(false);
        }
    }
    for c in 0..cl.conns.len() {
        cl.close(c as u32);
    }
    cl.rec.cancel_in_flight(now);
    let report = cl
        .rec
        .close_interval(cl.interval_start, now, cl.next_second / 1_000_000);
    let _ = setup.reports.send(Report::Second(report));
    // Wait for the kernel to finish every operation that uses our memory (receives end on shutdown,
    // log writes complete); what is still queued is then written directly.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        while cl.io.in_flight() > 0 && std::time::Instant::now() < deadline {
            let t = cl.clock.now_us();
            if cl.io.wait(&cl.clock, t, t + 10_000).is_err() {
                break;
            }
            cl.io.reap(&mut cl.events);
            for ev in cl.events.drain(..) {
                if let EventKind::Received(b) = ev.kind {
                    cl.io.recycle(b);
                }
            }
        }
        // A short log write is continued by `collect`, which makes one more operation to wait for.
        log.collect(&mut cl.io);
        if cl.io.in_flight() == 0 || std::time::Instant::now() >= deadline {
            break;
        }
    }
    let mut done = cl.rec.take_done(core, pinned);
    log.finish();
    done.error = loop_error.or(log.error.take());
    done
}

impl<B: Backend> Core<B> {
    fn new(setup: &CoreSetup, mut io: B) -> Result<Core<B>, String> {
        let core = setup.index;
        let plan = &setup.plan;
        let sink = QueueSink::default();
        let mut writer =
            LogWriter::new(&setup.header, sink.clone()).unwrap_or_else(|never| match never {});
        // Names and failure messages are interned once, here, in request order: the request path
        // only copies ids.
        let mut by_name = Vec::new();
        let sc = {
            let mut interner = CoreInterner::new(&mut writer, &mut by_name);
            CoreScenario::new(
                &plan.scenario,
                &plan.wires,
                core,
                plan.cores,
                u64::try_from(setup.clock.wall_ns / 1_000_000_000).unwrap_or(0),
                &mut interner,
            )
        };
        let _ = writer.flush();
        let fixed = plan
            .wires
            .iter()
            .map(|w| w.fixed_bytes().map(|b| io.intern(b.to_vec())))
            .collect();
        if plan.addrs.is_empty() {
            return Err(format!("core {core}: the target has no address"));
        }
        let addrs: Vec<Addr> = plan.addrs.iter().map(|&a| io.intern_addr(a)).collect();
        let users_n = users_for(setup);
        let load = match (&plan.load, &setup.open) {
            (
                LoadPlan::Closed {
                    population,
                    iterations_per_user,
                },
                _,
            ) => Load::Closed(Closed {
                population: population.clone(),
                per_user: *iterations_per_user,
                budget: setup.iterations,
                users_left: setup.users.len() as u32,
            }),
            (LoadPlan::Open { .. }, Some(open)) => Load::Open(Box::new(Open {
                pool: Pool::new(&open.pool),
                arrivals: Arrivals::new(open.clone()),
            })),
            (LoadPlan::Open { .. }, None) => {
                return Err(format!("core {core}: an open model without arrivals"));
            }
        };
        let users = match &load {
            Load::Closed(_) => setup
                .users
                .iter()
                .enumerate()
                .map(|(local, u)| {
                    Program::closed(
                        local as u32,
                        u.global,
                        u.kind,
                        crate::clock::micros(u.spawn_at),
                    )
                })
                .collect::<Vec<_>>(),
            Load::Open(open) => (0..users_n as u32)
                .map(|local| Program::pooled(local, open.pool.kind_of(local)))
                .collect(),
        };
        let per_user = 1 + plan.scenario.channels.len() as u32;
        let seed = u64::from_le_bytes(setup.header.run_id.0[..8].try_into().expect("8 bytes"))
            ^ (u64::from(core) << 56 | 0x5eed);
        Ok(Core {
            users: users
                .into_iter()
                .map(|prog| User {
                    prog,
                    state: UserState::new(&sc),
                    wake_at: u64::MAX,
                    flight: Flight::default(),
                    done: false,
                })
                .collect(),
            conns: (0..users_n * per_user as usize)
                .map(|_| Conn::default())
                .collect(),
            per_user,
            fixed,
            next_addr: core as usize % addrs.len(),
            addrs,
            rec: Recorder::new(writer, sink, core, by_name, users_n),
            rng: Rng::new(seed),
            clock: setup.clock,
            limits: plan.limits,
            tls: plan.tls.clone(),
            load,
            timers: Timers::with_capacity(users_n + 16),
            arrivals_at: u64::MAX,
            arrivals_dirty: false,
            queued: Vec::with_capacity(users_n),
            deferred: Vec::new(),
            wake: Vec::new(),
            handed: Vec::new(),
            events: Vec::with_capacity(4096),
            exchanges: 0,
            lingering: 0,
            stopping: false,
            end_us: crate::clock::micros(plan.duration),
            plain: vec![0; PLAIN_CHUNK],
            interval_start: 0,
            next_second: 1_000_000,
            sc,
            io,
        })
    }
}

/// The loop's own timing state.
impl<B: Backend> Core<B> {
    /// Runs until the run is over; returns a loop failure, if any.
    fn run(&mut self, setup: &CoreSetup, log: &mut LogOut) -> Option<String> {
        let tick = crate::clock::micros(TICK);
        let mut next_tick = tick;
        let mut next_drain = DRAIN_EVERY_US;
        self.next_second = 1_000_000;
        self.interval_start = 0;
        let mut give_up = u64::MAX;
        let mut interrupted = false;
        // The open model's arrivals due before the end still start after it (late, within the grace
        // period) before the core stops.
        let mut draining = false;
        for u in 0..self.users.len() {
            if !self.users[u].prog.is_idle() {
                self.drive(u, Input::Start);
            }
        }
        if matches!(self.load, Load::Open(_)) {
            self.arrivals_dirty = true;
        }
        loop {
            let now = self.clock.now_us();
            self.turn(now);
            // Wait for a completion, but no longer than the next deadline.
            let mut wake = next_tick.min(self.next_second);
            if let Some(at) = self.timers.next() {
                wake = wake.min(at);
            }
            if !self.deferred.is_empty() || !self.wake.is_empty() || self.arrivals_dirty {
                wake = now;
            }
            if let Err(e) = self.io.wait(&self.clock, now, wake) {
                return Some(format!("core {}: waiting for I/O failed: {e}", setup.index));
            }
            let t = self.clock.now_us();
            self.io.reap(&mut self.events);
            self.dispatch(t);

            if t >= next_tick {
                next_tick = t + tick;
                self.watchdog(t);
                if t >= next_drain {
                    next_drain = t + DRAIN_EVERY_US;
                    log.drain(&mut self.io);
                    if log.error.is_some() {
                        setup.stop.store(true, Ordering::SeqCst);
                    }
                }
                if t >= self.next_second {
                    let report = self.rec.close_interval(
                        self.interval_start,
                        t,
                        self.next_second / 1_000_000,
                    );
                    let _ = setup.reports.send(Report::Second(report));
                    self.interval_start = t;
                    self.next_second += 1_000_000;
                }
                let stop = setup.stop.load(Ordering::Relaxed);
                if !self.stopping && !draining {
                    if stop || t >= self.end_us || self.finished_early() {
                        interrupted = stop;
                        let grace = if interrupted {
                            GRACE_INTERRUPTED
                        } else {
                            GRACE_COMPLETED.min(self.limits.request_timeout)
                        };
                        give_up = t + crate::clock::micros(grace);
                        if !interrupted && !self.arrivals_done() {
                            draining = true;
                        } else {
                            self.begin_stop(t);
                        }
                    }
                } else if draining {
                    if self.arrivals_done() || t >= give_up || stop {
                        draining = false;
                        self.begin_stop(t);
                    }
                } else if stop && !interrupted {
                    // A Ctrl-C during the grace period of a completed run cuts the grace short.
                    give_up = t;
                }
            }
            if self.stopping && ((self.exchanges == 0 && self.lingering == 0) || t >= give_up) {
                return None;
            }
        }
    }

    /// The work of one turn before waiting: due timers, released arrivals, woken users, deferred
    /// failures, and the actual start of everything about to be submitted.
    fn turn(&mut self, now: u64) {
        while let Some((at, owner)) = self.timers.pop_due(now) {
            match owner {
                Owner::User(u) => {
                    let user = &mut self.users[u as usize];
                    if user.wake_at == at {
                        user.wake_at = u64::MAX;
                        self.drive(u as usize, Input::Wake);
                    }
                }
                Owner::Arrivals => {
                    if self.arrivals_at == at {
                        self.arrivals_at = u64::MAX;
                        self.arrivals_dirty = true;
                    }
                }
                Owner::Conn(_) | Owner::Hosted => {}
            }
        }
        if self.arrivals_dirty {
            self.release_arrivals(now);
        }
        while let Some(u) = self.wake.pop() {
            self.drive(u as usize, Input::Wake);
        }
        for (u, f) in std::mem::take(&mut self.deferred) {
            let c = self.users[u as usize].flight.c;
            self.fail(u as usize, c, f, now);
        }
        if !self.queued.is_empty() {
            self.stamp_queued(now);
        }
    }

    fn finished_early(&self) -> bool {
        match &self.load {
            Load::Closed(c) => c.users_left == 0,
            Load::Open(o) => o.arrivals.done && o.pool.all_idle(),
        }
    }

    fn arrivals_done(&self) -> bool {
        match &self.load {
            Load::Closed(_) => true,
            Load::Open(o) => o.arrivals.done,
        }
    }

    /// The core stops: no new iteration starts; arrivals still due are dropped, and idle pooled users
    /// end (running their on_stop at the planned end).
    fn begin_stop(&mut self, t: u64) {
        self.stopping = true;
        if let Load::Open(open) = &mut self.load {
            let rec = &mut self.rec;
            open.arrivals
                .stop(t.saturating_mul(1000), &mut || rec.iteration_dropped());
            let idle: Vec<u32> = open.pool.started_users().collect();
            for u in idle {
                if self.users[u as usize].prog.is_idle() {
                    self.drive(u as usize, Input::Wake);
                }
            }
        }
    }

    /// Hands the arrivals that fell due to pooled users.
    fn release_arrivals(&mut self, now: u64) {
        self.arrivals_dirty = false;
        let Load::Open(open) = &mut self.load else {
            return;
        };
        if open.arrivals.done || self.stopping {
            return;
        }
        let rec = &mut self.rec;
        open.arrivals.release(
            // The turn's clock reading: arrivals released now are stamped with it, never before due.
            now.saturating_mul(1000),
            &mut open.pool,
            &mut self.rng,
            &mut self.handed,
            &mut || rec.iteration_dropped(),
        );
        if let Some(ns) = open.arrivals.wake_ns {
            let at = ns.div_ceil(1000);
            if at != self.arrivals_at {
                self.arrivals_at = at;
                self.timers.push(at, Owner::Arrivals);
            }
        }
        let mut handed = std::mem::take(&mut self.handed);
        for (h, _, due) in handed.drain(..) {
            let u = match h {
                Handed::Idle(u) | Handed::New(u) => u as usize,
            };
            self.drive(u, Input::Assigned(due));
        }
        self.handed = handed;
    }

    /// Steps user `u`'s program with `input` and does what it asks.
    fn drive(&mut self, u: usize, input: Input) {
        let user = &mut self.users[u];
        if user.done {
            return;
        }
        let mut cx = Cx {
            sc: &self.sc,
            rng: &mut self.rng,
            clock: &self.clock,
            rec: &mut self.rec,
            load: &mut self.load,
            end_us: self.end_us,
            stopping: self.stopping,
            lingering: &mut self.lingering,
            wake: &mut self.wake,
            left: false,
            freed: false,
        };
        let next = user.prog.advance(&mut user.state, &mut cx, input);
        let (left, freed) = (cx.left, cx.freed);
        if left {
            self.leave(u);
        }
        if freed {
            self.arrivals_dirty = true;
        }
        match next {
            Next::Request(r) => self.start_request(u, r),
            Next::Step(_) => unreachable!("`eligible` keeps plans with steps off the loop"),
            Next::Sleep(at) => {
                self.users[u].wake_at = at;
                self.timers.push(at, Owner::User(u as u32));
            }
            Next::Done => self.users[u].done = true,
            Next::WaitToken | Next::Idle | Next::Busy => {}
        }
    }

    /// User `u` stopped running: its connections close and it leaves the active users.
    fn leave(&mut self, u: usize) {
        for ch in 0..self.per_user {
            self.close(u as u32 * self.per_user + ch);
        }
        self.rec.user_stopped(false);
    }

    /// Starts request `r` of user `u`, intended at its ready time.
    fn start_request(&mut self, u: usize, r: usize) {
        let c = u as u32 * self.per_user;
        let rendered = {
            let user = &mut self.users[u];
            user.state
                .render(&self.sc, &mut self.rng, &self.clock, user.prog.global, r)
        };
        let cr = &self.sc.requests[r];
        self.conns[c as usize]
            .reader
            .start(cr.head, self.limits.max_body, cr.keep);
        self.users[u].flight = Flight {
            active: true,
            r,
            rendered,
            c,
            ..Flight::default()
        };
        self.exchanges += 1;
        self.queued.push(u as u32);
        if self.conns[c as usize].link == Link::Closed {
            if let Err(f) = self.connect(c) {
                self.deferred.push((u as u32, f));
            }
        } else {
            self.send_request(u, c);
        }
    }

    /// Stamps the actual start of every request queued since the last wait, and logs it as in
    /// flight.
    fn stamp_queued(&mut self, now: u64) {
        for i in 0..self.queued.len() {
            let u = self.queued[i] as usize;
            self.stamp(u, now);
        }
        self.queued.clear();
    }

    fn stamp(&mut self, u: usize, now: u64) {
        let user = &mut self.users[u];
        let f = &mut user.flight;
        if !f.active || f.stamped {
            return;
        }
        f.stamped = true;
        f.actual_us = now;
        self.rec.begin(
            u,
            InFlight {
                name: self.sc.requests[f.r].name,
                intended_us: user.prog.ready_us.min(now),
                actual_us: now,
                user: user.prog.global,
                deadline_us: now.saturating_add(crate::clock::micros(self.limits.request_timeout)),
            },
        );
    }

    /// Opens a socket for `c` and starts its connect.
    fn connect(&mut self, c: u32) -> Result<(), Failure> {
        let addr = self.addrs[self.next_addr];
        self.next_addr = (self.next_addr + 1) % self.addrs.len();
        let conn = &mut self.conns[c as usize];
        conn.generation = (conn.generation + 1) & GENERATION_MASK;
        conn.reused = false;
        match self.io.open(c, conn.generation, SockKind::Tcp, addr) {
            Ok(_) => {
                conn.link = Link::Connecting;
                Ok(())
            }
            Err(e) => Err(Failure::io("connect", &e)),
        }
    }

    /// `c`'s connect completed with `result` at `t`.
    fn on_connected(&mut self, c: u32, result: i32, t: u64) {
        if self.conns[c as usize].link != Link::Connecting {
            return;
        }
        let u = (c / self.per_user) as usize;
        if result < 0 {
            let e = std::io::Error::from_raw_os_error(-result);
            self.fail(u, c, Failure::io("connect", &e), t);
            return;
        }
        self.rec.connection_opened_gauge();
        let conn = &mut self.conns[c as usize];
        conn.link = Link::Open;
        if let Err(e) = self.io.arm(c, conn.generation) {
            self.fail(u, c, Failure::io("receive", &e), t);
            return;
        }
        conn.armed = true;
        let f = &mut self.users[u].flight;
        f.connected_at_us = t;
        f.connect_us = t.saturating_sub(f.actual_us).max(1) as u32;
        f.connected = true;
        if let Some(tls) = &self.tls {
            match rustls::ClientConnection::new(
                std::sync::Arc::clone(&tls.config),
                tls.server_name.clone(),
            ) {
                Ok(session) => {
                    conn.tls = Some(Box::new(session));
                    conn.link = Link::Handshaking;
                    self.flush(c, t);
                }
                Err(e) => self.fail(u, c, tls_failure(&e, true), t),
            }
            return;
        }
        self.send_request(u, c);
    }

    /// Sends user `u`'s request on `c` (open, or its TLS handshake just done).
    fn send_request(&mut self, u: usize, c: u32) {
        let (r, rendered) = {
            let f = &self.users[u].flight;
            (f.r, f.rendered)
        };
        let bytes: &[u8] = match rendered {
            Rendered::Fixed => self.sc.requests[r].wire.fixed_bytes().unwrap_or_default(),
            Rendered::Wire => &self.users[u].state.wire,
        };
        let len = bytes.len() as u32;
        let conn = &mut self.conns[c as usize];
        let tls = conn.tls.is_some();
        let sent = match conn.tls.as_mut() {
            Some(session) => write_plain(session, bytes).map_err(|e| (e, None)),
            None => {
                let src = match (rendered, self.fixed[r]) {
                    (Rendered::Fixed, Some(id)) => {
                        conn.op = SendOp::Interned(id, len, 0);
                        Src::Interned(id, 0)
                    }
                    _ => {
                        let mut out = conn.take_out();
                        out.extend_from_slice(bytes);
                        conn.op = SendOp::Owned(0);
                        Src::Owned(out, 0)
                    }
                };
                self.io.send(c, conn.generation, src)
            }
        };
        let f = &mut self.users[u].flight;
        f.req_len = len;
        f.request_out = true;
        match sent {
            Ok(()) if tls => {
                let t = self.clock.now_us();
                self.flush(c, t);
            }
            Ok(()) => {}
            Err((e, buf)) => {
                let conn = &mut self.conns[c as usize];
                if let Some(b) = buf {
                    conn.give_back(b);
                }
                conn.op = SendOp::None;
                self.deferred.push((u as u32, Failure::io("send", &e)));
            }
        }
    }

    /// Sends what `c` has waiting (TLS records, queued bytes) if no send is in flight.
    fn flush(&mut self, c: u32, t: u64) {
        let conn = &mut self.conns[c as usize];
        if conn.op != SendOp::None || conn.link == Link::Closed {
            return;
        }
        let mut out = conn.take_out();
        if let Some(tls) = conn.tls.as_mut() {
            conn::write_tls(tls, &mut out);
        }
        if !conn.pending.is_empty() {
            out.extend_from_slice(&conn.pending);
            conn.pending.clear();
        }
        if out.is_empty() {
            conn.give_back(out);
            return;
        }
        conn.op = SendOp::Owned(0);
        if let Err((e, buf)) = self.io.send(c, conn.generation, Src::Owned(out, 0)) {
            if let Some(b) = buf {
                conn.give_back(b);
            }
            conn.op = SendOp::None;
            let u = (c / self.per_user) as usize;
            if self.users[u].flight.active && self.users[u].flight.c == c {
                self.fail(u, c, Failure::io("send", &e), t);
            } else {
                self.close(c);
            }
        }
    }

    /// A send on `c` completed with `result` (bytes taken, or a negative errno).
    fn on_sent(&mut self, c: u32, result: i32, buf: Option<Vec<u8>>, t: u64) {
        let u = (c / self.per_user) as usize;
        let conn = &mut self.conns[c as usize];
        if let Some(b) = buf {
            conn.give_back(b);
        }
        let op = std::mem::replace(&mut conn.op, SendOp::None);
        if result < 0 {
            let e = std::io::Error::from_raw_os_error(-result);
            self.transport_failure(u, c, Failure::io("send", &e), t);
            return;
        }
        let n = result as u32;
        let rest = match op {
            SendOp::Interned(id, len, done) if done + n < len => {
                conn.op = SendOp::Interned(id, len, done + n);
                Some(Src::Interned(id, (done + n) as usize))
            }
            SendOp::Owned(done) if ((done + n) as usize) < conn.out.len() => {
                conn.op = SendOp::Owned(done + n);
                let out = std::mem::take(&mut conn.out);
                conn.lent = true;
                Some(Src::Owned(out, (done + n) as usize))
            }
            _ => None,
        };
        match rest {
            // A short send: the rest follows.
            Some(src) => {
                if let Err((e, buf)) = self.io.send(c, conn.generation, src) {
                    if let Some(b) = buf {
                        conn.give_back(b);
                    }
                    conn.op = SendOp::None;
                    self.transport_failure(u, c, Failure::io("send", &e), t);
                }
            }
            None => {
                let f = &mut self.users[u].flight;
                if f.active && f.c == c && f.request_out {
                    f.bytes_sent = f.req_len;
                }
                self.flush(c, t);
            }
        }
    }

    /// Bytes arrived on `c`.
    fn on_received(&mut self, c: u32, buf: B::Buf, t: u64) {
        let u = (c / self.per_user) as usize;
        let f = &mut self.users[u].flight;
        let exchanging = f.active && f.c == c && f.stamped;
        if exchanging && f.ttfb_us == 0 {
            f.ttfb_us = t.saturating_sub(f.actual_us).max(1) as u32;
        }
        let data = self.io.bytes(&buf);
        let fed = {
            let mut sink = HttpSink {
                exchanging: exchanging && self.conns[c as usize].link == Link::Open,
                bytes_received: &mut f.bytes_received,
            };
            feed(
                &mut self.conns[c as usize],
                data,
                &mut sink,
                &mut self.plain,
            )
        };
        self.io.recycle(buf);
        self.on_fed(u, c, fed, t);
        if self.conns[c as usize]
            .tls
            .as_ref()
            .is_some_and(|tls| tls.wants_write())
        {
            self.flush(c, t);
        }
    }

    fn on_fed(&mut self, u: usize, c: u32, fed: Fed, t: u64) {
        match fed {
            Fed::More => {}
            Fed::Handshaken => {
                let f = &mut self.users[u].flight;
                let _tls_us = t.saturating_sub(f.connected_at_us).max(1) as u32;
                f.connect_us = t.saturating_sub(f.actual_us).max(1) as u32;
                self.conns[c as usize].link = Link::Open;
                if f.active && f.c == c {
                    self.send_request(u, c);
                }
            }
            Fed::Done { close } => self.complete(u, c, close, t),
            Fed::Fail(failure) => self.transport_failure(u, c, failure, t),
            // Bytes or an end between exchanges: the connection is unusable; the next request
            // reconnects.
            Fed::Unwanted => self.close(c),
            Fed::Closed => self.on_eof(c, t),
        }
    }

    /// The peer closed `c`.
    fn on_eof(&mut self, c: u32, t: u64) {
        let u = (c / self.per_user) as usize;
        let f = self.users[u].flight;
        if !(f.active && f.c == c) {
            // Closed while idle: the next request reconnects.
            self.close(c);
            return;
        }
        let conn = &mut self.conns[c as usize];
        if conn.link == Link::Handshaking {
            let failure = Failure::new(
                Outcome::Tls,
                "TLS handshake: the peer closed the connection",
            );
            self.fail(u, c, failure, t);
            return;
        }
        if self.retry_stale(u, c) {
            return;
        }
        match self.conns[c as usize].reader.on_eof() {
            crate::http::Step::Done { .. } => self.complete(u, c, true, t),
            crate::http::Step::Fail(failure) => self.fail(u, c, failure, t),
            crate::http::Step::NeedMore => self.close(c),
        }
    }

    /// A keep-alive connection the server closed just as we reused it: the request never reached it.
    /// Retry once on a fresh connection, as browsers do; the retry keeps the original actual start, so
    /// the lost attempt counts in its latency.
    fn retry_stale(&mut self, u: usize, c: u32) -> bool {
        let conn = &self.conns[c as usize];
        let f = self.users[u].flight;
        if !(conn.reused && f.bytes_received == 0 && !conn.retried) {
            return false;
        }
        self.close(c);
        let conn = &mut self.conns[c as usize];
        conn.retried = true;
        let cr = &self.sc.requests[f.r];
        conn.reader.start(cr.head, self.limits.max_body, cr.keep);
        let fl = &mut self.users[u].flight;
        fl.bytes_sent = 0;
        fl.request_out = false;
        if let Err(failure) = self.connect(c) {
            self.deferred.push((u as u32, failure));
        }
        true
    }

    /// A transport failure on `c`: retried if it is a stale keep-alive, else the exchange fails (or an
    /// idle connection closes).
    fn transport_failure(&mut self, u: usize, c: u32, failure: Failure, t: u64) {
        let f = self.users[u].flight;
        if !(f.active && f.c == c) {
            self.close(c);
            return;
        }
        if failure.outcome == Outcome::Reset && self.retry_stale(u, c) {
            return;
        }
        self.fail(u, c, failure, t);
    }

    /// `c`'s exchange ended with a complete answer at `t`.
    fn complete(&mut self, u: usize, c: u32, close: bool, t: u64) {
        let status = self.conns[c as usize].reader.status;
        if close {
            self.close(c);
        }
        let user = &mut self.users[u];
        let f = user.flight;
        let (outcome, message, flow) = user.state.on_response(
            &self.sc,
            &mut self.rng,
            &self.clock,
            user.prog.global,
            f.r,
            f.rendered,
            status,
            self.conns[c as usize].reader.kept(),
            t.saturating_sub(f.actual_us),
        );
        let ex = Exchange {
            status,
            connect_us: f.connect_us,
            ttfb_us: f.ttfb_us,
            bytes_sent: f.bytes_sent.max(f.req_len),
            bytes_received: f.bytes_received,
            connected: f.connected,
            ..Exchange::default()
        };
        let message = message.map_or(Message::Default, Message::Id);
        self.rec.finish(u, &ex, outcome, message, t, false, false);
        let conn = &mut self.conns[c as usize];
        conn.reused = !close;
        conn.retried = false;
        self.users[u].flight.active = false;
        self.exchanges -= 1;
        self.drive(u, Input::Done { flow, end_us: t });
    }

    /// `c`'s exchange failed at `t`: the connection closes, one sample, and the user moves on.
    fn fail(&mut self, u: usize, c: u32, failure: Failure, t: u64) {
        let f = self.users[u].flight;
        if !f.active {
            return;
        }
        if !f.stamped {
            // It never reached the submission point: its start is now.
            if let Some(pos) = self.queued.iter().position(|&q| q as usize == u) {
                self.queued.swap_remove(pos);
            }
            self.stamp(u, t);
        }
        let conn = &mut self.conns[c as usize];
        let status = conn.reader.status;
        conn.reader.forget();
        conn.retried = false;
        self.close(c);
        let f = self.users[u].flight;
        let ex = Exchange {
            status,
            connect_us: f.connect_us,
            ttfb_us: f.ttfb_us,
            bytes_sent: f.bytes_sent,
            bytes_received: f.bytes_received,
            connected: f.connected,
            ..Exchange::default()
        };
        self.rec.finish(
            u,
            &ex,
            failure.outcome,
            Message::Text(failure.message.as_ref()),
            t,
            false,
            false,
        );
        self.users[u].flight.active = false;
        self.exchanges -= 1;
        self.drive(
            u,
            Input::Done {
                flow: failure_flow(failure.outcome),
                end_us: t,
            },
        );
    }

    /// Closes `c`'s socket. Its pending operations end and their completions are ignored by
    /// generation; a send buffer still in the kernel comes back with its completion.
    fn close(&mut self, c: u32) {
        let conn = &mut self.conns[c as usize];
        if conn.link == Link::Closed {
            return;
        }
        self.io.close(c, conn.generation);
        if conn.link != Link::Connecting {
            self.rec.connection_closed_gauge();
        }
        conn.link = Link::Closed;
        conn.generation = (conn.generation + 1) & GENERATION_MASK;
        conn.armed = false;
        conn.tls = None;
        conn.op = SendOp::None;
        conn.pending.clear();
        conn.reused = false;
    }

    fn dispatch(&mut self, t: u64) {
        let mut events = std::mem::take(&mut self.events);
        for ev in events.drain(..) {
            let c = ev.c;
            let Some(conn) = self.conns.get_mut(c as usize) else {
                continue;
            };
            if ev.generation != conn.generation {
                // From a socket this slot has since closed.
                match ev.kind {
                    EventKind::Received(b) => self.io.recycle(b),
                    EventKind::Sent(_, Some(b)) => conn.give_back(b),
                    _ => {}
                }
                continue;
            }
            match ev.kind {
                EventKind::Connected(result) => self.on_connected(c, result, t),
                EventKind::Sent(result, buf) => self.on_sent(c, result, buf, t),
                EventKind::Received(b) => self.on_received(c, b, t),
                EventKind::Eof => self.on_eof(c, t),
                EventKind::RecvFailed(e) => {
                    let u = (c / self.per_user) as usize;
                    let e = std::io::Error::from_raw_os_error(-e);
                    self.transport_failure(u, c, Failure::io("receive", &e), t);
                }
                EventKind::RecvEnded => {
                    let conn = &mut self.conns[c as usize];
                    if conn.link != Link::Closed && self.io.arm(c, conn.generation).is_err() {
                        let u = (c / self.per_user) as usize;
                        let failure = Failure::new(Outcome::Other, "receive: could not re-arm");
                        self.transport_failure(u, c, failure, t);
                    }
                }
                EventKind::Ready => {}
            }
        }
        self.events = events;
    }

    /// Requests and connects past their deadline time out (a scan every tick: no timer per request).
    fn watchdog(&mut self, now: u64) {
        let request_timeout = crate::clock::micros(self.limits.request_timeout);
        let connect_timeout = crate::clock::micros(self.limits.connect_timeout);
        for u in 0..self.users.len() {
            let f = self.users[u].flight;
            if !(f.active && f.stamped) {
                continue;
            }
            let link = self.conns[f.c as usize].link;
            let failure = match link {
                Link::Connecting | Link::Handshaking
                    if f.actual_us
                        .saturating_add(connect_timeout.min(request_timeout))
                        <= now =>
                {
                    if link == Link::Connecting {
                        let generation = self.conns[f.c as usize].generation;
                        self.io.cancel_connect(f.c, generation);
                    }
                    Failure::new(
                        Outcome::ConnectTimeout,
                        match (link, connect_timeout <= request_timeout) {
                            (Link::Handshaking, _) => "connect or TLS handshake timed out",
                            (_, true) => "connect timed out",
                            (_, false) => "connect timed out (request timeout)",
                        },
                    )
                }
                _ if f.actual_us.saturating_add(request_timeout) <= now => {
                    Failure::new(Outcome::Timeout, "request timed out")
                }
                _ => continue,
            };
            self.fail(u, f.c, failure, now);
        }
    }
}
