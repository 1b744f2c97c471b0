// With `enable` off, a correct attribute returns the function as it was written: no span code.
// An async fn's future is the bare future, of the same size as the same fn's without the
// attribute (with `enable` on, it is wrapped), and each of the five attributes compiles
// warning-free and runs, names given as expressions too (not evaluated: the body is all there
// is).
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

struct Jobs {
    queue: String,
    database: String,
    port: u16,
}

impl Jobs {
    #[instrument_queue_publish(destination = self.queue, system = "rabbitmq")]
    fn publish(&self) -> Result<usize, String> {
        Ok(self.queue.len())
    }

    #[instrument_queue_process(destination = self.queue.as_str(), system = "rabbitmq")]
    async fn process(&self) -> Result<usize, String> {
        std::future::ready(()).await;
        Ok(self.queue.len())
    }

    #[instrument_db_operation(
        "users",
        "select",
        db_name = self.database,
        server = (self.database.as_str(), self.port)
    )]
    fn count(&self) -> Result<u16, String> {
        Ok(self.port)
    }
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
    let jobs = Jobs {
        queue: "jobs".to_owned(),
        database: "app".to_owned(),
        port: 5432,
    };
    assert_eq!(jobs.publish(), Ok(4));
    assert_eq!(run(jobs.process()), Ok(4));
    assert_eq!(jobs.count(), Ok(5432));
}
