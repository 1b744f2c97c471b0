//! Cache spans for Sentry's Caches page.
//!
//! Ops `cache.get`, `cache.put`, `cache.remove` and `cache.flush`; the description is the key,
//! or the keys joined with `", "`; data `cache.key` (always an array of strings), `cache.hit`
//! (a JSON bool, on reads only: Sentry computes the miss rate from it), `cache.item_size`
//! (bytes), `cache.ttl` (seconds) and, from a [`CacheTracker`], `db.system` with
//! `db.system.name` beside it (the name Sentry's attribute registry, `sentry-conventions`
//! 0.29.0, gives it; the old one is kept, as the registry's `backfill` status asks),
//! `network.peer.address` and `network.peer.port`. Only `cache.get` spans feed the Caches page;
//! the others show in traces.
//!
//! ```
//! use insights_runtime::cache::CacheTracker;
//!
//! let cache = CacheTracker::new("redis").server("127.0.0.1", 6379);
//! let key = "user:42";
//!
//! let get = cache.get(&key);
//! let value: Option<String> = None; // redis GET user:42
//! get.record(&value);               // cache.hit = false
//!
//! let stored = "{\"name\":\"Ada\"}";
//! let put = cache.put(&key).ttl(3600u64).item_size(stored.len()).start();
//! // redis SETEX user:42 3600 ...
//! drop(put);
//! ```

use std::borrow::Cow;
use std::future::Future;
use std::time::Duration;

use sentry::protocol::{SpanStatus, Value};

use crate::future::{Instrumented, Recording, StatusFn};
use crate::span::{SpanData, SpanGuard};
use crate::status::Outcome;

/// A cache operation, with its span op.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A read: `cache.get`, the only kind on the Caches page.
    Get,
    /// A write: `cache.put`.
    Put,
    /// A removal: `cache.remove`.
    Remove,
    /// Emptying the cache: `cache.flush`, the one kind without a key.
    Flush,
}

impl Kind {
    /// Every kind, in the order of [`Kind::NAMES`].
    pub const ALL: [Kind; 4] = [Kind::Get, Kind::Put, Kind::Remove, Kind::Flush];

    /// The names [`Kind::from_name`] accepts.
    pub const NAMES: [&'static str; 4] = ["get", "put", "remove", "flush"];

    /// The kind named `name` (`"get"`, or with its prefix, `"cache.get"`).
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.strip_prefix("cache.").unwrap_or(name);
        Self::NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| Self::ALL[i])
    }

    /// The span op: `cache.get`, `cache.put`, `cache.remove` or `cache.flush`.
    pub fn op(self) -> &'static str {
        match self {
            Kind::Get => "cache.get",
            Kind::Put => "cache.put",
            Kind::Remove => "cache.remove",
            Kind::Flush => "cache.flush",
        }
    }
}

/// One cache key: strings and integers.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a cache key",
    label = "not a cache key",
    note = "cache keys are `&str`, `String`, `&String`, `Cow<str>`, `Box<str>`, `Arc<str>` and integers"
)]
pub trait CacheKey {
    /// Appends the key as text to `out`.
    fn write_key(&self, out: &mut String);
}

/// One key or several: a [`CacheKey`], or a slice, array or `Vec` of them (multi-key
/// operations such as `MGET`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a cache key",
    label = "not a cache key",
    note = "cache keys are `&str`, `String`, `&String`, `Cow<str>`, `Box<str>`, `Arc<str>` and integers, or a slice, array or `Vec` of them for several keys"
)]
pub trait CacheKeys {
    /// Appends each key to `out`.
    fn write_keys(&self, out: &mut Vec<String>);
}

macro_rules! text_keys {
    ($($t:ty),*) => {$(
        impl CacheKey for $t {
            #[inline]
            fn write_key(&self, out: &mut String) {
                out.push_str(AsRef::<str>::as_ref(self));
            }
        }
        impl CacheKeys for $t {
            #[inline]
            fn write_keys(&self, out: &mut Vec<String>) {
                out.push(String::from(AsRef::<str>::as_ref(self)));
            }
        }
    )*};
}

