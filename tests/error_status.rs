//! Expected errors: an error type mapped to a span status once (`status::ErrorStatus`), and one
//! attribute saying it itself (`err = ".."`). What reaches Sentry, for the attributes and the
//! builders.

mod common;

use common::{capture, capture_one, span};
use futures::executor::block_on;
use insights_runtime::db::Query;
use insights_runtime::future::FutureExt;
use insights_runtime::span::SpanGuard;
use insights_runtime::status::{self, ErrorStatus};
use insights_runtime::{
    instrument_cache_operation, instrument_db_operation, instrument_queue_process,
    instrument_queue_publish, traced,
};
use sentry::protocol::{SpanStatus, Transaction};

/// The application's error, mapped once.
#[derive(Debug, PartialEq)]
enum AppError {
    NotFound,
    Forbidden,
    Database,
}

impl ErrorStatus for AppError {
    fn span_status(&self) -> SpanStatus {
        match self {
            AppError::NotFound => SpanStatus::NotFound,
            AppError::Forbidden => SpanStatus::PermissionDenied,
            AppError::Database => SpanStatus::InternalError,
        }
    }
}

/// An error type that says nothing.
#[derive(Debug, PartialEq)]
struct Unmapped;

/// An error type mapped but never registered: the attributes see it, the builders do not.
#[derive(Debug, PartialEq)]
struct NeverRegistered;

impl ErrorStatus for NeverRegistered {
    fn span_status(&self) -> SpanStatus {
        SpanStatus::AlreadyExists
    }
}

/// The type whose default `span_status` is kept.
#[derive(Debug, PartialEq)]
struct DefaultStatus;

impl ErrorStatus for DefaultStatus {}

type AppResult<T> = Result<T, AppError>;

fn status_of(tx: &Transaction<'_>, description: &str) -> Option<SpanStatus> {
    span(tx, description).status
}

// --- the trait, through the attributes ---------------------------------------------------------

#[traced]
fn find_user(id: u64) -> Result<String, AppError> {
    match id {
        0 => Err(AppError::NotFound),
        1 => Err(AppError::Forbidden),
        2 => Err(AppError::Database),
        _ => Ok(format!("user {id}")),
    }
}

#[traced]
async fn find_user_async(id: u64) -> AppResult<String> {
    find_user(id)
}

#[traced]
fn find_user_future(id: u64) -> impl std::future::Future<Output = AppResult<String>> {
    async move { find_user(id) }
}

#[traced]
fn generic_lookup<E: ErrorStatus>(error: E) -> Result<(), E> {
    Err(error)
}

#[test]
fn a_mapped_error_gives_its_status_under_traced() {
    for (id, expected) in [
        (0, SpanStatus::NotFound),
        (1, SpanStatus::PermissionDenied),
        (2, SpanStatus::InternalError),
        (3, SpanStatus::Ok),
    ] {
        let tx = capture_one(|| {
            let _ = find_user(id);
        });
        assert_eq!(status_of(&tx, "find_user"), Some(expected), "id {id}");
    }
}

#[test]
fn a_mapped_error_behind_an_alias_in_async_and_future_returning_fns() {
    let tx = capture_one(|| {
        assert_eq!(block_on(find_user_async(0)), Err(AppError::NotFound));
    });
    assert_eq!(
        status_of(&tx, "find_user_async"),
        Some(SpanStatus::NotFound)
    );
    assert_eq!(status_of(&tx, "find_user"), Some(SpanStatus::NotFound));
    let tx = capture_one(|| {
        assert_eq!(block_on(find_user_future(1)), Err(AppError::Forbidden));
    });
    assert_eq!(
        status_of(&tx, "find_user_future"),
        Some(SpanStatus::PermissionDenied)
    );
}

#[test]
fn a_generic_error_type_bound_by_the_trait_is_mapped() {
    let tx = capture_one(|| {
        let _ = generic_lookup(AppError::NotFound);
    });
    assert_eq!(status_of(&tx, "generic_lookup"), Some(SpanStatus::NotFound));
}

#[instrument_db_operation("users", "select", system = "sqlite")]
fn select_user(id: u64) -> Result<u64, AppError> {
    if id == 0 {
        Err(AppError::NotFound)
    } else {
        Ok(id)
    }
}

#[test]
fn a_mapped_error_gives_its_status_under_the_db_attribute() {
    let tx = capture_one(|| {
        assert_eq!(select_user(0), Err(AppError::NotFound));
        assert_eq!(select_user(1), Ok(1));
    });
    assert_eq!(tx.spans.len(), 2);
    assert_eq!(tx.spans[0].status, Some(SpanStatus::NotFound));
    assert_eq!(tx.spans[1].status, Some(SpanStatus::Ok));
}

