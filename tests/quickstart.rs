//! The quickstart example (`examples/quickstart.rs`), run under the test transport: the spans a
//! user sees in Sentry when running it with `SENTRY_DSN` set.

mod common;

#[path = "../examples/quickstart.rs"]
#[allow(dead_code, reason = "the example's `main`")]
mod quickstart;

use common::{capture, root_id, trace};
use sentry::protocol::{Span, SpanStatus, Transaction, Value};

fn run_example() -> (quickstart::Summary, Vec<Transaction<'static>>) {
    let mut summary = None;
    let txs = capture(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a tokio runtime");
        summary = Some(
            runtime
                .block_on(quickstart::run())
                .expect("the example runs"),
        );
    });
    (summary.expect("ran"), txs)
}

fn named<'a>(txs: &'a [Transaction<'static>], name: &str) -> Vec<&'a Transaction<'static>> {
    txs.iter()
        .filter(|t| t.name.as_deref() == Some(name))
        .collect()
}

fn ops<'a>(tx: &'a Transaction<'_>, op: &str) -> Vec<&'a Span> {
    tx.spans
        .iter()
        .filter(|s| s.op.as_deref() == Some(op))
        .collect()
}

fn children<'a>(tx: &'a Transaction<'_>, parent: &Span) -> Vec<&'a Span> {
    tx.spans
        .iter()
        .filter(|s| s.parent_span_id == Some(parent.span_id))
        .collect()
}

fn data<'a>(span: &'a Span, key: &str) -> Option<&'a Value> {
    span.data.get(key)
}

fn strings(values: &[&str]) -> Value {
    Value::Array(values.iter().map(|v| Value::from(*v)).collect())
}

/// `(op, description, status)` of each span, in start order.
fn shape(spans: &[&Span]) -> Vec<(String, String, SpanStatus)> {
    let mut spans = spans.to_vec();
    spans.sort_by_key(|s| s.start_timestamp);
    spans
        .iter()
        .map(|s| {
            (
                s.op.clone().unwrap_or_default(),
                s.description.clone().unwrap_or_default(),
                s.status.expect("a status"),
            )
        })
        .collect()
}

fn row(op: &str, description: &str, status: SpanStatus) -> (String, String, SpanStatus) {
    (op.to_owned(), description.to_owned(), status)
}

