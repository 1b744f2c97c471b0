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
//! * [`#[instrument_db_operation]`](instrument_db_operation) and [`db::Query`] record
//!   database spans for the Queries page; [`#[instrument_cache_operation]`](instrument_cache_operation)
//!   and [`cache::CacheTracker`] cache spans for the Caches page.
//! * [`#[instrument_queue_publish]`](instrument_queue_publish),
//!   [`#[instrument_queue_process]`](instrument_queue_process) and [`queue::QueueTracker`]
//!   record producers and consumers for the Queues page and carry the trace inside messages.
//! * [`console`] prints finished transactions as span trees, for development without a Sentry
//!   project.
//! * [`setup`], [`sampling`] and [`scrub`] set Sentry up for a service from its settings.
//! * With the `metrics` feature, `metrics` records Prometheus metrics (queries, cache hits and
//!   misses, messages published and handled) beside every db, cache and queue span.
//! * With the `transport` feature, `transport` sends to Sentry over HTTP and backs off while
//!   Sentry cannot be reached, so an unreachable Sentry costs the service next to nothing.
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
pub mod dsc;
pub mod future;
#[cfg(any(feature = "sqlx", feature = "tokio-postgres", feature = "redis"))]
mod integration;
#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(feature = "nats")]
pub mod nats;
#[cfg(feature = "tokio-postgres")]
pub mod postgres;
pub mod propagation;
pub mod queue;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "reqwest")]
pub mod reqwest;
pub mod sampling;
pub mod scrub;
pub mod setup;
pub mod span;
#[cfg(feature = "sqlx")]
pub mod sqlx;
pub mod status;
#[cfg(feature = "transport")]
pub mod transport;

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
/// | `err = "not_found"` | the status of a returned `Err`, whatever the error: one of Sentry's span statuses (`not_found`, `permission_denied`, `invalid_argument`, `unavailable`, ..., checked at compile time); the function must return a `Result` | the error's [`status::ErrorStatus`], else `internal_error` |
/// | `crate = path` | where the runtime is, for crates that re-export it under another name | `::insights_runtime` |
///
/// # Status
///
/// Unless the function sets a status on its span itself: a returned `Ok` is `ok` and `Err` is
/// `internal_error` (recognised by type, so `Result` aliases work; an `Option::None` is not an
/// error); a panic is `internal_error` and keeps unwinding; an async call dropped before it
/// completes is `cancelled`.
///
/// An expected error (a lookup answering 404) can say otherwise: `err = "<status>"` gives every
/// `Err` of this function that status, and an error type implementing
/// [`status::ErrorStatus`] gives each of its errors its own, in every attribute at once; `err`
/// wins over the trait, and a status the function set itself wins over both. Every other
/// attribute takes `err` too. The [`status`] module has the full rule.
///
/// ```
/// use insights_runtime::status::{ErrorStatus, SpanStatus};
/// use insights_runtime::traced;
///
/// #[derive(Debug)]
/// enum AppError {
///     NotFound,
///     Database,
/// }
///
/// impl ErrorStatus for AppError {
///     fn span_status(&self) -> SpanStatus {
///         match self {
///             AppError::NotFound => SpanStatus::NotFound,
///             AppError::Database => SpanStatus::InternalError,
///         }
///     }
/// }
///
/// #[traced] // `Err(AppError::NotFound)` is `not_found`, `Err(AppError::Database)` `internal_error`
/// fn find_order(id: u64) -> Result<String, AppError> {
///     if id == 0 { Err(AppError::NotFound) } else { Ok(format!("order {id}")) }
/// }
///
/// #[traced(err = "invalid_argument")] // any `Err` is `invalid_argument`
/// fn parse_id(raw: &str) -> Result<u64, std::num::ParseIntError> {
///     raw.parse()
/// }
///
/// assert!(find_order(0).is_err());
/// assert!(parse_id("x").is_err());
/// ```
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

