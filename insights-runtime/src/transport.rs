//! An HTTP transport for Sentry that backs off while Sentry cannot be reached (feature
//! `transport`).
//!
//! `sentry`'s own HTTP transports retry every envelope the moment the last one failed. When
//! Sentry's port is closed, each envelope is serialized and each connection refused at once, so
//! a busy service spends a third of a core (measured on the load test, README) on envelopes that
//! cannot leave. This transport stops trying for a while after a failure instead:
//!
//! - **Network errors** (refused, reset, timed out, DNS) and `502`/`503`/`504` close the gate for
//!   1 s, then 2 s, 4 s, ... up to 60 s, and any other answer opens it again. While it is closed,
//!   envelopes are dropped where they are handed over, before they are serialized or queued.
//! - **Rate limits** (`X-Sentry-Rate-Limits`, `Retry-After`, `429`) are honoured per category as
//!   `sentry`'s transports honour them.
//! - **Nothing is lost silently:** every dropped envelope is recorded with its reason
//!   (`network_error`, `ratelimit_backoff`, `queue_overflow`), and the SDK's client reports tell
//!   Sentry how much went missing once it is reachable again.
//! - **Envelopes are sent as they are,** headers included (the trace's dynamic sampling context);
//!   `sentry`'s transports rebuild every envelope and drop all its headers but the event id.
//! - **No request waits forever:** connecting times out after 5 s and a whole request after 30 s,
//!   so a Sentry that accepts connections and never answers holds up one request at a time.
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
//!     HttpTransportFactory::new().backoff(Duration::from_millis(500), Duration::from_secs(30)),
//! ));
//! let _sentry = sentry::init(options);
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use sentry::client_report::{Reason, Recorder};
use sentry::protocol::{
    Context, DynamicSamplingContext, EnvelopeFilterCallbacks, EnvelopeItem, ItemContainer,
};
use sentry::transports::{RateLimiter, RateLimitingCategory};
use sentry::types::Scheme;
use sentry::{Envelope, Transport, TransportFactory, TransportOptions};

use crate::dsc;
use crate::queue::propagation::{dsc_entries, head_sample_rand};
use crate::scrub::Scrubber;

/// The channel's size when the client options set none (`sentry`'s own default).
const DEFAULT_CAPACITY: usize = 30;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Makes an [`HttpTransport`] for each client: put it in
/// [`ClientOptions::transport`](sentry::ClientOptions::transport).
#[derive(Clone)]
pub struct HttpTransportFactory {
    backoff: Backoff,
    agent: Option<ureq::Agent>,
    scrubber: Option<Arc<Scrubber>>,
    debug: bool,
}

impl HttpTransportFactory {
    /// Backs off from 1 s up to 60 s, with an agent built from the client options (proxy,
    /// `accept_invalid_certs`, this crate's TLS feature).
    pub fn new() -> Self {
        HttpTransportFactory {
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(60)),
            agent: None,
            scrubber: None,
            debug: false,
        }
    }

    /// The first pause after a failure, and the longest: each failure in a row doubles the pause
    /// up to `max`. A zero `first` turns backing off off.
    pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
        self.backoff = Backoff::new(first, max);
        self
    }

    /// Scrubs each envelope on the transport's thread, just before it is serialized, as
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
            .finish()
    }
}

impl TransportFactory for HttpTransportFactory {
    fn create_transport_with_options(&self, options: TransportOptions) -> Arc<dyn Transport> {
        let agent = self.agent.clone().unwrap_or_else(|| agent_for(&options));
        Arc::new(HttpTransport::spawn(
            options,
            agent,
            self.backoff,
            self.scrubber.clone(),
            self.debug,
        ))
    }
}

