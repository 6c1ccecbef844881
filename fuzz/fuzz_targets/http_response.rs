//! Feeds arbitrary bytes to the response-head parser and the chunked decoder, as a hostile target
//! would send them. Neither may panic, and what they accept must be self-consistent.
#![no_main]

use engine::http::{BodyKind, Chunked, parse_head};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the request kind and how the rest is split into reads.
    let Some((&control, data)) = data.split_first() else {
        return;
    };
    let head_request = control & 1 == 1;
    if let Ok(Some(head)) = parse_head(data, head_request) {
        assert!(
            head.len <= data.len(),
            "a head cannot be longer than its input"
        );
        if head_request {
            assert_eq!(head.body, BodyKind::None);
        }
        if head.body == BodyKind::UntilClose {
            assert!(head.close, "a close-delimited body closes the connection");
        }
    }
    // Whatever the head said, the same bytes as a chunked body, whole and in reads of a fuzzed size:
    // both must agree, since a server's bytes arrive split wherever the network splits them.
    let limit = 1 << 16;
    let mut whole = Chunked::new(limit);
    let whole_result = whole.feed(data);
    if let Ok(Some(used)) = whole_result {
        assert!(used <= data.len());
    }
    let step = usize::from(control >> 1).max(1);
    let mut pieces = Chunked::new(limit);
    let mut offset = 0;
    let mut split_result = Ok(None);
    for piece in data.chunks(step) {
        split_result = pieces.feed(piece).map(|r| r.map(|used| offset + used));
        if !matches!(split_result, Ok(None)) {
            break;
        }
        offset += piece.len();
    }
    assert_eq!(whole_result, split_result, "split at every {step} bytes");
    // Past the limit the decoder stops with an error (having counted the announced chunk size);
    // while it accepts, it never holds more than the limit.
    if whole_result.is_ok() {
        assert!(whole.data_len() <= limit);
    }
});
