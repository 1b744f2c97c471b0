//! Per-call overhead of `#[traced]`, next to sentry's own API and `tracing` + `SpanLayer`.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo bench --bench overhead               # full run, ~15 s
//! CARGO_TARGET_DIR=/work/target-bench BENCH_QUICK=1 cargo bench --bench overhead # smoke run, <1 s
//! BENCH_FILTER=a,d,e cargo bench --bench overhead                                # some cases only
//! ```
//!
//! Every case runs in the same process. After a calibration pass (which also warms up), the
//! cases are sampled round-robin, the starting case rotating each round, so that drift on a noisy
//! machine hits every case alike; each sample is one timed loop of enough calls to last
//! about 60 ms (3 ms in quick mode). The table shows the median, min and max ns/call over the
//! samples. Function cases are all called through one loop (`drive`), so that they share its
//! code layout.
//!
//! Span cases run in chunks of `CHUNK` calls, each under a fresh transaction that is the scope's
//! current span, so sentry's 1000-span limit is never reached; only the inner loop is timed
//! (starting, setting and finishing the transaction are not).
//!
//! The client drops every envelope (`DropTransport`) and is bound with `Hub::run`, as in
//! section 9 of the sentry-rust notes. Before timing, each sampled case is checked to send one
//! span per call (a broken setup panics). This is a report, not a test: it exits 0 whatever the
//! targets say. Run without `--bench` (e.g. `cargo test --benches`) it uses the quick settings.

use std::future::Future;
use std::hint::black_box;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use insights_runtime::traced;
use sentry::integrations::tracing::SpanLayer;
use sentry::protocol::EnvelopeItem;
use sentry::{ClientOptions, Hub, Scope, TransactionContext, TransactionOrSpan};
use tracing_subscriber::layer::SubscriberExt;

const DSN: &str = "https://public@sentry.invalid/1";

/// Calls per transaction in the span cases: well under sentry's `MAX_SPANS` (1000).
const CHUNK: u64 = 500;

// ---------------------------------------------------------------------------------------------
// The functions measured. All share the body `work`; all are `#[inline(never)]` so every case
// pays one real call.

#[inline(always)]
fn work(x: u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17)
}

/// (a)
#[inline(never)]
fn plain(x: u64) -> u64 {
    work(x)
}

/// (g+a): the cheapest public gate in front of the same body, the floor for (b).
#[inline(never)]
fn gated(x: u64) -> u64 {
    black_box(Hub::with_active(|_| true));
    work(x)
}

/// (b), (c-bare)
#[traced]
#[inline(never)]
fn traced_plain(x: u64) -> u64 {
    work(x)
}

/// (c), (d)
#[traced(data(db.system = "postgresql", db.rows = x, cache.hit = true))]
#[inline(never)]
fn traced_data(x: u64) -> u64 {
    work(x)
}

/// (c'), (e): the same span by hand with sentry's API, as the notes' "macro path" plus the
/// switch of the current span: `configure_scope(get_span)` → `start_child` → 3 `set_data` →
/// child current → body → previous restored → `finish`.
#[inline(never)]
fn by_hand(x: u64) -> u64 {
    let Some(parent) = sentry::configure_scope(|scope| scope.get_span()) else {
        return work(x);
    };
    let child: TransactionOrSpan = parent.start_child("function", "by_hand").into();
    child.set_data("db.system", "postgresql".into());
    child.set_data("db.rows", x.into());
    child.set_data("cache.hit", true.into());
    sentry::configure_scope(|scope| scope.set_span(Some(child.clone())));
    let ret = work(x);
    sentry::configure_scope(|scope| scope.set_span(Some(parent)));
    child.finish();
    ret
}

/// (f)
#[tracing::instrument(skip_all, fields(db.system = "postgresql", db.rows = x, cache.hit = true))]
#[inline(never)]
fn instrumented(x: u64) -> u64 {
    work(x)
}

/// A future that returns `Pending` `n` times, waking itself each time.
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

/// (d-async)
#[traced(data(db.system = "postgresql", db.rows = x, cache.hit = true))]
async fn traced_async(x: u64) -> u64 {
    Yield(3).await;
    work(x)
}

