//! The wire format of a trace inside a message: `sentry-trace`, `baggage` (Sentry's dynamic
//! sampling context), `traceparent` and the enqueued time; written by producers, read by
//! consumers.
//!
//! Everything read here comes from the network and is untrusted: each value is length-checked
//! against [`MAX_HEADER_LEN`], at most [`MAX_BAGGAGE_ENTRIES`] baggage entries are looked at,
//! and anything malformed is ignored rather than reported, so that a consumer starts a trace of
//! its own instead.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sentry::protocol::{SpanId, TraceId};
use sentry::{Hub, TracesSamplingStrategy, TransactionOrSpan};

use super::carrier::{Carrier, CarrierMut};
use crate::dsc::{self, Frozen};

/// `sentry-trace`: `<trace id>-<span id>-<sampled>`.
pub const SENTRY_TRACE: &str = "sentry-trace";
/// W3C `baggage`, holding Sentry's dynamic sampling context.
pub const BAGGAGE: &str = "baggage";
/// W3C `traceparent`, written when enabled ([`QueueTracker::with_traceparent`](super::QueueTracker::with_traceparent)).
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

/// The headers a producer puts into a message.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceHeaders {
    /// `sentry-trace`.
    pub sentry_trace: String,
    /// `baggage`: Sentry's dynamic sampling context, as frozen for the trace (see
    /// [`crate::dsc`]). Empty, and then not written, for a trace continued from an SDK that sent
    /// no DSC.
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
            // None for a trace continued from an SDK that sent no DSC (see `crate::dsc`).
            (!self.baggage.is_empty()).then_some((BAGGAGE, self.baggage.as_str())),
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
        if !self.baggage.is_empty() {
            carrier.set_header(BAGGAGE_UNDERSCORE, self.baggage.clone());
        }
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

