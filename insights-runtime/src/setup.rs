//! Setting Sentry up for a service: settings from the environment, one init call, a bounded
//! flush at shutdown.
//!
//! ```no_run
//! use insights_runtime::sampling::Sampler;
//! use insights_runtime::setup::{self, Settings};
//!
//! fn main() -> Result<(), setup::SettingsError> {
//!     let settings = Settings::from_env(insights_runtime::release!())?
//!         .sampler(Sampler::new(0.1).rule("/health", 0.0))
//!         .expected_error("NotFound");
//!     let _sentry = setup::init(settings); // flushes (at most 2 s) when dropped
//!     // ... run the service ...
//!     Ok(())
//! }
//! ```
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `SENTRY_DSN` | where to send; unset or empty: span trees are printed to the console in `development` and Sentry is off elsewhere (see [`Settings::console_without_dsn`]); the program runs as usual either way | unset |
//! | `SENTRY_ENVIRONMENT` | `environment` | `development` |
//! | `SENTRY_RELEASE` | `release` | the crate name and version given to [`Settings::from_env`] |
//! | `SENTRY_TRACES_SAMPLE_RATE` | share of traces recorded, `0` to `1` | `1.0` in `development`, `0.1` elsewhere |
//! | `SENTRY_SEND_DEFAULT_PII` | `true` or `false` | `false` |
//! | `SENTRY_FLUSH_TIMEOUT_MS` | longest wait for pending events at shutdown | `2000` |
//! | `SENTRY_TRACE_PROPAGATION_TARGETS` | with the `reqwest` feature: where outgoing requests carry the trace, a comma-separated list of hosts, `*.`-hosts, URL prefixes, `loopback` and `*` (see `reqwest::PropagationTargets`) | `loopback` |

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sentry::protocol::Event;
use sentry::{ClientInitGuard, ClientOptions, TransportFactory};

use crate::sampling::Sampler;
use crate::scrub::{Scrubber, ScrubbingFactory};

/// The application's release, `name@version`, from its own `Cargo.toml`.
///
/// ```
/// let release = insights_runtime::release!();
/// assert!(release.starts_with("insights_runtime@") || release.contains('@'));
/// ```
#[macro_export]
macro_rules! release {
    () => {
        ::core::concat!(
            ::core::env!("CARGO_PKG_NAME"),
            "@",
            ::core::env!("CARGO_PKG_VERSION")
        )
    };
}

/// How Sentry is set up.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `None`: Sentry is off.
    pub dsn: Option<String>,
    /// `environment`.
    pub environment: String,
    /// `release`.
    pub release: String,
    /// Share of traces recorded, when no [`Sampler`] is set.
    pub traces_sample_rate: f32,
    /// Whether `sentry` may attach personal data (IP addresses, user names).
    pub send_default_pii: bool,
    /// Longest wait for pending events when the [`InitGuard`] drops.
    pub flush_timeout: Duration,
    sampler: Option<Sampler>,
    rules: Vec<(String, f32)>,
    scrubber: Scrubber,
    expected_errors: Vec<String>,
    /// `None`: print when the environment is `development`.
    console_without_dsn: Option<bool>,
    /// `None`: leave `db::query_source` as it is (on, unless set).
    db_query_source: Option<crate::db::QuerySource>,
    /// `None`: leave `reqwest::trace_propagation_targets` as it is (loopback, unless set).
    #[cfg(feature = "reqwest")]
    trace_propagation_targets: Option<crate::reqwest::PropagationTargets>,
}

/// A setting whose value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    /// The environment variable.
    pub variable: &'static str,
    /// Its value.
    pub value: String,
    /// What is wrong with it.
    pub problem: &'static str,
}

impl std::fmt::Display for SettingsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={:?}: {}", self.variable, self.value, self.problem)
    }
}

impl std::error::Error for SettingsError {}

impl Settings {
    /// The defaults, for a service released as `release`: no DSN (Sentry off), environment
    /// `development`, every trace sampled.
    pub fn new(release: impl Into<String>) -> Self {
        Settings {
            dsn: None,
            environment: "development".to_owned(),
            release: release.into(),
            traces_sample_rate: 1.0,
            send_default_pii: false,
            flush_timeout: Duration::from_secs(2),
            sampler: None,
            rules: Vec::new(),
            scrubber: Scrubber::default(),
            expected_errors: Vec::new(),
            console_without_dsn: None,
            db_query_source: None,
            #[cfg(feature = "reqwest")]
            trace_propagation_targets: None,
        }
    }

    /// Settings from the process environment (see the [module](self) docs for the variables).
    pub fn from_env(release: impl Into<String>) -> Result<Self, SettingsError> {
        Self::from_lookup(release, |name| std::env::var(name).ok())
    }

