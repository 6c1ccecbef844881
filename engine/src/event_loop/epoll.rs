//! The epoll backend, for machines where io_uring is refused (Docker's default seccomp profile,
//! gVisor, kernels before 6.1, `kernel.io_uring_disabled`): the same completion interface as the
//! io_uring backend, made of non-blocking system calls.
//!
//! - Sends are queued and made by [`Backend::wait`] just before it waits, with `send(2)`, exactly when
//!   io_uring would submit them, so that both backends stamp a request's actual start at the same
//!   point. A send that takes everything completes at once; write interest is registered only after a
//!   short send (never per request, unlike wrk's two `epoll_ctl` calls per request).
//! - Read interest is level-triggered and registered once per connection; whatever is readable is
//!   received into one per-core arena, handed to the loop, and the arena is reused on the next wait.
//! - Deadlines (think times, arrivals, the tick) wake the wait through one `timerfd` armed with an
//!   absolute time, re-armed only when the next deadline changes: epoll's own timeout counts whole
//!   milliseconds, which would be schedule lag.
//! - File writes (the sample log) are `pwrite(2)`s made off the request path, at the loop's drain.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll as Ep, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::socket::{
    AddressFamily, MsgFlags, SockaddrStorage, connect, getsockopt, recv, send, sockopt,
};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

use super::backend::{
    Addr, Backend, Event, EventKind, Interned, SockKind, Src, new_socket, sockaddr,
};
use crate::clock::Clock;

/// Received bytes per wait, at most; a socket with more waiting is read again on the next wait.
const ARENA: usize = 256 << 10;
/// The most one receive takes (a UDP datagram's largest size).
const MAX_RECV: usize = 64 << 10;
/// Epoll data of the timer and of watched descriptors; connections use `generation << 32 | slot`.
const TIMER: u64 = u64::MAX;
const WATCH: u64 = 1 << 63;

/// A connection's socket and what the loop wants from it.
#[derive(Debug)]
struct Socket {
    fd: OwnedFd,
    kind: SockKind,
    generation: u32,
    /// A TCP connect is in progress (completion is signalled by writability).
    connecting: bool,
    /// Received bytes are wanted.
    armed: bool,
    /// The end of the stream or an error was reported; nothing more is read.
    done: bool,
    /// A send waiting for writability, with the offset reached.
    blocked: Option<Src>,
    /// The interest registered with epoll (`None`: not registered).
    interest: Option<EpollFlags>,
}

/// The epoll backend of one core.
pub(crate) struct Epoll {
    ep: Ep,
    timer: TimerFd,
    /// The absolute `CLOCK_MONOTONIC` time the timer is armed for, 0 when disarmed.
    armed_ns: u64,
    sockets: Vec<Option<Socket>>,
    interned: Vec<Box<[u8]>>,
    addrs: Vec<(AddressFamily, SockaddrStorage)>,
    /// Sends submitted since the last wait, and the list being sent (swapped, so that neither
    /// allocates once grown).
    queued: Vec<(u32, u32, Src)>,
    sending: Vec<(u32, u32, Src)>,
    /// Events ready for the loop.
    ready: Vec<Event<(u32, u32)>>,
    /// Something in `ready` needs the loop before the next wait blocks (an error, a connect, a short
    /// send); sends that took everything do not.
    urgent: bool,
    /// A readable socket was left unread because the arena was full.
    unread: bool,
    arena: Vec<u8>,
    used: usize,
    events: Vec<EpollEvent>,
    written: Vec<(Vec<u8>, i32, u64)>,
}

impl std::fmt::Debug for Epoll {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Epoll").finish_non_exhaustive()
    }
}

fn errno(e: Errno) -> i32 {
    -(e as i32)
}

impl Epoll {
    /// An epoll instance for `conns` connection slots.
    pub fn new(conns: usize) -> io::Result<Epoll> {
        let ep = Ep::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let timer = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        ep.add(&timer, EpollEvent::new(EpollFlags::EPOLLIN, TIMER))?;
        Ok(Epoll {
            ep,
            timer,
            armed_ns: 0,
            sockets: (0..conns).map(|_| None).collect(),
            interned: Vec::new(),
            addrs: Vec::new(),
            queued: Vec::new(),
            sending: Vec::new(),
            ready: Vec::new(),
            urgent: false,
            unread: false,
            arena: vec![0; ARENA],
            used: 0,
            events: vec![EpollEvent::empty(); 1024],
            written: Vec::new(),
        })
    }

