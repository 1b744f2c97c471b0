//! Prometheus metrics beside the spans (cargo feature `metrics`).
//!
//! With the feature on, every db, cache and queue span the attributes record also records
//! through the [`metrics`](https://docs.rs/metrics) facade, under the names of the reference
//! service's Prometheus metrics, so its dashboards keep working. The metrics are recorded for
//! every call, whether or not Sentry is on and whether or not the trace is sampled: they count
//! traffic, spans sample it. Install any `metrics` recorder (for Prometheus,
//! `metrics-exporter-prometheus`); without one, recording is a no-op.
//!
//! | metric | kind | labels | recorded |
//! |---|---|---|---|
//! | `database_queries_total` | counter | `table`, `operation` | each query, failed ones too |
//! | `database_query_duration_seconds` | histogram | `table` | each query, failed ones too |
//! | `cache_hits_total` | counter | `cache_name` | a read that found a value |
//! | `cache_misses_total` | counter | `cache_name` | a read that found none |
//! | `cache_sets_total` | counter | `cache_name` | a successful write |
//! | `cache_removes_total` | counter | `cache_name` | a successful removal |
//! | `queue_messages_published_total` | counter | `queue_name` | a successful publish |
//! | `queue_messages_processed_total` | counter | `queue_name`, `status` (`ok`, `error`, `cancelled`) | each message handled |
//! | `queue_process_duration_seconds` | histogram | `queue_name` | each message handled |
//! | `queue_receive_latency_seconds` | histogram | `queue_name` | each message whose headers carry its enqueue time |
//!
//! # Labels
//!
//! Every label value is a `&'static str`: a name written in the program (a table, an
//! operation, a cache or queue name), never a cache key, a message id or a query's values, so
//! the number of series is bounded by construction. The attributes take them from their literal
//! arguments: `table` and `operation` of `#[instrument_db_operation]` (a `query`/`query_param`
//! without `table` is labelled `table="unknown"`, and its operation is the statement's first
//! keyword when it is one of [`Operation`]'s, else `other`); `cache_name` of
//! `#[instrument_cache_operation]` (default `"default"`); `destination` of the queue attributes.
//!
//! # Counterparts of the reference's helpers
//!
//! The reference's `track_database_query`, `record_cache_hit`/`record_cache_miss`,
//! `record_cache_set`, `record_cache_remove`, `track_queue_publish` and `track_queue_process`
//! record a metric and emit a zero-length span after the operation. Here each takes the
//! operation itself (a future), so the span covers its real latency:
//!
//! | reference | here |
//! |---|---|
//! | `with track_database_query(table, operation): ...` | [`track_database_query`]`(table, operation, future)` |
//! | `record_cache_hit(..)` / `record_cache_miss(..)` | [`track_cache_get`]`(cache_name, key, future)`: hit or miss from the value read |
//! | `record_cache_set(..)` | [`track_cache_set`]`(cache_name, key, future)` |
//! | `record_cache_remove(..)` | [`track_cache_remove`]`(cache_name, key, future)` |
//! | `track_queue_publish(..)` | [`track_queue_publish`]`(queue_name, system, \|headers\| future)` |
//! | `track_queue_process(..)` | [`track_queue_process`]`(queue_name, system, &headers, future)` |
//!
//! Sync code uses the attributes, which record the same metrics. The futures of
//! [`CacheTracker::read`](crate::cache::CacheTracker::read) and
//! [`cache::Operation::run`](crate::cache::Operation::run) record the cache metrics too, under
//! the tracker's [`name`](crate::cache::CacheTracker::name). The sync guards
//! ([`CacheTracker::get`](crate::cache::CacheTracker::get), [`Query::start`], ...) and
//! the other builders' futures ([`Query::run`], `Publish::run`, `Process::run`) record spans
//! only: their names are not `'static`, so they cannot vouch for the labels.
//!
//! ```
//! use insights_runtime::db::Operation;
//! use insights_runtime::metrics;
//!
//! # async fn fetch_user(id: u64) -> Result<Option<String>, std::io::Error> { Ok(None) }
//! # futures_executor::block_on(async {
//! let user = metrics::track_database_query("users", Operation::Select, fetch_user(7)).await?;
//! # assert!(user.is_none());
//! # Ok::<(), std::io::Error>(()) }).unwrap();
//! ```

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

