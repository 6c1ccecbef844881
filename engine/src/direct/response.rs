//! Reading one HTTP/1.1 response from whatever pieces the socket delivers: a state machine fed with
//! received bytes, with no I/O of its own. It applies the same rules as the monoio path's `receive`
//! (`http/conn.rs`): interim (1xx) responses skipped and bounded, heads bounded to 64 KiB, bodies by
//! Content-Length, chunked coding or the end of the connection, capped at `max_body`, and bytes past
//! the end of a response make the connection unusable for another request.

use std::borrow::Cow;

use formats::Outcome;

use crate::http::{BodyKind, Chunked, Failure, parse_head};

/// A response head larger than this is refused as malformed rather than buffered without bound.
const MAX_HEAD: usize = 64 << 10;
/// A head buffer that grew past this for one odd response is given back.
const HEAD_RETAIN: usize = 16 << 10;

/// What the bytes so far amount to.
#[derive(Debug)]
pub(super) enum Step {
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

/// One response being read.
#[derive(Debug)]
pub(super) struct Reader {
    phase: Phase,
    /// Head bytes split across receives (rare: a head normally arrives in one piece).
    pending: Vec<u8>,
    /// Interim response bytes skipped so far.
    interim: usize,
    head_request: bool,
    max_body: u64,
    /// The head said `Connection: close` (or HTTP/1.0): close once the body is read.
    close_after: bool,
    /// The final status, 0 until its head arrived.
    pub status: u16,
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
            status: 0,
        }
    }

    /// Starts reading the response to a new request.
    pub fn start(&mut self, head_request: bool, max_body: u64) {
        self.phase = Phase::Head;
        if self.pending.capacity() > HEAD_RETAIN {
            self.pending = Vec::new();
        }
        self.pending.clear();
        self.interim = 0;
        self.head_request = head_request;
        self.max_body = max_body;
        self.close_after = false;
        self.status = 0;
    }

    /// Feeds the next received bytes.
    pub fn on_data(&mut self, data: &[u8]) -> Step {
        match &mut self.phase {
            Phase::Head if self.pending.is_empty() => self.on_head_bytes(data),
            Phase::Head => {
                // The head came in pieces: parse the joined bytes (kept again if still incomplete).
                let mut joined = std::mem::take(&mut self.pending);
                joined.extend_from_slice(data);
                self.on_head_bytes(&joined)
            }
            Phase::Body { left } => {
                let len = data.len() as u64;
                let close = self.close_after || len > *left;
                *left = left.saturating_sub(len);
                if *left == 0 {
                    Step::Done { close }
                } else {
                    Step::NeedMore
                }
            }
            Phase::Chunked(decoder) => match decoder.feed(data) {
                Err(e) => malformed(e.to_string()),
                Ok(Some(used)) => Step::Done {
                    close: self.close_after || used < data.len(),
                },
                Ok(None) => Step::NeedMore,
            },
            Phase::UntilClose { total } => {
                *total += data.len() as u64;
                if *total > self.max_body {
                    too_large(self.max_body)
                } else {
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
            // may already be here. Bounded like a head: an endless stream of them is malformed.
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
            return match head.body {
                BodyKind::None => Step::Done {
                    close: close || already > 0,
                },
                BodyKind::Length(n) if n > self.max_body => too_large(self.max_body),
                BodyKind::Length(n) => {
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
                        Ok(Some(used)) => Step::Done {
                            close: close || (used as u64) < already,
                        },
                        Ok(None) => {
                            self.phase = Phase::Chunked(decoder);
                            Step::NeedMore
                        }
                    }
                }
                BodyKind::UntilClose => {
                    if already > self.max_body {
                        return too_large(self.max_body);
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
        r.start(false, max_body);
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
        r.start(false, 100);
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
        r.start(false, 1 << 20);
        assert!(matches!(
            r.on_data(b"HTTP/1.0 200 OK\r\n\r\npartial"),
            Step::NeedMore
        ));
        assert!(matches!(r.on_eof(), Step::Done { close: true }));
        r.start(false, 1 << 20);
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

    /// Whatever the bytes and however they are split, the reader never panics, and a response read
    /// in pieces ends exactly as the same response read whole.
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
        proptest!(ProptestConfig::with_cases(2000), |(bytes in responses, cuts in proptest::collection::vec(0usize..300, 0..6))| {
            let outcome = |pieces: &[&[u8]]| {
                let mut r = Reader::new();
                r.start(false, 1 << 20);
                for p in pieces {
                    match r.on_data(p) {
                        Step::NeedMore => {}
                        // Whether bytes past the end came in the same piece decides `close`; the
                        // loop closes the connection either way.
                        Step::Done { .. } => return ("done".to_owned(), r.status),
                        Step::Fail(f) => return (format!("fail {:?}", f.outcome), r.status),
                    }
                }
                match r.on_eof() {
                    Step::Done { close } => (format!("eof done {close}"), r.status),
                    Step::Fail(f) => (format!("eof fail {:?}", f.outcome), r.status),
                    Step::NeedMore => ("eof more".to_owned(), r.status),
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
