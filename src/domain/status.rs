//! Where an enrollment stands: the states of its lifecycle (see [`super::enrollment`]).

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Status {
    Planned,
    DocumentRequested,
    DocumentIssued,
    Proposed,
    PaymentFailed,
    Contracted,
    WithdrawalRequested,
    Withdrawn,
    Expired,
}

impl Status {
    pub const ALL: [Status; 9] = [
        Status::Planned,
        Status::DocumentRequested,
        Status::DocumentIssued,
        Status::Proposed,
        Status::PaymentFailed,
        Status::Contracted,
        Status::WithdrawalRequested,
        Status::Withdrawn,
        Status::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Planned => "Planned",
            Status::DocumentRequested => "DocumentRequested",
            Status::DocumentIssued => "DocumentIssued",
            Status::Proposed => "Proposed",
            Status::PaymentFailed => "PaymentFailed",
            Status::Contracted => "Contracted",
            Status::WithdrawalRequested => "WithdrawalRequested",
            Status::Withdrawn => "Withdrawn",
            Status::Expired => "Expired",
        }
    }

    /// 한글 상태명, for notifications and documents.
    pub fn korean(self) -> &'static str {
        match self {
            Status::Planned => "가입설계 저장",
            Status::DocumentRequested => "상품설명서 발행 요청",
            Status::DocumentIssued => "상품설명서 발행 완료",
            Status::Proposed => "청약 접수",
            Status::PaymentFailed => "초회보험료 결제 실패",
            Status::Contracted => "계약 성립",
            Status::WithdrawalRequested => "청약철회 접수",
            Status::Withdrawn => "청약철회 완료",
            Status::Expired => "가입설계 만료",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Before a proposal: the plan may still be re-saved, and it may expire.
    pub fn is_pre_proposal(self) -> bool {
        matches!(
            self,
            Status::Planned | Status::DocumentRequested | Status::DocumentIssued
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
