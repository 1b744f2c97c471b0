//! Database spans: `#[instrument_db_operation]`, the `db::Query` builder, and real SQLite
//! queries under them.

mod common;

use common::{assert_data, capture_one, root_id, span};
use futures::executor::block_on;
use insights_runtime::db::{Operation, Query};
use insights_runtime::instrument_db_operation;
use rusqlite::Connection;
use sentry::protocol::{Span, SpanStatus, Value};
use sqlparser::dialect::dialect_from_str;
use sqlparser::parser::Parser;

/// Parses `span`'s description the way Sentry does: under the dialect of its `db.system`.
fn assert_parses(span: &Span) {
    let system = span
        .data
        .get("db.system")
        .and_then(Value::as_str)
        .expect("db.system");
    let description = span.description.as_deref().expect("description");
    let dialect = dialect_from_str(system).expect("a dialect for db.system");
    if let Err(e) = Parser::parse_sql(dialect.as_ref(), description) {
        panic!("{system}: {description:?} does not parse: {e}");
    }
}

fn str_data<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    span.data.get(key).and_then(Value::as_str)
}

thread_local! {
    // One in-memory database a test (each test runs on its own thread).
    static DB: Connection = {
        let conn = Connection::open_in_memory().expect("sqlite");
        conn.execute_batch(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE);
             INSERT INTO users (email) VALUES ('ada@example.com'), ('alan@example.com');",
        )
        .expect("schema");
        conn
    };
}

fn with_db<R>(f: impl FnOnce(&Connection) -> R) -> R {
    DB.with(f)
}

/// The line of `count_users`'s attribute, its query source.
const COUNT_USERS_LINE: u32 = line!() + 3;

/// The reference's decorator form: table and operation, by position.
#[instrument_db_operation("users", "select", system = "sqlite", db_name = "main")]
fn count_users() -> rusqlite::Result<i64> {
    with_db(|db| db.query_row("SELECT count(*) FROM users", [], |r| r.get(0)))
}

#[instrument_db_operation(table = "users", operation = "insert", system = "sqlite")]
fn insert_user(email: &str) -> rusqlite::Result<usize> {
    with_db(|db| db.execute("INSERT INTO users (email) VALUES (?1)", [email]))
}

#[instrument_db_operation(
    query = "SELECT email FROM users WHERE id = ?1",
    table = "users",
    operation = "select",
    system = "sqlite"
)]
fn email_of(id: i64) -> rusqlite::Result<Option<String>> {
    with_db(|db| {
        let mut stmt = db.prepare("SELECT email FROM users WHERE id = ?1")?;
        let mut rows = stmt.query([id])?;
        rows.next()?.map(|r| r.get(0)).transpose()
    })
}

#[instrument_db_operation(query_param = "sql", system = "sqlite")]
fn run_sql(sql: &str) -> rusqlite::Result<usize> {
    with_db(|db| db.execute(sql, []))
}

#[instrument_db_operation("users", "delete")]
async fn delete_user(id: i64) -> Result<usize, String> {
    tokio::task::yield_now().await;
    let _ = id;
    Ok(1)
}

#[instrument_db_operation(
    query = "MERGE INTO users USING staged ON users.id = staged.id WHEN MATCHED THEN UPDATE SET email = staged.email",
    operation = "merge",
    table = "users"
)]
fn merge_users() {}

