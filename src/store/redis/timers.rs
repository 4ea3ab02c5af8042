//! Durable timers: a zset per partition by due time, attempts in a hash beside it.

use super::conn::unavailable;
use super::encoding::{from_micros, micros};
use super::keys::{parse_timer_member, timer_member};
use super::reply;
use super::store::RedisStore;
use crate::domain::enrollment::EnrollmentId;
use crate::store::error::StoreResult;
use crate::store::timers::{Timer, TimerKind, TimerOp, TimerStore, claim_order, lease_end};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::Value;
use std::time::Duration;

impl RedisStore {
    pub(super) async fn timer_script(&self, id: EnrollmentId, args: &[String]) -> StoreResult<()> {
        let keys = &self.parts[self.partition_of(id)];
        let mut invocation = self.scripts.timer_ops.prepare_invoke();
        invocation.key(&keys.timers).key(&keys.timer_attempts);
        for a in args {
            invocation.arg(a);
        }
        invocation
            .invoke_async::<Value>(&mut self.con())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    pub(super) fn timer_args(&self, op: &TimerOp, id: EnrollmentId, out: &mut Vec<String>) {
        match *op {
            TimerOp::Set(t) => {
                out.push("S".to_owned());
                out.push(timer_member(t.enrollment_id, t.kind));
                out.push(micros(t.due).to_string());
                out.push(t.attempt.to_string());
            }
            TimerOp::Cancel(kind) => {
                out.push("C".to_owned());
                out.push(timer_member(id, kind));
            }
        }
    }

    pub(super) fn parse_timers(&self, value: &Value, out: &mut Vec<Timer>) -> StoreResult<()> {
        let items = reply::items("timers", value)?;
        for t in items.chunks(3) {
            let [member, due, attempt] = t else {
                return Err(reply::unexpected("timers", value));
            };
            let (enrollment_id, kind) = parse_timer_member(reply::text("timer", member)?)?;
            let due = from_micros("timer due", reply::int("timer due", due)?)?;
            let attempt = u32::try_from(reply::uint("timer attempt", attempt)?)
                .map_err(|_| reply::unexpected("timer attempt", value))?;
            out.push(Timer {
                enrollment_id,
                kind,
                due,
                attempt,
            });
        }
        Ok(())
    }
}

#[async_trait]
impl TimerStore for RedisStore {
    async fn claim_due_timers_in(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        max: usize,
        partitions: Option<&[u16]>,
    ) -> StoreResult<Vec<Timer>> {
        let mut out = Vec::new();
        if max == 0 {
            return Ok(out);
        }
        let until = lease_end(now, lease);
        let order = match partitions {
            None => self.rotation(&self.timer_turn),
            Some(_) => claim_order(self.parts.len(), 0, partitions),
        };
        if order.is_empty() {
            return Ok(out);
        }
        for batch in self.script_batches(&order) {
            let room = max - out.len();
            if room == 0 {
                break;
            }
            let script = &self.scripts.claim_timers;
            let mut cmd = Self::evalsha(script, 2 * batch.len(), 3, 64 * batch.len());
            for &p in batch {
                cmd.arg(&self.parts[p].timers)
                    .arg(&self.parts[p].timer_attempts);
            }
            cmd.arg(micros(now)).arg(micros(until)).arg(room);
            let value: Value = self.eval(script, &cmd).await.map_err(unavailable)?;
            self.parse_timers(&value, &mut out)?;
        }
        Ok(out)
    }

    async fn set_timer(&self, timer: Timer) -> StoreResult<()> {
        let mut args = Vec::with_capacity(4);
        self.timer_args(&TimerOp::Set(timer), timer.enrollment_id, &mut args);
        self.timer_script(timer.enrollment_id, &args).await
    }

    async fn cancel_timer(&self, id: EnrollmentId, kind: TimerKind) -> StoreResult<()> {
        let mut args = Vec::with_capacity(2);
        self.timer_args(&TimerOp::Cancel(kind), id, &mut args);
        self.timer_script(id, &args).await
    }
}
