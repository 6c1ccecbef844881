//! The escape hatch for custom protocols written against async client libraries (HTTP/2 by `h2`,
//! PostgreSQL by its async clients, ...): a small executor and reactor hosted on the core's loop.
//! Built-in protocols never go through it.
//!
//! A custom step runs as a task here. Its sockets ([`TcpStream`]) are non-blocking and registered,
//! edge-triggered, with the reactor's own epoll instance once each; the loop watches that instance's
//! descriptor through its backend (an io_uring poll or a nested epoll registration) and, when it is
//! readable or a timer of the reactor is due, calls [`Hosted::turn`], which wakes the tasks whose
//! sockets became ready and polls every woken task. Everything stays on the core's thread: no task
//! moves, nothing is shared, and a task's waker only ever pushes its index on that thread's ready
//! list. A task dropped by the watchdog (a step past the request timeout) drops its sockets with it.
//!
//! This path costs a boxed future, an `Arc` waker and readiness system calls per step; docs/
//! performance.md measures it apart from the built-in protocols.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockType, SockaddrStorage, connect, getsockopt, recv, send,
    setsockopt, socket, sockopt,
};

use crate::clock::Clock;

/// The most task polls per turn: a task that keeps waking itself must not starve the loop.
const POLLS_PER_TURN: usize = 4096;

thread_local! {
    /// The reactor of the core running on this thread, while it runs.
    static CURRENT: RefCell<Option<Rc<Reactor>>> = const { RefCell::new(None) };
    /// Tasks woken since they were last polled.
    static READY: RefCell<VecDeque<usize>> = const { RefCell::new(VecDeque::new()) };
}

/// A waker that puts its task on the ready list of the thread that runs it.
struct TaskWaker(usize);

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Tasks never leave their core's thread, so neither do their wakers.
        READY.with_borrow_mut(|r| r.push_back(self.0));
    }
}

type Task = Pin<Box<dyn Future<Output = ()>>>;

/// A registered socket's readiness and the tasks waiting for it.
#[derive(Default)]
struct Source {
    read: Option<Waker>,
    write: Option<Waker>,
}

/// The reactor: the epoll instance sockets register with, timers, and the tasks.
pub(crate) struct Reactor {
    epoll: Epoll,
    clock: Clock,
    sources: RefCell<Vec<Option<Source>>>,
    free_sources: RefCell<Vec<usize>>,
    /// (deadline µs, timer key) and the waker of each pending timer by key. Keys are never reused, so
    /// the heap entry of a dropped sleep wakes nobody.
    timers: RefCell<BinaryHeap<Reverse<(u64, u64)>>>,
    timer_wakers: RefCell<HashMap<u64, Waker>>,
    next_timer: Cell<u64>,
    /// Tasks by index; `None` for a free slot or a task being polled.
    tasks: RefCell<Vec<Option<(Task, Waker)>>>,
    free_tasks: RefCell<Vec<usize>>,
    /// Tasks that were dropped while being polled (cancelled from inside).
    live: RefCell<Vec<bool>>,
    events: RefCell<Vec<EpollEvent>>,
    polling: Cell<Option<usize>>,
}

/// The loop's handle on the reactor of its core.
pub(crate) struct Hosted {
    reactor: Rc<Reactor>,
}

impl Hosted {
    /// A reactor for this thread, made current for the tasks it runs.
    pub fn new(clock: Clock) -> io::Result<Hosted> {
        let reactor = Rc::new(Reactor {
            epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?,
            clock,
            sources: RefCell::default(),
            free_sources: RefCell::default(),
            timers: RefCell::default(),
            timer_wakers: RefCell::default(),
            next_timer: Cell::new(0),
            tasks: RefCell::default(),
            free_tasks: RefCell::default(),
            live: RefCell::default(),
            events: RefCell::new(vec![EpollEvent::empty(); 256]),
            polling: Cell::new(None),
        });
        CURRENT.with_borrow_mut(|c| *c = Some(Rc::clone(&reactor)));
        Ok(Hosted { reactor })
    }

