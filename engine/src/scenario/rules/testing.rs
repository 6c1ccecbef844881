//! Fixtures shared by the rules' unit tests: a selector, a kept response, an extraction.

use super::{Extraction, Source};
use crate::http::KeptResponse;
use crate::scenario::json::{Pick, Selector};
use crate::scenario::response::Response;

pub(super) fn json(p: &str) -> Pick {
    Selector::parse(p).unwrap().into()
}

pub(super) fn response<'a>(
    status: u16,
    head: &'a [u8],
    body: &'a [u8],
    s: &'a mut Vec<u8>,
) -> Response<'a> {
    Response::new(
        status,
        Some(KeptResponse {
            head,
            body,
            chunked: false,
            set_cookie: true,
        }),
        s,
    )
}

pub(super) fn ex(source: Source, optional: bool) -> Extraction {
    Extraction {
        var: 0,
        source,
        optional,
        messages: ["not found".into(), "not json".into()],
    }
}
