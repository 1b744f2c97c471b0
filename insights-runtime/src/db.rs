//! Database spans for Sentry's Queries page.
//!
//! A query span has op `db` (never `db.redis`: Sentry keeps those off the Queries page), the
//! query as its description, and the data keys Sentry reads, with the types of Sentry's
//! attribute registry (`sentry-conventions` 0.29.0). Where the registry renamed a key, both names
//! go out: the old one is what Sentry's transaction pipeline reads today, the new one what its
//! span pipeline reads.
//!
//! | key | value |
//! |---|---|
//! | `db.system`, `db.system.name` | always; the system also picks the SQL dialect Sentry parses the query with |
//! | `db.query.text` | the parameterized statement, the same as the description |
//! | `db.operation`, `db.operation.name` | the operation given, else the statement's first keyword, upper-cased (`SELECT`, `WITH`, `MERGE`) |
//! | `db.name`, `db.namespace` | the database, when given |
//! | `db.sql.table`, `db.collection.name` | the table, when given |
//! | `server.address`, `server.port` | when given |
//! | `code.filepath`, `code.file.path`, `code.lineno`, `code.line.number` | where the query was issued: the query source (below) |
//! | `code.function`, `code.namespace` | the function and module path, from the attribute only |
//!
//! # Query source
//!
//! Sentry's Queries page shows where in the code a slow query was issued. The location is known
//! at compile time, so it costs no stack walk and no allocation: the attribute records the file
//! (as `file!()` gives it, relative to the package root), the line of the attribute, the
//! function's name and its module path; the builders ([`Query::sql`],
//! [`Query::table_operation`], [`track_database_query`]) are `#[track_caller]` and record the
//! file and line of the code that called them, without `code.function` and `code.namespace`
//! (which a caller's location does not have; [`Query::location`] gives them all). It is on by
//! default for every db span; [`set_query_source`] (or
//! [`Settings::db_query_source`](crate::setup::Settings::db_query_source)) turns it off or
//! records it only for queries that took at least a given time, as sentry-python's
//! `enable_db_query_source` and `db_query_source_threshold_ms` do.
//!
//! Sentry groups and shows a query only after parsing it as SQL, so when only a table and an
//! operation are known (a PostgREST-style client, a key-value call behind a repository) the
//! description is a real, parameterized statement for them: `SELECT * FROM users WHERE email =
//! $1`. Filter *values* never appear, only the column names.
//!
//! ```
//! use insights_runtime::db::{Operation, Query};
//!
//! // A query you have the text of.
//! let span = Query::sql("SELECT id FROM users WHERE email = $1")
//!     .table("users")
//!     .operation(Operation::Select)
//!     .start();
//! // ... run it ...
//! span.finish_with_outcome(&Ok::<_, ()>(()));
//!
//! // A client that only knows the table, the operation and the filtered columns.
//! let query = Query::table_operation("users", Operation::Select).filters(&["email"]);
//! assert_eq!(query.description(), "SELECT * FROM users WHERE email = $1");
//! ```

use std::borrow::Cow;
use std::fmt::Write as _;
use std::future::Future;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::future::{Instrumented, Recording, StatusFn};
use crate::span::{Deferred, SpanData, SpanGuard};
use crate::status::Outcome;

/// The op of every database span.
pub const OP: &str = "db";

static DEFAULT_SYSTEM: OnceLock<Box<str>> = OnceLock::new();

/// `db.system` when a span names none: `postgresql` until [`set_default_system`] is called.
pub fn default_system() -> &'static str {
    DEFAULT_SYSTEM.get().map_or("postgresql", |s| s)
}

/// Sets the process-wide default `db.system` (an OpenTelemetry id: `postgresql`, `mysql`,
/// `sqlite`, `mssql`, ...). Call it once at start-up, before any span is recorded; a second
/// call changes nothing and returns the system already set.
///
/// ```
/// insights_runtime::db::set_default_system("sqlite").unwrap();
/// assert_eq!(insights_runtime::db::default_system(), "sqlite");
/// assert!(insights_runtime::db::set_default_system("mysql").is_err());
/// ```
pub fn set_default_system(system: &str) -> Result<(), AlreadySet> {
    let mut fresh = false;
    DEFAULT_SYSTEM.get_or_init(|| {
        fresh = true;
        system.into()
    });
    if fresh {
        Ok(())
    } else {
        Err(AlreadySet(default_system()))
    }
}

