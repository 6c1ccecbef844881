//! What the backend reports about a connection, handled: a send completed (continue a short one, or
//! arm the reply window), bytes arrived (through TLS, into the HTTP reader or a step's machine), the
//! peer closed, and the dispatch of each live socket's event to these.

use formats::Outcome;

use super::Core;
use super::backend::{Backend, Src};
use super::conn::{Fed, HttpSink, Link, SendOp, feed, write_plain, write_tls};
use super::steps::{self, StepSink, Tally};
use super::timers::Owner;
use crate::http::Failure;
use crate::scenario::StepKind;

impl<B: Backend> Core<B> {
    /// Sends what `c` has waiting (plaintext queued by a step, TLS records) if no send is in flight.
    pub(super) fn flush(&mut self, c: u32, t: u64) {
        let conn = &mut self.conns[c as usize];
        if conn.op != SendOp::None || conn.link == Link::Closed {
            return;
        }
        let mut out = conn.take_out();
        match conn.tls.as_mut() {
            Some(tls) => {
                if !conn.p.pending.is_empty() && write_plain(tls, &conn.p.pending).is_ok() {
                    conn.p.pending.clear();
                }
                write_tls(tls, &mut out);
            }
            None => {
                out.extend_from_slice(&conn.p.pending);
                conn.p.pending.clear();
            }
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
            let u = self.owner(c);
            self.transport_failure(u, c, Failure::io("send", &e), t);
        }
    }

    /// A send on `c` completed with `result` (bytes taken, or a negative errno).
    fn on_sent(&mut self, c: u32, result: i32, buf: Option<Vec<u8>>, t: u64) {
        let u = self.owner(c);
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
        if let Some(src) = rest {
            // A short send: the rest follows.
            if let Err((e, buf)) = self.io.send(c, conn.generation, src) {
                if let Some(b) = buf {
                    conn.give_back(b);
                }
                conn.op = SendOp::None;
                self.transport_failure(u, c, Failure::io("send", &e), t);
            }
            return;
        }
        let has_more =
            !conn.p.pending.is_empty() || conn.tls.as_ref().is_some_and(|s| s.wants_write());
        if has_more {
            self.flush(c, t);
            return;
        }
        if !self.exchanging(u, c) {
            return;
        }
        let f = &mut self.users[u].flight;
        let Some(s) = f.step else {
            if f.request_out {
                f.bytes_sent = f.req_len;
            }
            return;
        };
        if f.when_sent {
            let close = matches!(
                self.sc.plan.steps[s].kind,
                StepKind::Tcp { close: true, .. }
            );
            self.complete_step(u, c, close, t);
        } else if let StepKind::Udp {
            reply_within: Some(d),
            ..
        } = self.sc.plan.steps[s].kind
            && f.deadline_us == 0
        {
            // The reply window opens once the datagram is out.
            f.deadline_us = t.saturating_add(crate::clock::micros(d)).max(1);
            self.timers.push(f.deadline_us, Owner::Conn(c));
        }
    }

    /// Bytes arrived on `c`.
    fn on_received(&mut self, c: u32, buf: B::Buf, t: u64) {
        let u = self.owner(c);
        let exchanging = self.exchanging(u, c) && self.users[u].flight.stamped;
        let f = &mut self.users[u].flight;
        if exchanging && f.ttfb_us == 0 {
            f.ttfb_us = t.saturating_sub(f.actual_us).max(1) as u32;
        }
        let data = self.io.bytes(&buf);
        let conn = &mut self.conns[c as usize];
        let fed = if c.is_multiple_of(self.per_user) {
            let mut sink = HttpSink {
                exchanging: exchanging && conn.link == Link::Open,
                bytes_received: &mut f.bytes_received,
            };
            feed(conn, data, &mut sink, &mut self.plain)
        } else {
            // Bytes between steps are not the idle step's: count them into a scratch tally.
            let mut spare = (0u32, 0u32, 0u16);
            let (sent, received, status) = if exchanging {
                (&mut f.bytes_sent, &mut f.bytes_received, &mut f.status)
            } else {
                (&mut spare.0, &mut spare.1, &mut spare.2)
            };
            let kind = match f.step.filter(|_| exchanging) {
                Some(s) => &self.sc.plan.steps[s].kind,
                None => {
                    &self.sc.plan.steps[self.channel_steps[(c % self.per_user) as usize - 1]].kind
                }
            };
            let mut sink = StepSink {
                kind,
                max: self.limits.max_body,
                tally: Tally {
                    sent,
                    received,
                    status,
                },
            };
            feed(conn, data, &mut sink, &mut self.plain)
        };
        self.io.recycle(buf);
        self.on_fed(u, c, fed, t);
        let conn = &self.conns[c as usize];
        if conn.link != Link::Closed
            && (!conn.p.pending.is_empty() || conn.tls.as_ref().is_some_and(|s| s.wants_write()))
        {
            self.flush(c, t);
        }
    }

