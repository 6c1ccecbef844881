//! The listening socket, the accepting thread with its cap on connections, one thread per connection
//! serving its requests in turn, and stopping: responses being written finish, idle connections close.

use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::request::{ReadError, parse_head, read_request};
use super::response::write_response;
use super::{Body, Handler, Limits, Request};

/// A listening socket, bound before the run starts so that a taken port is an error then.
#[derive(Debug)]
pub(crate) struct Bound {
    listener: TcpListener,
    addr: SocketAddr,
}

impl Bound {
    pub fn bind(addr: SocketAddr) -> io::Result<Bound> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        Ok(Bound { listener, addr })
    }

    /// The bound address (with the port the system picked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// A running server. Dropping it stops it.
#[derive(Debug)]
pub(crate) struct Server {
    addr: SocketAddr,
    closing: Arc<AtomicBool>,
    open: Arc<Connections>,
    acceptor: Option<JoinHandle<()>>,
}

/// The open connections, so that stopping the server can close them. Only server threads take the
/// lock, for the time of a push or a removal.
#[derive(Debug, Default)]
struct Connections {
    count: AtomicUsize,
    streams: Mutex<Vec<(u64, TcpStream)>>,
    /// Signalled when a connection ends, for a stopping server waiting for responses in flight.
    ended: Condvar,
}

/// How long a stopping server lets responses already being written finish.
const DRAIN: Duration = Duration::from_secs(2);

impl Server {
    /// Serves `bound` with `handler` on threads of its own until stopped.
    pub fn start(bound: Bound, handler: Arc<dyn Handler>, limits: Limits) -> io::Result<Server> {
        let closing = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Connections::default());
        let addr = bound.addr;
        let acceptor = {
            let (closing, open) = (Arc::clone(&closing), Arc::clone(&open));
            std::thread::Builder::new()
                .name("stampede-live".into())
                .stack_size(256 * 1024)
                .spawn(move || accept_loop(bound.listener, handler, limits, &closing, &open))?
        };
        Ok(Server {
            addr,
            closing,
            open,
            acceptor: Some(acceptor),
        })
    }

    #[cfg(test)]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets responses being written finish (at most [`DRAIN`]), then closes every
    /// connection still open.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(acceptor) = self.acceptor.take() else {
            return;
        };
        self.closing.store(true, Ordering::SeqCst);
        // `accept` blocks; a connection of our own wakes it.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => [127, 0, 0, 1].into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        let _ = acceptor.join();
        // Closing only the reading side ends idle keep-alive connections at once (their read returns
        // end of file) but lets a connection that is writing a response finish it: the final
        // snapshot a viewer fetched must not be cut off by the end of the run it describes.
        let mut streams = self
            .open
            .streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (_, s) in streams.iter() {
            let _ = s.shutdown(Shutdown::Read);
        }
        let deadline = Instant::now() + DRAIN;
        while self.open.count.load(Ordering::SeqCst) > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            streams = self
                .open
                .ended
                .wait_timeout(streams, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        for (_, s) in streams.iter() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept_loop(
    listener: TcpListener,
    handler: Arc<dyn Handler>,
    limits: Limits,
    closing: &Arc<AtomicBool>,
    open: &Arc<Connections>,
) {
    let mut next_id = 0u64;
    for stream in listener.incoming() {
        if closing.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else {
            // Out of descriptors, or the peer left before accept: nothing to answer.
            continue;
        };
        if open.count.load(Ordering::SeqCst) >= limits.max_connections {
            refuse(stream);
            continue;
        }
        next_id += 1;
        let id = next_id;
        if let Ok(clone) = stream.try_clone() {
            open.streams
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((id, clone));
        }
        open.count.fetch_add(1, Ordering::SeqCst);
        let (handler, open2) = (Arc::clone(&handler), Arc::clone(open));
        let spawned = std::thread::Builder::new()
            .name("stampede-live-conn".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                serve_connection(stream, &*handler, limits);
                open2.remove(id);
            });
        if spawned.is_err() {
            open.remove(id);
        }
    }
}

impl Connections {
    fn remove(&self, id: u64) {
        let mut streams = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(i) = streams.iter().position(|(i, _)| *i == id) {
            let (_, s) = streams.swap_remove(i);
            let _ = s.shutdown(Shutdown::Both);
        }
        self.count.fetch_sub(1, Ordering::SeqCst);
        drop(streams);
        self.ended.notify_all();
    }
}

/// Answers a connection over the limit, without reading from it.
fn refuse(mut stream: TcpStream) {
    let _ = stream.set_write_timeout(Some(Duration::from_millis(200)));
    let body = "too many connections to the live view; try again\n";
    let _ = write!(
        stream,
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.shutdown(Shutdown::Write);
}

/// Serves requests on one connection until the client closes it, goes idle, or sends something that
/// ends the connection.
fn serve_connection(mut stream: TcpStream, handler: &dyn Handler, limits: Limits) {
    let Ok(peer) = stream.peer_addr() else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(limits.write_timeout));
    // The head buffer is also where pipelined bytes wait for their turn.
    let mut buf = vec![0u8; limits.max_head];
    let mut filled = 0usize;
    let mut body = Vec::new();
    loop {
        match read_request(&mut stream, &mut buf, &mut filled, &mut body, limits) {
            Ok((head_len, keep_alive)) => {
                let response = {
                    let Ok(head) = parse_head(&buf[..head_len], limits) else {
                        return;
                    };
                    let request = Request {
                        method: head.method,
                        path: head.path,
                        query: head.query,
                        headers: head.headers,
                        body: &body,
                        peer,
                    };
                    let mut response = handler.handle(&request);
                    if request.method == "HEAD" {
                        response.body = Body::Static(b"");
                    }
                    response
                };
                if write_response(&mut stream, &response, keep_alive).is_err() || !keep_alive {
                    return;
                }
                // Keep whatever followed the request (pipelining) for the next round.
                buf.copy_within(head_len..filled, 0);
                filled -= head_len;
                body.clear();
            }
            Err(ReadError::Gone) => return,
            Err(ReadError::Reply(response)) => {
                let _ = write_response(&mut stream, &response, false);
                return;
            }
        }
    }
}
