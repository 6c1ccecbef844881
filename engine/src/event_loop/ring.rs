//! The engine's only module with `unsafe`: one io_uring instance, the memory it shares with the kernel
//! (a provided-buffer ring and its buffers, interned request bytes and addresses, send buffers and log
//! blocks in flight), and a safe API over them for the io_uring backend (`uring.rs`).
//!
//! The invariant every `unsafe` block below relies on: **memory handed to the kernel stays allocated,
//! and is not touched by us, until the kernel is known to be done with it.**
//!
//! - Request bytes are interned once ([`Ring::intern`]) and never mutated or freed while the ring exists.
//! - A send buffer ([`Ring::send_owned`]) is moved into the ring and owned by it until the send's
//!   completion, which hands it back ([`Cqe::owned`]); the caller cannot reach it in between.
//! - A provided buffer belongs to the kernel from the moment it is published in the buffer ring until a
//!   completion names it; it then belongs to the caller (a [`BufId`] token, which cannot be copied or
//!   forged: only [`Ring::reap`] creates one) until [`Ring::recycle`] publishes it again.
//! - A log block being written is owned by the ring until its write completes.
//! - Connect addresses are interned once ([`Ring::intern_addr`]), like request bytes.
//! - On drop, if any operation might still be in flight, the shared memory is leaked rather than
//!   freed: a leak at exit is harmless, a kernel write into freed memory is not.
#![allow(unsafe_code)]

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use io_uring::types::{BufRingEntry, Fd, Fixed, SubmitArgs, Timespec};
use io_uring::{IoUring, cqueue, opcode, squeue};
use nix::sys::socket::{SockaddrLike, SockaddrStorage};

/// User-data bit reserved for the ring's own operations (log writes).
const RING_OWNED: u64 = 1 << 63;
/// User-data bit of sends from a buffer the ring owns until they complete; the low bits are the slot.
const SEND_OWNED: u64 = 1 << 62;
/// The bits the caller may use.
pub const USER_BITS: u64 = (1 << 62) - 1;
/// The provided-buffer group id.
const BGID: u16 = 0;

/// A socket as operations name it: a registered (fixed) file slot or a plain descriptor.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    Fixed(u32),
    Fd(RawFd),
}

/// A provided buffer the kernel filled and handed to us. Not `Copy`/`Clone`: it is given back exactly
/// once, by [`Ring::recycle`].
#[derive(Debug)]
pub struct BufId(u16);

/// One completion, copied out of the completion queue.
#[derive(Debug)]
pub struct Cqe {
    pub user_data: u64,
    pub result: i32,
    /// The operation will post more completions (multishot).
    pub more: bool,
    /// The buffer the data went into, for receives with buffer selection.
    pub buf: Option<BufId>,
    /// The buffer of a finished [`Ring::send_owned`], handed back.
    pub owned: Option<Vec<u8>>,
}

/// Request bytes interned in the ring.
#[derive(Debug, Clone, Copy)]
pub struct ReqBytes(usize);

/// A target address interned in the ring.
#[derive(Debug, Clone, Copy)]
pub struct AddrId(usize);

/// The provided-buffer ring: `entries` descriptors (page-aligned, shared with the kernel) and
/// `entries` buffers of `buf_size` bytes each.
struct BufRing {
    ring: *mut BufRingEntry,
    ring_layout: Layout,
    bufs: *mut u8,
    bufs_layout: Layout,
    entries: u16,
    buf_size: u32,
    /// Our copy of the tail; published to the kernel by [`BufRing::publish`].
    tail: u16,
    published: u16,
    /// Whether the caller holds each buffer (a completion named it and it was not recycled yet).
    held: Vec<bool>,
}

