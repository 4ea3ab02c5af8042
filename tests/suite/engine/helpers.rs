//! Small helpers the engine checks share.

use ezenroll::actors::EngineError;
use ezenroll::domain::enrollment::{DomainError, Status};
use ezenroll::store::{EventEnvelope, ViewFilter};

/// One customer's MyPage views, whatever their status.
pub(super) fn customer_views(no: ezenroll::domain::enrollment::CustomerNo) -> ViewFilter {
    ViewFilter {
        customer_no: Some(no),
        status: None,
    }
}

pub(super) fn event_types<E: std::borrow::Borrow<EventEnvelope>>(
    history: &[E],
) -> Vec<&'static str> {
    history
        .iter()
        .map(|e| e.borrow().event.event_type())
        .collect()
}

pub(super) fn assert_illegal<T: std::fmt::Debug>(
    result: Result<T, EngineError>,
    command: &'static str,
    status: Status,
) {
    match result {
        Err(EngineError::Domain(
            e @ DomainError::IllegalTransition {
                command: c,
                status: s,
            },
        )) => {
            assert_eq!((c, s), (command, status), "refused for the right reason");
            assert!(
                e.to_string().contains(status.as_str()),
                "the refusal names the state: {e}"
            );
        }
        other => panic!("{command} in {status} must be an illegal transition, got {other:?}"),
    }
}
