//! Every sqlx query a db span, with one line of set-up: wrap the pool in [`Traced`].
//!
//! ```no_run
//! use insights_runtime::sqlx::Traced;
//! use sqlx::PgPool;
//!
//! # async fn run() -> Result<(), sqlx::Error> {
//! let pool = Traced::new(PgPool::connect("postgres://app@db.internal/shop").await?);
//!
//! // Everything executed through `&pool`, `&mut tx` or `&mut conn` is a span.
//! let name: String = sqlx::query_scalar("SELECT name FROM users WHERE id = $1")
//!     .bind(7_i64)
//!     .fetch_one(&pool)
//!     .await?;
//!
//! let mut tx = pool.begin().await?;
//! sqlx::query("UPDATE users SET seen = now() WHERE id = $1")
//!     .bind(7_i64)
//!     .execute(&mut tx)
//!     .await?;
//! tx.commit().await?;
//! # let _ = name;
//! # Ok(()) }
//! ```
//!
//! # The span
//!
//! One span per call of an [`Executor`] method (`execute`, `fetch_one`, `fetch_all`, a `fetch`
//! stream, ...), whichever way it is reached: `sqlx::query`, `query_as`, `query_scalar`, the
//! `query!` macros, `raw_sql`, a `QueryBuilder`. A child of the span current on the calling
//! task's hub when the call is made:
//!
//! | | |
//! |---|---|
//! | op | `db` |
//! | description, `db.query.text` | the SQL as sqlx sends it, with its placeholders (`$1`, `?`): bound values never appear (values formatted into the text itself, through `AssertSqlSafe`, would) |
//! | `db.system`, `db.system.name` | `postgresql`, `mysql` (MySQL and MariaDB) or `sqlite`, from the driver |
//! | `db.operation`, `db.operation.name` | the statement's first keyword (`SELECT`, `WITH`) |
//! | `db.name`, `db.namespace` | PostgreSQL and MySQL: the database of the connect options (PostgreSQL without one: the user's name, as the server does); SQLite: the file's name, `:memory:` for `sqlite::memory:` |
//! | `server.address`, `server.port` | the host and port of the connect options; none over a Unix socket or for SQLite |
//! | `db.response.returned_rows` | rows handed to the caller: `fetch`, `fetch_all`, `fetch_many`, `fetch_optional` and `fetch_one` (0 or 1) |
//! | `db.response.affected_rows` | rows the server reports changed: `execute`, `execute_many` and `fetch_many` |
//! | `code.filepath`, `code.lineno`, .. | the query source, when the caller is known (below) |
//! | `db.response.status_code` | for a database error, its code (PostgreSQL's and MySQL's SQLSTATE, `42601`; SQLite's result code) |
//!
//! The status is `ok`, or `internal_error` when sqlx returns an error (any error: the
//! server's, a lost connection, a value that failed to encode), except `fetch_one` finding no
//! row, which is `not_found` (with `db.response.returned_rows` 0). A stream dropped before its
//! end, or a future dropped before it completes, is `cancelled`.
//!
//! On a pool the span starts once the pool has handed out a connection: the time spent waiting
//! for one is not the query's (a call that gets no connection records nothing and returns the
//! pool's error). sqlx's results and errors are handed on unchanged, and with Sentry off, or
//! with no sampled span current, the call goes straight to sqlx: nothing is captured or built.
//!
//! # Query source
//!
//! The methods are `#[track_caller]`: a query run by calling the executor yourself,
//! `pool.fetch_one(query)` (with `sqlx::Executor` in scope), records your file and line. The
//! usual `query.fetch_one(&pool)` calls the executor from inside sqlx, whose location is no use
//! to you, so such a span carries no query source.
//!
//! # What you must not do
//!
//! * Execute through the inner value: [`Traced`] dereferences to it so that `pool.close()`,
//!   `pool.size()` or `conn.ping()` keep working, but `&*pool` (a bare `&Pool`) and `&mut **tx`
//!   (the bare connection) bypass the spans. Write `&pool`, `&mut tx`, `&mut conn`. (`&mut *tx`
//!   is a `&mut Transaction`, which sqlx 0.9 does not accept as an executor: a compile error,
//!   not a silent bypass.)
//! * Spawn queries onto other tasks without their hub: as for any `sentry` code, give a spawned
//!   future its caller's hub (`fut.bind_hub(Hub::new_from_top(Hub::current()))`), else its
//!   spans do not nest under the request.
//!
//! Not recorded: `BEGIN`, `COMMIT` and `ROLLBACK` (the transaction's own statements),
//! `prepare`/`describe`, and connection set-up.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::panic::Location;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use ::sqlx::error::BoxDynError;
use ::sqlx::pool::PoolConnection;
use ::sqlx::{
    Connection, Database, Describe, Either, Error, Execute, Executor, Pool, SqlStr, Transaction,
};
use futures_core::future::BoxFuture;
use futures_core::stream::{BoxStream, Stream};
use futures_util::{StreamExt, TryStreamExt};
use sentry::protocol::SpanStatus;
use sentry::{Hub, HubSwitchGuard};

