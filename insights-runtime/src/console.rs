//! A console sink for development: finished transactions printed as span trees.
//!
//! [`ConsoleTransport`] is a `sentry` transport that sends nothing anywhere. It prints each
//! finished transaction as an indented tree, one line a span: op, description, duration, status
//! and data. It lets you see what Sentry would receive without a Sentry project; set a DSN and the
//! same spans go to Sentry instead.
//!
//! Errors and messages captured are printed as one line each (`event error  ...`).
//!
//! ```text
//! transaction nightly-import  op=batch  12.41ms  ok
//!   function import_rows  11.02ms  ok  {rows.count=3}
//!     db SELECT id FROM users WHERE id = $1  0.84ms  ok  {db.system="postgresql"}
//! ```
//!
//! # Examples
//!
//! ```
//! let _sentry = sentry::init(insights_runtime::console::client_options());
//! // spans of #[traced] functions now print to standard error
//! ```

use std::fmt::Write as _;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use sentry::protocol::{Context, EnvelopeItem, Span, SpanId, Transaction, Value};
use sentry::{ClientOptions, Envelope, Transport};

/// The DSN [`client_options`] uses: `sentry` only records spans for a client with a DSN, and
/// this one names no real host (`.invalid` never resolves), so nothing can leave the process.
pub const CONSOLE_DSN: &str = "https://console@console.invalid/0";

/// A `sentry` transport that prints finished transactions as span trees.
pub struct ConsoleTransport {
    out: Mutex<Box<dyn Write + Send>>,
}

impl ConsoleTransport {
    /// Prints to standard error.
    pub fn stderr() -> Self {
        Self::with_writer(std::io::stderr())
    }

    /// Prints to standard output.
    pub fn stdout() -> Self {
        Self::with_writer(std::io::stdout())
    }

    /// Prints to `out`.
    pub fn with_writer(out: impl Write + Send + 'static) -> Self {
        ConsoleTransport {
            out: Mutex::new(Box::new(out)),
        }
    }
}

impl std::fmt::Debug for ConsoleTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleTransport").finish_non_exhaustive()
    }
}

impl Transport for ConsoleTransport {
    fn send_envelope(&self, envelope: Envelope) {
        let mut text = String::new();
        for item in envelope.items() {
            match item {
                EnvelopeItem::Transaction(transaction) => text.push_str(&render(transaction)),
                EnvelopeItem::Event(event) => text.push_str(&render_event(event)),
                _ => {}
            }
        }
        if text.is_empty() {
            return;
        }
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        // A console that cannot be written to is not worth failing the program for.
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

/// Client options that send every transaction to a [`ConsoleTransport`] on standard error,
/// with every trace sampled.
pub fn client_options() -> ClientOptions {
    ClientOptions::new()
        .dsn(CONSOLE_DSN)
        .traces_sample_rate(1.0)
        .transport(Arc::new(ConsoleTransport::stderr()))
}

/// Renders a transaction as an indented span tree, one line a span, ending in a newline.
///
/// Children are ordered by start time; a span whose parent is not in the transaction is shown
/// under the root.
pub fn render(transaction: &Transaction<'_>) -> String {
    let trace = transaction.contexts.get("trace").and_then(|c| match c {
        Context::Trace(trace) => Some(trace),
        _ => None,
    });
    let mut out = String::new();
    let _ = write!(
        out,
        "transaction {}",
        transaction.name.as_deref().unwrap_or("<unnamed>")
    );
    if let Some(op) = trace.and_then(|t| t.op.as_deref()) {
        let _ = write!(out, "  op={op}");
    }
    write_timing(
        &mut out,
        Some(transaction.start_timestamp),
        transaction.timestamp,
    );
    if let Some(status) = trace.and_then(|t| t.status) {
        let _ = write!(out, "  {status}");
    }
    if let Some(trace) = trace {
        write_data(&mut out, trace.data.iter());
        // Last, so that the trees of one trace (a producer's, its consumers') can be matched up.
        let _ = write!(out, "  trace={}", trace.trace_id);
    }
    out.push('\n');

    let root = trace.map(|t| t.span_id);
    let mut spans: Vec<&Span> = transaction.spans.iter().collect();
    spans.sort_by_key(|s| s.start_timestamp);
    let known: std::collections::HashSet<SpanId> = spans.iter().map(|s| s.span_id).collect();
    let top: Vec<&Span> = spans
        .iter()
        .copied()
        .filter(|s| {
            s.parent_span_id == root || s.parent_span_id.is_none_or(|p| !known.contains(&p))
        })
        .collect();
    for span in top {
        write_span(&mut out, span, &spans, 1);
    }
    out
}

/// Renders an error or message event as one line: level, what happened, trace and fingerprint.
pub fn render_event(event: &sentry::protocol::Event<'_>) -> String {
    let mut out = format!("event {}", event.level);
    if let Some(exception) = event.exception.values.last() {
        let _ = write!(out, "  {}", exception.ty);
        if let Some(value) = &exception.value {
            let _ = write!(out, ": {value}");
        }
    } else if let Some(message) = event
        .message
        .as_deref()
        .or_else(|| event.logentry.as_ref().map(|entry| entry.message.as_str()))
    {
        let _ = write!(out, "  {message}");
    }
    if let Some(Context::Trace(trace)) = event.contexts.get("trace") {
        let _ = write!(out, "  trace={} span={}", trace.trace_id, trace.span_id);
    }
    if event.fingerprint.iter().any(|f| f != "{{ default }}") {
        let _ = write!(out, "  fingerprint={:?}", event.fingerprint);
    }
    out.push('\n');
    out
}

fn write_span(out: &mut String, span: &Span, all: &[&Span], depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
    out.push_str(span.op.as_deref().unwrap_or("<no op>"));
    if let Some(description) = &span.description {
        out.push(' ');
        out.push_str(description);
    }
    write_timing(out, Some(span.start_timestamp), span.timestamp);
    if let Some(status) = span.status {
        let _ = write!(out, "  {status}");
    }
    write_data(out, span.data.iter());
    out.push('\n');
    for child in all
        .iter()
        .filter(|c| c.parent_span_id == Some(span.span_id))
    {
        write_span(out, child, all, depth + 1);
    }
}

fn write_timing(out: &mut String, start: Option<SystemTime>, end: Option<SystemTime>) {
    if let (Some(start), Some(end)) = (start, end) {
        let millis = end
            .duration_since(start)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        let _ = write!(out, "  {millis:.2}ms");
    }
}

fn write_data<'a>(out: &mut String, data: impl Iterator<Item = (&'a String, &'a Value)>) {
    let mut first = true;
    for (key, value) in data {
        out.push_str(if first { "  {" } else { ", " });
        first = false;
        let _ = write!(out, "{key}={value}");
    }
    if !first {
        out.push('}');
    }
}
