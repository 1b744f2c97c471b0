//! Where the services are, connecting to them with a clear failure when one is down, and
//! names unique to one test so that runs never share tables, keys or queues.

use std::future::Future;
use std::time::Duration;

use lapin::options::QueueDeleteOptions;
use lapin::types::ShortString;

pub const START_HINT: &str =
    "the service suite needs PostgreSQL, Redis and RabbitMQ running (README, \"Real services\"; \
     override the addresses with DATABASE_URL, REDIS_URL, AMQP_URL)";

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

pub fn database_url() -> String {
    env_or("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
}

pub fn redis_url() -> String {
    env_or("REDIS_URL", "redis://127.0.0.1:6379/")
}

pub fn amqp_url() -> String {
    env_or("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f")
}

/// NATS with JetStream, for tests/integration_nats.rs and the `nats_peer` example.
pub fn nats_url() -> String {
    env_or("NATS_URL", "nats://127.0.0.1:4222")
}

/// MariaDB (or MySQL), for the sqlx integration's tests.
pub fn mysql_url() -> String {
    env_or("MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
}

/// `connecting`'s result, or a failure naming `service` and where it was looked for
/// (`variable=url`) when it fails or takes more than 10 s: for clients this file does not
/// build itself (sqlx pools).
pub async fn reach<T, E: std::error::Error>(
    service: &str,
    variable: &str,
    url: &str,
    connecting: impl Future<Output = Result<T, E>>,
) -> T {
    within(service, variable, url, connecting).await
}

/// A lower-case hex suffix unique to this call.
pub fn unique() -> String {
    sentry::types::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// `DATABASE_URL` with `search_path` set to `schema`, so that the `items` table of one test is
/// its own.
pub fn database_url_in(schema: &str) -> String {
    let url = database_url();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}options=-c%20search_path%3D{schema}")
    } else {
        format!("{url} options='-c search_path={schema}'")
    }
}

/// A multi-threaded runtime: connection tasks keep running between `block_on` calls, while
/// the future given to `block_on` runs on the test's thread, under its hub.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// `e` and its sources (a `tokio_postgres::Error` alone says only "error connecting to
/// server").
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text = format!("{text}: {inner_text}");
        }
        source = inner.source();
    }
    text
}

/// `url` without the password of its user, for messages.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((user_info, host)) if user_info.contains(':') => {
            let user = user_info.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_owned(),
    }
}

async fn within<T, E: std::error::Error>(
    service: &str,
    variable: &str,
    url: &str,
    connecting: impl Future<Output = Result<T, E>>,
) -> T {
    match tokio::time::timeout(Duration::from_secs(10), connecting).await {
        Ok(Ok(connected)) => connected,
        Ok(Err(e)) => panic!(
            "{service} is not reachable at {variable}={}: {}\n{START_HINT}",
            redacted(url),
            chain(&e)
        ),
        Err(_) => panic!(
            "{service} did not answer within 10 s at {variable}={}\n{START_HINT}",
            redacted(url)
        ),
    }
}

