//! `#[traced]` on sync functions: what reaches Sentry.

mod common;

use common::{capture, capture_one, capture_with, in_transaction, root_id, span, trace};
use insights_runtime::span::SpanGuard;
use insights_runtime::traced;
use sentry::protocol::{SpanStatus, Value};
use sentry::ClientOptions;

#[traced]
fn add(a: u32, b: u32) -> u32 {
    a + b
}

#[traced(op = "db", description = "load users", data(rows = 3u64, db.system = "postgresql", "cache.hit" = true))]
fn with_arguments() -> usize {
    7
}

type AppResult<T> = Result<T, String>;

#[traced]
fn fails_through_alias(fail: bool) -> AppResult<u8> {
    if fail {
        return Err("boom".to_owned());
    }
    Ok(1)
}

#[traced]
fn parse_sum(items: &[&str]) -> Result<u32, std::num::ParseIntError> {
    let mut total = 0;
    for item in items {
        total += item.parse::<u32>()?;
    }
    Ok(total)
}

#[traced]
fn finds_nothing() -> Option<u8> {
    None
}

#[traced]
fn outer() -> u32 {
    inner() + 1
}

#[traced]
fn inner() -> u32 {
    1
}

#[traced]
fn sets_own_status() -> Result<(), ()> {
    let current = sentry::configure_scope(|s| s.get_span()).expect("our span is current");
    current.set_status(SpanStatus::NotFound);
    Err(())
}

#[traced]
fn panics() -> u32 {
    panic!("boom")
}

#[traced(data(len = text.len()))]
fn borrows<'a>(text: &'a str, _unused: &str) -> &'a str {
    &text[..1]
}

struct Counter {
    hits: Vec<u32>,
}

impl Counter {
    #[traced]
    fn slot(&mut self) -> &mut u32 {
        self.hits.push(0);
        self.hits.last_mut().expect("just pushed")
    }

    #[traced(op = "method")]
    fn into_total(self) -> u32 {
        self.hits.iter().sum()
    }
}

#[traced(transaction = "nightly-import", op = "batch")]
fn batch_job() -> Result<u32, String> {
    Ok(add(1, 1))
}

#[traced]
fn captures_error() {
    sentry::capture_message("inside", sentry::Level::Error);
}

#[test]
fn sync_span_has_op_description_parent_status_and_finish() {
    let tx = capture_one(|| assert_eq!(add(1, 2), 3));
    let s = span(&tx, "add");
    assert_eq!(s.op.as_deref(), Some("function"));
    assert_eq!(s.parent_span_id, Some(root_id(&tx)));
    assert_eq!(s.trace_id, trace(&tx).trace_id);
    assert_eq!(s.status, Some(SpanStatus::Ok));
    assert!(s.timestamp.is_some(), "span finished");
    assert_eq!(tx.spans.len(), 1);
}

#[test]
fn arguments_set_op_description_and_data() {
    let tx = capture_one(|| assert_eq!(with_arguments(), 7));
    let s = span(&tx, "load users");
    assert_eq!(s.op.as_deref(), Some("db"));
    assert_eq!(s.data.get("rows"), Some(&Value::from(3u64)));
    assert_eq!(s.data.get("db.system"), Some(&Value::from("postgresql")));
    assert_eq!(s.data.get("cache.hit"), Some(&Value::Bool(true)));
    assert_eq!(s.data.len(), 3);
}

#[test]
fn err_is_internal_error_through_a_type_alias_and_early_return() {
    let tx = capture_one(|| {
        assert_eq!(fails_through_alias(true), Err("boom".to_owned()));
    });
    assert_eq!(
        span(&tx, "fails_through_alias").status,
        Some(SpanStatus::InternalError)
    );
    let tx = capture_one(|| assert_eq!(fails_through_alias(false), Ok(1)));
    assert_eq!(
        span(&tx, "fails_through_alias").status,
        Some(SpanStatus::Ok)
    );
}

#[test]
fn question_mark_error_is_internal_error() {
    let tx = capture_one(|| assert!(parse_sum(&["1", "x"]).is_err()));
    assert_eq!(
        span(&tx, "parse_sum").status,
        Some(SpanStatus::InternalError)
    );
    let tx = capture_one(|| assert_eq!(parse_sum(&["1", "2"]), Ok(3)));
    assert_eq!(span(&tx, "parse_sum").status, Some(SpanStatus::Ok));
}

#[test]
fn none_is_not_an_error() {
    let tx = capture_one(|| assert_eq!(finds_nothing(), None));
    assert_eq!(span(&tx, "finds_nothing").status, Some(SpanStatus::Ok));
}

#[test]
fn nested_calls_nest_and_the_parent_is_restored() {
    let tx = capture_one(|| {
        assert_eq!(outer(), 2);
        // After the call the transaction is current again.
        let after = SpanGuard::start("check", "after");
        drop(after);
    });
    let outer_span = span(&tx, "outer");
    let inner_span = span(&tx, "inner");
    assert_eq!(outer_span.parent_span_id, Some(root_id(&tx)));
    assert_eq!(inner_span.parent_span_id, Some(outer_span.span_id));
    assert_eq!(span(&tx, "after").parent_span_id, Some(root_id(&tx)));
    assert!(inner_span.timestamp <= outer_span.timestamp);
}