impl BufRing {
    fn new(entries: u16, buf_size: u32) -> io::Result<BufRing> {
        assert!(entries.is_power_of_two() && entries <= 32768 && buf_size > 0);
        let ring_layout =
            Layout::from_size_align(usize::from(entries) * size_of::<BufRingEntry>(), 4096)
                .map_err(io::Error::other)?;
        let bufs_layout = Layout::from_size_align(usize::from(entries) * buf_size as usize, 4096)
            .map_err(io::Error::other)?;
        // SAFETY: both layouts have a non-zero size (entries >= 1 and buf_size >= 1, asserted above).
        // Null results are checked below.
        let (ring, bufs) = unsafe {
            (
                alloc_zeroed(ring_layout).cast::<BufRingEntry>(),
                alloc_zeroed(bufs_layout),
            )
        };
        if ring.is_null() || bufs.is_null() {
            return Err(io::Error::from(io::ErrorKind::OutOfMemory));
        }
        let mut br = BufRing {
            ring,
            ring_layout,
            bufs,
            bufs_layout,
            entries,
            buf_size,
            tail: 0,
            published: 0,
            held: vec![true; usize::from(entries)],
        };
        for bid in 0..entries {
            br.push(bid);
        }
        Ok(br)
    }

    /// Puts buffer `bid` back at our tail (not yet visible to the kernel).
    fn push(&mut self, bid: u16) {
        assert!(
            std::mem::replace(&mut self.held[usize::from(bid)], false),
            "buffer {bid} given back twice"
        );
        let slot = usize::from(self.tail & (self.entries - 1));
        // SAFETY: `slot < entries`, so the entry is inside the ring allocation. The kernel reads only
        // entries between its head and the published tail; this slot is at or past the published tail,
        // so the kernel is not reading it now (at most `entries` buffers exist, so the tail never laps
        // the head). The buffer address is inside `bufs`, which lives as long as the ring (see Drop).
        unsafe {
            let e = &mut *self.ring.add(slot);
            e.set_addr(self.bufs.add(usize::from(bid) * self.buf_size as usize) as u64);
            e.set_len(self.buf_size);
            e.set_bid(bid);
        }
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes every pushed buffer visible to the kernel (one release store per batch).
    fn publish(&mut self) {
        if self.published == self.tail {
            return;
        }
        // SAFETY: the tail field is the `resv` u16 of entry 0, inside the ring allocation, suitably
        // aligned for a u16; the kernel reads it concurrently, so it is written only atomically (the
        // release store orders the entry writes in `push` before it, as the ABI requires).
        unsafe {
            let tail = BufRingEntry::tail(self.ring).cast_mut();
            AtomicU16::from_ptr(tail).store(self.tail, Ordering::Release);
        }
        self.published = self.tail;
    }

    /// The first `len` bytes of buffer `bid`, which the caller holds.
    fn data(&self, bid: u16, len: usize) -> &[u8] {
        assert!(self.held[usize::from(bid)] && len <= self.buf_size as usize);
        // SAFETY: the buffer is inside `bufs`; the kernel wrote `len` bytes into it before posting the
        // completion that handed it to us (`held`), and does not touch it again until `push`
        // republishes it, which needs `&mut self` and so cannot overlap this borrow.
        unsafe {
            std::slice::from_raw_parts(
                self.bufs.add(usize::from(bid) * self.buf_size as usize),
                len,
            )
        }
    }
}

/// One io_uring instance and the memory it shares with the kernel.
pub struct Ring {
    // Field order matters for Drop: see `impl Drop`.
    ring: IoUring,
    bufs: Option<BufRing>,
    requests: Vec<Box<[u8]>>,
    /// Target addresses, boxed so that growing the list never moves one the kernel may be reading.
    #[allow(clippy::vec_box)]
    addrs: Vec<Box<SockaddrStorage>>,
    /// Log blocks being written and their file offsets, by slot; `None` for a free slot.
    writes: Vec<Option<(Vec<u8>, u64)>>,
    /// Send buffers in flight and their callers' user data, by slot; `None` for a free slot.
    sends: Vec<Option<(Vec<u8>, u64)>>,
    /// Free slots of `sends`.
    free_sends: Vec<u32>,
    /// Finished writes (buffer, result, offset), to be taken back by the caller.
    written: Vec<(Vec<u8>, i32, u64)>,
    /// Operations that will still post a completion.
    in_flight: usize,
    fixed_files: bool,
    timeout: Timespec,
    /// Whether the kernel takes a minimum wait in `io_uring_enter` (Linux 6.12+); cleared the first
    /// time it refuses one.
    min_wait: bool,
}

/// `struct io_uring_getevents_arg` as Linux 6.12 defines it: the io-uring crate's copy still calls
/// `min_wait_usec` a pad and has no setter for it.
#[repr(C)]
struct GeteventsArg {
    sigmask: u64,
    sigmask_sz: u32,
    min_wait_usec: u32,
    ts: u64,
}

/// `IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG`.
const ENTER_GETEVENTS_EXT_ARG: u32 = 1 | 8;

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

impl Ring {
    /// Sets up a ring with `entries` submission entries, `files` registered-file slots (0: none) and a
    /// provided-buffer ring of `buffers` buffers of `buf_size` bytes.
    ///
    /// The ring is `SINGLE_ISSUER | DEFER_TASKRUN` (kernel 6.1+): completions are processed in one
    /// batch when the thread waits for them (docs/io-drivers.md).
    pub fn new(entries: u32, files: u32, buffers: u16, buf_size: u32) -> io::Result<Ring> {
        let mut b = IoUring::builder();
        b.setup_single_issuer().setup_defer_taskrun();
        b.setup_cqsize(entries * 4);
        let ring = b.build(entries)?;
        // Registered files are an optimisation: a table larger than the descriptor limit allows is
        // refused (EMFILE), and the ring then uses plain descriptors.
        let fixed_files = files > 0 && ring.submitter().register_files_sparse(files).is_ok();
        let bufs = BufRing::new(buffers, buf_size)?;
        // SAFETY: the ring memory is page-aligned, `buffers` entries long, and stays allocated until
        // the ring is dropped (or is leaked), which is after the kernel last reads it (see Drop).
        unsafe {
            ring.submitter()
                .register_buf_ring(bufs.ring as u64, buffers, BGID)?;
        }
        let mut r = Ring {
            ring,
            bufs: Some(bufs),
            requests: Vec::new(),
            addrs: Vec::new(),
            writes: Vec::new(),
            sends: Vec::new(),
            free_sends: Vec::new(),
            written: Vec::new(),
            in_flight: 0,
            fixed_files,
            timeout: Timespec::new(),
            min_wait: true,
        };
        r.bufs_mut().publish();
        Ok(r)
    }

