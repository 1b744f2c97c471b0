//! The `metrics` feature: the reference service's Prometheus metrics recorded beside every db,
//! cache and queue span, by the attributes and by the `track_*` counterparts of the reference's
//! helpers. Read back through `metrics-exporter-prometheus`, as a scrape would see them.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::time::Duration;

use common::{capture, in_transaction};
use futures::executor::block_on;
use insights_runtime::cache::{track_cache_get, track_cache_remove, track_cache_set};
use insights_runtime::db::{track_database_query, Operation};
use insights_runtime::queue::{track_queue_process, track_queue_publish};
use insights_runtime::{
    instrument_cache_operation, instrument_db_operation, instrument_queue_process,
    instrument_queue_publish,
};
use metrics_exporter_prometheus::PrometheusBuilder;
use sentry::protocol::{SpanStatus, Transaction};

/// Runs `f` with its own Prometheus recorder (on this thread only) and returns the scrape.
fn scrape(f: impl FnOnce()) -> Scrape {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, f);
    Scrape::parse(&handle.render())
}

/// A parsed Prometheus text exposition: `name{labels}` → value.
#[derive(Debug)]
struct Scrape {
    text: String,
    samples: BTreeMap<(String, BTreeMap<String, String>), f64>,
}

impl Scrape {
    fn parse(text: &str) -> Self {
        let mut samples = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (series, value) = line.rsplit_once(' ').expect("sample line");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter(|l| !l.is_empty())
                .map(|l| {
                    let (k, v) = l.split_once('=').expect("label");
                    (k.to_owned(), v.trim_matches('"').to_owned())
                })
                .collect();
            samples.insert((name.to_owned(), labels), value.parse().expect("value"));
        }
        Scrape {
            text: text.to_owned(),
            samples,
        }
    }

    /// The value of `name` with exactly these labels (0 when absent: a counter not yet touched).
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.samples
            .get(&(name.to_owned(), labels))
            .copied()
            .unwrap_or(0.0)
    }

    /// Every series of `name`, as label maps.
    fn series(&self, name: &str) -> Vec<&BTreeMap<String, String>> {
        self.samples
            .keys()
            .filter(|(n, _)| n == name)
            .map(|(_, labels)| labels)
            .collect()
    }
}

// --- databases -------------------------------------------------------------------------------

#[instrument_db_operation(table = "users", operation = "select")]
fn select_user(id: u64) -> Result<Option<String>, String> {
    match id {
        0 => Err("connection reset".to_owned()),
        1 => Ok(Some("ada".to_owned())),
        _ => Ok(None),
    }
}

#[instrument_db_operation(
    query = "UPDATE orders SET paid = true WHERE id = $1",
    table = "orders"
)]
async fn pay(id: u64) -> Result<u64, String> {
    futures::future::ready(()).await;
    Ok(id)
}

#[instrument_db_operation(query_param = "sql")]
fn run_sql(sql: &str) -> usize {
    sql.len()
}

const ARCHIVE: &str = "insert into archive SELECT * FROM orders WHERE paid";

/// A query given by path: labelled at compile time from the `const`'s first keyword.
#[instrument_db_operation(query = ARCHIVE, table = "archive")]
fn archive() -> Result<u64, String> {
    Ok(1)
}

#[test]
fn queries_are_counted_and_timed_by_table_and_operation_failed_ones_too() {
    let scrape = scrape(|| {
        let _ = select_user(1);
        let _ = select_user(2);
        let _ = select_user(0); // fails
        let _ = block_on(pay(7));
        run_sql("delete from sessions where expired");
        run_sql("VACUUM");
        let _ = archive();
    });
    let queries = "database_queries_total";
    assert_eq!(
        scrape.get(queries, &[("table", "users"), ("operation", "select")]),
        3.0
    );
    assert_eq!(
        scrape.get(queries, &[("table", "orders"), ("operation", "update")]),
        1.0
    );
    // No table given: `unknown`; the operation from the statement's first keyword.
    assert_eq!(
        scrape.get(queries, &[("table", "unknown"), ("operation", "delete")]),
        1.0
    );
    assert_eq!(
        scrape.get(queries, &[("table", "unknown"), ("operation", "other")]),
        1.0
    );
    let durations = "database_query_duration_seconds_count";
    assert_eq!(scrape.get(durations, &[("table", "users")]), 3.0);
    assert_eq!(scrape.get(durations, &[("table", "orders")]), 1.0);
    assert_eq!(scrape.get(durations, &[("table", "unknown")]), 2.0);
    assert_eq!(
        scrape.get(queries, &[("table", "archive"), ("operation", "insert")]),
        1.0
    );
}

