// The server is one argument, `server = (address, port)`: `server_address` and `server_port`
// are unknown, and the error names `server`.

use insights_runtime::instrument_db_operation;

#[instrument_db_operation("users", "select", server_address = "db.internal")]
fn count() -> Result<u32, String> {
    Ok(1)
}

#[instrument_db_operation("users", "select", server_port = 5432)]
fn total() -> Result<u32, String> {
    Ok(2)
}

fn main() {
    let _ = count();
    let _ = total();
}
