//! The loopback target the pods load, keeping its own count of what each shard sent.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::LIMIT;
use super::process::now_ns;

/// The loopback target: HTTP/1.1 keep-alive, a thread per connection, `200 ok` to every request
/// (`/slow` after 2 ms, for a latency tail). It keeps its own account: every request it answered, by
/// the `shard` query parameter, and when each shard's first request arrived.
pub(crate) struct Target {
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<BTreeMap<String, (u64, i64)>>>,
}

impl Target {
    pub(crate) fn start() -> Target {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let seen: Arc<Mutex<BTreeMap<String, (u64, i64)>>> = Arc::default();
        let (s, n) = (stop.clone(), seen.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let n = n.clone();
                std::thread::spawn(move || serve(conn, &n));
            }
        });
        Target { addr, stop, seen }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests answered, by shard (the `shard` query parameter), and when each shard's first came.
    pub(crate) fn by_shard(&self) -> BTreeMap<String, (u64, i64)> {
        self.seen.lock().unwrap().clone()
    }

    pub(crate) fn served(&self) -> u64 {
        self.by_shard().values().map(|v| v.0).sum()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(conn: TcpStream, seen: &Mutex<BTreeMap<String, (u64, i64)>>) {
    let _ = conn.set_read_timeout(Some(LIMIT));
    let _ = conn.set_nodelay(true);
    let mut writer = conn.try_clone().unwrap();
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let arrived = now_ns();
        let target = line.split(' ').nth(1).unwrap_or("").to_owned();
        // The rest of the head; the engine sends no body with a GET.
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" {
                break;
            }
        }
        let shard = target
            .split_once('?')
            .and_then(|(_, q)| q.split('&').find_map(|kv| kv.strip_prefix("shard=")))
            .unwrap_or("?")
            .to_owned();
        if target.starts_with("/slow") {
            std::thread::sleep(Duration::from_millis(2));
        }
        {
            let mut seen = seen.lock().unwrap();
            let e = seen.entry(shard).or_insert((0, arrived));
            e.0 += 1;
            e.1 = e.1.min(arrived);
        }
        if writer
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .is_err()
        {
            return;
        }
    }
}
