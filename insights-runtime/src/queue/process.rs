//! The consumer's side: a transaction that continues the producer's trace, with a
//! `queue.process` span inside.

use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use sentry::{Hub, TransactionContext, TransactionOrSpan};

use super::carrier::Carrier;
use super::propagation::{incoming_dsc_of, IncomingTrace};
use super::{write_message, MessageId, PROCESS_OP, TASK_OP};
use crate::dsc;
use crate::future::{Instrumented, Recording, StatusFn};
use crate::span::{enabled, open, Root, SpanData, SpanGuard};
use crate::status::Outcome;

/// A consumer's span to be started: a `queue.process` span inside a transaction continuing the
/// producer's trace.
#[must_use = "a process span is recorded only once started"]
pub struct Process<'a, C: ?Sized> {
    destination: &'a str,
    system: &'a str,
    headers: Option<&'a C>,
    message_id: Option<MessageId<'a>>,
    body_size: Option<usize>,
    retry_count: Option<u64>,
    latency_ms: Option<f64>,
    name: Option<&'a str>,
    op: &'a str,
}

impl<'a, C: Carrier + ?Sized> Process<'a, C> {
    /// A message from `destination` on `system`, with the headers it carried.
    pub fn new(destination: &'a str, system: &'a str, headers: Option<&'a C>) -> Self {
        Process {
            destination,
            system,
            headers,
            message_id: None,
            body_size: None,
            retry_count: None,
            latency_ms: None,
            name: None,
            op: TASK_OP,
        }
    }

    /// `messaging.message.id`.
    pub fn message_id(mut self, id: &'a str) -> Self {
        self.message_id = Some(MessageId::Str(id));
        self
    }

    /// `messaging.message.id` from any displayable id (a UUID, a number), formatted only when
    /// the span is recorded.
    pub fn message_id_display(mut self, id: &'a dyn std::fmt::Display) -> Self {
        self.message_id = Some(MessageId::Display(id));
        self
    }

    /// `messaging.message.body.size`, in bytes.
    pub fn body_size(mut self, bytes: usize) -> Self {
        self.body_size = Some(bytes);
        self
    }

    /// `messaging.message.retry.count`.
    pub fn retry_count(mut self, count: u64) -> Self {
        self.retry_count = Some(count);
        self
    }

    /// `messaging.message.receive.latency` in milliseconds, when the broker knows it better
    /// than the publish time in the headers; recorded rounded to a whole number of
    /// milliseconds, the registry's type.
    pub fn receive_latency_ms(mut self, ms: f64) -> Self {
        self.latency_ms = Some(ms);
        self
    }

    /// The transaction's name (default: the destination).
    pub fn transaction_name(mut self, name: &'a str) -> Self {
        self.name = Some(name);
        self
    }

    /// The transaction's op (default `queue.task`).
    pub fn transaction_op(mut self, op: &'a str) -> Self {
        self.op = op;
        self
    }

    /// Starts the message's spans, or decides that none are recorded.
    fn begin(&self) -> Option<Begun> {
        if !enabled() {
            return None;
        }
        Hub::with_active(|hub| {
            let incoming = self.headers.and_then(|h| IncomingTrace::read(h, false));
            let name = self.name.unwrap_or(self.destination);
            let current = hub.configure_scope(|scope| scope.get_span());
            let root: Option<TransactionOrSpan> = match (&incoming, &current) {
                (Some(incoming), _) => {
                    let mut ctx = TransactionContext::new_with_details(
                        name,
                        self.op,
                        incoming.trace_id,
                        None,
                        Some(incoming.parent_span_id),
                    );
                    ctx.set_sampled(incoming.sampled);
                    if let Some(headers) = self.headers {
                        // Everything this transaction sends downstream, and its envelope, carry
                        // the producer's DSC unchanged.
                        dsc::continue_trace(incoming.trace_id, || incoming_dsc_of(headers));
                    }
                    Some(hub.start_transaction(ctx).into())
                }
                // No trace in the message, but one is current: the message is handled inside it.
                (None, Some(_)) => None,
                (None, None) => Some(
                    hub.start_transaction(TransactionContext::new(name, self.op))
                        .into(),
                ),
            };
            let parent = root.as_ref().or(current.as_ref())?;
            let Some(span) = open(
                hub,
                Some(parent),
                PROCESS_OP,
                self.destination,
                &Root::ChildOnly,
            ) else {
                // Not sampled: keep the transaction current, so that errors captured while the
                // message is handled still carry its trace; it ends (unsent) with the guard.
                return root.map(|root| Begun {
                    hub: Arc::clone(hub),
                    current: root,
                    transaction: None,
                });
            };
            // Also for a message that carries no trace: the broker may know when it was
            // published (`Carrier::published_at`).
            let latency = self
                .latency_ms
                .or_else(|| self.queued_for().map(|d| d.as_secs_f64() * 1000.0));
            let data = SpanData::new(&span);
            write_message(
                &data,
                self.destination,
                self.system,
                self.message_id,
                self.body_size,
            );
            if let Some(count) = self.retry_count {
                data.set("messaging.message.retry.count", count);
            }
            if let Some(ms) = latency {
                // An integer number of milliseconds, as Sentry's attribute registry types it.
                data.set("messaging.message.receive.latency", latency_millis(ms));
            }
            Some(Begun {
                hub: Arc::clone(hub),
                current: span,
                transaction: root,
            })
        })
    }

