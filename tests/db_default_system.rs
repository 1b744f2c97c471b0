//! The process-wide default `db.system` (its own test binary: it changes process state).

mod common;

use common::capture_one;
use insights_runtime::db;
use insights_runtime::instrument_db_operation;
use sentry::protocol::Value;

#[instrument_db_operation("orders", "select")]
fn list_orders() -> Vec<u32> {
    vec![]
}

#[test]
fn the_default_system_is_set_once_and_used_by_every_span() {
    assert_eq!(db::default_system(), "postgresql");
    let tx = capture_one(|| drop(list_orders()));
    assert_eq!(
        tx.spans[0].description.as_deref(),
        Some("SELECT * FROM orders")
    );
    assert_eq!(
        tx.spans[0].data.get("db.system"),
        Some(&Value::from("postgresql"))
    );

    db::set_default_system("mysql").expect("first call");
    assert_eq!(
        db::set_default_system("sqlite"),
        Err(db::AlreadySet("mysql"))
    );
    assert_eq!(db::default_system(), "mysql");

    let tx = capture_one(|| drop(list_orders()));
    // `order` is reserved; `orders` is not, and MySQL quotes with backticks only when needed.
    assert_eq!(
        tx.spans[0].description.as_deref(),
        Some("SELECT * FROM orders")
    );
    assert_eq!(
        tx.spans[0].data.get("db.system"),
        Some(&Value::from("mysql"))
    );
    let filtered = db::Query::table_operation("order", db::Operation::Update).filters(&["id"]);
    assert_eq!(
        filtered.description(),
        "UPDATE `order` SET changed = ? WHERE id = ?"
    );
}
