//! The log reader: walks the blocks of one log, decoding samples into columns.
//!
//! Damage never stops it. A block whose checksum fails is reported with its offset and the reader
//! resynchronises on the next sync marker that starts a valid block; a log that ends inside a block
//! (the writer was killed) yields every complete block and a [`DecodeErrorKind::TruncatedTail`].

use crate::block::{self, BlockKind, Frame, FrameDamage};
use crate::error::{DecodeError, DecodeErrorKind};
use crate::header::LogHeader;
use crate::records::{self, EndOfLog, IntervalStats, LoadChange};
use crate::sample::SampleColumns;
use crate::samples::{MAX_NAME_ID, SamplesDecoder};
use crate::tables::{self, Table};
use crate::tasks::{self, TaskTable};
use crate::writer::MAX_MESSAGES;

/// Reads one log held in memory, block by block.
///
/// Use [`LogReader::next_samples`] to stream samples a block at a time (bounded memory), or
/// [`read_log`] to get everything at once.
#[derive(Debug)]
pub struct LogReader<'a> {
    data: &'a [u8],
    pos: usize,
    header: LogHeader,
    decoder: SamplesDecoder,
    names: Table,
    messages: Table,
    tasks: TaskTable,
    intervals: Vec<IntervalStats>,
    load_changes: Vec<LoadChange>,
    end: Option<EndOfLog>,
    problems: Vec<DecodeError>,
    samples_read: u64,
    done: bool,
}

impl<'a> LogReader<'a> {
    /// Reads the header. Fails only when nothing in the file can be read.
    pub fn new(data: &'a [u8]) -> Result<Self, DecodeError> {
        let (header, len) = LogHeader::decode(data)?;
        Ok(LogReader {
            data,
            pos: len,
            header,
            decoder: SamplesDecoder::default(),
            names: Table::default(),
            messages: Table::default(),
            tasks: TaskTable::default(),
            intervals: Vec::new(),
            load_changes: Vec::new(),
            end: None,
            problems: Vec::new(),
            samples_read: 0,
            done: false,
        })
    }

    /// The log's header.
    pub fn header(&self) -> &LogHeader {
        &self.header
    }

    /// Request names defined so far.
    pub fn names(&self) -> &Table {
        &self.names
    }

    /// Failure messages defined so far.
    pub fn messages(&self) -> &Table {
        &self.messages
    }

    /// Task-table entries defined so far (v1.2; empty for older logs).
    pub fn tasks(&self) -> &TaskTable {
        &self.tasks
    }

    /// Interval counters read so far.
    pub fn intervals(&self) -> &[IntervalStats] {
        &self.intervals
    }

    /// Load changes read so far (v1.2), in file order.
    pub fn load_changes(&self) -> &[LoadChange] {
        &self.load_changes
    }

    /// The end-of-log block, once read; `None` for a log the writer never finished.
    pub fn end(&self) -> Option<&EndOfLog> {
        self.end.as_ref()
    }

    /// Damage and warnings found so far, in file order.
    pub fn problems(&self) -> &[DecodeError] {
        &self.problems
    }

    /// Samples decoded so far.
    pub fn samples_read(&self) -> u64 {
        self.samples_read
    }

    /// How many samples the rest of the log holds, read from the counts at the start of each samples
    /// block without decoding or checksumming anything; damage makes it an estimate. Use it to size
    /// columns before [`LogReader::read_to_end`].
    pub fn samples_hint(&self) -> usize {
        let mut at = self.pos;
        let mut total = 0usize;
        while let Some(frame) = self.data.get(at..at + block::FRAME_LEN) {
            if frame[..4] != block::SYNC {
                break;
            }
            let len = u32::from_le_bytes(frame[4..8].try_into().expect("4 bytes")) as usize;
            if frame[12] == BlockKind::Samples.code() {
                let payload = self.data.get(at + block::FRAME_LEN..).unwrap_or(&[]);
                total += crate::varint::Cursor::new(payload)
                    .length(crate::samples::MAX_BLOCK_SAMPLES)
                    .unwrap_or(0);
            }
            at += block::FRAME_LEN + len;
        }
        total
    }