/// [`set_default_system`] was called before; holds the system it set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlreadySet(pub &'static str);

impl std::fmt::Display for AlreadySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the default db.system is already set to `{}`", self.0)
    }
}

impl std::error::Error for AlreadySet {}

/// What a query does to its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Reads rows.
    Select,
    /// Adds rows.
    Insert,
    /// Changes rows.
    Update,
    /// Removes rows.
    Delete,
    /// Adds or changes rows. Recorded as an `INSERT`, the statement it starts with in every
    /// dialect.
    Upsert,
}

impl Operation {
    /// Every operation, in the order of [`Operation::NAMES`].
    pub const ALL: [Operation; 5] = [
        Operation::Select,
        Operation::Insert,
        Operation::Update,
        Operation::Delete,
        Operation::Upsert,
    ];

    /// The names [`Operation::from_name`] accepts (in any case).
    pub const NAMES: [&'static str; 5] = ["select", "insert", "update", "delete", "upsert"];

    /// The operation named `name`, in any case (`"select"`, `"SELECT"`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .position(|n| n.eq_ignore_ascii_case(name))
            .map(|i| Self::ALL[i])
    }

    /// The SQL verb, as `db.operation` records it: `SELECT`, `INSERT`, `UPDATE`, `DELETE`.
    pub fn verb(self) -> &'static str {
        match self {
            Operation::Select => "SELECT",
            Operation::Insert | Operation::Upsert => "INSERT",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
        }
    }

    /// The lower-case name, as the `operation` label of `database_queries_total` carries it.
    pub const fn name(self) -> &'static str {
        match self {
            Operation::Select => Self::NAMES[0],
            Operation::Insert => Self::NAMES[1],
            Operation::Update => Self::NAMES[2],
            Operation::Delete => Self::NAMES[3],
            Operation::Upsert => Self::NAMES[4],
        }
    }
}

/// The `table` label of a query whose table is not given.
pub const UNKNOWN_TABLE: &str = "unknown";

/// The `operation` label of a statement: the lower-case name of its first keyword when that is
/// one of [`Operation::NAMES`], else `other`. A `const fn`, so that the attributes label a
/// literal query at compile time.
///
/// ```
/// use insights_runtime::db::operation_label;
///
/// assert_eq!(operation_label("  select id FROM users"), "select");
/// assert_eq!(operation_label("MERGE INTO t"), "other");
/// ```
pub const fn operation_label(sql: &str) -> &'static str {
    let word = first_word(sql).as_bytes();
    let mut i = 0;
    while i < Operation::NAMES.len() {
        let name = Operation::NAMES[i].as_bytes();
        if name.len() == word.len() {
            let mut same = true;
            let mut j = 0;
            while j < name.len() {
                if word[j].to_ascii_lowercase() != name[j] {
                    same = false;
                }
                j += 1;
            }
            if same {
                return Operation::NAMES[i];
            }
        }
        i += 1;
    }
    "other"
}

/// The first word of a statement: the ASCII letters after any leading ASCII whitespace (empty
/// when it starts otherwise). The one reader of a statement's first keyword, for the metrics'
/// label ([`operation_label`], at compile time) and `db.operation` ([`operation_of`]).
const fn first_word(sql: &str) -> &str {
    let bytes = sql.as_bytes();
    let mut start = 0;
    while start < bytes.len() && bytes[start].is_ascii_whitespace() {
        start += 1;
    }
    let mut end = start;
    while end < bytes.len() && bytes[end].is_ascii_alphabetic() {
        end += 1;
    }
    // Both ends are at ASCII bytes (or the end), so on character boundaries.
    let (_, rest) = sql.split_at(start);
    let (word, _) = rest.split_at(end - start);
    word
}

