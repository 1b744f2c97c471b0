// `#[instrument_queue_publish]` and `#[instrument_queue_process]` on every function shape:
// sync and async fns, `-> impl Future`, methods on `&self` and `&mut self`; with only the
// required arguments, with every argument, and with `crate = ..`. Each is called with and
// without a recorded span.
#![deny(warnings)]

#[path = "../../common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::future::Future;

use futures::executor::block_on;
use insights_runtime::{instrument_queue_process, instrument_queue_publish};

#[instrument_queue_publish(destination = "orders", system = "rabbitmq")]
fn publish_bare() -> Result<(), String> {
    Ok(())
}

#[instrument_queue_publish(
    destination = "orders",
    system = "rabbitmq",
    headers_param = "headers",
    message_id_param = "id",
    body_param = "body"
)]
fn publish_all(headers: &mut HashMap<String, String>, id: u64, body: &[u8]) -> Result<(), String> {
    // The headers are written before the body runs, and the body may still use them.
    headers.insert("x-app".to_owned(), "ui".to_owned());
    let _ = (id, body);
    Ok(())
}

#[instrument_queue_publish(destination = "orders", system = "kafka", headers_param = "headers")]
async fn publish_async(headers: &mut Vec<(String, String)>, body: String) -> Result<usize, String> {
    std::future::ready(()).await;
    headers.push(("x-app".to_owned(), "ui".to_owned()));
    Ok(body.len())
}

#[instrument_queue_publish(
    destination = "orders",
    system = "sqs",
    headers_param = "headers",
    body_param = "body"
)]
fn publish_future<'a>(
    headers: &'a mut HashMap<String, String>,
    body: Vec<u8>,
) -> impl Future<Output = Result<usize, String>> + 'a {
    async move {
        headers.insert("x-app".to_owned(), "ui".to_owned());
        Ok(body.len())
    }
}

#[instrument_queue_publish(destination = "orders", system = "nats", crate = insights_runtime)]
fn publish_with_crate() {}

#[instrument_queue_process(destination = "orders", system = "rabbitmq")]
fn process_bare() -> Result<(), String> {
    Ok(())
}

#[instrument_queue_process(
    destination = "orders",
    system = "rabbitmq",
    headers_param = "headers",
    message_id_param = "id",
    body_param = "body",
    retry_count_param = "attempt",
    transaction = "order worker"
)]
fn process_all(
    headers: &HashMap<String, String>,
    id: &str,
    body: &[u8],
    attempt: u32,
) -> Result<(), String> {
    let _ = (headers, id, body, attempt);
    Ok(())
}

#[instrument_queue_process(
    destination = "orders",
    system = "kafka",
    headers_param = "headers",
    message_id_param = "id",
    body_param = "body",
    retry_count_param = "attempt"
)]
async fn process_async(
    headers: HashMap<String, String>,
    id: String,
    body: Vec<u8>,
    attempt: i64,
) -> Result<usize, String> {
    std::future::ready(()).await;
    let _ = (headers, id, attempt);
    Ok(body.len())
}

#[instrument_queue_process(
    destination = "orders",
    system = "sqs",
    headers_param = "headers",
    body_param = "body"
)]
fn process_future(
    headers: Vec<(String, String)>,
    body: String,
) -> impl Future<Output = Result<usize, String>> {
    async move {
        let _ = headers;
        Ok(body.len())
    }
}

#[instrument_queue_process(destination = "orders", system = "nats", crate = insights_runtime, headers_param = "headers")]
async fn process_with_crate(headers: &[(&str, &str)]) {
    let _ = headers;
}

struct Channel {
    sent: Vec<HashMap<String, String>>,
    handled: usize,
}

impl Channel {
    #[instrument_queue_publish(
        destination = "orders",
        system = "rabbitmq",
        headers_param = "headers",
        body_param = "body"
    )]
    fn send(&mut self, headers: &mut HashMap<String, String>, body: &str) -> Result<(), String> {
        let _ = body;
        self.sent.push(headers.clone());
        Ok(())
    }

    #[instrument_queue_publish(
        destination = "orders",
        system = "rabbitmq",
        message_id_param = "id"
    )]
    async fn send_async(&self, id: usize) -> Result<usize, String> {
        Ok(self.sent.len() + id)
    }

    #[instrument_queue_process(
        destination = "orders",
        system = "rabbitmq",
        headers_param = "headers"
    )]
    fn handle(&mut self, headers: &HashMap<String, String>) -> Result<usize, String> {
        let _ = headers;
        self.handled += 1;
        Ok(self.handled)
    }

    #[instrument_queue_process(
        destination = "orders",
        system = "rabbitmq",
        message_id_param = "id"
    )]
    async fn handle_async(&self, id: u64) -> Result<u64, String> {
        Ok(id + self.handled as u64)
    }
}

/// Returns the headers the first producer wrote.
fn exercise() -> HashMap<String, String> {
    publish_bare().expect("published");
    let mut headers = HashMap::new();
    publish_all(&mut headers, 7, b"{}").expect("published");
    publish_with_crate();
    process_bare().expect("processed");
    process_all(&headers, "m-7", b"{}", 1).expect("processed");
    let mut channel = Channel {
        sent: Vec::new(),
        handled: 0,
    };
    channel.send(&mut HashMap::new(), "{}").expect("sent");
    assert_eq!(channel.handle(&headers), Ok(1));
    block_on(async {
        let mut pairs = Vec::new();
        assert_eq!(publish_async(&mut pairs, "{}".to_owned()).await, Ok(2));
        let mut more = HashMap::new();
        assert_eq!(publish_future(&mut more, vec![1]).await, Ok(1));
        assert_eq!(
            process_async(headers.clone(), "m-8".to_owned(), vec![1, 2], 2).await,
            Ok(2)
        );
        assert_eq!(process_future(pairs, "abc".to_owned()).await, Ok(3));
        process_with_crate(&[("sentry-trace", "not a trace")]).await;
        assert_eq!(channel.send_async(1).await, Ok(2));
        assert_eq!(channel.handle_async(1).await, Ok(2));
    });
    headers
}

/// Runs `f` under a sampled transaction; returns its value and `(op, description)` of every
/// span recorded, in any transaction.
fn recorded<R>(f: impl FnOnce() -> R) -> (R, Vec<(String, String)>) {
    let mut out = None;
    let spans = common::capture(|| out = Some(common::in_transaction("ui", f)))
        .into_iter()
        .flat_map(|t| {
            t.spans
                .into_iter()
                .map(|s| (s.op.unwrap_or_default(), s.description.unwrap_or_default()))
        })
        .collect();
    (out.expect("ran"), spans)
}

fn main() {
    exercise();
    let (headers, spans) = recorded(exercise);
    assert!(headers.contains_key("sentry-trace"), "{headers:?}");
    assert_eq!(headers.get("x-app").map(String::as_str), Some("ui"));
    let count = |op: &str| spans.iter().filter(|(o, _)| o == op).count();
    assert_eq!(
        (count("queue.publish"), count("queue.process")),
        (7, 7),
        "{spans:?}"
    );
    assert!(spans.iter().all(|(_, d)| d == "orders"), "{spans:?}");
}
