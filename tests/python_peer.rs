//! A trace across SDKs: Sentry's Python SDK (`sentry-sdk`, `tests/services/python_peer.py`)
//! starts it, a Rust consumer built on this crate continues it and publishes a message, and a
//! Python consumer continues that one. The head's DSC must arrive unchanged at every hop and in
//! the Rust consumer's envelope header, whatever the Rust service's own release and rate.
//!
//! Needs `python3` with `sentry-sdk` installed (`.ci/run` installs it); without them the test
//! fails, saying so.

#[path = "services/endpoint.rs"]
#[allow(dead_code, reason = "the helpers only tests/services.rs uses")]
mod endpoint;

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use endpoint::SentryEndpoint;
use insights_runtime::queue::QueueTracker;
use insights_runtime::transport::HttpTransportFactory;
use sentry::protocol::Value;
use sentry::{ClientOptions, Hub};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/services/python_peer.py");

/// Runs the Python peer in `mode` with `input` on stdin; its headers.
fn python(mode: &str, input: &str) -> HashMap<String, String> {
    let mut child = Command::new("python3")
        .arg(SCRIPT)
        .arg(mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("python3 could not be started ({e}); install Python 3"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write to python");
    let out = child.wait_with_output().expect("python ran");
    assert!(
        out.status.success(),
        "the Python peer failed (is `sentry-sdk` installed? `pip install sentry-sdk`): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON headers ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// The `sentry-` entries of a baggage, decoded, key without the prefix.
fn dsc(baggage: &str) -> HashMap<String, String> {
    baggage
        .split(',')
        .filter_map(|entry| {
            let (key, value) = entry.trim().split_once('=')?;
            let key = key.strip_prefix("sentry-")?;
            Some((
                key.to_owned(),
                value.replace("%40", "@").replace("%20", " "),
            ))
        })
        .collect()
}

#[test]
fn a_python_head_keeps_its_dsc_through_a_rust_consumer_to_a_python_consumer() {
    let head = python("produce", "");
    let head_dsc = dsc(&head["baggage"]);
    assert_eq!(head_dsc["release"], "py-peer@1.0", "{head:?}");

    let endpoint = SentryEndpoint::start();
    let mut options = ClientOptions::new().traces_sample_rate(0.25);
    options.dsn = Some(endpoint.dsn().parse().expect("dsn"));
    options.release = Some("rust-relay@3.0".into());
    options.environment = Some("staging".into());
    options.transport = Some(Arc::new(HttpTransportFactory::new()));
    let client = Arc::new(sentry::Client::from(options));
    let hub = Arc::new(Hub::new(Some(Arc::clone(&client)), Default::default()));
    let downstream = Hub::run(hub, || {
        let queue = QueueTracker::new("rabbitmq");
        let processing = queue.process("orders", &head).start();
        let mut carrier: HashMap<String, String> = HashMap::new();
        let published = queue.publish("invoices").start();
        published.inject(&mut carrier);
        drop(published);
        processing.finish_with_outcome(&Ok::<_, ()>(()));
        carrier
    });
    assert!(client.flush(Some(Duration::from_secs(5))));

    // The Rust hop forwards Python's DSC, not its own.
    assert_eq!(dsc(&downstream["baggage"]), head_dsc, "{downstream:?}");
    // And so does the Python consumer after it.
    let input = format!(
        "{{\"sentry-trace\": {:?}, \"baggage\": {:?}}}",
        downstream["sentry-trace"], downstream["baggage"]
    );
    let tail = python("consume", &input);
    assert_eq!(dsc(&tail["baggage"]), head_dsc, "{tail:?}");
    let trace_id = &head_dsc["trace_id"];
    assert!(tail["sentry-trace"].starts_with(trace_id.as_str()));

    // The Rust consumer's envelope carries the head's DSC in its `trace` header.
    endpoint.wait_for("the consumer's transaction", Duration::from_secs(5), |r| {
        (!r.is_empty()).then_some(())
    });
    endpoint.with_received(|received| {
        let trace = &received[0].header["trace"];
        for (key, value) in &head_dsc {
            let sent = &trace[key.as_str()];
            if key == "sample_rate" {
                let sent: f64 = sent.as_str().and_then(|s| s.parse().ok()).expect("a rate");
                assert_eq!(Some(sent), value.parse().ok(), "sample_rate: {trace:#}");
            } else {
                assert_eq!(sent, &Value::from(value.as_str()), "{key}: {trace:#}");
            }
        }
    });
}
