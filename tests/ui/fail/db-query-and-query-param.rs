// `query` and `query_param` together: the error is on `query_param`'s literal.

use insights_runtime::instrument_db_operation;

#[instrument_db_operation(query = "SELECT 1", query_param = "sql")]
fn execute(sql: &str) -> Result<usize, String> {
    Ok(sql.len())
}

fn main() {
    let _ = execute("SELECT 2");
}