/// Records each call of a function as a database span for Sentry's Queries page.
///
/// `#[instrument_db_operation("users", "select")]` (table, operation) is the same as
/// `#[instrument_db_operation(table = "users", operation = "select")]`. The span has op `db`,
/// the data [`db::Query`] records (each key beside its new name in Sentry's attribute registry:
/// `db.system.name`, `db.namespace`, `db.collection.name`, `db.operation.name`, and
/// `db.query.text`, the statement), and a status from the outcome as for [`traced`]. It also
/// carries its query source, computed at compile time: `code.filepath` and `code.file.path`
/// (`file!()`), `code.lineno` and `code.line.number` (the attribute's line), `code.function`
/// (the function's name) and `code.namespace` (`module_path!()`); see
/// [`db::set_query_source`] to turn it off or keep it for slow queries only.
///
/// | argument | meaning |
/// |---|---|
/// | `table = "users"` (or first, by position) | `db.sql.table` and `db.collection.name` |
/// | `operation = "select"` (or second, by position) | `db.operation` and `db.operation.name`, upper-cased; `select`, `insert`, `update`, `delete` or `upsert` when the description is built from the table, any name with `query`/`query_param`; without it, the query's first keyword ([`db::operation_of`]) |
/// | `query = "SELECT .. WHERE id = $1"` or `query = SELECT_USER` | the description, verbatim (write placeholders, never values); a path names a `const` of type `&str`, so the statement is written once |
/// | `query_param = "sql"` | the description is the value of this parameter (`AsRef<str>`) |
/// | `system = "sqlite"` | `db.system` and `db.system.name` (default: [`db::default_system`], `postgresql` until set) |
/// | `db_name = "app"` or `db_name = self.database` | `db.name` and `db.namespace`: a literal, or any expression giving text (`AsRef<str>`) |
/// | `server = ("db.internal", 5432)` or `server = (self.host.as_str(), self.port)` | `server.address` and `server.port`: the address text (`AsRef<str>`), the port a `u16` |
/// | `err = "..."` | the status of a returned `Err`, as for [`traced`] |
/// | `crate = path` | as for [`traced`] |
///
/// Without `query` or `query_param`, the description is a parameterized statement for the table
/// and operation that Sentry's SQL parser accepts ([`db::statement`]), such as
/// `SELECT * FROM users`.
///
/// The expressions of `db_name` and `server` may use the function's parameters and `self`
/// (borrowed, never moved); they are evaluated inside the function before the body runs, and
/// only when the span is recorded (never with Sentry off or the trace unsampled). An expression
/// of the wrong type is a compile error on it. They are not metric labels. With `enable` off
/// the function is emitted as written, and the expressions are not compiled.
///
/// ```
/// use insights_runtime::instrument_db_operation;
///
/// #[instrument_db_operation("users", "select", system = "sqlite")]
/// fn count_users(conn: &Vec<&str>) -> Result<usize, String> {
///     Ok(conn.len())
/// }
///
/// #[instrument_db_operation(query = "SELECT email FROM users WHERE id = $1", table = "users")]
/// async fn email_of(id: u64) -> Result<Option<String>, std::io::Error> {
///     Ok(Some(format!("user{id}@example.com")))
/// }
///
/// #[instrument_db_operation(query_param = "sql")]
/// fn execute(sql: &str) -> Result<u64, String> {
///     Ok(sql.len() as u64)
/// }
///
/// struct Pool {
///     database: String,
///     host: String,
///     port: u16,
/// }
///
/// impl Pool {
///     #[instrument_db_operation("users", "delete", db_name = self.database,
///         server = (self.host.as_str(), self.port))]
///     fn purge(&self) -> Result<u64, String> {
///         Ok(0)
///     }
/// }
/// # assert_eq!(count_users(&vec!["a"]), Ok(1));
/// # assert_eq!(execute("DELETE FROM sessions"), Ok(20));
/// # let pool = Pool { database: "app".into(), host: "db.internal".into(), port: 5432 };
/// # assert_eq!(pool.purge(), Ok(0));
/// ```
#[doc(inline)]
pub use insights_macros::instrument_db_operation;

