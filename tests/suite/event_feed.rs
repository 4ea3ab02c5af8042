//! The live event feed (`EngineHandle::subscribe`, behind `GET /events/stream`): it tails
//! the store's log, so every engine on a shared store sees every change; it runs only
//! while someone listens; it rides out store errors; it closes with the engine.
//!
//! Both checks take a fresh `Arc<dyn Store>`, so the memory backend
//! (tests/suite/memory/event_feed.rs) and Redis (tests/suite/redis_backend/http.rs) run the
//! same suite by expanding [`event_feed_suite!`] with an expression making a store (it may
//! `.await`).

/// The checks as tests, each on the runtime it needs. `$module` is the name the suite
/// is in scope under; `$make` makes a fresh store and may `.await`.
macro_rules! event_feed_suite {
    ($module:ident, $make:expr) => {
        #[actix_rt::test]
        async fn every_engine_on_a_shared_store_sees_every_change() {
            let store: ::std::sync::Arc<dyn ::ezenroll::store::Store> = $make;
            $module::every_engine_on_a_shared_store_sees_every_change(store).await;
        }

        #[tokio::test]
        async fn the_tail_rides_out_store_errors_and_runs_only_while_someone_listens() {
            let store: ::std::sync::Arc<dyn ::ezenroll::store::Store> = $make;
            $module::the_tail_rides_out_store_errors_and_runs_only_while_someone_listens(store)
                .await;
        }
    };
}

pub use crate::support::engine as fixtures;

use crate::store_contract::{Journey, Step};
use async_trait::async_trait;
use ezenroll::actors::EngineError;
use ezenroll::actors::feed::{EventFeed, FeedEvent};
use ezenroll::domain::enrollment::{CustomerNo, EnrollmentId};
use ezenroll::store::{Delivery, EventEnvelope, EventLog, Store, StoreError, StoreResult};
use fixtures::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::sync::broadcast::{self, error::RecvError};

/// The next event of `rx` for enrollment `id`, skipping others.
async fn next_of(rx: &mut broadcast::Receiver<FeedEvent>, id: EnrollmentId) -> FeedEvent {
    let found = tokio::time::timeout(WAIT, async {
        loop {
            match rx.recv().await {
                Ok(e) if e.enrollment_id == id => return e,
                Ok(_) => {}
                Err(e) => panic!("the feed failed: {e}"),
            }
        }
    })
    .await;
    found.expect("an event in time")
}

