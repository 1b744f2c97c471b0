// `#[instrument_cache_operation]` on every function shape: sync and async fns, a `get` returning
// `impl Future` (the key is read before the future takes it), methods on `&self` and
// `&mut self`; every operation, written as a bare word, a string or with the `cache.` prefix;
// and `crate = ..` on each. Each is called with and without a recorded span.
#![deny(warnings)]

#[path = "../../common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::future::Future;

use futures::executor::block_on;
use insights_runtime::instrument_cache_operation;

#[instrument_cache_operation(get, key_param = "key")]
fn get(map: &HashMap<String, String>, key: &str) -> Option<String> {
    map.get(key).cloned()
}

#[instrument_cache_operation("put", key_param = "key")]
fn put(map: &mut HashMap<String, String>, key: &str, value: String) {
    map.insert(key.to_owned(), value);
}

#[instrument_cache_operation("cache.remove", key_param = "key")]
fn remove(map: &mut HashMap<String, String>, key: &str) -> Option<String> {
    map.remove(key)
}

#[instrument_cache_operation(flush)]
fn flush(map: &mut HashMap<String, String>) {
    map.clear();
}

#[instrument_cache_operation(get, key_param = "key")]
async fn get_async(key: String) -> Option<String> {
    std::future::ready(()).await;
    Some(key)
}

#[instrument_cache_operation(put, key_param = "key", ttl = 60)]
async fn put_async(key: &str, value: &str) -> Result<(), String> {
    let _ = (key, value);
    Ok(())
}

#[instrument_cache_operation(get, key_param = "key")]
fn get_future(key: String) -> impl Future<Output = Option<String>> {
    async move { Some(key) }
}

#[instrument_cache_operation(get, key_param = "key", crate = insights_runtime)]
fn get_with_crate(key: &str) -> Option<String> {
    Some(key.to_owned())
}

#[instrument_cache_operation(put, key_param = "key", ttl = 1, crate = insights_runtime)]
fn put_with_crate(key: &str) {
    let _ = key;
}

#[instrument_cache_operation(remove, crate = insights_runtime, key_param = "key")]
async fn remove_with_crate(key: &str) {
    let _ = key;
}

#[instrument_cache_operation(flush, crate = insights_runtime)]
fn flush_with_crate() {}

struct Store {
    map: HashMap<String, String>,
}

impl Store {
    #[instrument_cache_operation(get, key_param = "key")]
    fn get(&self, key: &str) -> Option<&String> {
        self.map.get(key)
    }

    #[instrument_cache_operation(put, key_param = "key", value_param = "value")]
    fn put(&mut self, key: String, value: String) -> Option<String> {
        self.map.insert(key, value)
    }

    #[instrument_cache_operation(get, key_param = "key")]
    async fn get_async(&self, key: &str) -> Option<String> {
        self.map.get(key).cloned()
    }

    #[instrument_cache_operation(get, key_param = "key")]
    fn get_future<'a>(&'a self, key: &'a str) -> impl Future<Output = Option<String>> + 'a {
        async move { self.map.get(key).cloned() }
    }

    #[instrument_cache_operation(flush)]
    fn flush(&mut self) {
        self.map.clear();
    }
}

fn exercise() {
    let mut map = HashMap::new();
    put(&mut map, "a", "Ada".to_owned());
    assert_eq!(get(&map, "a").as_deref(), Some("Ada"));
    assert_eq!(remove(&mut map, "a").as_deref(), Some("Ada"));
    flush(&mut map);
    assert_eq!(get_with_crate("k").as_deref(), Some("k"));
    put_with_crate("k");
    flush_with_crate();
    let mut store = Store {
        map: HashMap::new(),
    };
    assert_eq!(store.put("a".to_owned(), "Ada".to_owned()), None);
    assert_eq!(store.get("a").map(String::as_str), Some("Ada"));
    block_on(async {
        assert_eq!(get_async("k".to_owned()).await.as_deref(), Some("k"));
        assert_eq!(put_async("k", "v").await, Ok(()));
        assert_eq!(get_future("k".to_owned()).await.as_deref(), Some("k"));
        remove_with_crate("k").await;
        assert_eq!(store.get_async("a").await.as_deref(), Some("Ada"));
        assert_eq!(store.get_future("a").await.as_deref(), Some("Ada"));
    });
    store.flush();
}

/// Runs `f` under a sampled transaction; returns the ops of the spans recorded.
fn recorded(f: impl FnOnce()) -> Vec<String> {
    common::capture(|| common::in_transaction("ui", f))
        .into_iter()
        .flat_map(|t| t.spans.into_iter().filter_map(|s| s.op))
        .collect()
}

fn main() {
    exercise();
    let mut ops = recorded(exercise);
    ops.sort();
    let count = |op: &str| ops.iter().filter(|o| *o == op).count();
    assert_eq!(
        [
            count("cache.get"),
            count("cache.put"),
            count("cache.remove"),
            count("cache.flush")
        ],
        [7, 4, 2, 3],
        "{ops:?}"
    );
}
