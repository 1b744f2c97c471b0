//! An HTTP transport for Sentry that keeps up with a busy service, backs off while Sentry
//! cannot be reached, and accounts for everything it drops (feature `transport`).
//!
//! `sentry`'s own HTTP transports post one envelope at a time from one thread, drop what
//! overflows their queue of 30, and retry every envelope the moment the last one failed. This
//! transport instead:
//!
//! - **Sends from a few threads at once** ([`senders`](HttpTransportFactory::senders), 2 by
//!   default), each over its own keep-alive connection, from one bounded queue (the client
//!   options' `transport_channel_capacity`, 30 by default). Handing an envelope over never
//!   blocks: what does not fit is dropped there, and counted.
//! - **Compresses** each envelope with gzip (`Content-Encoding: gzip`, as the Python and
//!   JavaScript SDKs do) unless it is under [`GZIP_MIN_BYTES`], where compressing costs more
//!   than it saves.
//! - **Backs off:** network errors (refused, reset, timed out, DNS) and `502`/`503`/`504` close
//!   the gate for 1 s, then 2 s, 4 s, ... up to 60 s, and any other answer opens it again.
//!   While it is closed, envelopes are dropped where they are handed over, before they are
//!   serialized or queued.
//! - **Honours rate limits** (`X-Sentry-Rate-Limits`, `Retry-After`, `429`) per category as
//!   `sentry`'s transports do; a `429` whose headers do not parse still holds everything back
//!   for 60 s.
//! - **Loses nothing silently:** every envelope is either answered by Sentry or counted, by data
//!   category (`transaction`, `span`, `error`, ...) and reason (`queue_overflow`,
//!   `network_error`, `ratelimit_backoff`, `send_error` for any other refusal such as `413` or
//!   `500`, `internal_sdk_error`), in a [client report] that rides on the next envelope sent. A
//!   flush that empties the queue sends what is left on its own, and so does the shutdown,
//!   once more even while backing off: the last word of a process whose Sentry came back.
//!   Nothing is ever retried, so nothing is counted twice, with one exception: a request still
//!   unanswered when the shutdown's flush timeout runs out is counted as a `network_error` even
//!   if its answer comes later.
//! - **Sends envelopes as they are,** headers included (the trace's dynamic sampling context);
//!   `sentry`'s transports rebuild every envelope and drop all its headers but the event id.
//! - **No request waits forever:** connecting times out after 5 s and a whole request after
//!   30 s ([`request_timeout`](HttpTransportFactory::request_timeout)), so a Sentry that accepts
//!   connections and never answers holds up one request per sending thread.
//!
//! What `sentry` drops itself (a transaction's spans beyond its 1,000th child, envelopes a
//! `before_send` discards) it counts in its own client report, which it attaches to the next
//! envelope the client sends (for the span cap, the transaction itself).
//!
//! [`setup::init`](crate::setup::init) uses it whenever a DSN is set and no transport was given.
//! TLS comes from this crate's `native-tls` or `rustls` feature; without either, only `http://`
//! DSNs (a local relay) can be reached. Set it by hand with [`HttpTransportFactory`]:
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use insights_runtime::transport::HttpTransportFactory;
//!
//! let mut options = sentry::ClientOptions::new();
//! options.dsn = "https://key@o0.ingest.sentry.io/0".parse().ok();
//! options.transport = Some(Arc::new(
//!     HttpTransportFactory::new()
//!         .senders(2)
//!         .backoff(Duration::from_millis(500), Duration::from_secs(30)),
//! ));
//! let _sentry = sentry::init(options);
//! ```
//!
//! Do not wrap it in another transport that drops envelopes without recording them, and keep
//! the number of senders small: each is a thread and a connection to Sentry.
//!
//! [client report]: https://develop.sentry.dev/sdk/telemetry/client-reports/

mod ledger;
mod resolver;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use sentry::protocol::client_report::{ItemLoss, LossSource, Reason};
use sentry::protocol::{
    Context, DynamicSamplingContext, EnvelopeFilterCallbacks, EnvelopeItem, ItemContainer,
    SampleRand,
};
use sentry::transports::{RateLimiter, RateLimitingCategory};
use sentry::types::Scheme;
use sentry::{Envelope, Transport, TransportFactory, TransportOptions};

use self::ledger::Ledger;
use crate::dsc;
use crate::queue::propagation::{dsc_entries, head_sample_rand};
use crate::scrub::Scrubber;

