// With `enable` off the arguments are still checked: `server` takes `(address, port)`, and a
// `destination` that is a literal of another kind than a string is reported too.

use insights_runtime::{instrument_db_operation, instrument_queue_publish};

#[instrument_db_operation("users", "select", server = "db.internal:5432")]
fn count() -> Result<u32, String> {
    Ok(1)
}

#[instrument_queue_publish(destination = 42, system = "rabbitmq")]
fn publish() -> Result<(), String> {
    Ok(())
}

fn main() {
    let _ = count();
    let _ = publish();
}
