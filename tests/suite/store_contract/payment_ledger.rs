//! The payment ledger: approvals and refunds first-wins, and the audit count of money
//! taken per reference.

use ezenroll::store::{Recorded, Store, StoreError};
use std::sync::Arc;

fn recorded(id: &str, first: bool) -> Recorded {
    Recorded {
        id: id.to_owned(),
        first,
    }
}

pub async fn the_first_approval_of_a_reference_holds(store: Arc<dyn Store>) {
    assert_eq!(store.approval("enr-1").await.expect("lookup"), None);
    assert_eq!(store.charges_taken("enr-1").await.expect("count"), 0);

    assert_eq!(
        store
            .record_approval("enr-1", "PAY-1-enr-1")
            .await
            .expect("record"),
        recorded("PAY-1-enr-1", true)
    );
    assert_eq!(
        store
            .record_approval("enr-1", "PAY-7-enr-1")
            .await
            .expect("record"),
        recorded("PAY-1-enr-1", false),
        "the second approval answers the first"
    );
    assert_eq!(
        store.approval("enr-1").await.expect("lookup"),
        Some("PAY-1-enr-1".to_owned())
    );
    assert_eq!(
        store.charges_taken("enr-1").await.expect("count"),
        1,
        "a second approval takes no money"
    );

    assert_eq!(
        store.approval("enr-2").await.expect("lookup"),
        None,
        "another reference is unknown"
    );
    assert_eq!(store.charges_taken("enr-2").await.expect("count"), 0);
    assert_eq!(
        store
            .record_approval("enr-2", "PAY-1-enr-1")
            .await
            .expect("record"),
        recorded("PAY-1-enr-1", true),
        "references are independent"
    );

    for (reference, payment_id) in [("", "PAY-1"), ("enr-3", "")] {
        assert!(
            matches!(
                store.record_approval(reference, payment_id).await,
                Err(StoreError::Rejected(_))
            ),
            "({reference:?}, {payment_id:?}) names nothing"
        );
    }
    assert_eq!(store.approval("enr-3").await.expect("lookup"), None);
}

pub async fn the_first_refund_of_a_payment_holds(store: Arc<dyn Store>) {
    assert_eq!(
        store
            .record_refund("PAY-1", "REF-PAY-1")
            .await
            .expect("record"),
        recorded("REF-PAY-1", true)
    );
    assert_eq!(
        store
            .record_refund("PAY-1", "REF-again")
            .await
            .expect("record"),
        recorded("REF-PAY-1", false),
        "a repeated refund answers the first"
    );
    assert_eq!(
        store
            .record_refund("PAY-2", "REF-PAY-2")
            .await
            .expect("record"),
        recorded("REF-PAY-2", true),
        "payments are independent"
    );
    assert!(matches!(
        store.record_refund("PAY-3", "").await,
        Err(StoreError::Rejected(_))
    ));
}

/// Concurrent approvals of one reference (copies of the server racing on a retry): one
/// is recorded, every caller hears that one, and money is taken once.
pub async fn racing_approvals_take_money_once(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for n in 0..16 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            store
                .record_approval("race", &format!("PAY-{n}-race"))
                .await
                .expect("record")
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("task"));
    }
    let firsts: Vec<&Recorded> = answers.iter().filter(|a| a.first).collect();
    assert_eq!(firsts.len(), 1, "{answers:?}");
    let held = firsts[0].id.clone();
    assert!(answers.iter().all(|a| a.id == held), "{answers:?}");
    assert_eq!(store.approval("race").await.expect("lookup"), Some(held));
    assert_eq!(store.charges_taken("race").await.expect("count"), 1);
}
