//! Quick start: Queries, Caches and Queues spans from attributes, with nothing installed.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! A nightly invoicing job over an embedded SQLite database, an in-process cache (`moka`) and
//! an in-process queue (a tokio channel) to an e-mail worker task. Three kinds of transaction:
//!
//! * `seed-database` (a sync `#[traced(transaction = ..)]`): `db` spans, `db.system` `sqlite`;
//! * `nightly-invoicing` (an async one): a failing query (`internal_error`), then per order a
//!   read-through cache (`cache.get` miss → `SELECT` → `cache.put`; later a `cache.get` hit)
//!   and a `queue.publish` span that writes the trace into the message's headers;
//! * `invoice-emails` (op `queue.task`, one a message, with a `queue.process` span): the
//!   worker, continuing the job's trace from the headers.
//!
//! Without `SENTRY_DSN` the console sink prints each transaction as a span tree on standard
//! error when it finishes; the `job:`/`worker:` lines and the summary go to standard output.
//! Abridged (durations and trace ids vary; `{..}` is the span data):
//!
//! ```text
//! transaction seed-database  op=task  0.39ms  ok
//!   db CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL)  0.21ms  ok  {db.system="sqlite"}
//!   db INSERT INTO customers (id, name) VALUES (?1, ?2)  0.03ms  ok  {db.operation="INSERT", db.sql.table="customers", db.system="sqlite"}
//!   db INSERT INTO customers (id, name) VALUES (?1, ?2)  0.01ms  ok  {..}
//! job: trace cdd893191806192702edc142cf2b9aea
//! transaction nightly-invoicing  op=batch  0.44ms  ok
//!   db SELECT customer_id, percent FROM discounts  0.02ms  internal_error  {..}
//!   function invoice  0.19ms  ok  {order.id=1, order.lines=2}
//!     cache.get customer:1  0.05ms  ok  {cache.hit=false, cache.key=["customer:1"]}
//!     db SELECT name FROM customers WHERE id = ?1  0.02ms  ok  {..}
//!     cache.put customer:1  0.02ms  ok  {cache.item_size=3, cache.key=["customer:1"], cache.ttl=300}
//!     function price  0.00ms  ok
//!     queue.publish invoice-emails  0.04ms  ok  {messaging.destination.name="invoice-emails", messaging.message.id="1", ..}
//!   function invoice ...                              (order 2: the same for customer 2)
//!   function invoice  0.05ms  ok  {order.id=3, order.lines=1}
//!     cache.get customer:1  0.01ms  ok  {cache.hit=true, cache.item_size=3, cache.key=["customer:1"]}
//!     function price  0.00ms  ok
//!     queue.publish invoice-emails  0.01ms  ok  {..}
//! worker: e-mailed invoice 1 in trace cdd893191806192702edc142cf2b9aea
//! transaction invoice-emails  op=queue.task  2.26ms  ok
//!   queue.process invoice-emails  2.25ms  ok  {messaging.message.id="1", messaging.message.receive.latency=0.46, ..}
//! (invoices 2 and 3 the same)
//! Summary { invoiced: 3, total_cents: 8050, emailed: 3 }
//! ```
//!
//! With `SENTRY_DSN=https://...` set, the same spans go to that Sentry project (see
//! [`insights_runtime::setup`] for the other `SENTRY_*` variables).

use std::collections::HashMap;
use std::time::Duration;

use insights_runtime::setup::{self, Settings};
use insights_runtime::{
    instrument_cache_operation, instrument_db_operation, instrument_queue_process,
    instrument_queue_publish, traced,
};
use moka::sync::Cache;
use rusqlite::{Connection, OptionalExtension};
use sentry::{Hub, SentryFutureExt};
use tokio::sync::mpsc;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// What travels on the queue: the trace rides in `headers`, as it would in a broker's.
#[derive(Debug)]
pub struct Message {
    pub id: u64,
    pub headers: HashMap<String, String>,
    pub body: String,
}

/// What the job works with.
struct Shop {
    db: Connection,
    cache: Cache<String, String>,
    queue: mpsc::Sender<Message>,
}

