//! Every description the db runtime builds is SQL that Sentry's parser (sqlparser, under the
//! dialect of the span's `db.system`) accepts.

use insights_runtime::db::{statement, Operation};
use sqlparser::dialect::dialect_from_str;
use sqlparser::parser::Parser;

const SYSTEMS: &[&str] = &[
    "postgresql",
    "mysql",
    "sqlite",
    "mssql",
    "mariadb",
    "oracle",
    "clickhouse",
    "generic",
];
const TABLES: &[&str] = &[
    "users",
    "public.users",
    "order",
    "user",
    "Order Items",
    "weird\"name",
    "weird`name",
    "weird]name",
    "t1",
    "_private",
];
const FILTERS: &[&[&str]] = &[
    &[],
    &["email"],
    &["id", "tenant_id"],
    &["group", "select"],
    &["two words"],
];

/// Parses `sql` as Sentry does: with the dialect named by `db.system`, else the generic one.
pub fn parses(system: &str, sql: &str) -> Result<(), String> {
    let dialect =
        dialect_from_str(system).unwrap_or_else(|| Box::new(sqlparser::dialect::GenericDialect {}));
    Parser::parse_sql(dialect.as_ref(), sql)
        .map(|_| ())
        .map_err(|e| format!("{system}: {sql}: {e}"))
}

#[test]
fn every_generated_statement_parses_under_its_dialect() {
    let mut failures = Vec::new();
    let mut count = 0;
    for system in SYSTEMS {
        for table in TABLES {
            for operation in Operation::ALL {
                for filters in FILTERS {
                    let sql = statement(system, table, operation, filters);
                    count += 1;
                    if let Err(e) = parses(system, &sql) {
                        failures.push(e);
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn statements_are_stable_and_carry_no_values() {
    assert_eq!(
        statement("postgresql", "users", Operation::Select, &["email"]),
        "SELECT * FROM users WHERE email = $1"
    );
    assert_eq!(
        statement("postgresql", "users", Operation::Select, &["email"]),
        statement("postgresql", "users", Operation::Select, &["email"])
    );
    assert_eq!(
        statement("sqlite", "users", Operation::Insert, &["a", "b"]),
        "INSERT INTO users (a, b) VALUES (?, ?)"
    );
    assert_eq!(
        statement("postgresql", "users", Operation::Insert, &[]),
        "INSERT INTO users VALUES ($1)"
    );
    assert_eq!(
        statement("postgresql", "users", Operation::Update, &["id"]),
        "UPDATE users SET changed = $1 WHERE id = $2"
    );
    assert_eq!(
        statement("mssql", "users", Operation::Delete, &["id"]),
        "DELETE FROM users WHERE id = @p1"
    );
    assert_eq!(
        statement("mysql", "user", Operation::Select, &[]),
        "SELECT * FROM `user`"
    );
    assert_eq!(
        statement("postgresql", "Order Items", Operation::Select, &[]),
        "SELECT * FROM \"Order Items\""
    );
    assert_eq!(
        statement("mssql", "a]b", Operation::Select, &[]),
        "SELECT * FROM [a]]b]"
    );
}
