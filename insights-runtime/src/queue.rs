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

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::future::Future;
use std::time::{SystemTime, UNIX_EPOCH};

use sentry::protocol::{SpanId, TraceId};
use sentry::{Hub, TracesSamplingStrategy, TransactionContext, TransactionOrSpan};

use crate::future::{Instrumented, Recording, StatusFn};
use crate::span::{enabled, open, Root, SpanData, SpanGuard};
use crate::status::Outcome;

/// Op of the producer's span.
pub const PUBLISH_OP: &str = "queue.publish";
/// Op of the consumer's span.
pub const PROCESS_OP: &str = "queue.process";
/// Default op of the consumer's transaction.
pub const TASK_OP: &str = "queue.task";

/// `sentry-trace`: `<trace id>-<span id>-<sampled>`.
pub const SENTRY_TRACE: &str = "sentry-trace";
/// W3C `baggage`, holding Sentry's dynamic sampling context.
pub const BAGGAGE: &str = "baggage";
/// W3C `traceparent`, written when enabled ([`QueueTracker::with_traceparent`]).
pub const TRACEPARENT: &str = "traceparent";
/// When the message was published: seconds since the Unix epoch, as a decimal (the name
/// Sentry's Python SDK uses for Celery tasks).
pub const ENQUEUED_TIME: &str = "sentry-task-enqueued-time";
/// `sentry-trace` for brokers that reject `-` in header names.
pub const SENTRY_TRACE_UNDERSCORE: &str = "sentry_trace";
/// `baggage` under the name used beside [`SENTRY_TRACE_UNDERSCORE`].
pub const BAGGAGE_UNDERSCORE: &str = "sentry_baggage";

/// Longest header value read; longer ones are ignored (W3C's baggage limit).
pub const MAX_HEADER_LEN: usize = 8192;
/// Most baggage entries read.
pub const MAX_BAGGAGE_ENTRIES: usize = 64;

/// Message headers a trace can be read from.
///
/// Implemented for `HashMap<String, String>`, `BTreeMap<String, String>`,
/// `Vec<(String, String)>`, `[(&str, &str)]` and, with the `http` feature, `http::HeaderMap`.
/// For a broker's own header type, a few lines:
///
/// ```
/// use insights_runtime::queue::Carrier;
///
/// struct Properties(Vec<(String, Vec<u8>)>);
///
/// impl Carrier for Properties {
///     fn header(&self, name: &str) -> Option<&str> {
///         self.0
///             .iter()
///             .find(|(k, _)| k.eq_ignore_ascii_case(name))
///             .and_then(|(_, v)| std::str::from_utf8(v).ok())
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a header carrier",
    label = "not a `Carrier`",
    note = "implement `insights_runtime::queue::Carrier` for it (one method: `header(name)`), or pass a `HashMap<String, String>`"
)]
pub trait Carrier {
    /// The value of header `name`, matched case-insensitively (`name` is lower case).
    fn header(&self, name: &str) -> Option<&str>;
}

/// Message headers a trace can be written to.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot take headers",
    label = "not a `CarrierMut`",
    note = "implement `insights_runtime::queue::CarrierMut` for it (one method: `set_header(name, value)`), or pass a `&mut HashMap<String, String>`"
)]
pub trait CarrierMut {
    /// Sets header `name` to `value`, replacing a previous value.
    fn set_header(&mut self, name: &str, value: String);
}

fn find<'a>(mut pairs: impl Iterator<Item = (&'a str, &'a str)>, name: &str) -> Option<&'a str> {
    pairs
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

impl<S: std::hash::BuildHasher> Carrier for HashMap<String, String, S> {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name)
            .map(String::as_str)
            .or_else(|| find(self.iter().map(|(k, v)| (k.as_str(), v.as_str())), name))
    }
}

impl<S: std::hash::BuildHasher> CarrierMut for HashMap<String, String, S> {
    fn set_header(&mut self, name: &str, value: String) {
        self.insert(name.to_owned(), value);
    }
}

