//! Per-call overhead of `#[traced]` and the Insights attributes and trackers (cache, db, queue
//! publish and process), next to the same spans written by hand with sentry's own API, and to
//! `tracing` + `SpanLayer`.
//!
//! ```text
//! cargo bench --no-default-features --bench overhead                 # full run, ~25 s
//! BENCH_QUICK=1 cargo bench --no-default-features --bench overhead   # smoke run, <1 s
//! BENCH_FILTER=a,d,e cargo bench --no-default-features --bench overhead  # some cases only
//! ```
//!
//! `--no-default-features` turns the root package's `metrics` feature off, so that the
//! attributes record spans only, as their by-hand twins do; the header line says which.
//!
//! Every case runs in the same process. After a calibration pass (which also warms up), the
//! cases are sampled round-robin, the starting case rotating each round, so that drift on a noisy
//! machine hits every case alike; each sample is one timed loop of enough calls to last
//! about 60 ms (3 ms in quick mode). The table shows the median, min and max ns/call over the
//! samples. Function cases are all called through one loop (`drive`), so that they share its
//! code layout.
//!
//! Span cases run in chunks of `CHUNK` calls, each under a fresh transaction that is the scope's
//! current span, so sentry's 1000-span limit is never reached; only the inner loop is timed
//! (starting, setting and finishing the transaction are not). The queue consumer cases
//! (`process`, `process-hand`) start and finish a transaction of their own on every call, so they
//! run with no current span and that transaction (sent to the transport) is timed.
//!
//! The client drops every envelope (`DropTransport`) and is bound with `Hub::run`, as in
//! section 9 of the sentry-rust notes. Before timing, each sampled case is checked to send one
//! span per call (one transaction with one span per call for the consumers), and each
//! attribute or tracker case to send the very same spans (op, description, status, data) as its
//! by-hand twin, the producers the same headers: a broken setup, or a by-hand version that does
//! less or more than the runtime, panics. This is a report, not a test: it exits 0 whatever the
//! targets say. Run without `--bench` (e.g. `cargo test --benches`) it uses the quick settings.

mod harness;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use insights_runtime::queue::{QueueTracker, BAGGAGE, ENQUEUED_TIME, SENTRY_TRACE};
use insights_runtime::{instrument_cache_operation, instrument_db_operation, traced};
use sentry::integrations::tracing::SpanLayer;
use sentry::protocol::{EnvelopeItem, SpanStatus, Value};
use sentry::{
    ClientOptions, Hub, Scope, TracesSamplingStrategy, TransactionContext, TransactionOrSpan,
};
use tracing_subscriber::layer::SubscriberExt;

use harness::{
    block_on, drive, load_average, max, median, min, Bench, Ratio, Row, Samples, Settings, Side,
    Table, Yield,
};

const DSN: &str = "https://public@sentry.invalid/1";

/// Calls per transaction in the span cases: well under sentry's `MAX_SPANS` (1000).
const CHUNK: u64 = 500;

// ---------------------------------------------------------------------------------------------
// The functions measured. All share the body `work`; all are `#[inline(never)]` so every case
// pays one real call.

#[inline(always)]
fn work(x: u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17)
}

/// (a)
#[inline(never)]
fn plain(x: u64) -> u64 {
    work(x)
}

/// (g+a): the cheapest public gate in front of the same body, the floor for (b).
#[inline(never)]
fn gated(x: u64) -> u64 {
    black_box(Hub::with_active(|_| true));
    work(x)
}

/// (b), (c-bare)
#[traced]
#[inline(never)]
fn traced_plain(x: u64) -> u64 {
    work(x)
}

/// (c), (d)
#[traced(data(db.system = "postgresql", db.rows = x, cache.hit = true))]
#[inline(never)]
fn traced_data(x: u64) -> u64 {
    work(x)
}

/// (c'), (e): the same span by hand with sentry's API, as the notes' "macro path" plus the
/// switch of the current span: `configure_scope(get_span)` → `start_child` → 3 `set_data` →
/// child current → body → previous restored → `finish`.
#[inline(never)]
fn by_hand(x: u64) -> u64 {
    let Some(parent) = sentry::configure_scope(|scope| scope.get_span()) else {
        return work(x);
    };
    let child: TransactionOrSpan = parent.start_child("function", "by_hand").into();
    child.set_data("db.system", "postgresql".into());
    child.set_data("db.rows", x.into());
    child.set_data("cache.hit", true.into());
    sentry::configure_scope(|scope| scope.set_span(Some(child.clone())));
    let ret = work(x);
    sentry::configure_scope(|scope| scope.set_span(Some(parent)));
    child.finish();
    ret
}

/// (f)
#[tracing::instrument(skip_all, fields(db.system = "postgresql", db.rows = x, cache.hit = true))]
#[inline(never)]
fn instrumented(x: u64) -> u64 {
    work(x)
}

/// (d-async)
#[traced(data(db.system = "postgresql", db.rows = x, cache.hit = true))]
async fn traced_async(x: u64) -> u64 {
    Yield(3).await;
    work(x)
}

/// (d-async-base)
async fn plain_async(x: u64) -> u64 {
    Yield(3).await;
    work(x)
}

