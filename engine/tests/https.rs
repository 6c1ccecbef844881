//! HTTPS end to end: the embedded target serves TLS with a certificate made here (rcgen), and the
//! engine must verify it, refuse it, or (when told to be insecure) accept it, under both I/O drivers.

mod util;

use std::path::Path;
use std::sync::Arc;

use engine::serve::{Server, ServerConfig};
use formats::Outcome;
use util::*;

/// A CA and a certificate for `localhost` and `127.0.0.1` signed by it, as PEM.
struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn pki() -> Pki {
    pki_named("stampede test CA")
}

fn pki_named(ca_name: &str) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_name);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

fn tls_server(pki: &Pki, dir: &Path) -> Server {
    std::fs::write(dir.join("cert.pem"), &pki.cert_pem).unwrap();
    std::fs::write(dir.join("key.pem"), &pki.key_pem).unwrap();
    let tls = engine::tls::server_config(&dir.join("cert.pem"), &dir.join("key.pem")).unwrap();
    Server::start_tls(
        &ServerConfig {
            addr: "127.0.0.1:0".into(),
            threads: 1,
            io: engine::cli::IoChoice::Epoll,
            cpu: None,
            record: false,
            behaviour: Default::default(),
        },
        Some(Arc::clone(&tls)),
    )
    .unwrap()
}

const PROFILE: &str = r#"(name: "https", host: "https://{host}:{port}",
    tls: {tls},
    environments: {"dev": (tls: (insecure: true))},
    load: Closed(users: 4, duration: "1s"),
    users: [(tasks: [(requests: [(path: "/items/7", checks: [JsonEquals("/id", 7)])])])])"#;

fn run_https(
    server: &Server,
    dir: &Path,
    host: &str,
    tls: &str,
    io: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (ReadBack, std::process::Output) {
    let text = PROFILE
        .replace("{host}", host)
        .replace("{port}", &server.addr().port().to_string())
        .replace("{tls}", tls);
    let profile = profile(dir, &text);
    let mut cmd = engine();
    cmd.arg("run")
        .arg(&profile)
        .args(["--io", io, "--cores", "1", "--out"])
        .arg(dir.join("runs"))
        .arg("--quiet")
        // A target without the CA fails every request on purpose.
        .arg("--failures-are-data")
        .args(extra);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    (read_run(&run_dir(&out)), out)
}

/// The connections the pre-flight check opens to `host` on the server's port: one per address, each
/// closed without a word of TLS, which the server counts as a handshake that failed.
fn preflight_probes(host: &str, server: &Server) -> u64 {
    use std::net::ToSocketAddrs;
    let mut addrs: Vec<_> = (host, server.addr().port())
        .to_socket_addrs()
        .unwrap()
        .collect();
    addrs.sort_unstable();
    addrs.dedup();
    addrs.len() as u64
}

#[test]
fn https_with_a_ca_file_verifies_and_every_request_is_a_sample() {
    let _serial = one_at_a_time();
    let pki = pki();
    for io in DRIVERS {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("ca.pem"), &pki.ca_pem).unwrap();
        let server = tls_server(&pki, tmp.path());
        // By name: SNI and the certificate's DNS name; the address is the IP SAN.
        for host in ["localhost", "127.0.0.1"] {
            let before = server.served();
            let failed_before = server.tls_failures();
            let (r, _) = run_https(
                &server,
                tmp.path(),
                host,
                r#"(ca_file: "ca.pem")"#,
                io,
                &[],
                &[],
            );
            let rows = r.rows();
            let failures = r.failures();
            assert!(failures.is_empty(), "{io} {host}: {:?}", failures.first());
            assert!(rows.len() > 20, "{io} {host}: only {} samples", rows.len());
            assert_eq!(
                rows.len() as u64,
                server.served() - before,
                "{io} {host}: samples and requests served differ"
            );
            assert!(rows.iter().all(|row| row.status == 200));
            // Four users, four connections: the handshake is each one's connect time.
            let connected: Vec<u32> = r.logs[0]
                .samples
                .connect_us
                .iter()
                .copied()
                .filter(|&c| c > 0)
                .collect();
            assert_eq!(connected.len(), 4, "{io} {host}: {connected:?}");
            // The handshake's part of each connect is recorded (format v1.1), and only there.
            let s = &r.logs[0].samples;
            for i in 0..s.len() {
                if s.connect_us[i] > 0 {
                    assert!(
                        s.tls_us[i] > 0 && s.tls_us[i] <= s.connect_us[i],
                        "{io} {host}: connect {} tls {}",
                        s.connect_us[i],
                        s.tls_us[i]
                    );
                } else {
                    assert_eq!(s.tls_us[i], 0, "{io} {host}: a reused connection did TLS");
                }
            }
            assert_eq!(
                server.tls_failures() - failed_before,
                preflight_probes(host, &server),
                "{io} {host}: only the pre-flight check's connections end without a handshake"
            );
            assert!(
                r.manifest
                    .target
                    .as_deref()
                    .unwrap()
                    .starts_with("https://")
            );
        }
    }
}

