//! The service suite: spans around a real PostgreSQL, Redis and RabbitMQ, a trace crossing
//! two processes through the broker, and the `service` and `worker` examples sending real
//! envelopes over HTTP to a local Sentry endpoint.
//!
//! ```text
//! cargo build --features services --examples
//! cargo test --features services --test services
//! ```
//!
//! Each service must be running (README, "Real services"): a test whose service is down fails,
//! saying which one and where it looked. Every test works in a PostgreSQL schema, on a queue and
//! under Redis keys of its own (random suffixes), so runs never see each other's data.

mod common;
#[path = "services/endpoint.rs"]
mod endpoint;
#[path = "services/env.rs"]
#[allow(dead_code, reason = "the helpers the other service tests use")]
mod env;
#[path = "services/process.rs"]
mod process;

use std::time::Duration;

use common::{
    assert_data, assert_parses_as_postgres, capture, in_transaction, root_id, the_span, trace,
};
use endpoint::{request, transactions, SentryEndpoint};
use env::{runtime, unique, Scratch};
use insights_runtime::cache::{CacheTracker, Kind, ReadOutcome};
use insights_runtime::db::Query;
use insights_runtime::{
    instrument_cache_operation, instrument_db_operation, instrument_queue_publish,
};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::BasicProperties;
use process::Running;
use redis::AsyncCommands;
use sentry::protocol::{Span, SpanStatus, Transaction, Value};

// ---------------------------------------------------------------------------------------------
// Helpers

fn ops<'a>(tx: &'a Transaction<'_>) -> Vec<&'a str> {
    tx.spans.iter().filter_map(|s| s.op.as_deref()).collect()
}

fn str_of(value: &str) -> Value {
    Value::from(value)
}

/// The data of a db span on PostgreSQL: the old keys and the attribute registry's new names
/// beside them, and `db.query.text`, the statement.
fn pg_data(table: &str, operation: &str, statement: &str) -> Vec<(&'static str, Value)> {
    vec![
        ("db.system", str_of("postgresql")),
        ("db.system.name", str_of("postgresql")),
        ("db.sql.table", str_of(table)),
        ("db.collection.name", str_of(table)),
        ("db.operation", str_of(operation)),
        ("db.operation.name", str_of(operation)),
        ("db.query.text", str_of(statement)),
    ]
}

/// `db.name` and `db.namespace`.
fn db_name(name: &str) -> [(&'static str, Value); 2] {
    [("db.name", str_of(name)), ("db.namespace", str_of(name))]
}

/// The query source an attribute over `fn function` records: the file, the line of the
/// attribute (found in `source`, the file's text), the function and its module.
fn attribute_source(
    file: &str,
    source: &str,
    function: &str,
    namespace: &str,
) -> [(&'static str, Value); 6] {
    let lines: Vec<&str> = source.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains(&format!("fn {function}(")))
        .unwrap_or_else(|| panic!("fn {function} in {file}"));
    let attribute = lines[..at]
        .iter()
        .rposition(|l| l.trim_start().starts_with("#[instrument_db_operation"))
        .unwrap_or_else(|| panic!("the attribute of {function} in {file}"));
    let line = Value::from(attribute + 1);
    [
        ("code.filepath", str_of(file)),
        ("code.file.path", str_of(file)),
        ("code.lineno", line.clone()),
        ("code.line.number", line),
        ("code.function", str_of(function)),
        ("code.namespace", str_of(namespace)),
    ]
}

/// The query source of an attribute in this file.
fn here(function: &str) -> [(&'static str, Value); 6] {
    attribute_source(
        "tests/services.rs",
        include_str!("services.rs"),
        function,
        "services",
    )
}

/// `a` then `b`.
fn and(a: Vec<(&'static str, Value)>, b: &[(&'static str, Value)]) -> Vec<(&'static str, Value)> {
    let mut all = a;
    all.extend(b.iter().cloned());
    all
}

const CREATE_ITEMS: &str = "CREATE TABLE items (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL)";

// ---------------------------------------------------------------------------------------------
// Queries: PostgreSQL

#[instrument_db_operation(
    query = "INSERT INTO items (name) VALUES ($1) RETURNING id",
    table = "items",
    operation = "insert"
)]
async fn insert_item(
    db: &tokio_postgres::Client,
    name: &str,
) -> Result<i64, tokio_postgres::Error> {
    db.query_one(
        "INSERT INTO items (name) VALUES ($1) RETURNING id",
        &[&name],
    )
    .await?
    .try_get(0)
}

/// The reference's decorator form: the description is built from the table and operation.
#[instrument_db_operation("items", "select")]
async fn all_items(
    db: &tokio_postgres::Client,
) -> Result<Vec<(i64, String)>, tokio_postgres::Error> {
    db.query("SELECT * FROM items", &[])
        .await?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
}