/// `db.operation` of a statement: its first keyword (after any leading whitespace),
/// upper-cased, whatever it is (`SELECT`, `WITH`, `MERGE`, `CALL`); `None` when the statement
/// does not start with a word. Borrowed when the keyword is upper case already.
///
/// ```
/// use insights_runtime::db::operation_of;
///
/// assert_eq!(operation_of("  select id FROM users").as_deref(), Some("SELECT"));
/// assert_eq!(operation_of("WITH t AS (SELECT 1) SELECT * FROM t").as_deref(), Some("WITH"));
/// assert_eq!(operation_of("(SELECT 1)"), None);
/// ```
pub fn operation_of(sql: &str) -> Option<Cow<'_, str>> {
    // Any leading whitespace, Unicode too, then the same word the metrics' label reads.
    let word = first_word(sql.trim_start());
    (!word.is_empty()).then(|| upper_case(word))
}

/// `text` in ASCII upper case, borrowed when it is already.
fn upper_case(text: &str) -> Cow<'_, str> {
    if text.bytes().any(|b| b.is_ascii_lowercase()) {
        Cow::Owned(text.to_ascii_uppercase())
    } else {
        Cow::Borrowed(text)
    }
}

/// Where in the code a query was issued, as Sentry's query source shows it: a file (relative
/// to the package root, as `file!()` gives it), a line and, when known, the function and its
/// module path.
///
/// Build it as a `static` (its constructor is a `const fn`), so that recording it allocates
/// nothing:
///
/// ```
/// use insights_runtime::db::{CodeLocation, Query};
///
/// static HERE: CodeLocation = CodeLocation::new(file!(), line!(), "load_user", module_path!());
/// let query = Query::sql("SELECT * FROM users WHERE id = $1").location(&HERE);
/// # let _ = query;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CodeLocation {
    file: &'static str,
    line: u32,
    function: Option<&'static str>,
    namespace: Option<&'static str>,
}

impl CodeLocation {
    /// A location in `function` of module `namespace` (`module_path!()`).
    pub const fn new(
        file: &'static str,
        line: u32,
        function: &'static str,
        namespace: &'static str,
    ) -> Self {
        CodeLocation {
            file,
            line,
            function: Some(function),
            namespace: Some(namespace),
        }
    }

    /// The file, as `file!()` gives it.
    pub const fn file(&self) -> &'static str {
        self.file
    }

    /// The line.
    pub const fn line(&self) -> u32 {
        self.line
    }

    /// The function's name, when known.
    pub const fn function(&self) -> Option<&'static str> {
        self.function
    }

    /// The module path, when known.
    pub const fn namespace(&self) -> Option<&'static str> {
        self.namespace
    }
}

/// A query's source: a location built at the call site, or the caller of a builder.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source {
    Caller(&'static Location<'static>),
    Site(&'static CodeLocation),
    /// Not known: an integration called from inside a library (sqlx's `query.fetch_one`).
    Unknown,
}

impl Source {
    /// The caller of an integration's entry point when it is the application's own code, else
    /// [`Source::Unknown`]. `file!()` paths are relative for the crates of the workspace being
    /// built and absolute for dependencies (`~/.cargo/registry/..`): a query issued through a
    /// library's own call (`sqlx::query(..).fetch_one(&pool)` calls the executor from sqlx)
    /// has no location of the user's to show, and sqlx's file would be noise.
    #[cfg_attr(
        not(any(feature = "sqlx", feature = "tokio-postgres", feature = "redis")),
        allow(dead_code)
    )]
    pub(crate) fn own_caller(caller: &'static Location<'static>) -> Self {
        if std::path::Path::new(caller.file()).is_absolute() {
            Source::Unknown
        } else {
            Source::Caller(caller)
        }
    }
}

impl Source {
    /// As [`set_query_source`] says: writes the source now, leaves it for the span's end (a
    /// threshold), or writes nothing. For db spans and outbound requests alike.
    pub(crate) fn record_as_set(self, data: &SpanData<'_>) {
        match QUERY_SOURCE.load(Ordering::Relaxed) {
            0 => self.record(data),
            SOURCE_OFF => {}
            nanos => data.defer(Deferred {
                started: Instant::now(),
                at_least: Duration::from_nanos(nanos),
                source: self,
            }),
        }
    }

