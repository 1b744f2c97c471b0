// With `enable` off, a correct attribute returns the function as it was written: no span code.
// An async fn's future is the bare future, of the same size as the same fn's without the
// attribute (with `enable` on, it is wrapped), and each of the five attributes compiles
// warning-free and runs.
#![deny(warnings)]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use insights_runtime::{
    instrument_cache_operation, instrument_db_operation, instrument_queue_process,
    instrument_queue_publish, traced,
};

#[traced(op = "function")]
async fn traced_async(x: u64) -> u64 {
    std::future::ready(()).await;
    x + 1
}

async fn plain_async(x: u64) -> u64 {
    std::future::ready(()).await;
    x + 1
}

#[instrument_db_operation("users", "select")]
fn select_user(id: u32) -> Result<u32, String> {
    Ok(id)
}

#[instrument_cache_operation(get, key_param = "key")]
fn lookup(key: &str) -> Option<String> {
    Some(key.to_owned())
}

#[instrument_queue_publish(destination = "orders", system = "rabbitmq")]
fn publish(body: &[u8]) -> Result<usize, String> {
    Ok(body.len())
}

#[instrument_queue_process(destination = "orders", system = "rabbitmq")]
fn process(body: &[u8]) -> Result<usize, String> {
    Ok(body.len())
}

/// Polls a future that never waits for a wake-up to completion.
fn run<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

fn main() {
    assert_eq!(
        std::mem::size_of_val(&traced_async(1)),
        std::mem::size_of_val(&plain_async(1)),
        "the #[traced] future is not the bare future"
    );
    assert_eq!(run(traced_async(1)), 2);
    assert_eq!(select_user(7), Ok(7));
    assert_eq!(lookup("a").as_deref(), Some("a"));
    assert_eq!(publish(b"abc"), Ok(3));
    assert_eq!(process(b"abc"), Ok(3));
}