/// A query PostgreSQL rejects: the column does not exist.
#[instrument_db_operation(
    query = "SELECT nam FROM items WHERE id = $1",
    table = "items",
    operation = "select",
    db_name = "test"
)]
async fn misspelled(
    db: &tokio_postgres::Client,
    id: i64,
) -> Result<Option<String>, tokio_postgres::Error> {
    db.query_opt("SELECT nam FROM items WHERE id = $1", &[&id])
        .await?
        .map(|row| row.try_get(0))
        .transpose()
}

#[test]
fn postgresql_queries_are_db_spans() {
    let rt = runtime();
    let scratch = Scratch::new(&rt);
    let url = scratch.database_url();
    let config: tokio_postgres::Config = url.parse().expect("DATABASE_URL");
    let host = match &config.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(host) => host.clone(),
        other => panic!("the suite expects PostgreSQL over TCP, DATABASE_URL gives {other:?}"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = rt.block_on(async {
        let db = env::postgres(&url).await;
        db.batch_execute(CREATE_ITEMS).await.expect("create items");
        db
    });

    let (mut id, mut rows, mut failure, mut count) = (0, Vec::new(), None, 0i64);
    let mut count_line = 0;
    let txs = capture(|| {
        in_transaction("GET /items", || {
            rt.block_on(async {
                id = insert_item(&db, "Ada").await.expect("insert");
                rows = all_items(&db).await.expect("select");
                failure = misspelled(&db, id).await.err();
                count_line = line!() + 1;
                count = Query::sql("SELECT count(*) FROM items")
                    .table("items")
                    .db_name("test")
                    .server(&host, port)
                    .run(db.query_one("SELECT count(*) FROM items", &[]))
                    .await
                    .expect("count")
                    .get(0);
            });
        });
    });

    // The queries ran on the real server.
    assert_eq!(id, 1);
    assert_eq!(rows, vec![(1, "Ada".to_owned())]);
    assert_eq!(count, 1);
    let failure = failure.expect("the misspelled query fails");
    assert_eq!(
        failure.code(),
        Some(&tokio_postgres::error::SqlState::UNDEFINED_COLUMN),
        "{failure}"
    );

    assert_eq!(txs.len(), 1);
    let tx = &txs[0];
    assert_eq!(ops(tx), ["db", "db", "db", "db"]);
    let inserted = "INSERT INTO items (name) VALUES ($1) RETURNING id";
    let insert = the_span(tx, "db", inserted);
    assert_data(
        insert,
        &and(pg_data("items", "INSERT", inserted), &here("insert_item")),
    );
    assert_eq!(insert.status, Some(SpanStatus::Ok));

    let select = the_span(tx, "db", "SELECT * FROM items");
    assert_data(
        select,
        &and(
            pg_data("items", "SELECT", "SELECT * FROM items"),
            &here("all_items"),
        ),
    );
    assert_eq!(select.status, Some(SpanStatus::Ok));

    let misspelt = "SELECT nam FROM items WHERE id = $1";
    let failed = the_span(tx, "db", misspelt);
    assert_data(
        failed,
        &and(
            and(pg_data("items", "SELECT", misspelt), &db_name("test")),
            &here("misspelled"),
        ),
    );
    assert_eq!(failed.status, Some(SpanStatus::InternalError));

    // The builder: the operation from the statement, the caller's file and line.
    let counted = the_span(tx, "db", "SELECT count(*) FROM items");
    assert_data(
        counted,
        &and(
            and(
                pg_data("items", "SELECT", "SELECT count(*) FROM items"),
                &db_name("test"),
            ),
            &[
                ("server.address", str_of(&host)),
                ("server.port", Value::from(port)),
                ("code.filepath", str_of("tests/services.rs")),
                ("code.file.path", str_of("tests/services.rs")),
                ("code.lineno", Value::from(count_line)),
                ("code.line.number", Value::from(count_line)),
            ],
        ),
    );
    assert_eq!(counted.status, Some(SpanStatus::Ok));

    for span in &tx.spans {
        assert_eq!(span.parent_span_id, Some(root_id(tx)));
        assert_eq!(span.trace_id, trace(tx).trace_id);
        assert!(span
            .timestamp
            .is_some_and(|end| end >= span.start_timestamp));
        assert_parses_as_postgres(span);
    }
    drop(scratch);
}

// ---------------------------------------------------------------------------------------------
// Caches: Redis

#[instrument_cache_operation(get, key_param = "key")]
async fn cached(
    redis: &mut redis::aio::MultiplexedConnection,
    key: &str,
) -> redis::RedisResult<Option<String>> {
    redis.get(key).await
}

#[instrument_cache_operation(put, key_param = "key", ttl = 60, value_param = "value")]
async fn cache(
    redis: &mut redis::aio::MultiplexedConnection,
    key: &str,
    value: &str,
) -> redis::RedisResult<()> {
    redis.set_ex(key, value, 60).await
}

#[instrument_cache_operation(remove, key_param = "key")]
async fn evict(
    redis: &mut redis::aio::MultiplexedConnection,
    key: &str,
) -> redis::RedisResult<usize> {
    redis.del(key).await
}

/// Reads through a `CacheTracker`, as the `service` example does: the span is held across the
/// `.await`, so it is started detached.
async fn tracked_get(
    tracker: &CacheTracker,
    redis: &mut redis::aio::MultiplexedConnection,
    key: &str,
) -> redis::RedisResult<Option<Vec<u8>>> {
    let span = tracker.operation(Kind::Get, Some(key)).start_detached();
    let value: redis::RedisResult<Option<Vec<u8>>> = redis.get(key).await;
    span.finish_with(|data| value.record_read(data));
    value
}

async fn tracked_put(
    tracker: &CacheTracker,
    redis: &mut redis::aio::MultiplexedConnection,
    key: &str,
    value: &[u8],
) -> redis::RedisResult<()> {
    let span = tracker
        .put(key)
        .ttl(60u64)
        .item_size(value.len())
        .start_detached();
    let stored: redis::RedisResult<()> = redis.set_ex(key, value, 60).await;
    span.finish_with_outcome(&stored);
    stored
}

#[test]
fn redis_reads_and_writes_are_cache_spans() {
    let rt = runtime();
    let (client, mut redis) = rt.block_on(env::redis());
    let (host, port) = env::redis_server(&client);
    let prefix = format!("svc-{}:", unique());
    let (key, list_key, tracked_key) = (
        format!("{prefix}user:1"),
        format!("{prefix}list"),
        format!("{prefix}user:2"),
    );
    // Multi-byte text: its size in bytes is not its length in characters.
    let value = "Grüße, 世界 ✓";
    let bytes = "\u{1F980} crab".as_bytes();
    rt.block_on(async {
        let _: () = redis.rpush(&list_key, "x").await.expect("RPUSH");
        let _: () = redis.expire(&list_key, 60).await.expect("EXPIRE");
    });
    let tracker = CacheTracker::new("redis").server(host.as_str(), port);

    let mut seen = Vec::new();
    let (mut stored_len, mut ttl, mut tracked_len) = (0usize, 0i64, 0usize);
    let txs = capture(|| {
        in_transaction("GET /users/{id}", || {
            rt.block_on(async {
                seen.push(cached(&mut redis, &key).await.map_err(|e| e.to_string()));
                cache(&mut redis, &key, value).await.expect("SET");
                seen.push(cached(&mut redis, &key).await.map_err(|e| e.to_string()));
                // Uninstrumented reads of what Redis holds.
                stored_len = redis.strlen(&key).await.expect("STRLEN");
                ttl = redis.ttl(&key).await.expect("TTL");
                seen.push(
                    cached(&mut redis, &list_key)
                        .await
                        .map_err(|e| e.to_string()),
                );
                assert_eq!(evict(&mut redis, &key).await.expect("DEL"), 1);
                seen.push(cached(&mut redis, &key).await.map_err(|e| e.to_string()));

                assert_eq!(
                    tracked_get(&tracker, &mut redis, &tracked_key)
                        .await
                        .expect("GET"),
                    None
                );
                tracked_put(&tracker, &mut redis, &tracked_key, bytes)
                    .await
                    .expect("SET");
                let read = tracked_get(&tracker, &mut redis, &tracked_key)
                    .await
                    .expect("GET");
                assert_eq!(read.as_deref(), Some(bytes));
                tracked_len = redis.strlen(&tracked_key).await.expect("STRLEN");
            });
        });
    });

    // What Redis answered.
    assert_eq!(seen[0], Ok(None));
    assert_eq!(seen[1], Ok(Some(value.to_owned())));
    assert!(
        seen[2].as_ref().is_err_and(|e| e.contains("WRONGTYPE")),
        "{:?}",
        seen[2]
    );
    assert_eq!(seen[3], Ok(None));
    assert_eq!(stored_len, value.len());
    assert_ne!(value.len(), value.chars().count());
    assert!((1..=60).contains(&ttl), "TTL {ttl}");
    assert_eq!(tracked_len, bytes.len());

    assert_eq!(txs.len(), 1);
    let tx = &txs[0];
    let key_of = |k: &str| ("cache.key", Value::from(vec![str_of(k)]));
    assert_eq!(
        ops(tx),
        [
            "cache.get",
            "cache.put",
            "cache.get",
            "cache.get",
            "cache.remove",
            "cache.get",
            "cache.get",
            "cache.put",
            "cache.get"
        ]
    );
    for span in &tx.spans {
        assert_eq!(span.parent_span_id, Some(root_id(tx)));
    }
    let s = &tx.spans;
    // The attribute: hit and size from the returned value.
    assert_eq!(s[0].description.as_deref(), Some(key.as_str()));
    assert_data(&s[0], &[key_of(&key), ("cache.hit", Value::from(false))]);
    assert_data(
        &s[1],
        &[
            key_of(&key),
            ("cache.ttl", Value::from(60)),
            ("cache.item_size", Value::from(stored_len)),
        ],
    );
    assert_data(
        &s[2],
        &[
            key_of(&key),
            ("cache.hit", Value::from(true)),
            ("cache.item_size", Value::from(stored_len)),
        ],
    );
    // Redis refused the read: an error, and no hit or miss.
    assert_eq!(s[3].description.as_deref(), Some(list_key.as_str()));
    assert_data(&s[3], &[key_of(&list_key)]);
    assert_eq!(s[3].status, Some(SpanStatus::InternalError));
    assert_data(&s[4], &[key_of(&key)]);
    assert_data(&s[5], &[key_of(&key), ("cache.hit", Value::from(false))]);
    for (i, span) in s[..6].iter().enumerate() {
        if i != 3 {
            assert_eq!(span.status, Some(SpanStatus::Ok), "span {i}");
        }
    }
    // The tracker: the server's address on every span.
    let server = [
        ("db.system", str_of("redis")),
        ("db.system.name", str_of("redis")),
        ("network.peer.address", str_of(&host)),
        ("network.peer.port", Value::from(port)),
    ];
    let with_server = |extra: &[(&'static str, Value)]| {
        let mut all = vec![key_of(&tracked_key)];
        all.extend(server.iter().cloned());
        all.extend(extra.iter().cloned());
        all
    };
    assert_data(&s[6], &with_server(&[("cache.hit", Value::from(false))]));
    assert_data(
        &s[7],
        &with_server(&[
            ("cache.ttl", Value::from(60)),
            ("cache.item_size", Value::from(tracked_len)),
        ]),
    );
    assert_data(
        &s[8],
        &with_server(&[
            ("cache.hit", Value::from(true)),
            ("cache.item_size", Value::from(tracked_len)),
        ]),
    );
    for span in &s[6..] {
        assert_eq!(span.description.as_deref(), Some(tracked_key.as_str()));
        assert_eq!(span.status, Some(SpanStatus::Ok));
    }
}

// ---------------------------------------------------------------------------------------------
// Queues: RabbitMQ, across processes

/// The producer side, in this process: the attribute writes the trace into `headers`, the AMQP
/// message's own headers (lapin's `FieldTable` is a carrier), before the body sends it. The
/// destination is the queue's name, as the worker consumes it.
#[instrument_queue_publish(
    destination = queue,
    system = "rabbitmq",
    headers_param = "headers",
    message_id_param = "message_id",
    body_param = "body"
)]
async fn publish_job(
    channel: &lapin::Channel,
    queue: &str,
    headers: &mut FieldTable,
    message_id: &str,
    body: &[u8],
) -> Result<(), lapin::Error> {
    let properties = BasicProperties::default()
        .with_message_id(ShortString::from(message_id))
        .with_headers(std::mem::take(headers));
    channel
        .basic_publish(
            ShortString::default(),
            ShortString::from(queue),
            BasicPublishOptions::default(),
            body,
            properties,
        )
        .await?
        .await?;
    Ok(())
}