fn agent_for(options: &TransportOptions) -> ureq::Agent {
    let proxy = match options.dsn.scheme() {
        Scheme::Https => options.https_proxy.as_ref().or(options.http_proxy.as_ref()),
        Scheme::Http => options.http_proxy.as_ref(),
    };
    // A proxy that does not parse is ignored rather than failing the set-up, as `sentry` does.
    let proxy = proxy.and_then(|p| ureq::Proxy::new(p).ok());
    let config = ureq::Agent::config_builder()
        .proxy(proxy)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_global(Some(REQUEST_TIMEOUT));
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
    config.build().new_agent()
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

/// Open or closed, shared by the senders (who drop envelopes while it is closed) and the worker
/// (who closes it). One atomic load and a clock read per envelope.
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

enum Task {
    Send(Box<Envelope>),
    Flush(SyncSender<()>),
}

/// Sends envelopes from a thread of its own, dropping them while Sentry is unreachable. Made by
/// [`HttpTransportFactory`].
pub struct HttpTransport {
    tasks: SyncSender<Task>,
    gate: Arc<Gate>,
    stopped: Arc<AtomicBool>,
    recorder: Recorder,
}

impl HttpTransport {
    fn spawn(
        options: TransportOptions,
        agent: ureq::Agent,
        backoff: Backoff,
        scrubber: Option<Arc<Scrubber>>,
        debug: bool,
    ) -> Self {
        let capacity = options
            .transport_channel_capacity
            .map_or(DEFAULT_CAPACITY, usize::from);
        let (tasks, queue) = sync_channel(capacity);
        let gate = Arc::new(Gate::new());
        let stopped = Arc::new(AtomicBool::new(false));
        let recorder = options.client_report_recorder.clone();
        let worker = Worker {
            url: options.dsn.envelope_api_url().to_string(),
            auth: options.dsn.to_auth(Some(&options.user_agent)).to_string(),
            agent,
            backoff,
            scrubber,
            debug,
            failures: 0,
            limits: RateLimiter::new(),
            gate: Arc::clone(&gate),
            stopped: Arc::clone(&stopped),
            recorder: recorder.clone(),
        };
        // Without a thread the channel's receiver is gone, and every envelope is recorded as
        // lost where it is handed over: Sentry is off, the program is not.
        let _ = thread::Builder::new()
            .name("insights-sentry-transport".to_owned())
            .spawn(move || worker.run(queue));
        HttpTransport {
            tasks,
            gate,
            stopped,
            recorder,
        }
    }
}

impl Transport for HttpTransport {
    fn send_envelope(&self, envelope: Envelope) {
        if self.gate.is_closed() {
            self.recorder
                .record_lost_data(&envelope, Reason::NetworkError);
            return;
        }
        if let Err(full_or_gone) = self.tasks.try_send(Task::Send(Box::new(envelope))) {
            let (task, reason) = match full_or_gone {
                TrySendError::Full(task) => (task, Reason::QueueOverflow),
                TrySendError::Disconnected(task) => (task, Reason::InternalError),
            };
            if let Task::Send(envelope) = task {
                self.recorder.record_lost_data(&*envelope, reason);
            }
        }
    }

    /// Waits, at most `timeout`, until every envelope handed over before the call has been sent
    /// or dropped.
    fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (done, finished) = sync_channel(1);
        // A full queue is waited on in short steps rather than with a blocking send, which would
        // not honour the timeout.
        let mut task = Task::Flush(done);
        loop {
            match self.tasks.try_send(task) {
                Ok(()) => break,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(back)) => {
                    if Instant::now() >= deadline {
                        return false;
                    }
                    task = back;
                    thread::sleep(Duration::from_millis(5));
                }
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        finished.recv_timeout(left).is_ok()
    }
}

impl Drop for HttpTransport {
    /// Does not join the thread: a request in flight ends within its timeout, and envelopes still
    /// queued are dropped. `sentry` flushes (bounded) before it drops a transport.
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTransport")
            .field("backing_off", &self.gate.is_closed())
            .finish()
    }
}

