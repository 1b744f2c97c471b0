//! The sqlx integration (`insights_runtime::sqlx`) against a real PostgreSQL, MariaDB and
//! SQLite: every call shape's span (op, description, the whole data map, parent, status), on a
//! pool, a transaction, a pooled and a bare connection; `sqlx::query!`; server errors, a killed
//! connection, a stream dropped early; the span starting only once the pool has handed out a
//! connection; nothing recorded without Sentry; and 200 concurrent requests on one pool.
//!
//! ```text
//! cargo test --features services --test integration_sqlx
//! ```
//!
//! PostgreSQL must be running at `DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`, also what `sqlx::query!` checks against at
//! compile time, from `.cargo/config.toml`) and MariaDB or MySQL at `MYSQL_URL` (default
//! `mysql://root@127.0.0.1:3306/test`); the tests fail, naming the service, when one is not.
//! Each test works in a PostgreSQL schema, a MySQL database or a SQLite file of its own.

mod common;
#[path = "services/env.rs"]
#[allow(dead_code, reason = "the helpers the other service tests use")]
mod env;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use common::{
    affected, assert_data, capture, capture_one_in, returned, root_id, status_code, trace,
};
use env::Schema;
use futures::{StreamExt, TryStreamExt};
use insights_runtime::sqlx::Traced;
use sentry::protocol::{Span, SpanStatus, Transaction, Value};
use sentry::{Hub, SentryFutureExt, TransactionContext};
use sqlparser::dialect::{Dialect, MySqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{Connection, Executor, MySqlPool, PgPool, SqlitePool};

// ---------------------------------------------------------------------------------------------
// Helpers

const FILE: &str = "tests/integration_sqlx.rs";

type Data = Vec<(&'static str, Value)>;

/// Where a pool's queries go, as the spans must say.
struct Target {
    system: &'static str,
    db_name: String,
    server: Option<(String, u16)>,
}

/// The data every span to `target` carries for `sql`, whose first keyword is `operation`,
/// then `extra`.
fn data(target: &Target, sql: &str, operation: &str, extra: &[(&'static str, Value)]) -> Data {
    let mut all: Data = vec![
        ("db.system", target.system.into()),
        ("db.system.name", target.system.into()),
        ("db.query.text", sql.into()),
        ("db.operation", operation.into()),
        ("db.operation.name", operation.into()),
        ("db.name", target.db_name.as_str().into()),
        ("db.namespace", target.db_name.as_str().into()),
    ];
    if let Some((address, port)) = &target.server {
        all.push(("server.address", address.as_str().into()));
        all.push(("server.port", (*port).into()));
    }
    all.extend(extra.iter().cloned());
    all
}

/// The query source of a call on `line` of this file.
fn source(line: u32) -> [(&'static str, Value); 4] {
    [
        ("code.filepath", FILE.into()),
        ("code.file.path", FILE.into()),
        ("code.lineno", line.into()),
        ("code.line.number", line.into()),
    ]
}

/// The only span described `description`, asserted to be a `db` span with `status`, a child
/// of `tx`'s root, ended after it started.
fn db_span<'a>(tx: &'a Transaction<'_>, description: &str, status: SpanStatus) -> &'a Span {
    let found: Vec<&Span> = tx
        .spans
        .iter()
        .filter(|s| s.description.as_deref() == Some(description))
        .collect();
    assert_eq!(found.len(), 1, "{description:?} in {:#?}", tx.spans);
    let span = found[0];
    assert_eq!(span.op.as_deref(), Some("db"), "op of {description:?}");
    assert_eq!(span.status, Some(status), "status of {description:?}");
    assert_eq!(
        span.parent_span_id,
        Some(root_id(tx)),
        "parent of {description:?}"
    );
    assert_eq!(
        span.trace_id,
        trace(tx).trace_id,
        "trace of {description:?}"
    );
    assert!(
        span.timestamp
            .is_some_and(|end| end >= span.start_timestamp),
        "{description:?} ends after it starts"
    );
    span
}

/// Asserts that every span of `tx` is a `db` span whose description parses in `dialect`, as
/// Sentry parses it for its `db.system` (but `unparsable`, sent to the server to fail).
fn assert_all_parse(tx: &Transaction<'_>, dialect: &dyn Dialect, unparsable: &[&str]) {
    for span in &tx.spans {
        assert_eq!(span.op.as_deref(), Some("db"));
        let sql = span.description.as_deref().expect("a description");
        if unparsable.contains(&sql) {
            continue;
        }
        if let Err(e) = Parser::parse_sql(dialect, sql) {
            panic!("{sql:?} does not parse as {dialect:?}: {e}");
        }
    }
}

fn unwrap_db_error(error: &sqlx::Error) -> &dyn sqlx::error::DatabaseError {
    match error {
        sqlx::Error::Database(db) => &**db,
        other => panic!("expected sqlx::Error::Database, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

async fn pg_pool(url: &str, connections: u32) -> PgPool {
    env::reach(
        "PostgreSQL",
        "DATABASE_URL",
        url,
        PgPoolOptions::new()
            .max_connections(connections)
            .connect(url),
    )
    .await
}

fn pg_target(url: &str) -> Target {
    let options: PgConnectOptions = url.parse().expect("DATABASE_URL");
    assert!(
        options.get_socket().is_none(),
        "the suite expects PostgreSQL over TCP"
    );
    Target {
        system: "postgresql",
        db_name: options
            .get_database()
            .unwrap_or(options.get_username())
            .to_owned(),
        server: Some((options.get_host().to_owned(), options.get_port())),
    }
}

const PG_CREATE: &str = "CREATE TABLE items (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL)";
const PG_INSERT_TWO: &str = "INSERT INTO items (name) VALUES ($1), ($2)";
const PG_ALL: &str = "SELECT id, name FROM items ORDER BY id";
const PG_COUNT: &str = "SELECT count(*) FROM items";
const PG_NAME_OF: &str = "SELECT name FROM items WHERE id = $1";
const PG_NAMES: &str = "SELECT name FROM items ORDER BY id";
const PG_IDS: &str = "SELECT id FROM items ORDER BY id";
const PG_MARK: &str = "UPDATE items SET name = name || $1 RETURNING id";
const PG_MACRO: &str = "SELECT $1::int8 AS n";
const PG_BATCH: &str =
    "UPDATE items SET name = 'renamed' WHERE id = 1; DELETE FROM items WHERE id = 2";
const PG_SERIES: &str = "SELECT generate_series(1, 1000) AS n";
const PG_NONE: &str = "SELECT id FROM items WHERE name = $1";

#[test]
fn postgresql_call_shapes_on_a_pool() {
    let rt = env::runtime();
    let schema = Schema::new(&rt, "tsqlx_");
    let url = schema.url();
    let target = pg_target(&url);
    let pool = rt.block_on(async {
        let pool = Traced::new(pg_pool(&url, 4).await);
        // No Sentry client yet: runs, records nothing.
        sqlx::query(PG_CREATE).execute(&pool).await.expect("create");
        pool
    });

    let (mut direct_line, mut mark_line) = (0, 0);
    let tx = capture_one_in("GET /items", || {
        rt.block_on(async {
            let done = sqlx::query(PG_INSERT_TWO)
                .bind("Ada")
                .bind("Grace")
                .execute(&pool)
                .await
                .expect("insert");
            assert_eq!(done.rows_affected(), 2);

            let all: Vec<(i64, String)> = sqlx::query_as(PG_ALL)
                .fetch_all(&pool)
                .await
                .expect("query_as");
            assert_eq!(all, [(1, "Ada".to_owned()), (2, "Grace".to_owned())]);

            let count: i64 = sqlx::query_scalar(PG_COUNT)
                .fetch_one(&pool)
                .await
                .expect("query_scalar");
            assert_eq!(count, 2);

            let name: Option<String> = sqlx::query_scalar(PG_NAME_OF)
                .bind(2_i64)
                .fetch_optional(&pool)
                .await
                .expect("fetch_optional");
            assert_eq!(name.as_deref(), Some("Grace"));

            let none: Option<i64> = sqlx::query_scalar(PG_NONE)
                .bind("nobody")
                .fetch_optional(&pool)
                .await
                .expect("fetch_optional, no row");
            assert_eq!(none, None);

            let row = sqlx::query!("SELECT $1::int8 AS n", 5_i64)
                .fetch_one(&pool)
                .await
                .expect("query!");
            assert_eq!(row.n, Some(5));

            let names: Vec<String> = sqlx::query_scalar(PG_NAMES)
                .fetch(&pool)
                .try_collect()
                .await
                .expect("fetch");
            assert_eq!(names, ["Ada", "Grace"]);

            // The executor called directly: the query source is this line.
            direct_line = line!() + 1;
            let ids = pool.fetch_all(sqlx::query(PG_IDS)).await.expect("direct");
            assert_eq!(ids.len(), 2);

            // `Query::fetch_many` is deprecated: the executor's, called directly (the location
            // is the method's line).
            mark_line = line!() + 2;
            let steps: Vec<_> = pool
                .fetch_many(sqlx::query(PG_MARK).bind("!"))
                .try_collect()
                .await
                .expect("fetch_many");
            assert_eq!(steps.len(), 3, "two rows and the result");

            let results: Vec<_> = sqlx::raw_sql(PG_BATCH)
                .execute_many(&pool)
                .try_collect()
                .await
                .expect("execute_many");
            assert_eq!(results.len(), 2);

            let missing = sqlx::query(PG_NONE)
                .bind("still nobody")
                .fetch_one(&pool)
                .await
                .expect_err("no row");
            assert!(matches!(missing, sqlx::Error::RowNotFound), "{missing:?}");

            // A stream dropped after its first row.
            let mut series = sqlx::query(PG_SERIES).fetch(&pool);
            series.next().await.expect("a row").expect("no error");
            drop(series);
        });
    });

    let d = |sql, op, extra: &[(&'static str, Value)]| data(&target, sql, op, extra);
    let insert = db_span(&tx, PG_INSERT_TWO, SpanStatus::Ok);
    assert_data(insert, &d(PG_INSERT_TWO, "INSERT", &[affected(2)]));
    let all = db_span(&tx, PG_ALL, SpanStatus::Ok);
    assert_data(all, &d(PG_ALL, "SELECT", &[returned(2)]));
    let count = db_span(&tx, PG_COUNT, SpanStatus::Ok);
    assert_data(count, &d(PG_COUNT, "SELECT", &[returned(1)]));
    let name = db_span(&tx, PG_NAME_OF, SpanStatus::Ok);
    assert_data(name, &d(PG_NAME_OF, "SELECT", &[returned(1)]));
    let by_macro = db_span(&tx, PG_MACRO, SpanStatus::Ok);
    assert_data(by_macro, &d(PG_MACRO, "SELECT", &[returned(1)]));
    let names = db_span(&tx, PG_NAMES, SpanStatus::Ok);
    assert_data(names, &d(PG_NAMES, "SELECT", &[returned(2)]));
    let ids = db_span(&tx, PG_IDS, SpanStatus::Ok);
    let mut with_source = d(PG_IDS, "SELECT", &[returned(2)]);
    with_source.extend(source(direct_line));
    assert_data(ids, &with_source);
    let mark = db_span(&tx, PG_MARK, SpanStatus::Ok);
    let mut with_source = d(PG_MARK, "UPDATE", &[returned(2), affected(2)]);
    with_source.extend(source(mark_line));
    assert_data(mark, &with_source);
    let batch = db_span(&tx, PG_BATCH, SpanStatus::Ok);
    assert_data(batch, &d(PG_BATCH, "UPDATE", &[affected(2)]));
    let series = db_span(&tx, PG_SERIES, SpanStatus::Cancelled);
    assert_data(series, &d(PG_SERIES, "SELECT", &[]));

    // The same statement twice: once with no row (`fetch_optional`), once not found.
    let nones: Vec<&Span> = tx
        .spans
        .iter()
        .filter(|s| s.description.as_deref() == Some(PG_NONE))
        .collect();
    assert_eq!(nones.len(), 2);
    assert_eq!(nones[0].status, Some(SpanStatus::Ok));
    assert_data(nones[0], &d(PG_NONE, "SELECT", &[returned(0)]));
    assert_eq!(nones[1].status, Some(SpanStatus::NotFound));
    assert_data(nones[1], &d(PG_NONE, "SELECT", &[returned(0)]));
    for span in nones {
        assert_eq!(span.parent_span_id, Some(root_id(&tx)));
    }

    assert_eq!(tx.spans.len(), 12, "{:#?}", tx.spans);
    assert_all_parse(&tx, &PostgreSqlDialect {}, &[]);
    drop(schema);
}

const PG_INSERT: &str = "INSERT INTO items (name) VALUES ($1)";
const PG_COUNT_IN_TX: &str = "SELECT count(*) AS n FROM items";
const PG_DELETE_ALL: &str = "DELETE FROM items";
const PG_COUNT_ON_CONN: &str = "SELECT count(*) AS total FROM items";
const PG_ONE_BARE: &str = "SELECT 1 AS one";
const PG_WAITED: &str = "SELECT 2 AS waited";

#[test]
fn postgresql_transactions_and_connections() {
    let rt = env::runtime();
    let schema = Schema::new(&rt, "tsqlx_");
    let url = schema.url();
    let target = pg_target(&url);
    // One connection, so that a query waits for the pool while another holds it.
    let pool = rt.block_on(async {
        let pool = Traced::new(pg_pool(&url, 1).await);
        sqlx::query(PG_CREATE).execute(&pool).await.expect("create");
        pool
    });
    let options: PgConnectOptions = url.parse().expect("DATABASE_URL");

    let released = Arc::new(Mutex::new(None::<SystemTime>));
    let tx = capture_one_in("POST /items", || {
        rt.block_on(async {
            let mut tx = pool.begin().await.expect("begin");
            let done = sqlx::query(PG_INSERT)
                .bind("Ada")
                .execute(&mut tx)
                .await
                .expect("insert in tx");
            assert_eq!(done.rows_affected(), 1);
            let n: i64 = sqlx::query_scalar(PG_COUNT_IN_TX)
                .fetch_one(&mut tx)
                .await
                .expect("count in tx");
            assert_eq!(n, 1);
            // A savepoint, rolled back.
            let mut savepoint = tx.begin().await.expect("savepoint");
            sqlx::query(PG_DELETE_ALL)
                .execute(&mut savepoint)
                .await
                .expect("delete in savepoint");
            savepoint.rollback().await.expect("rollback");
            tx.commit().await.expect("commit");

            let mut conn = pool.acquire().await.expect("acquire");
            let total: i64 = sqlx::query_scalar(PG_COUNT_ON_CONN)
                .fetch_one(&mut conn)
                .await
                .expect("count on a connection");
            assert_eq!(total, 1, "the savepoint was rolled back");

            // The only connection is held for 300 ms; the query waits for it, and its span
            // starts once it has it.
            let released_at = Arc::clone(&released);
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                *released_at.lock().unwrap() = Some(SystemTime::now());
                drop(conn);
            });
            let waited: i32 = sqlx::query_scalar(PG_WAITED)
                .fetch_one(&pool)
                .await
                .expect("after waiting");
            assert_eq!(waited, 2);

            // A bare connection, told its options.
            let mut bare = sqlx::PgConnection::connect_with(&options)
                .await
                .expect("connect");
            let mut traced = Traced::with_options(&mut bare, &options);
            let one: i32 = sqlx::query_scalar(PG_ONE_BARE)
                .fetch_one(&mut traced)
                .await
                .expect("bare connection");
            assert_eq!(one, 1);
            bare.close().await.expect("close");
        });
    });

    let d = |sql, op, extra: &[(&'static str, Value)]| data(&target, sql, op, extra);
    let insert = db_span(&tx, PG_INSERT, SpanStatus::Ok);
    assert_data(insert, &d(PG_INSERT, "INSERT", &[affected(1)]));
    let count = db_span(&tx, PG_COUNT_IN_TX, SpanStatus::Ok);
    assert_data(count, &d(PG_COUNT_IN_TX, "SELECT", &[returned(1)]));
    let delete = db_span(&tx, PG_DELETE_ALL, SpanStatus::Ok);
    assert_data(delete, &d(PG_DELETE_ALL, "DELETE", &[affected(1)]));
    let on_conn = db_span(&tx, PG_COUNT_ON_CONN, SpanStatus::Ok);
    assert_data(on_conn, &d(PG_COUNT_ON_CONN, "SELECT", &[returned(1)]));
    let bare = db_span(&tx, PG_ONE_BARE, SpanStatus::Ok);
    assert_data(bare, &d(PG_ONE_BARE, "SELECT", &[returned(1)]));

    let waited = db_span(&tx, PG_WAITED, SpanStatus::Ok);
    assert_data(waited, &d(PG_WAITED, "SELECT", &[returned(1)]));
    let released = released
        .lock()
        .unwrap()
        .expect("the connection was released");
    assert!(
        waited.start_timestamp >= released,
        "the span starts after the pool handed out the connection ({:?} < {released:?})",
        waited.start_timestamp
    );
    let took = waited
        .timestamp
        .and_then(|end| end.duration_since(waited.start_timestamp).ok())
        .expect("an end after the start");
    assert!(
        took < Duration::from_millis(250),
        "the wait is not the query's: {took:?}"
    );

    // BEGIN, SAVEPOINT, ROLLBACK TO and COMMIT are not spans.
    assert_eq!(tx.spans.len(), 6, "{:#?}", tx.spans);
    assert_all_parse(&tx, &PostgreSqlDialect {}, &[]);
    drop(schema);
}

const PG_TYPO: &str = "SELEC 1";
const PG_PID: &str = "SELECT pg_backend_pid()";
const PG_TERMINATE: &str = "SELECT pg_terminate_backend($1)";
const PG_ALIVE: &str = "SELECT 1 AS alive";
const PG_AFTER: &str = "SELECT 2 AS after";

#[test]
fn postgresql_errors() {
    let rt = env::runtime();
    let url = env::database_url();
    let target = pg_target(&url);
    let pool = rt.block_on(async { Traced::new(pg_pool(&url, 2).await) });

    let mut typo = None;
    let (mut killed, mut gone) = (None, None);
    let tx = capture_one_in("GET /broken", || {
        rt.block_on(async {
            typo = sqlx::query(PG_TYPO).execute(&pool).await.err();

            // A connection terminated by the server from another connection.
            let mut victim = pool.acquire().await.expect("acquire");
            let pid: i32 = sqlx::query_scalar(PG_PID)
                .fetch_one(&mut victim)
                .await
                .expect("pid");
            let terminated: bool = sqlx::query_scalar(PG_TERMINATE)
                .bind(pid)
                .fetch_one(&pool)
                .await
                .expect("terminate");
            assert!(terminated);
            tokio::time::sleep(Duration::from_millis(200)).await;
            killed = sqlx::query_scalar::<_, i32>(PG_ALIVE)
                .fetch_one(&mut victim)
                .await
                .err();
            gone = sqlx::query(PG_AFTER).execute(&mut victim).await.err();
        });
    });

    // The caller gets sqlx's own error.
    let typo = typo.expect("the server rejects the statement");
    assert_eq!(unwrap_db_error(&typo).code().as_deref(), Some("42601"));
    let failed = db_span(&tx, PG_TYPO, SpanStatus::InternalError);
    assert_data(
        failed,
        &data(&target, PG_TYPO, "SELEC", &[status_code("42601")]),
    );

    let killed = killed.expect("a terminated connection fails");
    // PostgreSQL says why before it hangs up: admin_shutdown.
    assert_eq!(unwrap_db_error(&killed).code().as_deref(), Some("57P01"));
    let dead = db_span(&tx, PG_ALIVE, SpanStatus::InternalError);
    assert_data(
        dead,
        &data(&target, PG_ALIVE, "SELECT", &[status_code("57P01")]),
    );
    // Then the connection is gone: an I/O error, no database code.
    let gone = gone.expect("a closed connection fails");
    assert!(matches!(gone, sqlx::Error::Io(_)), "{gone:?}");
    let after = db_span(&tx, PG_AFTER, SpanStatus::InternalError);
    assert_data(after, &data(&target, PG_AFTER, "SELECT", &[]));
    let pid = db_span(&tx, PG_PID, SpanStatus::Ok);
    assert_data(pid, &data(&target, PG_PID, "SELECT", &[returned(1)]));
    let terminate = db_span(&tx, PG_TERMINATE, SpanStatus::Ok);
    assert_data(
        terminate,
        &data(&target, PG_TERMINATE, "SELECT", &[returned(1)]),
    );

    assert_eq!(tx.spans.len(), 5, "{:#?}", tx.spans);
    assert_all_parse(&tx, &PostgreSqlDialect {}, &[PG_TYPO]);
}

// ---------------------------------------------------------------------------------------------
// MariaDB / MySQL

/// A MySQL database of one test, dropped at its end (errors there are ignored).
struct MySqlDatabase {
    name: String,
    admin: MySqlPool,
}

impl MySqlDatabase {
    async fn new() -> Self {
        let url = env::mysql_url();
        let admin = env::reach(
            "MariaDB",
            "MYSQL_URL",
            &url,
            MySqlPoolOptions::new().max_connections(1).connect(&url),
        )
        .await;
        let name = format!("tsqlx_{}", env::unique());
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        MySqlDatabase { name, admin }
    }

    fn options(&self) -> MySqlConnectOptions {
        let options: MySqlConnectOptions = env::mysql_url().parse().expect("MYSQL_URL");
        options.database(&self.name)
    }

    async fn drop_it(self) {
        let _ = self
            .admin
            .execute(sqlx::AssertSqlSafe(format!("DROP DATABASE {}", self.name)))
            .await;
    }
}

const MY_CREATE: &str =
    "CREATE TABLE items (id BIGINT AUTO_INCREMENT PRIMARY KEY, name TEXT NOT NULL)";
const MY_INSERT_TWO: &str = "INSERT INTO items (name) VALUES (?), (?)";
const MY_ALL: &str = "SELECT id, name FROM items ORDER BY id";
const MY_COUNT: &str = "SELECT count(*) FROM items";
const MY_NAMES: &str = "SELECT name FROM items ORDER BY id";
const MY_NAME_OF: &str = "SELECT name FROM items WHERE id = ?";
const MY_RENAME: &str = "UPDATE items SET name = ? WHERE id = ?";
const MY_TYPO: &str = "SELEC 1";

#[test]
fn mysql_queries() {
    let rt = env::runtime();
    let (database, pool) = rt.block_on(async {
        let database = MySqlDatabase::new().await;
        let pool = MySqlPoolOptions::new()
            .max_connections(2)
            .connect_with(database.options())
            .await
            .expect("connect to the test's database");
        let pool = Traced::new(pool);
        sqlx::query(MY_CREATE).execute(&pool).await.expect("create");
        (database, pool)
    });
    let options = database.options();
    let target = Target {
        system: "mysql",
        db_name: database.name.clone(),
        server: Some((options.get_host().to_owned(), options.get_port())),
    };

    let mut typo = None;
    let tx = capture_one_in("GET /items", || {
        rt.block_on(async {
            let done = sqlx::query(MY_INSERT_TWO)
                .bind("Ada")
                .bind("Grace")
                .execute(&pool)
                .await
                .expect("insert");
            assert_eq!(done.rows_affected(), 2);
            let all: Vec<(i64, String)> = sqlx::query_as(MY_ALL)
                .fetch_all(&pool)
                .await
                .expect("query_as");
            assert_eq!(all, [(1, "Ada".to_owned()), (2, "Grace".to_owned())]);
            let count: i64 = sqlx::query_scalar(MY_COUNT)
                .fetch_one(&pool)
                .await
                .expect("count");
            assert_eq!(count, 2);
            let names: Vec<String> = sqlx::query_scalar(MY_NAMES)
                .fetch(&pool)
                .try_collect()
                .await
                .expect("fetch");
            assert_eq!(names, ["Ada", "Grace"]);

            let mut tx = pool.begin().await.expect("begin");
            let renamed = sqlx::query(MY_RENAME)
                .bind("Lovelace")
                .bind(1_i64)
                .execute(&mut tx)
                .await
                .expect("update in tx");
            assert_eq!(renamed.rows_affected(), 1);
            let name: Option<String> = sqlx::query_scalar(MY_NAME_OF)
                .bind(1_i64)
                .fetch_optional(&mut tx)
                .await
                .expect("select in tx");
            assert_eq!(name.as_deref(), Some("Lovelace"));
            tx.commit().await.expect("commit");

            typo = sqlx::query(MY_TYPO).execute(&pool).await.err();
        });
    });

    let d = |sql, op, extra: &[(&'static str, Value)]| data(&target, sql, op, extra);
    let insert = db_span(&tx, MY_INSERT_TWO, SpanStatus::Ok);
    assert_data(insert, &d(MY_INSERT_TWO, "INSERT", &[affected(2)]));
    let all = db_span(&tx, MY_ALL, SpanStatus::Ok);
    assert_data(all, &d(MY_ALL, "SELECT", &[returned(2)]));
    let count = db_span(&tx, MY_COUNT, SpanStatus::Ok);
    assert_data(count, &d(MY_COUNT, "SELECT", &[returned(1)]));
    let names = db_span(&tx, MY_NAMES, SpanStatus::Ok);
    assert_data(names, &d(MY_NAMES, "SELECT", &[returned(2)]));
    let rename = db_span(&tx, MY_RENAME, SpanStatus::Ok);
    assert_data(rename, &d(MY_RENAME, "UPDATE", &[affected(1)]));
    let name = db_span(&tx, MY_NAME_OF, SpanStatus::Ok);
    assert_data(name, &d(MY_NAME_OF, "SELECT", &[returned(1)]));

    let typo = typo.expect("the server rejects the statement");
    assert_eq!(unwrap_db_error(&typo).code().as_deref(), Some("42000"));
    let failed = db_span(&tx, MY_TYPO, SpanStatus::InternalError);
    assert_data(failed, &d(MY_TYPO, "SELEC", &[status_code("42000")]));

    assert_eq!(tx.spans.len(), 7, "{:#?}", tx.spans);
    assert_all_parse(&tx, &MySqlDialect {}, &[MY_TYPO]);
    rt.block_on(database.drop_it());
}

// ---------------------------------------------------------------------------------------------
// SQLite

/// A SQLite file of one test, removed at its end.
struct SqliteFile(PathBuf);

impl Drop for SqliteFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

const LITE_CREATE: &str = "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)";
const LITE_INSERT_TWO: &str = "INSERT INTO items (name) VALUES (?), (?)";
const LITE_ALL: &str = "SELECT id, name FROM items ORDER BY id";
const LITE_COUNT: &str = "SELECT count(*) FROM items";
const LITE_NAMES: &str = "SELECT name FROM items ORDER BY id";
const LITE_DELETE: &str = "DELETE FROM items WHERE id = ?";
const LITE_TYPO: &str = "SELEC 1";
const LITE_MEMORY: &str = "SELECT 40 + 2 AS answer";

#[test]
fn sqlite_queries() {
    let rt = env::runtime();
    let file = SqliteFile(std::env::temp_dir().join(format!("insights-sqlx-{}.db", env::unique())));
    let file_name = file.0.file_name().unwrap().to_str().unwrap().to_owned();
    let (pool, memory) = rt.block_on(async {
        let options = SqliteConnectOptions::new()
            .filename(&file.0)
            .create_if_missing(true);
        let pool = Traced::new(
            SqlitePoolOptions::new()
                .max_connections(2)
                .connect_with(options)
                .await
                .expect("a SQLite file"),
        );
        sqlx::query(LITE_CREATE)
            .execute(&pool)
            .await
            .expect("create");
        let memory: SqlitePool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .expect("an in-memory SQLite");
        (pool, Traced::new(memory))
    });
    let target = Target {
        system: "sqlite",
        db_name: file_name,
        server: None,
    };

    let mut typo = None;
    let tx = capture_one_in("GET /items", || {
        rt.block_on(async {
            let done = sqlx::query(LITE_INSERT_TWO)
                .bind("Ada")
                .bind("Grace")
                .execute(&pool)
                .await
                .expect("insert");
            assert_eq!(done.rows_affected(), 2);
            let all: Vec<(i64, String)> = sqlx::query_as(LITE_ALL)
                .fetch_all(&pool)
                .await
                .expect("query_as");
            assert_eq!(all, [(1, "Ada".to_owned()), (2, "Grace".to_owned())]);
            let count: i64 = sqlx::query_scalar(LITE_COUNT)
                .fetch_one(&pool)
                .await
                .expect("count");
            assert_eq!(count, 2);

            let mut tx = pool.begin().await.expect("begin");
            let deleted = sqlx::query(LITE_DELETE)
                .bind(2_i64)
                .execute(&mut tx)
                .await
                .expect("delete in tx");
            assert_eq!(deleted.rows_affected(), 1);
            tx.commit().await.expect("commit");

            let mut conn = pool.acquire().await.expect("acquire");
            let names: Vec<String> = sqlx::query_scalar(LITE_NAMES)
                .fetch(&mut conn)
                .try_collect()
                .await
                .expect("fetch on a connection");
            assert_eq!(names, ["Ada"]);
            drop(conn);

            typo = sqlx::query(LITE_TYPO).execute(&pool).await.err();

            let answer: i32 = sqlx::query_scalar(LITE_MEMORY)
                .fetch_one(&memory)
                .await
                .expect("in memory");
            assert_eq!(answer, 42);
        });
    });

    let d = |sql, op, extra: &[(&'static str, Value)]| data(&target, sql, op, extra);
    let insert = db_span(&tx, LITE_INSERT_TWO, SpanStatus::Ok);
    assert_data(insert, &d(LITE_INSERT_TWO, "INSERT", &[affected(2)]));
    let all = db_span(&tx, LITE_ALL, SpanStatus::Ok);
    assert_data(all, &d(LITE_ALL, "SELECT", &[returned(2)]));
    let count = db_span(&tx, LITE_COUNT, SpanStatus::Ok);
    assert_data(count, &d(LITE_COUNT, "SELECT", &[returned(1)]));
    let delete = db_span(&tx, LITE_DELETE, SpanStatus::Ok);
    assert_data(delete, &d(LITE_DELETE, "DELETE", &[affected(1)]));
    let names = db_span(&tx, LITE_NAMES, SpanStatus::Ok);
    assert_data(names, &d(LITE_NAMES, "SELECT", &[returned(1)]));

    let typo = typo.expect("SQLite rejects the statement");
    // SQLite's own code: SQLITE_ERROR.
    assert_eq!(unwrap_db_error(&typo).code().as_deref(), Some("1"));
    let failed = db_span(&tx, LITE_TYPO, SpanStatus::InternalError);
    assert_data(failed, &d(LITE_TYPO, "SELEC", &[status_code("1")]));

    let in_memory = Target {
        system: "sqlite",
        db_name: ":memory:".to_owned(),
        server: None,
    };
    let answer = db_span(&tx, LITE_MEMORY, SpanStatus::Ok);
    assert_data(
        answer,
        &data(&in_memory, LITE_MEMORY, "SELECT", &[returned(1)]),
    );

    assert_eq!(tx.spans.len(), 7, "{:#?}", tx.spans);
    assert_all_parse(&tx, &SQLiteDialect {}, &[LITE_TYPO]);
    rt.block_on(pool.close());
}

// ---------------------------------------------------------------------------------------------
// Without Sentry, and many requests at once

/// Queries of every shape on `pool`, checking their results.
async fn some_queries(pool: &Traced<PgPool>) {
    let done = sqlx::query(PG_INSERT_TWO)
        .bind("Ada")
        .bind("Grace")
        .execute(pool)
        .await
        .expect("insert");
    assert_eq!(done.rows_affected(), 2);
    let all: Vec<(i64, String)> = sqlx::query_as(PG_ALL).fetch_all(pool).await.expect("all");
    assert_eq!(all.len(), 2);
    let names: Vec<String> = sqlx::query_scalar(PG_NAMES)
        .fetch(pool)
        .try_collect()
        .await
        .expect("fetch");
    assert_eq!(names, ["Ada", "Grace"]);
    let steps: Vec<_> = pool
        .fetch_many(sqlx::query(PG_MARK).bind("?"))
        .try_collect()
        .await
        .expect("fetch_many");
    assert_eq!(steps.len(), 3);
    let mut tx = pool.begin().await.expect("begin");
    let n: i64 = sqlx::query_scalar(PG_COUNT)
        .fetch_one(&mut tx)
        .await
        .expect("count");
    assert_eq!(n, 2);
    tx.rollback().await.expect("rollback");
    let missing = sqlx::query(PG_NONE)
        .bind("nobody")
        .fetch_one(pool)
        .await
        .expect_err("no row");
    assert!(matches!(missing, sqlx::Error::RowNotFound));
    let typo = sqlx::query(PG_TYPO).execute(pool).await.expect_err("typo");
    assert_eq!(unwrap_db_error(&typo).code().as_deref(), Some("42601"));
    sqlx::query(PG_DELETE_ALL)
        .execute(pool)
        .await
        .expect("clean up");
}

#[test]
fn without_sentry_queries_run_and_nothing_is_recorded() {
    let rt = env::runtime();
    let schema = Schema::new(&rt, "tsqlx_");
    let url = schema.url();
    let pool = rt.block_on(async {
        let pool = Traced::new(pg_pool(&url, 2).await);
        sqlx::query(PG_CREATE).execute(&pool).await.expect("create");
        pool
    });

    // No client at all.
    assert!(Hub::current().client().is_none());
    rt.block_on(some_queries(&pool));

    // A client, but no span current: nothing is sent.
    let txs = capture(|| rt.block_on(some_queries(&pool)));
    assert!(txs.is_empty(), "{txs:#?}");

    // The same code under a transaction records it (so the two runs above could fail).
    let tx = capture_one_in("recorded", || rt.block_on(some_queries(&pool)));
    assert_eq!(tx.spans.len(), 8, "{:#?}", tx.spans);
    drop(schema);
}

const PG_ECHO: &str = "SELECT $1::int8 AS request";
const PG_ROWS: &str = "SELECT generate_series(1, $1::int8) AS n";

#[test]
fn concurrent_requests_nest_under_their_own_transactions() {
    let rt = env::runtime();
    let url = env::database_url();
    let target = pg_target(&url);
    // Fewer connections than requests: most wait for the pool.
    let pool = rt.block_on(async { Traced::new(pg_pool(&url, 8).await) });
    const REQUESTS: i64 = 200;

    let txs = capture(|| {
        rt.block_on(async {
            let hub = Hub::current();
            let tasks: Vec<_> = (0..REQUESTS)
                .map(|i| {
                    let pool = pool.clone();
                    let request = async move {
                        let tx = sentry::start_transaction(TransactionContext::new(
                            &format!("request-{i}"),
                            "http.server",
                        ));
                        sentry::configure_scope(|s| s.set_span(Some(tx.clone().into())));
                        let echoed: i64 = sqlx::query_scalar(PG_ECHO)
                            .bind(i)
                            .fetch_one(&pool)
                            .await
                            .expect("echo");
                        assert_eq!(echoed, i);
                        let rows: Vec<i64> = sqlx::query_scalar::<_, i64>(PG_ROWS)
                            .bind(i % 5 + 1)
                            .fetch(&pool)
                            .try_collect()
                            .await
                            .expect("rows");
                        assert_eq!(rows.len() as i64, i % 5 + 1);
                        sentry::configure_scope(|s| s.set_span(None));
                        tx.finish();
                    };
                    tokio::spawn(request.bind_hub(Hub::new_from_top(&hub)))
                })
                .collect();
            for task in tasks {
                task.await.expect("a request");
            }
        })
    });

    assert_eq!(txs.len(), REQUESTS as usize);
    let mut names = HashSet::new();
    for tx in &txs {
        let name = tx.name.as_deref().expect("a name");
        let i: u64 = name
            .strip_prefix("request-")
            .and_then(|i| i.parse().ok())
            .expect("request-<i>");
        assert!(names.insert(i), "{name} sent twice");
        assert_eq!(tx.spans.len(), 2, "{name}: {:#?}", tx.spans);
        let echo = db_span(tx, PG_ECHO, SpanStatus::Ok);
        assert_data(echo, &data(&target, PG_ECHO, "SELECT", &[returned(1)]));
        let rows = db_span(tx, PG_ROWS, SpanStatus::Ok);
        assert_data(
            rows,
            &data(&target, PG_ROWS, "SELECT", &[returned(i % 5 + 1)]),
        );
    }
    let trace_ids: HashSet<_> = txs.iter().map(|tx| trace(tx).trace_id).collect();
    assert_eq!(
        trace_ids.len(),
        REQUESTS as usize,
        "each request its own trace"
    );
}
