//! The pre-flight check: before anything is written and before time zero, one TCP connection to each
//! address the run will connect to, so that a run against a target that is not there stops within a
//! connect timeout, naming the target and where it was given, instead of spending its whole duration
//! recording connection failures.
//!
//! It is a plain TCP connect, opened and closed at once: no TLS handshake, no request, nothing the
//! target's access log would show as a request. UDP has no connection to check, and the embedded
//! target was started by this process.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::error::Error;
use crate::plan::{Origin, Plan, Target};

/// The most connections the check opens at once: a profile names a handful of targets, and a
/// target behind a firewall that drops packets costs a connect timeout per wave, not per target.
const AT_ONCE: usize = 32;

/// One target to check: its URL as messages show it, where it was given, and its addresses.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Check {
    pub url: String,
    pub origin: Origin,
    pub addrs: Vec<SocketAddr>,
}

/// What the run connects to over TCP: the host when a request goes to it (every address, since the
/// cores spread their connections over them), and each channel's endpoint (not UDP). `embedded` is
/// the embedded target's address, which needs no check.
pub(super) fn checks(
    plan: &Plan,
    addrs: &[SocketAddr],
    target_url: &str,
    endpoints: &[crate::protocol::Endpoint],
    embedded: Option<SocketAddr>,
) -> Vec<Check> {
    let mut out = Vec::new();
    let host_is_tcp = match &plan.target {
        Target::Embedded => false,
        Target::Other { scheme, .. } => scheme != "udp",
        Target::Http { .. } => true,
    };
    // A profile of steps that all name their own target still sets a host, which nothing uses.
    if host_is_tcp && !plan.scenario.requests.is_empty() {
        out.push(Check {
            url: target_url.to_owned(),
            origin: plan.target_origin.clone(),
            addrs: addrs.to_vec(),
        });
    }
    for (i, e) in endpoints.iter().enumerate() {
        if e.scheme == "udp" || Some(e.addr) == embedded {
            continue;
        }
        out.push(Check {
            url: format!("{}://{}:{}", e.scheme, e.host, e.port),
            origin: plan
                .channel_origins
                .get(i)
                .cloned()
                .unwrap_or_else(|| plan.target_origin.clone()),
            addrs: vec![e.addr],
        });
    }
    out
}

/// Connects once to every address of `checks` (each address once, at most [`AT_ONCE`] at a time,
/// each within `timeout`); the first check, in order, with an address that failed is the error.
pub(super) fn run(checks: &[Check], timeout: Duration) -> Result<(), Error> {
    let mut unique: Vec<SocketAddr> = Vec::new();
    for addr in checks.iter().flat_map(|c| c.addrs.iter().copied()) {
        if !unique.contains(&addr) {
            unique.push(addr);
        }
    }
    let results = connect_all(&unique, timeout);
    for check in checks {
        for addr in &check.addrs {
            if let Some((_, Err(e))) = results.iter().find(|(a, _)| a == addr) {
                return Err(unreachable(check, *addr, e, timeout));
            }
        }
    }
    Ok(())
}

/// Opens and closes a TCP connection to each address, in waves of [`AT_ONCE`] threads.
fn connect_all(addrs: &[SocketAddr], timeout: Duration) -> Vec<(SocketAddr, std::io::Result<()>)> {
    let mut out = Vec::with_capacity(addrs.len());
    for wave in addrs.chunks(AT_ONCE) {
        std::thread::scope(|s| {
            let handles: Vec<_> = wave
                .iter()
                .map(|&addr| s.spawn(move || TcpStream::connect_timeout(&addr, timeout).map(drop)))
                .collect();
            for (&addr, h) in wave.iter().zip(handles) {
                let result = h
                    .join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("the check's thread panicked")));
                out.push((addr, result));
            }
        });
    }
    out
}

/// The error for `check`, whose address `addr` failed with `e`: why, in words, and what to do.
fn unreachable(check: &Check, addr: SocketAddr, e: &std::io::Error, timeout: Duration) -> Error {
    let mut reason = describe(e, timeout);
    let mut all: Vec<String> = Vec::new();
    for a in &check.addrs {
        if !all.contains(&a.to_string()) {
            all.push(a.to_string());
        }
    }
    if all.len() > 1 {
        reason.push_str(&format!(
            " (the host has {} addresses, {}, and the run spreads its connections over all of them: make the target listen on each, or give the address that serves instead of the name)",
            all.len(),
            all.join(", ")
        ));
    }
    let fix = if e.kind() == ErrorKind::ConnectionRefused {
        format!("Start the target, or check {}", check.origin)
    } else {
        format!(
            "Check {}, that the target is up, and that this machine may reach it (firewall, network policy)",
            check.origin
        )
    };
    Error::Unreachable {
        target: check.url.clone(),
        addr,
        reason,
        fix,
    }
}

