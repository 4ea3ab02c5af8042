//! The alimtalk (알림톡) text sent for each enrollment event: pure, so every message is
//! checked word for word without a store or a consumer.

use super::customer::CustomerName;
use super::events::{Event, PaymentFailure};
use super::ids::EnrollmentId;
use super::text::Text;

/// The alimtalk text for `event` of enrollment `enrollment_id`, addressed to the customer
/// by name (or as 고객 when the customer record is not at hand).
pub fn render(
    event: &Event,
    enrollment_id: EnrollmentId,
    customer: Option<&CustomerName>,
) -> String {
    let name = customer.map_or("고객", CustomerName::as_str);
    // Pushed piece by piece (see domain::text) into a reused buffer; the message is kept
    // with the alarm, so it gets an exact-size copy.
    Text::exact(|out| render_into(out, name, event, enrollment_id))
}

fn render_into(out: &mut Text, name: &str, event: &Event, enrollment_id: EnrollmentId) {
    out.s("[이지보험] ").s(name).s("님, ");
    match event {
        Event::PlanSaved { plan, .. } => out
            .s(&plan.product_name)
            .s(" 가입설계가 저장되었습니다. 보험료는 회당 ")
            .won(plan.quote.installment)
            .s("입니다."),
        Event::PlanResaved { plan, revision, .. } => out
            .s(&plan.product_name)
            .s(" 가입설계가 변경 저장되었습니다 (")
            .n(*revision)
            .s("차). 보험료는 회당 ")
            .won(plan.quote.installment)
            .s("입니다."),
        Event::DocumentRequested { .. } => {
            out.s("상품설명서 발행을 요청하셨습니다. 잠시 후 발행됩니다.")
        }
        Event::DocumentIssued { document } => out
            .s("상품설명서가 발행되었습니다 (문서번호 ")
            .s(&document.document_no)
            .s("). 내용을 확인하신 후 청약을 진행해 주세요."),
        Event::ProposalSubmitted { amount, .. } => out
            .s("청약이 접수되었습니다. 초회보험료 ")
            .won(*amount)
            .s(" 결제를 진행합니다."),
        Event::PaymentSucceeded {
            amount,
            contract_no,
            ..
        } => out
            .s("초회보험료 ")
            .won(*amount)
            .s(" 결제가 완료되어 계약이 성립되었습니다 (증권번호 ")
            .s(contract_no)
            .s(")."),
        Event::PaymentFailed { failure } => match failure {
            PaymentFailure::Declined { reason } => out
                .s("초회보험료 결제가 승인되지 않았습니다 (")
                .s(reason)
                .s("). 결제수단을 확인하신 후 다시 시도해 주세요."),
            PaymentFailure::Unavailable {
                retry_after_secs, ..
            } => out
                .s("결제 요청이 많아 초회보험료 결제를 완료하지 못했습니다. ")
                .n(*retry_after_secs)
                .s("초 후 다시 시도해 주세요."),
        },
        Event::PaymentRetried { attempt } => out
            .s("초회보험료 결제를 다시 진행합니다 (")
            .n(*attempt)
            .s("회차)."),
        Event::WithdrawalRequested { refund_due } => match refund_due {
            Some(amount) => out
                .s("청약철회가 접수되었습니다. 납입하신 보험료 ")
                .won(*amount)
                .s("은 환불 처리됩니다."),
            None => out.s("청약철회가 접수되었습니다."),
        },
        Event::RefundConfirmed { amount, .. } => {
            out.s("보험료 ").won(*amount).s(" 환불이 완료되었습니다.")
        }
        Event::Withdrawn {} => out.s("청약철회가 완료되었습니다."),
        Event::PlanExpired {} => out.s("가입설계 유효기간이 지나 만료되었습니다."),
    };
    let mut id = uuid::Uuid::encode_buffer();
    out.s("\n▶ 가입번호: ")
        .s(enrollment_id.as_uuid().hyphenated().encode_lower(&mut id));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::plan::demo_plan;

    use crate::domain::events::PaymentMethod;
    use crate::domain::ids::CustomerNo;
    use crate::domain::money::Won;

    use chrono::Utc;
    use std::sync::Arc;

    const ID: &str = "0190f5a4-7c2e-7d3b-9a41-5e6f7a8b9c0d";

    fn alarm_text(event: Event, customer: Option<&CustomerName>) -> String {
        let id = EnrollmentId::parse(ID).expect("an id");
        render(&event, id, customer)
    }

    /// Every event's alimtalk text, word for word, with and without the customer's name.
    #[test]
    fn every_event_has_its_message() {
        let customer = CustomerName::parse("김이지").expect("a name");
        let plan = demo_plan();
        let installment = plan.quote.installment;
        assert_eq!(
            installment,
            Won::new(16_709),
            "the quote the texts below show"
        );
        let id = EnrollmentId::parse(ID).expect("an id");
        let document =
            Arc::new(crate::domain::document::render(id, &plan, 1, None, Utc::now()).reference());
        let document_no = document.document_no.clone();
        let later = Utc::now();
        let cases: Vec<(Event, String)> = vec![
            (
                Event::PlanSaved {
                    customer_no: CustomerNo::new(7),
                    plan: Arc::clone(&plan),
                    expires_at: later,
                },
                "이지 정기보험 가입설계가 저장되었습니다. 보험료는 회당 16,709원입니다.".into(),
            ),
            (
                Event::PlanResaved {
                    plan: Arc::clone(&plan),
                    revision: 3,
                    expires_at: later,
                },
                "이지 정기보험 가입설계가 변경 저장되었습니다 (3차). 보험료는 회당 16,709원입니다."
                    .into(),
            ),
            (
                Event::DocumentRequested { plan_revision: 1 },
                "상품설명서 발행을 요청하셨습니다. 잠시 후 발행됩니다.".into(),
            ),
            (
                Event::DocumentIssued { document },
                format!(
                    "상품설명서가 발행되었습니다 (문서번호 {document_no}). 내용을 확인하신 후 청약을 진행해 주세요."
                ),
            ),
            (
                Event::ProposalSubmitted {
                    method: PaymentMethod::Card,
                    amount: Won::new(16_709),
                    withdrawal_deadline: later,
                },
                "청약이 접수되었습니다. 초회보험료 16,709원 결제를 진행합니다.".into(),
            ),
            (
                Event::PaymentSucceeded {
                    payment_id: "PAY-1".into(),
                    amount: Won::new(16_709),
                    contract_no: "CT-20261124-7a8b9c0d".into(),
                },
                "초회보험료 16,709원 결제가 완료되어 계약이 성립되었습니다 (증권번호 CT-20261124-7a8b9c0d)."
                    .into(),
            ),
            (
                Event::PaymentFailed {
                    failure: PaymentFailure::Declined {
                        reason: "한도 초과".into(),
                    },
                },
                "초회보험료 결제가 승인되지 않았습니다 (한도 초과). 결제수단을 확인하신 후 다시 시도해 주세요."
                    .into(),
            ),
            (
                Event::PaymentFailed {
                    failure: PaymentFailure::Unavailable {
                        reason: "busy".into(),
                        retry_after_secs: 5,
                    },
                },
                "결제 요청이 많아 초회보험료 결제를 완료하지 못했습니다. 5초 후 다시 시도해 주세요."
                    .into(),
            ),
            (
                Event::PaymentRetried { attempt: 2 },
                "초회보험료 결제를 다시 진행합니다 (2회차).".into(),
            ),
            (
                Event::WithdrawalRequested {
                    refund_due: Some(Won::new(16_709)),
                },
                "청약철회가 접수되었습니다. 납입하신 보험료 16,709원은 환불 처리됩니다.".into(),
            ),
            (
                Event::WithdrawalRequested { refund_due: None },
                "청약철회가 접수되었습니다.".into(),
            ),
            (
                Event::RefundConfirmed {
                    refund_id: "RF-1".into(),
                    amount: Won::new(1_234_567),
                },
                "보험료 1,234,567원 환불이 완료되었습니다.".into(),
            ),
            (Event::Withdrawn {}, "청약철회가 완료되었습니다.".into()),
            (
                Event::PlanExpired {},
                "가입설계 유효기간이 지나 만료되었습니다.".into(),
            ),
        ];
        for (event, middle) in cases {
            let kind = event.event_type();
            assert_eq!(
                alarm_text(event.clone(), Some(&customer)),
                format!("[이지보험] 김이지님, {middle}\n▶ 가입번호: {ID}"),
                "{kind}"
            );
            assert_eq!(
                alarm_text(event, None),
                format!("[이지보험] 고객님, {middle}\n▶ 가입번호: {ID}"),
                "{kind} without the customer"
            );
        }
    }
}
