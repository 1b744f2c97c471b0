//! The current trace in outgoing headers, and an incoming request's trace context kept for
//! what it sends on.
//!
//! Code that calls another service by hand writes the current trace into the request with
//! [`inject`]: `sentry-trace`, the trace's frozen `baggage` (see [`crate::dsc`]) and, when
//! asked, a W3C `traceparent`. (`sentry`'s own `iter_trace_propagation_headers` yields
//! `sentry-trace` alone.) Producers of queue messages get the same headers from
//! [`crate::queue::Publish`] and the queue attributes.
//!
//! ```
//! use std::collections::HashMap;
//! use insights_runtime::propagation;
//!
//! let mut headers: HashMap<String, String> = HashMap::new();
//! // Without Sentry, or outside any span, nothing is written.
//! assert!(!propagation::inject(&mut headers, false));
//! assert!(headers.is_empty());
//! ```
//!
//! With the `tower` feature, `ContinueTraceLayer` goes beside `sentry-tower`'s layers, so that
//! a request continued from another service (a browser, a Python service) propagates that
//! service's DSC, unchanged, in everything the request sends downstream and in its own
//! transaction's envelope.

use sentry::Hub;

pub use crate::queue::{Carrier, CarrierMut, TraceHeaders, BAGGAGE, SENTRY_TRACE, TRACEPARENT};

/// The headers for a request or message sent now from the current span: `None` when Sentry is
/// off or no span is current. An unsampled trace still gets headers, so that the callee keeps
/// the decision.
pub fn current_headers(traceparent: bool) -> Option<TraceHeaders> {
    if !crate::span::enabled() {
        return None;
    }
    Hub::with_active(|hub| {
        let span = hub.configure_scope(|scope| scope.get_span())?;
        Some(crate::queue::propagation::headers_for(
            hub,
            &span,
            None,
            traceparent,
        ))
    })
}

/// Writes `sentry-trace`, `baggage` (unless the trace has no DSC) and, with `traceparent`, a
/// W3C `traceparent` for the current span into `carrier`. Returns whether anything was written
/// (nothing when Sentry is off or no span is current).
pub fn inject(carrier: &mut (impl CarrierMut + ?Sized), traceparent: bool) -> bool {
    let Some(headers) = current_headers(traceparent) else {
        return false;
    };
    for (name, value) in headers
        .iter()
        .filter(|(name, _)| *name != crate::queue::ENQUEUED_TIME)
    {
        carrier.set_header(name, value.to_owned());
    }
    true
}

#[cfg(feature = "tower")]
pub use layer::{ContinueTrace, ContinueTraceLayer};

#[cfg(feature = "tower")]
mod layer {
    use std::task::{Context, Poll};

    use sentry::Hub;

    use crate::dsc;
    use crate::queue::propagation::{incoming_dsc_of, IncomingTrace};

    /// A tower layer that keeps an incoming request's trace context: the `sentry-` entries of
    /// its `baggage`, frozen for the trace its `sentry-trace` names, for every header the
    /// request writes downstream and for its transaction's envelope.
    ///
    /// Put it with `sentry-tower`'s layers, in any order among them; it only reads the request's
    /// headers. Without an active Sentry client, or without a valid `sentry-trace`, it does
    /// nothing.
    ///
    /// ```text
    /// let app = Router::new()
    ///     .route("/orders", post(create_order))
    ///     .layer(
    ///         ServiceBuilder::new()
    ///             .layer(NewSentryLayer::new_from_top())
    ///             .layer(SentryHttpLayer::new().enable_transaction())
    ///             .layer(ContinueTraceLayer),
    ///     );
    /// ```
    #[derive(Debug, Clone, Copy, Default)]
    pub struct ContinueTraceLayer;

    impl<S> tower_layer::Layer<S> for ContinueTraceLayer {
        type Service = ContinueTrace<S>;

        fn layer(&self, inner: S) -> ContinueTrace<S> {
            ContinueTrace { inner }
        }
    }

    /// The service [`ContinueTraceLayer`] makes.
    #[derive(Debug, Clone)]
    pub struct ContinueTrace<S> {
        inner: S,
    }

    impl<S, B> tower_service::Service<http::Request<B>> for ContinueTrace<S>
    where
        S: tower_service::Service<http::Request<B>>,
    {
        type Response = S::Response;
        type Error = S::Error;
        type Future = S::Future;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
            self.inner.poll_ready(cx)
        }

        fn call(&mut self, request: http::Request<B>) -> S::Future {
            keep(request.headers());
            self.inner.call(request)
        }
    }

    fn keep(headers: &http::HeaderMap) {
        if !crate::span::enabled() || Hub::with_active(|_| Some(())).is_none() {
            return;
        }
        if let Some(incoming) = IncomingTrace::read(headers, false) {
            dsc::continue_trace(incoming.trace_id, || incoming_dsc_of(headers));
        }
    }
}
