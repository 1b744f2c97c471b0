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
    keys: Vec<Word>,
}

/// A word that makes a key sensitive, lower-cased, with the [`letters`] it holds.
#[derive(Debug, Clone)]
struct Word {
    text: String,
    letters: u64,
}

impl Word {
    fn new(word: &str) -> Self {
        let text = word.to_ascii_lowercase();
        Word {
            letters: letters(text.as_bytes()),
            text,
        }
    }
}

/// Removes the entries of `map` whose key `matches`. Nearly every map has none, and `retain` on
/// a `BTreeMap` walks and relinks every node even when it keeps them all, so it runs only when
/// a key matches. (`serde_json`'s map, inside values, is another type: `scrub_value` does the
/// same there.)
fn drop_matching<V>(map: &mut Map<String, V>, matches: impl Fn(&str) -> bool) {
    if map.keys().any(|key| matches(key)) {
        map.retain(|key, _| !matches(key));
    }
}

/// A set of the bytes in `text`, ASCII case folded, each as one of 64 bits (bytes that share a
/// bit only make the set less selective). A key that contains a word holds every byte of it,
/// so a word whose set is not within the key's cannot be in the key.
fn letters(text: &[u8]) -> u64 {
    text.iter()
        .fold(0, |set, byte| set | 1 << (byte.to_ascii_lowercase() & 63))
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
                .map(Word::new)
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
        self.keys.push(Word::new(word));
        self
    }

    fn sensitive_header(&self, name: &str) -> bool {
        self.headers.iter().any(|h| h.eq_ignore_ascii_case(name))
    }

    /// Whether `key` contains one of the words, ignoring ASCII case. Runs on every data key of
    /// every span sent (a few dozen a transaction), so it compares in place rather than
    /// lower-casing a copy, and first rules out, in one pass over the key, every word with a
    /// letter the key lacks: nearly every key is cleared that way, without a comparison.
    fn sensitive_key(&self, key: &str) -> bool {
        let key = key.as_bytes();
        let present = letters(key);
        self.keys.iter().any(|word| {
            word.letters & !present == 0
                && (word.text.is_empty()
                    || key
                        .windows(word.text.len())
                        .any(|part| part.eq_ignore_ascii_case(word.text.as_bytes())))
        })
    }

    /// Removes sensitive entries from `map`, and from the maps and arrays inside it.
    pub fn scrub_map(&self, map: &mut Map<String, Value>) {
        drop_matching(map, |key| self.sensitive_key(key));
        for value in map.values_mut() {
            self.scrub_value(value);
        }
    }

    fn scrub_value(&self, value: &mut Value) {
        match value {
            Value::Object(object) => {
                if object.keys().any(|key| self.sensitive_key(key)) {
                    object.retain(|key, _| !self.sensitive_key(key));
                }
                for value in object.values_mut() {
                    self.scrub_value(value);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.scrub_value(v)),
            _ => {}
        }
    }

    fn scrub_request(&self, request: &mut Request) {
        drop_matching(&mut request.headers, |name| self.sensitive_header(name));
        request.cookies = None;
        drop_matching(&mut request.env, |key| self.sensitive_key(key));
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

    #[test]
    fn a_map_without_sensitive_keys_is_kept_whole_and_nested_ones_go() {
        let scrubber = Scrubber::default();
        let mut clean = Map::new();
        for key in [
            "db.system",
            "cache.hit",
            "server.address",
            "tokio",
            "pass.word",
        ] {
            clean.insert(key.to_owned(), Value::from(key));
        }
        let kept = clean.clone();
        scrubber.scrub_map(&mut clean);
        assert_eq!(clean, kept);

        let object = |entries: &[(&str, Value)]| {
            Value::Object(
                entries
                    .iter()
                    .map(|(key, value)| ((*key).to_owned(), value.clone()))
                    .collect(),
            )
        };
        let mut nested = kept.clone();
        nested.insert(
            "args".to_owned(),
            Value::Array(vec![
                object(&[("api_KEY", "k".into()), ("n", 1.into())]),
                object(&[(
                    "inner",
                    object(&[("my_token", "t".into()), ("ok", true.into())]),
                )]),
            ]),
        );
        nested.insert("user_password".to_owned(), Value::from("p"));
        scrubber.scrub_map(&mut nested);
        let expected = Value::Array(vec![
            object(&[("n", 1.into())]),
            object(&[("inner", object(&[("ok", true.into())]))]),
        ]);
        assert_eq!(nested.get("args"), Some(&expected));
        assert!(!nested.contains_key("user_password"));
        assert_eq!(nested.len(), kept.len() + 1);
    }
}
