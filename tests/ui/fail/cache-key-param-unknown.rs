// `key_param` naming no parameter: the error is on the literal and lists the parameters; a
// likely typo gets the closest as a suggestion, an unrelated name none, and a function without
// parameters says so. `kye` (two letters swapped) currently gets no suggestion: the distance
// counts a swap as two edits, over the limit of one for a three-letter name.

use insights_runtime::instrument_cache_operation;

#[instrument_cache_operation(get, key_param = "keys")]
fn typo(prefix: &str, key: &str) -> Option<String> {
    Some(format!("{prefix}{key}"))
}

#[instrument_cache_operation(get, key_param = "kye")]
fn swapped(prefix: &str, key: &str) -> Option<String> {
    Some(format!("{prefix}{key}"))
}

#[instrument_cache_operation(get, key_param = "user")]
fn unrelated(prefix: &str, key: &str) -> Option<String> {
    Some(format!("{prefix}{key}"))
}

#[instrument_cache_operation(remove, key_param = "key")]
fn no_parameters() {}

fn main() {
    let _ = typo("a:", "1");
    let _ = swapped("a:", "1");
    let _ = unrelated("a:", "1");
    no_parameters();
}
