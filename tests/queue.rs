//! Queue spans in one process: a producer publishes, a consumer continues its trace.

mod common;

use std::collections::{BTreeMap, HashMap};

use common::{capture, capture_with, in_transaction, root_id, trace};
use futures::executor::block_on;
use insights_runtime::queue::{Carrier, IncomingTrace, Publish, QueueTracker, TraceHeaders};
use sentry::protocol::{Span, SpanStatus, Transaction, Value};
use sentry::ClientOptions;

fn publish_in_transaction(tracker: &QueueTracker) -> HashMap<String, String> {
    let mut headers = HashMap::new();
    in_transaction("checkout", || {
        let published = tracker
            .publish("orders")
            .message_id("msg-1")
            .body_size(11)
            .envelope_size(64)
            .transaction_name("checkout")
            .start();
        published.inject(&mut headers);
        published.finish_with_outcome(&Ok::<_, ()>(()));
    });
    headers
}

fn named<'a>(txs: &'a [Transaction<'static>], name: &str) -> &'a Transaction<'static> {
    txs.iter()
        .find(|t| t.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no transaction {name}: {txs:#?}"))
}

fn op<'a>(tx: &'a Transaction<'_>, op: &str) -> &'a Span {
    tx.spans
        .iter()
        .find(|s| s.op.as_deref() == Some(op))
        .unwrap_or_else(|| panic!("no {op} span"))
}

#[test]
fn the_consumer_continues_the_producers_trace() {
    let tracker = QueueTracker::new("rabbitmq");
    let txs = capture(|| {
        let headers = publish_in_transaction(&tracker);
        std::thread::sleep(std::time::Duration::from_millis(5));
        let processing = tracker
            .process("orders", &headers)
            .message_id("msg-1")
            .body_size(11)
            .retry_count(2)
            .start();
        processing.finish_with_outcome(&Ok::<_, ()>(()));
    });
    assert_eq!(txs.len(), 2);
    let producer = named(&txs, "checkout");
    let publish = op(producer, "queue.publish");
    assert_eq!(publish.description.as_deref(), Some("orders"));
    assert_eq!(publish.parent_span_id, Some(root_id(producer)));
    assert_eq!(publish.status, Some(SpanStatus::Ok));
    assert_eq!(
        publish.data.get("messaging.destination.name"),
        Some(&Value::from("orders"))
    );
    assert_eq!(
        publish.data.get("messaging.system"),
        Some(&Value::from("rabbitmq"))
    );
    assert_eq!(
        publish.data.get("messaging.message.id"),
        Some(&Value::from("msg-1"))
    );
    assert_eq!(
        publish.data.get("messaging.message.body.size"),
        Some(&Value::from(11))
    );
    assert_eq!(
        publish.data.get("messaging.message.envelope.size"),
        Some(&Value::from(64))
    );

    let consumer = named(&txs, "orders");
    let ctx = trace(consumer);
    assert_eq!(ctx.op.as_deref(), Some("queue.task"));
    assert_eq!(ctx.trace_id, trace(producer).trace_id);
    assert_eq!(ctx.parent_span_id, Some(publish.span_id));
    assert_eq!(ctx.status, Some(SpanStatus::Ok));
    let process = op(consumer, "queue.process");
    assert_eq!(process.parent_span_id, Some(ctx.span_id));
    assert_eq!(process.description.as_deref(), Some("orders"));
    assert_eq!(process.status, Some(SpanStatus::Ok));
    assert_eq!(
        process.data.get("messaging.destination.name"),
        Some(&Value::from("orders"))
    );
    assert_eq!(
        process.data.get("messaging.system"),
        Some(&Value::from("rabbitmq"))
    );
    assert_eq!(
        process.data.get("messaging.message.id"),
        Some(&Value::from("msg-1"))
    );
    assert_eq!(
        process.data.get("messaging.message.body.size"),
        Some(&Value::from(11))
    );
    let retries = process
        .data
        .get("messaging.message.retry.count")
        .expect("retry count");
    assert_eq!(retries.as_u64(), Some(2), "a number: {retries:?}");
    let latency = process
        .data
        .get("messaging.message.receive.latency")
        .expect("latency");
    // An integer number of milliseconds, as Sentry's attribute registry types it.
    let ms = latency.as_u64().expect("latency is an integer");
    assert!((5..60_000).contains(&ms), "{ms} ms");
}

#[test]
fn baggage_carries_the_dynamic_sampling_context() {
    let tracker = QueueTracker::new("kafka").with_traceparent(true);
    let options = ClientOptions::new()
        .traces_sample_rate(1.0)
        .release("shop@1.2.3")
        .environment("staging");
    let mut headers = HashMap::new();
    let txs = capture_with(options, || headers = publish_in_transaction(&tracker));
    let producer = &txs[0];
    let trace_id = trace(producer).trace_id.to_string();
    let publish = op(producer, "queue.publish");

    assert_eq!(
        headers["sentry-trace"],
        format!("{trace_id}-{}-1", publish.span_id)
    );
    assert_eq!(
        headers["traceparent"],
        format!("00-{trace_id}-{}-01", publish.span_id)
    );
    let incoming = IncomingTrace::from_carrier(&headers).expect("valid headers");
    let baggage: HashMap<&str, &str> = incoming
        .baggage
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(baggage["trace_id"], trace_id);
    assert_eq!(baggage["public_key"], "public");
    assert_eq!(baggage["sample_rate"], "1");
    assert_eq!(baggage["sampled"], "true");
    assert_eq!(baggage["release"], "shop@1.2.3");
    assert_eq!(baggage["environment"], "staging");
    assert_eq!(baggage["transaction"], "checkout");
    let rand: f64 = baggage["sample_rand"].parse().expect("a number");
    assert!((0.0..1.0).contains(&rand));
    assert_eq!(incoming.sampled, Some(true));
    assert!(incoming.enqueued_at.is_some());
}

#[test]
fn sample_rand_agrees_with_the_decision() {
    let tracker = QueueTracker::new("kafka");
    for rate in [0.25_f32, 0.0] {
        let mut headers = HashMap::new();
        let txs = capture_with(ClientOptions::new().traces_sample_rate(rate), || {
            headers = publish_in_transaction(&tracker);
        });
        // rate 0.25 may sample the trace; keep only the unsampled runs' evidence.
        if !txs.is_empty() {
            continue;
        }
        // Unsampled: no span, but the decision still travels with the message.
        assert!(headers["sentry-trace"].ends_with("-0"), "{headers:?}");
        let incoming = IncomingTrace::from_carrier(&headers).expect("valid");
        assert_eq!(incoming.sampled, Some(false));
        let get = |k: &str| {
            incoming
                .baggage
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
                .expect(k)
        };
        let sample_rate: f64 = get("sample_rate").parse().expect("rate");
        let sample_rand: f64 = get("sample_rand").parse().expect("rand");
        assert!((f64::from(rate) - sample_rate).abs() < 1e-9);
        assert!(
            sample_rand >= sample_rate && sample_rand < 1.0,
            "{sample_rand} vs {sample_rate}"
        );
        assert_eq!(get("sampled"), "false");
    }
}

#[test]
fn errors_and_panics_mark_the_span_and_the_transaction() {
    let tracker = QueueTracker::new("nats");
    let txs = capture(|| {
        let headers = publish_in_transaction(&tracker);
        let failed = block_on(
            tracker
                .process("orders", &headers)
                .transaction_name("failing")
                .run(async { Err::<(), _>("bad payload") }),
        );
        assert!(failed.is_err());
        let panicked = std::panic::catch_unwind(|| {
            let _guard = tracker
                .process("orders", &headers)
                .transaction_name("panicking")
                .start();
            panic!("handler bug");
        });
        assert!(panicked.is_err());
    });
    for name in ["failing", "panicking"] {
        let tx = named(&txs, name);
        assert_eq!(trace(tx).status, Some(SpanStatus::InternalError), "{name}");
        assert_eq!(
            op(tx, "queue.process").status,
            Some(SpanStatus::InternalError),
            "{name}"
        );
    }
}

#[test]
fn an_unsampled_producer_is_honoured_by_the_consumer() {
    let tracker = QueueTracker::new("sqs");
    let headers: HashMap<String, String> = HashMap::from([(
        "sentry-trace".to_owned(),
        "0123456789abcdef0123456789abcdef-0123456789abcdef-0".to_owned(),
    )]);
    let txs = capture(|| {
        let guard = tracker.process("orders", &headers).start();
        // The unsampled transaction is current while the message is handled.
        assert!(!insights_runtime::span::SpanGuard::start("function", "inner").is_recording());
        drop(guard);
    });
    assert!(
        txs.is_empty(),
        "the producer's decision (not sampled) wins over rate 1.0"
    );
}

#[test]
fn missing_or_malformed_headers_start_a_new_trace() {
    let tracker = QueueTracker::new("sqs");
    let bad: Vec<(String, String)> = vec![
        ("sentry-trace".to_owned(), "not-a-trace".to_owned()),
        ("baggage".to_owned(), "sentry-sampled=false".to_owned()),
    ];
    let txs = capture(|| {
        drop(tracker.process("orders", &bad).start());
        drop(
            tracker
                .process("orders", &Vec::<(String, String)>::new())
                .start(),
        );
    });
    assert_eq!(txs.len(), 2);
    for tx in &txs {
        assert_eq!(trace(tx).parent_span_id, None);
        assert_eq!(op(tx, "queue.process").parent_span_id, Some(root_id(tx)));
    }
    assert_ne!(trace(&txs[0]).trace_id, trace(&txs[1]).trace_id);
}

#[test]
fn header_names_match_case_insensitively_and_underscored() {
    let id = "0123456789abcdef0123456789abcdef";
    let value = format!("{id}-0123456789abcdef-1");
    let upper: BTreeMap<String, String> =
        BTreeMap::from([("Sentry-Trace".to_owned(), value.clone())]);
    let underscored = vec![
        ("sentry_trace".to_owned(), value.clone()),
        (
            "sentry_baggage".to_owned(),
            "sentry-release=a%2Cb".to_owned(),
        ),
    ];
    let mut http = http::HeaderMap::new();
    http.insert("sentry-trace", value.parse().expect("header"));
    let slice: &[(&str, &str)] = &[("SENTRY-TRACE", value.as_str())];
    for incoming in [
        IncomingTrace::from_carrier(&upper),
        IncomingTrace::from_carrier(&underscored),
        IncomingTrace::from_carrier(&http),
        IncomingTrace::from_carrier(slice),
    ] {
        let incoming = incoming.expect("continues");
        assert_eq!(incoming.trace_id.to_string(), id);
        assert_eq!(incoming.sampled, Some(true));
    }
    let mut http_underscored = http::HeaderMap::new();
    http_underscored.insert("sentry_trace", value.parse().expect("header"));
    http_underscored.insert(
        "sentry_baggage",
        "sentry-release=a%2Cb".parse().expect("header"),
    );
    for carrier in [
        &underscored as &dyn Carrier,
        &http_underscored as &dyn Carrier,
    ] {
        let with_baggage = IncomingTrace::from_carrier(carrier).expect("continues");
        assert_eq!(with_baggage.trace_id.to_string(), id);
        assert_eq!(
            with_baggage.baggage,
            vec![("release".to_owned(), "a,b".to_owned())]
        );
    }
}

#[test]
fn async_publish_hands_the_headers_to_the_future() {
    let txs = capture(|| {
        in_transaction("job", || {
            let mut sent: Option<TraceHeaders> = None;
            let result = block_on(Publish::new("emails", "redis").message_id("e-1").run(
                |headers| {
                    sent = headers.cloned();
                    async { Ok::<_, String>(()) }
                },
            ));
            assert!(result.is_ok());
            let sent = sent.expect("headers while recording");
            assert!(sent.sentry_trace.ends_with("-1"));
            let mut underscored = Vec::new();
            sent.inject_underscored(&mut underscored);
            assert!(underscored.iter().any(|(k, _)| k == "sentry_trace"));
            assert!(underscored.iter().all(|(k, _)| !k.contains('-')));
        });
    });
    let publish = op(&txs[0], "queue.publish");
    assert_eq!(publish.description.as_deref(), Some("emails"));
    assert_eq!(publish.status, Some(SpanStatus::Ok));
}
