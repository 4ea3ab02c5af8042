//! The MyPage read model: views by script (in chunks, so no call holds Redis long),
//! indexes, counts by status; the alarm methods are in [`super::alarms`].

use super::conn::unavailable;
use super::encoding::{decode_json, encode_json, micros, status_of};
use super::store::RedisStore;
use crate::domain::enrollment::{CustomerNo, EnrollmentId, Status};
use crate::store::error::{StoreError, StoreResult};
use crate::store::read_model::{Alarm, MyPageView, ReadModelStore, ViewFilter};
use crate::store::view_page::{ViewCursor, ViewPage, ViewQuery};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Arc;

/// The most alarms or views one call returns.
pub(super) const MAX_LIST: usize = 10_000;

/// The most MyPage views one script call writes. A projector that lingers gathers large
/// batches; written in one call they would hold Redis long enough for every append
/// behind them to wait.
const VIEWS_PER_SCRIPT: usize = 64;

/// A page looks at no more index entries than this many per view asked for (and at least
/// [`PAGE_SCAN_MIN`]): a filter few views pass ends a page early, with a cursor to go on
/// from, rather than hold Redis while it reads the whole index.
const PAGE_SCAN_FACTOR: usize = 20;
const PAGE_SCAN_MIN: usize = 2_000;

#[async_trait]
impl ReadModelStore for RedisStore {
    async fn upsert_view(&self, view: &MyPageView) -> StoreResult<bool> {
        let written = self.upsert_views(std::slice::from_ref(view)).await?;
        Ok(written.first().copied().unwrap_or(false))
    }

    /// In scripts of at most [`VIEWS_PER_SCRIPT`] views, one after another, so no single
    /// call holds Redis (and every append behind it) for long. A chunk that fails leaves
    /// the earlier ones written; the batch is redelivered and their version check skips
    /// them.
    async fn upsert_views(&self, views: &[MyPageView]) -> StoreResult<Vec<bool>> {
        let mut written = Vec::with_capacity(views.len());
        for chunk in views.chunks(VIEWS_PER_SCRIPT) {
            written.extend(self.upsert_views_in_one_script(chunk).await?);
        }
        Ok(written)
    }

    async fn view(&self, id: EnrollmentId) -> StoreResult<Option<MyPageView>> {
        let key = self.rm(&format!("view:{id}"));
        let json: Option<Vec<u8>> = self.query(redis::cmd("HGET").arg(&key).arg("j")).await?;
        json.map(|j| decode_json(&key, &j)).transpose()
    }

    async fn views(&self, filter: ViewFilter, limit: usize) -> StoreResult<Vec<MyPageView>> {
        let limit = limit.min(MAX_LIST);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let index = match filter.customer_no {
            Some(no) => self.rm(&format!("views:c:{no}")),
            None => self.rm("views"),
        };
        let found: Vec<Vec<u8>> = self
            .scripts
            .views
            .key(&index)
            .arg(limit)
            .arg(filter.status.map_or("", Status::as_str))
            .arg(self.rm("view:"))
            .invoke_async(&mut self.con())
            .await
            .map_err(unavailable)?;
        found.iter().map(|j| decode_json(&index, j)).collect()
    }

