//! A custom protocol for gRPC unary calls: HTTP/2 by the `h2` crate, messages by `prost`, on the
//! engine's sockets.
//!
//! ```sh
//! cargo run -p engine --example grpc_protocol -- run profiles/grpc.ron
//! ```
//!
//! The example calls `helloworld.Greeter/SayHello` (the gRPC project's canonical example service):
//!
//! ```ron
//! Custom(protocol: "grpc", name: "SayHello", step: "/helloworld.Greeter/SayHello",
//!        args: {"name": "user-{{user_id()}}"}, extract: ["message"])
//! ```
//!
//! `h2` is written against tokio's `AsyncRead`/`AsyncWrite`; [`Io`] adapts the engine's
//! [`TcpStream`] (whose `poll_read`/`poll_write` are driven by the engine's loop) to them, and the
//! HTTP/2 connection's driver runs beside the steps as a task of the same core
//! ([`engine::protocol::spawn`]), under io_uring and epoll alike. Each user has one HTTP/2
//! connection; every call is a stream on it. A call whose `grpc-status` is not 0 is an
//! `Outcome::Status` sample with the gRPC code as its status.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use engine::protocol::{Args, Endpoint, Outcome, Protocol, StepResult, TcpStream, Value};

/// `helloworld.HelloRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HelloRequest {
    /// The name to greet.
    #[prost(string, tag = "1")]
    pub name: String,
}

/// `helloworld.HelloReply`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HelloReply {
    /// The greeting.
    #[prost(string, tag = "1")]
    pub message: String,
}

/// The protocol.
#[derive(Debug)]
pub struct Grpc;

/// A compiled step: the method's path.
#[derive(Debug)]
pub struct Call {
    path: http::uri::PathAndQuery,
}

/// A user's HTTP/2 connection.
pub struct Conn {
    send: h2::client::SendRequest<Bytes>,
    authority: String,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("authority", &self.authority)
            .finish_non_exhaustive()
    }
}

impl Protocol for Grpc {
    type Step = Call;
    type Conn = Conn;

    fn compile(&self, step: &Value) -> Result<Call, String> {
        let Value::String(path) = step else {
            return Err(
                "give the method's path, e.g. step: \"/helloworld.Greeter/SayHello\"".into(),
            );
        };
        if path != "/helloworld.Greeter/SayHello" {
            return Err(format!(
                "this example knows the messages of /helloworld.Greeter/SayHello only, not {path:?}"
            ));
        }
        let path = path
            .parse()
            .map_err(|e| format!("{path:?} is not a path: {e}"))?;
        Ok(Call { path })
    }

    async fn connect(&self, endpoint: &Endpoint) -> Result<Conn, StepResult> {
        let stream = TcpStream::connect(endpoint.addr)
            .await
            .map_err(|e| StepResult::from_io("connect", &e))?;
        let _ = stream.set_nodelay(true);
        let (send, connection) = h2::client::handshake(Io(stream))
            .await
            .map_err(|e| h2_failure("HTTP/2 handshake", &e))?;
        // The connection future drives the HTTP/2 state machine; it ends when the user's `Conn` (and
        // so its `SendRequest`) is dropped.
        engine::protocol::spawn(async move {
            let _ = connection.await;
        });
        Ok(Conn {
            send,
            authority: format!("{}:{}", endpoint.host, endpoint.port),
        })
    }

