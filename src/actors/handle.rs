//! [`EngineHandle`]: the typed async methods for every command and query that `serve` and
//! the HTTP layer call, and what they take and answer ([`PlanRequest`],
//! [`EnrollmentSnapshot`]). Somewhat over 500 lines: it is one method per command and
//! query of the engine, and splitting the handle's `impl` would scatter that one list.

use super::config::{EngineConfig, chrono_of};
use super::consumers::ConsumerHandle;
use super::context::{Deps, EngineStats, load_catalog};
use super::document::DocumentIssuer;
use super::enrollment::{Op, Outcome};
use super::error::EngineError;
use super::feed::{EventFeed, FeedEvent};
use super::registry::Registry;
use crate::domain::catalog::Catalog;
use crate::domain::customer::{Customer, NewCustomer};
use crate::domain::enrollment::{
    Command, CustomerNo, DocumentRef, DomainError, Enrollment, EnrollmentId, Event, PaymentFailure,
    PaymentMethod, PlanTerms, ProductDocument,
};
use crate::domain::money::Won;
use crate::domain::period::{CoveragePeriod, PaymentCycle, Years};
use crate::domain::premium::{PricedProduct, QuoteInput};
use crate::domain::product::ProductSpec;
use crate::store::{
    Alarm, EventEnvelope, MyPageView, Store, StoreError, ViewFilter, ViewPage, ViewQuery,
};
use actix::Addr;
use actix_rt::Arbiter;
use chrono::{DateTime, Utc};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// What an [`EngineHandle`] holds; the engine's start-up fills it.
pub(super) struct Inner {
    pub(super) deps: Arc<Deps>,
    pub(super) registry: Arc<Registry>,
    pub(super) issuer: Addr<DocumentIssuer>,
    pub(super) arbiters: Mutex<Vec<Arbiter>>,
    pub(super) shutdown: watch::Sender<bool>,
    pub(super) tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    pub(super) consumers: Mutex<Vec<ConsumerHandle>>,
    /// Product versions are numbered by the catalog: one writer at a time per process.
    pub(super) product_writes: tokio::sync::Mutex<()>,
    pub(super) feed: Arc<EventFeed>,
}

/// A plan as a customer asks for it: the insured comes from the customer record and the
/// quote is dated today (in Korea).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanRequest<'a> {
    pub customer_no: CustomerNo,
    pub product_code: &'a str,
    pub sum_insured: Won,
    pub coverage_period: CoveragePeriod,
    pub payment_period: Years,
    pub payment_cycle: PaymentCycle,
}

/// The enrollment and its version after a command.
#[derive(Debug, Clone)]
pub struct EnrollmentSnapshot {
    pub version: u64,
    pub state: Arc<Enrollment>,
    pub events: Vec<Arc<EventEnvelope>>,
    /// The command was not run now: the same request ran it before (its first answer was
    /// lost), and this is the enrollment as it is now.
    pub recovered: bool,
}

impl From<Outcome> for EnrollmentSnapshot {
    fn from(o: Outcome) -> Self {
        EnrollmentSnapshot {
            version: o.version,
            state: o.state,
            events: o.events,
            recovered: false,
        }
    }
}

pub use crate::domain::time::korean_date as korean_today;

/// A cheap clone; every method is safe to call from any task.
#[derive(Clone)]
pub struct EngineHandle {
    pub(super) inner: Arc<Inner>,
}

