//! db spans for every statement sent through a `tokio_postgres::Client` (feature
//! `tokio-postgres`).
//!
//! [`Client`] wraps the client `tokio_postgres` connected, with the [`Config`] it connected
//! with; its methods have tokio-postgres's names and arguments, send the same messages, and hand
//! back tokio-postgres's own result and error unchanged. Each call is one span, from its start
//! to its reply:
//!
//! * op `db`, description the statement as sent (with its `$1` placeholders: parameters are
//!   never read);
//! * data `db.system` and `db.system.name` `postgresql`, `db.query.text` (the statement),
//!   `db.operation` and `db.operation.name` (its first keyword), `db.name` and `db.namespace`
//!   (the config's database, or its user, which PostgreSQL takes when no database is named),
//!   `server.address` and `server.port` (the config's host when it names exactly one TCP host;
//!   none for a Unix socket, or for several hosts, since which of them answered is not known),
//!   the query source (the file and line of the call, when it is the application's code);
//! * `db.response.returned_rows`: the rows `query`, `query_one`, `query_opt`, `query_typed`,
//!   `simple_query` and the streams of `query_raw` and `query_typed_raw` returned;
//!   `db.response.affected_rows`: the count `execute` and `execute_raw` return, and for
//!   `simple_query` the statements' counts added up when none of them returned rows;
//! * status `ok`, or `internal_error` with `db.response.status_code`, the SQLSTATE
//!   (`42601`), when the server gave one (a closed connection has none); `cancelled` when the
//!   call's future, or a row stream, is dropped before it finishes.
//!
//! The span's parent is the span current on the hub of the task that polls the call (the
//! request's, under `sentry-tower` or [`bind_hub`](sentry::SentryFutureExt::bind_hub)), so one
//! [`Client`] shared by concurrent requests (it is `Sync`, and tokio-postgres pipelines their
//! statements) records each statement under its own request. Spans are leaves: nothing nests
//! under them.
//!
//! # Setting up
//!
//! One line beside `tokio_postgres::connect`: parse the URL into a [`Config`] first, so that
//! the wrapper knows the database and server.
//!
//! ```ignore
//! // (Needs tokio and tokio-postgres's default `runtime` feature, which this crate does not
//! // turn on itself; so this example is not compiled here.)
//! let config: tokio_postgres::Config = database_url.parse()?;
//! let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
//! tokio::spawn(connection);
//! let client = insights_runtime::postgres::Client::new(client, &config);
//! ```
//!
//! # Prepared statements
//!
//! [`Client::prepare`] is a span of its own (a round trip, and where a statement's syntax
//! errors show) and returns this module's [`Statement`], which keeps the SQL beside
//! tokio-postgres's statement, so that running it later is described by its text. The methods
//! take a `&str`, a `&String` or a `&Statement` (the [`ToStatement`] trait). A bare
//! `tokio_postgres::Statement` carries no text, so it is refused at compile time; when one was
//! prepared elsewhere, [`Statement::new`] pairs it with the SQL it was prepared from:
//!
//! ```compile_fail
//! # async fn run(db: &insights_runtime::postgres::Client, raw: tokio_postgres::Statement) {
//! let _ = db.query(&raw, &[]).await; // error: no SQL text to describe the span
//! # }
//! ```
//!
//! # Transactions
//!
//! [`Client::transaction`] returns a [`Transaction`] with the same methods, whose statements
//! are recorded the same way (as children of the caller's span, not of any "transaction" span).
//! The statements that begin and end it are spans too, described as tokio-postgres sends them:
//! `START TRANSACTION`, `COMMIT`, `ROLLBACK`, and for a nested transaction (a savepoint)
//! `SAVEPOINT sp_1`, `RELEASE sp_1`, `ROLLBACK TO sp_1`. A transaction dropped without
//! `commit` or `rollback` is rolled back by tokio-postgres with the next statement the client
//! sends; that rollback is not a span of its own.
//!
//! # What is not recorded
//!
//! Everything else goes through [`Deref`] to the `tokio_postgres` type and is **not
//! recorded**: the `*_scalar` methods, `query_typed_one`, `query_typed_opt`,
//! `execute_typed`, `copy_in`, `copy_out`, portals (`bind`, `query_portal`),
//! `simple_query_raw`, `build_transaction` (reach it through [`Client::get_mut`]; its
//! transaction is tokio-postgres's own), and `check_connection`. Statements run through a
//! `tokio_postgres::Client` that is not wrapped are not recorded either.
//!
//! deadpool-postgres is not supported: a pooled object owns its `tokio_postgres::Client` and
//! lends it only by reference (with a statement cache of its own), so there is nothing to wrap;
//! statements run through a pool are not recorded.
//!
//! When Sentry is not initialised, no span is current, or the trace is not sampled, nothing is
//! recorded and nothing is allocated for it; the costs that remain are a [`Statement`]'s copy
//! of its SQL, made when it is prepared, and a copy of the name given to
//! [`Transaction::savepoint`].

