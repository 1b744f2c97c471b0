// An argument `#[instrument_cache_operation]` does not have: one error, on the key, listing
// the valid arguments, with a suggestion for a likely typo only.

use insights_runtime::instrument_cache_operation;

#[instrument_cache_operation(get, keyparam = "key")]
fn typo(key: &str) -> Option<String> {
    Some(key.to_owned())
}

#[instrument_cache_operation(put, key_param = "key", expires = 60)]
fn unrelated(key: &str) {
    let _ = key;
}

fn main() {
    let _ = typo("a");
    unrelated("b");
}