#[test]
fn a_status_set_by_the_function_is_kept() {
    let tx = capture_one(|| assert!(sets_own_status().is_err()));
    assert_eq!(
        span(&tx, "sets_own_status").status,
        Some(SpanStatus::NotFound)
    );
}

#[test]
fn panic_is_internal_error_and_keeps_unwinding() {
    let tx = capture_one(|| {
        let result = std::panic::catch_unwind(panics);
        assert!(result.is_err(), "the panic continues");
        let after = SpanGuard::start("check", "after");
        drop(after);
    });
    let s = span(&tx, "panics");
    assert_eq!(s.status, Some(SpanStatus::InternalError));
    assert!(s.timestamp.is_some());
    assert_eq!(span(&tx, "after").parent_span_id, Some(root_id(&tx)));
}

#[test]
fn borrowed_results_and_methods_keep_working() {
    let tx = capture_one(|| {
        assert_eq!(borrows("hello", "x"), "h");
        let mut counter = Counter { hits: vec![] };
        *counter.slot() = 5;
        assert_eq!(counter.into_total(), 5);
    });
    assert_eq!(span(&tx, "borrows").data.get("len"), Some(&Value::from(5)));
    assert_eq!(span(&tx, "slot").status, Some(SpanStatus::Ok));
    assert_eq!(span(&tx, "into_total").op.as_deref(), Some("method"));
}

#[test]
fn transaction_argument_starts_a_transaction_when_none_is_current() {
    let txs = capture(|| assert_eq!(batch_job(), Ok(2)));
    assert_eq!(txs.len(), 1);
    let tx = &txs[0];
    assert_eq!(tx.name.as_deref(), Some("nightly-import"));
    assert_eq!(trace(tx).op.as_deref(), Some("batch"));
    assert_eq!(trace(tx).status, Some(SpanStatus::Ok));
    let child = span(tx, "add");
    assert_eq!(child.parent_span_id, Some(root_id(tx)));
}

#[test]
fn transaction_argument_is_a_child_inside_a_transaction() {
    let tx = capture_one(|| assert_eq!(batch_job(), Ok(2)));
    assert_eq!(tx.name.as_deref(), Some("root"));
    let job = span(&tx, "batch_job");
    assert_eq!(job.op.as_deref(), Some("batch"));
    assert_eq!(job.parent_span_id, Some(root_id(&tx)));
    assert_eq!(span(&tx, "add").parent_span_id, Some(job.span_id));
}

#[test]
fn errors_captured_inside_carry_the_span_context() {
    let envelopes = sentry::test::with_captured_envelopes_options(
        || in_transaction("root", captures_error),
        ClientOptions::new().traces_sample_rate(1.0),
    );
    let mut event_trace = None;
    let mut span_id = None;
    for item in envelopes.iter().flat_map(|e| e.items()) {
        match item {
            sentry::protocol::EnvelopeItem::Event(event) => {
                if let Some(sentry::protocol::Context::Trace(t)) = event.contexts.get("trace") {
                    event_trace = Some((t.trace_id, t.span_id));
                }
            }
            sentry::protocol::EnvelopeItem::Transaction(tx) => {
                let s = span(tx, "captures_error");
                span_id = Some((s.trace_id, s.span_id));
            }
            _ => {}
        }
    }
    assert!(span_id.is_some());
    assert_eq!(event_trace, span_id);
}

#[test]
fn no_client_records_nothing_and_returns_the_value() {
    // No client bound on this thread's hub: the guard is inert.
    let hub = std::sync::Arc::new(sentry::Hub::new(None, Default::default()));
    sentry::Hub::run(hub, || {
        assert!(!SpanGuard::start("function", "x").is_recording());
        assert_eq!(add(2, 2), 4);
        assert_eq!(parse_sum(&["4"]), Ok(4));
        assert!(sentry::configure_scope(|s| s.get_span()).is_none());
    });
}

#[test]
fn no_current_span_records_nothing() {
    let txs = capture(|| {
        assert!(!SpanGuard::start("function", "x").is_recording());
        assert_eq!(add(2, 2), 4);
    });
    assert!(txs.is_empty(), "{txs:?}");
}

#[test]
fn unsampled_parent_builds_no_span() {
    let txs = capture_with(ClientOptions::new().traces_sample_rate(0.0), || {
        in_transaction("root", || {
            assert!(!SpanGuard::start("function", "x").is_recording());
            assert_eq!(outer(), 2);
            // The unsampled transaction is still the current span: nothing replaced it.
            let current = sentry::configure_scope(|s| s.get_span());
            assert!(matches!(
                current,
                Some(sentry::TransactionOrSpan::Transaction(_))
            ));
        });
    });
    assert!(txs.is_empty());
}

#[test]
fn tracing_disabled_records_nothing() {
    let txs = capture_with(ClientOptions::new(), || {
        in_transaction("root", || {
            assert!(!SpanGuard::start("function", "x").is_recording());
            assert_eq!(add(1, 1), 2);
        });
    });
    assert!(txs.is_empty());
}
