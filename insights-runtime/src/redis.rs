//! Spans for every command sent through an async `redis` connection: cache spans for the keys of
//! configured prefixes, for Sentry's Caches page, and a `db.redis` span for everything else.
//!
//! Wrap the connection once, with [`Traced::new`] or a shared [`Config`] (one per pool, applied
//! to every connection it hands out); the wrapper implements [`redis::aio::ConnectionLike`], so
//! `AsyncCommands`, `Cmd::query_async` and `Pipeline::query_async` work on it as on the
//! connection. It wraps
//! anything that implements that trait: a `MultiplexedConnection`, a `ConnectionManager`, a
//! pooled connection; it is `Clone` when the connection is.
//!
//! | command | span |
//! |---|---|
//! | `GET`, `MGET` with a key of a cache prefix | `cache.get`, with `cache.hit` and `cache.item_size` from the reply |
//! | `SET` (with `EX`/`PX` or not), `SETEX`, `PSETEX`, `SETNX`, `MSET`, `MSETNX` with a key of a cache prefix | `cache.put`, with `cache.ttl` (seconds) when the command gives one and `cache.item_size`, the bytes written |
//! | `DEL`, `UNLINK` with a key of a cache prefix | `cache.remove` |
//! | any other command, or keys outside the prefixes | `db.redis` |
//! | a pipeline (`Pipeline::query_async`, atomic or not) | one `db.redis` span, `redis.pipeline.execute` |
//!
//! Command names are matched in any case. A cache span's description is its keys joined with
//! `", "`; its data `cache.key` (the keys, an array of strings), the data above, `db.system` and
//! `db.system.name` (`redis`), and `network.peer.address` and `network.peer.port` when the
//! server is configured. It has one child, the command's own `db.redis` span, as Sentry's Caches
//! module asks. A command with several keys is a cache span when at least one of its keys has a
//! prefix; all its keys are listed.
//!
//! `MGET` is a hit when at least one of its keys is found, and `cache.item_size` is the sum of
//! the values found (sentry-python counts every `MGET` as a hit, its reply being a list). A
//! reply Redis gives as an error (`WRONGTYPE`), or a reply of a type a read cannot give (not a
//! string or nil), makes the span `internal_error` with no `cache.hit`, so it stays out of the
//! miss rate; the caller gets the reply or error unchanged. `PX` and `PSETEX` TTLs are rounded
//! down to seconds; `EXAT`, `PXAT` and `KEEPTTL` give no `cache.ttl`.
//!
//! A `db.redis` span is described by the command's name (upper case), its first argument (the
//! key, for the commands that have one) and `[Filtered]` for each other argument, up to eleven:
//! `SET user:1 [Filtered] [Filtered] [Filtered]`. Values never appear; for `AUTH`, `HELLO`,
//! `ACL`, `CONFIG`, `MIGRATE` and `EVAL` the first argument is filtered too. Its data:
//!
//! | key | value |
//! |---|---|
//! | `db.system`, `db.system.name` | `redis` |
//! | `db.operation`, `db.operation.name` | the command's name, upper case |
//! | `db.query.text` | the description |
//! | `db.redis.key`, `redis.key` | the key, for commands working on one key |
//! | `db.name`, `db.namespace` | the database index, as a string (`"0"`) |
//! | `server.address`, `server.port` | when configured |
//! | `db.response.status_code` | the error's code (`WRONGTYPE`, `NOSCRIPT`) when Redis refused the command |
//!
//! A pipeline's span has the same data but for the command's keys, and instead
//! `redis.commands`, an object `{"count": <commands>, "first_ten": [<descriptions>]}` as
//! sentry-python sends it, `db.operation.batch.size` (the number of commands, when two or more,
//! as Sentry's attribute registry asks) and `redis.transaction` (whether it is atomic,
//! `MULTI`/`EXEC`). Its commands get no spans of their own, cache commands neither.
//!
//! `db.redis` spans never reach the Queries page (Sentry leaves that op out): Redis shows on the
//! Caches page through the cache spans only, so configure the prefixes of the keys used as a
//! cache.
//!
//! # What to do, and not to do
//!
//! * Give the server's address when wrapping ([`Config::server_of`] with the client's
//!   `get_connection_info()`, or [`Config::server`]): a connection does not tell it.
//! * Send commands from inside a transaction (a request's, a job's): each span is a child of
//!   the span current on the calling task's hub when the command is sent, so concurrent
//!   requests sharing one multiplexed connection keep their own spans. A task spawned for a
//!   request should carry its hub (`fut.bind_hub(Hub::new_from_top(Hub::current()))`).
//! * Do not wrap the connection again inside another wrapper of this module, nor put a cache
//!   attribute (`#[instrument_cache_operation]`) around a wrapped call: each would record the
//!   command twice.
//! * Nothing is recorded (and the wrapper costs one check of the current hub, with no
//!   allocation) when Sentry is not initialised, when no span is current or when the trace is
//!   not sampled.
//!
//! ```no_run
//! use insights_runtime::redis::{Config, Traced};
//! use redis::AsyncCommands;
//!
//! # async fn run() -> redis::RedisResult<()> {
//! let client = redis::Client::open("redis://127.0.0.1:6379/")?;
//! let config = Config::new()
//!     .cache_prefixes(["user:", "session:"])
//!     .server_of(client.get_connection_info());
//! let mut redis: Traced<_> = config.wrap(client.get_multiplexed_async_connection().await?);
//!
//! let _: () = redis.set_ex("user:42", "Ada", 3600).await?; // cache.put, cache.ttl 3600
//! let name: Option<String> = redis.get("user:42").await?;  // cache.get, cache.hit true
//! let _: i64 = redis.incr("visits", 1).await?;            // db.redis `INCRBY visits [Filtered]`
//! # let _ = name;
//! # Ok(())
//! # }
//! ```

