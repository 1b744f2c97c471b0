//! The `web_service` example's `/metrics` endpoint, scraped over HTTP after real requests: the
//! reference service's metric names, with their labels and values.

#[path = "../examples/web_service.rs"]
#[allow(dead_code, reason = "the example's `main`, and what only it uses")]
mod web_service;

use std::future::IntoFuture;

use metrics_exporter_prometheus::PrometheusBuilder;

/// `name{labels}` exactly as the exposition writes it, or `None`.
fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}

#[test]
fn metrics_endpoint_serves_the_reference_metrics_after_real_calls() {
    // Sentry is not initialised here: the metrics count traffic whether or not spans are sent.
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .expect("the only recorder of this test binary");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let app = web_service::App::default();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let server = runtime
        .spawn(axum::serve(listener, web_service::router(app.clone(), handle)).into_future());

    for (method, path, body, expected) in [
        ("POST", "/users", "Ada", "200"),
        ("GET", "/users/1", "", "200"),  // cache miss, select, put
        ("GET", "/users/1", "", "200"),  // cache hit
        ("GET", "/users/13", "", "500"), // cache miss, failing select
    ] {
        let (status, _) = web_service::call(addr, method, path, body).expect("request");
        assert!(status.contains(expected), "{method} {path}: {status}");
    }
    runtime.block_on(web_service::worker(app));

    let (status, scrape) = web_service::call(addr, "GET", "/metrics", "").expect("scrape");
    server.abort();
    assert!(status.contains("200"), "{status}");

    let expect = |series: &str, value: f64| {
        assert_eq!(
            sample(&scrape, series),
            Some(value),
            "{series} in:\n{scrape}"
        );
    };
    expect(
        r#"database_queries_total{table="users",operation="select"}"#,
        2.0,
    );
    expect(
        r#"database_query_duration_seconds_count{table="users"}"#,
        2.0,
    );
    expect(r#"cache_hits_total{cache_name="users"}"#, 1.0);
    expect(r#"cache_misses_total{cache_name="users"}"#, 2.0);
    expect(r#"cache_sets_total{cache_name="users"}"#, 1.0);
    expect(
        r#"queue_messages_published_total{queue_name="welcome-emails"}"#,
        1.0,
    );
    expect(
        r#"queue_messages_processed_total{queue_name="welcome-emails",status="ok"}"#,
        1.0,
    );
    expect(
        r#"queue_process_duration_seconds_count{queue_name="welcome-emails"}"#,
        1.0,
    );
    assert!(scrape.contains("# TYPE database_queries_total counter"));
    assert!(scrape.contains("# TYPE database_query_duration_seconds summary"));
    // Bounded labels: no cache key and no user id in any series.
    assert!(!scrape.contains("user:1"), "{scrape}");
}
