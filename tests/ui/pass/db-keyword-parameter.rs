// A parameter whose name is a keyword, written `r#type`, is named `query_param = "type"`: the
// expansion must refer to it as `r#type`.
#![deny(warnings)]

use insights_runtime::instrument_db_operation;

#[instrument_db_operation(query_param = "type")]
fn raw_keyword(r#type: &str) -> usize {
    r#type.len()
}

fn main() {
    assert_eq!(raw_keyword("SELECT 1"), 8);
}
