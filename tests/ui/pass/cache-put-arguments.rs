// What a `put` takes besides the key: `ttl` in seconds; `ttl_param` of any TTL type (a
// `Duration`, an integer of any width, an `Option` of either, by value or by reference); and
// `value_param` of any type, sized when it is text or bytes and recorded without a size
// otherwise.
#![deny(warnings)]

#[path = "../../common/mod.rs"]
mod common;

use std::time::Duration;

use futures::executor::block_on;
use insights_runtime::instrument_cache_operation;

#[derive(Debug)]
struct Profile {
    name: String,
}

#[instrument_cache_operation(put, key_param = "key", ttl = 3600)]
fn ttl_literal(key: &str) {
    let _ = key;
}

#[instrument_cache_operation(put, key_param = "key", ttl = 0)]
fn ttl_zero(key: &str) {
    let _ = key;
}

#[instrument_cache_operation(put, key_param = "key", ttl_param = "ttl")]
fn ttl_duration(key: &str, ttl: Duration) {
    let _ = (key, ttl);
}

#[instrument_cache_operation(put, key_param = "key", ttl_param = "ttl")]
fn ttl_ref_duration(key: &str, ttl: &Duration) {
    let _ = (key, ttl);
}

#[instrument_cache_operation(put, key_param = "key", ttl_param = "ttl")]
fn ttl_u32(key: &str, ttl: u32) {
    let _ = (key, ttl);
}

#[instrument_cache_operation(put, key_param = "key", ttl_param = "ttl")]
fn ttl_i64(key: &str, ttl: i64) {
    let _ = (key, ttl);
}

#[instrument_cache_operation(put, key_param = "key", ttl_param = "ttl")]
fn ttl_option_u64(key: &str, ttl: Option<u64>) {
    let _ = (key, ttl);
}

#[instrument_cache_operation(put, key_param = "key", ttl_param = "ttl")]
async fn ttl_option_duration_async(key: String, ttl: Option<Duration>) {
    let _ = (key, ttl);
}

#[instrument_cache_operation(put, key_param = "key", value_param = "value")]
fn value_str(key: &str, value: &str) {
    let _ = (key, value);
}

#[instrument_cache_operation(put, key_param = "key", value_param = "value")]
fn value_string(key: &str, value: String) -> usize {
    value.len() + key.len()
}

#[instrument_cache_operation(put, key_param = "key", value_param = "value")]
fn value_bytes(key: &str, value: Vec<u8>) -> usize {
    let _ = key;
    value.len()
}

#[instrument_cache_operation(put, key_param = "key", value_param = "value")]
fn value_byte_slice(key: &str, value: &[u8]) {
    let _ = (key, value);
}

#[instrument_cache_operation(put, key_param = "key", value_param = "value")]
fn value_struct(key: &str, value: Profile) -> String {
    let _ = key;
    value.name
}

#[instrument_cache_operation(put, key_param = "key", value_param = "value")]
fn value_ref_struct(key: &str, value: &Profile) {
    let _ = (key, value);
}

#[instrument_cache_operation(put, key_param = "key", value_param = "value")]
fn value_integer(key: &str, value: u64) {
    let _ = (key, value);
}

#[instrument_cache_operation(put, key_param = "key", value_param = "value", ttl_param = "ttl")]
async fn value_and_ttl_async(key: &str, value: Vec<u8>, ttl: Duration) -> Result<usize, String> {
    let _ = (key, ttl);
    Ok(value.len())
}

// A generic `T` without an `AsRef<[u8]>` bound gets no size, whatever the caller passes: the
// choice is made where the function is written, not per call.
#[instrument_cache_operation(put, key_param = "key", value_param = "value")]
fn value_generic<T: std::fmt::Debug>(key: &str, value: T) {
    let _ = (key, value);
}

fn exercise() {
    ttl_literal("a");
    ttl_zero("a");
    ttl_duration("a", Duration::from_secs(60));
    ttl_ref_duration("a", &Duration::from_millis(1500));
    ttl_u32("a", 60);
    ttl_i64("a", -1);
    ttl_option_u64("a", Some(60));
    ttl_option_u64("a", None);
    value_str("a", "Ada");
    assert_eq!(value_string("a", "Ada".to_owned()), 4);
    assert_eq!(value_bytes("a", vec![1, 2]), 2);
    value_byte_slice("a", b"xyz");
    let profile = Profile {
        name: "Ada".to_owned(),
    };
    value_ref_struct("a", &profile);
    assert_eq!(value_struct("a", profile), "Ada");
    value_integer("a", 7);
    value_generic("a", vec![1u8]);
    block_on(async {
        ttl_option_duration_async("a".to_owned(), Some(Duration::from_secs(5))).await;
        assert_eq!(
            value_and_ttl_async("a", vec![1], Duration::from_secs(1)).await,
            Ok(1)
        );
    });
}

/// Runs `f` under a sampled transaction; returns `(cache.ttl, cache.item_size)` of each span.
fn recorded(f: impl FnOnce()) -> Vec<(Option<u64>, Option<u64>)> {
    common::capture(|| common::in_transaction("ui", f))
        .into_iter()
        .flat_map(|t| {
            t.spans.into_iter().map(|s| {
                let number = |key: &str| s.data.get(key).and_then(|v| v.as_u64());
                (number("cache.ttl"), number("cache.item_size"))
            })
        })
        .collect()
}

fn main() {
    exercise();
    let recorded = recorded(exercise);
    assert_eq!(
        recorded,
        [
            (Some(3600), None),
            (Some(0), None),
            (Some(60), None),
            (Some(1), None),
            (Some(60), None),
            (None, None),
            (Some(60), None),
            (None, None),
            (None, Some(3)),
            (None, Some(3)),
            (None, Some(2)),
            (None, Some(3)),
            (None, None),
            (None, None),
            (None, None),
            (None, None),
            (Some(5), None),
            (Some(1), Some(1)),
        ],
    );
}
