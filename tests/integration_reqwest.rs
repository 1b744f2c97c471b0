//! Outbound HTTP through `insights_runtime::reqwest::TracingMiddleware`, across two processes:
//! this test is service A (a transaction, a reqwest client through the middleware, envelopes
//! sent by the runtime's transport), and the `http_peer` example is service B (axum behind
//! `sentry-tower` and `ContinueTraceLayer`). Both send to one local Sentry endpoint, so what
//! each really sends is checked: A's `http.client` spans, B's transactions continuing them, and
//! the DSC in both envelopes' `trace` header.
//!
//! B must be built first, with the same `CARGO_TARGET_DIR`:
//! `cargo build --features services --example http_peer`; a missing or stale binary fails the
//! test with that command.

#[path = "services/endpoint.rs"]
#[allow(dead_code, reason = "the helpers only tests/services.rs uses")]
mod endpoint;
#[path = "services/process.rs"]
#[allow(dead_code, reason = "the helpers only tests/services.rs uses")]
mod process;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use endpoint::{trace_headers, transactions, Received, SentryEndpoint};
use insights_runtime::reqwest::{PropagationTargets, RequestSource, TracingMiddleware};
use insights_runtime::transport::HttpTransportFactory;
use process::Running;
use sentry::protocol::{Context, Span, SpanStatus, TraceContext, Transaction, Value};
use sentry::{ClientOptions, Hub, TransactionContext};

/// A's transaction.
const A: &str = "checkout";
const A_RELEASE: &str = "service-a@1.0";

/// Starts B, sending to `endpoint`; its base URL (`http://127.0.0.1:<port>`).
fn start_b(endpoint: &SentryEndpoint) -> (Running, String) {
    let mut b = Running::start(
        "http_peer",
        &[
            ("SENTRY_DSN", endpoint.dsn()),
            ("SENTRY_TRACES_SAMPLE_RATE", "1".to_owned()),
            ("SENTRY_RELEASE", "http-peer@2.0".to_owned()),
            ("SENTRY_ENVIRONMENT", "peer".to_owned()),
            ("BIND_ADDR", "127.0.0.1:0".to_owned()),
        ],
    );
    let base = b.wait_line("listening on ", Duration::from_secs(20));
    (b, base)
}

/// A's Sentry client: its own release and environment, sampling `rate`, the runtime's
/// transport (which writes the frozen DSC into the envelope header) to `endpoint`.
fn client_a(endpoint: &SentryEndpoint, rate: f32) -> Arc<sentry::Client> {
    let mut options = ClientOptions::new().traces_sample_rate(rate);
    options.dsn = Some(endpoint.dsn().parse().expect("a DSN"));
    options.release = Some(A_RELEASE.into());
    options.environment = Some("shop".into());
    options.transport = Some(Arc::new(HttpTransportFactory::new()));
    Arc::new(sentry::Client::from(options))
}

/// A reqwest client through `middleware` (no proxy from the environment: B is on loopback).
fn http(middleware: TracingMiddleware) -> reqwest_middleware::ClientWithMiddleware {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a reqwest client");
    reqwest_middleware::ClientBuilder::new(client)
        .with(middleware)
        .build()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Runs `work` as service A: inside A's transaction, current on the hub of the thread that
/// polls it; then flushes A's client. Returns `work`'s output and the transaction's trace.
fn as_a<T>(
    client: &Arc<sentry::Client>,
    rt: &tokio::runtime::Runtime,
    work: impl Future<Output = T>,
) -> (T, TraceContext) {
    let hub = Arc::new(Hub::new(Some(Arc::clone(client)), Default::default()));
    let out = Hub::run(hub, || {
        rt.block_on(async {
            let tx = sentry::start_transaction(TransactionContext::new(A, "http.server"));
            let trace = tx.get_trace_context();
            sentry::configure_scope(|s| s.set_span(Some(tx.clone().into())));
            let out = work.await;
            sentry::configure_scope(|s| s.set_span(None));
            tx.finish();
            (out, trace)
        })
    });
    assert!(client.flush(Some(Duration::from_secs(5))), "A's flush");
    out
}

/// The only transaction named `name` that `endpoint` received, once it has.
fn the_transaction(endpoint: &SentryEndpoint, name: &str) -> Transaction<'static> {
    endpoint.wait_for(name, Duration::from_secs(10), |received| {
        let found: Vec<_> = transactions(received)
            .into_iter()
            .filter(|t| t.name.as_deref() == Some(name))
            .collect();
        (found.len() == 1).then(|| found[0].clone())
    })
}