/// The queue's size when the client options set none (`sentry`'s own default).
const DEFAULT_CAPACITY: usize = 30;
/// Sending threads (and connections) when the factory sets none.
const DEFAULT_SENDERS: usize = 2;
/// The most sending threads a factory may ask for.
const MAX_SENDERS: usize = 16;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The most of an answer's body that is read (so that the connection can be reused).
const MAX_ANSWER_BYTES: u64 = 64 * 1024;

/// Envelopes smaller than this many bytes are sent uncompressed: under it, gzip's header and
/// the CPU it costs are not worth the bytes saved (an event with a short message, a client
/// report on its own). Transactions are well above it.
pub const GZIP_MIN_BYTES: usize = 512;

/// Makes an [`HttpTransport`] for each client: put it in
/// [`ClientOptions::transport`](sentry::ClientOptions::transport).
#[derive(Clone)]
pub struct HttpTransportFactory {
    backoff: Backoff,
    agent: Option<ureq::Agent>,
    scrubber: Option<Arc<Scrubber>>,
    debug: bool,
    senders: usize,
    request_timeout: Duration,
    gzip: bool,
}

impl HttpTransportFactory {
    /// Two senders, gzip on, backing off from 1 s up to 60 s, with an agent built from the
    /// client options (proxy, `accept_invalid_certs`, this crate's TLS feature).
    pub fn new() -> Self {
        HttpTransportFactory {
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(60)),
            agent: None,
            scrubber: None,
            debug: false,
            senders: DEFAULT_SENDERS,
            request_timeout: REQUEST_TIMEOUT,
            gzip: true,
        }
    }

    /// The first pause after a failure, and the longest: each failure in a row doubles the pause
    /// up to `max`. A zero `first` turns backing off off.
    pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
        self.backoff = Backoff::new(first, max);
        self
    }

    /// How many threads send at once, each over a keep-alive connection of its own: 1 to 16
    /// (values outside are clamped), 2 by default. One is `sentry`'s own behaviour; more keep
    /// up with more transactions a second when Sentry is near, at a thread and a connection
    /// each.
    pub fn senders(mut self, senders: usize) -> Self {
        self.senders = senders.clamp(1, MAX_SENDERS);
        self
    }

    /// The longest a request may take, from connecting to the end of the answer (30 s by
    /// default). A Sentry that answers slower than this is counted as unreachable.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Whether envelopes of at least [`GZIP_MIN_BYTES`] are sent gzip-compressed (on by
    /// default). Off, every envelope is sent as it is, as `sentry` 0.49 does.
    pub fn gzip(mut self, on: bool) -> Self {
        self.gzip = on;
        self
    }

    /// Scrubs each envelope on a sending thread, just before it is serialized, as
    /// [`ScrubbingTransport`](crate::scrub::ScrubbingTransport) would on the thread that
    /// finished the transaction. An envelope dropped (Sentry unreachable, the queue full) is then
    /// never scrubbed, and request threads never wait on it. `setup::init` does this.
    pub fn scrubber(mut self, scrubber: Arc<Scrubber>) -> Self {
        self.scrubber = Some(scrubber);
        self
    }

    /// Prints to stderr, prefixed `[insights]`, each failed send, each refusal by Sentry and each
    /// pause, as `sentry`'s transports do with [`ClientOptions::debug`](sentry::ClientOptions).
    /// At most one line per attempt, and no attempt is made while paused. `setup::init` sets it
    /// from the client options.
    pub fn debug(mut self, on: bool) -> Self {
        self.debug = on;
        self
    }

    /// Sends through this agent instead (its own TLS roots, proxy, timeouts). Its
    /// `http_status_as_error` setting is overridden per request: statuses are read, not raised.
    /// The agent's pool should keep at least as many idle connections per host as there are
    /// [`senders`](Self::senders).
    pub fn agent(mut self, agent: ureq::Agent) -> Self {
        self.agent = Some(agent);
        self
    }
}

impl Default for HttpTransportFactory {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for HttpTransportFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTransportFactory")
            .field("backoff", &self.backoff)
            .field("agent", &self.agent.is_some())
            .field("scrubber", &self.scrubber)
            .field("debug", &self.debug)
            .field("senders", &self.senders)
            .field("request_timeout", &self.request_timeout)
            .field("gzip", &self.gzip)
            .finish()
    }
}

impl TransportFactory for HttpTransportFactory {
    fn create_transport_with_options(&self, options: TransportOptions) -> Arc<dyn Transport> {
        let agent = self
            .agent
            .clone()
            .unwrap_or_else(|| agent_for(&options, self.senders));
        Arc::new(HttpTransport::spawn(&options, agent, self))
    }
}

