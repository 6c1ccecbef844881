//! The command line: what `analyzer report` prints and exits with, and its help.

use std::process::Command;

use super::util::synth_run;

fn analyzer_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_analyzer"))
}

#[test]
fn cli_prints_the_html_path_last() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let status = analyzer_bin()
        .args([
            "synth",
            "--samples",
            "2000",
            "--cores",
            "2",
            "--seed",
            "1",
            "--out",
        ])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success());
    let out = analyzer_bin()
        .arg("report")
        .arg(&dir)
        .args(["--format", "html,json", "--skip", "5s"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.lines().last().unwrap(),
        dir.join("report.html").display().to_string()
    );
    assert!(dir.join("report.json").exists());
    assert!(!dir.join("report.md").exists());
}

#[test]
fn cli_exits_2_when_nothing_is_readable() {
    let tmp = tempfile::tempdir().unwrap();
    let out = analyzer_bin()
        .arg("report")
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("not a run directory"), "{stderr}");
    assert!(
        stderr.contains(&tmp.path().display().to_string()),
        "the message names the directory: {stderr}"
    );
}

#[test]
fn cli_names_the_package_when_chromium_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = synth_run(tmp.path(), 1_000, 1, 1);
    let out = analyzer_bin()
        .arg("report")
        .arg(&dir)
        .args(["--format", "pdf"])
        .env("PATH", tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("chromium") && stderr.contains("apt-get install"),
        "{stderr}"
    );
}

#[test]
fn help_shows_the_pipeline() {
    let out = analyzer_bin().arg("--help").output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("engine run profiles/demo.ron"));
    assert!(stdout.contains("analyzer report runs/<id>"));
}
