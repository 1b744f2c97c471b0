//! `transport::HttpTransport` against local HTTP servers that answer, refuse, rate-limit or hang:
//! what reaches Sentry, what is held back, and for how long.

#[path = "services/endpoint.rs"]
#[allow(dead_code, reason = "the helpers only tests/services.rs uses")]
mod endpoint;

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use endpoint::{decode_envelope, read_request, SentryEndpoint};
use insights_runtime::scrub::Scrubber;
use insights_runtime::setup::{self, Settings};
use insights_runtime::transport::HttpTransportFactory;
use sentry::protocol::{Event, Request, Transaction, Value};
use sentry::{ClientOptions, Envelope, Hub, Transport, TransportFactory, TransportOptions};

fn transport(dsn: &str, factory: HttpTransportFactory) -> Arc<dyn Transport> {
    let mut options = ClientOptions::new();
    options.dsn = Some(dsn.parse().expect("dsn"));
    let options = TransportOptions::try_from_client_options(&options).expect("a DSN is set");
    factory.create_transport_with_options(options)
}

fn transaction_envelope(name: &str) -> Envelope {
    let tx = Transaction {
        name: Some(name.to_owned()),
        ..Default::default()
    };
    Envelope::from(tx)
}

fn event_envelope(message: &str) -> Envelope {
    Envelope::from(Event {
        message: Some(message.to_owned()),
        ..Default::default()
    })
}

const FLUSH: Duration = Duration::from_secs(5);

#[test]
fn envelopes_arrive_whole_with_their_trace_header() {
    let endpoint = SentryEndpoint::start();
    let mut options = ClientOptions::new().traces_sample_rate(1.0);
    options.dsn = Some(endpoint.dsn().parse().expect("dsn"));
    options.transport = Some(Arc::new(HttpTransportFactory::new()));
    let client = Arc::new(sentry::Client::from(options));
    let hub = Arc::new(Hub::new(Some(Arc::clone(&client)), Default::default()));
    let trace_id = Hub::run(hub, || {
        let ctx = sentry::TransactionContext::new("GET /items", "http.server");
        let tx = sentry::start_transaction(ctx);
        let trace_id = tx.get_trace_context().trace_id;
        tx.start_child("db", "SELECT 1").finish();
        tx.finish();
        trace_id
    });
    assert!(client.flush(Some(FLUSH)), "flushed within {FLUSH:?}");

    let received = endpoint.wait_for("the transaction", FLUSH, |received| {
        (!received.is_empty()).then_some(received.len())
    });
    assert_eq!(received, 1);
    endpoint.with_received(|received| {
        // Path and key are checked by the endpoint as each envelope arrives.
        let envelope = &received[0];
        let txs = envelope.transactions();
        assert_eq!(txs.len(), 1);
        assert_eq!(txs[0].name.as_deref(), Some("GET /items"));
        assert_eq!(txs[0].spans.len(), 1);
        assert_eq!(txs[0].spans[0].description.as_deref(), Some("SELECT 1"));
        assert!(envelope.gzip, "sent gzip-compressed");
        // The dynamic sampling context, which `sentry`'s own HTTP transports drop.
        assert_eq!(
            envelope.header["trace"]["trace_id"],
            Value::from(trace_id.to_string()),
            "{:#}",
            envelope.header
        );
        assert_eq!(envelope.header["trace"]["public_key"], "public");
        assert_eq!(envelope.header["trace"]["sampled"], "true");
    });
}

/// A transaction whose request and span carry secrets, finished on `hub`; its trace id.
fn leaky_transaction(hub: Arc<Hub>) -> sentry::protocol::TraceId {
    Hub::run(hub, || {
        let ctx = sentry::TransactionContext::new("POST /login", "http.server");
        let tx = sentry::start_transaction(ctx);
        let mut request = Request::default();
        request
            .headers
            .insert("Authorization".to_owned(), "Bearer abc-1".to_owned());
        request
            .headers
            .insert("Accept".to_owned(), "text/html".to_owned());
        tx.set_request(request);
        let span = tx.start_child("db", "SELECT 1");
        span.set_data("db_Password", Value::from("pw-2"));
        span.set_data("db.system", Value::from("postgresql"));
        span.finish();
        let trace_id = tx.get_trace_context().trace_id;
        tx.finish();
        trace_id
    })
}