use crate::integration::{InFlight, Peer, Rows, RETURNED_ROWS};

/// A database driver of sqlx's that [`Traced`] knows: [`Postgres`](::sqlx::Postgres)
/// (feature `sqlx-postgres`), [`MySql`](::sqlx::MySql) (`sqlx-mysql`, also for MariaDB) and
/// [`Sqlite`](::sqlx::Sqlite) (`sqlx-sqlite`). Sealed: it tells the span its `db.system`, where
/// the connect options point and how many rows a result affected.
pub trait Driver: Database + sealed::Sealed {}

mod sealed {
    /// Where a driver's connections go (public in name only, as the trait is).
    pub struct Dest(pub(crate) crate::integration::Peer);

    /// What [`Driver`](super::Driver) knows of a driver.
    pub trait Sealed: ::sqlx::Database {
        /// Where connections made with `options` go.
        fn peer(options: &<Self::Connection as ::sqlx::Connection>::Options) -> Dest;

        /// Rows the server reported changed.
        fn rows_affected(result: &Self::QueryResult) -> u64;
    }
}

#[cfg(feature = "sqlx-postgres")]
impl sealed::Sealed for ::sqlx::Postgres {
    fn peer(options: &::sqlx::postgres::PgConnectOptions) -> sealed::Dest {
        let mut peer = Peer::new("postgresql");
        // Without a database, the server uses the one named after the user.
        let database = options.get_database();
        peer.db_name = Some(database.unwrap_or_else(|| options.get_username()).into());
        if options.get_socket().is_none() {
            peer.server = Some((options.get_host().into(), options.get_port()));
        }
        sealed::Dest(peer)
    }

    fn rows_affected(result: &::sqlx::postgres::PgQueryResult) -> u64 {
        result.rows_affected()
    }
}

#[cfg(feature = "sqlx-postgres")]
impl Driver for ::sqlx::Postgres {}

#[cfg(feature = "sqlx-mysql")]
impl sealed::Sealed for ::sqlx::MySql {
    fn peer(options: &::sqlx::mysql::MySqlConnectOptions) -> sealed::Dest {
        let mut peer = Peer::new("mysql");
        peer.db_name = options.get_database().map(Into::into);
        if options.get_socket().is_none() {
            peer.server = Some((options.get_host().into(), options.get_port()));
        }
        sealed::Dest(peer)
    }

    fn rows_affected(result: &::sqlx::mysql::MySqlQueryResult) -> u64 {
        result.rows_affected()
    }
}

#[cfg(feature = "sqlx-mysql")]
impl Driver for ::sqlx::MySql {}

#[cfg(feature = "sqlx-sqlite")]
impl sealed::Sealed for ::sqlx::Sqlite {
    fn peer(options: &::sqlx::sqlite::SqliteConnectOptions) -> sealed::Dest {
        let path = options.get_filename();
        let whole = path.to_string_lossy();
        // `sqlite::memory:` becomes a private in-memory file of this name.
        let name = if whole.starts_with("file:sqlx-in-memory-") {
            Cow::Borrowed(":memory:")
        } else {
            path.file_name()
                .map_or(whole.clone(), |name| name.to_string_lossy())
        };
        let mut peer = Peer::new("sqlite");
        peer.db_name = Some(name.into());
        sealed::Dest(peer)
    }

    fn rows_affected(result: &::sqlx::sqlite::SqliteQueryResult) -> u64 {
        result.rows_affected()
    }
}

#[cfg(feature = "sqlx-sqlite")]
impl Driver for ::sqlx::Sqlite {}

/// A sqlx pool, pooled connection, transaction or connection whose queries are db spans.
///
/// Wrap the pool once, with [`Traced::new`], and use the wrapper wherever sqlx takes an
/// executor: `&pool` for a pool, `&mut tx` for a transaction from [`begin`](Traced::begin),
/// `&mut conn` for a connection from [`acquire`](Traced::acquire). Each call is one span (see
/// the [module](self) docs). It dereferences to the inner value for everything else
/// (`pool.close()`, `conn.ping()`); executing through that inner value (`&*pool`, `&mut
/// **tx`) records nothing.
///
/// ```no_run
/// use insights_runtime::sqlx::Traced;
/// use sqlx::{Executor, PgPool};
///
/// # async fn run() -> Result<(), sqlx::Error> {
/// let pool = Traced::new(PgPool::connect("postgres://app@db.internal/shop").await?);
///
/// let users: Vec<(i64, String)> = sqlx::query_as("SELECT id, name FROM users WHERE team = $1")
///     .bind(3_i64)
///     .fetch_all(&pool)
///     .await?;
///
/// // Calling the executor yourself records this file and line as the query source.
/// let done = pool.execute(sqlx::query("DELETE FROM sessions WHERE expires < now()")).await?;
///
/// let mut conn = pool.acquire().await?;
/// let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&mut conn).await?;
///
/// // `Traced` is cheap to clone (the pool is a handle), and still a pool.
/// let shared = pool.clone();
/// shared.close().await;
/// # let _ = (users, done, one);
/// # Ok(()) }
/// ```
pub struct Traced<T> {
    inner: T,
    peer: Arc<Peer>,
}

