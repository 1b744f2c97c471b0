// A parameter whose name is a keyword, written `r#ref`, is named `message_id_param = "ref"`:
// the expansion must refer to it as `r#ref`.
#![deny(warnings)]

use insights_runtime::{instrument_queue_process, instrument_queue_publish};

#[instrument_queue_publish(destination = "orders", system = "rabbitmq", message_id_param = "ref")]
fn publish(r#ref: &str) {
    let _ = r#ref;
}

#[instrument_queue_process(destination = "orders", system = "rabbitmq", message_id_param = "ref")]
fn process(r#ref: &str) {
    let _ = r#ref;
}

fn main() {
    publish("m-1");
    process("m-1");
}
