//! An axum service over a real PostgreSQL, Redis and RabbitMQ, with Sentry Insights spans for
//! all three: the Queries, Caches and Queues pages fill from it.
//!
//! ```text
//! cargo run --features services --example service             # serves on 127.0.0.1:3000
//! cargo run --features services --example worker              # in another terminal: the jobs
//! curl -X POST --data 'Ada' http://127.0.0.1:3000/items       # {"id":1,"name":"Ada"}
//! curl http://127.0.0.1:3000/items/1                           # a cache miss, then hits
//! curl http://127.0.0.1:3000/metrics                           # Prometheus text
//! ```
//!
//! The services must be running (README, "Real services"). Settings, from the environment:
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `DATABASE_URL` | PostgreSQL; the `items` table is created if missing (put `?options=-c%20search_path%3D<schema>` in it for another schema) | `postgres://postgres@127.0.0.1:5432/test` |
//! | `REDIS_URL` | Redis, the read-through cache of items | `redis://127.0.0.1:6379/` |
//! | `AMQP_URL` | RabbitMQ | `amqp://guest:guest@127.0.0.1:5672/%2f` |
//! | `JOBS_QUEUE` | the queue jobs are published to (its spans and metrics name it) | `item-jobs` |
//! | `CACHE_KEY_PREFIX` | the prefix of cache keys | `items:` |
//! | `BIND_ADDR` | where to listen; with port 0 the system picks one | `127.0.0.1:3000` |
//! | `SENTRY_DSN`, `SENTRY_TRACES_SAMPLE_RATE`, ... | as for [`insights_runtime::setup`]; without a DSN the console sink prints the span trees | |
//!
//! With a DSN, envelopes go out through `insights_runtime::transport` (the runtime's `transport`
//! feature), which stops trying for a while when Sentry is unreachable instead of retrying every
//! envelope.
//!
//! Once listening it prints `listening on http://<address>` on stdout (the service suite reads
//! the port from it); Ctrl-C or SIGTERM stops it, flushing Sentry for at most 2 s.
//!
//! | route | what it does | spans |
//! |---|---|---|
//! | `POST /items` (body: the name) | inserts the item, publishes a job for the worker | `db` `INSERT ..`, `queue.publish` `<JOBS_QUEUE>` |
//! | `GET /items/{id}` | reads through the cache | `cache.get` (its `db.redis` inside); on a miss `db` `SELECT ..` and `cache.put` (its `db.redis` inside) |
//! | `GET /health` | liveness | none: sampled out by a sampling rule |
//! | `GET /metrics` | Prometheus text format | none: sampled out too |
//!
//! Transactions are named by the matched route (`GET /items/{id}`), by `sentry-tower`. Neither
//! the queries nor the cache reads carry an attribute: the sqlx pool is wrapped once in
//! `insights_runtime::sqlx::Traced` (every query a `db` span with `db.system` `postgresql`,
//! the database, server, rows and status) and the Redis connection in
//! `insights_runtime::redis::Traced` (keys under the cache prefix are `cache.get` / `cache.put`
//! spans with `cache.hit`, `cache.item_size`, `cache.ttl` and the server's
//! `network.peer.address` and `network.peer.port`, each with the command's `db.redis` span
//! inside). Each job's message carries `sentry-trace` and `baggage` in its AMQP headers
//! (`#[instrument_queue_publish]`), so the worker's transaction continues the request's trace.
//! A failing cache is recorded (`internal_error`) and bypassed; a failing database or broker
//! answers 500 and is captured with context.

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use insights_runtime::instrument_queue_publish;
use insights_runtime::setup::{self, Settings};
use insights_runtime::sqlx::Traced;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Confirmation};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use redis::AsyncCommands;
use sentry::protocol::value::{Map, Value};
use sqlx::PgPool;
use tower::ServiceBuilder;

/// The `items` table, created at start-up if missing.
const CREATE_ITEMS: &str = "CREATE TABLE IF NOT EXISTS items (\
     id BIGSERIAL PRIMARY KEY, \
     name TEXT NOT NULL, \
     created_at TIMESTAMPTZ NOT NULL DEFAULT now(), \
     processed_at TIMESTAMPTZ)";