    /// Writes `code.filepath`, `code.file.path`, `code.lineno`, `code.line.number` and, when
    /// known, `code.function` and `code.namespace`.
    pub(crate) fn record(self, data: &SpanData<'_>) {
        let (file, line, function, namespace) = match self {
            Source::Caller(location) => (location.file(), location.line(), None, None),
            Source::Site(location) => (
                location.file,
                location.line,
                location.function,
                location.namespace,
            ),
            Source::Unknown => return,
        };
        data.set("code.filepath", file);
        data.set("code.file.path", file);
        data.set("code.lineno", line);
        data.set("code.line.number", line);
        if let Some(function) = function {
            data.set("code.function", function);
        }
        if let Some(namespace) = namespace {
            data.set("code.namespace", namespace);
        }
    }
}

/// When db spans carry their query source (see the [module](self) docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QuerySource {
    /// Every db span (the default).
    #[default]
    On,
    /// None.
    Off,
    /// Only spans that lasted at least this long, checked when they finish (sentry-python's
    /// `db_query_source_threshold_ms`). A zero duration is [`QuerySource::On`].
    AtLeast(Duration),
}

/// The query-source setting: `0` on, `u64::MAX` off, else the threshold in nanoseconds.
static QUERY_SOURCE: AtomicU64 = AtomicU64::new(0);

const SOURCE_OFF: u64 = u64::MAX;

/// Sets when db spans carry their query source, for the whole process, from now on (spans
/// already started keep the setting they started with). [`setup::init`](crate::setup::init)
/// applies [`Settings::db_query_source`](crate::setup::Settings::db_query_source); call this
/// when you set `sentry` up yourself.
///
/// ```
/// use std::time::Duration;
/// use insights_runtime::db::{self, QuerySource};
///
/// db::set_query_source(QuerySource::AtLeast(Duration::from_millis(100)));
/// assert_eq!(db::query_source(), QuerySource::AtLeast(Duration::from_millis(100)));
/// db::set_query_source(QuerySource::On);
/// ```
pub fn set_query_source(setting: QuerySource) {
    let raw = match setting {
        QuerySource::On => 0,
        QuerySource::Off => SOURCE_OFF,
        QuerySource::AtLeast(threshold) => {
            u64::try_from(threshold.as_nanos()).map_or(SOURCE_OFF - 1, |n| n.min(SOURCE_OFF - 1))
        }
    };
    QUERY_SOURCE.store(raw, Ordering::Relaxed);
}

/// The current query-source setting (see [`set_query_source`]).
pub fn query_source() -> QuerySource {
    match QUERY_SOURCE.load(Ordering::Relaxed) {
        0 => QuerySource::On,
        SOURCE_OFF => QuerySource::Off,
        nanos => QuerySource::AtLeast(Duration::from_nanos(nanos)),
    }
}

impl std::str::FromStr for Operation {
    type Err = UnknownOperation;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s).ok_or(UnknownOperation)
    }
}

/// A name that is not one of [`Operation::NAMES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownOperation;

impl std::fmt::Display for UnknownOperation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unknown database operation; expected one of {:?}",
            Operation::NAMES
        )
    }
}

impl std::error::Error for UnknownOperation {}

/// A database span to be started: the description and data of one query.
///
/// Built with [`Query::sql`] (the query text is known) or [`Query::table_operation`] (only the
/// table and operation are), then started with [`start`](Self::start) in sync code,
/// [`start_detached`](Self::start_detached) when the guard is held across an `.await`, or
/// [`run`](Self::run) to put a future under it.
#[derive(Debug, Clone)]
#[must_use = "a query span is recorded only once started"]
pub struct Query<'a> {
    sql: Option<&'a str>,
    system: Option<&'a str>,
    db_name: Option<&'a str>,
    table: Option<&'a str>,
    /// The operation a description is built for (no SQL given).
    statement_for: Option<Operation>,
    /// `db.operation`, as given; upper-cased when recorded.
    operation: Option<&'a str>,
    filters: &'a [&'a str],
    server: Option<(&'a str, u16)>,
    /// Where the query was issued.
    source: Source,
}

impl<'a> Query<'a> {
    /// A span whose description is `sql`, kept verbatim: write it with placeholders (`$1`,
    /// `?`, `%s`, `:name`), never with values. Its query source is the caller's file and line.
    #[track_caller]
    pub fn sql(sql: &'a str) -> Self {
        Query {
            sql: Some(sql),
            system: None,
            db_name: None,
            table: None,
            statement_for: None,
            operation: None,
            filters: &[],
            server: None,
            source: Source::Caller(Location::caller()),
        }
    }

