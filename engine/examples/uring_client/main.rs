//! A prototype: how far a hand-written io_uring hot path goes, recording every request.
//!
//! One thread, one io_uring (SINGLE_ISSUER|DEFER_TASKRUN or COOP_TASKRUN), N keep-alive HTTP/1.1
//! connections driven as explicit state machines (no futures, no wakers), registered file descriptors,
//! a provided-buffer ring, and a multishot receive per connection (or a single-shot receive per
//! response, optionally with IORING_RECVSEND_POLL_FIRST). Each response is parsed with the engine's own
//! `parse_head` (httparse), and every request becomes one `formats::Sample` pushed through a
//! `formats::LogWriter` and four histograms, exactly as the engine's `Recorder` does; finished log blocks
//! are written to `OUT/core-0.log` through the same ring, off the request path.
//!
//! It is a measuring instrument for docs/io-drivers.md, not part of `engine run`.
//!
//! ```sh
//! cargo build --release -p engine --example uring_client
//! target/release/examples/uring_client --url http://127.0.0.1:8080/ --conns 50 --duration 10s \
//!     --out /tmp/proto [--setup defer|coop] [--recv multishot|pollfirst|plain] [--no-fixed] \
//!     [--wait N] [--skip-send-cqe] [--verify]
//! ```
//!
//! Prints `<n> samples, completed (<variant>)` like `engine run --quiet`, so scripts/bench-uring-prototype.sh
//! counts both the same way.
//!
//! Timing: the clock is read once after each `io_uring_enter` returns (the end time of every response
//! completed in that batch, and the ready time of the requests that follow them) and once before the
//! next enter (the actual start of the requests it submits): two vDSO clock reads per batch instead of
//! two per request.

mod ring;

use std::io::Write as _;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use engine::http::{BodyKind, Chunked, parse_head};
use engine::plan::StatusSet;
use formats::{
    BlockSink, IntervalStats, LogHeader, LogWriter, MessageId, NameId, Outcome, RunId, Sample,
};
use hdrhistogram::Histogram;

use ring::{BufId, Cqe, ReqBytes, Ring, Setup, Target};

const TICK_US: u64 = 50_000;
const DRAIN_EVERY_US: u64 = 250_000;
const MAX_HEAD: usize = 64 << 10;
const MAX_BODY: u64 = 1 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT_US: u64 = 30_000_000;
const GRACE_US: u64 = 2_000_000;
/// Pushing to the submission queue fails only if the ring itself is broken.
const SUBMIT: &str = "io_uring submission failed";

// ---------------------------------------------------------------------------------------------------
// Options

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecvMode {
    /// One multishot receive per connection, armed at connect, re-armed only when it ends.
    Multishot,
    /// A single-shot receive submitted with each send, with IORING_RECVSEND_POLL_FIRST.
    PollFirst,
    /// A single-shot receive submitted with each send, tried at once (what monoio does).
    Plain,
}

#[derive(Debug)]
struct Args {
    url: String,
    conns: u32,
    duration: Duration,
    out: PathBuf,
    setup: Setup,
    recv: RecvMode,
    fixed: bool,
    wait: usize,
    /// The longest a wait for `wait` completions may take before returning with fewer, µs.
    wait_timeout_us: u64,
    skip_send_cqe: bool,
    buffers: u16,
    buf_size: u32,
    verify: bool,
    /// Diagnostic only: count requests without logging samples or recording histograms (to measure
    /// what recording costs; does not meet the every-request-recorded requirement).
    no_record: bool,
    /// Serve from the engine's embedded target (on CPU 1) instead of `--url`, and check that it
    /// served exactly the requests logged as answered.
    embedded: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        url: String::new(),
        conns: 50,
        duration: Duration::from_secs(10),
        out: PathBuf::from("uring-proto-out"),
        setup: Setup::Defer,
        recv: RecvMode::Multishot,
        fixed: true,
        wait: 1,
        wait_timeout_us: TICK_US,
        skip_send_cqe: false,
        buffers: 256,
        buf_size: 4096,
        verify: false,
        no_record: false,
        embedded: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => a.url = val()?,
            "--conns" | "--users" => a.conns = val()?.parse().map_err(|e| format!("{e}"))?,
            "--duration" => {
                let v = val()?;
                let secs: f64 = v
                    .trim_end_matches('s')
                    .parse()
                    .map_err(|e| format!("--duration {v}: {e}"))?;
                a.duration = Duration::from_secs_f64(secs);
            }
            "--out" => a.out = PathBuf::from(val()?),
            "--setup" => {
                a.setup = match val()?.as_str() {
                    "defer" => Setup::Defer,
                    "coop" => Setup::Coop,
                    v => return Err(format!("--setup {v}: defer or coop")),
                }
            }
            "--recv" => {
                a.recv = match val()?.as_str() {
                    "multishot" => RecvMode::Multishot,
                    "pollfirst" => RecvMode::PollFirst,
                    "plain" => RecvMode::Plain,
                    v => return Err(format!("--recv {v}: multishot, pollfirst or plain")),
                }
            }
            "--no-fixed" => a.fixed = false,
            "--wait" => a.wait = val()?.parse().map_err(|e| format!("{e}"))?,
            "--wait-timeout-us" => {
                a.wait_timeout_us = val()?.parse().map_err(|e| format!("{e}"))?;
            }
            "--skip-send-cqe" => a.skip_send_cqe = true,
            "--buffers" => a.buffers = val()?.parse().map_err(|e| format!("{e}"))?,
            "--buf-size" => a.buf_size = val()?.parse().map_err(|e| format!("{e}"))?,
            "--verify" => a.verify = true,
            "--no-record" => a.no_record = true,
            "--embedded" => a.embedded = Some(val()?),
            "--quiet" => {}
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.url.is_empty() && a.embedded.is_none() {
        return Err("--url is required".into());
    }
    if !a.buffers.is_power_of_two() || a.wait == 0 || a.conns == 0 {
        return Err("--buffers must be a power of two, --wait and --conns positive".into());
    }
    Ok(a)
}