impl Carrier for BTreeMap<String, String> {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name)
            .map(String::as_str)
            .or_else(|| find(self.iter().map(|(k, v)| (k.as_str(), v.as_str())), name))
    }
}

impl CarrierMut for BTreeMap<String, String> {
    fn set_header(&mut self, name: &str, value: String) {
        self.insert(name.to_owned(), value);
    }
}

impl Carrier for Vec<(String, String)> {
    fn header(&self, name: &str) -> Option<&str> {
        find(self.iter().map(|(k, v)| (k.as_str(), v.as_str())), name)
    }
}

impl CarrierMut for Vec<(String, String)> {
    fn set_header(&mut self, name: &str, value: String) {
        match self.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
            Some(entry) => entry.1 = value,
            None => self.push((name.to_owned(), value)),
        }
    }
}

impl Carrier for [(&str, &str)] {
    fn header(&self, name: &str) -> Option<&str> {
        find(self.iter().copied(), name)
    }
}

#[cfg(feature = "http")]
impl Carrier for http::HeaderMap {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| v.to_str().ok())
    }
}

#[cfg(feature = "http")]
impl CarrierMut for http::HeaderMap {
    fn set_header(&mut self, name: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::header::HeaderName::from_bytes(name.as_bytes()),
            http::header::HeaderValue::from_str(&value),
        ) {
            self.insert(name, value);
        }
    }
}

impl<C: Carrier + ?Sized> Carrier for &C {
    fn header(&self, name: &str) -> Option<&str> {
        (**self).header(name)
    }
}

impl<C: Carrier + ?Sized> Carrier for &mut C {
    fn header(&self, name: &str) -> Option<&str> {
        (**self).header(name)
    }
}

impl<C: CarrierMut + ?Sized> CarrierMut for &mut C {
    fn set_header(&mut self, name: &str, value: String) {
        (**self).set_header(name, value);
    }
}

/// The headers a producer puts into a message.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceHeaders {
    /// `sentry-trace`.
    pub sentry_trace: String,
    /// `baggage`: Sentry's dynamic sampling context.
    pub baggage: String,
    /// `traceparent`, when enabled.
    pub traceparent: Option<String>,
    /// [`ENQUEUED_TIME`]: seconds since the Unix epoch.
    pub enqueued_time: String,
}

impl TraceHeaders {
    /// Each header as `(name, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            Some((SENTRY_TRACE, self.sentry_trace.as_str())),
            Some((BAGGAGE, self.baggage.as_str())),
            self.traceparent.as_deref().map(|t| (TRACEPARENT, t)),
            Some((ENQUEUED_TIME, self.enqueued_time.as_str())),
        ]
        .into_iter()
        .flatten()
    }

    /// Writes the headers into `carrier`.
    pub fn inject(&self, carrier: &mut (impl CarrierMut + ?Sized)) {
        for (name, value) in self.iter() {
            carrier.set_header(name, value.to_owned());
        }
    }

    /// Writes the headers under names without `-` (`sentry_trace`, `sentry_baggage`,
    /// `sentry_task_enqueued_time`, `traceparent`), for brokers that reject `-`.
    pub fn inject_underscored(&self, carrier: &mut (impl CarrierMut + ?Sized)) {
        carrier.set_header(SENTRY_TRACE_UNDERSCORE, self.sentry_trace.clone());
        carrier.set_header(BAGGAGE_UNDERSCORE, self.baggage.clone());
        if let Some(traceparent) = &self.traceparent {
            carrier.set_header(TRACEPARENT, traceparent.clone());
        }
        carrier.set_header("sentry_task_enqueued_time", self.enqueued_time.clone());
    }
}

