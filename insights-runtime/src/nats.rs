//! NATS and JetStream (feature `nats`): the trace inside a message's headers, and a consumer's
//! spans prefilled from a JetStream message.
//!
//! * `async_nats::HeaderMap` is a [`Carrier`] and a [`CarrierMut`]: a producer writes the trace
//!   into the headers it passes to `jetstream.publish_with_headers`, a consumer reads it back.
//!   `async_nats::Message` and `async_nats::jetstream::Message` are carriers too (their
//!   headers, or none).
//! * [`process`] turns a JetStream message into a [`Process`] (the consumer's `queue.task`
//!   transaction and its `queue.process` span) with everything the message tells filled in:
//!   `messaging.system` `nats`, the stream as destination, `messaging.message.id`, the body
//!   size, the retry count from JetStream's delivery count and the receive latency from the
//!   time the server stored the message.
//! * [`retry_count`], [`message_id`] and [`destination`] give the same values one by one, for
//!   the [`instrument_queue_process`](crate::instrument_queue_process) attribute; a
//!   `&jetstream::Message` parameter can also be its `retry_count_param` as it is.
//!
//! ```no_run
//! use async_nats::jetstream::{self, AckKind};
//! use async_nats::HeaderMap;
//! use insights_runtime::nats;
//!
//! // Producer: inside a request or a job. The destination is the stream's name.
//! async fn publish(js: &jetstream::Context) -> Result<(), async_nats::Error> {
//!     let body = br#"{"order":7}"#;
//!     let published = nats::tracker()
//!         .publish("ORDERS")
//!         .message_id("o-7")
//!         .body_size(body.len())
//!         .start_detached();
//!     let mut headers = HeaderMap::new();
//!     headers.insert("Nats-Msg-Id", "o-7"); // the consumer's `messaging.message.id`
//!     published.inject(&mut headers);
//!     let sent = js.publish_with_headers("orders.new", headers, body.as_slice().into()).await;
//!     let ack = match sent {
//!         Ok(ack) => ack.await.map_err(async_nats::Error::from),
//!         Err(e) => Err(e.into()),
//!     };
//!     published.finish_with_outcome(&ack);
//!     ack.map(drop)
//! }
//!
//! // Consumer, in another process: each message from a pull consumer's `messages()` stream
//! // becomes a transaction continuing the producer's trace.
//! async fn consume(message: jetstream::Message) -> Result<(), async_nats::Error> {
//!     let outcome = nats::process(&message).run(handle(&message.payload)).await;
//!     let ack = if outcome.is_ok() { AckKind::Ack } else { AckKind::Nak(None) };
//!     message.ack_with(ack).await
//! }
//!
//! async fn handle(body: &[u8]) -> Result<(), std::io::Error> {
//!     Ok(())
//! }
//! ```
//!
//! What the application must do, and must not:
//!
//! * **Name the stream** as the producer's destination (`publish("ORDERS")`, or
//!   `destination = "ORDERS"` in the attribute): the consumer's destination is the stream the
//!   message came from, and Sentry's Queues page pairs producers with consumers by it. A subject
//!   is no destination: subjects often carry ids (`orders.eu.1234`), one Queues row each.
//! * **Write the headers before publishing**: `inject` (or the attribute's `headers_param`)
//!   fills the `HeaderMap` that `publish_with_headers` then takes by value; headers written
//!   after it are not sent.
//! * Set `Nats-Msg-Id` (JetStream's deduplication id) and give the producer's span the same
//!   `message_id`, so that both spans carry one id; without it the consumer records the
//!   stream sequence, which the producer learns only from the acknowledgement.
//! * Handle each message on a hub of its own when messages are handled concurrently
//!   (`fut.bind_hub(Hub::new_from_top(Hub::current()))`), as for any `sentry` code.
//! * Acknowledge (or `Nak`) the message yourself, after the handler: the handler's outcome is
//!   the status of the span and the transaction; nothing here acknowledges or retries.
//! * Do not rely on header names that differ only in case: NATS keeps names as written, and a
//!   lookup here prefers the exact name, then any in another case.
//!
//! Headers come from the network: a value over [`MAX_HEADER_LEN`] bytes is ignored, as are
//! malformed traces and ack subjects; nothing panics, and a header lookup allocates nothing.
//! Names and values that NATS cannot carry (a `:`, a control character, a line break) are not
//! written.

