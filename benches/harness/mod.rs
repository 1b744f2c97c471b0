//! The measurement harness of the table-printing benches, shared as source:
//! `benches/overhead.rs` (`mod harness;`) and `benches/disabled/src/main.rs`
//! (`#[path = "../../harness/mod.rs"] mod harness;`, a crate of its own so that `enable` stays
//! off). Cargo takes `benches/*.rs` and `benches/*/main.rs` for bench targets, so this file is
//! not one.
//!
//! What it holds: the settings (`BENCH_QUICK`, `BENCH_FILTER`), the calibration and the
//! round-robin sampling, the loop every function case is called through (`drive`), a minimal
//! `block_on` for the async cases, the statistics (median, min, max, ratios between cases and
//! their verdicts) and the results table. The cases, their setup, their validations and the
//! targets stay in each bench.

use std::fmt;
use std::future::Future;
use std::hint::black_box;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Settings and sampling.

/// How much to sample: 5 samples per case of about 3 ms each in quick mode, else 15 of 60 ms.
pub struct Settings {
    pub quick: bool,
    pub rounds: usize,
    pub sample_ms: u64,
}

impl Settings {
    /// Quick mode when `BENCH_QUICK` is set to anything but empty or `0`, or when `force_quick`.
    pub fn from_env(force_quick: bool) -> Self {
        let quick =
            std::env::var("BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0") || force_quick;
        let (rounds, sample_ms) = if quick { (5, 3) } else { (15, 60) };
        Settings {
            quick,
            rounds,
            sample_ms,
        }
    }

    /// How long one sample should last.
    pub fn target(&self) -> Duration {
        Duration::from_millis(self.sample_ms)
    }
}

/// `QUICK mode: 5 samples per case of ~3 ms, taken round-robin`, for a report's headline.
impl fmt::Display for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} mode: {} samples per case of ~{} ms, taken round-robin",
            if self.quick { "QUICK" } else { "full" },
            self.rounds,
            self.sample_ms
        )
    }
}

/// `BENCH_FILTER=d,e`: the indices of the cases whose key is listed, in case order; all of them
/// when the variable is unset or empty.
// The disabled bench always runs all its cases, as its one target needs both of its first two.
#[allow(dead_code, reason = "only benches/overhead.rs filters")]
pub fn selected<'a>(keys: impl IntoIterator<Item = &'a str>) -> Vec<usize> {
    let filter = std::env::var("BENCH_FILTER").ok().filter(|f| !f.is_empty());
    keys.into_iter()
        .enumerate()
        .filter(|&(_, key)| {
            filter
                .as_deref()
                .is_none_or(|f| f.split(',').any(|k| k.trim() == key))
        })
        .map(|(i, _)| i)
        .collect()
}

/// Iterations for one sample to last about `target`: from `first`, four times more until a
/// sample lasts `target / 8` (or `cap` is reached), then scaled to `target`; never fewer than
/// `first`. `sample(iters)` times `iters` iterations.
pub fn calibrate(
    first: u64,
    cap: u64,
    target: Duration,
    mut sample: impl FnMut(u64) -> Duration,
) -> u64 {
    let mut iters = first;
    loop {
        let took = sample(iters);
        if took >= target / 8 || iters >= cap {
            let scaled = iters as f64 * target.as_secs_f64() / took.as_secs_f64().max(1e-9);
            return (scaled as u64).max(first);
        }
        iters *= 4;
    }
}

/// What one run measured.
pub struct Samples {
    /// Iterations per sample, `[case]`; 0 for a case not selected.
    pub iters: Vec<u64>,
    /// ns/iteration of every sample, `[case][round]`; empty for a case not selected.
    pub ns: Vec<Vec<f64>>,
}

/// What the sampling loop needs of a bench.
pub trait Bench {
    type Case;

    /// Runs `case` `iters` times and returns the time spent in its timed loops.
    fn sample(&self, case: &Self::Case, iters: u64) -> Duration;

    /// Iterations for one sample of `case` to last about `target` (see the function
    /// `calibrate`).
    fn calibrate(&self, case: &Self::Case, target: Duration) -> u64;
}

/// Calibrates each selected case of `cases` (which also warms it up), then samples them
/// round-robin, the starting case rotating each round, so that drift on a noisy machine hits
/// every case alike.
pub fn sample_round_robin<B: Bench>(
    settings: &Settings,
    bench: &B,
    cases: &[B::Case],
    selected: &[usize],
) -> Samples {
    let target = settings.target();
    let mut iters = vec![0; cases.len()];
    for &i in selected {
        iters[i] = bench.calibrate(&cases[i], target);
    }
    let mut ns = vec![Vec::with_capacity(settings.rounds); cases.len()];
    for round in 0..settings.rounds {
        for k in 0..selected.len() {
            let i = selected[(k + round) % selected.len()];
            let took = bench.sample(&cases[i], iters[i]);
            ns[i].push(took.as_nanos() as f64 / iters[i] as f64);
        }
    }
    Samples { iters, ns }
}

