// `ttl`, `ttl_param` and `value_param` apply to `put` only: on any other operation the error is
// on the argument's key.

use insights_runtime::instrument_cache_operation;

#[instrument_cache_operation(get, key_param = "key", ttl = 60)]
fn get(key: &str) -> Option<String> {
    Some(key.to_owned())
}

#[instrument_cache_operation(remove, key_param = "key", value_param = "value")]
fn remove(key: &str, value: &str) {
    let _ = (key, value);
}

fn main() {
    let _ = get("user:1");
    remove("user:1", "Ada");
}