#[doc(hidden)]
pub use ::metrics::{Key, Label};
use sentry::protocol::SpanStatus;

use crate::cache::{self, CacheKeys, Kind, ReadOutcome};
use crate::db::{Operation, Query};
use crate::queue::{Carrier, Process, Publish, TraceHeaders};
use crate::status::Outcome;

/// `database_queries_total`.
pub const DATABASE_QUERIES_TOTAL: &str = "database_queries_total";
/// `database_query_duration_seconds`.
pub const DATABASE_QUERY_DURATION_SECONDS: &str = "database_query_duration_seconds";
/// `cache_hits_total`.
pub const CACHE_HITS_TOTAL: &str = "cache_hits_total";
/// `cache_misses_total`.
pub const CACHE_MISSES_TOTAL: &str = "cache_misses_total";
/// `cache_sets_total`.
pub const CACHE_SETS_TOTAL: &str = "cache_sets_total";
/// `cache_removes_total`.
pub const CACHE_REMOVES_TOTAL: &str = "cache_removes_total";
/// `queue_messages_published_total`.
pub const QUEUE_MESSAGES_PUBLISHED_TOTAL: &str = "queue_messages_published_total";
/// `queue_messages_processed_total`.
pub const QUEUE_MESSAGES_PROCESSED_TOTAL: &str = "queue_messages_processed_total";
/// `queue_process_duration_seconds`.
pub const QUEUE_PROCESS_DURATION_SECONDS: &str = "queue_process_duration_seconds";
/// `queue_receive_latency_seconds`.
pub const QUEUE_RECEIVE_LATENCY_SECONDS: &str = "queue_receive_latency_seconds";

/// The `cache_name` of the attribute when none is given.
pub const DEFAULT_CACHE_NAME: &str = "default";
/// The `table` of a query whose table is not given.
pub const UNKNOWN_TABLE: &str = "unknown";

/// What a call is counted as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counted {
    Query,
    CacheGet,
    CacheSet,
    CacheRemove,
    /// Flushes are spans but not metrics.
    CacheOther,
    Publish,
    Process,
}

/// The labels of a call's metrics.
#[derive(Debug, Clone, Copy)]
enum Labels {
    /// Keys the attribute built at compile time at its call site, one per slot of the kind
    /// (below): nothing to allocate or hash per call.
    Keys(&'static [Key]),
    /// The table, cache or queue name, and a query's operation, given at run time.
    Names(&'static str, &'static str),
}

// The slots of each kind's keys, in the order the attributes build them.
const QUERY_COUNT: usize = 0;
const QUERY_DURATION: usize = 1;
const CACHE_HIT: usize = 0;
const CACHE_MISS: usize = 1;
const CACHE_WRITE: usize = 0;
const PUBLISHED: usize = 0;
const PROCESSED: [usize; 3] = [0, 1, 2];
const PROCESS_DURATION: usize = 3;
const RECEIVE_LATENCY: usize = 4;

/// The statuses of `queue_messages_processed_total`, in slot order.
#[doc(hidden)]
pub const PROCESS_STATUSES: [&str; 3] = ["ok", "error", "cancelled"];

static METADATA: ::metrics::Metadata<'static> =
    ::metrics::Metadata::new(module_path!(), ::metrics::Level::INFO, Some(module_path!()));

fn count(key: &Key) {
    ::metrics::with_recorder(|r| r.register_counter(key, &METADATA).increment(1));
}

fn observe(key: &Key, value: f64) {
    ::metrics::with_recorder(|r| r.register_histogram(key, &METADATA).record(value));
}

/// How a call ended, as far as its metrics care.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct Verdict {
    /// The call succeeded (`Ok`, or a value that is not a `Result`).
    pub ok: bool,
    /// A cache read found a value (`None`: not a read, or it failed).
    pub hit: Option<bool>,
}

impl Verdict {
    /// The verdict of a span status.
    #[inline]
    pub fn of_status(status: SpanStatus) -> Self {
        Verdict {
            ok: status == SpanStatus::Ok,
            hit: None,
        }
    }
}

/// Times one call and records its metrics when it ends.
///
/// Dropped without [`finish`](Self::finish) (the call panicked, or its future was dropped
/// first), it still records: a query is counted and timed, a message is counted with status
/// `error` (panic) or `cancelled`.
#[doc(hidden)]
#[must_use]
#[derive(Debug)]
pub struct Meter {
    kind: Counted,
    labels: Labels,
    started: Option<Instant>,
    done: bool,
}

