//! A small blocking HTTP/1.1 server on `std::net` for the live view: one accepting thread and one
//! thread per connection, with a hard cap on connections and on what one request may send.
//!
//! It runs beside the coordinator, never on an engine core, and shares nothing with the cores: a
//! handler reads a snapshot the coordinator publishes (see [`super::Shared`]). Everything a client
//! controls is bounded: the request head ([`Limits::max_head`]), the body ([`Limits::max_body`]), how
//! long a request may take to arrive ([`Limits::request_timeout`]), how long a keep-alive connection may
//! stay idle ([`Limits::idle_timeout`]) and how many connections are open at once
//! ([`Limits::max_connections`]; the next one is answered `503` and closed). Bodies are only read with a
//! `Content-Length`; chunked uploads are refused.
//!
//! `server` accepts connections and serves requests on them one after another, `request` reads and
//! parses a request within the limits, and `response` writes the answer.

mod request;
mod response;
mod server;
#[cfg(test)]
mod tests;

use std::time::Duration;

pub(crate) use request::Request;
pub(crate) use response::{Body, Response};
pub(crate) use server::{Bound, Server};

/// What one client may use.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Connections open at once; one more is answered `503 Service Unavailable` and closed.
    pub max_connections: usize,
    /// Bytes of request line and headers.
    pub max_head: usize,
    /// Headers per request.
    pub max_headers: usize,
    /// Bytes of request body (control requests are a few bytes of JSON).
    pub max_body: usize,
    /// From the first byte of a request to its last.
    pub request_timeout: Duration,
    /// How long a keep-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// How long writing a response may block on a client that does not read.
    pub write_timeout: Duration,
}

pub(crate) const LIMITS: Limits = Limits {
    max_connections: 16,
    max_head: 8 * 1024,
    max_headers: 48,
    max_body: 4 * 1024,
    request_timeout: Duration::from_secs(5),
    idle_timeout: Duration::from_secs(15),
    write_timeout: Duration::from_secs(5),
};

/// What serves requests on a listener.
pub(crate) trait Handler: Send + Sync + 'static {
    fn handle(&self, request: &Request<'_>) -> Response;
}
