//! Damaged logs: every failure is typed and located, nothing panics, and everything intact is read.

mod common;

use formats::{BlockKind, DecodeErrorKind, read_log};

/// (offset, total length, kind, samples) of each block of a well-formed log.
fn blocks(bytes: &[u8]) -> Vec<(usize, usize, u8, usize)> {
    let mut at = formats::header::HEADER_LEN;
    let mut out = Vec::new();
    while at < bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        let kind = bytes[at + 12];
        let samples = if kind == BlockKind::Samples.code() {
            usize::from(bytes[at + 13])
        } else {
            0
        };
        out.push((at, formats::block::FRAME_LEN + len, kind, samples));
        at += formats::block::FRAME_LEN + len;
    }
    assert_eq!(at, bytes.len());
    out
}

#[test]
fn truncation_at_every_offset_keeps_every_complete_block() {
    truncation_keeps_every_complete_block(&common::small_log());
    truncation_keeps_every_complete_block(&common::small_log_with_tls());
}

fn truncation_keeps_every_complete_block(bytes: &[u8]) {
    let clean = read_log(bytes).unwrap();
    let blocks = blocks(bytes);
    assert!(
        blocks
            .iter()
            .filter(|b| b.2 == BlockKind::Samples.code())
            .count()
            >= 2
    );
    let mut previous = 0;
    for cut in 0..bytes.len() {
        match read_log(&bytes[..cut]) {
            Err(e) => {
                assert!(cut < formats::header::HEADER_LEN, "cut {cut}: {e}");
                assert!(e.is_fatal());
                assert_eq!(e.kind, DecodeErrorKind::HeaderTruncated, "cut {cut}");
            }
            Ok(log) => {
                let expected: usize = blocks
                    .iter()
                    .filter(|b| b.0 + b.1 <= cut)
                    .map(|b| b.3)
                    .sum();
                assert_eq!(log.samples.len(), expected, "cut at {cut}");
                // A TLS time is either the recorded one (its extras block was complete) or 0 (the
                // cut fell inside that block), never anything else.
                for (i, &t) in log.samples.tls_us.iter().enumerate() {
                    assert!(
                        t == 0 || t == clean.samples.tls_us[i],
                        "cut {cut}, sample {i}"
                    );
                }
                let extras_complete = blocks
                    .iter()
                    .filter(|b| b.2 == BlockKind::SampleExtras.code())
                    .all(|b| b.0 + b.1 <= cut);
                if extras_complete {
                    assert_eq!(
                        log.samples.tls_us[..],
                        clean.samples.tls_us[..log.samples.len()],
                        "cut {cut}"
                    );
                }
                assert!(log.samples.len() >= previous);
                previous = log.samples.len();
                assert!(log.end.is_none());
                assert!(
                    log.problems.iter().all(|p| p.is_tail_only()),
                    "cut {cut} gave more than a tail warning: {:?}",
                    log.problems
                );
                assert!(
                    log.problems
                        .iter()
                        .any(|p| p.kind == DecodeErrorKind::MissingEnd)
                );
                let mid_block =
                    !blocks.iter().any(|b| b.0 == cut) && cut > formats::header::HEADER_LEN;
                if mid_block {
                    let tail = log
                        .problems
                        .iter()
                        .find(|p| matches!(p.kind, DecodeErrorKind::TruncatedTail { .. }));
                    let start = blocks.iter().rev().find(|b| b.0 < cut).unwrap().0;
                    assert_eq!(tail.map(|t| t.offset), Some(start as u64), "cut {cut}");
                }
            }
        }
    }
}

#[test]
fn a_flipped_byte_loses_only_its_block() {
    a_flipped_byte_loses_only_its_block_in(common::small_log());
    let with_tls = common::small_log_with_tls();
    assert!(
        blocks(&with_tls)
            .iter()
            .any(|b| b.2 == BlockKind::SampleExtras.code())
    );
    a_flipped_byte_loses_only_its_block_in(with_tls);
}