#[test]
fn https_without_the_ca_is_a_tls_failure_and_the_run_goes_on() {
    let _serial = one_at_a_time();
    let pki = pki();
    // The "system" roots are another CA's (rustls-native-certs reads SSL_CERT_FILE), so the test does
    // not depend on the machine's certificate store.
    let other = pki_other_ca();
    for io in DRIVERS {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("roots.pem"), &other).unwrap();
        let roots = tmp.path().join("roots.pem");
        let server = tls_server(&pki, tmp.path());
        let (r, _) = run_https(
            &server,
            tmp.path(),
            "localhost",
            "()",
            io,
            &[],
            &[("SSL_CERT_FILE", roots.to_str().unwrap())],
        );
        let rows = r.rows();
        assert!(
            rows.len() > 4,
            "{io}: the users kept trying, got {}",
            rows.len()
        );
        assert!(
            rows.iter().all(|row| row.outcome == Outcome::Tls as u8),
            "{io}: {:?}",
            rows.first()
        );
        let message = rows[0].message.clone().unwrap();
        assert!(
            message.contains("certificate") && message.contains("UnknownIssuer"),
            "{io}: {message}"
        );
        assert_eq!(server.served(), 0);
        assert!(server.tls_failures() > 0);
    }
}

#[test]
fn insecure_environment_accepts_any_certificate_and_says_so() {
    let _serial = one_at_a_time();
    let pki = pki();
    let tmp = tempfile::tempdir().unwrap();
    let other = pki_other_ca();
    std::fs::write(tmp.path().join("roots.pem"), &other).unwrap();
    let roots = tmp.path().join("roots.pem");
    let server = tls_server(&pki, tmp.path());
    let (r, out) = run_https(
        &server,
        tmp.path(),
        "localhost",
        "()",
        "epoll",
        &["--env", "dev"],
        &[("SSL_CERT_FILE", roots.to_str().unwrap())],
    );
    assert!(r.failures().is_empty(), "{:?}", r.failures().first());
    assert_eq!(r.rows().len() as u64, server.served());
    assert!(
        stderr(&out).contains("TLS certificate verification is off"),
        "{}",
        stderr(&out)
    );
    assert!(
        r.manifest.profile.contains("insecure: true"),
        "{}",
        r.manifest.profile
    );
}

#[test]
fn a_ca_file_that_is_not_pem_is_a_located_profile_error() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("ca.pem"), "not a certificate").unwrap();
    let text = PROFILE
        .replace("{host}", "localhost")
        .replace("{port}", "1")
        .replace("{tls}", r#"(ca_file: "ca.pem")"#);
    let profile = profile(tmp.path(), &text);
    let out = engine()
        .arg("run")
        .arg(&profile)
        .arg("--out")
        .arg(tmp.path().join("runs"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("profile.ron:2:") && err.contains("tls.ca_file") && err.contains("PEM"),
        "{err}"
    );
}

/// The certificate of a CA that signed nothing the server shows.
fn pki_other_ca() -> String {
    pki_named("some other CA").ca_pem
}

#[test]
fn wss_upgrades_over_tls_and_echoes() {
    let _serial = one_at_a_time();
    let pki = pki();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("ca.pem"), &pki.ca_pem).unwrap();
    let server = tls_server(&pki, tmp.path());
    let text = format!(
        r#"(name: "wss", host: "wss://localhost:{}/ws", tls: (ca_file: "ca.pem"),
            load: Closed(users: 2, duration: "1s"),
            users: [(tasks: [(steps: [WebSocket(name: "echo", send: "hi", receive: Reply, expect: "^hi$")])])])"#,
        server.addr().port()
    );
    let profile = profile(tmp.path(), &text);
    let out = run(&tmp.path().join("runs"), &[profile.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = read_run(&run_dir(&out));
    assert!(r.failures().is_empty(), "{:?}", r.failures().first());
    assert!(r.rows().len() > 20);
    assert_eq!(r.rows().len() as u64, server.served());
    assert_eq!(
        server.tls_failures(),
        preflight_probes("localhost", &server),
        "only the pre-flight check's connections end without a handshake"
    );
    // Each of the two users upgraded once over TLS: the handshake time is recorded for exactly those.
    let s = &r.samples;
    let handshakes = (0..s.len()).filter(|&i| s.tls_us[i] > 0).count();
    let connects = (0..s.len()).filter(|&i| s.connect_us[i] > 0).count();
    assert_eq!(handshakes, connects, "{:?}", s.tls_us);
    assert!(handshakes >= 2);
    assert!((0..s.len()).all(|i| s.tls_us[i] <= s.connect_us[i]));
}