// ---------------------------------------------------------------------------------------------
// Insights spans: each attribute or tracker call, and its twin by hand with sentry's public API.
// A twin does what the runtime does for a sampled parent, no less and no more: the same span
// (op, description, data, status) and the same headers, which `validate` checks. It skips only
// what the runtime does for the other paths (its `is_sampled` check before `start_child`, the
// `Hub::with_active` gate, "keep a status the user set"), as code written for this one case would.

/// The cache key of (cache) and (cache-hand).
const CACHE_KEY: &str = "user:42";

/// The cache's read, shared by (cache) and (cache-hand): always a hit, one allocation.
#[inline(always)]
fn cache_read(key: &str) -> Option<String> {
    black_box(key);
    Some(String::from("Ada Lovelace"))
}

/// (cache)
#[instrument_cache_operation(get, key_param = "key")]
#[inline(never)]
fn cache_get(key: &str) -> Option<String> {
    cache_read(key)
}

/// (cache-hand): what `#[instrument_cache_operation(get, key_param = "key")]` records, by hand.
/// `configure_scope(get_span)` → `start_child("cache.get", key)` (the description is the key) →
/// `cache.key` = `[key]` → child current → read → previous restored → `cache.hit`,
/// `cache.item_size` (the byte length of the hit) → status `ok` (the attribute's status for an
/// `Option`) → `finish`.
#[inline(never)]
fn cache_get_by_hand(key: &str) -> Option<String> {
    let Some(parent) = sentry::configure_scope(|scope| scope.get_span()) else {
        return cache_read(key);
    };
    let child: TransactionOrSpan = parent.start_child("cache.get", key).into();
    child.set_data(
        "cache.key",
        Value::Array(vec![Value::String(key.to_owned())]),
    );
    sentry::configure_scope(|scope| scope.set_span(Some(child.clone())));
    let ret = cache_read(key);
    sentry::configure_scope(|scope| scope.set_span(Some(parent)));
    child.set_data("cache.hit", ret.is_some().into());
    if let Some(value) = &ret {
        child.set_data("cache.item_size", value.len().into());
    }
    child.set_status(SpanStatus::Ok);
    child.finish();
    ret
}

/// The query of (db) and (db-hand).
const QUERY: &str = "SELECT * FROM users WHERE id = $1";

/// The line of (db)'s attribute: its query source, which (db-hand) records too.
const DB_SELECT_LINE: u32 = line!() + 3;

/// (db)
#[instrument_db_operation(
    query = "SELECT * FROM users WHERE id = $1",
    table = "users",
    operation = "select",
    system = "postgresql"
)]
#[inline(never)]
fn db_select(id: u64) -> Result<u64, String> {
    Ok(work(id))
}

/// (db-hand): what the `#[instrument_db_operation(query, table, operation, system)]` above
/// records, by hand. `configure_scope(get_span)` → `start_child("db", query)` (the query is the
/// description) → `db.query.text`, `db.system` and `db.system.name`, `db.sql.table` and
/// `db.collection.name`, `db.operation` and `db.operation.name` (`SELECT`: the attribute records
/// it upper-cased), the query source (`code.filepath`, `code.file.path`, `code.lineno`,
/// `code.line.number`, `code.function`, `code.namespace`) → child current → body → previous
/// restored → status from the `Result` → `finish`.
#[inline(never)]
fn db_select_by_hand(id: u64) -> Result<u64, String> {
    let Some(parent) = sentry::configure_scope(|scope| scope.get_span()) else {
        return Ok(work(id));
    };
    let child: TransactionOrSpan = parent.start_child("db", QUERY).into();
    child.set_data("db.query.text", QUERY.into());
    child.set_data("db.system", "postgresql".into());
    child.set_data("db.system.name", "postgresql".into());
    child.set_data("db.sql.table", "users".into());
    child.set_data("db.collection.name", "users".into());
    child.set_data("db.operation", "SELECT".into());
    child.set_data("db.operation.name", "SELECT".into());
    child.set_data("code.filepath", file!().into());
    child.set_data("code.file.path", file!().into());
    child.set_data("code.lineno", DB_SELECT_LINE.into());
    child.set_data("code.line.number", DB_SELECT_LINE.into());
    child.set_data("code.function", "db_select".into());
    child.set_data("code.namespace", module_path!().into());
    sentry::configure_scope(|scope| scope.set_span(Some(child.clone())));
    let ret: Result<u64, String> = Ok(work(id));
    sentry::configure_scope(|scope| scope.set_span(Some(parent)));
    child.set_status(match ret {
        Ok(_) => SpanStatus::Ok,
        Err(_) => SpanStatus::InternalError,
    });
    child.finish();
    ret
}

/// (publish): a producer with the tracker. `work` stands for the broker call, made with the
/// headers written and the span current.
#[inline(never)]
fn publish(x: u64, headers: &mut HashMap<String, String>) -> u64 {
    let published = QueueTracker::new("rabbitmq")
        .publish("orders")
        .message_id("m-1")
        .body_size(64)
        .start();
    published.inject(headers);
    let ret = work(black_box(x));
    published.finish_with_outcome(&Ok::<(), ()>(()));
    ret
}