/// When the message was published: the broker's time when the carrier knows it
/// ([`Carrier::published_at`]), else the producer's enqueue-time header.
pub(crate) fn enqueued_at<C: Carrier + ?Sized>(carrier: &C) -> Option<SystemTime> {
    if let Some(published) = carrier.published_at() {
        return Some(published);
    }
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

/// What a baggage value keeps as it is: letters, digits and `-_.~/:@`; everything else is
/// percent-encoded.
const BAGGAGE_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/')
    .remove(b':')
    .remove(b'@');

/// A percent-encoded baggage key or value, decoded; `None` unless it decodes to UTF-8 and every
/// `%` starts an escape (a malformed entry is dropped, not half-read).
fn percent_decode(s: &str) -> Option<String> {
    decoded(s).map(std::borrow::Cow::into_owned)
}

/// As [`percent_decode`], borrowing when there is nothing to decode.
fn decoded(s: &str) -> Option<std::borrow::Cow<'_, str>> {
    let bytes = s.as_bytes();
    let escapes_ok = bytes.iter().enumerate().all(|(i, b)| {
        *b != b'%'
            || bytes
                .get(i + 1..i + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    if !escapes_ok {
        return None;
    }
    percent_decode_str(s).decode_utf8().ok()
}

fn percent_encode(s: &str, out: &mut String) {
    out.extend(utf8_percent_encode(s, BAGGAGE_VALUE));
}

/// Seconds since the epoch, as [`ENQUEUED_TIME`] carries them.
fn epoch_seconds(now: SystemTime) -> String {
    let d = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:06}", d.as_secs(), d.subsec_micros())
}

/// The headers for a message published under `span`.
#[allow(deprecated, reason = "`is_sampled` is exact today, see `span::open`")]
pub(crate) fn headers_for(
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
    // Formatted once: it goes into the baggage, `sample_rand` and `sentry-trace`.
    let trace_id = trace.trace_id.to_string();
    // The trace's DSC as frozen here (continued from a message or request, or written before
    // as its head); else this process is the head, and what it writes now is frozen.
    let baggage = match dsc::frozen(trace.trace_id) {
        Some(frozen) => frozen.baggage().to_owned(),
        None => {
            let built = head_baggage(hub, trace.trace_id, &trace_id, sampled, transaction);
            dsc::freeze_head(trace.trace_id, Frozen::from_encoded(built))
                .baggage()
                .to_owned()
        }
    };
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

/// The DSC of a trace this process is the head of, as a baggage value: `trace_id`,
/// `public_key`, `sample_rate` (the rate that decided the trace: the fixed rate, or the one the
/// sampler returned for it), `sample_rand`, `sampled`, `release`, `environment` and, when given
/// and not a raw URL, `transaction`.
fn head_baggage(
    hub: &Hub,
    id: TraceId,
    trace_id: &str,
    sampled: bool,
    transaction: Option<&str>,
) -> String {
    let client = hub.client();
    let options = client.as_ref().map(|c| c.options());
    let rate = match options.map(|o| &o.traces_sampling_strategy) {
        Some(TracesSamplingStrategy::FixedRate(rate)) => Some(f64::from(*rate)),
        _ => dsc::rate(id),
    }
    // Neither known (a sampler that is not ours): state the decision itself.
    .unwrap_or(if sampled { 1.0 } else { 0.0 })
    .clamp(0.0, 1.0);
    let mut baggage = String::with_capacity(256);
    baggage.push_str("sentry-trace_id=");
    baggage.push_str(trace_id);
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
        sample_rand_micros(trace_id, rate, sampled)
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
    baggage
}

/// The `sentry-` entries of an incoming baggage, as they came (still encoded), to be frozen:
/// other vendors' entries are not forwarded, entries past [`MAX_BAGGAGE_ENTRIES`] or that do
/// not decode are dropped, and a value over [`MAX_HEADER_LEN`] is ignored. Empty when there are
/// none (an SDK older than the DSC).
pub(crate) fn incoming_dsc(baggage: Option<&str>) -> Frozen {
    let Some(value) = baggage.filter(|v| v.len() <= MAX_HEADER_LEN) else {
        return Frozen::default();
    };
    let mut kept = String::with_capacity(value.len().min(512));
    for (key, value) in baggage_entries(value) {
        if decoded(key).is_none() || decoded(value).is_none() {
            continue;
        }
        if !kept.is_empty() {
            kept.push(',');
        }
        kept.push_str("sentry-");
        kept.push_str(key);
        kept.push('=');
        kept.push_str(value);
    }
    Frozen::from_encoded(kept)
}

/// [`incoming_dsc`] of a carrier's `baggage` (or `sentry_baggage`).
pub(crate) fn incoming_dsc_of<C: Carrier + ?Sized>(carrier: &C) -> Frozen {
    incoming_dsc(
        carrier
            .header(BAGGAGE)
            .or_else(|| carrier.header(BAGGAGE_UNDERSCORE)),
    )
}

/// The entries of a frozen DSC, decoded (keys without the prefix).
#[cfg_attr(
    not(feature = "transport"),
    allow(dead_code, reason = "only the transport reads them")
)]
pub(crate) fn dsc_entries(frozen: &Frozen) -> Vec<(String, String)> {
    parse_baggage(frozen.baggage())
}

/// The `sample_rand` a head trace's baggage states, as a number: derived from the trace id and
/// consistent with `rate` and the decision (see [`sample_rand_micros`]).
#[cfg_attr(
    not(feature = "transport"),
    allow(dead_code, reason = "only the transport reads it")
)]
pub(crate) fn head_sample_rand(trace_id: &str, rate: f64, sampled: bool) -> f64 {
    // At most 999_999 millionths: exact in an f64.
    #[allow(
        clippy::cast_precision_loss,
        reason = "a count of millionths below 1_000_000 is exact in an f64"
    )]
    let rand = sample_rand_micros(trace_id, rate, sampled) as f64 / 1_000_000.0;
    rand
}

/// The rate in millionths, as it is written into the baggage.
fn rate_micros(rate: f64) -> u64 {
    // `rate` is clamped to 0..=1, so this is within 0..=1_000_000.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "the rate is clamped to 0..=1, so the product is within 0..=1_000_000"
    )]
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