fn agent_for(options: &TransportOptions, senders: usize) -> ureq::Agent {
    let proxy = match options.dsn.scheme() {
        Scheme::Https => options.https_proxy.as_ref().or(options.http_proxy.as_ref()),
        Scheme::Http => options.http_proxy.as_ref(),
    };
    // A proxy that does not parse is ignored rather than failing the set-up, as `sentry` does.
    let proxy = proxy.and_then(|p| ureq::Proxy::new(p).ok());
    let config = ureq::Agent::config_builder()
        .proxy(proxy)
        .max_idle_connections_per_host(senders)
        .max_idle_connections(senders)
        .timeout_connect(Some(CONNECT_TIMEOUT));
    // Without a TLS feature ureq has no TLS settings, and `https://` requests fail (recorded as
    // network errors).
    #[cfg(any(feature = "native-tls", feature = "rustls"))]
    let config = {
        let tls =
            ureq::tls::TlsConfig::builder().disable_verification(options.accept_invalid_certs);
        // ureq picks rustls unless told otherwise.
        #[cfg(feature = "native-tls")]
        let tls = tls.provider(ureq::tls::TlsProvider::NativeTls);
        config.tls_config(tls.build())
    };
    ureq::Agent::with_parts(
        config.build(),
        ureq::unversioned::transport::DefaultConnector::default(),
        resolver::CachingResolver::new(ureq::unversioned::resolver::DefaultResolver::default()),
    )
}

/// How long to stop sending after failures in a row.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    first: Duration,
    max: Duration,
}

impl Backoff {
    fn new(first: Duration, max: Duration) -> Self {
        Backoff {
            first,
            max: max.max(first),
        }
    }

    /// The pause after the `failures`-th failure in a row (1-based).
    fn pause(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        self.first
            .checked_mul(1 << doublings)
            .map_or(self.max, |pause| pause.min(self.max))
    }
}

/// Open or closed, shared by the callers (who drop envelopes while it is closed) and the
/// senders (who close it). One atomic load and a clock read per envelope.
#[derive(Debug)]
struct Gate {
    origin: Instant,
    /// Milliseconds after `origin` before which nothing is sent; 0 when open.
    closed_until: AtomicU64,
}