struct Worker {
    url: String,
    auth: String,
    agent: ureq::Agent,
    backoff: Backoff,
    scrubber: Option<Arc<Scrubber>>,
    debug: bool,
    failures: u32,
    limits: RateLimiter,
    gate: Arc<Gate>,
    stopped: Arc<AtomicBool>,
    recorder: Recorder,
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
    let frozen = dsc::frozen(trace_id);
    dsc::release(trace_id);
    let dsc = match frozen {
        Some(frozen) if frozen.is_empty() => return envelope,
        Some(frozen) => from_entries(&dsc_entries(&frozen)),
        None => {
            let Some(partial) = partial_dsc(&envelope) else {
                return envelope;
            };
            let entry = |key: &str| partial.get(key).and_then(|v| v.as_str()).map(str::to_owned);
            let sampled = entry("sampled").is_some_and(|s| s == "true");
            let rate = entry("sample_rate")
                .and_then(|r| r.parse::<f64>().ok())
                .unwrap_or(if sampled { 1.0 } else { 0.0 });
            let id = trace_id.to_string();
            let mut entries = vec![
                ("trace_id".to_owned(), id.clone()),
                (
                    "sample_rand".to_owned(),
                    head_sample_rand(&id, rate, sampled).to_string(),
                ),
            ];
            entries.extend(
                ["public_key", "sample_rate", "sampled"]
                    .into_iter()
                    .filter_map(|key| Some((key.to_owned(), entry(key)?))),
            );
            if let Some(release) = &transaction.release {
                entries.push(("release".to_owned(), release.to_string()));
            }
            if let Some(environment) = &transaction.environment {
                entries.push(("environment".to_owned(), environment.to_string()));
            }
            if let Some(name) = transaction.name.as_ref().filter(|n| !n.contains("://")) {
                entries.push(("transaction".to_owned(), name.clone()));
            }
            from_entries(&entries)
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

/// What an attempt to send tells about Sentry's reachability.
#[derive(Debug, PartialEq, Eq)]
enum Reach {
    Reached,
    Unreachable,
}

impl Worker {
    /// Ends when the transport is dropped (its sender with it) and the queue is empty.
    fn run(mut self, queue: Receiver<Task>) {
        for task in queue {
            match task {
                Task::Flush(done) => {
                    let _ = done.send(());
                }
                Task::Send(envelope) => {
                    if self.stopped.load(Ordering::Relaxed) {
                        self.recorder
                            .record_lost_data(&*envelope, Reason::InternalError);
                    } else {
                        self.deliver(*envelope);
                    }
                }
            }
        }
    }

    fn deliver(&mut self, envelope: Envelope) {
        // Queued before the gate closed: it would meet the same closed port.
        if self.gate.is_closed() {
            self.recorder
                .record_lost_data(&envelope, Reason::NetworkError);
            return;
        }
        let Some(envelope) = self.within_limits(envelope) else {
            return;
        };
        let envelope = match &self.scrubber {
            Some(scrubber) => scrubber.scrub_envelope(envelope),
            None => envelope,
        };
        let envelope = with_trace_dsc(envelope);
        let mut body = Vec::with_capacity(1024);
        if envelope.to_writer(&mut body).is_err() {
            self.recorder
                .record_lost_data(&envelope, Reason::InternalError);
            return;
        }
        match self.post(&body, &envelope) {
            Reach::Reached => {
                self.failures = 0;
                self.gate.open();
            }
            Reach::Unreachable => {
                self.failures = self.failures.saturating_add(1);
                let pause = self.backoff.pause(self.failures);
                if !pause.is_zero() {
                    self.gate.close_for(pause);
                    if self.debug {
                        eprintln!(
                            "[insights] not sending to Sentry for {pause:?} \
                             (failure {} in a row); envelopes meanwhile are dropped",
                            self.failures
                        );
                    }
                }
            }
        }
    }

    /// The envelope less the items whose category is rate limited; `None` when nothing is left.
    /// Untouched (headers and all) when no limit applies, which is nearly always.
    fn within_limits(&self, envelope: Envelope) -> Option<Envelope> {
        if self.limits.is_disabled(RateLimitingCategory::Any).is_some() {
            self.recorder
                .record_lost_data(&envelope, Reason::RatelimitBackoff);
            return None;
        }
        let limits = &self.limits;
        let allowed = |item: &EnvelopeItem| limits.is_enabled(category(item));
        if envelope.items().all(allowed) {
            return Some(envelope);
        }
        envelope.filter(EnvelopeFilterCallbacks::new(
            allowed,
            |item: EnvelopeItem| {
                self.recorder
                    .record_lost_data(&item, Reason::RatelimitBackoff);
            },
        ))
    }

    fn post(&mut self, body: &[u8], envelope: &Envelope) -> Reach {
        let sent = self
            .agent
            .post(&self.url)
            .header("X-Sentry-Auth", &self.auth)
            .header("Content-Type", "application/x-sentry-envelope")
            .config()
            .http_status_as_error(false)
            .build()
            .send(body);
        let mut response = match sent {
            Ok(response) => response,
            Err(error) => {
                if self.debug {
                    eprintln!("[insights] failed to send an envelope to Sentry: {error}");
                }
                self.recorder
                    .record_lost_data(envelope, Reason::NetworkError);
                return Reach::Unreachable;
            }
        };
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok());
        let status = response.status().as_u16();
        if let Some(limits) = header("x-sentry-rate-limits") {
            self.limits.update_from_sentry_header(limits);
        } else if let Some(after) = header("retry-after") {
            self.limits.update_from_retry_after(after);
        } else if status == 429 {
            self.limits.update_from_429();
        }
        // Read to the end (bounded) so that the connection can be reused.
        let _ = response
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_vec();
        // Sentry records what it rate limits itself; any other refusal is a loss of ours.
        if status >= 400 && self.debug {
            eprintln!("[insights] Sentry refused an envelope: HTTP {status}");
        }
        if status >= 400 && status != 429 {
            self.recorder.record_lost_data(envelope, Reason::SendError);
        }
        match status {
            502..=504 => Reach::Unreachable,
            _ => Reach::Reached,
        }
    }
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
}
