//! One column of a samples block: patched frame-of-reference bit packing.
//!
//! A column is a list of `n` signed 64-bit residuals (what each column stores is chosen by
//! [`crate::samples`]). The encoder subtracts a base, optionally zig-zags the difference, and packs every
//! value into `b` bits. Values that need more than `b` bits are *exceptions*: their low `b` bits sit in
//! the packed array and the rest follows in a short list. `b` is chosen per column and block to minimise
//! the encoded size, so a constant column costs three bytes, a column that is 200 except for a few 500s
//! costs little more than its exceptions, and a log-normal latency column costs about its entropy.
//!
//! ```text
//! mode     u8      bit 7: zig-zag flag; bits 0-6: width b, 0..=64
//! base     varint  zigzag(base)
//! packed   ceil(n * b / 8) bytes, value i at bit i * b, least significant bit first
//! count    varint  number of exceptions
//! count × (gap varint, high varint)
//!          gap: position minus previous position minus one (the first: the position itself)
//!          high: the value shifted right by b, OR-ed back in at bit b
//! ```
//!
//! All arithmetic wraps, so every sequence of `i64` round-trips whatever its range.

use crate::bitpack;
use crate::error::PayloadError;
use crate::samples::MAX_BLOCK_SAMPLES;
use crate::varint::{self, Cursor};

/// How the encoder picks the base of a column. Decoders do not care: the base is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Base {
    /// The smallest residual, no zig-zag: best for values spread above a floor (latency, user ids).
    Min,
    /// The majority residual (Boyer–Moore vote), zig-zagged: best for columns that are nearly constant
    /// with rare departures either way (status codes, deltas that are usually zero).
    Mode,
    /// Zero, no zig-zag: for small non-negative codes (task ids, flags), where a base sampled from a
    /// periodic column could miss the smallest value and turn every occurrence of it into an
    /// exception.
    Zero,
}

const ZIGZAG_FLAG: u8 = 0x80;

/// Values per group in the encoder's exception scan.
const GROUP: usize = 16;

/// Reusable buffers for encoding columns without allocating per block.
#[derive(Debug)]
pub(crate) struct ColumnEncoder {
    low: Box<[u64; MAX_BLOCK_SAMPLES]>,
    /// Room for every value to be an exception, so the scan can write without checking capacity.
    exceptions: Box<[(u32, u64)]>,
}

impl Default for ColumnEncoder {
    fn default() -> Self {
        ColumnEncoder {
            low: vec![0u64; MAX_BLOCK_SAMPLES]
                .into_boxed_slice()
                .try_into()
                .expect("block-sized"),
            exceptions: vec![(0, 0); MAX_BLOCK_SAMPLES].into_boxed_slice(),
        }
    }
}

/// Values the encoder looks at when choosing a column's base and width: every eighth in a full block.
/// These are size heuristics only; the packing pass handles every value exactly, whatever was chosen.
fn sampled(residuals: &[i64]) -> impl Iterator<Item = i64> + '_ {
    residuals
        .iter()
        .step_by(if residuals.len() >= 1024 { 8 } else { 1 })
        .copied()
}

impl ColumnEncoder {
    /// Encodes up to MAX_BLOCK_SAMPLES `residuals` with the given base strategy and appends the column
    /// body to `out`.
    pub(crate) fn encode(&mut self, residuals: &[i64], base: Base, out: &mut Vec<u8>) {
        match base {
            // A value below the sampled minimum wraps to a huge number and becomes an exception: correct,
            // only larger, and rare.
            Base::Min => {
                self.encode_with::<false>(residuals, sampled(residuals).min().unwrap_or(0), out);
            }
            Base::Mode => self.encode_with::<true>(residuals, sampled_mode(residuals), out),
            Base::Zero => self.encode_with::<false>(residuals, 0, out),
        }
    }

