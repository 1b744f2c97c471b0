//! Property tests for NATS (the runtime's `nats` feature): arbitrary, hostile
//! `async_nats::HeaderMap`s and JetStream reply subjects never panic, reading a trace allocates
//! within a bound (and looking a header up allocates nothing), writing never panics and what
//! NATS can carry reads back, and valid headers always continue the trace.
//!
//! ```text
//! cargo test --features services --test nats_headers_prop
//! ```
//!
//! The JetStream cases need a connected client to build messages from (`NATS_URL`, default
//! `nats://127.0.0.1:4222`): without NATS they fail, saying so; nothing is sent.

#[allow(dead_code, reason = "only the NATS helpers are used here")]
#[path = "services/env.rs"]
mod env;

#[path = "common/counting.rs"]
mod counting;

use std::sync::OnceLock;

use async_nats::header::{HeaderName, HeaderValue};
use async_nats::jetstream;
use async_nats::HeaderMap;
use counting::{allocated_by, Counting, ALLOCATION_BOUND};
use insights_runtime::nats;
use insights_runtime::queue::{
    Carrier, CarrierMut, IncomingTrace, MAX_BAGGAGE_ENTRIES, MAX_HEADER_LEN,
};
use proptest::prelude::*;

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The names the runtime reads, in several cases, and any name NATS accepts.
fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("sentry-trace".to_owned()),
        Just("Sentry-Trace".to_owned()),
        Just("SENTRY-TRACE".to_owned()),
        Just("sentry_trace".to_owned()),
        Just("baggage".to_owned()),
        Just("Baggage".to_owned()),
        Just("sentry_baggage".to_owned()),
        Just("sentry-task-enqueued-time".to_owned()),
        Just("Nats-Msg-Id".to_owned()),
        "[!-9;-~]{1,20}",
    ]
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[^\r\n]{0,200}",
        "[0-9a-f]{30,34}-[0-9a-fA-FxX]{14,18}(-[0-9a-z]{0,2})?",
        "(sentry-[a-z_]{1,12}=[^,\r\n]{0,20},){0,80}",
        "-?[0-9]{1,12}\\.[0-9]{0,9}",
        // Far over every limit.
        (1usize..4).prop_map(|n| "sentry-sampled=true,".repeat(n * 4000)),
    ]
}

/// A header map from `entries`, each inserted (replacing) or appended; entries NATS cannot
/// carry are left out, as `async_nats` would panic on them.
fn header_map(entries: Vec<(String, String, bool)>) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value, append) in entries {
        let (Ok(name), Ok(value)) = (name.parse::<HeaderName>(), value.parse::<HeaderValue>())
        else {
            continue;
        };
        if append {
            map.append(name, value);
        } else {
            map.insert(name, value);
        }
    }
    map
}

fn entries() -> impl Strategy<Value = Vec<(String, String, bool)>> {
    proptest::collection::vec((header_name(), header_value(), any::<bool>()), 0..12)
}

/// Whether NATS can carry `name` as a header name (what `set_header` writes).
fn nats_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}

/// A JetStream context to build messages with (they are never acknowledged: nothing is sent).
fn context() -> jetstream::Context {
    static CONTEXT: OnceLock<(tokio::runtime::Runtime, jetstream::Context)> = OnceLock::new();
    CONTEXT
        .get_or_init(|| {
            let rt = env::runtime();
            // Inside the runtime: the context spawns its acknowledging task.
            let js = rt.block_on(async { jetstream::new(env::nats().await) });
            (rt, js)
        })
        .1
        .clone()
}