use std::time::SystemTime;

use async_nats::header::{HeaderName, HeaderValue};
use async_nats::jetstream;
use async_nats::HeaderMap;

use crate::queue::{Carrier, CarrierMut, Process, QueueTracker, MAX_HEADER_LEN};

/// `messaging.system` for NATS.
pub const SYSTEM: &str = "nats";

/// JetStream's deduplication id, read as `messaging.message.id`.
pub const MESSAGE_ID: &str = "Nats-Msg-Id";

/// A [`QueueTracker`] for NATS (`messaging.system` `nats`), for producers.
///
/// ```
/// let queue = insights_runtime::nats::tracker();
/// let published = queue.publish("ORDERS").message_id("o-7").start();
/// let mut headers = async_nats::HeaderMap::new();
/// published.inject(&mut headers); // nothing without Sentry or a current span
/// ```
pub fn tracker() -> QueueTracker {
    QueueTracker::new(SYSTEM)
}

/// The consumer's spans for a JetStream message, prefilled from it: a `queue.task` transaction
/// continuing the producer's trace from the message's headers, with a `queue.process` span
/// inside carrying
///
/// | key | value |
/// |---|---|
/// | `messaging.destination.name` (and the description, and the transaction's name) | the stream ([`destination`]) |
/// | `messaging.system` | `nats` |
/// | `messaging.message.id` | the `Nats-Msg-Id` header, else the stream sequence ([`message_id`]) |
/// | `messaging.message.body.size` | the payload's length |
/// | `messaging.message.retry.count` | deliveries before this one ([`retry_count`]) |
/// | `messaging.message.receive.latency` | milliseconds since the server stored the message, an integer |
///
/// For a message without JetStream's metadata (a core NATS message), the destination is its
/// subject, and the retry count and latency are left out (the latency then comes from the
/// publish time a producer wrote into the headers, if any). The builder's other settings
/// (`transaction_name`, `transaction_op`, ..) can still be changed; nothing is recorded until
/// it is started (`start`, `run`, `recording`); reading a JetStream message allocates nothing.
///
/// ```no_run
/// # async fn handle(body: &[u8]) -> Result<(), std::io::Error> { Ok(()) }
/// # async fn consume(message: async_nats::jetstream::Message) -> Result<(), async_nats::Error> {
/// let outcome = insights_runtime::nats::process(&message).run(handle(&message.payload)).await;
/// # Ok(()) }
/// ```
pub fn process(message: &jetstream::Message) -> Process<'_, HeaderMap> {
    let metadata = message.info().ok();
    let destination = metadata
        .as_ref()
        .map_or(message.subject.as_str(), |info| info.stream);
    let mut process = Process::new(destination, SYSTEM, message.headers.as_ref())
        .body_size(message.payload.len());
    if let Some(id) = id_of(message, metadata.as_ref()) {
        process = process.message_id(id);
    }
    if let Some(info) = &metadata {
        process = process
            .retry_count(retries(info.delivered))
            .receive_latency_ms(millis_since(
                SystemTime::from(info.published),
                SystemTime::now(),
            ));
    }
    process
}

/// How many times the message was delivered before this delivery: JetStream's delivery count
/// less one; `0` for a first delivery and for a message without JetStream's metadata.
///
/// For `retry_count_param` when the attribute's function takes the headers and not the
/// message; a `&jetstream::Message` parameter can be the `retry_count_param` itself.
pub fn retry_count(message: &jetstream::Message) -> u64 {
    message.info().map_or(0, |info| retries(info.delivered))
}

