//! The console sink renders what Sentry would receive as a span tree.

mod common;

use common::capture;
use insights_runtime::console::{render, ConsoleTransport};
use insights_runtime::traced;
use std::io::Write;
use std::sync::{Arc, Mutex};

#[traced(transaction = "import", op = "batch")]
fn import() -> Result<(), String> {
    load(2);
    store()
}

#[traced(op = "db", description = "SELECT id FROM users WHERE id = $1", data(db.system = "postgresql"))]
fn load(_id: u64) {
    parse();
}

#[traced]
fn parse() {}

#[traced(op = "cache.put", description = "user:1")]
fn store() -> Result<(), String> {
    Err("full".to_owned())
}

/// Durations vary; replace `  1.23ms` by `  <t>`.
fn without_durations(text: &str) -> String {
    text.lines()
        .map(|line| {
            line.split("  ")
                .map(|part| {
                    if part.ends_with("ms") && part[..part.len() - 2].parse::<f64>().is_ok() {
                        "<t>"
                    } else {
                        part
                    }
                })
                .collect::<Vec<_>>()
                .join("  ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn renders_an_indented_span_tree() {
    let txs = capture(|| {
        let _ = import();
    });
    assert_eq!(txs.len(), 1);
    let trace = common::trace(&txs[0]).trace_id;
    assert_eq!(
        without_durations(&render(&txs[0])),
        format!(
            "transaction import  op=batch  <t>  internal_error  trace={trace}\n\
         \x20 db SELECT id FROM users WHERE id = $1  <t>  ok  {{db.system=\"postgresql\"}}\n\
         \x20   function parse  <t>  ok\n\
         \x20 cache.put user:1  <t>  internal_error"
        )
    );
}

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn the_transport_prints_each_finished_transaction() {
    let buffer = Buffer::default();
    let options = sentry::ClientOptions::new()
        .dsn(insights_runtime::console::CONSOLE_DSN)
        .traces_sample_rate(1.0)
        .transport(Arc::new(ConsoleTransport::with_writer(buffer.clone())));
    let client = Arc::new(sentry::Client::from(options));
    let hub = Arc::new(sentry::Hub::new(Some(client), Default::default()));
    sentry::Hub::run(hub, || {
        let _ = import();
        let _ = import();
    });
    let text = String::from_utf8(buffer.0.lock().expect("buffer").clone()).expect("utf-8");
    assert_eq!(
        text.matches("transaction import  op=batch").count(),
        2,
        "{text}"
    );
    assert_eq!(text.matches("\n    function parse").count(), 2, "{text}");
}