// Each statement is recorded as sqlx sends it: the description is the statement, placeholders
// and all.
const INSERT_ITEM: &str = "INSERT INTO items (name) VALUES ($1) RETURNING id";
const SELECT_ITEM: &str = "SELECT id, name FROM items WHERE id = $1";

/// How long an item stays cached, in seconds.
const CACHE_TTL: u64 = 300;

/// The service's settings, from the environment.
struct Config {
    database_url: String,
    redis_url: String,
    amqp_url: String,
    jobs_queue: String,
    cache_key_prefix: String,
    bind_addr: String,
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

impl Config {
    fn from_env() -> Self {
        Config {
            database_url: env_or("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"),
            redis_url: env_or("REDIS_URL", "redis://127.0.0.1:6379/"),
            amqp_url: env_or("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f"),
            jobs_queue: env_or("JOBS_QUEUE", "item-jobs"),
            cache_key_prefix: env_or("CACHE_KEY_PREFIX", "items:"),
            bind_addr: env_or("BIND_ADDR", "127.0.0.1:3000"),
        }
    }
}

/// What callers see, and whether it is worth an alert.
#[derive(Debug)]
enum AppError {
    /// Expected: a 404, never captured.
    NotFound,
    /// Expected: a 400, never captured.
    BadRequest(&'static str),
    /// Unexpected: a 500, captured with context.
    Database(sqlx::Error),
    /// Unexpected: a 500, captured with context.
    Broker(String),
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppError::NotFound => f.write_str("not found"),
            AppError::BadRequest(why) => f.write_str(why),
            AppError::Database(e) => write!(f, "database failed: {e}"),
            AppError::Broker(e) => write!(f, "broker failed: {e}"),
        }
    }
}

impl std::error::Error for AppError {}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        AppError::Database(e)
    }
}