    /// A span for `operation` on `table`, described by a parameterized statement built for
    /// them (see [`statement`]). Its query source is the caller's file and line.
    #[track_caller]
    pub fn table_operation(table: &'a str, operation: Operation) -> Self {
        Query {
            table: Some(table),
            statement_for: Some(operation),
            operation: Some(operation.verb()),
            sql: None,
            ..Self::sql("")
        }
    }

    /// The filtered columns, for a description built from the table and operation: each
    /// becomes `column = <placeholder>` in the `WHERE` clause (for an insert, a column of the
    /// `VALUES`).
    pub fn filters(mut self, columns: &'a [&'a str]) -> Self {
        self.filters = columns;
        self
    }

    /// `db.system` (default: [`default_system`]).
    pub fn system(mut self, system: &'a str) -> Self {
        self.system = Some(system);
        self
    }

    /// `db.name` and `db.namespace`.
    pub fn db_name(mut self, name: &'a str) -> Self {
        self.db_name = Some(name);
        self
    }

    /// `db.sql.table` and `db.collection.name`.
    pub fn table(mut self, table: &'a str) -> Self {
        self.table = Some(table);
        self
    }

    /// `db.operation` and `db.operation.name` (without it: the statement's first keyword, see
    /// [`operation_of`]).
    pub fn operation(mut self, operation: Operation) -> Self {
        self.operation = Some(operation.verb());
        self
    }

    /// `db.operation` and `db.operation.name` by name, for operations [`Operation`] does not
    /// list (`MERGE`, `CALL`); recorded upper-cased, as Sentry shows it.
    pub fn operation_name(mut self, operation: &'a str) -> Self {
        self.operation = Some(operation);
        self
    }

    /// `server.address` and `server.port`.
    pub fn server(mut self, address: &'a str, port: u16) -> Self {
        self.server = Some((address, port));
        self
    }

    /// The query source: where the query was issued, in place of the builder's caller (a
    /// `static` location, so that nothing is allocated; the attribute gives its own).
    pub fn location(mut self, location: &'static CodeLocation) -> Self {
        self.source = Source::Site(location);
        self
    }

    /// The query source, as an integration determined it.
    #[cfg_attr(
        not(any(feature = "sqlx", feature = "tokio-postgres", feature = "redis")),
        allow(dead_code)
    )]
    pub(crate) fn source(mut self, source: Source) -> Self {
        self.source = source;
        self
    }

    /// The span's `db.system`.
    pub fn system_name(&self) -> &'a str {
        match self.system {
            Some(system) => system,
            None => default_system(),
        }
    }

    /// The span's description: the SQL given, or the statement built from the table and
    /// operation.
    pub fn description(&self) -> Cow<'a, str> {
        match (self.sql, self.table, self.statement_for) {
            (Some(sql), _, _) => Cow::Borrowed(sql),
            (None, Some(table), Some(operation)) => Cow::Owned(statement(
                self.system_name(),
                table,
                operation,
                self.filters,
            )),
            // Unreachable through the constructors.
            _ => Cow::Borrowed(""),
        }
    }

    /// Writes the span's data fields but `db.query.text` (see [`write`](Self::write)): the
    /// system, database, table, operation, server and, as [`set_query_source`] says, the query
    /// source.
    pub fn record(&self, data: &SpanData<'_>) {
        let system = self.system_name();
        data.set("db.system", system);
        data.set("db.system.name", system);
        if let Some(name) = self.db_name {
            data.set("db.name", name);
            data.set("db.namespace", name);
        }
        if let Some(table) = self.table {
            data.set("db.sql.table", table);
            data.set("db.collection.name", table);
        }
        let operation = match (self.operation, self.sql) {
            (Some(operation), _) => Some(upper_case(operation)),
            (None, Some(sql)) => operation_of(sql),
            (None, None) => None,
        };
        if let Some(operation) = operation {
            data.set("db.operation", &*operation);
            data.set("db.operation.name", &*operation);
        }
        if let Some((address, port)) = self.server {
            data.set("server.address", address);
            data.set("server.port", port);
        }
        self.source.record_as_set(data);
    }

    /// Starts the span as the current span (sync code).
    pub fn start(&self) -> SpanGuard {
        SpanGuard::start_with(OP, "", |data| self.write(data))
    }

    /// Starts the span without making it current, so that the guard may be held across an
    /// `.await`.
    pub fn start_detached(&self) -> SpanGuard {
        SpanGuard::start_detached(OP, "", |data| self.write(data))
    }

    /// Starts the span for a future that has not been polled yet.
    pub fn recording(&self) -> Option<Recording> {
        Recording::start(OP, "", |data| self.write(data))
    }

    /// Runs `future` under the span; its output decides the status ([`Outcome`]).
    ///
    /// ```
    /// use insights_runtime::db::Query;
    ///
    /// # async fn fetch() -> Result<u64, std::io::Error> { Ok(1) }
    /// # futures_executor::block_on(async {
    /// let count = Query::sql("SELECT count(*) FROM users").run(fetch()).await?;
    /// # Ok::<_, std::io::Error>(()) }).unwrap();
    /// ```
    pub fn run<F>(&self, future: F) -> Instrumented<F, StatusFn<F::Output>>
    where
        F: Future,
        F::Output: Outcome,
    {
        Instrumented::new(future, self.recording(), |output, _| output.status())
    }

    /// Writes the description, `db.query.text` (the same statement) and the data fields on a
    /// span being started.
    pub fn write(&self, data: &SpanData<'_>) {
        let description = self.description();
        data.describe(&description);
        data.set("db.query.text", &*description);
        self.record(data);
    }
}