    /// The descriptor the loop watches: readable when a registered socket has news.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.reactor.epoll.0.as_fd()
    }

    /// Starts `task`; returns its index (for [`Hosted::cancel`]).
    pub fn spawn(&self, task: impl Future<Output = ()> + 'static) -> usize {
        self.reactor.spawn(Box::pin(task))
    }

    /// Drops task `id` (and whatever it owns) if it is still running.
    pub fn cancel(&self, id: usize) {
        let task = {
            let mut tasks = self.reactor.tasks.borrow_mut();
            let mut live = self.reactor.live.borrow_mut();
            match live.get_mut(id) {
                Some(l) if *l => {
                    *l = false;
                    tasks[id].take()
                }
                _ => None,
            }
        };
        if task.is_some() {
            self.reactor.free_tasks.borrow_mut().push(id);
        }
        drop(task);
    }

    /// Whether tasks wait to be polled.
    pub fn has_ready(&self) -> bool {
        READY.with_borrow(|r| !r.is_empty())
    }

    /// The earliest timer of the reactor, µs.
    pub fn next_deadline(&self) -> Option<u64> {
        self.reactor
            .timers
            .borrow()
            .peek()
            .map(|Reverse((at, _))| *at)
    }

    /// Wakes the tasks whose sockets are ready or whose timers are due, and polls every woken task.
    pub fn turn(&self) {
        let r = &self.reactor;
        // Edge-triggered registrations are reported once: take every event the instance holds (a full
        // batch may leave more, and its descriptor would not signal them again).
        loop {
            let mut events = r.events.borrow_mut();
            let n = r.epoll.wait(&mut events, EpollTimeout::ZERO).unwrap_or(0);
            let mut sources = r.sources.borrow_mut();
            for ev in &events[..n] {
                let Some(Some(s)) = sources.get_mut(ev.data() as usize) else {
                    continue;
                };
                let flags = ev.events();
                let hup = EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP;
                if flags.intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP | hup)
                    && let Some(w) = s.read.take()
                {
                    w.wake();
                }
                if flags.intersects(EpollFlags::EPOLLOUT | hup)
                    && let Some(w) = s.write.take()
                {
                    w.wake();
                }
            }
            if n < events.len() {
                break;
            }
        }
        let now = r.clock.now_us();
        loop {
            let due = {
                let mut timers = r.timers.borrow_mut();
                match timers.peek() {
                    Some(Reverse((at, _))) if *at <= now => timers.pop().map(|Reverse((_, id))| id),
                    _ => None,
                }
            };
            let Some(id) = due else { break };
            let woken = r.timer_wakers.borrow_mut().remove(&id);
            if let Some(w) = woken {
                w.wake();
            }
        }
        for _ in 0..POLLS_PER_TURN {
            let Some(id) = READY.with_borrow_mut(VecDeque::pop_front) else {
                break;
            };
            let Some((mut task, waker)) = r.tasks.borrow_mut().get_mut(id).and_then(Option::take)
            else {
                continue;
            };
            r.polling.set(Some(id));
            let done = task
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_ready();
            r.polling.set(None);
            let mut live = r.live.borrow_mut();
            if done || !live[id] {
                live[id] = false;
                r.free_tasks.borrow_mut().push(id);
            } else {
                r.tasks.borrow_mut()[id] = Some((task, waker));
            }
        }
    }
}

impl Drop for Hosted {
    fn drop(&mut self) {
        // Tasks hold sockets registered with the reactor: drop them before it goes.
        let tasks = std::mem::take(&mut *self.reactor.tasks.borrow_mut());
        drop(tasks);
        CURRENT.with_borrow_mut(|c| *c = None);
        READY.with_borrow_mut(VecDeque::clear);
    }
}

impl Reactor {
    fn spawn(&self, task: Task) -> usize {
        let id = match self.free_tasks.borrow_mut().pop() {
            Some(id) => id,
            None => {
                let mut tasks = self.tasks.borrow_mut();
                tasks.push(None);
                self.live.borrow_mut().push(false);
                tasks.len() - 1
            }
        };
        let waker = Waker::from(Arc::new(TaskWaker(id)));
        self.tasks.borrow_mut()[id] = Some((task, waker));
        self.live.borrow_mut()[id] = true;
        READY.with_borrow_mut(|r| r.push_back(id));
        id
    }

    fn register(&self, fd: BorrowedFd<'_>) -> io::Result<usize> {
        let id = {
            let mut sources = self.sources.borrow_mut();
            match self.free_sources.borrow_mut().pop() {
                Some(id) => {
                    sources[id] = Some(Source::default());
                    id
                }
                None => {
                    sources.push(Some(Source::default()));
                    sources.len() - 1
                }
            }
        };
        let flags = EpollFlags::EPOLLIN
            | EpollFlags::EPOLLOUT
            | EpollFlags::EPOLLRDHUP
            | EpollFlags::EPOLLET;
        if let Err(e) = self.epoll.add(fd, EpollEvent::new(flags, id as u64)) {
            self.deregister(id);
            return Err(e.into());
        }
        Ok(id)
    }

