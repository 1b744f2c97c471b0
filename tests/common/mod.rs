//! Shared test helpers: run code under sentry's in-process test transport and read back what a
//! user would see in Sentry.
#![allow(dead_code, reason = "each test crate uses only some of the helpers")]

pub mod registry;

use sentry::protocol::{Context, EnvelopeItem, Span, SpanId, TraceContext, Transaction};
use sentry::{ClientOptions, TransactionContext};

/// Runs `f` with a client that samples every trace, and returns the transactions it sent.
pub fn capture(f: impl FnOnce()) -> Vec<Transaction<'static>> {
    capture_with(ClientOptions::new().traces_sample_rate(1.0), f)
}

pub fn capture_with(options: ClientOptions, f: impl FnOnce()) -> Vec<Transaction<'static>> {
    sentry::test::with_captured_envelopes_options(f, options)
        .into_iter()
        .flat_map(|e| e.into_items())
        .filter_map(|item| match item {
            EnvelopeItem::Transaction(t) => Some(*t),
            _ => None,
        })
        .collect()
}

/// Runs `f` inside a transaction named `name` that is the scope's current span.
pub fn in_transaction<R>(name: &str, f: impl FnOnce() -> R) -> R {
    let tx = sentry::start_transaction(TransactionContext::new(name, "test"));
    sentry::configure_scope(|s| s.set_span(Some(tx.clone().into())));
    let r = f();
    sentry::configure_scope(|s| s.set_span(None));
    tx.finish();
    r
}

/// Captures the single transaction `f` sends from inside `in_transaction("root", ..)`.
pub fn capture_one(f: impl FnOnce()) -> Transaction<'static> {
    let mut txs = capture(|| in_transaction("root", f));
    assert_eq!(txs.len(), 1, "expected one transaction");
    txs.remove(0)
}

pub fn trace<'a>(tx: &'a Transaction<'_>) -> &'a TraceContext {
    match tx.contexts.get("trace") {
        Some(Context::Trace(t)) => t,
        other => panic!("transaction without trace context: {other:?}"),
    }
}

pub fn root_id(tx: &Transaction<'_>) -> SpanId {
    trace(tx).span_id
}

/// The only span with this description.
pub fn span<'a>(tx: &'a Transaction<'_>, description: &str) -> &'a Span {
    let found: Vec<&Span> = tx
        .spans
        .iter()
        .filter(|s| s.description.as_deref() == Some(description))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "spans described {description:?}: {:#?}",
        tx.spans
    );
    found[0]
}
