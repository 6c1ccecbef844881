//! The io_uring backend: one ring per core with `SINGLE_ISSUER | DEFER_TASKRUN`, connects through the
//! ring, one multishot receive per connection into a ring of provided buffers, registered files, and
//! sends from interned or ring-owned buffers. This is the direct loop of docs/io-drivers.md, grown to
//! carry every connection kind. The memory shared with the kernel, and all `unsafe`, is in `ring.rs`.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use nix::sys::socket::{AddressFamily, SockaddrStorage, connect, shutdown};

use super::backend::{
    Addr, Backend, Event, EventKind, GENERATION_MASK, Interned, SockKind, Src, new_socket, sockaddr,
};
use super::ring::{AddrId, BufId, Cqe, ReqBytes, Ring, Target};
use crate::clock::Clock;

/// Receive buffer size, and bounds on the number of provided buffers per core.
const BUF_SIZE: u32 = 4096;
const MIN_BUFFERS: usize = 64;
/// A buffer is held only while the loop handles the batch it arrived in, so the number needed is the
/// number of arrivals per batch, not of connections: past this, more buffers only cost memory (the
/// kernel fills them in ring order, so every one of them ends up resident). Running dry ends a
/// multishot receive, which the loop arms again; nothing is lost.
const MAX_BUFFERS: usize = 512;
/// Submission queue entries.
const ENTRIES: u32 = 4096;
/// A lingering wait asks for at most this many completions (it returns with fewer once it has
/// lingered; the bound only keeps the request within the completion queue's size).
const MAX_EXPECT: usize = ENTRIES as usize;

/// User data: [op:3][generation:27][connection:32], within the ring's caller bits.
const OP_SEND: u64 = 0;
const OP_RECV: u64 = 1;
const OP_CONNECT: u64 = 2;
const OP_CANCEL: u64 = 3;
const OP_WATCH: u64 = 4;

fn user_data(op: u64, generation: u32, c: u32) -> u64 {
    op << 59 | u64::from(generation & GENERATION_MASK) << 32 | u64::from(c)
}

fn split(ud: u64) -> (u64, u32, u32) {
    (ud >> 59 & 7, (ud >> 32) as u32 & GENERATION_MASK, ud as u32)
}

/// Provided buffers for `conns` connections: one each with a quarter spare, as a power of two, within
/// bounds. A response normally fits one buffer and is handled in the batch it arrives in.
fn buffers_for(conns: usize) -> u16 {
    (conns + conns / 4)
        .next_power_of_two()
        .clamp(MIN_BUFFERS, MAX_BUFFERS) as u16
}

/// A connection's socket.
#[derive(Debug)]
struct Socket {
    fd: OwnedFd,
    kind: SockKind,
    generation: u32,
    /// Whether it is in its registered-file slot.
    registered: bool,
}

/// The io_uring backend of one core.
pub(crate) struct Uring {
    ring: Ring,
    sockets: Vec<Option<Socket>>,
    interned: Vec<ReqBytes>,
    addrs: Vec<(AddrId, AddressFamily, SockaddrStorage)>,
    /// Watched descriptors by key, to arm their poll again when it ends.
    watches: Vec<(u32, RawFd)>,
    cqes: Vec<Cqe>,
    /// The next wait's hint ([`Backend::linger`]).
    expect: usize,
    linger_us: u32,
}

impl std::fmt::Debug for Uring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uring")
            .field("ring", &self.ring)
            .finish_non_exhaustive()
    }
}

impl Uring {
    /// A ring for `conns` connection slots.
    pub fn new(conns: usize) -> io::Result<Uring> {
        let ring = Ring::new(ENTRIES, conns.max(1) as u32, buffers_for(conns), BUF_SIZE)?;
        Ok(Uring {
            ring,
            sockets: (0..conns).map(|_| None).collect(),
            interned: Vec::new(),
            addrs: Vec::new(),
            watches: Vec::new(),
            cqes: Vec::with_capacity(4096),
            expect: 1,
            linger_us: 0,
        })
    }

    /// Whether this machine can run the backend: the ring setup and buffer ring it needs.
    pub fn probe() -> io::Result<()> {
        Ring::new(8, 1, 1, 64).map(drop)
    }

    fn target(&self, c: u32) -> Target {
        match &self.sockets[c as usize] {
            Some(s) if s.registered => Target::Fixed(c),
            Some(s) => Target::Fd(s.fd.as_raw_fd()),
            None => Target::Fd(-1),
        }
    }
}

impl Backend for Uring {
    type Buf = (BufId, u32);

    fn intern(&mut self, bytes: Vec<u8>) -> Interned {
        self.interned.push(self.ring.intern(bytes));
        Interned(self.interned.len() as u32 - 1)
    }

