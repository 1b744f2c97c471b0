//! Query source: where a db span's query was issued (`code.filepath`, `code.lineno`,
//! `code.function`, `code.namespace` and the registry's newer `code.file.path`,
//! `code.line.number`), and the process-wide setting that turns it off or sets a threshold.
//!
//! One test: the setting is process-wide, and tests in one binary run in parallel.

mod common;

use std::time::Duration;

use common::{capture_one, span};
use futures::executor::block_on;
use insights_runtime::db::{self, CodeLocation, Operation, Query, QuerySource};
use insights_runtime::instrument_db_operation;
use sentry::protocol::{Span, Value};

const SOURCE_KEYS: [&str; 6] = [
    "code.filepath",
    "code.file.path",
    "code.lineno",
    "code.line.number",
    "code.function",
    "code.namespace",
];

/// The line of `load_user`'s attribute.
const LOAD_USER_LINE: u32 = line!() + 2;

#[instrument_db_operation(query = "SELECT * FROM users WHERE id = $1", table = "users")]
fn load_user(id: u64) -> Result<u64, String> {
    Ok(id)
}

#[instrument_db_operation("users", "update")]
async fn slow_update(pause: Duration) -> Result<(), String> {
    std::thread::sleep(pause);
    Ok(())
}

mod repository {
    use insights_runtime::instrument_db_operation;

    pub struct Users;

    impl Users {
        #[instrument_db_operation("users", "delete")]
        pub fn remove(&self) {}
    }
}

fn source_keys(s: &Span) -> Vec<&'static str> {
    SOURCE_KEYS
        .into_iter()
        .filter(|k| s.data.contains_key(*k))
        .collect()
}

fn str_data<'a>(s: &'a Span, key: &str) -> Option<&'a str> {
    s.data.get(key).and_then(Value::as_str)
}

#[test]
fn query_source_on_off_and_threshold() {
    assert_eq!(db::query_source(), QuerySource::On, "on by default");

    // On: the attribute's file, line, function and module.
    let tx = capture_one(|| {
        assert_eq!(load_user(7), Ok(7));
        repository::Users.remove();
    });
    let s = span(&tx, "SELECT * FROM users WHERE id = $1");
    assert_eq!(source_keys(s), SOURCE_KEYS);
    assert_eq!(str_data(s, "code.filepath"), Some("tests/query_source.rs"));
    assert_eq!(str_data(s, "code.file.path"), Some("tests/query_source.rs"));
    assert_eq!(
        s.data.get("code.lineno"),
        Some(&Value::from(LOAD_USER_LINE))
    );
    assert_eq!(
        s.data.get("code.line.number"),
        Some(&Value::from(LOAD_USER_LINE))
    );
    assert_eq!(str_data(s, "code.function"), Some("load_user"));
    assert_eq!(str_data(s, "code.namespace"), Some("query_source"));
    let method = span(&tx, "DELETE FROM users");
    assert_eq!(str_data(method, "code.function"), Some("remove"));
    assert_eq!(
        str_data(method, "code.namespace"),
        Some("query_source::repository")
    );

    // A builder: the caller's file and line; a location given in full.
    static HERE: CodeLocation = CodeLocation::new("src/users.rs", 12, "find_user", "shop::users");
    let mut builder_line = 0;
    let tx = capture_one(|| {
        builder_line = line!() + 1;
        Query::sql("SELECT 1").start().finish();
        Query::sql("SELECT 2").location(&HERE).start().finish();
    });
    let s = span(&tx, "SELECT 1");
    assert_eq!(str_data(s, "code.filepath"), Some("tests/query_source.rs"));
    assert_eq!(s.data.get("code.lineno"), Some(&Value::from(builder_line)));
    assert_eq!(source_keys(s), &SOURCE_KEYS[..4]);
    let s = span(&tx, "SELECT 2");
    assert_eq!(str_data(s, "code.filepath"), Some("src/users.rs"));
    assert_eq!(s.data.get("code.line.number"), Some(&Value::from(12)));
    assert_eq!(str_data(s, "code.function"), Some("find_user"));
    assert_eq!(str_data(s, "code.namespace"), Some("shop::users"));

    // Off: no query source on any db span; the rest of the data as before.
    db::set_query_source(QuerySource::Off);
    let tx = capture_one(|| {
        assert_eq!(load_user(7), Ok(7));
        Query::table_operation("users", Operation::Select)
            .start()
            .finish();
    });
    assert_eq!(tx.spans.len(), 2);
    for s in &tx.spans {
        assert_eq!(source_keys(s), Vec::<&str>::new(), "{:#?}", s.data);
        assert_eq!(str_data(s, "db.operation"), Some("SELECT"));
    }

    // A threshold: only spans that lasted at least that long, checked when they finish, in
    // sync and async code, for the attribute and the builders.
    db::set_query_source(QuerySource::AtLeast(Duration::from_millis(50)));
    let tx = capture_one(|| {
        assert_eq!(load_user(7), Ok(7));
        assert_eq!(
            block_on(slow_update(Duration::from_millis(80))),
            Ok(()),
            "slow"
        );
        assert_eq!(block_on(slow_update(Duration::ZERO)), Ok(()));
        let slow = Query::sql("SELECT pg_sleep(0.08)").start();
        std::thread::sleep(Duration::from_millis(80));
        slow.finish_with_outcome(&Ok::<_, ()>(()));
        Query::sql("SELECT 4").start().finish();
    });
    let fast = span(&tx, "SELECT * FROM users WHERE id = $1");
    assert_eq!(source_keys(fast), Vec::<&str>::new());
    let updates: Vec<&Span> = tx
        .spans
        .iter()
        .filter(|s| s.description.as_deref() == Some("UPDATE users SET changed = $1"))
        .collect();
    assert_eq!(updates.len(), 2);
    assert_eq!(source_keys(updates[0]), SOURCE_KEYS, "the slow update");
    assert_eq!(str_data(updates[0], "code.function"), Some("slow_update"));
    assert_eq!(source_keys(updates[1]), Vec::<&str>::new(), "the fast one");
    let slow = span(&tx, "SELECT pg_sleep(0.08)");
    assert_eq!(source_keys(slow), &SOURCE_KEYS[..4]);
    assert_eq!(source_keys(span(&tx, "SELECT 4")), Vec::<&str>::new());

    db::set_query_source(QuerySource::On);
    assert_eq!(db::query_source(), QuerySource::On);
}
