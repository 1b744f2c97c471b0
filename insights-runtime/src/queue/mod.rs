//! Queue spans for Sentry's Queues page, and the trace carried inside each message.
//!
//! A producer records a `queue.publish` span (a child of the current span) and writes the trace
//! into the message's headers: `sentry-trace`, a full `baggage` (the `sentry` crate writes
//! none, and consumers built on other Sentry SDKs then lose trace-consistent sampling), the
//! publish time, and optionally a W3C `traceparent`. A consumer reads them back and records a
//! transaction (op `queue.task`) that continues the producer's trace, with a `queue.process`
//! span inside carrying the message data and the time the message spent in the queue.
//!
//! ```
//! use std::collections::HashMap;
//! use insights_runtime::queue::QueueTracker;
//!
//! let queue = QueueTracker::new("rabbitmq");
//!
//! // Producer: inside a request or a job.
//! let body = br#"{"order":7}"#;
//! let mut headers = HashMap::new();
//! let published = queue.publish("orders").message_id("m-1").body_size(body.len()).start();
//! published.inject(&mut headers);
//! // channel.basic_publish(.., body, headers) ...
//! drop(published);
//!
//! // Consumer, in another process: continue the trace from the headers.
//! let processing = queue
//!     .process("orders", &headers)
//!     .message_id("m-1")
//!     .body_size(body.len())
//!     .retry_count(0)
//!     .start();
//! // handle the message ...
//! processing.finish_with_outcome(&Ok::<_, ()>(()));
//! ```
//!
//! Headers from the network are untrusted: every value is length-checked (values over
//! [`MAX_HEADER_LEN`] bytes are ignored), only the first [`MAX_BAGGAGE_ENTRIES`] baggage
//! entries are read, and anything malformed (bad hex, wrong lengths, non-ASCII, an all-zero
//! id) is ignored, so the consumer starts a new trace instead. Nothing panics and nothing
//! allocates in proportion to a hostile header.

mod carrier;
mod process;
pub(crate) mod propagation;
mod publish;

use std::borrow::Cow;

use crate::span::SpanData;

pub use carrier::{Carrier, CarrierMut};
pub use process::{track_queue_process, Process};
pub use propagation::{
    IncomingTrace, TraceHeaders, BAGGAGE, BAGGAGE_UNDERSCORE, ENQUEUED_TIME, MAX_BAGGAGE_ENTRIES,
    MAX_HEADER_LEN, SENTRY_TRACE, SENTRY_TRACE_UNDERSCORE, TRACEPARENT,
};
pub use publish::{track_queue_publish, Publish, Published};

/// Op of the producer's span.
pub const PUBLISH_OP: &str = "queue.publish";
/// Op of the consumer's span.
pub const PROCESS_OP: &str = "queue.process";
/// Default op of the consumer's transaction.
pub const TASK_OP: &str = "queue.task";

/// Producers and consumers of one messaging system (`rabbitmq`, `kafka`, `nats`, ...).
#[derive(Debug, Clone)]
pub struct QueueTracker {
    system: Cow<'static, str>,
    traceparent: bool,
}

impl QueueTracker {
    /// A tracker for `system`, recorded as `messaging.system`.
    pub fn new(system: impl Into<Cow<'static, str>>) -> Self {
        QueueTracker {
            system: system.into(),
            traceparent: false,
        }
    }

    /// Also write a W3C `traceparent` header (off by default: Sentry SDKs read `sentry-trace`).
    pub fn with_traceparent(mut self, on: bool) -> Self {
        self.traceparent = on;
        self
    }

    /// A `queue.publish` span for a message sent to `destination`.
    pub fn publish<'a>(&'a self, destination: &'a str) -> Publish<'a> {
        Publish::new(destination, &self.system).traceparent(self.traceparent)
    }

    /// A consumer's transaction and `queue.process` span for a message from `destination`
    /// carrying `headers`.
    pub fn process<'a, C: Carrier + ?Sized>(
        &'a self,
        destination: &'a str,
        headers: &'a C,
    ) -> Process<'a, C> {
        Process::new(destination, &self.system, Some(headers))
    }
}

/// The data a producer's and a consumer's span share.
fn write_message(
    data: &SpanData<'_>,
    destination: &str,
    system: &str,
    id: Option<MessageId<'_>>,
    body_size: Option<usize>,
) {
    data.set("messaging.destination.name", destination);
    data.set("messaging.system", system);
    match id {
        Some(MessageId::Str(id)) => data.set("messaging.message.id", id),
        Some(MessageId::Display(id)) => data.set("messaging.message.id", id.to_string()),
        None => {}
    }
    if let Some(size) = body_size {
        data.set("messaging.message.body.size", size);
    }
}

#[derive(Clone, Copy)]
enum MessageId<'a> {
    Str(&'a str),
    Display(&'a dyn std::fmt::Display),
}
