// Without `query` or `query_param`, both a table and an operation are needed to describe the
// query: a table alone, an operation alone or no arguments at all is an error that says what
// to give.

use insights_runtime::instrument_db_operation;

#[instrument_db_operation("users")]
fn table_by_position() -> Result<u32, String> {
    Ok(1)
}

#[instrument_db_operation(table = "users", system = "sqlite")]
fn table_by_name() -> Result<u32, String> {
    Ok(2)
}

#[instrument_db_operation(operation = "select")]
fn operation_only() -> Result<u32, String> {
    Ok(3)
}

#[instrument_db_operation]
fn no_arguments() -> Result<u32, String> {
    Ok(4)
}

fn main() {
    let _ = table_by_position();
    let _ = table_by_name();
    let _ = operation_only();
    let _ = no_arguments();
}
