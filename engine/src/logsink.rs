//! Moving finished log blocks to the file without doing file I/O on the request path.
//!
//! The `formats` writer hands each finished block to a [`QueueSink`], which copies it into a recycled
//! buffer and queues it. The core's loop takes the queue a few times a second and hands it to its
//! backend's file writes (`event_loop/log.rs`), then returns the buffers for reuse. Neither side
//! allocates once the pool has warmed up.

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
