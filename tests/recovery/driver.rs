//! Driving a server over HTTP, and the ledger of what it acknowledged.

use crate::app::{Answer, admin_token, plan_body};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;

use crate::{REQUEST_TIMEOUT, WAIT};

/// An admin client of one server, and the ledger of what servers acknowledged.
#[derive(Clone)]
pub(crate) struct Driver {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) ledger: Ledger,
}

/// What servers answered 2xx about: per enrollment the furthest status and version, and
/// the customers registered.
#[derive(Clone, Default)]
pub(crate) struct Ledger {
    pub(crate) enrollments: Arc<Mutex<BTreeMap<String, (String, u64)>>>,
    pub(crate) customers: Arc<Mutex<Vec<String>>>,
}

impl Ledger {
    pub(crate) fn record(&self, a: &Answer) {
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

    pub(crate) fn enrollments(&self) -> BTreeMap<String, (String, u64)> {
        self.enrollments.lock().expect("the ledger").clone()
    }

    pub(crate) fn customers(&self) -> Vec<String> {
        self.customers.lock().expect("the ledger").clone()
    }
}

impl Driver {
    pub(crate) fn new(base: String) -> Driver {
        Driver::with_ledger(base, Ledger::default())
    }

    pub(crate) fn with_ledger(base: String, ledger: Ledger) -> Driver {
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
    pub(crate) fn at(&self, base: String) -> Driver {
        Driver::with_ledger(base, self.ledger.clone())
    }

    pub(crate) async fn try_request(
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

    pub(crate) async fn request(&self, method: Method, path: &str, body: Option<&Value>) -> Answer {
        let what = format!("{method} {path}");
        self.try_request(method, path, body)
            .await
            .unwrap_or_else(|e| panic!("{what}: no answer from {}: {e}", self.base))
    }

    pub(crate) async fn get(&self, path: &str) -> Answer {
        self.request(Method::GET, path, None).await
    }

    /// A command on an enrollment that must answer `status`; recorded in the ledger.
    pub(crate) async fn command(&self, path: &str, body: Option<&Value>, status: u16) -> Answer {
        let a = self.request(Method::POST, path, body).await;
        assert_eq!(a.status, status, "POST {path}: {}", a.text);
        self.ledger.record(&a);
        a
    }

    pub(crate) async fn customer(&self, name: &str) -> String {
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

    pub(crate) async fn plan(&self, customer_no: &str) -> String {
        let a = self
            .command("/enrollments", Some(&plan_body(customer_no)), 201)
            .await;
        a.body["id"].as_str().expect("an id").to_owned()
    }

    pub(crate) async fn request_document(&self, id: &str) {
        self.command(&format!("/enrollments/{id}/document"), None, 202)
            .await;
    }

    pub(crate) async fn propose(&self, id: &str) {
        let a = self
            .command(
                &format!("/enrollments/{id}/proposal"),
                Some(&proposal_body()),
                200,
            )
            .await;
        assert_eq!(a.body["status"], "Contracted", "{}", a.text);
    }

    pub(crate) async fn retry_payment(&self, id: &str) {
        let a = self
            .command(&format!("/enrollments/{id}/payment"), None, 200)
            .await;
        assert_eq!(a.body["status"], "Contracted", "{}", a.text);
    }

    pub(crate) async fn withdraw(&self, id: &str) {
        self.command(&format!("/enrollments/{id}/withdrawal"), None, 202)
            .await;
    }

    /// Status and version, as the server has them.
    pub(crate) async fn status(&self, id: &str) -> (String, u64) {
        let a = self.get(&format!("/enrollments/{id}")).await;
        assert_eq!(a.status, 200, "GET /enrollments/{id}: {}", a.text);
        (
            a.body["status"].as_str().expect("a status").to_owned(),
            a.body["version"].as_u64().expect("a version"),
        )
    }

    /// Every event of the enrollment, read from the store (not from the actor's memory).
    pub(crate) async fn history(&self, id: &str) -> Vec<Value> {
        let a = self.get(&format!("/enrollments/{id}/events")).await;
        assert_eq!(a.status, 200, "GET /enrollments/{id}/events: {}", a.text);
        a.body.as_array().expect("a list of events").clone()
    }

    pub(crate) async fn wait_status(&self, id: &str, status: &str) {
        eventually(&format!("{id} to reach {status}"), || async {
            let (now, _) = self.status(id).await;
            if now == status { Ok(()) } else { Err(now) }
        })
        .await;
    }

    /// Every acknowledged change is in the store: the enrollment's history is at least as
    /// long as the acknowledged version and its status at least as far; every registered
    /// customer is there.
    pub(crate) async fn assert_acknowledged_kept(&self) {
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

pub(crate) fn customer_body(name: &str) -> Value {
    json!({"name": name, "birthDate": "1986-05-01", "gender": "male",
           "mobilePhone": "010-1234-5678"})
}

pub(crate) fn proposal_body() -> Value {
    json!({"paymentMethod": "card"})
}

/// How far along the lifecycle a status is, on the paths these tests take.
pub(crate) fn rank(status: &str) -> u8 {
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
pub(crate) async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
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
pub(crate) async fn join_all<T: 'static>(mut tasks: JoinSet<T>) -> Vec<T> {
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
