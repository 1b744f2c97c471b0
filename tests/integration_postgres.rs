//! The tokio-postgres integration (`insights_runtime::postgres`) against the real PostgreSQL:
//! every wrapped method's span (op, description, the whole data map, parent, status),
//! prepared statements, transactions and savepoints, a server error and a dropped connection,
//! nothing recorded without a Sentry client, and 200 concurrent requests sharing one client.
//!
//! ```text
//! cargo test --features services --test integration_postgres
//! ```
//!
//! PostgreSQL must be running at `DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); the tests fail, naming it, when it is not. Each
//! test works in a schema of its own.

mod common;
#[path = "services/env.rs"]
#[allow(dead_code, reason = "the helpers the other service tests use")]
mod env;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use common::{
    affected, assert_parses_as_postgres, capture, capture_with, in_transaction, only, returned,
    root_id, status_code, trace,
};
use env::Schema;
use futures::TryStreamExt;
use insights_runtime::postgres::{Client, Statement};
use sentry::protocol::{Span, SpanId, SpanStatus, Transaction, Value};
use sentry::{ClientOptions, Hub, SentryFutureExt, TransactionContext};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;

// ---------------------------------------------------------------------------------------------
// Helpers

/// Data keys and values beside a span's [`base`].
type Data = Vec<(&'static str, Value)>;

const FILE: &str = "tests/integration_postgres.rs";

const CREATE: &str = "CREATE TABLE items (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL)";
const INSERT: &str = "INSERT INTO items (name) VALUES ($1)";
const ALL: &str = "SELECT id, name FROM items ORDER BY id";
const BY_NAME: &str = "SELECT id FROM items WHERE name = $1";
const NAMES: &str = "SELECT name FROM items ORDER BY id";
const UPPER: &str = "UPDATE items SET name = upper(name)";
const RENAME: &str = "UPDATE items SET name = $1 WHERE name = $2";

/// A wrapped client on `url` (the connection is spawned on the current runtime).
async fn connect(url: &str) -> Client {
    let config: tokio_postgres::Config = url.parse().expect("DATABASE_URL is a PostgreSQL URL");
    Client::new(env::postgres(url).await, &config)
}

/// The database and server the spans must name, read from `DATABASE_URL` here (not through the
/// integration's own reading).
struct Expected {
    db_name: String,
    host: String,
    port: u16,
}

fn expected() -> Expected {
    let config: tokio_postgres::Config = env::database_url().parse().expect("DATABASE_URL");
    let host = match config.get_hosts() {
        [tokio_postgres::config::Host::Tcp(host)] => host.clone(),
        other => panic!("these tests expect one TCP host in DATABASE_URL, it gives {other:?}"),
    };
    Expected {
        db_name: config
            .get_dbname()
            .expect("a database in DATABASE_URL")
            .to_owned(),
        host,
        port: config.get_ports().first().copied().unwrap_or(5432),
    }
}

/// The data every span of `sql` issued at `line` of this file carries.
fn base(sql: &str, line: u32) -> BTreeMap<String, Value> {
    let e = expected();
    let operation = sql
        .split_whitespace()
        .next()
        .expect("a statement")
        .to_uppercase();
    let pairs: [(&str, Value); 13] = [
        ("db.system", "postgresql".into()),
        ("db.system.name", "postgresql".into()),
        ("db.query.text", sql.into()),
        ("db.operation", operation.as_str().into()),
        ("db.operation.name", operation.as_str().into()),
        ("db.name", e.db_name.as_str().into()),
        ("db.namespace", e.db_name.as_str().into()),
        ("server.address", e.host.as_str().into()),
        ("server.port", Value::from(e.port)),
        ("code.filepath", FILE.into()),
        ("code.file.path", FILE.into()),
        ("code.lineno", Value::from(line)),
        ("code.line.number", Value::from(line)),
    ];
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// Asserts that `span` is the db span of `sql` issued at `line`, a child of `parent`, with
/// exactly `base` and `extra` as data and `status`.
fn assert_db(
    span: &Span,
    parent: SpanId,
    sql: &str,
    line: u32,
    extra: &[(&str, Value)],
    status: SpanStatus,
) {
    assert_eq!(span.op.as_deref(), Some("db"), "{span:#?}");
    assert_eq!(span.description.as_deref(), Some(sql), "{span:#?}");
    let mut data = base(sql, line);
    for (k, v) in extra {
        data.insert((*k).to_owned(), v.clone());
    }
    assert_eq!(span.data, data, "data of {sql:?}");
    assert_eq!(span.parent_span_id, Some(parent), "parent of {sql:?}");
    assert_eq!(span.status, Some(status), "status of {sql:?}");
    assert!(
        span.timestamp
            .is_some_and(|end| end >= span.start_timestamp),
        "{sql:?} ended"
    );
}

/// The line of this file that holds `needle` (once, but for this call's own line).
fn line_of(needle: &str) -> u32 {
    let source = include_str!("integration_postgres.rs");
    let found: Vec<usize> = source
        .lines()
        .enumerate()
        .filter(|(_, line)| line.contains(needle) && !line.contains("line_of("))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(found.len(), 1, "lines with {needle:?}: {found:?}");
    u32::try_from(found[0]).unwrap()
}

/// The line of the call after the marker `at(line!())` on line `marker`: the first line after
/// it that opens a parenthesis (where the method's name is, however rustfmt split the call).
fn call_line(marker: u32) -> u32 {
    let source = include_str!("integration_postgres.rs");
    let after = usize::try_from(marker).unwrap();
    let (i, _) = source
        .lines()
        .enumerate()
        .skip(after)
        .find(|(_, line)| line.contains('(') && !line.trim_start().starts_with("//"))
        .unwrap_or_else(|| panic!("a call after line {marker}"));
    u32::try_from(i + 1).unwrap()
}

/// Asserts that `tx`'s spans are the statements of `expected`, in order, each with its data
/// beside [`base`] and its status, issued by the call after the marker on the line of `lines` at
/// its index, a child of the caller's span (the request's transaction), and parsing as
/// PostgreSQL (but `unparsable`).
fn assert_statements(
    tx: &Transaction<'_>,
    expected: &[(&str, Data, SpanStatus)],
    lines: &[u32],
    unparsable: &[&str],
) {
    assert_eq!(
        descriptions(tx),
        expected.iter().map(|(sql, ..)| *sql).collect::<Vec<_>>()
    );
    for ((span, (sql, extra, status)), line) in tx.spans.iter().zip(expected).zip(lines) {
        assert_db(span, root_id(tx), sql, call_line(*line), extra, *status);
        if !unparsable.contains(sql) {
            assert_parses_as_postgres(span);
        }
    }
}

/// [`assert_statements`] of statements that all succeed, one a line of `lines`.
fn assert_ok_statements(tx: &Transaction<'_>, expected: &[(&str, Data)], lines: &[u32]) {
    assert_eq!(lines.len(), expected.len());
    let expected: Vec<(&str, Data, SpanStatus)> = expected
        .iter()
        .map(|(sql, extra)| (*sql, extra.clone(), SpanStatus::Ok))
        .collect();
    assert_statements(tx, &expected, lines, &[]);
}

fn descriptions<'a>(tx: &'a Transaction<'_>) -> Vec<&'a str> {
    tx.spans
        .iter()
        .map(|s| s.description.as_deref().unwrap_or_default())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Every method of the client

#[test]
fn every_client_method_is_a_db_span() {
    let rt = env::runtime();
    let schema = Schema::new(&rt, "tpg_");
    let db = rt.block_on(connect(&schema.url()));

    let mut lines = Vec::new();
    let mut at = |line: u32| lines.push(line);
    let tx = only(capture(|| {
        in_transaction("root", || {
            rt.block_on(async {
                at(line!());
                db.batch_execute(CREATE).await.unwrap();
                at(line!());
                assert_eq!(db.execute(INSERT, &[&"ada"]).await.unwrap(), 1);
                at(line!());
                assert_eq!(db.execute_raw(INSERT, ["bob"]).await.unwrap(), 1);
                at(line!());
                let rows = db.query(ALL, &[]).await.unwrap();
                let names: Vec<String> = rows.iter().map(|r| r.get(1)).collect();
                assert_eq!(names, ["ada", "bob"]);
                at(line!());
                let ada: i64 = db.query_one(BY_NAME, &[&"ada"]).await.unwrap().get(0);
                assert_eq!(ada, 1);
                at(line!());
                assert!(db.query_opt(BY_NAME, &[&"eve"]).await.unwrap().is_none());
                at(line!());
                assert!(db.query_opt(BY_NAME, &[&"bob"]).await.unwrap().is_some());
                at(line!());
                let stream = db.query_raw(ALL, Vec::<String>::new()).await.unwrap();
                let streamed: Vec<tokio_postgres::Row> = stream.try_collect().await.unwrap();
                assert_eq!(streamed.len(), 2);
                at(line!());
                let typed = db
                    .query_typed(BY_NAME, &[(&"bob", Type::TEXT)])
                    .await
                    .unwrap();
                assert_eq!(typed[0].get::<_, i64>(0), 2);
                at(line!());
                let stream = db
                    .query_typed_raw(BY_NAME, [("ada", Type::TEXT)])
                    .await
                    .unwrap();
                let streamed: Vec<tokio_postgres::Row> = stream.try_collect().await.unwrap();
                assert_eq!(streamed.len(), 1);
                at(line!());
                let simple = db.simple_query(NAMES).await.unwrap();
                assert_eq!(simple.len(), 4, "description, two rows, completion");
                at(line!());
                db.simple_query(UPPER).await.unwrap();
                // A prepared statement, run twice, and a `String` statement.
                at(line!());
                let by_name: Statement = db.prepare(BY_NAME).await.unwrap();
                assert_eq!(by_name.sql(), BY_NAME);
                assert_eq!(by_name.params(), &[Type::TEXT]);
                at(line!());
                assert_eq!(db.query(&by_name, &[&"ADA"]).await.unwrap().len(), 1);
                at(line!());
                assert_eq!(db.query(&by_name, &[&"nobody"]).await.unwrap().len(), 0);
                at(line!());
                let rename = db
                    .prepare_typed(RENAME, &[Type::TEXT, Type::TEXT])
                    .await
                    .unwrap();
                at(line!());
                assert_eq!(db.execute(&rename, &[&"Ada", &"ADA"]).await.unwrap(), 1);
                let owned: String = NAMES.to_owned();
                at(line!());
                assert_eq!(db.query(&owned, &[]).await.unwrap().len(), 2);
            });
        })
    }));

    let expected: Vec<(&str, Data)> = vec![
        (CREATE, vec![]),
        (INSERT, vec![affected(1)]),
        (INSERT, vec![affected(1)]),
        (ALL, vec![returned(2)]),
        (BY_NAME, vec![returned(1)]),
        (BY_NAME, vec![returned(0)]),
        (BY_NAME, vec![returned(1)]),
        (ALL, vec![returned(2)]),
        (BY_NAME, vec![returned(1)]),
        (BY_NAME, vec![returned(1)]),
        // A SELECT: its rows; no affected rows (its count is of rows returned).
        (NAMES, vec![returned(2)]),
        // No statement returned rows: the count is of the rows updated.
        (UPPER, vec![returned(0), affected(2)]),
        (BY_NAME, vec![]),
        (BY_NAME, vec![returned(1)]),
        (BY_NAME, vec![returned(0)]),
        (RENAME, vec![]),
        (RENAME, vec![affected(1)]),
        (NAMES, vec![returned(2)]),
    ];
    assert_ok_statements(&tx, &expected, &lines);
    for span in &tx.spans {
        assert_eq!(span.trace_id, trace(&tx).trace_id);
    }
}

// ---------------------------------------------------------------------------------------------
// Transactions

#[test]
fn transactions_and_savepoints_commit_and_roll_back() {
    let rt = env::runtime();
    let schema = Schema::new(&rt, "tpg_");
    let mut db = rt.block_on(async {
        let db = connect(&schema.url()).await;
        db.batch_execute(CREATE).await.unwrap();
        db
    });

    let mut lines = Vec::new();
    let mut at = |line: u32| lines.push(line);
    let tx = only(capture(|| {
        in_transaction("root", || {
            rt.block_on(async {
                at(line!());
                let mut t = db.transaction().await.unwrap();
                at(line!());
                t.execute(INSERT, &[&"ada"]).await.unwrap();
                at(line!());
                let sp = t.transaction().await.unwrap();
                at(line!());
                sp.execute(INSERT, &[&"bob"]).await.unwrap();
                at(line!());
                sp.rollback().await.unwrap();
                at(line!());
                let mut keep = t.savepoint("keep").await.unwrap();
                at(line!());
                let inner = keep.transaction().await.unwrap();
                at(line!());
                inner.commit().await.unwrap();
                at(line!());
                let statement = keep.prepare(INSERT).await.unwrap();
                at(line!());
                keep.execute(&statement, &[&"carol"]).await.unwrap();
                at(line!());
                keep.commit().await.unwrap();
                at(line!());
                assert_eq!(t.query(NAMES, &[]).await.unwrap().len(), 2);
                at(line!());
                t.commit().await.unwrap();

                at(line!());
                let t = db.transaction().await.unwrap();
                at(line!());
                t.execute(INSERT, &[&"dave"]).await.unwrap();
                at(line!());
                t.rollback().await.unwrap();
            });
        })
    }));

    // What the transactions did on the server.
    let names: Vec<String> = rt.block_on(async {
        let rows = db.get_ref().query(NAMES, &[]).await.unwrap();
        rows.iter().map(|r| r.get(0)).collect()
    });
    assert_eq!(names, ["ada", "carol"]);

    let expected: Vec<(&str, Data)> = vec![
        ("START TRANSACTION", vec![]),
        (INSERT, vec![affected(1)]),
        ("SAVEPOINT sp_1", vec![]),
        (INSERT, vec![affected(1)]),
        ("ROLLBACK TO sp_1", vec![]),
        ("SAVEPOINT keep", vec![]),
        ("SAVEPOINT sp_2", vec![]),
        ("RELEASE sp_2", vec![]),
        (INSERT, vec![]),
        (INSERT, vec![affected(1)]),
        ("RELEASE keep", vec![]),
        (NAMES, vec![returned(2)]),
        ("COMMIT", vec![]),
        ("START TRANSACTION", vec![]),
        (INSERT, vec![affected(1)]),
        ("ROLLBACK", vec![]),
    ];
    assert_ok_statements(&tx, &expected, &lines);
}

// ---------------------------------------------------------------------------------------------
// Errors

#[test]
fn a_statement_the_server_rejects_is_an_internal_error_with_its_sqlstate() {
    let rt = env::runtime();
    let schema = Schema::new(&rt, "tpg_");
    let db = rt.block_on(async {
        let db = connect(&schema.url()).await;
        db.batch_execute(CREATE).await.unwrap();
        db
    });
    const BROKEN: &str = "SELECT * FROM";
    const MISSING: &str = "SELECT id FROM nowhere";

    let mut lines = Vec::new();
    let mut at = |line: u32| lines.push(line);
    let mut errors = Vec::new();
    let tx = only(capture(|| {
        in_transaction("root", || {
            rt.block_on(async {
                at(line!());
                errors.push(db.query(BROKEN, &[]).await.unwrap_err());
                at(line!());
                errors.push(db.prepare(BROKEN).await.unwrap_err());
                at(line!());
                errors.push(db.batch_execute(BROKEN).await.unwrap_err());
                at(line!());
                errors.push(db.execute(MISSING, &[]).await.unwrap_err());
                // No row for `query_one`: tokio-postgres's own error, without a SQLSTATE.
                at(line!());
                errors.push(db.query_one(BY_NAME, &[&"eve"]).await.unwrap_err());
                // The client still works after the server's errors.
                at(line!());
                assert_eq!(db.query(ALL, &[]).await.unwrap().len(), 0);
            });
        })
    }));

    // The caller gets tokio-postgres's errors, with the server's codes.
    let codes: Vec<Option<&SqlState>> = errors.iter().map(|e| e.code()).collect();
    assert_eq!(
        codes,
        [
            Some(&SqlState::SYNTAX_ERROR),
            Some(&SqlState::SYNTAX_ERROR),
            Some(&SqlState::SYNTAX_ERROR),
            Some(&SqlState::UNDEFINED_TABLE),
            None,
        ]
    );
    assert!(
        errors[4].to_string().contains("unexpected number of rows"),
        "{}",
        errors[4]
    );

    let failed = SpanStatus::InternalError;
    let expected: Vec<(&str, Data, SpanStatus)> = vec![
        (BROKEN, vec![status_code("42601")], failed),
        (BROKEN, vec![status_code("42601")], failed),
        (BROKEN, vec![status_code("42601")], failed),
        (MISSING, vec![status_code("42P01")], failed),
        (BY_NAME, vec![], failed),
        (ALL, vec![returned(0)], SpanStatus::Ok),
    ];
    assert_statements(&tx, &expected, &lines, &[BROKEN]);
}

#[test]
fn a_dropped_connection_fails_the_next_statement_without_a_panic() {
    let rt = env::runtime();
    let schema = Schema::new(&rt, "tpg_");
    let db = rt.block_on(connect(&schema.url()));
    const KILL: &str = "SELECT pg_terminate_backend(pg_backend_pid())";
    const ONE: &str = "SELECT 1";

    let (mut killed, mut after) = (None, None);
    let mut lines = Vec::new();
    let mut at = |line: u32| lines.push(line);
    let tx = only(capture(|| {
        in_transaction("root", || {
            rt.block_on(async {
                at(line!());
                killed = Some(db.execute(KILL, &[]).await);
                at(line!());
                after = Some(db.query(ONE, &[]).await);
            });
        })
    }));

    // The server ends the session while it runs the statement: the statement fails with the
    // server's code, and the next one with tokio-postgres's "connection closed".
    let killed = killed.unwrap().unwrap_err();
    assert_eq!(killed.code(), Some(&SqlState::ADMIN_SHUTDOWN), "{killed}");
    let after = after.unwrap().unwrap_err();
    assert!(after.is_closed(), "{after}");
    assert_eq!(after.code(), None);
    assert!(db.is_closed());

    assert_eq!(descriptions(&tx), [KILL, ONE]);
    let (parent, status) = (root_id(&tx), SpanStatus::InternalError);
    assert_db(
        &tx.spans[0],
        parent,
        KILL,
        call_line(lines[0]),
        &[status_code("57P01")],
        status,
    );
    assert_db(&tx.spans[1], parent, ONE, call_line(lines[1]), &[], status);
    tx.spans.iter().for_each(assert_parses_as_postgres);
}

#[test]
fn a_call_dropped_before_its_reply_is_cancelled() {
    let rt = env::runtime();
    let schema = Schema::new(&rt, "tpg_");
    let db = rt.block_on(async {
        let db = connect(&schema.url()).await;
        db.batch_execute(CREATE).await.unwrap();
        db.execute(INSERT, &[&"ada"]).await.unwrap();
        db.execute(INSERT, &[&"bob"]).await.unwrap();
        db
    });
    const SLOW: &str = "SELECT pg_sleep(0.3)";

    let mut lines = Vec::new();
    let mut at = |line: u32| lines.push(line);
    let tx = only(capture(|| {
        in_transaction("root", || {
            rt.block_on(async {
                let patience = std::time::Duration::from_millis(50);
                at(line!());
                let slow = tokio::time::timeout(patience, db.query(SLOW, &[])).await;
                assert!(slow.is_err(), "pg_sleep(0.3) took less than 50 ms");
                // A stream of two rows, dropped after the first.
                at(line!());
                let stream = db.query_raw(ALL, Vec::<String>::new()).await.unwrap();
                let mut stream = Box::pin(stream);
                assert!(stream.try_next().await.unwrap().is_some());
                drop(stream);
                // The connection carries on.
                at(line!());
                assert_eq!(db.query(ALL, &[]).await.unwrap().len(), 2);
            });
        })
    }));

    let cancelled = SpanStatus::Cancelled;
    let expected: Vec<(&str, Data, SpanStatus)> = vec![
        (SLOW, vec![], cancelled),
        (ALL, vec![returned(1)], cancelled),
        (ALL, vec![returned(2)], SpanStatus::Ok),
    ];
    assert_statements(&tx, &expected, &lines, &[]);
    // The slow call's span lasted until its future was dropped, at the timeout.
    let slow = &tx.spans[0];
    let lasted = slow
        .timestamp
        .unwrap()
        .duration_since(slow.start_timestamp)
        .unwrap();
    assert!(lasted >= std::time::Duration::from_millis(50), "{lasted:?}");
}

#[test]
fn the_client_and_its_futures_cross_threads() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let rt = env::runtime();
    let mut db = rt.block_on(connect(&env::database_url()));
    send_sync(&db);
    send(&db.query(ALL, &[]));
    send(&db.query_raw(ALL, Vec::<String>::new()));
    send(&db.prepare(ALL));
    let name = String::from("ada");
    send(&db.execute(INSERT, &[&name]));
    send(&db.transaction());
    // Nothing ran: the futures were never polled, so nothing was sent to the server.
    assert!(!db.is_closed());
}

// ---------------------------------------------------------------------------------------------
// Without Sentry

/// The same statements, recorded or not.
async fn workload(db: &Client) -> Vec<String> {
    db.batch_execute(CREATE).await.unwrap();
    db.execute(INSERT, &[&"ada"]).await.unwrap();
    let statement = db.prepare(BY_NAME).await.unwrap();
    assert_eq!(db.query(&statement, &[&"ada"]).await.unwrap().len(), 1);
    let stream = db.query_raw(NAMES, Vec::<String>::new()).await.unwrap();
    let rows: Vec<tokio_postgres::Row> = stream.try_collect().await.unwrap();
    db.batch_execute("DROP TABLE items").await.unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

#[test]
fn nothing_is_recorded_without_a_sentry_client() {
    let rt = env::runtime();
    let schema = Schema::new(&rt, "tpg_");
    let url = schema.url();

    // No client anywhere: the statements run and give their results.
    let names = rt.block_on(async { workload(&connect(&url).await).await });
    assert_eq!(names, ["ada"]);

    // A client on the test's hub, a transaction current on it, but the statements run on a
    // hub without a client: nothing is added to the transaction, and nothing else is sent.
    let tx = only(capture(|| {
        in_transaction("root", || {
            let db = rt.block_on(connect(&url));
            let bare = Arc::new(Hub::new(None, Arc::default()));
            let names = rt.block_on(async { workload(&db).await }.bind_hub(bare));
            assert_eq!(names, ["ada"]);
        })
    }));
    assert_eq!(tx.spans.len(), 0, "{:#?}", tx.spans);

    // A client that samples nothing: nothing is sent.
    let txs = capture_with(ClientOptions::new().traces_sample_rate(0.0), || {
        in_transaction("root", || {
            let names = rt.block_on(async { workload(&connect(&url).await).await });
            assert_eq!(names, ["ada"]);
        })
    });
    assert!(txs.is_empty(), "{txs:#?}");

    // The control: the same workload on the test's hub is recorded.
    let tx = only(capture(|| {
        in_transaction("root", || {
            rt.block_on(async { workload(&connect(&url).await).await });
        })
    }));
    assert_eq!(tx.spans.len(), 6);
}

// ---------------------------------------------------------------------------------------------
// Concurrency

#[test]
fn concurrent_requests_sharing_a_client_keep_their_own_parents() {
    const REQUESTS: i64 = 200;
    const ECHO: &str = "SELECT $1::BIGINT + 0";
    const COUNT: &str = "SELECT count(*) FROM generate_series(1, $1::BIGINT)";
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let db = Arc::new(rt.block_on(connect(&env::database_url())));

    let echo_line = line_of("db.query_one(ECHO");
    let count_line = line_of("db.query_one(COUNT");
    let txs = capture(|| {
        rt.block_on(async {
            let mut tasks = Vec::new();
            for i in 0..REQUESTS {
                let db = Arc::clone(&db);
                let hub = Arc::new(Hub::new_from_top(Hub::current()));
                let request = async move {
                    let name = format!("GET /items/{i}");
                    let tx =
                        sentry::start_transaction(TransactionContext::new(&name, "http.server"));
                    sentry::configure_scope(|s| s.set_span(Some(tx.clone().into())));
                    let echoed: i64 = db.query_one(ECHO, &[&i]).await.unwrap().get(0);
                    tokio::task::yield_now().await;
                    let n = i % 7;
                    let counted: i64 = db.query_one(COUNT, &[&n]).await.unwrap().get(0);
                    sentry::configure_scope(|s| s.set_span(None));
                    tx.finish();
                    (echoed, counted)
                };
                tasks.push((i, tokio::spawn(request.bind_hub(hub))));
            }
            for (i, task) in tasks {
                // Pipelined on one connection, each request got its own rows.
                assert_eq!(task.await.unwrap(), (i, i % 7));
            }
        });
    });

    assert_eq!(txs.len(), 200);
    let mut traces = HashSet::new();
    for tx in &txs {
        let name = tx.name.as_deref().expect("a name");
        assert!(traces.insert(trace(tx).trace_id), "one trace per request");
        assert_eq!(descriptions(tx), [ECHO, COUNT], "{name}");
        for span in &tx.spans {
            assert_eq!(span.trace_id, trace(tx).trace_id, "{name}");
        }
        assert_db(
            &tx.spans[0],
            root_id(tx),
            ECHO,
            echo_line,
            &[returned(1)],
            SpanStatus::Ok,
        );
        assert_db(
            &tx.spans[1],
            root_id(tx),
            COUNT,
            count_line,
            &[returned(1)],
            SpanStatus::Ok,
        );
        tx.spans.iter().for_each(assert_parses_as_postgres);
    }
}