/// A PostgreSQL client on `url`.
pub async fn postgres(url: &str) -> tokio_postgres::Client {
    let (client, connection) = within(
        "PostgreSQL",
        "DATABASE_URL",
        url,
        tokio_postgres::connect(url, tokio_postgres::NoTls),
    )
    .await;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// A Redis connection, and the client it came from.
pub async fn redis() -> (redis::Client, redis::aio::MultiplexedConnection) {
    let url = redis_url();
    let client = redis::Client::open(url.as_str())
        .unwrap_or_else(|e| panic!("REDIS_URL={} is not a Redis URL: {e}", redacted(&url)));
    let conn = within(
        "Redis",
        "REDIS_URL",
        &url,
        client.get_multiplexed_async_connection(),
    )
    .await;
    (client, conn)
}

/// The host and port of `client`'s server.
pub fn redis_server(client: &redis::Client) -> (String, u16) {
    match client.get_connection_info().addr() {
        redis::ConnectionAddr::Tcp(host, port) => (host.clone(), *port),
        other => panic!("the suite expects Redis over TCP, REDIS_URL gives {other:?}"),
    }
}

/// A RabbitMQ connection.
pub async fn rabbitmq() -> lapin::Connection {
    let url = amqp_url();
    within(
        "RabbitMQ",
        "AMQP_URL",
        &url,
        lapin::Connection::connect(&url, lapin::ConnectionProperties::default()),
    )
    .await
}

/// A NATS client (`NATS_URL`), failing with where it looked and how to start NATS when the
/// server is down or does not answer within 10 s.
pub async fn nats() -> async_nats::Client {
    let url = nats_url();
    let hint = "the NATS tests (integration_nats, nats_headers_prop) need a NATS server with \
                JetStream (`nats-server -js`; Debian's `nats-server` package) on \
                127.0.0.1:4222, or NATS_URL pointing at one";
    match tokio::time::timeout(Duration::from_secs(10), async_nats::connect(url.as_str())).await {
        Ok(Ok(client)) => client,
        Ok(Err(e)) => panic!(
            "NATS is not reachable at NATS_URL={}: {}\n{hint}",
            redacted(&url),
            chain(&e)
        ),
        Err(_) => panic!(
            "NATS did not answer within 10 s at NATS_URL={}\n{hint}",
            redacted(&url)
        ),
    }
}

/// A PostgreSQL schema of one test, dropped at its end (also when the test fails; errors there
/// are ignored). Connect through [`Schema::url`], whose `search_path` is the schema.
pub struct Schema(String);

impl Schema {
    /// Creates a schema named `prefix` and a unique suffix (PostgreSQL reserves `pg_`).
    pub fn new(rt: &tokio::runtime::Runtime, prefix: &str) -> Self {
        Self::create(rt, format!("{prefix}{}", unique()))
    }

    /// Creates the schema `name`.
    pub fn create(rt: &tokio::runtime::Runtime, name: String) -> Self {
        assert!(
            !name.starts_with("pg_"),
            "PostgreSQL reserves schema names starting with pg_: {name}"
        );
        rt.block_on(async {
            let db = postgres(&database_url()).await;
            db.batch_execute(&format!("CREATE SCHEMA {name}"))
                .await
                .unwrap_or_else(|e| panic!("CREATE SCHEMA {name}: {e:?}"));
        });
        Schema(name)
    }

    pub fn name(&self) -> &str {
        &self.0
    }

    /// `DATABASE_URL` with `search_path` set to this schema.
    pub fn url(&self) -> String {
        database_url_in(&self.0)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let drop_schema = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.0);
        cleanup(async move {
            if let Ok((db, connection)) =
                tokio_postgres::connect(&database_url(), tokio_postgres::NoTls).await
            {
                tokio::spawn(connection);
                let _ = db.batch_execute(&drop_schema).await;
            }
        });
    }
}

/// Runs `work` to its end or for 10 s at most, on a runtime of its own: for `Drop`, which may
/// run during a panic and outside any runtime.
fn cleanup(work: impl Future<Output = ()>) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    rt.block_on(async move {
        let _ = tokio::time::timeout(Duration::from_secs(10), work).await;
    });
}

/// A PostgreSQL schema and a RabbitMQ queue of one test, dropped at its end (also when it
/// fails; errors there are ignored). Redis keys are written with a TTL instead.
pub struct Scratch {
    pub schema: Schema,
    pub queue: String,
}

impl Scratch {
    /// Creates the schema (the queue is declared by whoever uses it first).
    pub fn new(rt: &tokio::runtime::Runtime) -> Self {
        let suffix = unique();
        Scratch {
            schema: Schema::create(rt, format!("svc_{suffix}")),
            queue: format!("item-jobs.{suffix}"),
        }
    }

    pub fn database_url(&self) -> String {
        self.schema.url()
    }
}

impl Drop for Scratch {
    /// Deletes the queue; the schema drops itself after.
    fn drop(&mut self) {
        let queue = self.queue.clone();
        cleanup(async move {
            if let Ok(amqp) =
                lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default())
                    .await
            {
                if let Ok(channel) = amqp.create_channel().await {
                    let _ = channel
                        .queue_delete(ShortString::from(queue), QueueDeleteOptions::default())
                        .await;
                }
            }
        });
    }
}
