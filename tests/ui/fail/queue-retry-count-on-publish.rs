// `retry_count_param` is a consumer's argument: on a producer it is an unknown argument,
// reported on the key.

use insights_runtime::instrument_queue_publish;

#[instrument_queue_publish(
    destination = "orders",
    system = "rabbitmq",
    retry_count_param = "attempt"
)]
fn publish(attempt: u32) -> Result<(), String> {
    let _ = attempt;
    Ok(())
}

fn main() {
    let _ = publish(1);
}
