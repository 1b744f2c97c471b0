// `server` takes `(address, port)`: an address and port in one string is reported on it.

use insights_runtime::instrument_db_operation;

#[instrument_db_operation("users", "select", server = "db.internal:5432")]
fn count() -> Result<u32, String> {
    Ok(1)
}

fn main() {
    let _ = count();
}