struct Order {
    id: u64,
    customer_id: i64,
    lines: Vec<u32>,
}

// ---- Queries: each call is a `db` span; an `Err` makes it `internal_error` -----------------

#[instrument_db_operation(query_param = "sql", system = "sqlite")]
fn execute(db: &Connection, sql: &str) -> rusqlite::Result<usize> {
    db.execute(sql, [])
}

#[instrument_db_operation(
    query = "INSERT INTO customers (id, name) VALUES (?1, ?2)",
    table = "customers",
    operation = "insert",
    system = "sqlite"
)]
fn insert_customer(db: &Connection, id: i64, name: &str) -> rusqlite::Result<usize> {
    let sql = "INSERT INTO customers (id, name) VALUES (?1, ?2)";
    db.execute(sql, (id, name))
}

#[instrument_db_operation(
    query = "SELECT name FROM customers WHERE id = ?1",
    table = "customers",
    operation = "select",
    system = "sqlite"
)]
fn select_customer(db: &Connection, id: i64) -> rusqlite::Result<Option<String>> {
    let sql = "SELECT name FROM customers WHERE id = ?1";
    db.query_row(sql, [id], |row| row.get(0)).optional()
}

/// Fails: there is no `discounts` table (yet).
#[instrument_db_operation(
    query = "SELECT customer_id, percent FROM discounts",
    table = "discounts",
    operation = "select",
    system = "sqlite"
)]
fn load_discounts(db: &Connection) -> rusqlite::Result<HashMap<i64, u32>> {
    let mut statement = db.prepare("SELECT customer_id, percent FROM discounts")?;
    let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    rows.collect()
}

// ---- Caches: `cache.get` records the hit (and size) from the returned `Option` ------------

#[instrument_cache_operation(get, key_param = "key")]
fn cache_get(cache: &Cache<String, String>, key: &str) -> Option<String> {
    cache.get(key)
}

#[instrument_cache_operation(put, key_param = "key", ttl = 300, value_param = "name")]
fn cache_put(cache: &Cache<String, String>, key: &str, name: &str) {
    cache.insert(key.to_owned(), name.to_owned());
}

/// Read-through: the cache first, the database on a miss.
fn customer_name(shop: &Shop, id: i64) -> Result<String, Error> {
    let key = format!("customer:{id}");
    if let Some(name) = cache_get(&shop.cache, &key) {
        return Ok(name);
    }
    let name = select_customer(&shop.db, id)?.ok_or_else(|| format!("no customer {id}"))?;
    cache_put(&shop.cache, &key, &name);
    Ok(name)
}

// ---- Queues: the producer writes the trace into the headers, the consumer continues it ----

#[instrument_queue_publish(
    destination = "invoice-emails",
    system = "tokio-mpsc",
    headers_param = "headers",
    message_id_param = "id",
    body_param = "body",
    transaction = "nightly-invoicing"
)]
async fn publish_invoice(
    queue: &mpsc::Sender<Message>,
    headers: &mut HashMap<String, String>,
    id: u64,
    body: String,
) -> Result<(), mpsc::error::SendError<Message>> {
    let headers = headers.clone(); // by now: sentry-trace, baggage, sentry-task-enqueued-time
    queue.send(Message { id, headers, body }).await
}

#[instrument_queue_process(
    destination = "invoice-emails",
    system = "tokio-mpsc",
    headers_param = "headers",
    message_id_param = "id",
    body_param = "body"
)]
async fn send_invoice_email(
    headers: &HashMap<String, String>,
    id: u64,
    body: &str,
) -> Result<(), Error> {
    let _ = (headers, body);
    tokio::time::sleep(Duration::from_millis(1)).await; // talking to the mail server
    println!("worker: e-mailed invoice {id} in trace {}", trace_id());
    Ok(())
}

/// Handles messages until the queue is closed; returns how many were sent.
async fn email_worker(mut inbox: mpsc::Receiver<Message>) -> usize {
    let mut sent = 0;
    while let Some(message) = inbox.recv().await {
        let outcome = send_invoice_email(&message.headers, message.id, &message.body).await;
        sent += usize::from(outcome.is_ok());
    }
    sent
}

