// `key_param = "self"` is refused on the literal, even in a method: the key must be a named
// parameter.

use insights_runtime::instrument_cache_operation;

struct Key(String);

impl Key {
    #[instrument_cache_operation(get, key_param = "self")]
    fn lookup(&self) -> Option<String> {
        Some(self.0.clone())
    }
}

fn main() {
    let _ = Key(String::new()).lookup();
}
