//! The payload of a samples block: twelve columns, each a transformed residual stream (see
//! the crate's `column` module).
//!
//! ```text
//! count  varint                 number of samples, 1..=MAX_BLOCK_SAMPLES
//! 12 × (length varint, column)  in the order of COLUMNS below
//! ```
//!
//! Each column stores a residual chosen so that typical traffic gives small numbers:
//!
//! | # | column         | residual r\[i\]                                                  |
//! |---|----------------|------------------------------------------------------------------|
//! | 0 | name           | name id                                                          |
//! | 1 | end            | end\[i\] − end\[i−1\], end = actual + latency, end\[−1\] = 0     |
//! | 2 | lag            | actual − intended                                                |
//! | 3 | latency        | latency                                                          |
//! | 4 | connect        | connect                                                          |
//! | 5 | ttfb           | 0 if ttfb = 0, else latency − ttfb + 1                           |
//! | 6 | status         | status                                                           |
//! | 7 | outcome        | outcome code                                                     |
//! | 8 | message        | message id (0: none)                                             |
//! | 9 | bytes_sent     | bytes_sent − the previous bytes_sent of the same name in this block (0 before the first) |
//! | 10| bytes_received | likewise for bytes_received                                      |
//! | 11| user           | user id                                                          |
//!
//! Samples are appended when requests complete, so `end` grows almost monotonically and its deltas are
//! the gaps between completions, while the intended start (which concurrency reorders) is derived.
//! Arithmetic on `end`, `lag` and starts wraps modulo 2^64, so every `u64` round-trips.
//!
//! ## v1.1 addition: the sample-extras block
//!
//! Columns added after v1.0 go in a separate block of kind 6 ([`crate::BlockKind::SampleExtras`])
//! written right after the samples block they belong to, so a v1.0 reader (which skips unknown kinds)
//! still reads every sample:
//!
//! ```text
//! count    varint                 number of samples: the same n as the samples block before it
//! columns  varint                 number of extra columns that follow (1 in v1.1, 3 in v1.2)
//! columns × (length varint, column)
//! ```
//!
//! | # | column          | residual r\[i\]                                                     | since |
//! |---|-----------------|-------------------------------------------------------------------|-------|
//! | 0 | tls             | the TLS handshake's part of connect, µs; 0 without a handshake    | v1.1  |
//! | 1 | task            | the task id ([`crate::tasks`]); 0 for none                          | v1.2  |
//! | 2 | iteration start | 1 for the first request of an iteration, else 0                   | v1.2  |
//!
//! A later minor version appends columns; a reader decodes the columns it knows and skips the rest by
//! their lengths, and reads the columns a block does not have as zeros. The writer leaves the block
//! out when every extra column of the block is 0 (plain HTTP without task ids, as a v1.1 writer
//! did), and a reader reads a missing block as zeros, so v1.0 and v1.1 logs read as they always did.
//! A v1.2 writer that knows tasks writes the block for every samples block; the task column is
//! nearly constant within a user's burst of requests and the flag is mostly 0, so both cost well
//! under a byte per sample.

use crate::column::{self, Base, ColumnEncoder};
use crate::error::PayloadError;
use crate::sample::{Sample, SampleColumns};

use crate::varint::{self, Cursor};

/// The most samples one block may hold. Writers close a block here or when flushed.
pub const MAX_BLOCK_SAMPLES: usize = 8192;

/// The largest name id the format accepts (ids are dense, so this bounds decoder memory).
pub const MAX_NAME_ID: u32 = 65_535;

const COLUMNS: usize = 12;

/// The extra columns this build writes and reads in a sample-extras block (v1.1: tls; v1.2: task,
/// iteration start).
const EXTRA_COLUMNS: usize = 3;

/// The most extra columns a reader accepts in one block (bounds the work a hostile block can ask for).
const MAX_EXTRA_COLUMNS: usize = 64;

