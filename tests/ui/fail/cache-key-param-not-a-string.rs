// `key_param` takes the parameter's name as a string literal: a bare identifier or a number is
// reported on the value.

use insights_runtime::instrument_cache_operation;

#[instrument_cache_operation(get, key_param = key)]
fn bare(key: &str) -> Option<String> {
    Some(key.to_owned())
}

#[instrument_cache_operation(get, key_param = 0)]
fn number(key: &str) -> Option<String> {
    Some(key.to_owned())
}

fn main() {
    let _ = bare("user:1");
    let _ = number("user:1");
}