/// (publish-hand): what (publish) records and writes, by hand. `configure_scope(get_span)` →
/// `start_child("queue.publish", "orders")` → the 4 messaging data keys → child current →
/// headers: `sentry-trace` from `span.iter_headers()`, `baggage` built by hand with the entries
/// the runtime writes (`baggage_by_hand`), the publish time (`sentry-task-enqueued-time`), each
/// inserted into the map → broker call → previous restored → status `ok` → `finish`.
#[inline(never)]
fn publish_by_hand(x: u64, headers: &mut HashMap<String, String>) -> u64 {
    let Some(parent) = sentry::configure_scope(|scope| scope.get_span()) else {
        return work(black_box(x));
    };
    let span: TransactionOrSpan = parent.start_child("queue.publish", "orders").into();
    span.set_data("messaging.destination.name", "orders".into());
    span.set_data("messaging.system", "rabbitmq".into());
    span.set_data("messaging.message.id", "m-1".into());
    span.set_data("messaging.message.body.size", 64_usize.into());
    sentry::configure_scope(|scope| scope.set_span(Some(span.clone())));
    let client = Hub::with_active(|hub| hub.client());
    for (name, sentry_trace) in span.iter_headers() {
        if name == SENTRY_TRACE {
            headers.insert(
                BAGGAGE.to_owned(),
                baggage_by_hand(client.as_deref(), &sentry_trace),
            );
        }
        headers.insert(name.to_owned(), sentry_trace);
    }
    headers.insert(ENQUEUED_TIME.to_owned(), epoch_seconds(SystemTime::now()));
    let ret = work(black_box(x));
    sentry::configure_scope(|scope| scope.set_span(Some(parent)));
    span.set_status(SpanStatus::Ok);
    span.finish();
    ret
}

/// The baggage the runtime writes (queue.rs, `headers_for`), built by hand from the
/// `sentry-trace` value and the client's options: `sentry-trace_id`, `sentry-public_key`,
/// `sentry-sample_rate` (the fixed rate, to 6 decimals, trailing zeros dropped),
/// `sentry-sample_rand` (from the low 64 bits of the trace id, on the side of the rate the
/// decision requires), `sentry-sampled`, and `sentry-release` / `sentry-environment` when set.
/// Only the values that can hold any character (key, release, environment) are percent-encoded;
/// the others are hex, digits and `.` already, which encoding leaves as they are.
fn baggage_by_hand(client: Option<&sentry::Client>, sentry_trace: &str) -> String {
    let trace_id = sentry_trace.get(..32).unwrap_or_default();
    let sampled = sentry_trace.ends_with("-1");
    let options = client.map(|c| c.options());
    let rate = match options.map(|o| &o.traces_sampling_strategy) {
        Some(TracesSamplingStrategy::FixedRate(rate)) => f64::from(*rate).clamp(0.0, 1.0),
        _ => f64::from(u8::from(sampled)),
    };
    const SCALE: u64 = 1_000_000;
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a rate in [0, 1] times 1e6: rounds to a u64 in [0, 1e6]"
    )]
    let rate = (rate * SCALE as f64).round() as u64;
    let mut out = String::with_capacity(256);
    out.push_str("sentry-trace_id=");
    out.push_str(trace_id);
    if let Some(key) = client.and_then(|c| c.dsn()).map(|d| d.public_key()) {
        out.push_str(",sentry-public_key=");
        percent_encode(key, &mut out);
    }
    let _ = write!(
        out,
        ",sentry-sample_rate={}.{:06}",
        rate / SCALE,
        rate % SCALE
    );
    while out.ends_with('0') {
        out.pop();
    }
    if out.ends_with('.') {
        out.pop();
    }
    let unit = u64::from_str_radix(trace_id.get(16..).unwrap_or("0"), 16).unwrap_or(0) % SCALE;
    let rand = match (sampled, rate) {
        (true, 0) => 0,
        (true, rate) => unit % rate,
        (false, rate) => {
            let low = rate.min(SCALE - 1);
            low + unit % (SCALE - low)
        }
    };
    let _ = write!(
        out,
        ",sentry-sample_rand=0.{rand:06},sentry-sampled={sampled}"
    );
    if let Some(release) = options.and_then(|o| o.release.as_deref()) {
        out.push_str(",sentry-release=");
        percent_encode(release, &mut out);
    }
    if let Some(environment) = options.and_then(|o| o.environment.as_deref()) {
        out.push_str(",sentry-environment=");
        percent_encode(environment, &mut out);
    }
    out
}

/// The runtime's baggage value encoding.
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

/// `sentry-task-enqueued-time`: seconds since the epoch, to the microsecond.
fn epoch_seconds(now: SystemTime) -> String {
    let d = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:06}", d.as_secs(), d.subsec_micros())
}

/// The headers (process) and (process-hand) consume: written by one (publish) under a sampled
/// transaction in `Setup::new`, before anything is timed.
static MESSAGE_HEADERS: OnceLock<HashMap<String, String>> = OnceLock::new();

fn message_headers() -> &'static HashMap<String, String> {
    MESSAGE_HEADERS.get().expect("set in Setup::new")
}

/// (process): a consumer with the tracker: a transaction continuing the producer's trace and a
/// `queue.process` span in it, both ended with the status `ok`.
#[inline(never)]
fn process(x: u64) -> u64 {
    let headers = message_headers();
    let guard = QueueTracker::new("rabbitmq")
        .process("orders", headers)
        .message_id("m-1")
        .body_size(64)
        .retry_count(0)
        .start();
    let ret = work(black_box(x));
    guard.finish_with_outcome(&Ok::<(), ()>(()));
    ret
}