impl Args {
    fn variant(&self) -> String {
        let setup = match self.setup {
            Setup::Defer => "DEFER_TASKRUN",
            Setup::Coop => "COOP_TASKRUN",
        };
        let recv = match self.recv {
            RecvMode::Multishot => "multishot recv",
            RecvMode::PollFirst => "POLL_FIRST recv",
            RecvMode::Plain => "plain recv",
        };
        let mut v = format!("prototype, {setup}, {recv}");
        v += if self.fixed {
            ", fixed files"
        } else {
            ", plain fds"
        };
        if self.wait > 1 {
            v += &format!(", wait {}", self.wait);
        }
        if self.wait_timeout_us != TICK_US {
            v += &format!(" or {} µs", self.wait_timeout_us);
        }
        if self.skip_send_cqe {
            v += ", send CQE skipped";
        }
        if self.no_record {
            v += ", NOT RECORDING";
        }
        v
    }
}

// ---------------------------------------------------------------------------------------------------
// The sample log and the figures the engine keeps per request (its `core::Recorder`, reduced to one
// request name).

/// Finished log blocks waiting to be written, and emptied buffers for reuse (the engine's QueueSink).
#[derive(Debug, Default)]
struct BlockQueue {
    pending: Vec<Vec<u8>>,
    free: Vec<Vec<u8>>,
}

impl BlockSink for BlockQueue {
    type Error = std::convert::Infallible;
    fn write(&mut self, bytes: &[u8]) -> Result<(), Self::Error> {
        let mut buf = self.free.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(bytes);
        self.pending.push(buf);
        Ok(())
    }
}

fn histogram(sigfig: u8) -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, sigfig).expect("valid bounds")
}

#[derive(Debug)]
struct Recorder {
    no_record: bool,
    writer: LogWriter<BlockQueue>,
    name: NameId,
    latency: Histogram<u64>,
    second: Histogram<u64>,
    lag: Histogram<u64>,
    lag_total: Histogram<u64>,
    interval: IntervalStats,
    ok: u64,
    failed: u64,
    samples: u64,
    cancelled: u64,
    open_connections: u32,
    cpu_at_interval_start: (Duration, Duration),
}

impl Recorder {
    fn record(&mut self, s: Sample) {
        self.samples += 1;
        if self.no_record {
            return;
        }
        let _ = self.writer.push(s);
        let corrected = s.corrected_latency_us();
        self.latency.saturating_record(corrected);
        if s.outcome == Outcome::Ok {
            self.ok += 1;
        } else {
            self.cancelled += u64::from(s.outcome == Outcome::Cancelled);
            self.failed += 1;
            self.interval.failures = self.interval.failures.saturating_add(1);
        }
        self.second.saturating_record(corrected);
        let lag = s.actual_us.saturating_sub(s.intended_us).max(1);
        self.lag.saturating_record(lag);
        self.lag_total.saturating_record(lag);
        self.interval.requests = self.interval.requests.saturating_add(1);
    }

    fn message(&mut self, text: &str) -> Option<MessageId> {
        Some(self.writer.intern_message(text))
    }

