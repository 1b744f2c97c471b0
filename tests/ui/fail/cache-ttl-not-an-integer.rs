// `ttl` takes whole seconds as an integer literal: a string, an expression or a negative number
// is reported on the value, with a pointer to `ttl_param`.

use insights_runtime::instrument_cache_operation;

#[instrument_cache_operation(put, key_param = "key", ttl = "3600")]
fn string(key: &str) {
    let _ = key;
}

#[instrument_cache_operation(put, key_param = "key", ttl = 60 * 60)]
fn expression(key: &str) {
    let _ = key;
}

#[instrument_cache_operation(put, key_param = "key", ttl = -1)]
fn negative(key: &str) {
    let _ = key;
}

#[instrument_cache_operation(put, key_param = "key", ttl = 1.5)]
fn float(key: &str) {
    let _ = key;
}

fn main() {
    string("a");
    expression("b");
    negative("c");
    float("d");
}
