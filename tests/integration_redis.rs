//! `insights_runtime::redis::Traced` against a real Redis (`REDIS_URL`, default
//! `redis://127.0.0.1:6379/`): cache spans for the keys of the configured prefixes, with the
//! command's `db.redis` span as their child, `db.redis` spans for everything else, one span per
//! pipeline, refused and unexpected replies, nothing recorded without Sentry, and 200 concurrent
//! requests on one multiplexed connection.
//!
//! ```text
//! cargo test --features services --test integration_redis
//! ```
//!
//! Redis must be running: every test that needs it fails, naming it and the address tried.
//! Each test writes keys under a prefix of its own, with a TTL.

mod common;
#[path = "common/counting.rs"]
mod counting;
#[allow(dead_code, reason = "this suite uses only the Redis helpers")]
#[path = "services/env.rs"]
mod env;

use std::sync::Arc;

use common::{assert_data, capture, in_transaction, only, root_id, the_span, trace};
use counting::{allocations_by, Counting};
use env::{runtime, unique};
use insights_runtime::redis::{Config, Traced};
use insights_runtime::span::SpanGuard;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{AsyncCommands, Cmd, Pipeline, RedisFuture};
use sentry::protocol::{Span, SpanId, SpanStatus, Transaction, Value};
use sentry::{Hub, SentryFutureExt, TransactionContext};

// ---------------------------------------------------------------------------------------------
// Helpers

fn s(value: &str) -> Value {
    Value::from(value)
}

fn strings(values: &[&str]) -> Value {
    Value::Array(values.iter().map(|v| s(v)).collect())
}

fn children<'a>(tx: &'a Transaction<'_>, parent: SpanId) -> Vec<&'a Span> {
    tx.spans
        .iter()
        .filter(|s| s.parent_span_id == Some(parent))
        .collect()
}

fn ops<'a>(tx: &'a Transaction<'_>) -> Vec<&'a str> {
    let mut ops: Vec<&str> = tx.spans.iter().filter_map(|s| s.op.as_deref()).collect();
    ops.sort_unstable();
    ops
}

/// The data of a `db.redis` span of `description` (its operation the first word) on database
/// `db` of `server`, about `key`.
fn redis_data(
    db: &str,
    server: Option<(&str, u16)>,
    description: &str,
    key: Option<&str>,
) -> Vec<(&'static str, Value)> {
    let operation = description.split(' ').next().unwrap_or_default();
    let mut data = vec![
        ("db.system", s("redis")),
        ("db.system.name", s("redis")),
        ("db.operation", s(operation)),
        ("db.operation.name", s(operation)),
        ("db.query.text", s(description)),
        ("db.name", s(db)),
        ("db.namespace", s(db)),
    ];
    if let Some((host, port)) = server {
        data.push(("server.address", s(host)));
        data.push(("server.port", Value::from(port)));
    }
    if let Some(key) = key {
        data.push(("db.redis.key", s(key)));
        data.push(("redis.key", s(key)));
    }
    data
}

/// One Redis, the address the spans must carry, and a key prefix of this test.
struct Setup {
    client: redis::Client,
    plain: MultiplexedConnection,
    host: String,
    port: u16,
    db: String,
    prefix: String,
}

