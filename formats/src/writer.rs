//! The log writer: buffers samples into blocks and hands finished bytes to a sink. It does no I/O.

use std::collections::HashMap;
use std::convert::Infallible;
use std::num::NonZeroU32;

use crate::block::{self, BlockKind};
use crate::header::LogHeader;
use crate::records::{self, EndOfLog, IntervalStats, LoadChange};
use crate::sample::{MessageId, NameId, Sample};
use crate::samples::{BlockBuilder, MAX_NAME_ID};
use crate::tables::{self, MAX_STRING_LEN};
use crate::tasks::{self, MAX_TASK_ID, TaskInfo};

/// The most distinct messages a log keeps; later new messages share one overflow message.
pub const MAX_MESSAGES: u32 = 65_535;

/// The message used once [`MAX_MESSAGES`] distinct messages have been interned.
pub const MESSAGE_OVERFLOW: &str = "(too many distinct failure messages; later ones are not kept)";

/// The name used once [`MAX_NAME_ID`] + 1 distinct names have been interned.
pub const NAME_OVERFLOW: &str = "(too many distinct request names; group them with `name`)";

/// Where finished bytes go: the header first, then whole blocks, in order.
///
/// The engine's sink queues the bytes for an io_uring write on its own core; tests use a `Vec<u8>`.
pub trait BlockSink {
    /// Why a write failed.
    type Error;
    /// Appends `bytes` to the log. On error the writer keeps no copy: the caller decides what to do.
    fn write(&mut self, bytes: &[u8]) -> Result<(), Self::Error>;
}

impl BlockSink for Vec<u8> {
    type Error = Infallible;
    fn write(&mut self, bytes: &[u8]) -> Result<(), Infallible> {
        self.extend_from_slice(bytes);
        Ok(())
    }
}

/// A sink over anything that implements [`std::io::Write`] (files in tools and tests).
#[derive(Debug)]
pub struct IoSink<W>(pub W);

impl<W: std::io::Write> BlockSink for IoSink<W> {
    type Error = std::io::Error;
    fn write(&mut self, bytes: &[u8]) -> Result<(), std::io::Error> {
        self.0.write_all(bytes)
    }
}

/// Writes one sample log.
///
/// Samples accumulate in a block of at most [`crate::samples::MAX_BLOCK_SAMPLES`]; the block is encoded and handed to
/// the sink when it is full or on [`LogWriter::flush`]. Once the buffers have grown to a block's size,
/// pushing samples allocates nothing.
#[derive(Debug)]
pub struct LogWriter<S: BlockSink> {
    sink: S,
    block: BlockBuilder,
    frame: Vec<u8>,
    names: Interner,
    messages: Interner,
    /// Task-table entries defined and not yet written.
    tasks: Vec<TaskInfo>,
    intervals: Vec<IntervalStats>,
    load_changes: Vec<LoadChange>,
    samples_written: u64,
    blocks_written: u64,
    bytes_written: u64,
}

#[derive(Debug, Default)]
struct Interner {
    ids: HashMap<Box<str>, u32>,
    unwritten: Vec<(u32, String)>,
}

impl Interner {
    /// The id of `text`, assigning the next free id from `first` on. Id `max` is kept for `overflow`,
    /// which every new string shares once the others are used up.
    fn intern(&mut self, text: &str, first: u32, max: u32, overflow: &str) -> u32 {
        let text = tables::truncate(text, MAX_STRING_LEN);
        if let Some(&id) = self.ids.get(text) {
            return id;
        }
        let next = first + self.ids.len() as u32;
        if next == max {
            // The last id is reserved for the overflow entry, shared by everything after it.
            return self.intern_new(overflow, next);
        }
        if next > max {
            return max;
        }
        self.intern_new(text, next)
    }

    fn intern_new(&mut self, text: &str, id: u32) -> u32 {
        self.ids.insert(text.into(), id);
        self.unwritten.push((id, text.to_owned()));
        id
    }
}

impl<S: BlockSink> LogWriter<S> {
    /// Starts a log: writes the header to `sink`.
    pub fn new(header: &LogHeader, mut sink: S) -> Result<Self, S::Error> {
        sink.write(&header.encode())?;
        Ok(LogWriter {
            sink,
            block: BlockBuilder::default(),
            frame: Vec::with_capacity(64 << 10),
            names: Interner::default(),
            messages: Interner::default(),
            tasks: Vec::new(),
            intervals: Vec::new(),
            load_changes: Vec::new(),
            samples_written: 0,
            blocks_written: 0,
            bytes_written: crate::header::HEADER_LEN as u64,
        })
    }

    /// The id for a request name, interning it on first use. Intern names when a plan is built, not per
    /// request. Names longer than 1 KiB are cut; past 65,536 names every new one shares an overflow id.
    pub fn intern_name(&mut self, name: &str) -> NameId {
        NameId(self.names.intern(name, 0, MAX_NAME_ID, NAME_OVERFLOW))
    }

    /// The id for a failure message, interning it on first use. Past [`MAX_MESSAGES`] distinct messages
    /// every new one shares an overflow id.
    pub fn intern_message(&mut self, message: &str) -> MessageId {
        let id = self
            .messages
            .intern(message, 1, MAX_MESSAGES, MESSAGE_OVERFLOW);
        MessageId(NonZeroU32::new(id).expect("message ids start at 1"))
    }

