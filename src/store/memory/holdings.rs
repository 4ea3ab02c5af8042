//! A customer's reservations of one product's cumulative limit, by enrollment.

use super::few::Few;
use crate::domain::enrollment::EnrollmentId;
use crate::domain::money::Won;

/// A customer's reservations of one product's cumulative limit.
#[derive(Default)]
pub(super) struct Holdings {
    pub(super) total: Won,
    pub(super) by_enrollment: Few<EnrollmentId, Won>,
}
