// A key parameter whose type is not a cache key: the error is on the `key_param` literal,
// in `CacheKeys`' own words, listing the key types there are.

use insights_runtime::instrument_cache_operation;

struct UserId(u64);

#[instrument_cache_operation(get, key_param = "id")]
fn by_struct(id: UserId) -> Option<String> {
    Some(id.0.to_string())
}

#[instrument_cache_operation(get, key_param = "score")]
fn by_float(score: f64) -> Option<String> {
    Some(score.to_string())
}

#[instrument_cache_operation(remove, key_param = "ids")]
fn many_structs(ids: &[UserId]) {
    let _ = ids;
}

fn main() {
    let _ = by_struct(UserId(1));
    let _ = by_float(1.5);
    many_structs(&[UserId(2)]);
}
