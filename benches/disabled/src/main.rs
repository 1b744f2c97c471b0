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
//! 1. at compile time: `#[traced]` on a `const fn` compiles and the function is usable in a
//!    constant (with `enable` on, the attribute rejects `const fn`), and an async `#[traced]` fn
//!    makes a future of the same size as the same fn without it (with `enable` on, the future is
//!    wrapped in `Instrumented`);
//! 2. at run time, with a client bound and a sampled transaction current: the annotated
//!    functions record no span, while a span started by hand is recorded;
//! 3. the timings: plain fn (a) and the same fn under `#[traced]` (b), in one run, sampled
//!    round-robin; target (b) ≤ 1.05 × (a). Also, informative: with `data(..)`, and with a
//!    sampled transaction current.
//!
//! The checks of 1 and 2 panic when they fail (that would be a bug); the timing target is a
//! report and prints PASS/FAIL, exiting 0 either way.

use std::future::Future;
use std::hint::black_box;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use insights_runtime::span::SpanGuard;
use insights_runtime::traced;
use sentry::protocol::EnvelopeItem;
use sentry::{ClientOptions, Hub, Scope, TransactionContext, TransactionOrSpan};

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

// With `enable` on this is a compile error ("cannot instrument a `const fn`"): off, the item is
// returned untouched, so it is still a `const fn`.
#[traced(op = "function", data(x = x))]
const fn traced_const(x: u64) -> u64 {
    x * 2
}

const _: () = assert!(
    traced_const(21) == 42,
    "#[traced] const fn is not the bare fn"
);

struct Yield(u8);

impl Future for Yield {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 == 0 {
            return Poll::Ready(());
        }
        self.0 -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
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

fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

/// Check 1 (the part that needs values): the async future is not wrapped.
fn check_expansion() {
    let plain = std::mem::size_of_val(&plain_async(1));
    let traced = std::mem::size_of_val(&traced_async(1));
    assert_eq!(
        plain, traced,
        "an async #[traced] fn's future differs in size from the bare fn's: it was instrumented"
    );
    println!(
        "expansion: #[traced] const fn usable in a const (compile time): ok; \
         async future size {traced} B = bare fn's {plain} B: ok"
    );
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
// Timings.

/// One loop for every sync case, calling through a pointer: the cases run the very same loop
/// code and differ only in the function called. Separate loops per case differ in code layout,
/// which on this scale (about one ns per call) moves timings by tens of percent on some CPUs
/// (e.g. Intel's JCC erratum: a `call` crossing a 32-byte boundary in the loop).
#[inline(never)]
fn drive(f: fn(u64) -> u64, n: u64) {
    for i in 0..n {
        black_box(black_box(f)(black_box(i)));
    }
}

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
        let mut iters = 1000;
        loop {
            let took = self.sample(case, iters);
            if took >= target / 8 || iters >= 1 << 36 {
                let scaled = iters as f64 * target.as_secs_f64() / took.as_secs_f64().max(1e-9);
                return (scaled as u64).max(1000);
            }
            iters *= 4;
        }
    }
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn min(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "n/a".to_owned())
}

fn main() {
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let (rounds, sample_ms) = if quick { (5, 3) } else { (15, 60) };
    let target = Duration::from_millis(sample_ms);

    check_expansion();
    check_nothing_recorded();

    let load_before = load_average();
    let setup = Setup::new();
    let iters: Vec<u64> = CASES
        .iter()
        .map(|case| setup.calibrate(case, target))
        .collect();
    let mut samples = vec![Vec::with_capacity(rounds); CASES.len()];
    for round in 0..rounds {
        for k in 0..CASES.len() {
            let i = (k + round) % CASES.len();
            let took = setup.sample(&CASES[i], iters[i]);
            samples[i].push(took.as_nanos() as f64 / iters[i] as f64);
        }
    }

    println!();
    println!(
        "#[traced] with `enable` off, {} mode: {rounds} samples per case of ~{sample_ms} ms, \
         taken round-robin; all cases call through one loop; load average {load_before} \
         before, {} after",
        if quick { "QUICK" } else { "full" },
        load_average(),
    );
    println!();
    println!(
        "{:<13} {:<46} {:>10} {:>8} {:>8} {:>7} {:>7} {:>11}",
        "case", "what", "median ns", "min", "max", "spread", "x(a)", "iters/samp"
    );
    println!("{}", "-".repeat(13 + 46 + 10 + 8 + 8 + 7 + 7 + 11 + 7));
    let a = median(&samples[0]);
    for (i, case) in CASES.iter().enumerate() {
        let s = &samples[i];
        let med = median(s);
        println!(
            "{:<13} {:<46} {:>10.3} {:>8.3} {:>8.3} {:>6.1}% {:>7.3} {:>11}",
            format!("({})", case.key),
            case.what,
            med,
            min(s),
            max(s),
            100.0 * (max(s) - min(s)) / med,
            med / a,
            iters[i],
        );
    }

    let b = median(&samples[1]);
    let paired: Vec<f64> = samples[1]
        .iter()
        .zip(&samples[0])
        .map(|(b, a)| b / a)
        .collect();
    let ratio = b / a;
    let of_mins = min(&samples[1]) / min(&samples[0]);
    println!();
    println!(
        "Target (verdict on the ratio of medians; also per round, samples taken back to back: \
         median [min .. max]; and of the minimums):"
    );
    println!(
        "  (b) <= 1.05 x (a)   medians {ratio:.3}  per round {:.3} [{:.3} .. {:.3}]  mins {of_mins:.3}  \
         {}   (b) {b:.3} ns / (a) {a:.3} ns",
        median(&paired),
        min(&paired),
        max(&paired),
        if ratio <= 1.05 { "PASS" } else { "FAIL" },
    );
}