use std::borrow::Cow;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::panic::Location;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;
use tokio_postgres::config::Host;
use tokio_postgres::types::{BorrowToSql, ToSql, Type};
use tokio_postgres::{Config, Error, Row, SimpleQueryMessage};

use crate::integration::{InFlight, Peer, Rows, RETURNED_ROWS};
use crate::span::SpanGuard;

/// `db.system` of every span of this module.
const SYSTEM: &str = "postgresql";

/// The port PostgreSQL listens on when the config names none.
const DEFAULT_PORT: u16 = 5432;

/// What tokio-postgres sends for [`Client::transaction`].
const BEGIN: &str = "START TRANSACTION";

/// A `tokio_postgres::Client` whose statements are db spans.
///
/// Built with [`Client::new`] from the client tokio-postgres connected and the [`Config`] it
/// connected with. The methods below are tokio-postgres's, with the same arguments and
/// results, each recorded as a span (see the [module](self) documentation for their shape).
/// Everything else is reached through [`Deref`] to the `tokio_postgres::Client`, and is not
/// recorded. The client is `Send` and `Sync`: share it (`Arc<Client>`) between requests.
///
/// # Examples
///
/// ```no_run
/// use insights_runtime::postgres::Client;
/// use tokio_postgres::Config;
///
/// // `db` is what `config.connect(NoTls)` gave (its connection spawned, as usual).
/// async fn load(db: tokio_postgres::Client, config: &Config) -> Result<(), tokio_postgres::Error> {
///     let db = Client::new(db, config);
///
///     // db span "SELECT name FROM users WHERE id = $1", returned_rows 1
///     let row = db.query_one("SELECT name FROM users WHERE id = $1", &[&7_i64]).await?;
///     let name: &str = row.get(0);
///
///     // a span for the prepare, then one for each run, all described by the statement
///     let rename = db.prepare("UPDATE users SET name = $1 WHERE id = $2").await?;
///     db.execute(&rename, &[&name.to_uppercase(), &7_i64]).await?; // affected_rows 1
///     Ok(())
/// }
/// ```
pub struct Client {
    inner: tokio_postgres::Client,
    peer: Arc<Peer>,
}

impl Client {
    /// Wraps `client`, connected with `config`; the config gives every span its `db.name` and
    /// server (see the [module](self) documentation).
    pub fn new(client: tokio_postgres::Client, config: &Config) -> Self {
        Client {
            inner: client,
            peer: Arc::new(peer_of(config)),
        }
    }

    /// The tokio-postgres client, for calls that are not recorded (as through [`Deref`]).
    pub fn get_ref(&self) -> &tokio_postgres::Client {
        &self.inner
    }

    /// The tokio-postgres client, mutably (`build_transaction`); calls through it are not
    /// recorded.
    pub fn get_mut(&mut self) -> &mut tokio_postgres::Client {
        &mut self.inner
    }

    /// Unwraps the tokio-postgres client.
    pub fn into_inner(self) -> tokio_postgres::Client {
        self.inner
    }

    fn exec(&self) -> Exec<'_> {
        Exec {
            client: &self.inner,
            peer: &self.peer,
        }
    }

    /// Like `tokio_postgres::Client::transaction`: begins a transaction, recorded as a span
    /// `START TRANSACTION`, and returns a [`Transaction`] whose statements are recorded.
    #[track_caller]
    pub fn transaction(&mut self) -> impl Future<Output = Result<Transaction<'_>, Error>> + '_ {
        let caller = Location::caller();
        let Client { inner, peer } = self;
        let peer: &Peer = peer;
        async move {
            let level = Level::TOP;
            let span = Pending::start(peer, BEGIN, caller);
            let result = inner.transaction().await;
            span.finish(&result, |_| Rows::default());
            result.map(|inner| Transaction { inner, peer, level })
        }
    }
}

impl Deref for Client {
    type Target = tokio_postgres::Client;

    /// The tokio-postgres client: calls through it are not recorded.
    fn deref(&self) -> &tokio_postgres::Client {
        &self.inner
    }
}

impl DerefMut for Client {
    /// The tokio-postgres client: calls through it are not recorded.
    fn deref_mut(&mut self) -> &mut tokio_postgres::Client {
        &mut self.inner
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("db_name", &self.peer.db_name)
            .field("server", &self.peer.server)
            .field("closed", &self.inner.is_closed())
            .finish_non_exhaustive()
    }
}