text_keys!(
    str,
    String,
    Cow<'_, str>,
    Box<str>,
    std::rc::Rc<str>,
    std::sync::Arc<str>
);

macro_rules! integer_keys {
    ($($t:ty),*) => {$(
        impl CacheKey for $t {
            #[inline]
            fn write_key(&self, out: &mut String) {
                use std::fmt::Write as _;
                let _ = write!(out, "{self}");
            }
        }
        impl CacheKeys for $t {
            #[inline]
            fn write_keys(&self, out: &mut Vec<String>) {
                out.push(self.to_string());
            }
        }
    )*};
}

integer_keys!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize);

impl<K: CacheKey + ?Sized> CacheKey for &K {
    #[inline]
    fn write_key(&self, out: &mut String) {
        (**self).write_key(out);
    }
}

impl<K: CacheKeys + ?Sized> CacheKeys for &K {
    #[inline]
    fn write_keys(&self, out: &mut Vec<String>) {
        (**self).write_keys(out);
    }
}

impl<K: CacheKey> CacheKeys for [K] {
    fn write_keys(&self, out: &mut Vec<String>) {
        out.extend(self.iter().map(|k| {
            let mut s = String::new();
            k.write_key(&mut s);
            s
        }));
    }
}

impl<K: CacheKey, const N: usize> CacheKeys for [K; N] {
    fn write_keys(&self, out: &mut Vec<String>) {
        self[..].write_keys(out);
    }
}

impl<K: CacheKey> CacheKeys for Vec<K> {
    fn write_keys(&self, out: &mut Vec<String>) {
        self[..].write_keys(out);
    }
}

/// The keys as `cache.key` records them.
pub fn keys<K: CacheKeys + ?Sized>(keys: &K) -> Vec<String> {
    let mut out = Vec::new();
    keys.write_keys(&mut out);
    out
}

/// A time to live: whole seconds as an integer, or a [`Duration`] (rounded down to seconds).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a time to live",
    label = "not a TTL",
    note = "a TTL is an integer number of seconds or a `std::time::Duration`, optionally in an `Option`"
)]
pub trait Ttl {
    /// Seconds, or `None` for no TTL.
    fn seconds(&self) -> Option<u64>;
}

impl Ttl for Duration {
    fn seconds(&self) -> Option<u64> {
        Some(self.as_secs())
    }
}

macro_rules! integer_ttl {
    ($($t:ty),*) => {$(
        impl Ttl for $t {
            fn seconds(&self) -> Option<u64> {
                // A negative TTL means "no expiry" in some clients; record none.
                u64::try_from(*self).ok()
            }
        }
    )*};
}

integer_ttl!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize);

impl<T: Ttl> Ttl for Option<T> {
    fn seconds(&self) -> Option<u64> {
        self.as_ref().and_then(Ttl::seconds)
    }
}

impl<T: Ttl + ?Sized> Ttl for &T {
    fn seconds(&self) -> Option<u64> {
        (**self).seconds()
    }
}

/// Writes the key data of a cache span: the description and `cache.key`.
pub fn describe<K: CacheKeys + ?Sized>(data: &SpanData<'_>, keys_of: &K) {
    let keys = keys(keys_of);
    data.describe(&keys.join(", "));
    data.set(
        "cache.key",
        Value::Array(keys.into_iter().map(Value::String).collect()),
    );
}

/// Where the cache is: configured once, used for every span.
#[derive(Debug, Clone, Default)]
pub struct CacheTracker {
    system: Option<Cow<'static, str>>,
    address: Option<String>,
    port: Option<u16>,
    name: Option<&'static str>,
}

impl CacheTracker {
    /// A tracker for a cache system (`redis`, `memcached`, `moka`, ...), recorded as
    /// `db.system`.
    pub fn new(system: impl Into<Cow<'static, str>>) -> Self {
        CacheTracker {
            system: Some(system.into()),
            ..Self::default()
        }
    }