mod command;

use std::sync::Arc;

use ::redis::aio::ConnectionLike;
use ::redis::{Cmd, ConnectionAddr, ConnectionInfo, Pipeline, RedisError, RedisFuture, Value};
use sentry::protocol::{SpanStatus, Value as Data};
use sentry::TransactionOrSpan;

use crate::cache::{self, CacheTracker, Kind, Lookup};
use crate::integration::STATUS_CODE;
use crate::span::{set_status_if_unset, SpanData};

use command::{CachePlan, Command, Parsed};

/// The op of a Redis command's own span (never `db`: it is not a query of the Queries page).
pub const OP: &str = "db.redis";

/// The description of a pipeline's span.
pub const PIPELINE: &str = "redis.pipeline.execute";

/// `db.system`.
const SYSTEM: &str = "redis";

/// What every span of the connections it wraps records: the cache prefixes and the server.
///
/// Built once and cheap to clone (one `Arc`), so that a pool can wrap each connection it hands
/// out with [`Config::wrap`].
///
/// ```
/// use insights_runtime::redis::Config;
///
/// let config = Config::new().cache_prefixes(["user:", "session:"]).server("10.0.0.7", 6379);
/// # let _ = config;
/// ```
#[derive(Debug, Clone, Default)]
pub struct Config {
    settings: Arc<Settings>,
}

#[derive(Debug, Clone)]
struct Settings {
    /// Keys starting with one of these are cache keys.
    prefixes: Vec<Box<[u8]>>,
    /// `server.address` and `server.port` of `db.redis` spans.
    server: Option<(Box<str>, u16)>,
    /// `db.system` and `network.peer.*` of cache spans.
    tracker: CacheTracker,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            prefixes: Vec::new(),
            server: None,
            tracker: CacheTracker::new(SYSTEM),
        }
    }
}

impl Config {
    /// A configuration without cache prefixes (every command a `db.redis` span) or server.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keys starting with one of `prefixes` get cache spans (replacing any prefixes given
    /// before). Text or bytes: `["user:", "session:"]`.
    pub fn cache_prefixes<I>(mut self, prefixes: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        Arc::make_mut(&mut self.settings).prefixes =
            prefixes.into_iter().map(|p| p.as_ref().into()).collect();
        self
    }

    /// The server's host and port: `server.address`/`server.port` on `db.redis` spans,
    /// `network.peer.address`/`network.peer.port` on cache spans.
    pub fn server(mut self, address: impl Into<String>, port: u16) -> Self {
        let address = address.into();
        let settings = Arc::make_mut(&mut self.settings);
        settings.tracker = CacheTracker::new(SYSTEM).server(address.as_str(), port);
        settings.server = Some((address.into_boxed_str(), port));
        self
    }

    /// The server of a connection's info (`redis::Client::get_connection_info()`): its host
    /// and port over TCP, with TLS or not; a Unix socket records no server.
    pub fn server_of(self, info: &ConnectionInfo) -> Self {
        match info.addr() {
            ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
                self.server(host.as_str(), *port)
            }
            _ => self,
        }
    }

    /// Wraps `connection`, sharing this configuration.
    pub fn wrap<C: ConnectionLike>(&self, connection: C) -> Traced<C> {
        Traced {
            inner: connection,
            config: self.clone(),
        }
    }
}