/// A parameterized statement for `operation` on `table`, valid SQL in `system`'s dialect.
///
/// Sentry parses each query description before it groups and shows it; this gives a client
/// that knows only the table, the operation and the filtered columns a description that parses.
/// It is stable per (system, table, operation, filters). Placeholders are `$1, $2, ..` for
/// PostgreSQL, `@p1, ..` for SQL Server and `?` elsewhere; names that are not plain identifiers,
/// or are reserved words, are quoted in the dialect's way.
///
/// | operation | statement |
/// |---|---|
/// | select | `SELECT * FROM t [WHERE a = $1 AND b = $2]` |
/// | insert, upsert | `INSERT INTO t (a, b) VALUES ($1, $2)`, or `INSERT INTO t VALUES ($1)` without columns |
/// | update | `UPDATE t SET changed = $1 [WHERE a = $2]`: the changed columns are not known, `changed` stands for them |
/// | delete | `DELETE FROM t [WHERE a = $1]` |
///
/// ```
/// use insights_runtime::db::{statement, Operation};
///
/// assert_eq!(statement("postgresql", "users", Operation::Delete, &["id"]), "DELETE FROM users WHERE id = $1");
/// assert_eq!(statement("mysql", "order", Operation::Select, &[]), "SELECT * FROM `order`");
/// ```
pub fn statement(system: &str, table: &str, operation: Operation, filters: &[&str]) -> String {
    let dialect = Dialect::of(system);
    let mut out = String::with_capacity(64);
    let mut next = 1;
    let mut placeholder = |out: &mut String| {
        dialect.placeholder(out, next);
        next += 1;
    };
    let table = dialect.quote(table);
    match operation {
        Operation::Select => {
            let _ = write!(out, "SELECT * FROM {table}");
        }
        Operation::Delete => {
            let _ = write!(out, "DELETE FROM {table}");
        }
        Operation::Update => {
            let _ = write!(out, "UPDATE {table} SET changed = ");
            placeholder(&mut out);
        }
        Operation::Insert | Operation::Upsert => {
            let _ = write!(out, "INSERT INTO {table} ");
            if !filters.is_empty() {
                out.push('(');
                for (i, column) in filters.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&dialect.quote(column));
                }
                out.push_str(") ");
            }
            out.push_str("VALUES (");
            for i in 0..filters.len().max(1) {
                if i > 0 {
                    out.push_str(", ");
                }
                placeholder(&mut out);
            }
            out.push(')');
            return out;
        }
    }
    for (i, column) in filters.iter().enumerate() {
        out.push_str(if i == 0 { " WHERE " } else { " AND " });
        out.push_str(&dialect.quote(column));
        out.push_str(" = ");
        placeholder(&mut out);
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Postgres,
    MySql,
    MsSql,
    Other,
}