    /// The server's address and port, recorded as `network.peer.address` and
    /// `network.peer.port`.
    pub fn server(mut self, address: impl Into<String>, port: u16) -> Self {
        self.address = Some(address.into());
        self.port = Some(port);
        self
    }

    /// The cache's name: the `cache_name` label of the metrics its futures record with the
    /// `metrics` feature (default `"default"`). A name written in the program, never a key.
    pub fn name(mut self, name: &'static str) -> Self {
        self.name = Some(name);
        self
    }

    /// Runs a read (`future`) under a `cache.get` span with the hit and size from the value
    /// read (see [`ReadOutcome`]); with the `metrics` feature it also counts the hit or miss.
    /// For async code, where [`get`](Self::get)'s current span must not be held across an
    /// `.await`.
    ///
    /// ```
    /// use insights_runtime::cache::CacheTracker;
    ///
    /// let redis = CacheTracker::new("redis").server("127.0.0.1", 6379).name("sessions");
    /// # futures_executor::block_on(async {
    /// let value: Option<String> = redis.read("session:42", async { None }).await;
    /// # assert!(value.is_none());
    /// # });
    /// ```
    pub fn read<K, F>(&self, key: &K, future: F) -> impl Future<Output = F::Output>
    where
        K: CacheKeys + ?Sized,
        F: Future,
        F::Output: ReadOutcome,
        <F::Output as ReadOutcome>::Value: AsRef<[u8]>,
    {
        self.operation(Kind::Get, Some(key)).read(future)
    }

    /// Starts a `cache.get` span as the current span; [`CacheGet::record`] sets the hit and the
    /// size from the value read.
    pub fn get<K: CacheKeys + ?Sized>(&self, key: &K) -> CacheGet {
        CacheGet {
            guard: self.operation(Kind::Get, Some(key)).start(),
        }
    }

    /// A `cache.put` span, to be given a TTL and size and started.
    pub fn put<'a, K: CacheKeys + ?Sized>(&'a self, key: &'a K) -> Operation<'a, K> {
        self.operation(Kind::Put, Some(key))
    }

    /// Starts a `cache.remove` span as the current span.
    pub fn remove<K: CacheKeys + ?Sized>(&self, key: &K) -> SpanGuard {
        self.operation(Kind::Remove, Some(key)).start()
    }

    /// Starts a `cache.flush` span as the current span.
    pub fn flush(&self) -> SpanGuard {
        self.operation::<str>(Kind::Flush, None).start()
    }

    /// The `cache_name` label of its metrics: the [`name`](Self::name) given, else
    /// `"default"`.
    pub fn cache_name(&self) -> &'static str {
        self.name.unwrap_or(DEFAULT_CACHE_NAME)
    }

    /// Any operation, to be configured and started.
    pub fn operation<'a, K: CacheKeys + ?Sized>(
        &'a self,
        kind: Kind,
        key: Option<&'a K>,
    ) -> Operation<'a, K> {
        Operation {
            kind,
            keys: key,
            ttl: None,
            item_size: None,
            tracker: Some(self),
            name: self.name,
        }
    }

    /// Writes `db.system` (and `db.system.name`, its name in Sentry's attribute registry) and
    /// the server's address and port.
    pub(crate) fn record(&self, data: &SpanData<'_>) {
        if let Some(system) = &self.system {
            data.set("db.system", &**system);
            data.set("db.system.name", &**system);
        }
        if let Some(address) = &self.address {
            data.set("network.peer.address", address.as_str());
        }
        if let Some(port) = self.port {
            data.set("network.peer.port", port);
        }
    }
}

/// A cache span to be started, for keys of type `K`.
#[must_use = "a cache span is recorded only once started"]
pub struct Operation<'a, K: ?Sized = str> {
    kind: Kind,
    keys: Option<&'a K>,
    ttl: Option<u64>,
    item_size: Option<usize>,
    tracker: Option<&'a CacheTracker>,
    /// The metrics' `cache_name`.
    #[cfg_attr(
        not(feature = "metrics"),
        allow(dead_code, reason = "only the metrics read the cache name")
    )]
    name: Option<&'static str>,
}

