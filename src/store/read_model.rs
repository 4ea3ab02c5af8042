//! The read model: MyPage views (내보험 조회) and the alarms (알림) sent to customers,
//! both written idempotently by their consumers, and how much of them is kept.

use super::error::StoreResult;
use super::view_page::{ViewPage, ViewQuery};
use crate::domain::enrollment::{CustomerNo, EnrollmentId, Status};
use crate::domain::money::Won;
use crate::domain::period::{CoveragePeriod, PaymentCycle};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use uuid::Uuid;

/// 내보험 조회: what customers and administrators see of one enrollment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MyPageView {
    pub enrollment_id: EnrollmentId,
    pub customer_no: CustomerNo,
    pub product_code: String,
    pub product_version: u32,
    pub product_name: String,
    pub status: Status,
    pub sum_insured: Won,
    pub installment: Won,
    pub payment_cycle: PaymentCycle,
    pub coverage_period: CoveragePeriod,
    pub payment_period: u8,
    pub contract_no: Option<String>,
    /// The enrollment version this view reflects (events at or below it are applied).
    pub version: u64,
    pub updated_at: DateTime<Utc>,
}

/// 알림: one notification sent to a customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Alarm {
    /// The event it announces; at most one alarm per event.
    pub event_id: Uuid,
    pub enrollment_id: EnrollmentId,
    pub customer_no: CustomerNo,
    pub status: Status,
    pub message: String,
    pub sent_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ViewFilter {
    pub customer_no: Option<CustomerNo>,
    pub status: Option<Status>,
}

#[async_trait]
pub trait ReadModelStore: Send + Sync {
    /// Writes the view unless the stored one is at the same or a later version; returns
    /// whether it was written (so replays and reordering are harmless).
    async fn upsert_view(&self, view: &MyPageView) -> StoreResult<bool>;
    /// [`upsert_view`](Self::upsert_view) for several views at once (one round trip on a
    /// remote store); one answer per view, in order.
    async fn upsert_views(&self, views: &[MyPageView]) -> StoreResult<Vec<bool>> {
        let mut written = Vec::with_capacity(views.len());
        for view in views {
            written.push(self.upsert_view(view).await?);
        }
        Ok(written)
    }
    async fn view(&self, id: EnrollmentId) -> StoreResult<Option<MyPageView>>;
    /// Views matching the filter, most recently changed first, at most `limit`.
    async fn views(&self, filter: ViewFilter, limit: usize) -> StoreResult<Vec<MyPageView>>;
    /// One page of views in the order of [`ViewCursor`](super::ViewCursor): those after
    /// `query.after` that pass its filters, at most `query.limit`.
    async fn view_page(&self, query: &ViewQuery) -> StoreResult<ViewPage>;
    /// How many enrollments are in each status, by the read model.
    async fn count_by_status(&self) -> StoreResult<Vec<(Status, u64)>>;
    /// Records an alarm unless one for the same event exists; returns whether it was new.
    async fn record_alarm(&self, alarm: &Alarm) -> StoreResult<bool>;
    /// [`record_alarm`](Self::record_alarm) for several alarms at once (one round trip on
    /// a remote store); one answer per alarm, in order.
    async fn record_alarms(&self, alarms: &[Arc<Alarm>]) -> StoreResult<Vec<bool>> {
        let mut new = Vec::with_capacity(alarms.len());
        for alarm in alarms {
            new.push(self.record_alarm(alarm).await?);
        }
        Ok(new)
    }
    /// Alarms, newest first, of one customer or of everyone.
    async fn alarms(&self, customer: Option<CustomerNo>, limit: usize) -> StoreResult<Vec<Alarm>>;
}

/// Default number of alarms kept per customer (the oldest go first beyond it).
pub const ALARMS_PER_CUSTOMER: u64 = 100;
/// Default number of entries of the index of every customer's alarms.
pub const ALARM_INDEX_LEN: u64 = 100_000;
/// Default number of entries of the index of every MyPage view.
pub const VIEW_INDEX_LEN: u64 = 100_000;

/// How many alarms are kept: the newest of each customer, and the newest of everyone in
/// the global index. Defaults: [`ALARMS_PER_CUSTOMER`] and [`ALARM_INDEX_LEN`], as every
/// backend keeps them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlarmRetention {
    pub per_customer: usize,
    pub index: usize,
}

impl Default for AlarmRetention {
    fn default() -> Self {
        // Both defaults are far below any usize: the casts are exact.
        AlarmRetention {
            per_customer: ALARMS_PER_CUSTOMER as usize,
            index: ALARM_INDEX_LEN as usize,
        }
    }
}