/// (process-hand): what (process) records, by hand. `continue_from_headers("orders",
/// "queue.task", headers)` (sentry parses `sentry-trace`, and the baggage for an org id) →
/// `start_transaction` → `start_child("queue.process", "orders")` → the messaging data: the
/// destination, system, message id, body size, retry count, and the receive latency in ms from
/// the publish time in the headers (parsed and range-checked, as the runtime does with headers
/// from the network) → the span current in one scope update that also reads the span it
/// replaces (as the runtime's guard does) → body → previous restored → status `ok` on span and
/// transaction → both finished (the transaction is sent).
#[inline(never)]
fn process_by_hand(x: u64) -> u64 {
    let headers = message_headers();
    let context = TransactionContext::continue_from_headers(
        "orders",
        "queue.task",
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
    let transaction: TransactionOrSpan = sentry::start_transaction(context).into();
    let span: TransactionOrSpan = transaction.start_child("queue.process", "orders").into();
    span.set_data("messaging.destination.name", "orders".into());
    span.set_data("messaging.system", "rabbitmq".into());
    span.set_data("messaging.message.id", "m-1".into());
    span.set_data("messaging.message.body.size", 64_usize.into());
    span.set_data("messaging.message.retry.count", 0_u64.into());
    let published = headers
        .get(ENQUEUED_TIME)
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && (0.0..=1e11).contains(s))
        .and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs_f64(s)));
    if let Some(published) = published {
        let latency = SystemTime::now()
            .duration_since(published)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        span.set_data("messaging.message.receive.latency", latency.into());
    }
    let previous = sentry::configure_scope(|scope| {
        let previous = scope.get_span();
        scope.set_span(Some(span.clone()));
        previous
    });
    let ret = work(black_box(x));
    sentry::configure_scope(|scope| scope.set_span(previous));
    span.set_status(SpanStatus::Ok);
    transaction.set_status(SpanStatus::Ok);
    span.finish();
    transaction.finish();
    ret
}

// ---------------------------------------------------------------------------------------------
// Timed loops: `n` calls each. The function cases all go through `harness::drive`, so that
// they share its code layout (why that matters: see there).

fn loop_plain(n: u64) {
    drive(plain, n);
}

/// (g) is the gate alone, inline in its loop: no function call around it.
fn loop_gate(n: u64) {
    for _ in 0..n {
        black_box(Hub::with_active(|_| black_box(true)));
    }
}

fn loop_get_span(n: u64) {
    for _ in 0..n {
        black_box(sentry::configure_scope(|scope| scope.get_span()));
    }
}

fn loop_gated(n: u64) {
    drive(gated, n);
}

fn loop_traced_plain(n: u64) {
    drive(traced_plain, n);
}

fn loop_traced_data(n: u64) {
    drive(traced_data, n);
}

fn loop_by_hand(n: u64) {
    drive(by_hand, n);
}

fn loop_instrumented(n: u64) {
    drive(instrumented, n);
}

fn block_on_traced_async(x: u64) -> u64 {
    block_on(traced_async(x))
}

fn block_on_plain_async(x: u64) -> u64 {
    block_on(plain_async(x))
}

fn loop_traced_async(n: u64) {
    drive(block_on_traced_async, n);
}

fn loop_plain_async(n: u64) {
    drive(block_on_plain_async, n);
}

fn call_cache_get(x: u64) -> u64 {
    cache_get(black_box(CACHE_KEY)).map_or(x, |v| x ^ v.len() as u64)
}

fn call_cache_get_by_hand(x: u64) -> u64 {
    cache_get_by_hand(black_box(CACHE_KEY)).map_or(x, |v| x ^ v.len() as u64)
}

fn call_db_select(x: u64) -> u64 {
    db_select(x).unwrap_or(x)
}

fn call_db_select_by_hand(x: u64) -> u64 {
    db_select_by_hand(x).unwrap_or(x)
}

/// A message's headers start empty and are dropped after the call, in both publish cases.
fn call_publish(x: u64) -> u64 {
    let mut headers = HashMap::new();
    let ret = publish(x, &mut headers);
    ret ^ black_box(&headers).len() as u64
}

fn call_publish_by_hand(x: u64) -> u64 {
    let mut headers = HashMap::new();
    let ret = publish_by_hand(x, &mut headers);
    ret ^ black_box(&headers).len() as u64
}

fn loop_cache(n: u64) {
    drive(call_cache_get, n);
}

fn loop_cache_by_hand(n: u64) {
    drive(call_cache_get_by_hand, n);
}

fn loop_db(n: u64) {
    drive(call_db_select, n);
}

fn loop_db_by_hand(n: u64) {
    drive(call_db_select_by_hand, n);
}

fn loop_publish(n: u64) {
    drive(call_publish, n);
}

fn loop_publish_by_hand(n: u64) {
    drive(call_publish_by_hand, n);
}

fn loop_process(n: u64) {
    drive(process, n);
}

fn loop_process_by_hand(n: u64) {
    drive(process_by_hand, n);
}

// ---------------------------------------------------------------------------------------------
// Cases.

#[derive(Clone, Copy, PartialEq)]
enum Env {
    /// A hub with no client.
    NoClient,
    /// Client bound, `traces_sample_rate(0.0)`; chunks run under an unsampled transaction.
    Unsampled,
    /// Client bound, `traces_sample_rate(1.0)`; chunks run under a sampled transaction.
    Sampled,
    /// As `Sampled`, with `registry().with(SpanLayer::new())` as the thread's subscriber.
    SampledTracing,
    /// Client bound, `traces_sample_rate(1.0)`, no current span: each call starts, finishes and
    /// sends a transaction of its own (queue consumers); no chunk transaction around it.
    SampledRoot,
}