#[instrument_cache_operation(get, key_param = "key")]
fn cached(key: &str) -> Result<Option<String>, AppError> {
    match key {
        "gone" => Err(AppError::NotFound),
        "down" => Err(AppError::Database),
        "hit" => Ok(Some("value".to_owned())),
        _ => Ok(None),
    }
}

#[test]
fn a_failed_cache_read_under_the_attribute_gives_the_errors_status() {
    let tx = capture_one(|| {
        for key in ["gone", "down", "hit", "miss"] {
            let _ = cached(key);
        }
    });
    let statuses: Vec<_> = tx.spans.iter().map(|s| s.status).collect();
    assert_eq!(
        statuses,
        [
            Some(SpanStatus::NotFound),
            Some(SpanStatus::InternalError),
            Some(SpanStatus::Ok),
            Some(SpanStatus::Ok),
        ]
    );
    assert!(!tx.spans[0].data.contains_key("cache.hit"), "a failed read");
    assert_eq!(tx.spans[2].data["cache.hit"], true);
    assert_eq!(tx.spans[3].data["cache.hit"], false);
}

// --- unmapped errors ---------------------------------------------------------------------------

#[traced]
fn unmapped() -> Result<(), Unmapped> {
    Err(Unmapped)
}

#[traced]
fn default_status() -> Result<(), DefaultStatus> {
    Err(DefaultStatus)
}

#[traced]
fn never_registered() -> Result<(), NeverRegistered> {
    Err(NeverRegistered)
}

#[test]
fn unmapped_errors_stay_internal_error() {
    let tx = capture_one(|| {
        let _ = unmapped();
        let _ = default_status();
        let _ = never_registered();
        SpanGuard::start("function", "unmapped by hand")
            .finish_with_outcome(&Err::<(), _>(Unmapped));
        SpanGuard::start("function", "not registered by hand")
            .finish_with_outcome(&Err::<(), _>(NeverRegistered));
        let _ = block_on(async { Err::<(), _>("plain") }.traced("function", "plain future"));
    });
    assert_eq!(status_of(&tx, "unmapped"), Some(SpanStatus::InternalError));
    assert_eq!(
        status_of(&tx, "default_status"),
        Some(SpanStatus::InternalError)
    );
    // The attribute sees the trait without registering...
    assert_eq!(
        status_of(&tx, "never_registered"),
        Some(SpanStatus::AlreadyExists)
    );
    assert_eq!(
        status_of(&tx, "unmapped by hand"),
        Some(SpanStatus::InternalError)
    );
    // ... the builders only once the type is registered.
    assert_eq!(
        status_of(&tx, "not registered by hand"),
        Some(SpanStatus::InternalError)
    );
    assert_eq!(
        status_of(&tx, "plain future"),
        Some(SpanStatus::InternalError)
    );
}

// --- the trait, through the builders -----------------------------------------------------------

#[test]
fn a_registered_error_gives_its_status_to_span_guard_finish_with_outcome() {
    status::register::<AppError>();
    status::register::<AppError>(); // twice is once
    let tx = capture_one(|| {
        SpanGuard::start("function", "lookup")
            .finish_with_outcome(&Err::<(), _>(AppError::NotFound));
        SpanGuard::start("function", "denied")
            .finish_with_outcome(&Err::<(), _>(AppError::Forbidden));
        let found: AppResult<u8> = Ok(1);
        SpanGuard::start("function", "found").finish_with_outcome(&found);
    });
    assert_eq!(status_of(&tx, "lookup"), Some(SpanStatus::NotFound));
    assert_eq!(status_of(&tx, "denied"), Some(SpanStatus::PermissionDenied));
    assert_eq!(status_of(&tx, "found"), Some(SpanStatus::Ok));
}

#[test]
fn a_registered_error_gives_its_status_to_future_ext_traced() {
    status::register::<AppError>();
    let tx = capture_one(|| {
        let out =
            block_on(async { Err::<(), _>(AppError::NotFound) }.traced("http.client", "fetch"));
        assert_eq!(out, Err(AppError::NotFound));
    });
    assert_eq!(status_of(&tx, "fetch"), Some(SpanStatus::NotFound));
}

#[test]
fn a_registered_error_gives_its_status_to_db_query_run() {
    status::register::<AppError>();
    let tx = capture_one(|| {
        let out = block_on(
            Query::sql("SELECT * FROM users WHERE id = $1")
                .run(async { Err::<u64, _>(AppError::NotFound) }),
        );
        assert_eq!(out, Err(AppError::NotFound));
        let out = block_on(
            Query::sql("DELETE FROM users WHERE id = $1")
                .run(async { Err::<u64, _>(AppError::Database) }),
        );
        assert_eq!(out, Err(AppError::Database));
    });
    assert_eq!(
        status_of(&tx, "SELECT * FROM users WHERE id = $1"),
        Some(SpanStatus::NotFound)
    );
    assert_eq!(
        status_of(&tx, "DELETE FROM users WHERE id = $1"),
        Some(SpanStatus::InternalError)
    );
}