impl EngineHandle {
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.deps.store
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.deps.config
    }

    /// The current catalog snapshot; quotes price against it without any actor.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.inner.deps.catalog()
    }

    pub fn stats(&self) -> &EngineStats {
        &self.inner.deps.stats
    }

    pub fn payment_stats(&self) -> &Arc<super::payment::GatewayStats> {
        self.inner.deps.payment.stats()
    }

    /// Which enrollments this copy owns, and where the others' are.
    pub fn ownership(&self) -> &Arc<super::ownership::Ownership> {
        &self.inner.deps.ownership
    }

    /// Stops taking work and hands every partition this copy owns to the other copies
    /// (the first step of a graceful stop; nothing to do in a single process). Requests
    /// still arriving are sent on to the new owners.
    pub async fn hand_over(&self) {
        super::membership::hand_over_all(self.store(), self.ownership(), &self.inner.registry)
            .await;
    }

    /// Live enrollment actors.
    pub fn active_actors(&self) -> usize {
        self.inner.registry.active()
    }

    /// Passivates every actor idle for at least `idle` now (instead of waiting for the
    /// sweeper); returns how many.
    pub fn passivate_idle(&self, idle: Duration) -> usize {
        let n = self.inner.registry.passivate_idle(idle);
        self.stats()
            .passivated
            .fetch_add(n as u64, Ordering::Relaxed);
        n
    }

    // ---- products

    /// Registers a product or a new version of one: stored first, then visible to quotes.
    pub async fn register_product(
        &self,
        spec: ProductSpec,
    ) -> Result<Arc<PricedProduct>, EngineError> {
        let _one_writer = self.inner.product_writes.lock().await;
        let mut next = (*self.catalog()).clone();
        let priced = next.register(spec)?;
        let stored = priced.product().spec().clone();
        match self.store().put_product(&stored).await {
            Ok(()) => {
                self.inner.deps.set_catalog(next);
                Ok(priced)
            }
            Err(e @ StoreError::Conflict { .. }) => {
                // Another process registered this version meanwhile: catch up, refuse.
                let fresh = load_catalog(self.store().as_ref(), false).await?;
                self.inner.deps.set_catalog(fresh);
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    // ---- customers

    pub async fn register_customer(&self, new: NewCustomer) -> Result<Customer, EngineError> {
        let now = crate::domain::time::now();
        born_by(&new, now)?;
        Ok(self.store().create_customer(new, now).await?)
    }

    /// [`register_customer`](Self::register_customer) once per request (see
    /// [`CustomerStore::create_customer_for`](crate::store::CustomerStore::create_customer_for)).
    pub async fn register_customer_for(
        &self,
        request: &str,
        new: NewCustomer,
        keep: std::time::Duration,
    ) -> Result<Customer, EngineError> {
        let now = crate::domain::time::now();
        born_by(&new, now)?;
        Ok(self
            .store()
            .create_customer_for(request, new, now, keep)
            .await?)
    }

    pub async fn customer(&self, no: CustomerNo) -> Result<Customer, EngineError> {
        self.store()
            .customer(no)
            .await?
            .ok_or(EngineError::NotFound("customer"))
    }

    // ---- enrollments

    async fn plan_terms(
        &self,
        request: &PlanRequest<'_>,
        now: DateTime<Utc>,
    ) -> Result<PlanTerms, EngineError> {
        let customer = self.customer(request.customer_no).await?;
        let mut catalog = self.catalog();
        if catalog.latest(request.product_code).is_none() {
            // Perhaps registered by another process moments ago.
            self.inner.deps.reload_catalog().await;
            catalog = self.catalog();
        }
        let product = catalog
            .latest(request.product_code)
            .ok_or(EngineError::NotFound("product"))?;
        let input = QuoteInput {
            insured: customer.insured(),
            quote_date: korean_today(now),
            sum_insured: request.sum_insured,
            coverage: request.coverage_period,
            payment_period: request.payment_period,
            cycle: request.payment_cycle,
        };
        PlanTerms::quote(product, &input).map_err(EngineError::Underwriting)
    }

    fn plan_expiry(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + chrono_of(self.config().plan_ttl)
    }

    async fn send(&self, id: EnrollmentId, op: Op) -> Result<EnrollmentSnapshot, EngineError> {
        match self.inner.registry.call(id, &self.inner.deps, op).await {
            Ok(outcome) => Ok(EnrollmentSnapshot::from(outcome)),
            Err(e @ EngineError::Domain(DomainError::IllegalTransition { .. })) => {
                match super::request::current() {
                    Some(request) => self.recover(id, &request).await?.ok_or(e),
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The answer to a request whose command its first try already ran (its answer was
    /// lost with the copy that ran it): the enrollment as it is now, or the payment
    /// failure it ended in; `None` if no event names the request.
    async fn recover(
        &self,
        id: EnrollmentId,
        request: &str,
    ) -> Result<Option<EnrollmentSnapshot>, EngineError> {
        let history = self.store().history(id).await?;
        let Some(first) = history
            .iter()
            .position(|e| e.request.as_deref() == Some(request))
        else {
            return Ok(None);
        };
        let current = self.enrollment(id).await?;
        tracing::info!(enrollment = %id, "answering a retried request from the events its first try made");
        let failed = history[first..].iter().rev().find_map(|e| match &e.event {
            Event::PaymentFailed { failure } => Some(failure.clone()),
            _ => None,
        });
        if current.state.status == crate::domain::enrollment::Status::PaymentFailed {
            match failed {
                // The first try's payment was cut off (its copy died) or the gateway was
                // busy: what the request asked for is still to do, so pay now. The
                // provider charges a reference at most once.
                Some(PaymentFailure::Unavailable { .. }) => {
                    let pay = Op::RetryPayment {
                        now: crate::domain::time::now(),
                    };
                    return self
                        .inner
                        .registry
                        .call(id, &self.inner.deps, pay)
                        .await
                        .map(|o| Some(EnrollmentSnapshot::from(o)));
                }
                // Declined: that was the first answer.
                Some(failure) => {
                    return Err(EngineError::Payment {
                        failure,
                        version: current.version,
                        state: current.state,
                    });
                }
                None => {}
            }
        }
        Ok(Some(EnrollmentSnapshot {
            recovered: true,
            ..current
        }))
    }

    /// 가입설계 저장: quotes and saves a new plan; the enrollment starts `Planned`.
    pub async fn save_plan(
        &self,
        request: PlanRequest<'_>,
    ) -> Result<EnrollmentSnapshot, EngineError> {
        // In a partition this copy owns, so the copy that took the request runs it.
        let id = self
            .inner
            .deps
            .ownership
            .new_local_id()
            .ok_or(EngineError::NotOwner { partition: 0 })?;
        self.save_plan_as(id, request).await
    }

    /// [`save_plan`](Self::save_plan) under an id the caller chose (one derived from an
    /// idempotency key). If that enrollment exists already the answer is
    /// `DomainError::AlreadyStarted` and nothing is written.
    pub async fn save_plan_as(
        &self,
        id: EnrollmentId,
        request: PlanRequest<'_>,
    ) -> Result<EnrollmentSnapshot, EngineError> {
        let now = crate::domain::time::now();
        let plan = self.plan_terms(&request, now).await?;
        let command = Command::SavePlan {
            id,
            customer_no: request.customer_no,
            plan: Arc::new(plan),
            now,
            expires_at: self.plan_expiry(now),
        };
        self.inner
            .registry
            .call_new(id, &self.inner.deps, Op::Execute(command))
            .await
            .map(EnrollmentSnapshot::from)
    }

    /// Re-saves the plan with a new quote (before a proposal).
    pub async fn resave_plan(
        &self,
        id: EnrollmentId,
        request: PlanRequest<'_>,
    ) -> Result<EnrollmentSnapshot, EngineError> {
        let current = self.enrollment(id).await?;
        if current.state.customer_no != request.customer_no {
            return Err(EngineError::Domain(DomainError::WrongCustomer {
                expected: current.state.customer_no,
                given: request.customer_no,
            }));
        }
        let now = crate::domain::time::now();
        let plan = self.plan_terms(&request, now).await?;
        let command = Command::ResavePlan {
            plan: Arc::new(plan),
            now,
            expires_at: self.plan_expiry(now),
        };
        self.send(id, Op::Execute(command)).await
    }

    /// 상품설명서 발행 요청: issued after the configured delay, also across restarts.
    pub async fn request_document(
        &self,
        id: EnrollmentId,
    ) -> Result<EnrollmentSnapshot, EngineError> {
        self.send(
            id,
            Op::Execute(Command::RequestDocument {
                now: crate::domain::time::now(),
            }),
        )
        .await
    }

    /// 청약: submits the proposal and pays the first premium. `Ok` is `Contracted`; a
    /// payment that did not go through is `Err(Payment)` with the enrollment left in
    /// `PaymentFailed` (retry allowed).
    pub async fn submit_proposal(
        &self,
        id: EnrollmentId,
        method: PaymentMethod,
    ) -> Result<EnrollmentSnapshot, EngineError> {
        self.send(
            id,
            Op::Propose {
                method,
                now: crate::domain::time::now(),
            },
        )
        .await
    }

    pub async fn retry_payment(&self, id: EnrollmentId) -> Result<EnrollmentSnapshot, EngineError> {
        self.send(
            id,
            Op::RetryPayment {
                now: crate::domain::time::now(),
            },
        )
        .await
    }

    /// 청약철회: the paid premium is refunded in the background, retried until confirmed.
    pub async fn request_withdrawal(
        &self,
        id: EnrollmentId,
    ) -> Result<EnrollmentSnapshot, EngineError> {
        self.send(
            id,
            Op::Withdraw {
                now: crate::domain::time::now(),
            },
        )
        .await
    }

    /// Expires a plan whose time has come (the durable timer does this by itself).
    pub async fn expire_plan(&self, id: EnrollmentId) -> Result<EnrollmentSnapshot, EngineError> {
        self.send(
            id,
            Op::Execute(Command::ExpirePlan {
                now: crate::domain::time::now(),
            }),
        )
        .await
    }

    /// The enrollment's current state: what its live actor last committed, read without
    /// a message when it has one (the common case: a client polling the enrollment it is
    /// working on), else from the actor, which is activated and loads it.
    /// On a copy that does not own the enrollment, it is read from the store (no actor
    /// is started there: its owner has it).
    pub async fn enrollment(&self, id: EnrollmentId) -> Result<EnrollmentSnapshot, EngineError> {
        if !self.inner.deps.ownership.owns(id) {
            let (version, state) = self
                .store()
                .load(id)
                .await?
                .ok_or(EngineError::NotFound("enrollment"))?;
            return Ok(EnrollmentSnapshot {
                version,
                state,
                events: Vec::new(),
                recovered: false,
            });
        }
        if let Some((version, state)) = self.inner.registry.peek(id) {
            return Ok(EnrollmentSnapshot {
                version,
                state,
                events: Vec::new(),
                recovered: false,
            });
        }
        self.inner
            .registry
            .call(id, &self.inner.deps, Op::Get)
            .await
            .map(EnrollmentSnapshot::from)
    }

    /// Waits until the enrollment satisfies `done` (e.g. its document is issued), or
    /// `timeout` passes (`Ok(None)`). Woken with the new state whenever an operation on
    /// the enrollment finishes in this process (a state that an operation passes through,
    /// e.g. `ProposalSubmitted` on the way to `Contracted`, may go unseen); it also
    /// re-reads every 100 ms, for changes made by another process on a shared store.
    pub async fn wait_for(
        &self,
        id: EnrollmentId,
        timeout: Duration,
        done: impl Fn(&Enrollment) -> bool,
    ) -> Result<Option<EnrollmentSnapshot>, EngineError> {
        let deadline = tokio::time::Instant::now() + timeout;
        // The state a wake-up brought along, so it need not be read again.
        let mut known: Option<EnrollmentSnapshot> = None;
        loop {
            let (tx, rx) = tokio::sync::oneshot::channel();
            self.inner.deps.waiters.entry(id).or_default().push(tx);
            let current = match known.take() {
                Some(c) => Ok(c),
                None => self.enrollment(id).await,
            };
            let finished = match &current {
                Ok(c) => done(&c.state),
                Err(_) => true,
            };
            let slice = (deadline - tokio::time::Instant::now()).min(Duration::from_millis(100));
            if finished || slice.is_zero() {
                // Withdraw our registration (and any other that was given up).
                drop(rx);
                self.inner.deps.waiters.remove_if_mut(&id, |_, v| {
                    v.retain(|w| !w.is_closed());
                    v.is_empty()
                });
                return match current {
                    Ok(c) if finished => Ok(Some(c)),
                    Ok(_) => Ok(None),
                    Err(e) => Err(e),
                };
            }
            if let Ok(Ok((version, state))) = tokio::time::timeout(slice, rx).await {
                known = Some(EnrollmentSnapshot {
                    version,
                    state,
                    events: Vec::new(),
                    recovered: false,
                });
            }
        }
    }

    /// Every event of the enrollment, oldest first.
    pub async fn history(&self, id: EnrollmentId) -> Result<Vec<EventEnvelope>, EngineError> {
        let events = self.store().history(id).await?;
        if events.is_empty() {
            return Err(EngineError::NotFound("enrollment"));
        }
        Ok(events)
    }

    /// The text of the enrollment's current document: the state names it, the store keeps
    /// it. A stored text that is missing or does not match the recorded digest is an
    /// error, never a different document.
    pub async fn document(&self, id: EnrollmentId) -> Result<ProductDocument, EngineError> {
        let reference = self
            .enrollment(id)
            .await?
            .state
            .document
            .clone()
            .ok_or(EngineError::NotFound("document"))?;
        self.stored_document(id, &reference).await
    }

    /// The text of document `document_no` of the enrollment: its current one, or one that
    /// a re-saved plan superseded, named by a `DocumentIssued` event of its history.
    pub async fn document_by_number(
        &self,
        id: EnrollmentId,
        document_no: &str,
    ) -> Result<ProductDocument, EngineError> {
        let history = self.history(id).await?;
        let reference = history
            .iter()
            .rev()
            .find_map(|envelope| match &envelope.event {
                Event::DocumentIssued { document } if document.document_no == document_no => {
                    Some(Arc::clone(document))
                }
                _ => None,
            })
            .ok_or(EngineError::NotFound("document"))?;
        self.stored_document(id, &reference).await
    }

    async fn stored_document(
        &self,
        id: EnrollmentId,
        reference: &DocumentRef,
    ) -> Result<ProductDocument, EngineError> {
        let corrupt = |reason: String| {
            EngineError::Store(StoreError::Corrupt {
                key: format!("enrollment {id} document {}", reference.document_no),
                reason,
            })
        };
        match self.store().document(id, &reference.document_no).await? {
            Some(document) if document.is_named_by(reference) => Ok(document),
            Some(_) => Err(corrupt(
                "the stored text is not the one the DocumentIssued event names (SHA-256)"
                    .to_owned(),
            )),
            None => Err(corrupt("the text is not in the store".to_owned())),
        }
    }

    // ---- read model

    pub async fn mypage(
        &self,
        filter: ViewFilter,
        limit: usize,
    ) -> Result<Vec<MyPageView>, EngineError> {
        Ok(self.store().views(filter, limit).await?)
    }

    /// One page of enrollments, as the read model lists them.
    pub async fn enrollment_page(&self, query: &ViewQuery) -> Result<ViewPage, EngineError> {
        Ok(self.store().view_page(query).await?)
    }

    pub async fn mypage_view(&self, id: EnrollmentId) -> Result<MyPageView, EngineError> {
        self.store()
            .view(id)
            .await?
            .ok_or(EngineError::NotFound("enrollment"))
    }

    pub async fn alarms(
        &self,
        customer: Option<CustomerNo>,
        limit: usize,
    ) -> Result<Vec<Alarm>, EngineError> {
        Ok(self.store().alarms(customer, limit).await?)
    }

    pub fn document_issuer(&self) -> &Addr<DocumentIssuer> {
        &self.inner.issuer
    }

    // ---- live feed

    /// Every event appended to the store's log from now on, by this process or any other
    /// on the same store, each enrollment's in order (see [`super::feed`]). A receiver
    /// more than `event_feed_capacity` behind loses the oldest events and is told how
    /// many; it is closed when the engine stops.
    pub async fn subscribe(
        &self,
    ) -> Result<tokio::sync::broadcast::Receiver<FeedEvent>, EngineError> {
        self.inner.feed.subscribe().await
    }

    /// Receivers of the live feed now.
    pub async fn feed_subscribers(&self) -> usize {
        self.inner.feed.subscribers().await
    }

    /// Stops the timers and the sweeper, ends the live feed (closing its receivers), lets
    /// the consumers handle what the log holds (up to their flush timeout) and stops them,
    /// then the enrollment actors and their arbiters. Call it after the HTTP server has
    /// answered its requests in flight, so their events are in the log. Durable work left
    /// (timers, unacknowledged events) is picked up by the next engine on the same store.
    pub async fn shutdown(&self) {
        if self.ownership().is_clustered() && !self.ownership().is_draining() {
            self.hand_over().await;
        }
        let _ = self.inner.shutdown.send(true);
        let tasks: Vec<_> = match self.inner.tasks.lock() {
            Ok(mut t) => t.drain(..).collect(),
            Err(p) => p.into_inner().drain(..).collect(),
        };
        for t in tasks {
            let _ = t.await;
        }
        self.inner.feed.stop().await;
        let consumers: Vec<_> = match self.inner.consumers.lock() {
            Ok(mut c) => c.drain(..).collect(),
            Err(p) => p.into_inner().drain(..).collect(),
        };
        for c in &consumers {
            c.signal_stop();
        }
        for c in consumers {
            c.stop().await;
        }
        self.inner.registry.clear();
        let arbiters: Vec<_> = match self.inner.arbiters.lock() {
            Ok(mut a) => a.drain(..).collect(),
            Err(p) => p.into_inner().drain(..).collect(),
        };
        for a in arbiters {
            a.stop();
            let _ = tokio::task::spawn_blocking(move || a.join()).await;
        }
        tracing::info!("engine stopped");
    }
}

/// Nobody is registered before being born: a birth date after today (in Korea, where
/// insurance ages are counted) is refused, naming the field.
fn born_by(new: &NewCustomer, now: DateTime<Utc>) -> Result<(), EngineError> {
    let today = crate::domain::time::korean_date(now);
    let born = new.birth_date.date();
    if born > today {
        return Err(EngineError::Invalid(format!(
            "birthDate: {born} is after today ({today} in Korea)"
        )));
    }
    Ok(())
}