    /// Settings from any source of variables, such as a map in a test.
    pub fn from_lookup(
        release: impl Into<String>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SettingsError> {
        let mut settings = Settings::new(release);
        let error = |variable, value: &str, problem| SettingsError {
            variable,
            value: value.to_owned(),
            problem,
        };
        if let Some(dsn) = lookup("SENTRY_DSN").filter(|d| !d.trim().is_empty()) {
            if sentry::types::Dsn::from_str(dsn.trim()).is_err() {
                return Err(error(
                    "SENTRY_DSN",
                    &dsn,
                    "not a DSN; expected https://<key>@<host>/<project id>",
                ));
            }
            settings.dsn = Some(dsn.trim().to_owned());
        }
        if let Some(environment) = lookup("SENTRY_ENVIRONMENT").filter(|e| !e.trim().is_empty()) {
            settings.environment = environment.trim().to_owned();
        }
        if let Some(release) = lookup("SENTRY_RELEASE").filter(|r| !r.trim().is_empty()) {
            settings.release = release.trim().to_owned();
        }
        settings.traces_sample_rate = if settings.environment == "development" {
            1.0
        } else {
            0.1
        };
        if let Some(rate) = lookup("SENTRY_TRACES_SAMPLE_RATE") {
            let parsed: f32 = rate
                .trim()
                .parse()
                .map_err(|_| error("SENTRY_TRACES_SAMPLE_RATE", &rate, "not a number"))?;
            if !(0.0..=1.0).contains(&parsed) {
                return Err(error(
                    "SENTRY_TRACES_SAMPLE_RATE",
                    &rate,
                    "must be between 0 and 1",
                ));
            }
            settings.traces_sample_rate = parsed;
        }
        if let Some(pii) = lookup("SENTRY_SEND_DEFAULT_PII") {
            settings.send_default_pii = match pii.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => true,
                "false" | "0" | "" => false,
                _ => {
                    return Err(error(
                        "SENTRY_SEND_DEFAULT_PII",
                        &pii,
                        "expected true or false",
                    ))
                }
            };
        }
        if let Some(ms) = lookup("SENTRY_FLUSH_TIMEOUT_MS") {
            let parsed: u64 = ms.trim().parse().map_err(|_| {
                error(
                    "SENTRY_FLUSH_TIMEOUT_MS",
                    &ms,
                    "not a whole number of milliseconds",
                )
            })?;
            settings.flush_timeout = Duration::from_millis(parsed);
        }
        #[cfg(feature = "reqwest")]
        if let Some(list) =
            lookup("SENTRY_TRACE_PROPAGATION_TARGETS").filter(|l| !l.trim().is_empty())
        {
            let targets = crate::reqwest::PropagationTargets::parse(&list).map_err(|_| {
                error(
                    "SENTRY_TRACE_PROPAGATION_TARGETS",
                    &list,
                    "expected hosts (api.internal, *.example.com), URL prefixes \
                     (https://api.example.com/v1/), `loopback` or `*`, separated by commas",
                )
            })?;
            settings.trace_propagation_targets = Some(targets);
        }
        Ok(settings)
    }

    /// Samples by transaction name instead of one rate: `sampler` replaces
    /// [`traces_sample_rate`](Self::traces_sample_rate) and any
    /// [`sampling_rule`](Self::sampling_rule).
    pub fn sampler(mut self, sampler: Sampler) -> Self {
        self.sampler = Some(sampler);
        self
    }

    /// Samples `rate` of the transactions whose name or path starts with `prefix` (see
    /// [`Sampler::rule`]); the others keep [`traces_sample_rate`](Self::traces_sample_rate),
    /// as read from `SENTRY_TRACES_SAMPLE_RATE`. Unlike [`sampler`](Self::sampler), this keeps
    /// the configured rate as the default.
    ///
    /// ```
    /// use insights_runtime::setup::Settings;
    ///
    /// let lookup = |name: &str| (name == "SENTRY_TRACES_SAMPLE_RATE").then(|| "0.25".to_owned());
    /// let settings = Settings::from_lookup("shop@1.0.0", lookup)?.sampling_rule("/health", 0.0);
    /// assert_eq!(settings.traces_sample_rate, 0.25);
    /// # Ok::<(), insights_runtime::setup::SettingsError>(())
    /// ```
    pub fn sampling_rule(mut self, prefix: impl Into<String>, rate: f32) -> Self {
        self.rules.push((prefix.into(), rate));
        self
    }

    /// The sampler these settings sample with, if they need one.
    fn effective_sampler(&self) -> Option<Sampler> {
        if let Some(sampler) = &self.sampler {
            return Some(sampler.clone());
        }
        if self.rules.is_empty() {
            return None;
        }
        let rules = self.rules.iter().cloned();
        Some(rules.fold(
            Sampler::new(self.traces_sample_rate),
            |s, (prefix, rate)| s.rule(prefix, rate),
        ))
    }