#[test]
fn positional_table_and_operation_around_a_real_query() {
    let tx = capture_one(|| assert_eq!(count_users(), Ok(2)));
    let s = &tx.spans[0];
    assert_eq!(s.op.as_deref(), Some("db"));
    assert_eq!(s.description.as_deref(), Some("SELECT * FROM users"));
    assert_eq!(s.parent_span_id, Some(root_id(&tx)));
    assert_eq!(s.status, Some(SpanStatus::Ok));
    assert_eq!(str_data(s, "db.system"), Some("sqlite"));
    assert_eq!(str_data(s, "db.system.name"), Some("sqlite"));
    assert_eq!(str_data(s, "db.name"), Some("main"));
    assert_eq!(str_data(s, "db.namespace"), Some("main"));
    assert_eq!(str_data(s, "db.sql.table"), Some("users"));
    assert_eq!(str_data(s, "db.collection.name"), Some("users"));
    assert_eq!(str_data(s, "db.operation"), Some("SELECT"));
    assert_eq!(str_data(s, "db.operation.name"), Some("SELECT"));
    assert_eq!(str_data(s, "db.query.text"), Some("SELECT * FROM users"));
    // The query source: the attribute's file, line, function and module.
    assert_eq!(str_data(s, "code.filepath"), Some("tests/db.rs"));
    assert_eq!(str_data(s, "code.file.path"), Some("tests/db.rs"));
    assert_eq!(
        s.data.get("code.lineno"),
        Some(&Value::from(COUNT_USERS_LINE))
    );
    assert_eq!(
        s.data.get("code.line.number"),
        Some(&Value::from(COUNT_USERS_LINE))
    );
    assert_eq!(str_data(s, "code.function"), Some("count_users"));
    assert_eq!(str_data(s, "code.namespace"), Some("db"));
    assert_eq!(s.data.len(), 15, "{:#?}", s.data);
    assert_parses(s);
}

#[test]
fn a_failing_query_is_internal_error() {
    let tx = capture_one(|| {
        assert!(insert_user("x@example.com").is_ok());
        // The UNIQUE constraint makes the second insert fail in SQLite itself.
        assert!(insert_user("x@example.com").is_err());
    });
    assert_eq!(tx.spans.len(), 2);
    assert_eq!(tx.spans[0].status, Some(SpanStatus::Ok));
    assert_eq!(tx.spans[1].status, Some(SpanStatus::InternalError));
    for s in &tx.spans {
        assert_eq!(
            s.description.as_deref(),
            Some("INSERT INTO users VALUES (?)")
        );
        assert_eq!(str_data(s, "db.operation"), Some("INSERT"));
        assert_parses(s);
    }
}

#[test]
fn a_given_query_is_kept_verbatim() {
    let tx = capture_one(|| assert_eq!(email_of(1), Ok(Some("ada@example.com".to_owned()))));
    let s = &tx.spans[0];
    assert_eq!(
        s.description.as_deref(),
        Some("SELECT email FROM users WHERE id = ?1")
    );
    assert_eq!(str_data(s, "db.sql.table"), Some("users"));
    assert_eq!(str_data(s, "db.operation"), Some("SELECT"));
    assert_parses(s);
}

#[test]
fn query_param_takes_the_description_from_the_argument() {
    let sql = "UPDATE users SET email = lower(email) WHERE id = 1";
    let tx = capture_one(|| assert_eq!(run_sql(sql), Ok(1)));
    let s = span(&tx, sql);
    assert_eq!(str_data(s, "db.system"), Some("sqlite"));
    // The operation is the statement's first keyword, read at run time.
    assert_eq!(str_data(s, "db.operation"), Some("UPDATE"));
    assert_eq!(str_data(s, "db.operation.name"), Some("UPDATE"));
    assert_eq!(str_data(s, "db.query.text"), Some(sql));
    assert!(!s.data.contains_key("db.sql.table"));
    assert_parses(s);
    let tx = capture_one(|| assert!(run_sql("SELEC nonsense").is_err()));
    assert_eq!(tx.spans[0].status, Some(SpanStatus::InternalError));
}

#[test]
fn async_db_operation_with_the_default_system() {
    let tx = capture_one(|| assert_eq!(block_on(delete_user(4)), Ok(1)));
    let s = &tx.spans[0];
    assert_eq!(s.description.as_deref(), Some("DELETE FROM users"));
    assert_eq!(str_data(s, "db.system"), Some("postgresql"));
    assert_eq!(str_data(s, "db.operation"), Some("DELETE"));
    assert_parses(s);
}

#[test]
fn any_operation_name_with_a_query() {
    let tx = capture_one(merge_users);
    let s = &tx.spans[0];
    assert_eq!(str_data(s, "db.operation"), Some("MERGE"));
    assert_eq!(str_data(s, "db.operation.name"), Some("MERGE"));
    assert_parses(s);
}