struct Case {
    key: &'static str,
    what: &'static str,
    env: Env,
    run: fn(u64),
}

const CASES: &[Case] = &[
    Case {
        key: "a",
        what: "plain #[inline(never)] fn",
        env: Env::NoClient,
        run: loop_plain,
    },
    Case {
        key: "g",
        what: "Hub::with_active(|_| true), no client",
        env: Env::NoClient,
        run: loop_gate,
    },
    Case {
        key: "g+a",
        what: "(g) inside the (a) fn [info: floor for (b)]",
        env: Env::NoClient,
        run: loop_gated,
    },
    Case {
        key: "b",
        what: "#[traced], no client",
        env: Env::NoClient,
        run: loop_traced_plain,
    },
    Case {
        key: "c",
        what: "#[traced(data(3))], unsampled tx current",
        env: Env::Unsampled,
        run: loop_traced_data,
    },
    Case {
        key: "c-bare",
        what: "#[traced], unsampled tx current [info]",
        env: Env::Unsampled,
        run: loop_traced_plain,
    },
    Case {
        key: "x2",
        what: "configure_scope(get_span) alone [info: c floor]",
        env: Env::Unsampled,
        run: loop_get_span,
    },
    Case {
        key: "c'",
        what: "by hand (sentry API, 3 set_data), unsampled",
        env: Env::Unsampled,
        run: loop_by_hand,
    },
    Case {
        key: "d",
        what: "#[traced(data(3))], sampled",
        env: Env::Sampled,
        run: loop_traced_data,
    },
    Case {
        key: "e",
        what: "by hand (sentry API, 3 set_data), sampled",
        env: Env::Sampled,
        run: loop_by_hand,
    },
    Case {
        key: "f",
        what: "#[instrument(fields(3))] + SpanLayer, sampled",
        env: Env::SampledTracing,
        run: loop_instrumented,
    },
    Case {
        key: "d-async",
        what: "async #[traced(data(3))], 3 yields, sampled",
        env: Env::Sampled,
        run: loop_traced_async,
    },
    Case {
        key: "d-async-base",
        what: "same async fn, no attribute, sampled",
        env: Env::Sampled,
        run: loop_plain_async,
    },
    Case {
        key: "cache",
        what: "#[instrument_cache_operation(get)], sampled",
        env: Env::Sampled,
        run: loop_cache,
    },
    Case {
        key: "cache-hand",
        what: "the same cache.get span by hand, sampled",
        env: Env::Sampled,
        run: loop_cache_by_hand,
    },
    Case {
        key: "db",
        what: "#[instrument_db_operation(query..)], sampled",
        env: Env::Sampled,
        run: loop_db,
    },
    Case {
        key: "db-hand",
        what: "the same db span by hand, sampled",
        env: Env::Sampled,
        run: loop_db_by_hand,
    },
    Case {
        key: "publish",
        what: "QueueTracker publish + inject + finish",
        env: Env::Sampled,
        run: loop_publish,
    },
    Case {
        key: "publish-hand",
        what: "the same span and headers by hand",
        env: Env::Sampled,
        run: loop_publish_by_hand,
    },
    Case {
        key: "process",
        what: "QueueTracker process: 1 tx + 1 span sent",
        env: Env::SampledRoot,
        run: loop_process,
    },
    Case {
        key: "process-hand",
        what: "the same tx + span by hand",
        env: Env::SampledRoot,
        run: loop_process_by_hand,
    },
];

/// Attribute or tracker cases and their by-hand twins: same spans, same headers.
const TWINS: &[(&str, &str)] = &[
    ("cache", "cache-hand"),
    ("db", "db-hand"),
    ("publish", "publish-hand"),
    ("process", "process-hand"),
];

fn index(key: &str) -> usize {
    CASES
        .iter()
        .position(|c| c.key == key)
        .expect("unknown case")
}

/// Drops every envelope, counting the transactions and spans sent (for `validate`), and while
/// `RECORD` is set (never while timing), keeping a summary of each transaction.
struct DropTransport;

static TRANSACTIONS: AtomicUsize = AtomicUsize::new(0);
static SPANS: AtomicUsize = AtomicUsize::new(0);
static RECORD: AtomicBool = AtomicBool::new(false);
static RECORDED: Mutex<Vec<String>> = Mutex::new(Vec::new());

impl sentry::Transport for DropTransport {
    fn send_envelope(&self, envelope: sentry::Envelope) {
        for item in envelope.items() {
            if let EnvelopeItem::Transaction(tx) = item {
                TRANSACTIONS.fetch_add(1, Ordering::Relaxed);
                SPANS.fetch_add(tx.spans.len(), Ordering::Relaxed);
                if RECORD.load(Ordering::Relaxed) {
                    let summary = summarize(tx);
                    RECORDED.lock().unwrap().push(summary);
                }
            }
        }
    }
}

