//! The payment ledger in two sharded maps; an entry's shard lock makes each first-wins
//! record atomic.

use super::store::MemoryStore;
use crate::store::error::StoreResult;
use crate::store::payment_ledger::{PaymentLedger, Recorded, check_ledger_id};
use async_trait::async_trait;
use dashmap::mapref::entry::Entry;

/// The approval of one reference.
pub(super) struct Approval {
    pub(super) payment_id: String,
    /// Times money was taken for the reference.
    pub(super) taken: u64,
}

/// Fills a vacant entry with `make()`, which records `id`; an occupied one answers its own.
fn first_wins<V>(
    entry: Entry<'_, String, V>,
    id: &str,
    make: impl FnOnce() -> V,
    id_of: impl Fn(&V) -> &str,
) -> Recorded {
    match entry {
        Entry::Occupied(kept) => Recorded {
            id: id_of(kept.get()).to_owned(),
            first: false,
        },
        Entry::Vacant(slot) => {
            slot.insert(make());
            Recorded {
                id: id.to_owned(),
                first: true,
            }
        }
    }
}

#[async_trait]
impl PaymentLedger for MemoryStore {
    async fn record_approval(&self, reference: &str, payment_id: &str) -> StoreResult<Recorded> {
        check_ledger_id("reference", reference)?;
        check_ledger_id("payment id", payment_id)?;
        Ok(first_wins(
            self.approvals.entry(reference.to_owned()),
            payment_id,
            || Approval {
                payment_id: payment_id.to_owned(),
                taken: 1,
            },
            |a| &a.payment_id,
        ))
    }

    async fn approval(&self, reference: &str) -> StoreResult<Option<String>> {
        Ok(self.approvals.get(reference).map(|a| a.payment_id.clone()))
    }

    async fn record_refund(&self, payment_id: &str, refund_id: &str) -> StoreResult<Recorded> {
        check_ledger_id("payment id", payment_id)?;
        check_ledger_id("refund id", refund_id)?;
        Ok(first_wins(
            self.refunds.entry(payment_id.to_owned()),
            refund_id,
            || refund_id.to_owned(),
            String::as_str,
        ))
    }

    async fn charges_taken(&self, reference: &str) -> StoreResult<u64> {
        Ok(self.approvals.get(reference).map_or(0, |a| a.taken))
    }
}