/// An async Redis connection whose commands are recorded as spans (see the [module](self)
/// docs).
///
/// It implements `ConnectionLike` (and so `AsyncCommands`) and is `Clone` when the connection
/// is: clones share the connection and the configuration.
///
/// ```no_run
/// use insights_runtime::redis::Traced;
/// use redis::AsyncCommands;
///
/// # async fn run() -> redis::RedisResult<()> {
/// let client = redis::Client::open("redis://127.0.0.1:6379/")?;
/// let mut redis = Traced::new(client.get_multiplexed_async_connection().await?)
///     .cache_prefixes(["user:"])
///     .server_of(client.get_connection_info());
/// let user: Option<String> = redis.get("user:42").await?; // cache.get
/// # let _ = user;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Traced<C> {
    inner: C,
    config: Config,
}

impl<C: ConnectionLike> Traced<C> {
    /// Wraps `connection` with a configuration of its own (no prefixes, no server yet).
    pub fn new(connection: C) -> Self {
        Config::new().wrap(connection)
    }

    /// See [`Config::cache_prefixes`].
    pub fn cache_prefixes<I>(mut self, prefixes: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        self.config = self.config.cache_prefixes(prefixes);
        self
    }

    /// See [`Config::server`].
    pub fn server(mut self, address: impl Into<String>, port: u16) -> Self {
        self.config = self.config.server(address, port);
        self
    }

    /// See [`Config::server_of`].
    pub fn server_of(mut self, info: &ConnectionInfo) -> Self {
        self.config = self.config.server_of(info);
        self
    }
}

impl<C> Traced<C> {
    /// The configuration its spans use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The wrapped connection.
    pub fn get_ref(&self) -> &C {
        &self.inner
    }

    /// The wrapped connection; commands sent through it directly are not recorded.
    pub fn get_mut(&mut self) -> &mut C {
        &mut self.inner
    }

    /// The wrapped connection, unwrapped.
    pub fn into_inner(self) -> C {
        self.inner
    }
}