impl Gate {
    fn new() -> Self {
        Gate {
            origin: Instant::now(),
            closed_until: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn is_closed(&self) -> bool {
        let until = self.closed_until.load(Ordering::Relaxed);
        until != 0 && self.now() < until
    }

    fn close_for(&self, pause: Duration) {
        if pause.is_zero() {
            return self.open();
        }
        let pause = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX);
        let until = self.now().saturating_add(pause).max(1);
        self.closed_until.store(until, Ordering::Relaxed);
    }

    fn open(&self) {
        self.closed_until.store(0, Ordering::Relaxed);
    }
}

/// An envelope a sender has taken: its number, and what it would lose if it never arrived
/// (computed when it was taken, so that a shutdown can count it without it).
#[derive(Debug)]
struct InFlight {
    seq: u64,
    losses: Vec<ItemLoss>,
    /// Counted by a shutdown that could not wait for it: its outcome is not recorded again.
    abandoned: bool,
}

#[derive(Debug, Default)]
struct Queue {
    /// Envelopes waiting for a sender, with the number each was given, in order.
    waiting: VecDeque<(u64, Box<Envelope>)>,
    next_seq: u64,
    in_flight: Vec<InFlight>,
    /// Set by the shutdown and by dropping the transport: nothing more is queued.
    closed: bool,
    /// Threads waiting in `flush`, to be woken when an envelope is done.
    flushers: usize,
}

impl Queue {
    /// Whether every envelope numbered below `target` has been sent or dropped.
    fn done_before(&self, target: u64) -> bool {
        self.waiting.front().is_none_or(|(seq, _)| *seq >= target)
            && self
                .in_flight
                .iter()
                .all(|f| f.abandoned || f.seq >= target)
    }
}

/// What the transport and its senders share.
struct Shared {
    url: String,
    /// `url` parsed once, and the auth header validated once: both are cloned (a reference
    /// count) into every request rather than parsed again. `None` if they do not parse, when
    /// the request is built from the text and fails as ureq says.
    uri: Option<ureq::http::Uri>,
    auth: String,
    auth_header: Option<ureq::http::HeaderValue>,
    agent: ureq::Agent,
    backoff: Backoff,
    scrubber: Option<Arc<Scrubber>>,
    debug: bool,
    gzip: bool,
    request_timeout: Duration,
    capacity: usize,
    gate: Gate,
    failures: AtomicU32,
    limits: Mutex<RateLimiter>,
    ledger: Ledger,
    queue: Mutex<Queue>,
    /// Senders wait here for envelopes.
    work: Condvar,
    /// Flushes wait here for envelopes to be done.
    done: Condvar,
}

/// Sends envelopes from threads of its own, counting what it drops. Made by
/// [`HttpTransportFactory`].
pub struct HttpTransport {
    shared: Arc<Shared>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl HttpTransport {
    fn spawn(
        options: &TransportOptions,
        agent: ureq::Agent,
        factory: &HttpTransportFactory,
    ) -> Self {
        let capacity = options
            .transport_channel_capacity
            .map_or(DEFAULT_CAPACITY, usize::from);
        let url = options.dsn.envelope_api_url().to_string();
        let auth = options.dsn.to_auth(Some(&options.user_agent)).to_string();
        let shared = Arc::new(Shared {
            uri: url.parse().ok(),
            url,
            auth_header: ureq::http::HeaderValue::from_str(&auth).ok(),
            auth,
            agent,
            backoff: factory.backoff,
            scrubber: factory.scrubber.clone(),
            debug: factory.debug,
            gzip: factory.gzip,
            request_timeout: factory.request_timeout,
            capacity,
            gate: Gate::new(),
            failures: AtomicU32::new(0),
            limits: Mutex::new(RateLimiter::new()),
            ledger: Ledger::new(),
            queue: Mutex::new(Queue::default()),
            work: Condvar::new(),
            done: Condvar::new(),
        });
        let mut started = 0;
        for n in 0..factory.senders {
            let sender = Arc::clone(&shared);
            let spawned = thread::Builder::new()
                .name(format!("insights-sentry-transport-{n}"))
                .spawn(move || sender.run());
            started += usize::from(spawned.is_ok());
        }
        // Without a thread nothing would ever leave the queue: Sentry is off, the program is
        // not, and every envelope is counted as lost where it is handed over.
        if started == 0 {
            lock(&shared.queue).closed = true;
        }
        HttpTransport { shared }
    }
}

impl Transport for HttpTransport {
    fn send_envelope(&self, envelope: Envelope) {
        let shared = &*self.shared;
        if envelope.items().next().is_none() {
            return;
        }
        if shared.gate.is_closed() {
            shared.ledger.record(&envelope, Reason::NetworkError);
            return;
        }
        let mut queue = lock(&shared.queue);
        let refused = if queue.closed {
            Some(Reason::InternalSdkError)
        } else if queue.waiting.len() >= shared.capacity {
            Some(Reason::QueueOverflow)
        } else {
            None
        };
        if let Some(reason) = refused {
            drop(queue);
            shared.ledger.record(&envelope, reason);
            return;
        }
        let seq = queue.next_seq;
        queue.next_seq += 1;
        queue.waiting.push_back((seq, Box::new(envelope)));
        drop(queue);
        shared.work.notify_one();
    }

    /// Waits, at most `timeout`, until every envelope handed over before the call has been sent
    /// or dropped, then sends the counts of what was dropped, if any.
    fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        self.shared.wait_done(deadline) && self.shared.send_report(deadline, false)
    }

    /// As [`flush`](Self::flush), keeping part of the timeout (a fifth, at most 1 s) for the
    /// last client report: what is still queued when the rest has run out, or still waiting
    /// for Sentry's answer, is counted, and the count sent once more even while backing off.
    fn shutdown(&self, timeout: Duration) -> bool {
        let shared = &*self.shared;
        let start = Instant::now();
        let deadline = start + timeout;
        let reserve = (timeout / 5).min(Duration::from_secs(1));
        let drained = shared.wait_done(deadline - reserve);
        let (left, abandoned) = {
            let mut queue = lock(&shared.queue);
            queue.closed = true;
            let left: Vec<_> = queue.waiting.drain(..).collect();
            let mut abandoned = Vec::new();
            for f in queue.in_flight.iter_mut().filter(|f| !f.abandoned) {
                f.abandoned = true;
                abandoned.append(&mut f.losses);
            }
            (left, abandoned)
        };
        shared.work.notify_all();
        for (_, envelope) in &left {
            shared.ledger.record(&**envelope, Reason::InternalSdkError);
        }
        shared
            .ledger
            .record_losses(&abandoned, Reason::NetworkError);
        let reported = shared.send_report(deadline, true);
        drained && reported
    }
}

impl Drop for HttpTransport {
    /// Does not join the threads: a request in flight ends within its timeout, and envelopes
    /// still queued are dropped. `sentry` shuts the transport down (bounded) before it drops it.
    fn drop(&mut self) {
        lock(&self.shared.queue).closed = true;
        self.shared.work.notify_all();
    }
}

impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTransport")
            .field("backing_off", &self.shared.gate.is_closed())
            .finish()
    }
}