pub async fn every_engine_on_a_shared_store_sees_every_change(store: Arc<dyn Store>) {
    let a = start(Arc::clone(&store), test_config(), healthy_provider(&store)).await;
    let b = start(Arc::clone(&store), test_config(), healthy_provider(&store)).await;
    let customer = register_customer(&a.engine, "김피드").await;
    let before = a
        .engine
        .save_plan(term_plan(customer.customer_no, 100_000_000))
        .await
        .expect("plan")
        .state
        .id;

    let mut on_a = a.engine.subscribe().await.expect("subscribed");
    let mut on_b = b.engine.subscribe().await.expect("subscribed");
    // Made on B, seen on A (and on B): the feed follows the store, not local appends.
    let planned = b
        .engine
        .save_plan(term_plan(customer.customer_no, 110_000_000))
        .await
        .expect("plan");
    let id = planned.state.id;
    b.engine.request_document(id).await.expect("requested");
    for rx in [&mut on_a, &mut on_b] {
        let saved = next_of(rx, id).await;
        assert_eq!(saved.event.event_type(), "PlanSaved");
        assert_eq!(*saved, *planned.events[0], "the envelope as appended");
        assert_eq!(
            next_of(rx, id).await.event.event_type(),
            "DocumentRequested"
        );
        assert_eq!(next_of(rx, id).await.event.event_type(), "DocumentIssued");
    }
    // Subscribing starts at the end of the log: nothing from before.
    while let Ok(e) = on_a.try_recv() {
        assert_ne!(e.enrollment_id, before, "an event from before subscribing");
    }
    assert_eq!(a.engine.feed_subscribers().await, 1);

    // The engine's shutdown closes its receivers and refuses new subscribers.
    a.engine.shutdown().await;
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            if let Err(RecvError::Closed) = on_a.recv().await {
                return;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the receiver is closed");
    assert!(matches!(
        a.engine.subscribe().await,
        Err(EngineError::Stopping)
    ));
    b.engine.shutdown().await;
}

/// A log whose `read_after` fails while `failures` is above zero; the rest is the store's
/// it wraps.
struct FlakyLog {
    inner: Arc<dyn Store>,
    failures: AtomicU32,
}

#[async_trait]
impl EventLog for FlakyLog {
    fn partitions(&self) -> u16 {
        self.inner.partitions()
    }
    async fn ensure_group(&self, group: &str) -> StoreResult<()> {
        self.inner.ensure_group(group).await
    }
    async fn read_group(
        &self,
        group: &str,
        consumer: &str,
        max: usize,
        block: Duration,
    ) -> StoreResult<Vec<Delivery>> {
        self.inner.read_group(group, consumer, max, block).await
    }
    async fn ack(&self, group: &str, entries: &[(u16, String)]) -> StoreResult<()> {
        self.inner.ack(group, entries).await
    }
    async fn claim_stale(
        &self,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        max: usize,
    ) -> StoreResult<Vec<Delivery>> {
        self.inner.claim_stale(group, consumer, min_idle, max).await
    }
    async fn dead_letter(&self, group: &str, delivery: &Delivery, reason: &str) -> StoreResult<()> {
        self.inner.dead_letter(group, delivery, reason).await
    }
    async fn dead_letters(&self, group: &str) -> StoreResult<Vec<EventEnvelope>> {
        self.inner.dead_letters(group).await
    }
    async fn lag(&self, group: &str) -> StoreResult<u64> {
        self.inner.lag(group).await
    }
    async fn log_end(&self) -> StoreResult<Vec<String>> {
        self.inner.log_end().await
    }
    async fn read_after(
        &self,
        positions: &mut [String],
        max: usize,
        block: Duration,
    ) -> StoreResult<Vec<Arc<EventEnvelope>>> {
        let failing = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(StoreError::Unavailable("the test says so".to_owned()));
        }
        self.inner.read_after(positions, max, block).await
    }
}

pub async fn the_tail_rides_out_store_errors_and_runs_only_while_someone_listens(
    store: Arc<dyn Store>,
) {
    let log = Arc::new(FlakyLog {
        inner: Arc::clone(&store),
        failures: AtomicU32::new(0),
    });
    let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
    let feed = EventFeed::new(Arc::clone(&log) as Arc<dyn EventLog>, 64, shutdown_rx);
    assert!(!feed.is_running().await, "nothing runs before a subscriber");

    let mut rx = feed.subscribe().await.expect("subscribed");
    assert!(feed.is_running().await);
    log.failures.store(3, Ordering::SeqCst);
    let mut journey = Journey::new(CustomerNo::new(1));
    let saved = journey.commit(&*store, Step::SavePlan, &[]).await;
    let got = next_of(&mut rx, journey.id).await;
    assert_eq!(*got, saved[0], "delivered once the store answers again");
    assert_eq!(
        log.failures.load(Ordering::SeqCst),
        0,
        "every failure was retried"
    );

    // The last subscriber leaves: the tail stops within a read (one second).
    drop(rx);
    let stopped = tokio::time::timeout(WAIT, async {
        while feed.is_running().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(stopped.is_ok(), "the tail stops without subscribers");

    // A new subscriber starts it again, at the end of the log.
    let mut rx = feed.subscribe().await.expect("subscribed again");
    let requested = journey.commit(&*store, Step::RequestDocument, &[]).await;
    let got = next_of(&mut rx, journey.id).await;
    assert_eq!(*got, requested[0]);

    shutdown.send_replace(true);
    feed.stop().await;
    assert!(matches!(rx.recv().await, Err(RecvError::Closed)));
    assert!(matches!(feed.subscribe().await, Err(EngineError::Stopping)));
}