    fn close_interval(&mut self, start_us: u64, now_us: u64, users: u32) {
        let cpu = thread_cpu_time();
        let (u0, s0) = self.cpu_at_interval_start;
        self.cpu_at_interval_start = cpu;
        let lag_at = |q: f64| self.lag.value_at_quantile(q).min(u64::from(u32::MAX)) as u32;
        let stats = IntervalStats {
            start_us,
            duration_us: now_us.saturating_sub(start_us).min(u64::from(u32::MAX)) as u32,
            active_users: users,
            lag_p50_us: lag_at(0.5),
            lag_p99_us: lag_at(0.99),
            lag_max_us: self.lag.max().min(u64::from(u32::MAX)) as u32,
            cpu_user_us: cpu.0.saturating_sub(u0).as_micros() as u32,
            cpu_system_us: cpu.1.saturating_sub(s0).as_micros() as u32,
            open_connections: self.open_connections,
            ..self.interval
        };
        self.writer.push_interval(stats);
        let _ = self.writer.flush();
        self.interval = IntervalStats::default();
        self.second.reset();
        self.lag.reset();
    }
}

fn thread_cpu_time() -> (Duration, Duration) {
    use nix::sys::resource::{UsageWho, getrusage};
    match getrusage(UsageWho::RUSAGE_THREAD) {
        Ok(u) => {
            let tv = |t: nix::sys::time::TimeVal| {
                Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000)
            };
            (tv(u.user_time()), tv(u.system_time()))
        }
        Err(_) => (Duration::ZERO, Duration::ZERO),
    }
}

// ---------------------------------------------------------------------------------------------------
// Connections

/// Where a connection is in its current exchange.
#[derive(Debug)]
enum Phase {
    /// No request in flight (between requests, or stopped).
    Idle,
    /// The request is sent (or being sent); waiting for a complete response head.
    Head,
    /// The head is parsed; this many body bytes remain.
    Body { left: u64 },
    /// A chunked body is being decoded.
    Chunked(Chunked),
    /// The body runs until the server closes.
    UntilClose { total: u64 },
    /// No socket (connect failed); retried at the next tick.
    Broken,
}

#[derive(Debug)]
struct Conn {
    stream: Option<TcpStream>,
    /// Bumped on every new socket; completions of older sockets are recognised and ignored.
    generation: u32,
    phase: Phase,
    /// A multishot receive is armed (multishot mode) on the current socket.
    armed: bool,
    /// Response head bytes split across receives (rare: a head normally arrives in one piece).
    head: Vec<u8>,
    /// The socket already carried a complete response (for the one retry on a stale keep-alive).
    reused: bool,
    retried: bool,
    // The request in flight.
    intended_us: u64,
    actual_us: u64,
    connect_us: u32,
    connected: bool,
    ttfb_us: u32,
    status: u16,
    bytes_received: u32,
    close_after: bool,
}

impl Conn {
    fn new() -> Conn {
        Conn {
            stream: None,
            generation: 0,
            phase: Phase::Idle,
            armed: false,
            head: Vec::with_capacity(512),
            reused: false,
            retried: false,
            intended_us: 0,
            actual_us: 0,
            connect_us: 0,
            connected: false,
            ttfb_us: 0,
            status: 0,
            bytes_received: 0,
            close_after: false,
        }
    }

    fn in_request(&self) -> bool {
        !matches!(self.phase, Phase::Idle | Phase::Broken)
    }
}

/// User data: [kind:2][generation:28][connection:32].
const KIND_SEND: u64 = 0;
const KIND_RECV: u64 = 1;

fn user_data(kind: u64, generation: u32, conn: usize) -> u64 {
    kind << 60 | (u64::from(generation) & 0x0fff_ffff) << 32 | conn as u64
}

fn split_user_data(ud: u64) -> (u64, u32, usize) {
    (
        ud >> 60 & 3,
        (ud >> 32 & 0x0fff_ffff) as u32,
        (ud & 0xffff_ffff) as usize,
    )
}

/// What a receive did to the exchange.
enum Step {
    NeedMore,
    Done,
    Fail(Outcome, String),
}

/// The event loop's state.
struct Client {
    args: Args,
    ring: Ring,
    conns: Vec<Conn>,
    addr: SocketAddr,
    req: ReqBytes,
    req_len: u32,
    expect: StatusSet,
    rec: Recorder,
    zero: Instant,
    /// Connections whose request goes out in the next submission (their actual start is stamped then).
    queued: Vec<usize>,
    stopping: bool,
    in_flight_requests: usize,
    // Counters for the report on stderr.
    enters: u64,
    cqes: u64,
}