impl Dialect {
    fn of(system: &str) -> Self {
        match system.to_ascii_lowercase().as_str() {
            "postgresql" | "postgres" | "cockroachdb" | "redshift" => Dialect::Postgres,
            "mysql" | "mariadb" => Dialect::MySql,
            "mssql" | "sqlserver" => Dialect::MsSql,
            _ => Dialect::Other,
        }
    }

    fn placeholder(self, out: &mut String, n: usize) {
        let _ = match self {
            Dialect::Postgres => write!(out, "${n}"),
            Dialect::MsSql => write!(out, "@p{n}"),
            Dialect::MySql | Dialect::Other => write!(out, "?"),
        };
    }

    /// `name` as an identifier: as it is when it is plain (dotted parts of a letter then
    /// letters, digits and `_`, not reserved), quoted otherwise (Oracle, for one, rejects a
    /// leading `_`).
    fn quote(self, name: &str) -> Cow<'_, str> {
        let plain = !name.is_empty()
            && name.split('.').all(|part| {
                let mut chars = part.chars();
                chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                    && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !RESERVED.contains(&part.to_ascii_lowercase().as_str())
            });
        if plain {
            return Cow::Borrowed(name);
        }
        let (open, close) = match self {
            Dialect::MySql => ('`', '`'),
            Dialect::MsSql => ('[', ']'),
            Dialect::Postgres | Dialect::Other => ('"', '"'),
        };
        let mut quoted = String::with_capacity(name.len() + 2);
        quoted.push(open);
        for c in name.chars() {
            // A closing quote inside a quoted name is written twice in every dialect.
            if c == close {
                quoted.push(c);
            }
            quoted.push(c);
        }
        quoted.push(close);
        Cow::Owned(quoted)
    }
}

/// Words that cannot be a table or column name unquoted in at least one common dialect.
const RESERVED: &[&str] = &[
    "all",
    "alter",
    "and",
    "any",
    "as",
    "asc",
    "between",
    "by",
    "case",
    "check",
    "column",
    "constraint",
    "create",
    "cross",
    "current_date",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "delete",
    "desc",
    "distinct",
    "drop",
    "else",
    "end",
    "except",
    "exists",
    "false",
    "fetch",
    "for",
    "foreign",
    "from",
    "full",
    "grant",
    "group",
    "having",
    "in",
    "index",
    "inner",
    "insert",
    "intersect",
    "into",
    "is",
    "join",
    "key",
    "left",
    "like",
    "limit",
    "natural",
    "not",
    "null",
    "offset",
    "on",
    "or",
    "order",
    "outer",
    "primary",
    "references",
    "right",
    "rows",
    "select",
    "session_user",
    "set",
    "some",
    "table",
    "then",
    "to",
    "true",
    "union",
    "unique",
    "update",
    "user",
    "using",
    "values",
    "when",
    "where",
    "window",
    "with",
];

/// Runs a query (`future`) under a `db` span described by a statement for `operation` on
/// `table`; with the `metrics` feature it also counts and times it in `database_queries_total`
/// and `database_query_duration_seconds`, failed or not.
///
/// For a span with the query's own SQL, use [`Query::run`] or
/// `#[instrument_db_operation(query = "..", table = "..")]`. Its query source is the caller's
/// file and line (`#[track_caller]`).
///
/// ```
/// use insights_runtime::db::{self, Operation};
///
/// # async fn fetch_user(id: u64) -> Result<Option<String>, std::io::Error> { Ok(None) }
/// # futures_executor::block_on(async {
/// let user = db::track_database_query("users", Operation::Select, fetch_user(7)).await?;
/// # assert!(user.is_none());
/// # Ok::<(), std::io::Error>(()) }).unwrap();
/// ```
#[track_caller]
pub fn track_database_query<F>(
    table: &'static str,
    operation: Operation,
    future: F,
) -> impl Future<Output = F::Output>
where
    F: Future,
    F::Output: Outcome,
{
    let span = Query::table_operation(table, operation).run(future);
    #[cfg(feature = "metrics")]
    let span = crate::metrics::Metered::new(
        span,
        crate::metrics::Meter::query_named(table, operation.name()),
        |output: &F::Output| crate::metrics::Verdict::of_status(output.status()),
    );
    span
}
