//! Every data key the automatic integrations send (sqlx, tokio-postgres, redis), held against
//! Sentry's attribute registry as `tests/registry.rs` holds the attributes' keys: real spans
//! from the real servers, each key in the fixture with the registry's JSON type, deprecated
//! keys with their replacement beside them, and every key of the fixture's `integrations`
//! section sent at least once.

mod common;
#[path = "services/env.rs"]
#[allow(dead_code, reason = "the helpers the other service tests use")]
mod env;

use std::collections::BTreeSet;

use common::registry::{self, Registry};
use common::{capture, in_transaction};
use env::{runtime, unique};
use redis::AsyncCommands;

#[test]
fn every_key_the_integrations_send_has_the_registrys_type() {
    let rt = runtime();
    let prefix = format!("reg-{}:", unique());
    let (redis_client, redis_conn) = rt.block_on(env::redis());
    let url = env::database_url();
    let config: tokio_postgres::Config = url.parse().expect("DATABASE_URL");
    let pg = rt.block_on(env::postgres(&url));
    let pg = insights_runtime::postgres::Client::new(pg, &config);
    let sqlite = insights_runtime::sqlx::Traced::new(
        rt.block_on(sqlx::SqlitePool::connect("sqlite::memory:"))
            .expect("an in-memory SQLite"),
    );
    let mut redis = insights_runtime::redis::Config::new()
        .cache_prefixes([prefix.as_str()])
        .server_of(redis_client.get_connection_info())
        .wrap(redis_conn);
    let key = format!("{prefix}item");
    let list = format!("{prefix}list");

    let txs = capture(|| {
        in_transaction("registry", || {
            rt.block_on(async {
                // tokio-postgres: rows returned, rows affected, a failing statement's code.
                pg.query("SELECT 1::int4", &[]).await.expect("SELECT");
                pg.execute("SET search_path TO public", &[])
                    .await
                    .expect("SET");
                pg.query("SELEC 1", &[]).await.expect_err("a syntax error");
                // sqlx.
                let _: Vec<(i64,)> = sqlx::query_as("SELECT 1")
                    .fetch_all(&sqlite)
                    .await
                    .expect("sqlx on SQLite");
                // redis: cache spans, their db.redis children, a command outside the
                // prefixes, a refused command and a pipeline.
                let _: () = redis.set_ex(&key, "value", 60).await.expect("SETEX");
                let _: Option<String> = redis.get(&key).await.expect("GET");
                let _: i64 = redis.incr(format!("x{prefix}"), 1).await.expect("INCR");
                let _: () = redis.rpush(&list, "a").await.expect("RPUSH");
                let _ = redis.get::<_, Option<String>>(&list).await;
                let _: (i64, i64) = redis::pipe()
                    .incr(format!("x{prefix}"), 1)
                    .incr(format!("x{prefix}"), 1)
                    .query_async(&mut redis)
                    .await
                    .expect("a pipeline");
                let _: () = redis.del(&[&key, &list]).await.expect("DEL");
            });
        })
    });

    let registry = Registry::load(&[
        registry::ATTRIBUTES[0],
        registry::ATTRIBUTES[1],
        registry::INTEGRATIONS,
    ]);
    let spans: Vec<_> = txs.iter().flat_map(|tx| &tx.spans).collect();
    assert!(spans.len() >= 12, "{} spans", spans.len());
    let mut seen = BTreeSet::new();
    for span in &spans {
        seen.extend(registry.check(span));
    }
    let own = Registry::keys_of(registry::INTEGRATIONS);
    let unsent: Vec<_> = own.iter().filter(|k| !seen.contains(k.as_str())).collect();
    assert!(
        unsent.is_empty(),
        "in the fixture's integrations section, never sent: {unsent:?}"
    );
}