    pub fn fixed_files(&self) -> bool {
        self.fixed_files
    }

    fn bufs_mut(&mut self) -> &mut BufRing {
        self.bufs.as_mut().expect("buffer ring present until drop")
    }

    /// Keeps `bytes` for the ring's lifetime, for sends.
    pub fn intern(&mut self, bytes: Vec<u8>) -> ReqBytes {
        self.requests.push(bytes.into_boxed_slice());
        ReqBytes(self.requests.len() - 1)
    }

    /// Puts `fd` in registered-file slot `slot` (replacing what was there).
    pub fn register_file(&self, slot: u32, fd: RawFd) -> io::Result<()> {
        self.ring
            .submitter()
            .register_files_update(slot, &[fd])
            .map(drop)
    }

    fn push(&mut self, entry: squeue::Entry) -> io::Result<()> {
        // SAFETY: every entry built in this module points only at memory covered by the module
        // invariant (interned request bytes, ring-owned send and write buffers, interned connect
        // addresses), or at no memory at all (buffer-selecting receives, polls and cancels).
        unsafe {
            if self.ring.submission().push(&entry).is_err() {
                self.ring.submit()?;
                self.ring
                    .submission()
                    .push(&entry)
                    .map_err(|_| io::Error::other("submission queue full"))?;
            }
        }
        // Counted only once queued: an entry that never reached the queue posts no completion.
        self.in_flight += 1;
        Ok(())
    }

    fn fd_entry<F, B>(&self, t: Target, fixed: F, plain: B) -> squeue::Entry
    where
        F: FnOnce(Fixed) -> squeue::Entry,
        B: FnOnce(Fd) -> squeue::Entry,
    {
        match t {
            Target::Fixed(slot) => fixed(Fixed(slot)),
            Target::Fd(fd) => plain(Fd(fd)),
        }
    }

