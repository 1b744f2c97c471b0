//! A local stand-in for Sentry's ingestion endpoint, and a minimal HTTP client.
//!
//! The examples run with `SENTRY_DSN=http://public@127.0.0.1:<port>/1`, so `sentry`'s ureq
//! transport POSTs each envelope to `/api/1/envelope/` here. `sentry` 0.49 sends the envelope
//! uncompressed (`Envelope::to_writer` into the body, no `Content-Encoding`); the runtime's
//! transport gzips it (`Content-Encoding: gzip`), which is decoded here and noted in
//! [`Received::gzip`]. Any other encoding, or a gzip body that does not decode, is recorded as a
//! failure, so a change in a transport shows up as a failing test rather than as missing
//! transactions.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use sentry::protocol::value::{from_value, Value};
use sentry::protocol::Transaction;

/// One envelope as it arrived: POSTed to project 1's envelope endpoint with the DSN's key
/// (anything else is recorded as a malformed request, which fails the test).
#[derive(Debug)]
pub struct Received {
    /// The envelope's header line.
    pub header: Value,
    /// Each item: its header and its payload, parsed as JSON.
    pub items: Vec<(Value, Value)>,
    /// Whether it came `Content-Encoding: gzip`.
    #[allow(dead_code, reason = "read by tests/transport.rs, not by every suite")]
    pub gzip: bool,
    /// The body's size on the wire, in bytes (compressed when `gzip`).
    #[allow(dead_code, reason = "read by tests/transport.rs, not by every suite")]
    pub wire_bytes: usize,
}

impl Received {
    /// Whether this envelope holds a transaction named `name`.
    pub fn has_transaction(&self, name: &str) -> bool {
        self.transactions()
            .iter()
            .any(|t| t.name.as_deref() == Some(name))
    }

    /// The transactions in this envelope.
    pub fn transactions(&self) -> Vec<Transaction<'static>> {
        self.items
            .iter()
            .filter(|(header, _)| header["type"] == "transaction")
            .map(|(_, payload)| {
                from_value(payload.clone())
                    .unwrap_or_else(|e| panic!("not a transaction ({e}): {payload:#}"))
            })
            .collect()
    }
}

#[derive(Default)]
struct Inbox {
    envelopes: Vec<Received>,
    /// Requests that were not well-formed envelopes.
    failures: Vec<String>,
}

/// The endpoint: a listener on a loopback port, and what it has received.
pub struct SentryEndpoint {
    addr: SocketAddr,
    inbox: Arc<(Mutex<Inbox>, Condvar)>,
}

impl SentryEndpoint {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the Sentry endpoint");
        let addr = listener.local_addr().expect("local address");
        let inbox: Arc<(Mutex<Inbox>, Condvar)> = Arc::default();
        let shared = Arc::clone(&inbox);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        SentryEndpoint { addr, inbox }
    }

    /// The DSN pointing here, for project 1.
    pub fn dsn(&self) -> String {
        format!("http://public@{}/1", self.addr)
    }

    /// Waits until `ready` accepts what has arrived, or panics after `timeout` listing it.
    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        ready: impl Fn(&[Received]) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        let (lock, arrived) = &*self.inbox;
        let mut inbox = lock.lock().unwrap();
        loop {
            assert!(
                inbox.failures.is_empty(),
                "the Sentry endpoint got malformed requests: {:#?}",
                inbox.failures
            );
            if let Some(found) = ready(&inbox.envelopes) {
                return found;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out after {timeout:?} waiting for {what}; the endpoint received: {:#?}",
                inbox
                    .envelopes
                    .iter()
                    .flat_map(Received::transactions)
                    .map(|t| t.name)
                    .collect::<Vec<_>>()
            );
            inbox = arrived.wait_timeout(inbox, left).unwrap().0;
        }
    }

    /// Runs `f` over everything received so far.
    pub fn with_received<T>(&self, f: impl FnOnce(&[Received]) -> T) -> T {
        let inbox = self.inbox.0.lock().unwrap();
        assert!(
            inbox.failures.is_empty(),
            "the Sentry endpoint got malformed requests: {:#?}",
            inbox.failures
        );
        f(&inbox.envelopes)
    }
}

/// Every transaction in `received`.
pub fn transactions(received: &[Received]) -> Vec<Transaction<'static>> {
    received.iter().flat_map(Received::transactions).collect()
}

