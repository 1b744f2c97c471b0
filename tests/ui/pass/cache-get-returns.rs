// What a `get` may return: `Option<T>` (a hit is `Some`), `Result<Option<T>, E>` (a hit is
// `Ok(Some)`), and `bool` and `Result<bool, E>` (the hit itself); any other type is a compile
// error (`tests/ui/fail/cache-get-cannot-tell-a-hit.rs`). The size is recorded for a hit that
// is text or bytes, and left out for any other value, such as a struct.
#![deny(warnings)]

#[path = "../../common/mod.rs"]
mod common;

use futures::executor::block_on;
use insights_runtime::instrument_cache_operation;

#[derive(Debug, Clone, PartialEq)]
struct Profile {
    name: String,
}

#[instrument_cache_operation(get, key_param = "key")]
fn option_string(key: &str) -> Option<String> {
    (key == "hit").then(|| "Ada".to_owned())
}

#[instrument_cache_operation(get, key_param = "key")]
fn option_str(key: &str) -> Option<&str> {
    (key == "hit").then_some("Ada")
}

#[instrument_cache_operation(get, key_param = "key")]
fn option_bytes(key: &str) -> Option<Vec<u8>> {
    (key == "hit").then(|| vec![1, 2])
}

#[instrument_cache_operation(get, key_param = "key")]
fn option_struct(key: &str) -> Option<Profile> {
    (key == "hit").then(|| Profile {
        name: "Ada".to_owned(),
    })
}

#[instrument_cache_operation(get, key_param = "key")]
fn result_option(key: &str) -> Result<Option<String>, String> {
    match key {
        "hit" => Ok(Some("Ada".to_owned())),
        "error" => Err("connection reset".to_owned()),
        _ => Ok(None),
    }
}

#[instrument_cache_operation(get, key_param = "key")]
async fn result_option_struct_async(key: &str) -> Result<Option<Profile>, std::io::Error> {
    Ok((key == "hit").then(|| Profile {
        name: "Ada".to_owned(),
    }))
}

#[instrument_cache_operation(get, key_param = "key")]
fn question_mark(key: &str) -> Result<Option<u64>, std::num::ParseIntError> {
    let n: u64 = key.parse()?;
    Ok(Some(n))
}

#[instrument_cache_operation(get, key_param = "key")]
fn exists(key: &str) -> bool {
    key == "hit"
}

#[instrument_cache_operation(get, key_param = "key")]
fn exists_result(key: &str) -> Result<bool, String> {
    Ok(key == "hit")
}

#[instrument_cache_operation(get, key_param = "key")]
fn borrowed<'a>(
    map: &'a std::collections::HashMap<String, String>,
    key: &str,
) -> Option<&'a String> {
    map.get(key)
}

#[instrument_cache_operation(get, key_param = "key")]
fn generic<T: Clone>(key: &str, value: &T) -> Option<T> {
    (key == "hit").then(|| value.clone())
}

fn exercise() {
    for key in ["hit", "miss"] {
        let _ = option_string(key);
        let _ = option_str(key);
        let _ = option_bytes(key);
        let _ = option_struct(key);
        let _ = result_option(key);
        let _ = exists(key);
        let _ = exists_result(key);
    }
    assert!(result_option("error").is_err());
    assert_eq!(question_mark("7"), Ok(Some(7)));
    assert!(question_mark("x").is_err());
    let map = std::collections::HashMap::from([("hit".to_owned(), "Ada".to_owned())]);
    assert_eq!(borrowed(&map, "hit").map(String::as_str), Some("Ada"));
    assert_eq!(generic("hit", &"Ada".to_owned()).as_deref(), Some("Ada"));
    assert!(block_on(result_option_struct_async("hit"))
        .expect("ok")
        .is_some());
}

/// Runs `f` under a sampled transaction; returns `(description, cache.hit, cache.item_size)`
/// of each span.
fn recorded(f: impl FnOnce()) -> Vec<(String, Option<bool>, Option<u64>)> {
    common::capture(|| common::in_transaction("ui", f))
        .into_iter()
        .flat_map(|t| {
            t.spans.into_iter().map(|s| {
                (
                    s.description.clone().unwrap_or_default(),
                    s.data.get("cache.hit").and_then(|v| v.as_bool()),
                    s.data.get("cache.item_size").and_then(|v| v.as_u64()),
                )
            })
        })
        .collect()
}

fn main() {
    exercise();
    let spans = recorded(exercise);
    let expected: Vec<(&str, Option<bool>, Option<u64>)> = vec![
        ("hit", Some(true), Some(3)), // Option<String>
        ("hit", Some(true), Some(3)), // Option<&str>
        ("hit", Some(true), Some(2)), // Option<Vec<u8>>
        ("hit", Some(true), None),    // Option<Profile>
        ("hit", Some(true), Some(3)), // Result<Option<String>, _>
        ("hit", Some(true), None),    // bool
        ("hit", Some(true), None),    // Result<bool, _>
        ("miss", Some(false), None),
        ("miss", Some(false), None),
        ("miss", Some(false), None),
        ("miss", Some(false), None),
        ("miss", Some(false), None),
        ("miss", Some(false), None),
        ("miss", Some(false), None),
        ("error", None, None),   // Err: no hit
        ("7", Some(true), None), // Result<Option<u64>, _>: a hit, no size
        ("x", None, None),
        ("hit", Some(true), Some(3)), // Option<&String>
        ("hit", Some(true), None),    // generic T: no size without a bound
        ("hit", Some(true), None),    // async Result<Option<Profile>, _>
    ];
    let spans: Vec<(&str, Option<bool>, Option<u64>)> =
        spans.iter().map(|(d, h, s)| (d.as_str(), *h, *s)).collect();
    assert_eq!(spans, expected);
}
