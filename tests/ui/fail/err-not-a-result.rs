// `err` sets the status of a returned `Err`: on a function that returns no `Result` it is
// reported on the literal, once.

use insights_runtime::{instrument_cache_operation, traced};

#[traced(err = "not_found")]
fn finds_nothing() -> Option<u8> {
    None
}

#[instrument_cache_operation(get, key_param = "key", err = "unavailable")]
async fn never_fails(key: &str) -> Option<String> {
    let _ = key;
    None
}

fn main() {
    let _ = finds_nothing();
    let _ = never_fails("k");
}
