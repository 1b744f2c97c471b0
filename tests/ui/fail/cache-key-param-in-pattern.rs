// A key bound inside a destructuring pattern cannot be named: the error is on the literal and
// says to make it a plain parameter.

use insights_runtime::instrument_cache_operation;

#[instrument_cache_operation(get, key_param = "key")]
fn lookup((shard, key): (u32, &str)) -> Option<String> {
    Some(format!("{shard}:{key}"))
}

fn main() {
    let _ = lookup((1, "user:1"));
}