/// Everything `endpoint` received, as JSON text.
fn received_text(endpoint: &SentryEndpoint) -> String {
    endpoint.with_received(|received| {
        received
            .iter()
            .flat_map(|envelope| &envelope.items)
            .map(|(header, payload)| format!("{header}\n{payload}\n"))
            .collect()
    })
}

#[test]
fn the_transport_scrubs_on_its_own_thread() {
    let endpoint = SentryEndpoint::start();
    let mut options = ClientOptions::new().traces_sample_rate(1.0);
    options.dsn = Some(endpoint.dsn().parse().expect("dsn"));
    let factory = HttpTransportFactory::new().scrubber(Arc::new(Scrubber::default()));
    options.transport = Some(Arc::new(factory));
    let client = Arc::new(sentry::Client::from(options));
    leaky_transaction(Arc::new(Hub::new(
        Some(Arc::clone(&client)),
        Default::default(),
    )));
    assert!(client.flush(Some(FLUSH)));
    endpoint.wait_for("the transaction", FLUSH, |r| (!r.is_empty()).then_some(()));
    let text = received_text(&endpoint);
    assert!(text.contains("POST /login"), "{text}");
    for secret in ["abc-1", "pw-2"] {
        assert!(!text.contains(secret), "{secret} leaked:\n{text}");
    }
    assert!(
        text.contains("text/html") && text.contains("postgresql"),
        "{text}"
    );
}

/// The one test here that sets Sentry up globally; the others use clients of their own.
#[test]
fn setup_init_sends_through_it_scrubbed() {
    let endpoint = SentryEndpoint::start();
    let mut settings = Settings::new("insights-tests@0.0.0");
    settings.dsn = Some(endpoint.dsn());
    let guard = setup::init(settings);
    // `sentry::init` binds the client to the calling thread's hub.
    let trace_id = leaky_transaction(Hub::current());
    drop(guard);
    endpoint.wait_for("the transaction", FLUSH, |r| (!r.is_empty()).then_some(()));
    endpoint.with_received(|received| {
        // The trace header is there: `sentry`'s own HTTP transport would have dropped it.
        assert_eq!(
            received[0].header["trace"]["trace_id"],
            Value::from(trace_id.to_string())
        );
    });
    let text = received_text(&endpoint);
    for secret in ["abc-1", "pw-2"] {
        assert!(!text.contains(secret), "{secret} leaked:\n{text}");
    }
    assert!(text.contains("text/html"), "{text}");
}

/// What a test server does with each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// Reads the request and closes the connection: a network error for the client.
    HangUp,
    /// `200 OK`.
    Ok,
    /// `429` with `Retry-After: 60`.
    TooManyRequests,
    /// `200 OK` with `X-Sentry-Rate-Limits` for transactions only.
    LimitTransactions,
    /// `503 Service Unavailable`.
    Unavailable,
    /// Reads the request and never answers.
    Never,
    /// `200 OK` with a `content-length` of 100 and one byte of body, then closes.
    CutBody,
    /// Half a status line (`HTTP/1.1 2`), then closes.
    CutStatus,
    /// `200 OK`, one byte a second.
    Drip,
    /// `413 Content Too Large`.
    TooLarge,
    /// `500 Internal Server Error`.
    ServerError,
    /// `429` whose `X-Sentry-Rate-Limits` does not parse.
    Malformed429,
    /// `200 OK` with an `X-Sentry-Rate-Limits` and a `Retry-After` that do not parse.
    Malformed200,
}

