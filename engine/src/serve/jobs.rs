//! The embedded target's job queue and signed endpoint, for scenarios with control flow: submit a
//! job and poll it until it is done, and a request whose body must carry its HMAC.
//!
//! | route                        | answer                                                          |
//! |------------------------------|-----------------------------------------------------------------|
//! | `POST /jobs[?polls=N]`       | 201 `{"id", "state": "pending"}`: a job that is done at its N-th poll (default 3, at most 1000) |
//! | `GET /jobs/{id}`             | `{"id", "state": "pending" or "done", "polls"}`; 404 for an unknown id |
//! | `POST /signed`               | 200 `{"ok": true, "bytes"}` when `X-Signature` is the hex HMAC-SHA256 of the body under [`SIGNING_SECRET`], else 401 |

use std::collections::HashMap;
use std::sync::Mutex;

use hmac::Mac as _;
use serde_json::json;

use super::api::{Answer, Call, form, header};

/// The key `POST /signed` checks signatures with.
pub const SIGNING_SECRET: &str = "stampede-signing-secret";

/// Jobs bounded like the item store: cleared when full, so a long demo cannot exhaust memory.
const MAX_JOBS: usize = 100_000;

/// Jobs by id: polls needed, polls so far.
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    next: u64,
    by_id: HashMap<u64, (u32, u32)>,
}

impl Jobs {
    /// `POST /jobs`.
    pub fn submit(jobs: &Mutex<Jobs>, call: &Call<'_>) -> Answer {
        let polls = form(call.query)
            .into_iter()
            .find(|(k, _)| k == "polls")
            .and_then(|(_, v)| v.parse::<u32>().ok())
            .unwrap_or(3)
            .clamp(1, 1000);
        let mut j = jobs.lock().unwrap_or_else(|e| e.into_inner());
        if j.by_id.len() >= MAX_JOBS {
            j.by_id.clear();
        }
        j.next += 1;
        let id = j.next;
        j.by_id.insert(id, (polls, 0));
        Answer::json(201, &json!({"id": id, "state": "pending"}))
    }

    /// `GET /jobs/{id}`: one more poll.
    pub fn poll(jobs: &Mutex<Jobs>, id: &str) -> Answer {
        let mut j = jobs.lock().unwrap_or_else(|e| e.into_inner());
        let Some((needed, done)) = id.parse::<u64>().ok().and_then(|id| j.by_id.get_mut(&id))
        else {
            return Answer::text(404, "no such job; POST /jobs first");
        };
        *done += 1;
        let state = if *done >= *needed { "done" } else { "pending" };
        Answer::json(
            200,
            &json!({"id": id.parse::<u64>().unwrap_or(0), "state": state, "polls": *done}),
        )
    }
}

/// `POST /signed`: checks `X-Signature` against the body's HMAC.
pub(crate) fn signed(call: &Call<'_>) -> Answer {
    let Some(given) = header(call.head, "x-signature") else {
        return Answer::text(
            401,
            "no X-Signature header: send hex(HMAC-SHA256(secret, body))",
        );
    };
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SIGNING_SECRET.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(call.body);
    let want: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if given.trim().eq_ignore_ascii_case(&want) {
        Answer::json(200, &json!({"ok": true, "bytes": call.body.len()}))
    } else {
        Answer::text(401, "bad signature")
    }
}