/// The transactions named `name` once `count` of them arrived.
fn transactions_named(
    endpoint: &SentryEndpoint,
    name: &str,
    count: usize,
) -> Vec<Transaction<'static>> {
    endpoint.wait_for(name, Duration::from_secs(10), |received| {
        let found: Vec<_> = transactions(received)
            .into_iter()
            .filter(|t| t.name.as_deref() == Some(name))
            .collect();
        (found.len() >= count).then_some(found)
    })
}

fn trace<'a>(tx: &'a Transaction<'_>) -> &'a TraceContext {
    match tx.contexts.get("trace") {
        Some(Context::Trace(t)) => t,
        other => panic!("transaction without trace context: {other:?}"),
    }
}

/// The `http.client` spans of `tx`, in order.
fn http_spans<'a>(tx: &'a Transaction<'_>) -> Vec<&'a Span> {
    let mut spans: Vec<&Span> = tx
        .spans
        .iter()
        .filter(|s| s.op.as_deref() == Some("http.client"))
        .collect();
    spans.sort_by_key(|s| s.start_timestamp);
    spans
}

fn assert_data(span: &Span, expected: &[(&str, Value)]) {
    let expected: BTreeMap<String, Value> = expected
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    let data: BTreeMap<String, Value> = span
        .data
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(data, expected, "data of {:?}", span.description);
}

fn s(text: &str) -> Value {
    Value::from(text)
}

/// The data every request's span has: method, URL, host and port.
fn request_data(method: &str, url: &str, port: u16) -> Vec<(&'static str, Value)> {
    vec![
        ("http.request.method", s(method)),
        ("url", s(url)),
        ("url.full", s(url)),
        ("server.address", s("127.0.0.1")),
        ("server.port", Value::from(port)),
    ]
}

/// Plus a response's status and `Content-Length`.
fn response_data(
    method: &str,
    url: &str,
    port: u16,
    status: u16,
    length: usize,
) -> Vec<(&'static str, Value)> {
    let mut data = request_data(method, url, port);
    data.extend([
        ("http.response.status_code", Value::from(status)),
        ("http.response.body.size", Value::from(length)),
        ("http.response_content_length", Value::from(length)),
    ]);
    data
}

fn port_of(base: &str) -> u16 {
    base.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {base}"))
}

/// The `sentry-` entries of a baggage, decoded, keys without the prefix.
fn baggage_dsc(baggage: &str) -> HashMap<String, String> {
    baggage
        .split(',')
        .filter_map(|entry| {
            let (key, value) = entry.trim().split_once('=')?;
            Some((
                key.strip_prefix("sentry-")?.to_owned(),
                value.replace("%40", "@"),
            ))
        })
        .collect()
}

/// What B's `/echo` says it got.
struct Echoed {
    sentry_trace: Option<String>,
    baggage: Option<String>,
    traceparent: Option<String>,
}

async fn echo(request: reqwest_middleware::RequestBuilder) -> (Echoed, usize, reqwest::StatusCode) {
    let response = request.send().await.expect("B answers");
    let status = response.status();
    let body = response.text().await.expect("B's body");
    let json: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    let header = |name: &str| json[name].as_str().map(str::to_owned);
    (
        Echoed {
            sentry_trace: header("sentry-trace"),
            baggage: header("baggage"),
            traceparent: header("traceparent"),
        },
        body.len(),
        status,
    )
}

