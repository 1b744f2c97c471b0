//! NATS JetStream against a real server (`NATS_URL`, default `nats://127.0.0.1:4222`, started
//! with JetStream: `nats-server -js`): the trace written into `async_nats::HeaderMap` by the
//! tracker and by `#[instrument_queue_publish]`, read back by `insights_runtime::nats::process`
//! and by `#[instrument_queue_process]` (on the headers, and on the message itself), the retry
//! count from JetStream's delivery count after a `Nak`, the message id from `Nats-Msg-Id` or the
//! stream sequence, nothing recorded without Sentry, concurrent producers under their own
//! parents, and a producer and a consumer in two processes (the `nats_peer` example) sending
//! their envelopes to a local Sentry endpoint.
//!
//! ```text
//! cargo build --features services --examples
//! cargo test --features services --test integration_nats
//! ```
//!
//! NATS must be running: every test fails without it, naming it and the address tried. Each
//! test works on a stream and subjects of its own (random suffixes), deleted at its end.

mod common;
#[allow(dead_code, reason = "this suite reads envelopes, it sends no requests")]
#[path = "services/endpoint.rs"]
mod endpoint;
#[allow(dead_code, reason = "this suite uses only the NATS helpers")]
#[path = "services/env.rs"]
mod env;
#[allow(dead_code, reason = "the peers exit by themselves")]
#[path = "services/process.rs"]
mod process;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy};
use async_nats::jetstream::context::PublishError;
use async_nats::jetstream::{self, stream, AckKind};
use async_nats::HeaderMap;
use common::{assert_data, capture, in_transaction, root_id, trace};
use endpoint::{transactions, SentryEndpoint};
use env::{runtime, unique};
use futures::StreamExt;
use insights_runtime::nats;
use insights_runtime::queue::Carrier;
use insights_runtime::{instrument_queue_process, instrument_queue_publish};
use process::Running;
use sentry::protocol::{Span, SpanStatus, Transaction, Value};
use sentry::{Hub, SentryFutureExt, TransactionContext};

// ---------------------------------------------------------------------------------------------
// Helpers

fn s(value: &str) -> Value {
    Value::from(value)
}

/// A `queue.publish` span, child of `producer`'s root, that sent a message of `body_size`
/// bytes (with `id`, if it had one) to `stream`.
fn assert_publish(
    publish: &Span,
    producer: &Transaction<'_>,
    stream: &str,
    id: Option<&str>,
    body_size: usize,
) {
    assert_eq!(publish.op.as_deref(), Some("queue.publish"));
    assert_eq!(publish.description.as_deref(), Some(stream));
    assert_eq!(publish.parent_span_id, Some(root_id(producer)));
    assert_eq!(publish.status, Some(SpanStatus::Ok));
    let mut data = vec![
        ("messaging.destination.name", s(stream)),
        ("messaging.system", s("nats")),
        ("messaging.message.body.size", Value::from(body_size)),
    ];
    if let Some(id) = id {
        data.push(("messaging.message.id", s(id)));
    }
    assert_data(publish, &data);
}

/// A stream and its subject, of one test; the stream is deleted at the end (also when the
/// test fails; errors there are ignored).
struct Scratch {
    js: jetstream::Context,
    stream: String,
    subject: String,
}

impl Scratch {
    fn new(rt: &tokio::runtime::Runtime) -> Self {
        let suffix = unique();
        let (stream, subject) = (
            format!("insights_{suffix}"),
            format!("insights.{suffix}.jobs"),
        );
        let js = rt.block_on(async {
            let js = jetstream::new(env::nats().await);
            js.create_stream(stream::Config {
                name: stream.clone(),
                subjects: vec![subject.clone()],
                ..stream::Config::default()
            })
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "creating the JetStream stream {stream} at NATS_URL={}: {e} (is JetStream \
                     on? `nats-server -js`)",
                    env::nats_url()
                )
            });
            js
        });
        Scratch {
            js,
            stream,
            subject,
        }
    }

    /// The messages of a durable pull consumer with explicit acknowledgements.
    async fn messages(&self) -> pull::Stream {
        let consumer = self
            .js
            .get_stream(&self.stream)
            .await
            .expect("the stream")
            .create_consumer(pull::Config {
                durable_name: Some("test".to_owned()),
                ack_policy: AckPolicy::Explicit,
                ..pull::Config::default()
            })
            .await
            .expect("a pull consumer");
        consumer.messages().await.expect("its messages")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        let stream = self.stream.clone();
        rt.block_on(async move {
            let cleanup = async {
                if let Ok(client) = async_nats::connect(env::nats_url().as_str()).await {
                    let _ = jetstream::new(client).delete_stream(&stream).await;
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(10), cleanup).await;
        });
    }
}