    /// Sends `req[offset..]`.
    pub fn send(
        &mut self,
        t: Target,
        req: ReqBytes,
        offset: usize,
        user_data: u64,
    ) -> io::Result<()> {
        assert!(user_data & !USER_BITS == 0);
        let bytes = &self.requests[req.0][offset..];
        let (ptr, len) = (bytes.as_ptr(), bytes.len() as u32);
        let entry = self.fd_entry(
            t,
            |f| opcode::Send::new(f, ptr, len).build(),
            |f| opcode::Send::new(f, ptr, len).build(),
        );
        self.push(entry.user_data(user_data))
    }

    /// Sends `buf[offset..]`; the ring owns `buf` until the completion (posted under `user_data`) hands
    /// it back. On failure to submit, `buf` comes back with the error.
    pub fn send_owned(
        &mut self,
        t: Target,
        buf: Vec<u8>,
        offset: usize,
        user_data: u64,
    ) -> Result<(), (io::Error, Vec<u8>)> {
        assert!(user_data & !USER_BITS == 0 && offset <= buf.len());
        let slot = match self.free_sends.pop() {
            Some(s) => s as usize,
            None => {
                self.sends.push(None);
                self.sends.len() - 1
            }
        };
        let (ptr, len) = (buf[offset..].as_ptr(), (buf.len() - offset) as u32);
        let entry = self.fd_entry(
            t,
            |f| opcode::Send::new(f, ptr, len).build(),
            |f| opcode::Send::new(f, ptr, len).build(),
        );
        // The Vec's heap block does not move when the Vec itself is moved into the slot.
        self.sends[slot] = Some((buf, user_data));
        match self.push(entry.user_data(SEND_OWNED | slot as u64)) {
            Ok(()) => Ok(()),
            Err(e) => {
                // Not queued: the kernel never saw the entry, so the buffer is ours again.
                self.free_sends.push(slot as u32);
                let (buf, _) = self.sends[slot].take().expect("the slot was just filled");
                Err((e, buf))
            }
        }
    }

    /// Arms a multishot poll for readability of `fd`: a completion under `user_data` each time it
    /// becomes readable, until cancelled or the descriptor goes away.
    pub fn poll_multishot(&mut self, fd: RawFd, user_data: u64) -> io::Result<()> {
        assert!(user_data & !USER_BITS == 0);
        let entry = opcode::PollAdd::new(Fd(fd), nix::libc::POLLIN as u32)
            .multi(true)
            .build()
            .user_data(user_data);
        self.push(entry)
    }

    /// Keeps `addr` for the ring's lifetime, for connects.
    pub fn intern_addr(&mut self, addr: SockaddrStorage) -> AddrId {
        self.addrs.push(Box::new(addr));
        AddrId(self.addrs.len() - 1)
    }

    /// Starts connecting socket `fd` (a plain descriptor) to an interned address.
    pub fn connect(&mut self, fd: RawFd, addr: AddrId, user_data: u64) -> io::Result<()> {
        assert!(user_data & !USER_BITS == 0);
        let a = &self.addrs[addr.0];
        let entry = opcode::Connect::new(Fd(fd), a.as_ptr(), a.len())
            .build()
            .user_data(user_data);
        self.push(entry)
    }

    /// Asks the kernel to cancel the operation with `target_user_data`. The cancelled operation still
    /// posts its completion (with `-ECANCELED` if the cancel won); the cancel posts one too, under
    /// `user_data`.
    pub fn cancel(&mut self, target_user_data: u64, user_data: u64) -> io::Result<()> {
        assert!(user_data & !USER_BITS == 0);
        let entry = opcode::AsyncCancel::new(target_user_data)
            .build()
            .user_data(user_data);
        self.push(entry)
    }

