//! The contract between the attributes and the runtime: everything generated code names, and
//! nothing else.
//!
//! The attributes reach this module as `::insights_runtime::__private_<version>` (or through
//! `crate = path`), where the version is the macro crate's own, so a macro crate and a runtime of
//! different versions fail with "could not find `__private_0_1_1`" instead of odd type errors.
//! Not a public API: it changes with every release.
//!
//! Most items are probes: small functions and traits that check an argument's type at the
//! token the user wrote (the expansion spans each call there, so that a wrong type is reported
//! on the attribute's literal, never inside generated code), or that tell the shape of a
//! returned value by method resolution, which sees through type aliases where the macro's
//! syntax cannot.

pub use crate::cache::Kind as CacheKind;
pub use crate::cache::{CacheKeys, CacheTracker, ReadOutcome, DEFAULT_CACHE_NAME};
pub use crate::db::{operation_label, CodeLocation, Operation, Query, UNKNOWN_TABLE};
pub use crate::future::{Instrumented, Recording};
pub use crate::queue::{Carrier, CarrierMut, Process, Publish};
pub use crate::span::{SpanData, SpanGuard};
pub use sentry::protocol::SpanStatus;

#[cfg(feature = "metrics")]
pub use crate::metrics::{Meter, Metered, Verdict};
#[cfg(feature = "metrics")]
pub use crate::{
    __insights_cache_read_keys as cache_read_keys, __insights_cache_write_keys as cache_write_keys,
    __insights_process_keys as process_keys, __insights_publish_keys as publish_keys,
    __insights_query_keys as query_keys,
};

/// Runs the body of a sync function. Calling through an `FnOnce` bound makes the closure
/// `FnOnce`, so the body may return borrows of its `&mut` arguments, as the function could.
#[inline(always)]
pub fn call_once<R>(body: impl FnOnce() -> R) -> R {
    body()
}

/// Says which output a returned future has, as the function's signature did before its body
/// was wrapped (so that `?` inside an `async` block still infers).
#[inline(always)]
pub fn expect_output<O, F: ::core::future::Future<Output = O>>(future: F) -> F {
    future
}

// ---------------------------------------------------------------------------------------------
// The status of any output.
//
// `(&&&Probe(&value)).__insights_error()`: the compiler takes the first of three methods whose
// receiver it reaches by dereferencing, outermost first ("autoref specialisation"): on
// `&&Probe<T>` when `T` is a `Result` whose error implements `ErrorStatus`, on `&Probe<T>` when
// `T` is any other `Result`, and on `Probe<T>` for anything else. Resolved at compile time: no
// run-time cost over matching the `Result` by hand.

/// A returned value, for status detection.
pub struct Probe<'a, T: ?Sized>(pub &'a T);

/// The status of an error that says its own: `Err(e)` is `e.span_status()`.
pub trait ErrorStatusProbe {
    /// The status of the error the output carries; `None` when it carries none.
    fn __insights_error(&self) -> Option<SpanStatus>;
}

impl<T, E: crate::status::ErrorStatus> ErrorStatusProbe for &&Probe<'_, Result<T, E>> {
    #[inline]
    fn __insights_error(&self) -> Option<SpanStatus> {
        match self.0 {
            Ok(_) => None,
            Err(error) => Some(error.span_status()),
        }
    }
}

/// The status of any other `Result`: `Err` is `internal_error`.
pub trait ResultProbe {
    /// The status of the error the output carries; `None` when it carries none.
    fn __insights_error(&self) -> Option<SpanStatus>;
}

impl<T, E> ResultProbe for &Probe<'_, Result<T, E>> {
    #[inline]
    fn __insights_error(&self) -> Option<SpanStatus> {
        match self.0 {
            Ok(_) => None,
            Err(_) => Some(SpanStatus::InternalError),
        }
    }
}

/// Any other value carries no error.
pub trait AnyProbe {
    /// `None`.
    fn __insights_error(&self) -> Option<SpanStatus>;
}

impl<T: ?Sized> AnyProbe for Probe<'_, T> {
    #[inline]
    fn __insights_error(&self) -> Option<SpanStatus> {
        None
    }
}

/// Checks that the output of a function with `err = ".."` is a `Result`. The expansion spans
/// the call at the argument's literal, so that another type is reported there, once.
#[inline(always)]
pub fn check_err_output<R: ErrOutput + ?Sized>(_: &R) {}

/// A `Result`, for `err = ".."`.
#[diagnostic::on_unimplemented(
    message = "`err` sets the status of a returned `Err`, but the function returns `{Self}`",
    label = "the function does not return a `Result`",
    note = "`err = \"..\"` applies to functions returning a `Result` (or an alias of one); remove it here"
)]
pub trait ErrOutput {}

