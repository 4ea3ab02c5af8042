//! The read model: MyPage views in a sharded map with a per-customer index and counts by
//! status, the most recently changed picked with a bounded heap; the alarms in
//! [`AlarmBook`](super::alarms::AlarmBook).

use super::store::MemoryStore;
use crate::domain::enrollment::{CustomerNo, EnrollmentId, Status};
use crate::store::error::StoreResult;
use crate::store::locks::lock;
use crate::store::read_model::{Alarm, MyPageView, ReadModelStore, ViewFilter};
use crate::store::view_page::{ViewCursor, ViewPage, ViewQuery};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use dashmap::mapref::entry::Entry;
use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// The view order: most recently changed first.
type ViewRank = (DateTime<Utc>, u64, EnrollmentId);

fn view_rank(view: &MyPageView) -> ViewRank {
    (view.updated_at, view.version, view.enrollment_id)
}

struct Ranked {
    rank: ViewRank,
    view: MyPageView,
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.rank == other.rank
    }
}

impl Eq for Ranked {}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        self.rank.cmp(&other.rank)
    }
}

/// Keeps the `limit` most recently changed views offered to it.
struct TopViews {
    limit: usize,
    heap: BinaryHeap<Reverse<Ranked>>,
}

impl TopViews {
    fn new(limit: usize) -> TopViews {
        TopViews {
            limit,
            heap: BinaryHeap::with_capacity(limit.min(1024) + 1),
        }
    }

    fn offer(&mut self, view: &MyPageView) {
        if self.limit == 0 {
            return;
        }
        let rank = view_rank(view);
        if self.heap.len() < self.limit {
            self.heap.push(Reverse(Ranked {
                rank,
                view: view.clone(),
            }));
        } else if self
            .heap
            .peek()
            .is_some_and(|Reverse(least)| rank > least.rank)
        {
            self.heap.pop();
            self.heap.push(Reverse(Ranked {
                rank,
                view: view.clone(),
            }));
        }
    }

    fn into_vec(self) -> Vec<MyPageView> {
        // Ascending order of `Reverse` is descending rank: newest first.
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|Reverse(r)| r.view)
            .collect()
    }
}

fn matches(filter: &ViewFilter, view: &MyPageView) -> bool {
    filter.customer_no.is_none_or(|c| c == view.customer_no)
        && filter.status.is_none_or(|s| s == view.status)
}

fn status_slot(status: Status) -> Option<usize> {
    Status::ALL.iter().position(|&s| s == status)
}

#[async_trait]
impl ReadModelStore for MemoryStore {
    async fn upsert_view(&self, view: &MyPageView) -> StoreResult<bool> {
        let count = |status: Status, up: bool| {
            if let Some(counter) = status_slot(status).and_then(|i| self.status_counts.get(i)) {
                if up {
                    counter.fetch_add(1, Ordering::Relaxed);
                } else {
                    counter.fetch_sub(1, Ordering::Relaxed);
                }
            }
        };
        // The view's shard lock covers the counters and the customer index (view shard →
        // index shard; nothing takes them the other way round).
        match self.views.entry(view.enrollment_id) {
            Entry::Occupied(mut stored) => {
                if view.version <= stored.get().version {
                    return Ok(false);
                }
                let old = stored.get();
                if old.status != view.status {
                    count(old.status, false);
                    count(view.status, true);
                }
                if old.customer_no != view.customer_no {
                    if let Some(mut ids) = self.views_by_customer.get_mut(&old.customer_no) {
                        ids.remove(&view.enrollment_id);
                    }
                    self.views_by_customer
                        .entry(view.customer_no)
                        .or_default()
                        .insert(view.enrollment_id, ());
                }
                stored.insert(view.clone());
            }
            Entry::Vacant(slot) => {
                count(view.status, true);
                self.views_by_customer
                    .entry(view.customer_no)
                    .or_default()
                    .insert(view.enrollment_id, ());
                slot.insert(view.clone());
            }
        }
        Ok(true)
    }

    async fn view(&self, id: EnrollmentId) -> StoreResult<Option<MyPageView>> {
        Ok(self.views.get(&id).map(|v| v.clone()))
    }

    async fn views(&self, filter: ViewFilter, limit: usize) -> StoreResult<Vec<MyPageView>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut top = TopViews::new(limit);
        match filter.customer_no {
            Some(customer) => {
                let ids: Vec<EnrollmentId> = self
                    .views_by_customer
                    .get(&customer)
                    .map(|ids| ids.keys().copied().collect())
                    .unwrap_or_default();
                for id in ids {
                    if let Some(view) = self.views.get(&id)
                        && matches(&filter, &view)
                    {
                        top.offer(&view);
                    }
                }
            }
            None => {
                for view in self.views.iter() {
                    if matches(&filter, &view) {
                        top.offer(&view);
                    }
                }
            }
        }
        Ok(top.into_vec())
    }

    async fn view_page(&self, query: &ViewQuery) -> StoreResult<ViewPage> {
        // The places of every view that passes, then the views of the first `limit`; one
        // more place than that says whether a next page exists.
        let passes = |view: &MyPageView| {
            query.matches(view) && query.after.is_none_or(|after| ViewCursor::of(view) < after)
        };
        let mut places: Vec<ViewCursor> = match query.customer_no {
            Some(customer) => {
                let ids: Vec<EnrollmentId> = self
                    .views_by_customer
                    .get(&customer)
                    .map(|ids| ids.keys().copied().collect())
                    .unwrap_or_default();
                ids.iter()
                    .filter_map(|id| self.views.get(id))
                    .filter(|view| passes(view))
                    .map(|view| ViewCursor::of(&view))
                    .collect()
            }
            None => self
                .views
                .iter()
                .filter(|view| passes(view))
                .map(|view| ViewCursor::of(&view))
                .collect(),
        };
        let take = query.limit.saturating_add(1);
        if places.len() > take {
            places.select_nth_unstable_by(take - 1, |a, b| b.cmp(a));
            places.truncate(take);
        }
        places.sort_unstable_by(|a, b| b.cmp(a));
        let more = places.len() > query.limit;
        places.truncate(query.limit);
        let views: Vec<MyPageView> = places
            .iter()
            .filter_map(|place| self.views.get(&place.enrollment_id).map(|v| v.clone()))
            .collect();
        let next = if more { places.last().copied() } else { None };
        Ok(ViewPage { views, next })
    }

    async fn count_by_status(&self) -> StoreResult<Vec<(Status, u64)>> {
        Ok(Status::ALL
            .iter()
            .zip(self.status_counts.iter())
            .map(|(&status, n)| (status, n.load(Ordering::Relaxed)))
            .collect())
    }

    async fn record_alarm(&self, alarm: &Alarm) -> StoreResult<bool> {
        Ok(lock(&self.alarms).record(Arc::new(alarm.clone())))
    }

    /// One lock for the whole batch; the alarms are shared, not copied.
    async fn record_alarms(&self, alarms: &[Arc<Alarm>]) -> StoreResult<Vec<bool>> {
        let mut book = lock(&self.alarms);
        Ok(alarms
            .iter()
            .map(|alarm| book.record(Arc::clone(alarm)))
            .collect())
    }

    async fn alarms(&self, customer: Option<CustomerNo>, limit: usize) -> StoreResult<Vec<Alarm>> {
        let book = lock(&self.alarms);
        Ok(match customer {
            Some(no) => book
                .by_customer
                .get(&no)
                .map(|list| list.newest(limit))
                .unwrap_or_default(),
            None => book.all.newest(limit),
        })
    }
}
