//! The span guard: a child of the scope's current span that is current for its extent.
//!
//! Everything the attributes record goes through here. The rules, all of which the `sentry` crate
//! leaves to its callers:
//!
//! * a span is built only when it will be sent: no client, no current span, or an unsampled
//!   parent cost one scope lookup and nothing else (`sentry`'s own `start_child` would build,
//!   clone and keep a span that is thrown away when the transaction finishes);
//! * the new span is the scope's current span until the guard drops, so spans made by `sentry`,
//!   `sentry-tracing` or `sentry-tower` inside it nest under it;
//! * the guard always finishes the span and puts the previous span back, on every exit path,
//!   including a panic (which marks the span `internal_error` unless a status was already set).

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sentry::protocol::{SpanStatus, Value};
use sentry::{Hub, TransactionContext, TransactionOrSpan};

/// A span recorded by this crate: a child of the span that was current when it started, or
/// a transaction of its own.
///
/// The attributes expand into it; it is public for code that cannot carry an attribute, such as
/// a block inside a larger function. While the guard lives, its span is the scope's current span,
/// so errors captured and spans started inside it belong to it. Dropping the guard finishes the
/// span and makes the previous span current again.
///
/// When Sentry is not initialised, no span is current, or the current span is not sampled,
/// nothing is created: the guard is inert and every method is a no-op.
///
/// # Examples
///
/// ```
/// use insights_runtime::span::SpanGuard;
///
/// fn rebuild_index(rows: &[u32]) -> usize {
///     let span = SpanGuard::start("function", "rebuild_index")
///         .with_data("rows.count", rows.len());
///     let built = rows.iter().filter(|r| **r > 0).count();
///     span.finish_with_outcome(&Ok::<_, ()>(built));
///     built
/// }
/// # assert_eq!(rebuild_index(&[0, 1, 2]), 2);
/// ```
#[must_use = "the span ends when the guard is dropped; bind it to a variable"]
pub struct SpanGuard {
    // Boxed: the inert guard, the common case, is then one null pointer in a register.
    active: Option<Box<Active>>,
}

struct Active {
    span: TransactionOrSpan,
    /// A transaction this guard started for its span (a queue consumer's), ended with it.
    root: Option<TransactionOrSpan>,
    /// The hub whose current span this guard replaced, and the span to put back; `None` for a
    /// detached guard.
    restore: Option<(Arc<Hub>, Option<TransactionOrSpan>)>,
    /// Data written only if the span lasts long enough (a db span's query source).
    deferred: Option<Deferred>,
}

/// Data a span's start leaves for its end: a db span's query source, written when the span
/// finishes if it lasted at least `at_least` (see `db::set_query_source`).
pub(crate) struct Deferred {
    pub(crate) started: Instant,
    pub(crate) at_least: Duration,
    pub(crate) source: crate::db::Source,
}

impl Deferred {
    /// Writes the data on `span` if it lasted long enough; called right before it finishes.
    pub(crate) fn end(self, span: &TransactionOrSpan) {
        if self.started.elapsed() >= self.at_least {
            self.source.record(&SpanData::new(span));
        }
    }
}

/// A handle that writes data fields onto a span being started.
///
/// It is given to the closure of [`SpanGuard::start_with`] and [`crate::future::Instrumented`],
/// which run only when a span is recorded, so the values are never computed otherwise.
pub struct SpanData<'a> {
    span: &'a TransactionOrSpan,
    deferred: Cell<Option<Deferred>>,
}

impl<'a> SpanData<'a> {
    pub(crate) fn new(span: &'a TransactionOrSpan) -> Self {
        SpanData {
            span,
            deferred: Cell::new(None),
        }
    }

    /// Leaves `deferred` for the span's end (only the span's start hands it on).
    pub(crate) fn defer(&self, deferred: Deferred) {
        self.deferred.set(Some(deferred));
    }

    /// What the start left for the end.
    pub(crate) fn into_deferred(self) -> Option<Deferred> {
        self.deferred.into_inner()
    }

    /// Sets `key` to `value` in the span's data.
    #[inline]
    pub fn set(&self, key: &str, value: impl Into<Value>) {
        self.span.set_data(key, value.into());
    }

    /// Sets the span's description, for descriptions that are only worth computing when the
    /// span is recorded (cache keys, a query taken from an argument).
    #[inline]
    pub fn describe(&self, description: &str) {
        self.span.set_name(description);
    }

    /// The span being written to.
    pub fn span(&self) -> &TransactionOrSpan {
        self.span
    }
}

/// Whether this build records anything at all (the `enable` feature).
#[inline(always)]
pub(crate) const fn enabled() -> bool {
    cfg!(feature = "enable")
}

