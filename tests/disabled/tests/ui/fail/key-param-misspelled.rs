// `key_param` naming no parameter, with `enable` off: the arguments are checked all the same, so
// that a mistake does not wait for the build that turns `enable` on.

use insights_runtime::instrument_cache_operation;

#[instrument_cache_operation(get, key_param = "kye")]
fn lookup(key: &str) -> Option<String> {
    Some(key.to_owned())
}

fn main() {
    let _ = lookup("a");
}
