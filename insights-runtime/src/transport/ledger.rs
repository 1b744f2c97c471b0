//! What the transport dropped, by data category and reason, until a client report carries it to
//! Sentry.
//!
//! `sentry`'s own aggregator attaches its report only to envelopes that go through the client,
//! so what a transport drops after the last of them (the queue's tail at shutdown, a flush
//! against a full queue) would never be told. The transport keeps its own counts instead,
//! attaches them to the envelopes it sends, and sends what is left at flush and at shutdown.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use sentry::protocol::client_report::{Category, Item, ItemLoss, LossSource, Reason};
use sentry::protocol::{ClientReport, Envelope, EnvelopeItem};
use sentry::types::IndexedEnum;

const SLOTS: usize = Category::VARIANTS.len() * Reason::VARIANTS.len();

/// Counters of lost items, one per category and reason: recording is an atomic add per loss.
#[derive(Debug)]
pub(super) struct Ledger {
    counts: [AtomicU64; SLOTS],
    pending: AtomicBool,
}

impl Ledger {
    pub(super) fn new() -> Self {
        Ledger {
            counts: [const { AtomicU64::new(0) }; SLOTS],
            pending: AtomicBool::new(false),
        }
    }

    /// Records `data` as lost for `reason`; items of a client report inside it keep the reason
    /// they were first recorded with.
    pub(super) fn record<L: LossSource + ?Sized>(&self, data: &L, reason: Reason) {
        for loss in data.losses() {
            self.add(loss, reason);
        }
    }

    /// Records losses computed beforehand (those of an envelope in flight).
    pub(super) fn record_losses(&self, losses: &[ItemLoss], reason: Reason) {
        for loss in losses {
            self.add(*loss, reason);
        }
    }

    /// Records only the client reports `envelope` carries: what Sentry refused with `429` is
    /// recorded by Sentry itself, but the reports riding along are lost with it.
    pub(super) fn record_reports(&self, envelope: &Envelope) {
        for item in envelope.items() {
            if let EnvelopeItem::ClientReport(report) = item {
                self.record(report, Reason::SendError);
            }
        }
    }

    fn add(&self, loss: ItemLoss, reason: Reason) {
        if loss.quantity == 0 {
            return;
        }
        let reason = loss.reason.unwrap_or(reason);
        let slot = loss.category.as_index() * Reason::VARIANTS.len() + reason.as_index();
        if let Some(count) = self.counts.get(slot) {
            count.fetch_add(loss.quantity, Ordering::Relaxed);
            self.pending.store(true, Ordering::Release);
        }
    }

    /// Everything recorded since the last call, as a client report, the counters reset; `None`
    /// when nothing was lost.
    pub(super) fn take(&self) -> Option<ClientReport> {
        if !self.pending.swap(false, Ordering::Acquire) {
            return None;
        }
        let items: Vec<Item> = Category::VARIANTS
            .iter()
            .flat_map(|&category| Reason::VARIANTS.iter().map(move |&r| (category, r)))
            .zip(&self.counts)
            .filter_map(|((category, reason), count)| {
                let quantity = count.swap(0, Ordering::Relaxed);
                (quantity > 0).then(|| Item::new(category, reason, quantity))
            })
            .collect();
        (!items.is_empty()).then(|| ClientReport::new(items))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentry::protocol::Transaction;

    fn report_json(report: &ClientReport) -> serde_json::Value {
        let mut value = serde_json::to_value(report).unwrap_or_default();
        if let Some(object) = value.as_object_mut() {
            object.remove("timestamp");
        }
        value
    }

    #[test]
    fn a_lost_transaction_counts_itself_and_its_spans() {
        let ledger = Ledger::new();
        assert!(ledger.take().is_none());
        let tx = Transaction {
            spans: vec![Default::default(), Default::default()],
            ..Default::default()
        };
        ledger.record(&tx, Reason::QueueOverflow);
        ledger.record(&tx, Reason::QueueOverflow);
        let report = ledger.take().expect("a report");
        assert_eq!(
            report_json(&report),
            serde_json::json!({"discarded_events": [
                {"reason": "queue_overflow", "category": "transaction", "quantity": 2},
                {"reason": "queue_overflow", "category": "span", "quantity": 6},
            ]})
        );
        assert!(ledger.take().is_none(), "taking resets the counters");
    }

    #[test]
    fn a_lost_report_keeps_its_reasons() {
        let ledger = Ledger::new();
        ledger.record(&Transaction::default(), Reason::NetworkError);
        let report = ledger.take().expect("a report");
        let mut envelope = Envelope::new();
        envelope.add_item(report);
        ledger.record(&envelope, Reason::SendError);
        assert_eq!(
            report_json(&ledger.take().expect("the report again")),
            serde_json::json!({"discarded_events": [
                {"reason": "network_error", "category": "transaction", "quantity": 1},
                {"reason": "network_error", "category": "span", "quantity": 1},
            ]})
        );
    }
}