/// The database of a connection-like `T`.
type Db<T> = <<T as Deref>::Target as Connection>::Database;

impl<DB: Driver> Traced<Pool<DB>> {
    /// Wraps `pool`; where its connections go (database, host, port) is read from its connect
    /// options now, once.
    pub fn new(pool: Pool<DB>) -> Self {
        let sealed::Dest(peer) = DB::peer(&pool.connect_options());
        Traced {
            inner: pool,
            peer: Arc::new(peer),
        }
    }

    /// A connection from the pool ([`Pool::acquire`]), whose queries are spans.
    pub async fn acquire(&self) -> Result<Traced<PoolConnection<DB>>, Error> {
        let conn = self.inner.acquire().await?;
        Ok(self.with_peer(conn))
    }

    /// Starts a transaction on a connection from the pool ([`Pool::begin`]); its queries are
    /// spans. End it with [`commit`](Traced::commit) or [`rollback`](Traced::rollback)
    /// (dropped, sqlx rolls it back).
    pub async fn begin(&self) -> Result<Traced<Transaction<'static, DB>>, Error> {
        let tx = self.inner.begin().await?;
        Ok(self.with_peer(tx))
    }
}

impl<DB: Driver> Traced<PoolConnection<DB>> {
    /// Starts a transaction on this connection; its queries are spans.
    pub async fn begin(&mut self) -> Result<Traced<Transaction<'_, DB>>, Error> {
        let peer = Arc::clone(&self.peer);
        let tx = Connection::begin(&mut *self.inner).await?;
        Ok(Traced { inner: tx, peer })
    }
}

impl<'c, DB: Driver> Traced<Transaction<'c, DB>> {
    /// Starts a nested transaction (a savepoint) in this one; its queries are spans.
    pub async fn begin(&mut self) -> Result<Traced<Transaction<'_, DB>>, Error> {
        let peer = Arc::clone(&self.peer);
        let tx = Connection::begin(&mut *self.inner).await?;
        Ok(Traced { inner: tx, peer })
    }

    /// Commits the transaction ([`Transaction::commit`]).
    pub async fn commit(self) -> Result<(), Error> {
        self.inner.commit().await
    }

    /// Rolls the transaction back ([`Transaction::rollback`]).
    pub async fn rollback(self) -> Result<(), Error> {
        self.inner.rollback().await
    }
}

impl<T> Traced<T>
where
    T: DerefMut,
    T::Target: Connection,
    Db<T>: Driver,
{
    /// Wraps a connection that did not come from a [`Traced`] pool: anything that dereferences
    /// to one (`&mut PgConnection`, `Box<PgConnection>`, a [`PoolConnection`], a
    /// [`Transaction`]). A bare connection does not tell where it is connected, so give the
    /// options it was made with.
    ///
    /// ```no_run
    /// use insights_runtime::sqlx::Traced;
    /// use sqlx::postgres::{PgConnectOptions, PgConnection};
    /// use sqlx::ConnectOptions;
    ///
    /// # async fn run() -> Result<(), sqlx::Error> {
    /// let options: PgConnectOptions = "postgres://app@db.internal/shop".parse()?;
    /// let mut conn: PgConnection = options.connect().await?;
    /// let mut traced = Traced::with_options(&mut conn, &options);
    /// sqlx::query("SELECT 1").execute(&mut traced).await?;
    /// # Ok(()) }
    /// ```
    pub fn with_options(inner: T, options: &<T::Target as Connection>::Options) -> Self {
        Traced {
            inner,
            peer: Arc::new(<Db<T> as sealed::Sealed>::peer(options).0),
        }
    }
}

impl<T> Traced<T> {
    /// The wrapped value, whose queries are no longer recorded.
    pub fn into_inner(self) -> T {
        self.inner
    }

    /// `value` going to the same place as `self`.
    fn with_peer<U>(&self, value: U) -> Traced<U> {
        Traced {
            inner: value,
            peer: Arc::clone(&self.peer),
        }
    }
}

impl<T: Clone> Clone for Traced<T> {
    fn clone(&self) -> Self {
        self.with_peer(self.inner.clone())
    }
}

