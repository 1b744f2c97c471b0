//! Cache spans: `#[instrument_cache_operation]`, the tracker, and a real in-process cache
//! (moka) under them.

mod common;

use std::cell::Cell;
use std::time::Duration;

use common::{capture, capture_one, root_id};
use futures::executor::block_on;
use insights_runtime::cache::{CacheKey, CacheTracker};
use insights_runtime::instrument_cache_operation;
use moka::sync::Cache;
use sentry::protocol::{Span, SpanStatus, Value};

thread_local! {
    // One cache a test (each test runs on its own thread).
    static CACHE: Cache<String, String> = Cache::new(100);
}

fn strings(keys: &[&str]) -> Value {
    Value::Array(keys.iter().map(|k| Value::from(*k)).collect())
}

fn only<'a>(tx: &'a sentry::protocol::Transaction<'_>, op: &str) -> Vec<&'a Span> {
    tx.spans
        .iter()
        .filter(|s| s.op.as_deref() == Some(op))
        .collect()
}

#[instrument_cache_operation(get, key_param = "key")]
fn get(key: &str) -> Option<String> {
    CACHE.with(|c| c.get(key))
}

#[instrument_cache_operation("put", key_param = "key", ttl = 3600, value_param = "value")]
fn put(key: &str, value: String) {
    CACHE.with(|c| c.insert(key.to_owned(), value));
}

#[instrument_cache_operation(put, key_param = "key", ttl_param = "ttl")]
fn put_for(key: String, ttl: Duration) -> Result<(), String> {
    let _ = ttl;
    CACHE.with(|c| c.insert(key, "v".to_owned()));
    Ok(())
}

#[instrument_cache_operation(remove, key_param = "keys")]
fn remove(keys: &[&str]) {
    CACHE.with(|c| keys.iter().for_each(|k| c.invalidate(*k)));
}

#[instrument_cache_operation(flush)]
fn flush() {
    CACHE.with(Cache::invalidate_all);
}

#[instrument_cache_operation(get, key_param = "id")]
fn get_bytes(id: u64) -> Result<Option<Vec<u8>>, String> {
    match id {
        0 => Err("connection reset".to_owned()),
        1 => Ok(Some(vec![1, 2, 3])),
        _ => Ok(None),
    }
}

#[instrument_cache_operation(get, key_param = "key")]
fn exists(key: &String) -> bool {
    CACHE.with(|c| c.contains_key(key))
}

#[derive(Debug, PartialEq)]
struct Profile {
    name: String,
}

#[instrument_cache_operation(get, key_param = "key")]
fn get_profile(key: &str) -> Option<Profile> {
    get(key).map(|name| Profile { name })
}

#[instrument_cache_operation(get, key_param = "keys")]
async fn get_many(keys: Vec<String>) -> Option<String> {
    tokio::task::yield_now().await;
    keys.first().and_then(|k| CACHE.with(|c| c.get(k)))
}

/// A key that counts how often it is read.
struct CountedKey<'a>(&'a str, &'a Cell<u32>);

impl CacheKey for CountedKey<'_> {
    fn write_key(&self, out: &mut String) {
        self.1.set(self.1.get() + 1);
        out.push_str(self.0);
    }
}