fn cache_kind(kind: Kind) -> Counted {
    match kind {
        Kind::Get => Counted::CacheGet,
        Kind::Put => Counted::CacheSet,
        Kind::Remove => Counted::CacheRemove,
        Kind::Flush => Counted::CacheOther,
    }
}

impl Meter {
    fn new(kind: Counted, labels: Labels) -> Self {
        let timed = matches!(kind, Counted::Query | Counted::Process);
        Meter {
            kind,
            labels,
            started: timed.then(Instant::now),
            done: false,
        }
    }

    /// A query on `table` (`UNKNOWN_TABLE` when not known); `operation` is lower case.
    #[inline]
    pub fn query(table: &'static str, operation: &'static str) -> Self {
        Self::new(Counted::Query, Labels::Names(table, operation))
    }

    /// A query, with its `[database_queries_total, database_query_duration_seconds]` keys.
    #[inline]
    pub fn query_keys(keys: &'static [Key; 2]) -> Self {
        Self::new(Counted::Query, Labels::Keys(keys))
    }

    /// A query whose operation is read from the statement's first keyword.
    #[inline]
    pub fn query_sql(table: &'static str, sql: &str) -> Self {
        Self::query(table, operation_of(sql))
    }

    /// A cache operation of `kind` on `cache_name`.
    #[inline]
    pub fn cache(kind: Kind, cache_name: &'static str) -> Self {
        Self::new(cache_kind(kind), Labels::Names(cache_name, ""))
    }

    /// A cache operation of `kind`, with its keys: `[hits, misses]` for a read, the one
    /// counter of a put or remove, none for a flush.
    #[inline]
    pub fn cache_keys(kind: Kind, keys: &'static [Key]) -> Self {
        Self::new(cache_kind(kind), Labels::Keys(keys))
    }

    /// A message published to `queue_name`.
    #[inline]
    pub fn publish(queue_name: &'static str) -> Self {
        Self::new(Counted::Publish, Labels::Names(queue_name, ""))
    }

    /// A message published, with its `queue_messages_published_total` key.
    #[inline]
    pub fn publish_keys(keys: &'static [Key; 1]) -> Self {
        Self::new(Counted::Publish, Labels::Keys(keys))
    }

    /// A message from `queue_name` being handled; its receive latency is recorded now, from
    /// the enqueue time in `headers`.
    #[inline]
    pub fn process<C: Carrier + ?Sized>(queue_name: &'static str, headers: Option<&C>) -> Self {
        Self::new(Counted::Process, Labels::Names(queue_name, "")).received(headers)
    }

    /// As [`process`](Self::process), with its keys: processed with each of
    /// [`PROCESS_STATUSES`], then the process duration, then the receive latency.
    #[inline]
    pub fn process_keys<C: Carrier + ?Sized>(keys: &'static [Key; 5], headers: Option<&C>) -> Self {
        Self::new(Counted::Process, Labels::Keys(keys)).received(headers)
    }

    fn received<C: Carrier + ?Sized>(self, headers: Option<&C>) -> Self {
        if let Some(enqueued) = headers.and_then(crate::queue::enqueued_at) {
            let latency = SystemTime::now()
                .duration_since(enqueued)
                .unwrap_or(Duration::ZERO);
            if let Some(key) = self.key(RECEIVE_LATENCY) {
                observe(&key, latency.as_secs_f64());
            }
        }
        self
    }

    /// Records the call's metrics.
    #[inline]
    pub fn finish(mut self, verdict: Verdict) {
        self.done = true;
        self.record(usize::from(!verdict.ok), verdict);
    }