/// Records each call of a function as a cache span for Sentry's Caches page.
///
/// The operation comes first, as a bare word or a string: `get`, `put`, `remove` or `flush`
/// (op `cache.get`, ..). `key_param` names the parameter holding the key (required but for
/// `flush`): a [`cache::CacheKeys`] (`&str`, `String`, `Cow<str>`, integers, or a slice, array
/// or `Vec` of them for several keys), checked at compile time. The key is read before the body
/// runs, and only when a span is recorded; the description is the keys joined with `", "`, and
/// `cache.key` their array.
///
/// * `get`: `cache.hit` and `cache.item_size` come from the returned value, which must tell a
///   hit from a miss ([`cache::ReadOutcome`]): `Option<T>` (a hit is `Some`),
///   `Result<Option<T>, E>` (a hit is `Ok(Some)`; `Err` records no hit and is `internal_error`,
///   or the status `err = ".."` or the error's [`status::ErrorStatus`] gives it),
///   `bool` or `Result<bool, E>`, or an alias of one of them. Any other return type is a
///   compile error on the return type. The size is the byte length of a hit value that is text
///   or bytes (`AsRef<[u8]>`: `String`, `Vec<u8>`, `bytes::Bytes`, ..); other values get no
///   size.
/// * `put`: `ttl = 3600` (seconds) or `ttl_param = "ttl"` (an integer or a `Duration`, see
///   [`cache::Ttl`]) for `cache.ttl`; `value_param = "value"` for `cache.item_size`.
/// * every kind: `tracker = &self.cache_tracker`, any expression of type
///   `&`[`cache::CacheTracker`] (evaluated when a span is recorded, and for its name by the
///   `metrics` feature), whose system and server go
///   on the span (`db.system`, `network.peer.address`, `network.peer.port`);
///   `cache_name = "users"`, the `cache_name` label of the metrics the `metrics` feature
///   records (`cache_hits_total`, ..; default: the tracker's [`name`](cache::CacheTracker::name),
///   else `"default"`); `err = "..."` (for a failed read too) and `crate = path`, as for
///   [`traced`].
///
/// ```
/// use std::collections::HashMap;
/// use insights_runtime::instrument_cache_operation;
///
/// #[instrument_cache_operation(get, key_param = "key")]
/// fn lookup(map: &HashMap<String, String>, key: &str) -> Option<String> {
///     map.get(key).cloned()
/// }
///
/// #[instrument_cache_operation(put, key_param = "key", ttl = 3600, value_param = "value")]
/// fn store(map: &mut HashMap<String, String>, key: &str, value: String) {
///     map.insert(key.to_owned(), value);
/// }
///
/// #[instrument_cache_operation(remove, key_param = "keys")]
/// fn evict(map: &mut HashMap<String, String>, keys: &[&str]) {
///     keys.iter().for_each(|k| drop(map.remove(*k)));
/// }
///
/// let mut map = HashMap::new();
/// store(&mut map, "user:1", "Ada".to_owned());
/// assert_eq!(lookup(&map, "user:1").as_deref(), Some("Ada"));
/// evict(&mut map, &["user:1"]);
/// ```
#[doc(inline)]
pub use insights_macros::instrument_cache_operation;