/// A transaction of a [`Client`] (or a savepoint of a [`Transaction`]), whose statements are
/// db spans.
///
/// The methods are tokio-postgres's, recorded as [`Client`]'s are; [`commit`](Self::commit)
/// and [`rollback`](Self::rollback) are spans too. Dropped without either, it is rolled back as
/// tokio-postgres does it, without a span. Everything else is reached through [`Deref`] to the
/// `tokio_postgres::Transaction`, and is not recorded.
///
/// # Examples
///
/// ```no_run
/// use insights_runtime::postgres::Client;
///
/// async fn transfer(db: &mut Client, from: i64, to: i64) -> Result<(), tokio_postgres::Error> {
///     let tx = db.transaction().await?; // START TRANSACTION
///     tx.execute("UPDATE accounts SET balance = balance - 1 WHERE id = $1", &[&from]).await?;
///     tx.execute("UPDATE accounts SET balance = balance + 1 WHERE id = $1", &[&to]).await?;
///     tx.commit().await // COMMIT
/// }
/// ```
pub struct Transaction<'a> {
    inner: tokio_postgres::Transaction<'a>,
    peer: &'a Peer,
    level: Level,
}

impl<'a> Transaction<'a> {
    fn exec(&self) -> Exec<'_> {
        Exec {
            client: self.inner.client(),
            peer: self.peer,
        }
    }

    /// Unwraps the tokio-postgres transaction; its statements are then not recorded.
    pub fn into_inner(self) -> tokio_postgres::Transaction<'a> {
        self.inner
    }

    /// Like `tokio_postgres::Transaction::commit`, recorded as a span `COMMIT` (`RELEASE
    /// sp_1` for a savepoint).
    #[track_caller]
    pub fn commit(self) -> impl Future<Output = Result<(), Error>> + 'a {
        let caller = Location::caller();
        async move {
            let Transaction { inner, peer, level } = self;
            let span =
                Pending::start_with(peer, caller, || level.end_statement("COMMIT", "RELEASE "));
            let result = inner.commit().await;
            span.finish(&result, |_| Rows::default());
            result
        }
    }

    /// Like `tokio_postgres::Transaction::rollback`, recorded as a span `ROLLBACK`
    /// (`ROLLBACK TO sp_1` for a savepoint).
    #[track_caller]
    pub fn rollback(self) -> impl Future<Output = Result<(), Error>> + 'a {
        let caller = Location::caller();
        async move {
            let Transaction { inner, peer, level } = self;
            let span = Pending::start_with(peer, caller, || {
                level.end_statement("ROLLBACK", "ROLLBACK TO ")
            });
            let result = inner.rollback().await;
            span.finish(&result, |_| Rows::default());
            result
        }
    }

    /// Like `tokio_postgres::Transaction::transaction`: a nested transaction through a
    /// savepoint, recorded as a span `SAVEPOINT sp_1` (`sp_2` one level further, and so on).
    #[track_caller]
    pub fn transaction(
        &mut self,
    ) -> impl Future<Output = Result<Transaction<'_>, Error>> + use<'_, 'a> {
        let caller = Location::caller();
        async move {
            let peer = self.peer;
            let level = self.level.nested(None);
            let span = Pending::start_with(peer, caller, || level.begin_statement());
            let result = self.inner.transaction().await;
            span.finish(&result, |_| Rows::default());
            result.map(|inner| Transaction { inner, peer, level })
        }
    }

    /// Like `tokio_postgres::Transaction::savepoint`: a nested transaction through a savepoint
    /// named `name`, recorded as a span `SAVEPOINT <name>`. The name is copied once, for the
    /// description of its `RELEASE` or `ROLLBACK TO`.
    #[track_caller]
    pub fn savepoint<I>(
        &mut self,
        name: I,
    ) -> impl Future<Output = Result<Transaction<'_>, Error>> + use<'_, 'a, I>
    where
        I: Into<String>,
    {
        let caller = Location::caller();
        let name: String = name.into();
        async move {
            let peer = self.peer;
            let level = self.level.nested(Some(name.as_str().into()));
            let span = Pending::start_with(peer, caller, || level.begin_statement());
            let result = self.inner.savepoint(name).await;
            span.finish(&result, |_| Rows::default());
            result.map(|inner| Transaction { inner, peer, level })
        }
    }
}

impl<'a> Deref for Transaction<'a> {
    type Target = tokio_postgres::Transaction<'a>;

    /// The tokio-postgres transaction: calls through it are not recorded.
    fn deref(&self) -> &tokio_postgres::Transaction<'a> {
        &self.inner
    }
}

impl std::fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("depth", &self.level.depth)
            .field("savepoint", &self.level.name)
            .finish_non_exhaustive()
    }
}

/// Where a [`Transaction`] is: the transaction itself (depth 0) or a savepoint in it.
#[derive(Debug, Clone)]
struct Level {
    depth: u32,
    /// A savepoint's own name; without one, tokio-postgres names it `sp_<depth>`.
    name: Option<Box<str>>,
}

impl Level {
    const TOP: Level = Level {
        depth: 0,
        name: None,
    };