/// A trace read from a message's headers.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingTrace {
    /// The producer's trace.
    pub trace_id: TraceId,
    /// The producer's `queue.publish` span: the parent of the consumer's transaction.
    pub parent_span_id: SpanId,
    /// The producer's sampling decision, from `sentry-trace` or else `sentry-sampled` in the
    /// baggage; `None` leaves it to the consumer.
    pub sampled: Option<bool>,
    /// The `sentry-` entries of the baggage, without the prefix (`trace_id`, `sample_rate`, ..).
    pub baggage: Vec<(String, String)>,
    /// When the message was published, from [`ENQUEUED_TIME`].
    pub enqueued_at: Option<SystemTime>,
}

impl IncomingTrace {
    /// Reads the trace from `carrier`: `sentry-trace` (or `sentry_trace`), `baggage` (or
    /// `sentry_baggage`) and the publish time. `None` when there is no valid `sentry-trace`.
    pub fn from_carrier<C: Carrier + ?Sized>(carrier: &C) -> Option<Self> {
        Self::read(carrier, true)
    }

    /// As [`from_carrier`](Self::from_carrier); without `keep_baggage` the baggage entries are
    /// not collected (a consumer needs only the sampling decision from them), so nothing is
    /// allocated.
    pub(crate) fn read<C: Carrier + ?Sized>(carrier: &C, keep_baggage: bool) -> Option<Self> {
        let value = |name: &str, alternative: &str| {
            carrier
                .header(name)
                .or_else(|| carrier.header(alternative))
                .filter(|v| v.len() <= MAX_HEADER_LEN)
        };
        let (trace_id, parent_span_id, flag) =
            parse_sentry_trace(value(SENTRY_TRACE, SENTRY_TRACE_UNDERSCORE)?)?;
        let baggage = value(BAGGAGE, BAGGAGE_UNDERSCORE);
        let sampled = flag.or_else(|| {
            baggage.and_then(|b| {
                baggage_entries(b).find_map(|(key, value)| match (key, value) {
                    ("sampled", "true") => Some(true),
                    ("sampled", "false") => Some(false),
                    _ => None,
                })
            })
        });
        let baggage = match baggage {
            Some(b) if keep_baggage => parse_baggage(b),
            _ => Vec::new(),
        };
        let enqueued_at = enqueued_at(carrier);
        Some(IncomingTrace {
            trace_id,
            parent_span_id,
            sampled,
            baggage,
            enqueued_at,
        })
    }

    /// Milliseconds between publishing and `now` (0 when the clocks disagree).
    pub fn receive_latency_ms(&self, now: SystemTime) -> Option<f64> {
        let published = self.enqueued_at?;
        Some(
            now.duration_since(published)
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        )
    }
}

/// When the message was published, from its enqueue-time header.
pub(crate) fn enqueued_at<C: Carrier + ?Sized>(carrier: &C) -> Option<SystemTime> {
    carrier
        .header(ENQUEUED_TIME)
        .or_else(|| carrier.header("sentry_task_enqueued_time"))
        .filter(|v| v.len() <= MAX_HEADER_LEN)
        .and_then(parse_time)
}