impl<'a, K: CacheKeys + ?Sized> Operation<'a, K> {
    /// An operation without a tracker.
    pub fn new(kind: Kind, key: Option<&'a K>) -> Self {
        Operation {
            kind,
            keys: key,
            ttl: None,
            item_size: None,
            tracker: None,
            name: None,
        }
    }

    /// The `cache_name` label of the metrics (`metrics` feature; default `"default"`).
    pub fn cache_name(mut self, name: &'static str) -> Self {
        self.name = Some(name);
        self
    }

    /// `cache.ttl`.
    pub fn ttl(mut self, ttl: impl Ttl) -> Self {
        self.ttl = ttl.seconds();
        self
    }

    /// `cache.item_size`, in bytes.
    pub fn item_size(mut self, bytes: usize) -> Self {
        self.item_size = Some(bytes);
        self
    }

    /// Starts the span as the current span (sync code).
    pub fn start(&self) -> SpanGuard {
        SpanGuard::start_with(self.kind.op(), "", |data| self.write(data))
    }

    /// Starts the span without making it current, so that the guard may be held across an
    /// `.await`.
    pub fn start_detached(&self) -> SpanGuard {
        SpanGuard::start_detached(self.kind.op(), "", |data| self.write(data))
    }

    /// Runs `future` under the span; its output decides the status ([`Outcome`]). With the
    /// `metrics` feature a successful put or remove is counted. For a read, use
    /// [`read`](Self::read), which also records the hit.
    pub fn run<F>(&self, future: F) -> impl Future<Output = F::Output>
    where
        F: Future,
        F::Output: Outcome,
    {
        let recording = Recording::start(self.kind.op(), "", |data| self.write(data));
        let span: Instrumented<F, StatusFn<F::Output>> =
            Instrumented::new(future, recording, |output, _| output.status());
        #[cfg(feature = "metrics")]
        let span = crate::metrics::Metered::new(span, self.meter(), |output: &F::Output| {
            crate::metrics::Verdict::of_status(output.status())
        });
        span
    }

    /// Runs a read (`future`) under the span, with `cache.hit` and `cache.item_size` from the
    /// value it returns ([`ReadOutcome`]); with the `metrics` feature it counts the hit or miss.
    pub fn read<F>(&self, future: F) -> impl Future<Output = F::Output>
    where
        F: Future,
        F::Output: ReadOutcome,
        <F::Output as ReadOutcome>::Value: AsRef<[u8]>,
    {
        let recording = Recording::start(self.kind.op(), "", |data| self.write(data));
        let span: Instrumented<F, StatusFn<F::Output>> =
            Instrumented::new(future, recording, |output, data| output.record_read(data));
        #[cfg(feature = "metrics")]
        let span = crate::metrics::Metered::new(span, self.meter(), |output: &F::Output| {
            crate::metrics::Verdict::of_read(output.lookup().hit())
        });
        span
    }

    /// The meter of this operation, labelled with its `cache_name`.
    #[cfg(feature = "metrics")]
    fn meter(&self) -> crate::metrics::Meter {
        meter_of(self.kind, self.name.unwrap_or(DEFAULT_CACHE_NAME))
    }

    fn write(&self, data: &SpanData<'_>) {
        if let Some(keys) = self.keys {
            describe(data, keys);
        }
        if let Some(ttl) = self.ttl {
            data.set("cache.ttl", ttl);
        }
        if let Some(size) = self.item_size {
            data.set("cache.item_size", size);
        }
        if let Some(tracker) = self.tracker {
            tracker.record(data);
        }
    }
}

/// The meter of an operation of `kind` on `cache_name`, its keys made at run time; a flush
/// records no metrics.
#[cfg(feature = "metrics")]
pub(crate) fn meter_of(kind: Kind, cache_name: &'static str) -> crate::metrics::Meter {
    use crate::metrics::{CacheWriteKeys, Meter};
    match kind {
        Kind::Get => Meter::cache_read_named(cache_name),
        Kind::Put => Meter::cache_write_named(CacheWriteKeys::sets(cache_name)),
        Kind::Remove => Meter::cache_write_named(CacheWriteKeys::removes(cache_name)),
        Kind::Flush => Meter::nothing(),
    }
}