#[instrument_db_operation(query = "select id FROM users WHERE email = ?1", system = "sqlite")]
fn id_of(email: &str) -> rusqlite::Result<i64> {
    with_db(|db| {
        db.query_row("select id FROM users WHERE email = ?1", [email], |r| {
            r.get(0)
        })
    })
}

#[test]
fn a_query_alone_records_its_first_keyword_as_the_operation() {
    let tx = capture_one(|| assert_eq!(id_of("ada@example.com"), Ok(1)));
    let s = &tx.spans[0];
    assert_eq!(str_data(s, "db.operation"), Some("SELECT"));
    assert_eq!(str_data(s, "db.operation.name"), Some("SELECT"));
    assert_eq!(
        str_data(s, "db.query.text"),
        Some("select id FROM users WHERE email = ?1")
    );
    let tx = capture_one(|| {
        Query::sql("with t AS (SELECT 1) SELECT * FROM t")
            .start()
            .finish();
        Query::sql("DELETE FROM users WHERE id = $1")
            .start()
            .finish();
    });
    assert_eq!(
        str_data(&tx.spans[0], "db.operation"),
        Some("WITH"),
        "any keyword, upper-cased"
    );
    assert_eq!(str_data(&tx.spans[1], "db.operation.name"), Some("DELETE"));
}

#[test]
fn a_builder_records_its_callers_file_and_line() {
    let mut lines = Vec::new();
    let tx = capture_one(|| {
        lines.push(line!() + 1);
        let guard = Query::table_operation("users", Operation::Select).start();
        guard.finish();
        lines.push(line!() + 1);
        let query = Query::sql("SELECT 3");
        block_on(query.run(async { Ok::<_, ()>(()) })).unwrap();
        lines.push(line!() + 1);
        block_on(insights_runtime::db::track_database_query(
            "users",
            Operation::Delete,
            async { Ok::<_, ()>(()) },
        ))
        .unwrap();
    });
    assert_eq!(tx.spans.len(), 3);
    for (s, line) in tx.spans.iter().zip(&lines) {
        assert_eq!(str_data(s, "code.filepath"), Some("tests/db.rs"));
        assert_eq!(str_data(s, "code.file.path"), Some("tests/db.rs"));
        assert_eq!(s.data.get("code.lineno"), Some(&Value::from(*line)));
        assert_eq!(s.data.get("code.line.number"), Some(&Value::from(*line)));
        // A caller's location has no function or module.
        assert!(!s.data.contains_key("code.function"));
        assert!(!s.data.contains_key("code.namespace"));
    }
}

#[test]
fn the_builder_in_sync_and_async_code() {
    let tx = capture_one(|| {
        let guard = Query::table_operation("users", Operation::Select)
            .filters(&["email"])
            .system("postgresql")
            .server("db.internal", 5432)
            .start();
        // A span started now is a child of the query span.
        drop(insights_runtime::span::SpanGuard::start("inner", "inner"));
        guard.finish_with_outcome(&Ok::<_, ()>(()));

        let detached = Query::sql("SELECT 1").start_detached();
        drop(insights_runtime::span::SpanGuard::start(
            "sibling", "sibling",
        ));
        drop(detached);

        let ran = block_on(
            Query::sql("SELECT 2")
                .system("mysql")
                .run(async { Err::<(), _>("down") }),
        );
        assert!(ran.is_err());
    });
    let s = span(&tx, "SELECT * FROM users WHERE email = $1");
    assert_eq!(str_data(s, "server.address"), Some("db.internal"));
    assert_eq!(s.data.get("server.port"), Some(&Value::from(5432)));
    assert_eq!(str_data(s, "db.operation"), Some("SELECT"));
    assert_parses(s);
    assert_eq!(span(&tx, "inner").parent_span_id, Some(s.span_id));
    assert_eq!(span(&tx, "sibling").parent_span_id, Some(root_id(&tx)));
    assert_eq!(span(&tx, "SELECT 1").parent_span_id, Some(root_id(&tx)));
    let failed = span(&tx, "SELECT 2");
    assert_eq!(failed.status, Some(SpanStatus::InternalError));
    assert_eq!(str_data(failed, "db.system"), Some("mysql"));
}

