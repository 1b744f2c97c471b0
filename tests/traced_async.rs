//! `#[traced]` on async functions and future-returning functions.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use common::{capture_one, root_id, span};
use futures::executor::block_on;
use insights_runtime::span::SpanGuard;
use insights_runtime::traced;
use sentry::protocol::{Span, SpanStatus, Value};
use sentry::{Hub, SentryFutureExt};

/// Returns `Pending` `n` times (waking itself) before it completes: a future that really
/// suspends, so other futures run between its polls.
struct YieldN(u32);

impl Future for YieldN {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 == 0 {
            Poll::Ready(())
        } else {
            self.0 -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

#[traced(data(id = id))]
async fn task(id: u64) -> Result<u64, String> {
    YieldN(3).await;
    let nested = child(id).await;
    YieldN(2).await;
    Ok(nested)
}

#[traced(description = "child")]
async fn child(id: u64) -> u64 {
    YieldN(1).await;
    // A sync span inside an async one, after a suspension.
    leaf();
    id
}

#[traced]
fn leaf() {}

#[traced]
async fn async_fails() -> Result<(), std::io::Error> {
    YieldN(1).await;
    Err(std::io::Error::other("down"))
}

#[traced]
async fn async_panics() -> u8 {
    YieldN(1).await;
    panic!("boom")
}

/// Starts a span when dropped: shows which span is current while a future is dropped.
struct SpanOnDrop;

impl Drop for SpanOnDrop {
    fn drop(&mut self) {
        drop(SpanGuard::start("drop", "dropped"));
    }
}

#[traced]
async fn never_finishes() {
    let _on_drop = SpanOnDrop;
    YieldN(1).await;
    std::future::pending::<()>().await;
}

#[traced]
fn returns_impl_future(n: u32) -> impl Future<Output = Result<u32, String>> + Send {
    let doubled = n * 2;
    async move {
        YieldN(2).await;
        leaf();
        if doubled > 100 {
            return Err("too big".to_owned());
        }
        Ok(doubled)
    }
}

#[traced]
fn returns_boxed(n: u32) -> Pin<Box<dyn Future<Output = u32> + Send>> {
    Box::pin(async move {
        YieldN(2).await;
        leaf();
        n
    })
}

#[traced]
fn returns_ready() -> impl Future<Output = u8> {
    std::future::ready(4)
}

#[async_trait::async_trait]
trait Store {
    async fn get(&self, key: &str) -> Option<String>;
}

struct Memory;

#[async_trait::async_trait]
impl Store for Memory {
    #[traced(op = "cache.get")]
    async fn get(&self, key: &str) -> Option<String> {
        YieldN(1).await;
        leaf();
        (key == "k").then(|| "v".to_owned())
    }
}

trait Native {
    async fn native(&self) -> u8;
}

impl Native for Memory {
    #[traced]
    async fn native(&self) -> u8 {
        YieldN(1).await;
        9
    }
}

fn children_of<'a>(spans: &'a [Span], parent: &Span) -> Vec<&'a Span> {
    spans
        .iter()
        .filter(|s| s.parent_span_id == Some(parent.span_id))
        .collect()
}

#[test]
fn async_span_covers_the_awaited_work_with_children() {
    let tx = capture_one(|| assert_eq!(block_on(task(7)), Ok(7)));
    let t = span(&tx, "task");
    assert_eq!(t.op.as_deref(), Some("function"));
    assert_eq!(t.parent_span_id, Some(root_id(&tx)));
    assert_eq!(t.status, Some(SpanStatus::Ok));
    assert_eq!(t.data.get("id"), Some(&Value::from(7u64)));
    let c = span(&tx, "child");
    assert_eq!(c.parent_span_id, Some(t.span_id));
    assert_eq!(span(&tx, "leaf").parent_span_id, Some(c.span_id));
    assert!(c.timestamp <= t.timestamp);
}

#[test]
fn async_err_and_panic_are_internal_error() {
    let tx = capture_one(|| {
        assert!(block_on(async_fails()).is_err());
        let caught = std::panic::catch_unwind(|| block_on(async_panics()));
        assert!(caught.is_err(), "the panic continues");
        let after = SpanGuard::start("check", "after");
        drop(after);
    });
    assert_eq!(
        span(&tx, "async_fails").status,
        Some(SpanStatus::InternalError)
    );
    let p = span(&tx, "async_panics");
    assert_eq!(p.status, Some(SpanStatus::InternalError));
    assert!(p.timestamp.is_some());
    // The caller's span is current again after the panic.
    assert_eq!(span(&tx, "after").parent_span_id, Some(root_id(&tx)));
}

#[test]
fn a_future_dropped_before_it_completes_is_cancelled() {
    let tx = capture_one(|| {
        let mut fut = Box::pin(never_finishes());
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        drop(fut);
        // Not polling leaves nothing of ours current on the caller's hub.
        let after = SpanGuard::start("check", "after");
        drop(after);
    });
    let s = span(&tx, "never_finishes");
    assert_eq!(s.status, Some(SpanStatus::Cancelled));
    assert!(s.timestamp.is_some());
    // The future's locals were dropped with its span current.
    assert_eq!(span(&tx, "dropped").parent_span_id, Some(s.span_id));
    assert_eq!(span(&tx, "after").parent_span_id, Some(root_id(&tx)));
}