    fn intern_addr(&mut self, addr: SocketAddr) -> Addr {
        let (family, storage) = sockaddr(addr);
        let id = self.ring.intern_addr(storage);
        self.addrs.push((id, family, storage));
        Addr(self.addrs.len() as u32 - 1)
    }

    fn open(&mut self, c: u32, generation: u32, kind: SockKind, addr: Addr) -> io::Result<bool> {
        // The loop closes a slot before opening it again; a socket left over is closed here.
        self.close(c, 0);
        let (id, family, storage) = self.addrs[addr.0 as usize];
        let fd = new_socket(family, kind)?;
        match kind {
            SockKind::Tcp => {
                let raw = fd.as_raw_fd();
                self.sockets[c as usize] = Some(Socket {
                    fd,
                    kind,
                    generation,
                    registered: false,
                });
                self.ring
                    .connect(raw, id, user_data(OP_CONNECT, generation, c))?;
                Ok(false)
            }
            SockKind::Udp => {
                connect(fd.as_raw_fd(), &storage)?;
                self.sockets[c as usize] = Some(Socket {
                    fd,
                    kind,
                    generation,
                    registered: false,
                });
                Ok(true)
            }
        }
    }

    fn arm(&mut self, c: u32, generation: u32) -> io::Result<()> {
        let fixed = self.ring.fixed_files();
        let Some(s) = self.sockets[c as usize].as_mut() else {
            return Err(io::Error::from(io::ErrorKind::NotConnected));
        };
        // A registered file saves the kernel a descriptor lookup per operation; where the table was
        // refused (more slots than the descriptor limit), plain descriptors work the same.
        if fixed && !s.registered && self.ring.register_file(c, s.fd.as_raw_fd()).is_ok() {
            s.registered = true;
        }
        let t = self.target(c);
        self.ring
            .recv_multishot(t, user_data(OP_RECV, generation, c))
    }

    fn send(
        &mut self,
        c: u32,
        generation: u32,
        src: Src,
    ) -> Result<(), (io::Error, Option<Vec<u8>>)> {
        let t = self.target(c);
        let ud = user_data(OP_SEND, generation, c);
        match src {
            Src::Interned(i, offset) => self
                .ring
                .send(t, self.interned[i.0 as usize], offset, ud)
                .map_err(|e| (e, None)),
            Src::Owned(buf, offset) => self
                .ring
                .send_owned(t, buf, offset, ud)
                .map_err(|(e, buf)| (e, Some(buf))),
        }
    }

    fn close(&mut self, c: u32, _generation: u32) {
        let Some(s) = self.sockets[c as usize].take() else {
            return;
        };
        match s.kind {
            // Shutting the stream down ends a pending receive (it completes with 0).
            SockKind::Tcp => {
                let _ = shutdown(s.fd.as_raw_fd(), nix::sys::socket::Shutdown::Both);
            }
            // A datagram socket's receive has no end of stream: cancel it.
            SockKind::Udp => {
                let _ = self.ring.cancel(
                    user_data(OP_RECV, s.generation, c),
                    user_data(OP_CANCEL, 0, c),
                );
            }
        }
        // The registered slot holds its own reference to the socket: the update drops it, and
        // dropping `fd` closes ours.
        if s.registered {
            let _ = self.ring.register_file(c, -1);
        }
    }

    fn cancel_connect(&mut self, c: u32, generation: u32) {
        let _ = self.ring.cancel(
            user_data(OP_CONNECT, generation, c),
            user_data(OP_CANCEL, 0, c),
        );
    }

    fn watch(&mut self, fd: BorrowedFd<'_>, key: u32) -> io::Result<()> {
        let fd = fd.as_raw_fd();
        // Keys are sparse (the hosted executor's is `u32::MAX`): a short list, not a table by key.
        match self.watches.iter_mut().find(|(k, _)| *k == key) {
            Some(w) => w.1 = fd,
            None => self.watches.push((key, fd)),
        }
        self.ring.poll_multishot(fd, user_data(OP_WATCH, 0, key))
    }

    fn unwatch(&mut self, _fd: BorrowedFd<'_>, key: u32) {
        // Forgotten first, so that the poll's last completion does not arm it again.
        self.watches.retain(|(k, _)| *k != key);
        // The poll ends with -ECANCELED (or has ended already, and the cancel finds nothing); both
        // it and the cancel post a completion, so `in_flight` comes back down as they are reaped.
        let _ = self
            .ring
            .cancel(user_data(OP_WATCH, 0, key), user_data(OP_CANCEL, 0, key));
    }

    fn wait(&mut self, _clock: &Clock, now_us: u64, until_us: u64) -> io::Result<()> {
        let timeout = Duration::from_micros(until_us.saturating_sub(now_us).max(1));
        let (want, linger) = if self.linger_us > 0 {
            (
                self.expect.clamp(1, MAX_EXPECT),
                Duration::from_micros(u64::from(self.linger_us)),
            )
        } else {
            (1, Duration::ZERO)
        };
        self.ring.submit_and_wait(want, timeout, linger)
    }

