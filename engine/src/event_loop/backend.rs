//! What the loop asks of the kernel, whichever mechanism carries it: a small completion-style
//! interface that the io_uring backend (`uring.rs`) implements with one ring and the epoll backend
//! (`epoll.rs`) with non-blocking system calls.
//!
//! The loop names connections by slot (`c`, an index into its connection table) and generation
//! (`generation`, bumped every time the slot gets a new socket): an event of an older generation is
//! for a socket the loop has since closed, and is ignored. Operations are *submitted* when the loop
//! calls them and reach the kernel at the latest at the next [`Backend::wait`]; their results come back
//! as [`Event`]s from [`Backend::reap`]. Both backends behave alike: a send completes with the number
//! of bytes taken (possibly fewer than offered; the loop sends the rest), a receive delivers whatever
//! arrived, and the loop never sees readiness, `EAGAIN` or partial system calls.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{BorrowedFd, OwnedFd};

use nix::sys::socket::{
    AddressFamily, SockFlag, SockType, SockaddrStorage, setsockopt, socket, sockopt,
};

use crate::clock::Clock;

/// The generation bits events carry (io_uring user data has room for 27); the loop keeps each slot's
/// generation within them.
pub(crate) const GENERATION_MASK: u32 = 0x07ff_ffff;

/// A socket's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SockKind {
    /// A TCP stream (connect completes with [`EventKind::Connected`]).
    Tcp,
    /// A connected UDP socket (connected at once).
    Udp,
}

/// A target address as the socket calls take it, with its family.
pub(crate) fn sockaddr(addr: SocketAddr) -> (AddressFamily, SockaddrStorage) {
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    (family, SockaddrStorage::from(addr))
}

