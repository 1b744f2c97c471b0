//! A producer and a consumer of jobs on a NATS JetStream stream, one process each: the consumer's
//! transactions continue the trace of the producer that published each job.
//!
//! ```text
//! nats-server -js &                                                      # NATS with JetStream
//! cargo run --features services --example nats_peer -- consume           # runs until Ctrl-C
//! cargo run --features services --example nats_peer -- produce job-1 bad-2
//! NATS_ROLE=produce NATS_JOBS=job-1,bad-2 cargo run --features services --example nats_peer
//! ```
//!
//! `produce <id>...` publishes one job per id, each with a `queue.publish` span (from
//! `insights_runtime::nats::tracker()`) in an `enqueue-jobs` transaction, the trace written into
//! the job's NATS headers beside its `Nats-Msg-Id`; it creates the stream if it is missing.
//! `consume` reads the stream through a durable pull consumer with explicit acknowledgements:
//! each job is a `queue.task` transaction continuing the producer's trace, with a
//! `queue.process` span from `insights_runtime::nats::process(&message)` (the stream, the id,
//! the body size, the retry count from JetStream's delivery count, the time in the stream). A
//! job whose id starts with `bad` fails: it is `internal_error`, negatively acknowledged once
//! (JetStream redelivers it at once), then terminated.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `NATS_ROLE`, `NATS_JOBS` | the role and the job ids (comma-separated) when no arguments are given | |
//! | `NATS_URL` | the NATS server | `nats://127.0.0.1:4222` |
//! | `NATS_STREAM` | the stream (also the spans' destination) | `JOBS` |
//! | `NATS_SUBJECT` | the subject jobs are published on (the stream's, when it is created here) | `jobs.new` |
//! | `NATS_CONSUMER` | the durable consumer's name | `job-worker` |
//! | `NATS_MAX_MESSAGES` | `consume`: exit after this many deliveries (tests) | unset: run until stopped |
//! | `SENTRY_DSN`, ... | as for [`insights_runtime::setup`]; without a DSN the console sink prints the span trees | |
//!
//! `consume` prints `consuming <stream>` once its consumer exists and a line per delivery;
//! `produce` prints `published <id> <stream sequence>` per job.

use std::sync::Arc;

use async_nats::jetstream::consumer::{pull, AckPolicy};
use async_nats::jetstream::{self, stream, AckKind};
use async_nats::HeaderMap;
use futures::StreamExt;
use insights_runtime::nats;
use insights_runtime::setup::{self, Settings};
use insights_runtime::traced;
use sentry::SentryFutureExt;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Config {
    url: String,
    stream: String,
    subject: String,
    consumer: String,
}

impl Config {
    fn from_env() -> Self {
        Config {
            url: env_or("NATS_URL", "nats://127.0.0.1:4222"),
            stream: env_or("NATS_STREAM", "JOBS"),
            subject: env_or("NATS_SUBJECT", "jobs.new"),
            consumer: env_or("NATS_CONSUMER", "job-worker"),
        }
    }

    async fn jetstream(&self) -> Result<(jetstream::Context, jetstream::stream::Stream), Error> {
        let client = async_nats::connect(self.url.as_str()).await.map_err(|e| {
            format!(
                "NATS (NATS_URL={}): {e}; is it running, with JetStream (`nats-server -js`)?",
                self.url
            )
        })?;
        let js = jetstream::new(client);
        let stream = js
            .get_or_create_stream(stream::Config {
                name: self.stream.clone(),
                subjects: vec![self.subject.clone()],
                ..stream::Config::default()
            })
            .await
            .map_err(|e| format!("JetStream stream {}: {e}", self.stream))?;
        Ok((js, stream))
    }
}

