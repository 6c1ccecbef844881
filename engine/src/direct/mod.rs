//! The direct loop: a core's users and connections as explicit state machines driven by one io_uring
//! of the core's own, without futures, wakers or an async runtime on the request path.
//!
//! monoio spends about 1.1 µs of user time per request in task polls, wakers and per-operation
//! futures; a `match` on a completion's user data costs 0.3 µs (docs/io-drivers.md has the profiles).
//! The kernel side uses what monoio 0.2 does not expose: one multishot receive per connection into a
//! ring of provided buffers, registered files, and `SINGLE_ISSUER | DEFER_TASKRUN`.
//!
//! It runs the plans whose requests need nothing computed per request ([`eligible`] says why not
//! otherwise): plain HTTP/1.1, bytes rendered once, no cookie jar, extraction or checks, think time
//! (constant or between bounds, not pacing), in a closed model whose users run from their spawn time
//! to the end. Everything else runs on monoio (`core.rs`, `users.rs`), with the same samples, the
//! same [`Recorder`] and the same reports. Think times wait in a heap; the loop's wait ends at the
//! earliest ready time, so a user starts on time rather than a timer tick late.
//!
//! Timing: the clock is read once after each `io_uring_enter` returns (the end of every response
//! completed in that batch, and the ready time of the requests that follow) and once before the next
//! enter (the actual start of the requests it submits).

mod log;
mod plan;
mod ring;

pub(crate) use plan::eligible;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::time::Duration;

use formats::{LogWriter, Outcome};
use nix::sys::socket::{
    AddressFamily, SockFlag, SockType, SockaddrStorage, setsockopt, socket, sockopt,
};

use crate::core::{
    CoreDone, CoreInterner, CoreSetup, GRACE_COMPLETED, GRACE_INTERRUPTED, InFlight, Message,
    Recorder, Report, TICK,
};
use crate::http::{Exchange, Failure, Keep, Reader, Step};
use crate::logsink::QueueSink;
use crate::profile::spec::Method;
use crate::rng::Rng;

use log::LogOut;
use plan::{Kind, Request, static_scenario};
use ring::{AddrId, BufId, Cqe, Ring, Target};

/// How often queued log blocks go to the file.
const DRAIN_EVERY_US: u64 = 250_000;
/// Receive buffer size, and bounds on the number of provided buffers per core.
const BUF_SIZE: u32 = 4096;
const MIN_BUFFERS: usize = 64;
const MAX_BUFFERS: usize = 4096;

/// Provided buffers for `users` connections: one each with a quarter spare, as a power of two. A
/// response normally fits one buffer and is handled in the batch it arrives in, so more would only
/// spread the kernel's copies over more cache lines (the buffers are used in ring order).
fn buffers_for(users: usize) -> u16 {
    (users + users / 4)
        .next_power_of_two()
        .clamp(MIN_BUFFERS, MAX_BUFFERS) as u16
}
/// After a failed connect, a user waits at least this long before its next iteration (the monoio
/// path's `CONNECT_FAILURE_PAUSE`), so that a refused port does not spin the core.
const CONNECT_PAUSE_US: u64 = 1_000;

/// Where a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not spawned yet, or done for the run.
    Idle,
    /// Thinking (or pausing after a failed connect) until this time, µs; it is in `sleepers`.
    Sleeping(u64),
    /// Connecting (the request goes out when the connect completes).
    Connecting,
    /// The request is sent or being sent; its response is being read.
    Exchanging,
}

#[derive(Debug)]
struct Conn {
    socket: Option<OwnedFd>,
    /// Bumped on every new socket; completions of older sockets are recognised and ignored.
    generation: u32,
    state: State,
    /// A multishot receive is armed on the current socket.
    armed: bool,
    reader: Reader,
    /// The socket already carried a complete response (for the one retry of a stale keep-alive).
    reused: bool,
    retried: bool,
    kind: usize,
    global: u32,
    /// The current task and the position of the current request in it.
    task: usize,
    step: usize,
    /// When the current iteration was ready.
    iteration_us: u64,
    // The request in flight.
    request: usize,
    intended_us: u64,
    actual_us: u64,
    connect_us: u32,
    connected: bool,
    ttfb_us: u32,
    bytes_sent: u32,
    bytes_received: u32,
}

