// A consumer's `headers_param` whose type is not a `Carrier`: the error is on the literal, in
// `Carrier`'s own words.

use insights_runtime::instrument_queue_process;

#[instrument_queue_process(destination = "orders", system = "rabbitmq", headers_param = "headers")]
fn process(headers: u32) -> Result<(), String> {
    let _ = headers;
    Ok(())
}

fn main() {
    let _ = process(1);
}
