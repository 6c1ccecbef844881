//! `analyzer export --hdr`: the interval log is decoded here by an independent reader, written from
//! HdrHistogram's published encoding (V2 with deflate, base64 in the log line; not the `hdrhistogram`
//! crate that wrote it), and its counts and percentiles are checked against the raw samples.

mod util;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use util::{
    kill_the_engine, nearest_rank, raw_samples, raw_sharded_samples, shard_dirs, sharded_run,
    synth_run,
};

/// One decoded histogram: (lowest value of each bucket index's range, highest value, count) per
/// non-empty index, in value order.
struct Decoded {
    buckets: Vec<(u64, u64, u64)>,
}

impl Decoded {
    fn total(&self) -> u64 {
        self.buckets.iter().map(|b| b.2).sum()
    }

    /// The value range of the bucket that holds the nearest-rank value at `permille`.
    fn at_rank(&self, permille: u64) -> (u64, u64) {
        let rank = (permille * self.total()).div_ceil(1000).max(1);
        let mut seen = 0;
        for &(lo, hi, n) in &self.buckets {
            seen += n;
            if seen >= rank {
                return (lo, hi);
            }
        }
        unreachable!("rank within the total")
    }
}

fn base64(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = ALPHABET.iter().position(|&a| a == c).expect("base64 digit") as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[..4].try_into().unwrap())
}

fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes(b[..8].try_into().unwrap())
}

/// Decodes one `HISTFAA…` histogram (HdrHistogram's V2 compressed encoding).
fn decode(encoded: &str) -> Decoded {
    let bytes = base64(encoded);
    // The cookies carry a word size of 8 in bits 4-7 (0x10), as the Java implementation writes them.
    assert_eq!(be32(&bytes), 0x1c84_9314, "V2 compressed cookie");
    let len = be32(&bytes[4..]) as usize;
    let mut payload = Vec::new();
    flate2::read::ZlibDecoder::new(&bytes[8..8 + len])
        .read_to_end(&mut payload)
        .unwrap();
    assert_eq!(be32(&payload), 0x1c84_9313, "V2 cookie");
    let counts_len = be32(&payload[4..]) as usize;
    let digits = be32(&payload[12..]);
    let lowest = be64(&payload[16..]);
    assert_eq!(digits, 3);
    assert_eq!(lowest, 1);
    let sub_bucket_count = (2.0 * 10f64.powi(digits as i32)).log2().ceil().exp2() as u64;
    let half = sub_bucket_count / 2;
    let half_magnitude = half.trailing_zeros();
    let unit_magnitude = 63 - lowest.leading_zeros();
    // Counts: zigzag LEB128 varints; a negative value n stands for -n empty indexes.
    let mut counts = &payload[40..40 + counts_len];
    let mut index = 0u64;
    let mut buckets = Vec::new();
    while !counts.is_empty() {
        // Up to eight bytes of seven bits, then a ninth of eight.
        let mut raw = 0u64;
        for k in 0..9 {
            let b = counts[0];
            counts = &counts[1..];
            if k == 8 {
                raw |= u64::from(b) << 56;
                break;
            }
            raw |= u64::from(b & 0x7f) << (7 * k);
            if b & 0x80 == 0 {
                break;
            }
        }
        let v = (raw >> 1) as i64 ^ -((raw & 1) as i64);
        if v < 0 {
            index += (-v) as u64;
            continue;
        }
        if v > 0 {
            let mut bucket = (index >> half_magnitude) as i64 - 1;
            let mut sub = (index & (half - 1)) + half;
            if bucket < 0 {
                sub -= half;
                bucket = 0;
            }
            let shift = bucket as u32 + unit_magnitude;
            let lo = sub << shift;
            buckets.push((lo, lo + (1u64 << shift) - 1, v as u64));
        }
        index += 1;
    }
    Decoded { buckets }
}

