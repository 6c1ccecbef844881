//! Exchanges on connections: connecting (TCP, then TLS, then a WebSocket's opening handshake),
//! sending from interned or owned buffers, feeding what arrives to the connection's reader (the HTTP
//! response reader, or a built-in step's machine in `steps.rs`), the one retry of a stale keep-alive,
//! and ending each exchange with exactly one sample.

use formats::Outcome;

use super::backend::{Backend, GENERATION_MASK, SockKind, Src};
use super::conn::{Link, SendOp, tls_failure, write_plain};
use super::steps::{self, Begin};
use super::timers::Owner;
use super::{Core, Flight};
use crate::core::{InFlight, Message};
use crate::http::{Exchange, Failure};
use crate::scenario::StepKind;
use crate::scenario::exec::Flow;
use crate::scenario::flow::Last;
use crate::scenario::program::Input;
use crate::scenario::user::{Rendered, failure_flow};

impl<B: Backend> Core<B> {
    /// The user a connection slot belongs to.
    pub(super) fn owner(&self, c: u32) -> usize {
        (c / self.per_user) as usize
    }

    /// Whether `c` carries user `u`'s exchange in progress.
    pub(super) fn exchanging(&self, u: usize, c: u32) -> bool {
        let f = &self.users[u].flight;
        f.active && f.c == c
    }

    /// Starts request `r` of user `u`, intended at its ready time.
    pub(super) fn start_request(&mut self, u: usize, r: usize) {
        let c = u as u32 * self.per_user;
        let rendered = {
            let user = &mut self.users[u];
            user.state
                .render(&self.sc, &mut self.rng, &self.clock, user.prog.global, r)
        };
        let cr = &self.sc.requests[r];
        self.conns[c as usize]
            .p
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
        match self.conns[c as usize].link {
            Link::Closed => {
                let addr = self.addrs[self.next_addr];
                self.next_addr = (self.next_addr + 1) % self.addrs.len();
                if let Err(f) = self.connect(c, addr) {
                    self.deferred.push((u as u32, f));
                }
            }
            // A connection opened ahead (`warm.rs`) and not ready yet: once it is, `opened` sends.
            Link::Connecting | Link::Handshaking => {}
            _ => self.send_request(u, c),
        }
    }

    /// Starts step `s` of user `u`, intended at its ready time.
    pub(super) fn start_step(&mut self, u: usize, s: usize) {
        let channel = self.sc.plan.steps[s].channel;
        let c = u as u32 * self.per_user + 1 + channel as u32;
        {
            let user = &mut self.users[u];
            user.state
                .render_step(&self.sc, &mut self.rng, &self.clock, user.prog.global, s);
        }
        self.users[u].flight = Flight {
            active: true,
            step: Some(s),
            c,
            ..Flight::default()
        };
        self.exchanges += 1;
        self.queued.push(u as u32);
        if matches!(self.sc.plan.steps[s].kind, StepKind::Custom { .. }) {
            self.start_custom(u, c, s);
            return;
        }
        match self.conns[c as usize].link {
            Link::Open => {
                let t = self.clock.now_us();
                self.begin_step(u, c, t);
            }
            _ => {
                self.close(c);
                let addr = self.chan_addrs[channel];
                let opened = if matches!(self.sc.plan.steps[s].kind, StepKind::Udp { .. }) {
                    self.open_udp(u, c, addr)
                } else {
                    self.connect(c, addr)
                };
                if let Err(f) = opened {
                    self.deferred.push((u as u32, f));
                }
            }
        }
    }

    /// Stamps the actual start of every exchange queued since the last wait, and logs it as in
    /// flight.
    pub(super) fn stamp_queued(&mut self, now: u64) {
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
        let name = match f.step {
            Some(s) => self.sc.step_names[s],
            None => self.sc.requests[f.r].name,
        };
        self.rec.begin(
            u,
            InFlight {
                name,
                intended_us: user.prog.ready_us.min(now),
                actual_us: now,
                user: user.prog.global,
                mark: user.prog.mark,
            },
        );
        // Only the first request of an iteration carries the flag.
        user.prog.mark.iteration_start = false;
    }