/// User data: [kind:3][generation:28][connection:32].
const OP_SEND: u64 = 0;
const OP_RECV: u64 = 1;
const OP_CONNECT: u64 = 2;
const OP_CANCEL: u64 = 3;

fn user_data(op: u64, generation: u32, conn: usize) -> u64 {
    op << 60 | (u64::from(generation) & 0x0fff_ffff) << 32 | conn as u64
}

fn split_user_data(ud: u64) -> (u64, u32, usize) {
    (
        ud >> 60 & 7,
        (ud >> 32 & 0x0fff_ffff) as u32,
        (ud & 0xffff_ffff) as usize,
    )
}

/// One core's loop state.
struct Core {
    ring: Ring,
    conns: Vec<Conn>,
    kinds: Vec<Kind>,
    requests: Vec<Request>,
    addrs: Vec<(AddrId, AddressFamily)>,
    next_addr: usize,
    rec: Recorder,
    rng: Rng,
    clock: crate::clock::Clock,
    limits: crate::http::Limits,
    /// Connections whose operation goes out in the next submission (their actual start is then).
    queued: Vec<usize>,
    /// Users thinking, by the time they are ready again.
    sleepers: BinaryHeap<Reverse<(u64, usize)>>,
    stopping: bool,
    exchanges: usize,
    active: u32,
}

impl Core {
    fn target(&self, c: usize) -> Target {
        if self.ring.fixed_files() {
            Target::Fixed(c as u32)
        } else {
            Target::Fd(self.conns[c].socket.as_ref().map_or(-1, AsRawFd::as_raw_fd))
        }
    }

    fn next_addr(&mut self) -> (AddrId, AddressFamily) {
        let a = self.addrs[self.next_addr];
        self.next_addr = (self.next_addr + 1) % self.addrs.len();
        a
    }

    /// Starts user `c`'s next iteration, ready since `ready_us`: picks a task by weight.
    fn start_iteration(&mut self, c: usize, ready_us: u64) {
        if self.stopping {
            self.conns[c].state = State::Idle;
            return;
        }
        let kind = &self.kinds[self.conns[c].kind];
        let task = if kind.tasks.len() == 1 {
            0
        } else {
            let r = self.rng.below(kind.total_weight);
            crate::schedule::pick_weighted(kind.tasks.iter().map(|t| t.0), r)
        };
        self.rec.iteration_started();
        let conn = &mut self.conns[c];
        conn.task = task;
        conn.step = 0;
        conn.iteration_us = ready_us;
        self.start_request(c, ready_us);
    }

    /// Starts the current request of user `c`, intended at `intended_us`.
    fn start_request(&mut self, c: usize, intended_us: u64) {
        let conn = &self.conns[c];
        let r = self.kinds[conn.kind].tasks[conn.task].1[conn.step];
        let head = self.requests[r].head;
        let max_body = self.limits.max_body;
        let conn = &mut self.conns[c];
        conn.reader.start(head, max_body, Keep::default());
        conn.request = r;
        conn.intended_us = intended_us;
        conn.connect_us = 0;
        conn.connected = false;
        conn.ttfb_us = 0;
        conn.bytes_sent = 0;
        conn.bytes_received = 0;
        self.exchanges += 1;
        if conn.socket.is_none() {
            conn.state = State::Connecting;
            self.queued.push(c);
            if let Err(f) = self.connect(c) {
                self.queued.pop();
                let now = self.clock.now_us();
                self.begin(c, now);
                self.fail(c, f, now);
            }
            return;
        }
        conn.state = State::Exchanging;
        self.queued.push(c);
        self.send(c, 0);
    }

