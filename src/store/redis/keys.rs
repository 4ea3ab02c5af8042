//! The key layout (see the table in [`super`]) and how members and fields encode what
//! they name: timers as `<enrollment id>:<kind>`, documents as `doc:<number>`.

use crate::domain::enrollment::EnrollmentId;
use crate::store::error::{StoreError, StoreResult};
use crate::store::event_log::not_an_entry;
use crate::store::timers::TimerKind;

/// The keys of one partition.
pub(super) struct PartitionKeys {
    /// `<prefix>{p<N>}`: the hash-tagged stem of every key of the partition.
    pub(super) stem: String,
    pub(super) log: String,
    pub(super) timers: String,
    pub(super) timer_attempts: String,
    /// The partition's lease (hash: `o` owner, `f` fencing number; expires).
    pub(super) lease: String,
    /// The last fencing number given out for the partition (never expires).
    pub(super) fence: String,
}

impl PartitionKeys {
    /// The keys of partitions 0 to `count - 1` (at least one) under `prefix`.
    pub(super) fn layout(prefix: &str, count: u16) -> Vec<PartitionKeys> {
        (0..count.max(1))
            .map(|p| {
                let stem = format!("{prefix}{{p{p}}}");
                PartitionKeys {
                    log: format!("{stem}:log"),
                    timers: format!("{stem}:timers"),
                    timer_attempts: format!("{stem}:timer-attempts"),
                    lease: format!("{stem}:lease"),
                    fence: format!("{stem}:fence"),
                    stem,
                }
            })
            .collect()
    }
}

/// The field of an enrollment's hash that holds the text of its document `document_no`.
pub(super) fn document_field(document_no: &str) -> String {
    format!("doc:{document_no}")
}

/// How a timer member names each kind.
const KIND_CODES: [(TimerKind, &str); 3] = [
    (TimerKind::IssueDocument, "doc"),
    (TimerKind::ExpirePlan, "exp"),
    (TimerKind::Refund, "ref"),
];

/// A timer's member of its partition's timer zset: `<enrollment id>:<kind>`.
pub(super) fn timer_member(id: EnrollmentId, kind: TimerKind) -> String {
    let code = KIND_CODES
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or("", |(_, code)| code);
    format!("{id}:{code}")
}

pub(super) fn parse_timer_member(member: &str) -> StoreResult<(EnrollmentId, TimerKind)> {
    let corrupt = || StoreError::Corrupt {
        key: member.to_owned(),
        reason: "not a timer (<enrollment id>:<kind>)".to_owned(),
    };
    let (id, code) = member.rsplit_once(':').ok_or_else(corrupt)?;
    let (kind, _) = KIND_CODES
        .iter()
        .find(|(_, c)| *c == code)
        .ok_or_else(corrupt)?;
    Ok((EnrollmentId::parse(id).map_err(|_| corrupt())?, *kind))
}

/// A stream entry id (`<ms>-<seq>`), checked before it reaches a command.
pub(super) fn check_entry_id(entry_id: &str) -> StoreResult<()> {
    let valid = entry_id.split_once('-').is_some_and(|(ms, seq)| {
        !ms.is_empty()
            && !seq.is_empty()
            && ms.bytes().all(|b| b.is_ascii_digit())
            && seq.bytes().all(|b| b.is_ascii_digit())
    });
    if valid {
        Ok(())
    } else {
        Err(not_an_entry(entry_id))
    }
}
