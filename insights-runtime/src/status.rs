//! How a function's outcome becomes a span status.
//!
//! `Ok` → `ok`, `Err` → `internal_error`, any other value → `ok` (an `Option::None` is an answer,
//! not a failure). A panic → `internal_error`, a future dropped before it completes →
//! `cancelled`; those two are decided by the guards, not here. A status the user's code set on the
//! span itself is never overwritten.

use sentry::protocol::SpanStatus;

/// A value that says whether the work that produced it succeeded.
///
/// Implemented for `Result` (`Err` is `internal_error`), and for `Option` and `()` (always `ok`).
/// The attributes do not need it: they tell a `Result` from any other type themselves, including
/// `Result`s behind type aliases. It serves hand-written spans:
///
/// ```
/// use insights_runtime::status::Outcome;
/// use sentry::protocol::SpanStatus;
///
/// let parsed: Result<u8, std::num::ParseIntError> = "x".parse();
/// assert_eq!(parsed.status(), SpanStatus::InternalError);
/// assert_eq!(Some(3).status(), SpanStatus::Ok);
/// ```
pub trait Outcome {
    /// The status of a span whose work ended with `self`.
    fn status(&self) -> SpanStatus;
}

impl<T, E> Outcome for Result<T, E> {
    #[inline]
    fn status(&self) -> SpanStatus {
        match self {
            Ok(_) => SpanStatus::Ok,
            Err(_) => SpanStatus::InternalError,
        }
    }
}

impl<T> Outcome for Option<T> {
    #[inline]
    fn status(&self) -> SpanStatus {
        SpanStatus::Ok
    }
}

impl Outcome for () {
    #[inline]
    fn status(&self) -> SpanStatus {
        SpanStatus::Ok
    }
}
