// `get`, `put` and `remove` need `key_param`: the error is on the operation and says what to
// add.

use insights_runtime::instrument_cache_operation;

#[instrument_cache_operation(get)]
fn get(key: &str) -> Option<String> {
    Some(key.to_owned())
}

#[instrument_cache_operation(put, ttl = 60)]
fn put(key: &str, value: String) {
    let _ = (key, value);
}

#[instrument_cache_operation("remove")]
fn remove(key: &str) {
    let _ = key;
}

fn main() {
    let _ = get("user:1");
    put("user:1", String::new());
    remove("user:1");
}