    async fn view_page(&self, query: &ViewQuery) -> StoreResult<ViewPage> {
        let limit = query.limit.min(MAX_LIST);
        if limit == 0 {
            return Ok(ViewPage::default());
        }
        let index = match query.customer_no {
            Some(no) => self.rm(&format!("views:c:{no}")),
            None => self.rm("views"),
        };
        let (score, id) = query.after.map_or((String::new(), String::new()), |after| {
            (
                after.updated_micros.to_string(),
                after.enrollment_id.to_string(),
            )
        });
        let found: Vec<Vec<u8>> = self
            .scripts
            .view_page
            .key(&index)
            .arg(limit)
            .arg(query.status.map_or("", Status::as_str))
            .arg(query.product_code.as_deref().unwrap_or(""))
            .arg(self.rm("view:"))
            .arg(score)
            .arg(id)
            .arg(limit.saturating_mul(PAGE_SCAN_FACTOR).max(PAGE_SCAN_MIN))
            .invoke_async(&mut self.con())
            .await
            .map_err(unavailable)?;
        let corrupt = |reason: &str| StoreError::Corrupt {
            key: index.clone(),
            reason: reason.to_owned(),
        };
        let [next_score, next_id, views @ ..] = found.as_slice() else {
            return Err(corrupt("a page without its next place"));
        };
        let next = if next_score.is_empty() {
            None
        } else {
            let micros = std::str::from_utf8(next_score)
                .ok()
                .and_then(|s| s.parse::<f64>().ok())
                .ok_or_else(|| corrupt("a score that is no number"))?;
            let enrollment_id = std::str::from_utf8(next_id)
                .ok()
                .and_then(|s| EnrollmentId::parse(s).ok())
                .ok_or_else(|| corrupt("a member that is no enrollment id"))?;
            Some(ViewCursor {
                // Scores are whole microseconds, well inside f64's exact integers.
                updated_micros: micros as i64,
                enrollment_id,
            })
        };
        let views = views
            .iter()
            .map(|j| decode_json(&index, j))
            .collect::<StoreResult<Vec<MyPageView>>>()?;
        Ok(ViewPage { views, next })
    }

    async fn count_by_status(&self) -> StoreResult<Vec<(Status, u64)>> {
        let key = self.rm("status");
        let counts: HashMap<String, i64> = self.query(redis::cmd("HGETALL").arg(&key)).await?;
        for name in counts.keys() {
            status_of(&key, name)?;
        }
        Ok(Status::ALL
            .iter()
            .map(|&s| {
                let n = counts.get(s.as_str()).copied().unwrap_or(0);
                (s, u64::try_from(n).unwrap_or(0))
            })
            .collect())
    }

    async fn record_alarm(&self, alarm: &Alarm) -> StoreResult<bool> {
        let new = self.record_alarms(&[Arc::new(alarm.clone())]).await?;
        Ok(new.first().copied().unwrap_or(false))
    }

    async fn record_alarms(&self, alarms: &[Arc<Alarm>]) -> StoreResult<Vec<bool>> {
        self.store_alarms(alarms).await
    }

    async fn alarms(&self, customer: Option<CustomerNo>, limit: usize) -> StoreResult<Vec<Alarm>> {
        self.newest_alarms(customer, limit).await
    }
}

impl RedisStore {
    /// One UPSERT_VIEWS call for `views` (none: no call).
    pub(super) async fn upsert_views_in_one_script(
        &self,
        views: &[MyPageView],
    ) -> StoreResult<Vec<bool>> {
        if views.is_empty() {
            return Ok(Vec::new());
        }
        let script = &self.scripts.upsert_views;
        let first = self.rm(&format!("view:{}", views[0].enrollment_id));
        let ids: Vec<String> = views.iter().map(|v| v.enrollment_id.to_string()).collect();
        let keys: Vec<String> = ids
            .iter()
            .map(|id| self.rm(&format!("view:{id}")))
            .collect();
        let jsons = views
            .iter()
            .zip(&keys)
            .map(|(view, key)| encode_json(key, view))
            .collect::<StoreResult<Vec<String>>>()?;
        let bytes = jsons.iter().map(|j| j.len() + 160).sum::<usize>();
        let mut cmd = Self::evalsha(script, 3 + views.len(), 2 + 6 * views.len(), bytes);
        cmd.arg(&first).arg(self.rm("views")).arg(self.rm("status"));
        for key in &keys {
            cmd.arg(key);
        }
        cmd.arg(self.rm("views:c:")).arg(self.config.view_index_len);
        for ((view, json), id) in views.iter().zip(&jsons).zip(&ids) {
            cmd.arg(view.version)
                .arg(view.status.as_str())
                .arg(view.customer_no.to_string())
                .arg(json)
                .arg(micros(view.updated_at))
                .arg(id);
        }
        let written: Vec<i64> = self.eval(script, &cmd).await.map_err(unavailable)?;
        if written.len() != views.len() {
            return Err(StoreError::Corrupt {
                key: first,
                reason: format!("{} answers for {} views", written.len(), views.len()),
            });
        }
        Ok(written.into_iter().map(|w| w == 1).collect())
    }
}
