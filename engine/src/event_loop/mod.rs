//! The engine's per-core loop: one thread, one loop, every feature. Users are state machines
//! (`scenario::program`), connections are state machines ([`conn`]), responses are read by the
//! sans-I/O reader (`http::Reader`), raw TCP, UDP and WebSocket steps by sans-I/O machines
//! ([`steps`]), TLS sessions are rustls on buffers, and every deadline of the core (spawn times, think
//! times, pacing slots, open-model arrivals, on_stop times, step windows) waits in one timer heap
//! ([`timers`]) whose earliest entry bounds the loop's wait. No futures, wakers or tasks are on the
//! request path; custom protocols written against async libraries run on an executor hosted by the
//! loop ([`hosted`]).
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
mod custom;
mod epoll;
mod events;
mod exchange;
pub(crate) mod hosted;
mod log;
mod ring;
mod setup;
mod steer;
mod steps;
mod timers;
mod trace;
mod uring;
mod warm;

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use formats::Outcome;

use crate::core::{
    CoreDone, CoreSetup, GRACE_COMPLETED, GRACE_INTERRUPTED, Recorder, Report, TICK,
};
use crate::driver::IoDriver;
use crate::http::{Failure, Limits};
use crate::load::{Handed, Load, Tally};
use crate::protocol::Endpoint;
use crate::rng::Rng;
use crate::scenario::exec::CoreScenario;
use crate::scenario::program::{Cx, Input, Next, Program};
use crate::scenario::user::{Rendered, UserState};

use backend::{Addr, Backend, Event, EventKind, GENERATION_MASK, Interned};
use conn::{Conn, Link};
use hosted::Hosted;
use log::LogOut;
use timers::{Owner, Timers};

pub(crate) use epoll::Epoll;
pub(crate) use uring::Uring;

/// The watch key of the hosted executor's descriptor.
const HOSTED_KEY: u32 = u32::MAX;
/// How often queued log blocks go to the file.
const DRAIN_EVERY_US: u64 = 250_000;
/// With `--linger` and at least this many exchanges in flight, a wait that finds one completion
/// lingers up to the given time for more (io_uring on Linux 6.12+): completions then come in batches,
/// one wake-up each, instead of one wake-up per response. Every sleep and wake-up costs CPU on both
/// sides of a loopback test (about 20 µs on the project's VM); at 130,000 open-model arrivals/s a 20 µs
/// linger took the core's CPU from 96-98 % to 87-90 % (docs/performance.md). It is off unless asked:
/// the end of a response that arrives while the wait lingers is read when it returns, up to the linger
/// late, and a load generator's samples are its product.
const LINGER_FROM: usize = 8;
/// Decrypted bytes are read from a TLS session this many at a time.
const PLAIN_CHUNK: usize = 16 << 10;

/// Whether this machine can run the io_uring backend.
pub(crate) fn probe_uring() -> std::io::Result<()> {
    Uring::probe()
}

