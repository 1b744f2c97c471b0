// A producer's `headers_param` must be a `&mut` of a `CarrierMut`: a shared reference, a value
// or a `&mut` of something else is reported on the literal.

use std::collections::HashMap;

use insights_runtime::instrument_queue_publish;

#[instrument_queue_publish(destination = "orders", system = "rabbitmq", headers_param = "headers")]
fn shared(headers: &HashMap<String, String>) -> Result<(), String> {
    let _ = headers;
    Ok(())
}

#[instrument_queue_publish(destination = "orders", system = "rabbitmq", headers_param = "headers")]
fn integer(headers: u32) -> Result<(), String> {
    let _ = headers;
    Ok(())
}

#[instrument_queue_publish(destination = "orders", system = "rabbitmq", headers_param = "headers")]
fn mut_integer(headers: &mut u32) -> Result<(), String> {
    let _ = headers;
    Ok(())
}

#[instrument_queue_publish(destination = "orders", system = "rabbitmq", headers_param = "headers")]
async fn shared_async(headers: &HashMap<String, String>) -> Result<(), String> {
    let _ = headers;
    Ok(())
}

fn main() {
    let _ = shared(&HashMap::new());
    let _ = integer(1);
    let _ = mut_integer(&mut 1);
    let _ = shared_async(&HashMap::new());
}
