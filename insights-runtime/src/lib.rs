//! Sentry Insights for Rust services, one attribute per function.
//!
//! `insights-runtime` is the crate applications depend on: it holds the span runtime and
//! re-exports the attributes from `insights-macros`.
//!
//! * [`#[traced]`](traced) records a function as a span, a child of the span that is current
//!   when it is called: sync and async functions, methods, `fn -> impl Future`,
//!   `#[async_trait]` methods. The status comes from the outcome: `Ok` → `ok`, `Err` →
//!   `internal_error`, a panic → `internal_error`, a future dropped early → `cancelled`.
//! * [`span::SpanGuard`] and [`future::FutureExt::traced`] do the same for code that cannot
//!   carry an attribute.
//! * [`console`] prints finished transactions as span trees, for development without a Sentry
//!   project.
//!
//! Nothing is recorded, and next to nothing is spent, when Sentry is not initialised, when no
//! span is current, or when the current trace is not sampled. Turning off the default `enable`
//! feature makes every attribute expand to the bare function, for libraries that leave the choice
//! to the application.
//!
//! ```
//! use insights_runtime::traced;
//!
//! #[traced(op = "function", data(rows.count = rows.len()))]
//! fn import(rows: &[&str]) -> Result<usize, std::num::ParseIntError> {
//!     let mut total = 0;
//!     for row in rows {
//!         total += row.parse::<usize>()?;
//!     }
//!     Ok(total)
//! }
//!
//! #[traced(transaction = "nightly-import", op = "batch")]
//! fn nightly() {
//!     let _ = import(&["1", "2"]);
//! }
//!
//! let _sentry = sentry::init(insights_runtime::console::client_options());
//! nightly(); // prints the span tree of the `nightly-import` transaction
//! ```
#![warn(missing_docs)]

pub mod cache;
pub mod console;
pub mod db;
pub mod future;
pub mod span;
pub mod status;

/// Records each call of a function as a span.
///
/// The span is a child of the span current when the function is called (a request's
/// transaction, another `#[traced]` function, a `tracing` span under `sentry-tracing`), and is
/// itself current while the function runs, so everything inside nests under it. Without a
/// current span, or with Sentry off, nothing is recorded and the call costs a few nanoseconds.
///
/// # Arguments
///
/// All optional, named, in any order, each at most once:
///
/// | argument | meaning | default |
/// |---|---|---|
/// | `op = "..."` | the span's operation | `"function"` |
/// | `description = "..."` | the span's description | the function's name |
/// | `transaction = "Name"` | when no span is current, start a transaction with this name and `op` instead of recording nothing; when one is current, a child span like any other | none |
/// | `data(key = expr, a.b = expr, "c.d" = expr)` | span data; each `expr` is `Into<serde_json::Value>` and is evaluated only when a span is recorded, before the body runs | none |
/// | `crate = path` | where the runtime is, for crates that re-export it under another name | `::insights_runtime` |
///
/// # Status
///
/// Unless the function sets a status on its span itself: a returned `Ok` is `ok` and `Err` is
/// `internal_error` (recognised by type, so `Result` aliases work; an `Option::None` is not an
/// error); a panic is `internal_error` and keeps unwinding; an async call dropped before it
/// completes is `cancelled`.
///
/// # Function shapes
///
/// * sync functions: the body runs in a closure called at once, so `return` and `?` keep
///   working and their value is judged before it leaves;
/// * `async fn` (also in traits, and methods of `#[async_trait]` impls, with `#[traced]` under
///   `#[async_trait]`): the span starts when the future is first polled and is current only
///   while it is being polled, so interleaved futures never adopt each other's spans;
/// * non-async functions returning `impl Future`, `Pin<Box<dyn Future>>` or `BoxFuture`: the
///   returned future is wrapped, so the span covers the awaited work, not only its construction.
///
/// Signatures, attributes, generics and receivers are kept as written. A future spawned onto
/// another task should carry its caller's hub, as with any `sentry` code:
/// `tokio::spawn(fut.bind_hub(Hub::new_from_top(Hub::current())))`.
///
/// # Examples
///
/// ```
/// use insights_runtime::traced;
///
/// #[traced(op = "db", description = "load user", data(db.system = "postgresql", user.id = id))]
/// async fn load_user(id: u64) -> Result<String, std::io::Error> {
///     Ok(format!("user {id}"))
/// }
///
/// #[traced(transaction = "nightly-cleanup", op = "batch")]
/// fn cleanup(days: u32) -> usize {
///     days as usize * 2
/// }
///
/// let _sentry = sentry::init(insights_runtime::console::client_options());
/// assert_eq!(cleanup(3), 6); // a transaction of its own: no span was current
/// # futures_executor::block_on(async { load_user(1).await.unwrap(); });
/// ```
///
/// What a sync function expands to (names shortened):
///
/// ```text
/// fn cleanup(days: u32) -> usize {
///     let guard = SpanGuard::start_transaction_or_child("nightly-cleanup", "batch", "cleanup", |_| {});
///     let ret: usize = call_once(move || { days as usize * 2 });
///     guard.finish_with(|_| status_of(&ret));
///     ret
/// }
/// ```
///
/// With the default `enable` feature off, the attribute returns the function unchanged.
#[doc(inline)]
pub use insights_macros::traced;

#[doc(inline)]
pub use insights_macros::{instrument_cache_operation, instrument_db_operation};

/// What the attributes expand into. Not a public API: it changes without notice.
#[doc(hidden)]
pub mod __private {
    pub use crate::future::{Instrumented, Recording};
    pub use crate::span::{SpanData, SpanGuard};
    pub use crate::status::{AnyProbe, Probe, ResultProbe};
    pub use crate::{cache, db};
    pub use sentry::protocol::SpanStatus;

    /// Runs the body of a sync function. Calling through an `FnOnce` bound makes the closure
    /// `FnOnce`, so the body may return borrows of its `&mut` arguments, as the function could.
    #[inline(always)]
    pub fn call_once<R>(body: impl FnOnce() -> R) -> R {
        body()
    }
}