fn a_flipped_byte_loses_only_its_block_in(bytes: Vec<u8>) {
    let clean = read_log(&bytes).unwrap();
    let all = blocks(&bytes);
    for (b, &(at, len, kind, samples)) in all.iter().enumerate() {
        for offset in [at + 9, at + 12, at + len - 1] {
            let mut damaged = bytes.clone();
            damaged[offset] ^= 0x10;
            let log = read_log(&damaged).unwrap();
            let checksum = log
                .problems
                .iter()
                .find(|p| p.kind == DecodeErrorKind::BlockChecksum);
            assert_eq!(
                checksum.map(|p| p.offset),
                Some(at as u64),
                "flip at {offset} in a kind-{kind} block"
            );
            assert_eq!(log.samples.len(), clean.samples.len() - samples);
            if kind == BlockKind::End.code() {
                assert!(log.end.is_none());
            } else {
                assert_eq!(log.end, clean.end);
            }
            if kind == BlockKind::SampleExtras.code() {
                // Only the TLS times of the samples block before it are lost; every sample stays.
                let before: usize = all[..b].iter().map(|b| b.3).sum();
                let mine = all[b - 1].3;
                assert!(
                    log.samples.tls_us[before - mine..before]
                        .iter()
                        .all(|&t| t == 0)
                );
                let mut expect = clean.samples.tls_us.clone();
                expect[before - mine..before].fill(0);
                assert_eq!(log.samples.tls_us, expect);
                assert_eq!(log.samples.latency_us, clean.samples.latency_us);
            } else if kind == BlockKind::Samples.code() {
                // The extras of a lost samples block are skipped without attaching anywhere.
                let mut expect = clean.samples.clone();
                let before: usize = all[..b].iter().map(|b| b.3).sum();
                let keep = |v: &mut Vec<u32>| {
                    v.drain(before..before + samples);
                };
                keep(&mut expect.tls_us);
                assert_eq!(log.samples.tls_us, expect.tls_us);
            }
            if kind == BlockKind::Names.code() {
                // The samples that used the lost names are still there, flagged and shown as "#id".
                assert!(
                    log.problems
                        .iter()
                        .any(|p| matches!(p.kind, DecodeErrorKind::UnknownId { what: "name", .. }))
                );
                assert_eq!(log.names.display(0), "#0");
            }
        }
    }
}

#[test]
fn a_damaged_length_resynchronises_on_the_next_block() {
    let bytes = common::small_log();
    let blocks = blocks(&bytes);
    let (at, _, _, lost) = blocks
        .iter()
        .copied()
        .find(|b| b.2 == BlockKind::Samples.code())
        .unwrap();
    for length in [0xFFFF_FFFFu32, 0x0100_0000, 3] {
        let mut damaged = bytes.clone();
        damaged[at + 4..at + 8].copy_from_slice(&length.to_le_bytes());
        let log = read_log(&damaged).unwrap();
        let total: usize = blocks.iter().map(|b| b.3).sum();
        assert_eq!(log.samples.len(), total - lost, "length {length:#x}");
        assert!(
            log.end.is_some(),
            "the blocks after the damage are read, end included"
        );
        assert_eq!(
            log.problems.first().map(|p| p.offset),
            Some(at as u64),
            "{:?}",
            log.problems
        );
    }
}

#[test]
fn inserted_garbage_is_skipped_and_counted() {
    let bytes = common::small_log();
    let at = blocks(&bytes)[2].0;
    let mut damaged = bytes[..at].to_vec();
    damaged.extend_from_slice(b"this is not a block\xb7BL");
    damaged.extend_from_slice(&bytes[at..]);
    let log = read_log(&damaged).unwrap();
    assert_eq!(log.samples.len(), read_log(&bytes).unwrap().samples.len());
    assert_eq!(log.problems.len(), 1, "{:?}", log.problems);
    assert_eq!(log.problems[0].kind, DecodeErrorKind::Garbage { bytes: 22 });
    assert_eq!(log.problems[0].offset, at as u64);
}

