//! The core's sample log on the direct loop: finished blocks written through the ring a few times a
//! second, off the request path, and whatever is left written directly when the loop is over.

use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

use crate::logsink::QueueSink;

use super::ring::Ring;

/// Writes finished log blocks to the file through the ring; `error` gets the first failure.
pub(super) struct LogOut {
    pub file: std::fs::File,
    pub offset: u64,
    pub sink: QueueSink,
    pub scratch: Vec<Vec<u8>>,
    pub error: Option<String>,
    pub path: std::path::PathBuf,
}

impl LogOut {
    /// Takes back finished writes and hands the pending blocks to the ring.
    pub fn drain(&mut self, ring: &mut Ring) {
        self.collect(ring);
        if self.error.is_some() {
            return;
        }
        self.sink.take_pending(&mut self.scratch);
        for buf in self.scratch.drain(..) {
            let len = buf.len() as u64;
            if let Err(e) = ring.write(self.file.as_raw_fd(), buf, self.offset) {
                self.error = Some(format!("cannot write {}: {e}", self.path.display()));
                return;
            }
            self.offset += len;
        }
    }

    /// Takes back finished writes, noting the first failure. A short write (a file about to hit a
    /// size limit or a full disk) is continued, so that the error, if any, is the system's own.
    pub fn collect(&mut self, ring: &mut Ring) {
        let mut back = Vec::new();
        let finished: Vec<(Vec<u8>, i32, u64)> = ring.take_written().collect();
        for (mut buf, res, offset) in finished {
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
                if let Err(e) = ring.write(self.file.as_raw_fd(), buf, offset + done as u64) {
                    self.error = Some(format!("cannot write {}: {e}", self.path.display()));
                }
                continue;
            }
            back.push(buf);
        }
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
