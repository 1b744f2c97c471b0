// `ttl` and `ttl_param` together: the error is on `ttl_param`'s literal, whichever comes first.

use std::time::Duration;

use insights_runtime::instrument_cache_operation;

#[instrument_cache_operation(put, key_param = "key", ttl = 60, ttl_param = "ttl")]
fn ttl_first(key: &str, ttl: Duration) {
    let _ = (key, ttl);
}

#[instrument_cache_operation(put, key_param = "key", ttl_param = "ttl", ttl = 60)]
fn ttl_param_first(key: &str, ttl: Duration) {
    let _ = (key, ttl);
}

fn main() {
    ttl_first("a", Duration::from_secs(1));
    ttl_param_first("b", Duration::from_secs(1));
}