    /// Defines a task-table entry (v1.2): what samples whose `task` is `task.id` were made for. It is
    /// written before the next samples block, so define the tasks when a plan is built. Ids must be
    /// 1..=65535; an entry with another id is ignored, and samples naming an id above 65535 are
    /// stored with task 0.
    pub fn define_task(&mut self, task: TaskInfo) {
        if (1..=MAX_TASK_ID).contains(&task.id) {
            self.tasks.push(task);
        }
    }

    /// Sets how many samples close a block (1..=8192, default 8192). Encoding a block takes the core
    /// roughly 30 ns per sample, so smaller blocks make shorter pauses in the engine's event loop at a
    /// small cost in size (about 0.1 byte per sample at 1024).
    pub fn set_block_samples(&mut self, samples: usize) {
        self.block.set_capacity(samples);
    }

    /// Adds one sample; writes a block when one fills up.
    ///
    /// A `ttfb_us` above `latency_us` is lowered to it, since the first byte cannot arrive after the
    /// last; a `tls_us` above `connect_us` likewise, since the handshake is part of the connect time.
    #[inline]
    pub fn push(&mut self, mut sample: Sample) -> Result<(), S::Error> {
        if sample.ttfb_us > sample.latency_us {
            sample.ttfb_us = sample.latency_us;
        }
        if sample.tls_us > sample.connect_us {
            sample.tls_us = sample.connect_us;
        }
        if sample.task > MAX_TASK_ID {
            sample.task = 0;
        }
        if self.block.push(&sample) {
            self.write_samples()?;
        }
        Ok(())
    }

    /// Adds one interval's counters; they are written with the next flush.
    pub fn push_interval(&mut self, stats: IntervalStats) {
        self.intervals.push(stats);
    }

    /// Adds a change of the load (v1.2); it is written with the next flush.
    pub fn push_load_change(&mut self, change: LoadChange) {
        self.load_changes.push(change);
    }

    /// Writes everything buffered: new table entries, the open samples block, interval counters and
    /// load changes.
    /// The engine calls this once a second, so a crash loses at most about a second of samples.
    pub fn flush(&mut self) -> Result<(), S::Error> {
        self.write_samples()?;
        if !self.intervals.is_empty() {
            block::begin(&mut self.frame, BlockKind::Intervals);
            records::encode_intervals(&self.intervals, &mut self.frame);
            self.intervals.clear();
            self.emit()?;
        }
        if !self.load_changes.is_empty() {
            block::begin(&mut self.frame, BlockKind::LoadChanges);
            records::encode_load_changes(&self.load_changes, &mut self.frame);
            self.load_changes.clear();
            self.emit()?;
        }
        Ok(())
    }

    /// Flushes, writes the end-of-file block and returns the sink.
    pub fn finish(mut self) -> Result<S, S::Error> {
        self.flush()?;
        let end = EndOfLog {
            samples: self.samples_written,
            blocks: self.blocks_written,
        };
        block::begin(&mut self.frame, BlockKind::End);
        records::encode_end(&end, &mut self.frame);
        self.emit()?;
        Ok(self.sink)
    }

    /// Samples handed to the sink so far (not counting those still buffered).
    pub fn samples_written(&self) -> u64 {
        self.samples_written
    }

    /// Samples buffered in the open block.
    pub fn samples_buffered(&self) -> usize {
        self.block.len()
    }

    /// Bytes handed to the sink so far, header included.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// The sink.
    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// The sink, mutably (for example to collect what it queued).
    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    fn write_samples(&mut self) -> Result<(), S::Error> {
        // Table entries go first: a samples block only refers to ids defined before it.
        for kind in [BlockKind::Names, BlockKind::Messages] {
            let interner = if kind == BlockKind::Names {
                &mut self.names
            } else {
                &mut self.messages
            };
            if interner.unwritten.is_empty() {
                continue;
            }
            block::begin(&mut self.frame, kind);
            tables::encode(&interner.unwritten, &mut self.frame);
            interner.unwritten.clear();
            self.emit()?;
        }
        if !self.tasks.is_empty() {
            block::begin(&mut self.frame, BlockKind::TaskTable);
            tasks::encode(&self.tasks, &mut self.frame);
            self.tasks.clear();
            self.emit()?;
        }
        if self.block.len() == 0 {
            return Ok(());
        }
        self.samples_written += self.block.len() as u64;
        block::begin(&mut self.frame, BlockKind::Samples);
        self.block.encode(&mut self.frame);
        self.emit()?;
        // v1.1: the extra columns follow their samples block at once, and only when not all zero.
        if !self.block.extras_payload().is_empty() {
            block::begin(&mut self.frame, BlockKind::SampleExtras);
            self.frame.extend_from_slice(self.block.extras_payload());
            self.emit()?;
        }
        Ok(())
    }

    fn emit(&mut self) -> Result<(), S::Error> {
        block::finish(&mut self.frame);
        let result = self.sink.write(&self.frame);
        self.bytes_written += self.frame.len() as u64;
        self.blocks_written += 1;
        self.frame.clear();
        result
    }
}
