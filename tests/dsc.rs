//! The frozen dynamic sampling context across hops: a trace started by another SDK (headers as
//! sentry-python writes them) and continued here keeps the head's DSC in every header written
//! downstream and in the `trace` header of the envelopes the runtime's transport sends; a trace
//! started here states the rate that decided it.

#[path = "services/endpoint.rs"]
#[allow(dead_code, reason = "the helpers only tests/services.rs uses")]
mod endpoint;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use endpoint::{Received, SentryEndpoint};
use insights_runtime::propagation::{self, ContinueTraceLayer};
use insights_runtime::queue::{QueueTracker, MAX_BAGGAGE_ENTRIES, MAX_HEADER_LEN};
use insights_runtime::sampling::Sampler;
use insights_runtime::transport::HttpTransportFactory;
use sentry::protocol::Value;
use sentry::{ClientOptions, Hub};

const FLUSH: Duration = Duration::from_secs(5);
const TRACE_ID: &str = "771a43a4192642f0b136d5159a501700";
const PARENT: &str = "a2b3c4d5e6f70819";

/// What a Python producer (release `py-peer@1.0`, rate 1.0) sends, between other vendors'
/// entries, with percent-encoded values.
fn python_baggage() -> String {
    format!(
        "othervendor=abc, sentry-trace_id={TRACE_ID},sentry-public_key=49d0f7386ad645858ae85020e393bef3,\
         sentry-sample_rate=1.0,sentry-sample_rand=0.123456,sentry-sampled=true,\
         sentry-release=py-peer%401.0,sentry-environment=production,\
         sentry-transaction=orders%20create,sentry-org_id=17;prop=x, acme=1"
    )
}

/// The `sentry-` entries of [`python_baggage`], unchanged, as they must go downstream.
fn python_dsc() -> String {
    format!(
        "sentry-trace_id={TRACE_ID},sentry-public_key=49d0f7386ad645858ae85020e393bef3,\
         sentry-sample_rate=1.0,sentry-sample_rand=0.123456,sentry-sampled=true,\
         sentry-release=py-peer%401.0,sentry-environment=production,\
         sentry-transaction=orders%20create,sentry-org_id=17"
    )
}

fn python_headers() -> HashMap<String, String> {
    HashMap::from([
        ("sentry-trace".to_owned(), format!("{TRACE_ID}-{PARENT}-1")),
        ("baggage".to_owned(), python_baggage()),
    ])
}

/// A Rust service that is not the head: its own release, environment and rate, sending to the
/// endpoint through the runtime's transport.
fn rust_relay(
    endpoint: &SentryEndpoint,
    configure: impl FnOnce(ClientOptions) -> ClientOptions,
) -> Arc<Hub> {
    let mut options = ClientOptions::new().traces_sample_rate(0.25);
    options.dsn = Some(endpoint.dsn().parse().expect("dsn"));
    options.release = Some("rust-relay@3.0".into());
    options.environment = Some("staging".into());
    options.transport = Some(Arc::new(HttpTransportFactory::new()));
    let client = Arc::new(sentry::Client::from(configure(options)));
    Arc::new(Hub::new(Some(client), Default::default()))
}

fn flush(hub: &Hub) {
    let client = hub.client().expect("a client");
    assert!(client.flush(Some(FLUSH)), "flushed within {FLUSH:?}");
}

/// The envelope whose transaction is named `name`.
fn envelope_of<'a>(received: &'a [Received], name: &str) -> &'a Received {
    received
        .iter()
        .find(|r| r.has_transaction(name))
        .unwrap_or_else(|| panic!("no envelope for {name}: {received:#?}"))
}

fn assert_python_dsc(trace: &Value) {
    let expected = [
        ("trace_id", TRACE_ID),
        ("public_key", "49d0f7386ad645858ae85020e393bef3"),
        // `sentry`'s envelope header holds the rate as a number; Python's `1.0` is the same.
        ("sample_rate", "1"),
        ("sample_rand", "0.123456"),
        ("sampled", "true"),
        ("release", "py-peer@1.0"),
        ("environment", "production"),
        ("transaction", "orders create"),
        ("org_id", "17"),
    ];
    for (key, value) in expected {
        assert_eq!(trace[key], Value::from(value), "{key} in {trace:#}");
    }
    assert_eq!(
        trace.as_object().map(|o| o.len()),
        Some(expected.len()),
        "nothing else: {trace:#}"
    );
}

