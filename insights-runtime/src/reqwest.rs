//! Outbound HTTP for Sentry's Requests page: a [`reqwest-middleware`](reqwest_middleware)
//! middleware that records every request as an `http.client` span and carries the trace to the
//! services you own.
//!
//! ```no_run
//! use insights_runtime::reqwest::{PropagationTargets, RequestSource, TracingMiddleware};
//!
//! # async fn run() -> Result<(), reqwest_middleware::Error> {
//! // Once, at start-up (or `Settings::trace_propagation_targets`, or the environment variable
//! // `SENTRY_TRACE_PROPAGATION_TARGETS`): which targets get `sentry-trace` and `baggage`.
//! insights_runtime::reqwest::set_trace_propagation_targets(
//!     PropagationTargets::loopback().host("*.internal.example.com"),
//! );
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(TracingMiddleware::new())
//!     .build();
//! // Under a transaction (a request's, through sentry-tower), this is an `http.client` span.
//! let response = client
//!     .get("http://billing.internal.example.com/v1/invoices?page=2")
//!     .request_source() // optional: this line as the span's source (`code.filepath`, ..)
//!     .send()
//!     .await?;
//! # drop(response);
//! # Ok(()) }
//! ```
//!
//! # The span
//!
//! Op `http.client`, a child of the span current on the calling task's hub when the request is
//! sent, described `METHOD URL` (`GET http://billing.internal.example.com/v1/invoices`): the URL
//! without its user name, password, query and fragment. It ends when the response's head
//! arrives (reading the body is not part of it). Its data, with the names and types of Sentry's
//! attribute registry (`sentry-conventions` 0.29.0); where the registry deprecated a key with
//! status *backfill*, the old name, which Sentry's transaction pipeline reads, goes out beside
//! the new one with the same value:
//!
//! | key | value |
//! |---|---|
//! | `http.request.method` | `GET`, `POST`, .. |
//! | `url.full`, `url` (deprecated → `url.full`) | the URL as in the description |
//! | `http.query` | the query with its leading `?`, when there is one; the values of parameters whose names look secret (`token`, `password`, `api_key`, ..) replaced by `[Filtered]` |
//! | `http.fragment` | the fragment with its leading `#`, when there is one |
//! | `server.address`, `server.port` | the host (the Requests page groups by it) and the port, the scheme's default when the URL names none (integer) |
//! | `http.response.status_code` | the response's status (integer) |
//! | `http.response.body.size`, `http.response_content_length` (deprecated → `http.response.body.size`) | the response's `Content-Length`, when it has one (integer) |
//! | `code.filepath`, `code.file.path`, `code.lineno`, `code.line.number` | with [`RequestSource::request_source`]: where the request was built, as [`db::set_query_source`](crate::db::set_query_source) says for db spans (on, off, or for requests that took at least a given time) |
//!
//! The status follows Sentry's mapping of HTTP statuses ([`status_of`]): 2xx and 3xx `ok`, 401
//! `unauthenticated`, 403 `permission_denied`, 404 `not_found`, 409 `already_exists`, 429
//! `resource_exhausted`, other 4xx `invalid_argument`, 501 `unimplemented`, 503 `unavailable`,
//! 504 `deadline_exceeded`, other 5xx `internal_error`. A request that timed out (reqwest's
//! `timeout`, or the connect timeout) is `deadline_exceeded`; one that failed otherwise
//! (connection refused, a reset, a later middleware's error) `internal_error`; a request whose
//! future was dropped before it completed `cancelled`. The caller gets reqwest's (or the next
//! middleware's) result, unchanged.
//!
//! # Trace propagation
//!
//! A request to a target that [`PropagationTargets`] allows carries `sentry-trace` (naming its
//! `http.client` span, so that the callee's transaction is its child), `baggage` with the
//! trace's frozen DSC (see [`crate::dsc`]: the head's, unchanged, for a trace continued from
//! elsewhere) and, with [`TracingMiddleware::traceparent`], a W3C `traceparent`. An unsampled
//! trace gets the headers too (with `-0`), so that the callee keeps the decision; without an
//! active Sentry client, or without a current span, nothing is written.
//!
//! The default targets are this machine alone ([`PropagationTargets::loopback`]): `localhost`,
//! `*.localhost` and the loopback addresses. Name your own services with
//! [`set_trace_propagation_targets`], so that trace ids and your DSC (release, environment,
//! public key) never go to a third party's API by accident. Unlike the substring or regex match
//! of other Sentry SDKs' `trace_propagation_targets`, a target matches a host exactly (or with
//! its subdomains) or a URL by prefix, so `example.com` does not match `example.com.evil.net` or
//! `https://evil.net/?u=example.com`.
//!
//! Headers the caller set itself win: a request that already has a `sentry-trace` is left as it
//! is (no `baggage` or `traceparent` either), a `traceparent` of the caller's is kept, and a
//! `baggage` of the caller's keeps its entries, ours appended to it, unless it already has
//! `sentry-` entries of its own.
//!
//! # What to do, and not
//!
//! * Do add the middleware **last** (after a retry middleware), so that each attempt is a span
//!   with a `sentry-trace` of its own.
//! * Do send from the task that handles the request (or a task spawned with
//!   `.bind_hub(Hub::new_from_top(Hub::current()))`): the span's parent is the span current on
//!   that task's hub when the request is sent.
//! * Do not put secrets in a URL's path: the path is in the description. Credentials in the URL
//!   and the query are left out of it (the query goes to `http.query`, scrubbed as above).
//! * Do not widen the targets to [`PropagationTargets::all`] unless every host the client may
//!   call is yours.
//! * Mind redirects: the targets are checked against the URL the request is sent to, and
//!   reqwest keeps these headers when it follows a redirect to another host. A client that may
//!   be redirected off your hosts should limit its `reqwest::redirect::Policy`.
//!
//! Without an active Sentry client, with no current span, or in an unsampled trace, no span is
//! built and nothing is allocated for one.