    /// Replaces the default [`Scrubber`].
    pub fn scrubber(mut self, scrubber: Scrubber) -> Self {
        self.scrubber = scrubber;
        self
    }

    /// Drops errors of this type instead of sending them: the failures the service expects
    /// and handles (a `NotFound`, a validation error). Matched against the exception type
    /// Sentry records (`capture_error` records the error's type name from its `Debug` output),
    /// also as the last segment of a path.
    pub fn expected_error(mut self, type_name: impl Into<String>) -> Self {
        self.expected_errors.push(type_name.into());
        self
    }

    /// Whether, without a DSN, [`init`] prints each finished transaction to the console as a
    /// span tree ([`crate::console`]) instead of turning Sentry off.
    ///
    /// By default it prints when the environment is `development` (the default environment,
    /// when `SENTRY_ENVIRONMENT` is not set), so that a service run on a laptop shows its spans,
    /// and turns Sentry off in any other environment, so that a deployed service without a DSN
    /// records nothing and prints nothing.
    ///
    /// ```
    /// use insights_runtime::setup::Settings;
    ///
    /// assert!(Settings::new("shop@1.0.0").prints_without_dsn());
    /// let mut production = Settings::new("shop@1.0.0");
    /// production.environment = "production".to_owned();
    /// assert!(!production.prints_without_dsn());
    /// assert!(production.console_without_dsn(true).prints_without_dsn());
    /// ```
    pub fn console_without_dsn(mut self, on: bool) -> Self {
        self.console_without_dsn = Some(on);
        self
    }

    /// When db spans carry their query source (`code.filepath`, `code.lineno`, ...): on for
    /// every db span by default, off, or only for queries that took at least a given time
    /// (sentry-python's `enable_db_query_source` and `db_query_source_threshold_ms`). [`init`]
    /// applies it process-wide with [`db::set_query_source`](crate::db::set_query_source).
    ///
    /// ```
    /// use std::time::Duration;
    /// use insights_runtime::db::QuerySource;
    /// use insights_runtime::setup::Settings;
    ///
    /// let settings = Settings::new("shop@1.0.0")
    ///     .db_query_source(QuerySource::AtLeast(Duration::from_millis(100)));
    /// # let _ = settings;
    /// ```
    pub fn db_query_source(mut self, setting: crate::db::QuerySource) -> Self {
        self.db_query_source = Some(setting);
        self
    }

    /// Where requests sent through [`reqwest::TracingMiddleware`](crate::reqwest::TracingMiddleware)
    /// carry the trace (`sentry-trace`, `baggage`): Sentry's `trace_propagation_targets`,
    /// [`loopback`](crate::reqwest::PropagationTargets::loopback) by default, so that trace ids
    /// and the DSC never reach a third party by accident. [`init`] applies it process-wide with
    /// [`reqwest::set_trace_propagation_targets`](crate::reqwest::set_trace_propagation_targets).
    ///
    /// ```
    /// use insights_runtime::reqwest::PropagationTargets;
    /// use insights_runtime::setup::Settings;
    ///
    /// let settings = Settings::new("shop@1.0.0")
    ///     .trace_propagation_targets(PropagationTargets::loopback().host("*.internal.example.com"));
    /// # let _ = settings;
    /// ```
    #[cfg(feature = "reqwest")]
    pub fn trace_propagation_targets(
        mut self,
        targets: crate::reqwest::PropagationTargets,
    ) -> Self {
        self.trace_propagation_targets = Some(targets);
        self
    }

    /// Whether [`init`] prints to the console when no DSN is set (see
    /// [`console_without_dsn`](Self::console_without_dsn)).
    pub fn prints_without_dsn(&self) -> bool {
        self.console_without_dsn
            .unwrap_or(self.environment == "development")
    }

    /// The `sentry` client options these settings make: sampling, the scrubbing `before_send`
    /// and the expected-errors filter. The transport is not set here (see [`init_with`]).
    pub fn client_options(&self) -> ClientOptions {
        let mut options = ClientOptions::new();
        options.dsn = self
            .dsn
            .as_deref()
            .and_then(|d| sentry::types::Dsn::from_str(d).ok());
        options.environment = Some(Cow::Owned(self.environment.clone()));
        options.release = Some(Cow::Owned(self.release.clone()));
        options.send_default_pii = self.send_default_pii;
        options.shutdown_timeout = self.flush_timeout;
        let mut options = match self.effective_sampler() {
            Some(sampler) => options.traces_sampler(sampler.into_fn()),
            None => options.traces_sample_rate(self.traces_sample_rate),
        };
        let scrubber = self.scrubber.clone();
        let expected = self.expected_errors.clone();
        options.before_send = Some(Arc::new(move |mut event: Event<'static>| {
            if is_expected(&event, &expected) {
                return None;
            }
            scrubber.scrub_event(&mut event);
            Some(event)
        }));
        options
    }
}