impl Client {
    fn now_us(&self) -> u64 {
        self.zero.elapsed().as_micros() as u64
    }

    fn target(&self, c: usize) -> Target {
        if self.ring.fixed_files() {
            Target::Fixed(c as u32)
        } else {
            Target::Fd(self.conns[c].stream.as_ref().map_or(-1, AsRawFd::as_raw_fd))
        }
    }

    /// Opens a fresh socket for connection `c` (closing any old one). Returns false if connecting failed
    /// (a failure sample is recorded when a request was waiting for it).
    fn connect(&mut self, c: usize) -> std::io::Result<u32> {
        self.close(c);
        let started = Instant::now();
        let s = TcpStream::connect_timeout(&self.addr, CONNECT_TIMEOUT)?;
        s.set_nodelay(true)?;
        let conn = &mut self.conns[c];
        conn.generation = conn.generation.wrapping_add(1);
        if self.ring.fixed_files() {
            self.ring.register_file(c as u32, s.as_raw_fd())?;
        }
        conn.stream = Some(s);
        conn.reused = false;
        self.rec.open_connections += 1;
        self.rec.interval.connections_opened += 1;
        if self.args.recv == RecvMode::Multishot {
            let ud = user_data(KIND_RECV, self.conns[c].generation, c);
            self.ring.recv_multishot(self.target(c), ud, false)?;
            self.conns[c].armed = true;
        }
        Ok((started.elapsed().as_micros() as u32).max(1))
    }

    /// Closes connection `c`'s socket. Its pending operations end (the shutdown makes a pending receive
    /// return 0) and their completions are ignored by generation.
    fn close(&mut self, c: usize) {
        let conn = &mut self.conns[c];
        if let Some(s) = conn.stream.take() {
            let _ = s.shutdown(std::net::Shutdown::Both);
            self.rec.open_connections = self.rec.open_connections.saturating_sub(1);
        }
        conn.generation = conn.generation.wrapping_add(1);
        conn.armed = false;
    }

    /// Starts a request on connection `c`, ready since `ready_us`: the send (and, in single-shot modes,
    /// the receive) go to the kernel together at the next submission.
    fn start(&mut self, c: usize, ready_us: u64) {
        if self.stopping {
            self.conns[c].phase = Phase::Idle;
            return;
        }
        let (mut connect_us, mut connected) = (0, false);
        if self.conns[c].stream.is_none() {
            match self.connect(c) {
                Ok(us) => {
                    connect_us = us;
                    connected = true;
                }
                Err(e) => {
                    let now = self.now_us();
                    let message = self.rec.message(&format!("connect: {e}"));
                    self.rec.record(Sample {
                        name: self.rec.name,
                        intended_us: ready_us,
                        actual_us: ready_us,
                        latency_us: now.saturating_sub(ready_us).max(1) as u32,
                        outcome: Outcome::ConnectError,
                        message,
                        user: c as u32,
                        ..Sample::default()
                    });
                    self.conns[c].phase = Phase::Broken;
                    return;
                }
            }
        }
        let conn = &mut self.conns[c];
        conn.phase = Phase::Head;
        conn.head.clear();
        conn.intended_us = ready_us;
        conn.actual_us = ready_us;
        conn.connect_us = connect_us;
        conn.connected = connected;
        conn.ttfb_us = 0;
        conn.status = 0;
        conn.bytes_received = 0;
        conn.close_after = false;
        let generation = conn.generation;
        let t = self.target(c);
        self.ring
            .send(
                t,
                self.req,
                0,
                user_data(KIND_SEND, generation, c),
                self.args.skip_send_cqe,
            )
            .expect(SUBMIT);
        match self.args.recv {
            RecvMode::Multishot => {}
            mode => self
                .ring
                .recv_once(
                    t,
                    user_data(KIND_RECV, generation, c),
                    mode == RecvMode::PollFirst,
                )
                .expect(SUBMIT),
        }
        self.in_flight_requests += 1;
        self.queued.push(c);
    }

    /// Logs connection `c`'s request as finished at `end_us` with `outcome`.
    fn finish(&mut self, c: usize, outcome: Outcome, message: Option<MessageId>, end_us: u64) {
        self.in_flight_requests -= 1;
        let conn = &mut self.conns[c];
        conn.phase = Phase::Idle;
        let outcome = if outcome == Outcome::Ok && !self.expect.contains(conn.status) {
            Outcome::Status
        } else {
            outcome
        };
        let sample = Sample {
            name: self.rec.name,
            intended_us: conn.intended_us,
            actual_us: conn.actual_us,
            latency_us: end_us
                .saturating_sub(conn.actual_us)
                .clamp(1, u64::from(u32::MAX)) as u32,
            connect_us: conn.connect_us,
            ttfb_us: conn.ttfb_us,
            status: conn.status,
            outcome,
            message,
            bytes_sent: self.req_len,
            bytes_received: conn.bytes_received,
            user: c as u32,
        };
        self.rec.record(sample);
    }