use std::borrow::Cow;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};

use ::reqwest::header::{HeaderMap, HeaderValue};
use ::reqwest::{Request, Response, Url};
use reqwest_middleware::{Middleware, Next};
use sentry::protocol::SpanStatus;
use sentry::{Hub, TransactionOrSpan};

use crate::db::Source;
use crate::queue::{TraceHeaders, BAGGAGE, SENTRY_TRACE, TRACEPARENT};
use crate::span::SpanGuard;

/// The op of every outbound request's span.
pub const OP: &str = "http.client";

/// A `reqwest-middleware` middleware that records each request as an `http.client` span and
/// writes the trace into the requests sent to [`PropagationTargets`] (see the
/// [module](self) docs).
///
/// ```no_run
/// use insights_runtime::reqwest::TracingMiddleware;
///
/// # async fn run() -> Result<(), reqwest_middleware::Error> {
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(TracingMiddleware::new().traceparent(true))
///     .build();
/// let status = client.get("http://127.0.0.1:8080/health").send().await?.status();
/// # let _ = status;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct TracingMiddleware {
    traceparent: bool,
    /// `None`: the process-wide targets, read at each request.
    targets: Option<Arc<PropagationTargets>>,
}

impl TracingMiddleware {
    /// A middleware propagating to the process-wide targets
    /// ([`set_trace_propagation_targets`]), without `traceparent`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether requests to the targets also carry a W3C `traceparent` (Sentry's
    /// `propagate_traceparent`, off by default).
    pub fn traceparent(mut self, on: bool) -> Self {
        self.traceparent = on;
        self
    }

    /// The targets of this middleware's client, in place of the process-wide ones.
    pub fn propagate_to(mut self, targets: PropagationTargets) -> Self {
        self.targets = Some(Arc::new(targets));
        self
    }

    async fn run(
        &self,
        mut request: Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let site = extensions.get::<Site>().map(|site| site.0);
        let span = start(&request, site);
        self.propagate(&mut request, span.span());
        let mut in_flight = InFlight(Some(span));
        let result = next.run(request, extensions).await;
        if let Some(span) = in_flight.0.take() {
            finish(span, &result);
        }
        result
    }

