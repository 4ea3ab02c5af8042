//! Stopping without losing anything: a graceful shutdown answers every request it
//! accepted, and their work is in the store; the consumers handle what the log holds
//! before they stop; new connections are refused once it has begun.
//!
//! Both checks take a fresh `Arc<dyn Store>`, so the memory backend
//! (tests/suite/memory/shutdown.rs) and Redis (tests/suite/redis_backend/http.rs) run the
//! same suite by expanding [`shutdown_suite!`] with an expression making a store (it may
//! `.await`).

/// The checks as tests, each on the runtime it needs. `$module` is the name the suite
/// is in scope under; `$make` makes a fresh store and may `.await`.
macro_rules! shutdown_suite {
    ($module:ident, $make:expr) => {
        #[actix_rt::test]
        async fn a_graceful_shutdown_answers_every_accepted_request_and_loses_no_work() {
            let store: ::std::sync::Arc<dyn ::ezenroll::store::Store> = $make;
            $module::a_graceful_shutdown_answers_every_accepted_request_and_loses_no_work(store)
                .await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_stopping_consumer_handles_what_the_log_holds() {
            let store: ::std::sync::Arc<dyn ::ezenroll::store::Store> = $make;
            $module::a_stopping_consumer_handles_what_the_log_holds(store).await;
        }
    };
}

use crate::store_contract::{Journey, Step};
use crate::support::app::*;
use async_trait::async_trait;
use ezenroll::actors::consumers::{self, ConsumerConfig, EventHandler};
use ezenroll::actors::payment::{PaymentProvider, SimulatedProvider, Simulation};
use ezenroll::actors::{Engine, Extensions};
use ezenroll::domain::enrollment::{CustomerNo, EnrollmentId, Status};
use ezenroll::store::{EventEnvelope, PaymentLedger, Store};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Proposals whose payments take this long are surely in flight when the shutdown starts.
const PAYMENT_LATENCY: Duration = Duration::from_millis(500);
const IN_FLIGHT: usize = 12;

pub async fn a_graceful_shutdown_answers_every_accepted_request_and_loses_no_work(
    store: Arc<dyn Store>,
) {
    let provider = Arc::new(SimulatedProvider::new(
        Simulation {
            latency: PAYMENT_LATENCY,
            ..healthy()
        },
        3,
        Arc::clone(&store) as Arc<dyn PaymentLedger>,
    ));
    let ext = Extensions {
        payment_provider: Some(Arc::clone(&provider) as Arc<dyn PaymentProvider>),
        ..Extensions::default()
    };
    let engine = Engine::start_with(engine_config(), Arc::clone(&store), ext)
        .await
        .expect("the engine starts");
    let (trigger, triggered) = tokio::sync::oneshot::channel::<()>();
    let (addr, server) = ezenroll::http::serve(
        engine.clone(),
        "127.0.0.1:0".parse().expect("an address"),
        http_config(),
        async {
            let _ = triggered.await;
        },
    )
    .expect("the server binds");
    let server = tokio::spawn(server);
    let admin = caller_for(addr, Some(&admin_token()));

    // Enrollments ready for their proposal, one customer each.
    let mut ready = Vec::new();
    for i in 0..IN_FLIGHT {
        let customer = admin.customer(&format!("종료 {i}")).await;
        let id = admin.issued(&customer).await;
        ready.push((customer, id));
    }
    // An open event stream must not hold the shutdown up either.
    let mut stream = admin.open_stream("/events/stream").await.expect("a stream");

    let proposals: Vec<_> = ready
        .iter()
        .map(|(_, id)| {
            let (admin, id) = (admin.clone(), id.clone());
            tokio::spawn(async move {
                let response = admin
                    .client
                    .post(admin.url(&format!("/enrollments/{id}/proposal")))
                    .json(&json!({"paymentMethod": "card"}))
                    .send()
                    .await?;
                let status = response.status().as_u16();
                let body: Value = response.json().await?;
                Ok::<_, reqwest::Error>((id, status, body))
            })
        })
        .collect();
    let payments = Arc::clone(engine.payment_stats());
    admin
        .eventually("every proposal waiting on the provider", || async {
            (payments.depth.load(Ordering::SeqCst) == IN_FLIGHT).then_some(())
        })
        .await;

    trigger.send(()).expect("the server waits for the signal");
    tokio::time::timeout(WAIT, server)
        .await
        .expect("the server drains in time")
        .expect("the server ends cleanly");

    // The server future ends only after every accepted request is answered: each got a
    // whole response, and a 2xx one.
    let mut answered = Vec::new();
    for proposal in proposals {
        let (id, status, body) = proposal
            .await
            .expect("the request task")
            .expect("a complete answer");
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "Contracted", "{body}");
        answered.push((id, body));
    }
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "a new connection after the shutdown is refused"
    );
    while stream.next_event().await.is_some() {}

    // The work is in the store, as the answers said.
    for (id, body) in &answered {
        let id = EnrollmentId::parse(id).expect("an enrollment id");
        let stored = engine.enrollment(id).await.expect("stored");
        assert_eq!(stored.state.status, Status::Contracted);
        assert_eq!(Some(stored.version), body["version"].as_u64());
        assert_eq!(
            stored.state.contract_no.as_deref(),
            body["contractNo"].as_str()
        );
    }
    assert_eq!(provider.approved_charges(), IN_FLIGHT as u64);

    // Stopping the engine lets the consumers finish: every contract is in the read model
    // and announced.
    engine.shutdown().await;
    for (customer, id) in &ready {
        let id = EnrollmentId::parse(id).expect("an enrollment id");
        let view = store.view(id).await.expect("read").expect("a view");
        assert_eq!(view.status, Status::Contracted, "{id}");
        let customer = CustomerNo::parse(customer).expect("a customer number");
        let alarms = store.alarms(Some(customer), 100).await.expect("alarms");
        assert!(
            alarms.iter().any(|a| a.status == Status::Contracted),
            "{alarms:?}"
        );
    }
}