impl Answer {
    /// The status the client reads in full, if any.
    fn status(self) -> Option<u16> {
        match self {
            Answer::Ok | Answer::LimitTransactions | Answer::CutBody | Answer::Malformed200 => {
                Some(200)
            }
            Answer::TooManyRequests | Answer::Malformed429 => Some(429),
            Answer::Unavailable => Some(503),
            Answer::TooLarge => Some(413),
            Answer::ServerError => Some(500),
            Answer::HangUp | Answer::Never | Answer::CutStatus | Answer::Drip => None,
        }
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Logged {
    /// The `type` of each item.
    item_types: Vec<String>,
    /// `discarded_events` of the client reports in it: (category, reason, quantity).
    discarded: Vec<(String, String, u64)>,
    /// Whether the body came gzip-compressed.
    gzip: bool,
    /// The answer it got.
    answer: Answer,
}

/// A server counting connections and requests, answering as told.
struct Server {
    addr: SocketAddr,
    answer: Arc<Mutex<Answer>>,
    connections: Arc<AtomicUsize>,
    log: Arc<Mutex<Vec<Logged>>>,
}

impl Server {
    fn start(answer: Answer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let server = Server {
            addr: listener.local_addr().expect("address"),
            answer: Arc::new(Mutex::new(answer)),
            connections: Arc::default(),
            log: Arc::default(),
        };
        let (answer, connections, log) = (
            Arc::clone(&server.answer),
            Arc::clone(&server.connections),
            Arc::clone(&server.log),
        );
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                connections.fetch_add(1, Ordering::SeqCst);
                let (answer, log) = (Arc::clone(&answer), Arc::clone(&log));
                thread::spawn(move || serve(stream, &answer, &log));
            }
        });
        server
    }

    fn dsn(&self) -> String {
        format!("http://public@{}/1", self.addr)
    }

    fn answer(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn requests(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    fn log(&self) -> Vec<Logged> {
        self.log.lock().unwrap().clone()
    }

    /// The `type` of each request's first item, in arrival order.
    fn item_types(&self) -> Vec<String> {
        self.log()
            .iter()
            .map(|l| l.item_types.first().cloned().unwrap_or_default())
            .collect()
    }

    /// Transactions in requests answered `2xx`: those Sentry took.
    fn delivered(&self) -> u64 {
        self.log()
            .iter()
            .filter(|l| l.answer.status() == Some(200))
            .map(|l| l.item_types.iter().filter(|t| *t == "transaction").count() as u64)
            .sum()
    }

    /// The client reports of requests answered `2xx`, summed: (category, reason) → quantity,
    /// sorted.
    fn reported(&self) -> Vec<(String, String, u64)> {
        let mut sums = std::collections::BTreeMap::<(String, String), u64>::new();
        for logged in self.log() {
            if logged.answer.status() == Some(200) {
                for (category, reason, quantity) in logged.discarded {
                    *sums.entry((category, reason)).or_default() += quantity;
                }
            }
        }
        sums.into_iter().map(|((c, r), q)| (c, r, q)).collect()
    }
}

/// The triples of `reported`, typed less verbosely.
fn counts(expected: &[(&str, &str, u64)]) -> Vec<(String, String, u64)> {
    let mut counts: Vec<_> = expected
        .iter()
        .map(|(c, r, q)| ((*c).to_owned(), (*r).to_owned(), *q))
        .collect();
    counts.sort();
    counts
}

fn logged(request: &endpoint::Request, answer: Answer) -> Logged {
    let gzip = request
        .headers
        .iter()
        .any(|(k, v)| k == "content-encoding" && v == "gzip");
    let items = request
        .decoded_body()
        .and_then(|body| decode_envelope(&body))
        .map(|(_, items)| items)
        .unwrap_or_else(|e| panic!("the server got a malformed envelope: {e}"));
    let mut discarded = Vec::new();
    for (header, payload) in &items {
        if header["type"] == "client_report" {
            for entry in payload["discarded_events"].as_array().into_iter().flatten() {
                discarded.push((
                    entry["category"].as_str().unwrap_or("?").to_owned(),
                    entry["reason"].as_str().unwrap_or("?").to_owned(),
                    entry["quantity"].as_u64().unwrap_or(0),
                ));
            }
        }
    }
    Logged {
        item_types: items
            .iter()
            .map(|(header, _)| header["type"].as_str().unwrap_or("?").to_owned())
            .collect(),
        discarded,
        gzip,
        answer,
    }
}

fn serve(stream: TcpStream, answer: &Mutex<Answer>, log: &Mutex<Vec<Logged>>) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Some(Ok(request)) = read_request(&mut reader) {
        let answer = *answer.lock().unwrap();
        log.lock().unwrap().push(logged(&request, answer));
        let response = match answer {
            Answer::HangUp => return,
            Answer::Never => {
                thread::sleep(Duration::from_secs(3600));
                return;
            }
            Answer::Drip => {
                for byte in b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}" {
                    if writer.write_all(&[*byte]).is_err() {
                        return;
                    }
                    thread::sleep(Duration::from_secs(1));
                }
                continue;
            }
            Answer::CutBody => {
                let _ = writer.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{");
                return;
            }
            Answer::CutStatus => {
                let _ = writer.write_all(b"HTTP/1.1 2");
                return;
            }
            Answer::Ok => "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}",
            Answer::TooManyRequests => {
                "HTTP/1.1 429 Too Many Requests\r\nretry-after: 60\r\ncontent-length: 0\r\n\r\n"
            }
            Answer::LimitTransactions => {
                "HTTP/1.1 200 OK\r\nx-sentry-rate-limits: 60:transaction:organization\r\ncontent-length: 2\r\n\r\n{}"
            }
            Answer::Unavailable => {
                "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n"
            }
            Answer::TooLarge => "HTTP/1.1 413 Content Too Large\r\ncontent-length: 0\r\n\r\n",
            Answer::ServerError => {
                "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n"
            }
            Answer::Malformed429 => {
                "HTTP/1.1 429 Too Many Requests\r\nx-sentry-rate-limits: soon;;:,:transaction,-:-:-\r\ncontent-length: 0\r\n\r\n"
            }
            Answer::Malformed200 => {
                "HTTP/1.1 200 OK\r\nx-sentry-rate-limits: soon:transaction:organization, 60, :::\r\nretry-after: later\r\ncontent-length: 2\r\n\r\n{}"
            }
        };
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

#[test]
fn after_a_network_error_nothing_is_attempted_until_the_pause_ends() {
    let server = Server::start(Answer::HangUp);
    let pause = Duration::from_millis(1500);
    let transport = transport(
        &server.dsn(),
        HttpTransportFactory::new().backoff(pause, Duration::from_secs(60)),
    );

    transport.send_envelope(transaction_envelope("first"));
    assert!(transport.flush(FLUSH));
    assert_eq!(server.connections(), 1);
    assert_eq!(server.requests(), 1);

    // Inside the pause: dropped without a connection (and the flush sends no report while
    // paused).
    for n in 0..20 {
        transport.send_envelope(transaction_envelope(&format!("held back {n}")));
    }
    assert!(transport.flush(FLUSH));
    assert_eq!(server.connections(), 1, "no attempt during the pause");

    // After it, the next envelope is tried, and this time Sentry answers; the count of the
    // 21 dropped rides along.
    thread::sleep(pause + Duration::from_millis(200));
    server.answer(Answer::Ok);
    transport.send_envelope(transaction_envelope("after the pause"));
    assert!(transport.flush(FLUSH));
    assert_eq!(server.requests(), 2);
    assert_eq!(server.log()[1].item_types, ["transaction", "client_report"]);
    assert_eq!(
        server.reported(),
        counts(&[
            ("span", "network_error", 21),
            ("transaction", "network_error", 21)
        ])
    );

    // An answer opened the gate for good: the next ones go straight out.
    transport.send_envelope(transaction_envelope("open again"));
    transport.send_envelope(transaction_envelope("still open"));
    assert!(transport.flush(FLUSH));
    assert_eq!(server.requests(), 4);
    assert_eq!(server.delivered(), 3);
}

#[test]
fn a_refused_connection_closes_the_gate_too() {
    // A port nothing listens on: bound, then released.
    let addr = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address")
    };
    let transport = transport(
        &format!("http://public@{addr}/1"),
        HttpTransportFactory::new().backoff(Duration::from_secs(60), Duration::from_secs(60)),
    );
    transport.send_envelope(transaction_envelope("refused"));
    assert!(transport.flush(FLUSH));
    // The gate is closed now; a server coming up on that port within the pause sees nothing.
    let listener = TcpListener::bind(addr).expect("the released port is free again");
    listener.set_nonblocking(true).expect("nonblocking");
    for n in 0..20 {
        transport.send_envelope(transaction_envelope(&format!("held back {n}")));
    }
    assert!(transport.flush(FLUSH));
    assert!(
        listener.accept().is_err(),
        "no connection was attempted while backing off"
    );
}