    /// Writes the trace headers into `request` when its target is allowed and the caller did
    /// not write its own.
    fn propagate(&self, request: &mut Request, span: Option<&TransactionOrSpan>) {
        if !crate::span::enabled() || request.headers().contains_key(SENTRY_TRACE) {
            return;
        }
        let headers = Hub::with_active(|hub| {
            if !self.allows(request.url()) {
                return None;
            }
            match span {
                Some(span) => Some(crate::queue::propagation::headers_for(
                    hub,
                    span,
                    None,
                    self.traceparent,
                )),
                // No span of ours (an unsampled trace): the current span's, which keeps the
                // decision.
                None => crate::propagation::current_headers(self.traceparent),
            }
        });
        if let Some(headers) = headers {
            write_headers(request.headers_mut(), &headers);
        }
    }

    fn allows(&self, url: &Url) -> bool {
        match &self.targets {
            Some(targets) => targets.matches(url),
            None => match &*TARGETS.read().unwrap_or_else(PoisonError::into_inner) {
                Some(targets) => targets.matches(url),
                None => is_loopback(url),
            },
        }
    }
}

// The expansion of `#[async_trait]` written out, so that the runtime needs no `async-trait`.
impl Middleware for TracingMiddleware {
    fn handle<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        req: Request,
        extensions: &'life1 mut http::Extensions,
        next: Next<'life2>,
    ) -> Pin<Box<dyn Future<Output = reqwest_middleware::Result<Response>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.run(req, extensions, next))
    }
}

/// Where a request was built, left in its extensions by [`RequestSource::request_source`].
#[derive(Debug, Clone, Copy)]
struct Site(&'static Location<'static>);

/// Records where a request is built as its span's source, as db spans record their query
/// source.
///
/// A middleware is called from inside `reqwest-middleware`, which cannot tell where the
/// application sent the request from; this `#[track_caller]` method, called where the request
/// is built, can. The span then carries `code.filepath`, `code.file.path`, `code.lineno` and
/// `code.line.number`, as [`db::set_query_source`](crate::db::set_query_source) (or
/// [`Settings::db_query_source`](crate::setup::Settings::db_query_source)) says: for every
/// request, none, or those that took at least a given time. A call from a dependency (a path
/// outside the workspace) records nothing.
///
/// ```no_run
/// use insights_runtime::reqwest::{RequestSource, TracingMiddleware};
///
/// # async fn run(client: reqwest_middleware::ClientWithMiddleware) -> Result<(), reqwest_middleware::Error> {
/// let response = client.get("http://127.0.0.1:8080/v1/users").request_source().send().await?;
/// # drop(response);
/// # Ok(()) }
/// ```
pub trait RequestSource: Sized {
    /// This call's file and line as the request's source.
    #[track_caller]
    fn request_source(self) -> Self;
}

impl RequestSource for reqwest_middleware::RequestBuilder {
    #[track_caller]
    fn request_source(self) -> Self {
        self.with_extension(Site(Location::caller()))
    }
}

/// Ends the span `cancelled` when the request's future is dropped before it completes.
struct InFlight(Option<SpanGuard>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(span) = self.0.take() {
            span.finish_with(|_| SpanStatus::Cancelled);
        }
    }
}

/// Starts the request's span, detached (it is held across the send's `.await`s).
fn start(request: &Request, site: Option<&'static Location<'static>>) -> SpanGuard {
    SpanGuard::start_detached(OP, "", |data| {
        let url = request.url();
        let method = request.method().as_str();
        let shown = shown_url(url);
        data.describe(&format!("{method} {shown}"));
        data.set("http.request.method", method);
        data.set("url.full", &*shown);
        data.set("url", &*shown);
        if let Some(query) = url.query() {
            data.set("http.query", format!("?{}", filtered_query(query)));
        }
        if let Some(fragment) = url.fragment() {
            data.set("http.fragment", format!("#{fragment}"));
        }
        if let Some(host) = host_of(url) {
            data.set("server.address", host);
        }
        if let Some(port) = url.port_or_known_default() {
            data.set("server.port", port);
        }
        if let Some(site) = site {
            Source::own_caller(site).record_as_set(data);
        }
    })
}

/// The response's data and the status.
fn finish(span: SpanGuard, result: &reqwest_middleware::Result<Response>) {
    if !span.is_recording() {
        return;
    }
    span.finish_with(|data| match result {
        Ok(response) => {
            let code = response.status().as_u16();
            data.set("http.response.status_code", code);
            if let Some(length) = response.content_length() {
                data.set("http.response.body.size", length);
                data.set("http.response_content_length", length);
            }
            status_of(code)
        }
        Err(error) if error.is_timeout() => SpanStatus::DeadlineExceeded,
        Err(_) => SpanStatus::InternalError,
    });
}

