//! The cost of the automatic integrations against a real PostgreSQL on loopback: a trivial
//! query through `insights_runtime::sqlx::Traced` and `insights_runtime::postgres::Client`,
//! next to the same query on the bare pool or client, in one run.
//!
//! ```text
//! cargo bench --features services --bench integrations           # full: 15 rounds
//! BENCH_QUICK=1 cargo bench --features services --bench integrations
//! ```
//!
//! Every trace is sampled and a transaction is current, so each traced query records its span
//! (the costliest case; with Sentry off the wrapper only checks for a client). Envelopes go to
//! a transport that drops them. In a round the cases take turns, `BATCH` queries at a time on
//! a connection of their own, in an order that rotates from turn to turn; the table gives the
//! median time per query over the rounds, and for each pair the median of the per-round ratios
//! (with their range) and the ratio of the medians. It prints a verdict against the issue's target (under 1.05 ×) and exits 0
//! whatever it is: a measurement, not a test. It fails only when PostgreSQL is not reachable.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sentry::{ClientOptions, Envelope, TransactionContext, Transport};

/// A transport that drops every envelope: the bench measures the service's side only.
struct Discard;

impl Transport for Discard {
    fn send_envelope(&self, envelope: Envelope) {
        drop(envelope);
    }
}

/// Queries per transaction: well under sentry's 1,000-span cap, so no span is dropped unseen.
const PER_TRANSACTION: usize = 250;

/// Queries a case runs before the next case takes its turn.
const BATCH: usize = 50;

/// The machine's 1-minute load average, for the report.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// The statement each case runs, prepared once by both clients and both pools' caches.
const SQL: &str = "SELECT 1::int4";

/// [`SQL`] once through `executor`: the same code for the bare pool, its control and the
/// `Traced` pool.
async fn select_one<'e, E>(executor: E)
where
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    let one: i32 = sqlx::query_scalar(SQL)
        .fetch_one(executor)
        .await
        .unwrap_or_default();
    std::hint::black_box(one);
}

/// One case: runs `n` queries and returns how long they took.
type Case<'a> = (&'static str, Box<dyn Fn(usize) -> Duration + 'a>);

/// Runs `query` `n` times under sampled transactions of `PER_TRANSACTION` queries, timing only
/// the queries.
fn timed<F>(rt: &tokio::runtime::Runtime, n: usize, query: F) -> Duration
where
    F: AsyncFn(),
{
    let mut spent = Duration::ZERO;
    let mut done = 0;
    while done < n {
        let chunk = PER_TRANSACTION.min(n - done);
        let tx = sentry::start_transaction(TransactionContext::new("bench", "bench"));
        sentry::configure_scope(|s| s.set_span(Some(tx.clone().into())));
        let started = Instant::now();
        rt.block_on(async {
            for _ in 0..chunk {
                query().await;
            }
        });
        spent += started.elapsed();
        sentry::configure_scope(|s| s.set_span(None));
        tx.finish();
        done += chunk;
    }
    spent
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let (rounds, queries) = if quick { (3, 200) } else { (15, 2_000) };

    let mut options = ClientOptions::new().traces_sample_rate(1.0);
    options.transport = Some(Arc::new(|_: &ClientOptions| {
        Arc::new(Discard) as Arc<dyn Transport>
    }));
    let _sentry = sentry::init(options);
    // Current-thread: the queries run on this thread, under its hub and its transaction.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let url = database_url();
    let hint = "the bench needs PostgreSQL (README, \"Real services\"; DATABASE_URL)";

    // One connection, shared by the bare and the traced case of each driver (a pool of one
    // and its `Traced` wrapper; a client and the wrapper around it, reached bare through
    // `get_ref`), so that both go to the same server process the same way.
    let (pool, wrapped) = rt.block_on(async {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .map_err(|e| format!("{hint}: {e}"))?;
        let config: tokio_postgres::Config = url.parse()?;
        let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        let wrapped = insights_runtime::postgres::Client::new(client, &config);
        Ok::<_, Box<dyn std::error::Error>>((pool, wrapped))
    })?;
    let traced = insights_runtime::sqlx::Traced::new(pool.clone());
    let client = wrapped.get_ref();

    let cases: Vec<Case<'_>> = vec![
        (
            "sqlx, bare pool",
            Box::new(|n| timed(&rt, n, async || select_one(&pool).await)),
        ),
        (
            "sqlx, bare pool (control)",
            Box::new(|n| timed(&rt, n, async || select_one(&pool).await)),
        ),
        (
            "sqlx, Traced pool",
            Box::new(|n| timed(&rt, n, async || select_one(&traced).await)),
        ),
        (
            "tokio-postgres, bare client",
            Box::new(|n| {
                timed(&rt, n, async || {
                    let row = client.query_one(SQL, &[]).await.ok();
                    std::hint::black_box(row);
                })
            }),
        ),
        (
            "tokio-postgres, postgres::Client",
            Box::new(|n| {
                timed(&rt, n, async || {
                    let row = wrapped.query_one(SQL, &[]).await.ok();
                    std::hint::black_box(row);
                })
            }),
        ),
    ];

    // Warm-up: connections, prepared statements, allocator.
    for (_, case) in &cases {
        case(queries / 4);
    }
    // Within a round the cases take turns in batches, in an order that rotates from batch to
    // batch, so that a change of load on the machine falls on every case alike.
    let batches = queries / BATCH;
    let load_before = load_average();
    let mut per_query: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for _ in 0..rounds {
        let mut spent = vec![Duration::ZERO; cases.len()];
        for batch in 0..batches {
            for k in 0..cases.len() {
                let i = (batch + k) % cases.len();
                spent[i] += cases[i].1(BATCH);
            }
        }
        for (i, spent) in spent.iter().enumerate() {
            per_query[i].push(spent.as_secs_f64() * 1e6 / (batches * BATCH) as f64);
        }
    }

    println!(
        "integrations vs bare drivers, PostgreSQL on loopback ({} mode: {rounds} rounds of {} queries per case, in turns of {BATCH}; every query sampled; load average {load_before} before, {} after)",
        if quick { "QUICK" } else { "full" },
        batches * BATCH,
        load_average(),
    );
    println!();
    println!("| case | median µs per query |");
    println!("|---|---|");
    for (i, (name, _)) in cases.iter().enumerate() {
        println!("| {name} | {:.1} |", median(per_query[i].clone()));
    }
    println!();
    println!("| target | median of per-round ratios (range) | ratio of medians | verdict |");
    println!("|---|---|---|---|");
    for (traced, bare, what, target) in [
        (1, 0, "control: sqlx bare pool, twice", None),
        (2, 0, "sqlx: Traced ≤ 1.05 × bare", Some(1.05)),
        (4, 3, "tokio-postgres: Client ≤ 1.05 × bare", Some(1.05)),
    ] {
        let of_medians = median(per_query[traced].clone()) / median(per_query[bare].clone());
        let rounds: Vec<f64> = per_query[traced]
            .iter()
            .zip(&per_query[bare])
            .map(|(t, b)| t / b)
            .collect();
        let low = rounds.iter().copied().fold(f64::INFINITY, f64::min);
        let high = rounds.iter().copied().fold(0.0, f64::max);
        let paired = median(rounds);
        let verdict = match target {
            Some(limit) if paired <= limit => "pass",
            Some(_) => "FAIL",
            None => "(noise floor)",
        };
        println!("| {what} | {paired:.3} ({low:.3}–{high:.3}) | {of_medians:.3} | {verdict} |");
    }
    Ok(())
}