impl From<lapin::Error> for AppError {
    fn from(e: lapin::Error) -> Self {
        AppError::Broker(e.to_string())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> axum::response::Response {
        let backend = match &self {
            AppError::NotFound => return (StatusCode::NOT_FOUND, "not found").into_response(),
            AppError::BadRequest(why) => return (StatusCode::BAD_REQUEST, *why).into_response(),
            AppError::Database(_) => "postgresql",
            AppError::Broker(_) => "rabbitmq",
        };
        sentry::with_scope(
            |scope| {
                scope.set_fingerprint(Some(["backend-failure", backend].as_slice()));
                scope.set_context(
                    "backend",
                    sentry::protocol::Context::Other(
                        [("system".to_owned(), Value::from(backend))].into(),
                    ),
                );
            },
            || sentry::capture_error(&self),
        );
        (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
    }
}

/// Redis as a read-through cache, through `insights_runtime::redis`: the keys under the cache
/// prefix are cache spans (`cache.get` with `cache.hit` and `cache.item_size` from the reply,
/// `cache.put` with `cache.ttl`), each with the command's `db.redis` span inside. No attribute
/// and no tracker: the wrapper set up in `connect` sees every command.
#[derive(Clone)]
struct Cache {
    conn: insights_runtime::redis::Traced<redis::aio::MultiplexedConnection>,
    prefix: Arc<str>,
}

impl Cache {
    fn key(&self, id: i64) -> String {
        format!("{}{id}", self.prefix)
    }

    async fn get(&self, key: &str) -> redis::RedisResult<Option<String>> {
        self.conn.clone().get(key).await
    }

    async fn put(&self, key: &str, value: &str) -> redis::RedisResult<()> {
        self.conn.clone().set_ex(key, value, CACHE_TTL).await
    }
}

/// The channel jobs are published on, with publisher confirms on.
#[derive(Clone)]
struct Jobs {
    channel: lapin::Channel,
    queue: ShortString,
}

#[derive(Clone)]
struct App {
    /// The pool, wrapped once: every query through `&app.db` is a `db` span.
    db: Traced<PgPool>,
    cache: Cache,
    jobs: Jobs,
    metrics: PrometheusHandle,
}

/// Inserts an item. No attribute: the query is a `db` span because it runs on the wrapped pool.
async fn insert_item(db: &Traced<PgPool>, name: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(INSERT_ITEM)
        .bind(name)
        .fetch_one(db)
        .await
}

async fn select_item(db: &Traced<PgPool>, id: i64) -> Result<Option<(i64, String)>, sqlx::Error> {
    sqlx::query_as(SELECT_ITEM)
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Publishes a job: the attribute records the `queue.publish` span and writes `sentry-trace`,
/// `baggage` and the publish time into `headers`, the message's AMQP headers themselves
/// (lapin's `FieldTable` is a carrier), before the body runs; the body sends the message and
/// waits for the broker's confirm.
///
/// The destination is the queue's configured name (`JOBS_QUEUE`), read when the job is
/// published: the spans and the `queue_name` label say the queue the message goes to. It comes
/// from the configuration, so the label's values stay few.
#[instrument_queue_publish(
    destination = jobs.queue.as_str(),
    system = "rabbitmq",
    headers_param = "headers",
    message_id_param = "message_id",
    body_param = "body",
    transaction = "POST /items"
)]
async fn publish_job(
    jobs: &Jobs,
    headers: &mut FieldTable,
    message_id: &str,
    body: &[u8],
) -> Result<(), AppError> {
    let message_id =
        ShortString::try_new(message_id).map_err(|e| AppError::Broker(e.to_string()))?;
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let properties = BasicProperties::default()
        .with_message_id(message_id)
        .with_content_type("application/json".into())
        .with_delivery_mode(2) // persistent
        .with_timestamp(timestamp)
        .with_headers(std::mem::take(headers));
    let confirm = jobs
        .channel
        .basic_publish(
            ShortString::default(), // the default exchange routes by queue name
            jobs.queue.clone(),
            BasicPublishOptions::default(),
            body,
            properties,
        )
        .await?
        .await?;
    match confirm {
        Confirmation::Nack(_) => Err(AppError::Broker("the broker refused the job".to_owned())),
        Confirmation::Ack(_) | Confirmation::NotRequested => Ok(()),
    }
}

fn item_json(id: i64, name: &str) -> String {
    let mut item = Map::new();
    item.insert("id".to_owned(), Value::from(id));
    item.insert("name".to_owned(), Value::from(name));
    Value::Object(item).to_string()
}

fn json_response(status: StatusCode, body: String) -> axum::response::Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn create_item(
    State(app): State<App>,
    body: String,
) -> Result<axum::response::Response, AppError> {
    let name = body.trim();
    if name.is_empty() {
        return Err(AppError::BadRequest(
            "the body is the item's name; it is empty",
        ));
    }
    let id = insert_item(&app.db, name).await?;
    metrics::counter!("service_items_created_total").increment(1);
    let job = {
        let mut job = Map::new();
        job.insert("item_id".to_owned(), Value::from(id));
        Value::Object(job).to_string()
    };
    let message_id = sentry::types::Uuid::new_v4().to_string();
    publish_job(
        &app.jobs,
        &mut FieldTable::default(),
        &message_id,
        job.as_bytes(),
    )
    .await?;
    Ok(json_response(StatusCode::CREATED, item_json(id, name)))
}

async fn read_item(
    State(app): State<App>,
    Path(id): Path<i64>,
) -> Result<axum::response::Response, AppError> {
    sentry::configure_scope(|scope| scope.set_tag("item.id", id));
    let key = app.cache.key(id);
    // A failing cache is recorded on its span and bypassed: the database still answers.
    if let Ok(Some(cached)) = app.cache.get(&key).await {
        return Ok(json_response(StatusCode::OK, cached));
    }
    let (id, name) = select_item(&app.db, id).await?.ok_or(AppError::NotFound)?;
    let item = item_json(id, &name);
    if let Err(e) = app.cache.put(&key, &item).await {
        eprintln!("cache put {key} failed: {e}");
    }
    Ok(json_response(StatusCode::OK, item))
}

async fn metrics_text(State(app): State<App>) -> axum::response::Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

fn router(app: App) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/metrics", get(metrics_text))
        .route("/items", post(create_item))
        .route("/items/{id}", get(read_item))
        .with_state(app)
        .layer(
            ServiceBuilder::new()
                .layer(sentry::integrations::tower::NewSentryLayer::new_from_top())
                .layer(sentry::integrations::tower::SentryHttpLayer::new().enable_transaction())
                // A request continued from another service keeps that service's DSC.
                .layer(insights_runtime::propagation::ContinueTraceLayer),
        )
}