#[test]
fn unavailable_backs_off_like_a_network_error() {
    let server = Server::start(Answer::Unavailable);
    let transport = transport(
        &server.dsn(),
        HttpTransportFactory::new().backoff(Duration::from_secs(60), Duration::from_secs(60)),
    );
    for n in 0..5 {
        transport.send_envelope(event_envelope(&format!("event {n}")));
        assert!(transport.flush(FLUSH));
    }
    assert_eq!(server.requests(), 1);
}

#[test]
fn a_zero_pause_retries_every_envelope() {
    let server = Server::start(Answer::HangUp);
    let transport = transport(
        &server.dsn(),
        HttpTransportFactory::new().backoff(Duration::ZERO, Duration::ZERO),
    );
    for n in 0..3 {
        transport.send_envelope(event_envelope(&format!("event {n}")));
        // The flush tries the count of the lost event too, which is lost in turn.
        assert!(!transport.flush(FLUSH));
    }
    assert_eq!(
        server.item_types(),
        [
            "event",
            "client_report",
            "event",
            "client_report",
            "event",
            "client_report"
        ]
    );
}

#[test]
fn retry_after_holds_every_envelope_back() {
    let server = Server::start(Answer::TooManyRequests);
    let transport = transport(&server.dsn(), HttpTransportFactory::new());
    transport.send_envelope(event_envelope("limited"));
    assert!(transport.flush(FLUSH));
    server.answer(Answer::Ok);
    transport.send_envelope(event_envelope("held back"));
    transport.send_envelope(transaction_envelope("held back"));
    assert!(transport.flush(FLUSH));
    // Client reports are never rate limited (Sentry counts what it refused with 429 itself).
    assert_eq!(server.item_types(), ["event", "client_report"]);
    assert_eq!(
        server.reported(),
        counts(&[
            ("error", "ratelimit_backoff", 1),
            ("span", "ratelimit_backoff", 1),
            ("transaction", "ratelimit_backoff", 1),
        ])
    );
}