/// The envelope with its trace's DSC in the `trace` header, as Sentry decides a whole trace from
/// it: the DSC frozen for the trace (continued from another service, or written into a baggage
/// by this one as the head), else `sentry`'s partial header completed with what the baggage of
/// a head trace would say. A trace continued from an SDK that sent no DSC keeps `sentry`'s
/// header. Sending a transaction releases its trace from [`crate::dsc`].
fn with_trace_dsc(envelope: Envelope) -> Envelope {
    let Some(transaction) = envelope.items().find_map(|item| match item {
        EnvelopeItem::Transaction(transaction) => Some(transaction),
        _ => None,
    }) else {
        return envelope;
    };
    let Some(Context::Trace(trace)) = transaction.contexts.get("trace") else {
        return envelope;
    };
    let trace_id = trace.trace_id;
    let frozen = dsc::release(trace_id);
    let dsc = match frozen {
        Some(frozen) if frozen.is_empty() => return envelope,
        Some(frozen) => from_entries(&dsc_entries(&frozen)),
        None => {
            let Some(partial) = partial_dsc(&envelope) else {
                return envelope;
            };
            // Built from typed values rather than from baggage entries: this runs for every
            // transaction a head service sends.
            let text = |key: &str| partial.get(key).and_then(|v| v.as_str());
            let sampled = match text("sampled") {
                Some("true") => Some(true),
                Some("false") => Some(false),
                _ => None,
            };
            // The rate is read as an `f64` for `sample_rand` (as a baggage states it) and as the
            // header's `f32` below: the two readings of the text round apart.
            let rate = text("sample_rate").and_then(|r| r.parse::<f64>().ok());
            let head_sampled = sampled == Some(true);
            let rand = head_sample_rand(
                &trace_id.to_string(),
                rate.unwrap_or(if head_sampled { 1.0 } else { 0.0 }),
                head_sampled,
            );
            let mut dsc = DynamicSamplingContext::new().with_trace_id(trace_id);
            if let Ok(rand) = SampleRand::try_from(rand) {
                dsc = dsc.with_sample_rand(rand);
            }
            if let Some(key) = text("public_key") {
                dsc = dsc.with_public_key(key.to_owned());
            }
            if let Some(rate) = text("sample_rate").and_then(|r| r.parse::<f32>().ok()) {
                dsc = dsc.with_sample_rate(rate);
            }
            if let Some(sampled) = sampled {
                dsc = dsc.with_sampled(sampled);
            }
            if let Some(release) = &transaction.release {
                dsc = dsc.with_release(release.to_string());
            }
            if let Some(environment) = &transaction.environment {
                dsc = dsc.with_environment(environment.to_string());
            }
            if let Some(name) = transaction.name.as_ref().filter(|n| !n.contains("://")) {
                dsc = dsc.with_transaction(name.clone());
            }
            dsc
        }
    };
    let headers = envelope.headers().clone().with_trace(dsc);
    envelope.with_headers(headers)
}

/// The `trace` header `sentry` wrote, as JSON.
fn partial_dsc(envelope: &Envelope) -> Option<serde_json::Map<String, serde_json::Value>> {
    match serde_json::to_value(envelope.headers()).ok()? {
        serde_json::Value::Object(mut headers) => match headers.remove("trace")? {
            serde_json::Value::Object(trace) => Some(trace),
            _ => None,
        },
        _ => None,
    }
}

/// A DSC from baggage entries (keys without `sentry-`); entries `sentry` cannot carry in its
/// envelope header (`replay_id`, ...) and values that do not parse are left out.
fn from_entries(entries: &[(String, String)]) -> DynamicSamplingContext {
    entries.iter().fold(
        DynamicSamplingContext::new(),
        |dsc, (key, value)| match key.as_str() {
            "trace_id" => match value.parse() {
                Ok(id) => dsc.with_trace_id(id),
                Err(_) => dsc,
            },
            "public_key" => dsc.with_public_key(value.clone()),
            "sample_rate" => match value.parse() {
                Ok(rate) => dsc.with_sample_rate(rate),
                Err(_) => dsc,
            },
            "sample_rand" => match value.parse() {
                Ok(rand) => dsc.with_sample_rand(rand),
                Err(_) => dsc,
            },
            "sampled" => match value.as_str() {
                "true" => dsc.with_sampled(true),
                "false" => dsc.with_sampled(false),
                _ => dsc,
            },
            "release" => dsc.with_release(value.clone()),
            "environment" => dsc.with_environment(value.clone()),
            "transaction" => dsc.with_transaction(value.clone()),
            "org_id" => match value.parse() {
                Ok(org) => dsc.with_org_id(org),
                Err(_) => dsc,
            },
            _ => dsc,
        },
    )
}

