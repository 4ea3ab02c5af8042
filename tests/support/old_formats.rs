//! Snapshots in formats 1 and 2, for the tests that check they still read: format 1 (the
//! whole document in the state) and format 2 (the state without its document, whose text
//! was stored apart in `d`). The state those formats hold, field for field, with the
//! document whole where format 3 has a reference.

use chrono::{DateTime, Utc};
use ezenroll::domain::enrollment::{Enrollment, ProductDocument};
use serde::Serialize;

#[derive(Serialize)]
struct OldState<'a> {
    id: ezenroll::domain::enrollment::EnrollmentId,
    customer_no: ezenroll::domain::enrollment::CustomerNo,
    status: ezenroll::domain::enrollment::Status,
    plan: &'a ezenroll::domain::enrollment::PlanTerms,
    plan_revision: u32,
    #[serde(with = "ezenroll::domain::time::utc")]
    plan_expires_at: DateTime<Utc>,
    document: Option<&'a ProductDocument>,
    payment_method: Option<ezenroll::domain::enrollment::PaymentMethod>,
    amount_due: Option<ezenroll::domain::money::Won>,
    #[serde(with = "ezenroll::domain::time::utc_opt")]
    proposed_at: Option<DateTime<Utc>>,
    #[serde(with = "ezenroll::domain::time::utc_opt")]
    withdrawal_deadline: Option<DateTime<Utc>>,
    payment_attempts: u32,
    last_payment_failure: &'a Option<ezenroll::domain::enrollment::PaymentFailure>,
    payment_id: &'a Option<String>,
    paid_amount: Option<ezenroll::domain::money::Won>,
    contract_no: &'a Option<String>,
    refund_due: Option<ezenroll::domain::money::Won>,
    refund_id: &'a Option<String>,
    #[serde(with = "ezenroll::domain::time::utc")]
    created_at: DateTime<Utc>,
    #[serde(with = "ezenroll::domain::time::utc")]
    updated_at: DateTime<Utc>,
}

fn old_state<'a>(state: &'a Enrollment, document: Option<&'a ProductDocument>) -> OldState<'a> {
    OldState {
        id: state.id,
        customer_no: state.customer_no,
        status: state.status,
        plan: &state.plan,
        plan_revision: state.plan_revision,
        plan_expires_at: state.plan_expires_at,
        document,
        payment_method: state.payment_method,
        amount_due: state.amount_due,
        proposed_at: state.proposed_at,
        withdrawal_deadline: state.withdrawal_deadline,
        payment_attempts: state.payment_attempts,
        last_payment_failure: &state.last_payment_failure,
        payment_id: &state.payment_id,
        paid_amount: state.paid_amount,
        contract_no: &state.contract_no,
        refund_due: state.refund_due,
        refund_id: &state.refund_id,
        created_at: state.created_at,
        updated_at: state.updated_at,
    }
}

fn bincode_after(header: &[u8], state: &OldState<'_>) -> Vec<u8> {
    let mut out = header.to_vec();
    bincode::serde::encode_into_std_write(state, &mut out, bincode::config::standard())
        .expect("encodes");
    out
}

/// Format 1: `state` with `document`'s whole text in it.
pub fn format1(state: &Enrollment, document: Option<&ProductDocument>) -> Vec<u8> {
    bincode_after(&[1], &old_state(state, document))
}

/// Format 2: `state` without its document, flagged as having one when `has_document`
/// (its text then belongs in `d`, as `ezenroll::store::codec::encode_document` writes it).
pub fn format2(state: &Enrollment, has_document: bool) -> Vec<u8> {
    bincode_after(&[2, u8::from(has_document)], &old_state(state, None))
}