/// Every histogram line of an interval log: (tag, start s, length s, decoded histogram).
fn read_interval_log(text: &str) -> Vec<(Option<String>, f64, f64, Decoded)> {
    let mut out = Vec::new();
    let mut base = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("#[BaseTime: ") {
            base = rest.split(' ').next().map(|s| s.parse::<f64>().unwrap());
        }
        if line.starts_with('#') || line.starts_with("\"StartTimestamp\"") || line.is_empty() {
            continue;
        }
        let (tag, rest) = match line.strip_prefix("Tag=") {
            Some(rest) => {
                let (tag, rest) = rest.split_once(',').unwrap();
                (Some(tag.to_owned()), rest)
            }
            None => (None, line),
        };
        let fields: Vec<&str> = rest.split(',').collect();
        assert_eq!(fields.len(), 4, "{line}");
        out.push((
            tag,
            fields[0].parse().unwrap(),
            fields[1].parse().unwrap(),
            decode(fields[3]),
        ));
    }
    assert!(base.is_some(), "the log names its BaseTime");
    out
}

fn analyzer() -> Command {
    Command::new(env!("CARGO_BIN_EXE_analyzer"))
}

/// (tag, second) → sorted latencies, from the raw samples through the formats crate.
fn raw_by_tag(dir: &Path) -> BTreeMap<(String, u64), Vec<u64>> {
    by_tag(raw_samples(dir))
}

/// (tag, second of intended start) → sorted latencies, from samples as `util::raw_samples` gives them.
fn by_tag(samples: Vec<(String, u64, u64, bool, u64)>) -> BTreeMap<(String, u64), Vec<u64>> {
    let mut out: BTreeMap<(String, u64), Vec<u64>> = BTreeMap::new();
    for (name, corrected, uncorrected, _, intended_us) in samples {
        let t = intended_us / 1_000_000;
        let (c, u) = (corrected.max(1), uncorrected.max(1));
        out.entry(("".into(), t)).or_default().push(c);
        out.entry(("uncorrected".into(), t)).or_default().push(u);
        let enc = name
            .replace('%', "%25")
            .replace(' ', "%20")
            .replace(',', "%2C");
        out.entry((format!("corrected:{enc}"), t))
            .or_default()
            .push(c);
        out.entry((format!("uncorrected:{enc}"), t))
            .or_default()
            .push(u);
    }
    for v in out.values_mut() {
        v.sort_unstable();
    }
    out
}

/// Every histogram of the log holds exactly the samples of its (tag, second), and its percentiles'
/// buckets hold the exact nearest-rank values; returns how many histograms were checked.
fn assert_histograms_match(
    histograms: &[(Option<String>, f64, f64, Decoded)],
    raw: &BTreeMap<(String, u64), Vec<u64>>,
) -> usize {
    assert_eq!(
        histograms.len(),
        raw.len(),
        "one histogram per (tag, second)"
    );
    for (tag, start, length, h) in histograms {
        assert_eq!(*length, 1.0);
        assert_eq!(start.fract(), 0.0);
        let key = (tag.clone().unwrap_or_default(), *start as u64);
        let values = raw
            .get(&key)
            .unwrap_or_else(|| panic!("no samples for {key:?}"));
        assert_eq!(h.total(), values.len() as u64, "{key:?}: count");
        for permille in [500, 900, 990, 1000] {
            let exact = nearest_rank(values, permille);
            let (lo, hi) = h.at_rank(permille);
            assert!(
                lo <= exact && exact <= hi,
                "{key:?} P{}: exact {exact} outside the decoded bucket {lo}..={hi}",
                permille as f64 / 10.0
            );
            // Three significant digits: the bucket is within 0.1 % of its values.
            assert!((hi - lo) as f64 <= 0.001 * lo as f64 + 1.0, "{lo}..={hi}");
        }
    }
    histograms.len()
}

/// The log's `BaseTime`, s since the Unix epoch.
fn base_time(text: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix("#[BaseTime: "))
        .and_then(|rest| rest.split(' ').next())
        .map(|s| s.parse().unwrap())
        .expect("a BaseTime line")
}

#[test]
fn the_interval_log_decodes_to_the_recorded_counts_and_percentiles() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = synth_run(tmp.path(), 30_000, 2, 11);
    let file = tmp.path().join("run.hlog");
    let out = analyzer()
        .args(["export"])
        .arg(&dir)
        .arg("--hdr")
        .arg(&file)
        .arg("--by-name")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        file.display().to_string()
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let histograms = read_interval_log(&text);
    let checked = assert_histograms_match(&histograms, &raw_by_tag(&dir));
    assert!(checked > 200, "{checked}");
    // The untagged stream (what HdrHistogram's tools read by default) is the corrected latency: it
    // differs from the uncorrected one wherever requests started late.
    let differs = histograms.iter().any(|(tag, start, _, h)| {
        tag.is_none()
            && histograms.iter().any(|(t2, s2, _, u)| {
                t2.as_deref() == Some("uncorrected") && s2 == start && h.buckets != u.buckets
            })
    });
    assert!(differs, "corrected and uncorrected streams are told apart");
}