    /// Reads blocks up to and including the next samples block, appending its samples to `out`.
    /// Returns the number of samples appended, or `None` at the end of the log.
    pub fn next_samples(&mut self, out: &mut SampleColumns) -> Option<usize> {
        while !self.done {
            if let Some(n) = self.step(out) {
                self.samples_read += n as u64;
                return Some(n);
            }
        }
        None
    }

    /// Reads every remaining block, appending all samples to `out`; returns how many were appended.
    pub fn read_to_end(&mut self, out: &mut SampleColumns) -> u64 {
        let before = self.samples_read;
        while self.next_samples(out).is_some() {}
        self.samples_read - before
    }

    fn problem(&mut self, offset: usize, kind: DecodeErrorKind) {
        self.problems.push(DecodeError {
            kind,
            offset: offset as u64,
        });
    }

    /// Handles one block (or one stretch of damage). Returns the count when it appended samples.
    fn step(&mut self, out: &mut SampleColumns) -> Option<usize> {
        let data = self.data;
        let at = self.pos;
        if at >= data.len() {
            if self.end.is_none() {
                self.problem(at, DecodeErrorKind::MissingEnd);
            }
            self.done = true;
            return None;
        }
        if self.end.is_some() {
            self.problem(
                at,
                DecodeErrorKind::DataAfterEnd {
                    bytes: (data.len() - at) as u64,
                },
            );
            self.done = true;
            return None;
        }
        match block::parse(&data[at..]) {
            Frame::Block { kind, payload, len } => {
                self.pos = at + len;
                let result = match kind {
                    BlockKind::Samples => match self.decoder.decode(payload, out) {
                        Ok(n) => {
                            self.attach_extras(out, n);
                            return Some(n);
                        }
                        Err(e) => Err(e),
                    },
                    BlockKind::Names => {
                        let names = &mut self.names;
                        tables::decode(payload, MAX_NAME_ID, |id, t| names.insert(id, t))
                    }
                    BlockKind::Messages => {
                        let messages = &mut self.messages;
                        tables::decode(payload, MAX_MESSAGES, |id, t| messages.insert(id, t))
                    }
                    BlockKind::TaskTable => tasks::decode(payload, &mut self.tasks),
                    BlockKind::Intervals => records::decode_intervals(payload, &mut self.intervals),
                    BlockKind::LoadChanges => {
                        records::decode_load_changes(payload, &mut self.load_changes)
                    }
                    BlockKind::End => records::decode_end(payload).map(|e| self.end = Some(e)),
                    // Extras whose samples block was damaged (and reported) have nothing to attach to.
                    BlockKind::SampleExtras | BlockKind::Unknown(_) => Ok(()),
                };
                if let Err(error) = result {
                    self.problem(at, DecodeErrorKind::Payload { block: kind, error });
                }
            }
            Frame::Incomplete => match self.resync(at + 1) {
                Some(next) => {
                    self.problem(
                        at,
                        DecodeErrorKind::Garbage {
                            bytes: (next - at) as u64,
                        },
                    );
                    self.pos = next;
                }
                None => {
                    self.problem(
                        at,
                        DecodeErrorKind::TruncatedTail {
                            bytes: (data.len() - at) as u64,
                        },
                    );
                    self.problem(data.len(), DecodeErrorKind::MissingEnd);
                    self.done = true;
                }
            },
            Frame::Damaged(damage) => {
                let kind = match damage {
                    FrameDamage::Checksum => DecodeErrorKind::BlockChecksum,
                    FrameDamage::Length(length) => DecodeErrorKind::BlockLength {
                        length,
                        max: block::MAX_BLOCK_LEN as u64,
                    },
                    FrameDamage::NoSync => DecodeErrorKind::Garbage { bytes: 0 },
                };
                let next = self.resync(at + 1);
                let kind = match (kind, next) {
                    (DecodeErrorKind::Garbage { .. }, Some(n)) => DecodeErrorKind::Garbage {
                        bytes: (n - at) as u64,
                    },
                    (DecodeErrorKind::Garbage { .. }, None) => DecodeErrorKind::Garbage {
                        bytes: (data.len() - at) as u64,
                    },
                    (k, _) => k,
                };
                self.problem(at, kind);
                match next {
                    Some(n) => self.pos = n,
                    None => {
                        self.problem(data.len(), DecodeErrorKind::MissingEnd);
                        self.done = true;
                    }
                }
            }
        }
        None
    }

