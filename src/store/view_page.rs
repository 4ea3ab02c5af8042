//! Listing enrollments page by page: the read model's views, most recently changed first,
//! filtered by customer, status and product, with a cursor that says where the next page
//! starts. Both backends order the same way: by the time of the last change in whole
//! microseconds, then by enrollment id, both descending.

use super::read_model::MyPageView;
use crate::domain::enrollment::{CustomerNo, EnrollmentId, Status};
use std::fmt;
use std::str::FromStr;

/// A place in the order views are listed in; a page holds the views after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ViewCursor {
    /// The view's last change, in microseconds since the Unix epoch.
    pub updated_micros: i64,
    pub enrollment_id: EnrollmentId,
}

impl ViewCursor {
    /// The place of `view`.
    pub fn of(view: &MyPageView) -> ViewCursor {
        ViewCursor {
            updated_micros: view.updated_at.timestamp_micros(),
            enrollment_id: view.enrollment_id,
        }
    }
}

/// `<micros>.<enrollment id>`: what clients pass back, opaque to them.
impl fmt::Display for ViewCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.updated_micros, self.enrollment_id)
    }
}

/// The cursors [`ViewCursor`] writes and reads, as a regular expression.
pub const CURSOR_PATTERN: &str =
    "^-?[0-9]{1,18}\\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a cursor this server handed out")]
pub struct BadCursor;

impl FromStr for ViewCursor {
    type Err = BadCursor;

    /// Only the form [`Display`](fmt::Display) writes ([`CURSOR_PATTERN`]), so that the
    /// published pattern is exactly what is accepted.
    fn from_str(text: &str) -> Result<ViewCursor, BadCursor> {
        let (micros, id) = text.split_once('.').ok_or(BadCursor)?;
        let digits = micros.strip_prefix('-').unwrap_or(micros);
        if !(1..=18).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BadCursor);
        }
        let cursor = ViewCursor {
            updated_micros: micros.parse().map_err(|_| BadCursor)?,
            enrollment_id: EnrollmentId::parse(id).map_err(|_| BadCursor)?,
        };
        if cursor.enrollment_id.to_string() != id {
            return Err(BadCursor);
        }
        Ok(cursor)
    }
}

/// Which views a page lists.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ViewQuery {
    pub customer_no: Option<CustomerNo>,
    pub status: Option<Status>,
    pub product_code: Option<String>,
    /// Only views after this place (the previous page's `next`).
    pub after: Option<ViewCursor>,
    /// At most this many views.
    pub limit: usize,
}

impl ViewQuery {
    /// Whether `view` passes the filters (the cursor and the limit aside).
    pub fn matches(&self, view: &MyPageView) -> bool {
        self.customer_no.is_none_or(|c| c == view.customer_no)
            && self.status.is_none_or(|s| s == view.status)
            && self
                .product_code
                .as_deref()
                .is_none_or(|p| p == view.product_code)
    }
}

/// One page: the views, in order, and where the next page starts (`None`: nothing after
/// them). A page may hold fewer than `limit` views and still have a next one, where a
/// backend stopped looking through a long stretch of views that did not match.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ViewPage {
    pub views: Vec<MyPageView>,
    pub next: Option<ViewCursor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_what_it_wrote_and_nothing_else() {
        let cursor = ViewCursor {
            updated_micros: 1_796_000_000_123_456,
            enrollment_id: EnrollmentId::new(),
        };
        assert_eq!(cursor.to_string().parse(), Ok(cursor));
        for bad in ["", "12", "x.y", "12.not-an-id", ".0197", "1.2.3"] {
            assert_eq!(bad.parse::<ViewCursor>(), Err(BadCursor), "{bad:?}");
        }
    }
}
