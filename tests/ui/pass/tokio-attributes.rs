// `#[traced]` with tokio's attribute macros, in both orders.
#![deny(warnings)]

use insights_runtime::traced;

// Ours first: it instruments the `async fn`, then tokio turns it into a blocking fn.
#[traced]
#[tokio::main(flavor = "current_thread")]
async fn traced_outside(n: u32) -> u32 {
    tokio::task::yield_now().await;
    n + 1
}

// Tokio's first: it makes a blocking fn, which ours instruments as a sync fn.
#[tokio::main(flavor = "current_thread")]
#[traced]
async fn traced_inside(n: u32) -> Result<u32, String> {
    tokio::task::yield_now().await;
    Ok(n + 2)
}

#[traced(op = "main")]
#[tokio::main]
async fn main() {
    assert_eq!(tokio::spawn(async { 1 }).await.unwrap(), 1);
    let handle = std::thread::spawn(|| (traced_outside(1), traced_inside(1)));
    assert_eq!(handle.join().unwrap(), (2, Ok(3)));
}
