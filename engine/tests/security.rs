//! Secrets stay secret (issue 9): no secret value reaches the run directory (manifest and logs, the
//! analyzer's only input, so no report can show one either) or the console.

mod util;

use std::path::Path;

use util::*;

/// Every byte of every file under `dir`.
fn all_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(all_bytes(&path));
        } else {
            out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn no_secret_reaches_the_run_directory_or_the_console() {
    let _serial = one_at_a_time();
    let server = recording_server();
    let tmp = tempfile::tempdir().unwrap();
    let profile = profile(
        tmp.path(),
        &format!(
            r#"(name: "secrets", host: "http://{}",
                secrets: {{"api_key": "${{SHOP_API_KEY}}"}},
                variables: {{"password": "pw-literal-5150", "plain": "plain-value-4711"}},
                headers: {{"Authorization": "Bearer tok-literal-8086"}},
                load: Closed(users: 2, duration: "500ms"),
                users: [(auth: Basic(user: "ann", password: "basic-literal-6502"),
                         tasks: [(requests: [
                            (path: "/anything/${{plain}}", name: "with ${{plain}}",
                             headers: {{"X-Api-Key": "${{api_key}}", "X-Pw": "{{{{password}}}}",
                                       "Proxy-Authorization": "Basic proxy-literal-6809"}},
                             checks: [BodyContains("${{api_key}}"), HeaderEquals("x-pw", "{{{{password}}}}")]),
                         ])])])"#,
            server.addr()
        ),
    );
    let out = engine()
        .arg("run")
        .arg(&profile)
        // Every check fails here; the failure messages must not show the secrets they saw.
        .args(["--cores", "1", "--failures-are-data", "--out"])
        .arg(tmp.path().join("runs"))
        .env("SHOP_API_KEY", "sk-env-secret-1234")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let dir = run_dir(&out);

    // The secrets were really used: the target received them.
    let rec = &server.recorded()[0];
    let sent = format!("{rec:?}");
    for secret in ["sk-env-secret-1234", "pw-literal-5150", "tok-literal-8086"] {
        assert!(sent.contains(secret), "{secret} was not sent: {sent}");
    }
    // The checks failed (the target echoes neither), so their messages, which name the templates, are
    // in the log.
    let r = read_run(&dir);
    assert!(
        r.messages().iter().any(|m| m.starts_with("check ")),
        "{:?}",
        r.messages().first()
    );

    let mut outputs = all_bytes(&dir);
    assert!(
        outputs.len() >= 2,
        "a manifest and a log: {:?}",
        outputs.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    outputs.push(("stdout".into(), out.stdout.clone()));
    outputs.push(("stderr".into(), out.stderr.clone()));
    // A plain variable is not secret: it shows in the manifest and in the request's name in the log,
    // which proves this search looks inside the files.
    for (file, bytes) in &outputs {
        if file.ends_with("manifest.json") || file.ends_with(".log") {
            assert!(contains(bytes, "plain-value-4711"), "{file}");
        }
    }
    for secret in [
        "sk-env-secret-1234",
        "pw-literal-5150",
        "tok-literal-8086",
        "basic-literal-6502",
        "proxy-literal-6809",
        // Basic auth's header value, base64 of "ann:basic-literal-6502".
        "YW5uOmJhc2ljLWxpdGVyYWwtNjUwMg",
    ] {
        for (file, bytes) in &outputs {
            assert!(!contains(bytes, secret), "{secret} is in {file}");
        }
    }
}

for_each_backend!(no_secret_reaches_the_run_directory_or_the_console,);
