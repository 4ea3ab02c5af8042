//! Redis restarted (or a cluster master killed) under a running server.

use crate::app::{Answer, plan_body};
use crate::procs::{Ezenroll, LogsDir};
use crate::redis_fixture::{RedisCluster, RedisOptions, RedisServer, skip_if_external};
use reqwest::Method;
use serde_json::Value;
use tokio::task::JoinSet;

use crate::caught_up::*;
use crate::driver::*;
use crate::journeys::*;
use crate::processes::*;
use crate::server_killed::cluster_url;

/// What the Redis-outage tests have in flight when Redis goes down, on a server with 1-s
/// payments: a payment taken and not answered yet (`paying`, for `proposing`), a refund
/// (`withdrawing`, its withdrawal answered 202) and a document due in 200 ms
/// (`documenting`); besides, `contracted` and `issued` to go on with, and `planned`.
struct InFlight {
    serve: Ezenroll,
    d: Driver,
    people: Vec<String>,
    contracted: String,
    withdrawing: String,
    proposing: String,
    issued: String,
    planned: String,
    documenting: String,
    paying: JoinSet<(String, Result<Answer, reqwest::Error>)>,
}

async fn in_flight(dir: &LogsDir, redis: &RedisServer) -> InFlight {
    let slow_payments = Serve {
        // A payment or refund started just before Redis goes down ends during the outage.
        payment_latency: "1s",
        ..Serve::default()
    };
    let mut serve = server(dir, "serve", &redis.url(), "recovery:", slow_payments);
    serve.start().await;
    let d = Driver::new(serve.base());
    let people = customers(&d, 2).await;
    let journeys = [
        Journey::Contracted,
        Journey::Contracted,
        Journey::Withdrawn,
        Journey::Issued,
        Journey::Issued,
    ];
    let ids = drive(&d, &people, &journeys).await;
    let planned = d.plan(&people[0]).await;
    let documenting = d.plan(&people[1]).await;
    let paying = propose_in_flight(&d, std::slice::from_ref(&ids[3])).await;
    d.withdraw(&ids[1]).await;
    d.request_document(&documenting).await;
    InFlight {
        serve,
        contracted: ids[0].clone(),
        withdrawing: ids[1].clone(),
        proposing: ids[3].clone(),
        issued: ids[4].clone(),
        d,
        people,
        planned,
        documenting,
        paying,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_answers_503_and_the_server_reconnects_by_itself() {
    if skip_if_external("redis_down_answers_503_and_the_server_reconnects_by_itself") {
        return;
    }
    let mut redis = RedisServer::start_with(RedisOptions::DURABLE);
    let dir = logs_dir();
    let f = in_flight(&dir, &redis).await;
    let (mut serve, d, paying) = (f.serve, f.d, f.paying);
    let (contracted, withdrawing, proposing, issued) =
        (&f.contracted, &f.withdrawing, &f.proposing, &f.issued);
    let (people, planned, documenting) = (&f.people, &f.planned, &f.documenting);
    redis.kill();

    let outage: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/readyz".to_owned(), None),
        (
            Method::POST,
            "/customers".to_owned(),
            Some(customer_body("장애중")),
        ),
        (
            Method::POST,
            "/enrollments".to_owned(),
            Some(plan_body(&people[0])),
        ),
        (
            Method::POST,
            format!("/enrollments/{planned}/document"),
            None,
        ),
        (
            Method::POST,
            format!("/enrollments/{issued}/proposal"),
            Some(proposal_body()),
        ),
        (
            Method::POST,
            format!("/enrollments/{contracted}/withdrawal"),
            None,
        ),
        (
            Method::GET,
            format!("/enrollments/{contracted}/events"),
            None,
        ),
        (Method::GET, "/mypage".to_owned(), None),
        (Method::GET, "/alarms".to_owned(), None),
    ];
    for (method, path, body) in &outage {
        let what = format!("{method} {path} while Redis is down");
        let started = std::time::Instant::now();
        let a = d
            .try_request(method.clone(), path, body.as_ref())
            .await
            .unwrap_or_else(|e| panic!("{what}: no answer (a hang or a crash): {e}"));
        println!("{what}: {} after {:?}", a.status, started.elapsed());
        a.assert_problem(503, "store-unavailable");
        assert!(
            a.headers.contains_key("retry-after"),
            "{what}: no Retry-After"
        );
        serve.assert_running();
    }
    for (id, answer) in join_all(paying).await {
        match answer {
            Ok(a) if (200..300).contains(&a.status) => d.ledger.record(&a),
            Ok(a) if a.status == 503 => println!("the payment in flight: {}", a.text),
            Ok(a) => panic!("the proposal of {id} during the outage: {}", a.text),
            Err(e) => panic!("the proposal of {id} during the outage: no answer: {e}"),
        }
    }

    redis.restart();
    // The engine reconnects by itself: a write goes through again.
    eventually("a write to succeed after Redis is back", || async {
        let body = customer_body("복구후");
        match d.try_request(Method::POST, "/customers", Some(&body)).await {
            Ok(a) if a.status == 201 => Ok(()),
            Ok(a) if a.status == 503 => Err(a.text),
            Ok(a) => panic!("after the restart: {}", a.text),
            Err(e) => Err(e.to_string()),
        }
    })
    .await;
    let ready = d.get("/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    serve.assert_running();
    d.assert_acknowledged_kept().await;

    // What was in flight completes: the timer that came due during the outage fires, the
    // refund whose confirmation could not be written is tried again, the payment taken
    // but not recorded is reconciled (or may be retried).
    d.wait_status(documenting, "DocumentIssued").await;
    d.wait_status(withdrawing, "Withdrawn").await;
    finish_interrupted_proposal(&d, proposing).await;
    // Commands refused during the outage go through now.
    d.request_document(planned).await;
    d.wait_status(planned, "DocumentIssued").await;
    for id in [issued, planned, documenting] {
        d.propose(id).await;
    }
    d.withdraw(contracted).await;
    d.wait_status(contracted, "Withdrawn").await;
    let all: Vec<String> = d.ledger.enrollments().into_keys().collect();
    assert_eq!(all.len(), 7);
    assert_caught_up(&d, &all, &[&serve], Delivery::AtMostOnce).await;
}

/// 2c: the server SIGKILLed while Redis is down, then Redis back and a new server. What
/// the dead process held only in memory (claimed timers, events read but not
/// acknowledged, idempotency claims, the payment it was waiting on) must come back from
/// Redis alone: nothing acknowledged is lost, the document due and the refund in flight
/// complete, the flows go on, and the consumers catch up without an alarm twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_while_redis_is_down_recovers_from_redis_alone() {
    if skip_if_external("a_server_killed_while_redis_is_down_recovers_from_redis_alone") {
        return;
    }
    let mut redis = RedisServer::start_with(RedisOptions::DURABLE);
    let dir = logs_dir();
    let f = in_flight(&dir, &redis).await;
    let (mut serve, d, paying) = (f.serve, f.d, f.paying);
    redis.kill();
    let refused = d
        .try_request(Method::POST, "/enrollments", Some(&plan_body(&f.people[0])))
        .await
        .unwrap_or_else(|e| panic!("a plan while Redis is down: no answer: {e}"));
    refused.assert_problem(503, "store-unavailable");
    serve.assert_running();
    serve.kill();
    for (id, answer) in join_all(paying).await {
        match answer {
            Ok(a) if (200..300).contains(&a.status) => d.ledger.record(&a),
            Ok(a) if a.status == 503 => println!("the payment in flight: {}", a.text),
            Ok(a) => panic!("the proposal of {id}: {}", a.text),
            Err(_) => {} // cut off by the kill: not acknowledged
        }
    }

    redis.restart();
    serve.start().await;
    let d = d.at(serve.base());
    d.assert_acknowledged_kept().await;
    d.wait_status(&f.documenting, "DocumentIssued").await;
    d.wait_status(&f.withdrawing, "Withdrawn").await;
    finish_interrupted_proposal(&d, &f.proposing).await;
    d.propose(&f.issued).await;
    d.withdraw(&f.contracted).await;
    d.wait_status(&f.contracted, "Withdrawn").await;
    d.wait_status(&f.planned, "Planned").await;
    let all: Vec<String> = d.ledger.enrollments().into_keys().collect();
    assert_eq!(all.len(), 7);
    assert_caught_up(&d, &all, &[&serve], Delivery::AtMostOnce).await;
}

/// 2b: a master of a Redis Cluster killed and restarted (same port, its AOF) under a
/// running server. Meanwhile every command gets an answer: done (its keys on a master that
/// still serves them) or 503 `store-unavailable`, never a hang or a crash. After the
/// restart the server goes on by itself: every partition takes writes again, nothing
/// acknowledged is lost, and the consumers catch up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_master_killed_and_restarted_under_a_running_server() {
    if skip_if_external("a_cluster_master_killed_and_restarted_under_a_running_server") {
        return;
    }
    let mut cluster = RedisCluster::start_with(3, RedisOptions::DURABLE);
    let url = cluster_url(&cluster);
    let dir = logs_dir();
    let mut serve = server(&dir, "serve", &url, "recovery:", Serve::default());
    serve.start().await;
    let d = Driver::new(serve.base());
    let people = customers(&d, 3).await;
    let journeys = [
        Journey::Contracted,
        Journey::Issued,
        Journey::Issued,
        Journey::Contracted,
    ];
    let ids = drive(&d, &people, &journeys).await;

    cluster.kill_node(0);
    // At least 16 plans, and on until one lands on the dead master: it may own only a few
    // of the 16 partitions, and 16 plans can all miss them.
    let mut refused = 0;
    let mut i = 0;
    while i < 16 || (refused == 0 && i < 400) {
        let what = format!("plan {i} while a master is down");
        let started = std::time::Instant::now();
        let a = d
            .try_request(
                Method::POST,
                "/enrollments",
                Some(&plan_body(&people[i % people.len()])),
            )
            .await
            .unwrap_or_else(|e| panic!("{what}: no answer (a hang or a crash): {e}"));
        println!("{what}: {} after {:?}", a.status, started.elapsed());
        match a.status {
            201 => d.ledger.record(&a),
            _ => {
                a.assert_problem(503, "store-unavailable");
                refused += 1;
            }
        }
        serve.assert_running();
        i += 1;
    }
    assert!(refused > 0, "{i} plans and none refused with a master down");

    cluster.restart_node(0);
    // Every partition takes writes again: 16 plans in a row, spread over all of them.
    eventually(
        "16 plans in a row to be saved after the restart",
        || async {
            for i in 0..16 {
                let body = plan_body(&people[i % people.len()]);
                match d
                    .try_request(Method::POST, "/enrollments", Some(&body))
                    .await
                {
                    Ok(a) if a.status == 201 => d.ledger.record(&a),
                    Ok(a) if a.status == 503 => return Err(a.text),
                    Ok(a) => panic!("after the restart: {}", a.text),
                    Err(e) => return Err(e.to_string()),
                }
            }
            Ok(())
        },
    )
    .await;
    serve.assert_running();
    d.assert_acknowledged_kept().await;

    // Flows go on where they were.
    for id in [&ids[1], &ids[2]] {
        d.propose(id).await;
    }
    d.withdraw(&ids[0]).await;
    d.wait_status(&ids[0], "Withdrawn").await;
    let all: Vec<String> = d.ledger.enrollments().into_keys().collect();
    assert_caught_up(&d, &all, &[&serve], Delivery::AtMostOnce).await;
}
