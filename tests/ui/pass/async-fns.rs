// `async fn` of every return shape.
#![deny(warnings)]
#![deny(unsafe_op_in_unsafe_fn)]

use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;

use futures::executor::block_on;
use insights_runtime::traced;

#[traced]
async fn no_return() {}

#[traced]
async fn returns_value(a: u32, b: u32) -> u32 {
    std::future::ready(()).await;
    a + b
}

#[traced]
async fn returns_result(
    items: &[&str],
    stop_at_empty: bool,
) -> Result<u32, std::num::ParseIntError> {
    let mut total = 0;
    for item in items {
        if stop_at_empty && item.is_empty() {
            return Ok(total);
        }
        total += item.parse::<u32>()?;
        std::future::ready(()).await;
    }
    Ok(total)
}

#[traced]
async fn returns_impl_trait_in_result(fail: bool) -> Result<impl Display, String> {
    if fail {
        return Err("failed".to_owned());
    }
    Ok(42)
}

#[traced]
async fn returns_impl_trait() -> impl Display {
    "shown"
}

#[traced]
async fn returns_boxed_future() -> Pin<Box<dyn Future<Output = u32> + Send>> {
    // Coerced from `Pin<Box<impl Future>>` to the declared trait object.
    Box::pin(async { 3 })
}

#[traced]
async fn returns_box_dyn(text: String) -> Box<dyn Display> {
    Box::new(text)
}

#[traced]
async fn borrows_argument(text: &str) -> &str {
    std::future::ready(()).await;
    text.trim()
}

/// Reads through a raw pointer.
///
/// # Safety
///
/// `p` must be valid for reads until the future completes.
#[traced]
async unsafe fn read(p: *const u32) -> u32 {
    // SAFETY: the caller's promise.
    unsafe { *p }
}

#[traced]
pub async fn public_async() -> u32 {
    4
}

#[traced]
async fn calls_other_instrumented() -> Result<u32, String> {
    let value = returns_value(1, 1).await;
    let shown = returns_impl_trait_in_result(false).await?;
    Ok(value + shown.to_string().len() as u32)
}

#[traced]
async fn returns_send_future_check() -> u32 {
    let value = std::sync::Arc::new(5);
    std::future::ready(()).await;
    *value
}

fn assert_send<T: Send>(value: T) -> T {
    value
}

fn main() {
    block_on(async {
        no_return().await;
        assert_eq!(returns_value(1, 2).await, 3);
        assert_eq!(returns_result(&["1", "2"], false).await, Ok(3));
        assert_eq!(returns_result(&["1", "", "x"], true).await, Ok(1));
        assert!(returns_result(&["x"], false).await.is_err());
        assert_eq!(
            returns_impl_trait_in_result(false)
                .await
                .unwrap()
                .to_string(),
            "42"
        );
        assert!(returns_impl_trait_in_result(true).await.is_err());
        assert_eq!(returns_impl_trait().await.to_string(), "shown");
        assert_eq!(returns_boxed_future().await.await, 3);
        assert_eq!(returns_box_dyn("t".to_owned()).await.to_string(), "t");
        assert_eq!(borrows_argument(" a ").await, "a");
        let value = 7;
        // SAFETY: `value` outlives the future.
        assert_eq!(unsafe { read(&value) }.await, 7);
        assert_eq!(public_async().await, 4);
        assert_eq!(calls_other_instrumented().await, Ok(4));
        assert_eq!(assert_send(returns_send_future_check()).await, 5);
        assert_eq!(assert_send(returns_value(0, 0)).await, 0);
    });
}
