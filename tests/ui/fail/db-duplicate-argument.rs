// An argument given twice, here `table` by position and by name: the error is on the second.

use insights_runtime::instrument_db_operation;

#[instrument_db_operation("users", "select", table = "accounts")]
fn by_position_and_name() -> Result<u32, String> {
    Ok(1)
}

#[instrument_db_operation(
    system = "sqlite",
    table = "users",
    operation = "select",
    system = "mysql"
)]
fn by_name_twice() -> Result<u32, String> {
    Ok(2)
}

fn main() {
    let _ = by_position_and_name();
    let _ = by_name_twice();
}