    /// The savepoint one level down, as tokio-postgres counts it.
    fn nested(&self, name: Option<Box<str>>) -> Level {
        Level {
            depth: self.depth.saturating_add(1),
            name,
        }
    }

    /// The savepoint's name (only for a savepoint).
    fn savepoint(&self) -> Cow<'_, str> {
        match &self.name {
            Some(name) => Cow::Borrowed(name),
            None => Cow::Owned(format!("sp_{}", self.depth)),
        }
    }

    /// The statement that begins this level.
    fn begin_statement(&self) -> Cow<'static, str> {
        if self.depth == 0 {
            Cow::Borrowed(BEGIN)
        } else {
            Cow::Owned(format!("SAVEPOINT {}", self.savepoint()))
        }
    }

    /// The statement that ends this level: `top` for the transaction, `prefix` and the name for
    /// a savepoint (as tokio-postgres writes them).
    fn end_statement(&self, top: &'static str, prefix: &str) -> Cow<'static, str> {
        if self.depth == 0 {
            Cow::Borrowed(top)
        } else {
            Cow::Owned(format!("{prefix}{}", self.savepoint()))
        }
    }
}

/// A prepared statement and the SQL it was prepared from, so that running it is described by
/// its text. [`Client::prepare`] and [`Transaction::prepare`] return it; it derefs to the
/// `tokio_postgres::Statement` (its columns and parameter types). Clones share the statement
/// and the text.
#[derive(Debug, Clone)]
pub struct Statement {
    sql: Arc<str>,
    inner: tokio_postgres::Statement,
}

impl Statement {
    /// Pairs `statement`, prepared elsewhere (a cache of prepared statements, a call through
    /// [`Deref`]), with `sql`, which must be the text it was prepared from: spans of its runs
    /// are described by `sql`.
    pub fn new(sql: &str, statement: tokio_postgres::Statement) -> Self {
        Statement {
            sql: Arc::from(sql),
            inner: statement,
        }
    }

    /// The SQL the statement was prepared from.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The tokio-postgres statement.
    pub fn into_inner(self) -> tokio_postgres::Statement {
        self.inner
    }
}

impl Deref for Statement {
    type Target = tokio_postgres::Statement;

    fn deref(&self) -> &tokio_postgres::Statement {
        &self.inner
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for str {}
    impl Sealed for String {}
    impl Sealed for super::Statement {}
}

/// A statement the methods of [`Client`] and [`Transaction`] take, with the text that
/// describes its span: a `str`, a `String` or a [`Statement`]. Sealed.
///
/// A `tokio_postgres::Statement` is not one: it has no text. Prepare through the wrapper, or
/// pair it with its SQL with [`Statement::new`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` carries no SQL text to describe the span of its run",
    label = "not a `&str`, `&String` or `&insights_runtime::postgres::Statement`",
    note = "prepare it with `insights_runtime::postgres::Client::prepare`, or pair a \
            `tokio_postgres::Statement` with its SQL through `Statement::new(sql, statement)`"
)]
pub trait ToStatement: Sync + sealed::Sealed {
    /// The SQL text, the span's description.
    fn sql(&self) -> &str;

    /// The prepared statement, when there is one.
    #[doc(hidden)]
    fn __prepared(&self) -> Option<&tokio_postgres::Statement>;
}

impl ToStatement for str {
    fn sql(&self) -> &str {
        self
    }

    fn __prepared(&self) -> Option<&tokio_postgres::Statement> {
        None
    }
}

impl ToStatement for String {
    fn sql(&self) -> &str {
        self
    }

    fn __prepared(&self) -> Option<&tokio_postgres::Statement> {
        None
    }
}

impl ToStatement for Statement {
    fn sql(&self) -> &str {
        &self.sql
    }

    fn __prepared(&self) -> Option<&tokio_postgres::Statement> {
        Some(&self.inner)
    }
}

