//! Spans over futures: current only while the future is being polled.
//!
//! A span that stayed current across an `.await` would be adopted by whatever else the thread
//! polls meanwhile (`join_all` of hundreds of futures, or another task on a worker thread). So a
//! recorded future gets a hub of its own, forked from the caller's with the new span as the
//! current span, and [`Instrumented`] makes that hub the thread's hub for each poll only, the
//! way `sentry::SentryFutureExt::bind_hub` does. One consequence: scope changes made inside the
//! future (tags, user) stay on its hub and do not leak out to the caller.
//!
//! The adapter finishes the span when the future completes, with a status from its output; a
//! panic while polling marks it `internal_error`; a future dropped before it completes marks it
//! `cancelled`, and the inner future is dropped with the span current, so spans its destructors
//! finish still nest correctly.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use sentry::protocol::SpanStatus;
use sentry::{Hub, HubSwitchGuard, TransactionOrSpan};

use crate::span::{enabled, open, set_status_if_unset, Deferred, Root, SpanData};
use crate::status::Outcome;

/// A span started for a future that has not been polled under it yet.
///
/// Made by [`Recording::start`] when a span will be recorded; `None` otherwise. Hand it to
/// [`Instrumented::new`].
pub struct Recording {
    span: TransactionOrSpan,
    /// A transaction started for this span (a queue consumer's), ended with it.
    root: Option<TransactionOrSpan>,
    hub: Arc<Hub>,
    /// Data written only if the span lasts long enough (a db span's query source).
    deferred: Option<Deferred>,
}

