//! A web service set up the way a Sentry + FastAPI service is (docs/from-python.md maps the
//! two), in axum.
//!
//! ```text
//! cargo run --example web_service            # serves, calls itself, prints span trees, exits
//! cargo run --example web_service -- --serve # keeps serving on 127.0.0.1:3000
//! ```
//!
//! * Sentry from settings ([`insights_runtime::setup`]): `SENTRY_DSN`, `SENTRY_ENVIRONMENT`,
//!   `SENTRY_TRACES_SAMPLE_RATE`, ...; without a DSN the console sink prints what would be sent.
//! * `sentry-tower` starts a transaction per request, named by the matched route
//!   (`GET /users/{id}`, not `/users/42`), continuing an incoming `sentry-trace`.
//! * `/health` is sampled out by a sampling rule.
//! * Handlers set the user, tags, a context and breadcrumbs; an unexpected error is captured
//!   with its context and a fingerprint; an expected one (`NotFound`) is answered, not captured.
//! * Inside, `#[instrument_db_operation]`, `#[instrument_cache_operation]` and the queue
//!   attributes record spans for the Queries, Caches and Queues pages, over in-process stand-ins
//!   (the `service` example of the service suite uses PostgreSQL, Redis and a broker).
//! * With the runtime's `metrics` feature the same calls record the service's Prometheus
//!   metrics (`database_queries_total`, `cache_hits_total`, ...), served on `/metrics` by
//!   `metrics-exporter-prometheus`. `tests/metrics_endpoint.rs` scrapes it.

use std::collections::HashMap;
use std::future::IntoFuture;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use insights_runtime::setup::{self, Settings};
use insights_runtime::{
    instrument_cache_operation, instrument_db_operation, instrument_queue_process,
    instrument_queue_publish, traced,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sentry::integrations::tower::{NewSentryLayer, SentryHttpLayer};
use sentry::protocol::Value;
use tower::ServiceBuilder;

/// The error callers should see, and whether it is worth an alert.
#[derive(Debug)]
enum AppError {
    /// Expected: a 404, never captured (the settings' expected-errors filter drops it too).
    NotFound,
    /// Unexpected: a 500, captured with context.
    Storage(String),
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppError::NotFound => f.write_str("not found"),
            AppError::Storage(e) => write!(f, "storage failed: {e}"),
        }
    }
}

impl std::error::Error for AppError {}

impl axum::response::IntoResponse for AppError {
    fn into_response(self) -> axum::response::Response {
        match &self {
            AppError::NotFound => (StatusCode::NOT_FOUND, "not found").into_response(),
            AppError::Storage(_) => {
                // Unexpected errors are captured with context: a fingerprint
                // groups every storage failure into one issue, whatever its message.
                sentry::with_scope(
                    |scope| {
                        scope.set_fingerprint(Some(["storage-failure"].as_slice()));
                        scope.set_context(
                            "storage",
                            sentry::protocol::Context::Other(
                                [("backend".to_owned(), Value::from("in-memory"))].into(),
                            ),
                        );
                    },
                    || sentry::capture_error(&self),
                );
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
            }
        }
    }
}

/// A message on the in-memory queue: its headers and its body.
type Message = (HashMap<String, String>, String);

/// The service's state: in-process stand-ins for a database, a cache and a queue.
#[derive(Clone, Default)]
pub struct App {
    users: Arc<Mutex<HashMap<u64, String>>>,
    cache: Arc<Mutex<HashMap<String, String>>>,
    queue: Arc<Mutex<Vec<Message>>>,
}

#[instrument_cache_operation(get, key_param = "key", cache_name = "users")]
fn cache_get(app: &App, key: &str) -> Option<String> {
    app.cache.lock().ok()?.get(key).cloned()
}

#[instrument_cache_operation(
    put,
    key_param = "key",
    ttl = 300,
    value_param = "value",
    cache_name = "users"
)]
fn cache_put(app: &App, key: &str, value: &str) {
    if let Ok(mut cache) = app.cache.lock() {
        cache.insert(key.to_owned(), value.to_owned());
    }
}

#[instrument_db_operation(
    query = "SELECT name FROM users WHERE id = $1",
    table = "users",
    operation = "select"
)]
async fn select_user(app: &App, id: u64) -> Result<Option<String>, AppError> {
    tokio::task::yield_now().await;
    if id == 13 {
        return Err(AppError::Storage("connection reset by peer".to_owned()));
    }
    Ok(app
        .users
        .lock()
        .map_err(|e| AppError::Storage(e.to_string()))?
        .get(&id)
        .cloned())
}

#[traced(op = "function", description = "load user")]
async fn load_user(app: &App, id: u64) -> Result<String, AppError> {
    let key = format!("user:{id}");
    if let Some(name) = cache_get(app, &key) {
        return Ok(name);
    }
    let name = select_user(app, id).await?.ok_or(AppError::NotFound)?;
    cache_put(app, &key, &name);
    Ok(name)
}

