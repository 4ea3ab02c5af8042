//! The event-log consumer loop: reads its consumer group, hands each batch to an
//! [`EventHandler`], acknowledges what succeeded, leaves failures pending (claimed again
//! after an idle time, by this or another process) and dead-letters an entry that failed
//! too often. Handlers are idempotent on the event id, so redelivery never doubles an
//! effect. The handlers themselves are the [`Notifier`](super::notifier::Notifier) and the
//! [`MyPageProjector`](super::projector::MyPageProjector).

use crate::domain::ids::{EnrollmentId, IdHash};
use crate::store::{Delivery, EventEnvelope, Store, StoreResult};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub const NOTIFIER_GROUP: &str = "notifier";
pub const PROJECTOR_GROUP: &str = "mypage";

#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Entries read per call.
    pub batch: usize,
    /// How long one read waits for new entries.
    pub block: Duration,
    /// Entries pending this long (their consumer died or failed) are taken over.
    pub claim_idle: Duration,
    /// How often to look for such entries.
    pub claim_every: Duration,
    /// Deliveries after which a failing entry goes to the dead-letter list.
    pub max_deliveries: u32,
    /// On stop, how long the consumer may keep handling what is already in the log.
    pub flush_timeout: Duration,
    /// After a batch smaller than `batch`, how long entries may gather before the next
    /// read (zero: read again at once). Larger batches cost fewer round trips, and MyPage
    /// writes one view for several events of an enrollment; alarms and views lag by up to
    /// this much more.
    pub linger: Duration,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            batch: 1024,
            block: Duration::from_millis(200),
            claim_idle: Duration::from_secs(30),
            claim_every: Duration::from_secs(5),
            max_deliveries: 5,
            flush_timeout: Duration::from_secs(5),
            linger: DEFAULT_LINGER,
        }
    }
}

/// [`ConsumerConfig::linger`] by default: none, read again at once. A lingering batch is
/// larger, and on Redis its alarm and view scripts hold the server longer, delaying every
/// append behind them; under load batches grow by themselves anyway (a read takes what came
/// in while the last batch was handled). The MyPage projector, whose views are written in
/// short scripts, lingers on its own setting
/// ([`EngineConfig::projector_linger`](super::config::EngineConfig::projector_linger)).
pub const DEFAULT_LINGER: Duration = Duration::ZERO;

/// Handles events; `Err` leaves an event pending for another delivery.
#[async_trait]
pub trait EventHandler: Send + Sync + 'static {
    async fn handle(&self, event: &EventEnvelope) -> Result<(), String>;

    /// A whole batch, one result per delivery in order: the events of one enrollment one
    /// after another, different enrollments at the same time (see [`by_enrollment`]).
    /// Override to share work between events of the same enrollment.
    async fn handle_batch(&self, batch: &[Delivery]) -> Vec<Result<(), String>> {
        by_enrollment(batch, |deliveries| async move {
            let mut results = Vec::with_capacity(deliveries.len());
            for delivery in deliveries {
                results.push(self.handle(&delivery.envelope).await);
            }
            results
        })
        .await
    }
}

