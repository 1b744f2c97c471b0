// An operation the description cannot be built for, without a query: the error is on the
// operation, lists the ones there are, and says how to record any other (with a query).

use insights_runtime::instrument_db_operation;

#[instrument_db_operation("users", "fetch")]
fn by_position() -> Result<u32, String> {
    Ok(1)
}

#[instrument_db_operation(operation = "truncate", table = "sessions")]
fn by_name() -> Result<u32, String> {
    Ok(2)
}

fn main() {
    let _ = by_position();
    let _ = by_name();
}