/// (d-async-base)
async fn plain_async(x: u64) -> u64 {
    Yield(3).await;
    work(x)
}

/// Polls until ready. The futures measured wake themselves before every `Pending`, so
/// re-polling at once is what any executor would do; a no-op waker keeps the executor's own
/// cost out of the way.
#[inline(always)]
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Timed loops: `n` calls each.

/// One loop for every function case, calling through a pointer: the cases run the very same
/// loop code and differ only in the function called. Separate loops per case differ in code
/// layout, which at a few ns per call moves timings by tens of percent on some CPUs (on this
/// Intel VM, a `call` crossing a 32-byte boundary made one of two identical functions 40%
/// slower: the JCC erratum). A predicted indirect call costs about as much as a direct one.
#[inline(never)]
fn drive(f: fn(u64) -> u64, n: u64) {
    for i in 0..n {
        black_box(black_box(f)(black_box(i)));
    }
}

fn loop_plain(n: u64) {
    drive(plain, n);
}

/// (g) is the gate alone, inline in its loop: no function call around it.
fn loop_gate(n: u64) {
    for _ in 0..n {
        black_box(Hub::with_active(|_| black_box(true)));
    }
}

fn loop_get_span(n: u64) {
    for _ in 0..n {
        black_box(sentry::configure_scope(|scope| scope.get_span()));
    }
}

fn loop_gated(n: u64) {
    drive(gated, n);
}

fn loop_traced_plain(n: u64) {
    drive(traced_plain, n);
}

fn loop_traced_data(n: u64) {
    drive(traced_data, n);
}

fn loop_by_hand(n: u64) {
    drive(by_hand, n);
}

fn loop_instrumented(n: u64) {
    drive(instrumented, n);
}

fn block_on_traced_async(x: u64) -> u64 {
    block_on(traced_async(x))
}

fn block_on_plain_async(x: u64) -> u64 {
    block_on(plain_async(x))
}

fn loop_traced_async(n: u64) {
    drive(block_on_traced_async, n);
}

fn loop_plain_async(n: u64) {
    drive(block_on_plain_async, n);
}

// ---------------------------------------------------------------------------------------------
// Cases.

#[derive(Clone, Copy, PartialEq)]
enum Env {
    /// A hub with no client.
    NoClient,
    /// Client bound, `traces_sample_rate(0.0)`; chunks run under an unsampled transaction.
    Unsampled,
    /// Client bound, `traces_sample_rate(1.0)`; chunks run under a sampled transaction.
    Sampled,
    /// As `Sampled`, with `registry().with(SpanLayer::new())` as the thread's subscriber.
    SampledTracing,
}

struct Case {
    key: &'static str,
    what: &'static str,
    env: Env,
    run: fn(u64),
}

const CASES: &[Case] = &[
    Case {
        key: "a",
        what: "plain #[inline(never)] fn",
        env: Env::NoClient,
        run: loop_plain,
    },
    Case {
        key: "g",
        what: "Hub::with_active(|_| true), no client",
        env: Env::NoClient,
        run: loop_gate,
    },
    Case {
        key: "g+a",
        what: "(g) inside the (a) fn [info: floor for (b)]",
        env: Env::NoClient,
        run: loop_gated,
    },
    Case {
        key: "b",
        what: "#[traced], no client",
        env: Env::NoClient,
        run: loop_traced_plain,
    },
    Case {
        key: "c",
        what: "#[traced(data(3))], unsampled tx current",
        env: Env::Unsampled,
        run: loop_traced_data,
    },
    Case {
        key: "c-bare",
        what: "#[traced], unsampled tx current [info]",
        env: Env::Unsampled,
        run: loop_traced_plain,
    },
    Case {
        key: "x2",
        what: "configure_scope(get_span) alone [info: c floor]",
        env: Env::Unsampled,
        run: loop_get_span,
    },
    Case {
        key: "c'",
        what: "by hand (sentry API, 3 set_data), unsampled",
        env: Env::Unsampled,
        run: loop_by_hand,
    },
    Case {
        key: "d",
        what: "#[traced(data(3))], sampled",
        env: Env::Sampled,
        run: loop_traced_data,
    },
    Case {
        key: "e",
        what: "by hand (sentry API, 3 set_data), sampled",
        env: Env::Sampled,
        run: loop_by_hand,
    },
    Case {
        key: "f",
        what: "#[instrument(fields(3))] + SpanLayer, sampled",
        env: Env::SampledTracing,
        run: loop_instrumented,
    },
    Case {
        key: "d-async",
        what: "async #[traced(data(3))], 3 yields, sampled",
        env: Env::Sampled,
        run: loop_traced_async,
    },
    Case {
        key: "d-async-base",
        what: "same async fn, no attribute, sampled",
        env: Env::Sampled,
        run: loop_plain_async,
    },
];

