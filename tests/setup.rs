//! Set-up from settings, sampling rules, scrubbing, and a bounded shutdown.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use insights_runtime::sampling::Sampler;
use insights_runtime::scrub::{Scrubber, ScrubbingFactory};
use insights_runtime::setup::{self, Settings, SettingsError};
use insights_runtime::traced;
use sentry::protocol::{Breadcrumb, Map, Request, Value};
use sentry::{Hub, TransactionContext};

fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

fn settings(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
    Settings::from_lookup("shop@1.0.0", lookup(vars))
}

#[test]
fn defaults_without_any_variable() {
    let s = settings(&[]).expect("valid");
    assert_eq!(s.dsn, None);
    assert_eq!(s.environment, "development");
    assert_eq!(s.release, "shop@1.0.0");
    assert!((s.traces_sample_rate - 1.0).abs() < f32::EPSILON);
    assert!(!s.send_default_pii);
    assert_eq!(s.flush_timeout, Duration::from_secs(2));
    let production = settings(&[("SENTRY_ENVIRONMENT", "production")]).expect("valid");
    assert!((production.traces_sample_rate - 0.1).abs() < f32::EPSILON);
    let set = settings(&[
        ("SENTRY_DSN", "https://public@o1.ingest.sentry.io/42"),
        ("SENTRY_RELEASE", "shop@2.0.0"),
        ("SENTRY_TRACES_SAMPLE_RATE", "0.5"),
        ("SENTRY_SEND_DEFAULT_PII", "true"),
        ("SENTRY_FLUSH_TIMEOUT_MS", "250"),
    ])
    .expect("valid");
    assert_eq!(
        set.dsn.as_deref(),
        Some("https://public@o1.ingest.sentry.io/42")
    );
    assert_eq!(set.release, "shop@2.0.0");
    assert!((set.traces_sample_rate - 0.5).abs() < f32::EPSILON);
    assert!(set.send_default_pii);
    assert_eq!(set.flush_timeout, Duration::from_millis(250));
}

#[test]
fn every_bad_value_names_its_variable_and_problem() {
    let cases = [
        (
            "SENTRY_DSN",
            "not a dsn",
            "not a DSN; expected https://<key>@<host>/<project id>",
        ),
        (
            "SENTRY_TRACES_SAMPLE_RATE",
            "1.5",
            "must be between 0 and 1",
        ),
        (
            "SENTRY_TRACES_SAMPLE_RATE",
            "-0.1",
            "must be between 0 and 1",
        ),
        ("SENTRY_TRACES_SAMPLE_RATE", "often", "not a number"),
        ("SENTRY_SEND_DEFAULT_PII", "maybe", "expected true or false"),
        (
            "SENTRY_FLUSH_TIMEOUT_MS",
            "2s",
            "not a whole number of milliseconds",
        ),
    ];
    for (variable, value, problem) in cases {
        let error = settings(&[(variable, value)]).expect_err(value);
        assert_eq!(
            error,
            SettingsError {
                variable,
                value: value.to_owned(),
                problem
            }
        );
        assert_eq!(
            error.to_string(),
            format!("{variable}={value:?}: {problem}")
        );
    }
}

#[test]
fn without_a_dsn_sentry_prints_in_development_and_is_off_elsewhere() {
    // Development (the default environment): span trees go to the console.
    assert!(settings(&[]).expect("valid").prints_without_dsn());
    // Any other environment: Sentry is off and the program runs.
    let production = settings(&[("SENTRY_ENVIRONMENT", "production")]).expect("valid");
    assert!(!production.prints_without_dsn());
    let guard = setup::init(production);
    assert!(!guard.is_enabled());
    drop(guard);
    // Either way can be asked for.
    let quiet = settings(&[]).expect("valid").console_without_dsn(false);
    let guard = setup::init(quiet);
    assert!(!guard.is_enabled());
    drop(guard);
    let staging = settings(&[("SENTRY_ENVIRONMENT", "staging")]).expect("valid");
    assert!(staging.console_without_dsn(true).prints_without_dsn());
}