/// The statement, written once: the attribute takes it by path.
const EMAIL_OF: &str = "select email FROM users WHERE id = ?1";

#[instrument_db_operation(query = EMAIL_OF, table = "users", system = "sqlite")]
fn email_by_const(id: i64) -> rusqlite::Result<String> {
    with_db(|db| db.query_row(EMAIL_OF, [id], |r| r.get(0)))
}

#[test]
fn the_query_can_be_a_const() {
    let tx = capture_one(|| {
        assert_eq!(email_by_const(1).as_deref(), Ok("ada@example.com"));
    });
    let span = span(&tx, EMAIL_OF);
    assert_eq!(span.op.as_deref(), Some("db"));
    assert_eq!(str_data(span, "db.query.text"), Some(EMAIL_OF));
    // The statement's first keyword, read by the runtime and upper-cased.
    assert_eq!(str_data(span, "db.operation"), Some("SELECT"));
    assert_eq!(str_data(span, "db.sql.table"), Some("users"));
    assert_eq!(span.status, Some(SpanStatus::Ok));
    assert_parses(span);
}

// ---------------------------------------------------------------------------------------------
// `db_name` and `server` as expressions, read when the span is recorded.

/// A pool that knows its database and server, from its configuration.
struct Pool {
    database: String,
    host: String,
    port: u16,
}

/// The line of `Pool::count`'s attribute.
const POOL_COUNT_LINE: u32 = line!() + 4;

impl Pool {
    // Fields of `&self`, borrowed.
    #[instrument_db_operation(
        "users",
        "select",
        system = "sqlite",
        db_name = self.database,
        server = (self.host.as_str(), self.port)
    )]
    fn count(&self) -> rusqlite::Result<i64> {
        with_db(|db| db.query_row("SELECT count(*) FROM users", [], |r| r.get(0)))
    }

    // In an async fn, with the address by reference.
    #[instrument_db_operation(
        query = "DELETE FROM users WHERE id = ?1",
        system = "sqlite",
        db_name = self.database.as_str(),
        server = (&self.host, self.port)
    )]
    async fn delete(&self, id: i64) -> rusqlite::Result<usize> {
        tokio::task::yield_now().await;
        with_db(|db| db.execute("DELETE FROM users WHERE id = ?1", [id]))
    }
}

/// The line of `run_on`'s attribute.
const RUN_ON_LINE: u32 = line!() + 4;

// The configuration by value: borrowed for the span (the address a temporary `String`), then
// moved into the body.
#[instrument_db_operation(
    query_param = "sql",
    system = "sqlite",
    db_name = config.database,
    server = (config.host.clone(), config.port)
)]
async fn run_on(config: Pool, sql: &str) -> rusqlite::Result<usize> {
    tokio::task::yield_now().await;
    let taken = config;
    let _ = taken.database;
    with_db(|db| db.execute(sql, []))
}

// Literals, as before: a string for the name, a pair of literals for the server.
#[instrument_db_operation("users", "select", db_name = "main", server = ("db.internal", 5432))]
fn select_literal() {}