    /// Registers the interest socket `c` needs now, if it changed.
    fn update(&mut self, c: u32) {
        let Some(s) = self.sockets[c as usize].as_mut() else {
            return;
        };
        let mut want = EpollFlags::empty();
        if s.connecting || s.blocked.is_some() {
            want |= EpollFlags::EPOLLOUT;
        }
        if s.armed && !s.done {
            want |= EpollFlags::EPOLLIN;
        }
        if s.interest == Some(want) {
            return;
        }
        let data = u64::from(s.generation) << 32 | u64::from(c);
        let result = match s.interest {
            // An empty interest still reports errors and hang-ups, level-triggered: take the socket
            // out of the set instead, so a dead socket the loop has not closed yet cannot spin.
            Some(_) if want.is_empty() => self.ep.delete(&s.fd),
            Some(_) => self.ep.modify(&s.fd, &mut EpollEvent::new(want, data)),
            None if want.is_empty() => Ok(()),
            None => self.ep.add(&s.fd, EpollEvent::new(want, data)),
        };
        s.interest = match result {
            Ok(()) if want.is_empty() => None,
            Ok(()) => Some(want),
            Err(_) => s.interest,
        };
    }

    fn push(&mut self, c: u32, generation: u32, kind: EventKind<(u32, u32)>, urgent: bool) {
        self.urgent |= urgent;
        self.ready.push(Event {
            c,
            generation,
            kind,
        });
    }

    /// Makes one send from `src` on `c`: completes it, or parks it until `c` is writable.
    fn try_send(&mut self, c: u32, generation: u32, src: Src) {
        let live = self.sockets[c as usize]
            .as_ref()
            .filter(|s| s.generation == generation)
            .map(|s| s.fd.as_raw_fd());
        let Some(fd) = live else {
            // The socket was closed after the send was submitted: hand the buffer back.
            let buf = match src {
                Src::Owned(b, _) => Some(b),
                Src::Interned(..) => None,
            };
            self.push(
                c,
                generation,
                EventKind::Sent(errno(Errno::ECANCELED), buf),
                false,
            );
            return;
        };
        let bytes: &[u8] = match &src {
            Src::Interned(i, offset) => &self.interned[i.0 as usize][*offset..],
            Src::Owned(b, offset) => &b[*offset..],
        };
        let result = send(fd, bytes, MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT);
        let len = bytes.len();
        match result {
            Err(Errno::EAGAIN) => {
                if let Some(s) = self.sockets[c as usize].as_mut() {
                    s.blocked = Some(src);
                }
                self.update(c);
            }
            Err(Errno::EINTR) => self.queued.push((c, generation, src)),
            result => {
                let buf = match src {
                    Src::Owned(b, _) => Some(b),
                    Src::Interned(..) => None,
                };
                let (n, short) = match result {
                    Ok(n) => (n as i32, n < len),
                    Err(e) => (errno(e), true),
                };
                self.push(c, generation, EventKind::Sent(n, buf), short);
            }
        }
    }

    /// Handles what epoll reported for connection slot `c`.
    fn on_socket(&mut self, c: u32, generation: u32, flags: EpollFlags) {
        let Some(s) = self.sockets.get_mut(c as usize).and_then(Option::as_mut) else {
            return;
        };
        if s.generation != generation {
            return;
        }
        let fd = s.fd.as_raw_fd();
        let writable =
            flags.intersects(EpollFlags::EPOLLOUT | EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP);
        if s.connecting && writable {
            s.connecting = false;
            let err = getsockopt(&s.fd, sockopt::SocketError).unwrap_or(nix::libc::EIO);
            self.push(c, generation, EventKind::Connected(-err.abs()), true);
            self.update(c);
            return;
        }
        if writable && let Some(src) = s.blocked.take() {
            self.try_send(c, generation, src);
            self.update(c);
        }
        let Some(s) = self.sockets[c as usize].as_mut() else {
            return;
        };
        let readable =
            flags.intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP);
        if !(readable && s.armed && !s.done) {
            return;
        }
        if ARENA - self.used < MAX_RECV {
            self.unread = true;
            return;
        }
        let kind = s.kind;
        let start = self.used;
        let got = recv(
            fd,
            &mut self.arena[start..start + MAX_RECV],
            MsgFlags::MSG_DONTWAIT,
        );
        let event = match got {
            Ok(0) if kind == SockKind::Tcp => Some(EventKind::Eof),
            Ok(n) => {
                self.used += n;
                Some(EventKind::Received((start as u32, n as u32)))
            }
            Err(Errno::EAGAIN | Errno::EINTR) => None,
            Err(e) => Some(EventKind::RecvFailed(errno(e))),
        };
        if let Some(kind) = event {
            if matches!(kind, EventKind::Eof | EventKind::RecvFailed(_))
                && let Some(s) = self.sockets[c as usize].as_mut()
            {
                s.done = true;
            }
            self.push(c, generation, kind, false);
            self.update(c);
        }
    }
}

impl Backend for Epoll {
    type Buf = (u32, u32);

    fn intern(&mut self, bytes: Vec<u8>) -> Interned {
        self.interned.push(bytes.into_boxed_slice());
        Interned(self.interned.len() as u32 - 1)
    }

    fn intern_addr(&mut self, addr: SocketAddr) -> Addr {
        self.addrs.push(sockaddr(addr));
        Addr(self.addrs.len() as u32 - 1)
    }

