//! The gRPC example protocol (examples/grpc_protocol.rs) against a small gRPC server started here:
//! HTTP/2 by h2 on a tokio runtime, `helloworld.Greeter/SayHello`, answering with grpc-status in the
//! trailers. The calls the server answered must equal the samples logged, under both I/O drivers.

mod util;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use formats::Outcome;
use util::*;

#[path = "../examples/grpc_protocol.rs"]
mod grpc_protocol;

use grpc_protocol::{HelloReply, HelloRequest};

/// Starts the server on a free loopback port; returns the address and the count of OK calls.
/// Names starting with `fail` are answered with grpc-status 5 (NOT_FOUND).
fn greeter() -> (std::net::SocketAddr, Arc<AtomicU64>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&served);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                // As gRPC servers do (grpc-go, tonic): without it, the server's small writes after
                // the first wait for the client's delayed ACK, and a dozen calls per run took
                // 40-48 ms instead of well under 15 ms.
                let _ = socket.set_nodelay(true);
                let count = Arc::clone(&count);
                tokio::spawn(async move {
                    let Ok(mut conn) = h2::server::handshake(socket).await else {
                        return;
                    };
                    while let Some(Ok((req, mut respond))) = conn.accept().await {
                        let count = Arc::clone(&count);
                        tokio::spawn(async move {
                            let mut body = req.into_body();
                            let mut data = BytesMut::new();
                            while let Some(Ok(c)) = body.data().await {
                                let _ = body.flow_control().release_capacity(c.len());
                                data.extend_from_slice(&c);
                            }
                            let mut frame = data.freeze();
                            if frame.len() < 5 {
                                return;
                            }
                            frame.advance(5);
                            let Ok(hello) = <HelloRequest as prost::Message>::decode(frame) else {
                                return;
                            };
                            let response = http::Response::builder()
                                .status(200)
                                .header("content-type", "application/grpc")
                                .body(())
                                .unwrap();
                            let Ok(mut stream) = respond.send_response(response, false) else {
                                return;
                            };
                            let mut trailers = http::HeaderMap::new();
                            if hello.name.starts_with("fail") {
                                trailers.insert("grpc-status", "5".parse().unwrap());
                            } else {
                                let reply = HelloReply {
                                    message: format!("Hello {}", hello.name),
                                };
                                let mut out = BytesMut::new();
                                out.put_u8(0);
                                out.put_u32(prost::Message::encoded_len(&reply) as u32);
                                prost::Message::encode(&reply, &mut out).unwrap();
                                let _ = stream.send_data(Bytes::from(out), false);
                                trailers.insert("grpc-status", "0".parse().unwrap());
                                count.fetch_add(1, Ordering::Relaxed);
                            }
                            let _ = stream.send_trailers(trailers);
                        });
                    }
                });
            }
        });
    });
    (addr, served)
}

#[test]
fn grpc_unary_calls_equal_the_calls_the_server_answered() {
    let _serial = one_at_a_time();
    for io in ["uring", "epoll"] {
        let (addr, served) = greeter();
        let tmp = tempfile::tempdir().unwrap();
        let profile = profile(
            tmp.path(),
            &format!(
                r#"(name: "grpc", host: "tcp://{addr}", load: Closed(users: 4, duration: "1s"),
                    users: [(tasks: [(steps: [
                        Custom(protocol: "grpc", name: "SayHello", step: "/helloworld.Greeter/SayHello",
                               args: {{"name": "user-{{{{user_id()}}}}"}}, extract: ["message"]),
                        Custom(protocol: "grpc", name: "Echoed", step: "/helloworld.Greeter/SayHello",
                               args: {{"name": "{{{{message}}}}"}}),
                        Custom(protocol: "grpc", name: "NotFound", step: "/helloworld.Greeter/SayHello",
                               args: {{"name": "fail"}}),
                    ])])])"#
            ),
        );
        let mut protocols = engine::protocol::Protocols::new();
        protocols.register("grpc", grpc_protocol::Grpc);
        let args = engine::cli::RunArgs {
            profile: Some(profile),
            out: tmp.path().join("runs"),
            quiet: true,
            cores: Some(1),
            io: if io == "uring" {
                engine::cli::IoChoice::Uring
            } else {
                engine::cli::IoChoice::Epoll
            },
            ..Default::default()
        };
        let outcome = engine::run_with(&args, &protocols).unwrap();
        assert_eq!(outcome.exit_code(), 0);
        let r = read_run(&outcome.dir);
        let hello = r.named("SayHello");
        let echoed = r.named("Echoed");
        assert!(hello.len() > 10, "{io}: {}", hello.len());
        assert!(
            hello
                .iter()
                .chain(&echoed)
                .all(|x| x.outcome == Outcome::Ok as u8),
            "{io}: {:?}",
            r.failures().first()
        );
        assert_eq!(
            (hello.len() + echoed.len()) as u64,
            served.load(Ordering::Relaxed),
            "{io}: samples vs calls answered"
        );
        let not_found = r.named("NotFound");
        assert!(!not_found.is_empty());
        assert!(
            not_found
                .iter()
                .all(|x| x.outcome == Outcome::Status as u8 && x.status == 5)
        );
    }
}