/// A transaction as text, without what differs from one run to the next (ids, times; the
/// receive latency is shown as `<ms>` when it is a number): its name, op and status, whether it
/// continues the trace of `MESSAGE_HEADERS`, then each span's parent (`tx` when it is the
/// transaction), op, description, status and data.
fn summarize(tx: &sentry::protocol::Transaction<'_>) -> String {
    let trace = match tx.contexts.get("trace") {
        Some(sentry::protocol::Context::Trace(trace)) => Some(trace),
        _ => None,
    };
    let continues = trace.zip(MESSAGE_HEADERS.get()).is_some_and(|(t, h)| {
        h.get(SENTRY_TRACE).map(String::as_str)
            == t.parent_span_id
                .map(|p| format!("{}-{p}-1", t.trace_id))
                .as_deref()
    });
    let mut out = format!(
        "transaction {:?} op={:?} status={:?} continues_message_trace={continues}",
        tx.name,
        trace.and_then(|t| t.op.as_deref()),
        trace.and_then(|t| t.status),
    );
    for span in &tx.spans {
        let parent = match (span.parent_span_id, trace) {
            (Some(p), Some(t)) if p == t.span_id => "tx".to_owned(),
            (p, _) => format!("{p:?}"),
        };
        let _ = write!(
            out,
            "\n  span parent={parent} op={:?} description={:?} status={:?} data={{",
            span.op, span.description, span.status
        );
        for (key, value) in &span.data {
            match value {
                Value::Number(_) if key == "messaging.message.receive.latency" => {
                    let _ = write!(out, " {key}=<ms>");
                }
                _ => {
                    let _ = write!(out, " {key}={value}");
                }
            }
        }
        out.push_str(" }");
    }
    out
}

fn hub_with(options: Option<ClientOptions>) -> Arc<Hub> {
    let client = options.map(|options| {
        let options = options.dsn(DSN).transport(Arc::new(DropTransport));
        Arc::new(sentry::Client::with_options(options))
    });
    Arc::new(Hub::new(client, Arc::new(Scope::default())))
}

struct Setup {
    no_client: Arc<Hub>,
    unsampled: Arc<Hub>,
    sampled: Arc<Hub>,
    tracing: tracing::Dispatch,
}

impl Setup {
    fn new() -> Self {
        let setup = Setup {
            no_client: hub_with(None),
            unsampled: hub_with(Some(ClientOptions::new().traces_sample_rate(0.0))),
            sampled: hub_with(Some(ClientOptions::new().traces_sample_rate(1.0))),
            tracing: tracing::Dispatch::new(tracing_subscriber::registry().with(SpanLayer::new())),
        };
        let headers = setup.under_sampled_transaction(|| {
            let mut headers = HashMap::new();
            publish(0, &mut headers);
            headers
        });
        assert!(
            headers.contains_key(SENTRY_TRACE),
            "the setup publish wrote no sentry-trace: {headers:?}"
        );
        MESSAGE_HEADERS.get_or_init(|| headers);
        setup
    }

    /// Runs `f` on the sampled hub, under a transaction that is the current span.
    fn under_sampled_transaction<R>(&self, f: impl FnOnce() -> R) -> R {
        Hub::run(Arc::clone(&self.sampled), || {
            let tx: TransactionOrSpan =
                sentry::start_transaction(TransactionContext::new("bench", "bench")).into();
            sentry::configure_scope(|scope| scope.set_span(Some(tx.clone())));
            let ret = f();
            sentry::configure_scope(|scope| scope.set_span(None));
            tx.finish();
            ret
        })
    }

    /// Checks that the sampled cases record what they claim: one span per call under the
    /// transaction (none for the base async fn), or for the consumers one transaction per call
    /// holding one span; that each attribute or tracker case sends the same spans as its by-hand
    /// twin, and the producers write the same headers. A mismatch means the numbers would
    /// measure something else, so it panics; a missed performance target never does.
    fn validate(&self, selected: &[usize]) {
        const CALLS: u64 = 10;
        let mut seen = Vec::new();
        let mut summaries: HashMap<&str, Vec<String>> = HashMap::new();
        RECORD.store(true, Ordering::Relaxed);
        for &i in selected {
            let case = &CASES[i];
            if !matches!(
                case.env,
                Env::Sampled | Env::SampledTracing | Env::SampledRoot
            ) {
                continue;
            }
            TRANSACTIONS.store(0, Ordering::Relaxed);
            SPANS.store(0, Ordering::Relaxed);
            RECORDED.lock().unwrap().clear();
            self.sample(case, CALLS);
            let sent = (
                TRANSACTIONS.load(Ordering::Relaxed),
                SPANS.load(Ordering::Relaxed),
            );
            let recorded = std::mem::take(&mut *RECORDED.lock().unwrap());
            let expected = match (case.env, case.key) {
                (Env::SampledRoot, _) => (CALLS as usize, CALLS as usize),
                (_, "d-async-base") => (1, 0),
                _ => (1, CALLS as usize),
            };
            assert_eq!(
                sent, expected,
                "case ({}): {CALLS} calls sent (transactions, spans) = {sent:?}, expected \
                 {expected:?}",
                case.key
            );
            if case.env == Env::SampledRoot {
                for summary in &recorded {
                    assert!(
                        summary.matches("\n  span ").count() == 1
                            && summary.contains("continues_message_trace=true"),
                        "case ({}): each call must send one transaction continuing the \
                         message's trace, with one span:\n{summary}",
                        case.key
                    );
                }
                seen.push(format!("({}) 1 tx + 1 span", case.key));
            } else {
                seen.push(format!("({}) {}", case.key, sent.1 as u64 / CALLS));
            }
            summaries.insert(case.key, recorded);
        }
        RECORD.store(false, Ordering::Relaxed);
        if !seen.is_empty() {
            println!("validated, spans sent per call: {}", seen.join(", "));
        }
        let mut same = Vec::new();
        for &(attribute, hand) in TWINS {
            let (Some(a), Some(h)) = (summaries.get(attribute), summaries.get(hand)) else {
                continue;
            };
            assert!(
                a == h,
                "({attribute}) and ({hand}) must send the same spans; ({attribute}):\n{}\n\
                 ({hand}):\n{}",
                a.first().map_or("nothing", String::as_str),
                h.first().map_or("nothing", String::as_str),
            );
            same.push(format!("({attribute}) = ({hand})"));
        }
        let publishes = ["publish", "publish-hand"].map(|k| selected.contains(&index(k)));
        if publishes == [true, true] {
            self.validate_headers();
            same.push("(publish) headers = (publish-hand) headers".to_owned());
        }
        if !same.is_empty() {
            println!(
                "validated, same span op, description, status and data: {}",
                same.join(", ")
            );
        }
    }