/// Publishes one job: the span's destination is the stream, so that Sentry's Queues page pairs
/// it with the consumer's; the trace travels in the headers, beside the job's `Nats-Msg-Id`.
async fn publish(js: &jetstream::Context, config: &Config, id: &str) -> Result<u64, Error> {
    let body = format!(r#"{{"job":"{id}"}}"#);
    let published = nats::tracker()
        .publish(&config.stream)
        .message_id(id)
        .body_size(body.len())
        .start_detached();
    let mut headers = HeaderMap::new();
    headers.insert(nats::MESSAGE_ID, id);
    published.inject(&mut headers);
    let ack = async {
        js.publish_with_headers(config.subject.clone(), headers, body.into())
            .await?
            .await
    }
    .await;
    published.finish_with_outcome(&ack);
    Ok(ack?.sequence)
}

/// The producer's transaction: every job's `queue.publish` span is a child of it.
#[traced(transaction = "enqueue-jobs", op = "task")]
async fn enqueue(js: &jetstream::Context, config: &Config, ids: &[String]) -> Result<(), Error> {
    for id in ids {
        let sequence = publish(js, config, id).await?;
        println!("published {id} {sequence}");
    }
    Ok(())
}

async fn produce(ids: &[String]) -> Result<(), Error> {
    let config = Config::from_env();
    let (js, _) = config.jetstream().await?;
    enqueue(&js, &config, ids).await
}

/// Why a job failed.
#[derive(Debug)]
struct JobFailed(String);

impl std::fmt::Display for JobFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "job {} failed", self.0)
    }
}

impl std::error::Error for JobFailed {}

/// Handles one job; runs under the consumer's `queue.process` span.
async fn handle(body: &[u8]) -> Result<String, JobFailed> {
    let text = String::from_utf8_lossy(body);
    let id = text
        .parse::<sentry::protocol::Value>()
        .ok()
        .and_then(|job| job.get("job").and_then(|id| id.as_str()).map(str::to_owned))
        .ok_or_else(|| JobFailed(text.to_string()))?;
    if id.starts_with("bad") {
        Err(JobFailed(id))
    } else {
        Ok(id)
    }
}

async fn consume(max_messages: Option<u64>) -> Result<(), Error> {
    let config = Config::from_env();
    let (_, stream) = config.jetstream().await?;
    let consumer = stream
        .get_or_create_consumer(
            &config.consumer,
            pull::Config {
                durable_name: Some(config.consumer.clone()),
                ack_policy: AckPolicy::Explicit,
                ..pull::Config::default()
            },
        )
        .await
        .map_err(|e| format!("JetStream consumer {}: {e}", config.consumer))?;
    let mut messages = consumer.messages().await?;
    println!("consuming {}", config.stream);

    let mut handled = 0u64;
    while max_messages.is_none_or(|max| handled < max) {
        let Some(message) = messages.next().await else {
            break;
        };
        let message = message?;
        // The one line of instrumentation: the spans, prefilled from the message. Each job on a
        // hub of its own, as sentry asks of concurrent work.
        let hub = Arc::new(sentry::Hub::new_from_top(sentry::Hub::current()));
        let outcome = nats::process(&message)
            .run(handle(&message.payload))
            .bind_hub(hub)
            .await;
        let id = nats::message_id(&message).unwrap_or_default().to_owned();
        match outcome {
            Ok(_) => {
                message.ack().await?;
                println!("processed {id}");
            }
            Err(e) => {
                // Once more, then never again.
                let redeliver = nats::retry_count(&message) == 0;
                let ack = if redeliver {
                    AckKind::Nak(None)
                } else {
                    AckKind::Term
                };
                message.ack_with(ack).await?;
                println!("failed {id}: {e} (redelivered: {redeliver})");
            }
        }
        handled += 1;
    }
    Ok(())
}

fn run() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let role = args.next().unwrap_or_else(|| env_or("NATS_ROLE", ""));
    let mut ids: Vec<String> = args.collect();
    if ids.is_empty() {
        ids = env_or("NATS_JOBS", "")
            .split(',')
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .collect();
    }
    // Before the runtime starts, so that every worker thread's hub sees the client.
    let settings = Settings::from_env(insights_runtime::release!())?.console_without_dsn(true);
    let _sentry = setup::init(settings);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match role.as_str() {
        "produce" if !ids.is_empty() => runtime.block_on(produce(&ids)),
        "consume" => {
            let max = match std::env::var("NATS_MAX_MESSAGES") {
                Ok(n) => Some(
                    n.trim()
                        .parse::<u64>()
                        .map_err(|e| format!("NATS_MAX_MESSAGES={n:?}: {e}"))?,
                ),
                Err(_) => None,
            };
            runtime.block_on(consume(max))
        }
        _ => Err("usage: nats_peer consume | nats_peer produce <id>...".into()),
    }
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nats_peer: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