async fn get_user(State(app): State<App>, Path(id): Path<u64>) -> Result<String, AppError> {
    // User context, tags and breadcrumbs.
    sentry::configure_scope(|scope| {
        scope.set_user(Some(sentry::User {
            id: Some(id.to_string()),
            ..Default::default()
        }));
        scope.set_tag("endpoint", "get_user");
    });
    sentry::add_breadcrumb(sentry::Breadcrumb {
        category: Some("users".into()),
        message: Some(format!("looking up user {id}")),
        ..Default::default()
    });
    load_user(&app, id).await
}

#[instrument_queue_publish(
    destination = "welcome-emails",
    system = "in-memory",
    headers_param = "headers",
    body_param = "body"
)]
fn enqueue(app: &App, headers: &mut HashMap<String, String>, body: &str) {
    if let Ok(mut queue) = app.queue.lock() {
        queue.push((headers.clone(), body.to_owned()));
    }
}

async fn create_user(State(app): State<App>, body: String) -> Result<String, AppError> {
    let id = {
        let mut users = app
            .users
            .lock()
            .map_err(|e| AppError::Storage(e.to_string()))?;
        let id = users.len() as u64 + 1;
        users.insert(id, body.clone());
        id
    };
    enqueue(&app, &mut HashMap::new(), &body);
    Ok(id.to_string())
}

#[instrument_queue_process(
    destination = "welcome-emails",
    system = "in-memory",
    headers_param = "headers",
    body_param = "body"
)]
async fn send_welcome(headers: &HashMap<String, String>, body: &str) -> Result<(), AppError> {
    let _ = headers;
    tokio::task::yield_now().await;
    sentry::add_breadcrumb(sentry::Breadcrumb {
        message: Some(format!("welcome mail for {body}")),
        ..Default::default()
    });
    Ok(())
}

/// Drains the in-memory queue: each message continues the trace of the request that sent it.
pub async fn worker(app: App) {
    let messages: Vec<_> = app
        .queue
        .lock()
        .map(|mut q| q.drain(..).collect())
        .unwrap_or_default();
    for (headers, body) in messages {
        let hub = Arc::new(sentry::Hub::new_from_top(sentry::Hub::current()));
        let _ = sentry::SentryFutureExt::bind_hub(send_welcome(&headers, &body), hub).await;
    }
}

/// The routes, with `/metrics` serving `metrics` in the Prometheus text format.
pub fn router(app: App, metrics: PrometheusHandle) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/metrics", get(move || async move { metrics.render() }))
        .route("/users", post(create_user))
        .route("/users/{id}", get(get_user))
        .with_state(app)
        .layer(
            ServiceBuilder::new()
                .layer(NewSentryLayer::new_from_top())
                .layer(SentryHttpLayer::new().enable_transaction())
                // A request continued from another service keeps that service's DSC.
                .layer(insights_runtime::propagation::ContinueTraceLayer),
        )
}

/// A minimal HTTP/1.1 request over loopback, for the self-test: the status line and the body.
pub fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> std::io::Result<(String, String)> {
    let mut stream = std::net::TcpStream::connect(addr)?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response.lines().next().unwrap_or_default().to_owned();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Before the runtime starts, so that every worker thread's hub sees the client.
    let settings = Settings::from_env(insights_runtime::release!())?
        .sampling_rule("/health", 0.0)
        .expected_error("NotFound")
        .console_without_dsn(true);
    let _sentry = setup::init(settings);
    // The process-wide `metrics` recorder the attributes record into.
    let metrics = PrometheusBuilder::new().install_recorder()?;

    let serve_forever = std::env::args().any(|a| a == "--serve");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // Histogram samples are folded into the summaries on render or upkeep; without a scrape
    // they would pile up.
    let upkeep = metrics.clone();
    runtime.spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    let app = App::default();
    let bind = if serve_forever {
        "127.0.0.1:3000"
    } else {
        "127.0.0.1:0"
    };
    let listener = runtime.block_on(tokio::net::TcpListener::bind(bind))?;
    let addr = listener.local_addr()?;
    let server = runtime.spawn(axum::serve(listener, router(app.clone(), metrics)).into_future());
    if serve_forever {
        println!("serving on http://{addr}");
        runtime.block_on(server)??;
        return Ok(());
    }
    for (method, path, body) in [
        ("GET", "/health", ""),
        ("POST", "/users", "Ada"),
        ("GET", "/users/1", ""),
        ("GET", "/users/1", ""),
        ("GET", "/users/7", ""),
        ("GET", "/users/13", ""),
    ] {
        let (status, _) = call(addr, method, path, body)?;
        println!("{method} {path} -> {status}");
    }
    runtime.block_on(worker(app));
    let (_, scrape) = call(addr, "GET", "/metrics", "")?;
    println!("GET /metrics (samples):");
    for line in scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.contains("quantile"))
    {
        println!("  {line}");
    }
    server.abort();
    Ok(())
}