#[test]
fn b_continues_the_trace_of_as_request_as_a_child_of_its_http_client_span() {
    let endpoint = SentryEndpoint::start();
    let (_b, base) = start_b(&endpoint);
    let port = port_of(&base);
    let a = client_a(&endpoint, 1.0);
    let rt = runtime();
    // The default targets: loopback, where B is.
    let client = http(TracingMiddleware::new().traceparent(true));
    let url = format!("{base}/echo?page=2&token=abc#top");
    let ((echoed, length, status, line), a_trace) = as_a(&a, &rt, async {
        let request = client.get(&url);
        let (request, line) = (request.request_source(), line!());
        let (echoed, length, status) = echo(request).await;
        (echoed, length, status, line)
    });
    assert_eq!(status, 200);

    // A's span.
    let a_tx = the_transaction(&endpoint, A);
    let spans = http_spans(&a_tx);
    assert_eq!(spans.len(), 1, "{:#?}", a_tx.spans);
    let span = spans[0];
    let shown = format!("{base}/echo");
    assert_eq!(span.description.as_deref(), Some(&*format!("GET {shown}")));
    assert_eq!(span.parent_span_id, Some(a_trace.span_id));
    assert_eq!(span.trace_id, a_trace.trace_id);
    assert_eq!(span.status, Some(SpanStatus::Ok));
    let mut data = response_data("GET", &shown, port, 200, length);
    data.extend([
        ("http.query", s("?page=2&token=[Filtered]")),
        ("http.fragment", s("#top")),
        ("code.filepath", s("tests/integration_reqwest.rs")),
        ("code.file.path", s("tests/integration_reqwest.rs")),
        ("code.lineno", Value::from(line)),
        ("code.line.number", Value::from(line)),
    ]);
    assert_data(span, &data);

    // The headers B got name A's span.
    let trace_id = a_trace.trace_id.to_string();
    assert_eq!(
        echoed.sentry_trace,
        Some(format!("{trace_id}-{}-1", span.span_id))
    );
    assert_eq!(
        echoed.traceparent,
        Some(format!("00-{trace_id}-{}-01", span.span_id))
    );
    let baggage = baggage_dsc(echoed.baggage.as_deref().expect("a baggage"));
    assert_eq!(baggage["trace_id"], trace_id);
    assert_eq!(baggage["release"], A_RELEASE);
    assert_eq!(baggage["environment"], "shop");
    assert_eq!(baggage["public_key"], "public");
    assert_eq!(baggage["sampled"], "true");

    // B's transaction continues A's trace, as a child of A's `http.client` span.
    let b_tx = the_transaction(&endpoint, "GET /echo");
    assert_eq!(trace(&b_tx).op.as_deref(), Some("http.server"));
    assert_eq!(trace(&b_tx).trace_id, a_trace.trace_id);
    assert_eq!(trace(&b_tx).parent_span_id, Some(span.span_id));
    assert_eq!(trace(&b_tx).status, Some(SpanStatus::Ok));
    assert_eq!(b_tx.release.as_deref(), Some("http-peer@2.0"));

    // B's envelope carries A's DSC, not its own release or environment.
    let (a_dsc, b_dsc) = endpoint
        .with_received(|r: &[Received]| (trace_headers(r, A), trace_headers(r, "GET /echo")));
    assert_eq!(a_dsc.len(), 1);
    assert_eq!(b_dsc, a_dsc);
    let dsc = &a_dsc[0];
    assert_eq!(dsc["trace_id"], s(&trace_id));
    assert_eq!(dsc["release"], s(A_RELEASE));
    assert_eq!(dsc["environment"], s("shop"));
    // And it is the DSC of the baggage.
    let keys: std::collections::BTreeSet<&str> = dsc
        .as_object()
        .expect("a DSC")
        .keys()
        .map(String::as_str)
        .collect();
    let sent: std::collections::BTreeSet<&str> = baggage.keys().map(String::as_str).collect();
    assert_eq!(keys, sent, "{dsc:#} against {baggage:?}");
    for (key, value) in &baggage {
        let number = |v: &str| v.parse::<f64>().ok();
        let in_header = match &dsc[key.as_str()] {
            Value::String(v) => v.clone(),
            other => other.to_string(),
        };
        match number(value) {
            Some(n) => assert_eq!(number(&in_header), Some(n), "{key}"),
            None => assert_eq!(&in_header, value, "{key}"),
        }
    }
}

