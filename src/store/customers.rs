//! Customers: registration under newly allocated numbers (once per keyed request), and
//! the reservations of products' cumulative limits.

use super::error::{StoreResult, rejected};
use crate::domain::customer::{Customer, NewCustomer};
use crate::domain::enrollment::{CustomerNo, EnrollmentId};
use crate::domain::money::Won;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// The outcome of a cumulative-limit reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// Reserved (or already held by this enrollment); `total` is the customer's total now.
    Reserved { total: Won },
    /// Refused: `held` is what the customer already holds of the product.
    Exceeded { held: Won, limit: Won },
}

#[async_trait]
pub trait CustomerStore: Send + Sync {
    /// Registers a customer under a newly allocated number.
    async fn create_customer(&self, new: NewCustomer, now: DateTime<Utc>) -> StoreResult<Customer>;
    /// [`create_customer`](Self::create_customer) once per request (a scoped
    /// Idempotency-Key): the first call links `request` to the new number for `keep`; a
    /// later call under the same request gets the customer that number belongs to, even
    /// when the first call died before its answer was kept. If it died between linking
    /// and writing the customer, the later call writes the customer under the linked
    /// number, from its own `new`. The caller compares what comes back with its request.
    async fn create_customer_for(
        &self,
        request: &str,
        new: NewCustomer,
        now: DateTime<Utc>,
        keep: Duration,
    ) -> StoreResult<Customer>;
    async fn customer(&self, no: CustomerNo) -> StoreResult<Option<Customer>>;
    /// Atomically reserves `amount` of the product's cumulative limit for an enrollment,
    /// if the customer's total stays within `limit`. Idempotent per enrollment.
    async fn reserve_limit(
        &self,
        no: CustomerNo,
        product_code: &str,
        enrollment: EnrollmentId,
        amount: Won,
        limit: Won,
    ) -> StoreResult<Reservation>;
    /// Releases an enrollment's reservation (no-op if it holds none).
    async fn release_limit(
        &self,
        no: CustomerNo,
        product_code: &str,
        enrollment: EnrollmentId,
    ) -> StoreResult<()>;
}

/// Customer numbers are `C` and nine digits.
const MAX_CUSTOMER_NO: u64 = 999_999_999;

/// The customer record for the `n`-th number a backend handed out, or the refusal when
/// the numbers have run out.
pub(crate) fn numbered_customer(
    n: u64,
    new: NewCustomer,
    now: DateTime<Utc>,
) -> StoreResult<Customer> {
    if n > MAX_CUSTOMER_NO {
        return Err(rejected(
            "every customer number (C000000001 to C999999999) is taken",
        ));
    }
    Ok(Customer {
        customer_no: CustomerNo::new(n),
        name: new.name,
        birth_date: new.birth_date,
        gender: new.gender,
        mobile_phone: new.mobile_phone,
        registered_at: now,
    })
}
