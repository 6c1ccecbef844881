//! Property tests: whatever the engine writes, the reader gives back exactly.
//!
//! One test binary with a module per part of the format: the property tests (`properties`), the
//! writer's rules (`writer`), the sample-extras block (`extras`), tasks (`tasks`) and load changes
//! (`load_changes`). The block helpers several of them use are here.

#[path = "../common/mod.rs"]
mod common;

mod extras;
mod load_changes;
mod properties;
mod tasks;
mod writer;

use formats::{LogWriter, NameId, Sample};

/// Writes `samples` (names "x"), one flush per `per_block`, and returns the log's bytes.
fn log_of(samples: &[Sample], per_block: usize) -> Vec<u8> {
    let mut w = LogWriter::new(&common::header(0), Vec::new()).unwrap();
    w.intern_name("x");
    for id in 1..=3 {
        w.define_task(formats::TaskInfo {
            id,
            task_name: format!("t{id}"),
            ..Default::default()
        });
    }
    for (i, s) in samples.iter().enumerate() {
        w.push(*s).unwrap();
        if (i + 1) % per_block == 0 {
            w.flush().unwrap();
        }
    }
    w.finish().unwrap()
}

/// (offset, length, kind) of every block.
fn block_kinds(bytes: &[u8]) -> Vec<(usize, usize, u8)> {
    let mut at = formats::header::HEADER_LEN;
    let mut out = Vec::new();
    while at < bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        out.push((at, formats::block::FRAME_LEN + len, bytes[at + 12]));
        at += formats::block::FRAME_LEN + len;
    }
    out
}

fn connecting(i: u32, tls: bool) -> Sample {
    let opens = i.is_multiple_of(50);
    Sample {
        name: NameId(0),
        intended_us: u64::from(i) * 100,
        actual_us: u64::from(i) * 100,
        latency_us: 2_000 + i % 300,
        connect_us: if opens { 900 + i % 7 } else { 0 },
        tls_us: if opens && tls { 600 + i % 5 } else { 0 },
        ttfb_us: 1_500,
        status: 200,
        ..Sample::default()
    }
}

/// Replaces the payload of the block at `at` (of length `len`) with `payload`, framed and checksummed.
fn replace_block(bytes: &[u8], at: usize, len: usize, kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut block = formats::block::SYNC.to_vec();
    block.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    let crc = crc32c::crc32c_append(
        crc32c::crc32c_append(crc32c::crc32c(&block[4..8]), &[kind]),
        payload,
    );
    block.extend_from_slice(&crc.to_le_bytes());
    block.push(kind);
    block.extend_from_slice(payload);
    let mut out = bytes[..at].to_vec();
    out.extend_from_slice(&block);
    out.extend_from_slice(&bytes[at + len..]);
    out
}
