//! Customers: records and keyed registrations in sharded maps, and each customer's
//! reservations of products' cumulative limits.

use super::holdings::Holdings;
use super::store::MemoryStore;
use crate::domain::customer::{Customer, NewCustomer};
use crate::domain::enrollment::{CustomerNo, EnrollmentId};
use crate::domain::money::Won;
use crate::store::customers::{CustomerStore, Reservation, numbered_customer};
use crate::store::error::StoreResult;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[async_trait]
impl CustomerStore for MemoryStore {
    async fn create_customer(&self, new: NewCustomer, now: DateTime<Utc>) -> StoreResult<Customer> {
        let n = self.next_customer.fetch_add(1, Ordering::Relaxed);
        let customer = numbered_customer(n, new, now)?;
        self.customers
            .insert(customer.customer_no, customer.clone());
        Ok(customer)
    }

    async fn create_customer_for(
        &self,
        request: &str,
        new: NewCustomer,
        now: DateTime<Utc>,
        keep: Duration,
    ) -> StoreResult<Customer> {
        let at = Instant::now();
        let expires_at = at.checked_add(keep);
        // The link's shard lock makes linking and registering one step: nothing here
        // can die between them.
        let mut link = self
            .customer_links
            .entry(request.to_owned())
            .or_insert((0, None));
        let (n, until) = *link;
        if n != 0
            && until.is_none_or(|t| at < t)
            && let Some(customer) = self.customers.get(&CustomerNo::new(n))
        {
            return Ok(customer.clone());
        }
        let customer =
            numbered_customer(self.next_customer.fetch_add(1, Ordering::Relaxed), new, now)?;
        self.customers
            .insert(customer.customer_no, customer.clone());
        *link = (customer.customer_no.get(), expires_at);
        drop(link);
        if self.sweep_turn() {
            self.customer_links
                .retain(|_, (_, until)| until.is_none_or(|t| at < t));
        }
        Ok(customer)
    }

    async fn customer(&self, no: CustomerNo) -> StoreResult<Option<Customer>> {
        Ok(self.customers.get(&no).map(|c| c.clone()))
    }

    async fn reserve_limit(
        &self,
        no: CustomerNo,
        product_code: &str,
        enrollment: EnrollmentId,
        amount: Won,
        limit: Won,
    ) -> StoreResult<Reservation> {
        // The customer's shard lock makes the check and the reservation one step.
        let mut products = self.reservations.entry(no).or_default();
        let holdings = products.get_or_insert_with(product_code, || {
            (Box::from(product_code), Holdings::default())
        });
        let previous = holdings.by_enrollment.get(&enrollment).copied();
        if previous == Some(amount) {
            return Ok(Reservation::Reserved {
                total: holdings.total,
            });
        }
        // A different amount for the same enrollment replaces its reservation.
        let others = holdings
            .total
            .checked_sub(previous.unwrap_or(Won::ZERO))
            .unwrap_or(Won::ZERO);
        match others.checked_add(amount) {
            Some(total) if total <= limit => {
                holdings.total = total;
                holdings.by_enrollment.insert(enrollment, amount);
                Ok(Reservation::Reserved { total })
            }
            _ => Ok(Reservation::Exceeded {
                held: others,
                limit,
            }),
        }
    }

    async fn release_limit(
        &self,
        no: CustomerNo,
        product_code: &str,
        enrollment: EnrollmentId,
    ) -> StoreResult<()> {
        let Some(mut products) = self.reservations.get_mut(&no) else {
            return Ok(());
        };
        if let Some(holdings) = products.get_mut(product_code)
            && let Some(amount) = holdings.by_enrollment.remove(&enrollment)
        {
            holdings.total = holdings.total.checked_sub(amount).unwrap_or(Won::ZERO);
        }
        Ok(())
    }
}
