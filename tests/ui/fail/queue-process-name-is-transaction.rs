// The consumer's transaction is named with `transaction`, as on `#[instrument_queue_publish]`
// and `#[traced]`; the old `name` is refused with a pointer to it.

use std::collections::HashMap;

use insights_runtime::instrument_queue_process;

#[instrument_queue_process(destination = "orders", system = "rabbitmq", name = "order worker")]
fn handle(headers: &HashMap<String, String>) -> Result<(), String> {
    let _ = headers;
    Ok(())
}

fn main() {
    let _ = handle(&HashMap::new());
}