/// The methods [`Client`] and [`Transaction`] share, each a span around tokio-postgres's.
macro_rules! statement_methods {
    ($ty:literal) => {
        #[doc = concat!("Like `tokio_postgres::", $ty, "::prepare`, recorded as a span described by")]
        /// `query`; returns a [`Statement`] that keeps the text.
        #[track_caller]
        pub fn prepare<'b>(
            &'b self,
            query: &'b str,
        ) -> impl Future<Output = Result<Statement, Error>> + 'b {
            self.exec().prepare(query, &[], Location::caller())
        }

        #[doc = concat!("Like `tokio_postgres::", $ty, "::prepare_typed`, recorded as [`prepare`](Self::prepare) is.")]
        #[track_caller]
        pub fn prepare_typed<'b>(
            &'b self,
            query: &'b str,
            parameter_types: &'b [Type],
        ) -> impl Future<Output = Result<Statement, Error>> + 'b {
            self.exec().prepare(query, parameter_types, Location::caller())
        }

        #[doc = concat!("Like `tokio_postgres::", $ty, "::query`, recorded with the rows it returned.")]
        #[track_caller]
        pub fn query<'b, T>(
            &'b self,
            statement: &'b T,
            params: &'b [&'b (dyn ToSql + Sync)],
        ) -> impl Future<Output = Result<Vec<Row>, Error>> + 'b
        where
            T: ?Sized + ToStatement,
        {
            self.exec().query(statement, params, Location::caller())
        }

        #[doc = concat!("Like `tokio_postgres::", $ty, "::query_one`, recorded with the rows it returned (1).")]
        /// A statement that returns no row, or several, is an error of tokio-postgres's, with
        /// no SQLSTATE.
        #[track_caller]
        pub fn query_one<'b, T>(
            &'b self,
            statement: &'b T,
            params: &'b [&'b (dyn ToSql + Sync)],
        ) -> impl Future<Output = Result<Row, Error>> + 'b
        where
            T: ?Sized + ToStatement,
        {
            self.exec().query_one(statement, params, Location::caller())
        }

        #[doc = concat!("Like `tokio_postgres::", $ty, "::query_opt`, recorded with the rows it returned (0 or 1).")]
        #[track_caller]
        pub fn query_opt<'b, T>(
            &'b self,
            statement: &'b T,
            params: &'b [&'b (dyn ToSql + Sync)],
        ) -> impl Future<Output = Result<Option<Row>, Error>> + 'b
        where
            T: ?Sized + ToStatement,
        {
            self.exec().query_opt(statement, params, Location::caller())
        }

        #[doc = concat!("Like `tokio_postgres::", $ty, "::query_raw`; the span lasts until the [`RowStream`]")]
        /// ends, with the rows it yielded.
        #[track_caller]
        pub fn query_raw<'b, T, P, I>(
            &'b self,
            statement: &'b T,
            params: I,
        ) -> impl Future<Output = Result<RowStream, Error>> + 'b
        where
            T: ?Sized + ToStatement,
            P: BorrowToSql + 'b,
            I: IntoIterator<Item = P> + 'b,
            I::IntoIter: ExactSizeIterator,
        {
            self.exec().query_raw(statement, params, Location::caller())
        }

        #[doc = concat!("Like `tokio_postgres::", $ty, "::query_typed`, recorded with the rows it returned.")]
        #[track_caller]
        pub fn query_typed<'b>(
            &'b self,
            query: &'b str,
            params: &'b [(&'b (dyn ToSql + Sync), Type)],
        ) -> impl Future<Output = Result<Vec<Row>, Error>> + 'b {
            self.exec().query_typed(query, params, Location::caller())
        }

        #[doc = concat!("Like `tokio_postgres::", $ty, "::query_typed_raw`; the span lasts until the")]
        /// [`RowStream`] ends, with the rows it yielded.
        #[track_caller]
        pub fn query_typed_raw<'b, P, I>(
            &'b self,
            query: &'b str,
            params: I,
        ) -> impl Future<Output = Result<RowStream, Error>> + 'b
        where
            P: BorrowToSql + 'b,
            I: IntoIterator<Item = (P, Type)> + 'b,
        {
            self.exec().query_typed_raw(query, params, Location::caller())
        }

        #[doc = concat!("Like `tokio_postgres::", $ty, "::execute`, recorded with the rows it affected.")]
        #[track_caller]
        pub fn execute<'b, T>(
            &'b self,
            statement: &'b T,
            params: &'b [&'b (dyn ToSql + Sync)],
        ) -> impl Future<Output = Result<u64, Error>> + 'b
        where
            T: ?Sized + ToStatement,
        {
            self.exec().execute(statement, params, Location::caller())
        }

        #[doc = concat!("Like `tokio_postgres::", $ty, "::execute_raw`, recorded with the rows it affected.")]
        #[track_caller]
        pub fn execute_raw<'b, T, P, I>(
            &'b self,
            statement: &'b T,
            params: I,
        ) -> impl Future<Output = Result<u64, Error>> + 'b
        where
            T: ?Sized + ToStatement,
            P: BorrowToSql + 'b,
            I: IntoIterator<Item = P> + 'b,
            I::IntoIter: ExactSizeIterator,
        {
            self.exec().execute_raw(statement, params, Location::caller())
        }

        #[doc = concat!("Like `tokio_postgres::", $ty, "::simple_query`, one span described by the whole")]
        /// `query` (all its statements), with the rows returned and, when no statement returned
        /// rows, the rows affected.
        #[track_caller]
        pub fn simple_query<'b>(
            &'b self,
            query: &'b str,
        ) -> impl Future<Output = Result<Vec<SimpleQueryMessage>, Error>> + 'b {
            self.exec().simple_query(query, Location::caller())
        }

        #[doc = concat!("Like `tokio_postgres::", $ty, "::batch_execute`, one span described by the whole")]
        /// `query` (all its statements).
        #[track_caller]
        pub fn batch_execute<'b>(
            &'b self,
            query: &'b str,
        ) -> impl Future<Output = Result<(), Error>> + 'b {
            self.exec().batch_execute(query, Location::caller())
        }
    };
}

