// `message_id_param` naming no parameter, on a producer and on a consumer: the error is on the
// literal, lists the parameters and, for a likely typo, suggests the closest.

use insights_runtime::{instrument_queue_process, instrument_queue_publish};

#[instrument_queue_publish(
    destination = "orders",
    system = "rabbitmq",
    message_id_param = "message"
)]
fn publish(message_id: u64) -> Result<(), String> {
    let _ = message_id;
    Ok(())
}

#[instrument_queue_process(
    destination = "orders",
    system = "rabbitmq",
    message_id_param = "ident"
)]
fn process(id: u64, body: &[u8]) -> Result<(), String> {
    let _ = (id, body);
    Ok(())
}

fn main() {
    let _ = publish(1);
    let _ = process(1, b"");
}
