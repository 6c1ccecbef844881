//! Reading one HTTP/1.1 response from whatever pieces the transport delivers: a state machine fed
//! with received bytes, with no I/O of its own (STYLE.md item 13). Every loop and every backend reads
//! responses through it, so each framing rule exists once: interim (1xx) responses skipped and
//! bounded, heads bounded to 64 KiB, bodies by Content-Length, chunked coding or the end of the
//! connection, capped at `max_body`, and bytes past the end of a response make the connection
//! unusable for another request.
//!
//! A request may ask for the response to be kept ([`Keep`]): its head (for headers and cookies) and
//! body (for extraction and checks) are then copied into the reader's own buffer, which lives until
//! the next response starts. Requests that keep nothing pay one branch per piece.

use std::borrow::Cow;

use formats::Outcome;

use super::chunked::Chunked;
use super::exchange::Failure;
use super::response::{BodyKind, parse_head};

/// A response head larger than this is refused as malformed rather than buffered without bound.
const MAX_HEAD: usize = 64 << 10;
/// A head buffer that grew past this for one odd response is given back.
const HEAD_RETAIN: usize = 16 << 10;
/// A kept response larger than this is not held on to between requests.
const KEEP_RETAIN: usize = 64 << 10;

/// Which parts of the response to keep for the caller after the exchange.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Keep {
    /// The head (status line and headers).
    pub head: bool,
    /// The head and the body.
    pub body: bool,
    /// The head, when it sets a cookie.
    pub cookies: bool,
}

/// A view of the kept response: raw bytes as received (a chunked body still chunked), valid until the
/// next response starts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeptResponse<'a> {
    /// Status line and headers, final CRLF included.
    pub head: &'a [u8],
    /// The body as received (empty unless the body was kept).
    pub body: &'a [u8],
    /// Whether `body` is in chunked transfer coding.
    pub chunked: bool,
    /// Whether the head has a Set-Cookie header.
    pub set_cookie: bool,
}

/// What the bytes so far amount to.
#[derive(Debug)]
pub(crate) enum Step {
    /// The response is not complete yet.
    NeedMore,
    /// The response is complete; `close` when the connection cannot carry another request.
    Done { close: bool },
    /// The response is broken; the connection must be closed.
    Fail(Failure),
}

#[derive(Debug)]
enum Phase {
    /// Waiting for a complete head (after any interim responses).
    Head,
    /// The head is parsed; this many body bytes remain.
    Body { left: u64 },
    /// A chunked body is being decoded.
    Chunked(Chunked),
    /// The body runs until the server closes; this many bytes so far.
    UntilClose { total: u64 },
}

/// The kept part of a response.
#[derive(Debug, Default)]
struct Kept {
    buf: Vec<u8>,
    head_len: usize,
    chunked: bool,
    set_cookie: bool,
    valid: bool,
    /// The body goes into `buf` too.
    body: bool,
}

/// One response being read.
#[derive(Debug)]
pub(crate) struct Reader {
    phase: Phase,
    /// Head bytes split across pieces (rare: a head normally arrives in one piece).
    pending: Vec<u8>,
    /// Interim response bytes skipped so far.
    interim: usize,
    head_request: bool,
    max_body: u64,
    /// The head said `Connection: close` (or HTTP/1.0): close once the body is read.
    close_after: bool,
    keep: Keep,
    kept: Kept,
    /// The final status, 0 until its head arrived.
    pub status: u16,
}

impl Default for Reader {
    fn default() -> Reader {
        Reader::new()
    }
}

impl Reader {
    pub fn new() -> Reader {
        Reader {
            phase: Phase::Head,
            pending: Vec::new(),
            interim: 0,
            head_request: false,
            max_body: 0,
            close_after: false,
            keep: Keep::default(),
            kept: Kept::default(),
            status: 0,
        }
    }

    /// Starts reading the response to a new request (a HEAD request's has no body).
    pub fn start(&mut self, head_request: bool, max_body: u64, keep: Keep) {
        self.phase = Phase::Head;
        if self.pending.capacity() > HEAD_RETAIN {
            self.pending = Vec::new();
        }
        self.pending.clear();
        self.interim = 0;
        self.head_request = head_request;
        self.max_body = max_body;
        self.close_after = false;
        self.keep = keep;
        self.status = 0;
        // One large response must not pin its buffer for the rest of the run.
        if self.kept.buf.capacity() > KEEP_RETAIN {
            self.kept.buf = Vec::new();
        }
        self.kept.valid = false;
        self.kept.body = false;
    }