#[test]
fn several_runs_with_hdr_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = synth_run(tmp.path(), 1_000, 1, 1);
    let out = analyzer()
        .arg("export")
        .arg(&dir)
        .arg(&dir)
        .arg("--hdr")
        .arg(tmp.path().join("x.hlog"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("one run"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `analyzer export PATHS --hdr FILE --by-name`; returns stderr, failing unless it succeeded.
fn export_hdr(paths: &[PathBuf], file: &Path) -> String {
    let out = analyzer()
        .arg("export")
        .args(paths)
        .arg("--hdr")
        .arg(file)
        .arg("--by-name")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    err
}

/// A sharded run's directory (`runs/<run>/` holding `shard-*/`) exports as one run, as `report` merges
/// it: the earliest shard's time zero is the log's, every shard's requests sit in the second of the
/// common clock they were meant to start in, and the shard directories given one by one write the same
/// log. A shard killed mid-run contributes its complete blocks and is warned about; so is a missing one.
#[test]
fn a_sharded_run_exports_as_one_run_on_the_common_clock() {
    let tmp = tempfile::tempdir().unwrap();
    // Shard 1 starts 1.5 s after shard 0, shard 2 0.7 s after: seconds differ between the shards' own
    // clocks and the common one, so a shard left on its own clock lands in the wrong histograms.
    let dir = sharded_run(tmp.path(), "run", 30_000, 3, 21, |p| {
        p.duration_s = 20;
        p.shard_offsets_ms = vec![0.0, 1_500.0, 700.0];
    });
    let file = tmp.path().join("run.hlog");
    export_hdr(std::slice::from_ref(&dir), &file);
    let text = std::fs::read_to_string(&file).unwrap();
    let raw = raw_sharded_samples(&dir);
    assert_eq!(raw.len(), 30_000);
    let checked = assert_histograms_match(&read_interval_log(&text), &by_tag(raw));
    assert!(checked > 100, "{checked}");
    let earliest = shard_dirs(&dir)
        .iter()
        .map(|d| {
            formats::Run::open(d)
                .unwrap()
                .manifest
                .unwrap()
                .started_unix_ns
        })
        .min()
        .unwrap();
    // The log writes seconds with millisecond digits.
    assert!(
        (base_time(&text) - earliest as f64 / 1e9).abs() < 0.001,
        "BaseTime {} is not the earliest shard's time zero {earliest} ns",
        base_time(&text)
    );
    assert!(text.contains("Stampede run "), "{text}");

    // The shard directories one by one, in any order: the same log.
    let mut listed = shard_dirs(&dir);
    listed.reverse();
    let again = tmp.path().join("listed.hlog");
    export_hdr(&listed, &again);
    assert_eq!(std::fs::read_to_string(&again).unwrap(), text);

    // Shard 1 killed mid-run: its complete blocks are in, and the export says it never finished.
    kill_the_engine(&dir.join("shard-01"), 0.5);
    let killed = tmp.path().join("killed.hlog");
    let err = export_hdr(std::slice::from_ref(&dir), &killed);
    assert!(
        err.contains("shard 1 was never finalized") && err.contains("33.3% of the load"),
        "{err}"
    );
    let raw = raw_sharded_samples(&dir);
    assert!(raw.len() > 20_000 && raw.len() < 30_000, "{}", raw.len());
    let text = std::fs::read_to_string(&killed).unwrap();
    assert_histograms_match(&read_interval_log(&text), &by_tag(raw));

    // Shard 2 missing: said, with its share.
    std::fs::remove_dir_all(dir.join("shard-02")).unwrap();
    let err = export_hdr(std::slice::from_ref(&dir), &tmp.path().join("partial.hlog"));
    assert!(
        err.contains("shard 2 of 3 is missing, 33.3% of the load"),
        "{err}"
    );
}