impl Recording {
    /// Starts a child of the current span, or returns `None` when none will be recorded.
    /// `data` fills in the span's data fields and runs only when it is recorded.
    #[inline]
    pub fn start(op: &str, description: &str, data: impl FnOnce(&SpanData<'_>)) -> Option<Self> {
        Self::begin(op, description, &Root::ChildOnly, data)
    }

    /// Like [`start`](Self::start), but when no span is current it starts a transaction named
    /// `name` with operation `op`.
    #[inline]
    pub fn start_transaction_or_child(
        name: &str,
        op: &str,
        description: &str,
        data: impl FnOnce(&SpanData<'_>),
    ) -> Option<Self> {
        Self::begin(op, description, &Root::TransactionNamed(name), data)
    }

    #[inline]
    fn begin(
        op: &str,
        description: &str,
        root: &Root<'_>,
        data: impl FnOnce(&SpanData<'_>),
    ) -> Option<Self> {
        if !enabled() {
            return None;
        }
        Hub::with_active(|hub| {
            // One scope update reads the parent and copies the scope for the fork, with the
            // new span current in the copy.
            let (span, scope) = hub.configure_scope(|scope| {
                let parent = scope.get_span();
                let span = open(hub, parent.as_ref(), op, description, root)?;
                let mut forked = scope.clone();
                forked.set_span(Some(span.clone()));
                Some((span, forked))
            })?;
            let written = SpanData::new(&span);
            data(&written);
            let deferred = written.into_deferred();
            Some(Recording {
                span,
                root: None,
                hub: Arc::new(Hub::new(hub.client(), Arc::new(scope))),
                deferred,
            })
        })
    }

    /// A recording of `span` on a hub forked from `hub`, ending `root` with it.
    pub(crate) fn on_fork(
        hub: &Arc<Hub>,
        span: TransactionOrSpan,
        root: Option<TransactionOrSpan>,
    ) -> Self {
        let fork = Arc::new(Hub::new_from_top(hub));
        fork.configure_scope(|scope| scope.set_span(Some(span.clone())));
        Recording {
            span,
            root,
            hub: fork,
            deferred: None,
        }
    }

    /// The span being recorded.
    pub fn span(&self) -> &TransactionOrSpan {
        &self.span
    }

    fn end(self, status: impl FnOnce(&SpanData<'_>) -> SpanStatus) {
        let status = set_status_if_unset(&self.span, status);
        if let Some(deferred) = self.deferred {
            deferred.end(&self.span);
        }
        // Finishing a transaction applies the current hub's scope to it; this is that hub.
        let _current = HubSwitchGuard::new(self.hub);
        self.span.finish();
        if let Some(root) = self.root {
            // A consumer's transaction carries its span's status: Sentry's queue error rate is
            // computed from transactions.
            set_status_if_unset(&root, |_| status);
            root.finish();
        }
    }
}

pin_project_lite::pin_project! {
    /// A future whose span is current while it is polled and finished when it completes.
    ///
    /// `S` turns the output into a status (and may record data from it); the attributes
    /// generate it, and [`FutureExt::traced`] uses [`Outcome`]. With no [`Recording`] the
    /// adapter only forwards polls. It is `Send`, `Sync` and `Unpin` exactly when the inner
    /// future is (and `S` is).
    ///
    /// # Examples
    ///
    /// ```
    /// use insights_runtime::future::FutureExt;
    ///
    /// async fn load() -> Result<u32, std::io::Error> {
    ///     Ok(7)
    /// }
    ///
    /// # futures_executor::block_on(async {
    /// let value = load().traced("function", "load").await?;
    /// assert_eq!(value, 7);
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct Instrumented<F, S> {
        #[pin]
        inner: Slot<F>,
        state: Option<State<S>>,
    }

    impl<F, S> PinnedDrop for Instrumented<F, S> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(state) = this.state.take() {
                {
                    // The inner future is dropped in place with the span current, so that spans
                    // its destructors finish still nest under it.
                    let _current = HubSwitchGuard::new(Arc::clone(&state.recording.hub));
                    this.inner.project_replace(Slot::Dropped);
                }
                state.recording.end(|_| SpanStatus::Cancelled);
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner future, until it is dropped ahead of the adapter (see `PinnedDrop` above).
    #[project = SlotProj]
    #[project_replace = SlotReplace]
    enum Slot<F> {
        Live { #[pin] future: F },
        Dropped,
    }
}

struct State<S> {
    recording: Recording,
    status: S,
}

impl<F, S> Instrumented<F, S>
where
    F: Future,
    S: FnOnce(&F::Output, &SpanData<'_>) -> SpanStatus,
{
    /// Runs `inner` under `recording`'s span; `status` judges its output, and may record
    /// more data from it on the span.
    #[inline]
    pub fn new(inner: F, recording: Option<Recording>, status: S) -> Self {
        Instrumented {
            inner: Slot::Live { future: inner },
            state: recording.map(|recording| State { recording, status }),
        }
    }
}

impl<F, S> Future for Instrumented<F, S>
where
    F: Future,
    S: FnOnce(&F::Output, &SpanData<'_>) -> SpanStatus,
{
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let SlotProj::Live { future } = this.inner.project() else {
            // Only `Drop` empties the slot; nothing polls it after that.
            return Poll::Pending;
        };
        let Some(state) = this.state.as_ref() else {
            return future.poll(cx);
        };
        let _current = HubSwitchGuard::new(Arc::clone(&state.recording.hub));
        let mut unwinding = EndOnUnwind {
            state: this.state,
            armed: true,
        };
        let poll = future.poll(cx);
        unwinding.armed = false;
        if let Poll::Ready(output) = &poll {
            if let Some(State { recording, status }) = unwinding.state.take() {
                recording.end(|data| status(output, data));
            }
        }
        poll
    }
}

/// Ends the span as `internal_error` if the inner poll panics. It is checked in the poll itself
/// because an executor that catches the panic drops the future later, when the thread is no
/// longer panicking.
struct EndOnUnwind<'a, S> {
    state: &'a mut Option<State<S>>,
    /// Still set when the poll did not return.
    armed: bool,
}

impl<S> Drop for EndOnUnwind<'_, S> {
    fn drop(&mut self) {
        if self.armed {
            if let Some(state) = self.state.take() {
                state.recording.end(|_| SpanStatus::InternalError);
            }
        }
    }
}

impl<F, S> std::fmt::Debug for Instrumented<F, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instrumented")
            .field("recording", &self.state.is_some())
            .finish_non_exhaustive()
    }
}

/// A status function as a plain function pointer, so that the adapter type can be named.
pub type StatusFn<T> = fn(&T, &SpanData<'_>) -> SpanStatus;

/// Puts any future under a span, for code that cannot carry an attribute.
pub trait FutureExt: Future + Sized {
    /// Runs `self` under a child span of the current span (nothing is recorded when there is
    /// none). The status comes from the output through [`Outcome`].
    fn traced(self, op: &str, description: &str) -> Instrumented<Self, StatusFn<Self::Output>>
    where
        Self::Output: Outcome,
    {
        Instrumented::new(
            self,
            Recording::start(op, description, |_| {}),
            |output, _| output.status(),
        )
    }
}

impl<F: Future> FutureExt for F {}