/// JetStream's ack subjects (v1, v2 with and without the trailing token), with hostile numbers,
/// and anything else.
fn reply() -> impl Strategy<Value = String> {
    let number = prop_oneof![
        "[0-9]{1,3}",
        "-[0-9]{1,20}",
        "0[0-9]{1,5}",
        "[0-9]{19,40}",
        "\\+?[0-9]{1,5}",
        "[^.]{0,6}",
    ];
    let numbers = proptest::collection::vec(number, 5);
    prop_oneof![
        (numbers.clone(), "[A-Za-z0-9_-]{0,12}").prop_map(|(n, stream)| format!(
            "$JS.ACK.{stream}.worker.{}.{}.{}.{}.{}",
            n[0], n[1], n[2], n[3], n[4]
        )),
        (
            numbers,
            "[A-Za-z0-9_-]{1,12}",
            proptest::option::of("[a-z]{1,5}")
        )
            .prop_map(|(n, stream, token)| {
                let token = token.map(|t| format!(".{t}")).unwrap_or_default();
                format!(
                    "$JS.ACK._.acc.{stream}.worker.{}.{}.{}.{}.{}{token}",
                    n[0], n[1], n[2], n[3], n[4]
                )
            }),
        "\\$JS\\.ACK\\.[^\r\n]{0,80}",
        "[^\r\n]{0,80}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_header_maps_never_panic_and_allocate_within_a_bound(entries in entries()) {
        let map = header_map(entries);
        let (incoming, bytes) = allocated_by(|| IncomingTrace::from_carrier(&map));
        prop_assert!(bytes <= ALLOCATION_BOUND, "{bytes} bytes allocated");
        if let Some(incoming) = incoming {
            prop_assert!(incoming.baggage.len() <= MAX_BAGGAGE_ENTRIES);
        }
        // A lookup borrows: it allocates nothing, whatever the map holds.
        for name in ["sentry-trace", "baggage", "sentry-task-enqueued-time", "nats-msg-id", "x"] {
            let (_, bytes) = allocated_by(|| map.header(name).map(str::len));
            prop_assert_eq!(bytes, 0, "looking up {}", name);
        }
    }

    #[test]
    fn writing_any_header_never_panics_and_what_nats_carries_reads_back(
        name in prop_oneof![header_name(), ".{0,20}"],
        value in prop_oneof![header_value(), ".{0,60}"],
        entries in entries(),
    ) {
        let mut map = header_map(entries);
        map.set_header(&name, value.clone());
        if nats_name(&name) && !value.contains(['\r', '\n']) {
            prop_assert_eq!(map.header(&name), Some(value.as_str()));
            prop_assert_eq!(map.get_all(name.as_str()).count(), 1, "one value, replaced");
        }
    }

    #[test]
    fn valid_headers_in_a_header_map_always_continue_the_trace(
        trace in "[0-9a-f]{31}[1-9a-f]",
        span in "[0-9a-f]{15}[1-9a-f]",
        flag in prop_oneof![Just(""), Just("-1"), Just("-0")],
        name in prop_oneof![Just("sentry-trace"), Just("Sentry-Trace"), Just("SENTRY-TRACE")],
        junk in proptest::collection::vec(("[!-9;-~]{1,10}", "[^\r\n]{0,50}", any::<bool>()), 0..8),
    ) {
        let junk = junk
            .into_iter()
            .filter(|(k, _, _)| !k.to_ascii_lowercase().starts_with("sentry") && !k.eq_ignore_ascii_case("baggage"))
            .collect();
        let mut map = header_map(junk);
        map.set_header(name, format!("{trace}-{span}{flag}"));
        let incoming = IncomingTrace::from_carrier(&map).expect("valid headers continue the trace");
        prop_assert_eq!(incoming.trace_id.to_string(), trace);
        prop_assert_eq!(incoming.parent_span_id.to_string(), span);
        let expected = match flag { "-1" => Some(true), "-0" => Some(false), _ => None };
        prop_assert_eq!(incoming.sampled, expected);
    }

    #[test]
    fn hostile_jetstream_messages_never_panic_and_allocate_within_a_bound(
        reply in proptest::option::of(reply()),
        entries in entries(),
        subject in "[a-z.]{1,20}",
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let message = jetstream::Message {
            message: async_nats::Message {
                subject: subject.as_str().into(),
                reply: reply.as_deref().map(Into::into),
                payload: body.clone().into(),
                headers: Some(header_map(entries)),
                status: None,
                description: None,
                length: 0,
            },
            context: context(),
        };
        let ((), bytes) = allocated_by(|| {
            drop(nats::process(&message));
            drop(IncomingTrace::from_carrier(&message));
        });
        prop_assert!(bytes <= ALLOCATION_BOUND, "{bytes} bytes allocated");
        let retries = nats::retry_count(&message);
        let destination = nats::destination(&message);
        let info = message.info().ok();
        match &info {
            Some(info) => {
                prop_assert_eq!(destination, info.stream);
                prop_assert_eq!(retries, u64::try_from(info.delivered.saturating_sub(1)).unwrap_or(0));
            }
            None => {
                prop_assert_eq!(destination, subject.as_str());
                prop_assert_eq!(retries, 0);
            }
        }
        let header_id = message
            .headers
            .as_ref()
            .and_then(|h| h.header("nats-msg-id"))
            .filter(|id| !id.is_empty() && id.len() <= MAX_HEADER_LEN);
        match (nats::message_id(&message), header_id, &info) {
            (Some(id), Some(header), _) => prop_assert_eq!(id, header),
            // Else the stream sequence, as JetStream wrote it.
            (Some(id), None, Some(info)) => prop_assert_eq!(id, info.stream_sequence.to_string()),
            (Some(id), None, None) => prop_assert!(false, "id {} from nowhere", id),
            (None, header, _) => prop_assert!(header.is_none()),
        }
    }
}

#[test]
fn a_megabyte_of_baggage_in_a_header_map_is_not_read_whole() {
    let mut map = HeaderMap::new();
    map.set_header(
        "sentry-trace",
        "0123456789abcdef0123456789abcdef-0123456789abcdef-1".to_owned(),
    );
    map.set_header("baggage", "sentry-a=b,".repeat(100_000));
    let (incoming, bytes) = allocated_by(|| IncomingTrace::from_carrier(&map));
    let incoming = incoming.expect("the trace still continues");
    // Over MAX_HEADER_LEN: the baggage is ignored whole.
    assert!(incoming.baggage.is_empty());
    assert!(bytes <= ALLOCATION_BOUND, "{bytes}");
    map.set_header("baggage", "sentry-a=b,".repeat(700));
    let (incoming, bytes) = allocated_by(|| IncomingTrace::from_carrier(&map));
    assert_eq!(
        incoming.expect("continues").baggage.len(),
        MAX_BAGGAGE_ENTRIES
    );
    assert!(bytes <= ALLOCATION_BOUND, "{bytes}");
}

#[test]
fn a_core_message_without_headers_carries_no_trace() {
    let message = async_nats::Message {
        subject: "jobs".into(),
        reply: None,
        payload: "{}".into(),
        headers: None,
        status: None,
        description: None,
        length: 0,
    };
    assert_eq!(message.header("sentry-trace"), None);
    assert!(IncomingTrace::from_carrier(&message).is_none());
}