/// Column indexes, in stored order.
mod col {
    pub const NAME: usize = 0;
    pub const END: usize = 1;
    pub const LAG: usize = 2;
    pub const LATENCY: usize = 3;
    pub const CONNECT: usize = 4;
    pub const TTFB: usize = 5;
    pub const STATUS: usize = 6;
    pub const OUTCOME: usize = 7;
    pub const MESSAGE: usize = 8;
    pub const SENT: usize = 9;
    pub const RECEIVED: usize = 10;
    pub const USER: usize = 11;
}

/// How the encoder picks each column's base (see [`Base`]).
const BASES: [Base; COLUMNS] = [
    Base::Min,  // name
    Base::Min,  // end
    Base::Min,  // lag
    Base::Min,  // latency
    Base::Mode, // connect
    Base::Mode, // ttfb
    Base::Mode, // status
    Base::Mode, // outcome
    Base::Mode, // message
    Base::Mode, // bytes_sent
    Base::Mode, // bytes_received
    Base::Min,  // user
];

/// The length of each residual array in [`BlockBuilder`]: a block plus 24 values, so that the twelve
/// arrays start 192 bytes apart modulo 4 KiB. With exactly 64 KiB between them, the twelve stores of a
/// push would all have the same address bits below 4 KiB, and the CPU's memory disambiguation would
/// stall on false load/store conflicts ("4K aliasing").
const STRIDE: usize = MAX_BLOCK_SAMPLES + 24;

/// Collects one block's residuals column by column as samples arrive, then encodes them.
///
/// Pushing computes the residuals straight into twelve fixed arrays, so a push is a few stores and the
/// encoder reads each column contiguously.
#[derive(Debug)]
pub(crate) struct BlockBuilder {
    residuals: Box<[[i64; STRIDE]; COLUMNS]>,
    len: usize,
    /// The block closes at this many samples (at most MAX_BLOCK_SAMPLES).
    capacity: usize,
    prev_end: u64,
    /// The last bytes sent and received per name id in this block.
    last_bytes: Vec<(u32, u32)>,
    /// (index in the block, TLS µs) of the samples that did a TLS handshake: few, since only requests
    /// that open a connection do one, so pushing stays one predictable branch for the rest.
    tls: Vec<(u32, u32)>,
    /// The dense extra column for encoding, built only for blocks with a handshake.
    extra: Vec<i64>,
    /// The task id and the iteration-start flag of each sample (v1.2), dense: most samples carry a
    /// task, so a sparse list would cost more than two stores.
    tasks: Box<[[i64; STRIDE]; 2]>,
    /// The OR of every task id and flag in the open block: 0 when the block needs no task columns.
    tasks_any: u32,
    /// The sample-extras payload of the block last encoded; empty when it has no extras.
    extras_payload: Vec<u8>,
    columns: ColumnEncoder,
    body: Vec<u8>,
}

impl Default for BlockBuilder {
    fn default() -> Self {
        let residuals: Box<[[i64; STRIDE]; COLUMNS]> = vec![[0i64; STRIDE]; COLUMNS]
            .into_boxed_slice()
            .try_into()
            .expect("COLUMNS arrays");
        BlockBuilder {
            residuals,
            len: 0,
            capacity: MAX_BLOCK_SAMPLES,
            prev_end: 0,
            last_bytes: Vec::new(),
            tls: Vec::with_capacity(MAX_BLOCK_SAMPLES),
            extra: Vec::with_capacity(MAX_BLOCK_SAMPLES),
            tasks: vec![[0i64; STRIDE]; 2]
                .into_boxed_slice()
                .try_into()
                .expect("two arrays"),
            tasks_any: 0,
            extras_payload: Vec::with_capacity(4 * MAX_BLOCK_SAMPLES + 64),
            columns: ColumnEncoder::default(),
            body: Vec::with_capacity(8 * MAX_BLOCK_SAMPLES + 64),
        }
    }
}

