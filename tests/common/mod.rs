//! Shared test helpers: run code under sentry's in-process test transport and read back what a
//! user would see in Sentry.
#![allow(dead_code, reason = "each test crate uses only some of the helpers")]

pub mod registry;

use std::collections::BTreeMap;

use sentry::protocol::{Context, EnvelopeItem, Span, SpanId, TraceContext, Transaction, Value};
use sentry::{ClientOptions, TransactionContext};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

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
    capture_one_in("root", f)
}

/// Captures the single transaction `f` sends from inside `in_transaction(name, ..)`.
pub fn capture_one_in(name: &str, f: impl FnOnce()) -> Transaction<'static> {
    only(capture(|| in_transaction(name, f)))
}

/// The only transaction of `txs`.
pub fn only(mut txs: Vec<Transaction<'static>>) -> Transaction<'static> {
    assert_eq!(txs.len(), 1, "expected one transaction: {txs:#?}");
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

/// The only span with this op and description.
pub fn the_span<'a>(tx: &'a Transaction<'_>, op: &str, description: &str) -> &'a Span {
    let found: Vec<&Span> = tx
        .spans
        .iter()
        .filter(|s| s.op.as_deref() == Some(op) && s.description.as_deref() == Some(description))
        .collect();
    assert_eq!(found.len(), 1, "{op} {description:?} in {:#?}", tx.spans);
    found[0]
}

/// Asserts that `span`'s data is exactly `expected` (the message names the span's op and
/// description).
pub fn assert_data(span: &Span, expected: &[(&str, Value)]) {
    let expected: BTreeMap<String, Value> = expected
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    assert_eq!(
        span.data, expected,
        "data of {:?} {:?}",
        span.op, span.description
    );
}

/// Asserts that the span's description is SQL that PostgreSQL's dialect parses, as Sentry does
/// for `db.system` `postgresql`.
pub fn assert_parses_as_postgres(span: &Span) {
    let sql = span.description.as_deref().expect("a description");
    if let Err(e) = Parser::parse_sql(&PostgreSqlDialect {}, sql) {
        panic!("{sql:?} does not parse as PostgreSQL: {e}");
    }
}

/// `db.response.returned_rows`, the rows a query returned.
pub fn returned(n: u64) -> (&'static str, Value) {
    ("db.response.returned_rows", Value::from(n))
}

/// `db.response.affected_rows`, the rows a statement changed.
pub fn affected(n: u64) -> (&'static str, Value) {
    ("db.response.affected_rows", Value::from(n))
}

/// `db.response.status_code`, the server's error code (PostgreSQL's SQLSTATE).
pub fn status_code(code: &str) -> (&'static str, Value) {
    ("db.response.status_code", Value::from(code))
}
