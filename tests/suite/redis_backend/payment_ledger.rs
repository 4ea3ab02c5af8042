//! The simulated provider's ledger on Redis: shared by every copy of the server on one
//! Redis, and outliving any of them. Each "copy" is a store of its own (its own
//! connections) on the same redis-server and key prefix, with a provider of its own.

use crate::support::redis_fixture::{RedisOptions, TestRedis};

use ezenroll::actors::payment::{
    ChargeOutcome, ChargeRequest, PaymentProvider, SimulatedProvider, Simulation,
};
use ezenroll::domain::enrollment::PaymentMethod;
use ezenroll::domain::money::Won;
use ezenroll::store::redis::{RedisConfig, RedisStore};
use ezenroll::store::{PaymentLedger, Store};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// One copy's connection to the shared Redis.
async fn copy_on(redis: &TestRedis) -> Arc<dyn Store> {
    let config = RedisConfig::new(redis.url())
        .with_prefix(redis.prefix())
        .with_partitions(4);
    Arc::new(RedisStore::connect(config).await.expect("connect"))
}

fn provider_on(store: &Arc<dyn Store>, seed: u64) -> Arc<SimulatedProvider> {
    let simulation = Simulation {
        latency: Duration::from_millis(1),
        decline_rate: 0.0,
        failure_rate: 0.0,
    };
    let ledger = Arc::clone(store) as Arc<dyn PaymentLedger>;
    Arc::new(SimulatedProvider::new(simulation, seed, ledger))
}

fn charge(reference: &str) -> ChargeRequest {
    ChargeRequest {
        reference: reference.to_owned(),
        amount: Won::new(16_709),
        method: PaymentMethod::Card,
    }
}

fn approved(outcome: ChargeOutcome) -> String {
    match outcome {
        ChargeOutcome::Approved { payment_id } => payment_id,
        other => panic!("a healthy provider approves, got {other:?}"),
    }
}

/// Two copies charge the same references at the same moment, several times each: every
/// answer for a reference names one payment, and money is taken once per reference.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_copies_charging_one_reference_at_once_take_money_once() {
    const REFERENCES: usize = 24;
    const CALLS_PER_COPY: usize = 4;
    let redis = TestRedis::new();
    let (store_a, store_b) = (copy_on(&redis).await, copy_on(&redis).await);
    let copies = [provider_on(&store_a, 5), provider_on(&store_b, 6)];

    let start = Arc::new(tokio::sync::Barrier::new(
        REFERENCES * CALLS_PER_COPY * copies.len(),
    ));
    let mut calls = Vec::new();
    for r in 0..REFERENCES {
        let reference = format!("enr-{r}");
        for provider in &copies {
            for _ in 0..CALLS_PER_COPY {
                let (provider, start) = (Arc::clone(provider), Arc::clone(&start));
                let reference = reference.clone();
                calls.push(tokio::spawn(async move {
                    start.wait().await;
                    let outcome = provider.charge(&charge(&reference)).await;
                    (reference, approved(outcome.expect("the provider answers")))
                }));
            }
        }
    }
    let mut answers: Vec<(String, String)> = Vec::new();
    for call in calls {
        answers.push(call.await.expect("task"));
    }

    for r in 0..REFERENCES {
        let reference = format!("enr-{r}");
        let ids: HashSet<&str> = answers
            .iter()
            .filter(|(of, _)| *of == reference)
            .map(|(_, id)| id.as_str())
            .collect();
        assert_eq!(ids.len(), 1, "{reference}: every answer names one payment");
        assert_eq!(
            store_a.charges_taken(&reference).await.expect("count"),
            1,
            "{reference}: money taken once"
        );
        for provider in &copies {
            let status = provider.charge_status(&reference).await.expect("status");
            assert_eq!(
                status.map(approved).as_deref(),
                ids.iter().next().copied(),
                "{reference}: each copy reports the approval that holds"
            );
        }
    }
    let taken: u64 = copies.iter().map(|p| p.approved_charges()).sum();
    assert_eq!(
        taken, REFERENCES as u64,
        "one approval recorded per reference"
    );
}

/// A copy that dies after charging and refunding (its connections gone, as with
/// `kill -9`) leaves its ledger in Redis: a copy started afterwards finds the charge,
/// answers a retried charge and refund with the first ones, and takes no money.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_copy_that_takes_over_finds_what_a_dead_one_charged() {
    let redis = TestRedis::new();
    let (payment_id, refund_id) = {
        let store = copy_on(&redis).await;
        let dying = provider_on(&store, 1);
        let payment_id = approved(dying.charge(&charge("enr-1")).await.expect("charge"));
        let refund_id = dying
            .refund(&payment_id, Won::new(16_709))
            .await
            .expect("refund");
        (payment_id, refund_id)
    };

    let store = copy_on(&redis).await;
    let successor = provider_on(&store, 2);
    let status = successor.charge_status("enr-1").await.expect("status");
    assert_eq!(status.map(approved), Some(payment_id.clone()));
    assert_eq!(
        successor.charge_status("enr-2").await.expect("status"),
        None,
        "a reference never charged"
    );
    let again = approved(successor.charge(&charge("enr-1")).await.expect("charge"));
    assert_eq!(again, payment_id, "a retried charge answers the first");
    let refunded = successor
        .refund(&payment_id, Won::new(16_709))
        .await
        .expect("refund");
    assert_eq!(refunded, refund_id, "a retried refund answers the first");
    assert_eq!(successor.approved_charges(), 0);
    assert_eq!(successor.refunds(), 0);
    assert_eq!(store.charges_taken("enr-1").await.expect("count"), 1);
}

/// With Redis down the provider answers errors (which count against the breaker), never
/// panics; a Redis restarted from its append-only file still holds the ledger.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_ledger_is_a_provider_error_and_a_restarted_redis_keeps_it() {
    let mut redis = TestRedis::new_with(RedisOptions::DURABLE);
    if redis
        .owned_or_skip("an_unreachable_ledger_is_a_provider_error")
        .is_none()
    {
        return;
    }
    let mut config = RedisConfig::new(redis.url())
        .with_prefix(redis.prefix())
        .with_partitions(1);
    config.response_timeout = Duration::from_millis(500);
    config.connect_timeout = Duration::from_millis(500);
    let store: Arc<dyn Store> = Arc::new(RedisStore::connect(config).await.expect("connect"));
    let provider = provider_on(&store, 3);
    let payment_id = approved(provider.charge(&charge("enr-1")).await.expect("charge"));

    if let Some(server) = redis.owned() {
        server.kill();
    }
    assert!(provider.charge(&charge("enr-2")).await.is_err());
    assert!(provider.charge_status("enr-1").await.is_err());
    assert!(provider.refund(&payment_id, Won::new(1)).await.is_err());
    assert_eq!(provider.approved_charges(), 1);

    if let Some(server) = redis.owned() {
        server.restart();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let status = loop {
        match provider.charge_status("enr-1").await {
            Ok(status) => break status,
            Err(e) if tokio::time::Instant::now() < deadline => {
                eprintln!("waiting for the restarted Redis: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("the restarted Redis never answered: {e}"),
        }
    };
    assert_eq!(status.map(approved), Some(payment_id));
    assert_eq!(store.charges_taken("enr-2").await.expect("count"), 0);
}
