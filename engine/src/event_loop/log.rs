//! The core's sample log: finished blocks handed to the backend a few times a second, off the request
//! path (io_uring writes them asynchronously, epoll with `pwrite`), and whatever is left written
//! directly when the loop is over. A write error stops the run: load that is not recorded is wasted
//! on the target, and everything written before stays readable, because blocks are written whole and
//! in order.

use std::os::unix::fs::FileExt;

use crate::logsink::QueueSink;

use super::backend::Backend;

/// Writes finished log blocks to the file through the ring; `error` gets the first failure.
pub(super) struct LogOut {
    pub file: std::fs::File,
    pub offset: u64,
    pub sink: QueueSink,
    pub scratch: Vec<Vec<u8>>,
    /// Finished writes taken back from the backend.
    pub done: Vec<(Vec<u8>, i32, u64)>,
    pub error: Option<String>,
    pub path: std::path::PathBuf,
}

impl LogOut {
    /// Takes back finished writes and hands the pending blocks to the ring.
    pub fn drain<B: Backend>(&mut self, io: &mut B) {
        self.collect(io);
        if self.error.is_some() {
            return;
        }
        self.sink.take_pending(&mut self.scratch);
        for buf in self.scratch.drain(..) {
            let len = buf.len() as u64;
            if let Err(e) = io.write_file(&self.file, buf, self.offset) {
                self.error = Some(format!("cannot write {}: {e}", self.path.display()));
                return;
            }
            self.offset += len;
        }
    }

    /// Takes back finished writes, noting the first failure. A short write (a file about to hit a
    /// size limit or a full disk) is continued, so that the error, if any, is the system's own.
    pub fn collect<B: Backend>(&mut self, io: &mut B) {
        let mut back = Vec::new();
        io.take_written(&mut self.done);
        let mut finished = std::mem::take(&mut self.done);
        for (mut buf, res, offset) in finished.drain(..) {
            if res < 0 {
                if self.error.is_none() {
                    let e = std::io::Error::from_raw_os_error(-res);
                    self.error = Some(format!(
                        "cannot write {}: {e}; the run stopped here, and the log keeps every block written before",
                        self.path.display()
                    ));
                }
            } else if (res as usize) < buf.len() && self.error.is_none() {
                let done = res as usize;
                buf.drain(..done);
                if let Err(e) = io.write_file(&self.file, buf, offset + done as u64) {
                    self.error = Some(format!("cannot write {}: {e}", self.path.display()));
                }
                continue;
            }
            back.push(buf);
        }
        self.done = finished;
        self.sink.recycle(&mut back);
    }

    /// Writes whatever is still queued, synchronously (the loop is over), and syncs the file.
    pub fn finish(&mut self) {
        if self.error.is_some() {
            return;
        }
        self.sink.take_pending(&mut self.scratch);
        for buf in self.scratch.drain(..) {
            if let Err(e) = self.file.write_all_at(&buf, self.offset) {
                self.error = Some(format!("cannot write {}: {e}", self.path.display()));
                return;
            }
            self.offset += buf.len() as u64;
        }
        if let Err(e) = self.file.sync_data() {
            self.error = Some(format!("closing {}: {e}", self.path.display()));
        }
    }
}
