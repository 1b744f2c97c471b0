// A parameter behind `#[cfg]` may not exist, so `key_param` cannot name it: refused on the
// literal. (The condition here is always true, so `main` can call the function; the attribute
// cannot know that.)

use insights_runtime::instrument_cache_operation;

#[instrument_cache_operation(get, key_param = "key")]
fn lookup(#[cfg(all())] key: &str) -> Option<String> {
    Some(key.to_owned())
}

fn main() {
    let _ = lookup("user:1");
}