    /// Arms a multishot receive into provided buffers: one completion per arrival until it ends (a
    /// completion without `more`).
    pub fn recv_multishot(&mut self, t: Target, user_data: u64) -> io::Result<()> {
        assert!(user_data & !USER_BITS == 0);
        let entry = self.fd_entry(
            t,
            |f| opcode::RecvMulti::new(f, BGID).build(),
            |f| opcode::RecvMulti::new(f, BGID).build(),
        );
        self.push(entry.user_data(user_data))
    }

    /// Writes `buf` at `offset` of `fd` (a regular file). The buffer comes back from [`Ring::take_written`]
    /// once the write completed.
    pub fn write(&mut self, fd: RawFd, buf: Vec<u8>, offset: u64) -> io::Result<()> {
        let slot = match self.writes.iter().position(Option::is_none) {
            Some(s) => s,
            None => {
                self.writes.push(None);
                self.writes.len() - 1
            }
        };
        let entry = opcode::Write::new(Fd(fd), buf.as_ptr(), buf.len() as u32)
            .offset(offset)
            .build()
            .user_data(RING_OWNED | slot as u64);
        // The Vec's heap block does not move when the Vec itself is moved into the slot.
        self.writes[slot] = Some((buf, offset));
        let pushed = self.push(entry);
        if pushed.is_err() {
            // Not queued: the block is ours again, and lost with the error the caller reports.
            self.writes[slot] = None;
        }
        pushed
    }

    /// Log blocks whose writes finished, with each write's result and offset.
    pub fn take_written(&mut self) -> impl Iterator<Item = (Vec<u8>, i32, u64)> + '_ {
        self.written.drain(..)
    }