/// The message's id: its `Nats-Msg-Id` header, else its stream sequence (as text, as JetStream
/// wrote it); `None` for a message with neither.
pub fn message_id(message: &jetstream::Message) -> Option<&str> {
    id_of(message, message.info().ok().as_ref())
}

/// The message's destination: the stream it was delivered from, else its subject.
pub fn destination(message: &jetstream::Message) -> &str {
    message
        .info()
        .map_or(message.subject.as_str(), |info| info.stream)
}

fn id_of<'a>(
    message: &'a jetstream::Message,
    metadata: Option<&jetstream::message::Info<'a>>,
) -> Option<&'a str> {
    message
        .headers
        .as_ref()
        .and_then(|headers| headers.header(MESSAGE_ID))
        .filter(|id| !id.is_empty() && id.len() <= MAX_HEADER_LEN)
        .or_else(|| {
            let info = metadata?;
            sequence_text(message.reply.as_deref()?, info.stream_sequence)
        })
}

/// Deliveries before this one; a count below 1 is none.
fn retries(delivered: i64) -> u64 {
    u64::try_from(delivered.saturating_sub(1)).unwrap_or(0)
}

/// Milliseconds from `then` to `now`; `0` when the clocks disagree.
fn millis_since(then: SystemTime, now: SystemTime) -> f64 {
    now.duration_since(then)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// The stream sequence as the reply subject `$JS.ACK.…` writes it (ADR-15: `<stream>.<consumer>.
/// <delivered>.<stream seq>.…`, 7 tokens, or 9 or more with `<domain>.<account hash>.` first),
/// when it is the `sequence` the client read from it, written canonically.
fn sequence_text(reply: &str, sequence: u64) -> Option<&str> {
    let tokens = reply.strip_prefix("$JS.ACK.")?;
    let index = match tokens.split('.').take(9).count() {
        7 => 3,
        9 => 5,
        _ => return None,
    };
    tokens.split('.').nth(index).filter(|text| {
        let canonical =
            text.bytes().all(|b| b.is_ascii_digit()) && (text.len() == 1 || !text.starts_with('0'));
        canonical && text.parse::<u64>() == Ok(sequence)
    })
}

/// NATS's message headers: a name is matched exactly first, then in any case (NATS keeps names
/// as written); of a name's several values, the first is read. Written headers replace every
/// value of that exact name; a name or value NATS cannot carry (empty, with `:`, a control
/// character, a space or a line break in the name; a line break in the value) is not written.
///
/// ```
/// use insights_runtime::queue::{Carrier, CarrierMut};
/// use async_nats::HeaderMap;
///
/// let mut headers = HeaderMap::new();
/// headers.set_header("sentry-trace", "771a43a4192642f0b136d5159a501700-b0e6f15b45c36b12-1".into());
/// headers.insert("Nats-Msg-Id", "o-7");
/// assert_eq!(
///     headers.header("sentry-trace"),
///     Some("771a43a4192642f0b136d5159a501700-b0e6f15b45c36b12-1")
/// );
/// assert_eq!(headers.header("nats-msg-id"), Some("o-7"));
/// headers.set_header("bad:name", "v".into()); // not a NATS header name: nothing written
/// assert_eq!(headers.len(), 2);
/// ```
impl Carrier for HeaderMap {
    fn header(&self, name: &str) -> Option<&str> {
        let mut other_case = None;
        for (key, values) in self.iter() {
            let key: &str = key.as_ref();
            if key == name {
                return values.first().map(HeaderValue::as_str);
            }
            if other_case.is_none() && key.eq_ignore_ascii_case(name) {
                other_case = values.first();
            }
        }
        other_case.map(HeaderValue::as_str)
    }
}

impl CarrierMut for HeaderMap {
    fn set_header(&mut self, name: &str, value: String) {
        if name.is_empty() {
            return;
        }
        // Both parse without panicking (`insert` with `&str`s would assert).
        if let (Ok(name), Ok(value)) = (name.parse::<HeaderName>(), value.parse::<HeaderValue>()) {
            self.insert(name, value);
        }
    }
}

/// A core NATS message's headers (none when it has none).
impl Carrier for async_nats::Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.as_ref()?.header(name)
    }
}

