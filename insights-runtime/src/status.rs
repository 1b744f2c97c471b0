//! How a function's outcome becomes a span status.
//!
//! `Ok` → `ok`, `Err` → `internal_error`, any other value → `ok` (an `Option::None` is an answer,
//! not a failure). A panic → `internal_error`, a future dropped before it completes →
//! `cancelled`; those two are decided by the guards, not here. A status the user's code set on the
//! span itself is never overwritten.
//!
//! # Expected errors
//!
//! Not every `Err` is a failure of the service: a lookup that answers 404 returns
//! `Err(AppError::NotFound)`, and `sentry-tower` already calls the request's transaction
//! `not_found`. Say so once for the error type, by implementing [`ErrorStatus`], or for one
//! function, with the attributes' `err = "<status>"` argument. Which status a span gets, first
//! match wins:
//!
//! 1. a status the code set on the span itself (through the span, or `configure_scope`);
//! 2. a panic: `internal_error`; a future dropped before it completes: `cancelled`;
//! 3. an output that is not an `Err`: `ok`;
//! 4. an `Err` under an attribute with `err = "<status>"`: that status, whatever the error;
//! 5. an `Err(e)` whose error type implements [`ErrorStatus`]: `e.span_status()`. The
//!    attributes see the implementation at compile time, for any error type (also behind
//!    `Result` aliases, or a generic `E: ErrorStatus`). The builders ([`crate::span::SpanGuard`]'s
//!    `finish_with_outcome`, [`crate::future::FutureExt::traced`], `db::Query::run`,
//!    `queue::Publish::run`, ...) are generic code, which stable Rust cannot let look for a trait
//!    an arbitrary `E` may or may not implement: they go through [`Outcome`], which asks the
//!    types registered with [`register`] (once, at start-up);
//! 6. any other `Err`: `internal_error`.
//!
//! A cache read under `#[instrument_cache_operation(get)]` follows the same rules for a failed
//! read (an `Err`); the cache builders (`CacheTracker::read`, `cache::get`, `CacheGet::record`)
//! judge through `cache::Lookup`, which carries no error, so their failed reads stay
//! `internal_error`.
//!
//! ```
//! use insights_runtime::status::{self, ErrorStatus, Outcome, SpanStatus};
//! use insights_runtime::traced;
//!
//! #[derive(Debug)]
//! enum AppError {
//!     NotFound,
//!     Forbidden,
//!     Database(String),
//! }
//!
//! impl ErrorStatus for AppError {
//!     fn span_status(&self) -> SpanStatus {
//!         match self {
//!             AppError::NotFound => SpanStatus::NotFound,
//!             AppError::Forbidden => SpanStatus::PermissionDenied,
//!             AppError::Database(_) => SpanStatus::InternalError,
//!         }
//!     }
//! }
//!
//! // Seen by every attribute, without registering:
//! #[traced]
//! fn find_user(id: u64) -> Result<String, AppError> {
//!     if id == 0 { Err(AppError::NotFound) } else { Ok(format!("user {id}")) }
//! }
//!
//! // For the builders, which judge through `Outcome`: register the type once, at start-up.
//! status::register::<AppError>();
//! let lookup: Result<String, AppError> = Err(AppError::NotFound);
//! assert_eq!(lookup.status(), SpanStatus::NotFound);
//! assert_eq!(Err::<(), _>(AppError::Forbidden).status(), SpanStatus::PermissionDenied);
//! // Errors of other types stay `internal_error`.
//! assert_eq!(Err::<(), _>("timeout").status(), SpanStatus::InternalError);
//! # assert!(find_user(0).is_err());
//! ```

use std::any::{Any, TypeId};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;

pub use sentry::protocol::SpanStatus;

/// An error type that says which span status it is, for errors that are expected answers
/// rather than failures (`not_found`, `permission_denied`, `invalid_argument`, ...).
///
/// Implement it once for the application's error type: every attribute recording a function
/// that returns `Result<_, AppError>` then gives an `Err(e)` the status `e.span_status()`, and
/// so does every builder once the type is [`register`]ed. Without an implementation an `Err` is
/// `internal_error`, which is also what [`span_status`](ErrorStatus::span_status) returns unless
/// overridden. The [module documentation](self) has the full rule and an example.
///
/// ```
/// use insights_runtime::status::{ErrorStatus, SpanStatus};
///
/// enum LookupError { Missing, Io(std::io::Error) }
///
/// impl ErrorStatus for LookupError {
///     fn span_status(&self) -> SpanStatus {
///         match self {
///             LookupError::Missing => SpanStatus::NotFound,
///             LookupError::Io(_) => SpanStatus::InternalError,
///         }
///     }
/// }
///
/// assert_eq!(LookupError::Missing.span_status(), SpanStatus::NotFound);
/// ```
pub trait ErrorStatus {
    /// The status of a span whose work ended with this error; `internal_error` by default.
    fn span_status(&self) -> SpanStatus {
        SpanStatus::InternalError
    }
}