    /// Starts the transaction and span, current until the guard drops (sync consumers). The
    /// status set when it ends goes on both.
    pub fn start(&self) -> SpanGuard {
        match self.begin() {
            Some(begun) => SpanGuard::current(&begun.hub, begun.current, begun.transaction),
            None => SpanGuard::noop(),
        }
    }

    /// Starts the transaction and span for a future that handles the message.
    pub fn recording(&self) -> Option<Recording> {
        let begun = self.begin()?;
        Some(Recording::on_fork(
            &begun.hub,
            begun.current,
            begun.transaction,
        ))
    }

    /// How long the message spent in the queue: since the broker's publish time when the
    /// carrier knows it, else the enqueue time in its headers; zero when the clocks disagree.
    pub(crate) fn queued_for(&self) -> Option<std::time::Duration> {
        use std::time::Duration;
        let enqueued = self.headers.and_then(super::propagation::enqueued_at)?;
        Some(
            SystemTime::now()
                .duration_since(enqueued)
                .unwrap_or(Duration::ZERO),
        )
    }

    /// Handles the message with `future`, under the span; its output decides the status of
    /// both the span and the transaction.
    pub fn run<F>(&self, future: F) -> Instrumented<F, StatusFn<F::Output>>
    where
        F: Future,
        F::Output: Outcome,
    {
        Instrumented::new(future, self.recording(), |output, _| output.status())
    }
}

/// A consumer's spans, started.
struct Begun {
    hub: Arc<Hub>,
    /// The span made current: the `queue.process` span, or the transaction alone when the
    /// trace is not sampled (so that errors captured meanwhile still carry the trace).
    current: TransactionOrSpan,
    /// A transaction started for the message, ended with `current`.
    transaction: Option<TransactionOrSpan>,
}

/// Handles a message under a `queue.process` span in a transaction continuing the producer's
/// trace (from `headers`); with the `metrics` feature it also records
/// `queue_messages_processed_total`, `queue_process_duration_seconds` and
/// `queue_receive_latency_seconds`.
pub fn track_queue_process<C, F>(
    queue_name: &'static str,
    system: &str,
    headers: &C,
    future: F,
) -> impl Future<Output = F::Output>
where
    C: Carrier + ?Sized,
    F: Future,
    F::Output: Outcome,
{
    let process = Process::new(queue_name, system, Some(headers));
    #[cfg(feature = "metrics")]
    let meter = crate::metrics::Meter::process_named(queue_name).received(process.queued_for());
    let span = process.run(future);
    #[cfg(feature = "metrics")]
    let span = crate::metrics::Metered::new(span, meter, |output: &F::Output| {
        crate::metrics::Verdict::of_status(output.status())
    });
    span
}

/// A latency in milliseconds as a whole number: rounded, a negative or NaN one is `0`, and one
/// beyond `u64` saturates.
fn latency_millis(ms: f64) -> u64 {
    // `as` saturates and maps NaN to 0.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "saturating on purpose"
    )]
    let millis = ms.round() as u64;
    millis
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use super::*;

    fn enqueued(at: SystemTime) -> HashMap<String, String> {
        let secs = at
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        HashMap::from([(
            super::super::propagation::ENQUEUED_TIME.to_owned(),
            format!("{secs:.6}"),
        )])
    }

    #[test]
    fn time_in_the_queue_is_never_negative() {
        let past = enqueued(SystemTime::now() - Duration::from_millis(1500));
        let waited = Process::new("q", "test", Some(&past))
            .queued_for()
            .expect("an enqueue time");
        assert!(waited >= Duration::from_millis(1500), "{waited:?}");
        // A producer whose clock runs ahead: zero, not a negative or a wrapped-around time.
        let future = enqueued(SystemTime::now() + Duration::from_secs(3));
        assert_eq!(
            Process::new("q", "test", Some(&future)).queued_for(),
            Some(Duration::ZERO)
        );
        let none: HashMap<String, String> = HashMap::new();
        assert_eq!(Process::new("q", "test", Some(&none)).queued_for(), None);
    }
}
