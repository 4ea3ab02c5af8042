//! A server killed mid-flow, started again on the same Redis (or cluster).

use crate::redis_fixture::{RedisCluster, RedisOptions, TestRedis, skip_if_external};
use chrono::Utc;

use crate::caught_up::*;
use crate::driver::*;
use crate::journeys::*;
use crate::processes::*;

/// kill -9 of `serve` with enrollments at every stage, some with document issuance
/// pending, some with refunds pending, some with a payment in flight; then `serve` again on
/// the same store.
async fn kill_and_restart(url: &str, prefix: &str, peek: Option<&redis::Client>) {
    let dir = logs_dir();
    let slow = Serve {
        // Long enough that what is requested just before the kill is still pending then.
        document_delay: "2s",
        payment_latency: "2s",
        ..Serve::default()
    };
    let mut serve = server(&dir, "serve", url, prefix, slow);
    serve.start().await;
    let d = Driver::new(serve.base());
    let people = customers(&d, 3).await;

    // Before the crash: 2 contracted, 3 to withdraw, 2 issued (to propose at the crash).
    let mut journeys = vec![Journey::Contracted; 5];
    journeys.extend([Journey::Issued; 2]);
    let ids = drive(&d, &people, &journeys).await;
    let (contracted, rest) = ids.split_at(2);
    let (withdrawing, proposing) = rest.split_at(3);
    // 2 plans left as they are, 3 whose documents are requested at the crash.
    let mut planned = Vec::new();
    for i in 0..5 {
        planned.push(d.plan(&people[i % people.len()]).await);
    }
    let (planned, documenting) = planned.split_at(2);

    // The crash, mid-flow: payments in flight (not answered yet), refunds in flight
    // (withdrawals answered 202), documents waiting for their delay (202).
    let in_flight = propose_in_flight(&d, proposing).await;
    for id in withdrawing {
        d.withdraw(id).await;
    }
    for id in documenting {
        d.request_document(id).await;
    }
    serve.kill();
    let killed_at = Utc::now();
    for (id, answer) in join_all(in_flight).await {
        match answer {
            // Answered just before the kill: acknowledged like any other.
            Ok(a) if (200..300).contains(&a.status) => d.ledger.record(&a),
            Ok(a) => panic!("the proposal of {id} was refused: {}", a.text),
            Err(_) => {} // cut off by the kill: not acknowledged
        }
    }
    if let Some(client) = peek {
        let pending: Vec<String> = last_events_in_redis(client, prefix, withdrawing);
        let requested: Vec<String> = last_events_in_redis(client, prefix, documenting);
        let paying: Vec<String> = last_events_in_redis(client, prefix, proposing);
        println!(
            "at the kill, last events: withdrawing {pending:?}, documenting {requested:?}, \
             proposing {paying:?}; events delivered, not acknowledged: {:?}",
            unacknowledged_in_redis(client, prefix)
        );
    }

    // The same store, a new process (and port).
    serve.start().await;
    let d = d.at(serve.base());
    d.assert_acknowledged_kept().await;

    // Durable work in flight completes by itself.
    for id in documenting {
        d.wait_status(id, "DocumentIssued").await;
    }
    for id in withdrawing {
        d.wait_status(id, "Withdrawn").await;
    }
    // Interrupted payments: reconciled on load (PaymentFailed, retry allowed) unless they
    // were recorded; the customer finishes them.
    for id in proposing {
        finish_interrupted_proposal(&d, id).await;
    }
    for id in contracted {
        d.wait_status(id, "Contracted").await;
    }
    for id in planned {
        d.wait_status(id, "Planned").await;
    }
    let mut after_restart = 0;
    for (id, kind) in documenting
        .iter()
        .map(|id| (id, "DocumentIssued"))
        .chain(withdrawing.iter().map(|id| (id, "RefundConfirmed")))
    {
        if event_time(&d.history(id).await, kind).is_some_and(|t| t > killed_at) {
            after_restart += 1;
        }
    }
    println!("{after_restart} of 6 document issuances and refunds completed after the restart");

    let all: Vec<String> = d.ledger.enrollments().into_keys().collect();
    assert_eq!(all.len(), 12);
    assert_caught_up(&d, &all, &[&serve], Delivery::AtMostOnce).await;
}

/// Scenario 1: kill -9 of the server mid-flow, then the server again on the same Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_flow_restarts_and_loses_nothing_acknowledged() {
    let redis = TestRedis::new_with(RedisOptions::DURABLE);
    let client = redis.client();
    kill_and_restart(&redis.url(), redis.prefix(), Some(&client)).await;
}

/// The `redis+cluster://` URL of every node of `cluster`.
pub(crate) fn cluster_url(cluster: &RedisCluster) -> String {
    let nodes: Vec<String> = cluster
        .ports()
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    format!("redis+cluster://{}", nodes.join(","))
}

/// Scenario 5: the same on a Redis Cluster of three masters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_flow_restarts_on_a_redis_cluster() {
    if skip_if_external("a_server_killed_mid_flow_restarts_on_a_redis_cluster") {
        return;
    }
    let cluster = RedisCluster::start(3);
    let url = cluster_url(&cluster);
    kill_and_restart(&url, "recovery:", None).await;
}
