//! The writer allocates nothing per sample once warmed up: the engine calls it on every request.

// A counting global allocator needs `unsafe impl GlobalAlloc`; it only forwards to the system
// allocator and counts.
#![allow(unsafe_code)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use formats::{LogWriter, Outcome, Sample};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|a| a.set(a.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|a| a.set(a.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// A sink that copies into a buffer it reuses, as the engine's sink hands blocks to its I/O queue.
struct Reused(Vec<u8>, u64);

impl formats::BlockSink for Reused {
    type Error = std::convert::Infallible;
    fn write(&mut self, bytes: &[u8]) -> Result<(), Self::Error> {
        self.0.clear();
        self.0.extend_from_slice(bytes);
        self.1 += bytes.len() as u64;
        Ok(())
    }
}

#[test]
fn pushing_and_flushing_allocate_nothing_after_warm_up() {
    let mut w = LogWriter::new(&common::header(0), Reused(Vec::with_capacity(1 << 20), 0)).unwrap();
    let names: Vec<_> = (0..5)
        .map(|i| w.intern_name(&format!("request {i}")))
        .collect();
    let failure = w.intern_message("unexpected status 500");
    let sample = |i: u64| Sample {
        name: names[(i % 5) as usize],
        intended_us: i * 20,
        actual_us: i * 20 + i % 3,
        latency_us: 200 + (i * 7919 % 5000) as u32,
        ttfb_us: 190,
        status: if i.is_multiple_of(100) { 500 } else { 200 },
        outcome: if i.is_multiple_of(100) {
            Outcome::Status
        } else {
            Outcome::Ok
        },
        message: (i.is_multiple_of(100)).then_some(failure),
        bytes_sent: 100,
        bytes_received: 300 + (i % 7) as u32,
        user: (i % 64) as u32,
        // Every 200th request opens a TLS connection, so the v1.1 extras block is written too.
        connect_us: if i.is_multiple_of(200) { 900 } else { 0 },
        tls_us: if i.is_multiple_of(200) { 700 } else { 0 },
        // v1.2: a task per request and an iteration start every fourth, so the task columns and
        // their extras block are written on every block.
        task: 1 + (i % 3) as u32,
        iteration_start: i.is_multiple_of(4),
    };
    // Warm up: a few full blocks and flushes size every buffer.
    for i in 0..50_000 {
        w.push(sample(i)).unwrap();
    }
    w.flush().unwrap();

    let before = allocations();
    for i in 50_000..250_000 {
        w.push(sample(i)).unwrap();
        if i % 50_000 == 0 {
            w.flush().unwrap();
        }
    }
    w.flush().unwrap();
    let during = allocations() - before;
    assert_eq!(
        during, 0,
        "{during} allocations while writing 200,000 samples"
    );
    assert!(w.sink().1 > 0);
}