/// The span status of an HTTP response status, by Sentry's mapping: 2xx and 3xx `ok`, 401
/// `unauthenticated`, 403 `permission_denied`, 404 `not_found`, 409 `already_exists`, 429
/// `resource_exhausted`, other 4xx `invalid_argument`, 501 `unimplemented`, 503
/// `unavailable`, 504 `deadline_exceeded`, other 5xx `internal_error`, anything else
/// `unknown_error`.
///
/// ```
/// use insights_runtime::reqwest::status_of;
/// use insights_runtime::status::SpanStatus;
///
/// assert_eq!(status_of(204), SpanStatus::Ok);
/// assert_eq!(status_of(404), SpanStatus::NotFound);
/// assert_eq!(status_of(422), SpanStatus::InvalidArgument);
/// assert_eq!(status_of(504), SpanStatus::DeadlineExceeded);
/// ```
pub fn status_of(code: u16) -> SpanStatus {
    match code {
        200..=399 => SpanStatus::Ok,
        401 => SpanStatus::Unauthenticated,
        403 => SpanStatus::PermissionDenied,
        404 => SpanStatus::NotFound,
        409 => SpanStatus::AlreadyExists,
        429 => SpanStatus::ResourceExhausted,
        400..=499 => SpanStatus::InvalidArgument,
        501 => SpanStatus::Unimplemented,
        503 => SpanStatus::Unavailable,
        504 => SpanStatus::DeadlineExceeded,
        500..=599 => SpanStatus::InternalError,
        _ => SpanStatus::UnknownError,
    }
}

/// The URL without user name, password, query and fragment.
fn shown_url(url: &Url) -> Cow<'_, str> {
    if url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none()
    {
        return Cow::Borrowed(url.as_str());
    }
    let mut shown = url.clone();
    // Both fail only for URLs that cannot have credentials, which then have none.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    Cow::Owned(shown.into())
}

/// The host as `server.address` has it: an IPv6 address without its brackets.
fn host_of(url: &Url) -> Option<&str> {
    let host = url.host_str()?;
    Some(
        host.strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host),
    )
}

/// Words that make a query parameter's value secret, in its name in any case.
const SECRET_PARAMETERS: [&str; 8] = [
    "password",
    "passwd",
    "token",
    "secret",
    "api_key",
    "apikey",
    "auth",
    "signature",
];

/// The query, the values of parameters whose names look secret replaced by `[Filtered]`.
fn filtered_query(query: &str) -> Cow<'_, str> {
    let secret = |name: &str| {
        let name = name.to_ascii_lowercase();
        SECRET_PARAMETERS.iter().any(|word| name.contains(word))
    };
    let pairs = || {
        query
            .split('&')
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
    };
    if !pairs().any(|(name, value)| !value.is_empty() && secret(name)) {
        return Cow::Borrowed(query);
    }
    let mut filtered = String::with_capacity(query.len());
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            filtered.push('&');
        }
        match pair.split_once('=') {
            Some((name, value)) if !value.is_empty() && secret(name) => {
                filtered.push_str(name);
                filtered.push_str("=[Filtered]");
            }
            _ => filtered.push_str(pair),
        }
    }
    Cow::Owned(filtered)
}

