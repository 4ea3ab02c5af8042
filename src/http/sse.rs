//! `GET /events/stream`: the engine's live feed as server-sent events.
//!
//! Each event of the enrollment lifecycle is one message: `id` the event id, `event` its
//! type (`PlanSaved`, `DocumentIssued`...), `data` the envelope as `GET
//! /enrollments/{id}/events` lists it. An admin sees every enrollment (or one customer's
//! with `?customerNo=`, or one enrollment's with `?enrollmentId=`); a customer sees only
//! its own. Comments (`:`) keep idle connections open through proxies.
//!
//! A client that reads too slowly is never waited for: once it is more than the feed's
//! capacity behind, the oldest events it has not read are dropped and it gets a `lagged`
//! message (`data: {"skipped": n}`, counting events of every customer) in their place;
//! it can catch up with `GET /mypage` or `GET /enrollments/{id}/events`.
//!
//! The stream ends when the server starts shutting down (so a graceful shutdown is not
//! held up by clients that never hang up) and when the engine stops.

use crate::actors::feed::FeedEvent;
use crate::domain::enrollment::{CustomerNo, EnrollmentId};
use crate::store::EventEnvelope;
use futures_util::Stream;
use std::convert::Infallible;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;
use warp::sse::Event;

/// Which events one stream shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamFilter {
    pub customer_no: Option<CustomerNo>,
    pub enrollment_id: Option<EnrollmentId>,
}

impl StreamFilter {
    pub fn wants(&self, event: &EventEnvelope) -> bool {
        self.customer_no.is_none_or(|c| c == event.customer_no)
            && self
                .enrollment_id
                .is_none_or(|id| id == event.enrollment_id)
    }
}

/// The SSE message for one event; `None` only if the envelope does not serialize.
pub fn message(event: &EventEnvelope) -> Option<Event> {
    match serde_json::to_string(event) {
        Ok(data) => Some(
            Event::default()
                .id(event.id.to_string())
                .event(event.event.event_type())
                .data(data),
        ),
        Err(e) => {
            tracing::error!(event = %event.id, error = %e, "an event does not serialize; not streamed");
            None
        }
    }
}

/// The notice a lagging client gets instead of the `skipped` events it was too slow for.
pub fn lagged(skipped: u64) -> Event {
    Event::default()
        .event("lagged")
        .data(format!("{{\"skipped\":{skipped}}}"))
}

struct State {
    events: broadcast::Receiver<FeedEvent>,
    filter: StreamFilter,
    closing: watch::Receiver<bool>,
}

/// The messages of `events` that `filter` wants, until `closing` turns true (or its
/// sender goes) or the feed closes.
pub fn stream(
    events: broadcast::Receiver<FeedEvent>,
    filter: StreamFilter,
    closing: watch::Receiver<bool>,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let state = State {
        events,
        filter,
        closing,
    };
    futures_util::stream::unfold(state, |mut s| async move {
        loop {
            let next = tokio::select! {
                biased;
                _ = s.closing.wait_for(|closing| *closing) => return None,
                next = s.events.recv() => next,
            };
            match next {
                Ok(event) if s.filter.wants(&event) => {
                    if let Some(m) = message(&event) {
                        return Some((Ok(m), s));
                    }
                }
                Ok(_) => {}
                Err(RecvError::Lagged(skipped)) => return Some((Ok(lagged(skipped)), s)),
                Err(RecvError::Closed) => return None,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::enrollment::Event as DomainEvent;
    use futures_util::StreamExt;
    use std::sync::Arc;

    fn envelope(customer: u64) -> FeedEvent {
        Arc::new(EventEnvelope::new(
            DomainEvent::PlanExpired {},
            EnrollmentId::new(),
            CustomerNo::new(customer),
            1,
            chrono::Utc::now(),
        ))
    }

    fn text(event: &Event) -> String {
        event.to_string()
    }

    #[tokio::test]
    async fn a_slow_reader_gets_a_lagged_notice_then_the_newest_events() {
        let (tx, rx) = broadcast::channel(4);
        let (_closing_tx, closing) = watch::channel(false);
        let sent: Vec<FeedEvent> = (0..10).map(|_| envelope(1)).collect();
        for e in &sent {
            tx.send(Arc::clone(e)).expect("a receiver");
        }
        drop(tx);
        let got: Vec<String> = stream(rx, StreamFilter::default(), closing)
            .map(|m| text(&m.expect("infallible")))
            .collect()
            .await;
        assert_eq!(got.len(), 5, "{got:?}");
        assert!(got[0].contains("event:lagged"), "{}", got[0]);
        assert!(got[0].contains(r#"data:{"skipped":6}"#), "{}", got[0]);
        for (m, e) in got[1..].iter().zip(&sent[6..]) {
            assert!(m.contains(&format!("id:{}", e.id)), "{m}");
            assert!(m.contains("event:PlanExpired"), "{m}");
        }
    }

    #[tokio::test]
    async fn the_filter_keeps_one_customer_and_closing_ends_the_stream() {
        let (tx, rx) = broadcast::channel(16);
        let (closing_tx, closing) = watch::channel(false);
        let filter = StreamFilter {
            customer_no: Some(CustomerNo::new(2)),
            enrollment_id: None,
        };
        let mine = envelope(2);
        for e in [envelope(1), Arc::clone(&mine), envelope(3)] {
            tx.send(e).expect("a receiver");
        }
        let mut s = Box::pin(stream(rx, filter, closing));
        let first = s.next().await.expect("a message").expect("infallible");
        let data = serde_json::to_string(&*mine).expect("json");
        assert_eq!(
            text(&first),
            format!("event:PlanExpired\ndata:{data}\nid:{}\n\n", mine.id)
        );
        closing_tx.send(true).expect("a receiver");
        assert!(s.next().await.is_none(), "closing ends the stream");
    }
}
