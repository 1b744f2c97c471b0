// `destination` takes the expression itself; a `destination_param` written by analogy with the
// `*_param` arguments is unknown, and the error names `destination`.

use insights_runtime::{instrument_queue_process, instrument_queue_publish};

#[instrument_queue_publish(destination_param = "queue", system = "rabbitmq")]
fn publish(queue: &str) -> Result<(), String> {
    let _ = queue;
    Ok(())
}

#[instrument_queue_process(destination_param = "queue", system = "rabbitmq")]
fn process(queue: &str) -> Result<(), String> {
    let _ = queue;
    Ok(())
}

fn main() {
    let _ = publish("jobs");
    let _ = process("jobs");
}
