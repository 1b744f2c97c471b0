//! Service B of `tests/integration_reqwest.rs`: an axum service behind `sentry-tower` that
//! continues the traces of the requests it gets, and says which trace headers it got.
//!
//! ```text
//! cargo run --features services --example http_peer         # serves on 127.0.0.1:3001
//! curl -H 'sentry-trace: 0123456789abcdef0123456789abcdef-0123456789abcdef-1' \
//!     http://127.0.0.1:3001/echo                               # {"sentry-trace":"0123..","baggage":null,..}
//! ```
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `BIND_ADDR` | where to listen; with port 0 the system picks one | `127.0.0.1:3001` |
//! | `SENTRY_DSN`, `SENTRY_RELEASE`, ... | as for [`insights_runtime::setup`]; without a DSN nothing is recorded | |
//!
//! Once listening it prints `listening on http://<address>` on stdout; Ctrl-C or SIGTERM stops
//! it, flushing Sentry for at most 2 s.
//!
//! | route | answer |
//! |---|---|
//! | `GET /echo` | `200`, a JSON object of the `sentry-trace`, `baggage` and `traceparent` headers it got (`null` for one it did not) |
//! | `GET /status/{code}` | that status, with the body `status <code>` |
//! | `GET /slow` | `200` `slow`, after 2 s |
//!
//! Each request is a transaction named by its route (`GET /echo`), continuing the caller's
//! trace from `sentry-trace` (`sentry-tower`) and keeping the caller's DSC from `baggage`
//! (`insights_runtime::propagation::ContinueTraceLayer`).

use std::future::IntoFuture;
use std::time::Duration;

use axum::extract::Path;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use insights_runtime::propagation::{ContinueTraceLayer, BAGGAGE, SENTRY_TRACE, TRACEPARENT};
use insights_runtime::setup::{self, Settings};
use sentry::integrations::tower::{NewSentryLayer, SentryHttpLayer};
use tower::ServiceBuilder;

/// The trace headers the request came with, as JSON.
async fn echo(headers: HeaderMap) -> impl IntoResponse {
    let got = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map_or(serde_json::Value::Null, |v| v.into())
    };
    let body = serde_json::json!({
        SENTRY_TRACE: got(SENTRY_TRACE),
        BAGGAGE: got(BAGGAGE),
        TRACEPARENT: got(TRACEPARENT),
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
}

async fn status(Path(code): Path<u16>) -> impl IntoResponse {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    (status, format!("status {code}"))
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(2)).await;
    "slow"
}

fn router() -> Router {
    Router::new()
        .route("/echo", get(echo))
        .route("/status/{code}", get(status))
        .route("/slow", get(slow))
        .layer(
            ServiceBuilder::new()
                .layer(NewSentryLayer::new_from_top())
                .layer(SentryHttpLayer::new().enable_transaction())
                .layer(ContinueTraceLayer),
        )
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
    // Before the runtime starts, so that every worker thread's hub sees the client.
    let settings = Settings::from_env(insights_runtime::release!())?.console_without_dsn(false);
    let _sentry = setup::init(settings);
    let bind_addr = std::env::var("BIND_ADDR")
        .ok()
        .filter(|a| !a.trim().is_empty())
        .unwrap_or_else(|| "127.0.0.1:3001".to_owned());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&bind_addr)
            .await
            .map_err(|e| format!("BIND_ADDR {bind_addr}: {e}"))?;
        println!("listening on http://{}", listener.local_addr()?);
        axum::serve(listener, router())
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
            eprintln!("http_peer: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