#[test]
fn random_damage_never_panics() {
    for bytes in [common::small_log(), common::small_log_with_tls()] {
        random_damage_never_panics_in(bytes);
    }
}

fn random_damage_never_panics_in(bytes: Vec<u8>) {
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..3_000 {
        let mut damaged = bytes.clone();
        for _ in 0..(next() % 8 + 1) {
            let i = (next() as usize) % damaged.len();
            damaged[i] = next() as u8;
        }
        let cut = damaged.len() - (next() as usize % 64);
        if let Ok(log) = read_log(&damaged[..cut]) {
            assert!(log.samples.len() <= 40);
            assert_eq!(log.samples.tls_us.len(), log.samples.len());
            for i in 0..log.samples.len() {
                assert!(log.samples.tls_us[i] <= log.samples.connect_us[i]);
            }
        }
    }
}

fn with_header(bytes: &[u8], edit: impl FnOnce(&mut [u8])) -> Vec<u8> {
    let mut out = bytes.to_vec();
    edit(&mut out[..formats::header::HEADER_LEN]);
    let crc = crc32c::crc32c(&out[..56]);
    out[56..60].copy_from_slice(&crc.to_le_bytes());
    out
}

#[test]
fn a_newer_major_version_is_refused_with_the_fix() {
    let bytes = with_header(&common::small_log(), |h| {
        h[8..10].copy_from_slice(&2u16.to_le_bytes());
    });
    let err = read_log(&bytes).unwrap_err();
    assert_eq!(
        err.kind,
        DecodeErrorKind::NewerMajorVersion {
            major: 2,
            minor: formats::FORMAT_MINOR
        }
    );
    assert!(err.to_string().contains("upgrade the analyzer"), "{err}");
}

#[test]
fn a_newer_minor_version_with_unknown_blocks_is_read() {
    let bytes = with_header(&common::small_log(), |h| {
        h[10..12].copy_from_slice(&7u16.to_le_bytes());
    });
    // Splice a block of an unknown kind, correctly framed, before the end block.
    let end = blocks(&bytes).last().unwrap().0;
    let payload = b"from the future";
    let mut block = formats::block::SYNC.to_vec();
    block.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    let crc = crc32c::crc32c_append(
        crc32c::crc32c_append(crc32c::crc32c(&block[4..8]), &[200]),
        payload,
    );
    block.extend_from_slice(&crc.to_le_bytes());
    block.push(200);
    block.extend_from_slice(payload);
    let mut future = bytes[..end].to_vec();
    future.extend_from_slice(&block);
    future.extend_from_slice(&bytes[end..]);
    let log = read_log(&future).unwrap();
    assert!(log.problems.is_empty(), "{:?}", log.problems);
    assert_eq!(log.header.minor, 7);
    assert_eq!(log.samples.len(), 40);
}

#[test]
fn bytes_after_the_end_block_are_reported() {
    let mut bytes = common::small_log();
    bytes.extend_from_slice(b"trailing");
    let log = read_log(&bytes).unwrap();
    assert_eq!(log.samples.len(), 40);
    assert_eq!(log.problems.len(), 1);
    assert_eq!(
        log.problems[0].kind,
        DecodeErrorKind::DataAfterEnd { bytes: 8 }
    );
}

#[test]
fn other_files_are_not_logs() {
    for data in [
        &b"{\"schema\": 1}\n"[..],
        b"",
        b"\x89PNG\r\n\x1a\n0000000000000000000000",
    ] {
        let err = read_log(data).unwrap_err();
        assert!(err.is_fatal());
    }
    assert_eq!(
        read_log(b"hello, world, this is text").unwrap_err().kind,
        DecodeErrorKind::NotALog
    );
    let bytes = common::small_log();
    let mut bad = bytes.clone();
    bad[33] ^= 1;
    assert_eq!(
        read_log(&bad).unwrap_err().kind,
        DecodeErrorKind::HeaderChecksum
    );
}