#[test]
fn a_category_limit_holds_back_only_that_category() {
    let server = Server::start(Answer::LimitTransactions);
    let transport = transport(&server.dsn(), HttpTransportFactory::new());
    transport.send_envelope(event_envelope("sets the limit"));
    assert!(transport.flush(FLUSH));
    server.answer(Answer::Ok);
    transport.send_envelope(transaction_envelope("held back"));
    assert!(transport.flush(FLUSH));
    transport.send_envelope(event_envelope("goes out"));
    assert!(transport.flush(FLUSH));
    assert_eq!(server.item_types(), ["event", "client_report", "event"]);
    assert_eq!(
        server.reported(),
        counts(&[
            ("span", "ratelimit_backoff", 1),
            ("transaction", "ratelimit_backoff", 1),
        ])
    );
}

#[test]
fn flush_gives_up_at_its_timeout_when_sentry_never_answers() {
    let server = Server::start(Answer::Never);
    let transport = transport(&server.dsn(), HttpTransportFactory::new().senders(2));
    transport.send_envelope(event_envelope("stuck"));
    // The queue fills while the first requests wait; sending never blocks.
    for n in 0..100 {
        transport.send_envelope(event_envelope(&format!("queued {n}")));
    }
    assert!(!transport.flush(Duration::from_millis(300)));
    assert_eq!(server.requests(), 2, "one request per sender");
}