    /// (publish) and (publish-hand) under one transaction write the same headers: the same
    /// names, the same baggage, a `sentry-trace` with the same trace and flag (the span ids
    /// differ: two spans), and publish times within a second of each other.
    fn validate_headers(&self) {
        let (runtime, hand) = self.under_sampled_transaction(|| {
            let mut runtime = HashMap::new();
            let mut hand = HashMap::new();
            publish(0, &mut runtime);
            publish_by_hand(0, &mut hand);
            (runtime, hand)
        });
        let names = |h: &HashMap<String, String>| {
            let mut names: Vec<String> = h.keys().cloned().collect();
            names.sort();
            names
        };
        let trace_and_flag = |h: &HashMap<String, String>| {
            let value = h.get(SENTRY_TRACE).cloned().unwrap_or_default();
            let parts: Vec<&str> = value.split('-').collect();
            (parts.len() == 3 && parts[1].len() == 16).then(|| format!("{}-{}", parts[0], parts[2]))
        };
        let time = |h: &HashMap<String, String>| {
            h.get(ENQUEUED_TIME)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
        assert!(
            names(&runtime) == names(&hand)
                && runtime.get(BAGGAGE) == hand.get(BAGGAGE)
                && trace_and_flag(&runtime).is_some()
                && trace_and_flag(&runtime) == trace_and_flag(&hand)
                && (time(&runtime) - time(&hand)).abs() < 1.0,
            "(publish) and (publish-hand) must write the same headers:\n{runtime:?}\n{hand:?}"
        );
    }
}

impl Bench for Setup {
    type Case = Case;

    /// Runs `case` `iters` times and returns the time spent in its timed loops.
    fn sample(&self, case: &Case, iters: u64) -> Duration {
        let hub = match case.env {
            Env::NoClient => &self.no_client,
            Env::Unsampled => &self.unsampled,
            Env::Sampled | Env::SampledTracing | Env::SampledRoot => &self.sampled,
        };
        Hub::run(Arc::clone(hub), || {
            let _dispatch = (case.env == Env::SampledTracing)
                .then(|| tracing::dispatcher::set_default(&self.tracing));
            if matches!(case.env, Env::NoClient | Env::SampledRoot) {
                let start = Instant::now();
                (case.run)(iters);
                return start.elapsed();
            }
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(CHUNK);
                left -= n;
                let tx: TransactionOrSpan =
                    sentry::start_transaction(TransactionContext::new("bench", "bench")).into();
                sentry::configure_scope(|scope| scope.set_span(Some(tx.clone())));
                let start = Instant::now();
                (case.run)(n);
                total += start.elapsed();
                sentry::configure_scope(|scope| scope.set_span(None));
                tx.finish();
            }
            total
        })
    }

    /// Iterations for one sample to last about `target`.
    fn calibrate(&self, case: &Case, target: Duration) -> u64 {
        let scaled = harness::calibrate(CHUNK, 1 << 34, target, |iters| self.sample(case, iters));
        // Whole chunks, so that every transaction holds the same number of spans.
        scaled.div_ceil(CHUNK) * CHUNK
    }
}

// ---------------------------------------------------------------------------------------------
// Report.

/// ns/call of every sample, `[case][round]`; empty for a case left out by `BENCH_FILTER`.
struct Results {
    samples: Vec<Vec<f64>>,
}

impl Results {
    fn of(&self, key: &str) -> Option<&[f64]> {
        let samples = &self.samples[index(key)];
        (!samples.is_empty()).then_some(samples.as_slice())
    }
}

/// A named ratio between cases (see `harness::Ratio`), with its medians spelled out.
struct Check {
    name: &'static str,
    ratio: Ratio,
    note: String,
}