#[test]
fn a_consumer_passes_the_producers_dsc_on_unchanged() {
    let endpoint = SentryEndpoint::start();
    let hub = rust_relay(&endpoint, |o| o);
    let headers = python_headers();
    let (downstream, by_hand) = Hub::run(Arc::clone(&hub), || {
        let queue = QueueTracker::new("rabbitmq").with_traceparent(true);
        let processing = queue.process("orders", &headers).start();
        let published = queue.publish("invoices").start();
        let downstream = published.headers().cloned().expect("headers");
        let mut by_hand = HashMap::new();
        assert!(propagation::inject(&mut by_hand, false));
        drop(published);
        processing.finish_with_outcome(&Ok::<_, ()>(()));
        (downstream, by_hand)
    });
    flush(&hub);

    // The next hop gets the head's DSC, not this service's; other vendors' entries stay behind.
    assert_eq!(downstream.baggage, python_dsc());
    assert!(downstream.sentry_trace.starts_with(&format!("{TRACE_ID}-")));
    assert!(downstream.sentry_trace.ends_with("-1"));
    assert_eq!(
        downstream.traceparent.as_deref().map(|t| &t[..35]),
        Some(format!("00-{TRACE_ID}").as_str())
    );
    // Code that calls out by hand writes the same, without the enqueue time.
    assert_eq!(by_hand.get("baggage"), Some(&python_dsc()));
    assert!(by_hand["sentry-trace"].starts_with(TRACE_ID));
    assert_eq!(by_hand.len(), 2, "{by_hand:?}");

    endpoint.wait_for("the consumer's transaction", FLUSH, |r| {
        (!r.is_empty()).then_some(())
    });
    endpoint.with_received(|received| {
        let envelope = envelope_of(received, "orders");
        assert_python_dsc(&envelope.header["trace"]);
    });
}

#[test]
fn a_trace_continued_from_an_sdk_without_a_dsc_sends_no_baggage() {
    let endpoint = SentryEndpoint::start();
    let hub = rust_relay(&endpoint, |o| o);
    let headers = HashMap::from([(
        "sentry-trace".to_owned(),
        "0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1".to_owned(),
    )]);
    let downstream = Hub::run(Arc::clone(&hub), || {
        let queue = QueueTracker::new("rabbitmq");
        let processing = queue.process("legacy", &headers).start();
        let published = queue.publish("next").start();
        let mut carrier = HashMap::new();
        published.inject(&mut carrier);
        drop(published);
        drop(processing);
        carrier
    });
    assert!(downstream.contains_key("sentry-trace"));
    assert!(!downstream.contains_key("baggage"), "{downstream:?}");
}

#[test]
fn hostile_baggage_stays_within_the_bounds() {
    let endpoint = SentryEndpoint::start();
    let hub = rust_relay(&endpoint, |o| o);
    let id = "1bf7651916cd43dd8448eb211c80319c";
    // Many entries, under the length bound: only the first MAX_BAGGAGE_ENTRIES are read.
    let many: Vec<String> = (0..500).map(|i| format!("sentry-k{i}=v")).collect();
    let many = many.join(",");
    assert!(many.len() <= MAX_HEADER_LEN);
    // Over the length bound: ignored whole.
    let huge = format!("sentry-release={}", "x".repeat(MAX_HEADER_LEN));
    for (n, baggage, entries) in [(1, many, MAX_BAGGAGE_ENTRIES), (2, huge, 0)] {
        let trace = format!("{}{n}", &id[..31]);
        let headers = HashMap::from([
            (
                "sentry-trace".to_owned(),
                format!("{trace}-b7ad6b7169203331-1"),
            ),
            ("baggage".to_owned(), baggage),
        ]);
        let downstream = Hub::run(Arc::clone(&hub), || {
            let queue = QueueTracker::new("rabbitmq");
            let processing = queue.process("hostile", &headers).start();
            let published = queue.publish("next").start();
            let sent = published.headers().cloned().expect("headers");
            drop(published);
            drop(processing);
            sent
        });
        let kept = downstream
            .baggage
            .split(',')
            .filter(|e| !e.is_empty())
            .count();
        assert_eq!(kept, entries, "case {n}");
        assert!(downstream.baggage.len() <= MAX_HEADER_LEN);
    }
}