#[test]
fn metrics_and_spans_are_recorded_together_and_metrics_without_sentry() {
    let mut transactions = Vec::new();
    let with_sentry = scrape(|| {
        transactions = capture(|| {
            in_transaction("request", || {
                let _ = select_user(1);
            });
        });
    });
    assert_eq!(transactions.len(), 1);
    let span = &transactions[0].spans[0];
    assert_eq!(span.op.as_deref(), Some("db"));
    assert_eq!(
        with_sentry.get(
            "database_queries_total",
            &[("table", "users"), ("operation", "select")]
        ),
        1.0
    );

    // No client at all: no span, and the metric still counts the traffic.
    let without_sentry = scrape(|| {
        let _ = select_user(1);
    });
    assert_eq!(
        without_sentry.get(
            "database_queries_total",
            &[("table", "users"), ("operation", "select")]
        ),
        1.0
    );
}

// --- caches ----------------------------------------------------------------------------------

#[instrument_cache_operation(get, key_param = "key", cache_name = "profiles")]
fn cached_profile(key: &str) -> Option<String> {
    (key == "profile:1").then(|| "ada".to_owned())
}

#[instrument_cache_operation(get, key_param = "key", cache_name = "profiles")]
async fn cached_profile_bytes(key: &str) -> Result<Option<Vec<u8>>, String> {
    match key {
        "broken" => Err("timeout".to_owned()),
        "profile:1" => Ok(Some(b"ada".to_vec())),
        _ => Ok(None),
    }
}

#[instrument_cache_operation(put, key_param = "key", cache_name = "profiles")]
fn store_profile(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("empty key".to_owned());
    }
    Ok(())
}

#[instrument_cache_operation(remove, key_param = "key")]
fn forget(key: &str) {
    let _ = key;
}

struct Redis {
    tracker: insights_runtime::cache::CacheTracker,
}

impl Redis {
    // No `cache_name`: the tracker's name labels the metrics.
    #[instrument_cache_operation(get, key_param = "key", tracker = &self.tracker)]
    fn get(&self, key: &str) -> Option<String> {
        (key == "a").then(String::new)
    }
}

#[test]
fn the_attributes_tracker_names_the_cache_in_the_metrics() {
    let redis = Redis {
        tracker: insights_runtime::cache::CacheTracker::new("redis").name("carts"),
    };
    let scrape = scrape(|| {
        redis.get("a");
        redis.get("b");
    });
    assert_eq!(
        scrape.get("cache_hits_total", &[("cache_name", "carts")]),
        1.0
    );
    assert_eq!(
        scrape.get("cache_misses_total", &[("cache_name", "carts")]),
        1.0
    );
}

#[test]
fn cache_reads_count_hits_and_misses_from_the_value_and_writes_count_successes() {
    let scrape = scrape(|| {
        cached_profile("profile:1");
        cached_profile("profile:2");
        cached_profile("profile:3");
        let _ = block_on(cached_profile_bytes("profile:1"));
        let _ = block_on(cached_profile_bytes("broken")); // neither hit nor miss
        let _ = store_profile("profile:2");
        let _ = store_profile(""); // failed: not a set
        forget("profile:1");
    });
    let profiles = [("cache_name", "profiles")];
    assert_eq!(scrape.get("cache_hits_total", &profiles), 2.0);
    assert_eq!(scrape.get("cache_misses_total", &profiles), 2.0);
    assert_eq!(scrape.get("cache_sets_total", &profiles), 1.0);
    // No `cache_name`: `default`.
    assert_eq!(
        scrape.get("cache_removes_total", &[("cache_name", "default")]),
        1.0
    );
    // Keys never become labels.
    assert!(!scrape.text.contains("profile:"), "{}", scrape.text);
}