/// Executing through the inner value records nothing.
impl<T> Deref for Traced<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.inner
    }
}

/// Executing through the inner value records nothing.
impl<T> DerefMut for Traced<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T: fmt::Debug> fmt::Debug for Traced<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Traced")
            .field("inner", &self.inner)
            .field("system", &self.peer.system)
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------------
// One call: decided when it is made, started when the query is sent.

/// A call that will be recorded: the caller's hub (whose current span is the parent), where
/// the query goes and who called.
struct Call {
    hub: Arc<Hub>,
    peer: Arc<Peer>,
    caller: &'static Location<'static>,
}

impl Call {
    /// `Some` when a span will be recorded: Sentry is on and a sampled span is current.
    fn new(peer: &Arc<Peer>, caller: &'static Location<'static>) -> Option<Self> {
        let (hub, _) = crate::span::recording_parent()?;
        Some(Call {
            hub,
            peer: Arc::clone(peer),
            caller,
        })
    }

    /// Starts the span of `sql`, under the caller's hub.
    fn start(self, sql: &str) -> Running {
        let span = {
            let _caller = HubSwitchGuard::new(self.hub);
            self.peer.start(sql, self.caller)
        };
        Running(InFlight::new(span))
    }
}

/// A statement's span while it runs ([`InFlight`]: `cancelled` when dropped first), finished
/// with sqlx's own reading of `RowNotFound`.
struct Running(InFlight);

impl Running {
    fn finish<T>(self, outcome: &Result<T, Error>, rows: Rows) {
        if let (Some(span), Err(Error::RowNotFound)) = (self.0.span(), outcome) {
            // `fetch_one` found nothing: the query ran, the row the caller expected is not there.
            span.set_status(SpanStatus::NotFound);
            span.set_data(RETURNED_ROWS, 0u64);
        }
        self.0.finish(outcome, |_| rows, code);
    }
}

/// The database's code for a database error.
fn code(error: &Error) -> Option<Cow<'_, str>> {
    error.as_database_error().and_then(|e| e.code())
}

/// A query taken apart (sqlx 0.9's `Execute::sql` consumes it) so that its SQL can be read,
/// then handed to the driver with everything else as the query gave it.
struct Captured<DB: Database> {
    sql: SqlStr,
    statement: Option<DB::Statement>,
    arguments: Result<Option<DB::Arguments>, BoxDynError>,
    persistent: bool,
}

impl<DB: Database> Captured<DB> {
    /// Reads `query` in the order the drivers do.
    fn new<'q, E: Execute<'q, DB>>(mut query: E) -> Self {
        let statement = query.statement().cloned();
        let arguments = query.take_arguments();
        let persistent = query.persistent();
        let sql = query.sql();
        Captured {
            sql,
            statement,
            arguments,
            persistent,
        }
    }
}

impl<DB: Database> Execute<'_, DB> for Captured<DB> {
    fn sql(self) -> SqlStr {
        self.sql
    }

    fn statement(&self) -> Option<&DB::Statement> {
        self.statement.as_ref()
    }

    fn take_arguments(&mut self) -> Result<Option<DB::Arguments>, BoxDynError> {
        // The query's own answer once (an encoding error included), then none, as a query does.
        std::mem::replace(&mut self.arguments, Ok(None))
    }

    fn persistent(&self) -> bool {
        self.persistent
    }
}

// ---------------------------------------------------------------------------------------------
// Counting what a call returns.

fn count_row<R>(_: &R, rows: &mut Rows) {
    rows.returned = Some(rows.returned.unwrap_or(0).saturating_add(1));
}

fn count_result<DB: Driver>(result: &DB::QueryResult, rows: &mut Rows) {
    let affected = DB::rows_affected(result);
    rows.affected = Some(rows.affected.unwrap_or(0).saturating_add(affected));
}

type Step<DB> = Either<<DB as Database>::QueryResult, <DB as Database>::Row>;

/// Rows and results, for `fetch_many`.
fn count_step<DB: Driver>(step: &Step<DB>, rows: &mut Rows) {
    match step {
        Either::Left(result) => count_result::<DB>(result, rows),
        Either::Right(row) => count_row(row, rows),
    }
}

/// Rows only, for `fetch` (the results are not the caller's).
fn count_step_rows<DB: Driver>(step: &Step<DB>, rows: &mut Rows) {
    if let Either::Right(row) = step {
        count_row(row, rows);
    }
}

/// Results only, for `execute_many`.
fn count_step_results<DB: Driver>(step: &Step<DB>, rows: &mut Rows) {
    if let Either::Left(result) = step {
        count_result::<DB>(result, rows);
    }
}

/// Nothing returned yet.
const NO_ROWS: Rows = Rows {
    returned: Some(0),
    affected: None,
};