#[instrument_cache_operation(get, key_param = "key")]
fn get_counted(key: &[CountedKey<'_>]) -> Option<String> {
    let _ = key;
    None
}

#[test]
fn get_records_hit_miss_and_size_around_a_real_cache() {
    let tx = capture_one(|| {
        assert_eq!(get("user:1"), None);
        put("user:1", "Ada Lovelace".to_owned());
        assert_eq!(get("user:1"), Some("Ada Lovelace".to_owned()));
    });
    let gets = only(&tx, "cache.get");
    assert_eq!(gets.len(), 2);
    let (miss, hit) = (gets[0], gets[1]);
    for s in [miss, hit] {
        assert_eq!(s.description.as_deref(), Some("user:1"));
        assert_eq!(s.data.get("cache.key"), Some(&strings(&["user:1"])));
        assert_eq!(s.parent_span_id, Some(root_id(&tx)));
        assert_eq!(s.status, Some(SpanStatus::Ok));
    }
    assert_eq!(miss.data.get("cache.hit"), Some(&Value::Bool(false)));
    assert!(!miss.data.contains_key("cache.item_size"));
    assert_eq!(hit.data.get("cache.hit"), Some(&Value::Bool(true)));
    assert_eq!(hit.data.get("cache.item_size"), Some(&Value::from(12)));
    assert_eq!(hit.data.len(), 3);

    let put = only(&tx, "cache.put")[0];
    assert_eq!(put.description.as_deref(), Some("user:1"));
    assert_eq!(put.data.get("cache.ttl"), Some(&Value::from(3600)));
    assert_eq!(put.data.get("cache.item_size"), Some(&Value::from(12)));
    assert!(!put.data.contains_key("cache.hit"), "hit is for reads only");
}

#[test]
fn put_ttl_from_a_duration_remove_many_and_flush() {
    let tx = capture_one(|| {
        assert_eq!(put_for("a".to_owned(), Duration::from_secs(90)), Ok(()));
        remove(&["a", "b"]);
        flush();
    });
    let put = only(&tx, "cache.put")[0];
    assert_eq!(put.data.get("cache.ttl"), Some(&Value::from(90)));
    assert!(!put.data.contains_key("cache.item_size"));
    let removed = only(&tx, "cache.remove")[0];
    assert_eq!(removed.description.as_deref(), Some("a, b"));
    assert_eq!(removed.data.get("cache.key"), Some(&strings(&["a", "b"])));
    let flushed = only(&tx, "cache.flush")[0];
    assert!(flushed.data.is_empty());
    assert_eq!(flushed.status, Some(SpanStatus::Ok));
}

#[test]
fn result_option_bool_and_sizeless_values() {
    let tx = capture_one(|| {
        assert!(get_bytes(0).is_err());
        assert_eq!(get_bytes(1), Ok(Some(vec![1, 2, 3])));
        assert_eq!(get_bytes(2), Ok(None));
        assert!(!exists(&"nope".to_owned()));
        CACHE.with(|c| c.insert("p".to_owned(), "Grace".to_owned()));
        assert!(get_profile("p").is_some());
    });
    let gets = only(&tx, "cache.get");
    let by_key = |k: &str| {
        gets.iter()
            .filter(|s| s.description.as_deref() == Some(k))
            .copied()
            .collect::<Vec<_>>()
    };
    let failed = by_key("0")[0];
    assert_eq!(failed.status, Some(SpanStatus::InternalError));
    assert!(!failed.data.contains_key("cache.hit"));
    assert_eq!(failed.data.get("cache.key"), Some(&strings(&["0"])));
    let hit = by_key("1")[0];
    assert_eq!(hit.data.get("cache.hit"), Some(&Value::Bool(true)));
    assert_eq!(hit.data.get("cache.item_size"), Some(&Value::from(3)));
    assert_eq!(
        by_key("2")[0].data.get("cache.hit"),
        Some(&Value::Bool(false))
    );
    assert_eq!(
        by_key("nope")[0].data.get("cache.hit"),
        Some(&Value::Bool(false))
    );
    // A hit whose value is neither text nor bytes has no size.
    let profile = by_key("p");
    let outer = profile
        .iter()
        .find(|s| s.parent_span_id == Some(root_id(&tx)))
        .expect("outer");
    assert_eq!(outer.data.get("cache.hit"), Some(&Value::Bool(true)));
    assert!(!outer.data.contains_key("cache.item_size"));
}

#[test]
fn async_multi_key_get() {
    let tx = capture_one(|| {
        CACHE.with(|c| c.insert("k1".to_owned(), "v".to_owned()));
        let found = block_on(get_many(vec!["k1".to_owned(), "k2".to_owned()]));
        assert_eq!(found, Some("v".to_owned()));
    });
    let s = only(&tx, "cache.get")[0];
    assert_eq!(s.description.as_deref(), Some("k1, k2"));
    assert_eq!(s.data.get("cache.key"), Some(&strings(&["k1", "k2"])));
    assert_eq!(s.data.get("cache.hit"), Some(&Value::Bool(true)));
    assert_eq!(s.data.get("cache.item_size"), Some(&Value::from(1)));
}

#[test]
fn the_key_is_read_only_when_a_span_is_recorded() {
    let reads = Cell::new(0);
    let key = [CountedKey("a", &reads)];
    // No current span: nothing recorded, the key never read.
    let txs = capture(|| assert_eq!(get_counted(&key), None));
    assert!(txs.is_empty());
    assert_eq!(reads.get(), 0);
    let tx = capture_one(|| assert_eq!(get_counted(&key), None));
    assert_eq!(reads.get(), 1);
    assert_eq!(tx.spans[0].description.as_deref(), Some("a"));
}

#[test]
fn the_tracker_records_the_server_and_each_operation() {
    let tracker = CacheTracker::new("moka").server("127.0.0.1", 6379);
    let cache: Cache<String, String> = Cache::new(10);
    let tx = capture_one(|| {
        let read = tracker.get("session:9");
        let value = cache.get("session:9");
        read.record(&value);

        let stored = "token-xyz".to_owned();
        let write = tracker
            .put("session:9")
            .ttl(Duration::from_secs(60))
            .item_size(stored.len())
            .start();
        cache.insert("session:9".to_owned(), stored);
        drop(write);

        let read = tracker.get("session:9");
        let value = cache.get("session:9");
        read.record(&value);

        drop(tracker.remove(&["session:9", "session:10"][..]));
        drop(tracker.flush());
    });
    let gets = only(&tx, "cache.get");
    assert_eq!(gets.len(), 2);
    assert_eq!(gets[0].data.get("cache.hit"), Some(&Value::Bool(false)));
    assert_eq!(gets[1].data.get("cache.hit"), Some(&Value::Bool(true)));
    assert_eq!(gets[1].data.get("cache.item_size"), Some(&Value::from(9)));
    for s in &tx.spans {
        assert_eq!(
            s.data.get("network.peer.address"),
            Some(&Value::from("127.0.0.1"))
        );
        assert_eq!(s.data.get("network.peer.port"), Some(&Value::from(6379)));
        assert_eq!(s.data.get("db.system"), Some(&Value::from("moka")));
        assert_eq!(s.data.get("db.system.name"), Some(&Value::from("moka")));
    }
    let put = only(&tx, "cache.put")[0];
    assert_eq!(put.data.get("cache.ttl"), Some(&Value::from(60)));
    assert_eq!(put.data.get("cache.item_size"), Some(&Value::from(9)));
    assert_eq!(
        only(&tx, "cache.remove")[0].description.as_deref(),
        Some("session:9, session:10")
    );
    assert_eq!(only(&tx, "cache.flush").len(), 1);
}

#[test]
fn async_reads_with_the_runtime_get() {
    let tx = capture_one(|| {
        let found = block_on(insights_runtime::cache::get("k", async {
            Ok::<_, String>(Some("abc".to_owned()))
        }));
        assert_eq!(found, Ok(Some("abc".to_owned())));
    });
    let s = &tx.spans[0];
    assert_eq!(s.op.as_deref(), Some("cache.get"));
    assert_eq!(s.data.get("cache.hit"), Some(&Value::Bool(true)));
    assert_eq!(s.data.get("cache.item_size"), Some(&Value::from(3)));
}

/// A client that keeps its tracker, as a Redis wrapper would.
struct Sessions {
    tracker: CacheTracker,
    cache: Cache<String, String>,
}

impl Sessions {
    #[instrument_cache_operation(get, key_param = "key", tracker = &self.tracker)]
    async fn get(&self, key: &str) -> Option<String> {
        self.cache.get(key)
    }

    #[instrument_cache_operation(put, key_param = "key", value_param = "value", tracker = &self.tracker)]
    fn put(&self, key: &str, value: String) {
        self.cache.insert(key.to_owned(), value);
    }
}

#[test]
fn the_tracker_argument_puts_the_system_and_server_on_attribute_spans() {
    let sessions = Sessions {
        tracker: CacheTracker::new("redis").server("10.0.0.5", 6380),
        cache: Cache::new(10),
    };
    let tx = capture_one(|| {
        assert_eq!(block_on(sessions.get("session:1")), None);
        sessions.put("session:1", "ada".to_owned());
        assert_eq!(block_on(sessions.get("session:1")).as_deref(), Some("ada"));
    });
    let ops: Vec<_> = tx.spans.iter().map(|s| s.op.as_deref()).collect();
    assert_eq!(
        ops,
        [Some("cache.get"), Some("cache.put"), Some("cache.get")]
    );
    for s in &tx.spans {
        assert_eq!(s.data.get("db.system"), Some(&Value::from("redis")));
        assert_eq!(s.data.get("db.system.name"), Some(&Value::from("redis")));
        assert_eq!(
            s.data.get("network.peer.address"),
            Some(&Value::from("10.0.0.5"))
        );
        assert_eq!(s.data.get("network.peer.port"), Some(&Value::from(6380)));
        assert_eq!(s.description.as_deref(), Some("session:1"));
    }
    assert_eq!(tx.spans[0].data.get("cache.hit"), Some(&Value::Bool(false)));
    assert_eq!(tx.spans[2].data.get("cache.hit"), Some(&Value::Bool(true)));
    assert_eq!(
        tx.spans[1].data.get("cache.item_size"),
        Some(&Value::from(3))
    );
}