    /// Opens a socket for `c` and submits its connect.
    fn connect(&mut self, c: usize) -> Result<(), Failure> {
        let (addr, family) = self.next_addr();
        let fd = socket(
            family,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(|e| Failure::io("connect", &std::io::Error::from(e)))?;
        // Small requests must not wait for Nagle's algorithm.
        let _ = setsockopt(&fd, sockopt::TcpNoDelay, &true);
        let conn = &mut self.conns[c];
        conn.generation = conn.generation.wrapping_add(1);
        conn.armed = false;
        conn.reused = false;
        let ud = user_data(OP_CONNECT, conn.generation, c);
        let raw = fd.as_raw_fd();
        conn.socket = Some(fd);
        self.ring
            .connect(raw, addr, ud)
            .map_err(|e| Failure::io("connect", &e))
    }

    /// The connect of `c` completed with `result`.
    fn on_connect(&mut self, c: usize, result: i32, t: u64) {
        if self.conns[c].state != State::Connecting {
            return;
        }
        if result < 0 {
            let e = std::io::Error::from_raw_os_error(-result);
            self.close(c);
            self.fail(c, Failure::io("connect", &e), t);
            return;
        }
        let raw = self.conns[c].socket.as_ref().map_or(-1, AsRawFd::as_raw_fd);
        if self.ring.fixed_files()
            && let Err(e) = self.ring.register_file(c as u32, raw)
        {
            self.close(c);
            self.fail(c, Failure::io("connect", &e), t);
            return;
        }
        let conn = &mut self.conns[c];
        conn.connect_us = (t.saturating_sub(conn.actual_us)).max(1) as u32;
        conn.connected = true;
        conn.state = State::Exchanging;
        self.rec.connection_opened_gauge();
        self.arm(c);
        self.send(c, 0);
    }

    fn arm(&mut self, c: usize) {
        let ud = user_data(OP_RECV, self.conns[c].generation, c);
        let t = self.target(c);
        if self.ring.recv_multishot(t, ud).is_ok() {
            self.conns[c].armed = true;
        }
    }

    /// Submits the send of `c`'s request from byte `offset`.
    fn send(&mut self, c: usize, offset: usize) {
        let bytes = self.requests[self.conns[c].request].bytes;
        let conn = &self.conns[c];
        let ud = user_data(OP_SEND, conn.generation, c);
        let t = self.target(c);
        if let Err(e) = self.ring.send(t, bytes, offset, ud) {
            let now = self.clock.now_us();
            // A request that never reached the submission queue has not been stamped yet.
            if let Some(pos) = self.queued.iter().rposition(|&q| q == c) {
                self.queued.swap_remove(pos);
                self.begin(c, now);
            }
            self.fail(c, Failure::io("send", &e), now);
        }
    }

    /// Records the start of `c`'s request (actual start `actual_us`) with the recorder.
    fn begin(&mut self, c: usize, actual_us: u64) {
        let conn = &mut self.conns[c];
        conn.actual_us = actual_us;
        let name = self.requests[conn.request].name;
        self.rec.begin(
            c,
            InFlight {
                name,
                intended_us: conn.intended_us,
                actual_us,
                user: conn.global,
                deadline_us: actual_us
                    .saturating_add(crate::clock::micros(self.limits.request_timeout)),
            },
        );
    }

    /// Logs `c`'s request as finished at `end_us`.
    fn finish(&mut self, c: usize, failure: Option<Failure>, status: u16, end_us: u64) {
        self.exchanges -= 1;
        let conn = &self.conns[c];
        let ex = Exchange {
            status,
            connect_us: conn.connect_us,
            ttfb_us: conn.ttfb_us,
            last_read_at: None,
            bytes_sent: conn.bytes_sent,
            bytes_received: conn.bytes_received,
            connected: conn.connected,
            failure: None,
        };
        let (outcome, message) = match &failure {
            Some(f) => (f.outcome, Message::Text(f.message.as_ref())),
            None if self.requests[conn.request].expect.contains(status) => {
                (Outcome::Ok, Message::Default)
            }
            None => (Outcome::Status, Message::Default),
        };
        // The open-connections gauge is kept by `close` and `on_connect`.
        self.rec
            .finish(c, &ex, outcome, message, end_us, false, false);
    }

    /// Fails `c`'s request (closing its socket) and moves on to the next iteration: the rest of the
    /// task depends on this request having worked.
    fn fail(&mut self, c: usize, f: Failure, t: u64) {
        let connect_failure = matches!(
            f.outcome,
            Outcome::ConnectError | Outcome::ConnectTimeout | Outcome::LocalResource
        );
        let status = self.conns[c].reader.status;
        self.close(c);
        self.conns[c].retried = false;
        self.finish(c, Some(f), status, t);
        self.end_iteration(c, t, if connect_failure { CONNECT_PAUSE_US } else { 0 });
    }

    /// User `c`'s iteration ended at `t`: it thinks (at least `pause_us`), then starts the next.
    fn end_iteration(&mut self, c: usize, t: u64, pause_us: u64) {
        if self.stopping {
            self.conns[c].state = State::Idle;
            return;
        }
        let wait = self.kinds[self.conns[c].kind].wait;
        let ready = crate::scenario::exec::next_ready(
            wait,
            self.conns[c].iteration_us,
            t,
            self.rng.unit(),
            Duration::from_micros(pause_us),
        );
        if ready <= t {
            self.start_iteration(c, t);
        } else {
            self.conns[c].state = State::Sleeping(ready);
            self.sleepers.push(Reverse((ready, c)));
        }
    }

    /// A complete response on `c` at `t`: log it, then the next request of the task or the next
    /// iteration (no think time: the user is ready again at once).
    fn complete(&mut self, c: usize, close: bool, t: u64) {
        let status = self.conns[c].reader.status;
        if close {
            self.close(c);
        }
        self.finish(c, None, status, t);
        let conn = &mut self.conns[c];
        conn.reused = !close;
        conn.retried = false;
        conn.step += 1;
        let task_len = self.kinds[conn.kind].tasks[conn.task].1.len();
        if self.stopping {
            conn.state = State::Idle;
        } else if conn.step < task_len {
            self.start_request(c, t);
        } else {
            self.end_iteration(c, t, 0);
        }
    }

    /// Closes `c`'s socket. Its pending operations end (the shutdown makes a pending receive return
    /// 0) and their completions are ignored by generation.
    fn close(&mut self, c: usize) {
        let conn = &mut self.conns[c];
        if let Some(fd) = conn.socket.take() {
            let connected = conn.state != State::Connecting;
            // The registered slot holds its own reference to the socket: the update drops it, and
            // dropping `fd` closes ours.
            let _ = nix::sys::socket::shutdown(fd.as_raw_fd(), nix::sys::socket::Shutdown::Both);
            if self.ring.fixed_files() && connected {
                let _ = self.ring.register_file(c as u32, -1);
            }
            if connected {
                self.rec.connection_closed_gauge();
            }
        }
        conn.generation = conn.generation.wrapping_add(1);
        conn.armed = false;
        conn.reused = false;
    }

    fn on_send(&mut self, c: usize, result: i32, t: u64) {
        if self.conns[c].state != State::Exchanging {
            return;
        }
        if result < 0 {
            let e = std::io::Error::from_raw_os_error(-result);
            self.fail(c, Failure::io("send", &e), t);
            return;
        }
        let conn = &mut self.conns[c];
        conn.bytes_sent = conn.bytes_sent.saturating_add(result as u32);
        let total = self.requests[conn.request].len;
        if conn.bytes_sent < total {
            // A short send: the rest follows.
            let offset = conn.bytes_sent as usize;
            self.send(c, offset);
        }
    }

    fn on_recv(&mut self, c: usize, cqe: Cqe, t: u64) {
        let Cqe {
            result, more, buf, ..
        } = cqe;
        if !more {
            self.conns[c].armed = false;
        }
        let step = if result < 0 {
            if let Some(b) = buf {
                self.ring.recycle(b);
            }
            if result == -nix::libc::ENOBUFS {
                // The buffer ring ran dry and ended the multishot receive: re-arm it, nothing is lost.
                Step::NeedMore
            } else {
                let e = std::io::Error::from_raw_os_error(-result);
                Step::Fail(Failure::io("receive", &e))
            }
        } else if result == 0 {
            if let Some(b) = buf {
                self.ring.recycle(b);
            }
            self.on_eof(c, t);
            return;
        } else {
            let Some(b) = buf else {
                return;
            };
            let step = self.on_data(c, &b, result as usize, t);
            self.ring.recycle(b);
            step
        };
        if self.conns[c].state != State::Exchanging {
            // Bytes or an error between requests: the connection is unusable; the next request
            // reconnects.
            if !matches!(step, Step::NeedMore) || result > 0 {
                self.close(c);
            } else if !self.conns[c].armed && self.conns[c].socket.is_some() {
                self.arm(c);
            }
            return;
        }
        match step {
            Step::Done { close } => self.complete(c, close, t),
            Step::Fail(f) => self.fail(c, f, t),
            Step::NeedMore => {
                if !self.conns[c].armed {
                    self.arm(c);
                }
            }
        }
    }

    fn on_data(&mut self, c: usize, buf: &BufId, len: usize, t: u64) -> Step {
        let data = self.ring.data(buf, len);
        let conn = &mut self.conns[c];
        if conn.state != State::Exchanging {
            return Step::NeedMore;
        }
        conn.bytes_received = conn.bytes_received.saturating_add(len as u32);
        if conn.ttfb_us == 0 {
            conn.ttfb_us = t.saturating_sub(conn.actual_us).max(1) as u32;
        }
        conn.reader.on_data(data)
    }

    /// The server closed `c`'s connection.
    fn on_eof(&mut self, c: usize, t: u64) {
        let conn = &mut self.conns[c];
        if conn.state != State::Exchanging {
            // Closed while idle: the next request reconnects.
            self.close(c);
            return;
        }
        if conn.reused && conn.bytes_received == 0 && !conn.retried {
            // A keep-alive connection the server closed just as we reused it: the request never
            // reached it. Retry once on a fresh connection, as browsers do.
            conn.retried = true;
            let (intended, actual) = (conn.intended_us, conn.actual_us);
            self.close(c);
            self.exchanges -= 1;
            self.start_request(c, intended);
            // The retry keeps the original actual start: the lost attempt counts in its latency.
            if let Some(pos) = self.queued.iter().rposition(|&q| q == c) {
                self.queued.swap_remove(pos);
                self.begin(c, actual);
            }
            return;
        }
        match conn.reader.on_eof() {
            Step::Done { .. } => self.complete(c, true, t),
            Step::Fail(f) => self.fail(c, f, t),
            Step::NeedMore => self.close(c),
        }
    }

    fn dispatch(&mut self, cqes: &mut Vec<Cqe>, t: u64) {
        for cqe in cqes.drain(..) {
            let (op, generation, c) = split_user_data(cqe.user_data);
            if op == OP_CANCEL || generation != self.conns[c].generation & 0x0fff_ffff {
                // A cancel's own completion, or one from a socket this connection has since closed.
                if let Some(b) = cqe.buf {
                    self.ring.recycle(b);
                }
                continue;
            }
            match op {
                OP_SEND => self.on_send(c, cqe.result, t),
                OP_CONNECT => self.on_connect(c, cqe.result, t),
                _ => self.on_recv(c, cqe, t),
            }
        }
    }

    /// Stamps the actual start of every request queued since the last submission.
    fn stamp_queued(&mut self, now: u64) {
        for i in 0..self.queued.len() {
            let c = self.queued[i];
            self.begin(c, now);
        }
        self.queued.clear();
    }

    /// Users whose think time is over start their next iteration, intended at their ready time.
    fn wake_sleepers(&mut self, now: u64) {
        while let Some(&Reverse((ready, c))) = self.sleepers.peek() {
            if ready > now {
                break;
            }
            self.sleepers.pop();
            if self.conns[c].state == State::Sleeping(ready) {
                self.start_iteration(c, ready);
            }
        }
    }

    /// Requests and connects past their deadline time out (the monoio path's 50 ms watchdog).
    fn watchdog(&mut self, now: u64) {
        let request_timeout = crate::clock::micros(self.limits.request_timeout);
        let connect_timeout = crate::clock::micros(self.limits.connect_timeout);
        for c in 0..self.conns.len() {
            let conn = &self.conns[c];
            match conn.state {
                State::Connecting
                    if conn
                        .actual_us
                        .saturating_add(connect_timeout.min(request_timeout))
                        <= now =>
                {
                    let ud = user_data(OP_CONNECT, conn.generation, c);
                    let cancel = user_data(OP_CANCEL, 0, c);
                    let _ = self.ring.cancel(ud, cancel);
                    self.fail(
                        c,
                        Failure::new(Outcome::ConnectTimeout, "connect timed out"),
                        now,
                    );
                }
                State::Exchanging if conn.actual_us.saturating_add(request_timeout) <= now => {
                    self.fail(c, Failure::new(Outcome::Timeout, "request timed out"), now);
                }
                _ => {}
            }
        }
    }
}

/// Whether this machine can run the direct loop: the ring setup and buffer ring it needs.
pub(crate) fn probe() -> std::io::Result<()> {
    Ring::new(8, 1, 1, 64).map(drop)
}

/// The body of a core thread on the direct loop. Never panics on I/O trouble: errors are reported
/// in [`CoreDone`].
pub(crate) fn core_main(setup: CoreSetup, pinned: bool) -> CoreDone {
    let core = setup.index;
    let fail = |error: String| CoreDone::failed(core, pinned, error);
    let kinds = match static_scenario(&setup.plan.scenario) {
        Ok(k) => k,
        Err(why) => {
            return fail(format!(
                "core {core}: the direct loop cannot run this plan: {why}"
            ));
        }
    };
    let file = match std::fs::File::create(&setup.log_path) {
        Ok(f) => f,
        Err(e) => return fail(format!("cannot create {}: {e}", setup.log_path.display())),
    };
    let users = setup.users.len();
    let mut ring = match Ring::new(4096, users.max(1) as u32, buffers_for(users), BUF_SIZE) {
        Ok(r) => r,
        Err(e) => {
            return fail(format!(
                "core {core}: could not set up io_uring for the direct loop: {e}"
            ));
        }
    };
    let sink = QueueSink::default();
    let mut writer =
        LogWriter::new(&setup.header, sink.clone()).unwrap_or_else(|never| match never {});
    let mut by_name = Vec::new();
    let mut requests = Vec::with_capacity(setup.plan.scenario.requests.len());
    {
        let mut interner = CoreInterner::new(&mut writer, &mut by_name);
        for (rp, wire) in setup.plan.scenario.requests.iter().zip(&setup.plan.wires) {
            let bytes = wire.fixed_bytes().unwrap_or_default().to_vec();
            let len = bytes.len() as u32;
            requests.push(Request {
                bytes: ring.intern(bytes),
                len,
                head: rp.method == Method::HEAD,
                expect: rp.expect.clone(),
                name: interner.name_id(&rp.name),
            });
        }
    }
    let _ = writer.flush();
    let addrs = setup
        .plan
        .addrs
        .iter()
        .map(|a: &SocketAddr| {
            let family = if a.is_ipv4() {
                AddressFamily::Inet
            } else {
                AddressFamily::Inet6
            };
            (ring.intern_addr(SockaddrStorage::from(*a)), family)
        })
        .collect::<Vec<_>>();
    if addrs.is_empty() {
        return fail(format!("core {core}: the target has no address"));
    }
    let seed = u64::from_le_bytes(setup.header.run_id.0[..8].try_into().expect("8 bytes"))
        ^ (u64::from(core) << 56 | 0x5eed);
    let conns = setup
        .users
        .iter()
        .map(|u| Conn {
            socket: None,
            generation: 0,
            state: State::Idle,
            armed: false,
            reader: Reader::new(),
            reused: false,
            retried: false,
            kind: u.kind,
            global: u.global,
            task: 0,
            step: 0,
            iteration_us: 0,
            request: 0,
            intended_us: 0,
            actual_us: 0,
            connect_us: 0,
            connected: false,
            ttfb_us: 0,
            bytes_sent: 0,
            bytes_received: 0,
        })
        .collect();
    let mut cl = Core {
        ring,
        conns,
        kinds,
        requests,
        next_addr: core as usize % addrs.len(),
        addrs,
        rec: Recorder::new(writer, sink.clone(), core, by_name, users),
        rng: Rng::new(seed),
        clock: setup.clock,
        limits: setup.plan.limits,
        queued: Vec::with_capacity(users),
        sleepers: BinaryHeap::new(),
        stopping: false,
        exchanges: 0,
        active: 0,
    };
    let mut log = LogOut {
        file,
        offset: 0,
        sink,
        scratch: Vec::new(),
        error: None,
        path: setup.log_path.clone(),
    };

    let end_us = crate::clock::micros(setup.plan.duration);
    let spawn_at: Vec<u64> = setup
        .users
        .iter()
        .map(|u| crate::clock::micros(u.spawn_at))
        .collect();
    let tick = crate::clock::micros(TICK);
    let mut next_spawn = 0usize;
    let mut cqes: Vec<Cqe> = Vec::with_capacity(4096);
    let mut next_tick = tick;
    let mut next_drain = DRAIN_EVERY_US;
    let mut next_second = 1_000_000u64;
    let mut interval_start = 0u64;
    let mut give_up = u64::MAX;
    let mut interrupted = false;
    let mut loop_error = None;
    loop {
        let now = cl.clock.now_us();
        // Users due by now start, at their spawn time.
        while next_spawn < spawn_at.len() && spawn_at[next_spawn] <= now && !cl.stopping {
            if spawn_at[next_spawn] < end_us {
                cl.rec.user_started();
                cl.active += 1;
                cl.start_iteration(next_spawn, spawn_at[next_spawn]);
            }
            next_spawn += 1;
        }
        if !cl.sleepers.is_empty() {
            cl.wake_sleepers(now);
        }
        if !cl.queued.is_empty() {
            cl.stamp_queued(now);
        }
        // Wait for a completion, but no longer than the next timed event.
        let mut wake = next_tick.min(next_second);
        if next_spawn < spawn_at.len() && !cl.stopping {
            wake = wake.min(spawn_at[next_spawn]);
        }
        if let Some(&Reverse((ready, _))) = cl.sleepers.peek() {
            wake = wake.min(ready);
        }
        let timeout = Duration::from_micros(wake.saturating_sub(now).max(1));
        if let Err(e) = cl.ring.submit_and_wait(1, timeout) {
            loop_error = Some(format!("core {core}: io_uring wait failed: {e}"));
            break;
        }
        let t = cl.clock.now_us();
        cl.ring.reap(&mut cqes);
        cl.dispatch(&mut cqes, t);

        if t >= next_tick {
            next_tick = t + tick;
            cl.watchdog(t);
            if t >= next_drain {
                next_drain = t + DRAIN_EVERY_US;
                log.drain(&mut cl.ring);
                if log.error.is_some() {
                    setup.stop.store(true, Ordering::SeqCst);
                }
            }
            if t >= next_second {
                let report = cl
                    .rec
                    .close_interval(interval_start, t, next_second / 1_000_000);
                let _ = setup.reports.send(Report::Second(report));
                interval_start = t;
                next_second += 1_000_000;
            }
            if !cl.stopping {
                let stop = setup.stop.load(Ordering::Relaxed);
                if stop || t >= end_us {
                    interrupted = stop;
                    cl.stopping = true;
                    let grace = if interrupted {
                        GRACE_INTERRUPTED
                    } else {
                        GRACE_COMPLETED.min(cl.limits.request_timeout)
                    };
                    give_up = t + crate::clock::micros(grace);
                    cl.sleepers.clear();
                }
            } else if setup.stop.load(Ordering::Relaxed) && !interrupted {
                // A Ctrl-C during the grace period of a completed run cuts the grace short.
                give_up = t;
            }
        }
        if cl.stopping && (cl.exchanges == 0 || t >= give_up) {
            break;
        }
    }

    // Requests still on the wire are logged as cancelled.
    let now = cl.clock.now_us();
    for _ in 0..cl.active {
        cl.rec.user_stopped(false);
    }
    for c in 0..cl.conns.len() {
        cl.close(c);
    }
    cl.rec.cancel_in_flight(now);
    let report = cl
        .rec
        .close_interval(interval_start, now, next_second / 1_000_000);
    let _ = setup.reports.send(Report::Second(report));
    // Wait for the kernel to finish every operation that uses our memory (receives end on shutdown,
    // log writes complete); what is still queued is then written directly.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        while cl.ring.in_flight() > 0 && std::time::Instant::now() < deadline {
            if cl
                .ring
                .submit_and_wait(1, Duration::from_millis(10))
                .is_err()
            {
                break;
            }
            cl.ring.reap(&mut cqes);
            for cqe in cqes.drain(..) {
                if let Some(b) = cqe.buf {
                    cl.ring.recycle(b);
                }
            }
        }
        // A short log write is continued by `collect`, which makes one more operation to wait for.
        log.collect(&mut cl.ring);
        if cl.ring.in_flight() == 0 || std::time::Instant::now() >= deadline {
            break;
        }
    }
    let mut done = cl.rec.take_done(core, pinned);
    log.finish();
    done.error = loop_error.or(log.error.take());
    done
}