// --- queues ----------------------------------------------------------------------------------

#[instrument_queue_publish(
    destination = "emails",
    system = "in-memory",
    headers_param = "headers"
)]
fn publish_email(headers: &mut HashMap<String, String>, fail: bool) -> Result<(), String> {
    let _ = headers;
    if fail {
        Err("broker down".to_owned())
    } else {
        Ok(())
    }
}

#[instrument_queue_process(
    destination = "emails",
    system = "in-memory",
    headers_param = "headers"
)]
async fn send_email(headers: &HashMap<String, String>, fail: bool) -> Result<(), String> {
    let _ = headers;
    futures::future::ready(()).await;
    if fail {
        Err("smtp refused".to_owned())
    } else {
        Ok(())
    }
}

#[test]
fn queue_messages_are_counted_by_queue_and_status_with_durations_and_latency() {
    let mut headers = HashMap::new();
    let scrape = scrape(|| {
        // Published inside a sampled transaction, so the message carries its enqueue time.
        let _ = capture(|| {
            in_transaction("request", || {
                let _ = publish_email(&mut headers, false);
                let _ = publish_email(&mut HashMap::new(), true);
            });
        });
        let _ = block_on(send_email(&headers, false));
        let _ = block_on(send_email(&headers, true));
        let _ = block_on(send_email(&HashMap::new(), false)); // no enqueue time
                                                              // Dropped before it completes.
        drop(send_email(&HashMap::new(), false));
    });
    let emails = [("queue_name", "emails")];
    assert!(headers.contains_key("sentry-task-enqueued-time"));
    assert_eq!(scrape.get("queue_messages_published_total", &emails), 1.0);
    let processed = "queue_messages_processed_total";
    assert_eq!(
        scrape.get(processed, &[("queue_name", "emails"), ("status", "ok")]),
        2.0
    );
    assert_eq!(
        scrape.get(processed, &[("queue_name", "emails"), ("status", "error")]),
        1.0
    );
    // A future dropped unpolled never started: nothing is recorded for it.
    assert_eq!(scrape.series(processed).len(), 2, "{}", scrape.text);
    assert_eq!(
        scrape.get("queue_process_duration_seconds_count", &emails),
        3.0
    );
    assert_eq!(
        scrape.get("queue_receive_latency_seconds_count", &emails),
        2.0
    );
}

#[test]
fn a_message_dropped_while_being_handled_counts_as_cancelled() {
    let scrape = scrape(|| {
        let headers = HashMap::new();
        let mut handling = Box::pin(send_email_slowly(&headers));
        let waker = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(handling.as_mut().poll(&mut cx).is_pending());
        drop(handling);
    });
    assert_eq!(
        scrape.get(
            "queue_messages_processed_total",
            &[("queue_name", "emails"), ("status", "cancelled")]
        ),
        1.0
    );
}

#[instrument_queue_process(
    destination = "emails",
    system = "in-memory",
    headers_param = "headers"
)]
async fn send_email_slowly(headers: &HashMap<String, String>) {
    let _ = headers;
    futures::future::pending::<()>().await;
}

// --- the counterparts of the reference's helpers -----------------------------------------------

/// A future that takes `ms` of real time, like a network call.
async fn slow<T>(ms: u64, value: T) -> T {
    let (tx, rx) = futures::channel::oneshot::channel();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(ms));
        let _ = tx.send(());
    });
    let _ = rx.await;
    value
}

fn span_ms(tx: &Transaction<'_>, op: &str) -> f64 {
    let span = tx
        .spans
        .iter()
        .find(|s| s.op.as_deref() == Some(op))
        .unwrap_or_else(|| panic!("no {op} span in {:#?}", tx.spans));
    let end = span.timestamp.expect("finished");
    end.duration_since(span.start_timestamp)
        .expect("ends after it starts")
        .as_secs_f64()
        * 1000.0
}