impl<T, E> ErrOutput for Result<T, E> {}

// ---------------------------------------------------------------------------------------------
// `#[instrument_db_operation]`.

/// The text of a `query_param` (its type checked at the literal).
#[inline]
pub fn query_text<Q: AsRef<str> + ?Sized>(query: &Q) -> &str {
    query.as_ref()
}

/// The text of `db_name = <expr>` (its type checked at the expression, by the coercion).
#[inline]
pub fn db_name(name: &dyn DbName) -> &str {
    name.__insights_db_name()
}

/// Text for `db_name = <expr>`.
#[diagnostic::on_unimplemented(
    message = "`db_name` is the database's name, as text, but this expression is `{Self}`",
    label = "not text",
    note = "`db_name` takes a `&str`, a `String` or anything else `AsRef<str>`"
)]
pub trait DbName {
    /// The name.
    fn __insights_db_name(&self) -> &str;
}

impl<T: AsRef<str> + ?Sized> DbName for T {
    #[inline]
    fn __insights_db_name(&self) -> &str {
        self.as_ref()
    }
}

/// The address of `server = (address, port)` (its type checked at the expression, by the
/// coercion).
#[inline]
pub fn server_address(address: &dyn ServerAddress) -> &str {
    address.__insights_server_address()
}

/// The port of `server = (address, port)` (its type checked at the expression).
#[inline(always)]
pub fn server_port(port: u16) -> u16 {
    port
}

/// Text for the address of `server = (address, port)`.
#[diagnostic::on_unimplemented(
    message = "the address of `server` is a host name or an IP address, as text, but this \
               expression is `{Self}`",
    label = "not text",
    note = "`server = (address, port)` takes the address as a `&str`, a `String` or anything \
            else `AsRef<str>`, and the port as a `u16`"
)]
pub trait ServerAddress {
    /// The address.
    fn __insights_server_address(&self) -> &str;
}

impl<T: AsRef<str> + ?Sized> ServerAddress for T {
    #[inline]
    fn __insights_server_address(&self) -> &str {
        self.as_ref()
    }
}

/// The meter of a query whose operation is read from its text at run time.
#[cfg(feature = "metrics")]
#[inline]
pub fn query_meter(table: &'static str, sql: &str) -> Meter {
    Meter::query_named(table, operation_label(sql))
}

// ---------------------------------------------------------------------------------------------
// `#[instrument_cache_operation]`.

/// Checks the key type at the `key_param` literal; the trait object keeps a wrong type from
/// being reported again further on.
#[inline]
pub fn cache_keys<K: CacheKeys>(key: &K) -> &dyn CacheKeys {
    key
}

/// Writes the description and `cache.key` of a cache span.
#[inline]
pub fn describe_cache(data: &SpanData<'_>, keys: &dyn CacheKeys) {
    crate::cache::describe(data, keys);
}

/// Checks the TTL type at the `ttl_param` literal.
#[inline]
pub fn ttl_seconds<T: crate::cache::Ttl + ?Sized>(ttl: &T) -> Option<u64> {
    ttl.seconds()
}

/// Writes the system and server of the `tracker` (its type checked at the expression).
#[inline]
pub fn tracker_record(tracker: &CacheTracker, data: &SpanData<'_>) {
    tracker.record(data);
}

/// The `cache_name` of the `tracker`.
#[inline]
pub fn tracker_name(tracker: &CacheTracker) -> &'static str {
    tracker.cache_name()
}

/// Checks that a cache `get`'s output tells a hit from a miss. The expansion spans the call at
/// the function's return type, so that a type that cannot is reported there, once.
#[inline(always)]
pub fn check_cache_read<R: ReadOutcome + ?Sized>(_: &R) {}

/// A cache `get`'s output, read through the one hit detector, [`ReadOutcome`].
///
/// By method resolution, as [`Probe`]: `(&Read(&out)).__insights_lookup()` is
/// [`ReadOutcome::lookup`] whenever the output implements it, and a failed lookup otherwise,
/// so that an output of the wrong type is reported once, by [`check_cache_read`], rather than
/// at every use of what it found.
pub struct Read<'a, T: ?Sized>(pub &'a T);

/// The lookup of an output that implements [`ReadOutcome`].
pub trait ReadShape<'a> {
    /// The value a hit carries.
    type Value: ?Sized;
    /// What the read found.
    fn __insights_lookup(&self) -> crate::cache::Lookup<'a, Self::Value>;
}

impl<'a, R: ReadOutcome + ?Sized> ReadShape<'a> for Read<'a, R> {
    type Value = R::Value;

    #[inline]
    fn __insights_lookup(&self) -> crate::cache::Lookup<'a, R::Value> {
        self.0.lookup()
    }
}