/// A JetStream message's headers (none when it has none), so that the message itself can be
/// an attribute's `headers_param`; its publish time is the server's, so the receive latency
/// is JetStream's own (the time the message spent in the stream).
impl Carrier for jetstream::Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.message.header(name)
    }

    fn published_at(&self) -> Option<SystemTime> {
        self.info()
            .ok()
            .map(|info| SystemTime::from(info.published))
    }
}

/// A JetStream message as the attributes' `retry_count_param`: its [`retry_count`].
impl crate::__private_0_1_0::RetryCount for jetstream::Message {
    fn retries(&self) -> u64 {
        retry_count(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_sequence_is_read_from_both_reply_formats() {
        let v1 = "$JS.ACK.ORDERS.worker.2.1234.17.1790230470084404000.0";
        assert_eq!(sequence_text(v1, 1234), Some("1234"));
        let v2 = "$JS.ACK._.acchash.ORDERS.worker.1.9.9.1790230470084404000.3";
        assert_eq!(sequence_text(v2, 9), Some("9"));
        let v2_token = "$JS.ACK.hub.acchash.ORDERS.worker.1.90.91.1790230470084404000.3.tok";
        assert_eq!(sequence_text(v2_token, 90), Some("90"));
        // Only when it is what the client parsed, written canonically.
        assert_eq!(sequence_text(v1, 1235), None);
        let padded = "$JS.ACK.ORDERS.worker.2.01234.17.1790230470084404000.0";
        assert_eq!(sequence_text(padded, 1234), None);
        let signed = "$JS.ACK.ORDERS.worker.2.+1234.17.1790230470084404000.0";
        assert_eq!(sequence_text(signed, 1234), None);
        for odd in [
            "",
            "$JS.ACK.",
            "$JS.ACK.ORDERS.worker.2.1234",
            "_INBOX.abc.1234",
            "$JS.ACK.a.b.c.d.e.f.g.h",
        ] {
            assert_eq!(sequence_text(odd, 1234), None, "{odd}");
        }
    }

    #[test]
    fn retries_and_latency_never_go_negative() {
        assert_eq!(retries(1), 0);
        assert_eq!(retries(2), 1);
        assert_eq!(retries(0), 0);
        assert_eq!(retries(-5), 0);
        assert_eq!(retries(i64::MIN), 0);
        let now = SystemTime::now();
        assert!((millis_since(now - Duration::from_millis(1500), now) - 1500.0).abs() < 1e-6);
        assert_eq!(millis_since(now + Duration::from_secs(3), now), 0.0);
    }

    #[test]
    fn header_names_nats_cannot_carry_are_not_written() {
        let mut headers = HeaderMap::new();
        for name in ["", "a:b", "a b", "é", "a\r\nb", "\u{7f}"] {
            headers.set_header(name, "v".to_owned());
        }
        headers.set_header("ok", "line\r\nbreak".to_owned());
        assert!(headers.is_empty());
        headers.set_header("sentry-trace", "one".to_owned());
        headers.set_header("sentry-trace", "two".to_owned());
        assert_eq!(headers.len(), 1);
        assert_eq!(headers.header("SENTRY-TRACE"), Some("two"));
    }

    #[test]
    fn the_exact_name_wins_over_another_case() {
        let mut headers = HeaderMap::new();
        headers.insert("Sentry-Trace", "upper");
        headers.insert("sentry-trace", "lower");
        headers.append("sentry-trace", "second");
        assert_eq!(headers.header("sentry-trace"), Some("lower"));
        assert_eq!(headers.header("Sentry-Trace"), Some("upper"));
        assert_eq!(headers.header("baggage"), None);
    }
}
