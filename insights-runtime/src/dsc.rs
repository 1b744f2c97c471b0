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
//! trace is dropped when the last transaction that held it is sent. The rates are apart, in a
//! table of [`RATE_SLOTS`] words written without a lock: a sampler runs for every transaction,
//! unsampled ones too, and most of them never propagate, so recording a rate must cost next to
//! nothing (in the locked store it cost the load test's service 1.7 % of its CPU). An incoming
//! `sentry-trace` without any `sentry-` baggage comes from an SDK older than the DSC: as the
//! spec asks, its DSC is frozen empty, and no baggage is sent downstream for that trace.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use sentry::protocol::TraceId;

/// Most traces whose DSC is kept at once.
pub const MAX_TRACES: usize = 8192;

/// Slots of the rate table (8 bytes each, allocated with the first rate). A trace's rate is
/// found as long as no later trace took its slot: for a trace that propagates 20,000 traces
/// after its own began, about 30 % of the time (a second at 20,000 requests a second).
pub const RATE_SLOTS: usize = 16384;

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
pub(crate) fn sampled_at(trace_id: TraceId, rate: f32) {
    let rates = RATES.get_or_init(|| (0..RATE_SLOTS).map(|_| AtomicU64::new(0)).collect());
    let (slot, tag) = rate_slot(trace_id);
    rates[slot].store(tag | u64::from(rate.to_bits()), Ordering::Relaxed);
}

/// The rates by trace: each word is a tag from the trace id (high half, never zero, so an empty
/// slot matches nothing) and the rate's `f32` bits (low half). A trace whose slot a later one
/// took has no rate any more; that is the bound.
static RATES: OnceLock<Box<[AtomicU64]>> = OnceLock::new();

/// Where `trace_id`'s rate goes, and the tag that tells it from the other traces there.
fn rate_slot(trace_id: TraceId) -> (usize, u64) {
    // The fixed-key hasher: the ids are random, but an incoming one need not be.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    trace_id.hash(&mut hasher);
    let hash = hasher.finish();
    #[allow(
        clippy::cast_possible_truncation,
        reason = "the slot is the hash's low bits, below RATE_SLOTS"
    )]
    let slot = (hash as usize) & (RATE_SLOTS - 1);
    (slot, (hash | 1 << 32) & !u64::from(u32::MAX))
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

/// The rate a sampler returned for `trace_id`, if one did here and its slot is still its own.
pub(crate) fn rate(trace_id: TraceId) -> Option<f64> {
    let (slot, tag) = rate_slot(trace_id);
    let word = RATES.get()?[slot].load(Ordering::Relaxed);
    #[allow(
        clippy::cast_possible_truncation,
        reason = "the low half of the word holds the rate's bits"
    )]
    let bits = word as u32;
    (word & !u64::from(u32::MAX) == tag).then(|| f64::from(f32::from_bits(bits)))
}

/// A transaction of `trace_id` was sent: the trace is kept only while other transactions that
/// hold it are not. Returns the DSC frozen for the trace, as [`frozen`] would have just before
/// (one lock instead of two, on the path of every transaction sent).
#[cfg_attr(
    not(feature = "transport"),
    allow(dead_code, reason = "only the transport sends")
)]
pub(crate) fn release(trace_id: TraceId) -> Option<Arc<Frozen>> {
    with_store(|store| {
        let slot = store.traces.get_mut(&trace_id)?;
        slot.holders = slot.holders.saturating_sub(1);
        let frozen = slot.frozen.clone();
        if slot.holders == 0 {
            store.traces.remove(&trace_id);
        }
        frozen
    })
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
        assert_eq!(
            release(id(1)).as_deref(),
            Some(&first),
            "release says what was frozen"
        );
        assert!(frozen(id(1)).is_some(), "one holder left");
        assert_eq!(release(id(1)).as_deref(), Some(&first));
        assert!(frozen(id(1)).is_none());
        assert!(
            release(id(1)).is_none(),
            "a released trace has nothing left"
        );
        for n in 0..(MAX_TRACES as u64 + 100) {
            continue_trace(id(1_000_000 + n), Frozen::default);
        }
        assert!(kept() <= MAX_TRACES);
        assert!(frozen(id(1_000_000)).is_none(), "the oldest went first");
        assert!(frozen(id(1_000_000 + MAX_TRACES as u64 + 99)).is_some());
    }

    #[test]
    fn a_rate_is_kept_until_another_trace_takes_its_slot() {
        assert_eq!(rate(id(7)), None, "never sampled here");
        sampled_at(id(7), 0.25);
        assert_eq!(rate(id(7)), Some(0.25));
        sampled_at(id(7), 0.5);
        assert_eq!(rate(id(7)), Some(0.5), "the last decision stands");
        // A trace that shares the slot takes it: the first one has no rate any more, and never
        // reads the other's.
        let (slot, tag) = rate_slot(id(7));
        let other = (8..)
            .map(id)
            .find(|other| rate_slot(*other).0 == slot && rate_slot(*other).1 != tag)
            .expect("another trace in the slot");
        sampled_at(other, 0.0);
        assert_eq!(rate(other), Some(0.0));
        assert_eq!(rate(id(7)), None);
        // Nothing of the rates is in the locked store.
        assert!(frozen(id(7)).is_none() && frozen(other).is_none());
    }
}