/// The `queue.process` span of a worker transaction, checked against its producer's
/// `queue.publish` span: same trace, parent = the publish span, the same message data.
fn assert_continues(
    consumer: &Transaction<'_>,
    producer: &Transaction<'_>,
    publish: &Span,
    queue: &str,
) -> Span {
    let ctx = trace(consumer);
    // Named by the worker's run-time destination, the queue it consumes.
    assert_eq!(consumer.name.as_deref(), Some(queue));
    assert_eq!(ctx.op.as_deref(), Some("queue.task"));
    assert_eq!(
        ctx.trace_id,
        trace(producer).trace_id,
        "the producer's trace"
    );
    assert_eq!(
        ctx.parent_span_id,
        Some(publish.span_id),
        "the parent is the producer's queue.publish span"
    );
    let process = consumer
        .spans
        .iter()
        .find(|s| s.op.as_deref() == Some("queue.process"))
        .expect("a queue.process span");
    assert_eq!(process.description.as_deref(), Some(queue));
    assert_eq!(process.parent_span_id, Some(ctx.span_id));
    assert_eq!(process.trace_id, ctx.trace_id);
    for key in [
        "messaging.destination.name",
        "messaging.system",
        "messaging.message.id",
        "messaging.message.body.size",
    ] {
        assert!(publish.data.contains_key(key), "{key} on the publish span");
        assert_eq!(process.data.get(key), publish.data.get(key), "{key}");
    }
    // Those four, the retry count and the latency.
    assert_eq!(process.data.len(), 6, "{:#?}", process.data);
    // An integer number of milliseconds, as Sentry's attribute registry types it.
    let latency = process.data["messaging.message.receive.latency"]
        .as_u64()
        .expect("the receive latency is a JSON integer");
    assert!((0..60_000).contains(&latency), "latency {latency} ms");
    process.clone()
}