#[test]
fn a_target_outside_the_list_gets_no_trace_headers() {
    let endpoint = SentryEndpoint::start();
    let (_b, base) = start_b(&endpoint);
    let port = port_of(&base);
    let a = client_a(&endpoint, 1.0);
    let rt = runtime();
    // `localhost` is a target; B's address, 127.0.0.1, is not.
    let client = http(
        TracingMiddleware::new()
            .traceparent(true)
            .propagate_to(PropagationTargets::none().host("localhost")),
    );
    let outside = format!("{base}/echo");
    let inside = format!("http://localhost:{port}/echo");
    let ((outside_echo, inside_echo), a_trace) = as_a(&a, &rt, async {
        let (outside_echo, _, _) = echo(client.get(&outside)).await;
        let (inside_echo, _, _) = echo(client.get(&inside)).await;
        (outside_echo, inside_echo)
    });

    assert_eq!(outside_echo.sentry_trace, None);
    assert_eq!(outside_echo.baggage, None);
    assert_eq!(outside_echo.traceparent, None);
    let trace_id = a_trace.trace_id.to_string();
    assert!(
        inside_echo
            .sentry_trace
            .as_deref()
            .is_some_and(|t| t.starts_with(&trace_id)),
        "{:?}",
        inside_echo.sentry_trace
    );
    assert!(inside_echo.baggage.is_some());
    assert!(inside_echo.traceparent.is_some());

    // Both requests are spans of A all the same.
    let a_tx = the_transaction(&endpoint, A);
    let spans = http_spans(&a_tx);
    let descriptions: Vec<_> = spans.iter().map(|s| s.description.as_deref()).collect();
    assert_eq!(
        descriptions,
        [
            Some(&*format!("GET {outside}")),
            Some(&*format!("GET {inside}"))
        ]
    );
    assert_eq!(spans[1].data["server.address"], s("localhost"));
    // B started a trace of its own for the request without headers, and continued A's for the
    // other.
    let b_txs = transactions_named(&endpoint, "GET /echo", 2);
    let mut continued: Vec<_> = b_txs
        .iter()
        .map(|t| {
            let parent = trace(t).parent_span_id.map(|id| id.to_string());
            (trace(t).trace_id == a_trace.trace_id, parent)
        })
        .collect();
    continued.sort();
    assert_eq!(
        continued,
        [(false, None), (true, Some(spans[1].span_id.to_string()))],
        "{b_txs:#?}"
    );
}

#[test]
fn headers_the_caller_set_win() {
    let endpoint = SentryEndpoint::start();
    let (_b, base) = start_b(&endpoint);
    let a = client_a(&endpoint, 1.0);
    let rt = runtime();
    let client = http(TracingMiddleware::new().traceparent(true));
    let url = format!("{base}/echo");
    let own_trace = "0123456789abcdef0123456789abcdef-0123456789abcdef-1";
    let own_parent = "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01";
    let ((own, vendor, sentry_baggage), a_trace) = as_a(&a, &rt, async {
        let (own, _, _) = echo(client.get(&url).header("sentry-trace", own_trace)).await;
        let (vendor, _, _) = echo(
            client
                .get(&url)
                .header("baggage", "vendor=1")
                .header("traceparent", own_parent),
        )
        .await;
        let (sentry_baggage, _, _) = echo(
            client
                .get(&url)
                .header("baggage", "sentry-release=mine,vendor=1"),
        )
        .await;
        (own, vendor, sentry_baggage)
    });
    let trace_id = a_trace.trace_id.to_string();

    // A `sentry-trace` of the caller's: nothing else is written either.
    assert_eq!(own.sentry_trace.as_deref(), Some(own_trace));
    assert_eq!(own.baggage, None);
    assert_eq!(own.traceparent, None);
    // The caller's `traceparent` stays; our DSC is appended to its baggage.
    assert!(vendor
        .sentry_trace
        .as_deref()
        .is_some_and(|t| t.starts_with(&trace_id)));
    assert_eq!(vendor.traceparent.as_deref(), Some(own_parent));
    let baggage = vendor.baggage.expect("a baggage");
    assert!(
        baggage.starts_with(&format!("vendor=1,sentry-trace_id={trace_id},")),
        "{baggage}"
    );
    assert_eq!(baggage_dsc(&baggage)["release"], A_RELEASE);
    // A baggage with `sentry-` entries of the caller's is left as it is.
    assert_eq!(
        sentry_baggage.baggage.as_deref(),
        Some("sentry-release=mine,vendor=1")
    );
    assert!(sentry_baggage
        .sentry_trace
        .as_deref()
        .is_some_and(|t| t.starts_with(&trace_id)));
    assert_eq!(http_spans(&the_transaction(&endpoint, A)).len(), 3);
}

