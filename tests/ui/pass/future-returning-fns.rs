// Non-async functions that return a future: the returned future is wrapped.
#![deny(warnings)]

use std::future::Future;
use std::pin::Pin;

use futures::executor::block_on;
use futures::future::BoxFuture;
use insights_runtime::traced;

#[traced]
fn async_move_tail(id: u64) -> impl Future<Output = u64> + Send {
    let doubled = id * 2;
    let label = format!("id {id}");
    async move {
        std::future::ready(()).await;
        doubled + label.len() as u64
    }
}

#[traced]
fn async_tail_borrowing<'a>(text: &'a str) -> impl Future<Output = usize> + 'a {
    async { text.len() }
}

#[traced]
fn question_mark_inside(
    text: String,
) -> impl Future<Output = Result<u32, std::num::ParseIntError>> + Send {
    async move {
        let n: u32 = text.parse()?;
        if n == 0 {
            return Ok(0);
        }
        Ok(n + 1)
    }
}

#[traced]
fn question_mark_boxed_error(
    text: String,
) -> impl Future<Output = Result<u32, Box<dyn std::error::Error + Send + Sync>>> {
    async move { Ok(text.parse::<u32>()?) }
}

#[traced]
fn impl_trait_output(n: u32) -> impl Future<Output = Result<impl std::fmt::Display, String>> {
    async move { Ok(n) }
}

#[traced]
fn box_pin(id: u64) -> Pin<Box<dyn Future<Output = u64> + Send + 'static>> {
    let offset = 1;
    Box::pin(async move { id + offset })
}

#[traced]
fn std_box_pin(
    id: u64,
) -> std::pin::Pin<std::boxed::Box<dyn std::future::Future<Output = u64> + Send>> {
    std::boxed::Box::pin(async move { id + 2 })
}

#[traced]
fn box_pin_question_mark(
    text: String,
) -> Pin<Box<dyn Future<Output = Result<u32, std::num::ParseIntError>> + Send>> {
    Box::pin(async move { Ok(text.parse::<u32>()? * 2) })
}

#[traced]
fn box_pin_coerced_variable() -> Pin<Box<dyn Future<Output = u32>>> {
    // Not a `Box::pin(..)` call: the returned value is wrapped and boxed again.
    let future = Box::pin(async { 3 });
    future
}

#[traced]
fn box_future(id: u64) -> BoxFuture<'static, u64> {
    Box::pin(async move { id })
}

#[traced]
fn ready_tail() -> impl Future<Output = u32> {
    std::future::ready(1)
}

#[traced]
fn ready_tail_unpin() -> impl Future<Output = u32> + Unpin + Send + Sync {
    std::future::ready(2)
}

#[traced]
fn calls_async_fn() -> impl Future<Output = u32> {
    helper(4)
}

async fn helper(n: u32) -> u32 {
    n
}

#[traced]
fn core_future_path() -> impl core::future::Future<Output = u8> {
    async { 5 }
}

#[traced]
fn output_not_written() -> impl Future {
    async { 6 }
}

struct Client {
    base: u64,
}

impl Client {
    #[traced]
    fn fetch(&self, id: u64) -> impl Future<Output = u64> + Send + '_ {
        async move { self.base + id }
    }

    #[traced]
    fn fetch_boxed(&self, id: u64) -> Pin<Box<dyn Future<Output = u64> + Send + '_>> {
        Box::pin(async move { self.base + id })
    }
}

trait Fetch {
    fn fetch_one(&self) -> impl Future<Output = u64> + Send;
}

impl Fetch for Client {
    #[traced]
    fn fetch_one(&self) -> impl Future<Output = u64> + Send {
        let base = self.base;
        async move { base + 1 }
    }
}

fn assert_send<T: Send>(value: T) -> T {
    value
}

fn main() {
    block_on(async {
        assert_eq!(assert_send(async_move_tail(1)).await, 6);
        assert_eq!(async_tail_borrowing("abc").await, 3);
        assert_eq!(question_mark_inside("1".to_owned()).await, Ok(2));
        assert_eq!(question_mark_inside("0".to_owned()).await, Ok(0));
        assert!(question_mark_inside("x".to_owned()).await.is_err());
        assert_eq!(question_mark_boxed_error("3".to_owned()).await.unwrap(), 3);
        assert_eq!(impl_trait_output(4).await.unwrap().to_string(), "4");
        assert_eq!(box_pin(1).await, 2);
        assert_eq!(std_box_pin(1).await, 3);
        assert_eq!(box_pin_question_mark("2".to_owned()).await, Ok(4));
        assert_eq!(box_pin_coerced_variable().await, 3);
        assert_eq!(box_future(9).await, 9);
        assert_eq!(ready_tail().await, 1);
        assert_eq!(ready_tail_unpin().await, 2);
        assert_eq!(calls_async_fn().await, 4);
        assert_eq!(core_future_path().await, 5);
        output_not_written().await;
        let client = Client { base: 10 };
        assert_eq!(client.fetch(1).await, 11);
        assert_eq!(client.fetch_boxed(2).await, 12);
        assert_eq!(client.fetch_one().await, 11);
    });
}
