//! The sample-extras block (v1.1, the TLS handshake time): written only when a samples block has a
//! handshake, skipped by a v1.0 reader, and later versions' extra columns skipped by length.

use formats::{BlockKind, Sample, read_log};

use super::{block_kinds, connecting, log_of, replace_block};

#[test]
fn writer_clamps_tls_to_connect() {
    let s = Sample {
        connect_us: 100,
        tls_us: 250,
        ..connecting(1, true)
    };
    let log = read_log(&log_of(&[s], 1)).unwrap();
    assert_eq!(log.samples.tls_us, [100]);
}

/// Logs without a handshake carry no extras block at all, so a plain-HTTP log costs exactly what it
/// did in v1.0; with handshakes, one extras block follows each samples block that has any.
#[test]
fn extras_blocks_appear_only_after_samples_blocks_with_a_handshake() {
    let plain: Vec<Sample> = (0..1_000).map(|i| connecting(i, false)).collect();
    let bytes = log_of(&plain, 300);
    let kinds: Vec<u8> = block_kinds(&bytes).iter().map(|b| b.2).collect();
    assert!(
        !kinds.contains(&BlockKind::SampleExtras.code()),
        "{kinds:?}"
    );

    // Handshakes only in the first 300 samples: one extras block, right after the first samples block.
    let mut tls = plain.clone();
    tls[..300].copy_from_slice(&(0..300).map(|i| connecting(i, true)).collect::<Vec<_>>());
    let bytes = log_of(&tls, 300);
    let kinds: Vec<u8> = block_kinds(&bytes).iter().map(|b| b.2).collect();
    let samples = BlockKind::Samples.code();
    let extras = BlockKind::SampleExtras.code();
    assert_eq!(
        kinds.iter().filter(|&&k| k == extras).count(),
        1,
        "{kinds:?}"
    );
    let first_samples = kinds.iter().position(|&k| k == samples).unwrap();
    assert_eq!(kinds[first_samples + 1], extras, "{kinds:?}");
    let log = read_log(&bytes).unwrap();
    assert!(log.problems.is_empty(), "{:?}", log.problems);
    for (i, s) in tls.iter().enumerate() {
        assert_eq!(log.samples.get(i), Some(*s), "sample {i}");
    }
    // Six handshakes in 300 samples cost a few bytes, not a column.
    let extras_len = block_kinds(&bytes)
        .iter()
        .find(|b| b.2 == extras)
        .unwrap()
        .1;
    assert!(extras_len < 40, "{extras_len} bytes");
}

/// What a v1.0 reader sees: it skips the unknown block kind, so removing the extras blocks must leave
/// every sample as it was, with the TLS time 0.
#[test]
fn without_its_extras_blocks_a_log_reads_as_v1_0_did() {
    let samples: Vec<Sample> = (0..2_000).map(|i| connecting(i, true)).collect();
    let bytes = log_of(&samples, 700);
    let mut stripped = bytes[..formats::header::HEADER_LEN].to_vec();
    for (at, len, kind) in block_kinds(&bytes) {
        if kind != BlockKind::SampleExtras.code() {
            stripped.extend_from_slice(&bytes[at..at + len]);
        }
    }
    assert!(stripped.len() < bytes.len());
    let log = read_log(&stripped).unwrap();
    assert!(log.problems.is_empty(), "{:?}", log.problems);
    for (i, s) in samples.iter().enumerate() {
        let want = Sample { tls_us: 0, ..*s };
        assert_eq!(log.samples.get(i), Some(want), "sample {i}");
    }
}

/// A later minor version may append extra columns; this reader decodes the one it knows and skips the
/// rest by length. An extras block whose count disagrees with its samples block, or whose TLS time
/// exceeds the connect time, is reported and its samples keep TLS 0.
#[test]
fn extras_blocks_from_later_versions_and_bad_ones() {
    let samples: Vec<Sample> = (0..100).map(|i| connecting(i, true)).collect();
    let bytes = log_of(&samples, 1_000);
    let (at, len, kind) = *block_kinds(&bytes)
        .iter()
        .find(|b| b.2 == BlockKind::SampleExtras.code())
        .unwrap();
    let payload = &bytes[at + formats::block::FRAME_LEN..at + len];
    // count (100, one byte), columns (1), then the column.
    assert_eq!(payload[..2], [100, 1]);
    let column = &payload[2..];

    // A future column of 3 bytes after the three this reader knows (v1.2's task columns come from a
    // log of the same samples with task ids).
    let with_tasks: Vec<Sample> = samples.iter().map(|s| Sample { task: 2, ..*s }).collect();
    let other = log_of(&with_tasks, 1_000);
    let (t_at, t_len, _) = *block_kinds(&other)
        .iter()
        .find(|b| b.2 == BlockKind::SampleExtras.code())
        .unwrap();
    let three = &other[t_at + formats::block::FRAME_LEN..t_at + t_len];
    assert_eq!(three[..2], [100, 3]);
    let mut future = vec![100, 4];
    future.extend_from_slice(&three[2..]);
    future.extend_from_slice(&[3, 0xAA, 0xBB, 0xCC]);
    let log = read_log(&replace_block(&bytes, at, len, kind, &future)).unwrap();
    assert!(log.problems.is_empty(), "{:?}", log.problems);
    assert_eq!(log.samples.tls_us, read_log(&bytes).unwrap().samples.tls_us);
    assert_eq!(log.samples.tls_us[0], 600);
    assert!(log.samples.task.iter().all(|&t| t == 2));

    let mut wrong_count = vec![99, 1];
    wrong_count.extend_from_slice(column);
    let log = read_log(&replace_block(&bytes, at, len, kind, &wrong_count)).unwrap();
    assert_eq!(log.samples.len(), 100);
    assert!(log.samples.tls_us.iter().all(|&t| t == 0));
    assert_eq!(log.problems.len(), 1, "{:?}", log.problems);
    assert_eq!(log.problems[0].offset, at as u64);
    assert!(
        log.problems[0].to_string().contains("holds 99 samples"),
        "{}",
        log.problems[0]
    );

    // The TLS time of sample 0 raised above its connect time.
    let mut too_long: Vec<Sample> = samples.clone();
    too_long[0].tls_us = 5_000;
    too_long[0].connect_us = 5_000;
    let other = log_of(&too_long, 1_000);
    let (o_at, o_len, _) = *block_kinds(&other)
        .iter()
        .find(|b| b.2 == BlockKind::SampleExtras.code())
        .unwrap();
    let bad_payload = other[o_at + formats::block::FRAME_LEN..o_at + o_len].to_vec();
    let log = read_log(&replace_block(&bytes, at, len, kind, &bad_payload)).unwrap();
    assert!(log.samples.tls_us.iter().all(|&t| t == 0));
    assert!(
        log.problems[0].to_string().contains("tls"),
        "{:?}",
        log.problems
    );
}
