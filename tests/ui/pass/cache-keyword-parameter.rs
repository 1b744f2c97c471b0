// A parameter whose name is a keyword, written `r#type`, is named `key_param = "type"`: the
// expansion must refer to it as `r#type`.
#![deny(warnings)]

use insights_runtime::instrument_cache_operation;

#[instrument_cache_operation(get, key_param = "type")]
fn raw_keyword(r#type: &str) -> Option<String> {
    Some(r#type.to_owned())
}

fn main() {
    assert_eq!(raw_keyword("a").as_deref(), Some("a"));
}
