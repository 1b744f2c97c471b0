//! Message headers: where the trace is read from and written to.

use std::collections::{BTreeMap, HashMap};

/// Message headers a trace can be read from.
///
/// Implemented for `HashMap<String, String>`, `BTreeMap<String, String>`,
/// `Vec<(String, String)>`, `[(&str, &str)]`, with the `http` feature `http::HeaderMap` and,
/// with the `lapin` feature, `lapin::types::FieldTable` (RabbitMQ's headers).
/// For a broker's own header type, a few lines:
///
/// ```
/// use insights_runtime::queue::Carrier;
///
/// struct Properties(Vec<(String, Vec<u8>)>);
///
/// impl Carrier for Properties {
///     fn header(&self, name: &str) -> Option<&str> {
///         self.0
///             .iter()
///             .find(|(k, _)| k.eq_ignore_ascii_case(name))
///             .and_then(|(_, v)| std::str::from_utf8(v).ok())
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a header carrier",
    label = "not a `Carrier`",
    note = "implement `insights_runtime::queue::Carrier` for it (one method: `header(name)`), or pass a `HashMap<String, String>`"
)]
pub trait Carrier {
    /// The value of header `name`, matched case-insensitively (`name` is lower case).
    fn header(&self, name: &str) -> Option<&str>;

    /// When the broker says the message was published, for a carrier that is a whole message
    /// (a JetStream message, with the `nats` feature). The consumer's receive latency is
    /// measured from it when it is known, else from the `sentry-task-enqueued-time` header
    /// the producer wrote. `None` by default.
    fn published_at(&self) -> Option<std::time::SystemTime> {
        None
    }
}

/// Message headers a trace can be written to.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot take headers",
    label = "not a `CarrierMut`",
    note = "implement `insights_runtime::queue::CarrierMut` for it (one method: `set_header(name, value)`), or pass a `&mut HashMap<String, String>`"
)]
pub trait CarrierMut {
    /// Sets header `name` to `value`, replacing a previous value.
    fn set_header(&mut self, name: &str, value: String);
}

fn find<'a>(mut pairs: impl Iterator<Item = (&'a str, &'a str)>, name: &str) -> Option<&'a str> {
    pairs
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

impl<S: std::hash::BuildHasher> Carrier for HashMap<String, String, S> {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name)
            .map(String::as_str)
            .or_else(|| find(self.iter().map(|(k, v)| (k.as_str(), v.as_str())), name))
    }
}

impl<S: std::hash::BuildHasher> CarrierMut for HashMap<String, String, S> {
    fn set_header(&mut self, name: &str, value: String) {
        self.insert(name.to_owned(), value);
    }
}

impl Carrier for BTreeMap<String, String> {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name)
            .map(String::as_str)
            .or_else(|| find(self.iter().map(|(k, v)| (k.as_str(), v.as_str())), name))
    }
}

impl CarrierMut for BTreeMap<String, String> {
    fn set_header(&mut self, name: &str, value: String) {
        self.insert(name.to_owned(), value);
    }
}

impl Carrier for Vec<(String, String)> {
    fn header(&self, name: &str) -> Option<&str> {
        find(self.iter().map(|(k, v)| (k.as_str(), v.as_str())), name)
    }
}

impl CarrierMut for Vec<(String, String)> {
    fn set_header(&mut self, name: &str, value: String) {
        match self.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
            Some(entry) => entry.1 = value,
            None => self.push((name.to_owned(), value)),
        }
    }
}

impl Carrier for [(&str, &str)] {
    fn header(&self, name: &str) -> Option<&str> {
        find(self.iter().copied(), name)
    }
}

#[cfg(feature = "http")]
impl Carrier for http::HeaderMap {
    fn header(&self, name: &str) -> Option<&str> {
        let value = match known_header(name) {
            Some(name) => self.get(name),
            None => self.get(name),
        };
        value.and_then(|v| v.to_str().ok())
    }
}

/// The names the propagation reads and writes, parsed once: an HTTP server reads them on every
/// request and a client writes them on every outgoing one. `HeaderMap::get` with a `&str`
/// parses and validates the name each time (about half the cost of a lookup), and
/// `HeaderName::from_bytes` also allocates a name that is not a standard header's.
#[cfg(feature = "http")]
fn known_header(name: &str) -> Option<&'static http::HeaderName> {
    use super::propagation::{
        BAGGAGE, BAGGAGE_UNDERSCORE, ENQUEUED_TIME, SENTRY_TRACE, SENTRY_TRACE_UNDERSCORE,
        TRACEPARENT,
    };
    use http::HeaderName;
    static NAMES: [(&str, HeaderName); 6] = [
        (SENTRY_TRACE, HeaderName::from_static(SENTRY_TRACE)),
        (TRACEPARENT, HeaderName::from_static(TRACEPARENT)),
        (
            SENTRY_TRACE_UNDERSCORE,
            HeaderName::from_static(SENTRY_TRACE_UNDERSCORE),
        ),
        (BAGGAGE, HeaderName::from_static(BAGGAGE)),
        (
            BAGGAGE_UNDERSCORE,
            HeaderName::from_static(BAGGAGE_UNDERSCORE),
        ),
        (ENQUEUED_TIME, HeaderName::from_static(ENQUEUED_TIME)),
    ];
    NAMES
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, parsed)| parsed)
}

