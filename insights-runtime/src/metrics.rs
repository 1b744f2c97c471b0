//! Prometheus metrics beside the spans (cargo feature `metrics`).
//!
//! With the feature on, every db, cache and queue span the attributes record also records
//! through the [`metrics`](https://docs.rs/metrics) facade, under the metric names below. The
//! metrics are recorded for every call, whether or not Sentry is on and whether or not the trace
//! is sampled: they count traffic, spans sample it. Install any `metrics` recorder (for
//! Prometheus, `metrics-exporter-prometheus`); without one, recording is a no-op.
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
//! keyword when it is one of [`db::Operation`](crate::db::Operation)'s, else `other`);
//! `cache_name` of `#[instrument_cache_operation]` (default `"default"`); `destination` of the
//! queue attributes.
//!
//! One label is read at run time: a queue attribute's `destination` given as an expression
//! (`destination = self.queue`, for a queue name from the configuration). Its `queue_name`
//! label is the value as it is, so the expression must come from a small, fixed set (a
//! configured queue name), never from a message (an id, a tenant, a reply-to address), or every
//! value becomes a series of its own.
//!
//! # Where the metered entry points are
//!
//! This module holds the metric names, the keys and the meter; each domain owns the functions
//! that meter an operation of its own: [`db::track_database_query`](crate::db::track_database_query),
//! [`cache::track_cache_get`](crate::cache::track_cache_get),
//! [`cache::track_cache_set`](crate::cache::track_cache_set),
//! [`cache::track_cache_remove`](crate::cache::track_cache_remove),
//! [`queue::track_queue_publish`](crate::queue::track_queue_publish) and
//! [`queue::track_queue_process`](crate::queue::track_queue_process), plus the futures of
//! [`CacheTracker::read`](crate::cache::CacheTracker::read) and
//! [`cache::Operation::run`](crate::cache::Operation::run). The sync guards and the other
//! builders' futures (`db::Query::run`, `queue::Publish::run`, `queue::Process::run`) record
//! spans only: their names are not `'static`, so they cannot vouch for the labels.
//!
//! ```
//! use insights_runtime::db::{self, Operation};
//!
//! # async fn fetch_user(id: u64) -> Result<Option<String>, std::io::Error> { Ok(None) }
//! # futures_executor::block_on(async {
//! let user = db::track_database_query("users", Operation::Select, fetch_user(7)).await?;
//! # assert!(user.is_none());
//! # Ok::<(), std::io::Error>(()) }).unwrap();
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

#[doc(hidden)]
pub use ::metrics::{Key, Label};
use sentry::protocol::SpanStatus;

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

/// The names of the labels, each written once.
#[doc(hidden)]
pub mod label {
    /// `table` of the query metrics.
    pub const TABLE: &str = "table";
    /// `operation` of `database_queries_total`.
    pub const OPERATION: &str = "operation";
    /// `cache_name` of the cache metrics.
    pub const CACHE_NAME: &str = "cache_name";
    /// `queue_name` of the queue metrics.
    pub const QUEUE_NAME: &str = "queue_name";
    /// `status` of `queue_messages_processed_total`.
    pub const STATUS: &str = "status";
}

/// How a message's handling ended, the `status` label of `queue_messages_processed_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessStatus {
    /// The handler succeeded.
    Ok,
    /// The handler failed or panicked.
    Error,
    /// The handler's future was dropped before it completed.
    Cancelled,
}

impl ProcessStatus {
    /// The label value: `ok`, `error` or `cancelled`.
    pub const fn label(self) -> &'static str {
        match self {
            ProcessStatus::Ok => "ok",
            ProcessStatus::Error => "error",
            ProcessStatus::Cancelled => "cancelled",
        }
    }
}

/// The keys of a query's metrics.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct QueryKeys {
    /// `database_queries_total{table, operation}`.
    pub count: Key,
    /// `database_query_duration_seconds{table}`.
    pub duration: Key,
}

/// The keys of a cache read's metrics.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct CacheReadKeys {
    /// `cache_hits_total{cache_name}`.
    pub hits: Key,
    /// `cache_misses_total{cache_name}`.
    pub misses: Key,
}

/// The key of a cache write's or removal's counter.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct CacheWriteKeys {
    /// `cache_sets_total{cache_name}` or `cache_removes_total{cache_name}`.
    pub written: Key,
}

