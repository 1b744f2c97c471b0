// `query_param` names a parameter by its name without `r#`, and never collides with the
// expansion's own names.
#![deny(warnings)]

use insights_runtime::instrument_db_operation;

#[instrument_db_operation(query_param = "sql")]
fn raw_plain(r#sql: &str) -> usize {
    sql.len()
}

#[instrument_db_operation(query_param = "__insights_data")]
#[allow(non_snake_case)]
fn generated_name(__insights_data: &str) -> usize {
    __insights_data.len()
}

#[instrument_db_operation(query_param = "data")]
fn named_like_the_closure_argument(data: &str) -> usize {
    data.len()
}

fn main() {
    assert_eq!(raw_plain("SELECT 1"), 8);
    assert_eq!(generated_name("SELECT 1"), 8);
    assert_eq!(named_like_the_closure_argument("SELECT 1"), 8);
}