/// The next delivery, within 10 s.
async fn next(messages: &mut pull::Stream) -> jetstream::Message {
    tokio::time::timeout(Duration::from_secs(10), messages.next())
        .await
        .expect("a delivery within 10 s")
        .expect("the stream goes on")
        .expect("a message")
}

/// The `queue.process` span of a consumer's transaction, checked against the producer's
/// `queue.publish` span: the transaction continues the producer's trace, its parent is the
/// publish span, its name the destination; the span is its child.
fn continued<'a>(
    consumer: &'a Transaction<'_>,
    producer: &Transaction<'_>,
    publish: &Span,
) -> &'a Span {
    let ctx = trace(consumer);
    assert_eq!(ctx.op.as_deref(), Some("queue.task"));
    assert_eq!(
        ctx.trace_id,
        trace(producer).trace_id,
        "the producer's trace"
    );
    assert_eq!(
        ctx.parent_span_id,
        Some(publish.span_id),
        "the parent is the publish span"
    );
    assert_eq!(consumer.spans.len(), 1, "{:#?}", consumer.spans);
    let process = &consumer.spans[0];
    assert_eq!(process.op.as_deref(), Some("queue.process"));
    assert_eq!(process.description, publish.description);
    assert_eq!(consumer.name, publish.description);
    assert_eq!(process.parent_span_id, Some(ctx.span_id));
    assert_eq!(process.trace_id, ctx.trace_id);
    process
}

/// The receive latency: a JSON integer of milliseconds, under a minute here.
fn latency(span: &Span) -> Value {
    let value = span.data["messaging.message.receive.latency"].clone();
    let ms = value
        .as_u64()
        .expect("the receive latency is a JSON integer");
    assert!(ms < 60_000, "latency {ms} ms");
    value
}