/// The key of a publish's counter.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct PublishKeys {
    /// `queue_messages_published_total{queue_name}`.
    pub published: Key,
}

/// The keys of a handled message's metrics.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct ProcessKeys {
    /// `queue_messages_processed_total{queue_name, status="ok"}`.
    pub ok: Key,
    /// `queue_messages_processed_total{queue_name, status="error"}`.
    pub error: Key,
    /// `queue_messages_processed_total{queue_name, status="cancelled"}`.
    pub cancelled: Key,
    /// `queue_process_duration_seconds{queue_name}`.
    pub duration: Key,
    /// `queue_receive_latency_seconds{queue_name}`.
    pub latency: Key,
}

fn named(metric: &'static str, labels: &[(&'static str, &'static str)]) -> Key {
    let labels: Vec<Label> = labels
        .iter()
        .map(|(k, v)| Label::from_static_parts(k, v))
        .collect();
    Key::from_parts(metric, labels)
}

impl QueryKeys {
    /// The keys for `table` and `operation`, built at run time.
    pub fn named(table: &'static str, operation: &'static str) -> Self {
        QueryKeys {
            count: named(
                DATABASE_QUERIES_TOTAL,
                &[(label::TABLE, table), (label::OPERATION, operation)],
            ),
            duration: named(DATABASE_QUERY_DURATION_SECONDS, &[(label::TABLE, table)]),
        }
    }
}

impl CacheReadKeys {
    /// The keys for `cache_name`, built at run time.
    pub fn named(cache_name: &'static str) -> Self {
        CacheReadKeys {
            hits: named(CACHE_HITS_TOTAL, &[(label::CACHE_NAME, cache_name)]),
            misses: named(CACHE_MISSES_TOTAL, &[(label::CACHE_NAME, cache_name)]),
        }
    }
}

impl CacheWriteKeys {
    /// The key of `cache_sets_total` for `cache_name`, built at run time.
    pub fn sets(cache_name: &'static str) -> Self {
        CacheWriteKeys {
            written: named(CACHE_SETS_TOTAL, &[(label::CACHE_NAME, cache_name)]),
        }
    }

    /// The key of `cache_removes_total` for `cache_name`, built at run time.
    pub fn removes(cache_name: &'static str) -> Self {
        CacheWriteKeys {
            written: named(CACHE_REMOVES_TOTAL, &[(label::CACHE_NAME, cache_name)]),
        }
    }
}

impl PublishKeys {
    /// The key for `queue_name`, built at run time.
    pub fn named(queue_name: &'static str) -> Self {
        PublishKeys {
            published: named(
                QUEUE_MESSAGES_PUBLISHED_TOTAL,
                &[(label::QUEUE_NAME, queue_name)],
            ),
        }
    }
}

impl PublishKeys {
    /// The key for a queue name known only at run time (`destination = <expr>` of
    /// `#[instrument_queue_publish]`): the label takes the name as it is.
    pub fn of(queue_name: &str) -> Self {
        PublishKeys {
            published: Key::from_parts(
                QUEUE_MESSAGES_PUBLISHED_TOTAL,
                vec![queue_label(queue_name)],
            ),
        }
    }
}

/// `queue_name` for a name known only at run time: one copy, shared by the keys made from it.
fn queue_label(queue_name: &str) -> Label {
    Label::new(label::QUEUE_NAME, std::sync::Arc::<str>::from(queue_name))
}

impl ProcessKeys {
    /// The keys for a queue name known only at run time (`destination = <expr>` of
    /// `#[instrument_queue_process]`): the label takes the name as it is.
    pub fn of(queue_name: &str) -> Self {
        let queue = queue_label(queue_name);
        let processed = |status: ProcessStatus| {
            Key::from_parts(
                QUEUE_MESSAGES_PROCESSED_TOTAL,
                vec![
                    queue.clone(),
                    Label::from_static_parts(label::STATUS, status.label()),
                ],
            )
        };
        ProcessKeys {
            ok: processed(ProcessStatus::Ok),
            error: processed(ProcessStatus::Error),
            cancelled: processed(ProcessStatus::Cancelled),
            duration: Key::from_parts(QUEUE_PROCESS_DURATION_SECONDS, vec![queue.clone()]),
            latency: Key::from_parts(QUEUE_RECEIVE_LATENCY_SECONDS, vec![queue]),
        }
    }
}

