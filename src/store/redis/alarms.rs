//! Alarms: each in its customer's hash (once per event), and in a global index.

use super::conn::unavailable;
use super::encoding::{decode_json, micros};
use super::read_model::MAX_LIST;
use super::store::RedisStore;
use crate::domain::enrollment::{CustomerNo, EnrollmentId, Status};
use crate::store::error::{StoreError, StoreResult};
use crate::store::read_model::Alarm;
use chrono::{DateTime, Utc};
use std::fmt::Write as _;
use std::sync::Arc;

/// An alarm as its customer's hash keeps it (the field is its event id):
/// `<sent at, µs> <status> <enrollment id> <message>`. The event id and the customer
/// number are in the field and the key already, and the time in microseconds is what the
/// alarm's `sent_at` holds: JSON would repeat all three and the field names, about twice
/// the bytes. The time comes first so the script can trim a customer's alarms by age.
fn encode_alarm(alarm: &Alarm) -> String {
    let mut id = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let id = alarm
        .enrollment_id
        .as_uuid()
        .hyphenated()
        .encode_lower(&mut id);
    let mut value = String::with_capacity(64 + alarm.message.len());
    let _ = write!(
        value,
        "{} {} {id} {}",
        micros(alarm.sent_at),
        alarm.status.as_str(),
        alarm.message
    );
    value
}

fn corrupt_alarm(key: &str) -> StoreError {
    StoreError::Corrupt {
        key: key.to_owned(),
        reason: "an alarm is not stored as `<sent at, µs> <status> <enrollment id> <message>`"
            .to_owned(),
    }
}

/// Reads what [`encode_alarm`] wrote, or the older alarm layout, `<sent at, µs> <JSON>`,
/// which is still read.
fn decode_alarm(
    key: &str,
    customer_no: CustomerNo,
    event_id: &[u8],
    stored: &[u8],
) -> StoreResult<Alarm> {
    let text = std::str::from_utf8(stored).map_err(|_| corrupt_alarm(key))?;
    let (at, rest) = text.split_once(' ').ok_or_else(|| corrupt_alarm(key))?;
    if rest.starts_with('{') {
        return decode_json(key, rest.as_bytes());
    }
    let sent_at = at
        .parse::<i64>()
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_micros)
        .ok_or_else(|| corrupt_alarm(key))?;
    let mut parts = rest.splitn(3, ' ');
    let (Some(status), Some(enrollment), Some(message)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(corrupt_alarm(key));
    };
    let event_id = std::str::from_utf8(event_id)
        .ok()
        .and_then(|id| uuid::Uuid::parse_str(id).ok())
        .ok_or_else(|| corrupt_alarm(key))?;
    Ok(Alarm {
        event_id,
        enrollment_id: EnrollmentId::parse(enrollment).map_err(|_| corrupt_alarm(key))?,
        customer_no,
        status: Status::parse(status).ok_or_else(|| corrupt_alarm(key))?,
        message: message.to_owned(),
        sent_at,
    })
}

impl RedisStore {
    /// Records each alarm unless its event has one (one script call for all of them).
    pub(super) async fn store_alarms(&self, alarms: &[Arc<Alarm>]) -> StoreResult<Vec<bool>> {
        if alarms.is_empty() {
            return Ok(Vec::new());
        }
        let index = self.rm("alarm-index");
        let stored: Vec<String> = alarms.iter().map(|alarm| encode_alarm(alarm)).collect();
        let script = &self.scripts.record_alarms;
        let bytes = stored.iter().map(|j| j.len() + 112).sum::<usize>();
        let mut cmd = Self::evalsha(script, 1 + alarms.len(), 2 + 4 * alarms.len(), bytes);
        cmd.arg(&index);
        for alarm in alarms {
            cmd.arg(self.customer_alarms_key(alarm.customer_no));
        }
        cmd.arg(self.config.alarm_index_len)
            .arg(self.config.alarms_per_customer);
        for (alarm, value) in alarms.iter().zip(&stored) {
            let id = alarm.event_id.to_string();
            cmd.arg(&id)
                .arg(value)
                .arg(micros(alarm.sent_at))
                .arg(format!("{}:{id}", alarm.customer_no));
        }
        let new: Vec<i64> = self.eval(script, &cmd).await.map_err(unavailable)?;
        if new.len() != alarms.len() {
            return Err(StoreError::Corrupt {
                key: index,
                reason: format!("{} answers for {} alarms", new.len(), alarms.len()),
            });
        }
        Ok(new.into_iter().map(|n| n == 1).collect())
    }

    /// Alarms, newest first, of one customer or of everyone, at most `limit`.
    pub(super) async fn newest_alarms(
        &self,
        customer: Option<CustomerNo>,
        limit: usize,
    ) -> StoreResult<Vec<Alarm>> {
        let limit = limit.min(MAX_LIST);
        if limit == 0 {
            return Ok(Vec::new());
        }
        match customer {
            Some(no) => {
                // A customer keeps a bounded number of alarms: all of them, sorted here.
                let key = self.customer_alarms_key(no);
                let all: Vec<(Vec<u8>, Vec<u8>)> =
                    self.query(redis::cmd("HGETALL").arg(&key)).await?;
                let mut found = all
                    .iter()
                    .map(|(id, stored)| decode_alarm(&key, no, id, stored))
                    .collect::<StoreResult<Vec<Alarm>>>()?;
                // Newest first; the same time in event id order, newest first too.
                found.sort_unstable_by_key(|a| std::cmp::Reverse((a.sent_at, a.event_id)));
                found.truncate(limit);
                Ok(found)
            }
            None => {
                let index = self.rm("alarm-index");
                let script = &self.scripts.alarms;
                let mut cmd = Self::evalsha(script, 1, 2, 64);
                cmd.arg(&index).arg(limit).arg(self.rm("alarms:of:"));
                let found: Vec<Vec<u8>> = self.eval(script, &cmd).await.map_err(unavailable)?;
                found
                    .chunks(2)
                    .map(|pair| {
                        let [member, stored] = pair else {
                            return Err(corrupt_alarm(&index));
                        };
                        let (customer, id) = std::str::from_utf8(member)
                            .ok()
                            .and_then(|m| m.split_once(':'))
                            .ok_or_else(|| corrupt_alarm(&index))?;
                        let customer =
                            CustomerNo::parse(customer).map_err(|_| corrupt_alarm(&index))?;
                        decode_alarm(&index, customer, id.as_bytes(), stored)
                    })
                    .collect()
            }
        }
    }
}
