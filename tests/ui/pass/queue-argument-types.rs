// The parameter types the queue attributes accept: a producer's headers as a `&mut` of any
// `CarrierMut` (maps, pairs, `http::HeaderMap`, a broker's own type, a generic one); a
// consumer's headers as any `Carrier`, by value or by reference; a message id of any
// `Display`; a body of bytes or text; a retry count of any integer type.
#![deny(warnings)]

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use insights_runtime::queue::{Carrier, CarrierMut};
use insights_runtime::{instrument_queue_process, instrument_queue_publish};

/// A broker's own header type.
#[derive(Default)]
struct Properties(Vec<(String, Vec<u8>)>);

impl Carrier for Properties {
    fn header(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }
}

impl CarrierMut for Properties {
    fn set_header(&mut self, name: &str, value: String) {
        self.0.push((name.to_owned(), value.into_bytes()));
    }
}

struct MessageId(u128);

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "msg-{:x}", self.0)
    }
}

#[instrument_queue_publish(destination = "q", system = "s", headers_param = "h")]
fn publish_btree(h: &mut BTreeMap<String, String>) {
    let _ = h;
}

#[instrument_queue_publish(destination = "q", system = "s", headers_param = "h")]
fn publish_http(h: &mut http::HeaderMap) {
    let _ = h;
}

#[instrument_queue_publish(destination = "q", system = "s", headers_param = "h")]
fn publish_custom(h: &mut Properties) {
    let _ = h;
}

#[instrument_queue_publish(destination = "q", system = "s", headers_param = "h")]
fn publish_generic<H: CarrierMut>(h: &mut H) {
    let _ = h;
}

#[instrument_queue_publish(destination = "q", system = "s", headers_param = "h")]
fn publish_unsized(h: &mut dyn CarrierMut) {
    let _ = h;
}

#[instrument_queue_publish(
    destination = "q",
    system = "s",
    message_id_param = "id",
    body_param = "body"
)]
fn publish_ids(id: &str, body: String) {
    let _ = (id, body);
}

#[instrument_queue_publish(
    destination = "q",
    system = "s",
    message_id_param = "id",
    body_param = "body"
)]
fn publish_display_id(id: MessageId, body: [u8; 4]) {
    let _ = (id, body);
}

#[instrument_queue_publish(
    destination = "q",
    system = "s",
    message_id_param = "id",
    body_param = "body"
)]
fn publish_ref_display_id(id: &MessageId, body: &Vec<u8>) {
    let _ = (id, body);
}

#[instrument_queue_process(destination = "q", system = "s", headers_param = "h")]
fn process_btree(h: &BTreeMap<String, String>) {
    let _ = h;
}

#[instrument_queue_process(destination = "q", system = "s", headers_param = "h")]
fn process_http(h: http::HeaderMap) {
    let _ = h;
}

#[instrument_queue_process(destination = "q", system = "s", headers_param = "h")]
fn process_custom(h: &Properties) {
    let _ = h;
}

#[instrument_queue_process(destination = "q", system = "s", headers_param = "h")]
fn process_mut(h: &mut HashMap<String, String>) {
    let _ = h;
}

#[instrument_queue_process(destination = "q", system = "s", headers_param = "h")]
fn process_generic<C: Carrier>(h: C) {
    let _ = h;
}

#[instrument_queue_process(destination = "q", system = "s", headers_param = "h")]
fn process_dyn(h: &dyn Carrier) {
    let _ = h;
}

#[instrument_queue_process(
    destination = "q",
    system = "s",
    message_id_param = "id",
    body_param = "body"
)]
fn process_display_id(id: MessageId, body: &str) {
    let _ = (id, body);
}

#[instrument_queue_process(destination = "q", system = "s", retry_count_param = "n")]
fn retry_u8(n: u8) {
    let _ = n;
}

#[instrument_queue_process(destination = "q", system = "s", retry_count_param = "n")]
fn retry_usize(n: usize) {
    let _ = n;
}

#[instrument_queue_process(destination = "q", system = "s", retry_count_param = "n")]
fn retry_i32(n: i32) {
    let _ = n;
}

#[instrument_queue_process(destination = "q", system = "s", retry_count_param = "n")]
fn retry_u64(n: u64) {
    let _ = n;
}

fn main() {
    publish_btree(&mut BTreeMap::new());
    publish_http(&mut http::HeaderMap::new());
    let mut props = Properties::default();
    publish_custom(&mut props);
    publish_generic(&mut HashMap::<String, String>::new());
    publish_unsized(&mut props);
    publish_ids("m-1", "{}".to_owned());
    publish_display_id(MessageId(1), *b"{}{}");
    publish_ref_display_id(&MessageId(2), &vec![1]);
    process_btree(&BTreeMap::new());
    process_http(http::HeaderMap::new());
    process_custom(&props);
    process_mut(&mut HashMap::new());
    process_generic(vec![("a".to_owned(), "b".to_owned())]);
    process_dyn(&props);
    process_display_id(MessageId(3), "{}");
    retry_u8(1);
    retry_usize(2);
    retry_i32(-3);
    retry_u64(4);
}