/// Runs `handle` once per enrollment of the batch, given that enrollment's deliveries in
/// log order, all enrollments at the same time: with a remote store each one's round
/// trips overlap instead of queuing behind the others'. `handle` returns one result per
/// delivery it was given; the results come back in the batch's order.
pub async fn by_enrollment<'a, F, Fut>(batch: &'a [Delivery], handle: F) -> Vec<Result<(), String>>
where
    F: Fn(Vec<&'a Delivery>) -> Fut,
    Fut: std::future::Future<Output = Vec<Result<(), String>>>,
{
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut slot: std::collections::HashMap<EnrollmentId, usize, IdHash> =
        std::collections::HashMap::with_capacity_and_hasher(batch.len(), Default::default());
    for (i, delivery) in batch.iter().enumerate() {
        let g = *slot
            .entry(delivery.envelope.enrollment_id)
            .or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
        groups[g].push(i);
    }
    let runs = groups.iter().map(|indexes| {
        let deliveries = indexes.iter().map(|&i| &batch[i]).collect();
        handle(deliveries)
    });
    let done = futures_util::future::join_all(runs).await;
    let mut results: Vec<Result<(), String>> = vec![Ok(()); batch.len()];
    for (indexes, outcomes) in groups.iter().zip(done) {
        let mut outcomes = outcomes.into_iter();
        for &i in indexes {
            results[i] = outcomes
                .next()
                .unwrap_or_else(|| Err("the handler gave no result for this event".to_owned()));
        }
    }
    results
}

pub struct ConsumerHandle {
    name: String,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ConsumerHandle {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Tells the consumer to stop without waiting for it: several consumers then finish
    /// their last reads (up to `block` each) at the same time. [`stop`](Self::stop) waits.
    pub fn signal_stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Stops after handling what the log holds now (up to the flush timeout) and
    /// acknowledging it.
    pub async fn stop(self) {
        self.signal_stop();
        let _ = self.task.await;
    }
}

/// Starts a consumer of `group` named `consumer` (unique per process).
pub async fn start(
    store: Arc<dyn Store>,
    group: &'static str,
    consumer: String,
    handler: Arc<dyn EventHandler>,
    config: ConsumerConfig,
) -> StoreResult<ConsumerHandle> {
    store.ensure_group(group).await?;
    let (stop, stopped) = watch::channel(false);
    let name = consumer.clone();
    let task = tokio::spawn(run(store, group, consumer, handler, config, stopped));
    Ok(ConsumerHandle { name, stop, task })
}

async fn run(
    store: Arc<dyn Store>,
    group: &'static str,
    consumer: String,
    handler: Arc<dyn EventHandler>,
    config: ConsumerConfig,
    mut stopped: watch::Receiver<bool>,
) {
    let mut last_claim = Instant::now();
    loop {
        if *stopped.borrow() {
            break;
        }
        if last_claim.elapsed() >= config.claim_every {
            last_claim = Instant::now();
            match store
                .claim_stale(group, &consumer, config.claim_idle, config.batch)
                .await
            {
                Ok(stale) if !stale.is_empty() => {
                    tracing::info!(
                        group,
                        consumer,
                        count = stale.len(),
                        "took over stale entries"
                    );
                    process(&store, group, &handler, &config, stale).await;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(group, error = %e, "cannot claim stale entries"),
            }
        }
        let read = store.read_group(group, &consumer, config.batch, config.block);
        tokio::pin!(read);
        let (read, stopping) = tokio::select! {
            // Stopped (or the handle is gone) while a read is out. A read already sent may
            // be answered with entries Redis has delivered to this consumer (they are in
            // its pending list now): dropping the answer would leave them to another
            // consumer's claim after `claim_idle`, past this shutdown. Wait for it (at
            // most `block`), handle it, then stop.
            _ = stopped.changed() => (read.await, true),
            read = &mut read => (read, false),
        };
        match read {
            Ok(batch) => {
                let full = batch.len() >= config.batch;
                process(&store, group, &handler, &config, batch).await;
                if !full && !stopping && !config.linger.is_zero() {
                    tokio::select! {
                        _ = stopped.changed() => {}
                        _ = tokio::time::sleep(config.linger) => {}
                    }
                }
            }
            Err(e) if stopping => {
                tracing::warn!(group, error = %e, "cannot read the event log while stopping");
            }
            Err(e) => {
                tracing::warn!(group, error = %e, "cannot read the event log; retrying");
                tokio::select! {
                    _ = stopped.changed() => break,
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
        }
        if stopping {
            break;
        }
    }
    flush(&store, group, &consumer, &handler, &config).await;
}

/// On the way out, handles what the log already holds (this consumer's share of it), so a
/// server stopped right after its last request leaves the read model and the alarms
/// complete; on the memory store nothing else ever would. Bounded by `flush_timeout`;
/// whatever is left is picked up by the next consumer of the group.
async fn flush(
    store: &Arc<dyn Store>,
    group: &'static str,
    consumer: &str,
    handler: &Arc<dyn EventHandler>,
    config: &ConsumerConfig,
) {
    let deadline = Instant::now() + config.flush_timeout;
    let mut handled = 0usize;
    while Instant::now() < deadline {
        match store
            .read_group(group, consumer, config.batch, Duration::ZERO)
            .await
        {
            Ok(batch) if batch.is_empty() => break,
            Ok(batch) => {
                handled += batch.len();
                process(store, group, handler, config, batch).await;
            }
            Err(e) => {
                tracing::warn!(group, error = %e, "cannot flush the event log before stopping");
                break;
            }
        }
    }
    if handled > 0 {
        tracing::info!(
            group,
            consumer,
            handled,
            "handled the rest of the log before stopping"
        );
    }
}

async fn process(
    store: &Arc<dyn Store>,
    group: &'static str,
    handler: &Arc<dyn EventHandler>,
    config: &ConsumerConfig,
    batch: Vec<Delivery>,
) {
    if batch.is_empty() {
        return;
    }
    let mut done = Vec::with_capacity(batch.len());
    let results = handler.handle_batch(&batch).await;
    for (delivery, result) in batch.iter().zip(results) {
        match result {
            Ok(()) => done.push((delivery.partition, delivery.entry_id.clone())),
            Err(reason) if delivery.deliveries >= config.max_deliveries => {
                tracing::error!(group, event = %delivery.envelope.id, %reason, "dead-lettering an event that keeps failing");
                if let Err(e) = store.dead_letter(group, delivery, &reason).await {
                    tracing::warn!(group, error = %e, "cannot dead-letter");
                }
            }
            Err(reason) => {
                tracing::warn!(group, event = %delivery.envelope.id, %reason, "event handling failed; it will be redelivered");
            }
        }
    }
    if let Err(e) = store.ack(group, &done).await {
        // Unacknowledged entries are redelivered; the handlers are idempotent.
        tracing::warn!(group, error = %e, "cannot acknowledge");
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::plan::demo_plan;

    use crate::domain::enrollment::{CustomerNo, Enrollment, Event};

    use chrono::Utc;

    const ID: &str = "0190f5a4-7c2e-7d3b-9a41-5e6f7a8b9c0d";

    /// Appends one event at `version` with `state` to a memory store; the envelope.
    pub(crate) async fn append_one(
        store: &crate::store::memory::MemoryStore,
        state: &Arc<Enrollment>,
        version: u64,
        event: Event,
        now: chrono::DateTime<Utc>,
    ) -> Arc<EventEnvelope> {
        use crate::store::{Append, EnrollmentStore};
        let envelope = Arc::new(EventEnvelope::new(
            event,
            state.id,
            state.customer_no,
            version,
            now,
        ));
        store
            .append(Append {
                id: state.id,
                expected_version: version - 1,
                state,
                events: std::slice::from_ref(&envelope),
                timers: &[],
                document: None,
                fence: None,
            })
            .await
            .expect("appended");
        envelope
    }

    /// After a read that was not full, a consumer lets events gather for `linger`: the
    /// events appended one by one meanwhile come in one batch (without it, the blocked
    /// read wakes for each). Stopping while it lingers stops at once.
    #[tokio::test]
    async fn a_lingering_consumer_takes_what_gathered_in_one_batch() {
        use crate::store::memory::MemoryStore;
        use std::sync::Mutex;

        #[derive(Default)]
        struct Batches(Mutex<Vec<usize>>);
        #[async_trait]
        impl EventHandler for Batches {
            async fn handle(&self, _: &EventEnvelope) -> Result<(), String> {
                Ok(())
            }
            async fn handle_batch(&self, batch: &[Delivery]) -> Vec<Result<(), String>> {
                if let Ok(mut sizes) = self.0.lock() {
                    sizes.push(batch.len());
                }
                batch.iter().map(|_| Ok(())).collect()
            }
        }
        let seen = |b: &Batches| b.0.lock().map(|s| s.clone()).unwrap_or_default();

        let store = Arc::new(MemoryStore::new(1));
        let batches = Arc::new(Batches::default());
        let consumer = start(
            Arc::clone(&store) as Arc<dyn Store>,
            "lingering",
            "lingering-1".to_owned(),
            Arc::clone(&batches) as Arc<dyn EventHandler>,
            ConsumerConfig {
                block: Duration::from_millis(50),
                linger: Duration::from_millis(400),
                ..ConsumerConfig::default()
            },
        )
        .await
        .expect("started");
        let id = EnrollmentId::parse(ID).expect("an id");
        let customer = CustomerNo::new(7);
        let now = Utc::now();
        let saved = Event::PlanSaved {
            customer_no: customer,
            plan: demo_plan(),
            expires_at: now + chrono::TimeDelta::days(30),
        };
        let state = crate::domain::enrollment::apply(None, id, &saved, now)
            .map(Arc::new)
            .expect("a state");
        append_one(&store, &state, 1, saved, now).await;
        let waited = Instant::now();
        while seen(&batches).is_empty() && waited.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for version in 2..=4 {
            let event = Event::DocumentRequested { plan_revision: 1 };
            append_one(&store, &state, version, event, now).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        while seen(&batches).iter().sum::<usize>() < 4 && waited.elapsed() < Duration::from_secs(5)
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(seen(&batches), [1, 3]);

        let stopping = Instant::now();
        consumer.stop().await;
        assert!(
            stopping.elapsed() < Duration::from_millis(300),
            "{:?}",
            stopping.elapsed()
        );
    }
}