/// Nothing affected yet.
const NOTHING_AFFECTED: Rows = Rows {
    returned: None,
    affected: Some(0),
};

/// A driver's stream, counted, its span finished at its end or first error.
struct Counted<'a, T> {
    inner: BoxStream<'a, Result<T, Error>>,
    running: Option<Running>,
    rows: Rows,
    count: fn(&T, &mut Rows),
}

impl<'a, T> Counted<'a, T> {
    fn new(
        running: Running,
        inner: BoxStream<'a, Result<T, Error>>,
        rows: Rows,
        count: fn(&T, &mut Rows),
    ) -> Self {
        Counted {
            inner,
            running: Some(running),
            rows,
            count,
        }
    }
}

impl<T> Stream for Counted<'_, T> {
    type Item = Result<T, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let next = this.inner.as_mut().poll_next(cx);
        match &next {
            Poll::Pending => {}
            Poll::Ready(Some(Ok(item))) => (this.count)(item, &mut this.rows),
            Poll::Ready(Some(outcome @ Err(_))) => {
                if let Some(running) = this.running.take() {
                    running.finish(outcome, this.rows);
                }
            }
            Poll::Ready(None) => {
                if let Some(running) = this.running.take() {
                    running.finish(&Ok::<(), Error>(()), this.rows);
                }
            }
        }
        next
    }
}

// ---------------------------------------------------------------------------------------------
// A stream over a connection the stream owns (a pool's), without a self-borrowing type.

/// The item a producer handed over and the stream has not returned yet.
type Slot<T> = Arc<Mutex<Option<T>>>;

fn lock<T>(slot: &Mutex<T>) -> MutexGuard<'_, T> {
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The producer's end: [`send`](Sender::send) hands one item to the stream.
struct Sender<T> {
    slot: Slot<T>,
}

impl<T> Sender<T> {
    /// Hands `item` over; the returned future completes once the stream has returned it.
    fn send(&self, item: T) -> Handover<'_, T> {
        *lock(&self.slot) = Some(item);
        Handover { slot: &self.slot }
    }
}

/// Pending while the item is in the slot: the stream, which polled it, returns the item at
/// once, and polls again for the next.
struct Handover<'a, T> {
    slot: &'a Mutex<Option<T>>,
}

impl<T> Future for Handover<'_, T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if lock(self.slot).is_none() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

pin_project_lite::pin_project! {
    /// A stream of the items a future sends: polling the stream polls the future until it sends
    /// one or ends. Dropping the stream drops the future.
    struct Produced<T, F> {
        slot: Slot<T>,
        #[pin]
        producer: Option<F>,
    }
}

impl<T, F: Future<Output = ()>> Produced<T, F> {
    fn new(produce: impl FnOnce(Sender<T>) -> F) -> Self {
        let slot = Arc::new(Mutex::new(None));
        let producer = produce(Sender {
            slot: Arc::clone(&slot),
        });
        Produced {
            slot,
            producer: Some(producer),
        }
    }
}

impl<T, F: Future<Output = ()>> Stream for Produced<T, F> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut this = self.project();
        let ended = match this.producer.as_mut().as_pin_mut() {
            Some(producer) => producer.poll(cx).is_ready(),
            None => return Poll::Ready(None),
        };
        if ended {
            this.producer.set(None);
        }
        match lock(this.slot).take() {
            Some(item) => Poll::Ready(Some(item)),
            None if ended => Poll::Ready(None),
            // The producer waits on the driver, which will wake the task.
            None => Poll::Pending,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The calls, on a connection (any executor of the driver's).

fn execute_on<'a, X, DB>(
    conn: X,
    call: Call,
    query: Captured<DB>,
) -> BoxFuture<'a, Result<DB::QueryResult, Error>>
where
    X: Executor<'a, Database = DB>,
    DB: Driver,
{
    let running = call.start(query.sql.as_str());
    let inner = conn.execute(query);
    Box::pin(async move {
        let outcome = inner.await;
        let mut rows = NOTHING_AFFECTED;
        if let Ok(result) = &outcome {
            count_result::<DB>(result, &mut rows);
        }
        running.finish(&outcome, rows);
        outcome
    })
}

fn fetch_all_on<'a, X, DB>(
    conn: X,
    call: Call,
    query: Captured<DB>,
) -> BoxFuture<'a, Result<Vec<DB::Row>, Error>>
where
    X: Executor<'a, Database = DB>,
    DB: Driver,
{
    let running = call.start(query.sql.as_str());
    let inner = conn.fetch_all(query);
    Box::pin(async move {
        let outcome = inner.await;
        let returned = outcome.as_ref().map_or(0, Vec::len);
        let rows = Rows {
            returned: Some(u64::try_from(returned).unwrap_or(u64::MAX)),
            affected: None,
        };
        running.finish(&outcome, rows);
        outcome
    })
}