/// The body of a core thread on the loop. Never panics on I/O trouble: errors are reported in
/// [`CoreDone`].
pub(crate) fn core_main(setup: CoreSetup, pinned: bool, backend: IoDriver) -> CoreDone {
    let core = setup.index;
    let conns = connections_for(&setup);
    match backend {
        IoDriver::Uring => match Uring::new(conns) {
            Ok(io) => run(setup, pinned, io),
            Err(e) => CoreDone::failed(
                core,
                pinned,
                format!("core {core}: could not set up io_uring: {e}"),
            ),
        },
        IoDriver::Epoll => match Epoll::new(conns) {
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
    /// The request, and how its bytes were made; or the step.
    r: usize,
    rendered: Rendered,
    step: Option<usize>,
    /// Its connection slot.
    c: u32,
    actual_us: u64,
    connect_us: u32,
    /// The TLS handshake's part of `connect_us`.
    tls_us: u32,
    ttfb_us: u32,
    bytes_sent: u32,
    bytes_received: u32,
    connected: bool,
    /// Plaintext length of the request, and whether it was handed to the transport.
    req_len: u32,
    request_out: bool,
    /// A step: the status or code it reports, whether it ends once its bytes are sent, when its
    /// reply window closes (0: none), and its task (custom protocols).
    status: u16,
    when_sent: bool,
    deadline_us: u64,
    task: Option<usize>,
}

impl Default for Flight {
    fn default() -> Flight {
        Flight {
            active: false,
            stamped: false,
            r: 0,
            rendered: Rendered::Fixed,
            step: None,
            c: 0,
            actual_us: 0,
            connect_us: 0,
            tls_us: 0,
            ttfb_us: 0,
            bytes_sent: 0,
            bytes_received: 0,
            connected: false,
            req_len: 0,
            request_out: false,
            status: 0,
            when_sent: false,
            deadline_us: 0,
            task: None,
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
    /// Each step channel's address, endpoint and TLS, and one of its steps (for bytes between steps).
    chan_addrs: Vec<Addr>,
    endpoints: Vec<Arc<Endpoint>>,
    channel_tls: Vec<Option<crate::tls::TlsClient>>,
    channel_steps: Vec<usize>,
    /// The hosted executor (custom protocols only), its timer, and whether its descriptor fired.
    hosted: Option<Hosted>,
    hosted_at: u64,
    hosted_dirty: bool,
    /// Custom protocols' connection objects by slot, custom steps' argument names, finished steps.
    custom: Vec<Option<Box<dyn Any>>>,
    custom_names: Vec<Arc<[String]>>,
    finished: custom::Finished,
    rec: Recorder,
    /// `engine try`: shows every exchange. `None` in a normal run.
    trace: Option<crate::debug::Tracer>,
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
    /// Changes of the load from the dashboard, when the run can be steered ([`steer`]).
    steer: Option<std::sync::mpsc::Receiver<crate::steer::Change>>,
    /// Closed-model users that stopped since the last tick, which a change may want again (steered
    /// runs only; room for every user twice, so pushing never allocates).
    revive: Vec<u32>,
}

fn run<B: Backend>(mut setup: CoreSetup, pinned: bool, io: B) -> CoreDone {
    let core = setup.index;
    let fail = |error: String| CoreDone::failed(core, pinned, error);
    let file = match std::fs::File::create(&setup.log_path) {
        Ok(f) => f,
        Err(e) => return fail(format!("cannot create {}: {e}", setup.log_path.display())),
    };
    let mut cl = match Core::new(&setup, pinned, io) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    if let Some(rx) = setup.steer.take() {
        cl.revive = Vec::with_capacity(cl.users.len() * 2);
        cl.steer = Some(rx);
    }
    let mut log = LogOut {
        file,
        offset: 0,
        sink: cl.rec.sink(),
        scratch: Vec::new(),
        done: Vec::new(),
        error: None,
        path: setup.log_path.clone(),
    };
    cl.warm_up();
    // Everything is set up: wait for time zero (STARTUP_LEAD ahead, or a --start-at instant), and
    // note if the set-up overran it.
    let late = cl.clock.wait_for_zero();
    cl.rec.schedule_started(late);
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
    // The custom protocols' executor is watched by an operation that never ends on its own (an
    // io_uring multishot poll): left armed, it kept the wait below going until its deadline, 2 s
    // added to every run with custom steps (docs/io-drivers.md, "The 3 s gRPC run").
    if let Some(hosted) = &cl.hosted {
        cl.io.unwatch(hosted.fd(), HOSTED_KEY);
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
    done.unsettled = cl.io.in_flight();
    log.finish();
    done.error = loop_error.or(log.error.take());
    done
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
            if !self.deferred.is_empty()
                || !self.wake.is_empty()
                || self.arrivals_dirty
                || !self.queued.is_empty()
                || self.hosted.as_ref().is_some_and(Hosted::has_ready)
            {
                wake = now;
            }
            // The timeout counts from a fresh reading: the work since `now` must not push the wake-up
            // past its deadline, and a late wake-up is then the OS's alone.
            let waiting_from = self.clock.now_us();
            let linger_us = setup.plan.linger_us;
            if linger_us > 0 && wake > waiting_from && self.exchanges >= LINGER_FROM {
                self.io.linger(self.exchanges, linger_us);
            } else {
                self.io.linger(1, 0);
            }
            if let Err(e) = self.io.wait(&self.clock, waiting_from, wake) {
                return Some(format!("core {}: waiting for I/O failed: {e}", setup.index));
            }
            let t = self.clock.now_us();
            // A wait that reached its deadline: how late the thread woke is the evidence for a late
            // wake-up (the health statistics' wake lateness).
            if wake > waiting_from && t >= wake {
                self.rec.woke(t - wake);
            }
            self.io.reap(&mut self.events);
            self.dispatch(t);

            if t >= next_tick {
                next_tick = t + tick;
                self.watchdog(t);
                // The executor's descriptor wakes the loop when a socket has news; looking at it once a
                // tick as well bounds what a missed readiness notification could cost to one tick.
                if self.hosted.is_some() {
                    self.hosted_dirty = true;
                }
                if t >= next_drain {
                    next_drain = t + DRAIN_EVERY_US;
                    log.drain(&mut self.io);
                    if log.error.is_some() {
                        setup.stop.store(true, Ordering::SeqCst);
                    }
                }
                self.steer_tick(t);
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
                Owner::Conn(c) => self.step_deadline(c, at, now),
                Owner::Hosted => {
                    if self.hosted_at == at {
                        self.hosted_at = u64::MAX;
                        self.hosted_dirty = true;
                    }
                }
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
        // Custom steps' tasks run after their start is stamped, so that their I/O follows it.
        self.turn_hosted();
    }

    fn finished_early(&self) -> bool {
        match &self.load {
            // A steered run's users may all stop and start again later: it goes on to its end.
            Load::Closed(c) => c.users_left == 0 && self.steer.is_none(),
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
        // Arrivals fall due between a turn's release and the tick that notices the stop, without
        // being late: they start, as they would have on the next turn, and only those no user is free
        // for are dropped. (Dropping them made a stopped run report an arrival or two as dropped when
        // every one had found a user.)
        self.release_arrivals(t);
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
            &mut |t| match t {
                Tally::Queued => rec.iteration_queued(),
                Tally::Dropped => rec.iteration_dropped(),
            },
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
            Next::Step(s) => self.start_step(u, s),
            Next::Sleep(at) => {
                self.users[u].wake_at = at;
                self.timers.push(at, Owner::User(u as u32));
            }
            Next::Done => {
                self.users[u].done = true;
                if self.steer.is_some() && self.revive.len() < self.revive.capacity() {
                    self.revive.push(u as u32);
                }
            }
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

    fn dispatch(&mut self, t: u64) {
        let mut events = std::mem::take(&mut self.events);
        for ev in events.drain(..) {
            let c = ev.c;
            if matches!(ev.kind, EventKind::Ready) {
                self.hosted_dirty = true;
                continue;
            }
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
            self.on_event(c, ev.kind, t);
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
