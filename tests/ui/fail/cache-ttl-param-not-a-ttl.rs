// A `ttl_param` whose type is not a TTL (an integer or a `Duration`): the error is on the
// literal, in `Ttl`'s own words.

use insights_runtime::instrument_cache_operation;

#[instrument_cache_operation(put, key_param = "key", ttl_param = "ttl")]
fn text(key: &str, ttl: &str) {
    let _ = (key, ttl);
}

#[instrument_cache_operation(put, key_param = "key", ttl_param = "ttl")]
fn float(key: &str, ttl: f64) {
    let _ = (key, ttl);
}

fn main() {
    text("a", "1h");
    float("b", 1.5);
}
