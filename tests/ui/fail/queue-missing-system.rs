// `system` is required on both queue attributes; the error says what to add.

use insights_runtime::{instrument_queue_process, instrument_queue_publish};

#[instrument_queue_publish(destination = "orders")]
fn publish() -> Result<(), String> {
    Ok(())
}

#[instrument_queue_process(destination = "orders")]
fn process() -> Result<(), String> {
    Ok(())
}

fn main() {
    let _ = publish();
    let _ = process();
}
