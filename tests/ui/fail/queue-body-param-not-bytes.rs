// A `body_param` whose type is not bytes or text (`AsRef<[u8]>`), on a producer and on a
// consumer: the error is on the literal.

use insights_runtime::{instrument_queue_process, instrument_queue_publish};

#[instrument_queue_publish(destination = "orders", system = "rabbitmq", body_param = "body")]
fn publish(body: u32) -> Result<(), String> {
    let _ = body;
    Ok(())
}

#[instrument_queue_process(destination = "orders", system = "rabbitmq", body_param = "body")]
fn process(body: u32) -> Result<(), String> {
    let _ = body;
    Ok(())
}

fn main() {
    let _ = publish(1);
    let _ = process(1);
}
