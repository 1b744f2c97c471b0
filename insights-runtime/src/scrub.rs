//! Privacy scrubbing: sensitive headers and keys never leave the process.
//!
//! [`Scrubber::scrub_event`] is a `before_send` for errors and messages. Transactions have no
//! such hook in the `sentry` crate (getsentry/sentry-rust#1032), so [`ScrubbingTransport`]
//! wraps the transport and applies [`Scrubber::scrub_transaction`] to every transaction before
//! it is sent: span data, request data, contexts and extra. (With the `transport` feature,
//! `setup::init` hands the scrubber to the transport instead, which scrubs on its own thread.)
//!
//! What is removed, matched case-insensitively:
//! * request headers named `authorization`, `cookie`, `set-cookie`, `x-api-key`,
//!   `proxy-authorization` and any added with [`Scrubber::header`]; the request's cookies;
//! * entries whose key *contains* `password`, `token`, `secret`, `api_key` or a word added with
//!   [`Scrubber::key`] (so `db_password` and `access_token` go too), at any depth of `extra`,
//!   contexts, breadcrumb data, span data and the trace context's data.
//!
//! ```
//! use insights_runtime::scrub::Scrubber;
//! use sentry::protocol::{Event, Request};
//!
//! let scrubber = Scrubber::default().header("x-session").key("pin");
//! let mut event = Event::default();
//! let mut request = Request::default();
//! request.headers.insert("Authorization".into(), "Bearer abc".into());
//! request.headers.insert("Accept".into(), "*/*".into());
//! event.request = Some(request);
//! event.extra.insert("card_pin".into(), "1234".into());
//! scrubber.scrub_event(&mut event);
//! let headers = &event.request.as_ref().unwrap().headers;
//! assert!(!headers.contains_key("Authorization") && headers.contains_key("Accept"));
//! assert!(event.extra.is_empty());
//! ```

use std::sync::Arc;
use std::time::Duration;

use sentry::protocol::{
    Breadcrumb, Context, EnvelopeItem, Event, Map, Request, Transaction, Value,
};
use sentry::{Envelope, Transport, TransportFactory, TransportOptions};

/// Which headers and keys to remove.
#[derive(Debug, Clone)]
pub struct Scrubber {
    headers: Vec<String>,
    keys: Vec<String>,
}

impl Default for Scrubber {
    fn default() -> Self {
        Scrubber {
            headers: [
                "authorization",
                "cookie",
                "set-cookie",
                "x-api-key",
                "proxy-authorization",
            ]
            .map(String::from)
            .to_vec(),
            keys: ["password", "token", "secret", "api_key"]
                .map(String::from)
                .to_vec(),
        }
    }
}

impl Scrubber {
    /// Also removes request headers named `name`.
    pub fn header(mut self, name: &str) -> Self {
        self.headers.push(name.to_ascii_lowercase());
        self
    }

    /// Also removes entries whose key contains `word`.
    pub fn key(mut self, word: &str) -> Self {
        self.keys.push(word.to_ascii_lowercase());
        self
    }

    fn sensitive_header(&self, name: &str) -> bool {
        self.headers.iter().any(|h| h.eq_ignore_ascii_case(name))
    }

    /// Whether `key` contains one of the words, ignoring ASCII case. Runs on every data key of
    /// every span sent, so it compares in place rather than lower-casing a copy of the key.
    fn sensitive_key(&self, key: &str) -> bool {
        let key = key.as_bytes();
        self.keys.iter().any(|word| {
            let word = word.as_bytes();
            word.is_empty()
                || key
                    .windows(word.len())
                    .any(|part| part.eq_ignore_ascii_case(word))
        })
    }

    /// Removes sensitive entries from `map`, and from the maps and arrays inside it.
    pub fn scrub_map(&self, map: &mut Map<String, Value>) {
        map.retain(|key, _| !self.sensitive_key(key));
        for value in map.values_mut() {
            self.scrub_value(value);
        }
    }