    /// Reads the sample-extras block that follows the samples block just decoded (its `n` samples are
    /// the last in `out`), if there is an intact one. Without it the extra columns stay 0; a damaged
    /// one is left to the block loop, which reports it and resynchronises.
    fn attach_extras(&mut self, out: &mut SampleColumns, n: usize) {
        let at = self.pos;
        let Some(rest) = self.data.get(at..) else {
            return;
        };
        if let Frame::Block {
            kind: BlockKind::SampleExtras,
            payload,
            len,
        } = block::parse(rest)
        {
            self.pos = at + len;
            if let Err(error) = self.decoder.decode_extras(payload, n, out) {
                self.problem(
                    at,
                    DecodeErrorKind::Payload {
                        block: BlockKind::SampleExtras,
                        error,
                    },
                );
            }
        }
    }

    /// The next offset at or after `from` where a block with a valid checksum starts, or where an
    /// incomplete block runs to the end of the data.
    fn resync(&self, mut from: usize) -> Option<usize> {
        while let Some(at) = block::find_sync(self.data, from) {
            match block::parse(&self.data[at..]) {
                Frame::Block { .. } | Frame::Incomplete => return Some(at),
                Frame::Damaged(_) => from = at + 1,
            }
        }
        None
    }
}

/// Everything in one log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogContents {
    /// The header.
    pub header: LogHeader,
    /// Request names by id.
    pub names: Table,
    /// Failure messages by id.
    pub messages: Table,
    /// The task table by id (v1.2; empty for older logs).
    pub tasks: TaskTable,
    /// Every sample of every readable block, in file order.
    pub samples: SampleColumns,
    /// Interval counters, in file order.
    pub intervals: Vec<IntervalStats>,
    /// Changes of the load made while the run went (v1.2), in file order.
    pub load_changes: Vec<LoadChange>,
    /// The end-of-log block; `None` when the writer never finished the log.
    pub end: Option<EndOfLog>,
    /// Damage and warnings, in file order. Empty for a log that was written and closed cleanly.
    pub problems: Vec<DecodeError>,
}

/// Reads a whole log held in memory. Fails only when nothing in it can be read; damage inside is listed
/// in [`LogContents::problems`].
pub fn read_log(data: &[u8]) -> Result<LogContents, DecodeError> {
    let mut reader = LogReader::new(data)?;
    let mut samples = SampleColumns::with_capacity(reader.samples_hint());
    reader.read_to_end(&mut samples);
    let mut problems = std::mem::take(&mut reader.problems);
    problems.extend(unknown_ids(&samples.name, &reader.names, "name", |_| true));
    problems.extend(unknown_ids(
        &samples.message,
        &reader.messages,
        "message",
        |id| id != 0,
    ));
    problems.extend(unknown_task_ids(&samples.task, &reader.tasks));
    Ok(LogContents {
        header: reader.header,
        names: reader.names,
        messages: reader.messages,
        tasks: reader.tasks,
        samples,
        intervals: reader.intervals,
        load_changes: reader.load_changes,
        end: reader.end,
        problems,
    })
}

/// One problem per id that samples use but no table defines.
fn unknown_ids(
    ids: &[u32],
    table: &Table,
    what: &'static str,
    counts: impl Fn(u32) -> bool,
) -> Vec<DecodeError> {
    let mut seen = vec![false; table.id_bound()];
    let mut missing = std::collections::BTreeSet::new();
    for &id in ids {
        let i = id as usize;
        if i < seen.len() && seen[i] {
            continue;
        }
        if table.get(id).is_some() {
            seen[i] = true;
        } else if counts(id) {
            missing.insert(id);
        }
    }
    missing
        .into_iter()
        .map(|id| DecodeError {
            kind: DecodeErrorKind::UnknownId { what, id },
            offset: 0,
        })
        .collect()
}

/// One problem per task id that samples use but no task-table block defines (0 means "no task").
fn unknown_task_ids(ids: &[u32], table: &TaskTable) -> Vec<DecodeError> {
    let mut missing = std::collections::BTreeSet::new();
    for &id in ids {
        if id != 0 && table.get(id).is_none() {
            missing.insert(id);
        }
    }
    missing
        .into_iter()
        .map(|id| DecodeError {
            kind: DecodeErrorKind::UnknownId { what: "task", id },
            offset: 0,
        })
        .collect()
}
