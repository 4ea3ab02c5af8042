//! Recovery with real processes: `ezenroll serve` and `ezenroll worker` run as child
//! processes of the test against a redis-server (or a Redis Cluster) the test owns, and are
//! driven over HTTP with tokens signed with the test secret. Each test SIGKILLs or SIGTERMs
//! a server, a worker or Redis itself mid-flow and checks what must survive:
//!
//! - every answer of 2xx is in the store afterwards (status and version at least as far);
//! - durable work in flight (document issuance, refunds) completes by itself;
//! - the consumers catch up: MyPage shows every enrollment's latest status, and there is
//!   exactly one alarm per event (the Notifier sends one for every event), delivered at most
//!   once (exactly once when no notifier was killed), counted in the notifiers' logs.
//!
//! Waits are semantic (poll until a condition holds, up to [`WAIT`]); nothing asserts speed.
//! With `REDIS_URL` set, the tests that kill Redis or start a cluster print why they skip;
//! the others use that server under their own key prefix.

#[path = "common/http.rs"]
mod app;
#[path = "common/procs.rs"]
mod procs;
#[path = "common/redis.rs"]
mod redis_fixture;

use app::{Answer, TEST_SECRET, admin_token, plan_body};
use chrono::{DateTime, Utc};
use procs::{Ezenroll, LogsDir};
use redis_fixture::{RedisCluster, RedisOptions, RedisServer, TestRedis, skip_if_external};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;

/// How long anything eventual may take; only a broken system reaches it.
const WAIT: Duration = Duration::from_secs(30);

/// An answer that takes longer is a hang, and fails the test.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Alarms and views one listing returns (the API's maximum); more than any test makes.
const LIST: usize = 1000;

// ---------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------

/// How a test's `serve` runs, beyond the store.
#[derive(Clone, Copy)]
struct Serve {
    document_delay: &'static str,
    payment_latency: &'static str,
    /// `all`, `notifier`, `mypage` or `none`.
    consumers: &'static str,
}

impl Default for Serve {
    fn default() -> Self {
        Serve {
            document_delay: "200ms",
            payment_latency: "20ms",
            consumers: "all",
        }
    }
}

/// Where the state lives: every process of a test shares these.
fn store_args(url: &str, prefix: &str) -> Vec<String> {
    [
        "--redis-url",
        url,
        "--redis-prefix",
        prefix,
        "--partitions",
        "4",
        // Events a dead consumer had read and not acknowledged are taken over after
        // this long (30 s by default).
        "--claim-idle",
        "1s",
    ]
    .map(String::from)
    .to_vec()
}

fn serve_args(url: &str, prefix: &str, serve: Serve) -> Vec<String> {
    let mut args = store_args(url, prefix);
    args.extend(
        [
            // Timers a dead server had claimed fire again after this long (30 s by
            // default); above the slowest payment latency used here (2 s).
            "--timer-lease",
            "3s",
            "--document-delay",
            serve.document_delay,
            "--payment-latency",
            serve.payment_latency,
            "--consumers",
            serve.consumers,
        ]
        .map(String::from),
    );
    args
}

fn server(dir: &LogsDir, name: &str, url: &str, prefix: &str, s: Serve) -> Ezenroll {
    Ezenroll::serve(name, dir.path(), TEST_SECRET, &serve_args(url, prefix, s))
}

fn worker(dir: &LogsDir, name: &str, role: &str, url: &str, prefix: &str) -> Ezenroll {
    let mut args = vec!["--role".to_owned(), role.to_owned()];
    args.extend(store_args(url, prefix));
    Ezenroll::worker(name, dir.path(), &args)
}

fn logs_dir() -> LogsDir {
    LogsDir::new()
}

// ---------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------

/// An admin client of one server, and the ledger of what servers acknowledged.
#[derive(Clone)]
struct Driver {
    http: reqwest::Client,
    base: String,
    ledger: Ledger,
}

/// What servers answered 2xx about: per enrollment the furthest status and version, and
/// the customers registered.
#[derive(Clone, Default)]
struct Ledger {
    enrollments: Arc<Mutex<BTreeMap<String, (String, u64)>>>,
    customers: Arc<Mutex<Vec<String>>>,
}