/// Answers requests on one keep-alive connection until the client closes it.
fn serve(stream: TcpStream, inbox: &(Mutex<Inbox>, Condvar)) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader) {
        let outcome = request.and_then(|request| {
            if request.method != "POST" || request.path != "/api/1/envelope/" {
                return Err(format!(
                    "{} {}: not an envelope POST",
                    request.method, request.path
                ));
            }
            let auth = request.header("x-sentry-auth").unwrap_or_default();
            if !auth.contains("sentry_key=public") {
                return Err(format!("X-Sentry-Auth without the DSN's key: {auth:?}"));
            }
            let body = request.decoded_body()?;
            let (header, items) = decode_envelope(&body)?;
            Ok(Received {
                header,
                items,
                gzip: request.header("content-encoding").is_some(),
                wire_bytes: request.body.len(),
            })
        });
        {
            let (lock, arrived) = inbox;
            let mut inbox = lock.lock().unwrap();
            match outcome {
                Ok(received) => inbox.envelopes.push(received),
                Err(failure) => inbox.failures.push(failure),
            }
            arrived.notify_all();
        }
        let answer =
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// An envelope: a header line, then for each item a header line and a payload, either of the
/// header's `length` in bytes or up to the next newline.
pub fn decode_envelope(body: &[u8]) -> Result<(Value, Vec<(Value, Value)>), String> {
    let json = |bytes: &[u8]| -> Result<Value, String> {
        std::str::from_utf8(bytes)
            .map_err(|e| e.to_string())?
            .parse::<Value>()
            .map_err(|e| format!("{e}: {}", String::from_utf8_lossy(bytes)))
    };
    let line_end = |from: usize| {
        body[from..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(body.len(), |n| from + n)
    };
    let end = line_end(0);
    let header = json(&body[..end])?;
    let mut at = end + 1;
    let mut items = Vec::new();
    while at < body.len() {
        let end = line_end(at);
        if end == at {
            at += 1; // a trailing newline
            continue;
        }
        let item_header = json(&body[at..end])?;
        at = end + 1;
        let payload_end = match item_header["length"].as_u64() {
            Some(length) => at + usize::try_from(length).map_err(|e| e.to_string())?,
            None => line_end(at),
        };
        let payload = body
            .get(at..payload_end)
            .ok_or_else(|| format!("item payload cut short: {item_header}"))?;
        items.push((item_header, json(payload)?));
        at = payload_end + 1;
    }
    Ok((header, items))
}

/// A request as read off the connection (header names lower-cased).
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as sent before its `Content-Encoding`: gzip is decoded (at most 16 MiB), any
    /// other encoding is an error.
    pub fn decoded_body(&self) -> Result<Vec<u8>, String> {
        match self.header("content-encoding") {
            None => Ok(self.body.clone()),
            Some(encoding) if encoding.eq_ignore_ascii_case("gzip") => {
                use std::io::Read as _;
                let mut decoded = Vec::new();
                flate2::read::GzDecoder::new(&self.body[..])
                    .take(16 << 20)
                    .read_to_end(&mut decoded)
                    .map_err(|e| format!("a gzip body that does not decode: {e}"))?;
                Ok(decoded)
            }
            Some(encoding) => Err(format!("unexpected Content-Encoding {encoding:?}")),
        }
    }
}

/// The next request on the connection; `None` at its end.
pub fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Result<Request, String>> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let headers = read_headers(reader)?;
    let body = read_body(reader, &headers)?;
    Some(Ok(Request {
        method,
        path,
        headers,
        body,
    }))
}

fn read_headers(reader: &mut impl BufRead) -> Option<Vec<(String, String)>> {
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            return Some(headers);
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
}

/// A body of `content-length` bytes or in chunks.
fn read_body(reader: &mut impl BufRead, headers: &[(String, String)]) -> Option<Vec<u8>> {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let mut body = Vec::new();
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; size + 2]; // the chunk and its CRLF
            reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                return Some(body);
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    let length: usize = header("content-length").map_or(Some(0), |v| v.parse().ok())?;
    body.resize(length, 0);
    reader.read_exact(&mut body).ok()?;
    Some(body)
}

/// A response: status, headers (names lower-cased), body.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on a new connection.
pub fn request(addr: &str, method: &str, path: &str, body: &str) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: text/plain\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    let status: u16 = status
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{method} {path}: not an HTTP response: {status:?}"));
    let headers = read_headers(&mut reader).expect("response headers");
    let body = read_body(&mut reader, &headers).expect("response body");
    Response {
        status,
        headers,
        body: String::from_utf8(body).expect("a UTF-8 body"),
    }
}

/// The `trace` headers (the DSC) of the envelopes holding a transaction named `name`.
pub fn trace_headers(received: &[Received], name: &str) -> Vec<Value> {
    received
        .iter()
        .filter(|r| r.has_transaction(name))
        .map(|r| r.header["trace"].clone())
        .collect()
}
