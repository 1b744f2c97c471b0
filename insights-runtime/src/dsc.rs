//! The dynamic sampling context (DSC) of the traces this process takes part in, frozen as
//! Sentry asks: the head of a trace fixes it, and every service that continues the trace passes
//! it on unchanged, in the baggage of every message or request it sends and in the `trace`
//! header of its transaction envelopes, whatever its own release, environment or sample rate.
//! Relay decides a whole trace from it, so a mixed fleet (a Python producer, a Rust consumer)
//! samples a trace consistently only when every hop keeps the head's.
//!
//! `sentry` 0.49 keeps none of it: it reads nothing from an incoming baggage but `org_id`, writes
//! no baggage, and puts a partial DSC of its own in its envelopes. So this module keeps, per trace
//! id, what was frozen for the trace: the `sentry-` entries of an incoming baggage (a consumer,
//! `propagation::ContinueTraceLayer`), or what this process wrote when it was the head.
//! It also keeps the rate a sampler returned for a trace, so that the baggage states the rate
//! that decided it.
//!
//! Memory is bounded: at most [`MAX_TRACES`] traces are kept, the oldest dropped first, and a
//! trace is dropped when the last transaction that held it is sent. An incoming `sentry-trace`
//! without any `sentry-` baggage comes from an SDK older than the DSC: as the spec asks, its DSC
//! is frozen empty, and no baggage is sent downstream for that trace.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use sentry::protocol::TraceId;

/// Most traces whose DSC is kept at once.
pub const MAX_TRACES: usize = 8192;

/// The frozen DSC of a trace: the `sentry-` entries of a baggage header, encoded as they are
/// sent (`sentry-trace_id=..,sentry-sample_rate=..`). Empty for a trace continued from an SDK
/// that sent none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frozen {
    baggage: String,
}

impl Frozen {
    /// The `sentry-` entries, already encoded and joined with `,`.
    pub(crate) fn from_encoded(baggage: String) -> Self {
        Frozen { baggage }
    }

    /// The entries as a baggage header value; empty when there are none.
    pub fn baggage(&self) -> &str {
        &self.baggage
    }

    /// Whether the trace came from an SDK that sent no DSC.
    pub fn is_empty(&self) -> bool {
        self.baggage.is_empty()
    }
}

#[derive(Debug, Default)]
struct Slot {
    frozen: Option<Arc<Frozen>>,
    /// The rate a sampler returned for the trace's head transaction here.
    rate: Option<f64>,
    /// Transactions that continued or started the trace here and are not sent yet.
    holders: u32,
}

#[derive(Debug, Default)]
struct Store {
    traces: HashMap<TraceId, Slot>,
    /// Insertion order, for dropping the oldest; may name traces already released.
    order: VecDeque<TraceId>,
}

static STORE: Mutex<Option<Store>> = Mutex::new(None);

fn with_store<R>(f: impl FnOnce(&mut Store) -> R) -> R {
    let mut guard = STORE.lock().unwrap_or_else(PoisonError::into_inner);
    f(guard.get_or_insert_with(Store::default))
}

impl Store {
    fn slot(&mut self, trace_id: TraceId) -> &mut Slot {
        if !self.traces.contains_key(&trace_id) {
            while self.traces.len() >= MAX_TRACES {
                match self.order.pop_front() {
                    Some(oldest) => {
                        self.traces.remove(&oldest);
                    }
                    None => break,
                }
            }
            self.order.push_back(trace_id);
            // `order` may hold released ids too; keep it within a few times the bound.
            if self.order.len() > MAX_TRACES * 4 {
                let traces = &self.traces;
                self.order.retain(|id| traces.contains_key(id));
            }
        }
        self.traces.entry(trace_id).or_default()
    }
}

/// A transaction continues `trace_id` with the incoming DSC `frozen` gives. The first DSC
/// frozen for a trace stays: for a later message of the same trace `frozen` is not even read.
pub(crate) fn continue_trace(trace_id: TraceId, frozen: impl FnOnce() -> Frozen) {
    if with_store(|store| {
        let slot = store.slot(trace_id);
        slot.holders = slot.holders.saturating_add(1);
        slot.frozen.is_some()
    }) {
        return;
    }
    // Read outside the lock; if another thread froze the trace meanwhile, its DSC stays.
    let frozen = Arc::new(frozen());
    with_store(|store| {
        let slot = store.slot(trace_id);
        if slot.frozen.is_none() {
            slot.frozen = Some(frozen);
        }
    });
}

/// A sampler decided the head transaction of `trace_id` with `rate`.
pub(crate) fn sampled_at(trace_id: TraceId, rate: f64) {
    with_store(|store| {
        let slot = store.slot(trace_id);
        if slot.rate.is_none() {
            slot.holders = slot.holders.saturating_add(1);
        }
        slot.rate = Some(rate);
    });
}

/// This process, the head, wrote `frozen` into a baggage for `trace_id`; the first one stays.
/// Returns the DSC frozen for the trace.
pub(crate) fn freeze_head(trace_id: TraceId, frozen: Frozen) -> Arc<Frozen> {
    with_store(|store| {
        let slot = store.slot(trace_id);
        if slot.holders == 0 {
            slot.holders = 1;
        }
        Arc::clone(slot.frozen.get_or_insert_with(|| Arc::new(frozen)))
    })
}

/// The DSC frozen for `trace_id`, if any.
pub(crate) fn frozen(trace_id: TraceId) -> Option<Arc<Frozen>> {
    with_store(|store| store.traces.get(&trace_id)?.frozen.clone())
}

/// The rate a sampler returned for `trace_id`, if one did here.
pub(crate) fn rate(trace_id: TraceId) -> Option<f64> {
    with_store(|store| store.traces.get(&trace_id)?.rate)
}

/// A transaction of `trace_id` was sent: the trace is kept only while other transactions that
/// hold it are not.
#[cfg_attr(
    not(feature = "transport"),
    allow(dead_code, reason = "only the transport sends")
)]
pub(crate) fn release(trace_id: TraceId) {
    with_store(|store| {
        if let Some(slot) = store.traces.get_mut(&trace_id) {
            slot.holders = slot.holders.saturating_sub(1);
            if slot.holders == 0 {
                store.traces.remove(&trace_id);
            }
        }
    });
}

/// How many traces are kept (for tests of the bound).
#[doc(hidden)]
pub fn kept() -> usize {
    with_store(|store| store.traces.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> TraceId {
        format!("{:016x}{n:016x}", 0xabcd_u64)
            .parse()
            .expect("trace id")
    }

    #[test]
    fn the_first_dsc_stays_and_the_store_is_bounded() {
        let first = Frozen::from_encoded("sentry-release=py%401".into());
        continue_trace(id(1), || first.clone());
        continue_trace(id(1), || {
            Frozen::from_encoded("sentry-release=other".into())
        });
        assert_eq!(frozen(id(1)).as_deref(), Some(&first));
        release(id(1));
        assert!(frozen(id(1)).is_some(), "one holder left");
        release(id(1));
        assert!(frozen(id(1)).is_none());
        for n in 0..(MAX_TRACES as u64 + 100) {
            continue_trace(id(1_000_000 + n), Frozen::default);
        }
        assert!(kept() <= MAX_TRACES);
        assert!(frozen(id(1_000_000)).is_none(), "the oldest went first");
        assert!(frozen(id(1_000_000 + MAX_TRACES as u64 + 99)).is_some());
    }
}