impl ProcessKeys {
    /// The keys for `queue_name`, built at run time.
    pub fn named(queue_name: &'static str) -> Self {
        let processed = |status: ProcessStatus| {
            named(
                QUEUE_MESSAGES_PROCESSED_TOTAL,
                &[
                    (label::QUEUE_NAME, queue_name),
                    (label::STATUS, status.label()),
                ],
            )
        };
        ProcessKeys {
            ok: processed(ProcessStatus::Ok),
            error: processed(ProcessStatus::Error),
            cancelled: processed(ProcessStatus::Cancelled),
            duration: named(
                QUEUE_PROCESS_DURATION_SECONDS,
                &[(label::QUEUE_NAME, queue_name)],
            ),
            latency: named(
                QUEUE_RECEIVE_LATENCY_SECONDS,
                &[(label::QUEUE_NAME, queue_name)],
            ),
        }
    }

    /// The counter of `status`.
    pub fn processed(&self, status: ProcessStatus) -> &Key {
        match status {
            ProcessStatus::Ok => &self.ok,
            ProcessStatus::Error => &self.error,
            ProcessStatus::Cancelled => &self.cancelled,
        }
    }
}

// The attributes build a call site's keys as statics, so that no call allocates or hashes them.
// These macros are the one place that knows which metric and labels each key has; the
// attributes pass only their literal names.

/// `&'static QueryKeys` for a literal table and operation label.
#[doc(hidden)]
#[macro_export]
macro_rules! __insights_query_keys {
    ($table:expr, $operation:expr) => {{
        use $crate::metrics::{label, Key, Label, QueryKeys};
        static COUNT: [Label; 2] = [
            Label::from_static_parts(label::TABLE, $table),
            Label::from_static_parts(label::OPERATION, $operation),
        ];
        static TABLE: [Label; 1] = [Label::from_static_parts(label::TABLE, $table)];
        static KEYS: QueryKeys = QueryKeys {
            count: Key::from_static_parts($crate::metrics::DATABASE_QUERIES_TOTAL, &COUNT),
            duration: Key::from_static_parts(
                $crate::metrics::DATABASE_QUERY_DURATION_SECONDS,
                &TABLE,
            ),
        };
        &KEYS
    }};
}

/// `&'static CacheReadKeys` for a literal cache name.
#[doc(hidden)]
#[macro_export]
macro_rules! __insights_cache_read_keys {
    ($name:expr) => {{
        use $crate::metrics::{label, CacheReadKeys, Key, Label};
        static NAME: [Label; 1] = [Label::from_static_parts(label::CACHE_NAME, $name)];
        static KEYS: CacheReadKeys = CacheReadKeys {
            hits: Key::from_static_parts($crate::metrics::CACHE_HITS_TOTAL, &NAME),
            misses: Key::from_static_parts($crate::metrics::CACHE_MISSES_TOTAL, &NAME),
        };
        &KEYS
    }};
}

/// `&'static CacheWriteKeys` of `cache_sets_total` (`set`) or `cache_removes_total`
/// (`remove`) for a literal cache name.
#[doc(hidden)]
#[macro_export]
macro_rules! __insights_cache_write_keys {
    (set, $name:expr) => {
        $crate::__insights_cache_write_keys!(@ $crate::metrics::CACHE_SETS_TOTAL, $name)
    };
    (remove, $name:expr) => {
        $crate::__insights_cache_write_keys!(@ $crate::metrics::CACHE_REMOVES_TOTAL, $name)
    };
    (@ $metric:expr, $name:expr) => {{
        use $crate::metrics::{label, CacheWriteKeys, Key, Label};
        static NAME: [Label; 1] = [Label::from_static_parts(label::CACHE_NAME, $name)];
        static KEYS: CacheWriteKeys = CacheWriteKeys {
            written: Key::from_static_parts($metric, &NAME),
        };
        &KEYS
    }};
}

/// `&'static PublishKeys` for a literal queue name.
#[doc(hidden)]
#[macro_export]
macro_rules! __insights_publish_keys {
    ($queue:expr) => {{
        use $crate::metrics::{label, Key, Label, PublishKeys};
        static QUEUE: [Label; 1] = [Label::from_static_parts(label::QUEUE_NAME, $queue)];
        static KEYS: PublishKeys = PublishKeys {
            published: Key::from_static_parts(
                $crate::metrics::QUEUE_MESSAGES_PUBLISHED_TOTAL,
                &QUEUE,
            ),
        };
        &KEYS
    }};
}

