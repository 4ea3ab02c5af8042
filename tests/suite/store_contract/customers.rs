//! Customers: numbered, registered once per request, and their cumulative-limit reservations.

use ezenroll::domain::enrollment::{CustomerNo, EnrollmentId};
use ezenroll::domain::money::Won;
use ezenroll::store::{Reservation, Store};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::fixtures::*;

/// A keyed registration makes one customer, however often its request comes; another
/// request makes another, and concurrent tries of one request agree on one number.
pub async fn customers_are_registered_once_per_request(store: Arc<dyn Store>) {
    let keep = Duration::from_secs(60);
    let first = store
        .create_customer_for("POST /customers key-1", new_customer("김보험"), t0(), keep)
        .await
        .expect("create");
    let again = store
        .create_customer_for("POST /customers key-1", new_customer("김보험"), t0(), keep)
        .await
        .expect("create again");
    assert_eq!(again, first, "the same request: the same customer");
    let other_details = store
        .create_customer_for("POST /customers key-1", new_customer("이가입"), t0(), keep)
        .await
        .expect("create with other details");
    assert_eq!(
        other_details, first,
        "what the request registered, for the caller to compare"
    );
    let second = store
        .create_customer_for("POST /customers key-2", new_customer("김보험"), t0(), keep)
        .await
        .expect("create under another request");
    assert_ne!(second.customer_no, first.customer_no);
    let plain = store
        .create_customer(new_customer("박청약"), t0())
        .await
        .expect("create unkeyed");
    assert!(plain.customer_no != first.customer_no && plain.customer_no != second.customer_no);

    let tries = (0..8).map(|_| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            store
                .create_customer_for("POST /customers key-3", new_customer("최동시"), t0(), keep)
                .await
                .expect("create concurrently")
                .customer_no
        })
    });
    let numbers: HashSet<CustomerNo> = futures_util::future::join_all(tries)
        .await
        .into_iter()
        .map(|n| n.expect("task"))
        .collect();
    assert_eq!(numbers.len(), 1, "{numbers:?}");
}

pub async fn customers_are_numbered_from_one(store: Arc<dyn Store>) {
    let mut created = Vec::new();
    for name in ["김보험", "이가입", "박청약"] {
        created.push(
            store
                .create_customer(new_customer(name), t0())
                .await
                .expect("create"),
        );
    }
    let numbers: Vec<u64> = created.iter().map(|c| c.customer_no.get()).collect();
    assert_eq!(numbers, [1, 2, 3]);
    assert_eq!(created[1].name.as_str(), "이가입");
    assert_eq!(created[1].registered_at, t0());
    assert_eq!(
        store.customer(CustomerNo::new(2)).await.expect("get"),
        Some(created[1].clone())
    );
    assert_eq!(
        store.customer(CustomerNo::new(99)).await.expect("get"),
        None
    );

    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            store
                .create_customer(new_customer(&format!("고객{i}")), t0())
                .await
                .expect("create")
                .customer_no
                .get()
        }));
    }
    let mut numbers = Vec::new();
    for task in tasks {
        numbers.push(task.await.expect("task"));
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (4..=23).collect::<Vec<u64>>());
}

pub async fn reservations_respect_the_limit(store: Arc<dyn Store>) {
    let store = &*store;
    let no = CustomerNo::new(1);
    let m = |n: u64| Won::new(n * 1_000_000);
    let limit = m(100);
    let (e1, e2, e3) = (
        EnrollmentId::new(),
        EnrollmentId::new(),
        EnrollmentId::new(),
    );
    let reserve =
        |e: EnrollmentId, amount: Won| store.reserve_limit(no, "EZ-TERM", e, amount, limit);

    assert_eq!(
        reserve(e1, m(60)).await.expect("reserve"),
        Reservation::Reserved { total: m(60) }
    );
    assert_eq!(
        reserve(e2, m(50)).await.expect("reserve"),
        Reservation::Exceeded { held: m(60), limit }
    );
    // Idempotent per enrollment.
    assert_eq!(
        reserve(e1, m(60)).await.expect("reserve"),
        Reservation::Reserved { total: m(60) }
    );
    assert_eq!(
        reserve(e3, m(40)).await.expect("reserve"),
        Reservation::Reserved { total: m(100) }
    );
    // Another product, another customer: separate limits.
    assert_eq!(
        store
            .reserve_limit(no, "EZ-WL", e2, m(50), limit)
            .await
            .expect("reserve"),
        Reservation::Reserved { total: m(50) }
    );
    assert_eq!(
        store
            .reserve_limit(CustomerNo::new(2), "EZ-TERM", e2, m(50), limit)
            .await
            .expect("reserve"),
        Reservation::Reserved { total: m(50) }
    );

    store
        .release_limit(no, "EZ-TERM", e1)
        .await
        .expect("release");
    store
        .release_limit(no, "EZ-TERM", e1)
        .await
        .expect("release twice");
    store
        .release_limit(no, "EZ-TERM", EnrollmentId::new())
        .await
        .expect("release of nothing");
    assert_eq!(
        reserve(e2, m(50)).await.expect("reserve"),
        Reservation::Reserved { total: m(90) }
    );

    // A new amount for the same enrollment replaces its reservation, within the limit.
    assert_eq!(
        reserve(e2, m(60)).await.expect("reserve"),
        Reservation::Reserved { total: m(100) }
    );
    assert_eq!(
        reserve(e2, m(70)).await.expect("reserve"),
        Reservation::Exceeded { held: m(40), limit }
    );
    assert_eq!(
        reserve(e2, m(60)).await.expect("reserve"),
        Reservation::Reserved { total: m(100) },
        "a refused change keeps the reservation it had"
    );
}

pub async fn concurrent_reservations_stay_within_the_limit(store: Arc<dyn Store>) {
    let no = CustomerNo::new(1);
    let amount = Won::new(100_000_000);
    let limit = Won::new(1_000_000_000);
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            store
                .reserve_limit(no, "EZ-TERM", EnrollmentId::new(), amount, limit)
                .await
                .expect("reserve")
        }));
    }
    let mut reserved = 0;
    for task in tasks {
        match task.await.expect("task") {
            Reservation::Reserved { total } => {
                assert!(total <= limit);
                reserved += 1;
            }
            Reservation::Exceeded { held, .. } => assert!(held <= limit),
        }
    }
    assert_eq!(reserved, 10, "exactly as many as fit");
    assert_eq!(
        store
            .reserve_limit(no, "EZ-TERM", EnrollmentId::new(), Won::new(1), limit)
            .await
            .expect("reserve"),
        Reservation::Exceeded { held: limit, limit }
    );
}