impl Ledger {
    fn record(&self, a: &Answer) {
        let (Some(id), Some(status), Some(version)) = (
            a.body["id"].as_str(),
            a.body["status"].as_str(),
            a.body["version"].as_u64(),
        ) else {
            panic!("a 2xx answer without id, status and version: {}", a.text);
        };
        let mut all = self.enrollments.lock().expect("the ledger");
        let entry = all
            .entry(id.to_owned())
            .or_insert_with(|| (status.to_owned(), version));
        if version > entry.1 {
            *entry = (status.to_owned(), version);
        }
    }

    fn enrollments(&self) -> BTreeMap<String, (String, u64)> {
        self.enrollments.lock().expect("the ledger").clone()
    }

    fn customers(&self) -> Vec<String> {
        self.customers.lock().expect("the ledger").clone()
    }
}

impl Driver {
    fn new(base: String) -> Driver {
        Driver::with_ledger(base, Ledger::default())
    }

    fn with_ledger(base: String, ledger: Ledger) -> Driver {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {}", admin_token())
                .parse()
                .expect("a header value"),
        );
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(REQUEST_TIMEOUT)
            .default_headers(headers)
            .build()
            .expect("an HTTP client");
        Driver { http, base, ledger }
    }

    /// The same ledger, another server (a restarted one listens on a new port).
    fn at(&self, base: String) -> Driver {
        Driver::with_ledger(base, self.ledger.clone())
    }

    async fn try_request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, reqwest::Error> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Answer {
            status,
            headers,
            body,
            text,
        })
    }

    async fn request(&self, method: Method, path: &str, body: Option<&Value>) -> Answer {
        let what = format!("{method} {path}");
        self.try_request(method, path, body)
            .await
            .unwrap_or_else(|e| panic!("{what}: no answer from {}: {e}", self.base))
    }

    async fn get(&self, path: &str) -> Answer {
        self.request(Method::GET, path, None).await
    }

    /// A command on an enrollment that must answer `status`; recorded in the ledger.
    async fn command(&self, path: &str, body: Option<&Value>, status: u16) -> Answer {
        let a = self.request(Method::POST, path, body).await;
        assert_eq!(a.status, status, "POST {path}: {}", a.text);
        self.ledger.record(&a);
        a
    }

    async fn customer(&self, name: &str) -> String {
        let a = self
            .request(Method::POST, "/customers", Some(&customer_body(name)))
            .await;
        assert_eq!(a.status, 201, "POST /customers: {}", a.text);
        let no = a.body["customerNo"]
            .as_str()
            .expect("a customer number")
            .to_owned();
        self.ledger
            .customers
            .lock()
            .expect("the ledger")
            .push(no.clone());
        no
    }

    async fn plan(&self, customer_no: &str) -> String {
        let a = self
            .command("/enrollments", Some(&plan_body(customer_no)), 201)
            .await;
        a.body["id"].as_str().expect("an id").to_owned()
    }

    async fn request_document(&self, id: &str) {
        self.command(&format!("/enrollments/{id}/document"), None, 202)
            .await;
    }

    async fn propose(&self, id: &str) {
        let a = self
            .command(
                &format!("/enrollments/{id}/proposal"),
                Some(&proposal_body()),
                200,
            )
            .await;
        assert_eq!(a.body["status"], "Contracted", "{}", a.text);
    }

    async fn retry_payment(&self, id: &str) {
        let a = self
            .command(&format!("/enrollments/{id}/payment"), None, 200)
            .await;
        assert_eq!(a.body["status"], "Contracted", "{}", a.text);
    }

    async fn withdraw(&self, id: &str) {
        self.command(&format!("/enrollments/{id}/withdrawal"), None, 202)
            .await;
    }

    /// Status and version, as the server has them.
    async fn status(&self, id: &str) -> (String, u64) {
        let a = self.get(&format!("/enrollments/{id}")).await;
        assert_eq!(a.status, 200, "GET /enrollments/{id}: {}", a.text);
        (
            a.body["status"].as_str().expect("a status").to_owned(),
            a.body["version"].as_u64().expect("a version"),
        )
    }

    /// Every event of the enrollment, read from the store (not from the actor's memory).
    async fn history(&self, id: &str) -> Vec<Value> {
        let a = self.get(&format!("/enrollments/{id}/events")).await;
        assert_eq!(a.status, 200, "GET /enrollments/{id}/events: {}", a.text);
        a.body.as_array().expect("a list of events").clone()
    }

    async fn wait_status(&self, id: &str, status: &str) {
        eventually(&format!("{id} to reach {status}"), || async {
            let (now, _) = self.status(id).await;
            if now == status { Ok(()) } else { Err(now) }
        })
        .await;
    }

    /// Every acknowledged change is in the store: the enrollment's history is at least as
    /// long as the acknowledged version and its status at least as far; every registered
    /// customer is there.
    async fn assert_acknowledged_kept(&self) {
        let acked = self.ledger.enrollments();
        assert!(!acked.is_empty(), "nothing was acknowledged");
        for (id, (status, version)) in &acked {
            let events = self.history(id).await;
            assert!(
                events.len() as u64 >= *version,
                "{id}: acknowledged at version {version} ({status}), the store has {} events",
                events.len()
            );
            let (now, now_version) = self.status(id).await;
            assert!(
                now_version >= *version && rank(&now) >= rank(status),
                "{id}: acknowledged {status} at version {version}, now {now} at {now_version}"
            );
        }
        for no in self.ledger.customers() {
            let a = self.get(&format!("/customers/{no}")).await;
            assert_eq!(a.status, 200, "customer {no} was acknowledged: {}", a.text);
        }
    }
}