/// A transport with one sender and a queue of `capacity`.
fn transport_with(dsn: &str, capacity: usize, factory: HttpTransportFactory) -> Arc<dyn Transport> {
    let mut options = ClientOptions::new();
    options.dsn = Some(dsn.parse().expect("dsn"));
    options.transport_channel_capacity = std::num::NonZeroUsize::new(capacity);
    let options = TransportOptions::try_from_client_options(&options).expect("a DSN is set");
    factory.senders(1).create_transport_with_options(options)
}

/// Waits until `server` has logged `n` requests.
fn wait_for_requests(server: &Server, n: usize) {
    let deadline = std::time::Instant::now() + FLUSH;
    while server.requests() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "{} requests, not {n}",
            server.requests()
        );
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_full_queue_is_counted_and_the_flush_sends_the_count() {
    let server = Server::start(Answer::Drip);
    let transport = transport_with(
        &server.dsn(),
        5,
        HttpTransportFactory::new().request_timeout(Duration::from_secs(2)),
    );
    transport.send_envelope(transaction_envelope("in flight"));
    wait_for_requests(&server, 1);
    server.answer(Answer::Ok);
    // Five fit behind it; the other 45 are counted where they are handed over.
    let started = std::time::Instant::now();
    for n in 0..50 {
        transport.send_envelope(transaction_envelope(&format!("queued {n}")));
    }
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "handing over never waits for Sentry: {:?}",
        started.elapsed()
    );
    // The dripping answer times out (2 s): a network error, and the gate closes for 1 s, so
    // the five queued meet it too. After the pause the flush sends the count.
    assert!(transport.flush(FLUSH));
    thread::sleep(Duration::from_millis(1200));
    assert!(transport.flush(FLUSH));
    assert_eq!(server.delivered(), 0);
    assert_eq!(
        server.reported(),
        counts(&[
            ("span", "network_error", 6),
            ("span", "queue_overflow", 45),
            ("transaction", "network_error", 6),
            ("transaction", "queue_overflow", 45),
        ]),
        "51 handed over, each counted once: {:?}",
        server.log()
    );
}

#[test]
fn too_large_and_server_errors_are_counted_never_retried() {
    for (answer, n) in [(Answer::TooLarge, 3), (Answer::ServerError, 4)] {
        let server = Server::start(answer);
        let transport = transport(&server.dsn(), HttpTransportFactory::new());
        for i in 0..n {
            transport.send_envelope(transaction_envelope(&format!("refused {i}")));
        }
        // The flush's count is refused too, and counted again.
        assert!(!transport.flush(FLUSH), "{answer:?}");
        let refused = server.requests();
        assert!(refused > n, "{answer:?}: the count was tried");
        assert!(
            server.log()[..n]
                .iter()
                .all(|l| l.item_types[0] == "transaction"),
            "{answer:?}: {:?}",
            server.log()
        );
        server.answer(Answer::Ok);
        assert!(transport.flush(FLUSH), "{answer:?}");
        assert_eq!(server.requests(), refused + 1, "{answer:?}: only the count");
        assert_eq!(
            server.reported(),
            counts(&[
                ("span", "send_error", n as u64),
                ("transaction", "send_error", n as u64),
            ]),
            "{answer:?}"
        );
        // Sentry answered: no pause.
        transport.send_envelope(transaction_envelope("next"));
        assert!(transport.flush(FLUSH));
        assert_eq!(server.delivered(), 1, "{answer:?}");
    }
}

