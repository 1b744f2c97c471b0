// `key_param = "_"` names no parameter, even when one is written `_`: refused on the literal.

use insights_runtime::instrument_cache_operation;

#[instrument_cache_operation(remove, key_param = "_")]
fn remove(_: &str) {}

fn main() {
    remove("user:1");
}
