// Names given as expressions, evaluated at run time, on every function shape: the queue
// attributes' `destination` (a `const`, a field of `&self` or `&mut self`, a method call, a
// parameter, a `String` a call returns) and the db attribute's `db_name` and `server`, in sync
// and async fns, `-> impl Future` and boxed futures; some borrow arguments the body then takes.
// Each is called with and without a recorded span.
#![deny(warnings)]

#[path = "../../common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use futures::executor::block_on;
use insights_runtime::{
    instrument_db_operation, instrument_queue_process, instrument_queue_publish,
};

const JOBS_QUEUE: &str = "jobs";

struct Config {
    queue: String,
    database: String,
    host: String,
    port: u16,
}

impl Config {
    fn queue_name(&self) -> String {
        self.queue.clone()
    }
}

#[instrument_queue_publish(destination = JOBS_QUEUE, system = "rabbitmq", headers_param = "headers")]
fn publish_const(headers: &mut HashMap<String, String>) -> Result<(), String> {
    headers.insert("x-app".to_owned(), "ui".to_owned());
    Ok(())
}

#[instrument_queue_publish(destination = queue, system = "rabbitmq", body_param = "body")]
async fn publish_param(queue: &str, body: Vec<u8>) -> Result<usize, String> {
    std::future::ready(()).await;
    Ok(body.len())
}

#[instrument_queue_publish(destination = config.queue_name(), system = "rabbitmq")]
fn publish_future(config: Config) -> impl Future<Output = Result<usize, String>> {
    async move { Ok(config.queue.len()) }
}

#[instrument_queue_process(destination = config.queue, system = "rabbitmq", headers_param = "headers")]
fn process_boxed<'a>(
    config: &'a Config,
    headers: &'a HashMap<String, String>,
) -> Pin<Box<dyn Future<Output = Result<usize, String>> + Send + 'a>> {
    Box::pin(async move { Ok(config.queue.len() + headers.len()) })
}

#[instrument_queue_process(destination = config.queue_name(), system = "rabbitmq")]
fn process_owned(config: Config) -> usize {
    let taken = config;
    taken.queue.len()
}

struct Worker {
    config: Config,
    handled: u32,
}

impl Worker {
    #[instrument_queue_process(
        destination = self.config.queue.as_str(),
        system = "rabbitmq",
        headers_param = "headers",
        retry_count_param = "attempt"
    )]
    async fn handle(
        &mut self,
        headers: &HashMap<String, String>,
        attempt: u8,
    ) -> Result<u32, String> {
        std::future::ready(()).await;
        let _ = (headers, attempt);
        self.handled += 1;
        Ok(self.handled)
    }

    #[instrument_db_operation(
        "users",
        "select",
        db_name = self.config.database,
        server = (self.config.host.as_str(), self.config.port)
    )]
    fn count(&mut self) -> Result<u32, String> {
        self.handled += 1;
        Ok(self.handled)
    }

    #[instrument_db_operation(
        query = "DELETE FROM users WHERE id = $1",
        db_name = &self.config.database,
        server = (&self.config.host, 5432)
    )]
    async fn delete(&self, id: u32) -> Result<u32, String> {
        std::future::ready(()).await;
        Ok(id)
    }
}

#[instrument_db_operation(query_param = "sql", db_name = config.database.clone(), server = (config.host.clone(), config.port))]
fn run_owned(config: Config, sql: &str) -> Result<usize, String> {
    let taken = config;
    Ok(taken.database.len() + sql.len())
}

#[instrument_db_operation("users", "select", db_name = database, server = ("db.internal", port))]
fn select_on(database: &str, port: u16) -> Result<usize, String> {
    Ok(database.len() + usize::from(port))
}

fn config() -> Config {
    Config {
        queue: "jobs-eu".to_owned(),
        database: "app".to_owned(),
        host: "db.internal".to_owned(),
        port: 5432,
    }
}

fn exercise() {
    let mut headers = HashMap::new();
    publish_const(&mut headers).unwrap();
    assert_eq!(block_on(publish_param("jobs", vec![1, 2])), Ok(2));
    assert_eq!(block_on(publish_future(config())), Ok(7));
    let c = config();
    assert!(block_on(process_boxed(&c, &headers)).is_ok());
    assert_eq!(process_owned(config()), 7);
    let mut worker = Worker {
        config: config(),
        handled: 0,
    };
    assert_eq!(block_on(worker.handle(&headers, 1)), Ok(1));
    assert_eq!(worker.count(), Ok(2));
    assert_eq!(block_on(worker.delete(3)), Ok(3));
    assert_eq!(run_owned(config(), "SELECT 1"), Ok(11));
    assert_eq!(select_on("app", 1), Ok(4));
}

fn main() {
    exercise();
    let txs = common::capture(|| common::in_transaction("ui", exercise));
    assert!(!txs.is_empty());
}