/// The data every span of the integrations (sqlx, tokio-postgres) records on the suite's
/// PostgreSQL: `db.name` and the server, from the connection's configuration (`DATABASE_URL`).
fn pg_connection_data() -> Vec<(&'static str, Value)> {
    let config: tokio_postgres::Config = env::database_url().parse().expect("DATABASE_URL");
    let name = config
        .get_dbname()
        .expect("a database in DATABASE_URL")
        .to_owned();
    let host = match config.get_hosts() {
        [tokio_postgres::config::Host::Tcp(host)] => host.clone(),
        other => panic!("the suite expects PostgreSQL over TCP, DATABASE_URL gives {other:?}"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    vec![
        ("db.name", str_of(&name)),
        ("db.namespace", str_of(&name)),
        ("server.address", str_of(&host)),
        ("server.port", Value::from(port)),
    ]
}

/// The data of an integration's span for `statement` (no table: the integrations do not parse
/// the SQL), its first keyword `operation`.
fn integration_data(operation: &str, statement: &str) -> Vec<(&'static str, Value)> {
    let mut data = vec![
        ("db.system", str_of("postgresql")),
        ("db.system.name", str_of("postgresql")),
        ("db.operation", str_of(operation)),
        ("db.operation.name", str_of(operation)),
        ("db.query.text", str_of(statement)),
    ];
    data.extend(pg_connection_data());
    data
}

/// The query source of a call on a line of `source` (a file's text) containing `marker`.
fn call_source(file: &str, source: &str, marker: &str) -> [(&'static str, Value); 4] {
    let at = source
        .lines()
        .position(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("{marker:?} in {file}"));
    let line = Value::from(at + 1);
    [
        ("code.filepath", str_of(file)),
        ("code.file.path", str_of(file)),
        ("code.lineno", line.clone()),
        ("code.line.number", line),
    ]
}

/// The one `db` span under `parent`: the worker's write, recorded by the tokio-postgres
/// integration (`insights_runtime::postgres::Client`), with no attribute on the query; it
/// changed `affected` rows (0 for a job whose item does not exist: the statement still
/// succeeded).
fn assert_worker_write(consumer: &Transaction<'_>, parent: &Span, affected: u64) {
    let statement = "UPDATE items SET processed_at = now() WHERE id = $1";
    let write = the_span(consumer, "db", statement);
    assert_eq!(write.parent_span_id, Some(parent.span_id));
    assert_eq!(write.status, Some(SpanStatus::Ok));
    let mut data = integration_data("UPDATE", statement);
    data.push(("db.response.affected_rows", Value::from(affected)));
    data.extend(call_source(
        "examples/worker.rs",
        include_str!("../examples/worker.rs"),
        "db.execute(MARK_PROCESSED",
    ));
    assert_data(write, &data);
    assert_parses_as_postgres(write);
}

fn worker_env(
    endpoint: &SentryEndpoint,
    scratch: &Scratch,
    max: u32,
) -> Vec<(&'static str, String)> {
    vec![
        ("SENTRY_DSN", endpoint.dsn()),
        ("SENTRY_TRACES_SAMPLE_RATE", "1".to_owned()),
        ("DATABASE_URL", scratch.database_url()),
        ("AMQP_URL", env::amqp_url()),
        ("JOBS_QUEUE", scratch.queue.clone()),
        ("WORKER_MAX_MESSAGES", max.to_string()),
        ("SENTRY_RELEASE", WORKER_RELEASE.to_owned()),
    ]
}

/// The worker's release, unlike the service's: the DSC of a job's trace must still be the
/// service's.
const WORKER_RELEASE: &str = "item-worker@9.9.9";

#[test]
fn a_job_continues_its_producers_trace_in_another_process() {
    let rt = runtime();
    let scratch = Scratch::new(&rt);
    let endpoint = SentryEndpoint::start();
    // Two jobs: one for an item, one for an item that does not exist (it fails, is redelivered
    // once, fails again and is dropped): three deliveries.
    let mut worker = Running::start("worker", &worker_env(&endpoint, &scratch, 3));
    assert_eq!(
        worker.wait_line("consuming ", Duration::from_secs(20)),
        scratch.queue
    );

    let amqp = rt.block_on(env::rabbitmq());
    let (db, channel, id) = rt.block_on(async {
        let db = env::postgres(&scratch.database_url()).await;
        let id: i64 = db
            .query_one("INSERT INTO items (name) VALUES ('Ada') RETURNING id", &[])
            .await
            .expect("insert")
            .get(0);
        let channel = amqp.create_channel().await.expect("channel");
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirms");
        (db, channel, id)
    });
    let (good, bad) = (format!("good-{}", unique()), format!("bad-{}", unique()));
    let producers = capture(|| {
        in_transaction("enqueue", || {
            rt.block_on(async {
                let job = format!("{{\"item_id\":{id}}}");
                publish_job(
                    &channel,
                    &scratch.queue,
                    &mut FieldTable::default(),
                    &good,
                    job.as_bytes(),
                )
                .await
                .expect("publish");
                publish_job(
                    &channel,
                    &scratch.queue,
                    &mut FieldTable::default(),
                    &bad,
                    b"{\"item_id\":-1}",
                )
                .await
                .expect("publish");
            });
        });
    });
    assert!(worker.wait_exit(Duration::from_secs(30)).success());
    assert_eq!(
        worker.stdout_lines()[1..],
        [
            format!("processed {good}"),
            format!("failed {bad}: no item -1 (requeued: true)"),
            format!("failed {bad}: no item -1 (requeued: false)"),
        ]
    );

    assert_eq!(producers.len(), 1);
    let producer = &producers[0];
    let publish_of = |id: &str| {
        producer
            .spans
            .iter()
            .find(|s| s.data.get("messaging.message.id") == Some(&str_of(id)))
            .unwrap_or_else(|| panic!("no publish span for {id}"))
    };
    let (publish_good, publish_bad) = (publish_of(&good), publish_of(&bad));
    for (publish, size) in [
        (publish_good, format!("{{\"item_id\":{id}}}").len()),
        (publish_bad, 14),
    ] {
        assert_eq!(publish.op.as_deref(), Some("queue.publish"));
        assert_eq!(publish.parent_span_id, Some(root_id(producer)));
        assert_eq!(publish.status, Some(SpanStatus::Ok));
        assert_data(
            publish,
            &[
                ("messaging.destination.name", str_of(&scratch.queue)),
                ("messaging.system", str_of("rabbitmq")),
                (
                    "messaging.message.id",
                    publish.data["messaging.message.id"].clone(),
                ),
                ("messaging.message.body.size", Value::from(size)),
            ],
        );
    }

    let received = endpoint.wait_for(
        "the worker's three transactions",
        Duration::from_secs(10),
        |r| {
            let txs = transactions(r);
            (txs.len() >= 3).then_some(txs)
        },
    );
    assert_eq!(received.len(), 3, "{received:#?}");
    let of = |id: &str| -> Vec<&Transaction<'static>> {
        received
            .iter()
            .filter(|t| {
                t.spans.iter().any(|s| {
                    s.op.as_deref() == Some("queue.process")
                        && s.data.get("messaging.message.id") == Some(&str_of(id))
                })
            })
            .collect()
    };

    let done = of(&good);
    assert_eq!(done.len(), 1);
    let process = assert_continues(done[0], producer, publish_good, &scratch.queue);
    assert_eq!(trace(done[0]).status, Some(SpanStatus::Ok));
    assert_eq!(process.status, Some(SpanStatus::Ok));
    assert_eq!(
        process.data["messaging.message.retry.count"],
        Value::from(0)
    );
    assert_worker_write(done[0], &process, 1);

    let failed = of(&bad);
    assert_eq!(failed.len(), 2);
    let mut retries = Vec::new();
    for consumer in failed {
        let process = assert_continues(consumer, producer, publish_bad, &scratch.queue);
        // Sentry's queue error rate reads the transaction's status.
        assert_eq!(trace(consumer).status, Some(SpanStatus::InternalError));
        assert_eq!(process.status, Some(SpanStatus::InternalError));
        assert_worker_write(consumer, &process, 0);
        retries.push(process.data["messaging.message.retry.count"].clone());
    }
    retries.sort_by_key(|v| v.as_u64());
    assert_eq!(retries, [Value::from(0), Value::from(1)]);

    endpoint.with_received(|received| {
        // Path and key are checked by the endpoint as each envelope arrives.
        for envelope in received {
            // A transaction travels alone, its envelope's header naming it and carrying its
            // trace's sampling context. (`setup::init` sends through `transport::HttpTransport`;
            // `sentry` 0.49.5's own HTTP transports drop every header but the event id.)
            let txs = envelope.transactions();
            if !txs.is_empty() {
                assert_eq!(txs.len(), 1);
                assert_eq!(
                    envelope.header["event_id"],
                    str_of(&txs[0].event_id.to_string()),
                    "{:#}",
                    envelope.header
                );
                assert_eq!(
                    envelope.header["trace"]["trace_id"],
                    str_of(&trace(&txs[0]).trace_id.to_string()),
                    "{:#}",
                    envelope.header
                );
                assert_eq!(envelope.header["trace"]["public_key"], "public");
            }
        }
    });

    // The worker's write reached the database; the failed job left the queue.
    rt.block_on(async {
        let processed: bool = db
            .query_one(
                "SELECT processed_at IS NOT NULL FROM items WHERE id = $1",
                &[&id],
            )
            .await
            .expect("select")
            .get(0);
        assert!(processed);
        let queue = channel
            .queue_declare(
                ShortString::from(scratch.queue.as_str()),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("the queue exists");
        assert_eq!(queue.message_count(), 0);
    });
}

// ---------------------------------------------------------------------------------------------
// The `service` and `worker` examples, reporting over HTTP

/// The transaction of `name` whose spans have these ops.
fn named<'a>(
    txs: &'a [Transaction<'static>],
    name: &str,
    span_ops: &[&str],
) -> &'a Transaction<'static> {
    let found: Vec<_> = txs
        .iter()
        .filter(|t| t.name.as_deref() == Some(name) && ops(t) == span_ops)
        .collect();
    assert_eq!(found.len(), 1, "{name} with spans {span_ops:?} in {txs:#?}");
    found[0]
}

#[test]
fn service_and_worker_send_their_spans_to_sentry() {
    let rt = runtime();
    let scratch = Scratch::new(&rt);
    let endpoint = SentryEndpoint::start();
    let prefix = format!("svc-{}:", unique());
    let mut service = Running::start(
        "service",
        &[
            ("SENTRY_DSN", endpoint.dsn()),
            ("SENTRY_TRACES_SAMPLE_RATE", "1".to_owned()),
            ("DATABASE_URL", scratch.database_url()),
            ("REDIS_URL", env::redis_url()),
            ("AMQP_URL", env::amqp_url()),
            ("JOBS_QUEUE", scratch.queue.clone()),
            ("CACHE_KEY_PREFIX", prefix.clone()),
            ("BIND_ADDR", "127.0.0.1:0".to_owned()),
        ],
    );
    let url = service.wait_line("listening on ", Duration::from_secs(20));
    let addr = url
        .strip_prefix("http://")
        .expect("an http:// address")
        .to_owned();
    let mut worker = Running::start("worker", &worker_env(&endpoint, &scratch, 1));
    worker.wait_line("consuming ", Duration::from_secs(20));

    let health = request(&addr, "GET", "/health", "");
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));
    let name = "Grace ✓";
    let created = request(&addr, "POST", "/items", name);
    assert_eq!(created.status, 201, "{}", created.body);
    let item = format!("{{\"id\":1,\"name\":\"{name}\"}}");
    assert_eq!(created.body, item);
    let miss = request(&addr, "GET", "/items/1", "");
    let hit = request(&addr, "GET", "/items/1", "");
    assert_eq!((miss.status, miss.body.as_str()), (200, item.as_str()));
    assert_eq!((hit.status, hit.body.as_str()), (200, item.as_str()));
    assert_eq!(request(&addr, "GET", "/items/2", "").status, 404);
    let metrics = request(&addr, "GET", "/metrics", "");
    assert_eq!(metrics.status, 200);
    assert_eq!(
        metrics.header("content-type"),
        Some("text/plain; version=0.0.4")
    );
    assert!(
        metrics
            .body
            .lines()
            .any(|l| l == "service_items_created_total 1"),
        "{}",
        metrics.body
    );
    // The insights metrics of the attribute it keeps (the integrations record spans only).
    // Labelled by the queue's configured name (JOBS_QUEUE).
    let series = format!(
        r#"queue_messages_published_total{{queue_name="{}"}} 1"#,
        scratch.queue
    );
    assert!(
        metrics.body.lines().any(|l| l == series),
        "{series} in:\n{}",
        metrics.body
    );

    assert!(worker.wait_exit(Duration::from_secs(30)).success());
    endpoint.wait_for("five transactions", Duration::from_secs(10), |r| {
        (transactions(r).len() >= 5).then_some(())
    });
    // A graceful stop flushes whatever is left; nothing more should come.
    let stopped = service.terminate(Duration::from_secs(10));
    assert!(stopped.success(), "{stopped}");
    assert_eq!(
        service.stdout_lines().last().map(String::as_str),
        Some("stopped")
    );

    // Path and key are checked by the endpoint as each envelope arrives.
    let txs = endpoint.with_received(transactions);
    // `/health` and `/metrics` are sampled out.
    let mut names: Vec<_> = txs.iter().filter_map(|t| t.name.as_deref()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "GET /items/{id}",
            "GET /items/{id}",
            "GET /items/{id}",
            "POST /items",
            scratch.queue.as_str(),
        ]
    );

    // POST /items: the insert, then the job.
    let post = named(&txs, "POST /items", &["db", "queue.publish"]);
    assert_eq!(trace(post).op.as_deref(), Some("http.server"));
    assert_eq!(trace(post).status, Some(SpanStatus::Ok));
    // The insert, recorded by the sqlx integration (`sqlx::query_scalar(..).fetch_one(&pool)`:
    // called from inside sqlx, so no query source).
    let insert = &post.spans[0];
    let statement = "INSERT INTO items (name) VALUES ($1) RETURNING id";
    assert_eq!(insert.description.as_deref(), Some(statement));
    let mut insert_data = integration_data("INSERT", statement);
    insert_data.push(("db.response.returned_rows", Value::from(1)));
    assert_data(insert, &insert_data);
    assert_parses_as_postgres(insert);
    let publish = &post.spans[1];
    assert_eq!(publish.description.as_deref(), Some(scratch.queue.as_str()));
    let message_id = publish.data["messaging.message.id"].clone();
    assert!(
        message_id.as_str().is_some_and(|id| id.len() == 36),
        "{message_id}"
    );
    assert_data(
        publish,
        &[
            ("messaging.destination.name", str_of(&scratch.queue)),
            ("messaging.system", str_of("rabbitmq")),
            ("messaging.message.id", message_id.clone()),
            (
                "messaging.message.body.size",
                Value::from("{\"item_id\":1}".len()),
            ),
        ],
    );
    for span in &post.spans {
        assert_eq!(span.parent_span_id, Some(root_id(post)));
        assert_eq!(span.status, Some(SpanStatus::Ok));
    }

    // The worker continued the request's trace.
    let job = named(&txs, &scratch.queue, &["db", "queue.process"]);
    let process = assert_continues(job, post, publish, &scratch.queue);
    assert_eq!(process.data["messaging.message.id"], message_id);
    assert_eq!(
        process.data["messaging.message.retry.count"],
        Value::from(0)
    );
    assert_eq!(trace(job).status, Some(SpanStatus::Ok));
    assert_worker_write(job, &process, 1);

    // GET /items/{id}: a miss reads the database and fills the cache; then a hit.
    let (client, mut redis) = rt.block_on(env::redis());
    let (host, port) = env::redis_server(&client);
    let key = format!("{prefix}1");
    let cached_len: usize = rt.block_on(redis.strlen(&key)).expect("STRLEN");
    assert_eq!(cached_len, item.len());
    let cache_data = |extra: &[(&'static str, Value)]| {
        let mut all = vec![
            ("cache.key", Value::from(vec![str_of(&key)])),
            ("db.system", str_of("redis")),
            ("db.system.name", str_of("redis")),
            ("network.peer.address", str_of(&host)),
            ("network.peer.port", Value::from(port)),
        ];
        all.extend(extra.iter().cloned());
        all
    };
    // Spans are listed as they finish: a cache span's `db.redis` child just before it.
    let missed = named(
        &txs,
        "GET /items/{id}",
        &["db.redis", "cache.get", "db", "db.redis", "cache.put"],
    );
    assert_eq!(trace(missed).status, Some(SpanStatus::Ok));
    assert_data(
        &missed.spans[1],
        &cache_data(&[("cache.hit", Value::from(false))]),
    );
    let select = &missed.spans[2];
    let statement = "SELECT id, name FROM items WHERE id = $1";
    assert_eq!(select.description.as_deref(), Some(statement));
    let mut select_data = integration_data("SELECT", statement);
    select_data.push(("db.response.returned_rows", Value::from(1)));
    assert_data(select, &select_data);
    assert_parses_as_postgres(select);
    assert_data(
        &missed.spans[4],
        &cache_data(&[
            ("cache.ttl", Value::from(300)),
            ("cache.item_size", Value::from(cached_len)),
        ]),
    );
    let hit_tx = named(&txs, "GET /items/{id}", &["db.redis", "cache.get"]);
    assert_data(
        &hit_tx.spans[1],
        &cache_data(&[
            ("cache.hit", Value::from(true)),
            ("cache.item_size", Value::from(cached_len)),
        ]),
    );
    for tx in [missed, hit_tx] {
        for span in &tx.spans {
            assert_eq!(span.status, Some(SpanStatus::Ok));
            if span.op.as_deref() == Some("db.redis") {
                // The command inside its cache span, described without the value.
                let cache = tx
                    .spans
                    .iter()
                    .find(|c| Some(c.span_id) == span.parent_span_id)
                    .expect("a db.redis span's parent is its cache span");
                assert!(cache
                    .op
                    .as_deref()
                    .is_some_and(|op| op.starts_with("cache.")));
                let description = span.description.as_deref().unwrap_or_default();
                assert!(
                    description == format!("GET {key}")
                        || description == format!("SETEX {key} [Filtered] [Filtered]"),
                    "{description}"
                );
            } else {
                assert_eq!(span.parent_span_id, Some(root_id(tx)));
            }
        }
        assert_eq!(tx.spans[1].description.as_deref(), Some(key.as_str()));
    }
    // The unknown item: an expected 404, its cache miss and query recorded (no row).
    let missing = named(&txs, "GET /items/{id}", &["db.redis", "cache.get", "db"]);
    assert_eq!(trace(missing).status, Some(SpanStatus::NotFound));
    assert_eq!(
        missing.spans[1].description.as_deref(),
        Some(format!("{prefix}2").as_str())
    );
    assert_eq!(
        missing.spans[2].data["db.response.returned_rows"],
        Value::from(0)
    );

    // Each request has a trace of its own; the job's transaction is in its request's.
    let mut in_post_trace: Vec<_> = txs
        .iter()
        .filter(|t| trace(t).trace_id == trace(post).trace_id)
        .filter_map(|t| t.name.as_deref())
        .collect();
    in_post_trace.sort_unstable();
    assert_eq!(in_post_trace, ["POST /items", scratch.queue.as_str()]);

    // The worker, with a release of its own, sends the request's DSC in its envelope: frozen
    // at the head (the service) and carried through the message's baggage.
    endpoint.with_received(|received| {
        let header_of = |name: &str| {
            let mut headers = endpoint::trace_headers(received, name);
            assert_eq!(headers.len(), 1, "one envelope for {name}");
            headers.remove(0)
        };
        let (head, job) = (header_of("POST /items"), header_of(&scratch.queue));
        assert_eq!(head, job, "the worker kept the service's DSC");
        assert_eq!(
            head["trace_id"],
            Value::from(trace(post).trace_id.to_string())
        );
        for key in [
            "public_key",
            "sample_rate",
            "sample_rand",
            "sampled",
            "release",
            "environment",
        ] {
            assert!(head.get(key).is_some(), "{key} in {head:#}");
        }
        assert_ne!(head["release"], Value::from(WORKER_RELEASE));
    });
}