// ---------------------------------------------------------------------------------------------
// Timed loops.

/// One loop for every function case, calling through a pointer: the cases run the very same
/// loop code and differ only in the function called. Separate loops per case differ in code
/// layout, which at one to a few ns per call moves timings by tens of percent on some CPUs (on
/// this Intel VM, a `call` crossing a 32-byte boundary made one of two identical functions 40%
/// slower: the JCC erratum). A predicted indirect call costs about as much as a direct one.
#[inline(never)]
pub fn drive(f: fn(u64) -> u64, n: u64) {
    for i in 0..n {
        black_box(black_box(f)(black_box(i)));
    }
}

/// A future that returns `Pending` `n` times, waking itself each time.
pub struct Yield(pub u8);

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

/// Polls until ready. The futures measured wake themselves before every `Pending`, so
/// re-polling at once is what any executor would do; a no-op waker keeps the executor's own
/// cost out of the way.
#[inline(always)]
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Statistics and report.

pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

pub fn min(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::INFINITY, f64::min)
}

pub fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// One side of a ratio: a case's samples round by round, their median and their minimum (or a
/// combination of cases built by a bench from these fields).
pub struct Side {
    pub rounds: Vec<f64>,
    pub median: f64,
    pub min: f64,
}

impl Side {
    pub fn of(samples: &[f64]) -> Self {
        Side {
            rounds: samples.to_vec(),
            median: median(samples),
            min: min(samples),
        }
    }
}

/// A ratio between two sides: of their medians (what the verdict uses), round by round
/// (samples taken back to back, so slow drift cancels), and of their minimums.
pub struct Ratio {
    /// `Some(limit)`: a target, `medians <= limit`; `None`: shown for information.
    pub limit: Option<f64>,
    pub medians: f64,
    pub paired: Vec<f64>,
    pub of_mins: f64,
}

impl Ratio {
    /// `num / den`.
    pub fn new(limit: Option<f64>, num: &Side, den: &Side) -> Self {
        Ratio {
            limit,
            medians: num.median / den.median,
            paired: num
                .rounds
                .iter()
                .zip(&den.rounds)
                .map(|(n, d)| n / d)
                .collect(),
            of_mins: num.min / den.min,
        }
    }

    /// `PASS` or `FAIL` for a target, `info` otherwise.
    pub fn verdict(&self) -> &'static str {
        match self.limit {
            None => "info",
            Some(limit) if self.medians <= limit => "PASS",
            Some(_) => "FAIL",
        }
    }
}

/// The table of results: one row per case with the median, min and max ns, the spread
/// `(max - min) / median`, the median next to that of case (a), and the iterations per sample.
pub struct Table {
    /// Width of the case column.
    pub key_width: usize,
    /// Width of the min and max columns.
    pub ns_width: usize,
    /// Decimals of the ns columns.
    pub ns_decimals: usize,
    /// Decimals of the x(a) column.
    pub ratio_decimals: usize,
}

/// A row of a `Table`.
pub struct Row<'a> {
    pub key: &'a str,
    pub what: &'a str,
    /// ns/iteration, one per round.
    pub samples: &'a [f64],
    pub iters: u64,
}

impl Table {
    /// Prints the header and the rows; `a` is the median of case (a), `None` (x(a) shown as
    /// `-`) when it was not measured.
    pub fn print<'a>(&self, a: Option<f64>, rows: impl IntoIterator<Item = Row<'a>>) {
        let (kw, nw, nd, rd) = (
            self.key_width,
            self.ns_width,
            self.ns_decimals,
            self.ratio_decimals,
        );
        println!(
            "{:<kw$} {:<46} {:>10} {:>nw$} {:>nw$} {:>7} {:>7} {:>11}",
            "case", "what", "median ns", "min", "max", "spread", "x(a)", "iters/samp"
        );
        println!("{}", "-".repeat(kw + 46 + 10 + nw + nw + 7 + 7 + 11 + 7));
        for row in rows {
            let s = row.samples;
            let med = median(s);
            println!(
                "{:<kw$} {:<46} {:>10.nd$} {:>nw$.nd$} {:>nw$.nd$} {:>6.1}% {:>7} {:>11}",
                format!("({})", row.key),
                row.what,
                med,
                min(s),
                max(s),
                100.0 * (max(s) - min(s)) / med,
                a.map_or_else(|| "-".to_owned(), |a| format!("{:.rd$}", med / a)),
                row.iters,
            );
        }
    }
}

pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "n/a".to_owned())
}
