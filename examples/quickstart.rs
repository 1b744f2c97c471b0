//! Quick start: `#[traced]` on sync and async functions, with nothing installed.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! Without `SENTRY_DSN` the spans are printed as trees on standard error by the console sink
//! (`insights_runtime::console`); with `SENTRY_DSN` set they go to that Sentry project.

use std::time::Duration;

use insights_runtime::traced;

#[derive(Debug)]
struct Order {
    id: u64,
    lines: Vec<u32>,
}

/// A nightly batch job: outside any request, so it starts its own transaction.
#[traced(transaction = "nightly-invoicing", op = "batch")]
async fn nightly_invoicing(orders: Vec<Order>) -> Result<u32, String> {
    let mut total = 0;
    for order in &orders {
        total += invoice(order).await?;
    }
    archive(orders.len());
    Ok(total)
}

#[traced(op = "function", data(order.id = order.id, order.lines = order.lines.len()))]
async fn invoice(order: &Order) -> Result<u32, String> {
    tokio::time::sleep(Duration::from_millis(2)).await;
    let sum = price(&order.lines)?;
    Ok(sum)
}

/// Sync work inside an async span nests under it.
#[traced]
fn price(lines: &[u32]) -> Result<u32, String> {
    lines
        .iter()
        .try_fold(0u32, |acc, l| acc.checked_add(*l))
        .ok_or_else(|| "overflow".to_owned())
}

#[traced(op = "file", description = "write archive")]
fn archive(count: usize) {
    std::thread::sleep(Duration::from_millis(1));
    let _ = count;
}

fn main() {
    let _sentry = match std::env::var("SENTRY_DSN") {
        Ok(dsn) if !dsn.is_empty() => sentry::init((
            dsn,
            sentry::ClientOptions::new()
                .traces_sample_rate(1.0)
                .release(concat!(
                    env!("CARGO_PKG_NAME"),
                    "@",
                    env!("CARGO_PKG_VERSION")
                )),
        )),
        _ => sentry::init(insights_runtime::console::client_options()),
    };

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime");
    let orders = vec![
        Order {
            id: 1,
            lines: vec![3, 4],
        },
        Order {
            id: 2,
            lines: vec![10],
        },
    ];
    match runtime.block_on(nightly_invoicing(orders)) {
        Ok(total) => println!("invoiced {total}"),
        Err(e) => println!("invoicing failed: {e}"),
    }
}