/// How an envelope's journey ended.
enum Outcome {
    /// Sentry answered and took it (any answer but those below).
    Delivered,
    /// Sentry answered `429`: it counts what it refused itself, but not the client reports
    /// that rode along.
    RateLimited(Envelope),
    /// Never reached Sentry, or refused by it: counted for this reason.
    Lost(Envelope, Reason),
}

impl Shared {
    /// A sender's loop; ends when the transport is shut down or dropped.
    fn run(&self) {
        while let Some((seq, envelope)) = self.next() {
            let outcome = self.deliver(envelope);
            let mut queue = lock(&self.queue);
            let abandoned = match queue.in_flight.iter().position(|f| f.seq == seq) {
                Some(at) => queue.in_flight.swap_remove(at).abandoned,
                None => false,
            };
            let notify = queue.flushers > 0;
            drop(queue);
            if !abandoned {
                match &outcome {
                    Outcome::Delivered => {}
                    Outcome::RateLimited(envelope) => self.ledger.record_reports(envelope),
                    Outcome::Lost(envelope, reason) => self.ledger.record(envelope, *reason),
                }
            }
            if notify {
                self.done.notify_all();
            }
        }
    }

    /// The next envelope to send, less what is rate limited and with the counts of what was
    /// lost so far attached; recorded as in flight. `None` once the queue is closed.
    fn next(&self) -> Option<(u64, Envelope)> {
        let mut queue = lock(&self.queue);
        loop {
            if queue.closed {
                let left: Vec<_> = queue.waiting.drain(..).collect();
                drop(queue);
                for (_, envelope) in &left {
                    self.ledger.record(&**envelope, Reason::InternalSdkError);
                }
                self.done.notify_all();
                return None;
            }
            let Some((seq, envelope)) = queue.waiting.pop_front() else {
                queue = self
                    .work
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            };
            // Queued before the gate closed: it would meet the same closed port.
            let kept = if self.gate.is_closed() {
                self.ledger.record(&*envelope, Reason::NetworkError);
                None
            } else {
                self.within_limits(*envelope)
            };
            let Some(mut envelope) = kept else {
                // Done without being sent: a flush may be waiting for it.
                if queue.flushers > 0 {
                    self.done.notify_all();
                }
                continue;
            };
            if let Some(report) = self.ledger.take() {
                envelope.add_item(report);
            }
            queue.in_flight.push(InFlight {
                seq,
                losses: envelope.losses().collect(),
                abandoned: false,
            });
            return Some((seq, envelope));
        }
    }