/// Counts events; the first batch waits until the test lets it go.
struct HeldHandler {
    handled: AtomicUsize,
    started: tokio::sync::Notify,
    release: tokio::sync::Semaphore,
}

#[async_trait]
impl EventHandler for HeldHandler {
    async fn handle(&self, _event: &EventEnvelope) -> Result<(), String> {
        if self.handled.fetch_add(1, Ordering::SeqCst) == 0 {
            self.started.notify_one();
            let _permit = self.release.acquire().await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

pub async fn a_stopping_consumer_handles_what_the_log_holds(store: Arc<dyn Store>) {
    let handler = Arc::new(HeldHandler {
        handled: AtomicUsize::new(0),
        started: tokio::sync::Notify::new(),
        release: tokio::sync::Semaphore::new(0),
    });
    let consumer = consumers::start(
        Arc::clone(&store),
        "held",
        "held-1".to_owned(),
        Arc::clone(&handler) as Arc<dyn EventHandler>,
        ConsumerConfig {
            block: Duration::from_millis(20),
            ..ConsumerConfig::default()
        },
    )
    .await
    .expect("started");

    let mut journey = Journey::new(CustomerNo::new(1));
    let first = journey.commit(&*store, Step::SavePlan, &[]).await;
    tokio::time::timeout(WAIT, handler.started.notified())
        .await
        .expect("the first event is being handled");
    // More arrive while the consumer is busy; then it is told to stop.
    let more = journey
        .run(
            &*store,
            &[
                Step::RequestDocument,
                Step::IssueDocument,
                Step::SubmitProposal,
                Step::Pay,
                Step::Withdraw,
            ],
        )
        .await;
    let stopping = tokio::spawn(consumer.stop());
    tokio::time::sleep(Duration::from_millis(50)).await;
    handler.release.add_permits(1);
    tokio::time::timeout(WAIT, stopping)
        .await
        .expect("the consumer stops in time")
        .expect("stopped");

    assert_eq!(
        handler.handled.load(Ordering::SeqCst),
        first.len() + more.len(),
        "nothing left behind"
    );
    assert_eq!(store.lag("held").await.expect("lag"), 0, "all acknowledged");
}
