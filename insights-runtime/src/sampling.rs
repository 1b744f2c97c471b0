//! Sampling rules: a rate per transaction-name prefix, and the parent's decision first.
//!
//! ```
//! use insights_runtime::sampling::Sampler;
//!
//! let sampler = Sampler::new(0.2)
//!     .rule("/health", 0.0)        // never
//!     .rule("/api/events", 0.01);  // a high-traffic endpoint
//! assert_eq!(sampler.rate_for("GET /health"), 0.0);
//! assert_eq!(sampler.rate_for("POST /api/events/batch"), 0.01);
//! assert_eq!(sampler.rate_for("GET /api/users"), 0.2);
//!
//! let options = sentry::ClientOptions::new().traces_sampler(sampler.into_fn());
//! ```
//!
//! A rule's prefix is matched against the transaction name and, for names of the form
//! `METHOD /path` (as `sentry-tower` writes them), against the path; the longest matching
//! prefix wins. A transaction that continues a trace whose sampling was already decided (an
//! incoming `sentry-trace` with `-1` or `-0`) keeps that decision, so a trace is never half
//! recorded.

use sentry::TransactionContext;

/// Rates by transaction-name or path prefix, with a default.
#[derive(Debug, Clone)]
pub struct Sampler {
    default: f32,
    rules: Vec<(String, f32)>,
}

impl Sampler {
    /// Samples `default` of the transactions no rule matches (clamped to `0.0..=1.0`).
    pub fn new(default: f32) -> Self {
        Sampler {
            default: clamp(default),
            rules: Vec::new(),
        }
    }

    /// Samples `rate` of the transactions whose name or path starts with `prefix`.
    pub fn rule(mut self, prefix: impl Into<String>, rate: f32) -> Self {
        self.rules.push((prefix.into(), clamp(rate)));
        // Longest first, so the most specific rule wins.
        self.rules
            .sort_by_key(|rule| std::cmp::Reverse(rule.0.len()));
        self
    }

    /// The rate for a transaction named `name`, ignoring any parent decision.
    pub fn rate_for(&self, name: &str) -> f32 {
        let path = name.split_once(' ').map(|(_, path)| path);
        self.rules
            .iter()
            .find(|(prefix, _)| {
                name.starts_with(prefix.as_str())
                    || path.is_some_and(|p| p.starts_with(prefix.as_str()))
            })
            .map_or(self.default, |(_, rate)| *rate)
    }

    /// The rate for a transaction about to start: 1 or 0 when its parent decided, else by name.
    pub fn sample(&self, context: &TransactionContext) -> f32 {
        match context.sampled() {
            Some(true) => 1.0,
            Some(false) => 0.0,
            None => self.rate_for(context.name()),
        }
    }

    /// The sampler as `sentry`'s `traces_sampler`. The rate it returns for the head of a trace
    /// (a transaction no parent decided) is kept for the trace, so that the baggage and the
    /// envelopes of the trace state the rate that decided it ([`crate::dsc`]).
    pub fn into_fn(self) -> impl Fn(&TransactionContext) -> f32 + Send + Sync + 'static {
        move |context| {
            let rate = self.sample(context);
            if context.sampled().is_none() {
                crate::dsc::sampled_at(context.trace_id(), rate);
            }
            rate
        }
    }
}

fn clamp(rate: f32) -> f32 {
    if rate.is_nan() {
        0.0
    } else {
        rate.clamp(0.0, 1.0)
    }
}
