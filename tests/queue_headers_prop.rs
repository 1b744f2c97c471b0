//! Property tests: arbitrary, hostile message headers never panic, never allocate without
//! bound, and valid headers always continue the trace.

#[path = "common/counting.rs"]
mod counting;

use std::collections::HashMap;

use counting::{allocated_by, Counting, ALLOCATION_BOUND};
use insights_runtime::queue::{IncomingTrace, MAX_BAGGAGE_ENTRIES};
use proptest::prelude::*;

#[global_allocator]
static GLOBAL: Counting = Counting;

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("sentry-trace".to_owned()),
        Just("SENTRY-TRACE".to_owned()),
        Just("sentry_trace".to_owned()),
        Just("baggage".to_owned()),
        Just("sentry_baggage".to_owned()),
        Just("sentry-task-enqueued-time".to_owned()),
        ".{0,20}",
    ]
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,200}",
        "[0-9a-f]{30,34}-[0-9a-fA-FxX]{14,18}(-[0-9a-z]{0,2})?",
        "(sentry-[a-z_]{1,12}=[^,]{0,20},){0,80}",
        "[0-9]{1,12}\\.[0-9]{0,9}",
        // Very long values: far over every limit.
        (1usize..4).prop_map(|n| "sentry-sampled=true,".repeat(n * 4000)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_headers_never_panic_and_allocate_within_a_bound(
        headers in proptest::collection::hash_map(header_name(), header_value(), 0..12)
    ) {
        let (incoming, bytes) = allocated_by(|| IncomingTrace::from_carrier(&headers));
        prop_assert!(bytes <= ALLOCATION_BOUND, "{bytes} bytes allocated");
        if let Some(incoming) = incoming {
            prop_assert!(incoming.baggage.len() <= MAX_BAGGAGE_ENTRIES);
        }
    }

    #[test]
    fn valid_headers_always_continue_the_trace(
        trace in "[0-9a-f]{31}[1-9a-f]",
        span in "[0-9a-f]{15}[1-9a-f]",
        flag in prop_oneof![Just(""), Just("-1"), Just("-0")],
        upper in any::<bool>(),
        junk in proptest::collection::vec((".{0,10}", ".{0,50}"), 0..8),
    ) {
        let mut headers: HashMap<String, String> = junk
            .into_iter()
            .filter(|(k, _): &(String, String)| !k.to_ascii_lowercase().starts_with("sentry") && !k.eq_ignore_ascii_case("baggage"))
            .collect();
        let name = if upper { "Sentry-Trace" } else { "sentry-trace" };
        headers.insert(name.to_owned(), format!("{trace}-{span}{flag}"));
        let incoming = IncomingTrace::from_carrier(&headers).expect("valid headers continue the trace");
        prop_assert_eq!(incoming.trace_id.to_string(), trace);
        prop_assert_eq!(incoming.parent_span_id.to_string(), span);
        let expected = match flag { "-1" => Some(true), "-0" => Some(false), _ => None };
        prop_assert_eq!(incoming.sampled, expected);
    }
}

#[test]
fn a_megabyte_of_baggage_is_not_read_whole() {
    let mut headers = HashMap::new();
    headers.insert(
        "sentry-trace".to_owned(),
        "0123456789abcdef0123456789abcdef-0123456789abcdef-1".to_owned(),
    );
    headers.insert("baggage".to_owned(), "sentry-a=b,".repeat(100_000));
    let (incoming, bytes) = allocated_by(|| IncomingTrace::from_carrier(&headers));
    let incoming = incoming.expect("the trace still continues");
    // Over MAX_HEADER_LEN: the baggage is ignored whole.
    assert!(incoming.baggage.is_empty());
    assert!(bytes <= ALLOCATION_BOUND, "{bytes}");
    headers.insert("baggage".to_owned(), "sentry-a=b,".repeat(700));
    let (incoming, bytes) = allocated_by(|| IncomingTrace::from_carrier(&headers));
    assert_eq!(
        incoming.expect("continues").baggage.len(),
        MAX_BAGGAGE_ENTRIES
    );
    assert!(bytes <= ALLOCATION_BOUND, "{bytes}");
}

/// RabbitMQ's headers (`lapin::types::FieldTable`, the runtime's `lapin` feature): values of
/// every AMQP type, bytes that are not UTF-8, names that differ only in case.
#[cfg(feature = "services")]
mod field_table {
    use super::*;
    use insights_runtime::queue::{Carrier, CarrierMut};
    use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};

    fn amqp_value() -> impl Strategy<Value = AMQPValue> {
        prop_oneof![
            header_value().prop_map(|v| AMQPValue::LongString(v.into())),
            "[ -~]{0,60}".prop_map(|v| AMQPValue::ShortString(v.as_str().into())),
            proptest::collection::vec(any::<u8>(), 0..300)
                .prop_map(|bytes| AMQPValue::LongString(LongString::from(bytes))),
            any::<i64>().prop_map(AMQPValue::LongLongInt),
            any::<bool>().prop_map(AMQPValue::Boolean),
            Just(AMQPValue::Void),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_field_tables_never_panic_and_allocate_within_a_bound(
            entries in proptest::collection::vec((header_name(), amqp_value()), 0..12)
        ) {
            let mut table = FieldTable::default();
            for (name, value) in entries {
                if let Ok(name) = ShortString::try_new(name) {
                    table.insert(name, value);
                }
            }
            let (incoming, bytes) = allocated_by(|| IncomingTrace::from_carrier(&table));
            prop_assert!(bytes <= ALLOCATION_BOUND, "{bytes} bytes allocated");
            if let Some(incoming) = incoming {
                prop_assert!(incoming.baggage.len() <= MAX_BAGGAGE_ENTRIES);
            }
        }

        #[test]
        fn headers_written_to_a_field_table_read_back(
            trace in "[0-9a-f]{31}[1-9a-f]",
            span in "[0-9a-f]{15}[1-9a-f]",
            upper in any::<bool>(),
        ) {
            let mut table = FieldTable::default();
            let name = if upper { "Sentry-Trace" } else { "sentry-trace" };
            table.set_header(name, format!("{trace}-{span}-1"));
            prop_assert_eq!(
                table.inner().get(name),
                Some(&AMQPValue::LongString(format!("{trace}-{span}-1").into()))
            );
            let incoming = IncomingTrace::from_carrier(&table).expect("continues the trace");
            prop_assert_eq!(incoming.trace_id.to_string(), trace);
            prop_assert_eq!(incoming.parent_span_id.to_string(), span);
            prop_assert_eq!(incoming.sampled, Some(true));
        }
    }

    #[test]
    fn a_value_that_is_not_utf8_or_not_a_string_is_no_header() {
        let mut table = FieldTable::default();
        table.insert(
            "sentry-trace".into(),
            AMQPValue::LongString(LongString::from(vec![0xff_u8, 0xfe])),
        );
        table.insert("baggage".into(), AMQPValue::LongLongInt(7));
        assert_eq!(table.header("sentry-trace"), None);
        assert_eq!(table.header("baggage"), None);
        // A name AMQP cannot carry (over 255 bytes) is not written, and nothing panics.
        table.set_header(&"x".repeat(300), "v".to_owned());
        assert_eq!(table.inner().len(), 2);
    }
}
