// `err` takes one of Sentry's span statuses, by name: another name is reported on the literal,
// with the valid names and, for a near miss or the name written another way, the one meant.

use insights_runtime::{instrument_db_operation, traced};

#[traced(err = "notfound")]
fn misspelled() -> Result<(), String> {
    Ok(())
}

#[instrument_db_operation("users", "select", err = "NotFound")]
fn cased() -> Result<u32, String> {
    Ok(1)
}

#[traced(err = "teapot")]
fn unknown() -> Result<(), String> {
    Ok(())
}

fn main() {
    let _ = misspelled();
    let _ = cased();
    let _ = unknown();
}