/// `&'static ProcessKeys` for a literal queue name.
#[doc(hidden)]
#[macro_export]
macro_rules! __insights_process_keys {
    ($queue:expr) => {{
        use $crate::metrics::{label, Key, Label, ProcessKeys, ProcessStatus};
        static QUEUE: [Label; 1] = [Label::from_static_parts(label::QUEUE_NAME, $queue)];
        static OK: [Label; 2] = [
            Label::from_static_parts(label::QUEUE_NAME, $queue),
            Label::from_static_parts(label::STATUS, ProcessStatus::Ok.label()),
        ];
        static ERROR: [Label; 2] = [
            Label::from_static_parts(label::QUEUE_NAME, $queue),
            Label::from_static_parts(label::STATUS, ProcessStatus::Error.label()),
        ];
        static CANCELLED: [Label; 2] = [
            Label::from_static_parts(label::QUEUE_NAME, $queue),
            Label::from_static_parts(label::STATUS, ProcessStatus::Cancelled.label()),
        ];
        const PROCESSED: &str = $crate::metrics::QUEUE_MESSAGES_PROCESSED_TOTAL;
        static KEYS: ProcessKeys = ProcessKeys {
            ok: Key::from_static_parts(PROCESSED, &OK),
            error: Key::from_static_parts(PROCESSED, &ERROR),
            cancelled: Key::from_static_parts(PROCESSED, &CANCELLED),
            duration: Key::from_static_parts(
                $crate::metrics::QUEUE_PROCESS_DURATION_SECONDS,
                &QUEUE,
            ),
            latency: Key::from_static_parts($crate::metrics::QUEUE_RECEIVE_LATENCY_SECONDS, &QUEUE),
        };
        &KEYS
    }};
}

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

    /// The verdict of a cache read: found (`Some(true)`), not found (`Some(false)`) or failed
    /// (`None`).
    #[inline]
    pub fn of_read(hit: Option<bool>) -> Self {
        Verdict {
            ok: hit.is_some(),
            hit,
        }
    }
}

/// Keys made at the call site (statics) or from names at run time.
#[derive(Debug)]
enum Keys<T: 'static> {
    Site(&'static T),
    Named(Box<T>),
}

impl<T> std::ops::Deref for Keys<T> {
    type Target = T;

    fn deref(&self) -> &T {
        match self {
            Keys::Site(keys) => keys,
            Keys::Named(keys) => keys,
        }
    }
}

/// What a meter records, with its keys.
#[derive(Debug)]
enum Measured {
    /// Nothing (a cache flush).
    Nothing,
    Query(Keys<QueryKeys>),
    CacheRead(Keys<CacheReadKeys>),
    CacheWrite(Keys<CacheWriteKeys>),
    Publish(Keys<PublishKeys>),
    Process(Keys<ProcessKeys>),
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
    measured: Measured,
    started: Option<Instant>,
    done: bool,
}

impl Meter {
    fn new(measured: Measured) -> Self {
        let timed = matches!(measured, Measured::Query(_) | Measured::Process(_));
        Meter {
            measured,
            started: timed.then(Instant::now),
            done: false,
        }
    }

    /// A meter that records nothing.
    #[inline]
    pub fn nothing() -> Self {
        Self::new(Measured::Nothing)
    }

    /// A query, with its call site's keys.
    #[inline]
    pub fn query(keys: &'static QueryKeys) -> Self {
        Self::new(Measured::Query(Keys::Site(keys)))
    }

    /// A query on `table` (`UNKNOWN_TABLE` when not known); `operation` is lower case.
    #[inline]
    pub fn query_named(table: &'static str, operation: &'static str) -> Self {
        Self::new(Measured::Query(Keys::Named(Box::new(QueryKeys::named(
            table, operation,
        )))))
    }

    /// A cache read, with its call site's keys.
    #[inline]
    pub fn cache_read(keys: &'static CacheReadKeys) -> Self {
        Self::new(Measured::CacheRead(Keys::Site(keys)))
    }