/// Writes `headers` into the request's, the caller's own winning (see the module docs).
fn write_headers(request: &mut HeaderMap, headers: &TraceHeaders) {
    let Ok(sentry_trace) = HeaderValue::from_str(&headers.sentry_trace) else {
        return;
    };
    request.insert(SENTRY_TRACE, sentry_trace);
    if !headers.baggage.is_empty() {
        let theirs: Vec<&str> = request
            .get_all(BAGGAGE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let has_sentry = theirs.iter().any(|value| {
            value
                .split(',')
                .any(|entry| entry.trim_start().starts_with("sentry-"))
        });
        if !has_sentry {
            let mut joined = theirs.join(",");
            if !joined.is_empty() {
                joined.push(',');
            }
            joined.push_str(&headers.baggage);
            if let Ok(value) = HeaderValue::from_str(&joined) {
                request.insert(BAGGAGE, value);
            }
        }
    }
    if let Some(traceparent) = &headers.traceparent {
        if !request.contains_key(TRACEPARENT) {
            if let Ok(value) = HeaderValue::from_str(traceparent) {
                request.insert(TRACEPARENT, value);
            }
        }
    }
}

/// The targets whose requests carry the trace (`sentry-trace`, `baggage`, `traceparent`):
/// Sentry's `trace_propagation_targets`.
///
/// Each target is one of:
///
/// * a host, matched exactly and in any case: `billing.internal`, `10.0.0.7`, `[::1]`;
/// * a host and its subdomains: `*.example.com` (or `.example.com`) matches `example.com`,
///   `api.example.com` and `a.b.example.com`, not `badexample.com`;
/// * a URL prefix, with its scheme: `https://api.example.com/v1/` matches the URLs that start
///   with it (after normalising it as a URL: `https://API.example.com` is
///   `https://api.example.com/`), the query included, the credentials left out;
/// * the loopback hosts ([`loopback`](Self::loopback)), or every target ([`all`](Self::all)).
///
/// The default, until [`set_trace_propagation_targets`] is called, is
/// [`loopback`](Self::loopback).
///
/// ```
/// use insights_runtime::reqwest::PropagationTargets;
///
/// let targets: PropagationTargets = "loopback, *.internal.example.com, https://partner.example.org/hooks/"
///     .parse()?;
/// let url = |s: &str| reqwest::Url::parse(s).unwrap();
/// assert!(targets.matches(&url("http://127.0.0.1:8080/")));
/// assert!(targets.matches(&url("https://billing.internal.example.com/v1")));
/// assert!(targets.matches(&url("https://partner.example.org/hooks/42")));
/// assert!(!targets.matches(&url("https://partner.example.org/other")));
/// assert!(!targets.matches(&url("https://api.stripe.com/v1/charges")));
/// # Ok::<(), insights_runtime::reqwest::InvalidTarget>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropagationTargets {
    targets: Vec<Target>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    All,
    Loopback,
    /// A host, lower-cased; with its subdomains too when `subdomains`.
    Host {
        name: Box<str>,
        subdomains: bool,
    },
    /// A normalised URL prefix.
    Prefix(Box<str>),
}

impl Default for PropagationTargets {
    fn default() -> Self {
        Self::loopback()
    }
}

impl PropagationTargets {
    /// No target: requests carry no trace.
    pub fn none() -> Self {
        PropagationTargets {
            targets: Vec::new(),
        }
    }

    /// Every target. Trace ids and the DSC then go to any host the client calls, third
    /// parties' included.
    pub fn all() -> Self {
        PropagationTargets {
            targets: vec![Target::All],
        }
    }

    /// This machine only: `localhost`, `*.localhost`, `127.0.0.0/8` and `::1` (the default).
    pub fn loopback() -> Self {
        PropagationTargets {
            targets: vec![Target::Loopback],
        }
    }

    /// Adds a host: `api.internal` alone, or `*.example.com` (also `.example.com`) for it and
    /// its subdomains. A host that is not one (`api.internal:8080`, `a b`) adds nothing; use
    /// [`parse`](Self::parse) or `str::parse` to be told.
    pub fn host(mut self, host: &str) -> Self {
        if let Ok(target) = Target::host(host) {
            self.targets.push(target);
        }
        self
    }

    /// Adds a URL prefix (`https://api.example.com/v1/`). One that is not an absolute URL adds
    /// nothing; use [`parse`](Self::parse) or `str::parse` to be told.
    pub fn url_prefix(mut self, prefix: &str) -> Self {
        if let Ok(target) = Target::prefix(prefix) {
            self.targets.push(target);
        }
        self
    }

