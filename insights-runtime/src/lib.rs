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

pub mod console;
pub mod future;
pub mod span;
pub mod status;

pub use insights_macros::traced;

/// What the attributes expand into. Not a public API: it changes without notice.
#[doc(hidden)]
pub mod __private {
    pub use crate::future::{Instrumented, Recording};
    pub use crate::span::{SpanData, SpanGuard};
    pub use crate::status::{AnyProbe, Probe, ResultProbe};
    pub use sentry::protocol::SpanStatus;

    /// Runs the body of a sync function. Calling through an `FnOnce` bound makes the closure
    /// `FnOnce`, so the body may return borrows of its `&mut` arguments, as the function could.
    #[inline(always)]
    pub fn call_once<R>(body: impl FnOnce() -> R) -> R {
        body()
    }
}
