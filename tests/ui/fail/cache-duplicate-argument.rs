// An argument given twice: the error is on the second one.

use insights_runtime::instrument_cache_operation;

#[instrument_cache_operation(get, key_param = "key", key_param = "other")]
fn get(key: &str, other: &str) -> Option<String> {
    Some(format!("{key}{other}"))
}

fn main() {
    let _ = get("a", "b");
}