    fn encode_with<const ZIG: bool>(&mut self, residuals: &[i64], base: i64, out: &mut Vec<u8>) {
        let transform = |r: i64| {
            let d = r.wrapping_sub(base);
            if ZIG { varint::zigzag(d) } else { d as u64 }
        };
        // Four histograms filled in turn, summed afterwards: consecutive values usually share a bucket,
        // and one histogram would make every increment wait for the previous one's store.
        let mut hists = [[0u32; 65]; 4];
        let mut seen = 0;
        for (k, r) in sampled(residuals).enumerate() {
            hists[k & 3][(64 - transform(r).leading_zeros()) as usize] += 1;
            seen += 1;
        }
        let mut hist = hists[0];
        for h in &hists[1..] {
            for (total, c) in hist.iter_mut().zip(h) {
                *total += c;
            }
        }
        let width = best_width(&hist, seen);
        out.push(width as u8 | if ZIG { ZIGZAG_FLAG } else { 0 });
        varint::put(out, varint::zigzag(base));

        // One branch-free pass (it vectorises) splits off the low bits and notes, per group of 16
        // values, whether any has more; the exception scan then visits only the groups that do.
        let mask = if width == 64 {
            u64::MAX
        } else {
            (1u64 << width) - 1
        };
        let low = &mut self.low[..residuals.len()];
        let mut group_high = [0u64; MAX_BLOCK_SAMPLES / GROUP];
        for ((lows, rs), high) in low
            .chunks_mut(GROUP)
            .zip(residuals.chunks(GROUP))
            .zip(group_high.iter_mut())
        {
            for (l, &r) in lows.iter_mut().zip(rs) {
                let u = transform(r);
                *high |= u & !mask;
                *l = u & mask;
            }
        }
        if width > 0 {
            bitpack::pack(low, width, out);
        }
        // Branch-free: every value of a flagged group is written to the next free slot, and the slot is
        // kept only if the value is an exception.
        let mut count = 0;
        for (g, _) in group_high.iter().enumerate().filter(|(_, h)| **h != 0) {
            let start = g * GROUP;
            let end = (start + GROUP).min(residuals.len());
            for (i, &r) in residuals[start..end].iter().enumerate() {
                let high = transform(r) & !mask;
                self.exceptions[count] = ((start + i) as u32, high.checked_shr(width).unwrap_or(0));
                count += usize::from(high != 0);
            }
        }
        varint::put(out, count as u64);
        let mut prev: i64 = -1;
        for &(i, high) in &self.exceptions[..count] {
            varint::put(out, (i64::from(i) - prev - 1) as u64);
            varint::put(out, high);
            prev = i64::from(i);
        }
    }
}

/// Decodes a column body into `dst` (one residual per element, as two's-complement bits: cast to `i64`
/// for the signed value). On error `dst` holds garbage.
pub(crate) fn decode(body: &[u8], dst: &mut [u64]) -> Result<(), PayloadError> {
    let n = dst.len();
    let mut cur = Cursor::new(body);
    let mode = cur.byte()?;
    let zig = mode & ZIGZAG_FLAG != 0;
    let width = u32::from(mode & !ZIGZAG_FLAG);
    if width > 64 {
        return Err(PayloadError::BadWidth(width as u8));
    }
    let base = varint::unzigzag(cur.varint()?);
    let packed_len = (n * width as usize).div_ceil(8);
    let packed = cur.take(packed_len)?;
    let count = cur.length(n)?;
    let base = base as u64;
    if width == 0 && count == 0 {
        // A constant column: every value is the base.
        if cur.remaining() != 0 {
            return Err(PayloadError::TrailingBytes {
                bytes: cur.remaining() as u64,
            });
        }
        dst.fill(base);
        return Ok(());
    }
    // With width 0 every value is the base except the exceptions, which are then whole values: fill
    // with the base and patch, instead of transforming every value.
    let sparse = width == 0;
    if sparse {
        dst.fill(base);
    } else {
        bitpack::unpack(packed, width, dst);
    }
    let finish = |u: u64| base.wrapping_add(if zig { varint::unzigzag(u) as u64 } else { u });
    let mut pos: usize = 0;
    for k in 0..count {
        let gap = cur.length(n)?;
        pos = if k == 0 { gap } else { pos + 1 + gap };
        if pos >= n {
            return Err(PayloadError::ExceptionPosition {
                position: pos as u64,
                count: n as u64,
            });
        }
        let high = cur.varint()?;
        let shifted = high.checked_shl(width).filter(|s| s >> width == high);
        let shifted = shifted.ok_or(PayloadError::ExceptionOverflow)?;
        if sparse {
            dst[pos] = finish(shifted);
        } else {
            dst[pos] |= shifted;
        }
    }
    if cur.remaining() != 0 {
        return Err(PayloadError::TrailingBytes {
            bytes: cur.remaining() as u64,
        });
    }
    if !sparse {
        for v in dst.iter_mut() {
            *v = finish(*v);
        }
    }
    Ok(())
}

