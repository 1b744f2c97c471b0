//! The consumer of the `service` example's jobs: each message becomes a `queue.task`
//! transaction that continues the trace of the request that published it.
//!
//! ```text
//! cargo run --features services --example worker                           # runs until Ctrl-C
//! WORKER_MAX_MESSAGES=1 cargo run --features services --example worker     # one job, then exits
//! ```
//!
//! For every message on the queue it reads `sentry-trace`, `baggage` and the publish time from
//! the AMQP headers (`#[instrument_queue_process]`, reading lapin's `FieldTable` as it is): the transaction has the producer's trace id,
//! its parent is the producer's `queue.publish` span, and a `queue.process` span inside it holds
//! the message id, body size, retry count and time spent in the queue. The job marks the item
//! processed in PostgreSQL (a `db` span, recorded by `insights_runtime::postgres::Client`, which
//! wraps the connection once: the query itself carries no attribute). A job that succeeds is acknowledged; one that fails
//! is `internal_error` on the span and the transaction, requeued once, then dropped.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `DATABASE_URL` | PostgreSQL, holding the service's `items` table (created if missing) | `postgres://postgres@127.0.0.1:5432/test` |
//! | `AMQP_URL` | RabbitMQ | `amqp://guest:guest@127.0.0.1:5672/%2f` |
//! | `JOBS_QUEUE` | the queue to consume; its name is the transactions' and the spans' | `item-jobs` |
//! | `WORKER_MAX_MESSAGES` | exit after this many messages (tests) | unset: run until stopped |
//! | `SENTRY_DSN`, ... | as for [`insights_runtime::setup`]; without a DSN the console sink prints the span trees | |
//!
//! It prints `consuming <queue>` on stdout once its consumer is registered, and a line per job.

use std::sync::Arc;

use futures::StreamExt;
use insights_runtime::instrument_queue_process;
use insights_runtime::setup::{self, Settings};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, QueueDeclareOptions,
};
use lapin::types::{FieldTable, ShortString};
use sentry::protocol::value::Value;
use sentry::SentryFutureExt;

/// The service's table, as `service` creates it (either may start first).
const CREATE_ITEMS: &str = "CREATE TABLE IF NOT EXISTS items (\
     id BIGSERIAL PRIMARY KEY, \
     name TEXT NOT NULL, \
     created_at TIMESTAMPTZ NOT NULL DEFAULT now(), \
     processed_at TIMESTAMPTZ)";
const MARK_PROCESSED: &str = "UPDATE items SET processed_at = now() WHERE id = $1";

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// Why a job failed.
#[derive(Debug)]
enum JobError {
    /// The body is not `{"item_id": <integer>}`.
    BadBody(String),
    /// No item has the job's id.
    UnknownItem(i64),
    Database(tokio_postgres::Error),
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobError::BadBody(body) => write!(f, "not a job: {body:?}"),
            JobError::UnknownItem(id) => write!(f, "no item {id}"),
            JobError::Database(e) => write!(f, "database failed: {e}"),
        }
    }
}

impl std::error::Error for JobError {}

impl From<tokio_postgres::Error> for JobError {
    fn from(e: tokio_postgres::Error) -> Self {
        JobError::Database(e)
    }
}

/// Handles one job. The attribute continues the producer's trace from `headers`; the
/// destination is the queue consumed (`JOBS_QUEUE`), which also names the transaction.
#[instrument_queue_process(
    destination = queue,
    system = "rabbitmq",
    headers_param = "headers",
    message_id_param = "message_id",
    body_param = "body",
    retry_count_param = "attempt"
)]
async fn handle_job(
    db: &insights_runtime::postgres::Client,
    queue: &str,
    headers: &FieldTable,
    message_id: &str,
    body: &[u8],
    attempt: u32,
) -> Result<(), JobError> {
    let _ = (headers, message_id, attempt); // recorded by the attribute
    let text = String::from_utf8_lossy(body);
    let id = text
        .parse::<Value>()
        .ok()
        .and_then(|job| job.get("item_id").and_then(Value::as_i64))
        .ok_or_else(|| JobError::BadBody(text.to_string()))?;
    // A `db` span, from the wrapped client: no attribute on the query.
    match db.execute(MARK_PROCESSED, &[&id]).await? {
        0 => Err(JobError::UnknownItem(id)),
        _ => Ok(()),
    }
}