/// What a new span hangs from: a sampled parent, or (when allowed) a transaction of its own.
pub(crate) enum Root<'a> {
    /// Only a child of the current span; nothing when there is none.
    ChildOnly,
    /// A child of the current span, or a transaction with this name when there is none.
    TransactionNamed(&'a str),
}

/// The active hub and its current span, when a child of that span will be recorded (the rule
/// of [`open`]); without a client, one look at the thread's hub. For the integrations, which
/// decide before they capture anything (a query's text, a command's keys).
#[allow(deprecated, reason = "`is_sampled` is exact today; see `open`")]
#[cfg_attr(
    not(any(feature = "sqlx", feature = "redis")),
    allow(
        dead_code,
        reason = "only the sqlx and redis integrations decide ahead"
    )
)]
pub(crate) fn recording_parent() -> Option<(Arc<Hub>, TransactionOrSpan)> {
    if !enabled() {
        return None;
    }
    Hub::with_active(|hub| {
        let parent = hub
            .configure_scope(|scope| scope.get_span())
            .filter(TransactionOrSpan::is_sampled)?;
        Some((Arc::clone(hub), parent))
    })
}

/// Starts the span for `parent`, or decides that none is recorded.
///
/// `sentry`'s `is_sampled` is deprecated because a span's sampling may in future be decided
/// later than its parent's; today it is exact (true only when the transaction will be sent) and
/// it is the one check that does not cost a whole span.
#[allow(deprecated, reason = "`is_sampled` is exact today; see above")]
#[inline]
pub(crate) fn open(
    hub: &Hub,
    parent: Option<&TransactionOrSpan>,
    op: &str,
    description: &str,
    root: &Root<'_>,
) -> Option<TransactionOrSpan> {
    match (parent, root) {
        (Some(parent), _) => parent
            .is_sampled()
            .then(|| parent.start_child(op, description).into()),
        (None, Root::TransactionNamed(name)) => {
            let transaction = hub.start_transaction(TransactionContext::new(name, op));
            Some(transaction.into())
        }
        (None, Root::ChildOnly) => None,
    }
}

impl SpanGuard {
    /// A guard that records nothing.
    #[inline]
    pub const fn noop() -> Self {
        SpanGuard { active: None }
    }

    /// Starts a child of the current span with `op` and `description`.
    #[inline]
    pub fn start(op: &str, description: &str) -> Self {
        Self::start_with(op, description, |_| {})
    }

