//! The trace header parsers under a fuzzer: `sentry-trace`, `baggage`, the enqueued time, and
//! `traceparent` beside them (the runtime writes `traceparent` but never reads it: it must be
//! ignored), over arbitrary bytes and near-valid values, through every carrier the readers
//! take. No case may panic or allocate beyond the documented limits (`MAX_HEADER_LEN`,
//! `MAX_BAGGAGE_ENTRIES`).
//!
//! The full run is outside the default test command (benches/README.md, "Fuzzing"):
//!
//! ```sh
//! FUZZ_CASES=1000000 cargo test --release --test fuzz_headers -- --ignored --nocapture
//! ```
//!
//! `cargo test` runs the same properties over 500 cases.

#[path = "common/counting.rs"]
mod counting;

use std::collections::HashMap;
use std::time::{Instant, SystemTime};

use counting::{allocated_by, Counting, ALLOCATION_BOUND};
use insights_runtime::queue::{IncomingTrace, MAX_BAGGAGE_ENTRIES};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

#[global_allocator]
static GLOBAL: Counting = Counting;

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("sentry-trace".to_owned()),
        Just("sentry_trace".to_owned()),
        Just("baggage".to_owned()),
        Just("sentry_baggage".to_owned()),
        Just("traceparent".to_owned()),
        Just("sentry-task-enqueued-time".to_owned()),
        Just("sentry_task_enqueued_time".to_owned()),
    ]
}

/// Arbitrary text, near-valid values of each header, bytes that are not UTF-8 (lossily
/// decoded, as a carrier would hand them over), and values far over the length limit.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        proptest::collection::vec(any::<u8>(), 0..120)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        "[0-9a-fA-F-]{0,60}",
        "[0-9a-f]{30,34}-[0-9a-fA-FxX]{14,18}(-[0-9a-z]{0,2})?",
        "0[0-9]-[0-9a-f]{30,34}-[0-9a-f]{14,18}-[0-9]{1,3}",
        "((sentry-)?[a-z_%]{0,12}=[^,;]{0,20}(;[a-z=]{0,5})?,){0,90}",
        "-?[0-9]{0,20}(\\.[0-9]{0,12})?([eE][+-]?[0-9]{1,4})?",
        prop_oneof![
            Just("NaN"),
            Just("inf"),
            Just("-inf"),
            Just("1e308"),
            Just("-0")
        ]
        .prop_map(str::to_owned),
        (1usize..4).prop_map(|n| "sentry-sampled=true,".repeat(n * 500)),
    ]
}

fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec((name(), value()), 0..8)
}

/// One case: read through a `HashMap` and an `http::HeaderMap`; neither panics nor allocates
/// past the bound, and what is kept stays within the limits.
fn check(headers: &[(String, String)]) -> Result<(), TestCaseError> {
    let map: HashMap<String, String> = headers.iter().cloned().collect();
    let (incoming, bytes) = allocated_by(|| IncomingTrace::from_carrier(&map));
    prop_assert!(bytes <= ALLOCATION_BOUND, "{bytes} bytes for {map:?}");
    if let Some(incoming) = &incoming {
        prop_assert!(incoming.baggage.len() <= MAX_BAGGAGE_ENTRIES);
        let latency = incoming.receive_latency_ms(SystemTime::now());
        prop_assert!(latency.is_none_or(|ms| ms.is_finite() && ms >= 0.0));
    }
    let mut http_headers = http::HeaderMap::new();
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            http_headers.insert(name, value);
        }
    }
    let (incoming, bytes) = allocated_by(|| IncomingTrace::from_carrier(&http_headers));
    prop_assert!(
        bytes <= ALLOCATION_BOUND,
        "{bytes} bytes for {http_headers:?}"
    );
    if let Some(incoming) = &incoming {
        prop_assert!(incoming.baggage.len() <= MAX_BAGGAGE_ENTRIES);
    }
    Ok(())
}

fn run(cases: u32) {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let started = Instant::now();
    let result = runner.run(&headers(), |headers| check(&headers));
    eprintln!(
        "fuzz_headers: {cases} cases in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

#[test]
fn the_header_parsers_survive_a_quick_fuzz() {
    run(500);
}

/// The full run: `FUZZ_CASES` cases (1,000,000 unless set).
#[test]
#[ignore = "a million cases: run it with --ignored, in release (benches/README.md)"]
fn the_header_parsers_survive_a_million_cases() {
    let cases = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    run(cases);
}