#[test]
fn track_functions_record_the_metric_and_a_span_around_the_real_operation() {
    let mut transactions = Vec::new();
    let scrape = scrape(|| {
        transactions = capture(|| {
            in_transaction("request", || {
                block_on(async {
                    let rows: Result<Vec<u64>, String> =
                        track_database_query("users", Operation::Select, slow(30, Ok(vec![1])))
                            .await;
                    assert_eq!(rows, Ok(vec![1]));
                    let hit: Option<Vec<u8>> =
                        track_cache_get("sessions", "session:42", slow(1, Some(b"abc".to_vec())))
                            .await;
                    assert!(hit.is_some());
                    let miss: Option<String> =
                        track_cache_get("sessions", "session:43", slow(1, None)).await;
                    assert!(miss.is_none());
                    let set: Result<(), String> =
                        track_cache_set("sessions", "session:43", slow(1, Ok(()))).await;
                    assert!(set.is_ok());
                    let removed: Result<(), String> =
                        track_cache_remove("sessions", "session:42", slow(1, Ok(()))).await;
                    assert!(removed.is_ok());
                    let mut message = HashMap::new();
                    let published: Result<(), String> =
                        track_queue_publish("jobs", "in-memory", |headers| {
                            if let Some(h) = headers {
                                h.inject(&mut message);
                            }
                            slow(1, Ok(()))
                        })
                        .await;
                    assert!(published.is_ok());
                    let handled: Result<(), String> = track_queue_process(
                        "jobs",
                        "in-memory",
                        &message,
                        slow(1, Err("x".into())),
                    )
                    .await;
                    assert!(handled.is_err());
                });
            });
        });
    });

    // Metrics.
    assert_eq!(
        scrape.get(
            "database_queries_total",
            &[("table", "users"), ("operation", "select")]
        ),
        1.0
    );
    let sessions = [("cache_name", "sessions")];
    assert_eq!(scrape.get("cache_hits_total", &sessions), 1.0);
    assert_eq!(scrape.get("cache_misses_total", &sessions), 1.0);
    assert_eq!(scrape.get("cache_sets_total", &sessions), 1.0);
    assert_eq!(scrape.get("cache_removes_total", &sessions), 1.0);
    assert_eq!(
        scrape.get("queue_messages_published_total", &[("queue_name", "jobs")]),
        1.0
    );
    assert_eq!(
        scrape.get(
            "queue_messages_processed_total",
            &[("queue_name", "jobs"), ("status", "error")]
        ),
        1.0
    );
    assert_eq!(
        scrape.get(
            "queue_receive_latency_seconds_count",
            &[("queue_name", "jobs")]
        ),
        1.0
    );
    assert!(!scrape.text.contains("session:4"), "{}", scrape.text);

    // Spans: the request's, and the consumer's own transaction.
    let request = transactions
        .iter()
        .find(|t| t.name.as_deref() == Some("request"))
        .expect("request transaction");
    let ops: Vec<_> = request
        .spans
        .iter()
        .filter_map(|s| s.op.as_deref())
        .collect();
    assert_eq!(
        ops,
        [
            "db",
            "cache.get",
            "cache.get",
            "cache.put",
            "cache.remove",
            "queue.publish"
        ]
    );
    let db = &request.spans[0];
    assert_eq!(db.description.as_deref(), Some("SELECT * FROM users"));
    assert_eq!(db.status, Some(SpanStatus::Ok));
    // The span covers the query's real latency, unlike the reference's zero-length span.
    assert!(span_ms(request, "db") >= 30.0, "{}", span_ms(request, "db"));
    let hits: Vec<_> = request
        .spans
        .iter()
        .filter(|s| s.op.as_deref() == Some("cache.get"))
        .map(|s| s.data.get("cache.hit").cloned())
        .collect();
    assert_eq!(hits, [Some(true.into()), Some(false.into())]);
    let consumer = transactions
        .iter()
        .find(|t| {
            t.spans
                .iter()
                .any(|s| s.op.as_deref() == Some("queue.process"))
        })
        .expect("consumer transaction");
    assert_eq!(consumer.spans[0].status, Some(SpanStatus::InternalError));
    assert_eq!(
        common::trace(consumer).trace_id,
        common::trace(request).trace_id
    );
}

// --- queue names known at run time -------------------------------------------------------------

