// An empty table, by position or by name, is reported on the literal.

use insights_runtime::instrument_db_operation;

#[instrument_db_operation("", "select")]
fn by_position() -> Result<u32, String> {
    Ok(1)
}

#[instrument_db_operation(table = "", operation = "select")]
fn by_name() -> Result<u32, String> {
    Ok(2)
}

fn main() {
    let _ = by_position();
    let _ = by_name();
}