    fn scrub_value(&self, value: &mut Value) {
        match value {
            Value::Object(object) => {
                object.retain(|key, _| !self.sensitive_key(key));
                for value in object.values_mut() {
                    self.scrub_value(value);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.scrub_value(v)),
            _ => {}
        }
    }

    fn scrub_request(&self, request: &mut Request) {
        request
            .headers
            .retain(|name, _| !self.sensitive_header(name));
        request.cookies = None;
        request.env.retain(|key, _| !self.sensitive_key(key));
    }

    fn scrub_contexts(&self, contexts: &mut Map<String, Context>) {
        for context in contexts.values_mut() {
            match context {
                Context::Other(map) => self.scrub_map(map),
                Context::Trace(trace) => self.scrub_map(&mut trace.data),
                _ => {}
            }
        }
    }

    fn scrub_breadcrumb(&self, breadcrumb: &mut Breadcrumb) {
        self.scrub_map(&mut breadcrumb.data);
    }

    /// Scrubs an error or message event: request headers, `extra`, contexts, breadcrumb data.
    pub fn scrub_event(&self, event: &mut Event<'_>) {
        if let Some(request) = &mut event.request {
            self.scrub_request(request);
        }
        self.scrub_map(&mut event.extra);
        self.scrub_contexts(&mut event.contexts);
        for breadcrumb in event.breadcrumbs.values.iter_mut() {
            self.scrub_breadcrumb(breadcrumb);
        }
    }

    /// Scrubs a transaction: its request, `extra`, contexts and every span's data.
    pub fn scrub_transaction(&self, transaction: &mut Transaction<'_>) {
        if let Some(request) = &mut transaction.request {
            self.scrub_request(request);
        }
        self.scrub_map(&mut transaction.extra);
        self.scrub_contexts(&mut transaction.contexts);
        for span in &mut transaction.spans {
            self.scrub_map(&mut span.data);
        }
    }

    /// Scrubs every event and transaction in `envelope`.
    pub fn scrub_envelope(&self, envelope: Envelope) -> Envelope {
        let mut scrubbed = Envelope::new().with_headers(envelope.headers().clone());
        for item in envelope.into_items() {
            let item = match item {
                EnvelopeItem::Transaction(mut transaction) => {
                    self.scrub_transaction(&mut transaction);
                    EnvelopeItem::Transaction(transaction)
                }
                EnvelopeItem::Event(mut event) => {
                    self.scrub_event(&mut event);
                    EnvelopeItem::Event(event)
                }
                other => other,
            };
            scrubbed.add_item(item);
        }
        scrubbed
    }
}

/// A transport that scrubs every envelope, then hands it to the transport it wraps.
pub struct ScrubbingTransport {
    inner: Arc<dyn Transport>,
    scrubber: Arc<Scrubber>,
}

impl ScrubbingTransport {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Transport>, scrubber: Arc<Scrubber>) -> Self {
        ScrubbingTransport { inner, scrubber }
    }
}

impl Transport for ScrubbingTransport {
    fn send_envelope(&self, envelope: Envelope) {
        self.inner
            .send_envelope(self.scrubber.scrub_envelope(envelope));
    }

    fn flush(&self, timeout: Duration) -> bool {
        self.inner.flush(timeout)
    }

    fn shutdown(&self, timeout: Duration) -> bool {
        self.inner.shutdown(timeout)
    }
}

/// Makes [`ScrubbingTransport`]s around the transports another factory makes.
pub struct ScrubbingFactory {
    inner: Arc<dyn TransportFactory>,
    scrubber: Arc<Scrubber>,
}

impl ScrubbingFactory {
    /// Wraps the transports `inner` makes.
    pub fn new(inner: Arc<dyn TransportFactory>, scrubber: Arc<Scrubber>) -> Self {
        ScrubbingFactory { inner, scrubber }
    }
}

impl TransportFactory for ScrubbingFactory {
    fn create_transport_with_options(&self, options: TransportOptions) -> Arc<dyn Transport> {
        Arc::new(ScrubbingTransport::new(
            self.inner.create_transport_with_options(options),
            Arc::clone(&self.scrubber),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_by_word_inside_them_in_any_ascii_case() {
        let scrubber = Scrubber::default().key("PIN");
        for key in [
            "password",
            "DB_Password",
            "access_TOKEN",
            "user.api_key",
            "ClientSecret",
            "card_pin",
            "Spinner",
        ] {
            assert!(scrubber.sensitive_key(key), "{key}");
        }
        for key in [
            "",
            "pass",
            "tok",
            "api-key",
            "rows",
            "secre",
            "ünïcode_p_i_n",
        ] {
            assert!(!scrubber.sensitive_key(key), "{key}");
        }
    }
}