fn is_expected(event: &Event<'_>, expected: &[String]) -> bool {
    event.exception.values.iter().any(|exception| {
        expected.iter().any(|name| {
            exception.ty == *name
                || exception
                    .ty
                    .rsplit_once("::")
                    .is_some_and(|(_, last)| last == name)
        })
    })
}

/// Keeps Sentry set up; dropping it flushes pending events, waiting at most the settings'
/// flush timeout, so a shutdown never hangs on an unreachable Sentry.
///
/// `sentry`'s own guard bounds its flush but then joins its transport thread, which waits for
/// a request already in flight however long the server takes (measured: 5 s against a server
/// that never answers, with a 2 s timeout). So the guard is dropped on a thread of its own, and
/// this one waits for it at most the timeout; past that the process may exit without it.
#[must_use = "Sentry is shut down when the guard is dropped; keep it for the program's life"]
pub struct InitGuard {
    client: Option<ClientInitGuard>,
    flush_timeout: Duration,
}

impl InitGuard {
    /// Whether Sentry was set up (a DSN was given, or the console stands in).
    pub fn is_enabled(&self) -> bool {
        self.client
            .as_ref()
            .is_some_and(ClientInitGuard::is_enabled)
    }
}

impl Drop for InitGuard {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        let (done, finished) = std::sync::mpsc::channel();
        let shutdown = std::thread::Builder::new()
            .name("sentry-shutdown".to_owned())
            .spawn(move || {
                // Traces sampled out are counted by `sentry` itself (`sample_rate`), and the
                // count leaves only with an envelope the client sends: one without items
                // carries the last of it (the runtime's transport sends nothing else of it).
                if let Some(client) = sentry::Hub::main().client() {
                    client.send_envelope(sentry::Envelope::new());
                }
                drop(client);
                let _ = done.send(());
            });
        // Without a thread (spawning failed, and the guard went with the closure) there is
        // nothing to wait for.
        if shutdown.is_ok() {
            let _ = finished.recv_timeout(self.flush_timeout);
        }
    }
}

impl std::fmt::Debug for InitGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitGuard")
            .field("enabled", &self.is_enabled())
            .finish()
    }
}

/// Sets Sentry up from `settings`. Call it at the start of `main`, before starting an async
/// runtime or threads (other threads' hubs copy the main hub when they first use it).
pub fn init(settings: Settings) -> InitGuard {
    init_with(settings, |options| options)
}

/// As [`init`], with a last say over the client options (integrations, a transport of your
/// own). Without a transport of yours, the feature `transport` puts in
/// `transport::HttpTransportFactory`, which backs off while Sentry is unreachable; without that
/// feature `sentry`'s default is used. Transactions are scrubbed before they are sent whatever
/// the transport: yours and `sentry`'s are wrapped, the runtime's scrubs on its own thread.
pub fn init_with(
    settings: Settings,
    configure: impl FnOnce(ClientOptions) -> ClientOptions,
) -> InitGuard {
    if let Some(setting) = settings.db_query_source {
        crate::db::set_query_source(setting);
    }
    #[cfg(feature = "reqwest")]
    if let Some(targets) = &settings.trace_propagation_targets {
        crate::reqwest::set_trace_propagation_targets(targets.clone());
    }
    if settings.dsn.is_none() && !settings.prints_without_dsn() {
        return InitGuard {
            client: None,
            flush_timeout: settings.flush_timeout,
        };
    }
    let mut options = settings.client_options();
    if settings.dsn.is_none() {
        let console = crate::console::client_options();
        options.dsn = console.dsn;
        options.transport = console.transport;
    }
    let options = configure(options);
    let options = with_transport(options, Arc::new(settings.scrubber.clone()));
    InitGuard {
        client: Some(sentry::init(options)),
        flush_timeout: settings.flush_timeout,
    }
}

/// The client options with their transport in place and `sentry`'s defaults applied: the
/// runtime's own transport when the application gave none (it scrubs on its own thread), or
/// any other transport wrapped in the scrubber.
fn with_transport(options: ClientOptions, scrubber: Arc<Scrubber>) -> ClientOptions {
    // Before `apply_defaults`, which would put `sentry`'s own HTTP transport in the empty slot.
    #[cfg(feature = "transport")]
    if options.transport.is_none() && options.dsn.is_some() {
        let factory = crate::transport::HttpTransportFactory::new()
            .scrubber(scrubber)
            .debug(options.debug);
        let mut options = options;
        options.transport = Some(Arc::new(factory));
        return sentry::apply_defaults(options);
    }
    let mut options = sentry::apply_defaults(options);
    options.transport = options
        .transport
        .map(|inner| Arc::new(ScrubbingFactory::new(inner, scrubber)) as Arc<dyn TransportFactory>);
    options
}