    /// Submits everything queued and waits for at least `want` completions or `timeout`; with a
    /// `min_wait` (and a kernel that takes one), it returns once `min_wait` has passed and at least one
    /// completion is there, so that a burst of completions is handled in one wake-up instead of one
    /// each.
    pub fn submit_and_wait(
        &mut self,
        want: usize,
        timeout: Duration,
        min_wait: Duration,
    ) -> io::Result<()> {
        self.bufs_mut().publish();
        if want == 0 {
            self.ring.submit()?;
            return Ok(());
        }
        self.timeout = Timespec::new()
            .sec(timeout.as_secs())
            .nsec(timeout.subsec_nanos());
        let entered = if self.min_wait && !min_wait.is_zero() {
            let arg = GeteventsArg {
                sigmask: 0,
                sigmask_sz: 0,
                min_wait_usec: u32::try_from(min_wait.as_micros()).unwrap_or(u32::MAX),
                ts: std::ptr::from_ref(&self.timeout) as u64,
            };
            let to_submit = self.ring.submission().len() as u32;
            // SAFETY: `arg` has the layout of the kernel's `io_uring_getevents_arg` (6.12+; older
            // kernels read the same bytes and refuse a non-zero `min_wait_usec` with EINVAL), and it and
            // the timespec it points to outlive the call, which only reads them. No submission queue
            // entry is touched: `to_submit` counts the entries already pushed.
            let r = unsafe {
                self.ring.submitter().enter(
                    to_submit,
                    want as u32,
                    ENTER_GETEVENTS_EXT_ARG,
                    Some(&arg),
                )
            };
            match r {
                Err(e) if e.raw_os_error() == Some(nix::libc::EINVAL) => {
                    self.min_wait = false;
                    None
                }
                r => Some(r),
            }
        } else {
            None
        };
        let entered = match entered {
            Some(r) => r,
            None => {
                // Without a minimum wait, waiting for `want` completions could hold back the first
                // one until the timeout: wait for one, as if no lingering had been asked for.
                let want = if min_wait.is_zero() { want } else { 1 };
                let args = SubmitArgs::new().timespec(&self.timeout);
                self.ring.submitter().submit_with_args(want, &args)
            }
        };
        match entered {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(nix::libc::ETIME) => Ok(()),
            Err(e) if e.raw_os_error() == Some(nix::libc::EINTR) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Moves available completions into `out`, at most `max` of them (the ring's own write completions
    /// are handled here, and count); the rest stay in the completion queue for the next call.
    pub fn reap(&mut self, out: &mut Vec<Cqe>, max: usize) {
        let mut cq = self.ring.completion();
        cq.sync();
        let bufs = self.bufs.as_mut().expect("buffer ring");
        for e in (&mut cq).take(max) {
            let flags = e.flags();
            let more = cqueue::more(flags);
            let ud = e.user_data();
            if !more {
                self.in_flight -= 1;
            }
            if ud & RING_OWNED != 0 {
                let slot = (ud & !RING_OWNED) as usize;
                if let Some((buf, offset)) = self.writes[slot].take() {
                    self.written.push((buf, e.result(), offset));
                }
                continue;
            }
            if ud & SEND_OWNED != 0 {
                let slot = (ud & !SEND_OWNED) as usize;
                if let Some((buf, tag)) = self.sends[slot].take() {
                    self.free_sends.push(slot as u32);
                    out.push(Cqe {
                        user_data: tag,
                        result: e.result(),
                        more: false,
                        buf: None,
                        owned: Some(buf),
                    });
                }
                continue;
            }
            let buf = cqueue::buffer_select(flags).map(|bid| {
                let held = &mut bufs.held[usize::from(bid)];
                assert!(!*held, "kernel handed out buffer {bid} twice");
                *held = true;
                BufId(bid)
            });
            out.push(Cqe {
                user_data: ud & USER_BITS,
                result: e.result(),
                more,
                buf,
                owned: None,
            });
        }
    }

    /// The first `len` bytes the kernel put in `buf`.
    pub fn data(&self, buf: &BufId, len: usize) -> &[u8] {
        self.bufs.as_ref().expect("buffer ring").data(buf.0, len)
    }

    /// Gives a buffer back to the kernel (visible from the next submission).
    pub fn recycle(&mut self, buf: BufId) {
        self.bufs_mut().push(buf.0);
    }

    /// Operations that will still post a completion.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        let quiet = self.in_flight == 0;
        let bufs = self.bufs.take();
        if !quiet {
            // Operations may still reference our memory (closing the ring fd cancels them
            // asynchronously): leak it. This happens once per ring, at the end of a run.
            std::mem::forget(bufs);
            std::mem::forget(std::mem::take(&mut self.requests));
            std::mem::forget(std::mem::take(&mut self.addrs));
            std::mem::forget(std::mem::take(&mut self.writes));
            std::mem::forget(std::mem::take(&mut self.sends));
            return;
        }
        if let Some(b) = bufs {
            let _ = self.ring.submitter().unregister_buf_ring(BGID);
            // SAFETY: no operation is in flight and the buffer ring is unregistered, so the kernel
            // holds no reference to either allocation; the layouts are the ones they were allocated
            // with.
            unsafe {
                dealloc(b.ring.cast(), b.ring_layout);
                dealloc(b.bufs, b.bufs_layout);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;
    use std::time::{Duration, Instant};

    use super::Ring;

    /// A wait that asks for more completions than will come returns with the one that came, whether
    /// the kernel takes a minimum wait or not (then it must not wait for all of them until the
    /// timeout).
    #[test]
    fn a_lingering_wait_returns_with_fewer_completions_than_it_asked_for() {
        for min_wait_supported in [true, false] {
            let mut ring = Ring::new(8, 0, 1, 64).expect("io_uring is available where tests run");
            ring.min_wait &= min_wait_supported;
            let file = tempfile::tempfile().unwrap();
            ring.write(file.as_raw_fd(), vec![7; 16], 0).unwrap();
            let started = Instant::now();
            let timeout = Duration::from_secs(20);
            ring.submit_and_wait(8, timeout, Duration::from_micros(20))
                .unwrap();
            let mut cqes = Vec::new();
            ring.reap(&mut cqes, usize::MAX);
            let written: Vec<_> = ring.take_written().collect();
            assert_eq!(written.len(), 1, "min wait supported: {min_wait_supported}");
            assert_eq!(written[0].1, 16);
            assert!(
                started.elapsed() < timeout / 2,
                "the wait held its one completion until the timeout (min wait supported: {min_wait_supported})"
            );
        }
    }
}
