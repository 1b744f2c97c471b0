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
