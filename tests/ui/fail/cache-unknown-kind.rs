// An operation `#[instrument_cache_operation]` does not know, as a bare word or a string: one
// error, on the word, listing the operations there are.

use insights_runtime::instrument_cache_operation;

#[instrument_cache_operation(fetch, key_param = "key")]
fn fetch(key: &str) -> Option<String> {
    Some(key.to_owned())
}

#[instrument_cache_operation("cache.fetch", key_param = "key")]
fn fetch_prefixed(key: &str) -> Option<String> {
    Some(key.to_owned())
}

fn main() {
    let _ = fetch("user:1");
    let _ = fetch_prefixed("user:1");
}