fn fetch_one_on<'a, X, DB>(
    conn: X,
    call: Call,
    query: Captured<DB>,
) -> BoxFuture<'a, Result<DB::Row, Error>>
where
    X: Executor<'a, Database = DB>,
    DB: Driver,
{
    let running = call.start(query.sql.as_str());
    let inner = conn.fetch_one(query);
    Box::pin(async move {
        let outcome = inner.await;
        let rows = Rows {
            returned: Some(1),
            affected: None,
        };
        running.finish(&outcome, rows);
        outcome
    })
}

fn fetch_optional_on<'a, X, DB>(
    conn: X,
    call: Call,
    query: Captured<DB>,
) -> BoxFuture<'a, Result<Option<DB::Row>, Error>>
where
    X: Executor<'a, Database = DB>,
    DB: Driver,
{
    let running = call.start(query.sql.as_str());
    let inner = conn.fetch_optional(query);
    Box::pin(async move {
        let outcome = inner.await;
        let found = matches!(outcome, Ok(Some(_)));
        let rows = Rows {
            returned: Some(u64::from(found)),
            affected: None,
        };
        running.finish(&outcome, rows);
        outcome
    })
}

fn fetch_on<'a, X, DB>(
    conn: X,
    call: Call,
    query: Captured<DB>,
) -> BoxStream<'a, Result<DB::Row, Error>>
where
    X: Executor<'a, Database = DB>,
    DB: Driver,
{
    let running = call.start(query.sql.as_str());
    let inner = conn.fetch(query);
    Box::pin(Counted::new(running, inner, NO_ROWS, count_row))
}

fn fetch_many_on<'a, X, DB>(
    conn: X,
    call: Call,
    query: Captured<DB>,
    rows: Rows,
    count: fn(&Step<DB>, &mut Rows),
) -> BoxStream<'a, Result<Step<DB>, Error>>
where
    X: Executor<'a, Database = DB>,
    DB: Driver,
{
    let running = call.start(query.sql.as_str());
    let inner = conn.fetch_many(query);
    Box::pin(Counted::new(running, inner, rows, count))
}

fn execute_many_on<'a, X, DB>(
    conn: X,
    call: Call,
    query: Captured<DB>,
) -> BoxStream<'a, Result<DB::QueryResult, Error>>
where
    X: Executor<'a, Database = DB>,
    DB: Driver,
{
    let running = call.start(query.sql.as_str());
    let inner = conn.execute_many(query);
    Box::pin(Counted::new(
        running,
        inner,
        NOTHING_AFFECTED,
        count_result::<DB>,
    ))
}

/// `fetch_many` on a connection from `pool`, the span started once the pool has handed it
/// out; `rows` and `count` say what the span counts. sqlx's pool runs `fetch` and
/// `execute_many` through `fetch_many` too.
fn fetch_many_on_pool<DB>(
    pool: Pool<DB>,
    call: Call,
    query: Captured<DB>,
    rows: Rows,
    count: fn(&Step<DB>, &mut Rows),
) -> BoxStream<'static, Result<Step<DB>, Error>>
where
    DB: Driver,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    Box::pin(Produced::new(move |tx| async move {
        let mut conn = match pool.acquire().await {
            Ok(conn) => conn,
            Err(error) => {
                tx.send(Err(error)).await;
                return;
            }
        };
        let mut steps = fetch_many_on(&mut *conn, call, query, rows, count);
        while let Some(step) = steps.next().await {
            tx.send(step).await;
        }
    }))
}

// ---------------------------------------------------------------------------------------------
// The executors.

