//! Golden files: logs written by format v1.0 (and one by v1.2, a steered run) and their decoded
//! text. Every later version of the reader must still decode them to the same text. Regenerate only
//! when adding new golden files: `UPDATE_GOLDEN=1 cargo test -p formats --test golden` (the v1.2
//! file is written only when missing).

mod common;

use std::path::PathBuf;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/v1")
        .join(name)
}

/// The v1 files: the clean small log, the same cut inside its last samples block, and with one byte
/// flipped inside its first samples block.
fn variants() -> Vec<(&'static str, Vec<u8>)> {
    let clean = common::small_log();
    let mut flipped = clean.clone();
    let first_samples = clean
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == formats::block::SYNC)
        .map(|(i, _)| i)
        .find(|&i| clean[i + 12] == 1)
        .unwrap();
    flipped[first_samples + 20] ^= 0x01;
    let cut = clean.len() - 60;
    vec![
        ("small", clean.clone()),
        ("small-truncated", clean[..cut].to_vec()),
        ("small-bitflip", flipped),
    ]
}

#[test]
fn golden_logs_decode_to_their_recorded_text() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    for (name, fresh) in variants() {
        let log_path = data(&format!("{name}.log"));
        let text_path = data(&format!("{name}.txt"));
        if update {
            std::fs::create_dir_all(log_path.parent().unwrap()).unwrap();
            std::fs::write(&log_path, &fresh).unwrap();
            let log = formats::read_log(&fresh).unwrap();
            std::fs::write(&text_path, common::dump(&log)).unwrap();
        }
        let bytes =
            std::fs::read(&log_path).unwrap_or_else(|e| panic!("{}: {e}", log_path.display()));
        let expected = std::fs::read_to_string(&text_path).unwrap();
        let log = formats::read_log(&bytes).unwrap();
        assert_eq!(
            common::dump(&log),
            expected,
            "{name}: the v1 golden file decodes differently now"
        );
    }
}

/// A v1.2 golden file: a steered run's log with its load-changes blocks, and its decoded text. It is
/// written only when missing (`UPDATE_GOLDEN=1 cargo test -p formats --test golden v1_2`); every later
/// reader must decode it to the same text.
#[test]
fn the_v1_2_steered_golden_log_decodes_to_its_recorded_text() {
    let log_path = data("small-steered.log");
    let text_path = data("small-steered.txt");
    if std::env::var_os("UPDATE_GOLDEN").is_some() && !log_path.exists() {
        let fresh = common::small_log_steered();
        std::fs::write(&log_path, &fresh).unwrap();
        std::fs::write(
            &text_path,
            common::dump(&formats::read_log(&fresh).unwrap()),
        )
        .unwrap();
    }
    let bytes = std::fs::read(&log_path).unwrap_or_else(|e| panic!("{}: {e}", log_path.display()));
    let expected = std::fs::read_to_string(&text_path).unwrap();
    let log = formats::read_log(&bytes).unwrap();
    assert_eq!(log.header.minor, 2);
    assert_eq!(log.load_changes.len(), 2);
    assert!(log.problems.is_empty(), "{:?}", log.problems);
    assert_eq!(
        common::dump(&log),
        expected,
        "the v1.2 golden file decodes differently now"
    );
    // Without its load changes it is the v1.0 log's content (the writer is the same otherwise).
    let plain = formats::read_log(&common::small_log()).unwrap();
    assert_eq!(log.samples, plain.samples);
    assert_eq!(log.intervals, plain.intervals);
}

#[test]
fn golden_manifest_parses() {
    let text = std::fs::read_to_string(data("manifest.json")).unwrap();
    let m = formats::Manifest::from_json(&text).unwrap();
    assert_eq!(m.state, formats::RunState::Completed);
    assert_eq!(m.logs.len(), 2);
    assert_eq!(m.run_id.to_string(), "a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5");
    assert_eq!(
        m.extra
            .get("added_by_a_later_version")
            .and_then(|v| v.as_str()),
        Some("kept")
    );
    // A rewrite keeps fields it does not know.
    let again = formats::Manifest::from_json(&m.to_json()).unwrap();
    assert_eq!(again, m);
}
