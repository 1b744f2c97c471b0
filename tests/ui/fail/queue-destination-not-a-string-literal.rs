// A `destination` literal that is not a string: reported on the literal, before any type check.

use insights_runtime::instrument_queue_publish;

#[instrument_queue_publish(destination = 42, system = "rabbitmq")]
fn publish() -> Result<(), String> {
    Ok(())
}

fn main() {
    let _ = publish();
}