impl Client {
    statement_methods!("Client");
}

impl Transaction<'_> {
    statement_methods!("Transaction");
}

/// A client and where its statements go: what both [`Client`] and [`Transaction`] run
/// statements through. (tokio-postgres's transaction runs its statements on its client, so
/// they do the same.)
#[derive(Clone, Copy)]
struct Exec<'a> {
    client: &'a tokio_postgres::Client,
    peer: &'a Peer,
}

type Caller = &'static Location<'static>;

impl<'a> Exec<'a> {
    async fn prepare(
        self,
        query: &'a str,
        types: &'a [Type],
        caller: Caller,
    ) -> Result<Statement, Error> {
        let span = Pending::start(self.peer, query, caller);
        let result = self.client.prepare_typed(query, types).await;
        span.finish(&result, |_| Rows::default());
        result.map(|statement| Statement::new(query, statement))
    }

    async fn query<T: ?Sized + ToStatement>(
        self,
        statement: &'a T,
        params: &'a [&'a (dyn ToSql + Sync)],
        caller: Caller,
    ) -> Result<Vec<Row>, Error> {
        let span = Pending::start(self.peer, statement.sql(), caller);
        let result = match statement.__prepared() {
            Some(prepared) => self.client.query(prepared, params).await,
            None => self.client.query(statement.sql(), params).await,
        };
        span.finish(&result, |rows| returned(rows.len()));
        result
    }

    async fn query_one<T: ?Sized + ToStatement>(
        self,
        statement: &'a T,
        params: &'a [&'a (dyn ToSql + Sync)],
        caller: Caller,
    ) -> Result<Row, Error> {
        let span = Pending::start(self.peer, statement.sql(), caller);
        let result = match statement.__prepared() {
            Some(prepared) => self.client.query_one(prepared, params).await,
            None => self.client.query_one(statement.sql(), params).await,
        };
        span.finish(&result, |_| returned(1));
        result
    }

    async fn query_opt<T: ?Sized + ToStatement>(
        self,
        statement: &'a T,
        params: &'a [&'a (dyn ToSql + Sync)],
        caller: Caller,
    ) -> Result<Option<Row>, Error> {
        let span = Pending::start(self.peer, statement.sql(), caller);
        let result = match statement.__prepared() {
            Some(prepared) => self.client.query_opt(prepared, params).await,
            None => self.client.query_opt(statement.sql(), params).await,
        };
        span.finish(&result, |row| returned(usize::from(row.is_some())));
        result
    }

    async fn query_raw<T, P, I>(
        self,
        statement: &'a T,
        params: I,
        caller: Caller,
    ) -> Result<RowStream, Error>
    where
        T: ?Sized + ToStatement,
        P: BorrowToSql,
        I: IntoIterator<Item = P>,
        I::IntoIter: ExactSizeIterator,
    {
        let span = Pending::start(self.peer, statement.sql(), caller);
        let result = match statement.__prepared() {
            Some(prepared) => self.client.query_raw(prepared, params).await,
            None => self.client.query_raw(statement.sql(), params).await,
        };
        span.into_stream(result)
    }

    async fn query_typed(
        self,
        query: &'a str,
        params: &'a [(&'a (dyn ToSql + Sync), Type)],
        caller: Caller,
    ) -> Result<Vec<Row>, Error> {
        let span = Pending::start(self.peer, query, caller);
        let result = self.client.query_typed(query, params).await;
        span.finish(&result, |rows| returned(rows.len()));
        result
    }

    async fn query_typed_raw<P, I>(
        self,
        query: &'a str,
        params: I,
        caller: Caller,
    ) -> Result<RowStream, Error>
    where
        P: BorrowToSql,
        I: IntoIterator<Item = (P, Type)>,
    {
        let span = Pending::start(self.peer, query, caller);
        let result = self.client.query_typed_raw(query, params).await;
        span.into_stream(result)
    }

    async fn execute<T: ?Sized + ToStatement>(
        self,
        statement: &'a T,
        params: &'a [&'a (dyn ToSql + Sync)],
        caller: Caller,
    ) -> Result<u64, Error> {
        let span = Pending::start(self.peer, statement.sql(), caller);
        let result = match statement.__prepared() {
            Some(prepared) => self.client.execute(prepared, params).await,
            None => self.client.execute(statement.sql(), params).await,
        };
        span.finish(&result, |n| affected(*n));
        result
    }

    async fn execute_raw<T, P, I>(
        self,
        statement: &'a T,
        params: I,
        caller: Caller,
    ) -> Result<u64, Error>
    where
        T: ?Sized + ToStatement,
        P: BorrowToSql,
        I: IntoIterator<Item = P>,
        I::IntoIter: ExactSizeIterator,
    {
        let span = Pending::start(self.peer, statement.sql(), caller);
        let result = match statement.__prepared() {
            Some(prepared) => self.client.execute_raw(prepared, params).await,
            None => self.client.execute_raw(statement.sql(), params).await,
        };
        span.finish(&result, |n| affected(*n));
        result
    }

    async fn simple_query(
        self,
        query: &'a str,
        caller: Caller,
    ) -> Result<Vec<SimpleQueryMessage>, Error> {
        let span = Pending::start(self.peer, query, caller);
        let result = self.client.simple_query(query).await;
        span.finish(&result, |messages| simple_rows(messages));
        result
    }

    async fn batch_execute(self, query: &'a str, caller: Caller) -> Result<(), Error> {
        let span = Pending::start(self.peer, query, caller);
        let result = self.client.batch_execute(query).await;
        span.finish(&result, |()| Rows::default());
        result
    }
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn returned(n: usize) -> Rows {
    Rows {
        returned: Some(count(n)),
        affected: None,
    }
}