    /// Targets from a comma-separated list, as `SENTRY_TRACE_PROPAGATION_TARGETS` holds them:
    /// hosts, `*.`-hosts, URL prefixes (with `://`), `loopback` and `*` (every target). An
    /// empty list is [`none`](Self::none).
    pub fn parse(list: &str) -> Result<Self, InvalidTarget> {
        let mut targets = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            targets.push(match entry {
                "*" => Target::All,
                "loopback" => Target::Loopback,
                _ if entry.contains("://") => Target::prefix(entry)?,
                _ => Target::host(entry)?,
            });
        }
        Ok(PropagationTargets { targets })
    }

    /// Whether a request to `url` carries the trace.
    pub fn matches(&self, url: &Url) -> bool {
        let host = url.host_str();
        let mut prefix_of: Option<Cow<'_, str>> = None;
        self.targets.iter().any(|target| match target {
            Target::All => true,
            Target::Loopback => is_loopback(url),
            Target::Host { name, subdomains } => {
                host.is_some_and(|host| host_matches(host, name, *subdomains))
            }
            Target::Prefix(prefix) => prefix_of
                .get_or_insert_with(|| without_credentials(url))
                .starts_with(&**prefix),
        })
    }
}

impl std::str::FromStr for PropagationTargets {
    type Err = InvalidTarget;

    fn from_str(list: &str) -> Result<Self, Self::Err> {
        Self::parse(list)
    }
}

impl Target {
    fn host(entry: &str) -> Result<Self, InvalidTarget> {
        let invalid = || InvalidTarget(entry.to_owned());
        let (name, subdomains) = match entry.strip_prefix("*.").or_else(|| entry.strip_prefix('.'))
        {
            Some(rest) => (rest, true),
            None => (entry, false),
        };
        let bare = name
            .strip_prefix('[')
            .and_then(|n| n.strip_suffix(']'))
            .unwrap_or(name);
        let name = if let Ok(ip) = bare.parse::<std::net::Ipv6Addr>() {
            // As a URL writes it.
            format!("[{ip}]")
        } else if !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        {
            name.to_ascii_lowercase()
        } else {
            return Err(invalid());
        };
        Ok(Target::Host {
            name: name.into(),
            subdomains,
        })
    }

    fn prefix(entry: &str) -> Result<Self, InvalidTarget> {
        match Url::parse(entry) {
            Ok(url) if url.has_host() => Ok(Target::Prefix(without_credentials(&url).into())),
            _ => Err(InvalidTarget(entry.to_owned())),
        }
    }
}

/// A target that is neither a host nor an absolute URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidTarget(pub String);

impl std::fmt::Display for InvalidTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} is not a trace propagation target; expected a host (api.internal, \
             *.example.com), a URL prefix (https://api.example.com/v1/), `loopback` or `*`",
            self.0
        )
    }
}

impl std::error::Error for InvalidTarget {}

fn is_loopback(url: &Url) -> bool {
    let Some(host) = host_of(url) else {
        return false;
    };
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return ip.is_loopback();
    }
    let host = host.trim_end_matches('.');
    host.eq_ignore_ascii_case("localhost")
        || host
            .len()
            .checked_sub(".localhost".len())
            .and_then(|at| host.get(at..))
            .is_some_and(|end| end.eq_ignore_ascii_case(".localhost"))
}

/// Whether `host` is `name` (lower case), or one of its subdomains when `subdomains`; in any
/// case, without allocating.
fn host_matches(host: &str, name: &str, subdomains: bool) -> bool {
    if host.eq_ignore_ascii_case(name) {
        return true;
    }
    subdomains
        && host
            .len()
            .checked_sub(name.len() + 1)
            .and_then(|dot| host.get(dot..))
            .is_some_and(|end| end.starts_with('.') && end[1..].eq_ignore_ascii_case(name))
}

/// The URL without user name and password (query and fragment kept).
fn without_credentials(url: &Url) -> Cow<'_, str> {
    if url.username().is_empty() && url.password().is_none() {
        return Cow::Borrowed(url.as_str());
    }
    let mut plain = url.clone();
    let _ = plain.set_username("");
    let _ = plain.set_password(None);
    Cow::Owned(plain.into())
}

/// The process-wide targets; `None` until set: [`PropagationTargets::loopback`].
static TARGETS: RwLock<Option<Arc<PropagationTargets>>> = RwLock::new(None);

/// Sets the targets whose requests carry the trace, for every [`TracingMiddleware`] without
/// targets of its own, from now on. [`setup::init`](crate::setup::init) applies
/// [`Settings::trace_propagation_targets`](crate::setup::Settings::trace_propagation_targets)
/// (and `SENTRY_TRACE_PROPAGATION_TARGETS`); call this when you set `sentry` up yourself.
///
/// ```
/// use insights_runtime::reqwest::{self, PropagationTargets};
///
/// reqwest::set_trace_propagation_targets(PropagationTargets::loopback().host("billing.internal"));
/// assert_eq!(
///     *reqwest::trace_propagation_targets(),
///     PropagationTargets::loopback().host("billing.internal")
/// );
/// ```
pub fn set_trace_propagation_targets(targets: PropagationTargets) {
    *TARGETS.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(targets));
}