/// `<32 hex>-<16 hex>[-0|1]`, strictly.
fn parse_sentry_trace(value: &str) -> Option<(TraceId, SpanId, Option<bool>)> {
    let value = value.trim();
    let mut parts = value.split('-');
    let trace = parts.next()?;
    let span = parts.next()?;
    let sampled = match parts.next() {
        None => None,
        Some("1") => Some(true),
        Some("0") => Some(false),
        Some(_) => return None,
    };
    if parts.next().is_some() || !is_hex(trace, 32) || !is_hex(span, 16) {
        return None;
    }
    if trace.bytes().all(|b| b == b'0') || span.bytes().all(|b| b == b'0') {
        return None;
    }
    Some((trace.parse().ok()?, span.parse().ok()?, sampled))
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The `sentry-` entries of a W3C baggage header, key without the prefix, still
/// percent-encoded; at most [`MAX_BAGGAGE_ENTRIES`] entries are looked at.
fn baggage_entries(value: &str) -> impl Iterator<Item = (&str, &str)> {
    value
        .split(',')
        .take(MAX_BAGGAGE_ENTRIES)
        .filter_map(|entry| {
            let entry = entry.split(';').next()?.trim();
            let (key, value) = entry.split_once('=')?;
            Some((key.trim().strip_prefix("sentry-")?, value.trim()))
        })
}

/// The `sentry-` entries of a W3C baggage header, decoded.
fn parse_baggage(value: &str) -> Vec<(String, String)> {
    baggage_entries(value)
        .filter_map(|(key, value)| Some((percent_decode(key)?, percent_decode(value)?)))
        .collect()
}

fn parse_time(value: &str) -> Option<SystemTime> {
    let seconds: f64 = value.trim().parse().ok()?;
    if !seconds.is_finite() || !(0.0..=1e11).contains(&seconds) {
        return None;
    }
    UNIX_EPOCH.checked_add(std::time::Duration::from_secs_f64(seconds))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn percent_encode(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/' | b':' | b'@')
        {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// Seconds since the epoch, as [`ENQUEUED_TIME`] carries them.
fn epoch_seconds(now: SystemTime) -> String {
    let d = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:06}", d.as_secs(), d.subsec_micros())
}

/// The headers for a message published under `span`.
#[allow(deprecated)] // `is_sampled`: exact today, see `span::open`.
fn headers_for(
    hub: &Hub,
    span: &TransactionOrSpan,
    transaction: Option<&str>,
    traceparent: bool,
) -> TraceHeaders {
    let trace = span.get_trace_context();
    let span_id = match span {
        TransactionOrSpan::Span(s) => s.get_span_id(),
        TransactionOrSpan::Transaction(_) => trace.span_id,
    };
    let sampled = span.is_sampled();
    let client = hub.client();
    let options = client.as_ref().map(|c| c.options());
    let rate = match options.map(|o| &o.traces_sampling_strategy) {
        Some(TracesSamplingStrategy::FixedRate(rate)) => f64::from(*rate).clamp(0.0, 1.0),
        // A sampler's rate for this trace is not known here: state the decision itself.
        _ => {
            if sampled {
                1.0
            } else {
                0.0
            }
        }
    };
    // Formatted once: it goes into the baggage, `sample_rand` and `sentry-trace`.
    let trace_id = trace.trace_id.to_string();
    let mut baggage = String::with_capacity(256);
    baggage.push_str("sentry-trace_id=");
    baggage.push_str(&trace_id);
    let entry = |baggage: &mut String, key: &str, value: &str| {
        baggage.push_str(",sentry-");
        baggage.push_str(key);
        baggage.push('=');
        percent_encode(value, baggage);
    };
    if let Some(key) = client
        .as_ref()
        .and_then(|c| c.dsn())
        .map(|d| d.public_key())
    {
        entry(&mut baggage, "public_key", key);
    }
    baggage.push_str(",sentry-sample_rate=");
    write_rate(&mut baggage, rate);
    let _ = write!(
        baggage,
        ",sentry-sample_rand=0.{:06},sentry-sampled={sampled}",
        sample_rand_micros(&trace_id, rate, sampled)
    );
    if let Some(release) = options.and_then(|o| o.release.as_deref()) {
        entry(&mut baggage, "release", release);
    }
    if let Some(environment) = options.and_then(|o| o.environment.as_deref()) {
        entry(&mut baggage, "environment", environment);
    }
    if let Some(name) = transaction.filter(|n| !n.contains("://")) {
        entry(&mut baggage, "transaction", name);
    }
    let flag = if sampled { "1" } else { "0" };
    TraceHeaders {
        sentry_trace: format!("{trace_id}-{span_id}-{flag}"),
        baggage,
        traceparent: traceparent.then(|| {
            format!(
                "00-{trace_id}-{span_id}-{}",
                if sampled { "01" } else { "00" }
            )
        }),
        enqueued_time: epoch_seconds(SystemTime::now()),
    }
}

/// The rate in millionths, as it is written into the baggage.
fn rate_micros(rate: f64) -> u64 {
    // `rate` is clamped to 0..=1, so this is within 0..=1_000_000.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let micros = (rate.clamp(0.0, 1.0) * 1_000_000.0).round() as u64;
    micros
}

/// Writes the rate with up to six decimals and no trailing zeros (`1`, `0.25`).
fn write_rate(out: &mut String, rate: f64) {
    let micros = rate_micros(rate);
    let _ = write!(out, "{}.{:06}", micros / 1_000_000, micros % 1_000_000);
    let kept = out.trim_end_matches('0').trim_end_matches('.').len();
    out.truncate(kept);
}

/// A `sample_rand` for the trace, in millionths: derived from the trace id (so every hop
/// agrees) and kept on the side of `rate` that the decision requires (`rand < rate` exactly
/// when sampled, against the rate as written).
fn sample_rand_micros(trace_id: &str, rate: f64, sampled: bool) -> u64 {
    const SCALE: u64 = 1_000_000;
    let bits = u64::from_str_radix(trace_id.get(16..).unwrap_or("0"), 16).unwrap_or(0);
    let unit = bits % SCALE; // uniform enough over 0..SCALE
    let rate_units = rate_micros(rate);
    if sampled {
        if rate_units == 0 {
            0
        } else {
            unit % rate_units
        }
    } else {
        let low = rate_units.min(SCALE - 1);
        low + unit % (SCALE - low)
    }
}

/// Producers and consumers of one messaging system (`rabbitmq`, `kafka`, `nats`, ...).
///
/// The reference's `QueueTracker`.
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
    fn headers(&self, span: Option<&TransactionOrSpan>) -> Option<TraceHeaders> {
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
    /// than the publish time in the headers.
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

    /// The transaction (when one is started), the `queue.process` span, and the hub they
    /// belong to.
    #[allow(clippy::type_complexity)]
    fn begin(
        &self,
    ) -> Option<(
        std::sync::Arc<Hub>,
        Option<TransactionOrSpan>,
        TransactionOrSpan,
    )> {
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
                    Some(hub.start_transaction(ctx).into())
                }
                // No trace in the message, but one is current: a span of it, as the reference does.
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
                return root.map(|root| (std::sync::Arc::clone(hub), None, root));
            };
            let latency = self.latency_ms.or_else(|| {
                incoming
                    .as_ref()
                    .and_then(|i| i.receive_latency_ms(SystemTime::now()))
            });
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
                data.set("messaging.message.receive.latency", ms);
            }
            Some((std::sync::Arc::clone(hub), root, span))
        })
    }

    /// Starts the transaction and span, current until the guard drops (sync consumers). The
    /// status set when it ends goes on both.
    pub fn start(&self) -> SpanGuard {
        match self.begin() {
            Some((hub, root, span)) => SpanGuard::current(&hub, span, root),
            None => SpanGuard::noop(),
        }
    }

    /// Starts the transaction and span for a future that handles the message.
    pub fn recording(&self) -> Option<Recording> {
        let (hub, root, span) = self.begin()?;
        Some(Recording::on_fork(&hub, span, root))
    }

    /// The meter of this message, with keys the attribute built at its call site; records its
    /// receive latency now.
    #[cfg(feature = "metrics")]
    #[doc(hidden)]
    pub fn meter_keys(&self, keys: &'static [crate::metrics::Key; 5]) -> crate::metrics::Meter {
        crate::metrics::Meter::process_keys(keys, self.headers)
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

/// What the queue attributes expand into. Not a public API.
#[doc(hidden)]
pub mod probe {
    use super::{Carrier, CarrierMut, Publish};
    use crate::future::Recording;
    use crate::span::{SpanData, SpanGuard};

    /// Checks the headers parameter of a consumer at its literal; the trait object keeps a
    /// wrong type from being reported again further on.
    pub fn carrier<C: Carrier>(headers: &C) -> &dyn Carrier {
        headers
    }

    /// Writes the producer's headers into the parameter (checked at its literal): from the
    /// span when one is recorded, else from the current (unsampled) span.
    pub fn inject_sync<C: CarrierMut + ?Sized>(
        publish: &Publish<'_>,
        guard: &SpanGuard,
        headers: &mut C,
    ) {
        if let Some(h) = publish.headers(guard.span()) {
            h.inject(headers);
        }
    }

    /// As [`inject_sync`], for a span not current yet.
    pub fn inject_async<C: CarrierMut + ?Sized>(
        publish: &Publish<'_>,
        recording: Option<&Recording>,
        headers: &mut C,
    ) {
        if let Some(h) = publish.headers(recording.map(Recording::span)) {
            h.inject(headers);
        }
    }

    /// `messaging.message.id` from any displayable id.
    pub fn message_id<T: std::fmt::Display + ?Sized>(data: &SpanData<'_>, id: &T) {
        data.set("messaging.message.id", id.to_string());
    }

    /// `messaging.message.body.size` from a body of bytes or text.
    pub fn body_size<T: AsRef<[u8]> + ?Sized>(body: &T) -> usize {
        body.as_ref().len()
    }

    /// `messaging.message.retry.count` from any integer.
    pub fn retry_count<T: RetryCount + ?Sized>(count: &T) -> u64 {
        count.retries()
    }

    /// An integer retry count.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` is not a retry count",
        label = "not an integer",
        note = "a retry count is an integer (`u8` to `u64`, `i8` to `i64`, `usize`, `isize`), or a reference to one"
    )]
    pub trait RetryCount {
        fn retries(&self) -> u64;
    }

    macro_rules! retry_counts {
        ($($t:ty),*) => {$(
            impl RetryCount for $t {
                fn retries(&self) -> u64 {
                    // A negative count is not a count; record none retried.
                    u64::try_from(*self).unwrap_or(0)
                }
            }
        )*};
    }

    retry_counts!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

    impl<T: RetryCount + ?Sized> RetryCount for &T {
        fn retries(&self) -> u64 {
            (**self).retries()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_rand_is_below_the_rate_exactly_when_sampled() {
        for seed in 0u64..2000 {
            let hex = format!(
                "{:016x}{:016x}",
                seed.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                seed
            );
            for rate in [0.0, 0.000_000_1, 0.01, 0.25, 0.5, 0.999_999_9, 1.0] {
                for sampled in [true, false] {
                    let micros = sample_rand_micros(&hex, rate, sampled);
                    let rand: f64 = format!("0.{micros:06}").parse().expect("number");
                    // Against the rate as written beside it.
                    let mut written = String::new();
                    write_rate(&mut written, rate);
                    let rate: f64 = written.parse().expect("number");
                    assert!((0.0..1.0).contains(&rand));
                    if sampled && rate > 0.0 {
                        assert!(rand < rate, "{rand} < {rate}");
                    }
                    if !sampled && rate < 1.0 {
                        assert!(rand >= rate, "{rand} >= {rate}");
                    }
                }
            }
        }
    }

    #[test]
    fn sentry_trace_parsing_is_strict() {
        let ok = "0123456789abcdef0123456789abcdef-0123456789abcdef";
        assert!(parse_sentry_trace(ok).is_some());
        assert_eq!(
            parse_sentry_trace(&format!("{ok}-1")).map(|t| t.2),
            Some(Some(true))
        );
        for bad in [
            "",
            "-",
            &format!("{ok}-2"),
            &format!("{ok}-1-1"),
            "0123456789abcdef0123456789abcdeg-0123456789abcdef",
            "0123456789abcdef0123456789abcde-0123456789abcdef",
            "00000000000000000000000000000000-0123456789abcdef",
            "0123456789abcdef0123456789abcdef-é123456789abcde",
        ] {
            assert!(parse_sentry_trace(bad).is_none(), "{bad}");
        }
    }
}
