//! Spans of this crate nest under the transactions `sentry-tower` starts for requests.

mod common;

use common::{capture, root_id, span};
use futures::executor::block_on;
use insights_runtime::traced;
use sentry::protocol::SpanStatus;

#[traced]
async fn handler_work() -> u8 {
    tokio::task::yield_now().await;
    2
}

#[test]
fn ours_under_a_sentry_tower_transaction() {
    use tower::{Layer, ServiceExt};

    let txs = capture(|| {
        let service = tower::service_fn(|_req: http::Request<()>| async {
            let value = handler_work().await;
            Ok::<_, std::convert::Infallible>(http::Response::new(value))
        });
        let service =
            sentry::integrations::tower::NewSentryLayer::<http::Request<()>>::new_from_top().layer(
                sentry::integrations::tower::SentryHttpLayer::new()
                    .enable_transaction()
                    .layer(service),
            );
        let request = http::Request::get("http://localhost/users")
            .body(())
            .expect("request");
        let response = block_on(service.oneshot(request)).expect("response");
        assert_eq!(*response.body(), 2);
    });
    assert_eq!(txs.len(), 1);
    let tx = &txs[0];
    assert_eq!(tx.name.as_deref(), Some("GET /users"));
    let ours = span(tx, "handler_work");
    assert_eq!(ours.parent_span_id, Some(root_id(tx)));
    assert_eq!(ours.status, Some(SpanStatus::Ok));
}