/// `e` and its sources, `outer: inner: innermost` (a `tokio_postgres::Error` alone says only
/// "error connecting to server").
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

async fn consume(max_messages: Option<u64>) -> Result<(), Box<dyn std::error::Error>> {
    let hint = "is it running? (README, \"Real services\")";
    let database_url = env_or("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test");
    let amqp_url = env_or("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f");
    let queue = ShortString::try_new(env_or("JOBS_QUEUE", "item-jobs"))?;

    let config: tokio_postgres::Config = database_url
        .parse()
        .map_err(|e| format!("DATABASE_URL: {e}"))?;
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("PostgreSQL (DATABASE_URL): {}; {hint}", chain(&e)))?;
    // The one line of set-up: every statement through `db` is a `db` span.
    let db = insights_runtime::postgres::Client::new(client, &config);
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("PostgreSQL connection closed: {e}");
        }
    });
    db.batch_execute(CREATE_ITEMS)
        .await
        .map_err(|e| format!("PostgreSQL: creating the items table: {}", chain(&e)))?;

    let amqp = lapin::Connection::connect(&amqp_url, lapin::ConnectionProperties::default())
        .await
        .map_err(|e| format!("RabbitMQ (AMQP_URL): {}; {hint}", chain(&e)))?;
    let channel = amqp.create_channel().await?;
    channel.basic_qos(1, BasicQosOptions::default()).await?;
    channel
        .queue_declare(
            queue.clone(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        )
        .await?;
    let mut consumer = channel
        .basic_consume(
            queue.clone(),
            ShortString::default(), // a tag chosen by the broker
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    println!("consuming {queue}");

    let mut handled = 0u64;
    while max_messages.is_none_or(|max| handled < max) {
        let Some(delivery) = consumer.next().await else {
            break;
        };
        let delivery = delivery?;
        // The AMQP headers as they are: `FieldTable` is a carrier (the runtime's `lapin` feature).
        let no_headers = FieldTable::default();
        let headers = delivery
            .properties
            .headers()
            .as_ref()
            .unwrap_or(&no_headers);
        let message_id = delivery
            .properties
            .message_id()
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        let attempt = u32::from(delivery.redelivered);
        // Each job on a hub of its own, as sentry asks of concurrent work.
        let hub = Arc::new(sentry::Hub::new_from_top(sentry::Hub::current()));
        let outcome = handle_job(
            &db,
            queue.as_str(),
            headers,
            &message_id,
            &delivery.data,
            attempt,
        )
        .bind_hub(hub)
        .await;
        match &outcome {
            Ok(()) => {
                delivery.ack(BasicAckOptions::default()).await?;
                println!("processed {message_id}");
            }
            Err(e) => {
                let requeue = !delivery.redelivered;
                delivery
                    .nack(BasicNackOptions {
                        requeue,
                        ..BasicNackOptions::default()
                    })
                    .await?;
                println!("failed {message_id}: {e} (requeued: {requeue})");
            }
        }
        handled += 1;
    }
    Ok(())
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    // Before the runtime starts, so that every worker thread's hub sees the client.
    let settings = Settings::from_env(insights_runtime::release!())?.console_without_dsn(true);
    let _sentry = setup::init(settings);

    let max_messages = match std::env::var("WORKER_MAX_MESSAGES") {
        Ok(n) => Some(
            n.trim()
                .parse::<u64>()
                .map_err(|e| format!("WORKER_MAX_MESSAGES={n:?}: {e}"))?,
        ),
        Err(_) => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(consume(max_messages))
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("worker: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