/// A `cache.get` span in progress.
#[must_use = "the span ends when the guard is dropped; record the value read first"]
#[derive(Debug)]
pub struct CacheGet {
    guard: SpanGuard,
}

impl CacheGet {
    /// Records whether the read found a value.
    pub fn hit(&self, hit: bool) {
        self.guard.set_data("cache.hit", hit);
    }

    /// Records the size in bytes of the value read.
    pub fn item_size(&self, bytes: usize) {
        self.guard.set_data("cache.item_size", bytes);
    }

    /// Records the value read, then ends the span: the hit as [`ReadOutcome`] tells it, and
    /// the size in bytes of the value found; a failed read is `internal_error`.
    pub fn record<R>(self, value: &R)
    where
        R: ReadOutcome + ?Sized,
        R::Value: AsRef<[u8]>,
    {
        self.guard.finish_with(|data| value.record_read(data));
    }

    /// The underlying guard.
    pub fn into_guard(self) -> SpanGuard {
        self.guard
    }
}

/// Runs a read (`future`) under a `cache.get` span and records the hit and size from its
/// output, as `#[instrument_cache_operation(get)]` does (with the `metrics` feature, the hit or
/// miss is counted under `cache_name="default"`).
pub fn get<K, F>(key: &K, future: F) -> impl Future<Output = F::Output>
where
    K: CacheKeys + ?Sized,
    F: Future,
    F::Output: ReadOutcome,
    <F::Output as ReadOutcome>::Value: AsRef<[u8]>,
{
    Operation::new(Kind::Get, Some(key)).read(future)
}

/// The `cache_name` of operations that name none.
pub const DEFAULT_CACHE_NAME: &str = "default";

/// The result of a cache read, which tells a hit from a miss: `Option<T>` (a hit is `Some`),
/// `Result<Option<T>, E>` (a hit is `Ok(Some)`; `Err` is a failed read), `bool` and
/// `Result<bool, E>` (the hit itself). Type aliases of these (`redis::RedisResult<Option<T>>`)
/// are the same types.
///
/// `#[instrument_cache_operation(get)]`, [`CacheTracker::read`], [`get`] and
/// [`CacheGet::record`] all read the hit through it. The size recorded is the byte length of
/// the value found when it is text or bytes (`AsRef<[u8]>`); the attribute also accepts values
/// of any other type and records no size for them.
///
/// ```
/// use insights_runtime::cache::{Lookup, ReadOutcome};
///
/// assert!(matches!(Some("Ada").lookup(), Lookup::Hit(Some(&"Ada"))));
/// assert!(matches!(Ok::<Option<&str>, ()>(None).lookup(), Lookup::Miss));
/// assert!(matches!(Err::<bool, _>("reset").lookup(), Lookup::Failed));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot tell a cache hit from a miss",
    label = "a cache read must return a hit or a miss",
    note = "a cache read returns `Option<T>` (a hit is `Some`), `Result<Option<T>, E>`, `bool` or `Result<bool, E>`"
)]
pub trait ReadOutcome {
    /// The value a hit carries (`[u8]`, never given, for the `bool` shapes).
    type Value: ?Sized;

    /// Whether the read found a value, and which.
    fn lookup(&self) -> Lookup<'_, Self::Value>;

