//! Fixed-width bit packing, 64 values at a time.
//!
//! Values are laid out least significant bit first in one continuous bit stream: value `i` of width
//! `b` occupies bits `i·b .. (i+1)·b`, and bit `k` of the stream is bit `k % 8` of byte `k / 8`. Packing
//! 64 values of width `b` fills exactly `b` little-endian 64-bit words, so whole chunks are packed by a
//! routine specialised for each width (every shift is a constant) and only the last partial chunk is
//! padded.

/// Values per chunk.
pub(crate) const CHUNK: usize = 64;

// The unrolled bodies multiply by the literal 0 and 1, which is the point of unrolling.
#[allow(clippy::erasing_op, clippy::identity_op)]
#[inline(always)]
fn pack_chunk<const B: usize>(values: &[u64], words: &mut [u64; 64]) {
    let values: &[u64; CHUNK] = values[..CHUNK].try_into().expect("a chunk is 64 values");
    // Unrolled so that every word index and shift is a constant for each width.
    seq_macro::seq!(I in 0..64 {
        let bit = I * B;
        let (w, shift) = (bit / 64, bit % 64);
        // Each word is first written by the value that starts at its bit 0 or by the spill of the
        // value before; assigning there (rather than OR-ing into a cleared word) saves clearing.
        if shift == 0 {
            words[w] = values[I];
        } else {
            words[w] |= values[I] << shift;
        }
        if shift + B > 64 {
            words[w + 1] = values[I] >> (64 - shift);
        }
    });
}

#[allow(clippy::erasing_op, clippy::identity_op)]
#[inline(always)]
fn unpack_chunk<const B: usize>(words: &[u64; 64], out: &mut [u64]) {
    let out: &mut [u64; CHUNK] = (&mut out[..CHUNK])
        .try_into()
        .expect("a chunk is 64 values");
    let mask = if B == 64 { u64::MAX } else { (1u64 << B) - 1 };
    seq_macro::seq!(I in 0..64 {
        let bit = I * B;
        let (w, shift) = (bit / 64, bit % 64);
        let mut v = words[w] >> shift;
        if shift + B > 64 {
            v |= words[w + 1] << (64 - shift);
        }
        out[I] = v & mask;
    });
}

fn pack_with<const B: usize>(values: &[u64], out: &mut Vec<u8>) {
    let mut words = [0u64; 64];
    let mut chunks = values.chunks_exact(CHUNK);
    for chunk in &mut chunks {
        pack_chunk::<B>(chunk, &mut words);
        for w in &words[..B] {
            out.extend_from_slice(&w.to_le_bytes());
        }
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut padded = [0u64; CHUNK];
        padded[..rest.len()].copy_from_slice(rest);
        pack_chunk::<B>(&padded, &mut words);
        let bytes = (rest.len() * B).div_ceil(8);
        for (k, w) in words.iter().enumerate().take(bytes.div_ceil(8)) {
            let take = (bytes - k * 8).min(8);
            out.extend_from_slice(&w.to_le_bytes()[..take]);
        }
    }
}

fn unpack_with<const B: usize>(packed: &[u8], out: &mut [u64]) {
    let mut words = [0u64; 64];
    let chunk_bytes = B * 8;
    let full = out.len() / CHUNK;
    for (c, dst) in out.chunks_exact_mut(CHUNK).enumerate() {
        let src = &packed[c * chunk_bytes..(c + 1) * chunk_bytes];
        for (w, b) in words.iter_mut().zip(src.chunks_exact(8)) {
            *w = u64::from_le_bytes(b.try_into().expect("chunks of 8"));
        }
        unpack_chunk::<B>(&words, dst);
    }
    let rest = out.len() - full * CHUNK;
    if rest > 0 {
        let src = &packed[full * chunk_bytes..];
        words[..B].fill(0);
        for (k, b) in src.chunks(8).enumerate() {
            let mut eight = [0u8; 8];
            eight[..b.len()].copy_from_slice(b);
            words[k] = u64::from_le_bytes(eight);
        }
        let mut tmp = [0u64; CHUNK];
        unpack_chunk::<B>(&words, &mut tmp);
        out[full * CHUNK..].copy_from_slice(&tmp[..rest]);
    }
}

macro_rules! dispatch {
    ($width:expr, $f:ident $args:tt; $($b:literal)*) => {
        match $width {
            $($b => $f::<$b> $args,)*
            _ => unreachable!("widths are checked to be 1..=64 before dispatch"),
        }
    };
}

/// Appends `(values.len() * width).div_ceil(8)` bytes holding the low `width` bits of each value.
/// Every value must already fit in `width` bits; `width` is 1..=64.
pub(crate) fn pack(values: &[u64], width: u32, out: &mut Vec<u8>) {
    debug_assert!((1..=64).contains(&width));
    out.reserve((values.len() * width as usize).div_ceil(8) + 8);
    dispatch!(width, pack_with(values, out);
        1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32
        33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63 64);
}

/// Fills `out` with values of `width` bits from `packed`, which must hold exactly
/// `(out.len() * width).div_ceil(8)` bytes; `width` is 1..=64.
pub(crate) fn unpack(packed: &[u8], width: u32, out: &mut [u64]) {
    debug_assert!((1..=64).contains(&width));
    debug_assert_eq!(packed.len(), (out.len() * width as usize).div_ceil(8));
    dispatch!(width, unpack_with(packed, out);
        1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32
        33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63 64);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bit stream spelled out one bit at a time, as docs/format.md describes it.
    fn reference_pack(values: &[u64], width: u32) -> Vec<u8> {
        let mut out = vec![0u8; (values.len() * width as usize).div_ceil(8)];
        for (i, &v) in values.iter().enumerate() {
            for b in 0..width as usize {
                if v >> b & 1 == 1 {
                    let k = i * width as usize + b;
                    out[k / 8] |= 1 << (k % 8);
                }
            }
        }
        out
    }

    #[test]
    fn matches_the_bit_by_bit_layout_for_every_width_and_length() {
        for width in 1..=64u32 {
            let mask = if width == 64 {
                u64::MAX
            } else {
                (1 << width) - 1
            };
            for len in [0usize, 1, 7, 63, 64, 65, 130, 200] {
                let values: Vec<u64> = (0..len as u64)
                    .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(i as u32) & mask)
                    .collect();
                let mut packed = Vec::new();
                pack(&values, width, &mut packed);
                assert_eq!(
                    packed,
                    reference_pack(&values, width),
                    "width {width}, {len} values"
                );
                let mut back = vec![0u64; len];
                unpack(&packed, width, &mut back);
                assert_eq!(back, values, "width {width}, {len} values");
            }
        }
    }
}
