//! `#[traced]` with the `enable` feature off: the attribute must return the bare function.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo run --release --manifest-path benches/disabled/Cargo.toml
//! BENCH_QUICK=1 CARGO_TARGET_DIR=/work/target-bench cargo run --release --manifest-path benches/disabled/Cargo.toml
//! ```
//!
//! This crate is its own workspace and depends on `insights-runtime` with
//! `default-features = false`, so `enable` is off. It checks, in this order:
//!
//! 1. the expansion: an async `#[traced]` fn makes a future of the same size as the same fn
//!    without it (with `enable` on, the future is wrapped in `Instrumented`); that the arguments
//!    are still checked with `enable` off is pinned by `tests/disabled`;
//! 2. at run time, with a client bound and a sampled transaction current: the annotated
//!    functions record no span, while a span started by hand is recorded;
//! 3. the timings: plain fn (a) and the same fn under `#[traced]` (b), in one run, sampled
//!    round-robin; target (b) ≤ 1.05 × (a). Also, informative: with `data(..)`, and with a
//!    sampled transaction current.
//!
//! The checks of 1 and 2 panic when they fail (that would be a bug); the timing target is a
//! report and prints PASS/FAIL, exiting 0 either way.

#[path = "../../harness/mod.rs"]
mod harness;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use insights_runtime::span::SpanGuard;
use insights_runtime::traced;
use sentry::protocol::EnvelopeItem;
use sentry::{ClientOptions, Hub, Scope, TransactionContext, TransactionOrSpan};

use harness::{
    block_on, drive, load_average, max, median, min, Bench, Ratio, Row, Samples, Settings, Side,
    Table, Yield,
};

#[inline(always)]
fn work(x: u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17)
}

/// (a)
#[inline(never)]
fn plain(x: u64) -> u64 {
    work(x)
}

/// (b)
#[traced]
#[inline(never)]
fn traced_plain(x: u64) -> u64 {
    work(x)
}

/// (b-data)
#[traced(data(db.system = "postgresql", db.rows = x, cache.hit = true))]
#[inline(never)]
fn traced_data(x: u64) -> u64 {
    work(x)
}

async fn plain_async(x: u64) -> u64 {
    Yield(3).await;
    work(x)
}

#[traced(data(db.system = "postgresql", db.rows = x, cache.hit = true))]
async fn traced_async(x: u64) -> u64 {
    Yield(3).await;
    work(x)
}

/// Check 1 (the part that needs values): the async future is not wrapped.
fn check_expansion() {
    let plain = std::mem::size_of_val(&plain_async(1));
    let traced = std::mem::size_of_val(&traced_async(1));
    assert_eq!(
        plain, traced,
        "an async #[traced] fn's future differs in size from the bare fn's: it was instrumented"
    );
    println!("expansion: async future size {traced} B = bare fn's {plain} B: ok");
}

/// Check 2: with a client and a sampled transaction, nothing is recorded.
fn check_nothing_recorded() {
    let envelopes = sentry::test::with_captured_envelopes_options(
        || {
            let tx = sentry::start_transaction(TransactionContext::new("disabled", "check"));
            let tx: TransactionOrSpan = tx.into();
            sentry::configure_scope(|scope| scope.set_span(Some(tx.clone())));
            black_box(traced_plain(1));
            black_box(traced_data(2));
            black_box(block_on(traced_async(3)));
            let guard = SpanGuard::start("function", "guard");
            assert!(!guard.is_recording(), "SpanGuard records with `enable` off");
            drop(guard);
            // A control span by hand, to show that the capture works.
            tx.start_child("function", "control").finish();
            sentry::configure_scope(|scope| scope.set_span(None));
            tx.finish();
        },
        ClientOptions::new().traces_sample_rate(1.0),
    );
    let spans: Vec<String> = envelopes
        .iter()
        .flat_map(|e| e.items())
        .filter_map(|item| match item {
            EnvelopeItem::Transaction(t) => Some(t),
            _ => None,
        })
        .flat_map(|t| t.spans.iter())
        .map(|s| s.description.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        spans,
        ["control"],
        "with `enable` off only the control span may be recorded"
    );
    println!(
        "recording: sampled transaction, client bound: spans recorded = {spans:?} \
         (the hand-made control only): ok"
    );
}

// ---------------------------------------------------------------------------------------------
// Timings. Every case goes through `harness::drive`, so that they share its code layout (why
// that matters: see there).

fn loop_plain(n: u64) {
    drive(plain, n);
}

fn loop_traced_plain(n: u64) {
    drive(traced_plain, n);
}

fn loop_traced_data(n: u64) {
    drive(traced_data, n);
}

fn block_on_plain_async(x: u64) -> u64 {
    block_on(plain_async(x))
}