/// Any other output, already reported by [`check_cache_read`].
pub trait NoReadShape {
    /// A failed lookup.
    fn __insights_lookup(&self) -> crate::cache::Lookup<'static, [u8]>;
}

impl<T: ?Sized> NoReadShape for &Read<'_, T> {
    #[inline]
    fn __insights_lookup(&self) -> crate::cache::Lookup<'static, [u8]> {
        crate::cache::Lookup::Failed
    }
}

/// A value whose size in bytes is wanted: that of text or bytes, none for anything else.
pub struct Size<'a, T: ?Sized>(pub &'a T);

/// The size of text or bytes.
pub trait BytesSize {
    /// The size in bytes.
    fn __insights_size(&self) -> Option<usize>;
}

impl<T: AsRef<[u8]> + ?Sized> BytesSize for Size<'_, T> {
    #[inline]
    fn __insights_size(&self) -> Option<usize> {
        Some(self.0.as_ref().len())
    }
}

/// No size for any other value.
pub trait NoSize {
    /// `None`.
    fn __insights_size(&self) -> Option<usize>;
}

impl<T: ?Sized> NoSize for &Size<'_, T> {
    #[inline]
    fn __insights_size(&self) -> Option<usize> {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// The queue attributes.

/// The name of `destination = <expr>` (its type checked at the expression, by its coercion
/// to `&dyn QueueName`).
#[inline]
pub fn queue_name(name: &dyn QueueName) -> &str {
    name.__insights_queue_name()
}

/// Text for `destination = <expr>`.
#[diagnostic::on_unimplemented(
    message = "`destination` is the queue's name, as text, but this expression is `{Self}`",
    label = "not text",
    note = "`destination` takes a `&str`, a `String` or anything else `AsRef<str>`: a configured \
            queue name, which the metrics' `queue_name` label takes as it is"
)]
pub trait QueueName {
    /// The name.
    fn __insights_queue_name(&self) -> &str;
}

impl<T: AsRef<str> + ?Sized> QueueName for T {
    #[inline]
    fn __insights_queue_name(&self) -> &str {
        self.as_ref()
    }
}

/// The meter of a publish to a destination known only at run time.
#[cfg(feature = "metrics")]
#[inline]
pub fn publish_meter(queue_name: &str) -> Meter {
    Meter::publish_with_keys(crate::metrics::PublishKeys::of(queue_name))
}

/// The meter of a message handled from a destination known only at run time, which records
/// its time in the queue now.
#[cfg(feature = "metrics")]
#[inline]
pub fn process_meter_named<C: Carrier + ?Sized>(
    queue_name: &str,
    process: &Process<'_, C>,
) -> Meter {
    Meter::process_with_keys(crate::metrics::ProcessKeys::of(queue_name))
        .received(process.queued_for())
}

/// Checks the headers parameter of a consumer at its literal; the trait object keeps a wrong
/// type from being reported again further on.
#[inline]
pub fn carrier<C: Carrier>(headers: &C) -> &dyn Carrier {
    headers
}

/// Writes the producer's headers into the parameter (checked at its literal): from the span
/// when one is recorded, else from the current (unsampled) span.
#[inline]
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
#[inline]
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
#[inline]
pub fn message_id<T: std::fmt::Display + ?Sized>(data: &SpanData<'_>, id: &T) {
    data.set("messaging.message.id", id.to_string());
}

/// `messaging.message.body.size` from a body of bytes or text.
#[inline]
pub fn body_size<T: AsRef<[u8]> + ?Sized>(body: &T) -> usize {
    body.as_ref().len()
}

/// `messaging.message.retry.count` from any integer.
#[inline]
pub fn retry_count<T: RetryCount + ?Sized>(count: &T) -> u64 {
    count.retries()
}

/// The meter of a handled message, which records its time in the queue now.
#[cfg(feature = "metrics")]
#[inline]
pub fn process_meter<C: Carrier + ?Sized>(
    keys: &'static crate::metrics::ProcessKeys,
    process: &Process<'_, C>,
) -> Meter {
    Meter::process(keys).received(process.queued_for())
}

/// An integer retry count.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a retry count",
    label = "not an integer",
    note = "a retry count is an integer (`u8` to `u64`, `i8` to `i64`, `usize`, `isize`), or a reference to one"
)]
pub trait RetryCount {
    /// The count; a negative one is none.
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

/// The meter of a cache operation named after its `tracker` at run time.
#[cfg(feature = "metrics")]
#[inline]
pub fn cache_meter(kind: CacheKind, cache_name: &'static str) -> Meter {
    crate::cache::meter_of(kind, cache_name)
}