impl BlockBuilder {
    /// Samples collected in the open block.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Adds a sample whose `ttfb_us` is at most its `latency_us` and whose `tls_us` is at most its
    /// `connect_us`. Returns `true` when the block is full.
    #[inline]
    pub(crate) fn push(&mut self, s: &Sample) -> bool {
        // The mask keeps the index provably in bounds; `len` never reaches MAX_BLOCK_SAMPLES here
        // because the caller encodes a full block before pushing again.
        let i = self.len & (MAX_BLOCK_SAMPLES - 1);
        let end = s.actual_us.wrapping_add(u64::from(s.latency_us));
        let name = s.name.0 as usize;
        if name >= self.last_bytes.len() {
            self.last_bytes.resize(name + 1, (0, 0));
        }
        let (sent, received) =
            std::mem::replace(&mut self.last_bytes[name], (s.bytes_sent, s.bytes_received));
        let r = &mut self.residuals;
        r[col::NAME][i] = i64::from(s.name.0);
        r[col::END][i] = end.wrapping_sub(self.prev_end) as i64;
        r[col::LAG][i] = s.actual_us.wrapping_sub(s.intended_us) as i64;
        r[col::LATENCY][i] = i64::from(s.latency_us);
        r[col::CONNECT][i] = i64::from(s.connect_us);
        r[col::TTFB][i] = ttfb_residual(s.latency_us, s.ttfb_us);
        r[col::STATUS][i] = i64::from(s.status);
        r[col::OUTCOME][i] = i64::from(s.outcome.code());
        r[col::MESSAGE][i] = i64::from(s.message.map_or(0, |m| m.get()));
        r[col::SENT][i] = i64::from(s.bytes_sent) - i64::from(sent);
        r[col::RECEIVED][i] = i64::from(s.bytes_received) - i64::from(received);
        r[col::USER][i] = i64::from(s.user);
        if s.tls_us != 0 {
            self.tls.push((i as u32, s.tls_us));
        }
        let flag = u32::from(s.iteration_start);
        self.tasks[0][i] = i64::from(s.task);
        self.tasks[1][i] = i64::from(flag);
        self.tasks_any |= s.task | flag;
        self.prev_end = end;
        self.len += 1;
        self.len >= self.capacity
    }

    /// Sets the number of samples at which a block closes, clamped to 1..=MAX_BLOCK_SAMPLES.
    pub(crate) fn set_capacity(&mut self, samples: usize) {
        self.capacity = samples.clamp(1, MAX_BLOCK_SAMPLES);
    }

    /// Appends the payload for the collected samples (at least one) to `out`, prepares the block's
    /// sample-extras payload ([`BlockBuilder::extras_payload`]) and starts a new block.
    pub(crate) fn encode(&mut self, out: &mut Vec<u8>) {
        let n = self.len;
        debug_assert!(n > 0);
        varint::put(out, n as u64);
        for (c, base) in BASES.iter().enumerate() {
            self.body.clear();
            self.columns
                .encode(&self.residuals[c][..n], *base, &mut self.body);
            varint::put(out, self.body.len() as u64);
            out.extend_from_slice(&self.body);
        }
        self.encode_extras(n);
        self.len = 0;
        self.prev_end = 0;
        self.last_bytes.clear();
    }

    /// The sample-extras payload of the block last encoded, or empty when every extra column of that
    /// block is 0 (then no extras block is written).
    pub(crate) fn extras_payload(&self) -> &[u8] {
        &self.extras_payload
    }

    fn encode_extras(&mut self, n: usize) {
        self.extras_payload.clear();
        let tasks = std::mem::take(&mut self.tasks_any) != 0;
        if self.tls.is_empty() && !tasks {
            return;
        }
        self.extra.clear();
        self.extra.resize(n, 0);
        for &(i, tls) in &self.tls {
            self.extra[i as usize] = i64::from(tls);
        }
        self.tls.clear();
        let out = &mut self.extras_payload;
        varint::put(out, n as u64);
        // Without task ids the block is what a v1.1 writer wrote: the TLS column alone.
        let columns = if tasks { EXTRA_COLUMNS } else { 1 };
        varint::put(out, columns as u64);
        let [task, flag] = &*self.tasks;
        // TLS times are mostly 0 with rare departures; task ids are a few small values in runs and
        // the flag is 0 or 1, which a narrow width above zero stores best.
        for (c, base) in [
            (&self.extra[..], Base::Mode),
            (&task[..n], Base::Zero),
            (&flag[..n], Base::Zero),
        ]
        .into_iter()
        .take(columns)
        {
            self.body.clear();
            self.columns.encode(c, base, &mut self.body);
            varint::put(out, self.body.len() as u64);
            out.extend_from_slice(&self.body);
        }
    }
}

