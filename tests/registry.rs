//! Every data key the crate sends, held against Sentry's attribute registry
//! (`sentry-conventions`, the version named in the fixture's file name and its `version`).
//!
//! The fixture, `tests/fixtures/sentry-conventions-0.29.0.json`, is copied from the registry's
//! `sentry_conventions.attributes.ATTRIBUTE_METADATA` for the keys the crate sends: each key's
//! type and deprecation. Real spans from every attribute and builder are captured, and each of
//! their data keys must be in the fixture with a value of the registry's JSON type; a key the
//! registry deprecates with status `backfill` must go out with its replacement beside it. A
//! key the crate starts sending, or a type that changes, fails here until the fixture (checked
//! against the registry) says so.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use common::registry::{self, Registry};
use common::{capture, in_transaction};
use futures::executor::block_on;
use insights_runtime::cache::CacheTracker;
use insights_runtime::db::{self, Operation, Query};
use insights_runtime::queue::QueueTracker;
use insights_runtime::{
    instrument_cache_operation, instrument_db_operation, instrument_queue_process,
    instrument_queue_publish,
};
use sentry::protocol::{Span, Transaction, Value};

// Every attribute, in each of its forms that writes different keys.

#[instrument_db_operation(
    query = "SELECT * FROM users WHERE id = $1",
    table = "users",
    operation = "select",
    system = "postgresql",
    db_name = "shop"
)]
fn db_query(id: u64) -> Result<u64, String> {
    Ok(id)
}

#[instrument_db_operation("users", "insert", system = "sqlite")]
fn db_built() {}

#[instrument_db_operation(query_param = "sql")]
async fn db_param(sql: &str) -> Result<(), String> {
    let _ = sql;
    Ok(())
}

#[instrument_cache_operation(get, key_param = "key", tracker = &TRACKER.with(Clone::clone))]
fn cache_get(key: &str) -> Option<String> {
    Some(key.to_owned())
}

#[instrument_cache_operation(put, key_param = "key", value_param = "value", ttl = 60)]
fn cache_put(key: &str, value: &str) {
    let _ = (key, value);
}

#[instrument_cache_operation(remove, key_param = "keys")]
fn cache_remove(keys: &[&str]) {
    let _ = keys;
}

#[instrument_cache_operation(flush)]
fn cache_flush() {}

thread_local! {
    static TRACKER: CacheTracker = CacheTracker::new("redis").server("10.0.0.5", 6379);
}

#[instrument_queue_publish(
    destination = "emails",
    system = "rabbitmq",
    headers_param = "headers",
    message_id_param = "id",
    body_param = "body"
)]
fn publish(headers: &mut HashMap<String, String>, id: u64, body: &str) {
    let _ = (headers, id, body);
}

#[instrument_queue_process(
    destination = "emails",
    system = "rabbitmq",
    headers_param = "headers",
    message_id_param = "id",
    body_param = "body",
    retry_count_param = "attempt"
)]
fn process(headers: &HashMap<String, String>, id: u64, body: &[u8], attempt: u32) {
    let _ = (headers, id, body, attempt);
}

/// Every span of every attribute and builder, with the data each can write.
fn every_span() -> Vec<Transaction<'static>> {
    let queue = QueueTracker::new("kafka");
    capture(|| {
        let mut headers = HashMap::new();
        in_transaction("registry", || {
            // Databases.
            assert_eq!(db_query(1), Ok(1));
            db_built();
            assert_eq!(
                block_on(db_param("DELETE FROM users WHERE id = $1")),
                Ok(())
            );
            Query::sql("SELECT id FROM users WHERE email = $1")
                .system("mysql")
                .db_name("shop")
                .table("users")
                .operation(Operation::Select)
                .server("db.internal", 5432)
                .start()
                .finish();
            Query::table_operation("users", Operation::Update)
                .filters(&["id"])
                .start()
                .finish();
            let ran = block_on(Query::sql("SELECT 1").run(async { Ok::<_, ()>(()) }));
            assert_eq!(ran, Ok(()));
            let tracked = block_on(db::track_database_query(
                "users",
                Operation::Delete,
                async { Ok::<_, ()>(()) },
            ));
            assert_eq!(tracked, Ok(()));

            // Caches.
            assert_eq!(cache_get("k").as_deref(), Some("k"));
            cache_put("k", "value");
            cache_remove(&["k1", "k2"]);
            cache_flush();
            TRACKER.with(|tracker| {
                tracker.get("k").record(&Some("v".to_owned()));
                drop(
                    tracker
                        .put("k")
                        .ttl(Duration::from_secs(5))
                        .item_size(1)
                        .start(),
                );
                drop(tracker.remove("k"));
                drop(tracker.flush());
            });

            // Queues: the attributes, then the tracker.
            publish(&mut headers, 7, "hello");
            let published = queue
                .publish("orders")
                .message_id("m-1")
                .body_size(11)
                .envelope_size(64)
                .start();
            published.inject(&mut headers);
            published.finish_with_outcome(&Ok::<_, ()>(()));
        });
        process(&headers, 7, b"hello", 1);
        queue
            .process("orders", &headers)
            .message_id("m-1")
            .body_size(11)
            .retry_count(2)
            .receive_latency_ms(12.6)
            .start()
            .finish_with_outcome(&Ok::<_, ()>(()));
        // The latency from the publish time in the headers.
        queue
            .process("orders", &headers)
            .start()
            .finish_with_outcome(&Ok::<_, ()>(()));
    })
}

fn spans<'a>(txs: &'a [Transaction<'static>]) -> Vec<&'a Span> {
    txs.iter().flat_map(|tx| &tx.spans).collect()
}

#[test]
fn every_key_sent_has_the_registrys_type_and_backfilled_keys_their_replacement() {
    // The automatic integrations' own keys are checked by tests/integration_registry.rs.
    let registry = Registry::load(registry::ATTRIBUTES);
    let txs = every_span();
    let spans = spans(&txs);
    assert!(spans.len() >= 20, "{} spans", spans.len());
    let mut seen = BTreeSet::new();
    for span in &spans {
        seen.extend(registry.check(span));
    }
    registry.assert_all_seen(&seen);
}

#[test]
fn every_db_span_has_the_new_names_beside_the_old() {
    let txs = every_span();
    for span in spans(&txs) {
        if span.op.as_deref() != Some("db") {
            continue;
        }
        let what = format!("{:?}", span.description);
        for (old, new) in [
            ("db.name", "db.namespace"),
            ("db.sql.table", "db.collection.name"),
            ("db.operation", "db.operation.name"),
        ] {
            assert_eq!(span.data.get(old), span.data.get(new), "{what}: {old}");
        }
        for key in [
            "db.system",
            "db.system.name",
            "db.operation",
            "code.filepath",
            "code.lineno",
        ] {
            assert!(span.data.contains_key(key), "{what}: {key}");
        }
        assert_eq!(
            span.data.get("db.query.text").and_then(Value::as_str),
            span.description.as_deref(),
            "{what}: db.query.text is the description"
        );
    }
}