/// What a request came to: a response's status and body, or the error's kind and text.
#[derive(Debug, PartialEq)]
enum Outcome {
    Answered(u16, String),
    Failed {
        connect: bool,
        timeout: bool,
        text: String,
    },
}

async fn outcome(sent: reqwest_middleware::Result<reqwest::Response>) -> Outcome {
    match sent {
        Ok(response) => {
            let status = response.status().as_u16();
            Outcome::Answered(status, response.text().await.expect("a body"))
        }
        Err(e) => Outcome::Failed {
            connect: e.is_connect(),
            timeout: e.is_timeout(),
            text: e.to_string(),
        },
    }
}

#[test]
fn statuses_come_from_the_response_and_the_caller_gets_reqwests_own_result() {
    let endpoint = SentryEndpoint::start();
    let (_b, base) = start_b(&endpoint);
    let port = port_of(&base);
    let a = client_a(&endpoint, 1.0);
    let rt = runtime();
    let traced = http(TracingMiddleware::new());
    let plain = reqwest_middleware::ClientBuilder::new(
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("a client"),
    )
    .build();
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let closed_port = closed.local_addr().expect("its address").port();
    drop(closed);
    let refused = format!("http://127.0.0.1:{closed_port}/nothing");
    let slow = format!("{base}/slow");
    let codes = [401u16, 404, 409, 422, 429, 500, 503];
    let ((outcomes, cancelled), _) = as_a(&a, &rt, async {
        let mut outcomes = Vec::new();
        for code in codes {
            let url = format!("{base}/status/{code}");
            outcomes.push((
                outcome(traced.get(&url).send().await).await,
                outcome(plain.get(&url).send().await).await,
            ));
        }
        for request in [
            (traced.get(&refused), plain.get(&refused)),
            (
                traced.get(&slow).timeout(Duration::from_millis(300)),
                plain.get(&slow).timeout(Duration::from_millis(300)),
            ),
        ] {
            outcomes.push((
                outcome(request.0.send().await).await,
                outcome(request.1.send().await).await,
            ));
        }
        // Given up by the caller before B answers.
        let cancelled =
            tokio::time::timeout(Duration::from_millis(300), traced.get(&slow).send()).await;
        (outcomes, cancelled.is_err())
    });
    assert!(cancelled, "the request should have been given up");

    // The caller's result is reqwest's, as without the middleware.
    for (traced, plain) in &outcomes {
        assert_eq!(traced, plain);
    }
    for (i, code) in codes.iter().enumerate() {
        assert_eq!(
            outcomes[i].0,
            Outcome::Answered(*code, format!("status {code}"))
        );
    }
    assert!(matches!(
        &outcomes[codes.len()].0,
        Outcome::Failed {
            connect: true,
            timeout: false,
            ..
        }
    ));
    assert!(matches!(
        &outcomes[codes.len() + 1].0,
        Outcome::Failed { timeout: true, .. }
    ));

    let a_tx = the_transaction(&endpoint, A);
    let spans = http_spans(&a_tx);
    assert_eq!(spans.len(), codes.len() + 3, "{:#?}", a_tx.spans);
    let statuses = [
        SpanStatus::Unauthenticated,
        SpanStatus::NotFound,
        SpanStatus::AlreadyExists,
        SpanStatus::InvalidArgument,
        SpanStatus::ResourceExhausted,
        SpanStatus::InternalError,
        SpanStatus::Unavailable,
    ];
    for ((span, code), status) in spans.iter().zip(codes).zip(statuses) {
        let url = format!("{base}/status/{code}");
        assert_eq!(span.description, Some(format!("GET {url}")));
        assert_eq!(span.status, Some(status), "{code}");
        assert_eq!(span.parent_span_id, Some(trace(&a_tx).span_id));
        let length = format!("status {code}").len();
        assert_data(span, &response_data("GET", &url, port, code, length));
    }
    let refused_span = spans[codes.len()];
    assert_eq!(refused_span.description, Some(format!("GET {refused}")));
    assert_eq!(refused_span.status, Some(SpanStatus::InternalError));
    assert_data(refused_span, &request_data("GET", &refused, closed_port));
    for (span, status) in [
        (spans[codes.len() + 1], SpanStatus::DeadlineExceeded),
        (spans[codes.len() + 2], SpanStatus::Cancelled),
    ] {
        assert_eq!(span.description, Some(format!("GET {slow}")));
        assert_eq!(span.status, Some(status));
        assert_data(span, &request_data("GET", &slow, port));
    }
}

