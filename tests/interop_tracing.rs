//! Spans of this crate and spans of `sentry-tracing` nest inside each other.
//!
//! One test in this file: `tracing` caches callsite interest process-wide, so a test without a
//! subscriber running beside one with a scoped subscriber can disable its callsites (the reason
//! sentry-tracing keeps one test a file too).

mod common;

use common::{capture_one, root_id, span};
use insights_runtime::traced;
use sentry::integrations::tracing::SpanLayer;
use tracing_subscriber::layer::SubscriberExt;

fn with_sentry_tracing<R>(f: impl FnOnce() -> R) -> R {
    let subscriber = tracing_subscriber::registry().with(SpanLayer::new());
    tracing::subscriber::with_default(subscriber, f)
}

#[traced]
fn ours() -> u8 {
    tracing::info_span!("theirs_inside").in_scope(|| 1)
}

#[tracing::instrument]
fn theirs() -> u8 {
    ours()
}

#[traced]
async fn ours_async() -> u8 {
    theirs_async().await
}

#[tracing::instrument]
async fn theirs_async() -> u8 {
    tokio::task::yield_now().await;
    leaf()
}

#[traced]
fn leaf() -> u8 {
    2
}

#[test]
fn nesting_both_ways_with_sentry_tracing() {
    sync_nesting();
    async_nesting();
}

fn sync_nesting() {
    let tx = capture_one(|| with_sentry_tracing(|| assert_eq!(theirs(), 1)));
    let theirs = span(&tx, "theirs");
    let ours = span(&tx, "ours");
    let inside = span(&tx, "theirs_inside");
    assert_eq!(theirs.parent_span_id, Some(root_id(&tx)));
    assert_eq!(ours.parent_span_id, Some(theirs.span_id));
    assert_eq!(inside.parent_span_id, Some(ours.span_id));
}

fn async_nesting() {
    let tx = capture_one(|| {
        with_sentry_tracing(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime");
            assert_eq!(rt.block_on(ours_async()), 2);
        });
    });
    let ours = span(&tx, "ours_async");
    let theirs = span(&tx, "theirs_async");
    let leaf = span(&tx, "leaf");
    assert_eq!(ours.parent_span_id, Some(root_id(&tx)));
    assert_eq!(theirs.parent_span_id, Some(ours.span_id));
    assert_eq!(leaf.parent_span_id, Some(theirs.span_id));
}
