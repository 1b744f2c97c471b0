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
}

/// A server counting connections and requests, answering as told.
struct Server {
    addr: SocketAddr,
    answer: Arc<Mutex<Answer>>,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    /// The `type` of each request's first envelope item.
    item_types: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(answer: Answer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let server = Server {
            addr: listener.local_addr().expect("address"),
            answer: Arc::new(Mutex::new(answer)),
            connections: Arc::default(),
            requests: Arc::default(),
            item_types: Arc::default(),
        };
        let (answer, connections, requests, item_types) = (
            Arc::clone(&server.answer),
            Arc::clone(&server.connections),
            Arc::clone(&server.requests),
            Arc::clone(&server.item_types),
        );
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                connections.fetch_add(1, Ordering::SeqCst);
                let (answer, requests, item_types) = (
                    Arc::clone(&answer),
                    Arc::clone(&requests),
                    Arc::clone(&item_types),
                );
                thread::spawn(move || serve(stream, &answer, &requests, &item_types));
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
        self.requests.load(Ordering::SeqCst)
    }

    /// The `type` of each request's first item, in arrival order.
    fn item_types(&self) -> Vec<String> {
        self.item_types.lock().unwrap().clone()
    }
}

fn serve(
    stream: TcpStream,
    answer: &Mutex<Answer>,
    requests: &AtomicUsize,
    types: &Mutex<Vec<String>>,
) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Some(Ok(request)) = read_request(&mut reader) {
        requests.fetch_add(1, Ordering::SeqCst);
        let first_item = decode_envelope(&request.body)
            .ok()
            .and_then(|(_, items)| items.into_iter().next());
        let item_type = first_item.map_or("?".to_owned(), |(header, _)| {
            header["type"].as_str().unwrap_or("?").to_owned()
        });
        types.lock().unwrap().push(item_type);
        let response = match *answer.lock().unwrap() {
            Answer::HangUp => return,
            Answer::Never => {
                thread::sleep(Duration::from_secs(3600));
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

    // Inside the pause: dropped without a connection.
    for n in 0..20 {
        transport.send_envelope(transaction_envelope(&format!("held back {n}")));
    }
    assert!(transport.flush(FLUSH));
    assert_eq!(server.connections(), 1, "no attempt during the pause");

    // After it, the next envelope is tried, and this time Sentry answers.
    thread::sleep(pause + Duration::from_millis(200));
    server.answer(Answer::Ok);
    transport.send_envelope(transaction_envelope("after the pause"));
    assert!(transport.flush(FLUSH));
    assert_eq!(server.requests(), 2);

    // An answer opened the gate for good: the next ones go straight out.
    transport.send_envelope(transaction_envelope("open again"));
    transport.send_envelope(transaction_envelope("still open"));
    assert!(transport.flush(FLUSH));
    assert_eq!(server.requests(), 4);
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
        assert!(transport.flush(FLUSH));
    }
    assert_eq!(server.requests(), 3);
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
    assert_eq!(server.requests(), 1);
}

#[test]
fn a_category_limit_holds_back_only_that_category() {
    let server = Server::start(Answer::LimitTransactions);
    let transport = transport(&server.dsn(), HttpTransportFactory::new());
    transport.send_envelope(event_envelope("sets the limit"));
    assert!(transport.flush(FLUSH));
    server.answer(Answer::Ok);
    transport.send_envelope(transaction_envelope("held back"));
    transport.send_envelope(event_envelope("goes out"));
    assert!(transport.flush(FLUSH));
    assert_eq!(server.item_types(), ["event", "event"]);
}

#[test]
fn flush_gives_up_at_its_timeout_when_sentry_never_answers() {
    let server = Server::start(Answer::Never);
    let transport = transport(&server.dsn(), HttpTransportFactory::new());
    transport.send_envelope(event_envelope("stuck"));
    // The channel fills while the first request waits; sending never blocks.
    for n in 0..100 {
        transport.send_envelope(event_envelope(&format!("queued {n}")));
    }
    assert!(!transport.flush(Duration::from_millis(300)));
    assert_eq!(server.requests(), 1);
}