#[test]
fn an_unsampled_trace_sends_its_decision_and_no_span_and_without_sentry_nothing() {
    let endpoint = SentryEndpoint::start();
    let (_b, base) = start_b(&endpoint);
    let rt = runtime();
    let client = http(TracingMiddleware::new());
    let url = format!("{base}/echo");

    let unsampled = client_a(&endpoint, 0.0);
    let ((echoed, status), a_trace) = as_a(&unsampled, &rt, async {
        let (echoed, _, status) = echo(client.get(&url)).await;
        (echoed, status)
    });
    assert_eq!(status, 200);
    // The current span's id (the transaction's: no span of ours), and the decision.
    assert_eq!(
        echoed.sentry_trace,
        Some(format!("{}-{}-0", a_trace.trace_id, a_trace.span_id))
    );
    let baggage = baggage_dsc(echoed.baggage.as_deref().expect("a baggage"));
    assert_eq!(baggage["sampled"], "false");
    assert_eq!(baggage["sample_rate"], "0");

    // Without a Sentry client, nothing is written.
    let off = Arc::new(Hub::new(None, Default::default()));
    let (none, _, _) = Hub::run(off, || rt.block_on(echo(client.get(&url))));
    assert_eq!(none.sentry_trace, None);
    assert_eq!(none.baggage, None);
    // B records the request without headers: a trace of its own. A sent nothing.
    let b_tx = the_transaction(&endpoint, "GET /echo");
    assert_eq!(trace(&b_tx).parent_span_id, None);
    endpoint.with_received(|r| assert!(!r.iter().any(|e| e.has_transaction(A))));
}

#[test]
fn the_targets_come_from_the_environment_through_setup() {
    use insights_runtime::setup::{self, Settings};

    let lookup = |value: &'static str| {
        move |name: &str| (name == "SENTRY_TRACE_PROPAGATION_TARGETS").then(|| value.to_owned())
    };
    let error = Settings::from_lookup("a@1", lookup("localhost:3000"))
        .expect_err("a host with a port is not a target");
    assert_eq!(error.variable, "SENTRY_TRACE_PROPAGATION_TARGETS");
    assert_eq!(error.value, "localhost:3000");

    // Loopback stays in, so that the other tests of this binary (the default) are unaffected.
    let list = "loopback, *.internal.example.com, https://partner.example.org/hooks/";
    let settings = Settings::from_lookup("a@1", lookup(list))
        .expect("targets")
        .console_without_dsn(false);
    let guard = setup::init(settings);
    assert!(!guard.is_enabled());
    assert_eq!(
        *insights_runtime::reqwest::trace_propagation_targets(),
        list.parse::<PropagationTargets>().expect("targets")
    );
}
