//! Where requests go: the `host` URL typed, and the profile behind `engine run --url`.

use std::path::Path;

use super::error::{PlanError, err};
use crate::profile::{self, spec::ProfileSpec};

/// Where requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The in-process embedded server, started by the runner.
    Embedded,
    /// An HTTP server (`http://`), or an HTTPS one (`https://`, `tls` set).
    Http {
        /// Host name or address literal, as written.
        host: String,
        /// TCP port.
        port: u16,
        /// A path prefix from the base URL, without a trailing `/` (often empty).
        base_path: String,
        /// Whether requests go over TLS.
        tls: bool,
    },
    /// A server for another protocol: `tcp://`, `udp://`, `ws://`, `wss://`, or the scheme of a
    /// custom protocol (`redis://`, `grpc://`, ...), whose steps say what to send.
    Other {
        /// The scheme, as written.
        scheme: String,
        /// Host name or address literal, as written.
        host: String,
        /// Port.
        port: u16,
        /// The path, if any (`ws://host/chat`), else empty.
        path: String,
    },
}

impl Target {
    /// Parses `embedded`, `http[s]://host[:port][/base]` or `scheme://host:port[/path]`.
    pub fn parse(text: &str, field: &str) -> Result<Target, PlanError> {
        if text == "embedded" {
            return Ok(Target::Embedded);
        }
        let (scheme, rest) = match text.split_once("://") {
            Some((scheme @ ("http" | "https" | "ws" | "wss" | "tcp" | "udp"), rest)) => {
                (scheme, rest)
            }
            Some((scheme, _)) => {
                return Err(err(
                    field,
                    format!(
                        "{text:?}: unsupported scheme {scheme:?}; use http://, https://, ws://, wss://, tcp:// or udp:// (a custom protocol takes its server's address as tcp://host:port)"
                    ),
                ));
            }
            None => {
                return Err(err(
                    field,
                    format!(
                        "{text:?} is not a URL; write e.g. \"http://127.0.0.1:8080\" or \"embedded\""
                    ),
                ));
            }
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| err(field, format!("{text:?}: unclosed `[` in the host")))?;
            (format!("[{h}]"), after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (authority.to_owned(), None),
            }
        };
        if host.is_empty() || host == "[]" {
            return Err(err(field, format!("{text:?} has no host")));
        }
        let default_port = match scheme {
            "http" | "ws" => Some(80),
            "https" | "wss" => Some(443),
            _ => None,
        };
        let port = match (port, default_port) {
            (None, Some(p)) => p,
            (None, None) => {
                return Err(err(
                    field,
                    format!("{text:?} has no port: write e.g. \"{scheme}://127.0.0.1:6379\""),
                ));
            }
            (Some(p), _) => p
                .parse()
                .map_err(|_| err(field, format!("{text:?}: {p:?} is not a port number")))?,
        };
        if !matches!(scheme, "http" | "https") {
            return Ok(Target::Other {
                scheme: scheme.to_owned(),
                host,
                port,
                path: path.split('#').next().unwrap_or("").to_owned(),
            });
        }
        let path = path
            .split(['?', '#'])
            .next()
            .unwrap_or("")
            .trim_end_matches('/')
            .to_owned();
        Ok(Target::Http {
            host,
            port,
            base_path: path,
            tls: scheme == "https",
        })
    }
}

/// The spec behind `engine run --url URL`: one GET in a loop, no think time, every user at once, and
/// no cookie jar (like wrk and oha: the same request every time).
pub fn adhoc_spec(url: &str) -> Result<ProfileSpec, PlanError> {
    let target = Target::parse(url, "--url")?;
    let (host, path, name) = match &target {
        Target::Embedded => ("embedded".to_owned(), "/".to_owned(), "embedded".to_owned()),
        Target::Other { .. } => {
            return Err(err(
                "--url",
                format!(
                    "{url:?}: --url makes HTTP GET requests; write a profile with steps for other protocols"
                ),
            ));
        }
        Target::Http {
            host, port, tls, ..
        } => {
            let after_scheme = url.split_once("://").map_or("", |(_, r)| r);
            let path = after_scheme
                .find('/')
                .map_or("/", |i| &after_scheme[i..])
                .to_owned();
            (
                format!("{}://{host}:{port}", if *tls { "https" } else { "http" }),
                path,
                format!("url-{host}-{port}"),
            )
        }
    };
    let text = format!(
        r#"(name: {name:?}, host: {host:?}, load: Closed(users: 10, duration: "10s"),
            users: [(name: "adhoc", cookies: false, tasks: [(requests: [(path: {path:?}, name: {path:?})])])])"#
    );
    profile::load_str(&text, Path::new("--url")).map_err(|e| {
        err(
            "--url",
            format!("{url:?} does not make a request: {}", e.message),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::Target;

    #[test]
    fn targets() {
        assert_eq!(Target::parse("embedded", "host").unwrap(), Target::Embedded);
        assert_eq!(
            Target::parse("http://[::1]:81/", "host").unwrap(),
            Target::Http {
                host: "[::1]".into(),
                port: 81,
                base_path: String::new(),
                tls: false,
            }
        );
        assert_eq!(
            Target::parse("https://x", "host").unwrap(),
            Target::Http {
                host: "x".into(),
                port: 443,
                base_path: String::new(),
                tls: true,
            }
        );
        assert_eq!(
            Target::parse("tcp://127.0.0.1:6379", "host").unwrap(),
            Target::Other {
                scheme: "tcp".into(),
                host: "127.0.0.1".into(),
                port: 6379,
                path: String::new(),
            }
        );
        assert!(
            Target::parse("udp://127.0.0.1", "host")
                .unwrap_err()
                .message
                .contains("no port")
        );
        assert!(Target::parse("localhost:80", "host").is_err());
        assert!(Target::parse("http://h:99999", "host").is_err());
    }
}
