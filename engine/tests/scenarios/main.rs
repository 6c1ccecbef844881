//! Scenarios end to end: every construct of the profile language against the embedded target, each
//! asserted on what the target received or what the log says, so that a construct the engine ignored
//! would fail its test.

#[path = "../util.rs"]
mod util;

mod auth;
mod checks;
mod cookies;
mod environments;
mod examples;
mod feeders;
mod tags;
mod templates;
mod users;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;

use formats::Outcome;
use util::*;

const OK: u8 = Outcome::Ok as u8;
const CHECK: u8 = Outcome::Check as u8;

/// Writes `text` (with `{addr}` replaced by `server`'s address) as a profile, plus any `files`, and
/// runs it with `args`; requires exit 0.
fn run_with(
    server: &engine::serve::Server,
    text: &str,
    files: &[(&str, &str)],
    args: &[&str],
    env: &[(&str, &str)],
) -> (ReadBack, Output) {
    let tmp = tempfile::tempdir().unwrap();
    for (name, content) in files {
        let path = tmp.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    let text = text.replace("{addr}", &server.addr().to_string());
    let profile = profile(tmp.path(), &text);
    let mut cmd = engine();
    cmd.arg("run")
        .arg(&profile)
        .args(args)
        .arg("--out")
        .arg(tmp.path().join("runs"))
        .arg("--quiet")
        // Some scenarios fail every request on purpose.
        .arg("--failures-are-data");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let r = read_run(&run_dir(&out));
    (r, out)
}

fn run_profile(server: &engine::serve::Server, text: &str, args: &[&str]) -> ReadBack {
    run_with(server, text, &[], args, &[]).0
}

fn assert_no_failures(r: &ReadBack) {
    let failures = r.failures();
    assert!(
        failures.is_empty(),
        "{} failures, first: {:?}",
        failures.len(),
        failures.first()
    );
}

fn header_of(rec: &engine::serve::Recorded, name: &str) -> String {
    rec.header(name)
        .unwrap_or_else(|| panic!("no {name} in {rec:?}"))
        .to_owned()
}