    /// Waits until every envelope handed over so far is done, or `deadline`; whether it is.
    fn wait_done(&self, deadline: Instant) -> bool {
        let mut queue = lock(&self.queue);
        let target = queue.next_seq;
        queue.flushers += 1;
        let done = loop {
            if queue.done_before(target) {
                break true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break false;
            }
            queue = self
                .done
                .wait_timeout(queue, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        };
        queue.flushers -= 1;
        done
    }

    /// Sends what the ledger holds, on this thread, before `deadline`: false when that was
    /// tried and failed. While the gate is closed only `anyway` (the shutdown) tries; otherwise
    /// the counts wait for the next envelope sent.
    fn send_report(&self, deadline: Instant, anyway: bool) -> bool {
        if self.gate.is_closed() && !anyway {
            return true;
        }
        let Some(report) = self.ledger.take() else {
            return true;
        };
        let mut envelope = Envelope::new();
        envelope.add_item(report);
        let left = deadline.saturating_duration_since(Instant::now());
        match self.send(envelope, left) {
            Outcome::Delivered => true,
            Outcome::RateLimited(envelope) => {
                self.ledger.record_reports(&envelope);
                false
            }
            Outcome::Lost(envelope, reason) => {
                self.ledger.record(&envelope, reason);
                false
            }
        }
    }

    fn deliver(&self, envelope: Envelope) -> Outcome {
        let envelope = match &self.scrubber {
            Some(scrubber) => scrubber.scrub_envelope(envelope),
            None => envelope,
        };
        self.send(with_trace_dsc(envelope), self.request_timeout)
    }

    /// The envelope less the items whose category is rate limited (counted); `None` when
    /// nothing is left. Untouched (headers and all) when no limit applies, which is nearly
    /// always.
    fn within_limits(&self, envelope: Envelope) -> Option<Envelope> {
        let limits = lock(&self.limits);
        if limits.is_disabled(RateLimitingCategory::Any).is_some() {
            self.ledger.record(&envelope, Reason::RatelimitBackoff);
            return None;
        }
        let allowed = |item: &EnvelopeItem| limits.is_enabled(category(item));
        if envelope.items().all(allowed) {
            return Some(envelope);
        }
        let left = envelope.filter(EnvelopeFilterCallbacks::new(
            allowed,
            |item: EnvelopeItem| self.ledger.record(&item, Reason::RatelimitBackoff),
        ))?;
        // A client report left on its own goes back to the ledger, to ride on the next
        // envelope or the flush: not a request per limited transaction.
        if left
            .items()
            .all(|item| matches!(item, EnvelopeItem::ClientReport(_)))
        {
            for item in left.items() {
                if let EnvelopeItem::ClientReport(report) = item {
                    self.ledger.record(report, Reason::RatelimitBackoff);
                }
            }
            return None;
        }
        Some(left)
    }

    /// Serializes, compresses and posts `envelope`, within `timeout`.
    fn send(&self, envelope: Envelope, timeout: Duration) -> Outcome {
        let mut body = Vec::with_capacity(2048);
        if envelope.to_writer(&mut body).is_err() {
            return Outcome::Lost(envelope, Reason::InternalSdkError);
        }
        let (body, gzipped) = if self.gzip && body.len() >= GZIP_MIN_BYTES {
            match gzip(&body) {
                Some(compressed) => (compressed, true),
                None => (body, false),
            }
        } else {
            (body, false)
        };
        let request = match &self.uri {
            Some(uri) => self.agent.post(uri.clone()),
            None => self.agent.post(&self.url),
        };
        let request = match &self.auth_header {
            Some(auth) => request.header("X-Sentry-Auth", auth.clone()),
            None => request.header("X-Sentry-Auth", &self.auth),
        }
        .header("Content-Type", "application/x-sentry-envelope");
        let request = if gzipped {
            request.header("Content-Encoding", "gzip")
        } else {
            request
        };
        let sent = request
            .config()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .build()
            .send(&body[..]);
        let mut response = match sent {
            Ok(response) => response,
            Err(error) => {
                if self.debug {
                    eprintln!("[insights] failed to send an envelope to Sentry: {error}");
                }
                self.failed();
                return Outcome::Lost(envelope, Reason::NetworkError);
            }
        };
        let status = response.status().as_u16();
        self.update_limits(&response, status);
        // Read to the end (bounded) so that the connection can be reused. Sentry has answered
        // whatever happens to the rest of the body.
        let _ = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_vec();
        if status >= 400 && self.debug {
            let why = if status == 413 { " (too large)" } else { "" };
            eprintln!("[insights] Sentry refused an envelope: HTTP {status}{why}");
        }
        if (502..=504).contains(&status) {
            self.failed();
        } else {
            self.failures.store(0, Ordering::Relaxed);
            self.gate.open();
        }
        match status {
            429 => Outcome::RateLimited(envelope),
            400.. => Outcome::Lost(envelope, Reason::SendError),
            _ => Outcome::Delivered,
        }
    }

    /// Rate limits from an answer: `X-Sentry-Rate-Limits` first, else `Retry-After`, else a
    /// `429`'s default minute. A `429` whose header gives no limit that parses still holds
    /// everything back.
    fn update_limits(&self, response: &ureq::http::Response<ureq::Body>, status: u16) {
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok());
        let mut limits = lock(&self.limits);
        if let Some(header) = header("x-sentry-rate-limits") {
            limits.update_from_sentry_header(header);
        } else if let Some(after) = header("retry-after") {
            limits.update_from_retry_after(after);
        }
        let limited = || {
            [
                RateLimitingCategory::Any,
                RateLimitingCategory::Error,
                RateLimitingCategory::Session,
                RateLimitingCategory::Transaction,
                RateLimitingCategory::Attachment,
                RateLimitingCategory::LogItem,
                RateLimitingCategory::TraceMetric,
            ]
            .into_iter()
            .any(|c| limits.is_disabled(c).is_some())
        };
        if status == 429 && !limited() {
            limits.update_from_429();
        }
    }

    /// A network error or an unavailable Sentry: closes the gate for the next pause.
    fn failed(&self) {
        let failures = self
            .failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        let pause = self.backoff.pause(failures);
        if !pause.is_zero() {
            self.gate.close_for(pause);
            if self.debug {
                eprintln!(
                    "[insights] not sending to Sentry for {pause:?} \
                     (failure {failures} in a row); envelopes meanwhile are dropped"
                );
            }
        }
    }
}