#[cfg(feature = "http")]
impl CarrierMut for http::HeaderMap {
    fn set_header(&mut self, name: &str, value: String) {
        let name = match known_header(name) {
            // A clone of a static name: no allocation.
            Some(name) => Ok(name.clone()),
            None => http::header::HeaderName::from_bytes(name.as_bytes()),
        };
        if let (Ok(name), Ok(value)) = (name, http::header::HeaderValue::from_str(&value)) {
            self.insert(name, value);
        }
    }
}

/// RabbitMQ's message headers: a header is read when it is a long or a short string that is
/// UTF-8 (what every Sentry SDK writes), and written as a long string. A name over AMQP's 255
/// bytes cannot be a key and is not written (the trace headers' names are short).
///
/// ```
/// use insights_runtime::queue::{Carrier, CarrierMut};
/// use lapin::types::FieldTable;
///
/// let mut headers = FieldTable::default();
/// headers.set_header("sentry-trace", "771a43a4192642f0b136d5159a501700-b0e6f15b45c36b12-1".into());
/// assert_eq!(
///     headers.header("sentry-trace"),
///     Some("771a43a4192642f0b136d5159a501700-b0e6f15b45c36b12-1")
/// );
/// ```
#[cfg(feature = "lapin")]
impl Carrier for lapin::types::FieldTable {
    fn header(&self, name: &str) -> Option<&str> {
        match self.inner().get(name) {
            Some(value) => text(value),
            None => self
                .inner()
                .iter()
                .find(|(k, _)| k.as_str().eq_ignore_ascii_case(name))
                .and_then(|(_, value)| text(value)),
        }
    }
}

#[cfg(feature = "lapin")]
fn text(value: &lapin::types::AMQPValue) -> Option<&str> {
    match value {
        lapin::types::AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok(),
        lapin::types::AMQPValue::ShortString(s) => Some(s.as_str()),
        _ => None,
    }
}

#[cfg(feature = "lapin")]
impl CarrierMut for lapin::types::FieldTable {
    fn set_header(&mut self, name: &str, value: String) {
        if let Ok(name) = lapin::types::ShortString::try_new(name) {
            self.insert(name, lapin::types::AMQPValue::LongString(value.into()));
        }
    }
}

impl<C: Carrier + ?Sized> Carrier for &C {
    fn header(&self, name: &str) -> Option<&str> {
        (**self).header(name)
    }

    fn published_at(&self) -> Option<std::time::SystemTime> {
        (**self).published_at()
    }
}

impl<C: Carrier + ?Sized> Carrier for &mut C {
    fn header(&self, name: &str) -> Option<&str> {
        (**self).header(name)
    }

    fn published_at(&self) -> Option<std::time::SystemTime> {
        (**self).published_at()
    }
}

impl<C: CarrierMut + ?Sized> CarrierMut for &mut C {
    fn set_header(&mut self, name: &str, value: String) {
        (**self).set_header(name, value);
    }
}

#[cfg(all(test, feature = "http"))]
mod tests {
    use super::*;

    #[test]
    fn the_parsed_names_are_the_propagation_names() {
        use super::super::propagation::{
            BAGGAGE, BAGGAGE_UNDERSCORE, ENQUEUED_TIME, SENTRY_TRACE, SENTRY_TRACE_UNDERSCORE,
            TRACEPARENT,
        };
        for name in [
            SENTRY_TRACE,
            TRACEPARENT,
            SENTRY_TRACE_UNDERSCORE,
            BAGGAGE,
            BAGGAGE_UNDERSCORE,
            ENQUEUED_TIME,
        ] {
            let parsed = known_header(name).expect("a parsed name");
            assert_eq!(parsed.as_str(), name);
        }
        assert!(known_header("Sentry-Trace").is_none());
        let mut headers = http::HeaderMap::new();
        headers.insert("sentry-trace", http::HeaderValue::from_static("x"));
        headers.insert("x-other", http::HeaderValue::from_static("y"));
        // Other names, and other spellings of the known ones, are looked up as given.
        assert_eq!(headers.header("Sentry-Trace"), Some("x"));
        assert_eq!(headers.header("sentry-trace"), Some("x"));
        assert_eq!(headers.header("x-other"), Some("y"));
        assert_eq!(headers.header("baggage"), None);
    }

    #[test]
    fn known_and_other_names_are_written_alike() {
        let mut headers = http::HeaderMap::new();
        headers.set_header("traceparent", "00-a-b-01".to_owned());
        headers.set_header("X-Other", "y".to_owned());
        headers.set_header("bad name", "z".to_owned());
        headers.set_header("baggage", "bad\nvalue".to_owned());
        assert_eq!(headers.len(), 2);
        assert_eq!(headers.header("traceparent"), Some("00-a-b-01"));
        assert_eq!(headers.header("x-other"), Some("y"));
        // Written again, a known name replaces its value.
        headers.set_header("traceparent", "00-c-d-01".to_owned());
        assert_eq!(headers.header("traceparent"), Some("00-c-d-01"));
        assert_eq!(headers.len(), 2);
    }
}
