//! Property tests: arbitrary, hostile message headers never panic, never allocate without
//! bound, and valid headers always continue the trace.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashMap;

use insights_runtime::queue::{IncomingTrace, MAX_BAGGAGE_ENTRIES, MAX_HEADER_LEN};
use proptest::prelude::*;

/// Counts bytes allocated on this thread while `COUNTING` is on (per thread: tests run in
/// parallel).
struct Counting;

thread_local! {
    // `const` and without destructors, so the allocator may use them at any time.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATED.with(|a| a.set(a.get() + layout.size()));
        }
        // SAFETY: forwarded as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Bytes allocated by `f`.
fn allocated_by<R>(f: impl FnOnce() -> R) -> (R, usize) {
    ALLOCATED.with(|a| a.set(0));
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    (r, ALLOCATED.with(Cell::get))
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("sentry-trace".to_owned()),
        Just("SENTRY-TRACE".to_owned()),
        Just("sentry_trace".to_owned()),
        Just("baggage".to_owned()),
        Just("sentry_baggage".to_owned()),
        Just("sentry-task-enqueued-time".to_owned()),
        ".{0,20}",
    ]
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,200}",
        "[0-9a-f]{30,34}-[0-9a-fA-FxX]{14,18}(-[0-9a-z]{0,2})?",
        "(sentry-[a-z_]{1,12}=[^,]{0,20},){0,80}",
        "[0-9]{1,12}\\.[0-9]{0,9}",
        // Very long values: far over every limit.
        (1usize..4).prop_map(|n| "sentry-sampled=true,".repeat(n * 4000)),
    ]
}

/// The most any parse may allocate: every kept value is a slice of a value under
/// `MAX_HEADER_LEN`, and at most `MAX_BAGGAGE_ENTRIES` baggage entries are kept.
const ALLOCATION_BOUND: usize = 4 * MAX_HEADER_LEN + MAX_BAGGAGE_ENTRIES * 64;

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_headers_never_panic_and_allocate_within_a_bound(
        headers in proptest::collection::hash_map(header_name(), header_value(), 0..12)
    ) {
        let (incoming, bytes) = allocated_by(|| IncomingTrace::from_carrier(&headers));
        prop_assert!(bytes <= ALLOCATION_BOUND, "{bytes} bytes allocated");
        if let Some(incoming) = incoming {
            prop_assert!(incoming.baggage.len() <= MAX_BAGGAGE_ENTRIES);
        }
    }

    #[test]
    fn valid_headers_always_continue_the_trace(
        trace in "[0-9a-f]{31}[1-9a-f]",
        span in "[0-9a-f]{15}[1-9a-f]",
        flag in prop_oneof![Just(""), Just("-1"), Just("-0")],
        upper in any::<bool>(),
        junk in proptest::collection::vec((".{0,10}", ".{0,50}"), 0..8),
    ) {
        let mut headers: HashMap<String, String> = junk
            .into_iter()
            .filter(|(k, _): &(String, String)| !k.to_ascii_lowercase().starts_with("sentry") && !k.eq_ignore_ascii_case("baggage"))
            .collect();
        let name = if upper { "Sentry-Trace" } else { "sentry-trace" };
        headers.insert(name.to_owned(), format!("{trace}-{span}{flag}"));
        let incoming = IncomingTrace::from_carrier(&headers).expect("valid headers continue the trace");
        prop_assert_eq!(incoming.trace_id.to_string(), trace);
        prop_assert_eq!(incoming.parent_span_id.to_string(), span);
        let expected = match flag { "-1" => Some(true), "-0" => Some(false), _ => None };
        prop_assert_eq!(incoming.sampled, expected);
    }
}

#[test]
fn a_megabyte_of_baggage_is_not_read_whole() {
    let mut headers = HashMap::new();
    headers.insert(
        "sentry-trace".to_owned(),
        "0123456789abcdef0123456789abcdef-0123456789abcdef-1".to_owned(),
    );
    headers.insert("baggage".to_owned(), "sentry-a=b,".repeat(100_000));
    let (incoming, bytes) = allocated_by(|| IncomingTrace::from_carrier(&headers));
    let incoming = incoming.expect("the trace still continues");
    // Over MAX_HEADER_LEN: the baggage is ignored whole.
    assert!(incoming.baggage.is_empty());
    assert!(bytes <= ALLOCATION_BOUND, "{bytes}");
    headers.insert("baggage".to_owned(), "sentry-a=b,".repeat(700));
    let (incoming, bytes) = allocated_by(|| IncomingTrace::from_carrier(&headers));
    assert_eq!(
        incoming.expect("continues").baggage.len(),
        MAX_BAGGAGE_ENTRIES
    );
    assert!(bytes <= ALLOCATION_BOUND, "{bytes}");
}
