//! The MyPage projector (내보험 조회): an [`EventHandler`] that keeps each enrollment's
//! read-model view ([`MyPageView`]) up to date from its current snapshot.

use super::consumers::{self, ConsumerConfig, ConsumerHandle, EventHandler, PROJECTOR_GROUP};
use crate::domain::enrollment::Enrollment;
use crate::domain::ids::{EnrollmentId, IdHash};
use crate::store::{Delivery, EventEnvelope, MyPageView, Store, StoreResult};
use async_trait::async_trait;
use std::sync::Arc;

/// Starts the projector as consumer `<instance>-mypage` of its group.
pub async fn start(
    store: Arc<dyn Store>,
    config: ConsumerConfig,
    instance: &str,
) -> StoreResult<ConsumerHandle> {
    let handler = Arc::new(MyPageProjector {
        store: Arc::clone(&store),
    });
    consumers::start(
        store,
        PROJECTOR_GROUP,
        format!("{instance}-mypage"),
        handler,
        config,
    )
    .await
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
    /// carries the state its append left (an older Redis log layout wrote it with each
    /// append's last entry; entries still in a log may have it) saves that read when it is
    /// the newest of its enrollment in the batch. Every view is
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
    use crate::actors::consumers::tests::append_one;
    use crate::domain::enrollment::{CustomerNo, Event};
    use crate::domain::plan::demo_plan;
    use chrono::Utc;

    const ID: &str = "0190f5a4-7c2e-7d3b-9a41-5e6f7a8b9c0d";

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
                plan: demo_plan(),
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
                fence: None,
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
}
