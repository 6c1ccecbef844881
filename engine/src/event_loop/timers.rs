//! The loop's timer structure: every deadline of a core (a user's spawn, think time, pacing slot or
//! on_stop time, a step's reply window, the open model's next arrivals, the hosted executor's timers)
//! in one binary heap whose earliest entry bounds the loop's wait. Only the loop's wait arms a kernel
//! timer (io_uring's wait timeout, epoll's timerfd), once per wait.
//!
//! Entries are never removed early: an owner that changes its mind simply sets a new deadline, and an
//! entry that no longer matches its owner's current deadline is dropped when it comes up (the caller's
//! check). Pushing allocates only while the heap grows to its high-water mark.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Who a deadline belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Owner {
    /// A user (by local index) sleeping until the deadline.
    User(u32),
    /// The exchange on a connection slot (a step's reply window).
    Conn(u32),
    /// The open model's arrival release.
    Arrivals,
    /// The hosted executor's earliest timer.
    Hosted,
}

/// Deadlines in µs since time zero.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(u64, Owner)>>,
}

impl Timers {
    pub fn with_capacity(n: usize) -> Timers {
        Timers {
            heap: BinaryHeap::with_capacity(n),
        }
    }

    /// Adds a deadline for `owner`.
    pub fn push(&mut self, at_us: u64, owner: Owner) {
        self.heap.push(Reverse((at_us, owner)));
    }

    /// The earliest deadline, if any.
    pub fn next(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Takes the earliest entry if it is due by `now_us`.
    pub fn pop_due(&mut self, now_us: u64) -> Option<(u64, Owner)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now_us => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_entries_come_out_in_deadline_order() {
        let mut t = Timers::default();
        t.push(30, Owner::User(1));
        t.push(10, Owner::Arrivals);
        t.push(20, Owner::User(2));
        assert_eq!(t.next(), Some(10));
        assert_eq!(t.pop_due(5), None);
        assert_eq!(t.pop_due(25), Some((10, Owner::Arrivals)));
        assert_eq!(t.pop_due(25), Some((20, Owner::User(2))));
        assert_eq!(t.pop_due(25), None);
        assert_eq!(t.next(), Some(30));
    }
}