    /// Fails connection `c`'s request and closes the socket; the next request reconnects.
    fn fail(&mut self, c: usize, outcome: Outcome, message: String, end_us: u64) {
        let message = self.rec.message(&message);
        self.finish(c, outcome, message, end_us);
        self.close(c);
        self.start(c, end_us);
    }

    /// A response completed on `c` at `t`: log it and send the next request (closed loop, no think
    /// time: the user is ready again at once).
    fn complete(&mut self, c: usize, t: u64) {
        self.finish(c, Outcome::Ok, None, t);
        let conn = &mut self.conns[c];
        conn.reused = true;
        conn.retried = false;
        if conn.close_after {
            self.close(c);
        }
        self.start(c, t);
    }

    fn on_send(&mut self, c: usize, result: i32, t: u64) {
        if result < 0 {
            if self.conns[c].in_request() {
                let e = std::io::Error::from_raw_os_error(-result);
                self.fail(c, Outcome::Reset, format!("send: {e}"), t);
            }
        } else if (result as u32) < self.req_len {
            // A short send: the rest follows (never seen on loopback with small requests).
            let ud = user_data(KIND_SEND, self.conns[c].generation, c);
            let target = self.target(c);
            self.ring
                .send(target, self.req, result as usize, ud, false)
                .expect(SUBMIT);
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
                Step::Fail(Outcome::Reset, format!("receive: {e}"))
            }
        } else if result == 0 {
            if let Some(b) = buf {
                self.ring.recycle(b);
            }
            self.on_eof(c, t);
            return;
        } else {
            let b = buf.expect("a receive with data names its buffer");
            let step = self.on_data(c, &b, result as usize, t);
            self.ring.recycle(b);
            step
        };
        if !self.conns[c].in_request() {
            // Bytes or an error between requests: the connection is unusable; the next request
            // reconnects. (Never seen against nginx.)
            if matches!(step, Step::Fail(..)) {
                self.close(c);
            } else if self.args.recv == RecvMode::Multishot && !self.conns[c].armed {
                let ud = user_data(KIND_RECV, self.conns[c].generation, c);
                self.conns[c].armed = true;
                self.ring
                    .recv_multishot(self.target(c), ud, false)
                    .expect(SUBMIT);
            }
            return;
        }
        match step {
            Step::Done => self.complete(c, t),
            Step::Fail(outcome, message) => self.fail(c, outcome, message, t),
            Step::NeedMore => {
                let conn = &self.conns[c];
                let ud = user_data(KIND_RECV, conn.generation, c);
                match self.args.recv {
                    RecvMode::Multishot if !conn.armed => {
                        self.conns[c].armed = true;
                        self.ring
                            .recv_multishot(self.target(c), ud, false)
                            .expect(SUBMIT);
                    }
                    RecvMode::Multishot => {}
                    mode => self
                        .ring
                        .recv_once(self.target(c), ud, mode == RecvMode::PollFirst)
                        .expect(SUBMIT),
                }
            }
        }
    }

    /// The server closed connection `c`.
    fn on_eof(&mut self, c: usize, t: u64) {
        let conn = &mut self.conns[c];
        match conn.phase {
            Phase::Idle | Phase::Broken => {
                // Closed while idle: reconnect when the next request starts.
                self.close(c);
            }
            Phase::UntilClose { .. } => {
                conn.close_after = true;
                self.complete(c, t);
            }
            Phase::Head if conn.reused && conn.bytes_received == 0 && !conn.retried => {
                // A keep-alive connection the server closed just as we reused it: the request never
                // reached it; retry once on a fresh connection, as the engine does.
                conn.retried = true;
                let intended = conn.intended_us;
                self.in_flight_requests -= 1;
                self.close(c);
                self.start(c, intended);
            }
            _ => self.fail(
                c,
                Outcome::Reset,
                "connection closed before the response was complete".into(),
                t,
            ),
        }
    }

    /// Feeds `len` received bytes of `buf` to connection `c`'s exchange.
    fn on_data(&mut self, c: usize, buf: &BufId, len: usize, t: u64) -> Step {
        let data = self.ring.data(buf, len);
        let conn = &mut self.conns[c];
        conn.bytes_received = conn.bytes_received.saturating_add(len as u32);
        if conn.ttfb_us == 0 {
            conn.ttfb_us = t.saturating_sub(conn.actual_us).max(1) as u32;
        }
        match &mut conn.phase {
            Phase::Idle | Phase::Broken => Step::Fail(
                Outcome::Malformed,
                "bytes from the server between requests".into(),
            ),
            Phase::Head => {
                let src: &[u8] = if conn.head.is_empty() {
                    data
                } else {
                    conn.head.extend_from_slice(data);
                    &conn.head
                };
                match parse_head(src, false) {
                    Err(e) => Step::Fail(Outcome::Malformed, e.to_string()),
                    Ok(None) => {
                        if conn.head.is_empty() {
                            conn.head.extend_from_slice(data);
                        }
                        if conn.head.len() > MAX_HEAD {
                            Step::Fail(
                                Outcome::Malformed,
                                "response head larger than 64 KiB".into(),
                            )
                        } else {
                            Step::NeedMore
                        }
                    }
                    Ok(Some(h)) => {
                        conn.status = h.status;
                        conn.close_after = h.close;
                        let already = src.len() - h.len;
                        match h.body {
                            BodyKind::None => {
                                conn.close_after |= already > 0;
                                Step::Done
                            }
                            BodyKind::Length(n) if n > MAX_BODY => Step::Fail(
                                Outcome::Malformed,
                                format!("response body larger than the limit of {MAX_BODY} bytes"),
                            ),
                            BodyKind::Length(n) => {
                                conn.close_after |= already as u64 > n;
                                let left = n.saturating_sub(already as u64);
                                if left == 0 {
                                    Step::Done
                                } else {
                                    conn.phase = Phase::Body { left };
                                    Step::NeedMore
                                }
                            }
                            BodyKind::Chunked => {
                                let mut d = Chunked::new(MAX_BODY);
                                match d.feed(&src[h.len..]) {
                                    Err(e) => Step::Fail(Outcome::Malformed, e.to_string()),
                                    Ok(Some(used)) => {
                                        conn.close_after |= used < already;
                                        Step::Done
                                    }
                                    Ok(None) => {
                                        conn.phase = Phase::Chunked(d);
                                        Step::NeedMore
                                    }
                                }
                            }
                            BodyKind::UntilClose => {
                                conn.phase = Phase::UntilClose {
                                    total: already as u64,
                                };
                                Step::NeedMore
                            }
                        }
                    }
                }
            }
            Phase::Body { left } => {
                conn.close_after |= len as u64 > *left;
                *left = left.saturating_sub(len as u64);
                if *left == 0 {
                    Step::Done
                } else {
                    Step::NeedMore
                }
            }
            Phase::Chunked(d) => match d.feed(data) {
                Err(e) => Step::Fail(Outcome::Malformed, e.to_string()),
                Ok(Some(used)) => {
                    conn.close_after |= used < len;
                    Step::Done
                }
                Ok(None) => Step::NeedMore,
            },
            Phase::UntilClose { total } => {
                *total += len as u64;
                if *total > MAX_BODY {
                    Step::Fail(
                        Outcome::Malformed,
                        format!("response body larger than the limit of {MAX_BODY} bytes"),
                    )
                } else {
                    Step::NeedMore
                }
            }
        }
    }

    fn dispatch(&mut self, cqes: &mut Vec<Cqe>, t: u64) {
        self.cqes += cqes.len() as u64;
        for cqe in cqes.drain(..) {
            let (kind, generation, c) = split_user_data(cqe.user_data);
            if generation != self.conns[c].generation & 0x0fff_ffff {
                // A completion from a socket this connection has since closed.
                if let Some(b) = cqe.buf {
                    self.ring.recycle(b);
                }
                continue;
            }
            match kind {
                KIND_SEND => self.on_send(c, cqe.result, t),
                _ => self.on_recv(c, cqe, t),
            }
        }
    }

    /// Requests past their deadline time out (the engine's 50 ms watchdog); broken connections retry.
    fn watchdog(&mut self, now: u64) {
        for c in 0..self.conns.len() {
            let conn = &self.conns[c];
            if matches!(conn.phase, Phase::Broken) && !self.stopping {
                self.start(c, now);
            } else if conn.in_request() && conn.actual_us + REQUEST_TIMEOUT_US <= now {
                self.fail(c, Outcome::Timeout, "request timed out".into(), now);
            }
        }
    }

    /// Hands finished log blocks to the ring, to be written at `offset`.
    fn drain_log(&mut self, fd: i32, offset: &mut u64) -> std::io::Result<()> {
        for (buf, res) in self.ring.take_written() {
            if res < 0 || res as usize != buf.len() {
                return Err(std::io::Error::other(format!("log write returned {res}")));
            }
            let free = &mut self.rec.writer.sink_mut().free;
            if free.len() < 16 {
                free.push(buf);
            }
        }
        let pending = std::mem::take(&mut self.rec.writer.sink_mut().pending);
        for buf in pending {
            let len = buf.len() as u64;
            self.ring.write(fd, buf, *offset)?;
            *offset += len;
        }
        Ok(())
    }
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("uring_client: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(args) {
        eprintln!("uring_client: {e}");
        std::process::exit(1);
    }
}