/// Records each call of a function as a `queue.publish` span, a child of the current span, and
/// writes the trace into the message's headers before the body runs.
///
/// | argument | meaning |
/// |---|---|
/// | `destination = "orders"` or `destination = self.queue` (required) | the queue or topic: description, `messaging.destination.name` and the metrics' `queue_name` label; a literal, or any expression giving text (`AsRef<str>`), see below |
/// | `system = "rabbitmq"` (required) | `messaging.system` |
/// | `headers_param = "headers"` | a `&mut` parameter of a type implementing [`queue::CarrierMut`]: `sentry-trace`, `baggage` and the publish time are written into it |
/// | `message_id_param = "id"` | a parameter whose value (any `Display`) is `messaging.message.id` |
/// | `body_param = "body"` | a parameter of bytes or text (`AsRef<[u8]>`) whose length is `messaging.message.body.size` |
/// | `transaction = "POST /orders"` | the producer's transaction name, for `sentry-transaction` in the baggage (the `sentry` crate cannot tell it) |
/// | `err = "..."` | the status of a returned `Err`, as for [`traced`] |
/// | `crate = path` | as for [`traced`] |
///
/// Every `*_param` must name a plain parameter of the function; a wrong name or type is a
/// compile error on its string literal.
///
/// # The destination at run time
///
/// `destination` may be any expression giving text (`AsRef<str>`: a `&str`, a `String`, ..),
/// such as a `const` (`JOBS_QUEUE`), a field (`self.queue`, borrowed, never moved), a method
/// call (`jobs.queue.as_str()`) or a parameter. It is evaluated once per call, inside the
/// function before the body runs (with Sentry off too, for the metrics), and is the span's
/// description, `messaging.destination.name` and, with the `metrics` feature, the
/// `queue_name` label. An expression of another type is a compile error on it. The label takes
/// the value as it is, so the expression must come from a small, fixed set, such as a queue
/// name from the configuration, never from a message (an id, a tenant, a reply-to address):
/// every value is a series of its own. A string literal keeps the label's keys in statics, made
/// at compile time; an expression makes them on each call. With `enable` off the function is
/// emitted as written, and the expression is not compiled.
///
/// ```
/// use std::collections::HashMap;
/// use insights_runtime::instrument_queue_publish;
///
/// #[instrument_queue_publish(destination = "orders", system = "rabbitmq",
///     headers_param = "headers", message_id_param = "id", body_param = "body")]
/// fn publish(headers: &mut HashMap<String, String>, id: u64, body: &[u8]) -> Result<(), String> {
///     // channel.basic_publish(.., body, headers)
///     Ok(())
/// }
///
/// let mut headers = HashMap::new();
/// publish(&mut headers, 7, b"{}").unwrap();
///
/// /// A producer whose queue name comes from its configuration.
/// struct Jobs {
///     queue: String,
/// }
///
/// impl Jobs {
///     #[instrument_queue_publish(destination = self.queue, system = "rabbitmq",
///         headers_param = "headers", body_param = "body")]
///     fn enqueue(&self, headers: &mut HashMap<String, String>, body: &[u8]) -> Result<(), String> {
///         Ok(())
///     }
/// }
///
/// let jobs = Jobs { queue: std::env::var("JOBS_QUEUE").unwrap_or_else(|_| "jobs".into()) };
/// jobs.enqueue(&mut headers, b"{}").unwrap();
/// ```
#[doc(inline)]
pub use insights_macros::instrument_queue_publish;

/// Records each call of a function as a consumer's transaction (op `queue.task`, named after
/// the destination) that continues the producer's trace from the message's headers, with a
/// `queue.process` span inside; the status from the outcome goes on both.
///
/// Arguments as for [`instrument_queue_publish`] (`destination` a literal or an expression, as
/// there, with the same care for the `queue_name` label), except that `headers_param` names a
/// parameter whose type implements [`queue::Carrier`] (by reference or value), plus:
///
/// | argument | meaning |
/// |---|---|
/// | `retry_count_param = "attempt"` | an integer parameter, or with the `nats` feature a `&async_nats::jetstream::Message` (its delivery count less one): `messaging.message.retry.count` |
/// | `transaction = "..."` | the transaction's name (default: the destination) |
///
/// `messaging.message.receive.latency` is computed from the publish time in the headers.
/// Without valid headers the consumer starts a new trace.
///
/// ```
/// use std::collections::HashMap;
/// use insights_runtime::instrument_queue_process;
///
/// #[instrument_queue_process(destination = "orders", system = "rabbitmq",
///     headers_param = "headers", message_id_param = "id", body_param = "body",
///     retry_count_param = "attempt")]
/// async fn handle(headers: &HashMap<String, String>, id: &str, body: Vec<u8>, attempt: u32) -> Result<(), String> {
///     Ok(())
/// }
/// # futures_executor::block_on(handle(&HashMap::new(), "m-1", vec![], 0)).unwrap();
/// ```
#[doc(inline)]
pub use insights_macros::instrument_queue_process;

// What the attributes expand into, versioned with the crate (see `private.rs`). The test below
// keeps the name in step with the version the macros compute from their own.
#[doc(hidden)]
#[path = "private.rs"]
pub mod __private_0_1_0;

#[cfg(test)]
mod tests {
    #[test]
    fn the_private_module_is_named_after_this_version() {
        let version = env!("CARGO_PKG_VERSION").replace('.', "_");
        assert_eq!(format!("__private_{version}"), "__private_0_1_0");
    }
}
