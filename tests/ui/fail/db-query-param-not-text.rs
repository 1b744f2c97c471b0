// A `query_param` whose type is not text (`AsRef<str>`): the error is on the literal.

use insights_runtime::instrument_db_operation;

#[instrument_db_operation(query_param = "sql")]
fn execute(sql: u32) -> Result<u32, String> {
    Ok(sql)
}

fn main() {
    let _ = execute(1);
}