#[test]
fn db_name_and_server_from_expressions() {
    let pool = Pool {
        database: "main".to_owned(),
        host: "db-1.internal".to_owned(),
        port: 5433,
    };
    let tx = capture_one(|| {
        assert_eq!(pool.count(), Ok(2));
        assert_eq!(block_on(pool.delete(99)), Ok(0));
        let config = Pool {
            database: "archive".to_owned(),
            host: "db-2.internal".to_owned(),
            port: 6543,
        };
        assert_eq!(
            block_on(run_on(
                config,
                "UPDATE users SET email = email WHERE id = 0"
            )),
            Ok(0)
        );
        select_literal();
    });
    assert_eq!(tx.spans.len(), 4);
    let source = |line: u32, function: &str| {
        [
            ("code.filepath", Value::from("tests/db.rs")),
            ("code.file.path", Value::from("tests/db.rs")),
            ("code.lineno", Value::from(line)),
            ("code.line.number", Value::from(line)),
            ("code.function", Value::from(function)),
            ("code.namespace", Value::from("db")),
        ]
    };
    let count = &tx.spans[0];
    assert_eq!(count.description.as_deref(), Some("SELECT * FROM users"));
    assert_eq!(count.op.as_deref(), Some("db"));
    assert_eq!(count.parent_span_id, Some(root_id(&tx)));
    assert_eq!(count.status, Some(SpanStatus::Ok));
    let mut expected = vec![
        ("db.system", Value::from("sqlite")),
        ("db.system.name", Value::from("sqlite")),
        ("db.name", Value::from("main")),
        ("db.namespace", Value::from("main")),
        ("db.sql.table", Value::from("users")),
        ("db.collection.name", Value::from("users")),
        ("db.operation", Value::from("SELECT")),
        ("db.operation.name", Value::from("SELECT")),
        ("db.query.text", Value::from("SELECT * FROM users")),
        ("server.address", Value::from("db-1.internal")),
        ("server.port", Value::from(5433)),
    ];
    expected.extend(source(POOL_COUNT_LINE, "count"));
    assert_data(count, &expected);
    assert_parses(count);

    let delete = span(&tx, "DELETE FROM users WHERE id = ?1");
    assert_eq!(delete.parent_span_id, Some(root_id(&tx)));
    assert_eq!(delete.status, Some(SpanStatus::Ok));
    assert_eq!(str_data(delete, "db.name"), Some("main"));
    assert_eq!(str_data(delete, "db.namespace"), Some("main"));
    assert_eq!(str_data(delete, "server.address"), Some("db-1.internal"));
    assert_eq!(delete.data.get("server.port"), Some(&Value::from(5433)));

    let sql = "UPDATE users SET email = email WHERE id = 0";
    let run = span(&tx, sql);
    assert_eq!(run.parent_span_id, Some(root_id(&tx)));
    assert_eq!(run.status, Some(SpanStatus::Ok));
    let mut expected = vec![
        ("db.system", Value::from("sqlite")),
        ("db.system.name", Value::from("sqlite")),
        ("db.name", Value::from("archive")),
        ("db.namespace", Value::from("archive")),
        ("db.operation", Value::from("UPDATE")),
        ("db.operation.name", Value::from("UPDATE")),
        ("db.query.text", Value::from(sql)),
        ("server.address", Value::from("db-2.internal")),
        ("server.port", Value::from(6543)),
    ];
    expected.extend(source(RUN_ON_LINE, "run_on"));
    assert_data(run, &expected);
    assert_parses(run);

    let literal = &tx.spans[3];
    assert_eq!(literal.description.as_deref(), Some("SELECT * FROM users"));
    assert_eq!(str_data(literal, "db.name"), Some("main"));
    assert_eq!(str_data(literal, "server.address"), Some("db.internal"));
    assert_eq!(literal.data.get("server.port"), Some(&Value::from(5432)));
}

#[test]
fn db_name_and_server_are_read_only_when_the_span_is_recorded() {
    use std::cell::Cell;
    thread_local!(static READS: Cell<u32> = const { Cell::new(0) });
    fn counted(name: &str) -> &str {
        READS.with(|r| r.set(r.get() + 1));
        name
    }
    #[instrument_db_operation(
        "users",
        "select",
        db_name = counted(name),
        server = (counted("db.internal"), 5432)
    )]
    fn select(name: &str) -> Result<u8, String> {
        Ok(1)
    }
    // No Sentry: no span, and neither expression runs.
    assert_eq!(select("main"), Ok(1));
    assert_eq!(READS.with(Cell::get), 0);
    // No transaction current: no span either.
    let txs = common::capture(|| assert_eq!(select("main"), Ok(1)));
    assert!(txs.is_empty());
    assert_eq!(READS.with(Cell::get), 0);
    let tx = capture_one(|| assert_eq!(select("main"), Ok(1)));
    assert_eq!(READS.with(Cell::get), 2, "each read once");
    assert_eq!(str_data(&tx.spans[0], "db.name"), Some("main"));
}