impl<'p, DB> Executor<'p> for &'p Traced<Pool<DB>>
where
    DB: Driver,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    type Database = DB;

    #[track_caller]
    fn execute<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<DB::QueryResult, Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, DB>,
    {
        let Some(call) = Call::new(&self.peer, Location::caller()) else {
            return self.inner.execute(query);
        };
        let (pool, query) = (self.inner.clone(), Captured::new(query));
        Box::pin(async move {
            let mut conn = pool.acquire().await?;
            execute_on(&mut *conn, call, query).await
        })
    }

    #[track_caller]
    fn execute_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, Result<DB::QueryResult, Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, DB>,
    {
        let Some(call) = Call::new(&self.peer, Location::caller()) else {
            return self.inner.execute_many(query);
        };
        let (pool, query) = (self.inner.clone(), Captured::new(query));
        fetch_many_on_pool::<DB>(
            pool,
            call,
            query,
            NOTHING_AFFECTED,
            count_step_results::<DB>,
        )
        .try_filter_map(|step| async move { Ok(step.left()) })
        .boxed()
    }

    #[track_caller]
    fn fetch<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, Result<DB::Row, Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, DB>,
    {
        let Some(call) = Call::new(&self.peer, Location::caller()) else {
            return self.inner.fetch(query);
        };
        let (pool, query) = (self.inner.clone(), Captured::new(query));
        fetch_many_on_pool::<DB>(pool, call, query, NO_ROWS, count_step_rows::<DB>)
            .try_filter_map(|step| async move { Ok(step.right()) })
            .boxed()
    }

    #[track_caller]
    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, Result<Step<DB>, Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, DB>,
    {
        let Some(call) = Call::new(&self.peer, Location::caller()) else {
            return self.inner.fetch_many(query);
        };
        let (pool, query) = (self.inner.clone(), Captured::new(query));
        fetch_many_on_pool::<DB>(pool, call, query, NO_ROWS, count_step::<DB>)
    }

    #[track_caller]
    fn fetch_all<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Vec<DB::Row>, Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, DB>,
    {
        let Some(call) = Call::new(&self.peer, Location::caller()) else {
            return self.inner.fetch_all(query);
        };
        let (pool, query) = (self.inner.clone(), Captured::new(query));
        Box::pin(async move {
            let mut conn = pool.acquire().await?;
            fetch_all_on(&mut *conn, call, query).await
        })
    }

    #[track_caller]
    fn fetch_one<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<DB::Row, Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, DB>,
    {
        let Some(call) = Call::new(&self.peer, Location::caller()) else {
            return self.inner.fetch_one(query);
        };
        let (pool, query) = (self.inner.clone(), Captured::new(query));
        Box::pin(async move {
            let mut conn = pool.acquire().await?;
            fetch_one_on(&mut *conn, call, query).await
        })
    }

    #[track_caller]
    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<DB::Row>, Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, DB>,
    {
        let Some(call) = Call::new(&self.peer, Location::caller()) else {
            return self.inner.fetch_optional(query);
        };
        let (pool, query) = (self.inner.clone(), Captured::new(query));
        Box::pin(async move {
            let mut conn = pool.acquire().await?;
            fetch_optional_on(&mut *conn, call, query).await
        })
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [DB::TypeInfo],
    ) -> BoxFuture<'e, Result<DB::Statement, Error>>
    where
        'p: 'e,
    {
        self.inner.prepare_with(sql, parameters)
    }

    #[doc(hidden)]
    fn describe<'e>(self, sql: SqlStr) -> BoxFuture<'e, Result<Describe<DB>, Error>>
    where
        'p: 'e,
    {
        self.inner.describe(sql)
    }
}