    fn on_fed(&mut self, u: usize, c: u32, fed: Fed, t: u64) {
        match fed {
            Fed::More => {}
            Fed::Handshaken => {
                // The handshake ran from the TCP connect's completion (the connect time so far) to
                // now, both read from the turns' clock readings: no clock read of its own.
                let f = &mut self.users[u].flight;
                let tcp_us = f.connect_us;
                f.connect_us = t.saturating_sub(f.actual_us).max(1) as u32;
                f.tls_us = f.connect_us.saturating_sub(tcp_us).max(1);
                self.conns[c as usize].link = Link::Open;
                if self.exchanging(u, c) {
                    self.opened(u, c, t);
                }
            }
            Fed::Upgraded => {
                // A WebSocket's connect time covers its opening handshake.
                let f = &mut self.users[u].flight;
                f.connect_us = t.saturating_sub(f.actual_us).max(1) as u32;
                self.conns[c as usize].link = Link::Open;
                if self.exchanging(u, c) {
                    self.begin_step(u, c, t);
                }
            }
            Fed::Done { close } => {
                if !self.exchanging(u, c) {
                    self.close(c);
                } else if self.users[u].flight.step.is_some() {
                    self.complete_step(u, c, close, t);
                } else {
                    self.complete(u, c, close, t);
                }
            }
            Fed::Fail(failure) => self.transport_failure(u, c, failure, t),
            // Bytes or an end between exchanges: the connection is unusable; the next exchange
            // reconnects.
            Fed::Unwanted => self.close(c),
            Fed::Closed => self.on_eof(c, t),
        }
    }

    /// The peer closed `c`.
    fn on_eof(&mut self, c: u32, t: u64) {
        let u = self.owner(c);
        if !self.exchanging(u, c) {
            // Closed while idle: the next exchange reconnects.
            self.close(c);
            return;
        }
        if self.conns[c as usize].link == Link::Handshaking {
            let failure = Failure::new(
                Outcome::Tls,
                "TLS handshake: the peer closed the connection",
            );
            self.fail(u, c, failure, t);
            return;
        }
        if self.users[u].flight.step.is_some() {
            let failure = steps::on_eof(&self.conns[c as usize].p.step);
            self.fail(u, c, failure, t);
            return;
        }
        if self.retry_stale(u, c) {
            return;
        }
        match self.conns[c as usize].p.reader.on_eof() {
            crate::http::Step::Done { .. } => self.complete(u, c, true, t),
            crate::http::Step::Fail(failure) => self.fail(u, c, failure, t),
            crate::http::Step::NeedMore => self.close(c),
        }
    }

    /// Dispatches one event of a live socket.
    pub(super) fn on_event(&mut self, c: u32, kind: super::backend::EventKind<B::Buf>, t: u64) {
        use super::backend::EventKind;
        match kind {
            EventKind::Connected(result) => self.on_connected(c, result, t),
            EventKind::Sent(result, buf) => self.on_sent(c, result, buf, t),
            EventKind::Received(b) => self.on_received(c, b, t),
            EventKind::Eof => self.on_eof(c, t),
            EventKind::RecvFailed(e) => {
                let u = self.owner(c);
                let e = std::io::Error::from_raw_os_error(-e);
                self.transport_failure(u, c, Failure::io("receive", &e), t);
            }
            EventKind::RecvEnded => {
                let conn = &mut self.conns[c as usize];
                if conn.link != Link::Closed && self.io.arm(c, conn.generation).is_err() {
                    let u = self.owner(c);
                    let failure = Failure::new(Outcome::Other, "receive: could not arm it again");
                    self.transport_failure(u, c, failure, t);
                }
            }
            EventKind::Ready => {}
        }
    }
}