/// The process-wide targets (see [`set_trace_propagation_targets`]).
pub fn trace_propagation_targets() -> Arc<PropagationTargets> {
    TARGETS
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
        .unwrap_or_else(|| Arc::new(PropagationTargets::loopback()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("a URL")
    }

    #[test]
    fn hosts_match_exactly_or_with_subdomains_and_prefixes_by_prefix() {
        let targets: PropagationTargets =
            "Billing.Internal, *.example.com, https://API.partner.org/hooks/, [::1]"
                .parse()
                .expect("targets");
        for yes in [
            "http://billing.internal/x",
            "https://BILLING.internal:8443/",
            "https://example.com/",
            "https://a.b.example.com/",
            "https://api.partner.org/hooks/1?x=y",
            "https://user:pw@api.partner.org/hooks/1",
            "http://[::1]:9000/",
        ] {
            assert!(targets.matches(&url(yes)), "{yes}");
        }
        for no in [
            "http://billing.internal.evil.net/",
            "http://badexample.com/",
            "http://example.com.evil.net/",
            "https://evil.net/?u=example.com",
            "https://api.partner.org/other",
            "https://api.partner.org.evil.net/hooks/",
            "http://127.0.0.1/",
        ] {
            assert!(!targets.matches(&url(no)), "{no}");
        }
    }

    #[test]
    fn loopback_is_the_default_and_bad_entries_are_errors() {
        let loopback = PropagationTargets::default();
        for yes in [
            "http://localhost:3000/",
            "http://api.localhost/",
            "http://127.0.0.1/",
            "http://127.8.9.10/",
            "http://[::1]/",
        ] {
            assert!(loopback.matches(&url(yes)), "{yes}");
        }
        for no in [
            "http://localhost.evil.net/",
            "http://10.0.0.1/",
            "https://api.stripe.com/",
        ] {
            assert!(!loopback.matches(&url(no)), "{no}");
        }
        assert!(!PropagationTargets::none().matches(&url("http://x/")));
        assert!(PropagationTargets::all().matches(&url("https://anything.example/")));
        for bad in ["localhost:3000", "a b", "http://", "*", "mailto:x@y"] {
            let parsed = PropagationTargets::parse(bad);
            assert_eq!(parsed.is_err(), bad != "*", "{bad}: {parsed:?}");
        }
        assert_eq!(
            PropagationTargets::parse(" ").expect("empty"),
            PropagationTargets::none()
        );
    }

    #[test]
    fn shown_urls_and_queries_leave_secrets_out() {
        assert_eq!(
            shown_url(&url("https://u:p@h.example/a/b?x=1#f")),
            "https://h.example/a/b"
        );
        assert_eq!(filtered_query("page=2&q=a"), "page=2&q=a");
        assert_eq!(
            filtered_query("page=2&access_token=abc&API_KEY=k&flag"),
            "page=2&access_token=[Filtered]&API_KEY=[Filtered]&flag"
        );
    }

    #[test]
    fn statuses_follow_sentrys_mapping() {
        let cases = [
            (200, SpanStatus::Ok),
            (302, SpanStatus::Ok),
            (400, SpanStatus::InvalidArgument),
            (401, SpanStatus::Unauthenticated),
            (403, SpanStatus::PermissionDenied),
            (404, SpanStatus::NotFound),
            (409, SpanStatus::AlreadyExists),
            (418, SpanStatus::InvalidArgument),
            (429, SpanStatus::ResourceExhausted),
            (500, SpanStatus::InternalError),
            (501, SpanStatus::Unimplemented),
            (502, SpanStatus::InternalError),
            (503, SpanStatus::Unavailable),
            (504, SpanStatus::DeadlineExceeded),
            (101, SpanStatus::UnknownError),
        ];
        for (code, status) in cases {
            assert_eq!(status_of(code), status, "{code}");
        }
    }
}