// ---- `#[traced]`: transactions for the entry points, spans for the functions inside ------

const SCHEMA: &str = "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL)";

#[traced(transaction = "seed-database", op = "task")]
fn seed_database(db: &Connection) -> Result<(), Error> {
    execute(db, SCHEMA)?;
    insert_customer(db, 1, "Ada")?;
    insert_customer(db, 2, "Grace")?;
    Ok(())
}

#[traced(transaction = "nightly-invoicing", op = "batch")]
async fn nightly_invoicing(shop: &Shop, orders: &[Order]) -> Result<u32, Error> {
    println!("job: trace {}", trace_id());
    // Discounts are optional: the failed query is recorded, and the job carries on.
    let discounts = load_discounts(&shop.db).unwrap_or_default();
    let mut total = 0;
    for order in orders {
        let percent = discounts.get(&order.customer_id).copied().unwrap_or(0);
        total += invoice(shop, order).await? * (100 - percent) / 100;
    }
    Ok(total)
}

#[traced(data(order.id = order.id, order.lines = order.lines.len()))]
async fn invoice(shop: &Shop, order: &Order) -> Result<u32, Error> {
    let name = customer_name(shop, order.customer_id)?;
    let total = price(&order.lines)?;
    let body = format!(r#"{{"order":{},"to":"{name}","total":{total}}}"#, order.id);
    publish_invoice(&shop.queue, &mut HashMap::new(), order.id, body).await?;
    Ok(total)
}

/// Sync work inside an async span nests under it.
#[traced]
fn price(lines: &[u32]) -> Result<u32, String> {
    let sum = lines
        .iter()
        .try_fold(0u32, |acc, cents| acc.checked_add(*cents));
    sum.ok_or_else(|| "overflow".to_owned())
}

/// The trace of the current span (`-` when nothing is recorded).
fn trace_id() -> String {
    let span = sentry::configure_scope(|scope| scope.get_span());
    span.map_or("-".to_owned(), |s| {
        s.get_trace_context().trace_id.to_string()
    })
}

/// What a run did.
#[derive(Debug, PartialEq, Eq)]
pub struct Summary {
    pub invoiced: usize,
    pub total_cents: u32,
    pub emailed: usize,
}

/// The whole example, on the current tokio runtime: seeds the database, runs the job while
/// the worker drains the queue, and waits for the worker.
pub async fn run() -> Result<Summary, Error> {
    let (queue, inbox) = mpsc::channel(16);
    // A spawned task gets a hub of its own, forked from this one (as any `sentry` code does).
    let worker = tokio::spawn(email_worker(inbox).bind_hub(Hub::new_from_top(Hub::current())));
    let shop = Shop {
        db: Connection::open_in_memory()?,
        cache: Cache::builder()
            .time_to_live(Duration::from_secs(300))
            .build(),
        queue,
    };
    seed_database(&shop.db)?;

    let orders = [
        (1, 1, vec![1200, 2350]),
        (2, 2, vec![4000]),
        (3, 1, vec![500]),
    ];
    let orders = orders.map(|(id, customer_id, lines)| Order {
        id,
        customer_id,
        lines,
    });
    let total_cents = nightly_invoicing(&shop, &orders).await?;

    drop(shop); // closes the queue: the worker stops once it has handled every message
    let emailed = worker.await?;
    let invoiced = orders.len();
    Ok(Summary {
        invoiced,
        total_cents,
        emailed,
    })
}

fn main() -> Result<(), Error> {
    // Sentry from `SENTRY_*` variables; without `SENTRY_DSN`, the console sink stands in. Set
    // up before the async runtime starts; the guard flushes (at most 2 s) when dropped.
    let settings = Settings::from_env(insights_runtime::release!())?.console_without_dsn(true);
    let _sentry = setup::init(settings);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let summary = runtime.block_on(run())?;
    println!("{summary:?}");
    Ok(())
}
