// `query_param` naming no parameter: the error is on the literal, lists the parameters and,
// for a likely typo, suggests the closest.

use insights_runtime::instrument_db_operation;

#[instrument_db_operation(query_param = "sq")]
fn typo(conn: &str, sql: &str) -> Result<usize, String> {
    Ok(conn.len() + sql.len())
}

#[instrument_db_operation(query_param = "statement")]
fn unrelated(conn: &str, sql: &str) -> Result<usize, String> {
    Ok(conn.len() + sql.len())
}

fn main() {
    let _ = typo("c", "SELECT 1");
    let _ = unrelated("c", "SELECT 1");
}