    fn linger(&mut self, expect: usize, linger_us: u32) {
        self.expect = expect;
        self.linger_us = linger_us;
    }

    fn reap(&mut self, out: &mut Vec<Event<Self::Buf>>) {
        // A completion becomes at most two events. Taking no more than both lists have room for
        // means that a burst larger than any before (the completions of a stall of the machine)
        // waits in the completion queue for the next wait, which returns at once, instead of
        // growing them on the request path; at least one is taken, so a caller without room still
        // makes progress.
        let room = ((out.capacity() - out.len()) / 2)
            .min(self.cqes.capacity())
            .max(1);
        self.ring.reap(&mut self.cqes, room);
        for cqe in self.cqes.drain(..) {
            let (op, generation, c) = split(cqe.user_data);
            let kind = match op {
                OP_SEND => EventKind::Sent(cqe.result, cqe.owned),
                OP_CONNECT => EventKind::Connected(cqe.result),
                OP_RECV => {
                    match (cqe.result, cqe.buf) {
                        (n, Some(b)) if n > 0 => {
                            out.push(Event {
                                c,
                                generation,
                                kind: EventKind::Received((b, n as u32)),
                            });
                            if cqe.more {
                                continue;
                            }
                            // The multishot receive ended after delivering data: arm it again.
                            EventKind::RecvEnded
                        }
                        (n, buf) => {
                            if let Some(b) = buf {
                                self.ring.recycle(b);
                            }
                            if n == 0 {
                                EventKind::Eof
                            } else if n == -nix::libc::ENOBUFS {
                                // The buffer ring ran dry: nothing is lost, the receive is armed again.
                                EventKind::RecvEnded
                            } else if n < 0 {
                                EventKind::RecvFailed(n)
                            } else {
                                EventKind::RecvEnded
                            }
                        }
                    }
                }
                OP_WATCH => {
                    if !cqe.more
                        && cqe.result >= 0
                        && let Some(&(_, fd)) = self.watches.iter().find(|(k, _)| *k == c)
                    {
                        let _ = self.ring.poll_multishot(fd, user_data(OP_WATCH, 0, c));
                    }
                    EventKind::Ready
                }
                // A cancel's own completion.
                _ => {
                    if let Some(b) = cqe.buf {
                        self.ring.recycle(b);
                    }
                    continue;
                }
            };
            out.push(Event {
                c,
                generation,
                kind,
            });
        }
    }

    fn bytes(&self, buf: &Self::Buf) -> &[u8] {
        self.ring.data(&buf.0, buf.1 as usize)
    }

    fn recycle(&mut self, buf: Self::Buf) {
        self.ring.recycle(buf.0);
    }

    fn write_file(&mut self, file: &std::fs::File, buf: Vec<u8>, offset: u64) -> io::Result<()> {
        self.ring.write(file.as_raw_fd(), buf, offset)
    }

    fn take_written(&mut self, out: &mut Vec<(Vec<u8>, i32, u64)>) {
        out.extend(self.ring.take_written());
    }

    fn in_flight(&self) -> usize {
        self.ring.in_flight()
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    /// More completions than the loop's event list has room for come in parts, and the list never
    /// grows: ten watched pipes become readable at once, and the events are taken two at a time.
    #[test]
    fn a_burst_of_completions_never_grows_the_event_list() {
        let clock = Clock::start();
        let mut io = Uring::new(1).expect("io_uring is available where tests run");
        let pipes: Vec<_> = (0..10).map(|_| nix::unistd::pipe().unwrap()).collect();
        for (key, (read, _)) in pipes.iter().enumerate() {
            io.watch(read.as_fd(), key as u32).unwrap();
        }
        // Submitted, so that the polls are armed before the pipes become readable.
        let now = clock.now_us();
        io.wait(&clock, now, now + 1).unwrap();
        for (_, write) in &pipes {
            nix::unistd::write(write, b"x").unwrap();
        }
        let mut events = Vec::with_capacity(4);
        let capacity = events.capacity();
        let mut seen = [false; 10];
        for _ in 0..200 {
            let now = clock.now_us();
            io.wait(&clock, now, now + 10_000).unwrap();
            io.reap(&mut events);
            assert!(events.len() <= capacity, "{} events", events.len());
            assert_eq!(events.capacity(), capacity, "the event list grew");
            for e in events.drain(..) {
                assert!(matches!(e.kind, EventKind::Ready));
                seen[e.c as usize] = true;
            }
            if seen.iter().all(|&s| s) {
                break;
            }
        }
        assert_eq!(seen, [true; 10], "every pipe's readiness came");
    }
}
