// `err` takes a span status as a string literal: an integer (an HTTP code) or a path is reported
// on the value.

use insights_runtime::{instrument_cache_operation, traced};

#[traced(err = 404)]
fn http_code() -> Result<(), String> {
    Ok(())
}

#[instrument_cache_operation(get, key_param = "key", err = sentry::protocol::SpanStatus::NotFound)]
fn a_path(key: &str) -> Result<Option<String>, String> {
    let _ = key;
    Ok(None)
}

fn main() {
    let _ = http_code();
    let _ = a_path("k");
}
