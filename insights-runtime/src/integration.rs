//! What the automatic integrations (`sqlx`, `postgres`, `redis`) share: where a connection's
//! queries go, and the span of one statement from its start to its outcome.
//!
//! Each integration knows its driver; this module knows the span. A statement's span is a
//! detached leaf ([`SpanGuard::start_detached`]): it is held across the driver's `.await`s, and
//! nothing the driver does should nest under it.
#![cfg_attr(
    not(any(feature = "sqlx", feature = "tokio-postgres")),
    allow(
        dead_code,
        reason = "the redis integration alone uses only `STATUS_CODE`: its spans are not `db` spans"
    )
)]

use std::panic::Location;

use sentry::protocol::SpanStatus;

use crate::db::{Query, Source};
use crate::span::SpanGuard;

/// `db.response.returned_rows`: rows a statement returned (OpenTelemetry's key; Sentry's
/// registry has none yet, so it is not typed by it).
pub(crate) const RETURNED_ROWS: &str = "db.response.returned_rows";

/// `db.response.affected_rows`: rows a statement inserted, changed or deleted, as the server
/// reported (beside OpenTelemetry's `db.response.returned_rows`; not in Sentry's registry).
pub(crate) const AFFECTED_ROWS: &str = "db.response.affected_rows";

/// Where a connection's queries go, read once when the connection (or pool) is wrapped, and
/// shared by every span it records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Peer {
    /// `db.system`: `postgresql`, `mysql`, `sqlite`, `redis`.
    pub(crate) system: &'static str,
    /// `db.name` / `db.namespace`, when the connection knows it.
    pub(crate) db_name: Option<Box<str>>,
    /// `server.address` / `server.port`, for a TCP connection.
    pub(crate) server: Option<(Box<str>, u16)>,
}

impl Peer {
    /// A peer of `system` with nothing else known.
    pub(crate) fn new(system: &'static str) -> Self {
        Peer {
            system,
            db_name: None,
            server: None,
        }
    }

    /// The db span of `sql` sent to this peer, its query source the caller when it is the
    /// application's own code (see [`Source::own_caller`]).
    pub(crate) fn query<'a>(
        &'a self,
        sql: &'a str,
        caller: &'static Location<'static>,
    ) -> Query<'a> {
        let mut query = Query::sql(sql)
            .system(self.system)
            .source(Source::own_caller(caller));
        if let Some(name) = &self.db_name {
            query = query.db_name(name);
        }
        if let Some((address, port)) = &self.server {
            query = query.server(address, *port);
        }
        query
    }

    /// Starts the span of one statement (inert when nothing is recorded).
    pub(crate) fn start(&self, sql: &str, caller: &'static Location<'static>) -> SpanGuard {
        self.query(sql, caller).start_detached()
    }
}

/// What a statement did, for its span's data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Rows {
    /// Rows returned, when the call returns rows.
    pub(crate) returned: Option<u64>,
    /// Rows affected, when the server reported it.
    pub(crate) affected: Option<u64>,
}

/// A statement's span while the driver works on it: finished with the call's outcome
/// ([`finish`](Self::finish)), or `cancelled` when dropped first (a future or stream dropped
/// before its end). While unwinding, the guard's own drop marks it `internal_error` instead.
/// Empty (and free) when nothing is recorded.
#[derive(Default)]
pub(crate) struct InFlight(Option<SpanGuard>);

impl InFlight {
    /// `span` in flight; nothing when it is not recording.
    #[inline]
    pub(crate) fn new(span: SpanGuard) -> Self {
        InFlight(span.is_recording().then_some(span))
    }

    /// The span, while it is recorded and not finished.
    pub(crate) fn span(&self) -> Option<&SpanGuard> {
        self.0.as_ref()
    }

    /// Finishes the span with `outcome` (see [`finish`]).
    pub(crate) fn finish<T, E>(
        mut self,
        outcome: &Result<T, E>,
        rows: impl FnOnce(&T) -> Rows,
        code: impl FnOnce(&E) -> Option<std::borrow::Cow<'_, str>>,
    ) {
        if let Some(span) = self.0.take() {
            finish(span, outcome, rows, code);
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(span) = self.0.take() {
            if !std::thread::panicking() {
                span.set_status(SpanStatus::Cancelled);
            }
        }
    }
}

/// `db.response.status_code`: the database's own code for an error (PostgreSQL's and MySQL's
/// SQLSTATE, `42601`), a string in Sentry's registry.
pub(crate) const STATUS_CODE: &str = "db.response.status_code";

/// Finishes a statement's span: its rows, and `ok` or `internal_error` from `outcome`, with the
/// database's code for an error when `code` finds one. The caller hands the driver's own result
/// on unchanged.
fn finish<T, E>(
    span: SpanGuard,
    outcome: &Result<T, E>,
    rows: impl FnOnce(&T) -> Rows,
    code: impl FnOnce(&E) -> Option<std::borrow::Cow<'_, str>>,
) {
    if !span.is_recording() {
        return;
    }
    span.finish_with(|data| match outcome {
        Ok(value) => {
            let rows = rows(value);
            if let Some(returned) = rows.returned {
                data.set(RETURNED_ROWS, returned);
            }
            if let Some(affected) = rows.affected {
                data.set(AFFECTED_ROWS, affected);
            }
            SpanStatus::Ok
        }
        Err(error) => {
            if let Some(code) = code(error) {
                data.set(STATUS_CODE, &*code);
            }
            SpanStatus::InternalError
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_code_is_a_source_and_a_dependency_is_not() {
        // This test's own file is relative: the application's code.
        assert!(matches!(
            Source::own_caller(Location::caller()),
            Source::Caller(_)
        ));
    }
}