#[test]
fn sampling_rules_and_parent_decisions() {
    let sampler = Sampler::new(0.25)
        .rule("/health", 0.0)
        .rule("/api", 0.5)
        .rule("/api/events", 0.01);
    assert!((sampler.rate_for("GET /health") - 0.0).abs() < f32::EPSILON);
    assert!((sampler.rate_for("/health/live") - 0.0).abs() < f32::EPSILON);
    assert!((sampler.rate_for("POST /api/events/batch") - 0.01).abs() < f32::EPSILON);
    assert!((sampler.rate_for("GET /api/users") - 0.5).abs() < f32::EPSILON);
    assert!((sampler.rate_for("nightly-import") - 0.25).abs() < f32::EPSILON);
    let mut forced = TransactionContext::new("GET /health", "http.server");
    forced.set_sampled(true);
    assert!(
        (sampler.sample(&forced) - 1.0).abs() < f32::EPSILON,
        "the parent's decision wins"
    );
    forced.set_sampled(false);
    assert!((Sampler::new(1.0).sample(&forced) - 0.0).abs() < f32::EPSILON);
    assert!(
        (Sampler::new(7.0).rate_for("x") - 1.0).abs() < f32::EPSILON,
        "clamped"
    );
}

/// The names of the transactions sent when one of each name is started and finished.
fn sampled_names(settings: &Settings, names: &[&str]) -> Vec<String> {
    let envelopes = sentry::test::with_captured_envelopes_options(
        || {
            for name in names {
                sentry::start_transaction(TransactionContext::new(name, "http.server")).finish();
            }
        },
        settings.client_options(),
    );
    envelopes
        .into_iter()
        .flat_map(|e| e.into_items())
        .filter_map(|item| match item {
            sentry::protocol::EnvelopeItem::Transaction(t) => t.name.clone(),
            _ => None,
        })
        .collect()
}

#[test]
fn sampling_rules_keep_the_configured_rate_as_their_default() {
    let names = ["GET /health", "GET /users/{id}", "POST /payments"];
    // Every trace at 1.0, but `/health` never.
    let all = settings(&[("SENTRY_TRACES_SAMPLE_RATE", "1")])
        .expect("valid")
        .sampling_rule("/health", 0.0);
    assert_eq!(
        sampled_names(&all, &names),
        ["GET /users/{id}", "POST /payments"]
    );
    // None at 0.0 from the environment, but payments always.
    let none = settings(&[("SENTRY_TRACES_SAMPLE_RATE", "0")])
        .expect("valid")
        .sampling_rule("/health", 0.0)
        .sampling_rule("/payments", 1.0);
    assert_eq!(sampled_names(&none, &names), ["POST /payments"]);
    // A whole `Sampler` replaces the rate and the rules.
    let replaced = settings(&[("SENTRY_TRACES_SAMPLE_RATE", "0")])
        .expect("valid")
        .sampling_rule("/payments", 1.0)
        .sampler(Sampler::new(1.0).rule("/users", 0.0));
    assert_eq!(
        sampled_names(&replaced, &names),
        ["GET /health", "POST /payments"]
    );
}

#[traced(data(password = "hunter2", "user.api_key" = "key-123", rows = 3))]
fn leaky() {
    sentry::add_breadcrumb(Breadcrumb {
        data: Map::from_iter([("session_token".to_owned(), Value::from("tok-456"))]),
        ..Breadcrumb::default()
    });
    sentry::configure_scope(|scope| {
        scope.set_extra("db_password", "pw-789".into());
        scope.set_context(
            "login",
            sentry::protocol::Context::Other(Map::from_iter([
                ("client_secret".to_owned(), Value::from("sec-000")),
                (
                    "nested".to_owned(),
                    serde_json_object("refresh_token", "tok-111"),
                ),
            ])),
        );
    });
    sentry::capture_message("login failed", sentry::Level::Error);
}

fn serde_json_object(key: &str, value: &str) -> Value {
    let mut map = sentry::protocol::value::Map::new();
    map.insert(key.to_owned(), Value::from(value));
    Value::Object(map)
}