fn block_on_traced_async(x: u64) -> u64 {
    block_on(traced_async(x))
}

fn loop_plain_async(n: u64) {
    drive(block_on_plain_async, n);
}

fn loop_traced_async(n: u64) {
    drive(block_on_traced_async, n);
}

struct Case {
    key: &'static str,
    what: &'static str,
    /// Run with a client bound and a sampled transaction current.
    sampled: bool,
    run: fn(u64),
}

const CASES: &[Case] = &[
    Case {
        key: "a",
        what: "plain #[inline(never)] fn",
        sampled: false,
        run: loop_plain,
    },
    Case {
        key: "b",
        what: "same fn, #[traced], enable off",
        sampled: false,
        run: loop_traced_plain,
    },
    Case {
        key: "b-data",
        what: "#[traced(data(3))], enable off [info]",
        sampled: false,
        run: loop_traced_data,
    },
    Case {
        key: "b-sampled",
        what: "#[traced(data(3))], sampled tx current [info]",
        sampled: true,
        run: loop_traced_data,
    },
    Case {
        key: "async-base",
        what: "async fn, 3 yields, block_on [info]",
        sampled: false,
        run: loop_plain_async,
    },
    Case {
        key: "async",
        what: "same async fn, #[traced(data(3))] [info]",
        sampled: false,
        run: loop_traced_async,
    },
];

struct DropTransport;

impl sentry::Transport for DropTransport {
    fn send_envelope(&self, envelope: sentry::Envelope) {
        drop(envelope);
    }
}

struct Setup {
    no_client: Arc<Hub>,
    sampled: Arc<Hub>,
}

impl Setup {
    fn new() -> Self {
        let options = ClientOptions::new()
            .dsn("https://public@sentry.invalid/1")
            .traces_sample_rate(1.0)
            .transport(Arc::new(DropTransport));
        let client = Arc::new(sentry::Client::with_options(options));
        Setup {
            no_client: Arc::new(Hub::new(None, Arc::new(Scope::default()))),
            sampled: Arc::new(Hub::new(Some(client), Arc::new(Scope::default()))),
        }
    }
}

impl Bench for Setup {
    type Case = Case;

    fn sample(&self, case: &Case, iters: u64) -> Duration {
        let hub = if case.sampled {
            &self.sampled
        } else {
            &self.no_client
        };
        Hub::run(Arc::clone(hub), || {
            let tx: Option<TransactionOrSpan> = case.sampled.then(|| {
                let tx = sentry::start_transaction(TransactionContext::new("bench", "bench"));
                let tx: TransactionOrSpan = tx.into();
                sentry::configure_scope(|scope| scope.set_span(Some(tx.clone())));
                tx
            });
            let start = Instant::now();
            (case.run)(iters);
            let took = start.elapsed();
            if let Some(tx) = tx {
                sentry::configure_scope(|scope| scope.set_span(None));
                tx.finish();
            }
            took
        })
    }

    fn calibrate(&self, case: &Case, target: Duration) -> u64 {
        harness::calibrate(1000, 1 << 36, target, |iters| self.sample(case, iters))
    }
}

fn main() {
    let settings = Settings::from_env(false);

    check_expansion();
    check_nothing_recorded();

    let load_before = load_average();
    let setup = Setup::new();
    // Always every case: the target needs (a) and (b).
    let all: Vec<usize> = (0..CASES.len()).collect();
    let Samples { iters, ns } = harness::sample_round_robin(&settings, &setup, CASES, &all);

    println!();
    println!(
        "#[traced] with `enable` off, {settings}; all cases call through one loop; load average \
         {load_before} before, {} after",
        load_average(),
    );
    println!();
    let table = Table {
        key_width: 13,
        ns_width: 8,
        ns_decimals: 3,
        ratio_decimals: 3,
    };
    let (a, b) = (Side::of(&ns[0]), Side::of(&ns[1]));
    table.print(
        Some(a.median),
        CASES.iter().enumerate().map(|(i, case)| Row {
            key: case.key,
            what: case.what,
            samples: &ns[i],
            iters: iters[i],
        }),
    );

    let target = Ratio::new(Some(1.05), &b, &a);
    let (ratio, of_mins) = (target.medians, target.of_mins);
    let (b, a) = (b.median, a.median);
    println!();
    println!(
        "Target (verdict on the ratio of medians; also per round, samples taken back to back: \
         median [min .. max]; and of the minimums):"
    );
    println!(
        "  (b) <= 1.05 x (a)   medians {ratio:.3}  per round {:.3} [{:.3} .. {:.3}]  mins {of_mins:.3}  \
         {}   (b) {b:.3} ns / (a) {a:.3} ns",
        median(&target.paired),
        min(&target.paired),
        max(&target.paired),
        target.verdict(),
    );
}