    /// Writes `cache.hit` (nothing for a failed read) and, for a value found that is text or
    /// bytes, `cache.item_size`; returns the span status (`internal_error` for a failed read).
    fn record_read(&self, data: &SpanData<'_>) -> SpanStatus
    where
        Self::Value: AsRef<[u8]>,
    {
        let lookup = self.lookup();
        if let Some(value) = lookup.value() {
            data.set("cache.item_size", value.as_ref().len());
        }
        lookup.record(data)
    }
}

/// What a cache read found.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<'a, V: ?Sized> {
    /// A value was found; `None` when the read says so without the value (`bool`).
    Hit(Option<&'a V>),
    /// No value was found.
    Miss,
    /// The read failed: neither a hit nor a miss.
    Failed,
}

impl<'a, V: ?Sized> Lookup<'a, V> {
    /// `Some(true)` for a hit, `Some(false)` for a miss, `None` for a failed read.
    pub fn hit(&self) -> Option<bool> {
        match self {
            Lookup::Hit(_) => Some(true),
            Lookup::Miss => Some(false),
            Lookup::Failed => None,
        }
    }

    /// The value found, when there is one.
    pub fn value(&self) -> Option<&'a V> {
        match self {
            Lookup::Hit(value) => *value,
            Lookup::Miss | Lookup::Failed => None,
        }
    }

    /// The span status: `internal_error` for a failed read, else `ok`.
    pub fn status(&self) -> SpanStatus {
        match self {
            Lookup::Failed => SpanStatus::InternalError,
            Lookup::Hit(_) | Lookup::Miss => SpanStatus::Ok,
        }
    }

    /// Writes `cache.hit` (nothing for a failed read) and returns the status.
    pub fn record(&self, data: &SpanData<'_>) -> SpanStatus {
        if let Some(hit) = self.hit() {
            data.set("cache.hit", hit);
        }
        self.status()
    }
}

impl<T> ReadOutcome for Option<T> {
    type Value = T;

    fn lookup(&self) -> Lookup<'_, T> {
        match self {
            Some(value) => Lookup::Hit(Some(value)),
            None => Lookup::Miss,
        }
    }
}

impl<T, E> ReadOutcome for Result<Option<T>, E> {
    type Value = T;

    fn lookup(&self) -> Lookup<'_, T> {
        match self {
            Ok(found) => found.lookup(),
            Err(_) => Lookup::Failed,
        }
    }
}

impl ReadOutcome for bool {
    type Value = [u8];

    fn lookup(&self) -> Lookup<'_, [u8]> {
        if *self {
            Lookup::Hit(None)
        } else {
            Lookup::Miss
        }
    }
}

impl<E> ReadOutcome for Result<bool, E> {
    type Value = [u8];

    fn lookup(&self) -> Lookup<'_, [u8]> {
        match self {
            Ok(hit) => hit.lookup(),
            Err(_) => Lookup::Failed,
        }
    }
}

impl<R: ReadOutcome + ?Sized> ReadOutcome for &R {
    type Value = R::Value;

    fn lookup(&self) -> Lookup<'_, R::Value> {
        (**self).lookup()
    }
}

/// Runs a cache read (`future`) under a `cache.get` span, with the hit and size from the value
/// it returns (see [`ReadOutcome`]); with the `metrics` feature it counts a hit or a miss on
/// `cache_name`, decided by the value rather than by the caller.
///
/// ```
/// use insights_runtime::cache;
///
/// # futures_executor::block_on(async {
/// let value: Option<Vec<u8>> =
///     cache::track_cache_get("sessions", "session:42", async { None }).await;
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
    <F::Output as ReadOutcome>::Value: AsRef<[u8]>,
{
    Operation::new(Kind::Get, Some(key))
        .cache_name(cache_name)
        .read(future)
}

/// Runs a cache write (`future`) under a `cache.put` span; with the `metrics` feature it counts
/// it in `cache_sets_total` when it succeeds.
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
    track_write(Kind::Put, cache_name, key, future)
}

/// Runs a cache removal (`future`) under a `cache.remove` span; with the `metrics` feature it
/// counts it in `cache_removes_total` when it succeeds.
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
    track_write(Kind::Remove, cache_name, key, future)
}

fn track_write<K, F>(
    kind: Kind,
    cache_name: &'static str,
    key: &K,
    future: F,
) -> impl Future<Output = F::Output>
where
    K: CacheKeys + ?Sized,
    F: Future,
    F::Output: Outcome,
{
    Operation::new(kind, Some(key))
        .cache_name(cache_name)
        .run(future)
}
