// The operation comes first and cannot be left out: the error is on the first argument (or
// on the attribute when it has none) and lists the operations there are.

use insights_runtime::instrument_cache_operation;

#[instrument_cache_operation(key_param = "k")]
fn load(k: &str) -> Option<String> {
    Some(k.to_owned())
}

#[instrument_cache_operation]
fn load_bare(k: &str) -> Option<String> {
    Some(k.to_owned())
}

fn main() {
    let _ = load("user:1");
    let _ = load_bare("user:1");
}