#[test]
fn a_connection_closed_after_the_status_is_an_answer_before_it_a_network_error() {
    let server = Server::start(Answer::CutBody);
    let transport = transport(
        &server.dsn(),
        HttpTransportFactory::new().backoff(Duration::from_millis(300), Duration::from_secs(1)),
    );
    transport.send_envelope(transaction_envelope("answered, body cut"));
    assert!(transport.flush(FLUSH));
    server.answer(Answer::CutStatus);
    transport.send_envelope(transaction_envelope("status cut"));
    assert!(transport.flush(FLUSH));
    thread::sleep(Duration::from_millis(400));
    server.answer(Answer::Ok);
    transport.send_envelope(transaction_envelope("after"));
    assert!(transport.flush(FLUSH));
    assert_eq!(server.delivered(), 2, "{:?}", server.log());
    assert_eq!(
        server.reported(),
        counts(&[
            ("span", "network_error", 1),
            ("transaction", "network_error", 1)
        ])
    );
    assert_eq!(server.connections(), 3, "a cut connection is not reused");
}

#[test]
fn a_429_whose_rate_limits_do_not_parse_still_holds_back() {
    let server = Server::start(Answer::Malformed429);
    let transport = transport(&server.dsn(), HttpTransportFactory::new());
    transport.send_envelope(event_envelope("limited"));
    assert!(transport.flush(FLUSH));
    server.answer(Answer::Ok);
    transport.send_envelope(transaction_envelope("held back"));
    assert!(transport.flush(FLUSH));
    assert_eq!(server.item_types(), ["event", "client_report"]);
    assert_eq!(
        server.reported(),
        counts(&[
            ("span", "ratelimit_backoff", 1),
            ("transaction", "ratelimit_backoff", 1),
        ])
    );
}

#[test]
fn rate_limits_that_do_not_parse_on_a_200_limit_nothing() {
    let server = Server::start(Answer::Malformed200);
    let transport = transport(&server.dsn(), HttpTransportFactory::new());
    for n in 0..5 {
        transport.send_envelope(transaction_envelope(&format!("tx {n}")));
        assert!(transport.flush(FLUSH));
    }
    assert_eq!(server.delivered(), 5);
    assert_eq!(server.reported(), []);
}

#[test]
fn the_shutdown_counts_what_is_left_and_sends_the_count_on_a_new_connection() {
    let server = Server::start(Answer::Never);
    let transport = transport_with(&server.dsn(), 30, HttpTransportFactory::new());
    transport.send_envelope(transaction_envelope("never answered"));
    wait_for_requests(&server, 1);
    // Sentry is back for new connections; the first one still hangs.
    server.answer(Answer::Ok);
    for n in 0..40 {
        transport.send_envelope(transaction_envelope(&format!("queued {n}")));
    }
    let started = std::time::Instant::now();
    let timeout = Duration::from_millis(1000);
    assert!(!transport.shutdown(timeout), "not everything was sent");
    assert!(
        started.elapsed() < timeout + Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.delivered(), 0);
    assert_eq!(
        server.reported(),
        counts(&[
            ("span", "internal_sdk_error", 30),
            ("span", "network_error", 1),
            ("span", "queue_overflow", 10),
            ("transaction", "internal_sdk_error", 30),
            ("transaction", "network_error", 1),
            ("transaction", "queue_overflow", 10),
        ])
    );
    assert_eq!(server.connections(), 2);
    // After the shutdown, nothing is queued: counted, but no one will send it.
    transport.send_envelope(transaction_envelope("too late"));
    assert_eq!(server.requests(), 2);
}