    /// The key in `slot`: the call site's, or one made from the names.
    fn key(&self, slot: usize) -> Option<Cow<'static, Key>> {
        match self.labels {
            Labels::Keys(keys) => keys.get(slot).map(Cow::Borrowed),
            Labels::Names(name, operation) => self.named_key(slot, name, operation).map(Cow::Owned),
        }
    }

    fn named_key(&self, slot: usize, name: &'static str, operation: &'static str) -> Option<Key> {
        let label = |key: &'static str, value: &'static str| Label::from_static_parts(key, value);
        let (metric, labels) = match (self.kind, slot) {
            (Counted::Query, QUERY_COUNT) => (
                DATABASE_QUERIES_TOTAL,
                vec![label("table", name), label("operation", operation)],
            ),
            (Counted::Query, _) => (DATABASE_QUERY_DURATION_SECONDS, vec![label("table", name)]),
            (Counted::CacheGet, CACHE_HIT) => (CACHE_HITS_TOTAL, vec![label("cache_name", name)]),
            (Counted::CacheGet, _) => (CACHE_MISSES_TOTAL, vec![label("cache_name", name)]),
            (Counted::CacheSet, _) => (CACHE_SETS_TOTAL, vec![label("cache_name", name)]),
            (Counted::CacheRemove, _) => (CACHE_REMOVES_TOTAL, vec![label("cache_name", name)]),
            (Counted::CacheOther, _) => return None,
            (Counted::Publish, _) => (
                QUEUE_MESSAGES_PUBLISHED_TOTAL,
                vec![label("queue_name", name)],
            ),
            (Counted::Process, PROCESS_DURATION) => (
                QUEUE_PROCESS_DURATION_SECONDS,
                vec![label("queue_name", name)],
            ),
            (Counted::Process, RECEIVE_LATENCY) => (
                QUEUE_RECEIVE_LATENCY_SECONDS,
                vec![label("queue_name", name)],
            ),
            (Counted::Process, status) => (
                QUEUE_MESSAGES_PROCESSED_TOTAL,
                vec![
                    label("queue_name", name),
                    label("status", PROCESS_STATUSES.get(status).copied()?),
                ],
            ),
        };
        Some(Key::from_parts(metric, labels))
    }

    /// Records the metrics; `status` is the index of the outcome in [`PROCESS_STATUSES`].
    fn record(&self, status: usize, verdict: Verdict) {
        let elapsed = || self.started.map_or(0.0, |t| t.elapsed().as_secs_f64());
        let count_slot = |slot| {
            if let Some(key) = self.key(slot) {
                count(&key);
            }
        };
        let observe_slot = |slot, value| {
            if let Some(key) = self.key(slot) {
                observe(&key, value);
            }
        };
        match self.kind {
            Counted::Query => {
                count_slot(QUERY_COUNT);
                observe_slot(QUERY_DURATION, elapsed());
            }
            Counted::CacheGet => match verdict.hit {
                Some(true) => count_slot(CACHE_HIT),
                Some(false) => count_slot(CACHE_MISS),
                None => {}
            },
            Counted::CacheSet | Counted::CacheRemove if verdict.ok => count_slot(CACHE_WRITE),
            Counted::Publish if verdict.ok => count_slot(PUBLISHED),
            Counted::Process => {
                if let Some(&slot) = PROCESSED.get(status) {
                    count_slot(slot);
                }
                observe_slot(PROCESS_DURATION, elapsed());
            }
            Counted::CacheSet | Counted::CacheRemove | Counted::Publish | Counted::CacheOther => {}
        }
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        if !self.done {
            // `error` for a panic, `cancelled` for a future dropped before it completed.
            let status = if std::thread::panicking() { 1 } else { 2 };
            self.record(
                status,
                Verdict {
                    ok: false,
                    hit: None,
                },
            );
        }
    }
}

/// The lower-case operation of a statement, from its first keyword: one of [`Operation`]'s,
/// or `other`.
fn operation_of(sql: &str) -> &'static str {
    let first = sql
        .trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("");
    match Operation::from_name(first) {
        Some(operation) => operation.name(),
        None => "other",
    }
}

/// A future whose metrics are recorded when it completes (or is dropped).
#[doc(hidden)]
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct Metered<F, V> {
    inner: F,
    meter: Option<Meter>,
    verdict: Option<V>,
}

impl<F, V> Metered<F, V>
where
    F: Future,
    V: FnOnce(&F::Output) -> Verdict,
{
    /// Records `meter` when `inner` completes, with the verdict `verdict` gives its output.
    #[inline]
    pub fn new(inner: F, meter: Meter, verdict: V) -> Self {
        Metered {
            inner,
            meter: Some(meter),
            verdict: Some(verdict),
        }
    }
}