/// A worker whose queue name comes from its configuration (a bounded set of names: the label
/// takes the value as it is).
struct Worker {
    queue: String,
}

impl Worker {
    #[instrument_queue_publish(
        destination = self.queue,
        system = "in-memory",
        headers_param = "headers"
    )]
    fn publish(&self, headers: &mut HashMap<String, String>, fail: bool) -> Result<(), String> {
        let _ = headers;
        if fail {
            Err("broker down".to_owned())
        } else {
            Ok(())
        }
    }

    #[instrument_queue_process(
        destination = self.queue.as_str(),
        system = "in-memory",
        headers_param = "headers"
    )]
    async fn handle(&self, headers: &HashMap<String, String>, fail: bool) -> Result<(), String> {
        let _ = headers;
        futures::future::ready(()).await;
        if fail {
            Err("smtp refused".to_owned())
        } else {
            Ok(())
        }
    }

    #[instrument_queue_process(destination = self.queue, system = "in-memory")]
    async fn handle_slowly(&self) {
        futures::future::pending::<()>().await;
    }
}

#[test]
fn a_destination_expression_labels_the_queue_metrics_with_its_value() {
    let eu = Worker {
        queue: "jobs-eu".to_owned(),
    };
    let us = Worker {
        queue: "jobs-us".to_owned(),
    };
    let mut headers = HashMap::new();
    let mut transactions = Vec::new();
    let scrape = scrape(|| {
        transactions = capture(|| {
            in_transaction("request", || {
                assert!(eu.publish(&mut headers, false).is_ok());
                assert!(eu.publish(&mut HashMap::new(), true).is_err());
                assert!(us.publish(&mut HashMap::new(), false).is_ok());
            });
            assert!(block_on(eu.handle(&headers, false)).is_ok());
            assert!(block_on(us.handle(&headers, true)).is_err());
            assert!(block_on(us.handle(&HashMap::new(), false)).is_ok());
        });
        // Dropped while being handled; without Sentry, metrics are recorded all the same.
        let mut handling = Box::pin(us.handle_slowly());
        let waker = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(handling.as_mut().poll(&mut cx).is_pending());
        drop(handling);
    });
    let published = "queue_messages_published_total";
    assert_eq!(scrape.get(published, &[("queue_name", "jobs-eu")]), 1.0);
    assert_eq!(scrape.get(published, &[("queue_name", "jobs-us")]), 1.0);
    assert_eq!(scrape.series(published).len(), 2, "{}", scrape.text);
    let processed = "queue_messages_processed_total";
    for (queue, status, count) in [
        ("jobs-eu", "ok", 1.0),
        ("jobs-us", "error", 1.0),
        ("jobs-us", "ok", 1.0),
        ("jobs-us", "cancelled", 1.0),
    ] {
        assert_eq!(
            scrape.get(processed, &[("queue_name", queue), ("status", status)]),
            count,
            "{queue} {status}: {}",
            scrape.text
        );
    }
    assert_eq!(scrape.series(processed).len(), 4, "{}", scrape.text);
    let durations = "queue_process_duration_seconds_count";
    assert_eq!(scrape.get(durations, &[("queue_name", "jobs-eu")]), 1.0);
    assert_eq!(scrape.get(durations, &[("queue_name", "jobs-us")]), 3.0);
    // Only the messages whose headers carry the enqueue time.
    let latency = "queue_receive_latency_seconds_count";
    assert_eq!(scrape.get(latency, &[("queue_name", "jobs-eu")]), 1.0);
    assert_eq!(scrape.get(latency, &[("queue_name", "jobs-us")]), 1.0);

    // The spans beside them carry the same names.
    let request = transactions
        .iter()
        .find(|t| t.name.as_deref() == Some("request"))
        .expect("request transaction");
    let described: Vec<_> = request
        .spans
        .iter()
        .map(|s| (s.op.as_deref(), s.description.as_deref()))
        .collect();
    assert_eq!(
        described,
        [
            (Some("queue.publish"), Some("jobs-eu")),
            (Some("queue.publish"), Some("jobs-eu")),
            (Some("queue.publish"), Some("jobs-us")),
        ]
    );
}