#[test]
fn sensitive_values_are_nowhere_in_what_is_sent() {
    let settings = settings(&[("SENTRY_DSN", "https://public@sentry.invalid/1")])
        .expect("valid")
        .scrubber(Scrubber::default().header("x-session"));
    let mut options = settings.client_options();
    let test_transport = sentry::test::TestTransport::new();
    let inner: Arc<dyn sentry::TransportFactory> = Arc::new(test_transport.clone());
    options.transport = Some(Arc::new(ScrubbingFactory::new(
        inner,
        Arc::new(Scrubber::default().header("x-session")),
    )));
    let hub = Arc::new(Hub::new(Some(Arc::new(options.into())), Default::default()));
    Hub::run(hub, || {
        let tx = sentry::start_transaction(TransactionContext::new("POST /login", "http.server"));
        let mut request = Request::default();
        for (name, value) in [
            ("Authorization", "Bearer abc-1"),
            ("Cookie", "sid=ck-2"),
            ("X-Session", "xs-3"),
            ("Accept", "text/html"),
        ] {
            request.headers.insert(name.to_owned(), value.to_owned());
        }
        request.cookies = Some("sid=ck-2".to_owned());
        tx.set_request(request);
        sentry::configure_scope(|s| s.set_span(Some(tx.clone().into())));
        leaky();
        tx.finish();
    });
    let envelopes = test_transport.fetch_and_clear_envelopes();
    let mut kinds = (0, 0);
    let mut text = String::new();
    for envelope in &envelopes {
        for item in envelope.items() {
            match item {
                sentry::protocol::EnvelopeItem::Event(_) => kinds.0 += 1,
                sentry::protocol::EnvelopeItem::Transaction(_) => kinds.1 += 1,
                _ => {}
            }
        }
        let mut bytes = Vec::new();
        envelope.to_writer(&mut bytes).expect("serialize");
        text.push_str(&String::from_utf8_lossy(&bytes));
    }
    assert_eq!(kinds, (1, 1), "one event and one transaction were sent");
    for secret in [
        "hunter2", "key-123", "tok-456", "pw-789", "sec-000", "tok-111", "abc-1", "ck-2", "xs-3",
    ] {
        assert!(!text.contains(secret), "{secret} leaked:\n{text}");
    }
    // What is not sensitive is kept.
    assert!(text.contains("text/html"));
    assert!(text.contains("\"rows\":3"));
}

#[test]
fn expected_errors_are_not_sent() {
    #[derive(Debug)]
    struct NotFound;
    impl std::fmt::Display for NotFound {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("not found")
        }
    }
    impl std::error::Error for NotFound {}
    #[derive(Debug)]
    struct Broken;
    impl std::fmt::Display for Broken {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("broken")
        }
    }
    impl std::error::Error for Broken {}

    let options = settings(&[])
        .expect("valid")
        .expected_error("NotFound")
        .client_options();
    let events = sentry::test::with_captured_events_options(
        || {
            sentry::capture_error(&NotFound);
            sentry::capture_error(&Broken);
        },
        options,
    );
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].exception.values[0].ty, "Broken");
}

#[test]
fn shutdown_with_an_unreachable_sentry_stays_within_the_flush_bound() {
    // A loopback server that accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let accepted = std::thread::spawn(move || {
        let mut held = Vec::new();
        listener.set_nonblocking(true).expect("nonblocking");
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if let Ok((stream, _)) = listener.accept() {
                held.push(stream);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        held.len()
    });
    let settings = settings(&[
        ("SENTRY_DSN", &format!("http://public@127.0.0.1:{port}/1")),
        ("SENTRY_FLUSH_TIMEOUT_MS", "2000"),
    ])
    .expect("valid");
    let guard = setup::init(settings);
    assert!(guard.is_enabled());
    for i in 0..20 {
        sentry::capture_message(&format!("message {i}"), sentry::Level::Info);
    }
    let started = Instant::now();
    drop(guard);
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(2500),
        "shutdown took {took:?}, over the 2 s bound"
    );
    assert!(
        accepted.join().expect("listener") >= 1,
        "the transport did try to send"
    );
}