impl Setup {
    fn new(rt: &tokio::runtime::Runtime) -> Self {
        let (client, plain) = rt.block_on(env::redis());
        let (host, port) = env::redis_server(&client);
        let db = plain.get_db().to_string();
        Setup {
            client,
            plain,
            host,
            port,
            db,
            prefix: format!("it-{}:", unique()),
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The connection, wrapped with this test's prefix as the cache prefix.
    fn traced(&self) -> Traced<MultiplexedConnection> {
        Config::new()
            .cache_prefixes([self.prefix.as_str()])
            .server_of(self.client.get_connection_info())
            .wrap(self.plain.clone())
    }

    /// The data of a `db.redis` span of `description` on this test's server.
    fn redis_data(&self, description: &str, key: Option<&str>) -> Vec<(&'static str, Value)> {
        redis_data(&self.db, Some((&self.host, self.port)), description, key)
    }

    /// The data of a cache span of `keys`, with `extra`.
    fn cache_data(
        &self,
        keys: &[&str],
        extra: &[(&'static str, Value)],
    ) -> Vec<(&'static str, Value)> {
        let mut data = vec![
            ("cache.key", strings(keys)),
            ("db.system", s("redis")),
            ("db.system.name", s("redis")),
            ("network.peer.address", s(&self.host)),
            ("network.peer.port", Value::from(self.port)),
        ];
        data.extend(extra.iter().cloned());
        data
    }
}

/// Asserts that a cache span of `op` over `keys` is a child of the transaction, with exactly
/// one child, the `db.redis` span of `command`; returns both.
fn cache_pair<'a>(
    tx: &'a Transaction<'_>,
    op: &str,
    keys: &[&str],
    command: &str,
) -> (&'a Span, &'a Span) {
    let cache = the_span(tx, op, &keys.join(", "));
    assert_eq!(cache.parent_span_id, Some(root_id(tx)), "{op} {keys:?}");
    let db = the_span(tx, "db.redis", command);
    assert_eq!(db.parent_span_id, Some(cache.span_id), "{command}");
    let under: Vec<&Span> = children(tx, cache.span_id);
    assert_eq!(under.len(), 1, "children of {op} {keys:?}: {under:#?}");
    assert_eq!(db.trace_id, trace(tx).trace_id);
    assert_eq!(cache.trace_id, trace(tx).trace_id);
    (cache, db)
}

// ---------------------------------------------------------------------------------------------
// Cache reads

#[test]
fn get_hit_and_miss_with_sizes_from_real_replies() {
    let rt = runtime();
    let mut setup = Setup::new(&rt);
    let (hit, miss) = (setup.key("user:1"), setup.key("user:2"));
    // Multi-byte text: its size in bytes is not its length in characters.
    let value = "Grüße, 世界 ✓";
    rt.block_on(setup.plain.set_ex::<_, _, ()>(&hit, value, 60))
        .expect("SET");
    let stored: usize = rt.block_on(setup.plain.strlen(&hit)).expect("STRLEN");
    assert_eq!(stored, value.len());
    assert_ne!(stored, value.chars().count());

    let mut redis = setup.traced();
    let mut read = (None, Some(String::new()));
    let tx = only(capture(|| {
        in_transaction("GET /users/{id}", || {
            rt.block_on(async {
                read.0 = redis.get(&hit).await.expect("GET");
                read.1 = redis.get(&miss).await.expect("GET");
            });
        });
    }));
    assert_eq!(read, (Some(value.to_owned()), None));

    assert_eq!(ops(&tx), ["cache.get", "cache.get", "db.redis", "db.redis"]);
    let (cache, db) = cache_pair(&tx, "cache.get", &[&hit], &format!("GET {hit}"));
    assert_data(
        cache,
        &setup.cache_data(
            &[&hit],
            &[
                ("cache.hit", Value::from(true)),
                ("cache.item_size", Value::from(stored)),
            ],
        ),
    );
    assert_data(db, &setup.redis_data(&format!("GET {hit}"), Some(&hit)));
    let (cache, db) = cache_pair(&tx, "cache.get", &[&miss], &format!("GET {miss}"));
    assert_data(
        cache,
        &setup.cache_data(&[&miss], &[("cache.hit", Value::from(false))]),
    );
    assert_data(db, &setup.redis_data(&format!("GET {miss}"), Some(&miss)));
    for span in &tx.spans {
        assert_eq!(span.status, Some(SpanStatus::Ok), "{:?}", span.description);
    }
}

#[test]
fn mget_is_a_hit_when_one_key_is_found() {
    let rt = runtime();
    let mut setup = Setup::new(&rt);
    let (a, b, c) = (setup.key("a"), setup.key("b"), setup.key("c"));
    rt.block_on(setup.plain.set_ex::<_, _, ()>(&a, "1234567", 60))
        .expect("SET");

    let mut redis = setup.traced();
    let mut read = Vec::new();
    let tx = only(capture(|| {
        in_transaction("GET /batch", || {
            rt.block_on(async {
                let found: Vec<Option<String>> = redis.mget(&[&a, &b]).await.expect("MGET");
                read.push(found);
                let found: Vec<Option<String>> = redis.mget(&[&b, &c]).await.expect("MGET");
                read.push(found);
            });
        });
    }));
    assert_eq!(
        read,
        [vec![Some("1234567".to_owned()), None], vec![None, None]]
    );

    let first = format!("MGET {a} [Filtered]");
    let (cache, db) = cache_pair(&tx, "cache.get", &[&a, &b], &first);
    assert_data(
        cache,
        &setup.cache_data(
            &[&a, &b],
            &[
                ("cache.hit", Value::from(true)),
                ("cache.item_size", Value::from(7)),
            ],
        ),
    );
    // Two keys: no `db.redis.key`.
    assert_data(db, &setup.redis_data(&first, None));
    let second = format!("MGET {b} [Filtered]");
    let (cache, db) = cache_pair(&tx, "cache.get", &[&b, &c], &second);
    assert_data(
        cache,
        &setup.cache_data(&[&b, &c], &[("cache.hit", Value::from(false))]),
    );
    assert_data(db, &setup.redis_data(&second, None));
}

// ---------------------------------------------------------------------------------------------
// Writes and removals

#[test]
fn writes_are_puts_with_their_ttl_and_size() {
    let rt = runtime();
    let setup = Setup::new(&rt);
    let keys: Vec<String> = ["ex", "px", "setex", "psetex", "plain", "m1", "m2"]
        .iter()
        .map(|k| setup.key(k))
        .collect();
    let [ex, px, setex, psetex, plain, m1, m2] = &keys[..] else {
        unreachable!()
    };
    let mut redis = setup.traced();
    let tx = only(capture(|| {
        in_transaction("POST /users", || {
            rt.block_on(async {
                let set = |key: &str, options: &[&str]| {
                    let mut cmd = redis::cmd("SET");
                    cmd.arg(key).arg("abc");
                    for option in options {
                        cmd.arg(*option);
                    }
                    cmd
                };
                let _: () = set(ex, &["EX", "60"])
                    .query_async(&mut redis)
                    .await
                    .expect("SET EX");
                let _: () = set(px, &["px", "2500"])
                    .query_async(&mut redis)
                    .await
                    .expect("SET PX");
                let _: () = redis.set_ex(setex, "abcd", 60).await.expect("SETEX");
                let _: () = redis.pset_ex(psetex, "ab", 1500).await.expect("PSETEX");
                let _: () = redis.set(plain, "").await.expect("SET");
                let _: () = redis.mset(&[(m1, "12"), (m2, "345")]).await.expect("MSET");
            });
        });
    }));
    // What Redis holds: the TTLs the spans record.
    let pttl = |key: &str| -> i64 {
        rt.block_on(async {
            let mut plain = setup.plain.clone();
            let pttl: i64 = plain.pttl(key).await.expect("PTTL");
            let _: bool = plain.expire(key, 60).await.expect("EXPIRE");
            pttl
        })
    };
    assert!((59_000..=60_000).contains(&pttl(ex)));
    assert!((1..=2500).contains(&pttl(px)));
    assert!((59_000..=60_000).contains(&pttl(setex)));
    assert!((1..=1500).contains(&pttl(psetex)));
    assert_eq!(pttl(plain), -1);
    assert_eq!(pttl(m1), -1);
    let _ = pttl(m2);

    assert_eq!(ops(&tx).iter().filter(|o| **o == "cache.put").count(), 6);
    let cases: [(&str, String, u64, Option<u64>); 5] = [
        (
            ex,
            format!("SET {ex} [Filtered] [Filtered] [Filtered]"),
            3,
            Some(60),
        ),
        (
            px,
            format!("SET {px} [Filtered] [Filtered] [Filtered]"),
            3,
            Some(2),
        ),
        (
            setex,
            format!("SETEX {setex} [Filtered] [Filtered]"),
            4,
            Some(60),
        ),
        (
            psetex,
            format!("PSETEX {psetex} [Filtered] [Filtered]"),
            2,
            Some(1),
        ),
        (plain, format!("SET {plain} [Filtered]"), 0, None),
    ];
    for (key, command, size, ttl) in cases {
        let (cache, db) = cache_pair(&tx, "cache.put", &[key], &command);
        let mut extra = vec![("cache.item_size", Value::from(size))];
        if let Some(ttl) = ttl {
            extra.push(("cache.ttl", Value::from(ttl)));
        }
        assert_data(cache, &setup.cache_data(&[key], &extra));
        assert_data(db, &setup.redis_data(&command, Some(key)));
        assert_eq!(cache.status, Some(SpanStatus::Ok));
        assert_eq!(db.status, Some(SpanStatus::Ok));
    }
    let command = format!("MSET {m1} [Filtered] [Filtered] [Filtered]");
    let (cache, db) = cache_pair(&tx, "cache.put", &[m1, m2], &command);
    assert_data(
        cache,
        &setup.cache_data(&[m1, m2], &[("cache.item_size", Value::from(5))]),
    );
    assert_data(db, &setup.redis_data(&command, None));
}

#[test]
fn del_and_unlink_are_removes() {
    let rt = runtime();
    let mut setup = Setup::new(&rt);
    let (a, b, c) = (setup.key("a"), setup.key("b"), setup.key("c"));
    for key in [&a, &b, &c] {
        rt.block_on(setup.plain.set_ex::<_, _, ()>(key, "x", 60))
            .expect("SET");
    }
    let mut redis = setup.traced();
    let mut removed = (0, 0);
    let tx = only(capture(|| {
        in_transaction("DELETE /users", || {
            rt.block_on(async {
                removed.0 = redis.del(&[&a, &b]).await.expect("DEL");
                removed.1 = redis.unlink(&c).await.expect("UNLINK");
            });
        });
    }));
    assert_eq!(removed, (2, 1));
    let exists: usize = rt
        .block_on(setup.plain.exists(&[&a, &b, &c]))
        .expect("EXISTS");
    assert_eq!(exists, 0);

    let del = format!("DEL {a} [Filtered]");
    let (cache, db) = cache_pair(&tx, "cache.remove", &[&a, &b], &del);
    assert_data(cache, &setup.cache_data(&[&a, &b], &[]));
    assert_data(db, &setup.redis_data(&del, None));
    let unlink = format!("UNLINK {c}");
    let (cache, db) = cache_pair(&tx, "cache.remove", &[&c], &unlink);
    assert_data(cache, &setup.cache_data(&[&c], &[]));
    assert_data(db, &setup.redis_data(&unlink, Some(&c)));
    for span in &tx.spans {
        assert_eq!(span.status, Some(SpanStatus::Ok));
    }
}

// ---------------------------------------------------------------------------------------------
// db.redis spans

#[test]
fn keys_outside_the_prefixes_are_db_redis_spans_only() {
    let rt = runtime();
    let setup = Setup::new(&rt);
    let other = format!("other-{}:user:1", unique());
    let (inside, outside) = (setup.key("user:1"), format!("other-{}:x", unique()));
    let mut redis = setup.traced();
    // Without prefixes, no key is a cache key.
    let mut bare = Traced::new(setup.plain.clone()).server(setup.host.as_str(), setup.port);
    let tx = only(capture(|| {
        in_transaction("GET /other", || {
            rt.block_on(async {
                let _: Option<String> = redis.get(&other).await.expect("GET");
                let _: Option<String> = bare.get(&inside).await.expect("GET");
                let _: Vec<Option<String>> = redis.mget(&[&outside, &inside]).await.expect("MGET");
            });
        });
    }));
    assert_eq!(
        ops(&tx),
        ["cache.get", "db.redis", "db.redis", "db.redis"],
        "{:#?}",
        tx.spans
    );
    for key in [&other, &inside] {
        let command = format!("GET {key}");
        let span = the_span(&tx, "db.redis", &command);
        assert_eq!(span.parent_span_id, Some(root_id(&tx)));
        assert_data(span, &setup.redis_data(&command, Some(key)));
    }
    // One key of the prefixes is enough; every key is listed.
    let command = format!("MGET {outside} [Filtered]");
    let (cache, _) = cache_pair(&tx, "cache.get", &[&outside, &inside], &command);
    assert_data(
        cache,
        &setup.cache_data(&[&outside, &inside], &[("cache.hit", Value::from(false))]),
    );
}

#[test]
fn other_commands_are_db_redis_spans_without_values() {
    let rt = runtime();
    let setup = Setup::new(&rt);
    let (counter, hash) = (setup.key("visits"), setup.key("profile"));
    let secret = format!("secret-{}", unique());
    let mut redis = setup.traced();
    let mut replies = (0i64, 0usize);
    let tx = only(capture(|| {
        in_transaction("POST /visit", || {
            rt.block_on(async {
                // Any case: the name is upper-cased.
                replies.0 = redis::cmd("incr")
                    .arg(&counter)
                    .query_async(&mut redis)
                    .await
                    .expect("INCR");
                replies.1 = redis.hset(&hash, "email", &secret).await.expect("HSET");
                let _: bool = redis.expire(&counter, 60).await.expect("EXPIRE");
                let _: bool = redis.expire(&hash, 60).await.expect("EXPIRE");
            });
        });
    }));
    assert_eq!(replies, (1, 1));
    assert_eq!(ops(&tx), ["db.redis"; 4]);
    let cases = [
        (format!("INCR {counter}"), &counter),
        (format!("HSET {hash} [Filtered] [Filtered]"), &hash),
        (format!("EXPIRE {counter} [Filtered]"), &counter),
        (format!("EXPIRE {hash} [Filtered]"), &hash),
    ];
    for (command, key) in &cases {
        let span = the_span(&tx, "db.redis", command);
        assert_eq!(span.parent_span_id, Some(root_id(&tx)));
        assert_eq!(span.status, Some(SpanStatus::Ok));
        assert_data(span, &setup.redis_data(command, Some(key)));
    }
    let sent = serde_json::to_string(&tx).expect("JSON");
    assert!(!sent.contains(&secret), "a value was sent: {sent}");
}

#[test]
fn a_pipeline_is_one_span() {
    let rt = runtime();
    let setup = Setup::new(&rt);
    let (key, counter) = (setup.key("user:1"), setup.key("count"));
    let missing: Vec<String> = (0..8).map(|i| setup.key(&format!("n:{i}"))).collect();
    let mut redis = setup.traced();
    let mut replies = (Vec::new(), (String::new(), 0i64), (String::new(),));
    let tx = only(capture(|| {
        in_transaction("GET /dashboard", || {
            rt.block_on(async {
                let mut pipe = redis::pipe();
                pipe.cmd("SET")
                    .arg(&key)
                    .arg("v")
                    .arg("EX")
                    .arg(60)
                    .ignore()
                    .cmd("GET")
                    .arg(&key)
                    .cmd("INCR")
                    .arg(&counter)
                    .ignore()
                    .cmd("EXPIRE")
                    .arg(&counter)
                    .arg(60)
                    .ignore();
                for key in &missing {
                    pipe.cmd("GET").arg(key);
                }
                replies.0 = pipe
                    .query_async::<Vec<Option<String>>>(&mut redis)
                    .await
                    .expect("pipeline");
                replies.1 = redis::pipe()
                    .atomic()
                    .cmd("GET")
                    .arg(&key)
                    .cmd("INCR")
                    .arg(&counter)
                    .query_async(&mut redis)
                    .await
                    .expect("MULTI");
                replies.2 = redis::pipe()
                    .cmd("GET")
                    .arg(&key)
                    .query_async(&mut redis)
                    .await
                    .expect("pipeline of one");
            });
        });
    }));
    let mut expected = vec![Some("v".to_owned())];
    expected.extend(std::iter::repeat_n(None, 8));
    assert_eq!(replies.0, expected);
    assert_eq!(replies.1, ("v".to_owned(), 2));
    assert_eq!(replies.2, ("v".to_owned(),));

    // One span each, no cache span for the commands inside.
    assert_eq!(ops(&tx), ["db.redis"; 3], "{:#?}", tx.spans);
    let common = |extra: Vec<(&'static str, Value)>| {
        let mut data = vec![
            ("db.system", s("redis")),
            ("db.system.name", s("redis")),
            ("db.name", s(&setup.db)),
            ("db.namespace", s(&setup.db)),
            ("server.address", s(&setup.host)),
            ("server.port", Value::from(setup.port)),
        ];
        data.extend(extra);
        data
    };
    let commands = |count: usize, first_ten: Vec<String>| {
        let first_ten: Vec<&str> = first_ten.iter().map(String::as_str).collect();
        let mut object = serde_json::Map::new();
        object.insert("count".to_owned(), Value::from(count));
        object.insert("first_ten".to_owned(), strings(&first_ten));
        ("redis.commands", Value::Object(object))
    };
    let spans: Vec<&Span> = tx.spans.iter().collect();
    for span in &spans {
        assert_eq!(span.description.as_deref(), Some("redis.pipeline.execute"));
        assert_eq!(span.parent_span_id, Some(root_id(&tx)));
        assert_eq!(span.status, Some(SpanStatus::Ok));
    }
    let mut first_ten = vec![
        format!("SET {key} [Filtered] [Filtered] [Filtered]"),
        format!("GET {key}"),
        format!("INCR {counter}"),
        format!("EXPIRE {counter} [Filtered]"),
    ];
    first_ten.extend(missing[..6].iter().map(|k| format!("GET {k}")));
    assert_data(
        spans[0],
        &common(vec![
            commands(12, first_ten),
            ("db.operation.batch.size", Value::from(12)),
            ("redis.transaction", Value::from(false)),
        ]),
    );
    assert_data(
        spans[1],
        &common(vec![
            commands(2, vec![format!("GET {key}"), format!("INCR {counter}")]),
            ("db.operation.batch.size", Value::from(2)),
            ("redis.transaction", Value::from(true)),
        ]),
    );
    // A batch of one is not a batch (the registry: never 1).
    assert_data(
        spans[2],
        &common(vec![
            commands(1, vec![format!("GET {key}")]),
            ("redis.transaction", Value::from(false)),
        ]),
    );
}

// ---------------------------------------------------------------------------------------------
// Refused and unexpected replies

#[test]
fn a_wrongtype_reply_is_an_error_the_caller_gets_unchanged() {
    let rt = runtime();
    let mut setup = Setup::new(&rt);
    let list = setup.key("list");
    let key = setup.key("user:1");
    rt.block_on(async {
        let _: () = setup.plain.rpush(&list, "x").await.expect("RPUSH");
        let _: () = setup.plain.expire(&list, 60).await.expect("EXPIRE");
    });
    let direct: redis::RedisResult<Option<String>> = rt.block_on(setup.plain.get(&list));
    let direct = direct.expect_err("WRONGTYPE");
    assert_eq!(direct.code(), Some("WRONGTYPE"));

    let mut redis = setup.traced();
    let mut got = None;
    let mut piped = None;
    let tx = only(capture(|| {
        in_transaction("GET /list", || {
            rt.block_on(async {
                got = Some(redis.get::<_, Option<String>>(&list).await);
                piped = Some(
                    redis::pipe()
                        .cmd("GET")
                        .arg(&key)
                        .cmd("GET")
                        .arg(&list)
                        .query_async::<Vec<Option<String>>>(&mut redis)
                        .await,
                );
            });
        });
    }));
    let got = got
        .expect("ran")
        .expect_err("WRONGTYPE through the wrapper");
    assert_eq!(
        (got.kind(), got.code(), got.to_string()),
        (direct.kind(), direct.code(), direct.to_string())
    );
    let piped = piped.expect("ran").expect_err("WRONGTYPE in a pipeline");
    let refused = piped.into_server_errors().expect("the pipeline's errors");
    assert_eq!(refused.len(), 1);
    assert_eq!((refused[0].0, refused[0].1.code()), (1, "WRONGTYPE"));

    let command = format!("GET {list}");
    let (cache, db) = cache_pair(&tx, "cache.get", &[&list], &command);
    // Neither a hit nor a miss.
    assert_data(cache, &setup.cache_data(&[&list], &[]));
    assert_eq!(cache.status, Some(SpanStatus::InternalError));
    let mut data = setup.redis_data(&command, Some(&list));
    data.push(("db.response.status_code", s("WRONGTYPE")));
    assert_data(db, &data);
    assert_eq!(db.status, Some(SpanStatus::InternalError));

    let pipeline = the_span(&tx, "db.redis", "redis.pipeline.execute");
    assert_eq!(pipeline.status, Some(SpanStatus::InternalError));
    assert_eq!(
        pipeline.data.get("db.response.status_code"),
        Some(&s("WRONGTYPE"))
    );
}

/// A connection answering every command with `reply` (and each pipeline with `replies`), and
/// counting the commands it was sent.
#[derive(Clone)]
struct Fake {
    reply: redis::Value,
    replies: Vec<redis::Value>,
    sent: Arc<std::sync::atomic::AtomicUsize>,
}

impl Fake {
    fn new(reply: redis::Value) -> Self {
        Fake {
            reply,
            replies: Vec::new(),
            sent: Arc::default(),
        }
    }
}

impl ConnectionLike for Fake {
    fn req_packed_command<'a>(&'a mut self, _: &'a Cmd) -> RedisFuture<'a, redis::Value> {
        self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let reply = self.reply.clone();
        Box::pin(async move { Ok(reply) })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        _: &'a Pipeline,
        _: usize,
        _: usize,
    ) -> RedisFuture<'a, Vec<redis::Value>> {
        self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let replies = self.replies.clone();
        Box::pin(async move { Ok(replies) })
    }

    fn get_db(&self) -> i64 {
        3
    }
}

/// The data of a `db.redis` span of `description` on [`Fake`] (database 3, no server).
fn fake_data(description: &str, key: Option<&str>) -> Vec<(&'static str, Value)> {
    redis_data("3", None, description, key)
}

#[test]
fn a_read_answered_with_another_type_is_an_error_and_the_reply_is_unchanged() {
    let mut int = Traced::new(Fake::new(redis::Value::Int(7))).cache_prefixes(["c:"]);
    let mut mixed = Traced::new(Fake::new(redis::Value::Array(vec![
        redis::Value::BulkString(b"ab".to_vec()),
        redis::Value::Okay,
    ])))
    .cache_prefixes(["c:"]);
    let mut replies = Vec::new();
    let tx = only(capture(|| {
        in_transaction("GET /fake", || {
            futures::executor::block_on(async {
                replies.push(
                    redis::cmd("GET")
                        .arg("c:1")
                        .query_async::<redis::Value>(&mut int)
                        .await,
                );
                replies.push(
                    redis::cmd("MGET")
                        .arg("c:1")
                        .arg("c:2")
                        .query_async::<redis::Value>(&mut mixed)
                        .await,
                );
            });
        });
    }));
    assert_eq!(
        replies,
        [
            Ok(redis::Value::Int(7)),
            Ok(redis::Value::Array(vec![
                redis::Value::BulkString(b"ab".to_vec()),
                redis::Value::Okay
            ]))
        ]
    );
    let system = [("db.system", s("redis")), ("db.system.name", s("redis"))];
    let (cache, db) = cache_pair(&tx, "cache.get", &["c:1"], "GET c:1");
    // No server configured: no `network.peer.*`, no `server.*`.
    assert_data(
        cache,
        &[&[("cache.key", strings(&["c:1"]))], &system[..]].concat(),
    );
    assert_eq!(cache.status, Some(SpanStatus::InternalError));
    // Redis answered without an error: the command itself went through.
    assert_data(db, &fake_data("GET c:1", Some("c:1")));
    assert_eq!(db.status, Some(SpanStatus::Ok));
    let (cache, db) = cache_pair(&tx, "cache.get", &["c:1", "c:2"], "MGET c:1 [Filtered]");
    assert_data(
        cache,
        &[&[("cache.key", strings(&["c:1", "c:2"]))], &system[..]].concat(),
    );
    assert_eq!(cache.status, Some(SpanStatus::InternalError));
    assert_data(db, &fake_data("MGET c:1 [Filtered]", None));
}

#[test]
fn a_pipeline_with_a_refused_command_is_an_error() {
    let refused = redis::parse_redis_value(b"-NOSCRIPT No matching script\r\n").expect("an error");
    let mut fake = Fake::new(redis::Value::Nil);
    fake.replies = vec![redis::Value::Okay, refused.clone()];
    let mut redis = Traced::new(fake);
    let mut got = None;
    let tx = only(capture(|| {
        in_transaction("POST /script", || {
            futures::executor::block_on(async {
                let mut pipe = redis::pipe();
                pipe.cmd("SET")
                    .arg("k")
                    .arg("v")
                    .cmd("EVALSHA")
                    .arg("abc")
                    .arg(0);
                got = Some(redis.req_packed_commands(&pipe, 0, 2).await);
            });
        });
    }));
    assert_eq!(got, Some(Ok(vec![redis::Value::Okay, refused])));
    let span = the_span(&tx, "db.redis", "redis.pipeline.execute");
    assert_eq!(span.status, Some(SpanStatus::InternalError));
    let mut commands = serde_json::Map::new();
    commands.insert("count".to_owned(), Value::from(2));
    commands.insert(
        "first_ten".to_owned(),
        strings(&["SET k [Filtered]", "EVALSHA abc [Filtered]"]),
    );
    assert_data(
        span,
        &[
            ("db.system", s("redis")),
            ("db.system.name", s("redis")),
            ("db.name", s("3")),
            ("db.namespace", s("3")),
            ("redis.commands", Value::Object(commands)),
            ("db.operation.batch.size", Value::from(2)),
            ("redis.transaction", Value::from(false)),
            ("db.response.status_code", s("NOSCRIPT")),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// Without Sentry

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The same commands, whoever runs them: reads, writes, a refused read and a pipeline.
async fn scenario(redis: &mut Traced<MultiplexedConnection>, setup: &Setup) -> Vec<String> {
    let (key, list) = (setup.key("user:1"), setup.key("list"));
    let mut seen = Vec::new();
    let read: redis::RedisResult<Option<String>> = redis.get(&key).await;
    seen.push(format!("{read:?}"));
    let wrote: redis::RedisResult<()> = redis.set_ex(&key, "Ada", 60).await;
    seen.push(format!("{wrote:?}"));
    let read: redis::RedisResult<Option<String>> = redis.get(&key).await;
    seen.push(format!("{read:?}"));
    let pushed: redis::RedisResult<()> = redis.rpush(&list, "x").await;
    seen.push(format!("{pushed:?}"));
    let expiring: redis::RedisResult<bool> = redis.expire(&list, 60).await;
    seen.push(format!("{expiring:?}"));
    let refused: redis::RedisResult<Option<String>> = redis.get(&list).await;
    seen.push(format!("{refused:?}"));
    let piped: redis::RedisResult<(String, i64)> =
        redis::pipe().get(&key).llen(&list).query_async(redis).await;
    seen.push(format!("{piped:?}"));
    let removed: redis::RedisResult<usize> = redis.del(&[&key, &list]).await;
    seen.push(format!("{removed:?}"));
    seen
}

#[test]
fn nothing_is_recorded_without_sentry_and_the_replies_are_the_same() {
    let rt = runtime();
    let recorded_setup = Setup::new(&rt);
    let mut redis = recorded_setup.traced();
    let mut recorded = Vec::new();
    let txs = capture(|| {
        in_transaction("recorded", || {
            recorded = rt.block_on(scenario(&mut redis, &recorded_setup));
        });
    });
    assert_eq!(only(txs).spans.len(), 13);

    // No client at all.
    assert!(Hub::current().client().is_none());
    let bare_setup = Setup::new(&rt);
    let mut redis = bare_setup.traced();
    let bare = rt.block_on(scenario(&mut redis, &bare_setup));
    // A client but no transaction: nothing sent.
    let quiet_setup = Setup::new(&rt);
    let mut redis = quiet_setup.traced();
    let mut quiet = Vec::new();
    let txs = capture(|| quiet = rt.block_on(scenario(&mut redis, &quiet_setup)));
    assert!(txs.is_empty(), "{txs:#?}");

    // The same replies (keys differ by their prefix only; none is in the replies).
    assert_eq!(bare, recorded);
    assert_eq!(quiet, recorded);
    assert!(recorded[5].contains("WRONGTYPE"), "{recorded:?}");
}

#[test]
fn the_wrapper_allocates_nothing_of_its_own_when_nothing_is_recorded() {
    let mut cmd = redis::cmd("GET");
    cmd.arg("c:1");
    let mut pipe = redis::pipe();
    pipe.cmd("GET").arg("c:1").cmd("GET").arg("c:2");
    let fake = Fake::new(redis::Value::Nil);
    let mut bare = fake.clone();
    let mut traced = Traced::new(fake.clone()).cache_prefixes(["c:"]);

    let measure = |bare: &mut Fake, traced: &mut Traced<Fake>| {
        let ((), inner) = allocations_by(|| drop(bare.req_packed_command(&cmd)));
        let ((), wrapped) = allocations_by(|| drop(traced.req_packed_command(&cmd)));
        let ((), inner_pipe) = allocations_by(|| drop(bare.req_packed_commands(&pipe, 0, 2)));
        let ((), wrapped_pipe) = allocations_by(|| drop(traced.req_packed_commands(&pipe, 0, 2)));
        (inner, wrapped, inner_pipe, wrapped_pipe)
    };
    // Without a client (once the thread's hub exists: sentry makes it on first use).
    drop(Hub::current());
    let (inner, wrapped, inner_pipe, wrapped_pipe) = measure(&mut bare, &mut traced);
    assert!(inner >= 1, "the fake's future is boxed");
    assert_eq!((wrapped, wrapped_pipe), (inner, inner_pipe));
    // With a client, outside any transaction: no more than the crate's own spans cost to
    // find that nothing is recorded (sentry's `configure_scope` copies the scope).
    let mut counts = None;
    let txs = capture(|| {
        let ((), gate) = allocations_by(|| {
            SpanGuard::start_detached("db.redis", "GET c:1", |_| {}).finish();
        });
        counts = Some((measure(&mut bare, &mut traced), gate));
    });
    assert!(txs.is_empty());
    let ((inner, wrapped, inner_pipe, wrapped_pipe), gate) = counts.expect("measured");
    assert_eq!(
        (wrapped, wrapped_pipe),
        (inner + gate, inner_pipe + gate),
        "the gate costs {gate}"
    );
    // Inside one, the spans cost allocations: the measure can tell.
    let mut counts = None;
    let txs = capture(|| in_transaction("t", || counts = Some(measure(&mut bare, &mut traced))));
    let (inner, wrapped, _, _) = counts.expect("measured");
    assert!(wrapped > inner, "{wrapped} > {inner}");
    // The futures were dropped unpolled: cancelled spans.
    let tx = only(txs);
    assert_eq!(tx.spans.len(), 3);
    for span in &tx.spans {
        assert_eq!(span.status, Some(SpanStatus::Cancelled), "{span:#?}");
    }
    // The child finished first (a transaction lists spans as they finish), the parent after.
    let (cache, db) = cache_pair(&tx, "cache.get", &["c:1"], "GET c:1");
    let at = |span: &Span| tx.spans.iter().position(|s| s.span_id == span.span_id);
    assert!(at(db) < at(cache), "{:#?}", tx.spans);
    assert!(db.timestamp <= cache.timestamp);
    assert_eq!(fake.sent.load(std::sync::atomic::Ordering::Relaxed), 12);
}

// ---------------------------------------------------------------------------------------------
// Concurrency

#[test]
fn concurrent_requests_on_one_connection_keep_their_own_spans() {
    const REQUESTS: usize = 200;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let setup = Setup::new(&rt);
    for i in (0..REQUESTS).step_by(2) {
        let mut plain = setup.plain.clone();
        rt.block_on(plain.set_ex::<_, _, ()>(setup.key(&format!("user:{i}")), i, 60))
            .expect("SET");
    }
    // One multiplexed connection, shared by every request.
    let redis = setup.traced();
    let txs = capture(|| {
        let hub = Hub::current();
        rt.block_on(async {
            let requests: Vec<_> = (0..REQUESTS)
                .map(|i| {
                    let mut redis = redis.clone();
                    let (user, visits) = (
                        setup.key(&format!("user:{i}")),
                        setup.key(&format!("visits:{i}")),
                    );
                    let request = async move {
                        let name = format!("GET /users/{i}");
                        let tx = sentry::start_transaction(TransactionContext::new(
                            &name,
                            "http.server",
                        ));
                        sentry::configure_scope(|s| s.set_span(Some(tx.clone().into())));
                        tokio::task::yield_now().await;
                        let user: Option<String> = redis.get(&user).await.expect("GET");
                        tokio::task::yield_now().await;
                        let _: i64 = redis::cmd("INCR")
                            .arg(&visits)
                            .query_async(&mut redis)
                            .await
                            .expect("INCR");
                        let _: bool = redis.expire(&visits, 60).await.expect("EXPIRE");
                        sentry::configure_scope(|s| s.set_span(None));
                        tx.finish();
                        (i, user)
                    };
                    tokio::spawn(request.bind_hub(Arc::new(Hub::new_from_top(&hub))))
                })
                .collect();
            for request in requests {
                let (i, user) = request.await.expect("a request");
                assert_eq!(
                    user,
                    (i.is_multiple_of(2)).then(|| i.to_string()),
                    "request {i}"
                );
            }
        });
    });

    assert_eq!(txs.len(), REQUESTS);
    let mut seen = [false; REQUESTS];
    for tx in &txs {
        let name = tx.name.as_deref().expect("a name");
        let i: usize = name
            .strip_prefix("GET /users/")
            .and_then(|i| i.parse().ok())
            .unwrap_or_else(|| panic!("{name}"));
        assert!(!seen[i], "{name} twice");
        seen[i] = true;
        let (user, visits) = (
            setup.key(&format!("user:{i}")),
            setup.key(&format!("visits:{i}")),
        );
        assert_eq!(tx.spans.len(), 4, "{name}: {:#?}", tx.spans);
        let (cache, _) = cache_pair(tx, "cache.get", &[&user], &format!("GET {user}"));
        assert_eq!(
            cache.data.get("cache.hit"),
            Some(&Value::from(i.is_multiple_of(2))),
            "{name}"
        );
        for command in [
            format!("INCR {visits}"),
            format!("EXPIRE {visits} [Filtered]"),
        ] {
            let span = the_span(tx, "db.redis", &command);
            assert_eq!(span.parent_span_id, Some(root_id(tx)), "{name} {command}");
            assert_eq!(span.trace_id, trace(tx).trace_id);
        }
    }
    assert!(seen.iter().all(|s| *s));
}