fn customer_body(name: &str) -> Value {
    json!({"name": name, "birthDate": "1986-05-01", "gender": "male",
           "mobilePhone": "010-1234-5678"})
}

fn proposal_body() -> Value {
    json!({"paymentMethod": "card"})
}

/// How far along the lifecycle a status is, on the paths these tests take.
fn rank(status: &str) -> u8 {
    match status {
        "Planned" => 0,
        "DocumentRequested" => 1,
        "DocumentIssued" => 2,
        "Proposed" | "PaymentFailed" => 3,
        "Contracted" => 4,
        "WithdrawalRequested" => 5,
        "Withdrawn" => 6,
        other => panic!("a status these tests never reach: {other}"),
    }
}

/// Polls `probe` until it is `Ok`, up to [`WAIT`]; on timeout, panics with its last `Err`.
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match probe().await {
            Ok(found) => return found,
            Err(last) if tokio::time::Instant::now() >= deadline => {
                panic!("timed out after {WAIT:?} waiting for {what}; last seen: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Awaits every task, re-raising the first panic among them.
async fn join_all<T: 'static>(mut tasks: JoinSet<T>) -> Vec<T> {
    let mut out = Vec::with_capacity(tasks.len());
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(value) => out.push(value),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("a task did not finish: {e}"),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Journeys
// ---------------------------------------------------------------------------------------

/// How far a journey goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Journey {
    /// Plan, document requested and issued.
    Issued,
    /// ... proposal and first premium paid.
    Contracted,
    /// ... withdrawn and refunded.
    Withdrawn,
}

/// Runs the journeys concurrently, one enrollment each, customers taking turns; returns
/// the enrollment ids in the order of `journeys`.
async fn drive(d: &Driver, customers: &[String], journeys: &[Journey]) -> Vec<String> {
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

async fn customers(d: &Driver, n: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(d.customer(&format!("복구고객{i}")).await);
    }
    out
}

/// Proposals sent and not awaited: each is in flight (its payment taken, not answered)
/// once this returns. Their answers come with the task's result.
async fn propose_in_flight(
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
async fn finish_interrupted_proposal(d: &Driver, id: &str) {
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

// ---------------------------------------------------------------------------------------
// Consumers caught up
// ---------------------------------------------------------------------------------------

/// What the alarm channel must have done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Delivery {
    /// A notifier was killed: an alarm recorded just before the kill may never have gone
    /// out, but none went out twice.
    AtMostOnce,
    /// Every recorded alarm went out, once.
    ExactlyOnce,
}

/// Waits until the consumers have caught up with `ids` (whose statuses must be final) and
/// checks the alarms: MyPage shows each enrollment at its status and version; there is
/// exactly one alarm per event of these enrollments and no other; the notifiers' logs show
/// each delivered at most (or exactly) once. Returns the alarms delivered per notifier.
async fn assert_caught_up(
    d: &Driver,
    ids: &[String],
    notifiers: &[&Ezenroll],
    delivery: Delivery,
) -> Vec<usize> {
    let mut truth: BTreeMap<String, (String, u64)> = BTreeMap::new();
    let mut events: HashMap<String, String> = HashMap::new();
    for id in ids {
        let (status, version) = d.status(id).await;
        let history = d.history(id).await;
        assert_eq!(history.len() as u64, version, "{id}: history vs version");
        for e in history {
            let event = e["id"].as_str().expect("an event id").to_owned();
            events.insert(event, id.clone());
        }
        truth.insert(id.clone(), (status, version));
    }

    eventually(
        "MyPage to show every enrollment's latest status",
        || async {
            let a = d.get(&format!("/mypage?limit={LIST}")).await;
            if a.status != 200 {
                return Err(a.text);
            }
            let seen: BTreeMap<String, (String, u64)> = a
                .body
                .as_array()
                .expect("a list of views")
                .iter()
                .map(|v| {
                    (
                        v["enrollmentId"].as_str().unwrap_or_default().to_owned(),
                        (
                            v["status"].as_str().unwrap_or_default().to_owned(),
                            v["version"].as_u64().unwrap_or_default(),
                        ),
                    )
                })
                .collect();
            let behind: Vec<String> = truth
                .iter()
                .filter(|(id, t)| seen.get(*id) != Some(t))
                .map(|(id, t)| format!("{id} is {t:?}, MyPage {:?}", seen.get(id)))
                .collect();
            if behind.is_empty() {
                Ok(())
            } else {
                Err(behind.join("; "))
            }
        },
    )
    .await;

    let alarms: Vec<Value> = eventually("an alarm for every event", || async {
        let a = d.get(&format!("/alarms?limit={LIST}")).await;
        if a.status != 200 {
            return Err(a.text);
        }
        let list = a.body.as_array().expect("a list of alarms").clone();
        let have: HashSet<&str> = list.iter().filter_map(|a| a["eventId"].as_str()).collect();
        let missing = events.keys().filter(|e| !have.contains(e.as_str())).count();
        if missing == 0 {
            Ok(list)
        } else {
            Err(format!(
                "{missing} of {} events without an alarm",
                events.len()
            ))
        }
    })
    .await;
    let mut per_event: HashMap<&str, usize> = HashMap::new();
    for alarm in &alarms {
        let event = alarm["eventId"].as_str().expect("an event id");
        *per_event.entry(event).or_default() += 1;
        assert_eq!(
            events.get(event),
            alarm["enrollmentId"].as_str().map(str::to_owned).as_ref(),
            "an alarm for an event that is not one of these enrollments': {alarm}"
        );
    }
    let doubled: Vec<_> = per_event.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "alarms recorded twice: {doubled:?}");
    assert_eq!(alarms.len(), events.len(), "one alarm per event");

    // The channel: what the notifiers' logs say went out.
    let mut recorded: HashMap<String, usize> = HashMap::new();
    for alarm in &alarms {
        let message = alarm["message"].as_str().expect("a message").to_owned();
        *recorded.entry(message).or_default() += 1;
    }
    let delivered = |notifiers: &[&Ezenroll]| {
        let mut all: HashMap<String, usize> = HashMap::new();
        let mut each = Vec::new();
        for n in notifiers {
            let sent = n.delivered_alarms();
            each.push(sent.len());
            for m in sent {
                *all.entry(m).or_default() += 1;
            }
        }
        (all, each)
    };
    if delivery == Delivery::ExactlyOnce {
        eventually("every alarm delivered", || async {
            let (all, _) = delivered(notifiers);
            let n: usize = all.values().sum();
            if n >= alarms.len() {
                Ok(())
            } else {
                Err(format!("{n} of {} delivered", alarms.len()))
            }
        })
        .await;
    }
    let (all, each) = delivered(notifiers);
    for (message, n) in &all {
        let kept = recorded.get(message).copied().unwrap_or(0);
        assert!(
            *n <= kept,
            "delivered {n} times, recorded {kept} times: {message:?}"
        );
    }
    if delivery == Delivery::ExactlyOnce {
        assert_eq!(
            all.values().sum::<usize>(),
            alarms.len(),
            "each alarm delivered once"
        );
    }
    each
}

// ---------------------------------------------------------------------------------------
// Peeking into Redis
// ---------------------------------------------------------------------------------------

/// The type of each enrollment's last event as Redis holds it (single server only): what
/// was pending when a server died.
fn last_events_in_redis(client: &redis::Client, prefix: &str, ids: &[String]) -> Vec<String> {
    let mut con = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .expect("a connection to the test's Redis");
    ids.iter()
        .map(|id| {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{prefix}*:hist:{id}"))
                .query(&mut con)
                .expect("KEYS");
            let [key] = keys.as_slice() else {
                panic!("{id}: history keys {keys:?}");
            };
            let last: Vec<String> = redis::cmd("LRANGE")
                .arg(key)
                .arg(-1)
                .arg(-1)
                .query(&mut con)
                .expect("LRANGE");
            let event: Value = serde_json::from_str(&last[0]).expect("an event");
            event["type"].as_str().unwrap_or_default().to_owned()
        })
        .collect()
}

/// Entries delivered to each consumer group and not acknowledged (XPENDING), over the
/// partitions `store_args` configures.
fn unacknowledged_in_redis(client: &redis::Client, prefix: &str) -> Vec<(&'static str, u64)> {
    let mut con = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .expect("a connection to the test's Redis");
    ["notifier", "mypage"]
        .into_iter()
        .map(|group| {
            let pending: u64 = (0..4)
                .map(|p| {
                    let summary: Vec<redis::Value> = redis::cmd("XPENDING")
                        .arg(format!("{prefix}{{p{p}}}:log"))
                        .arg(group)
                        .query(&mut con)
                        .expect("XPENDING");
                    match summary.first() {
                        Some(redis::Value::Int(n)) => *n as u64,
                        _ => 0,
                    }
                })
                .sum();
            (group, pending)
        })
        .collect()
}

fn event_time(history: &[Value], kind: &str) -> Option<DateTime<Utc>> {
    history
        .iter()
        .find(|e| e["type"] == kind)
        .and_then(|e| e["time"].as_str())
        .and_then(|t| t.parse().ok())
}

// ---------------------------------------------------------------------------------------
// 1 and 5: a server killed mid-flow, started again on the same Redis
// ---------------------------------------------------------------------------------------

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
fn cluster_url(cluster: &RedisCluster) -> String {
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

// ---------------------------------------------------------------------------------------
// 2: Redis restarted under a running server
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// 3: two notifier workers in one group
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_notifier_workers_share_the_group_and_each_alarm_goes_out_once() {
    // Scenario 3: `serve --consumers none`, two notifier workers and a MyPage worker.
    let redis = TestRedis::new();
    let (url, prefix) = (redis.url(), redis.prefix().to_owned());
    let dir = logs_dir();
    let mut notifiers = [
        worker(&dir, "notifier-1", "notifier", &url, &prefix),
        worker(&dir, "notifier-2", "notifier", &url, &prefix),
    ];
    let mut mypage = worker(&dir, "mypage", "mypage", &url, &prefix);
    for n in &mut notifiers {
        n.start().await;
    }
    mypage.start().await;
    let only_api = Serve {
        consumers: "none",
        ..Serve::default()
    };
    let mut serve = server(&dir, "serve", &url, &prefix, only_api);
    serve.start().await;
    let d = Driver::new(serve.base());
    let people = customers(&d, 3).await;
    let mut journeys = vec![Journey::Issued; 4];
    journeys.extend([Journey::Contracted; 5]);
    journeys.extend([Journey::Withdrawn; 3]);
    let ids = drive(&d, &people, &journeys).await;

    let [n1, n2] = &notifiers;
    let each = assert_caught_up(&d, &ids, &[n1, n2], Delivery::ExactlyOnce).await;
    assert!(
        serve.delivered_alarms().is_empty(),
        "serve --consumers none sent alarms"
    );
    println!("alarms delivered by notifier-1 and notifier-2: {each:?}");
    assert!(
        each.iter().all(|&n| n > 0),
        "both notifiers should have done some of the work: {each:?}"
    );

    // One notifier hangs (SIGSTOP) and then dies (SIGKILL) while events flow: whatever
    // Redis handed it stays pending under its name until the other takes it over (after
    // --claim-idle), and still every alarm goes out once.
    notifiers[0].pause();
    let mut journeys = vec![Journey::Contracted; 4];
    journeys.extend([Journey::Withdrawn; 2]);
    let second = drive(&d, &people, &journeys).await;
    notifiers[0].kill();
    let all: Vec<String> = ids.iter().chain(&second).cloned().collect();
    let [n1, n2] = &notifiers;
    let after = assert_caught_up(&d, &all, &[n1, n2], Delivery::ExactlyOnce).await;
    assert_eq!(after[0], each[0], "notifier-1 delivered while stopped");
    let took_over = n2
        .log_lines()
        .iter()
        .filter(|l| l.message() == "took over stale entries")
        .count();
    println!(
        "with notifier-1 stopped, then killed: delivered {after:?}; takeovers by notifier-2: \
         {took_over}"
    );

    // The others stop cleanly, as deployments stop them.
    for n in notifiers[1..].iter_mut().chain([&mut mypage]) {
        let status = n.terminate().await;
        assert!(status.success(), "{} exited with {status}", n.name());
    }
    serve.assert_running();
}

// ---------------------------------------------------------------------------------------
// 4: a consumer stopped for a while catches up
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_mypage_worker_catches_up_when_it_starts_again() {
    let redis = TestRedis::new();
    let (url, prefix) = (redis.url(), redis.prefix().to_owned());
    let dir = logs_dir();
    let with_notifier = Serve {
        consumers: "notifier",
        ..Serve::default()
    };
    let mut serve = server(&dir, "serve", &url, &prefix, with_notifier);
    let mut mypage = worker(&dir, "mypage", "mypage", &url, &prefix);
    mypage.start().await;
    serve.start().await;
    let d = Driver::new(serve.base());
    let people = customers(&d, 2).await;
    let first = drive(&d, &people, &[Journey::Contracted; 3]).await;
    assert_caught_up(&d, &first, &[&serve], Delivery::ExactlyOnce).await;

    // Stopped (SIGTERM): nothing projects while enrollments go on.
    let status = mypage.terminate().await;
    assert!(status.success(), "mypage exited with {status}");
    let second = drive(&d, &people, &[Journey::Contracted; 3]).await;
    d.withdraw(&first[0]).await;
    d.wait_status(&first[0], "Withdrawn").await;
    for id in &second {
        let a = d.get(&format!("/mypage/{id}")).await;
        assert_eq!(a.status, 404, "a view of {id} with no projector running");
    }
    let stale = d.get(&format!("/mypage/{}", first[0])).await;
    assert_eq!(stale.body["status"], "Contracted", "{}", stale.text);

    mypage.start().await;
    let mut all: Vec<String> = first.iter().chain(&second).cloned().collect();
    assert_caught_up(&d, &all, &[&serve], Delivery::ExactlyOnce).await;

    // Killed (SIGKILL) this time: the group still knows where it was.
    mypage.kill();
    let third = drive(&d, &people, &[Journey::Issued, Journey::Withdrawn]).await;
    mypage.start().await;
    all.extend(third);
    assert_caught_up(&d, &all, &[&serve], Delivery::ExactlyOnce).await;
    serve.assert_running();
}