/// The stored ttfb residual; the writer has already ensured `ttfb <= latency`.
fn ttfb_residual(latency: u32, ttfb: u32) -> i64 {
    if ttfb == 0 {
        0
    } else {
        i64::from(latency) - i64::from(ttfb) + 1
    }
}

/// Decodes samples payloads into columns, reusing its buffers.
#[derive(Debug, Default)]
pub(crate) struct SamplesDecoder {
    /// One residual buffer per column, as long as the largest block seen; a block uses the first `n`.
    columns: [Vec<u64>; COLUMNS],
    last_bytes: Vec<u64>,
    /// The same for the extra columns of a sample-extras block.
    extras: [Vec<u64>; EXTRA_COLUMNS],
}

impl SamplesDecoder {
    /// Decodes one payload and appends its samples to `out`. On error `out` is left unchanged.
    pub(crate) fn decode(
        &mut self,
        payload: &[u8],
        out: &mut SampleColumns,
    ) -> Result<usize, PayloadError> {
        let mut cur = Cursor::new(payload);
        let n = cur.length(MAX_BLOCK_SAMPLES)?;
        for col in self.columns.iter_mut() {
            if col.len() < n {
                col.resize(n, 0);
            }
            let len = cur.length(cur.remaining())?;
            column::decode(cur.take(len)?, &mut col[..n])?;
        }
        if cur.remaining() != 0 {
            return Err(PayloadError::TrailingBytes {
                bytes: cur.remaining() as u64,
            });
        }
        let [
            name,
            end,
            lag,
            latency,
            connect,
            ttfb,
            status,
            outcome,
            message,
            sent,
            received,
            user,
        ] = self.columns.each_mut().map(|c| &mut c[..n]);

        // Check every narrow column before touching `out`, so a bad block adds nothing.
        fits(name, u64::from(MAX_NAME_ID), "name")?;
        fits(latency, u64::from(u32::MAX), "latency")?;
        fits(connect, u64::from(u32::MAX), "connect")?;
        fits(status, u64::from(u16::MAX), "status")?;
        fits(outcome, u64::from(u8::MAX), "outcome")?;
        fits(message, u64::from(u32::MAX), "message")?;
        fits(user, u64::from(u32::MAX), "user")?;
        if ttfb.iter().zip(latency.iter()).any(|(&r, &l)| r > l + 1) {
            return Err(PayloadError::ValueOutOfRange { column: "ttfb" });
        }
        undelta_bytes(&mut self.last_bytes, name, sent, "bytes_sent")?;
        undelta_bytes(&mut self.last_bytes, name, received, "bytes_received")?;

        out.name.extend(name.iter().map(|&v| v as u32));
        let mut prev_end = 0u64;
        out.actual_us
            .extend(end.iter().zip(latency.iter()).map(|(&delta, &latency)| {
                prev_end = prev_end.wrapping_add(delta);
                prev_end.wrapping_sub(latency)
            }));
        let actual = &out.actual_us[out.actual_us.len() - n..];
        out.intended_us.extend(
            actual
                .iter()
                .zip(lag.iter())
                .map(|(&a, &lag)| a.wrapping_sub(lag)),
        );
        out.latency_us.extend(latency.iter().map(|&v| v as u32));
        out.connect_us.extend(connect.iter().map(|&v| v as u32));
        // Filled in by a sample-extras block when one follows; 0 otherwise (v1.0 logs, plain HTTP).
        out.tls_us.resize(out.tls_us.len() + n, 0);
        out.task.resize(out.task.len() + n, 0);
        out.iteration_start.resize(out.iteration_start.len() + n, 0);
        out.ttfb_us.extend(
            ttfb.iter()
                .zip(latency.iter())
                .map(|(&r, &l)| if r == 0 { 0 } else { (l + 1 - r) as u32 }),
        );
        out.status.extend(status.iter().map(|&v| v as u16));
        out.outcome.extend(outcome.iter().map(|&v| v as u8));
        out.message.extend(message.iter().map(|&v| v as u32));
        out.bytes_sent.extend(sent.iter().map(|&v| v as u32));
        out.bytes_received
            .extend(received.iter().map(|&v| v as u32));
        out.user.extend(user.iter().map(|&v| v as u32));
        Ok(n)
    }