    /// Starts a child of the current span; `data` fills in its data fields, and runs only when
    /// the span is recorded.
    #[inline]
    pub fn start_with(op: &str, description: &str, data: impl FnOnce(&SpanData<'_>)) -> Self {
        Self::begin(op, description, &Root::ChildOnly, data)
    }

    /// Starts a child of the current span or, when no span is current, a transaction named
    /// `name` with operation `op`.
    ///
    /// This is the batch-job case: a function that runs outside any request still gets a
    /// transaction, and the same function called inside one becomes a span of it.
    #[inline]
    pub fn start_transaction_or_child(
        name: &str,
        op: &str,
        description: &str,
        data: impl FnOnce(&SpanData<'_>),
    ) -> Self {
        Self::begin(op, description, &Root::TransactionNamed(name), data)
    }

    #[inline]
    fn begin(
        op: &str,
        description: &str,
        root: &Root<'_>,
        data: impl FnOnce(&SpanData<'_>),
    ) -> Self {
        if !enabled() {
            return Self::noop();
        }
        // `with_active` is the cheapest public gate: without an enabled client it returns at once.
        let mut active = Hub::with_active(|hub| Self::install(hub, op, description, root));
        if let Some(active) = &mut active {
            let written = SpanData::new(&active.span);
            data(&written);
            active.deferred = written.into_deferred();
        }
        SpanGuard { active }
    }

    /// Starts the span and makes it current; out of line, so that the inert path stays small.
    #[inline(never)]
    fn install(
        hub: &Arc<Hub>,
        op: &str,
        description: &str,
        root: &Root<'_>,
    ) -> Option<Box<Active>> {
        // One scope update both reads the parent and installs the child.
        hub.configure_scope(|scope| {
            let previous = scope.get_span();
            let span = open(hub, previous.as_ref(), op, description, root)?;
            scope.set_span(Some(span.clone()));
            Some(Box::new(Active {
                span,
                root: None,
                restore: Some((Arc::clone(hub), previous)),
                deferred: None,
            }))
        })
    }

    /// Starts a child of the current span without making it current.
    ///
    /// For a leaf span held across an `.await`: a current span must not outlive a poll (other
    /// futures polled on the thread would adopt it), a detached one may. Spans started while it
    /// lives do not nest under it; use [`FutureExt::traced`](crate::future::FutureExt::traced)
    /// or [`Instrumented`](crate::future::Instrumented) when they should.
    #[inline]
    pub fn start_detached(op: &str, description: &str, data: impl FnOnce(&SpanData<'_>)) -> Self {
        if !enabled() {
            return Self::noop();
        }
        let mut active = Hub::with_active(|hub| {
            let parent = hub.configure_scope(|scope| scope.get_span());
            let span = open(hub, parent.as_ref(), op, description, &Root::ChildOnly)?;
            Some(Box::new(Active {
                span,
                root: None,
                restore: None,
                deferred: None,
            }))
        });
        if let Some(active) = &mut active {
            let written = SpanData::new(&active.span);
            data(&written);
            active.deferred = written.into_deferred();
        }
        SpanGuard { active }
    }

    /// Makes `span` current on `hub`, ending `root` with it (sync queue consumers).
    pub(crate) fn current(
        hub: &Arc<Hub>,
        span: TransactionOrSpan,
        root: Option<TransactionOrSpan>,
    ) -> Self {
        let previous = hub.configure_scope(|scope| {
            let previous = scope.get_span();
            scope.set_span(Some(span.clone()));
            previous
        });
        SpanGuard {
            active: Some(Box::new(Active {
                span,
                root,
                restore: Some((Arc::clone(hub), previous)),
                deferred: None,
            })),
        }
    }

    /// Whether a span is being recorded.
    #[inline]
    pub fn is_recording(&self) -> bool {
        self.active.is_some()
    }

    /// The span being recorded, if any.
    pub fn span(&self) -> Option<&TransactionOrSpan> {
        self.active.as_ref().map(|a| &a.span)
    }

    /// Sets a data field on the span (nothing when not recording).
    #[inline]
    pub fn set_data(&self, key: &str, value: impl Into<Value>) {
        if let Some(active) = &self.active {
            active.span.set_data(key, value.into());
        }
    }

    /// Builder form of [`set_data`](Self::set_data).
    #[inline]
    pub fn with_data(self, key: &str, value: impl Into<Value>) -> Self {
        self.set_data(key, value);
        self
    }

    /// Sets the span's status, replacing any status set before.
    pub fn set_status(&self, status: SpanStatus) {
        if let Some(active) = &self.active {
            active.span.set_status(status);
        }
    }

    /// Sets the span's status from `outcome` (see [`crate::status::Outcome`]) unless one is
    /// already set, then finishes the span.
    #[inline]
    pub fn finish_with_outcome<O: crate::status::Outcome + ?Sized>(self, outcome: &O) {
        self.finish_with(|_| outcome.status());
    }

    /// Sets the status `status` returns unless one is already set, then finishes the span.
    /// `status` runs only when a span is recorded, and may record more data on it.
    #[inline]
    pub fn finish_with(mut self, status: impl FnOnce(&SpanData<'_>) -> SpanStatus) {
        if let Some(active) = self.active.take() {
            let status = set_status_if_unset(&active.span, status);
            if let Some(root) = &active.root {
                set_status_if_unset(root, |_| status);
            }
            (*active).end();
        }
    }

    /// Ends a guard dropped without `finish_with`; out of line, off the inert guard's path.
    #[cold]
    #[inline(never)]
    fn end_on_drop(active: Active) {
        if std::thread::panicking() {
            set_status_if_unset(&active.span, |_| SpanStatus::InternalError);
            if let Some(root) = &active.root {
                set_status_if_unset(root, |_| SpanStatus::InternalError);
            }
        }
        active.end();
    }

    /// Finishes the span now, leaving its status as it is.
    pub fn finish(self) {}
}

impl Active {
    fn end(self) {
        let Active {
            span,
            root,
            restore,
            deferred,
        } = self;
        if let Some((hub, previous)) = restore {
            hub.configure_scope(|scope| scope.set_span(previous));
        }
        if let Some(deferred) = deferred {
            deferred.end(&span);
        }
        span.finish();
        if let Some(root) = root {
            root.finish();
        }
    }
}

impl Drop for SpanGuard {
    #[inline]
    fn drop(&mut self) {
        if let Some(active) = self.active.take() {
            Self::end_on_drop(*active);
        }
    }
}

impl std::fmt::Debug for SpanGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanGuard")
            .field("recording", &self.is_recording())
            .finish()
    }
}

/// The user's own status wins: only an unset status is filled in. Returns the span's status.
#[inline]
pub(crate) fn set_status_if_unset(
    span: &TransactionOrSpan,
    status: impl FnOnce(&SpanData<'_>) -> SpanStatus,
) -> SpanStatus {
    let status = status(&SpanData::new(span));
    match span.get_status() {
        Some(set) => set,
        None => {
            span.set_status(status);
            status
        }
    }
}