fn affected(n: u64) -> Rows {
    Rows {
        returned: None,
        affected: Some(n),
    }
}

/// The rows of a simple query's reply: those returned and, when no statement returned rows
/// (none was described), the statements' counts added up (the count of a statement that returns
/// rows is of the rows it returned, not of rows it changed).
fn simple_rows(messages: &[SimpleQueryMessage]) -> Rows {
    let (mut rows, mut completed, mut described) = (0_usize, 0_u64, false);
    for message in messages {
        match message {
            SimpleQueryMessage::Row(_) => rows += 1,
            SimpleQueryMessage::CommandComplete(n) => completed = completed.saturating_add(*n),
            SimpleQueryMessage::RowDescription(_) => described = true,
            _ => {}
        }
    }
    Rows {
        returned: Some(count(rows)),
        affected: (!described).then_some(completed),
    }
}

/// The SQLSTATE of a server's error (`42601`).
fn sqlstate(error: &Error) -> Option<Cow<'_, str>> {
    error.code().map(|code| Cow::Borrowed(code.code()))
}

/// The span of a call in flight ([`InFlight`]: finished with the call's result, or
/// `cancelled` when the call's future is dropped first).
struct Pending(InFlight);

impl Pending {
    #[inline]
    fn start(peer: &Peer, sql: &str, caller: Caller) -> Self {
        Pending(InFlight::new(peer.start(sql, caller)))
    }

    /// A span whose description is computed only when it is recorded.
    #[inline]
    fn start_with(peer: &Peer, caller: Caller, sql: impl FnOnce() -> Cow<'static, str>) -> Self {
        Pending(InFlight::new(SpanGuard::start_detached(
            crate::db::OP,
            "",
            |data| {
                peer.query(&sql(), caller).write(data);
            },
        )))
    }

    fn finish<T>(self, result: &Result<T, Error>, rows: impl FnOnce(&T) -> Rows) {
        self.0.finish(result, rows, sqlstate);
    }