    /// Opens a TCP socket for `c` and starts its connect to `addr`.
    pub(super) fn connect(&mut self, c: u32, addr: super::backend::Addr) -> Result<(), Failure> {
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

    /// Opens a connected UDP socket for `c` and begins the step on it.
    fn open_udp(&mut self, u: usize, c: u32, addr: super::backend::Addr) -> Result<(), Failure> {
        let conn = &mut self.conns[c as usize];
        conn.generation = (conn.generation + 1) & GENERATION_MASK;
        self.io
            .open(c, conn.generation, SockKind::Udp, addr)
            .and_then(|_| self.io.arm(c, conn.generation))
            .map_err(|e| Failure::io("connect", &e))?;
        conn.link = Link::Open;
        conn.armed = true;
        let f = &mut self.users[u].flight;
        // A datagram socket connects at once: the sample still says it opened one.
        f.connect_us = 1;
        f.connected = true;
        let t = self.clock.now_us();
        self.begin_step(u, c, t);
        Ok(())
    }

    /// `c`'s connect completed with `result` at `t`.
    pub(super) fn on_connected(&mut self, c: u32, result: i32, t: u64) {
        if self.conns[c as usize].link != Link::Connecting {
            return;
        }
        let u = self.owner(c);
        if result < 0 {
            if !self.exchanging(u, c) {
                // A connection opened ahead of its first exchange (`warm.rs`) that did not open: the
                // exchange will connect again.
                self.close(c);
                return;
            }
            let e = std::io::Error::from_raw_os_error(-result);
            self.fail(u, c, Failure::io("connect", &e), t);
            return;
        }
        self.rec.connection_opened_gauge();
        let conn = &mut self.conns[c as usize];
        conn.counted = true;
        conn.link = Link::Open;
        if let Err(e) = self.io.arm(c, conn.generation) {
            self.fail(u, c, Failure::io("receive", &e), t);
            return;
        }
        conn.armed = true;
        let f = &mut self.users[u].flight;
        f.connect_us = t.saturating_sub(f.actual_us).max(1) as u32;
        f.connected = true;
        let channel = (c % self.per_user) as usize;
        let tls = match channel {
            0 => self.tls.as_ref(),
            ch => self.channel_tls[ch - 1].as_ref(),
        };
        if let Some(tls) = tls {
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
        self.opened(u, c, t);
    }

    /// `c`'s transport is ready (connected, TLS set up): its exchange goes on.
    pub(super) fn opened(&mut self, u: usize, c: u32, t: u64) {
        let channel = (c % self.per_user) as usize;
        if channel == 0 {
            self.conns[c as usize].link = Link::Open;
            if self.exchanging(u, c) {
                self.send_request(u, c);
            }
            return;
        }
        let Some(s) = self.users[u].flight.step else {
            return;
        };
        if matches!(self.sc.plan.steps[s].kind, StepKind::WebSocket { .. }) {
            let seed = self.rng.next_u64();
            let conn = &mut self.conns[c as usize];
            conn.link = Link::Upgrading;
            steps::ws_upgrade(
                &mut conn.p.step,
                &self.endpoints[channel - 1],
                seed,
                &mut conn.p.pending,
            );
            self.flush(c, t);
        } else {
            self.conns[c as usize].link = Link::Open;
            self.begin_step(u, c, t);
        }
    }

    /// Begins user `u`'s step on the ready connection `c`.
    pub(super) fn begin_step(&mut self, u: usize, c: u32, t: u64) {
        let Some(s) = self.users[u].flight.step else {
            return;
        };
        let kind = &self.sc.plan.steps[s].kind;
        let conn = &mut self.conns[c as usize];
        let mut sent = 0;
        let begin = steps::begin(
            kind,
            &self.users[u].state.step_out,
            &mut conn.p.step,
            &mut conn.p.pending,
            &mut sent,
        );
        let f = &mut self.users[u].flight;
        f.bytes_sent = sent;
        if let StepKind::WebSocket {
            within: Some(d), ..
        } = kind
        {
            f.deadline_us = t.saturating_add(crate::clock::micros(*d)).max(1);
            self.timers.push(f.deadline_us, Owner::Conn(c));
        }
        match begin {
            Begin::Complete => self.complete_step(u, c, false, t),
            Begin::WhenSent if self.conns[c as usize].p.pending.is_empty() => {
                self.complete_step(u, c, false, t);
            }
            Begin::WhenSent => {
                self.users[u].flight.when_sent = true;
                self.flush(c, t);
            }
            Begin::Reply => self.flush(c, t),
        }
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

    /// A keep-alive connection the server closed just as we reused it: the request never reached it.
    /// Retry once on a fresh connection, as browsers do; the retry keeps the original actual start, so
    /// the lost attempt counts in its latency.
    pub(super) fn retry_stale(&mut self, u: usize, c: u32) -> bool {
        let conn = &self.conns[c as usize];
        let f = self.users[u].flight;
        if !(f.step.is_none() && conn.reused && f.bytes_received == 0 && !conn.retried) {
            return false;
        }
        self.close(c);
        let conn = &mut self.conns[c as usize];
        conn.retried = true;
        let cr = &self.sc.requests[f.r];
        conn.p.reader.start(cr.head, self.limits.max_body, cr.keep);
        let fl = &mut self.users[u].flight;
        fl.bytes_sent = 0;
        fl.request_out = false;
        let addr = self.addrs[self.next_addr];
        self.next_addr = (self.next_addr + 1) % self.addrs.len();
        if let Err(failure) = self.connect(c, addr) {
            self.deferred.push((u as u32, failure));
        }
        true
    }

    /// A transport failure on `c`: retried if it is a stale keep-alive, else the exchange fails (or an
    /// idle connection closes).
    pub(super) fn transport_failure(&mut self, u: usize, c: u32, failure: Failure, t: u64) {
        if !self.exchanging(u, c) {
            self.close(c);
            return;
        }
        if failure.outcome == Outcome::Reset && self.retry_stale(u, c) {
            return;
        }
        self.fail(u, c, failure, t);
    }

    /// `c`'s request ended with a complete response at `t`.
    pub(super) fn complete(&mut self, u: usize, c: u32, close: bool, t: u64) {
        let status = self.conns[c as usize].p.reader.status;
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
            self.conns[c as usize].p.reader.kept(),
            t.saturating_sub(f.actual_us),
            self.trace.as_mut().map(|t| &mut t.rules),
        );
        let ex = f.exchange(status, f.bytes_sent.max(f.req_len));
        let state = &self.users[u].state;
        let message = match message {
            Some(base) if outcome == Outcome::Check && !state.detail.is_empty() => {
                Message::Detail {
                    base,
                    text: &state.detail,
                    base_len: state.detail_base,
                }
            }
            Some(id) => Message::Id(id),
            None => Message::Default,
        };
        self.rec.finish(u, &ex, outcome, message, t, false, false);
        if self.trace.is_some() {
            self.trace_response(u, c, outcome, t);
        }
        let conn = &mut self.conns[c as usize];
        conn.reused = !close;
        conn.retried = false;
        self.end_exchange(u, flow, t);
    }

    /// `c`'s step ended with its answer complete at `t`; `close` when the connection ends with it.
    pub(super) fn complete_step(&mut self, u: usize, c: u32, close: bool, t: u64) {
        let f = self.users[u].flight;
        let Some(s) = f.step else { return };
        let sp = &self.sc.plan.steps[s];
        let expect = match &sp.kind {
            StepKind::Tcp { expect, .. }
            | StepKind::Udp { expect, .. }
            | StepKind::WebSocket { expect, .. } => expect.as_ref(),
            StepKind::Custom { .. } => None,
        };
        let failed_expectation =
            expect.is_some_and(|re| !re.is_match(&self.conns[c as usize].p.step.input));
        if close {
            self.close(c);
        }
        self.users[u].state.last = Last {
            status: f.status,
            ok: !failed_expectation,
        };
        let sp = &self.sc.plan.steps[s];
        let ex = f.exchange(f.status, f.bytes_sent);
        let (outcome, message, flow) = if failed_expectation {
            (
                Outcome::Check,
                Message::Text(&sp.expect_message),
                Flow::EndIteration(std::time::Duration::ZERO),
            )
        } else {
            (Outcome::Ok, Message::Default, Flow::Continue)
        };
        self.rec.finish(u, &ex, outcome, message, t, false, false);
        if self.trace.is_some() {
            let message = failed_expectation.then(|| sp.expect_message.clone());
            self.trace_step(u, c, outcome, message.as_deref(), t);
        }
        self.end_exchange(u, flow, t);
    }

    /// User `u`'s exchange is over (its sample logged): the user goes on with `flow`.
    pub(super) fn end_exchange(&mut self, u: usize, flow: Flow, t: u64) {
        self.users[u].flight.active = false;
        self.exchanges -= 1;
        self.drive(u, Input::Done { flow, end_us: t });
    }

    /// `c`'s exchange failed at `t`: the connection closes, one sample, and the user moves on.
    pub(super) fn fail(&mut self, u: usize, c: u32, failure: Failure, t: u64) {
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
        if let Some(task) = f.task {
            self.cancel_task(task);
        }
        let conn = &mut self.conns[c as usize];
        let status = if f.step.is_some() {
            f.status
        } else {
            conn.p.reader.status
        };
        conn.p.reader.forget();
        conn.retried = false;
        self.close(c);
        let f = self.users[u].flight;
        self.users[u].state.last = Last { status, ok: false };
        let ex = f.exchange(status, f.bytes_sent);
        self.rec.finish(
            u,
            &ex,
            failure.outcome,
            Message::Text(failure.message.as_ref()),
            t,
            false,
            false,
        );
        if self.trace.is_some() {
            self.trace_failure(u, c, &failure, status, t);
        }
        self.end_exchange(u, failure_flow(failure.outcome), t);
    }

    /// Closes `c`'s socket. Its pending operations end and their completions are ignored by
    /// generation; a send buffer still in the kernel comes back with its completion.
    pub(super) fn close(&mut self, c: u32) {
        self.custom[c as usize] = None;
        let conn = &mut self.conns[c as usize];
        if conn.link == Link::Closed {
            return;
        }
        self.io.close(c, conn.generation);
        if conn.counted {
            self.rec.connection_closed_gauge();
        }
        conn.counted = false;
        conn.link = Link::Closed;
        conn.generation = (conn.generation + 1) & GENERATION_MASK;
        conn.armed = false;
        conn.tls = None;
        conn.op = SendOp::None;
        conn.p.pending.clear();
        conn.p.step.ws = None;
        conn.p.step.waiting = false;
        conn.p.step.stash.clear();
        conn.reused = false;
    }

    /// A step's window (a UDP reply, a WebSocket message) closed at `at` without its answer.
    pub(super) fn step_deadline(&mut self, c: u32, at: u64, now: u64) {
        let u = self.owner(c);
        let f = self.users[u].flight;
        if !(self.exchanging(u, c) && f.deadline_us == at) {
            return;
        }
        let message = match f.step.map(|s| &self.sc.plan.steps[s].kind) {
            Some(StepKind::Udp { .. }) => steps::UDP_TIMEOUT,
            _ => steps::WS_TIMEOUT,
        };
        self.fail(u, c, Failure::new(Outcome::Timeout, message), now);
    }
}

impl Flight {
    /// The exchange's figures for its sample.
    fn exchange(&self, status: u16, bytes_sent: u32) -> Exchange {
        Exchange {
            status,
            connect_us: self.connect_us,
            tls_us: self.tls_us.min(self.connect_us),
            ttfb_us: self.ttfb_us,
            bytes_sent,
            bytes_received: self.bytes_received,
            connected: self.connected,
        }
    }
}
