// The arguments take string literals: a constant is reported on it. By name the message says
// the argument takes a string literal; by position it currently calls the constant an unknown
// argument.

use insights_runtime::instrument_db_operation;

const TABLE: &str = "users";

#[instrument_db_operation(table = TABLE, operation = "select")]
fn named() -> Result<u32, String> {
    Ok(1)
}

#[instrument_db_operation(TABLE, "select")]
fn positional() -> Result<u32, String> {
    Ok(2)
}

fn main() {
    let _ = named();
    let _ = positional();
    let _ = TABLE;
}