    fn open(&mut self, c: u32, generation: u32, kind: SockKind, addr: Addr) -> io::Result<bool> {
        self.close(c, 0);
        let (family, storage) = self.addrs[addr.0 as usize];
        let fd = new_socket(family, kind)?;
        let now = match connect(fd.as_raw_fd(), &storage) {
            Ok(()) => true,
            Err(Errno::EINPROGRESS) if kind == SockKind::Tcp => false,
            Err(e) => return Err(e.into()),
        };
        self.sockets[c as usize] = Some(Socket {
            fd,
            kind,
            generation,
            connecting: !now,
            armed: false,
            done: false,
            blocked: None,
            interest: None,
        });
        if now && kind == SockKind::Tcp {
            // Connected at once (it happens on loopback): report it like a completed connect.
            self.push(c, generation, EventKind::Connected(0), true);
            return Ok(false);
        }
        self.update(c);
        Ok(now)
    }

    fn arm(&mut self, c: u32, _generation: u32) -> io::Result<()> {
        let Some(s) = self.sockets[c as usize].as_mut() else {
            return Err(io::Error::from(io::ErrorKind::NotConnected));
        };
        s.armed = true;
        self.update(c);
        Ok(())
    }

    fn send(
        &mut self,
        c: u32,
        generation: u32,
        src: Src,
    ) -> Result<(), (io::Error, Option<Vec<u8>>)> {
        self.queued.push((c, generation, src));
        Ok(())
    }

    fn close(&mut self, c: u32, _generation: u32) {
        // Dropping the descriptor takes it out of the epoll set.
        self.sockets[c as usize] = None;
    }

    fn cancel_connect(&mut self, c: u32, generation: u32) {
        if let Some(s) = self.sockets[c as usize].as_mut()
            && s.generation == generation
            && s.connecting
        {
            s.connecting = false;
            self.push(
                c,
                generation,
                EventKind::Connected(errno(Errno::ECANCELED)),
                true,
            );
            self.update(c);
        }
    }

    fn watch(&mut self, fd: BorrowedFd<'_>, key: u32) -> io::Result<()> {
        self.ep.add(
            fd,
            EpollEvent::new(EpollFlags::EPOLLIN, WATCH | u64::from(key)),
        )?;
        Ok(())
    }

    fn unwatch(&mut self, fd: BorrowedFd<'_>, _key: u32) {
        // A registration is no operation in flight; it only stops the events. ENOENT (never
        // watched) needs nothing done.
        let _ = self.ep.delete(fd);
    }

    fn wait(&mut self, clock: &Clock, now_us: u64, until_us: u64) -> io::Result<()> {
        self.used = 0;
        std::mem::swap(&mut self.queued, &mut self.sending);
        let mut sending = std::mem::take(&mut self.sending);
        for (c, generation, src) in sending.drain(..) {
            self.try_send(c, generation, src);
        }
        self.sending = sending;
        let timeout = if self.urgent || self.unread || until_us <= now_us {
            EpollTimeout::ZERO
        } else {
            let at = clock.monotonic_at(until_us.saturating_mul(1000));
            if at != self.armed_ns {
                self.timer.set(
                    Expiration::OneShot(TimeSpec::from(std::time::Duration::from_nanos(at.max(1)))),
                    TimerSetTimeFlags::TFD_TIMER_ABSTIME,
                )?;
                self.armed_ns = at;
            }
            EpollTimeout::NONE
        };
        self.urgent = false;
        self.unread = false;
        let n = match self.ep.wait(&mut self.events, timeout) {
            Ok(n) => n,
            Err(Errno::EINTR) => 0,
            Err(e) => return Err(e.into()),
        };
        for i in 0..n {
            let (data, flags) = (self.events[i].data(), self.events[i].events());
            if data == TIMER {
                let mut count = [0u8; 8];
                let _ = nix::unistd::read(self.timer.as_fd(), &mut count);
                self.armed_ns = 0;
            } else if data & WATCH != 0 {
                self.push(data as u32, 0, EventKind::Ready, false);
            } else {
                self.on_socket(data as u32, (data >> 32) as u32, flags);
            }
        }
        Ok(())
    }

    fn reap(&mut self, out: &mut Vec<Event<Self::Buf>>) {
        out.append(&mut self.ready);
    }

    fn bytes(&self, buf: &Self::Buf) -> &[u8] {
        &self.arena[buf.0 as usize..(buf.0 + buf.1) as usize]
    }

    fn recycle(&mut self, _buf: Self::Buf) {}

    fn write_file(&mut self, file: &std::fs::File, buf: Vec<u8>, offset: u64) -> io::Result<()> {
        let result = match nix::sys::uio::pwrite(file, &buf, offset as i64) {
            Ok(n) => n as i32,
            Err(e) => errno(e),
        };
        self.written.push((buf, result, offset));
        Ok(())
    }

    fn take_written(&mut self, out: &mut Vec<(Vec<u8>, i32, u64)>) {
        out.append(&mut self.written);
    }

    fn in_flight(&self) -> usize {
        0
    }
}