/// `num / den`, where each side is a case or a difference of two cases (`"x-y"` style pairs).
fn check(
    results: &Results,
    name: &'static str,
    limit: Option<f64>,
    num: (&str, Option<&str>),
    den: (&str, Option<&str>),
) -> Option<Check> {
    // A difference is taken round by round, and of the medians and of the minimums (not the
    // median of the differences).
    let side = |(key, minus): (&str, Option<&str>)| -> Option<Side> {
        let side = Side::of(results.of(key)?);
        match minus {
            None => Some(side),
            Some(minus) => {
                let base = Side::of(results.of(minus)?);
                Some(Side {
                    rounds: side
                        .rounds
                        .iter()
                        .zip(&base.rounds)
                        .map(|(v, b)| v - b)
                        .collect(),
                    median: side.median - base.median,
                    min: side.min - base.min,
                })
            }
        }
    };
    let label = |(key, minus): (&str, Option<&str>)| match minus {
        None => format!("({key})"),
        Some(minus) => format!("(({key}) - ({minus}))"),
    };
    let (n, d) = (side(num)?, side(den)?);
    let (n_med, d_med) = (n.median, d.median);
    Some(Check {
        name,
        ratio: Ratio::new(limit, &n, &d),
        note: format!(
            "{} {n_med:.1} ns / {} {d_med:.1} ns",
            label(num),
            label(den)
        ),
    })
}

fn main() {
    // Run without `--bench` (e.g. `cargo test --benches`): the quick settings.
    let settings = Settings::from_env(!std::env::args().any(|a| a == "--bench"));
    // `BENCH_FILTER=d,e`: only these cases (by key); checks that need others are skipped.
    let selected = harness::selected(CASES.iter().map(|c| c.key));
    let load_before = load_average();

    let setup = Setup::new();
    setup.validate(&selected);
    let Samples { iters, ns } = harness::sample_round_robin(&settings, &setup, CASES, &selected);
    let results = Results { samples: ns };

    println!(
        "insights #[traced] overhead, {settings}; span cases in chunks of {CHUNK} calls per \
         transaction, inner loop timed only; {} CPUs; load average {load_before} before, {} \
         after; metrics feature {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average(),
        if cfg!(feature = "metrics") {
            "ON (the db, cache and queue attributes also record metrics; run with \
             --no-default-features to compare spans alone)"
        } else {
            "off"
        },
    );
    println!();
    let table = Table {
        key_width: 15,
        ns_width: 9,
        ns_decimals: 2,
        ratio_decimals: 1,
    };
    table.print(
        results.of("a").map(median),
        selected.iter().map(|&i| Row {
            key: CASES[i].key,
            what: CASES[i].what,
            samples: &results.samples[i],
            iters: iters[i],
        }),
    );
    println!();
    println!(
        "spread = (max - min) / median. The async rows include block_on and the body's 4 polls \
         (3 Pending + Ready)."
    );

    let checks = [
        check(
            &results,
            "(b) <= 1.1 x (g)",
            Some(1.1),
            ("b", None),
            ("g", None),
        ),
        check(
            &results,
            "(c) <= 0.2 x (c')",
            Some(0.2),
            ("c", None),
            ("c'", None),
        ),
        check(
            &results,
            "(d) <= 1.15 x (e)",
            Some(1.15),
            ("d", None),
            ("e", None),
        ),
        check(
            &results,
            "(d) <= 0.45 x (f)",
            Some(0.45),
            ("d", None),
            ("f", None),
        ),
        check(
            &results,
            "async (d) <= 1.3 x sync (d)",
            Some(1.3),
            ("d-async", Some("d-async-base")),
            ("d", Some("a")),
        ),
        check(
            &results,
            "(cache) <= 1.15 x (cache-hand)",
            Some(1.15),
            ("cache", None),
            ("cache-hand", None),
        ),
        check(
            &results,
            "(db) <= 1.15 x (db-hand)",
            Some(1.15),
            ("db", None),
            ("db-hand", None),
        ),
        check(
            &results,
            "(publish) <= 1.2 x (publish-hand)",
            Some(1.2),
            ("publish", None),
            ("publish-hand", None),
        ),
        check(
            &results,
            "(process) <= 1.2 x (process-hand)",
            Some(1.2),
            ("process", None),
            ("process-hand", None),
        ),
        check(&results, "(b) / (g+a)", None, ("b", None), ("g+a", None)),
        check(&results, "(c) / (x2)", None, ("c", None), ("x2", None)),
        check(
            &results,
            "(d-async) / (d)",
            None,
            ("d-async", None),
            ("d", None),
        ),
    ];
    println!();
    println!(
        "{:<33} {:>8} {:>26} {:>8}  {:<7} detail (medians)",
        "target", "medians", "per round: med [min..max]", "mins", "verdict"
    );
    println!("{}", "-".repeat(33 + 8 + 26 + 8 + 7 + 6 + 40));
    for check in checks.iter().flatten() {
        let ratio = &check.ratio;
        println!(
            "{:<33} {:>8.3} {:>8.3} [{:>6.3} .. {:>6.3}] {:>8.3}  {:<7} {}",
            check.name,
            ratio.medians,
            median(&ratio.paired),
            min(&ratio.paired),
            max(&ratio.paired),
            ratio.of_mins,
            ratio.verdict(),
            check.note,
        );
    }
    let skipped = checks.iter().filter(|c| c.is_none()).count();
    if skipped > 0 {
        println!("({skipped} ratios skipped: their cases were filtered out)");
    }
    println!();
    println!(
        "Verdicts use the ratio of medians. async (d) = (d-async) - (d-async-base): the cost the \
         attribute adds to the async call, the base async body and block_on subtracted. \
         sync (d) = (d) - (a): the same for the sync call. (b)/(g+a), (c)/(x2): each next to its \
         floor, the gate with the same call and body around it, and one configure_scope."
    );
}
