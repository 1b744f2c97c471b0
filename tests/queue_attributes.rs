//! `#[instrument_queue_publish]` and `#[instrument_queue_process]`.

mod common;

use std::collections::HashMap;

use common::{capture, in_transaction, trace};
use futures::executor::block_on;
use insights_runtime::{instrument_queue_process, instrument_queue_publish};
use sentry::protocol::{SpanStatus, Transaction, Value};

#[instrument_queue_publish(
    destination = "emails",
    system = "nats",
    headers_param = "headers",
    message_id_param = "id",
    body_param = "body",
    transaction = "signup"
)]
fn publish(headers: &mut HashMap<String, String>, id: u64, body: &str) -> Result<(), String> {
    assert!(
        headers.contains_key("sentry-trace"),
        "headers are written before the body runs"
    );
    let _ = (id, body);
    Ok(())
}

#[instrument_queue_publish(
    destination = "emails",
    system = "nats",
    headers_param = "headers",
    transaction = "signup"
)]
async fn publish_async(headers: &mut Vec<(String, String)>) -> Result<(), String> {
    tokio::task::yield_now().await;
    assert!(headers.iter().any(|(k, _)| k == "baggage"));
    Ok(())
}

#[instrument_queue_process(
    destination = "emails",
    system = "nats",
    headers_param = "headers",
    message_id_param = "id",
    body_param = "body",
    retry_count_param = "attempt"
)]
async fn handle(
    headers: HashMap<String, String>,
    id: u64,
    body: Vec<u8>,
    attempt: i32,
) -> Result<usize, String> {
    let _ = (headers, id, attempt);
    tokio::task::yield_now().await;
    if body.is_empty() {
        return Err("empty".to_owned());
    }
    Ok(body.len())
}

#[instrument_queue_process(
    destination = "emails",
    system = "nats",
    headers_param = "headers",
    transaction = "email worker"
)]
fn handle_sync(headers: &[(&str, &str)]) {
    let _ = headers;
}

fn by_name<'a>(txs: &'a [Transaction<'static>], name: &str) -> Vec<&'a Transaction<'static>> {
    txs.iter()
        .filter(|t| t.name.as_deref() == Some(name))
        .collect()
}

#[test]
fn producer_and_consumer_attributes_link_their_traces() {
    let mut sent_baggage = String::new();
    let mut first_baggage = String::new();
    let txs = capture(|| {
        let mut headers = HashMap::new();
        let mut pairs = Vec::new();
        in_transaction("signup", || {
            publish(&mut headers, 42, "hello").expect("published");
            first_baggage = headers.get("baggage").cloned().unwrap_or_default();
            block_on(publish_async(&mut pairs)).expect("published");
            sent_baggage = pairs
                .iter()
                .find(|(k, _)| k == "baggage")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
        });
        assert_eq!(
            block_on(handle(headers.clone(), 42, b"hello".to_vec(), 1)),
            Ok(5)
        );
        assert!(block_on(handle(headers.clone(), 42, Vec::new(), 2)).is_err());
        let borrowed: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        handle_sync(&borrowed);
    });
    let producer = by_name(&txs, "signup")[0];
    let publishes: Vec<_> = producer
        .spans
        .iter()
        .filter(|s| s.op.as_deref() == Some("queue.publish"))
        .collect();
    assert_eq!(publishes.len(), 2);
    let first = publishes[0];
    assert_eq!(first.description.as_deref(), Some("emails"));
    assert_eq!(
        first.data.get("messaging.message.id"),
        Some(&Value::from("42"))
    );
    assert_eq!(
        first.data.get("messaging.message.body.size"),
        Some(&Value::from(5))
    );
    assert_eq!(
        first.data.get("messaging.system"),
        Some(&Value::from("nats"))
    );

    let consumers = by_name(&txs, "emails");
    assert_eq!(consumers.len(), 2);
    for (consumer, (status, retries)) in consumers
        .iter()
        .zip([(SpanStatus::Ok, 1), (SpanStatus::InternalError, 2)])
    {
        let ctx = trace(consumer);
        assert_eq!(ctx.trace_id, trace(producer).trace_id);
        assert_eq!(ctx.parent_span_id, Some(first.span_id));
        assert_eq!(ctx.status, Some(status));
        let process = &consumer.spans[0];
        assert_eq!(process.op.as_deref(), Some("queue.process"));
        assert_eq!(process.status, Some(status));
        assert_eq!(
            process.data.get("messaging.message.id"),
            Some(&Value::from("42"))
        );
        assert_eq!(
            process.data.get("messaging.message.retry.count"),
            Some(&Value::from(retries))
        );
        assert!(process
            .data
            .get("messaging.message.receive.latency")
            .is_some_and(Value::is_u64));
    }
    let worker = by_name(&txs, "email worker")[0];
    assert!(
        sent_baggage.contains("sentry-transaction=signup"),
        "{sent_baggage}"
    );
    // The trace's DSC is frozen when it first leaves: both messages carry the same.
    assert_eq!(first_baggage, sent_baggage);
    assert_eq!(trace(worker).parent_span_id, Some(publishes[1].span_id));
}