impl<'c, T> Executor<'c> for &'c mut Traced<T>
where
    T: DerefMut + Send + fmt::Debug,
    T::Target: Connection,
    Db<T>: Driver,
    for<'a> &'a mut T::Target: Executor<'a, Database = Db<T>>,
{
    type Database = Db<T>;

    #[track_caller]
    fn execute<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<<Db<T> as Database>::QueryResult, Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Db<T>>,
    {
        let Traced { inner, peer } = self;
        match Call::new(peer, Location::caller()) {
            Some(call) => execute_on(&mut **inner, call, Captured::new(query)),
            None => (&mut **inner).execute(query),
        }
    }

    #[track_caller]
    fn execute_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<<Db<T> as Database>::QueryResult, Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Db<T>>,
    {
        let Traced { inner, peer } = self;
        match Call::new(peer, Location::caller()) {
            Some(call) => execute_many_on(&mut **inner, call, Captured::new(query)),
            None => (&mut **inner).execute_many(query),
        }
    }

    #[track_caller]
    fn fetch<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<<Db<T> as Database>::Row, Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Db<T>>,
    {
        let Traced { inner, peer } = self;
        match Call::new(peer, Location::caller()) {
            Some(call) => fetch_on(&mut **inner, call, Captured::new(query)),
            None => (&mut **inner).fetch(query),
        }
    }

    #[track_caller]
    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, Result<Step<Db<T>>, Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Db<T>>,
    {
        let Traced { inner, peer } = self;
        match Call::new(peer, Location::caller()) {
            Some(call) => fetch_many_on(
                &mut **inner,
                call,
                Captured::new(query),
                NO_ROWS,
                count_step::<Db<T>>,
            ),
            None => (&mut **inner).fetch_many(query),
        }
    }

    #[track_caller]
    fn fetch_all<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Vec<<Db<T> as Database>::Row>, Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Db<T>>,
    {
        let Traced { inner, peer } = self;
        match Call::new(peer, Location::caller()) {
            Some(call) => fetch_all_on(&mut **inner, call, Captured::new(query)),
            None => (&mut **inner).fetch_all(query),
        }
    }

    #[track_caller]
    fn fetch_one<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<<Db<T> as Database>::Row, Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Db<T>>,
    {
        let Traced { inner, peer } = self;
        match Call::new(peer, Location::caller()) {
            Some(call) => fetch_one_on(&mut **inner, call, Captured::new(query)),
            None => (&mut **inner).fetch_one(query),
        }
    }

    #[track_caller]
    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<<Db<T> as Database>::Row>, Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Db<T>>,
    {
        let Traced { inner, peer } = self;
        match Call::new(peer, Location::caller()) {
            Some(call) => fetch_optional_on(&mut **inner, call, Captured::new(query)),
            None => (&mut **inner).fetch_optional(query),
        }
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [<Db<T> as Database>::TypeInfo],
    ) -> BoxFuture<'e, Result<<Db<T> as Database>::Statement, Error>>
    where
        'c: 'e,
    {
        (&mut *self.inner).prepare_with(sql, parameters)
    }

    #[doc(hidden)]
    fn describe<'e>(self, sql: SqlStr) -> BoxFuture<'e, Result<Describe<Db<T>>, Error>>
    where
        'c: 'e,
    {
        (&mut *self.inner).describe(sql)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::sealed::Sealed as _;

    use super::*;

    /// Pending once (waking the task at once), then ready: a driver waiting on the network.
    struct Wait(bool);

    impl Future for Wait {
        type Output = ();

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                Poll::Ready(())
            } else {
                self.0 = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    #[test]
    fn a_produced_stream_yields_what_was_sent_in_order_then_ends() {
        let stream = Produced::new(|tx| async move {
            for i in 0..4 {
                Wait(false).await;
                tx.send(i).await;
            }
            Wait(false).await;
        });
        let items: Vec<i32> = futures_executor::block_on(stream.collect());
        assert_eq!(items, [0, 1, 2, 3]);
    }

    #[test]
    fn dropping_a_produced_stream_drops_its_producer() {
        struct Flag(Arc<AtomicBool>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = Flag(Arc::clone(&dropped));
        let mut stream = Box::pin(Produced::new(move |tx| async move {
            let _flag = flag;
            for i in 0.. {
                tx.send(i).await;
            }
        }));
        let first = futures_executor::block_on(stream.next());
        assert_eq!(first, Some(0));
        assert!(!dropped.load(Ordering::SeqCst));
        drop(stream);
        assert!(dropped.load(Ordering::SeqCst));
    }

    #[cfg(feature = "sqlx-postgres")]
    #[test]
    fn postgresql_peers() {
        use ::sqlx::postgres::{PgConnectOptions, Postgres};

        let tcp: PgConnectOptions = "postgres://app@db.internal:6543/shop".parse().unwrap();
        let sealed::Dest(peer) = Postgres::peer(&tcp);
        assert_eq!(peer.system, "postgresql");
        assert_eq!(peer.db_name.as_deref(), Some("shop"));
        assert_eq!(peer.server, Some(("db.internal".into(), 6543)));

        // No database: the server uses the user's name. A Unix socket: no server.
        let socket: PgConnectOptions = "postgres://app@localhost?host=/var/run/postgresql"
            .parse()
            .unwrap();
        let sealed::Dest(peer) = Postgres::peer(&socket);
        assert_eq!(peer.db_name.as_deref(), Some("app"));
        assert_eq!(peer.server, None);
    }

    #[cfg(feature = "sqlx-mysql")]
    #[test]
    fn mysql_peers() {
        use ::sqlx::mysql::{MySql, MySqlConnectOptions};

        let tcp: MySqlConnectOptions = "mysql://root@db.internal:3307/shop".parse().unwrap();
        let sealed::Dest(peer) = MySql::peer(&tcp);
        assert_eq!(peer.system, "mysql");
        assert_eq!(peer.db_name.as_deref(), Some("shop"));
        assert_eq!(peer.server, Some(("db.internal".into(), 3307)));

        let socket: MySqlConnectOptions = "mysql://root@localhost?socket=/tmp/mysql.sock"
            .parse()
            .unwrap();
        let sealed::Dest(peer) = MySql::peer(&socket);
        assert_eq!(peer.db_name, None);
        assert_eq!(peer.server, None);
    }

    #[cfg(feature = "sqlx-sqlite")]
    #[test]
    fn sqlite_peers() {
        use ::sqlx::sqlite::{Sqlite, SqliteConnectOptions};

        let file = SqliteConnectOptions::new().filename("/var/lib/app/shop.db");
        let sealed::Dest(peer) = Sqlite::peer(&file);
        assert_eq!(peer.system, "sqlite");
        assert_eq!(peer.db_name.as_deref(), Some("shop.db"));
        assert_eq!(peer.server, None);

        let memory: SqliteConnectOptions = "sqlite::memory:".parse().unwrap();
        let sealed::Dest(peer) = Sqlite::peer(&memory);
        assert_eq!(peer.db_name.as_deref(), Some(":memory:"));
    }
}