/// The most frequent of sixteen evenly spaced values (the first on ties); 0 for an empty slice.
///
/// A cheap stand-in for the mode: for a column that is nearly constant it finds the constant, and a
/// wrong guess only costs size, never correctness.
fn sampled_mode(values: &[i64]) -> i64 {
    if values.is_empty() {
        return 0;
    }
    let picks: [i64; 16] = std::array::from_fn(|k| values[k * values.len() / 16]);
    let mut best = (0, picks[0]);
    for &p in &picks {
        let count = picks.iter().filter(|&&q| q == p).count();
        if count > best.0 {
            best = (count, p);
        }
    }
    best.1
}

/// The width that minimises packed bits plus an estimate of the exceptions' cost, given how many
/// values need exactly `l` bits (`hist[l]`).
fn best_width(hist: &[u32; 65], n: usize) -> u32 {
    let top = hist.iter().rposition(|&c| c > 0).unwrap_or(0) as u32;
    let mut best = (u64::MAX, top);
    for b in 0..=top {
        let mut cost = n as u64 * u64::from(b);
        for l in b + 1..=top {
            let c = u64::from(hist[l as usize]);
            if c > 0 {
                // A position gap of about one byte plus the high bits in whole varint bytes.
                cost += c * (12 + 8 * u64::from((l - b).div_ceil(7)));
            }
        }
        if cost < best.0 {
            best = (cost, b);
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(values: &[i64], base: Base) -> usize {
        let mut enc = ColumnEncoder::default();
        let mut body = Vec::new();
        enc.encode(values, base, &mut body);
        let mut out = vec![0u64; values.len()];
        decode(&body, &mut out).unwrap();
        let out: Vec<i64> = out.into_iter().map(|v| v as i64).collect();
        assert_eq!(out, values);
        body.len()
    }

    #[test]
    fn constant_column_costs_a_few_bytes() {
        // Mode byte, base 200 as a two-byte zig-zag varint, no packed bits, zero exceptions.
        assert_eq!(round_trip(&[200; 8192], Base::Mode), 4);
        assert_eq!(round_trip(&[7; 8192], Base::Min), 3);
    }

    #[test]
    fn rare_departures_become_exceptions() {
        let mut v = vec![200i64; 8192];
        v[17] = 500;
        v[4000] = 0;
        let len = round_trip(&v, Base::Mode);
        assert!(
            len < 16,
            "two exceptions should cost a few bytes, took {len}"
        );
    }

    #[test]
    fn extremes_round_trip() {
        round_trip(&[i64::MIN, i64::MAX, 0, -1, 1], Base::Min);
        round_trip(&[i64::MIN, i64::MAX, 0, -1, 1], Base::Mode);
        round_trip(&[], Base::Min);
        round_trip(&[i64::from(u32::MAX); 3], Base::Min);
    }

    #[test]
    fn every_width_round_trips() {
        for w in 0..64 {
            let v: Vec<i64> = (0..100)
                .map(|i| ((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (63 - w)) as i64)
                .collect();
            round_trip(&v, Base::Min);
        }
    }

    #[test]
    fn rejects_bad_exception_positions() {
        let mut enc = ColumnEncoder::default();
        let mut body = Vec::new();
        enc.encode(&[0, 0, 0, 1000], Base::Min, &mut body);
        // Width 0, base 0, one exception at position 4 of 4 values.
        let bad = [0u8, 0, 1, 4, 1];
        assert!(matches!(
            decode(&bad, &mut [0; 4]),
            Err(PayloadError::ExceptionPosition { .. })
        ));
        assert!(matches!(
            decode(&[65u8, 0], &mut [0; 4]),
            Err(PayloadError::BadWidth(65))
        ));
        assert_eq!(
            decode(&body[..body.len() - 1], &mut [0; 4]),
            Err(PayloadError::Truncated)
        );
    }
}
