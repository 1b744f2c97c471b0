//! The producer's side: a `queue.publish` span and the headers for its message.

use std::future::Future;

use sentry::{Hub, TransactionOrSpan};

use super::carrier::CarrierMut;
use super::propagation::{headers_for, TraceHeaders};
use super::{write_message, MessageId, PUBLISH_OP};
use crate::future::{Instrumented, Recording, StatusFn};
use crate::span::{enabled, SpanData, SpanGuard};
use crate::status::Outcome;

/// A `queue.publish` span to be started.
#[must_use = "a publish span is recorded only once started"]
#[derive(Debug, Clone)]
pub struct Publish<'a> {
    destination: &'a str,
    system: &'a str,
    message_id: Option<&'a str>,
    body_size: Option<usize>,
    envelope_size: Option<usize>,
    transaction: Option<&'a str>,
    traceparent: bool,
}

impl<'a> Publish<'a> {
    /// A message for `destination` (a queue or topic) on `system`.
    pub fn new(destination: &'a str, system: &'a str) -> Self {
        Publish {
            destination,
            system,
            message_id: None,
            body_size: None,
            envelope_size: None,
            transaction: None,
            traceparent: false,
        }
    }

    /// `messaging.message.id`.
    pub fn message_id(mut self, id: &'a str) -> Self {
        self.message_id = Some(id);
        self
    }

    /// `messaging.message.body.size`, in bytes.
    pub fn body_size(mut self, bytes: usize) -> Self {
        self.body_size = Some(bytes);
        self
    }

    /// `messaging.message.envelope.size`, in bytes.
    pub fn envelope_size(mut self, bytes: usize) -> Self {
        self.envelope_size = Some(bytes);
        self
    }

    /// The producer's transaction name, for `sentry-transaction` in the baggage (the `sentry`
    /// crate does not expose the current transaction's name). Names that are raw URLs are left
    /// out, as Sentry asks.
    pub fn transaction_name(mut self, name: &'a str) -> Self {
        self.transaction = Some(name);
        self
    }

    /// Whether to write a W3C `traceparent` header too.
    pub fn traceparent(mut self, on: bool) -> Self {
        self.traceparent = on;
        self
    }

    fn write(&self, data: &SpanData<'_>) {
        write_message(
            data,
            self.destination,
            self.system,
            self.message_id.map(MessageId::Str),
            self.body_size,
        );
        if let Some(size) = self.envelope_size {
            data.set("messaging.message.envelope.size", size);
        }
    }

    /// Starts the span as the current span, with the headers for the message.
    pub fn start(&self) -> Published {
        self.published(SpanGuard::start_with(PUBLISH_OP, self.destination, |d| {
            self.write(d);
        }))
    }

    /// Starts the span without making it current, so that it may be held across the
    /// `.await` of the broker call.
    pub fn start_detached(&self) -> Published {
        self.published(SpanGuard::start_detached(
            PUBLISH_OP,
            self.destination,
            |d| {
                self.write(d);
            },
        ))
    }

    fn published(&self, guard: SpanGuard) -> Published {
        let headers = self.headers(guard.span());
        Published { guard, headers }
    }

    /// Headers from the publish span; without one, from the current span (an unsampled trace
    /// still travels, so that the consumer keeps the decision); with neither, none.
    pub(crate) fn headers(&self, span: Option<&TransactionOrSpan>) -> Option<TraceHeaders> {
        if !enabled() {
            return None;
        }
        Hub::with_active(|hub| {
            let current;
            let span = match span {
                Some(span) => span,
                None => {
                    current = hub.configure_scope(|scope| scope.get_span())?;
                    &current
                }
            };
            Some(headers_for(hub, span, self.transaction, self.traceparent))
        })
    }

    /// Runs the future `publish` builds from the headers under the span; its output decides
    /// the status. With Sentry off or no span current, `publish` gets no headers.
    pub fn run<F, B>(&self, publish: B) -> Instrumented<F, StatusFn<F::Output>>
    where
        B: FnOnce(Option<&TraceHeaders>) -> F,
        F: Future,
        F::Output: Outcome,
    {
        let recording = Recording::start(PUBLISH_OP, self.destination, |d| self.write(d));
        let headers = self.headers(recording.as_ref().map(Recording::span));
        Instrumented::new(publish(headers.as_ref()), recording, |output, _| {
            output.status()
        })
    }
}

/// A `queue.publish` span in progress, with the headers for its message.
#[must_use = "the span ends when this is dropped"]
#[derive(Debug)]
pub struct Published {
    guard: SpanGuard,
    headers: Option<TraceHeaders>,
}

impl Published {
    /// The headers for the message; `None` when Sentry is off or no span is current.
    pub fn headers(&self) -> Option<&TraceHeaders> {
        self.headers.as_ref()
    }

    /// Writes the headers into `carrier` (nothing when Sentry is off or no span is current).
    pub fn inject(&self, carrier: &mut (impl CarrierMut + ?Sized)) {
        if let Some(headers) = &self.headers {
            headers.inject(carrier);
        }
    }

    /// Sets the status from `outcome` unless one is set, then ends the span.
    pub fn finish_with_outcome<O: Outcome + ?Sized>(self, outcome: &O) {
        self.guard.finish_with_outcome(outcome);
    }

    /// The span's guard.
    pub fn into_guard(self) -> SpanGuard {
        self.guard
    }
}

/// Publishes a message under a `queue.publish` span; with the `metrics` feature it also counts
/// it in `queue_messages_published_total` when it succeeds. `publish` builds the sending future
/// from the trace headers to put in the message (none when Sentry is off or no span is current).
pub fn track_queue_publish<F, B>(
    queue_name: &'static str,
    system: &str,
    publish: B,
) -> impl Future<Output = F::Output>
where
    B: FnOnce(Option<&TraceHeaders>) -> F,
    F: Future,
    F::Output: Outcome,
{
    let span = Publish::new(queue_name, system).run(publish);
    #[cfg(feature = "metrics")]
    let span = crate::metrics::Metered::new(
        span,
        crate::metrics::Meter::publish_named(queue_name),
        |output: &F::Output| crate::metrics::Verdict::of_status(output.status()),
    );
    span
}