fn index(key: &str) -> usize {
    CASES
        .iter()
        .position(|c| c.key == key)
        .expect("unknown case")
}

/// Drops every envelope, noting how many spans the last transaction held (for `validate`).
struct DropTransport;

static LAST_SPANS: AtomicUsize = AtomicUsize::new(usize::MAX);

impl sentry::Transport for DropTransport {
    fn send_envelope(&self, envelope: sentry::Envelope) {
        for item in envelope.items() {
            if let EnvelopeItem::Transaction(tx) = item {
                LAST_SPANS.store(tx.spans.len(), Ordering::Relaxed);
            }
        }
    }
}

fn hub_with(options: Option<ClientOptions>) -> Arc<Hub> {
    let client = options.map(|options| {
        let options = options.dsn(DSN).transport(Arc::new(DropTransport));
        Arc::new(sentry::Client::with_options(options))
    });
    Arc::new(Hub::new(client, Arc::new(Scope::default())))
}

struct Setup {
    no_client: Arc<Hub>,
    unsampled: Arc<Hub>,
    sampled: Arc<Hub>,
    tracing: tracing::Dispatch,
}

impl Setup {
    fn new() -> Self {
        Setup {
            no_client: hub_with(None),
            unsampled: hub_with(Some(ClientOptions::new().traces_sample_rate(0.0))),
            sampled: hub_with(Some(ClientOptions::new().traces_sample_rate(1.0))),
            tracing: tracing::Dispatch::new(tracing_subscriber::registry().with(SpanLayer::new())),
        }
    }