    fn deregister(&self, id: usize) {
        self.sources.borrow_mut()[id] = None;
        self.free_sources.borrow_mut().push(id);
    }

    fn wait_for(&self, id: usize, write: bool, waker: &Waker) {
        if let Some(Some(s)) = self.sources.borrow_mut().get_mut(id) {
            let slot = if write { &mut s.write } else { &mut s.read };
            match slot {
                Some(w) if w.will_wake(waker) => {}
                _ => *slot = Some(waker.clone()),
            }
        }
    }
}

fn current() -> io::Result<Rc<Reactor>> {
    CURRENT.with_borrow(Clone::clone).ok_or_else(|| {
        io::Error::other("not on an engine core: custom protocols run inside `engine run`")
    })
}

/// Starts `task` on the current core, beside the step that called it (an HTTP/2 connection's driver,
/// say). It runs until it ends or the core stops.
///
/// # Panics
///
/// Outside an engine core (a custom protocol's futures always run on one).
pub fn spawn(task: impl Future<Output = ()> + 'static) {
    let reactor = current().expect("spawn is called from a custom protocol's step");
    reactor.spawn(Box::pin(task));
}

/// Waits `duration` on the current core's timers.
pub async fn sleep(duration: Duration) {
    let Ok(reactor) = current() else { return };
    let deadline = reactor
        .clock
        .now_us()
        .saturating_add(crate::clock::micros(duration));
    Sleep {
        reactor,
        deadline,
        id: None,
    }
    .await;
}

struct Sleep {
    reactor: Rc<Reactor>,
    deadline: u64,
    /// Its key while a heap entry and waker are pending.
    id: Option<u64>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.reactor.clock.now_us() >= self.deadline {
            return Poll::Ready(());
        }
        let pending = self
            .id
            .is_some_and(|id| self.reactor.timer_wakers.borrow().contains_key(&id));
        let id = match self.id {
            Some(id) if pending => id,
            // First poll, or its entry fired (the clock reads in whole µs): a fresh entry.
            _ => {
                let id = self.reactor.next_timer.get();
                self.reactor.next_timer.set(id + 1);
                self.reactor
                    .timers
                    .borrow_mut()
                    .push(Reverse((self.deadline, id)));
                self.id = Some(id);
                id
            }
        };
        self.reactor
            .timer_wakers
            .borrow_mut()
            .insert(id, cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.reactor.timer_wakers.borrow_mut().remove(&id);
        }
    }
}

/// Runs `future` for at most `limit`; `None` if it did not finish in time.
pub(crate) async fn timeout<T>(limit: Duration, future: impl Future<Output = T>) -> Option<T> {
    let mut future = std::pin::pin!(future);
    let mut timer = std::pin::pin!(sleep(limit));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        timer.as_mut().poll(cx).map(|()| None)
    })
    .await
}

/// A TCP connection for custom protocols, driven by the core's loop: `read`/`write_all` for protocol
/// code, and `poll_read`/`poll_write` for adapters to other I/O traits (tokio's, for `h2`).
pub struct TcpStream {
    fd: OwnedFd,
    id: usize,
    reactor: Rc<Reactor>,
}

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpStream")
            .field("fd", &self.fd.as_raw_fd())
            .finish_non_exhaustive()
    }
}

impl TcpStream {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
        let reactor = current()?;
        let family = if addr.is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        let fd = socket(
            family,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        let id = reactor.register(fd.as_fd())?;
        let stream = TcpStream { fd, id, reactor };
        match connect(stream.fd.as_raw_fd(), &SockaddrStorage::from(addr)) {
            Ok(()) => return Ok(stream),
            Err(Errno::EINPROGRESS) => {}
            Err(e) => return Err(e.into()),
        }
        std::future::poll_fn(|cx| {
            // Writable means the connect finished, one way or the other.
            match nix::poll::poll(
                &mut [nix::poll::PollFd::new(
                    stream.fd.as_fd(),
                    nix::poll::PollFlags::POLLOUT,
                )],
                nix::poll::PollTimeout::ZERO,
            ) {
                Ok(0) => {
                    stream.reactor.wait_for(stream.id, true, cx.waker());
                    Poll::Pending
                }
                _ => Poll::Ready(()),
            }
        })
        .await;
        match getsockopt(&stream.fd, sockopt::SocketError)? {
            0 => Ok(stream),
            e => Err(io::Error::from_raw_os_error(e)),
        }
    }