#[test]
fn a_head_trace_states_the_rate_that_decided_it() {
    let endpoint = SentryEndpoint::start();
    let hub = rust_relay(&endpoint, |o| {
        o.traces_sampler(Sampler::new(0.0).rule("nightly", 0.5).into_fn())
    });
    let mut sampled_one = None;
    for _ in 0..64 {
        let baggage = Hub::run(Arc::clone(&hub), || {
            let tx = sentry::start_transaction(sentry::TransactionContext::new("nightly", "batch"));
            sentry::configure_scope(|s| s.set_span(Some(tx.clone().into())));
            let headers = propagation::current_headers(false).expect("headers");
            let sampled = headers.sentry_trace.ends_with("-1");
            sentry::configure_scope(|s| s.set_span(None));
            tx.finish();
            (headers, sampled)
        });
        let (headers, sampled) = baggage;
        let entries: HashMap<&str, &str> = headers
            .baggage
            .split(',')
            .filter_map(|e| e.strip_prefix("sentry-")?.split_once('='))
            .collect();
        // The sampler's rate, not 1 or 0.
        assert_eq!(entries["sample_rate"], "0.5", "{}", headers.baggage);
        assert_eq!(entries["sampled"], sampled.to_string());
        let rand: f64 = entries["sample_rand"].parse().expect("sample_rand");
        assert_eq!(rand < 0.5, sampled, "{}", headers.baggage);
        if sampled {
            sampled_one = Some(headers);
            break;
        }
    }
    let sent = sampled_one.expect("one trace in 64 sampled at 0.5");
    flush(&hub);
    endpoint.wait_for("the head's transaction", FLUSH, |r| {
        (!r.is_empty()).then_some(())
    });
    endpoint.with_received(|received| {
        let trace = &envelope_of(received, "nightly").header["trace"];
        // The envelope says what the baggage said.
        for entry in sent.baggage.split(',') {
            let (key, value) = entry
                .strip_prefix("sentry-")
                .and_then(|e| e.split_once('='))
                .expect("a sentry- entry");
            assert_eq!(
                trace[key],
                Value::from(value.replace("%40", "@")),
                "{key}: {trace:#}"
            );
        }
    });
}

#[test]
fn a_request_continued_by_sentry_tower_propagates_the_callers_dsc() {
    use axum::routing::post;
    use tower::{ServiceBuilder, ServiceExt};

    let endpoint = SentryEndpoint::start();
    let hub = rust_relay(&endpoint, |o| o);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let baggage = Hub::run(Arc::clone(&hub), || {
        runtime.block_on(async {
            let app = axum::Router::new()
                .route(
                    "/orders",
                    post(|| async {
                        propagation::current_headers(false)
                            .map(|h| h.baggage)
                            .unwrap_or_default()
                    }),
                )
                .layer(
                    ServiceBuilder::new()
                        .layer(sentry::integrations::tower::NewSentryLayer::new_from_top())
                        .layer(
                            sentry::integrations::tower::SentryHttpLayer::new()
                                .enable_transaction(),
                        )
                        .layer(ContinueTraceLayer),
                );
            let request = http::Request::post("http://localhost/orders")
                .header("sentry-trace", format!("{TRACE_ID}-{PARENT}-1"))
                .header("baggage", python_baggage())
                .body(axum::body::Body::empty())
                .expect("request");
            let response = app.oneshot(request).await.expect("response");
            let body = axum::body::to_bytes(response.into_body(), 1 << 16)
                .await
                .expect("body");
            String::from_utf8(body.to_vec()).expect("utf-8")
        })
    });
    flush(&hub);
    assert_eq!(baggage, python_dsc());
    endpoint.wait_for("the request's transaction", FLUSH, |r| {
        (!r.is_empty()).then_some(())
    });
    endpoint.with_received(|received| {
        assert_python_dsc(&envelope_of(received, "POST /orders").header["trace"]);
    });
}
