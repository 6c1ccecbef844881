//! Open models start on warm connections. Before time zero the loop opens the connections of the pool
//! users that the arrivals of the first 10 ms will take (each kind its share by weight, at most the
//! pool), and handles their completions, TLS handshakes included, as it would during the run. Without
//! this, a high arrival rate begins with a storm of connects: at 150,000 arrivals/s the first thousand
//! arrivals each found no free user, started a new one and connected, the target took about 25 µs per
//! new connection, so no user came back for 20 ms and the pool ran dry (docs/load-models.md). The same
//! storm follows any stall of the generator longer than the warm span's worth of arrivals: the late
//! arrivals are released together and each needs a user of its own; with the first 10 ms warm, an 8 ms
//! stall at 150,000/s finds its users connected (4-5 times fewer drops than with 1 ms warm, in
//! alternating runs on the shared machine). Connections that are not open by shortly before time zero
//! go on opening; a first request that finds its connection still opening waits for it, and a
//! connection that failed to open is opened again by the request.

use std::time::{Duration, Instant};

use super::Core;
use super::backend::Backend;
use super::conn::Link;
use crate::load::Load;

/// Connections are opened for the arrivals due in this first span of the run: as many as a target
/// answering within it keeps busy, or a stall of the generator this long needs at once.
const WARM_SPAN: Duration = Duration::from_millis(10);
/// At most this many connections per core are opened ahead.
const MAX_WARM: u32 = 1000;
/// Opening starts at most this long before time zero (a `--start-at` run waits until then): long
/// enough for a loaded machine's scheduling delays, short against any server's keep-alive timeout.
/// An ordinary run's zero is only 50 ms ahead (`core::STARTUP_LEAD`), and it warms in what is left...
const WARM_LEAD: Duration = Duration::from_millis(250);
/// ...and stops waiting for them this long before time zero, to be there on time.
const WARM_MARGIN: Duration = Duration::from_millis(2);

impl<B: Backend> Core<B> {
    /// Opens the open model's first users' connections ahead of time zero (see the module's
    /// documentation). Returns how many are open.
    pub(super) fn warm_up(&mut self) -> usize {
        let Load::Open(open) = &self.load else {
            return 0;
        };
        if self.sc.requests.is_empty() {
            return 0;
        }
        let n = open
            .arrivals
            .due_before(WARM_SPAN.as_nanos() as u64, MAX_WARM);
        let users: Vec<u32> = open.pool.first_users(n, open.arrivals.weights()).collect();
        if users.is_empty() {
            return 0;
        }
        let until_zero = self.clock.until_zero();
        if until_zero > WARM_LEAD {
            std::thread::sleep(until_zero - WARM_LEAD);
        }
        let deadline = Instant::now() + self.clock.until_zero().saturating_sub(WARM_MARGIN);
        for &u in &users {
            let c = u * self.per_user;
            let addr = self.addrs[self.next_addr];
            self.next_addr = (self.next_addr + 1) % self.addrs.len();
            // A connection that cannot even start opening is left to the user's first request,
            // which reports why.
            let _ = self.connect(c, addr);
        }
        let opening = |core: &Self| {
            users.iter().any(|&u| {
                matches!(
                    core.conns[(u * core.per_user) as usize].link,
                    Link::Connecting | Link::Handshaking
                )
            })
        };
        // Before time zero the run's clock reads 0: completions are handled at time 0, and each wait
        // returns at once (the core has nothing else to do until zero).
        while opening(self) && Instant::now() < deadline {
            if self.io.wait(&self.clock, 0, 0).is_err() {
                break;
            }
            self.io.reap(&mut self.events);
            self.dispatch(0);
        }
        let mut open = 0;
        for &u in &users {
            let conn = &mut self.conns[(u * self.per_user) as usize];
            if conn.link == Link::Open {
                // Like a connection kept alive from an earlier exchange, it may have been closed by
                // the server by the time it is used: its first request is retried once.
                conn.reused = true;
                open += 1;
            }
        }
        open
    }
}