    /// Sets `TCP_NODELAY` (small requests not held back by Nagle's algorithm).
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        setsockopt(&self.fd, sockopt::TcpNoDelay, &on).map_err(Into::into)
    }

    /// Reads what is there into `buf` (0 at the end of the stream), or registers to be woken.
    pub fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        loop {
            match recv(self.fd.as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => {
                    self.reactor.wait_for(self.id, false, cx.waker());
                    return Poll::Pending;
                }
                Err(e) => return Poll::Ready(Err(e.into())),
            }
        }
    }

    /// Writes some of `buf`, or registers to be woken when it can.
    pub fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            match send(
                self.fd.as_raw_fd(),
                buf,
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
            ) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => {
                    self.reactor.wait_for(self.id, true, cx.waker());
                    return Poll::Pending;
                }
                Err(e) => return Poll::Ready(Err(e.into())),
            }
        }
    }

    /// Reads what is there into `buf`; 0 at the end of the stream.
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_read(cx, buf)).await
    }

    /// Writes all of `buf`.
    pub async fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = std::future::poll_fn(|cx| self.poll_write(cx, buf)).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            buf = &buf[n..];
        }
        Ok(())
    }

    /// Shuts the writing half down (the peer reads the end of the stream).
    pub fn shutdown_write(&self) -> io::Result<()> {
        nix::sys::socket::shutdown(self.fd.as_raw_fd(), nix::sys::socket::Shutdown::Write)
            .map_err(Into::into)
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        // Closing the descriptor takes it out of the epoll set.
        self.reactor.deregister(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Turns the executor until `done` is set or two seconds pass; returns whether it was set.
    fn run_until(hosted: &Hosted, clock: Clock, done: &Cell<bool>) -> bool {
        let give_up = clock.now_us() + 2_000_000;
        while !done.get() && clock.now_us() < give_up {
            hosted.turn();
            if !hosted.has_ready() {
                let next = hosted.next_deadline().unwrap_or(give_up).min(give_up);
                std::thread::sleep(Duration::from_micros(
                    next.saturating_sub(clock.now_us()).min(10_000),
                ));
            }
        }
        done.get()
    }

    #[test]
    fn a_dropped_sleep_never_takes_a_later_sleeps_wake_up() {
        let clock = Clock::start();
        let hosted = Hosted::new(clock).unwrap();
        let done = Rc::new(Cell::new(false));
        let flag = Rc::clone(&done);
        hosted.spawn(async move {
            // The 50 ms sleep is dropped when the 1 ms timeout wins, leaving its heap entry behind;
            // the 100 ms sleep that follows must still end, at its own deadline and not before.
            assert!(
                timeout(Duration::from_millis(1), sleep(Duration::from_millis(50)))
                    .await
                    .is_none()
            );
            let start = clock.now_us();
            sleep(Duration::from_millis(100)).await;
            assert!(clock.now_us() - start >= 100_000);
            flag.set(true);
        });
        assert!(
            run_until(&hosted, clock, &done),
            "the second sleep never ended"
        );
    }

    #[test]
    fn a_sleep_started_while_another_is_being_woken_keeps_its_wake_up() {
        let clock = Clock::start();
        let hosted = Hosted::new(clock).unwrap();
        let done = Rc::new(Cell::new(false));
        let flag = Rc::clone(&done);
        // A sleeps until 6 ms; B's first sleep ends at 5 ms, so in one turn B runs first and starts its
        // second sleep while A's sleep has fired but not yet been polled (and dropped).
        hosted.spawn(sleep(Duration::from_millis(6)));
        hosted.spawn(async move {
            sleep(Duration::from_millis(5)).await;
            sleep(Duration::from_millis(30)).await;
            flag.set(true);
        });
        hosted.turn();
        std::thread::sleep(Duration::from_millis(8));
        assert!(
            run_until(&hosted, clock, &done),
            "B's second sleep never ended"
        );
    }

    #[test]
    fn a_cancelled_task_is_dropped_with_what_it_owns() {
        let clock = Clock::start();
        let hosted = Hosted::new(clock).unwrap();
        let owned = Rc::new(());
        let held = Rc::clone(&owned);
        let id = hosted.spawn(async move {
            let _held = held;
            sleep(Duration::from_secs(60)).await;
        });
        hosted.turn();
        assert_eq!(Rc::strong_count(&owned), 2);
        hosted.cancel(id);
        assert_eq!(Rc::strong_count(&owned), 1);
    }
}
