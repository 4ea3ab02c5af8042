//! Journeys: enrollments driven through their steps, some left in flight.

use crate::app::Answer;
use reqwest::Method;
use tokio::task::JoinSet;

use crate::driver::*;

/// How far a journey goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Journey {
    /// Plan, document requested and issued.
    Issued,
    /// ... proposal and first premium paid.
    Contracted,
    /// ... withdrawn and refunded.
    Withdrawn,
}

/// Runs the journeys concurrently, one enrollment each, customers taking turns; returns
/// the enrollment ids in the order of `journeys`.
pub(crate) async fn drive(d: &Driver, customers: &[String], journeys: &[Journey]) -> Vec<String> {
    let mut tasks = JoinSet::new();
    for (i, &journey) in journeys.iter().enumerate() {
        let (d, customer) = (d.clone(), customers[i % customers.len()].clone());
        tasks.spawn(async move {
            let id = d.plan(&customer).await;
            d.request_document(&id).await;
            d.wait_status(&id, "DocumentIssued").await;
            if journey != Journey::Issued {
                d.propose(&id).await;
            }
            if journey == Journey::Withdrawn {
                d.withdraw(&id).await;
                d.wait_status(&id, "Withdrawn").await;
            }
            (i, id)
        });
    }
    let mut done = join_all(tasks).await;
    done.sort();
    done.into_iter().map(|(_, id)| id).collect()
}

pub(crate) async fn customers(d: &Driver, n: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(d.customer(&format!("복구고객{i}")).await);
    }
    out
}

/// Proposals sent and not awaited: each is in flight (its payment taken, not answered)
/// once this returns. Their answers come with the task's result.
pub(crate) async fn propose_in_flight(
    d: &Driver,
    ids: &[String],
) -> JoinSet<(String, Result<Answer, reqwest::Error>)> {
    let mut in_flight = JoinSet::new();
    for id in ids {
        let (d, id) = (d.clone(), id.clone());
        in_flight.spawn(async move {
            let path = format!("/enrollments/{id}/proposal");
            let answer = d
                .try_request(Method::POST, &path, Some(&proposal_body()))
                .await;
            (id, answer)
        });
    }
    for id in ids {
        eventually(&format!("the proposal of {id} to be taken"), || async {
            let history = d.history(id).await;
            if history.iter().any(|e| e["type"] == "ProposalSubmitted") {
                Ok(())
            } else {
                Err(format!("{} events", history.len()))
            }
        })
        .await;
    }
    in_flight
}

/// A proposal whose answer was lost to a failure: reconciled when the enrollment is loaded
/// again (Contracted if the payment was recorded or the provider has it, else
/// PaymentFailed, retry allowed), or never taken (DocumentIssued). The customer finishes it.
pub(crate) async fn finish_interrupted_proposal(d: &Driver, id: &str) {
    let (status, _) = d.status(id).await;
    match status.as_str() {
        "DocumentIssued" => d.propose(id).await,
        "PaymentFailed" => d.retry_payment(id).await,
        "Contracted" => {}
        other => panic!("{id}: an interrupted proposal is {other}"),
    }
    d.wait_status(id, "Contracted").await;
    println!("the interrupted proposal of {id} was {status}");
}