impl<C: ConnectionLike + Send> ConnectionLike for Traced<C> {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let Some(parent) = recording_parent() else {
            return self.inner.req_packed_command(cmd);
        };
        let spans = CommandSpans::start(&parent, &self.config.settings, cmd, self.inner.get_db());
        let reply = self.inner.req_packed_command(cmd);
        Box::pin(async move {
            let reply = reply.await;
            spans.finish(&reply);
            reply
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let Some(parent) = recording_parent() else {
            return self.inner.req_packed_commands(pipeline, offset, count);
        };
        let span = Open::child(&parent, OP, PIPELINE);
        span.write(|data| {
            write_pipeline(data, &self.config.settings, pipeline, self.inner.get_db());
        });
        let replies = self.inner.req_packed_commands(pipeline, offset, count);
        Box::pin(async move {
            let replies = replies.await;
            span.finish(|data| pipeline_status(data, &replies));
            replies
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}

/// The span current on the calling task's hub, when a child of it will be recorded. Without a
/// client this is one look at the thread's hub.
fn recording_parent() -> Option<TransactionOrSpan> {
    crate::span::recording_parent().map(|(_, parent)| parent)
}

/// A started span, finished once: by [`Open::finish`], or when dropped (the command's future
/// dropped before Redis answered: `cancelled`; a panic: `internal_error`).
struct Open {
    span: Option<TransactionOrSpan>,
}

impl Open {
    /// A child of a sampled `parent`.
    fn child(parent: &TransactionOrSpan, op: &str, description: &str) -> Self {
        Open {
            span: Some(parent.start_child(op, description).into()),
        }
    }

    fn write(&self, data: impl FnOnce(&SpanData<'_>)) {
        if let Some(span) = &self.span {
            data(&SpanData::new(span));
        }
    }

    fn finish(mut self, status: impl FnOnce(&SpanData<'_>) -> SpanStatus) {
        if let Some(span) = self.span.take() {
            set_status_if_unset(&span, status);
            span.finish();
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        if let Some(span) = self.span.take() {
            let status = if std::thread::panicking() {
                SpanStatus::InternalError
            } else {
                SpanStatus::Cancelled
            };
            set_status_if_unset(&span, |_| status);
            span.finish();
        }
    }
}

/// The spans of one command: its `db.redis` span, under its cache span when it has one.
struct CommandSpans {
    /// Declared first, so that a command dropped unanswered finishes the child first (fields
    /// drop in declaration order).
    db: Open,
    cache: Option<(Open, Command)>,
}

impl CommandSpans {
    fn start(parent: &TransactionOrSpan, settings: &Settings, cmd: &Cmd, db: i64) -> Self {
        let parsed = Parsed::of(cmd);
        let description = parsed.description();
        let cache = parsed.cache(&settings.prefixes).map(|plan| {
            let span = Open::child(parent, plan.kind.op(), "");
            span.write(|data| write_cache(data, settings, &plan));
            (span, parsed.command())
        });
        let db_parent = match &cache {
            Some((Open { span: Some(span) }, _)) => span,
            _ => parent,
        };
        let span = Open::child(db_parent, OP, &description);
        span.write(|data| {
            write_common(data, settings, db);
            let operation = parsed.operation();
            data.set("db.operation", operation.as_str());
            data.set("db.operation.name", operation);
            data.set("db.query.text", description.as_str());
            if let Some(key) = parsed.key() {
                data.set("db.redis.key", &*key);
                data.set("redis.key", key.into_owned());
            }
        });
        CommandSpans { db: span, cache }
    }

    fn finish(self, reply: &Result<Value, RedisError>) {
        let CommandSpans { db, cache } = self;
        db.finish(|data| command_status(data, reply));
        if let Some((span, command)) = cache {
            span.finish(|data| match command {
                Command::Get | Command::MGet => read(command, reply).record(data),
                _ => match refusal(reply) {
                    Some(_) => SpanStatus::InternalError,
                    None => SpanStatus::Ok,
                },
            });
        }
    }
}

/// A cache span's data known before the command is sent.
fn write_cache(data: &SpanData<'_>, settings: &Settings, plan: &CachePlan<'_>) {
    cache::describe(data, plan.keys.as_slice());
    if let Some(ttl) = plan.ttl {
        data.set("cache.ttl", ttl);
    }
    if let (Kind::Put, Some(size)) = (plan.kind, plan.item_size) {
        data.set("cache.item_size", size);
    }
    settings.tracker.record(data);
}

/// The data of every `db.redis` span, a pipeline's too.
fn write_common(data: &SpanData<'_>, settings: &Settings, db: i64) {
    data.set("db.system", SYSTEM);
    data.set("db.system.name", SYSTEM);
    let name = db.to_string();
    data.set("db.name", name.as_str());
    data.set("db.namespace", name);
    if let Some((address, port)) = &settings.server {
        data.set("server.address", &**address);
        data.set("server.port", *port);
    }
}

fn write_pipeline(data: &SpanData<'_>, settings: &Settings, pipeline: &Pipeline, db: i64) {
    write_common(data, settings, db);
    let count = pipeline.len();
    let first_ten = command::first_ten(pipeline.cmd_iter());
    let first_ten = Data::Array(first_ten.into_iter().map(Data::String).collect());
    let commands: Data = [("count", Data::from(count)), ("first_ten", first_ten)]
        .into_iter()
        .collect();
    data.set("redis.commands", commands);
    if count >= 2 {
        data.set("db.operation.batch.size", count);
    }
    data.set("redis.transaction", pipeline.is_transaction());
}

/// The code of an error: Redis's (`WRONGTYPE`; for a pipeline, its first refused command's),
/// or none for a failure without one (a closed connection).
fn error_code(error: &RedisError) -> Option<String> {
    if let Some(code) = error.code() {
        return Some(code.to_owned());
    }
    // A pipeline's errors, whose codes `code()` gives only for the kinds `redis` names.
    let errors = error.clone().into_server_errors()?;
    errors.first().map(|(_, error)| error.code().to_owned())
}

/// Whether `reply` is a refusal or a failure (`Some`), with its code when it has one.
fn refusal(reply: &Result<Value, RedisError>) -> Option<Option<String>> {
    match reply {
        Ok(Value::ServerError(error)) => Some(Some(error.code().to_owned())),
        Ok(_) => None,
        Err(error) => Some(error_code(error)),
    }
}

/// `internal_error` with the code of a refusal, else `ok`.
fn status_of(data: &SpanData<'_>, refusal: Option<Option<String>>) -> SpanStatus {
    match refusal {
        None => SpanStatus::Ok,
        Some(code) => {
            if let Some(code) = code {
                data.set(STATUS_CODE, code);
            }
            SpanStatus::InternalError
        }
    }
}

fn command_status(data: &SpanData<'_>, reply: &Result<Value, RedisError>) -> SpanStatus {
    status_of(data, refusal(reply))
}

fn pipeline_status(data: &SpanData<'_>, replies: &Result<Vec<Value>, RedisError>) -> SpanStatus {
    let refusal = match replies {
        Err(error) => Some(error_code(error)),
        // A refused command of the pipeline, or of an atomic pipeline's `EXEC` reply.
        Ok(values) => values
            .iter()
            .find_map(|value| match value {
                Value::Array(inner) => inner.iter().find_map(server_error),
                other => server_error(other),
            })
            .map(|error| Some(error.code().to_owned())),
    };
    status_of(data, refusal)
}

fn server_error(value: &Value) -> Option<&::redis::ServerError> {
    match value {
        Value::ServerError(error) => Some(error),
        _ => None,
    }
}

/// What a `GET` or `MGET` found: a string is a hit (its bytes the size), nil a miss; anything
/// else (an error, another type) is a failed read.
fn read(command: Command, reply: &Result<Value, RedisError>) -> Read {
    let found = |value: &Value| match value {
        Value::BulkString(bytes) => Some(Some(bytes.len())),
        Value::Nil => Some(None),
        _ => None,
    };
    match (command, reply) {
        (Command::Get, Ok(value)) => match found(value) {
            Some(Some(size)) => Read::Hit(size),
            Some(None) => Read::Miss,
            None => Read::Failed,
        },
        (Command::MGet, Ok(Value::Array(values))) => {
            let mut hit = false;
            let mut size = 0usize;
            for value in values {
                match found(value) {
                    Some(Some(bytes)) => {
                        hit = true;
                        size = size.saturating_add(bytes);
                    }
                    Some(None) => {}
                    None => return Read::Failed,
                }
            }
            if hit {
                Read::Hit(size)
            } else {
                Read::Miss
            }
        }
        _ => Read::Failed,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    Hit(usize),
    Miss,
    Failed,
}

impl Read {
    /// Writes `cache.hit` and `cache.item_size` (nothing for a failed read) and returns the
    /// status.
    fn record(self, data: &SpanData<'_>) -> SpanStatus {
        let lookup: Lookup<'_, [u8]> = match self {
            Read::Hit(size) => {
                data.set("cache.item_size", size);
                Lookup::Hit(None)
            }
            Read::Miss => Lookup::Miss,
            Read::Failed => Lookup::Failed,
        };
        lookup.record(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_error(reply: &[u8]) -> Value {
        match ::redis::parse_redis_value(reply) {
            Ok(value @ Value::ServerError(_)) => value,
            other => panic!("{reply:?} parsed as {other:?}"),
        }
    }

    #[test]
    fn reads_of_every_reply_shape() {
        let ok = |v: Value| -> Result<Value, RedisError> { Ok(v) };
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        assert_eq!(read(Command::Get, &ok(bulk("abc"))), Read::Hit(3));
        assert_eq!(read(Command::Get, &ok(bulk(""))), Read::Hit(0));
        assert_eq!(read(Command::Get, &ok(Value::Nil)), Read::Miss);
        assert_eq!(read(Command::Get, &ok(Value::Int(3))), Read::Failed);
        assert_eq!(read(Command::Get, &ok(Value::Okay)), Read::Failed);
        assert_eq!(
            read(Command::Get, &ok(server_error(b"-ERR no\r\n"))),
            Read::Failed
        );
        let array = |v: Vec<Value>| ok(Value::Array(v));
        assert_eq!(
            read(
                Command::MGet,
                &array(vec![bulk("ab"), Value::Nil, bulk("c")])
            ),
            Read::Hit(3)
        );
        assert_eq!(
            read(Command::MGet, &array(vec![Value::Nil, Value::Nil])),
            Read::Miss
        );
        assert_eq!(read(Command::MGet, &array(vec![])), Read::Miss);
        assert_eq!(
            read(Command::MGet, &array(vec![bulk("a"), Value::Int(1)])),
            Read::Failed
        );
        assert_eq!(read(Command::MGet, &ok(bulk("a"))), Read::Failed);
        let refused: Result<Value, RedisError> =
            Err(RedisError::from((::redis::ErrorKind::Io, "closed")));
        assert_eq!(read(Command::Get, &refused), Read::Failed);
        assert_eq!(refusal(&refused), Some(None));
        assert_eq!(refusal(&ok(Value::Nil)), None);
        let wrong = ok(server_error(b"-WRONGTYPE Operation against a key\r\n"));
        assert_eq!(refusal(&wrong), Some(Some("WRONGTYPE".to_owned())));
    }
}