// ---------------------------------------------------------------------------------------------
// The destination as an expression, evaluated once per call before the body.

/// Asserts that `span`'s data is exactly `expected`, once `messaging.message.receive.latency`
/// (a time, different on every run) is checked to be a whole number of milliseconds and left
/// out.
fn assert_data(span: &sentry::protocol::Span, expected: &[(&str, Value)]) {
    let mut data = span.data.clone();
    if let Some(latency) = data.remove("messaging.message.receive.latency") {
        assert!(latency.is_u64(), "latency {latency:?}");
    }
    let expected: std::collections::BTreeMap<String, Value> = expected
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    assert_eq!(
        data, expected,
        "data of {:?} {:?}",
        span.op, span.description
    );
}

/// The service's queue name, configured once.
const JOBS_QUEUE: &str = "item-jobs";

/// A producer whose queue comes from its configuration.
struct Jobs {
    queue: String,
}

impl Jobs {
    // A field, borrowed (not moved) from `&self`.
    #[instrument_queue_publish(
        destination = self.queue,
        system = "rabbitmq",
        headers_param = "headers",
        body_param = "body"
    )]
    fn publish(&self, headers: &mut HashMap<String, String>, body: &[u8]) -> Result<(), String> {
        assert!(headers.contains_key("sentry-trace"));
        let _ = body;
        Ok(())
    }

    // A method call, in an async fn; the producer's headers are written before the body.
    #[instrument_queue_publish(
        destination = self.queue.as_str(),
        system = "rabbitmq",
        headers_param = "headers",
        message_id_param = "id"
    )]
    async fn publish_async(
        &self,
        headers: &mut Vec<(String, String)>,
        id: u32,
    ) -> Result<(), String> {
        tokio::task::yield_now().await;
        assert!(headers.iter().any(|(k, _)| k == "sentry-trace"));
        let _ = id;
        Ok(())
    }

    /// The queue's name, as a new `String` (a temporary the expansion must keep alive).
    fn queue_name(&self) -> String {
        self.queue.clone()
    }
}

/// Settings passed by value: the destination borrows them, then the body takes them.
struct Settings {
    queue: String,
}

#[instrument_queue_publish(destination = settings.queue, system = "rabbitmq")]
fn publish_with(settings: Settings) -> Result<usize, String> {
    let taken = settings;
    Ok(taken.queue.len())
}

#[instrument_queue_publish(destination = jobs.queue_name(), system = "rabbitmq")]
async fn publish_named(jobs: Jobs) -> Result<usize, String> {
    tokio::task::yield_now().await;
    let taken = jobs;
    Ok(taken.queue.len())
}

