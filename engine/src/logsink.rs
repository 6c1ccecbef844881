//! Moving finished log blocks to the file without doing file I/O on the request path.
//!
//! The `formats` writer hands each finished block to a [`QueueSink`], which copies it into a recycled
//! buffer and queues it. A file-writer task on the same core ([`drain_to_file`]) takes the queue a few
//! times a second and writes it with the runtime's asynchronous file I/O, then returns the buffers
//! for reuse. Neither side allocates once the pool has warmed up.

use std::cell::RefCell;
use std::convert::Infallible;
use std::rc::Rc;

use formats::BlockSink;

/// Buffers waiting to be written, and emptied ones waiting to be reused.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    pending: Vec<Vec<u8>>,
    free: Vec<Vec<u8>>,
}

/// The sink given to the core's `LogWriter`. Cloning shares the queue (single-threaded).
#[derive(Debug, Clone, Default)]
pub(crate) struct QueueSink(pub Rc<RefCell<Queue>>);

impl BlockSink for QueueSink {
    type Error = Infallible;
    fn write(&mut self, bytes: &[u8]) -> Result<(), Infallible> {
        let mut q = self.0.borrow_mut();
        let mut buf = q.free.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(bytes);
        q.pending.push(buf);
        Ok(())
    }
}

impl QueueSink {
    /// Takes every pending buffer, leaving `into` holding them in order.
    pub fn take_pending(&self, into: &mut Vec<Vec<u8>>) {
        let mut q = self.0.borrow_mut();
        into.append(&mut q.pending);
    }

    /// Returns written buffers to the pool.
    pub fn recycle(&self, used: &mut Vec<Vec<u8>>) {
        let mut q = self.0.borrow_mut();
        // Keep a bounded pool; a burst of blocks should not pin memory for the whole run.
        for buf in used.drain(..) {
            if q.free.len() < 16 {
                q.free.push(buf);
            }
        }
    }
}

/// An append-only log file written through the core's runtime.
#[derive(Debug)]
pub(crate) struct LogFile {
    file: monoio::fs::File,
    offset: u64,
}

impl LogFile {
    pub fn new(file: std::fs::File) -> std::io::Result<LogFile> {
        Ok(LogFile {
            file: monoio::fs::File::from_std(file)?,
            offset: 0,
        })
    }

    /// Writes every pending block of `sink`. Buffers come back to the pool whatever happens.
    pub async fn drain(
        &mut self,
        sink: &QueueSink,
        scratch: &mut Vec<Vec<u8>>,
    ) -> std::io::Result<()> {
        sink.take_pending(scratch);
        let mut result = Ok(());
        let mut written = Vec::with_capacity(0);
        for buf in scratch.drain(..) {
            if result.is_err() {
                written.push(buf);
                continue;
            }
            let len = buf.len() as u64;
            let (res, buf) = self.file.write_all_at(buf, self.offset).await;
            written.push(buf);
            match res {
                Ok(()) => self.offset += len,
                Err(e) => result = Err(e),
            }
        }
        sink.recycle(&mut written);
        result
    }

    pub async fn close(self) -> std::io::Result<()> {
        self.file.sync_data().await?;
        self.file.close().await
    }
}