fn run(mut args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let server = match &args.embedded {
        Some(path) => {
            let s = engine::serve::Server::start(
                "127.0.0.1:0",
                1,
                engine::cli::IoChoice::Auto,
                Some(1),
            )?;
            args.url = format!("http://{}{path}", s.addr());
            Some(s)
        }
        None => None,
    };
    let rest = args
        .url
        .strip_prefix("http://")
        .ok_or("only http:// URLs")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let addr = authority
        .to_socket_addrs()?
        .next()
        .ok_or("the host has no address")?;
    // The same bytes the engine sends for an ad-hoc `GET URL`.
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: stampede/{}\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    )
    .into_bytes();

    std::fs::create_dir_all(&args.out)?;
    let log_path = args.out.join(formats::run::log_file_name(0));
    let log_file = std::fs::File::create(&log_path)?;
    let mono = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)?;
    let zero = Instant::now();
    let wall = SystemTime::now().duration_since(UNIX_EPOCH)?;
    let mut run_id = [0u8; 16];
    run_id[..8].copy_from_slice(&(wall.as_nanos() as u64).to_le_bytes());
    run_id[8..12].copy_from_slice(&std::process::id().to_le_bytes());
    let header = LogHeader::new(
        RunId(run_id),
        0,
        mono.tv_sec() as u64 * 1_000_000_000 + mono.tv_nsec() as u64,
        wall.as_nanos() as i64,
    );
    let mut writer = LogWriter::new(&header, BlockQueue::default()).unwrap_or_else(|n| match n {});
    let name = writer.intern_name(path);
    let _ = writer.flush();

    let files = if args.fixed { args.conns } else { 0 };
    let mut ring = Ring::new(args.setup, 4096, files, args.buffers, args.buf_size)?;
    if args.skip_send_cqe && !ring.can_skip_success() {
        return Err("the kernel cannot skip successful completions".into());
    }
    let req = ring.intern(request);
    let req_len = ring.request_len(req) as u32;
    let conns = (0..args.conns).map(|_| Conn::new()).collect();
    let mut cl = Client {
        ring,
        conns,
        addr,
        req,
        req_len,
        expect: StatusSet::Success,
        rec: Recorder {
            no_record: args.no_record,
            writer,
            name,
            latency: histogram(3),
            second: histogram(2),
            lag: histogram(2),
            lag_total: histogram(2),
            interval: IntervalStats::default(),
            ok: 0,
            failed: 0,
            samples: 0,
            cancelled: 0,
            open_connections: 0,
            cpu_at_interval_start: thread_cpu_time(),
        },
        zero,
        queued: Vec::with_capacity(args.conns as usize),
        stopping: false,
        in_flight_requests: 0,
        enters: 0,
        cqes: 0,
        args,
    };
    let end_us = cl.args.duration.as_micros() as u64;
    let log_fd = log_file.as_raw_fd();
    let mut log_offset = 0u64;

    // Every user is ready at time zero (an ad-hoc run: no spawn rate, no think time).
    let t0 = cl.now_us();
    for c in 0..cl.conns.len() {
        cl.start(c, t0);
    }
    cl.rec.interval.active_users = cl.args.conns;

    let mut cqes: Vec<Cqe> = Vec::with_capacity(4096);
    let mut next_tick = TICK_US;
    let mut next_drain = DRAIN_EVERY_US;
    let mut next_second = 1_000_000u64;
    let mut interval_start = 0u64;
    let mut give_up = u64::MAX;
    loop {
        // The requests queued since the last submission start now.
        if !cl.queued.is_empty() {
            let now = cl.now_us();
            for &c in &cl.queued {
                cl.conns[c].actual_us = now;
            }
            cl.queued.clear();
        }
        let want = cl.args.wait.min(cl.in_flight_requests.max(1));
        cl.ring
            .submit_and_wait(want, Duration::from_micros(cl.args.wait_timeout_us))?;
        cl.enters += 1;
        let t = cl.now_us();
        cl.ring.reap(&mut cqes);
        cl.dispatch(&mut cqes, t);

        if t >= next_tick {
            next_tick = t + TICK_US;
            cl.watchdog(t);
            if t >= next_drain {
                next_drain = t + DRAIN_EVERY_US;
                cl.drain_log(log_fd, &mut log_offset)?;
            }
            if t >= next_second {
                cl.rec.close_interval(interval_start, t, cl.args.conns);
                interval_start = t;
                next_second += 1_000_000;
            }
            if !cl.stopping && t >= end_us {
                cl.stopping = true;
                give_up = t + GRACE_US;
            }
        }
        if cl.stopping && (cl.in_flight_requests == 0 || t >= give_up) {
            break;
        }
    }

    // Requests still on the wire are logged as cancelled, like the engine does.
    let t = cl.now_us();
    let message = cl.rec.message("the run ended before the response arrived");
    for c in 0..cl.conns.len() {
        if cl.conns[c].in_request() {
            cl.finish(c, Outcome::Cancelled, message, t);
        }
    }
    cl.rec.close_interval(interval_start, t, cl.args.conns);
    for c in 0..cl.conns.len() {
        cl.close(c);
    }
    // Wait for the kernel to finish every operation that uses our memory (receives end on shutdown).
    let deadline = Instant::now() + Duration::from_secs(2);
    while (cl.ring.in_flight() > 0) && Instant::now() < deadline {
        cl.ring.submit_and_wait(1, Duration::from_millis(10))?;
        cl.ring.reap(&mut cqes);
        for cqe in cqes.drain(..) {
            if let Some(b) = cqe.buf {
                cl.ring.recycle(b);
            }
        }
    }
    cl.drain_log(log_fd, &mut log_offset)?;
    while cl.ring.in_flight() > 0 && Instant::now() < deadline {
        cl.ring.submit_and_wait(1, Duration::from_millis(10))?;
        cl.ring.reap(&mut cqes);
    }
    for (buf, res) in cl.ring.take_written() {
        if res < 0 || res as usize != buf.len() {
            return Err(format!("log write returned {res}").into());
        }
    }
    let latency = |q: f64| cl.rec.latency.value_at_quantile(q);
    let latency_line = format!(
        "latency (corrected) p50 {} µs, p99 {} µs, max {} µs; {} voluntary context switches",
        latency(0.5),
        latency(0.99),
        cl.rec.latency.max(),
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_THREAD)
            .map_or(-1, |u| u.voluntary_context_switches())
    );
    let samples = cl.rec.samples;
    let cancelled = cl.rec.cancelled;
    let (ok, failed) = (cl.rec.ok, cl.rec.failed);
    let enters = cl.enters;
    let timeouts = cl.ring.timeouts;
    let cqe_count = cl.cqes;
    let variant = cl.args.variant();
    let verify = cl.args.verify;
    let Client { rec, ring, .. } = cl;
    drop(ring);
    let sink = rec.writer.finish().unwrap_or_else(|n| match n {});
    let mut file = log_file;
    {
        use std::io::{Seek, SeekFrom};
        file.seek(SeekFrom::Start(log_offset))?;
        for block in &sink.pending {
            file.write_all(block)?;
        }
        file.sync_data()?;
    }
    eprintln!(
        "{ok} ok, {failed} failed; {enters} io_uring_enter calls ({:.1} requests each, {timeouts} timed out), {cqe_count} completions ({:.2} per request)",
        samples as f64 / enters.max(1) as f64,
        cqe_count as f64 / samples.max(1) as f64
    );
    eprintln!("{latency_line}");
    if verify {
        let log = formats::read_log_file(&log_path)?;
        if !log.problems.is_empty() || log.samples.len() as u64 != samples {
            return Err(format!(
                "log check failed: {} samples read back, {} written, problems {:?}",
                log.samples.len(),
                samples,
                log.problems
            )
            .into());
        }
        eprintln!(
            "verified: {} samples read back from {}",
            log.samples.len(),
            log_path.display()
        );
    }
    if let Some(server) = server {
        // Requests cut short by the end of the run may or may not have been answered.
        let served = server.served();
        server.stop();
        let answered = samples - cancelled;
        eprintln!(
            "embedded target served {served}; {answered} samples with an answer, {cancelled} cancelled"
        );
        if verify && !(answered..=samples).contains(&served) {
            return Err(format!(
                "the target served {served} requests, the log has {answered} answered"
            )
            .into());
        }
    }
    println!("{samples} samples, completed ({variant})");
    Ok(())
}