// A path to a `const`.
#[instrument_queue_process(
    destination = JOBS_QUEUE,
    system = "rabbitmq",
    headers_param = "headers",
    retry_count_param = "attempt"
)]
async fn handle_job(headers: HashMap<String, String>, attempt: u32) -> Result<(), String> {
    tokio::task::yield_now().await;
    let _ = (headers, attempt);
    Ok(())
}

// A parameter, in a sync consumer with a transaction name of its own.
#[instrument_queue_process(
    destination = queue,
    system = "rabbitmq",
    headers_param = "headers",
    transaction = "jobs worker"
)]
fn handle_from(queue: &str, headers: &[(&str, &str)]) -> Result<(), String> {
    let _ = (queue, headers);
    Err("rejected".to_owned())
}

// The consumer's settings by value: borrowed for the name, then moved into the body.
#[instrument_queue_process(destination = settings.queue, system = "rabbitmq")]
async fn handle_with(settings: Settings) -> usize {
    tokio::task::yield_now().await;
    let taken = settings;
    taken.queue.len()
}

#[test]
fn a_destination_expression_names_the_spans_of_each_call() {
    let jobs = Jobs {
        queue: "jobs-eu".to_owned(),
    };
    let mut headers = HashMap::new();
    let mut pairs = Vec::new();
    let txs = capture(|| {
        in_transaction("enqueue", || {
            jobs.publish(&mut headers, b"{}").expect("published");
            block_on(jobs.publish_async(&mut pairs, 9)).expect("published");
            let settings = Settings {
                queue: "jobs-us".to_owned(),
            };
            assert_eq!(publish_with(settings), Ok(7));
            let other = Jobs {
                queue: "jobs-asia".to_owned(),
            };
            assert_eq!(block_on(publish_named(other)), Ok(9));
        });
        block_on(handle_job(headers.clone(), 2)).expect("handled");
        let borrowed: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert!(handle_from("jobs-dlq", &borrowed).is_err());
        let settings = Settings {
            queue: "jobs-local".to_owned(),
        };
        assert_eq!(block_on(handle_with(settings)), 10);
    });
    let producer = by_name(&txs, "enqueue")[0];
    let spans: Vec<_> = producer.spans.iter().collect();
    assert_eq!(spans.len(), 4, "{spans:#?}");
    let root = trace(producer).span_id;
    for (span, queue) in spans
        .iter()
        .zip(["jobs-eu", "jobs-eu", "jobs-us", "jobs-asia"])
    {
        assert_eq!(span.op.as_deref(), Some("queue.publish"));
        assert_eq!(span.description.as_deref(), Some(queue));
        assert_eq!(span.parent_span_id, Some(root));
        assert_eq!(span.status, Some(SpanStatus::Ok));
    }
    assert_data(
        spans[0],
        &[
            ("messaging.destination.name", Value::from("jobs-eu")),
            ("messaging.system", Value::from("rabbitmq")),
            ("messaging.message.body.size", Value::from(2)),
        ],
    );
    assert_data(
        spans[1],
        &[
            ("messaging.destination.name", Value::from("jobs-eu")),
            ("messaging.system", Value::from("rabbitmq")),
            ("messaging.message.id", Value::from("9")),
        ],
    );
    for (span, queue) in spans[2..].iter().zip(["jobs-us", "jobs-asia"]) {
        assert_data(
            span,
            &[
                ("messaging.destination.name", Value::from(queue)),
                ("messaging.system", Value::from("rabbitmq")),
            ],
        );
    }

    // The consumers: the transaction is named after the destination (unless named), and the
    // `queue.process` span inside is described by it.
    let consumer = by_name(&txs, JOBS_QUEUE)[0];
    assert_eq!(trace(consumer).trace_id, trace(producer).trace_id);
    assert_eq!(trace(consumer).parent_span_id, Some(spans[0].span_id));
    assert_eq!(trace(consumer).op.as_deref(), Some("queue.task"));
    let process = &consumer.spans[0];
    assert_eq!(consumer.spans.len(), 1);
    assert_eq!(process.op.as_deref(), Some("queue.process"));
    assert_eq!(process.description.as_deref(), Some(JOBS_QUEUE));
    assert_eq!(process.status, Some(SpanStatus::Ok));
    assert_eq!(process.parent_span_id, Some(trace(consumer).span_id));
    assert!(process
        .data
        .get("messaging.message.receive.latency")
        .is_some_and(Value::is_u64));
    assert_data(
        process,
        &[
            ("messaging.destination.name", Value::from(JOBS_QUEUE)),
            ("messaging.system", Value::from("rabbitmq")),
            ("messaging.message.retry.count", Value::from(2)),
        ],
    );

    let worker = by_name(&txs, "jobs worker")[0];
    assert_eq!(trace(worker).parent_span_id, Some(spans[1].span_id));
    assert_eq!(trace(worker).status, Some(SpanStatus::InternalError));
    let process = &worker.spans[0];
    assert_eq!(process.description.as_deref(), Some("jobs-dlq"));
    assert_eq!(process.status, Some(SpanStatus::InternalError));
    assert_data(
        process,
        &[
            ("messaging.destination.name", Value::from("jobs-dlq")),
            ("messaging.system", Value::from("rabbitmq")),
        ],
    );

    // No headers: a trace of its own, named after the destination.
    let local = by_name(&txs, "jobs-local")[0];
    assert_ne!(trace(local).trace_id, trace(producer).trace_id);
    assert_eq!(trace(local).parent_span_id, None);
    let process = &local.spans[0];
    assert_eq!(process.description.as_deref(), Some("jobs-local"));
    assert_data(
        process,
        &[
            ("messaging.destination.name", Value::from("jobs-local")),
            ("messaging.system", Value::from("rabbitmq")),
        ],
    );
    assert_eq!(txs.len(), 4);
}