impl<F, V> Future for Metered<F, V>
where
    F: Future,
    V: FnOnce(&F::Output) -> Verdict,
{
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `inner` is structurally pinned (never moved out, and no `Unpin` impl is
        // written by hand); `meter` and `verdict` are not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        let inner = unsafe { Pin::new_unchecked(&mut this.inner) };
        let poll = inner.poll(cx);
        if let Poll::Ready(output) = &poll {
            if let (Some(meter), Some(verdict)) = (this.meter.take(), this.verdict.take()) {
                meter.finish(verdict(output));
            }
        }
        poll
    }
}

fn verdict_of<T: Outcome + ?Sized>(output: &T) -> Verdict {
    Verdict::of_status(output.status())
}

/// Runs a query (`future`) under a `db` span described by a statement for `operation` on
/// `table`, and counts and times it in `database_queries_total` and
/// `database_query_duration_seconds`, failed or not. The reference's
/// `track_database_query(table, operation)`.
///
/// For a span with the query's own SQL, put the metric around [`Query::run`] yourself or use
/// `#[instrument_db_operation(query = "..", table = "..")]`.
pub fn track_database_query<F>(
    table: &'static str,
    operation: Operation,
    future: F,
) -> impl Future<Output = F::Output>
where
    F: Future,
    F::Output: Outcome,
{
    let meter = Meter::query(table, operation.name());
    let span = Query::table_operation(table, operation).run(future);
    Metered::new(span, meter, verdict_of::<F::Output>)
}

/// Runs a cache read (`future`) under a `cache.get` span and counts a hit or a miss on
/// `cache_name` from the value it returns (see [`ReadOutcome`]). The reference's
/// `record_cache_hit` and `record_cache_miss`, decided by the value rather than by the caller.
///
/// ```
/// use insights_runtime::metrics;
///
/// # futures_executor::block_on(async {
/// let value: Option<Vec<u8>> =
///     metrics::track_cache_get("sessions", "session:42", async { None }).await;
/// assert!(value.is_none()); // counted in cache_misses_total{cache_name="sessions"}
/// # });
/// ```
pub fn track_cache_get<K, F>(
    cache_name: &'static str,
    key: &K,
    future: F,
) -> impl Future<Output = F::Output>
where
    K: CacheKeys + ?Sized,
    F: Future,
    F::Output: ReadOutcome,
{
    cache::Operation::new(Kind::Get, Some(key))
        .cache_name(cache_name)
        .read(future)
}

/// Runs a cache write (`future`) under a `cache.put` span and counts it in
/// `cache_sets_total` when it succeeds. The reference's `record_cache_set`.
pub fn track_cache_set<K, F>(
    cache_name: &'static str,
    key: &K,
    future: F,
) -> impl Future<Output = F::Output>
where
    K: CacheKeys + ?Sized,
    F: Future,
    F::Output: Outcome,
{
    cache::Operation::new(Kind::Put, Some(key))
        .cache_name(cache_name)
        .run(future)
}

/// Runs a cache removal (`future`) under a `cache.remove` span and counts it in
/// `cache_removes_total` when it succeeds. The reference's `record_cache_remove`.
pub fn track_cache_remove<K, F>(
    cache_name: &'static str,
    key: &K,
    future: F,
) -> impl Future<Output = F::Output>
where
    K: CacheKeys + ?Sized,
    F: Future,
    F::Output: Outcome,
{
    cache::Operation::new(Kind::Remove, Some(key))
        .cache_name(cache_name)
        .run(future)
}

/// Publishes a message under a `queue.publish` span and counts it in
/// `queue_messages_published_total` when it succeeds. `publish` builds the sending future from
/// the trace headers to put in the message (none when Sentry is off or no span is current).
/// The reference's `track_queue_publish`.
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
    let meter = Meter::publish(queue_name);
    let span = Publish::new(queue_name, system).run(publish);
    Metered::new(span, meter, verdict_of::<F::Output>)
}

/// Handles a message under a `queue.process` span in a transaction continuing the
/// producer's trace (from `headers`), and records `queue_messages_processed_total`,
/// `queue_process_duration_seconds` and `queue_receive_latency_seconds`. The reference's
/// `track_queue_process`.
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
    let meter = Meter::process(queue_name, Some(headers));
    let span = Process::new(queue_name, system, Some(headers)).run(future);
    Metered::new(span, meter, verdict_of::<F::Output>)
}