    /// Runs `case` `iters` times and returns the time spent in its timed loops.
    fn sample(&self, case: &Case, iters: u64) -> Duration {
        let hub = match case.env {
            Env::NoClient => &self.no_client,
            Env::Unsampled => &self.unsampled,
            Env::Sampled | Env::SampledTracing => &self.sampled,
        };
        Hub::run(Arc::clone(hub), || {
            let _dispatch = (case.env == Env::SampledTracing)
                .then(|| tracing::dispatcher::set_default(&self.tracing));
            if case.env == Env::NoClient {
                let start = Instant::now();
                (case.run)(iters);
                return start.elapsed();
            }
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(CHUNK);
                left -= n;
                let tx: TransactionOrSpan =
                    sentry::start_transaction(TransactionContext::new("bench", "bench")).into();
                sentry::configure_scope(|scope| scope.set_span(Some(tx.clone())));
                let start = Instant::now();
                (case.run)(n);
                total += start.elapsed();
                sentry::configure_scope(|scope| scope.set_span(None));
                tx.finish();
            }
            total
        })
    }

    /// Checks that the sampled cases record what they claim: one span per call under the
    /// transaction (none for the base async fn). A mismatch means the numbers would measure
    /// something else, so it panics; a missed performance target never does.
    fn validate(&self, selected: &[usize]) {
        const CALLS: u64 = 10;
        let mut seen = Vec::new();
        for &i in selected {
            let case = &CASES[i];
            if !matches!(case.env, Env::Sampled | Env::SampledTracing) {
                continue;
            }
            LAST_SPANS.store(usize::MAX, Ordering::Relaxed);
            self.sample(case, CALLS);
            let spans = LAST_SPANS.load(Ordering::Relaxed);
            let expected = if case.key == "d-async-base" {
                0
            } else {
                CALLS as usize
            };
            assert_eq!(
                spans, expected,
                "case ({}): {CALLS} calls under a sampled transaction sent {spans} spans, \
                 expected {expected}",
                case.key
            );
            seen.push(format!("({}) {}", case.key, spans as u64 / CALLS));
        }
        if !seen.is_empty() {
            println!(
                "validated, spans sent per call under a sampled transaction: {}",
                seen.join(", ")
            );
        }
    }

    /// Iterations for one sample to last about `target`.
    fn calibrate(&self, case: &Case, target: Duration) -> u64 {
        let mut iters = CHUNK;
        loop {
            let took = self.sample(case, iters);
            if took >= target / 8 || iters >= 1 << 34 {
                let scaled = iters as f64 * target.as_secs_f64() / took.as_secs_f64().max(1e-9);
                let scaled = (scaled as u64).max(CHUNK);
                // Whole chunks, so that every transaction holds the same number of spans.
                return scaled.div_ceil(CHUNK) * CHUNK;
            }
            iters *= 4;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Statistics and report.

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

/// ns/call of every sample, `[case][round]`; empty for a case left out by `BENCH_FILTER`.
struct Results {
    samples: Vec<Vec<f64>>,
}

impl Results {
    fn of(&self, key: &str) -> Option<&[f64]> {
        let samples = &self.samples[index(key)];
        (!samples.is_empty()).then_some(samples.as_slice())
    }
}

/// A ratio between cases: of their medians (what the verdict uses), round by round (samples
/// taken back to back, so slow drift cancels), and of their minimums.
struct Check {
    name: &'static str,
    /// `Some(limit)`: a target, `ratio <= limit`; `None`: shown for information.
    limit: Option<f64>,
    ratio: f64,
    paired: Vec<f64>,
    of_mins: f64,
    note: String,
}

/// `num / den`, where each side is a case or a difference of two cases (`"x-y"` style pairs).
fn check(
    results: &Results,
    name: &'static str,
    limit: Option<f64>,
    num: (&str, Option<&str>),
    den: (&str, Option<&str>),
) -> Option<Check> {
    let side = |(key, minus): (&str, Option<&str>)| -> Option<Vec<f64>> {
        let values = results.of(key)?;
        match minus {
            None => Some(values.to_vec()),
            Some(minus) => {
                let base = results.of(minus)?;
                Some(values.iter().zip(base).map(|(v, b)| v - b).collect())
            }
        }
    };
    let collapse = |(key, minus): (&str, Option<&str>), f: fn(&[f64]) -> f64| -> Option<f64> {
        let value = f(results.of(key)?);
        match minus {
            None => Some(value),
            Some(minus) => Some(value - f(results.of(minus)?)),
        }
    };
    let label = |(key, minus): (&str, Option<&str>)| match minus {
        None => format!("({key})"),
        Some(minus) => format!("(({key}) - ({minus}))"),
    };
    let (n, d) = (side(num)?, side(den)?);
    let (n_med, d_med) = (collapse(num, median)?, collapse(den, median)?);
    Some(Check {
        name,
        limit,
        ratio: n_med / d_med,
        paired: n.iter().zip(&d).map(|(n, d)| n / d).collect(),
        of_mins: collapse(num, min)? / collapse(den, min)?,
        note: format!(
            "{} {n_med:.1} ns / {} {d_med:.1} ns",
            label(num),
            label(den)
        ),
    })
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "n/a".to_owned())
}

fn main() {
    let bench_arg = std::env::args().any(|a| a == "--bench");
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0") || !bench_arg;
    let (rounds, sample_ms) = if quick { (5, 3) } else { (15, 60) };
    let target = Duration::from_millis(sample_ms);
    // `BENCH_FILTER=d,e`: only these cases (by key); checks that need others are skipped.
    let filter = std::env::var("BENCH_FILTER").ok().filter(|f| !f.is_empty());
    let selected: Vec<usize> = (0..CASES.len())
        .filter(|&i| {
            filter
                .as_deref()
                .is_none_or(|f| f.split(',').any(|k| k.trim() == CASES[i].key))
        })
        .collect();
    let load_before = load_average();

    let setup = Setup::new();
    setup.validate(&selected);
    let mut iters = vec![0; CASES.len()];
    for &i in &selected {
        iters[i] = setup.calibrate(&CASES[i], target);
    }
    let mut samples = vec![Vec::with_capacity(rounds); CASES.len()];
    for round in 0..rounds {
        for k in 0..selected.len() {
            let i = selected[(k + round) % selected.len()];
            let took = setup.sample(&CASES[i], iters[i]);
            samples[i].push(took.as_nanos() as f64 / iters[i] as f64);
        }
    }
    let results = Results { samples };

    println!(
        "insights #[traced] overhead, {} mode: {rounds} samples per case of ~{sample_ms} ms, \
         taken round-robin; span cases in chunks of {CHUNK} calls per transaction, inner loop \
         timed only; {} CPUs; load average {load_before} before, {} after",
        if quick { "QUICK" } else { "full" },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average(),
    );
    println!();
    println!(
        "{:<15} {:<46} {:>10} {:>9} {:>9} {:>7} {:>7} {:>11}",
        "case", "what", "median ns", "min", "max", "spread", "x(a)", "iters/samp"
    );
    println!("{}", "-".repeat(15 + 46 + 10 + 9 + 9 + 7 + 7 + 11 + 7));
    let a = results.of("a").map(median);
    for &i in &selected {
        let s = &results.samples[i];
        let med = median(s);
        println!(
            "{:<15} {:<46} {:>10.2} {:>9.2} {:>9.2} {:>6.1}% {:>7} {:>11}",
            format!("({})", CASES[i].key),
            CASES[i].what,
            med,
            min(s),
            max(s),
            100.0 * (max(s) - min(s)) / med,
            a.map_or_else(|| "-".to_owned(), |a| format!("{:.1}", med / a)),
            iters[i],
        );
    }
    println!();
    println!(
        "spread = (max - min) / median. The async rows include block_on and the body's 4 polls \
         (3 Pending + Ready)."
    );

    let checks = [
        check(
            &results,
            "(b) <= 1.1 x (g)",
            Some(1.1),
            ("b", None),
            ("g", None),
        ),
        check(
            &results,
            "(c) <= 0.2 x (c')",
            Some(0.2),
            ("c", None),
            ("c'", None),
        ),
        check(
            &results,
            "(d) <= 1.15 x (e)",
            Some(1.15),
            ("d", None),
            ("e", None),
        ),
        check(
            &results,
            "(d) <= 0.45 x (f)",
            Some(0.45),
            ("d", None),
            ("f", None),
        ),
        check(
            &results,
            "async (d) <= 1.3 x sync (d)",
            Some(1.3),
            ("d-async", Some("d-async-base")),
            ("d", Some("a")),
        ),
        check(&results, "(b) / (g+a)", None, ("b", None), ("g+a", None)),
        check(&results, "(c) / (x2)", None, ("c", None), ("x2", None)),
        check(
            &results,
            "(d-async) / (d)",
            None,
            ("d-async", None),
            ("d", None),
        ),
    ];
    println!();
    println!(
        "{:<29} {:>8} {:>26} {:>8}  {:<7} detail (medians)",
        "target", "medians", "per round: med [min..max]", "mins", "verdict"
    );
    println!("{}", "-".repeat(29 + 8 + 26 + 8 + 7 + 6 + 40));
    for check in checks.iter().flatten() {
        let verdict = match check.limit {
            None => "info",
            Some(limit) if check.ratio <= limit => "PASS",
            Some(_) => "FAIL",
        };
        println!(
            "{:<29} {:>8.3} {:>8.3} [{:>6.3} .. {:>6.3}] {:>8.3}  {:<7} {}",
            check.name,
            check.ratio,
            median(&check.paired),
            min(&check.paired),
            max(&check.paired),
            check.of_mins,
            verdict,
            check.note,
        );
    }
    let skipped = checks.iter().filter(|c| c.is_none()).count();
    if skipped > 0 {
        println!("({skipped} ratios skipped: their cases were filtered out)");
    }
    println!();
    println!(
        "Verdicts use the ratio of medians. async (d) = (d-async) - (d-async-base): the cost the \
         attribute adds to the async call, the base async body and block_on subtracted. \
         sync (d) = (d) - (a): the same for the sync call. (b)/(g+a), (c)/(x2): each next to its \
         floor, the gate with the same call and body around it, and one configure_scope."
    );
}