/// A transaction of 20 db spans, as one envelope.
fn twenty_span_transaction() -> Envelope {
    let mut tx = Transaction {
        name: Some("GET /gzipped".to_owned()),
        ..Default::default()
    };
    for n in 0..20 {
        tx.spans.push(sentry::protocol::Span {
            op: Some("db".to_owned()),
            description: Some(format!("SELECT * FROM items WHERE id = {n}")),
            ..Default::default()
        });
    }
    Envelope::from(tx)
}

#[test]
fn transactions_go_gzipped_and_tiny_envelopes_as_they_are() {
    let endpoint = SentryEndpoint::start();
    let gzipping = transport(&endpoint.dsn(), HttpTransportFactory::new());
    gzipping.send_envelope(twenty_span_transaction());
    gzipping.send_envelope(event_envelope("tiny"));
    assert!(gzipping.flush(FLUSH));
    endpoint.wait_for("both envelopes", FLUSH, |r| (r.len() == 2).then_some(()));
    let compressed = endpoint.with_received(|received| {
        let tx = received
            .iter()
            .find(|r| r.has_transaction("GET /gzipped"))
            .expect("the transaction");
        assert!(tx.gzip, "a transaction goes compressed");
        assert_eq!(tx.transactions()[0].spans.len(), 20);
        let event = received
            .iter()
            .find(|r| r.items[0].0["type"] == "event")
            .expect("the event");
        assert!(
            !event.gzip,
            "an envelope under GZIP_MIN_BYTES goes as it is"
        );
        assert_eq!(event.items[0].1["message"], "tiny");
        tx.wire_bytes
    });

    let plain = SentryEndpoint::start();
    let uncompressed = transport(&plain.dsn(), HttpTransportFactory::new().gzip(false));
    uncompressed.send_envelope(twenty_span_transaction());
    assert!(uncompressed.flush(FLUSH));
    plain.wait_for("the transaction", FLUSH, |r| (!r.is_empty()).then_some(()));
    let whole = plain.with_received(|received| {
        assert!(!received[0].gzip);
        received[0].wire_bytes
    });
    // zlib-rs at the fastest level: about 2.4 × for this transaction (miniz_oxide made 3 ×).
    assert!(
        compressed * 2 < whole,
        "{compressed} bytes compressed, {whole} bytes as it is"
    );
}

/// sentry-core keeps at most 1,000 finished children per transaction (it keeps the 1,001st
/// too: it checks before pushing) and counts the rest as `buffer_overflow` spans; the count
/// rides on the transaction's own envelope.
#[test]
fn spans_over_the_cap_are_counted_on_the_transactions_envelope() {
    let server = Server::start(Answer::Ok);
    let mut options = ClientOptions::new().traces_sample_rate(1.0);
    options.dsn = Some(server.dsn().parse().expect("dsn"));
    options.transport = Some(Arc::new(HttpTransportFactory::new()));
    let client = Arc::new(sentry::Client::from(options));
    let hub = Arc::new(Hub::new(Some(Arc::clone(&client)), Default::default()));
    Hub::run(hub, || {
        let ctx = sentry::TransactionContext::new("batch", "task");
        let tx = sentry::start_transaction(ctx);
        sentry::configure_scope(|scope| scope.set_span(Some(tx.clone().into())));
        for n in 0..1200 {
            one_row(n);
        }
        tx.finish();
    });
    assert!(client.flush(Some(FLUSH)));
    let log = server.log();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].item_types, ["transaction", "client_report"]);
    assert!(log[0].gzip);
    assert_eq!(server.delivered(), 1);
    assert_eq!(
        server.reported(),
        counts(&[("span", "buffer_overflow", 199)])
    );
}

#[insights_runtime::traced(op = "task.row")]
fn one_row(n: u32) -> u32 {
    n + 1
}