    /// Hands the span on to the rows' stream, or finishes it with the call's error.
    fn into_stream(
        self,
        result: Result<tokio_postgres::RowStream, Error>,
    ) -> Result<RowStream, Error> {
        match result {
            Ok(inner) => Ok(RowStream {
                inner,
                span: self.0,
                returned: 0,
            }),
            Err(error) => {
                let result: Result<RowStream, Error> = Err(error);
                self.finish(&result, |_| Rows::default());
                result
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// The rows of [`Client::query_raw`] (and the other `*_raw` queries), as
    /// `tokio_postgres::RowStream` yields them; the query's span lasts until the stream ends
    /// (`ok`, with the rows yielded) or fails (`internal_error`). Dropped before its end, the
    /// span is `cancelled`, with the rows yielded so far.
    ///
    /// ```no_run
    /// use futures_util::TryStreamExt;
    /// # async fn run(db: &insights_runtime::postgres::Client) -> Result<(), tokio_postgres::Error> {
    /// let rows = db.query_raw("SELECT id FROM users WHERE name = $1", ["ada"]).await?;
    /// let mut rows = std::pin::pin!(rows);
    /// while let Some(row) = rows.try_next().await? {
    ///     let _id: i64 = row.get(0);
    /// }
    /// # Ok(()) }
    /// ```
    #[must_use = "streams do nothing unless polled"]
    pub struct RowStream {
        #[pin]
        inner: tokio_postgres::RowStream,
        // Dropped with the stream: `cancelled` unless it was finished.
        span: InFlight,
        returned: usize,
    }

    impl PinnedDrop for RowStream {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(span) = this.span.span() {
                span.set_data(RETURNED_ROWS, count(*this.returned));
            }
        }
    }
}

impl RowStream {
    /// Like `tokio_postgres::RowStream::rows_affected`: the rows the statement affected, once
    /// the stream has ended.
    pub fn rows_affected(&self) -> Option<u64> {
        self.inner.rows_affected()
    }
}

impl Stream for RowStream {
    type Item = Result<Row, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        let poll = this.inner.poll_next(cx);
        match &poll {
            Poll::Ready(Some(Ok(_))) => *this.returned = this.returned.saturating_add(1),
            Poll::Ready(Some(Err(error))) => {
                std::mem::take(this.span).finish(
                    &Err::<(), _>(error),
                    |()| Rows::default(),
                    |e| sqlstate(e),
                );
            }
            Poll::Ready(None) => {
                let rows = returned(*this.returned);
                std::mem::take(this.span).finish(&Ok::<_, Error>(()), |()| rows, sqlstate);
            }
            Poll::Pending => {}
        }
        poll
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl std::fmt::Debug for RowStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowStream")
            .field("returned", &self.returned)
            .field("recording", &self.span.span().is_some())
            .finish_non_exhaustive()
    }
}

/// The peer of a connection made with `config`.
fn peer_of(config: &Config) -> Peer {
    let mut peer = Peer::new(SYSTEM);
    // PostgreSQL takes the user's name for the database when none is named.
    peer.db_name = config
        .get_dbname()
        .or_else(|| config.get_user())
        .map(Box::from);
    peer.server = server_of(config);
    peer
}

/// The server of a config that names one TCP host (or, without a host, one address).
fn server_of(config: &Config) -> Option<(Box<str>, u16)> {
    let port = match config.get_ports() {
        [] => DEFAULT_PORT,
        // One port for every host, or the first host's own.
        [port, ..] => *port,
    };
    match (config.get_hosts(), config.get_hostaddrs()) {
        ([host], _) => match host {
            Host::Tcp(name) => Some((Box::from(name.as_str()), port)),
            #[cfg(unix)]
            Host::Unix(_) => None,
        },
        ([], [address]) => Some((address.to_string().into_boxed_str(), port)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(url: &str) -> Peer {
        peer_of(&url.parse().expect("a config"))
    }

    #[test]
    fn the_config_gives_the_database_and_the_server() {
        let p = peer("postgres://app@db.internal:6432/orders");
        assert_eq!(p.system, "postgresql");
        assert_eq!(p.db_name.as_deref(), Some("orders"));
        assert_eq!(p.server, Some(("db.internal".into(), 6432)));

        let p = peer("postgres://app@db.internal/orders");
        assert_eq!(p.server, Some(("db.internal".into(), 5432)));
    }

    #[test]
    fn the_database_is_the_user_when_none_is_named() {
        let p = peer("host=db.internal user=app");
        assert_eq!(p.db_name.as_deref(), Some("app"));
        assert_eq!(p.server, Some(("db.internal".into(), 5432)));
    }

    #[test]
    fn an_address_stands_for_a_missing_host() {
        let p = peer("hostaddr=10.0.0.7 port=5433 user=app dbname=orders");
        assert_eq!(p.server, Some(("10.0.0.7".into(), 5433)));
    }

    #[test]
    fn several_hosts_or_a_socket_give_no_server() {
        let p = peer("postgres://app@a.internal,b.internal/orders");
        assert_eq!(p.server, None);
        assert_eq!(p.db_name.as_deref(), Some("orders"));
        #[cfg(unix)]
        {
            let p = peer("host=/var/run/postgresql user=app dbname=orders");
            assert_eq!(p.server, None);
        }
    }

    #[test]
    fn savepoints_are_described_as_tokio_postgres_sends_them() {
        let top = Level::TOP;
        assert_eq!(top.begin_statement(), "START TRANSACTION");
        assert_eq!(top.end_statement("COMMIT", "RELEASE "), "COMMIT");
        let nested = top.nested(None);
        assert_eq!(nested.begin_statement(), "SAVEPOINT sp_1");
        assert_eq!(nested.end_statement("COMMIT", "RELEASE "), "RELEASE sp_1");
        let named = nested.nested(Some("before_import".into()));
        assert_eq!(named.depth, 2);
        assert_eq!(named.begin_statement(), "SAVEPOINT before_import");
        assert_eq!(
            named.end_statement("ROLLBACK", "ROLLBACK TO "),
            "ROLLBACK TO before_import"
        );
        assert_eq!(named.nested(None).begin_statement(), "SAVEPOINT sp_3");
    }

    #[test]
    fn a_simple_query_counts_rows_returned_and_affected() {
        assert_eq!(
            simple_rows(&[SimpleQueryMessage::CommandComplete(3)]),
            Rows {
                returned: Some(0),
                affected: Some(3)
            }
        );
    }
}