/// Why a connection failed, in words: refused, timed out, no route, or the system's own message.
fn describe(e: &std::io::Error, timeout: Duration) -> String {
    match e.kind() {
        ErrorKind::ConnectionRefused => "connection refused, nothing listens on that port".into(),
        ErrorKind::TimedOut | ErrorKind::WouldBlock => format!(
            "no answer within {} (the connect timeout, `http.connect_timeout`): the host may be down, a firewall may drop the packets, or the target accepts no more connections (its listen queue is full)",
            crate::shard::human(timeout)
        ),
        ErrorKind::HostUnreachable => "no route to host".into(),
        ErrorKind::NetworkUnreachable => "network unreachable".into(),
        ErrorKind::ConnectionReset => "the connection was reset".into(),
        ErrorKind::PermissionDenied => "not permitted (a firewall rule on this machine?)".into(),
        ErrorKind::AddrNotAvailable => "the address is not available on this machine".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str, addrs: &[SocketAddr]) -> Check {
        Check {
            url: url.into(),
            origin: Origin {
                field: "host".into(),
                file: Some("shop.ron".into()),
                line: Some(3),
            },
            addrs: addrs.to_vec(),
        }
    }

    /// A loopback port nothing listens on: bound, then released.
    fn closed_port() -> SocketAddr {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    }

    #[test]
    fn the_first_target_that_refuses_is_named_with_the_fix() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap();
        let closed = closed_port();
        let t = Duration::from_secs(5);
        assert!(run(&[check("http://up", &[open, open])], t).is_ok());
        let e = run(
            &[
                check("http://up", &[open]),
                check("tcp://down", &[closed]),
                check("tcp://also-down", &[closed_port()]),
            ],
            t,
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with(&format!(
                "cannot connect to tcp://down ({closed}): connection refused"
            )),
            "{text}"
        );
        assert!(
            text.contains("Start the target, or check `host` in shop.ron:3"),
            "{text}"
        );
        assert!(text.contains("--no-preflight"), "{text}");
        assert_eq!(e.exit_code(), 2);
    }

    /// A target whose listen queue is full drops new connection attempts, as a host that is down
    /// or a firewall does: the message names the timeout and each of those causes.
    #[test]
    fn a_target_that_does_not_answer_is_named_with_the_timeout_and_its_causes() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // Listening again sets the queue's length: 0 holds one connection that is not accepted.
        nix::sys::socket::listen(&listener, nix::sys::socket::Backlog::new(0).unwrap()).unwrap();
        let short = Duration::from_millis(200);
        let _held: Vec<_> = (0..3)
            .filter_map(|_| TcpStream::connect_timeout(&addr, short).ok())
            .collect();
        let e = run(&[check("http://busy", &[addr])], short).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("no answer within 200 ms (the connect timeout")
                && text.contains("a firewall may drop the packets")
                && text.contains("its listen queue is full"),
            "{text}"
        );
        assert!(text.contains("that this machine may reach it"), "{text}");
    }

    #[test]
    fn a_host_with_several_addresses_says_that_each_is_used() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap();
        let closed = closed_port();
        let e = run(
            &[check("http://both", &[open, closed])],
            Duration::from_secs(5),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("the host has 2 addresses, {open}, {closed}")),
            "{e}"
        );
    }

    /// The plan of `profile` (as `shop.ron`), with the checks the runner would make when the host's
    /// addresses are `addrs` and the embedded target (if the profile runs one) is at `embedded`.
    fn checks_of(profile: &str, addrs: &[SocketAddr], embedded: Option<SocketAddr>) -> Vec<Check> {
        let spec = crate::profile::load_str(profile, std::path::Path::new("shop.ron")).unwrap();
        let plan = Plan::resolve(
            spec,
            &crate::cli::RunArgs::default(),
            &crate::plan::PlanEnv::default(),
        )
        .unwrap();
        let endpoints = super::super::targets::channel_endpoints(&plan, addrs).unwrap();
        checks(&plan, addrs, "http://host", &endpoints, embedded)
    }

    #[test]
    fn every_tcp_target_is_checked_and_only_those() {
        let embedded: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        // The embedded host and a step without a target (it goes to the host) need no check, nor
        // does UDP; the TCP step's target does, named by its field and line.
        let got = checks_of(
            r#"(name: "mixed", host: "embedded",
    load: Closed(users: 1, duration: "1s"),
    users: [(tasks: [
        (requests: [(path: "/")]),
        (steps: [
            Tcp(target: "tcp://127.0.0.1:7", send: "x"),
            Udp(target: "udp://127.0.0.1:9", send: "x"),
            WebSocket(send: "hi", receive: Reply),
        ]),
    ])])"#,
            &[embedded],
            Some(embedded),
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].url, "tcp://127.0.0.1:7");
        assert_eq!(got[0].addrs, ["127.0.0.1:7".parse().unwrap()]);
        assert_eq!(
            got[0].origin.to_string(),
            "`users[0].tasks[1].steps[0].target` in shop.ron:6"
        );
        // A host that no request and no step uses is not checked; one that a step uses is, as the
        // host.
        let host: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let steps_only = |second: &str| {
            format!(
                r#"(name: "tcp", host: "tcp://127.0.0.1:8080",
    load: Closed(users: 1, duration: "1s"),
    users: [(tasks: [(steps: [Tcp(target: "tcp://127.0.0.1:7", send: "x"), {second}])])])"#
            )
        };
        let got = checks_of(
            &steps_only(r#"Tcp(target: "tcp://127.0.0.1:7", send: "y")"#),
            &[host],
            None,
        );
        assert_eq!(got.len(), 1, "{got:?}");
        let got = checks_of(&steps_only(r#"Tcp(send: "y")"#), &[host], None);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[1].addrs, [host]);
        assert_eq!(got[1].origin.to_string(), "`host` in shop.ron:1");
    }

    #[test]
    fn reasons_are_said_in_words() {
        let t = Duration::from_millis(1500);
        let said = |kind| describe(&std::io::Error::from(kind), t);
        assert!(said(ErrorKind::ConnectionRefused).starts_with("connection refused"));
        assert!(said(ErrorKind::TimedOut).starts_with("no answer within 1.5 s"));
        assert_eq!(said(ErrorKind::HostUnreachable), "no route to host");
    }
}
