// `#[instrument_db_operation]` on every function shape (sync, async, `-> impl Future`, methods
// on `&self` and `&mut self`) and with every argument form: table and operation by position or
// by name, any case; a verbatim `query`; a `query_param` of any text type; `system`, `db_name`
// and `crate`. Each is called with and without a recorded span.
#![deny(warnings)]

#[path = "../../common/mod.rs"]
mod common;

use std::borrow::Cow;
use std::future::Future;

use futures::executor::block_on;
use insights_runtime::instrument_db_operation;

#[instrument_db_operation("users", "select")]
fn by_position() -> Result<u32, String> {
    Ok(1)
}

#[instrument_db_operation(
    operation = "INSERT",
    table = "users",
    system = "sqlite",
    db_name = "app"
)]
fn by_name() -> Result<u32, String> {
    Ok(2)
}

#[instrument_db_operation("users", "upsert", system = "postgresql")]
fn positional_then_named(rows: &[u32]) -> usize {
    rows.len()
}

#[instrument_db_operation(query = "SELECT email FROM users WHERE id = $1", table = "users")]
async fn verbatim_async(id: u64) -> Result<Option<String>, std::io::Error> {
    Ok(Some(format!("user{id}@example.com")))
}

// Any operation name goes with a query.
#[instrument_db_operation(query = "VACUUM", operation = "vacuum")]
fn any_operation_with_query() {}

#[instrument_db_operation(query_param = "sql")]
fn param_str(sql: &str) -> Result<usize, String> {
    Ok(sql.len())
}

#[instrument_db_operation(query_param = "sql", table = "orders", operation = "merge")]
fn param_string(sql: String) -> Result<usize, String> {
    Ok(sql.len())
}

#[instrument_db_operation(query_param = "sql")]
fn param_ref_string(sql: &String) -> usize {
    sql.len()
}

#[instrument_db_operation(query_param = "sql")]
fn param_cow(sql: Cow<'_, str>) -> usize {
    sql.len()
}

#[instrument_db_operation(query_param = "sql")]
async fn param_async(sql: String, limit: u32) -> Result<usize, String> {
    std::future::ready(()).await;
    Ok(sql.len() + limit as usize)
}

// The query is read when the span starts, before the returned future takes the parameter.
#[instrument_db_operation(query_param = "sql", system = "sqlite")]
fn param_future(sql: String) -> impl Future<Output = Result<usize, String>> {
    async move { Ok(sql.len()) }
}

#[instrument_db_operation("sessions", "delete", crate = insights_runtime)]
fn with_crate() -> Result<u32, String> {
    Ok(3)
}

#[instrument_db_operation(crate = insights_runtime, query_param = "sql")]
async fn with_crate_first(sql: &str) -> Result<usize, String> {
    Ok(sql.len())
}

struct Repo {
    rows: Vec<String>,
}

impl Repo {
    #[instrument_db_operation("users", "select")]
    fn count(&self) -> Result<usize, String> {
        Ok(self.rows.len())
    }

    #[instrument_db_operation("users", "insert")]
    fn insert(&mut self, name: &str) -> Result<usize, String> {
        self.rows.push(name.to_owned());
        Ok(self.rows.len())
    }

    #[instrument_db_operation(query_param = "sql")]
    async fn run(&self, sql: &str) -> Result<usize, String> {
        Ok(self.rows.len() + sql.len())
    }

    #[instrument_db_operation("users", "update")]
    fn first_mut(&mut self) -> Option<&mut String> {
        self.rows.first_mut()
    }
}

fn exercise() {
    assert_eq!(by_position(), Ok(1));
    assert_eq!(by_name(), Ok(2));
    assert_eq!(positional_then_named(&[1, 2]), 2);
    any_operation_with_query();
    assert_eq!(param_str("SELECT 1"), Ok(8));
    assert_eq!(param_string("SELECT 1".to_owned()), Ok(8));
    assert_eq!(param_ref_string(&"SELECT 1".to_owned()), 8);
    assert_eq!(param_cow(Cow::Borrowed("SELECT 1")), 8);
    assert_eq!(with_crate(), Ok(3));
    let mut repo = Repo { rows: Vec::new() };
    assert_eq!(repo.insert("ada"), Ok(1));
    assert_eq!(repo.count(), Ok(1));
    repo.first_mut().expect("a row").push('!');
    block_on(async {
        assert!(verbatim_async(1).await.expect("ok").is_some());
        assert_eq!(param_async("SELECT 1".to_owned(), 2).await, Ok(10));
        assert_eq!(param_future("SELECT 1".to_owned()).await, Ok(8));
        assert_eq!(with_crate_first("SELECT 1").await, Ok(8));
        assert_eq!(repo.run("SELECT 1").await, Ok(9));
    });
}

/// Runs `f` under a sampled transaction; returns the ops of the spans recorded.
fn recorded(f: impl FnOnce()) -> Vec<String> {
    common::capture(|| common::in_transaction("ui", f))
        .into_iter()
        .flat_map(|t| t.spans.into_iter().filter_map(|s| s.op))
        .collect()
}

fn main() {
    exercise();
    let ops = recorded(exercise);
    assert_eq!(ops.len(), 17, "{ops:?}");
    assert!(ops.iter().all(|op| op == "db"), "{ops:?}");
}
