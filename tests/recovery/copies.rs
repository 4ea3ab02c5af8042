//! Several `serve` copies on one Redis (or Redis Cluster) behave as one engine: each
//! enrollment has one live owner, every copy answers fresh, a long poll on any copy wakes
//! on a change made through any other, durable timers fire on time whichever copies have
//! read the enrollment, and a copy that stops or dies loses nothing.

use crate::redis_fixture::{RedisCluster, TestRedis, skip_if_external};
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;
use tokio::task::JoinSet;

use crate::driver::*;
use crate::processes::*;
use crate::server_killed::cluster_url;

/// The document delay the copies run with; the document must be issued within it plus a
/// second, whichever copy the request went through.
const DOCUMENT_DELAY: Duration = Duration::from_millis(300);

fn copy_settings() -> Serve {
    Serve {
        document_delay: "300ms",
        ..Serve::default()
    }
}

/// Waits until every copy says it is ready: each holds its share of the partitions.
async fn all_ready(copies: &[&Driver]) {
    for d in copies {
        eventually(&format!("{} to be ready", d.base), || async {
            let a = d.get("/readyz").await;
            if a.status == 200 { Ok(()) } else { Err(a.text) }
        })
        .await;
    }
}

/// The status a long poll on `d` answers while `id` is in `status`.
async fn wait_while(d: &Driver, id: &str, status: &str) -> String {
    let waited = d
        .get(&format!(
            "/enrollments/{id}?waitWhileStatus={status}&waitSeconds=10"
        ))
        .await;
    assert_eq!(waited.status, 200, "{}", waited.text);
    waited.body["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The instant an event of `kind` was recorded, from the enrollment's history.
fn event_time(history: &[Value], kind: &str) -> chrono::DateTime<chrono::Utc> {
    let event = history
        .iter()
        .find(|e| e["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {history:?}"));
    event["time"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .unwrap_or_else(|| panic!("{kind} has no time: {event}"))
        .to_utc()
}

async fn one_engine(url: &str, prefix: &str) {
    let dir = logs_dir();
    let mut a = server(&dir, "a", url, prefix, copy_settings());
    let mut b = server(&dir, "b", url, prefix, copy_settings());
    a.start().await;
    b.start().await;
    let (da, db) = (Driver::new(a.base()), Driver::new(b.base()));
    let db = da.at(db.base.clone());
    all_ready(&[&da, &db]).await;
    let customer = da.customer("김하나").await;

    for i in 0..8 {
        // Alternate which copy starts, so both own some and forward the rest.
        let (x, y) = if i % 2 == 0 { (&da, &db) } else { (&db, &da) };
        let id = x.plan(&customer).await;
        assert_eq!(
            y.status(&id).await.0,
            "Planned",
            "{id} read through the other copy"
        );
        y.request_document(&id).await;
        // A long poll on x wakes on y's request and on the timer, wherever it fires.
        assert_eq!(
            wait_while(x, &id, "DocumentRequested").await,
            "DocumentIssued"
        );
        let history = x.history(&id).await;
        let took =
            event_time(&history, "DocumentIssued") - event_time(&history, "DocumentRequested");
        assert!(
            took.to_std()
                .is_ok_and(|t| t <= DOCUMENT_DELAY + Duration::from_secs(1)),
            "{id}: the document was issued {took} after it was requested"
        );
        x.propose(&id).await;
        // Read your writes through the other copy, at once.
        assert_eq!(
            y.status(&id).await.0,
            "Contracted",
            "{id} right after the proposal"
        );
        y.withdraw(&id).await;
        assert_eq!(wait_while(x, &id, "WithdrawalRequested").await, "Withdrawn");
        assert_eq!(y.status(&id).await.0, "Withdrawn");
    }

    // One actor at a time per enrollment, across the copies: the same command sent to
    // both copies at once is taken once and refused as illegal by the state machine the
    // rest of the times, never a write conflict between two live actors.
    for _ in 0..4 {
        let id = da.plan(&customer).await;
        let mut racing = JoinSet::new();
        for k in 0..6 {
            let d = if k % 2 == 0 { da.clone() } else { db.clone() };
            let path = format!("/enrollments/{id}/document");
            racing.spawn(async move { d.request(Method::POST, &path, None).await });
        }
        let answers = join_all(racing).await;
        let taken = answers.iter().filter(|a| a.status == 202).count();
        let illegal = answers
            .iter()
            .filter(|a| {
                a.status == 409
                    && a.body["type"]
                        .as_str()
                        .is_some_and(|t| t.ends_with("/illegal-transition"))
            })
            .count();
        assert_eq!(
            (taken, illegal),
            (1, 5),
            "{id}: {:?}",
            answers.iter().map(|a| &a.text).collect::<Vec<_>>()
        );
        let requested = db
            .history(&id)
            .await
            .iter()
            .filter(|e| e["type"] == "DocumentRequested")
            .count();
        assert_eq!(requested, 1);
    }

    // Both copies forwarded requests to the other (the metrics count them).
    for d in [&da, &db] {
        let metrics = d.get("/metrics").await.text;
        let forwarded = metrics
            .lines()
            .find_map(|l| l.strip_prefix("ezenroll_forwarded_requests_total "))
            .and_then(|v| v.trim().parse::<f64>().ok());
        assert!(
            forwarded.is_some_and(|n| n > 0.0),
            "{}: {forwarded:?}",
            d.base
        );
    }
    a.terminate().await;
    b.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn copies_on_one_redis_behave_as_one_engine() {
    let redis = TestRedis::new();
    one_engine(&redis.url(), redis.prefix()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn copies_on_a_redis_cluster_behave_as_one_engine() {
    if skip_if_external("copies_on_a_redis_cluster_behave_as_one_engine") {
        return;
    }
    let cluster = RedisCluster::start(3);
    one_engine(&cluster_url(&cluster), "ez:").await;
}

/// A copy stopped with SIGTERM hands its enrollments over before it exits; one killed
/// with SIGKILL has them taken over when its lease runs out. Either way every enrollment
/// stays readable and writable through the copy left.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_copy_that_stops_or_dies_is_taken_over() {
    let redis = TestRedis::new();
    let (url, prefix) = (redis.url(), redis.prefix().to_owned());
    let dir = logs_dir();
    let mut a = server(&dir, "a", &url, &prefix, copy_settings());
    let mut b = server(&dir, "b", &url, &prefix, copy_settings());
    a.start().await;
    b.start().await;
    let da = Driver::new(a.base());
    let db = da.at(b.base());
    all_ready(&[&da, &db]).await;
    let customer = da.customer("김둘").await;
    let mut ids = Vec::new();
    for i in 0..12 {
        let d = if i % 2 == 0 { &da } else { &db };
        ids.push(d.plan(&customer).await);
    }

    // SIGTERM: b takes everything over; nothing waits for a lease to run out.
    let status = a.terminate().await;
    assert!(status.success(), "a stopped with {status}");
    for id in &ids {
        assert_eq!(db.status(id).await.0, "Planned");
        db.request_document(id).await;
    }

    // a again; then b dies. a serves everything once b's lease runs out.
    a.start().await;
    let da = da.at(a.base());
    all_ready(&[&da]).await;
    b.kill();
    for id in &ids {
        da.wait_status(id, "DocumentIssued").await;
        da.propose(id).await;
    }
    da.assert_acknowledged_kept().await;
    a.terminate().await;
}

/// A keyed proposal whose copy is killed while the provider is charging, retried with the
/// same key through another copy: the retry waits while the dead copy could still be
/// alive, then takes its claim over and gets what the request asked for (the contract),
/// and the provider's ledger, kept in Redis, shows the premium taken once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_keyed_request_retried_after_its_copy_died_gets_its_outcome() {
    let redis = TestRedis::new();
    let (url, prefix) = (redis.url(), redis.prefix().to_owned());
    let dir = logs_dir();
    let slow = Serve {
        // The kill lands while the provider is still charging.
        payment_latency: "3s",
        ..copy_settings()
    };
    let mut a = server(&dir, "a", &url, &prefix, slow);
    let mut b = server(&dir, "b", &url, &prefix, copy_settings());
    a.start().await;
    b.start().await;
    let da = Driver::new(a.base());
    let db = da.at(b.base());
    all_ready(&[&da, &db]).await;
    let customer = db.customer("김셋").await;
    // Made by a, so a owns it and runs its payment.
    let id = da.plan(&customer).await;
    da.request_document(&id).await;
    da.wait_status(&id, "DocumentIssued").await;

    let keyed = |d: &Driver| {
        d.http
            .post(format!("{}/enrollments/{id}/proposal", d.base))
            .header("idempotency-key", "proposal-once")
            .json(&serde_json::json!({"paymentMethod": "card"}))
    };
    let first = tokio::spawn(keyed(&da).send());
    eventually("the proposal to be taken", || async {
        let history = db.history(&id).await;
        if history.iter().any(|e| e["type"] == "ProposalSubmitted") {
            Ok(())
        } else {
            Err(format!("{} events", history.len()))
        }
    })
    .await;
    a.kill();
    let cut = first.await.expect("the first try's task");
    assert!(
        cut.is_err(),
        "the first try was answered before the kill: {cut:?}"
    );

    let mut waited = 0;
    let answer = loop {
        let response = keyed(&db).send().await.expect("b answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        if (status == 409 && text.contains("idempotency-key-in-use")) || status == 503 {
            waited += 1;
            assert!(waited < 200, "still {status} after {waited} tries: {text}");
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        break (status, text);
    };
    assert_eq!(answer.0, 200, "{}", answer.1);
    let body: Value = serde_json::from_str(&answer.1).expect("JSON");
    assert_eq!(body["status"], "Contracted", "{}", answer.1);
    // Once more: the answer is kept now.
    let again = keyed(&db).send().await.expect("b answers");
    assert_eq!(
        again
            .headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    // The premium was taken once, whatever the two copies did.
    let reference = id.replace('-', "");
    let mut redis_conn = redis.client().get_connection().expect("redis");
    let taken: Option<u64> = redis::cmd("HGET")
        .arg(redis.key(&format!("ledger:charge:{reference}")))
        .arg("n")
        .query(&mut redis_conn)
        .expect("the ledger");
    assert_eq!(taken, Some(1));
    let payments = db
        .history(&id)
        .await
        .iter()
        .filter(|e| e["type"] == "PaymentSucceeded")
        .count();
    assert_eq!(payments, 1);
    b.terminate().await;
}

/// The value of an unlabelled sample in a `/metrics` text (0 when missing).
async fn metric(d: &Driver, name: &str) -> f64 {
    let text = d.get("/metrics").await.text;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// A request one copy sends on to the enrollment's owner counts once against its caller's
/// rate limit, on the copy it reached first: the owner, which checks the copies' signature
/// on it, does not count it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forwarded_request_counts_once_against_the_rate_limit() {
    // One request a second: the bucket cannot refill meanwhile unless the requests below
    // take seconds each.
    const BURST: usize = 10;
    let redis = TestRedis::new();
    let (url, prefix) = (redis.url(), redis.prefix().to_owned());
    let dir = logs_dir();
    let limited = |name: &str| {
        server(&dir, name, &url, &prefix, copy_settings())
            .with_env("EZENROLL_RATE_LIMIT", "1")
            .with_env("EZENROLL_RATE_BURST", &BURST.to_string())
    };
    let (mut a, mut b) = (limited("a"), limited("b"));
    a.start().await;
    b.start().await;
    let da = Driver::new(a.base());
    let db = da.at(b.base());
    all_ready(&[&da, &db]).await;
    let customer = da.customer("한번만").await;
    // Made on b, in one of b's partitions: b owns it.
    let id = db.plan(&customer).await;

    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(crate::REQUEST_TIMEOUT)
        .build()
        .expect("an HTTP client");
    let token = crate::app::customer_token(&customer);
    let read = |base: String| {
        let request = client
            .get(format!("{base}/enrollments/{id}"))
            .bearer_auth(&token);
        async move {
            let response = request.send().await.expect("an answer");
            response.status().as_u16()
        }
    };

    let forwarded = metric(&da, "ezenroll_forwarded_requests_total").await;
    for i in 0..BURST {
        assert_eq!(read(a.base()).await, 200, "request {i} through a");
    }
    assert_eq!(
        metric(&da, "ezenroll_forwarded_requests_total").await - forwarded,
        BURST as f64,
        "a sent every one on to b, the owner"
    );
    // b did not count them: the customer's whole burst is still there.
    for i in 0..BURST {
        assert_eq!(read(b.base()).await, 200, "request {i} on b itself");
    }
    assert_eq!(metric(&db, "ezenroll_rate_limited_total").await, 0.0);
    // a did: the customer's bucket there is empty.
    let mut through_a = Vec::new();
    for _ in 0..3 {
        through_a.push(read(a.base()).await);
        if through_a.last() == Some(&429) {
            break;
        }
    }
    assert_eq!(through_a.last(), Some(&429), "{through_a:?}");
    a.terminate().await;
    b.terminate().await;
}