    /// A cache read on `cache_name`.
    #[inline]
    pub fn cache_read_named(cache_name: &'static str) -> Self {
        Self::new(Measured::CacheRead(Keys::Named(Box::new(
            CacheReadKeys::named(cache_name),
        ))))
    }

    /// A cache write or removal, with its call site's key.
    #[inline]
    pub fn cache_write(keys: &'static CacheWriteKeys) -> Self {
        Self::new(Measured::CacheWrite(Keys::Site(keys)))
    }

    /// A cache write or removal, with a key made at run time.
    #[inline]
    pub fn cache_write_named(keys: CacheWriteKeys) -> Self {
        Self::new(Measured::CacheWrite(Keys::Named(Box::new(keys))))
    }

    /// A message published, with its call site's key.
    #[inline]
    pub fn publish(keys: &'static PublishKeys) -> Self {
        Self::new(Measured::Publish(Keys::Site(keys)))
    }

    /// A message published to `queue_name`.
    #[inline]
    pub fn publish_named(queue_name: &'static str) -> Self {
        Self::new(Measured::Publish(Keys::Named(Box::new(
            PublishKeys::named(queue_name),
        ))))
    }

    /// A message published, with keys made at run time.
    #[inline]
    pub fn publish_with_keys(keys: PublishKeys) -> Self {
        Self::new(Measured::Publish(Keys::Named(Box::new(keys))))
    }

    /// A message being handled, with its call site's keys.
    #[inline]
    pub fn process(keys: &'static ProcessKeys) -> Self {
        Self::new(Measured::Process(Keys::Site(keys)))
    }

    /// A message from `queue_name` being handled.
    #[inline]
    pub fn process_named(queue_name: &'static str) -> Self {
        Self::new(Measured::Process(Keys::Named(Box::new(
            ProcessKeys::named(queue_name),
        ))))
    }

    /// A message being handled, with keys made at run time.
    #[inline]
    pub fn process_with_keys(keys: ProcessKeys) -> Self {
        Self::new(Measured::Process(Keys::Named(Box::new(keys))))
    }

    /// Records how long the message being handled spent in the queue (nothing for `None`, or
    /// for a meter of anything but a handled message).
    #[inline]
    pub fn received(self, latency: Option<Duration>) -> Self {
        if let (Measured::Process(keys), Some(latency)) = (&self.measured, latency) {
            observe(&keys.latency, latency.as_secs_f64());
        }
        self
    }

    /// Records the call's metrics.
    #[inline]
    pub fn finish(mut self, verdict: Verdict) {
        self.done = true;
        let status = if verdict.ok {
            ProcessStatus::Ok
        } else {
            ProcessStatus::Error
        };
        self.record(status, verdict);
    }

    fn record(&self, status: ProcessStatus, verdict: Verdict) {
        let elapsed = || self.started.map_or(0.0, |t| t.elapsed().as_secs_f64());
        match &self.measured {
            Measured::Query(keys) => {
                count(&keys.count);
                observe(&keys.duration, elapsed());
            }
            Measured::CacheRead(keys) => match verdict.hit {
                Some(true) => count(&keys.hits),
                Some(false) => count(&keys.misses),
                None => {}
            },
            Measured::CacheWrite(keys) if verdict.ok => count(&keys.written),
            Measured::Publish(keys) if verdict.ok => count(&keys.published),
            Measured::Process(keys) => {
                count(keys.processed(status));
                observe(&keys.duration, elapsed());
            }
            Measured::CacheWrite(_) | Measured::Publish(_) | Measured::Nothing => {}
        }
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        if !self.done {
            let status = if std::thread::panicking() {
                ProcessStatus::Error
            } else {
                ProcessStatus::Cancelled
            };
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

pin_project_lite::pin_project! {
    /// A future whose metrics are recorded when it completes (or is dropped).
    #[doc(hidden)]
    #[must_use = "futures do nothing unless polled"]
    #[derive(Debug)]
    pub struct Metered<F, V> {
        #[pin]
        inner: F,
        meter: Option<Meter>,
        verdict: Option<V>,
    }
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
        let this = self.project();
        let poll = this.inner.poll(cx);
        if let Poll::Ready(output) = &poll {
            if let (Some(meter), Some(verdict)) = (this.meter.take(), this.verdict.take()) {
                meter.finish(verdict(output));
            }
        }
        poll
    }
}