/// A gzip member's header: deflate, no name, no time, unknown OS.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// `body` gzip-compressed at the fastest level: a transaction shrinks to about half.
/// Each thread keeps one deflate state and resets it between envelopes: building a fresh one
/// costs far more than the compression itself (98 against 7 µs for a 2.4 KB transaction
/// envelope with zlib-rs, measured).
fn gzip(body: &[u8]) -> Option<Vec<u8>> {
    thread_local! {
        static DEFLATE: RefCell<Option<Compress>> = const { RefCell::new(None) };
    }
    DEFLATE.with(|cell| {
        let mut slot = cell.try_borrow_mut().ok()?;
        let deflate = slot.get_or_insert_with(|| Compress::new(Compression::fast(), false));
        deflate.reset();
        let mut out = Vec::with_capacity(body.len() / 2 + 64);
        out.extend_from_slice(&GZIP_HEADER);
        // Each round fills the spare capacity; deflate grows a stored block by a few bytes at
        // most, so a handful of rounds always finishes.
        for _ in 0..32 {
            let consumed = usize::try_from(deflate.total_in()).ok()?;
            let input = body.get(consumed..)?;
            match deflate.compress_vec(input, &mut out, FlushCompress::Finish) {
                Ok(Status::StreamEnd) => {
                    let mut crc = Crc::new();
                    crc.update(body);
                    out.extend_from_slice(&crc.sum().to_le_bytes());
                    // ISIZE: the length modulo 2^32, as the format says.
                    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
                    return Some(out);
                }
                Ok(_) => out.reserve(out.capacity().max(256)),
                Err(_) => return None,
            }
        }
        None
    })
}

fn category(item: &EnvelopeItem) -> RateLimitingCategory {
    match item {
        EnvelopeItem::Event(_) => RateLimitingCategory::Error,
        EnvelopeItem::SessionUpdate(_) | EnvelopeItem::SessionAggregates(_) => {
            RateLimitingCategory::Session
        }
        EnvelopeItem::Transaction(_) => RateLimitingCategory::Transaction,
        EnvelopeItem::Attachment(_) => RateLimitingCategory::Attachment,
        EnvelopeItem::ItemContainer(ItemContainer::Logs(_)) => RateLimitingCategory::LogItem,
        EnvelopeItem::ItemContainer(ItemContainer::Metrics(_)) => RateLimitingCategory::TraceMetric,
        _ => RateLimitingCategory::Any,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_max() {
        let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let pauses: Vec<u64> = (1..=8).map(|n| backoff.pause(n).as_secs()).collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(backoff.pause(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn a_zero_first_pause_never_backs_off() {
        let backoff = Backoff::new(Duration::ZERO, Duration::from_secs(60));
        assert_eq!(backoff.pause(1), Duration::ZERO);
        assert_eq!(backoff.pause(40), Duration::ZERO);
    }

    #[test]
    fn the_gate_closes_for_the_pause_and_opens_again() {
        let gate = Gate::new();
        assert!(!gate.is_closed());
        gate.close_for(Duration::from_secs(3600));
        assert!(gate.is_closed());
        gate.open();
        assert!(!gate.is_closed());
        gate.close_for(Duration::ZERO);
        assert!(
            !gate.is_closed(),
            "a pause that has passed leaves the gate open"
        );
    }

    #[test]
    fn gzip_round_trips() {
        let body = b"{\"event_id\":\"0\"}\n".repeat(100);
        let compressed = gzip(&body).expect("compressed");
        assert!(compressed.len() < body.len() / 4, "{}", compressed.len());
        let mut decoded = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&compressed[..]),
            &mut decoded,
        )
        .expect("decoded");
        assert_eq!(decoded, body);
    }

    #[test]
    fn gzip_round_trips_what_does_not_compress_and_reuses_its_state() {
        // Bytes from a xorshift: incompressible, so the output outgrows its first capacity.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let body: Vec<u8> = (0..100_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()[0]
            })
            .collect();
        for body in [&body[..], b"", &body[..10]] {
            let compressed = gzip(body).expect("compressed");
            let mut decoded = Vec::new();
            std::io::Read::read_to_end(
                &mut flate2::read::GzDecoder::new(&compressed[..]),
                &mut decoded,
            )
            .expect("a valid gzip member");
            assert_eq!(decoded, body);
        }
    }

    #[test]
    fn senders_are_clamped() {
        assert_eq!(HttpTransportFactory::new().senders(0).senders, 1);
        assert_eq!(
            HttpTransportFactory::new().senders(1000).senders,
            MAX_SENDERS
        );
    }
}
