//! Where a run sends its load, settled once before it starts: the host's addresses, each channel's
//! endpoint, the TLS client configurations, and (unless `--no-preflight`) one connection to each, so
//! that an unreachable target fails before anything is written.

use std::net::{SocketAddr, ToSocketAddrs};

use crate::error::Error;
use crate::plan::{Plan, Target};

/// Where the run's load goes, settled before it starts.
pub(super) struct Reached {
    /// The embedded target, when the run started one; it is stopped after the cores.
    pub server: Option<crate::serve::Server>,
    /// The host's addresses, the `Host` header requests carry, and the target as the console and the
    /// manifest name it.
    pub addrs: Vec<SocketAddr>,
    pub host_header: String,
    pub target_url: String,
    /// The TLS client of an `https` target.
    pub tls: Option<crate::tls::TlsClient>,
    /// Each channel's endpoint, and its TLS client (`wss`).
    pub endpoints: Vec<crate::protocol::Endpoint>,
    pub channel_tls: Vec<Option<crate::tls::TlsClient>>,
}

/// Starts the embedded target or resolves the host, builds the TLS clients, finds each channel's
/// endpoint, and (unless `--no-preflight`) connects to each once ([`super::preflight`]).
pub(super) fn reach(plan: &Plan, server_cpu: Option<u32>) -> Result<Reached, Error> {
    let mut server = None;
    let (addrs, host_header, target_url) = match &plan.target {
        Target::Embedded => {
            let behaviour = crate::serve::Behaviour::from_spec(&plan.embedded);
            let s = crate::serve::Server::start_with(&crate::serve::ServerConfig {
                addr: "127.0.0.1:0".into(),
                threads: 1,
                io: plan.io,
                cpu: server_cpu,
                record: false,
                behaviour,
            })
            .map_err(|source| Error::System {
                context: "starting the embedded target",
                source,
            })?;
            let addr = s.addr();
            server = Some(s);
            (vec![addr], addr.to_string(), format!("http://{addr}"))
        }
        Target::Http {
            host, port, tls, ..
        } => {
            let addrs = resolve(host, *port)?;
            let default_port = if *tls { 443 } else { 80 };
            let header = if *port == default_port {
                host.clone()
            } else {
                format!("{host}:{port}")
            };
            let scheme = if *tls { "https" } else { "http" };
            (addrs, header, format!("{scheme}://{host}:{port}"))
        }
        Target::Other {
            scheme,
            host,
            port,
            path,
        } => (
            resolve(host, *port)?,
            format!("{host}:{port}"),
            format!("{scheme}://{host}:{port}{path}"),
        ),
    };
    let tls = match &plan.target {
        Target::Http {
            host, tls: true, ..
        } => Some(tls_client(plan, host, &[b"http/1.1"])?),
        _ => None,
    };
    let endpoints = channel_endpoints(plan, &addrs)?;
    if plan.preflight {
        let embedded = server.as_ref().map(crate::serve::Server::addr);
        let checks = super::preflight::checks(plan, &addrs, &target_url, &endpoints, embedded);
        super::preflight::run(&checks, plan.http.connect_timeout)?;
    }
    let mut channel_tls = Vec::new();
    for e in &endpoints {
        channel_tls.push(if e.scheme == "wss" {
            Some(tls_client(plan, &e.host, &[b"http/1.1"])?)
        } else {
            None
        });
    }
    if plan.tls.insecure && (tls.is_some() || channel_tls.iter().any(Option::is_some)) {
        eprintln!(
            "warning: TLS certificate verification is off (`insecure: true`): any certificate is accepted; the manifest records this"
        );
    }
    Ok(Reached {
        server,
        addrs,
        host_header,
        target_url,
        tls,
        endpoints,
        channel_tls,
    })
}

/// Where each channel of the scenario's steps connects: its step's `target`, else the profile's host
/// (its first address).
pub(super) fn channel_endpoints(
    plan: &Plan,
    addrs: &[SocketAddr],
) -> Result<Vec<crate::protocol::Endpoint>, Error> {
    let mut out = Vec::new();
    for channel in &plan.scenario.channels {
        let target = match &channel.target {
            Some(text) => Target::parse(text, &channel.field)?,
            None => plan.target.clone(),
        };
        let default_scheme = match channel.kind.as_str() {
            "udp" => "udp",
            "ws" => "ws",
            _ => "tcp",
        };
        let endpoint = match target {
            Target::Embedded => crate::protocol::Endpoint {
                scheme: default_scheme.into(),
                host: addrs[0].ip().to_string(),
                port: addrs[0].port(),
                path: String::new(),
                addr: addrs[0],
            },
            Target::Http {
                host,
                port,
                base_path,
                tls,
            } => crate::protocol::Endpoint {
                scheme: if tls { "https" } else { "http" }.into(),
                addr: resolve(&host, port)?[0],
                host,
                port,
                path: base_path,
            },
            // `ws://embedded/ws`: the embedded target, when the profile runs one.
            Target::Other {
                scheme, host, path, ..
            } if host == "embedded" && plan.target == Target::Embedded => {
                crate::protocol::Endpoint {
                    scheme,
                    host: addrs[0].ip().to_string(),
                    port: addrs[0].port(),
                    path,
                    addr: addrs[0],
                }
            }
            Target::Other {
                scheme,
                host,
                port,
                path,
            } => crate::protocol::Endpoint {
                scheme,
                addr: resolve(&host, port)?[0],
                host,
                port,
                path,
            },
        };
        out.push(endpoint);
    }
    Ok(out)
}

/// Resolves a host name once, before the run.
pub(super) fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, Error> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = (bare, port)
        .to_socket_addrs()
        .map_err(|e| Error::Resolve {
            host: host.to_owned(),
            reason: e.to_string(),
        })?
        .collect();
    if addrs.is_empty() {
        return Err(Error::Resolve {
            host: host.to_owned(),
            reason: "no addresses".into(),
        });
    }
    Ok(addrs)
}

/// The TLS client configuration every core shares, offering `alpn`.
pub(crate) fn tls_client(
    plan: &Plan,
    host: &str,
    alpn: &[&[u8]],
) -> Result<crate::tls::TlsClient, Error> {
    let config = crate::tls::client_config(&plan.tls, alpn)?;
    let name = crate::tls::server_name(plan.tls.server_name.as_deref().unwrap_or(host))?;
    Ok(crate::tls::TlsClient::new(config, name))
}