    /// The last response as far as its request asked to keep it; `None` if nothing was kept.
    pub fn kept(&self) -> Option<KeptResponse<'_>> {
        let k = &self.kept;
        k.valid.then(|| KeptResponse {
            head: &k.buf[..k.head_len],
            body: &k.buf[k.head_len..],
            chunked: k.chunked,
            set_cookie: k.set_cookie,
        })
    }

    /// Forgets the kept response (the exchange failed, or the connection was abandoned).
    pub fn forget(&mut self) {
        self.kept.valid = false;
    }

    /// Feeds the next received bytes.
    pub fn on_data(&mut self, data: &[u8]) -> Step {
        match &mut self.phase {
            Phase::Head if self.pending.is_empty() => self.on_head_bytes(data),
            Phase::Head => {
                // The head came in pieces: parse the joined bytes (kept again if still incomplete).
                let mut joined = std::mem::take(&mut self.pending);
                joined.extend_from_slice(data);
                let step = self.on_head_bytes(&joined);
                if self.pending.is_empty() {
                    // Give the allocation back to `pending` for the next split head.
                    joined.clear();
                    self.pending = joined;
                }
                step
            }
            Phase::Body { left } => {
                let len = data.len() as u64;
                let close = self.close_after || len > *left;
                let take = len.min(*left) as usize;
                *left -= take as u64;
                let done = *left == 0;
                if self.kept.body {
                    self.kept.buf.extend_from_slice(&data[..take]);
                }
                if done {
                    Step::Done { close }
                } else {
                    Step::NeedMore
                }
            }
            Phase::Chunked(decoder) => match decoder.feed(data) {
                Err(e) => malformed(e.to_string()),
                Ok(Some(used)) => {
                    if self.kept.body {
                        self.kept.buf.extend_from_slice(&data[..used]);
                    }
                    Step::Done {
                        close: self.close_after || used < data.len(),
                    }
                }
                Ok(None) => {
                    if self.kept.body {
                        self.kept.buf.extend_from_slice(data);
                    }
                    Step::NeedMore
                }
            },
            Phase::UntilClose { total } => {
                *total += data.len() as u64;
                if *total > self.max_body {
                    too_large(self.max_body)
                } else {
                    if self.kept.body {
                        self.kept.buf.extend_from_slice(data);
                    }
                    Step::NeedMore
                }
            }
        }
    }

    /// The server closed the connection.
    pub fn on_eof(&mut self) -> Step {
        match self.phase {
            Phase::UntilClose { .. } => Step::Done { close: true },
            Phase::Head => reset("connection closed before the response was complete"),
            Phase::Body { .. } => reset("connection closed in the middle of the body"),
            Phase::Chunked(_) => reset("connection closed in the middle of a chunked body"),
        }
    }

    /// Parses a head (and whatever follows it) from `src`, keeping `src` in `pending` if incomplete.
    fn on_head_bytes(&mut self, mut src: &[u8]) -> Step {
        loop {
            let head = match parse_head(src, self.head_request) {
                Err(e) => return malformed(e.to_string()),
                Ok(None) => {
                    if src.len() >= MAX_HEAD {
                        return malformed("response head larger than 64 KiB");
                    }
                    self.pending.clear();
                    self.pending.extend_from_slice(src);
                    return Step::NeedMore;
                }
                Ok(Some(h)) => h,
            };
            // An interim response (100 Continue, 103 Early Hints) is followed by the real one, which
            // may already be here. Bounded like a head: an endless stream of them is malformed (a
            // target sending them faster than we parse would otherwise hold the request forever).
            if (100..200).contains(&head.status) && head.status != 101 {
                self.interim += head.len;
                if self.interim > MAX_HEAD {
                    return malformed("interim (1xx) responses longer than 64 KiB");
                }
                src = &src[head.len..];
                if src.is_empty() {
                    self.pending.clear();
                    return Step::NeedMore;
                }
                continue;
            }
            self.status = head.status;
            let after = &src[head.len..];
            let already = after.len() as u64;
            let close = head.close;
            self.close_after = close;
            self.pending.clear();
            let keep = self.keep;
            if keep.head || keep.body || (keep.cookies && head.set_cookie) {
                let k = &mut self.kept;
                k.buf.clear();
                k.buf.extend_from_slice(&src[..head.len]);
                k.head_len = head.len;
                k.chunked = head.body == BodyKind::Chunked;
                k.set_cookie = head.set_cookie;
                k.valid = true;
                k.body = keep.body && head.body != BodyKind::None;
            }
            return match head.body {
                BodyKind::None => Step::Done {
                    close: close || already > 0,
                },
                BodyKind::Length(n) if n > self.max_body => too_large(self.max_body),
                BodyKind::Length(n) => {
                    if self.kept.body {
                        self.kept
                            .buf
                            .extend_from_slice(&after[..already.min(n) as usize]);
                    }
                    let left = n.saturating_sub(already);
                    if left == 0 {
                        Step::Done {
                            close: close || already > n,
                        }
                    } else {
                        self.phase = Phase::Body { left };
                        Step::NeedMore
                    }
                }
                BodyKind::Chunked => {
                    let mut decoder = Chunked::new(self.max_body);
                    match decoder.feed(after) {
                        Err(e) => malformed(e.to_string()),
                        Ok(Some(used)) => {
                            if self.kept.body {
                                self.kept.buf.extend_from_slice(&after[..used]);
                            }
                            Step::Done {
                                close: close || (used as u64) < already,
                            }
                        }
                        Ok(None) => {
                            if self.kept.body {
                                self.kept.buf.extend_from_slice(after);
                            }
                            self.phase = Phase::Chunked(decoder);
                            Step::NeedMore
                        }
                    }
                }
                BodyKind::UntilClose => {
                    if already > self.max_body {
                        return too_large(self.max_body);
                    }
                    if self.kept.body {
                        self.kept.buf.extend_from_slice(after);
                    }
                    self.phase = Phase::UntilClose { total: already };
                    Step::NeedMore
                }
            };
        }
    }
}

