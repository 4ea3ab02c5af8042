//! The names of this store's keys, from its prefix and its partitions (the layout is in
//! [`super`]).

use super::store::RedisStore;
use crate::domain::enrollment::{CustomerNo, EnrollmentId};
use crate::store::error::StoreResult;
use crate::store::event_log::{check_partition, partition_index};

impl RedisStore {
    pub(super) fn partition_of(&self, id: EnrollmentId) -> usize {
        partition_index(id, self.parts.len())
    }

    /// The key of an enrollment's record (hash: `v` version, `s` snapshot), for operators.
    pub fn enrollment_key(&self, id: EnrollmentId) -> String {
        format!("{}:enr:{id}", self.parts[self.partition_of(id)].stem)
    }

    pub(super) fn history_key(&self, id: EnrollmentId) -> String {
        format!("{}:hist:{id}", self.parts[self.partition_of(id)].stem)
    }

    pub(super) fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.config.prefix)
    }

    pub(super) fn rm(&self, rest: &str) -> String {
        format!("{}{{rm}}:{rest}", self.config.prefix)
    }

    /// A customer's alarms: hash event id → `<sent at, µs> <status> <enrollment id> <message>`.
    pub(super) fn customer_alarms_key(&self, no: CustomerNo) -> String {
        self.rm(&format!("alarms:of:{no}"))
    }

    pub(super) fn dead_key(&self, group: &str) -> String {
        self.key(&format!("dead:{group}"))
    }

    pub(super) fn check_partition(&self, partition: u16) -> StoreResult<usize> {
        check_partition(partition, self.parts.len())
    }
}
