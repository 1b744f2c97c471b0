//! A global allocator that counts the bytes and the allocations this thread makes while asked
//! to: for the property tests' allocation bounds (`queue_headers_prop`, `nats_headers_prop`,
//! `fuzz_headers`, with [`allocated_by`]) and for what a wrapper allocates of its own
//! (`integration_redis`, with [`allocations_by`]). A test crate installs it with
//! `#[global_allocator] static GLOBAL: Counting = Counting;`. Per thread, because tests run in
//! parallel.
#![allow(dead_code, reason = "each test crate uses only some of it")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use insights_runtime::queue::{MAX_BAGGAGE_ENTRIES, MAX_HEADER_LEN};

/// Forwards to the system allocator, counting on threads where counting is on.
pub struct Counting;

thread_local! {
    // `const` and without destructors, so that the allocator may use them at any time.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to `System` unchanged; the counters are thread-local cells
// that never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATED.with(|a| a.set(a.get() + layout.size()));
            ALLOCATIONS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: forwarded as it is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as it is.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// What `f` returns, with the bytes and the number of allocations it made on this thread.
fn counted<R>(f: impl FnOnce() -> R) -> (R, usize, usize) {
    ALLOCATED.with(|a| a.set(0));
    ALLOCATIONS.with(|a| a.set(0));
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    (r, ALLOCATED.with(Cell::get), ALLOCATIONS.with(Cell::get))
}

/// What `f` returns, and the bytes it allocated on this thread.
pub fn allocated_by<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let (r, bytes, _) = counted(f);
    (r, bytes)
}

/// What `f` returns, and how many allocations it made on this thread.
pub fn allocations_by<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let (r, _, allocations) = counted(f);
    (r, allocations)
}

/// The most reading a trace may allocate: every value kept is a slice of one under
/// `MAX_HEADER_LEN`, and at most `MAX_BAGGAGE_ENTRIES` baggage entries are kept.
pub const ALLOCATION_BOUND: usize = 4 * MAX_HEADER_LEN + MAX_BAGGAGE_ENTRIES * 64;