#[test]
fn quickstart_records_queries_caches_and_queues() {
    let (summary, txs) = run_example();
    assert_eq!(
        summary,
        quickstart::Summary {
            invoiced: 3,
            total_cents: 1200 + 2350 + 4000 + 500,
            emailed: 3,
        }
    );
    assert_eq!(txs.len(), 5, "seed, job and three consumers");

    // seed-database: a sync entry point with CREATE TABLE and two INSERTs.
    let seed = named(&txs, "seed-database");
    assert_eq!(seed.len(), 1);
    let seed = seed[0];
    assert_eq!(trace(seed).op.as_deref(), Some("task"));
    assert_eq!(trace(seed).status, Some(SpanStatus::Ok));
    let insert = "INSERT INTO customers (id, name) VALUES (?1, ?2)";
    assert_eq!(
        shape(&seed.spans.iter().collect::<Vec<_>>()),
        vec![
            row(
                "db",
                "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
                SpanStatus::Ok
            ),
            row("db", insert, SpanStatus::Ok),
            row("db", insert, SpanStatus::Ok),
        ]
    );
    for s in &seed.spans {
        assert_eq!(s.parent_span_id, Some(root_id(seed)));
        assert_eq!(data(s, "db.system"), Some(&Value::from("sqlite")));
    }
    for s in seed
        .spans
        .iter()
        .filter(|s| s.description.as_deref() == Some(insert))
    {
        assert_eq!(data(s, "db.operation"), Some(&Value::from("INSERT")));
        assert_eq!(data(s, "db.sql.table"), Some(&Value::from("customers")));
    }

    // nightly-invoicing: an async entry point.
    let job = named(&txs, "nightly-invoicing");
    assert_eq!(job.len(), 1);
    let job = job[0];
    assert_eq!(trace(job).op.as_deref(), Some("batch"));
    assert_eq!(trace(job).status, Some(SpanStatus::Ok));
    assert_ne!(trace(job).trace_id, trace(seed).trace_id);

    let top: Vec<_> = job
        .spans
        .iter()
        .filter(|s| s.parent_span_id == Some(root_id(job)))
        .collect();
    assert_eq!(
        shape(&top),
        vec![
            row(
                "db",
                "SELECT customer_id, percent FROM discounts",
                SpanStatus::InternalError
            ),
            row("function", "invoice", SpanStatus::Ok),
            row("function", "invoice", SpanStatus::Ok),
            row("function", "invoice", SpanStatus::Ok),
        ]
    );
    let failed = ops(job, "db")
        .into_iter()
        .find(|s| s.status == Some(SpanStatus::InternalError))
        .expect("the failed query");
    assert_eq!(data(failed, "db.system"), Some(&Value::from("sqlite")));
    assert_eq!(
        data(failed, "db.sql.table"),
        Some(&Value::from("discounts"))
    );

    let mut invoices: Vec<&Span> = top[1..].to_vec();
    invoices.sort_by_key(|s| s.start_timestamp);
    let select = "SELECT name FROM customers WHERE id = ?1";
    let publish = "invoice-emails";
    // Customers 1 and 2 are misses (read from the database, then cached); customer 1's second
    // order is a hit.
    let expected = [
        (1, 2, "customer:1", false),
        (2, 1, "customer:2", false),
        (3, 1, "customer:1", true),
    ];
    let mut publishes = Vec::new();
    for (span, (order, lines, key, hit)) in invoices.iter().zip(expected) {
        assert_eq!(data(span, "order.id"), Some(&Value::from(order)));
        assert_eq!(data(span, "order.lines"), Some(&Value::from(lines)));
        let inside = children(job, span);
        let want = if hit {
            vec![
                row("cache.get", key, SpanStatus::Ok),
                row("function", "price", SpanStatus::Ok),
                row("queue.publish", publish, SpanStatus::Ok),
            ]
        } else {
            vec![
                row("cache.get", key, SpanStatus::Ok),
                row("db", select, SpanStatus::Ok),
                row("cache.put", key, SpanStatus::Ok),
                row("function", "price", SpanStatus::Ok),
                row("queue.publish", publish, SpanStatus::Ok),
            ]
        };
        assert_eq!(shape(&inside), want, "order {order}");

        let get = inside.iter().find(|s| s.op.as_deref() == Some("cache.get"));
        let get = get.expect("a cache.get");
        assert_eq!(data(get, "cache.hit"), Some(&Value::Bool(hit)));
        assert_eq!(data(get, "cache.key"), Some(&strings(&[key])));
        let name_len = if key == "customer:1" { 3 } else { 5 }; // "Ada", "Grace"
        let size = hit.then(|| Value::from(name_len));
        assert_eq!(data(get, "cache.item_size"), size.as_ref());
        if !hit {
            let put = inside.iter().find(|s| s.op.as_deref() == Some("cache.put"));
            let put = put.expect("a cache.put");
            assert_eq!(data(put, "cache.ttl"), Some(&Value::from(300)));
            assert_eq!(data(put, "cache.item_size"), Some(&Value::from(name_len)));
            assert_eq!(data(put, "cache.key"), Some(&strings(&[key])));
        }

        let sent = inside
            .iter()
            .find(|s| s.op.as_deref() == Some("queue.publish"));
        let sent = *sent.expect("a queue.publish");
        let message_id = Value::from(order.to_string());
        assert_eq!(data(sent, "messaging.message.id"), Some(&message_id));
        assert_eq!(
            data(sent, "messaging.system"),
            Some(&Value::from("tokio-mpsc"))
        );
        assert_eq!(
            data(sent, "messaging.destination.name"),
            Some(&Value::from(publish))
        );
        assert!(data(sent, "messaging.message.body.size").is_some_and(Value::is_u64));
        publishes.push(sent);
    }

    // invoice-emails: one consumer transaction a message, in the job's trace, each the child
    // of the publish span of its message.
    let consumers = named(&txs, "invoice-emails");
    assert_eq!(consumers.len(), 3);
    for sent in &publishes {
        let consumer = consumers
            .iter()
            .find(|c| trace(c).parent_span_id == Some(sent.span_id))
            .expect("a consumer continuing from this publish span");
        let ctx = trace(consumer);
        assert_eq!(ctx.op.as_deref(), Some("queue.task"));
        assert_eq!(ctx.status, Some(SpanStatus::Ok));
        assert_eq!(ctx.trace_id, trace(job).trace_id);
        assert_eq!(consumer.spans.len(), 1);
        let process = &consumer.spans[0];
        assert_eq!(process.op.as_deref(), Some("queue.process"));
        assert_eq!(process.description.as_deref(), Some(publish));
        assert_eq!(process.status, Some(SpanStatus::Ok));
        assert_eq!(process.parent_span_id, Some(root_id(consumer)));
        assert_eq!(
            data(process, "messaging.message.id"),
            data(sent, "messaging.message.id")
        );
        assert_eq!(
            data(process, "messaging.message.body.size"),
            data(sent, "messaging.message.body.size")
        );
        assert_eq!(
            data(process, "messaging.system"),
            Some(&Value::from("tokio-mpsc"))
        );
        // An integer number of milliseconds, as Sentry's attribute registry types it.
        assert!(data(process, "messaging.message.receive.latency").is_some_and(Value::is_u64));
    }
}