/// The mapping of a registered error type: its status when `error` is one.
type Mapping = fn(&dyn Any) -> Option<SpanStatus>;

/// The error types [`register`]ed, looked up only for an `Err`.
static REGISTERED: RwLock<Vec<(TypeId, Mapping)>> = RwLock::new(Vec::new());

/// Whether anything was registered: an `Err` of a program that registers nothing costs no lock.
static ANY_REGISTERED: AtomicBool = AtomicBool::new(false);

/// Makes the builders' [`Outcome`] for `Result<T, E>` give an `Err(e)` the status
/// `e.span_status()` (see [`ErrorStatus`]).
///
/// Call it once per error type, at start-up, before the spans it should judge finish; calling
/// it again for the same type does nothing. The attributes do not need it. Only the exact type
/// is registered: `Box<AppError>` or `Arc<AppError>` are types of their own.
///
/// ```
/// use insights_runtime::status::{register, ErrorStatus, Outcome, SpanStatus};
///
/// struct Rejected;
/// impl ErrorStatus for Rejected {
///     fn span_status(&self) -> SpanStatus {
///         SpanStatus::InvalidArgument
///     }
/// }
///
/// assert_eq!(Err::<(), _>(Rejected).status(), SpanStatus::InternalError); // not yet
/// register::<Rejected>();
/// assert_eq!(Err::<(), _>(Rejected).status(), SpanStatus::InvalidArgument);
/// ```
pub fn register<E: ErrorStatus + 'static>() {
    fn mapping<E: ErrorStatus + 'static>(error: &dyn Any) -> Option<SpanStatus> {
        error.downcast_ref::<E>().map(E::span_status)
    }
    let id = TypeId::of::<E>();
    // A lock poisoned by a panic elsewhere still holds a valid list.
    let mut registered = REGISTERED
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !registered.iter().any(|(registered, _)| *registered == id) {
        registered.push((id, mapping::<E>));
    }
    ANY_REGISTERED.store(true, Ordering::Release);
}

/// The status of `error`: its [`ErrorStatus`] when its type is registered, else
/// `internal_error`.
fn registered_status<E: 'static>(error: &E) -> SpanStatus {
    if !ANY_REGISTERED.load(Ordering::Acquire) {
        return SpanStatus::InternalError;
    }
    let id = TypeId::of::<E>();
    let registered = REGISTERED
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    registered
        .iter()
        .find(|(registered, _)| *registered == id)
        .and_then(|(_, mapping)| mapping(error))
        .unwrap_or(SpanStatus::InternalError)
}

/// A value that says whether the work that produced it succeeded.
///
/// Implemented for `Result` (`Err(e)` is `e.span_status()` when `E` implements
/// [`ErrorStatus`] and was [`register`]ed, else `internal_error`), and for `Option` and `()`
/// (always `ok`). The builders judge their outputs through it. The attributes do not need it:
/// they tell a `Result` from any other type themselves, including `Result`s behind type
/// aliases, and see [`ErrorStatus`] without registering. It serves hand-written spans:
///
/// ```
/// use insights_runtime::status::Outcome;
/// use sentry::protocol::SpanStatus;
///
/// let parsed: Result<u8, std::num::ParseIntError> = "x".parse();
/// assert_eq!(parsed.status(), SpanStatus::InternalError);
/// assert_eq!(Some(3).status(), SpanStatus::Ok);
/// ```
///
/// The error type must be `'static` (it is looked up by its `TypeId`); a `Result` whose error
/// borrows can be judged with `SpanGuard::finish_with` instead.
pub trait Outcome {
    /// The status of a span whose work ended with `self`.
    fn status(&self) -> SpanStatus;
}

impl<T, E: 'static> Outcome for Result<T, E> {
    #[inline]
    fn status(&self) -> SpanStatus {
        match self {
            Ok(_) => SpanStatus::Ok,
            Err(error) => registered_status(error),
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