fn malformed(message: impl Into<Cow<'static, str>>) -> Step {
    Step::Fail(Failure {
        outcome: Outcome::Malformed,
        message: message.into(),
    })
}

fn too_large(max_body: u64) -> Step {
    malformed(format!(
        "response body larger than the limit of {max_body} bytes"
    ))
}

fn reset(message: &'static str) -> Step {
    Step::Fail(Failure::new(Outcome::Reset, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(pieces: &[&[u8]], max_body: u64) -> (Step, u16) {
        let mut r = Reader::new();
        r.start(false, max_body, Keep::default());
        let mut last = Step::NeedMore;
        for p in pieces {
            last = r.on_data(p);
            if !matches!(last, Step::NeedMore) {
                break;
            }
        }
        (last, r.status)
    }

    #[test]
    fn a_response_split_anywhere_reads_the_same() {
        let whole = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        for cut in 1..whole.len() {
            let (step, status) = feed_all(&[&whole[..cut], &whole[cut..]], 1 << 20);
            assert!(
                matches!(step, Step::Done { close: false }),
                "cut at {cut}: {step:?}"
            );
            assert_eq!(status, 200, "cut at {cut}");
        }
    }

    #[test]
    fn chunked_bodies_and_interim_responses() {
        let (step, status) = feed_all(
            &[b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", b"0\r\n\r\n"],
            1 << 20,
        );
        assert!(matches!(step, Step::Done { close: false }), "{step:?}");
        assert_eq!(status, 201);
    }

    #[test]
    fn bytes_past_the_response_close_the_connection() {
        let (step, ..) = feed_all(
            &[b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA"],
            100,
        );
        assert!(matches!(step, Step::Done { close: true }), "{step:?}");
    }

    #[test]
    fn limits_make_malformed_failures() {
        let (step, ..) = feed_all(&[b"HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n"], 100);
        assert!(
            matches!(&step, Step::Fail(f) if f.outcome == Outcome::Malformed && f.message.contains("limit of 100")),
            "{step:?}"
        );
        let endless = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(4000);
        let (step, ..) = feed_all(&[&endless], 100);
        assert!(
            matches!(&step, Step::Fail(f) if f.message.contains("interim")),
            "{step:?}"
        );
        let mut r = Reader::new();
        r.start(false, 100, Keep::default());
        let big = vec![b'x'; MAX_HEAD + 10];
        assert!(matches!(
            r.on_data(b"HTTP/1.1 200 OK\r\nX: "),
            Step::NeedMore
        ));
        assert!(matches!(r.on_data(&big), Step::Fail(_)));
    }

    #[test]
    fn close_delimited_bodies_end_at_eof_and_truncation_is_a_reset() {
        let mut r = Reader::new();
        r.start(false, 1 << 20, Keep::default());
        assert!(matches!(
            r.on_data(b"HTTP/1.0 200 OK\r\n\r\npartial"),
            Step::NeedMore
        ));
        assert!(matches!(r.on_eof(), Step::Done { close: true }));
        r.start(false, 1 << 20, Keep::default());
        assert!(matches!(
            r.on_data(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc"),
            Step::NeedMore
        ));
        assert!(
            matches!(r.on_eof(), Step::Fail(f) if f.outcome == Outcome::Reset && f.message.contains("middle of the body"))
        );
    }

    #[test]
    fn connection_close_is_honoured_after_the_body() {
        let (step, _) = feed_all(
            &[
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 4\r\n\r\nab",
                b"cd",
            ],
            100,
        );
        assert!(matches!(step, Step::Done { close: true }), "{step:?}");
    }

    fn kept_after(pieces: &[&[u8]], keep: Keep) -> Option<(Vec<u8>, Vec<u8>, bool, bool)> {
        let mut r = Reader::new();
        r.start(false, 1 << 20, keep);
        for p in pieces {
            match r.on_data(p) {
                Step::NeedMore => {}
                Step::Done { .. } => break,
                Step::Fail(f) => panic!("{f:?}"),
            }
        }
        r.kept()
            .map(|k| (k.head.to_vec(), k.body.to_vec(), k.chunked, k.set_cookie))
    }

    #[test]
    fn kept_heads_and_bodies_are_exactly_the_final_response() {
        let body = Keep {
            body: true,
            ..Keep::default()
        };
        // Interim responses are not kept; bytes past the body are not part of it.
        let (head, b, chunked, _) = kept_after(
            &[
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhe",
                b"lloEXTRA",
            ],
            body,
        )
        .unwrap();
        assert_eq!(head, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(b, b"hello");
        assert!(!chunked);
        let (_, b, chunked, _) = kept_after(
            &[
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab",
                b"c\r\n0\r\n\r\ntrailing",
            ],
            body,
        )
        .unwrap();
        assert_eq!(b, b"3\r\nabc\r\n0\r\n\r\n");
        assert!(chunked);
        // A cookie jar keeps only heads that set cookies.
        let cookies = Keep {
            cookies: true,
            ..Keep::default()
        };
        assert!(kept_after(&[b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"], cookies).is_none());
        let (head, b, _, set) = kept_after(
            &[b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nContent-Length: 2\r\n\r\nok"],
            cookies,
        )
        .unwrap();
        assert!(set && head.ends_with(b"a=1\r\nContent-Length: 2\r\n\r\n") && b.is_empty());
        // Nothing asked for, nothing kept.
        assert!(
            kept_after(
                &[b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"],
                Keep::default()
            )
            .is_none()
        );
    }

    /// Whatever the bytes and however they are split, the reader never panics, a response read in
    /// pieces ends exactly as the same response read whole, and keeps the same bytes.
    #[test]
    fn any_split_of_any_bytes_reads_like_the_whole() {
        use proptest::prelude::*;
        let responses = prop_oneof![
            Just(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_vec()),
            Just(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n".to_vec()),
            Just(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
                    .to_vec()
            ),
            Just(b"HTTP/1.0 200 OK\r\n\r\nuntil close".to_vec()),
            Just(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..300),
        ];
        let keep = Keep {
            head: true,
            body: true,
            cookies: true,
        };
        proptest!(ProptestConfig::with_cases(2000), |(bytes in responses, cuts in proptest::collection::vec(0usize..300, 0..6))| {
            let outcome = |pieces: &[&[u8]]| {
                let mut r = Reader::new();
                r.start(false, 1 << 20, keep);
                let kept = |r: &Reader| r.kept().map(|k| (k.head.to_vec(), k.body.to_vec()));
                for p in pieces {
                    match r.on_data(p) {
                        Step::NeedMore => {}
                        // Whether bytes past the end came in the same piece decides `close`; the
                        // loop closes the connection either way.
                        Step::Done { .. } => return ("done".to_owned(), r.status, kept(&r)),
                        Step::Fail(f) => return (format!("fail {:?}", f.outcome), r.status, None),
                    }
                }
                match r.on_eof() {
                    Step::Done { close } => (format!("eof done {close}"), r.status, kept(&r)),
                    Step::Fail(f) => (format!("eof fail {:?}", f.outcome), r.status, None),
                    Step::NeedMore => ("eof more".to_owned(), r.status, None),
                }
            };
            let whole = outcome(&[&bytes]);
            let mut points: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            points.sort_unstable();
            let mut pieces = Vec::new();
            let mut at = 0;
            for p in points {
                pieces.push(&bytes[at..p]);
                at = p;
            }
            pieces.push(&bytes[at..]);
            pieces.retain(|p| !p.is_empty());
            let split = outcome(&pieces);
            // Kinds and statuses: where in the bytes a failure was found may depend on the split.
            prop_assert_eq!(whole, split, "{:?}", String::from_utf8_lossy(&bytes));
        });
    }
}