    /// Decodes a sample-extras payload for the `n` samples last appended to `out` by [`Self::decode`]
    /// and fills in their extra columns. On error `out` is left unchanged (the extras read as 0).
    pub(crate) fn decode_extras(
        &mut self,
        payload: &[u8],
        n: usize,
        out: &mut SampleColumns,
    ) -> Result<(), PayloadError> {
        let mut cur = Cursor::new(payload);
        let count = cur.length(MAX_BLOCK_SAMPLES)?;
        if count != n {
            return Err(PayloadError::ExtrasCount {
                extras: count as u64,
                samples: n as u64,
            });
        }
        let columns = cur.length(MAX_EXTRA_COLUMNS)?;
        for c in 0..columns {
            let len = cur.length(cur.remaining())?;
            let body = cur.take(len)?;
            // Columns from a later minor version are skipped by their length.
            if let Some(col) = self.extras.get_mut(c) {
                if col.len() < n {
                    col.resize(n, 0);
                }
                column::decode(body, &mut col[..n])?;
            }
        }
        if cur.remaining() != 0 {
            return Err(PayloadError::TrailingBytes {
                bytes: cur.remaining() as u64,
            });
        }
        let start = out.len() - n;
        // Check every known column before touching `out`, so a bad block changes nothing.
        let [tls, task, flag] = self.extras.each_ref().map(|c| &c[..n.min(c.len())]);
        if columns > 0 {
            let connect = &out.connect_us[start..];
            if tls.iter().zip(connect).any(|(&t, &c)| t > u64::from(c)) {
                return Err(PayloadError::ValueOutOfRange { column: "tls" });
            }
        }
        if columns > 1 {
            fits(task, u64::from(crate::tasks::MAX_TASK_ID), "task")?;
        }
        if columns > 2 {
            fits(flag, 1, "iteration start")?;
        }
        if columns > 0 {
            for (dst, &t) in out.tls_us[start..].iter_mut().zip(tls) {
                *dst = t as u32;
            }
        }
        if columns > 1 {
            for (dst, &t) in out.task[start..].iter_mut().zip(task) {
                *dst = t as u32;
            }
        }
        if columns > 2 {
            for (dst, &f) in out.iteration_start[start..].iter_mut().zip(flag) {
                *dst = f as u8;
            }
        }
        Ok(())
    }
}

/// Checks that every residual of an unsigned column is at most `max`, which is one less than a power of
/// two (so OR-ing the values, which vectorises, is enough).
fn fits(values: &[u64], max: u64, column: &'static str) -> Result<(), PayloadError> {
    debug_assert!(max.wrapping_add(1).is_power_of_two() || max == u64::MAX);
    if values.iter().fold(0, |acc, &v| acc | v) & !max == 0 {
        Ok(())
    } else {
        Err(PayloadError::ValueOutOfRange { column })
    }
}

/// Replaces per-name deltas with the byte counts they encode, checking each fits a `u32`. `name` has
/// been checked to hold ids up to MAX_NAME_ID.
fn undelta_bytes(
    last: &mut Vec<u64>,
    name: &[u64],
    values: &mut [u64],
    column: &'static str,
) -> Result<(), PayloadError> {
    last.clear();
    last.resize(name.iter().copied().fold(0, u64::max) as usize + 1, 0);
    let mut too_big = 0u64;
    for (&id, v) in name.iter().zip(values.iter_mut()) {
        let b = last[id as usize].wrapping_add(*v);
        too_big |= b >> 32;
        last[id as usize] = b;
        *v = b;
    }
    if too_big == 0 {
        Ok(())
    } else {
        Err(PayloadError::ValueOutOfRange { column })
    }
}