// --- `err = ".."` ------------------------------------------------------------------------------

#[traced(err = "not_found")]
fn lookup_or_404(found: bool) -> Result<u8, String> {
    if found {
        Ok(1)
    } else {
        Err("no such user".to_owned())
    }
}

#[traced(err = "invalid_argument")]
async fn validate(input: &str) -> AppResult<usize> {
    if input.is_empty() {
        Err(AppError::NotFound)
    } else {
        Ok(input.len())
    }
}

#[instrument_db_operation(query = "SELECT * FROM users WHERE id = $1", err = "not_found")]
fn user_row(id: u64) -> Result<u64, Unmapped> {
    if id == 0 {
        Err(Unmapped)
    } else {
        Ok(id)
    }
}

#[instrument_cache_operation(get, key_param = "key", err = "unavailable")]
fn cached_or_unavailable(key: &str) -> Result<Option<String>, Unmapped> {
    let _ = key;
    Err(Unmapped)
}

#[instrument_queue_publish(
    destination = "orders",
    system = "rabbitmq",
    err = "resource_exhausted"
)]
fn publish_order() -> Result<(), Unmapped> {
    Err(Unmapped)
}

#[test]
fn err_argument_sets_the_status_of_any_err() {
    let tx = capture_one(|| {
        assert!(lookup_or_404(false).is_err());
        assert!(user_row(0).is_err());
        assert!(cached_or_unavailable("k").is_err());
        assert!(publish_order().is_err());
    });
    assert_eq!(status_of(&tx, "lookup_or_404"), Some(SpanStatus::NotFound));
    assert_eq!(
        status_of(&tx, "SELECT * FROM users WHERE id = $1"),
        Some(SpanStatus::NotFound)
    );
    assert_eq!(status_of(&tx, "k"), Some(SpanStatus::Unavailable));
    assert_eq!(
        status_of(&tx, "orders"),
        Some(SpanStatus::ResourceExhausted)
    );
}

#[test]
fn err_argument_leaves_ok_alone() {
    let tx = capture_one(|| {
        assert_eq!(lookup_or_404(true), Ok(1));
        assert_eq!(user_row(1), Ok(1));
    });
    assert_eq!(status_of(&tx, "lookup_or_404"), Some(SpanStatus::Ok));
    assert_eq!(
        status_of(&tx, "SELECT * FROM users WHERE id = $1"),
        Some(SpanStatus::Ok)
    );
}

#[test]
fn err_argument_wins_over_the_trait() {
    let tx = capture_one(|| {
        assert_eq!(block_on(validate("")), Err(AppError::NotFound));
    });
    assert_eq!(
        status_of(&tx, "validate"),
        Some(SpanStatus::InvalidArgument)
    );
}

#[instrument_queue_process(destination = "orders", system = "rabbitmq", err = "aborted")]
fn handle_order() -> Result<(), Unmapped> {
    Err(Unmapped)
}

#[test]
fn err_argument_on_a_consumer() {
    let txs = capture(|| {
        let _ = handle_order();
    });
    assert_eq!(txs.len(), 1);
    let process = txs[0]
        .spans
        .iter()
        .find(|s| s.op.as_deref() == Some("queue.process"))
        .expect("a queue.process span");
    assert_eq!(process.status, Some(SpanStatus::Aborted));
}

// --- a status the code set wins ----------------------------------------------------------------

fn set_current_status(status: SpanStatus) {
    let current = sentry::configure_scope(|s| s.get_span()).expect("our span is current");
    current.set_status(status);
}

#[traced(err = "not_found")]
fn sets_own_status_despite_err() -> Result<(), String> {
    set_current_status(SpanStatus::Aborted);
    Err("conflict".to_owned())
}

#[traced]
fn sets_own_status_despite_the_trait() -> AppResult<()> {
    set_current_status(SpanStatus::DeadlineExceeded);
    Err(AppError::NotFound)
}

#[test]
fn a_status_the_code_set_wins() {
    status::register::<AppError>();
    let tx = capture_one(|| {
        let _ = sets_own_status_despite_err();
        let _ = sets_own_status_despite_the_trait();
        let guard = SpanGuard::start("function", "by hand");
        set_current_status(SpanStatus::Unauthenticated);
        guard.finish_with_outcome(&Err::<(), _>(AppError::NotFound));
    });
    assert_eq!(
        status_of(&tx, "sets_own_status_despite_err"),
        Some(SpanStatus::Aborted)
    );
    assert_eq!(
        status_of(&tx, "sets_own_status_despite_the_trait"),
        Some(SpanStatus::DeadlineExceeded)
    );
    assert_eq!(status_of(&tx, "by hand"), Some(SpanStatus::Unauthenticated));
}
