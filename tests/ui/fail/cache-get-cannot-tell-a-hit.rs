// A cache `get` must return a type that tells a hit from a miss. A result alias that hides a
// plain value (as `redis::RedisResult<String>` does) would otherwise compile, record no
// `cache.hit` and mark every miss `internal_error`; the error points at the return type and
// names the shapes that work.

use insights_runtime::instrument_cache_operation;

type CacheResult<T> = Result<T, String>;

#[instrument_cache_operation(get, key_param = "key")]
fn lookup(key: &str) -> CacheResult<String> {
    Ok(key.to_owned())
}

#[instrument_cache_operation(get, key_param = "key")]
async fn profile(key: &str) -> Vec<u8> {
    key.as_bytes().to_vec()
}

fn main() {
    let _ = lookup("user:1");
    let _ = profile("user:1");
}