/// A new non-blocking socket of `kind` for `family`, not yet connected. TCP sockets have Nagle's
/// algorithm off: small requests must not wait for it.
pub(crate) fn new_socket(family: AddressFamily, kind: SockKind) -> io::Result<OwnedFd> {
    let ty = match kind {
        SockKind::Tcp => SockType::Stream,
        SockKind::Udp => SockType::Datagram,
    };
    let fd = socket(
        family,
        ty,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    if kind == SockKind::Tcp {
        let _ = setsockopt(&fd, sockopt::TcpNoDelay, &true);
    }
    Ok(fd)
}

/// Bytes interned for the run: a fixed request, sent without copying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Interned(pub u32);

/// A target address interned for the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Addr(pub u32);

/// What a send takes its bytes from.
#[derive(Debug)]
pub(crate) enum Src {
    /// Interned bytes from this offset.
    Interned(Interned, usize),
    /// The connection's own buffer from this offset; the backend holds it until the send completes
    /// and hands it back in [`EventKind::Sent`].
    Owned(Vec<u8>, usize),
}

/// One completed operation.
#[derive(Debug)]
pub(crate) struct Event<B> {
    /// The connection slot, or a watch key for [`EventKind::Ready`].
    pub c: u32,
    pub generation: u32,
    pub kind: EventKind<B>,
}

/// What completed.
#[derive(Debug)]
pub(crate) enum EventKind<B> {
    /// A TCP connect: 0, or a negative errno.
    Connected(i32),
    /// A send: bytes taken, or a negative errno; an owned buffer comes back.
    Sent(i32, Option<Vec<u8>>),
    /// Bytes arrived (never empty); read them with [`Backend::bytes`], then [`Backend::recycle`].
    Received(B),
    /// The peer closed its side.
    Eof,
    /// Receiving failed with this negative errno; the socket is unusable.
    RecvFailed(i32),
    /// Receiving stopped without an error (the io_uring buffer ring ran dry): arm it again.
    RecvEnded,
    /// A watched descriptor became readable (the key given to [`Backend::watch`] is `c`).
    Ready,
}

/// An I/O mechanism for one core's loop.
pub(crate) trait Backend {
    /// Where received bytes are until recycled.
    type Buf;

    /// Keeps `bytes` for the run, to be sent without copying.
    fn intern(&mut self, bytes: Vec<u8>) -> Interned;

    /// Keeps `addr` for the run, to be connected to.
    fn intern_addr(&mut self, addr: SocketAddr) -> Addr;

    /// Opens a socket of `kind` in slot `c` and connects it to `addr`. `Ok(true)`: connected at once
    /// (UDP); `Ok(false)`: an [`EventKind::Connected`] follows.
    fn open(&mut self, c: u32, generation: u32, kind: SockKind, addr: Addr) -> io::Result<bool>;

    /// Starts receiving on `c` (after its connect): every arrival becomes an event until the socket
    /// closes, fails, or (io_uring) the receive ends and must be armed again.
    fn arm(&mut self, c: u32, generation: u32) -> io::Result<()>;

    /// Sends from `src` on `c`. On an error to submit, an owned buffer comes back with it.
    fn send(
        &mut self,
        c: u32,
        generation: u32,
        src: Src,
    ) -> Result<(), (io::Error, Option<Vec<u8>>)>;

    /// Closes `c`'s socket; its operations end, and their events carry the old generation.
    fn close(&mut self, c: u32, generation: u32);

    /// Cancels `c`'s connect in progress (its event follows with an error).
    fn cancel_connect(&mut self, c: u32, generation: u32);

    /// Reports each time `fd` becomes readable as an [`EventKind::Ready`] with `c == key`. The caller
    /// keeps the descriptor open until it calls [`Backend::unwatch`].
    fn watch(&mut self, fd: BorrowedFd<'_>, key: u32) -> io::Result<()>;

    /// Stops watching `fd` (given to [`Backend::watch`] under `key`). A watch can be an operation in
    /// flight for as long as it lasts (io_uring's multishot poll): once this is called, it ends, and
    /// [`Backend::in_flight`] no longer counts it after the next waits have reaped its end.
    fn unwatch(&mut self, fd: BorrowedFd<'_>, key: u32);

    /// Submits what is queued and waits for events until the run's clock reaches `until_us`.
    fn wait(&mut self, clock: &Clock, now_us: u64, until_us: u64) -> io::Result<()>;

    /// For the next [`Backend::wait`]: `expect` completions are expected, and once one is there the
    /// wait may go on up to `linger_us` for more of them (0: return with the first). A backend that
    /// cannot wait that way ignores it.
    fn linger(&mut self, _expect: usize, _linger_us: u32) {}

    /// Moves every event that is ready into `out`.
    fn reap(&mut self, out: &mut Vec<Event<Self::Buf>>);

    /// The bytes of a received buffer.
    fn bytes(&self, buf: &Self::Buf) -> &[u8];

    /// Gives a received buffer back.
    fn recycle(&mut self, buf: Self::Buf);

    /// Writes `buf` at `offset` of the regular file `fd`, off the request path; the buffer comes back
    /// from [`Backend::take_written`] with the result.
    fn write_file(&mut self, file: &std::fs::File, buf: Vec<u8>, offset: u64) -> io::Result<()>;

    /// File writes that finished: (buffer, bytes written or negative errno, offset).
    fn take_written(&mut self, out: &mut Vec<(Vec<u8>, i32, u64)>);

    /// Operations that still use memory of ours (the loop waits for them before exiting).
    fn in_flight(&self) -> usize;
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;
    use crate::event_loop::{Epoll, Uring};

    /// Waits (10 ms at a time, at most 2 s in all) and reaps until `done` holds; returns whether it did.
    fn wait_until<B: Backend>(
        io: &mut B,
        clock: &Clock,
        events: &mut Vec<Event<B::Buf>>,
        mut done: impl FnMut(&B, &[Event<B::Buf>]) -> bool,
    ) -> bool {
        for _ in 0..200 {
            let now = clock.now_us();
            io.wait(clock, now, now + 10_000).unwrap();
            io.reap(events);
            if done(io, events) {
                return true;
            }
        }
        false
    }

    fn ready<B: Backend>(events: &[Event<B::Buf>], key: u32) -> bool {
        events
            .iter()
            .any(|e| e.c == key && matches!(e.kind, EventKind::Ready))
    }

    /// A watched descriptor reports readiness until it is unwatched; then it reports nothing, and
    /// nothing is left in flight for the loop's last wait to wait for (an io_uring multishot poll left
    /// armed kept every run with custom steps going 2 s past its end).
    fn unwatching_ends_the_watch<B: Backend>(mut io: B) {
        let clock = Clock::start();
        let (read, write) = nix::unistd::pipe().unwrap();
        let mut events = Vec::new();
        io.watch(read.as_fd(), 7).unwrap();
        nix::unistd::write(&write, b"x").unwrap();
        assert!(
            wait_until(&mut io, &clock, &mut events, |_, ev| ready::<B>(ev, 7)),
            "the watch never reported the readable pipe"
        );
        io.unwatch(read.as_fd(), 7);
        assert!(
            wait_until(&mut io, &clock, &mut events, |io, _| io.in_flight() == 0),
            "{} operations still in flight after the unwatch",
            io.in_flight()
        );
        // Readable again (it still is: nothing read it), and more so: no event for the key.
        events.clear();
        nix::unistd::write(&write, b"y").unwrap();
        let now = clock.now_us();
        io.wait(&clock, now, now + 20_000).unwrap();
        io.reap(&mut events);
        assert!(!ready::<B>(&events, 7), "an event after the unwatch");
        assert_eq!(io.in_flight(), 0);
    }

    #[test]
    fn unwatching_ends_the_watch_uring() {
        unwatching_ends_the_watch(Uring::new(1).expect("io_uring is available where tests run"));
    }

    #[test]
    fn unwatching_ends_the_watch_epoll() {
        unwatching_ends_the_watch(Epoll::new(1).unwrap());
    }
}