#[test]
fn without_sentry_a_destination_expression_still_runs_once_and_the_body_too() {
    use std::cell::Cell;
    thread_local!(static READS: Cell<u32> = const { Cell::new(0) });
    fn counted(queue: &str) -> &str {
        READS.with(|r| r.set(r.get() + 1));
        queue
    }
    #[instrument_queue_publish(destination = counted(queue), system = "rabbitmq")]
    fn publish(queue: &str) -> Result<u8, String> {
        Ok(7)
    }
    #[instrument_queue_process(destination = counted(queue), system = "rabbitmq")]
    async fn process(queue: &str) -> u8 {
        let _ = queue;
        8
    }
    assert_eq!(publish("a"), Ok(7));
    assert_eq!(block_on(process("b")), 8);
    assert_eq!(READS.with(Cell::get), 2, "evaluated once a call");
    let txs = capture(|| {
        in_transaction("t", || assert_eq!(publish("c"), Ok(7)));
        assert_eq!(block_on(process("d")), 8);
    });
    assert_eq!(READS.with(Cell::get), 4, "evaluated once a call");
    assert_eq!(txs.len(), 2);
}

#[test]
fn futures_with_a_destination_expression_stay_send() {
    fn assert_send<T: Send>(value: T) -> T {
        value
    }
    let jobs = Jobs {
        queue: "jobs-eu".to_owned(),
    };
    let mut pairs = Vec::new();
    let txs = capture(|| {
        in_transaction("send", || {
            block_on(assert_send(jobs.publish_async(&mut pairs, 1))).expect("published");
            let other = Jobs {
                queue: "jobs-us".to_owned(),
            };
            block_on(assert_send(publish_named(other))).expect("published");
        });
        block_on(assert_send(handle_job(HashMap::new(), 0))).expect("handled");
    });
    let described: Vec<_> = txs
        .iter()
        .flat_map(|t| t.spans.iter())
        .map(|s| s.description.as_deref())
        .collect();
    assert_eq!(
        described,
        [Some("jobs-eu"), Some("jobs-us"), Some(JOBS_QUEUE)]
    );
}
