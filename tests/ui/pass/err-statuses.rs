// Expected errors: an error type mapped once (`ErrorStatus`), and `err = "<status>"` on every
// attribute, on each function shape, behind aliases and with generic errors.
#![deny(warnings)]

use std::collections::HashMap;

use futures::executor::block_on;
use insights_runtime::status::{ErrorStatus, SpanStatus};
use insights_runtime::{
    instrument_cache_operation, instrument_db_operation, instrument_queue_process,
    instrument_queue_publish, traced,
};

#[derive(Debug)]
enum AppError {
    NotFound,
}

impl ErrorStatus for AppError {
    fn span_status(&self) -> SpanStatus {
        match self {
            AppError::NotFound => SpanStatus::NotFound,
        }
    }
}

type AppResult<T> = Result<T, AppError>;

#[traced]
fn mapped() -> AppResult<()> {
    Err(AppError::NotFound)
}

#[traced]
fn generic<E: ErrorStatus>(error: E) -> Result<(), E> {
    Err(error)
}

#[traced(err = "not_found")]
fn sync_err() -> AppResult<u8> {
    Ok(1)
}

#[traced(err = "ok")]
async fn async_err() -> Result<u8, String> {
    Ok(1)
}

#[traced(err = "deadline_exceeded")]
fn future_err() -> impl std::future::Future<Output = Result<u8, String>> {
    async { Ok(1) }
}

#[instrument_db_operation(query = "SELECT 1", err = "unavailable")]
async fn db_err() -> Result<u8, String> {
    Ok(1)
}

#[instrument_cache_operation(get, key_param = "key", err = "unavailable")]
fn cache_err(key: &str) -> Result<Option<String>, String> {
    let _ = key;
    Ok(None)
}

#[instrument_cache_operation(put, key_param = "key", err = "resource_exhausted")]
fn cache_put_err(key: &str) -> Result<(), String> {
    let _ = key;
    Ok(())
}

#[instrument_queue_publish(destination = "orders", system = "rabbitmq", err = "unavailable")]
fn publish_err(headers: &mut HashMap<String, String>) -> Result<(), String> {
    let _ = headers;
    Ok(())
}

#[instrument_queue_process(destination = "orders", system = "rabbitmq", err = "aborted")]
async fn process_err() -> Result<(), String> {
    Ok(())
}

#[traced(err = "not_found")]
fn diverges() -> Result<(), String> {
    panic!("never called")
}

fn main() {
    let _ = mapped();
    let _ = generic(AppError::NotFound);
    let _ = sync_err();
    let _ = block_on(async_err());
    let _ = block_on(future_err());
    let _ = block_on(db_err());
    let _ = cache_err("k");
    let _ = cache_put_err("k");
    let _ = publish_err(&mut HashMap::new());
    let _ = block_on(process_err());
    let _ = diverges as fn() -> Result<(), String>;
}