#[test]
fn quickstart_runs_without_sentry() {
    // Nothing set up: the attributes record nothing and the example behaves the same.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime");
    let summary = runtime
        .block_on(quickstart::run())
        .expect("the example runs");
    assert_eq!(summary.emailed, 3);
    assert_eq!(summary.total_cents, 8050);
}

#[path = "services/endpoint.rs"]
#[allow(dead_code, reason = "the helpers only tests/services.rs uses")]
mod endpoint;

/// The example with `SENTRY_DSN` at a local endpoint, through the runtime's transport: what
/// arrives on the wire. Every db span carries its query source and the registry's keys, and
/// the worker's transactions send the job's DSC in their envelope header.
#[test]
fn quickstart_sends_query_source_and_one_dsc_per_trace() {
    use std::sync::Arc;
    use std::time::Duration;

    let endpoint = endpoint::SentryEndpoint::start();
    let mut options = sentry::ClientOptions::new().traces_sample_rate(1.0);
    options.dsn = Some(endpoint.dsn().parse().expect("dsn"));
    options.release = Some("quickstart@0.0.0".into());
    options.transport = Some(Arc::new(
        insights_runtime::transport::HttpTransportFactory::new(),
    ));
    let client = Arc::new(sentry::Client::from(options));
    let hub = Arc::new(sentry::Hub::new(
        Some(Arc::clone(&client)),
        Default::default(),
    ));
    sentry::Hub::run(hub, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a tokio runtime");
        runtime
            .block_on(quickstart::run())
            .expect("the example runs");
    });
    assert!(client.flush(Some(Duration::from_secs(5))));
    let expected = 4; // the job and its three e-mails
    endpoint.wait_for("the transactions", Duration::from_secs(5), |r| {
        (endpoint::transactions(r).len() >= expected).then_some(())
    });
    endpoint.with_received(|received| {
        let txs = endpoint::transactions(received);
        let db: Vec<&Span> = txs.iter().flat_map(|t| ops(t, "db")).collect();
        assert!(!db.is_empty());
        for span in db {
            // `file!()` of the example as this test includes it (`#[path]`): run as an example,
            // it is `examples/quickstart.rs`.
            assert!(
                data(span, "code.filepath")
                    .and_then(Value::as_str)
                    .is_some_and(|f| f.ends_with("examples/quickstart.rs")),
                "{span:?}"
            );
            assert_eq!(data(span, "code.file.path"), data(span, "code.filepath"));
            assert!(data(span, "code.lineno").is_some_and(Value::is_u64));
            assert_eq!(data(span, "code.line.number"), data(span, "code.lineno"));
            assert!(data(span, "code.function").is_some_and(Value::is_string));
            assert!(data(span, "code.namespace").is_some_and(Value::is_string));
            assert_eq!(data(span, "db.system.name"), Some(&Value::from("sqlite")));
            assert_eq!(data(span, "db.system"), Some(&Value::from("sqlite")));
            assert!(data(span, "db.query.text").is_some_and(Value::is_string));
        }
        // One DSC per trace: the job's (the head's), in every envelope of the trace.
        let header_of = |name: &str| endpoint::trace_headers(received, name);
        let job = header_of("nightly-invoicing");
        assert_eq!(job.len(), 1);
        let emails = header_of("invoice-emails");
        assert_eq!(emails.len(), 3);
        for email in &emails {
            assert_eq!(email, &job[0]);
        }
        assert_eq!(job[0]["release"], Value::from("quickstart@0.0.0"));
        assert_eq!(job[0]["transaction"], Value::from("nightly-invoicing"));
    });
}
