// Every kind of key `key_param` accepts, checked at compile time: text (`&str`, `String`,
// `&String`, `Cow<str>`, `Box<str>`, `Arc<str>`), integers of any width and signedness, and
// several keys as a `Vec`, a slice, an array or a reference to one.
#![deny(warnings)]

#[path = "../../common/mod.rs"]
mod common;

use std::borrow::Cow;
use std::sync::Arc;

use futures::executor::block_on;
use insights_runtime::instrument_cache_operation;

#[instrument_cache_operation(get, key_param = "key")]
fn str_key(key: &str) -> Option<String> {
    Some(key.to_owned())
}

#[instrument_cache_operation(get, key_param = "key")]
fn string_key(key: String) -> Option<String> {
    Some(key)
}

#[instrument_cache_operation(get, key_param = "key")]
fn ref_string_key(key: &String) -> Option<String> {
    Some(key.clone())
}

#[instrument_cache_operation(get, key_param = "key")]
fn cow_key(key: Cow<'_, str>) -> Option<String> {
    Some(key.into_owned())
}

#[instrument_cache_operation(remove, key_param = "key")]
fn ref_cow_key(key: &Cow<'static, str>) {
    let _ = key;
}

#[instrument_cache_operation(get, key_param = "key")]
fn boxed_key(key: Box<str>) -> Option<String> {
    Some(key.into())
}

#[instrument_cache_operation(get, key_param = "key")]
fn arc_key(key: Arc<str>) -> Option<String> {
    Some(key.to_string())
}

#[instrument_cache_operation(get, key_param = "id")]
fn u64_key(id: u64) -> Option<u64> {
    Some(id)
}

#[instrument_cache_operation(put, key_param = "id")]
fn i32_key(id: i32) {
    let _ = id;
}

#[instrument_cache_operation(remove, key_param = "id")]
fn usize_ref_key(id: &usize) {
    let _ = id;
}

#[instrument_cache_operation(get, key_param = "keys")]
fn vec_of_strings(keys: Vec<String>) -> Option<String> {
    keys.into_iter().next()
}

#[instrument_cache_operation(get, key_param = "keys")]
fn slice_of_strs(keys: &[&str]) -> Option<String> {
    keys.first().map(|k| (*k).to_owned())
}

#[instrument_cache_operation(remove, key_param = "keys")]
fn array_of_integers(keys: [u64; 2]) {
    let _ = keys;
}

#[instrument_cache_operation(remove, key_param = "keys")]
fn ref_array_of_strings(keys: &[String; 3]) {
    let _ = keys;
}

#[instrument_cache_operation(remove, key_param = "keys")]
fn ref_vec_of_cows(keys: &Vec<Cow<'_, str>>) {
    let _ = keys;
}

#[instrument_cache_operation(get, key_param = "keys")]
async fn vec_of_integers_async(keys: Vec<i64>) -> Option<i64> {
    keys.first().copied()
}

#[instrument_cache_operation(get, key_param = "keys")]
async fn slice_of_strings_async(keys: &[String]) -> Option<String> {
    keys.first().cloned()
}

// A generic key, bounded by the trait the attribute checks.
#[instrument_cache_operation(get, key_param = "key")]
fn generic_key<K: insights_runtime::cache::CacheKeys + ?Sized>(key: &K) -> Option<String> {
    let _ = key;
    None
}

fn exercise() {
    assert_eq!(str_key("a").as_deref(), Some("a"));
    assert_eq!(string_key("a".to_owned()).as_deref(), Some("a"));
    assert_eq!(ref_string_key(&"a".to_owned()).as_deref(), Some("a"));
    assert_eq!(cow_key(Cow::Borrowed("a")).as_deref(), Some("a"));
    ref_cow_key(&Cow::Borrowed("a"));
    assert_eq!(boxed_key("a".into()).as_deref(), Some("a"));
    assert_eq!(arc_key("a".into()).as_deref(), Some("a"));
    assert_eq!(u64_key(7), Some(7));
    i32_key(-7);
    usize_ref_key(&7);
    assert_eq!(vec_of_strings(vec!["a".to_owned()]).as_deref(), Some("a"));
    assert_eq!(slice_of_strs(&["a", "b"]).as_deref(), Some("a"));
    array_of_integers([1, 2]);
    ref_array_of_strings(&["a".to_owned(), "b".to_owned(), "c".to_owned()]);
    ref_vec_of_cows(&vec![Cow::Borrowed("a")]);
    assert_eq!(generic_key("a"), None);
    assert_eq!(generic_key(&[1u8, 2]), None);
    block_on(async {
        assert_eq!(vec_of_integers_async(vec![3, 4]).await, Some(3));
        assert_eq!(
            slice_of_strings_async(&["a".to_owned()]).await.as_deref(),
            Some("a")
        );
    });
}

/// Runs `f` under a sampled transaction; returns the descriptions of the spans recorded.
fn recorded(f: impl FnOnce()) -> Vec<String> {
    common::capture(|| common::in_transaction("ui", f))
        .into_iter()
        .flat_map(|t| t.spans.into_iter().filter_map(|s| s.description))
        .collect()
}

fn main() {
    exercise();
    let descriptions = recorded(exercise);
    assert_eq!(
        descriptions,
        [
            "a", "a", "a", "a", "a", "a", "a", "7", "-7", "7", "a", "a, b", "1, 2", "a, b, c", "a",
            "a", "1, 2", "3, 4", "a",
        ],
    );
}
