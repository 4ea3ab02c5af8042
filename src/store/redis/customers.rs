//! Customers: records by number (cached, as a record never changes), keyed registrations,
//! and cumulative-limit reservations by script.

use super::conn::unavailable;
use super::encoding::{decode_json, encode_json, millis};
use super::reply;
use super::store::RedisStore;
use crate::domain::customer::{Customer, NewCustomer};
use crate::domain::enrollment::{CustomerNo, EnrollmentId};
use crate::domain::money::Won;
use crate::store::customers::{CustomerStore, Reservation, numbered_customer};
use crate::store::error::{StoreError, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::Value;
use std::time::Duration;

/// Customer records kept in memory (all are dropped when it is reached).
const CUSTOMERS_KEPT: usize = 100_000;

impl RedisStore {
    pub(super) fn remember_customer(&self, customer: &Customer) {
        if self.customers.len() >= CUSTOMERS_KEPT {
            self.customers.clear();
        }
        self.customers
            .insert(customer.customer_no, customer.clone());
    }
}

#[async_trait]
impl CustomerStore for RedisStore {
    async fn create_customer(&self, new: NewCustomer, now: DateTime<Utc>) -> StoreResult<Customer> {
        let n: u64 = self
            .query(redis::cmd("INCR").arg(self.key("customer:seq")))
            .await?;
        let customer = numbered_customer(n, new, now)?;
        let key = self.key(&format!("customer:{}", customer.customer_no));
        let json = encode_json(&key, &customer)?;
        self.query::<Value>(redis::cmd("SET").arg(&key).arg(json))
            .await?;
        self.remember_customer(&customer);
        Ok(customer)
    }

    /// The link (`customer-of:<request>` → number, with a TTL) is written with SET NX
    /// before the customer, so a first try that dies anywhere leaves either nothing the
    /// retry could see (an unused number at most) or the link, which the retry follows.
    /// Separate keys, no script: customer keys have no common hash slot.
    async fn create_customer_for(
        &self,
        request: &str,
        new: NewCustomer,
        now: DateTime<Utc>,
        keep: Duration,
    ) -> StoreResult<Customer> {
        let link = self.key(&format!("customer-of:{request}"));
        // Twice at most: a link lost to a concurrent try is read back on the second turn.
        for _ in 0..2 {
            let linked: Option<u64> = self.query(redis::cmd("GET").arg(&link)).await?;
            let n = match linked {
                Some(n) => n,
                None => {
                    let n: u64 = self
                        .query(redis::cmd("INCR").arg(self.key("customer:seq")))
                        .await?;
                    let won: Option<String> = self
                        .query(
                            redis::cmd("SET")
                                .arg(&link)
                                .arg(n)
                                .arg("NX")
                                .arg("PX")
                                .arg(millis(keep).max(1)),
                        )
                        .await?;
                    if won.is_none() {
                        continue;
                    }
                    n
                }
            };
            let customer = numbered_customer(n, new.clone(), now)?;
            if linked.is_some()
                && let Some(found) = self.customer(customer.customer_no).await?
            {
                return Ok(found);
            }
            let key = self.key(&format!("customer:{}", customer.customer_no));
            let json = encode_json(&key, &customer)?;
            let written: Option<String> = self
                .query(redis::cmd("SET").arg(&key).arg(json).arg("NX"))
                .await?;
            if written.is_none() {
                // Another try under this request wrote it first.
                if let Some(found) = self.customer(customer.customer_no).await? {
                    return Ok(found);
                }
            }
            self.remember_customer(&customer);
            return Ok(customer);
        }
        Err(StoreError::Unavailable(format!(
            "the registration link {link} keeps changing"
        )))
    }

    async fn customer(&self, no: CustomerNo) -> StoreResult<Option<Customer>> {
        if let Some(known) = self.customers.get(&no) {
            return Ok(Some(known.clone()));
        }
        let key = self.key(&format!("customer:{no}"));
        let json: Option<Vec<u8>> = self.query(redis::cmd("GET").arg(&key)).await?;
        let found: Option<Customer> = json.map(|j| decode_json(&key, &j)).transpose()?;
        if let Some(customer) = &found {
            self.remember_customer(customer);
        }
        Ok(found)
    }

    async fn reserve_limit(
        &self,
        no: CustomerNo,
        product_code: &str,
        enrollment: EnrollmentId,
        amount: Won,
        limit: Won,
    ) -> StoreResult<Reservation> {
        let key = self.key(&format!("{{c{no}}}:limit:{product_code}"));
        let script = &self.scripts.reserve;
        let mut cmd = Self::evalsha(script, 1, 3, 128);
        cmd.arg(&key)
            .arg(enrollment.to_string())
            .arg(amount.get())
            .arg(limit.get());
        let value: Value = self.eval(script, &cmd).await.map_err(unavailable)?;
        match reply::items("reserve", &value)? {
            [ok, total] => {
                let total = Won::new(reply::uint("reserve total", total)?);
                if reply::int("reserve", ok)? == 1 {
                    Ok(Reservation::Reserved { total })
                } else {
                    Ok(Reservation::Exceeded { held: total, limit })
                }
            }
            _ => Err(reply::unexpected("reserve", &value)),
        }
    }

    async fn release_limit(
        &self,
        no: CustomerNo,
        product_code: &str,
        enrollment: EnrollmentId,
    ) -> StoreResult<()> {
        let key = self.key(&format!("{{c{no}}}:limit:{product_code}"));
        self.query::<Value>(redis::cmd("HDEL").arg(key).arg(enrollment.to_string()))
            .await?;
        Ok(())
    }
}
