use insights_runtime::instrument_cache_operation;

struct Client {
    address: String,
}

impl Client {
    // `tracker` takes a `&CacheTracker`, not the address it would record.
    #[instrument_cache_operation(get, key_param = "key", tracker = &self.address)]
    fn get(&self, key: &str) -> Option<String> {
        let _ = key;
        None
    }
}

fn main() {}