    async fn execute(&self, conn: &mut Conn, call: &Call, args: &Args<'_>) -> StepResult {
        let request = HelloRequest {
            name: args.text("name").unwrap_or_default().into_owned(),
        };
        // A gRPC message: a compression flag, a 4-byte length, the protobuf bytes.
        let mut body = BytesMut::with_capacity(5 + prost::Message::encoded_len(&request));
        body.put_u8(0);
        body.put_u32(prost::Message::encoded_len(&request) as u32);
        if prost::Message::encode(&request, &mut body).is_err() {
            return StepResult::fail(Outcome::Other, "cannot encode the request");
        }
        let sent = body.len() as u32;
        let uri = http::Uri::builder()
            .scheme("http")
            .authority(conn.authority.as_str())
            .path_and_query(call.path.clone())
            .build();
        let Ok(uri) = uri else {
            return StepResult::fail(Outcome::Other, "cannot build the request URI");
        };
        let Ok(req) = http::Request::post(uri)
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
        else {
            return StepResult::fail(Outcome::Other, "cannot build the request");
        };
        let mut ready = match conn.send.clone().ready().await {
            Ok(r) => r,
            Err(e) => return h2_failure("HTTP/2", &e),
        };
        let (response, mut stream) = match ready.send_request(req, false) {
            Ok(x) => x,
            Err(e) => return h2_failure("HTTP/2 request", &e),
        };
        if let Err(e) = stream.send_data(body.freeze(), true) {
            return h2_failure("HTTP/2 send", &e);
        }
        let response = match response.await {
            Ok(r) => r,
            Err(e) => return h2_failure("HTTP/2 response", &e).sent(sent),
        };
        let status = response.status().as_u16();
        let header_code = grpc_status(response.headers());
        let mut recv = response.into_body();
        let mut data = BytesMut::new();
        while let Some(chunk) = recv.data().await {
            match chunk {
                Ok(c) => {
                    let _ = recv.flow_control().release_capacity(c.len());
                    data.extend_from_slice(&c);
                }
                Err(e) => return h2_failure("HTTP/2 body", &e).sent(sent),
            }
        }
        let trailer_code = match recv.trailers().await {
            Ok(t) => t.as_ref().and_then(grpc_status),
            Err(e) => return h2_failure("HTTP/2 trailers", &e).sent(sent),
        };
        let received = data.len() as u32;
        if status != 200 {
            return StepResult::fail(Outcome::Status, "the gRPC server answered without HTTP 200")
                .status(status)
                .sent(sent)
                .received(received);
        }
        match trailer_code.or(header_code) {
            Some(0) => {}
            Some(code) => {
                return StepResult::fail(Outcome::Status, "gRPC call failed (see status)")
                    .status(code)
                    .sent(sent)
                    .received(received);
            }
            None => {
                return StepResult::fail(Outcome::Malformed, "no grpc-status in the answer")
                    .sent(sent)
                    .received(received);
            }
        }
        if data.len() < 5 {
            return StepResult::fail(Outcome::Malformed, "no gRPC message in the answer")
                .sent(sent)
                .received(received);
        }
        let mut frame = data.freeze();
        frame.advance(5);
        match <HelloReply as prost::Message>::decode(frame) {
            Ok(reply) => {
                let mut r = StepResult::ok().sent(sent).received(received);
                r.extracted
                    .push(("message".into(), reply.message.into_bytes()));
                r
            }
            Err(_) => StepResult::fail(Outcome::Malformed, "the reply is not a HelloReply")
                .sent(sent)
                .received(received),
        }
    }
}

fn grpc_status(headers: &http::HeaderMap) -> Option<u16> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

fn h2_failure(what: &'static str, e: &h2::Error) -> StepResult {
    if let Some(io) = e.get_io() {
        return StepResult::from_io(what, io);
    }
    let outcome = if e.is_go_away() || e.is_reset() {
        Outcome::Reset
    } else {
        Outcome::Malformed
    };
    StepResult::fail(outcome, what)
}

/// tokio's `AsyncRead + AsyncWrite` over the engine's socket, which h2 is written against.
struct Io(TcpStream);

impl tokio::io::AsyncRead for Io {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = match self.0.poll_read(cx, buf.initialize_unfilled()) {
            Poll::Ready(Ok(n)) => n,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for Io {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.0.poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Writes go straight to the socket: nothing is buffered here.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.0.shutdown_write())
    }
}

#[allow(dead_code)]
fn main() -> std::process::ExitCode {
    engine::Engine::new().protocol("grpc", Grpc).main()
}
