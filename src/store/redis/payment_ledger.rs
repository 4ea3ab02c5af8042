//! The payment ledger: a hash per reference under `ledger:charge:<reference>` (`p` the
//! approved payment id, `n` times money was taken) and a string per payment under
//! `ledger:refund:<payment id>` (its refund id). Every call touches one key, so it runs
//! unchanged on a cluster; no key expires (see [`PaymentLedger`]).

use super::conn::unavailable;
use super::reply;
use super::store::RedisStore;
use crate::store::error::StoreResult;
use crate::store::payment_ledger::{PaymentLedger, Recorded, check_ledger_id};
use async_trait::async_trait;
use redis::{Script, Value};

impl RedisStore {
    fn charge_key(&self, reference: &str) -> String {
        self.key(&format!("ledger:charge:{reference}"))
    }

    fn refund_key(&self, payment_id: &str) -> String {
        self.key(&format!("ledger:refund:{payment_id}"))
    }

    /// Runs a first-wins script on `key` with `id`; reads its `{recorded now, id}`.
    async fn first_wins(
        &self,
        what: &str,
        script: &Script,
        key: String,
        id: &str,
    ) -> StoreResult<Recorded> {
        let value: Value = script
            .key(key)
            .arg(id)
            .invoke_async(&mut self.con())
            .await
            .map_err(unavailable)?;
        match reply::items(what, &value)? {
            [first, held] => Ok(Recorded {
                id: reply::text(what, held)?.to_owned(),
                first: reply::int(what, first)? == 1,
            }),
            _ => Err(reply::unexpected(what, &value)),
        }
    }
}

#[async_trait]
impl PaymentLedger for RedisStore {
    async fn record_approval(&self, reference: &str, payment_id: &str) -> StoreResult<Recorded> {
        check_ledger_id("reference", reference)?;
        check_ledger_id("payment id", payment_id)?;
        let key = self.charge_key(reference);
        self.first_wins(
            "ledger approval",
            &self.scripts.ledger_approve,
            key,
            payment_id,
        )
        .await
    }

    async fn approval(&self, reference: &str) -> StoreResult<Option<String>> {
        let key = self.charge_key(reference);
        let value: Value = self.query(redis::cmd("HGET").arg(&key).arg("p")).await?;
        match value {
            Value::Nil => Ok(None),
            held => Ok(Some(reply::text(&key, &held)?.to_owned())),
        }
    }

    async fn record_refund(&self, payment_id: &str, refund_id: &str) -> StoreResult<Recorded> {
        check_ledger_id("payment id", payment_id)?;
        check_ledger_id("refund id", refund_id)?;
        let key = self.refund_key(payment_id);
        self.first_wins("ledger refund", &self.scripts.ledger_refund, key, refund_id)
            .await
    }

    async fn charges_taken(&self, reference: &str) -> StoreResult<u64> {
        let key = self.charge_key(reference);
        let value: Value = self.query(redis::cmd("HGET").arg(&key).arg("n")).await?;
        match value {
            Value::Nil => Ok(0),
            taken => reply::uint(&key, &taken),
        }
    }
}
