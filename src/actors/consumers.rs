//! Event-log consumers: the Notifier (알림톡-style message per status change) and the
//! MyPage projector (내보험 조회 read model). Each reads its consumer group, handles a
//! batch, acknowledges what succeeded, leaves failures pending (claimed again after an
//! idle time, by this or another process) and dead-letters an entry that failed too
//! often. Handlers are idempotent on the event id, so redelivery never doubles an effect.

use crate::domain::customer::Customer;
use crate::domain::enrollment::{Enrollment, EnrollmentId, Event, IdHash, PaymentFailure};
use crate::domain::text::Text;
use crate::store::{Alarm, Delivery, EventEnvelope, MyPageView, Store, StoreResult};
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

/// [`ConsumerConfig::linger`] by default: none, read again at once. Lingering 30 ms made
/// batches of several hundred entries and cut Redis commands per enrollment (59.5 instead
/// of 71), but each such batch's alarm and view scripts held Redis for 2–5 ms, and
/// every append waited behind them: on `scripts/load-redis.sh` 30 ms for both consumers
/// gave 2,265 and 2,164 enrollments/s against 2,540 and 2,546 without. Under load the
/// batches still grow by themselves: a read takes what came in while the last batch was
/// handled. The MyPage projector gains from lingering once its views are written in
/// short scripts (the Redis store writes at most 64 per call): `ezenroll serve` gives it
/// 20 ms ([`EngineConfig::projector_linger`](super::engine::EngineConfig::projector_linger)).
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
/// trips overlap instead of queuing behind the others' (one at a time, a consumer fell
/// behind a busy Redis at a few hundred events a second). `handle` returns one result per
/// delivery it was given; the results come back in the batch's order.
pub async fn by_enrollment<'a, F, Fut>(batch: &'a [Delivery], handle: F) -> Vec<Result<(), String>>
where
    F: Fn(Vec<&'a Delivery>) -> Fut,
    Fut: std::future::Future<Output = Vec<Result<(), String>>>,
{
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut slot: std::collections::HashMap<
        crate::domain::enrollment::EnrollmentId,
        usize,
        crate::domain::enrollment::IdHash,
    > = std::collections::HashMap::with_capacity_and_hasher(batch.len(), Default::default());
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

/// Where alarms go after they are recorded (카카오 알림톡, SMS...). Recording in the store
/// happens first and only once per event, so a channel sees each alarm at most once.
#[async_trait]
pub trait AlarmChannel: Send + Sync + 'static {
    async fn deliver(&self, alarm: &Alarm, customer: Option<&Customer>) -> Result<(), String>;
}

/// The default channel: the alarm is recorded in the store (see `GET /alarms`) and
/// logged at debug level (`RUST_LOG=ezenroll::alarm=debug`). Not at info: the text names
/// the customer, which does not belong in an operator's log by default, and at one line
/// per event the lines were 5% of the server's CPU on the enrollment load.
pub struct StoreChannel;

#[async_trait]
impl AlarmChannel for StoreChannel {
    async fn deliver(&self, alarm: &Alarm, customer: Option<&Customer>) -> Result<(), String> {
        tracing::debug!(
            target: "ezenroll::alarm",
            customer = %alarm.customer_no,
            phone = customer.map(|c| c.mobile_phone.masked()).unwrap_or_default(),
            status = %alarm.status,
            "{}",
            alarm.message
        );
        Ok(())
    }
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

pub async fn start_notifier(
    store: Arc<dyn Store>,
    config: ConsumerConfig,
    instance: &str,
    channel: Arc<dyn AlarmChannel>,
) -> StoreResult<ConsumerHandle> {
    let handler = Arc::new(Notifier {
        store: Arc::clone(&store),
        channel,
    });
    start(
        store,
        NOTIFIER_GROUP,
        format!("{instance}-notifier"),
        handler,
        config,
    )
    .await
}

pub async fn start_projector(
    store: Arc<dyn Store>,
    config: ConsumerConfig,
    instance: &str,
) -> StoreResult<ConsumerHandle> {
    let handler = Arc::new(MyPageProjector {
        store: Arc::clone(&store),
    });
    start(
        store,
        PROJECTOR_GROUP,
        format!("{instance}-mypage"),
        handler,
        config,
    )
    .await
}

/// 알림: renders a message per event, records it once per event id, then delivers it.
/// Customer lookups go to the store, which keeps them at hand (the memory store holds
/// them; the Redis store caches them, as a record never changes once registered).
pub struct Notifier {
    store: Arc<dyn Store>,
    channel: Arc<dyn AlarmChannel>,
}

impl Notifier {
    async fn customer(
        &self,
        no: crate::domain::enrollment::CustomerNo,
    ) -> Result<Option<Customer>, String> {
        self.store.customer(no).await.map_err(|e| e.to_string())
    }
}

impl Notifier {
    fn alarm(event: &EventEnvelope, customer: Option<&Customer>) -> Alarm {
        Alarm {
            event_id: event.id,
            enrollment_id: event.enrollment_id,
            customer_no: event.customer_no,
            status: event.event.status_after(None),
            message: render_alarm(event, customer),
            // At the precision the stores keep (the Redis one keeps microseconds).
            sent_at: crate::domain::time::now(),
        }
    }
}

#[async_trait]
impl EventHandler for Notifier {
    /// Customers looked up at the same time, every alarm recorded in one go, then the new
    /// ones handed to the channel in log order.
    async fn handle_batch(&self, batch: &[Delivery]) -> Vec<Result<(), String>> {
        let mut wanted: Vec<crate::domain::enrollment::CustomerNo> =
            batch.iter().map(|d| d.envelope.customer_no).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let found =
            futures_util::future::join_all(wanted.iter().map(|&no| self.customer(no))).await;
        let customers: std::collections::HashMap<_, _, IdHash> =
            wanted.into_iter().zip(found).collect();
        let mut results: Vec<Result<(), String>> = Vec::with_capacity(batch.len());
        let mut alarms = Vec::with_capacity(batch.len());
        let mut of_alarm = Vec::with_capacity(batch.len());
        for (i, delivery) in batch.iter().enumerate() {
            let event = &delivery.envelope;
            match customers.get(&event.customer_no) {
                Some(Ok(customer)) => {
                    alarms.push(Arc::new(Self::alarm(event, customer.as_ref())));
                    of_alarm.push(i);
                    results.push(Ok(()));
                }
                Some(Err(e)) => results.push(Err(e.clone())),
                None => results.push(Err("the customer lookup went missing".to_owned())),
            }
        }
        let new = match self.store.record_alarms(&alarms).await {
            Ok(new) => new,
            Err(e) => {
                let failed = e.to_string();
                for &i in &of_alarm {
                    results[i] = Err(failed.clone());
                }
                return results;
            }
        };
        for ((alarm, &i), new) in alarms.iter().zip(&of_alarm).zip(new) {
            if new {
                let customer = customers
                    .get(&alarm.customer_no)
                    .and_then(|c| c.as_ref().ok())
                    .and_then(|c| c.as_ref());
                results[i] = self.channel.deliver(alarm, customer).await;
            }
        }
        results
    }

    async fn handle(&self, event: &EventEnvelope) -> Result<(), String> {
        let customer = self.customer(event.customer_no).await?;
        let alarm = Self::alarm(event, customer.as_ref());
        if self
            .store
            .record_alarm(&alarm)
            .await
            .map_err(|e| e.to_string())?
        {
            self.channel.deliver(&alarm, customer.as_ref()).await?;
        }
        Ok(())
    }
}

/// The alimtalk text for one event.
pub fn render_alarm(event: &EventEnvelope, customer: Option<&Customer>) -> String {
    let name = customer.map_or("고객", |c| c.name.as_str());
    // Pushed piece by piece (see domain::text) into a reused buffer; the message is kept
    // with the alarm, so it gets an exact-size copy.
    Text::exact(|out| render_alarm_into(out, name, event))
}

fn render_alarm_into(out: &mut Text, name: &str, event: &EventEnvelope) {
    out.s("[이지보험] ").s(name).s("님, ");
    match &event.event {
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
    out.s("\n▶ 가입번호: ").s(event
        .enrollment_id
        .as_uuid()
        .hyphenated()
        .encode_lower(&mut id));
}

/// 내보험 조회: projects the enrollment's current snapshot into its view. Reading the
/// snapshot (not folding the event) keeps the view right whatever order events of one
/// enrollment are handled in by several consumers; the version check keeps it monotonic.
pub struct MyPageProjector {
    store: Arc<dyn Store>,
}

#[async_trait]
impl EventHandler for MyPageProjector {
    async fn handle(&self, event: &EventEnvelope) -> Result<(), String> {
        self.project(event.enrollment_id).await
    }

    /// Several events of one enrollment in a batch need one state: the enrollment's
    /// newest, read from the store for every enrollment of the batch in one go
    /// ([`EnrollmentStore::load_many`]: overlapping round trips on Redis, no futures at
    /// all in memory), its version check keeping the view monotonic. An entry that
    /// carries the state its append left (written to Redis by a build before 2026-12-03)
    /// saves that read when it is the newest of its enrollment in the batch. Every view is
    /// written in one go.
    ///
    /// [`EnrollmentStore::load_many`]: crate::store::EnrollmentStore::load_many
    async fn handle_batch(&self, batch: &[Delivery]) -> Vec<Result<(), String>> {
        /// What an enrollment's view is made from: a carried state, or the store.
        enum Source {
            Carried(MyPageView),
            /// No carried state as new as this version: read the enrollment.
            Store(u64),
        }
        let mut sources: std::collections::HashMap<EnrollmentId, Source, IdHash> =
            std::collections::HashMap::with_capacity_and_hasher(batch.len(), IdHash::default());
        for delivery in batch {
            let id = delivery.envelope.enrollment_id;
            let version = delivery.envelope.version;
            let newest = match sources.get(&id) {
                Some(Source::Carried(view)) => view.version,
                Some(Source::Store(v)) => *v,
                None => 0,
            };
            if newest >= version {
                continue;
            }
            // A state that does not decode is read from the store instead.
            let source = match delivery.state.as_ref().and_then(|s| s.decode().ok()) {
                Some(state) => Source::Carried(Self::view(version, &state)),
                None => Source::Store(version),
            };
            sources.insert(id, source);
        }
        let all_failed = |reason: String| batch.iter().map(|_| Err(reason.clone())).collect();
        let mut views = Vec::with_capacity(sources.len());
        let mut ids = Vec::new();
        for (id, source) in sources {
            match source {
                Source::Carried(view) => views.push(view),
                Source::Store(_) => ids.push(id),
            }
        }
        let mut missing: Vec<EnrollmentId> = Vec::new();
        if !ids.is_empty() {
            let loaded = match self.store.load_many(&ids).await {
                Ok(loaded) => loaded,
                Err(e) => return all_failed(e.to_string()),
            };
            for (&id, found) in ids.iter().zip(loaded) {
                match found {
                    Some((version, state)) => views.push(Self::view(version, &state)),
                    None => missing.push(id),
                }
            }
        }
        // Nothing is known written on failure: every event stays pending for another try.
        if let Err(e) = self.store.upsert_views(&views).await {
            return all_failed(e.to_string());
        }
        batch
            .iter()
            .map(|d| {
                let id = d.envelope.enrollment_id;
                if missing.contains(&id) {
                    Err(format!("enrollment {id} has events but no snapshot"))
                } else {
                    Ok(())
                }
            })
            .collect()
    }
}

impl MyPageProjector {
    async fn project(&self, id: EnrollmentId) -> Result<(), String> {
        let view = self.view_of(id).await?;
        self.store
            .upsert_view(&view)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// The view of an enrollment as the store holds it now.
    async fn view_of(&self, id: EnrollmentId) -> Result<MyPageView, String> {
        match self.store.load(id).await.map_err(|e| e.to_string())? {
            Some((version, state)) => Ok(Self::view(version, &state)),
            None => Err(format!("enrollment {id} has events but no snapshot")),
        }
    }

    fn view(version: u64, state: &Enrollment) -> MyPageView {
        MyPageView {
            enrollment_id: state.id,
            customer_no: state.customer_no,
            product_code: state.plan.product_code.clone(),
            product_version: state.plan.product_version,
            product_name: state.plan.product_name.clone(),
            status: state.status,
            sum_insured: state.plan.sum_insured,
            installment: state.plan.quote.installment,
            payment_cycle: state.plan.payment_cycle,
            coverage_period: state.plan.coverage_period,
            payment_period: state.plan.payment_period.get(),
            contract_no: state.contract_no.clone(),
            version,
            updated_at: state.updated_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::Catalog;
    use crate::domain::customer::{BirthDate, CustomerName, Gender, Insured, MobilePhone};
    use crate::domain::enrollment::{CustomerNo, PaymentMethod, PlanTerms};
    use crate::domain::money::Won;
    use crate::domain::period::{CoveragePeriod, PaymentCycle, Years};
    use crate::domain::premium::QuoteInput;
    use chrono::{NaiveDate, Utc};

    const ID: &str = "0190f5a4-7c2e-7d3b-9a41-5e6f7a8b9c0d";

    fn plan() -> Arc<PlanTerms> {
        let catalog = Catalog::demo();
        let product = catalog.latest("EZ-TERM").expect("a demo product");
        let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("a date");
        let input = QuoteInput {
            insured: Insured {
                birth_date: BirthDate::new(date(1986, 5, 1)).expect("a birth date"),
                gender: Gender::Male,
            },
            quote_date: date(2026, 11, 24),
            sum_insured: Won::new(100_000_000),
            coverage: CoveragePeriod::Years(Years::new(20).expect("years")),
            payment_period: Years::new(20).expect("years"),
            cycle: PaymentCycle::Monthly,
        };
        Arc::new(PlanTerms::quote(product, &input).expect("an acceptable quote"))
    }

    /// Appends one event at `version` with `state` to a memory store; the envelope.
    async fn append_one(
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
            })
            .await
            .expect("appended");
        envelope
    }

    fn alarm_text(event: Event, customer: Option<&Customer>) -> String {
        let id = EnrollmentId::parse(ID).expect("an id");
        let envelope = EventEnvelope::new(event, id, CustomerNo::new(7), 1, Utc::now());
        render_alarm(&envelope, customer)
    }

    /// Every event's alimtalk text, word for word, with and without the customer's name.
    #[test]
    fn every_event_has_its_message() {
        let customer = Customer {
            customer_no: CustomerNo::new(7),
            name: CustomerName::parse("김이지").expect("a name"),
            birth_date: BirthDate::parse("1986-05-01").expect("a birth date"),
            gender: Gender::Male,
            mobile_phone: MobilePhone::parse("010-1234-5678").expect("a phone"),
            registered_at: Utc::now(),
        };
        let plan = plan();
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

    /// The projector takes each enrollment's newest state in the batch: a carried one
    /// when the newest entry carries it, else the stored one (an older carried state
    /// would leave the view behind for good).
    #[tokio::test]
    async fn the_projector_projects_the_newest_state_of_a_batch() {
        use crate::domain::enrollment::Status;
        use crate::store::memory::MemoryStore;
        use crate::store::{Append, CarriedState, EnrollmentStore, ReadModelStore, codec};

        let store = Arc::new(MemoryStore::new(1));
        let id = EnrollmentId::parse(ID).expect("an id");
        let customer = CustomerNo::new(7);
        let now = Utc::now();
        let events = [
            Event::PlanSaved {
                customer_no: customer,
                plan: plan(),
                expires_at: now + chrono::TimeDelta::days(30),
            },
            Event::DocumentRequested { plan_revision: 1 },
        ];
        let mut state: Option<Enrollment> = None;
        let mut deliveries = Vec::new();
        for (i, event) in events.into_iter().enumerate() {
            let version = i as u64 + 1;
            let next = crate::domain::enrollment::apply(state.take(), id, &event, now)
                .map(Arc::new)
                .expect("a state");
            let envelope = append_one(&store, &next, version, event, now).await;
            deliveries.push(Delivery {
                partition: 0,
                entry_id: version.to_string(),
                envelope,
                deliveries: 1,
                state: Some(CarriedState::new(
                    codec::encode_snapshot(&next).expect("encoded"),
                )),
            });
            state = Some((*next).clone());
        }
        let projector = MyPageProjector {
            store: Arc::clone(&store) as Arc<dyn Store>,
        };
        let view = |store: Arc<MemoryStore>| async move {
            store
                .views(crate::store::ViewFilter::default(), 10)
                .await
                .expect("views")
        };

        // The newest entry carries nothing (claimed from a dead consumer): read back.
        let mut batch = deliveries.clone();
        batch[1].state = None;
        let results = projector.handle_batch(&batch).await;
        assert!(results.iter().all(Result::is_ok));
        let views = view(Arc::clone(&store)).await;
        assert_eq!(views.len(), 1);
        assert_eq!(
            (views[0].version, views[0].status),
            (2, Status::DocumentRequested)
        );

        // Carried states, the newest first: the newest wins, though the store it would
        // read holds only version 1.
        let behind = Arc::new(MemoryStore::new(1));
        let first = Arc::new(
            deliveries[0]
                .state
                .as_ref()
                .expect("carried")
                .decode()
                .expect("decodes"),
        );
        behind
            .append(Append {
                id,
                expected_version: 0,
                state: &first,
                events: std::slice::from_ref(&deliveries[0].envelope),
                timers: &[],
                document: None,
            })
            .await
            .expect("appended");
        let projector = MyPageProjector {
            store: Arc::clone(&behind) as Arc<dyn Store>,
        };
        let batch = [deliveries[1].clone(), deliveries[0].clone()];
        assert!(
            projector
                .handle_batch(&batch)
                .await
                .iter()
                .all(Result::is_ok)
        );
        let views = view(behind).await;
        assert_eq!(
            (views[0].version, views[0].status),
            (2, Status::DocumentRequested),
            "from the carried state"
        );
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
            plan: plan(),
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