/// `e` and its sources, `outer: inner: innermost` (a driver's error alone may say only "error
/// connecting to server").
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text = format!("{text}: {inner_text}");
        }
        source = inner.source();
    }
    text
}

/// Connects to the three services, saying which one failed and how to start it.
async fn connect(config: &Config, metrics: PrometheusHandle) -> Result<App, String> {
    let hint = "is it running? (README, \"Real services\")";
    // The one line of set-up for the database: every query through the pool is a `db` span.
    let db = Traced::new(
        PgPool::connect(&config.database_url)
            .await
            .map_err(|e| format!("PostgreSQL (DATABASE_URL): {}; {hint}", chain(&e)))?,
    );
    sqlx::raw_sql(CREATE_ITEMS)
        .execute(&db)
        .await
        .map_err(|e| format!("PostgreSQL: creating the items table: {}", chain(&e)))?;

    let redis =
        redis::Client::open(config.redis_url.as_str()).map_err(|e| format!("REDIS_URL: {e}"))?;
    // The one line of set-up: which keys are the cache, and where the server is.
    let cache = insights_runtime::redis::Config::new()
        .cache_prefixes([config.cache_key_prefix.as_str()])
        .server_of(redis.get_connection_info());
    let conn = redis
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| format!("Redis (REDIS_URL): {}; {hint}", chain(&e)))?;
    let conn = cache.wrap(conn);

    let amqp = lapin::Connection::connect(&config.amqp_url, lapin::ConnectionProperties::default())
        .await
        .map_err(|e| format!("RabbitMQ (AMQP_URL): {}; {hint}", chain(&e)))?;
    let channel = amqp
        .create_channel()
        .await
        .map_err(|e| format!("RabbitMQ: opening a channel: {e}"))?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|e| format!("RabbitMQ: enabling publisher confirms: {e}"))?;
    let queue =
        ShortString::try_new(config.jobs_queue.as_str()).map_err(|e| format!("JOBS_QUEUE: {e}"))?;
    channel
        .queue_declare(
            queue.clone(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| format!("RabbitMQ: declaring queue {queue}: {e}"))?;

    Ok(App {
        db,
        cache: Cache {
            conn,
            prefix: config.cache_key_prefix.as_str().into(),
        },
        jobs: Jobs { channel, queue },
        metrics,
    })
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let terminate = async {
        #[cfg(unix)]
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            term.recv().await;
            return;
        }
        std::future::pending::<()>().await;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    // Before anything records a metric.
    let metrics = PrometheusBuilder::new().install_recorder()?;
    // Before the runtime starts, so that every worker thread's hub sees the client.
    let settings = Settings::from_env(insights_runtime::release!())?
        .sampling_rule("/health", 0.0)
        .sampling_rule("/metrics", 0.0)
        .expected_error("NotFound")
        .console_without_dsn(true);
    let _sentry = setup::init(settings);

    let config = Config::from_env();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // The recorder folds histogram samples into its summaries only when it renders or is
        // told to: without a scrape, they would pile up in memory.
        let upkeep = metrics.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(5));
            loop {
                every.tick().await;
                upkeep.run_upkeep();
            }
        });
        let app = connect(&config, metrics).await?;
        let listener = tokio::net::TcpListener::bind(&config.bind_addr)
            .await
            .map_err(|e| format!("BIND_ADDR {}: {e}", config.bind_addr))?;
        println!("listening on http://{}", listener.local_addr()?);
        axum::serve(listener, router(app))
            .with_graceful_shutdown(shutdown_signal())
            .into_future()
            .await?;
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    println!("stopped");
    Ok(())
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("service: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
