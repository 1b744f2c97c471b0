// `flush` takes no key: `key_param` on it is reported on its literal.

use insights_runtime::instrument_cache_operation;

#[instrument_cache_operation(flush, key_param = "prefix")]
fn flush(prefix: &str) {
    let _ = prefix;
}

fn main() {
    flush("user:");
}
