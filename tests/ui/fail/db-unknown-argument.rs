// An argument `#[instrument_db_operation]` does not have: one error, on the key, listing the
// valid arguments; a likely typo gets the closest as a suggestion, an unrelated name none.
// `tabel` (two letters swapped) currently gets no suggestion: the distance counts a swap as
// two edits, over the limit of one for a five-letter name.

use insights_runtime::instrument_db_operation;

#[instrument_db_operation(tables = "users", operation = "select")]
fn typo() -> Result<u32, String> {
    Ok(1)
}

#[instrument_db_operation(tabel = "users", operation = "select")]
fn swapped() -> Result<u32, String> {
    Ok(2)
}

#[instrument_db_operation("users", "select", sql = "SELECT * FROM users")]
fn unrelated() -> Result<u32, String> {
    Ok(3)
}

fn main() {
    let _ = typo();
    let _ = swapped();
    let _ = unrelated();
}