#[test]
fn impl_future_and_boxed_bodies_are_spanned_over_their_awaited_work() {
    let tx = capture_one(|| {
        assert_eq!(block_on(returns_impl_future(2)), Ok(4));
        assert_eq!(
            block_on(returns_impl_future(200)),
            Err("too big".to_owned())
        );
    });
    let spans: Vec<&Span> = tx
        .spans
        .iter()
        .filter(|s| s.description.as_deref() == Some("returns_impl_future"))
        .collect();
    assert_eq!(spans.len(), 2);
    assert_eq!(spans[0].status, Some(SpanStatus::Ok));
    assert_eq!(spans[1].status, Some(SpanStatus::InternalError));
    for s in spans {
        let leaves = children_of(&tx.spans, s);
        assert_eq!(leaves.len(), 1, "the leaf ran inside the span");
        assert_eq!(leaves[0].description.as_deref(), Some("leaf"));
    }

    let tx = capture_one(|| {
        assert_eq!(block_on(returns_boxed(3)), 3);
        assert_eq!(block_on(returns_ready()), 4);
    });
    let boxed = span(&tx, "returns_boxed");
    assert_eq!(children_of(&tx.spans, boxed).len(), 1);
    assert_eq!(span(&tx, "returns_ready").status, Some(SpanStatus::Ok));
}

#[test]
fn async_trait_and_native_trait_methods() {
    let tx = capture_one(|| {
        assert_eq!(block_on(Memory.get("k")), Some("v".to_owned()));
        assert_eq!(block_on(Memory.get("x")), None);
        assert_eq!(block_on(Memory.native()), 9);
    });
    let gets: Vec<&Span> = tx
        .spans
        .iter()
        .filter(|s| s.op.as_deref() == Some("cache.get"))
        .collect();
    assert_eq!(gets.len(), 2);
    for g in &gets {
        assert_eq!(g.description.as_deref(), Some("get"));
        assert_eq!(g.status, Some(SpanStatus::Ok));
        assert_eq!(children_of(&tx.spans, g).len(), 1);
    }
    assert_eq!(span(&tx, "native").parent_span_id, Some(root_id(&tx)));
}

/// Checks that every `child` span hangs from a `task` span with the same `id`, and every `leaf`
/// from a `child`: a span adopted by an interleaved sibling would break the chain.
fn assert_no_misparented(spans: &[Span], tasks: usize, root: sentry::protocol::SpanId) {
    let by_id: std::collections::HashMap<_, _> = spans.iter().map(|s| (s.span_id, s)).collect();
    let task_spans: Vec<&Span> = spans
        .iter()
        .filter(|s| s.description.as_deref() == Some("task"))
        .collect();
    assert_eq!(task_spans.len(), tasks);
    let mut misparented = 0;
    for t in &task_spans {
        if t.parent_span_id != Some(root) {
            misparented += 1;
        }
        let children = children_of(spans, t);
        if children.len() != 1 || children[0].description.as_deref() != Some("child") {
            misparented += 1;
            continue;
        }
        let leaves = children_of(spans, children[0]);
        if leaves.len() != 1 || leaves[0].description.as_deref() != Some("leaf") {
            misparented += 1;
        }
    }
    for s in spans {
        let parent_ok = s.parent_span_id == Some(root)
            || s.parent_span_id.is_some_and(|p| by_id.contains_key(&p));
        if !parent_ok {
            misparented += 1;
        }
    }
    assert_eq!(misparented, 0, "misparented spans");
}

#[test]
fn two_hundred_interleaved_futures_on_one_thread() {
    const N: u64 = 200;
    let tx = capture_one(|| {
        let results = block_on(futures::future::join_all((0..N).map(task)));
        assert!(results.iter().enumerate().all(|(i, r)| *r == Ok(i as u64)));
    });
    // 3 spans a task: 600 spans, under sentry's 1000-span limit.
    assert_eq!(tx.spans.len() as u64, 3 * N);
    assert_no_misparented(&tx.spans, N as usize, root_id(&tx));
    for t in tx
        .spans
        .iter()
        .filter(|s| s.description.as_deref() == Some("task"))
    {
        let id = t.data.get("id").and_then(Value::as_u64).expect("id");
        let c = children_of(&tx.spans, t)[0];
        assert!(c.start_timestamp >= t.start_timestamp, "task {id}");
    }
}

#[test]
fn a_hundred_spawned_tasks_on_a_multi_thread_runtime() {
    const N: u64 = 100;
    let tx = capture_one(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .build()
            .expect("runtime");
        let handles: Vec<_> = (0..N)
            .map(|i| {
                // Each concurrent task gets its own hub, as sentry asks (bind_hub).
                let hub = Arc::new(Hub::new_from_top(Hub::current()));
                rt.spawn(task(i).bind_hub(hub))
            })
            .collect();
        rt.block_on(async {
            for (i, h) in handles.into_iter().enumerate() {
                assert_eq!(h.await.expect("joined"), Ok(i as u64));
            }
        });
    });
    assert_eq!(tx.spans.len() as u64, 3 * N);
    assert_no_misparented(&tx.spans, N as usize, root_id(&tx));
}

fn assert_send<T: Send>(_: &T) {}

#[test]
fn instrumented_futures_stay_send() {
    let fut = task(1);
    assert_send(&fut);
    assert_send(&returns_impl_future(1));
    assert_send(&Memory.get("k"));
    drop(fut);
}