/// The transactions whose `queue.process` span has message id `id`.
fn processing<'a>(txs: &'a [Transaction<'static>], id: &str) -> Vec<&'a Transaction<'static>> {
    txs.iter()
        .filter(|t| {
            t.spans.iter().any(|s| {
                s.op.as_deref() == Some("queue.process")
                    && s.data.get("messaging.message.id") == Some(&Value::from(id))
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The tracker and `nats::process`

#[test]
fn the_tracker_and_nats_process_carry_the_trace_through_jetstream() {
    let rt = runtime();
    let scratch = Scratch::new(&rt);
    let id = format!("job-{}", unique());
    let body = br#"{"job":1}"#;
    // Two messages: one with `Nats-Msg-Id`, one without (its id is its stream sequence).
    let mut sequences = Vec::new();
    let producers = capture(|| {
        in_transaction("enqueue", || {
            rt.block_on(async {
                for (message_id, body) in [(Some(id.as_str()), &body[..]), (None, &b"{}"[..])] {
                    let queue = nats::tracker();
                    let mut publish = queue.publish(&scratch.stream).body_size(body.len());
                    let mut headers = HeaderMap::new();
                    if let Some(message_id) = message_id {
                        publish = publish.message_id(message_id);
                        headers.insert(nats::MESSAGE_ID, message_id);
                    }
                    let published = publish.start_detached();
                    published.inject(&mut headers);
                    let ack = scratch
                        .js
                        .publish_with_headers(
                            scratch.subject.clone(),
                            headers,
                            body.to_vec().into(),
                        )
                        .await
                        .expect("publish")
                        .await;
                    published.finish_with_outcome(&ack);
                    sequences.push(ack.expect("acknowledged").sequence);
                }
            });
        });
    });
    let sequence = sequences[1].to_string();

    // The consumer: the first delivery of the first message fails and is `Nak`ed, JetStream
    // delivers it again.
    let consumers = capture(|| {
        rt.block_on(async {
            let mut messages = scratch.messages().await;
            let mut failed_once = false;
            for _ in 0..3 {
                let message = next(&mut messages).await;
                let fail = nats::message_id(&message) == Some(id.as_str()) && !failed_once;
                let outcome = nats::process(&message)
                    .run(async move {
                        if fail {
                            Err("the job failed")
                        } else {
                            Ok(())
                        }
                    })
                    .await;
                assert_eq!(outcome.is_err(), fail, "the outcome is passed on");
                failed_once |= fail;
                let ack = if fail {
                    AckKind::Nak(None)
                } else {
                    AckKind::Ack
                };
                message.ack_with(ack).await.expect("ack");
            }
        });
    });

    assert_eq!(producers.len(), 1);
    let producer = &producers[0];
    assert_eq!(producer.spans.len(), 2, "{:#?}", producer.spans);
    let (publish_id, publish_seq) = (&producer.spans[0], &producer.spans[1]);
    assert_publish(publish_id, producer, &scratch.stream, Some(&id), body.len());
    assert_publish(publish_seq, producer, &scratch.stream, None, 2);

    assert_eq!(consumers.len(), 3, "{consumers:#?}");
    let mut attempts: Vec<(Value, Option<SpanStatus>)> = processing(&consumers, &id)
        .into_iter()
        .map(|consumer| {
            let process = continued(consumer, producer, publish_id);
            assert_eq!(
                trace(consumer).status,
                process.status,
                "the same status on both"
            );
            let retries = process.data["messaging.message.retry.count"].clone();
            assert_data(
                process,
                &[
                    ("messaging.destination.name", s(&scratch.stream)),
                    ("messaging.system", s("nats")),
                    ("messaging.message.id", s(&id)),
                    ("messaging.message.body.size", Value::from(body.len())),
                    ("messaging.message.retry.count", retries.clone()),
                    ("messaging.message.receive.latency", latency(process)),
                ],
            );
            (retries, process.status)
        })
        .collect();
    attempts.sort_by_key(|(retries, _)| retries.as_u64());
    assert_eq!(
        attempts,
        [
            (Value::from(0), Some(SpanStatus::InternalError)),
            (Value::from(1), Some(SpanStatus::Ok)),
        ]
    );

    let by_sequence = processing(&consumers, &sequence);
    assert_eq!(
        by_sequence.len(),
        1,
        "the id is the stream sequence {sequence}"
    );
    let process = continued(by_sequence[0], producer, publish_seq);
    assert_eq!(process.status, Some(SpanStatus::Ok));
    assert_data(
        process,
        &[
            ("messaging.destination.name", s(&scratch.stream)),
            ("messaging.system", s("nats")),
            ("messaging.message.id", s(&sequence)),
            ("messaging.message.body.size", Value::from(2)),
            ("messaging.message.retry.count", Value::from(0)),
            ("messaging.message.receive.latency", latency(process)),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// The attributes

/// The producer: the attribute writes the trace into `headers`, which the body then sends.
#[instrument_queue_publish(
    destination = "jobs",
    system = "nats",
    headers_param = "headers",
    message_id_param = "id",
    body_param = "body"
)]
async fn publish_job(
    js: &jetstream::Context,
    subject: &str,
    headers: &mut HeaderMap,
    id: &str,
    body: &[u8],
) -> Result<u64, PublishError> {
    headers.insert(nats::MESSAGE_ID, id);
    let ack = js
        .publish_with_headers(subject.to_owned(), headers.clone(), body.to_vec().into())
        .await?
        .await?;
    Ok(ack.sequence)
}

/// A consumer over the message's headers, with the retry count from `nats::retry_count`.
#[instrument_queue_process(
    destination = "jobs",
    system = "nats",
    headers_param = "headers",
    message_id_param = "id",
    body_param = "body",
    retry_count_param = "attempt"
)]
async fn handle_job(
    headers: &HeaderMap,
    id: &str,
    body: &[u8],
    attempt: u64,
) -> Result<(), String> {
    let _ = (headers, id, body);
    if attempt == 0 {
        Err("the first attempt fails".to_owned())
    } else {
        Ok(())
    }
}

/// A consumer over the JetStream message itself: its headers and its delivery count.
#[instrument_queue_process(
    destination = "jobs",
    system = "nats",
    headers_param = "message",
    retry_count_param = "message"
)]
async fn handle_message(message: &jetstream::Message) -> Result<usize, String> {
    Ok(message.payload.len())
}

#[test]
fn the_attributes_carry_the_trace_in_nats_headers() {
    let rt = runtime();
    let scratch = Scratch::new(&rt);
    let id = format!("attr-{}", unique());
    let body = b"{\"job\":2}";
    let mut written = HeaderMap::new();
    let producers = capture(|| {
        in_transaction("enqueue", || {
            rt.block_on(publish_job(
                &scratch.js,
                &scratch.subject,
                &mut written,
                &id,
                body,
            ))
            .expect("published");
        });
    });
    // What the attribute wrote, beside the body's own header.
    let mut names: Vec<String> = written.iter().map(|(name, _)| name.to_string()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "Nats-Msg-Id",
            "baggage",
            "sentry-task-enqueued-time",
            "sentry-trace"
        ]
    );

    let consumers = capture(|| {
        rt.block_on(async {
            let mut messages = scratch.messages().await;
            // First delivery: over the headers; it fails and is redelivered.
            let message = next(&mut messages).await;
            let none = HeaderMap::new();
            let outcome = handle_job(
                message.headers.as_ref().unwrap_or(&none),
                nats::message_id(&message).unwrap_or_default(),
                &message.payload,
                nats::retry_count(&message),
            )
            .await;
            assert_eq!(outcome, Err("the first attempt fails".to_owned()));
            message.ack_with(AckKind::Nak(None)).await.expect("nak");
            // Second: over the message.
            let message = next(&mut messages).await;
            assert_eq!(handle_message(&message).await, Ok(body.len()));
            message.ack().await.expect("ack");
        });
    });

    assert_eq!(producers.len(), 1);
    let producer = &producers[0];
    assert_eq!(producer.spans.len(), 1);
    let publish = &producer.spans[0];
    assert_eq!(publish.op.as_deref(), Some("queue.publish"));
    assert_eq!(publish.description.as_deref(), Some("jobs"));
    assert_eq!(publish.parent_span_id, Some(root_id(producer)));
    assert_eq!(publish.status, Some(SpanStatus::Ok));
    assert_data(
        publish,
        &[
            ("messaging.destination.name", s("jobs")),
            ("messaging.system", s("nats")),
            ("messaging.message.id", s(&id)),
            ("messaging.message.body.size", Value::from(body.len())),
        ],
    );
    // The trace in the headers is the publish span's.
    assert_eq!(
        written.header("sentry-trace"),
        Some(format!("{}-{}-1", publish.trace_id, publish.span_id).as_str())
    );

    assert_eq!(consumers.len(), 2, "{consumers:#?}");
    let first = continued(&consumers[0], producer, publish);
    assert_eq!(first.status, Some(SpanStatus::InternalError));
    assert_eq!(trace(&consumers[0]).status, Some(SpanStatus::InternalError));
    assert_data(
        first,
        &[
            ("messaging.destination.name", s("jobs")),
            ("messaging.system", s("nats")),
            ("messaging.message.id", s(&id)),
            ("messaging.message.body.size", Value::from(body.len())),
            ("messaging.message.retry.count", Value::from(0)),
            ("messaging.message.receive.latency", latency(first)),
        ],
    );
    let second = continued(&consumers[1], producer, publish);
    assert_eq!(second.status, Some(SpanStatus::Ok));
    assert_eq!(trace(&consumers[1]).status, Some(SpanStatus::Ok));
    assert_data(
        second,
        &[
            ("messaging.destination.name", s("jobs")),
            ("messaging.system", s("nats")),
            ("messaging.message.retry.count", Value::from(1)),
            ("messaging.message.receive.latency", latency(second)),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// Without Sentry, and concurrent producers

/// A message published with no Sentry headers at all (by a producer that is not instrumented):
/// a consumer over the message itself still measures the time it spent in the stream, from
/// JetStream's own publish time.
#[test]
fn the_receive_latency_comes_from_jetstreams_publish_time() {
    let rt = runtime();
    let scratch = Scratch::new(&rt);
    rt.block_on(async {
        scratch
            .js
            .publish(scratch.subject.clone(), "{}".into())
            .await
            .expect("published")
            .await
            .expect("stored");
    });
    std::thread::sleep(Duration::from_millis(30));
    let consumers = capture(|| {
        rt.block_on(async {
            let mut messages = scratch.messages().await;
            let message = next(&mut messages).await;
            assert_eq!(message.header("sentry-task-enqueued-time"), None);
            let published = message.published_at().expect("JetStream's publish time");
            let info = message.info().expect("JetStream metadata");
            assert_eq!(published, std::time::SystemTime::from(info.published));
            assert_eq!(handle_message(&message).await, Ok(2));
            message.ack().await.expect("ack");
        });
    });
    assert_eq!(consumers.len(), 1);
    let process = consumers[0]
        .spans
        .iter()
        .find(|s| s.op.as_deref() == Some("queue.process"))
        .expect("a queue.process span");
    let waited = latency(process).as_u64().expect("an integer");
    assert!(
        waited >= 30,
        "{waited} ms in the stream, after a 30 ms wait"
    );
}

#[test]
fn nothing_is_recorded_or_written_without_sentry() {
    let rt = runtime();
    let scratch = Scratch::new(&rt);
    // No client on this thread's hub: the tracker and the attribute write no trace headers.
    assert!(Hub::current().client().is_none());
    let id = format!("off-{}", unique());
    let mut headers = HeaderMap::new();
    let sequence = rt
        .block_on(publish_job(
            &scratch.js,
            &scratch.subject,
            &mut headers,
            &id,
            b"{}",
        ))
        .expect("published");
    let published = nats::tracker().publish(&scratch.stream).start();
    let mut more = HeaderMap::new();
    published.inject(&mut more);
    drop(published);
    assert!(more.is_empty());
    rt.block_on(async {
        let mut messages = scratch.messages().await;
        let message = next(&mut messages).await;
        // Only the body's own header travelled.
        let headers = message.headers.as_ref().expect("headers");
        assert_eq!(headers.iter().count(), 1);
        assert_eq!(headers.header("nats-msg-id"), Some(id.as_str()));
        let guard = nats::process(&message).start();
        assert!(!guard.is_recording());
        drop(guard);
        assert_eq!(handle_message(&message).await, Ok(2));
        assert_eq!(nats::message_id(&message), Some(id.as_str()));
        assert_eq!(nats::destination(&message), scratch.stream);
        assert_eq!(nats::retry_count(&message), 0);
        message.ack().await.expect("ack");
    });
    assert!(sequence >= 1);
}

#[test]
fn concurrent_producers_publish_under_their_own_parents() {
    let rt = runtime();
    let scratch = Scratch::new(&rt);
    let ids: Vec<String> = (0..2).map(|n| format!("req{n}-{}", unique())).collect();
    let written = std::sync::Mutex::new(Vec::new());
    let txs = capture(|| {
        rt.block_on(async {
            // Two requests, each on a hub of its own with its transaction current, publishing
            // at the same time.
            let requests = ids.iter().map(|id| {
                let hub = Arc::new(Hub::new_from_top(Hub::current()));
                let (js, subject, written) = (&scratch.js, &scratch.subject, &written);
                async move {
                    let tx = sentry::start_transaction(TransactionContext::new(id, "http.server"));
                    sentry::configure_scope(|scope| scope.set_span(Some(tx.clone().into())));
                    let mut headers = HeaderMap::new();
                    publish_job(js, subject, &mut headers, id, b"{}")
                        .await
                        .expect("published");
                    written.lock().unwrap().push((id.clone(), headers));
                    sentry::configure_scope(|scope| scope.set_span(None));
                    tx.finish();
                }
                .bind_hub(hub)
            });
            futures::future::join_all(requests).await;
        });
    });
    assert_eq!(txs.len(), 2);
    let written = written.into_inner().unwrap();
    for tx in &txs {
        let name = tx.name.as_deref().expect("a name");
        assert_eq!(tx.spans.len(), 1, "{name}: {:#?}", tx.spans);
        let publish = &tx.spans[0];
        assert_eq!(publish.parent_span_id, Some(root_id(tx)), "{name}");
        assert_eq!(publish.data["messaging.message.id"], s(name));
        let (_, headers) = written
            .iter()
            .find(|(id, _)| id == name)
            .expect("its headers");
        assert_eq!(
            headers.header("sentry-trace"),
            Some(format!("{}-{}-1", trace(tx).trace_id, publish.span_id).as_str()),
            "{name} carries its own trace"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Two processes

fn peer_env(
    endpoint: &SentryEndpoint,
    scratch: &Scratch,
    role: &str,
    release: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("SENTRY_DSN", endpoint.dsn()),
        ("SENTRY_TRACES_SAMPLE_RATE", "1".to_owned()),
        ("SENTRY_RELEASE", release.to_owned()),
        ("NATS_URL", env::nats_url()),
        ("NATS_STREAM", scratch.stream.clone()),
        ("NATS_SUBJECT", scratch.subject.clone()),
        ("NATS_CONSUMER", "peer".to_owned()),
        ("NATS_ROLE", role.to_owned()),
    ]
}

#[test]
fn a_consumer_in_another_process_continues_the_producers_trace() {
    let rt = runtime();
    let scratch = Scratch::new(&rt);
    let endpoint = SentryEndpoint::start();
    let (good, bad) = (format!("job-{}", unique()), format!("bad-{}", unique()));

    // Three deliveries: the good job, the bad one and its redelivery.
    let mut env = peer_env(&endpoint, &scratch, "consume", "nats-consumer@1.0.0");
    env.push(("NATS_MAX_MESSAGES", "3".to_owned()));
    let mut consumer = Running::start("nats_peer", &env);
    assert_eq!(
        consumer.wait_line("consuming ", Duration::from_secs(20)),
        scratch.stream
    );
    let mut env = peer_env(&endpoint, &scratch, "produce", "nats-producer@1.0.0");
    env.push(("NATS_JOBS", format!("{good},{bad}")));
    let mut producer = Running::start("nats_peer", &env);
    assert!(producer.wait_exit(Duration::from_secs(30)).success());
    assert!(consumer.wait_exit(Duration::from_secs(30)).success());
    let published: Vec<String> = producer.stdout_lines();
    assert_eq!(published.len(), 2, "{published:?}");
    assert!(published[0].starts_with(&format!("published {good} ")));
    assert!(published[1].starts_with(&format!("published {bad} ")));
    assert_eq!(
        consumer.stdout_lines()[1..],
        [
            format!("processed {good}"),
            format!("failed {bad}: job {bad} failed (redelivered: true)"),
            format!("failed {bad}: job {bad} failed (redelivered: false)"),
        ]
    );

    let received = endpoint.wait_for("four transactions", Duration::from_secs(10), |r| {
        let txs = transactions(r);
        (txs.len() >= 4).then_some(txs)
    });
    assert_eq!(received.len(), 4, "{received:#?}");
    let producer = received
        .iter()
        .find(|t| t.name.as_deref() == Some("enqueue-jobs"))
        .expect("the producer's transaction");
    assert_eq!(trace(producer).op.as_deref(), Some("task"));
    assert_eq!(trace(producer).status, Some(SpanStatus::Ok));
    assert_eq!(producer.release.as_deref(), Some("nats-producer@1.0.0"));
    let publish_of = |id: &str| {
        producer
            .spans
            .iter()
            .find(|span| span.data.get("messaging.message.id") == Some(&s(id)))
            .unwrap_or_else(|| panic!("no publish span for {id}: {:#?}", producer.spans))
    };
    for id in [&good, &bad] {
        let body_size = format!(r#"{{"job":"{id}"}}"#).len();
        assert_publish(
            publish_of(id),
            producer,
            &scratch.stream,
            Some(id),
            body_size,
        );
    }

    let check = |consumer: &Transaction<'_>, id: &str, retries: u64, status: SpanStatus| {
        let publish = publish_of(id);
        let process = continued(consumer, producer, publish);
        assert_eq!(consumer.release.as_deref(), Some("nats-consumer@1.0.0"));
        assert_eq!(process.status, Some(status));
        assert_eq!(
            trace(consumer).status,
            Some(status),
            "the transaction's status too"
        );
        assert_data(
            process,
            &[
                ("messaging.destination.name", s(&scratch.stream)),
                ("messaging.system", s("nats")),
                ("messaging.message.id", s(id)),
                (
                    "messaging.message.body.size",
                    publish.data["messaging.message.body.size"].clone(),
                ),
                ("messaging.message.retry.count", Value::from(retries)),
                ("messaging.message.receive.latency", latency(process)),
            ],
        );
    };
    let done = processing(&received, &good);
    assert_eq!(done.len(), 1);
    check(done[0], &good, 0, SpanStatus::Ok);
    let mut failed = processing(&received, &bad);
    assert_eq!(failed.len(), 2);
    failed.sort_by_key(|t| t.spans[0].data["messaging.message.retry.count"].as_u64());
    check(failed[0], &bad, 0, SpanStatus::InternalError);
    check(failed[1], &bad, 1, SpanStatus::InternalError);

    // Every envelope names its trace, the producer's, with the producer's sampling context
    // (the consumer has a release of its own, the DSC stays the head's).
    endpoint.with_received(|received| {
        for envelope in received {
            if envelope.transactions().is_empty() {
                continue;
            }
            let header = &envelope.header["trace"];
            assert_eq!(
                header["trace_id"],
                s(&trace(producer).trace_id.to_string()),
                "{header:#}"
            );
            assert_eq!(header["public_key"], "public");
            assert_eq!(header["release"], "nats-producer@1.0.0", "{header:#}");
        }
    });
}
