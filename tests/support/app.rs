//! Fixtures for HTTP tests: each test gets its own engine (on the store it is given, so the
//! HTTP suites run on the memory backend and on Redis alike; short delays, a simulated
//! payment provider it controls) behind a real server on port 0, a real HTTP client, and
//! helpers that read problem documents and wait for eventual things.
//!
//! Requests go out with an admin token unless a test asks for another [`Caller`]
//! ([`TestApp::as_customer`], [`TestApp::anonymous`], [`TestApp::with_token`]). Tokens are
//! signed with [`TEST_SECRET`], a literal that exists only in the tests.

#![allow(dead_code)]

use ezenroll::actors::consumers::ConsumerConfig;
use ezenroll::actors::payment::{PaymentProvider, SimulatedProvider, Simulation};
use ezenroll::actors::{Engine, EngineConfig, EngineHandle, Extensions};
use ezenroll::http::HttpConfig;
use ezenroll::http::auth::{AuthKeys, Role};
use ezenroll::store::{PaymentLedger, Store};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How long anything eventually-consistent may take; only a broken system reaches it.
pub const WAIT: Duration = Duration::from_secs(15);

/// The secret test servers verify tokens with.
pub const TEST_SECRET: &str = "ezenroll-tests-only-secret-0123456789";

pub fn test_keys() -> AuthKeys {
    AuthKeys::from_secret(TEST_SECRET.as_bytes()).expect("the test secret is long enough")
}

/// The default HTTP settings with the test keys.
pub fn http_config() -> HttpConfig {
    HttpConfig::new(test_keys())
}

/// A token signed with the test secret.
pub fn token(role: Role, sub: &str) -> String {
    test_keys()
        .mint(role, sub, Duration::from_secs(600))
        .expect("a token")
}

pub fn admin_token() -> String {
    token(Role::Admin, "test-admin")
}

pub fn customer_token(customer_no: &str) -> String {
    token(Role::Customer, customer_no)
}

/// A client of the server: its base URL and a client that sends one token (or none).
#[derive(Clone)]
pub struct Caller {
    pub base: String,
    pub client: reqwest::Client,
}

pub struct TestApp {
    pub addr: SocketAddr,
    /// The admin caller every `TestApp` request helper goes through.
    pub admin: Caller,
    pub engine: EngineHandle,
    /// The store the engine runs on (shared with any other app started on it).
    pub store: Arc<dyn Store>,
    pub provider: Arc<SimulatedProvider>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

pub fn engine_config() -> EngineConfig {
    EngineConfig {
        arbiters: 2,
        document_delay: Duration::from_millis(30),
        timer_poll: Duration::from_millis(20),
        timer_lease: Duration::from_secs(1),
        refund_backoff_initial: Duration::from_millis(20),
        refund_backoff_max: Duration::from_millis(200),
        consumers: ConsumerConfig {
            block: Duration::from_millis(50),
            claim_idle: Duration::from_millis(500),
            claim_every: Duration::from_millis(100),
            ..ConsumerConfig::default()
        },
        ..EngineConfig::default()
    }
}

pub fn healthy() -> Simulation {
    Simulation {
        latency: Duration::from_millis(2),
        decline_rate: 0.0,
        failure_rate: 0.0,
    }
}

/// An app on `store` with a healthy provider and the default HTTP settings.
pub async fn spawn_app(store: Arc<dyn Store>) -> TestApp {
    spawn_app_with(store, engine_config(), healthy(), http_config()).await
}

fn client_with(token: Option<&str>) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(t) = token {
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {t}").parse().expect("a header value"),
        );
    }
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("a client")
}

/// A caller of a server at `addr` that sends `token` (or none), for tests that start the
/// server themselves.
pub fn caller_for(addr: SocketAddr, token: Option<&str>) -> Caller {
    Caller {
        base: format!("http://{addr}"),
        client: client_with(token),
    }
}

/// An app on `store`: a new engine (another one may already run on the same store) and a
/// server in front of it.
pub async fn spawn_app_with(
    store: Arc<dyn Store>,
    config: EngineConfig,
    sim: Simulation,
    http: HttpConfig,
) -> TestApp {
    let ledger = Arc::clone(&store) as Arc<dyn PaymentLedger>;
    let provider = Arc::new(SimulatedProvider::new(sim, 11, ledger));
    let ext = Extensions {
        payment_provider: Some(Arc::clone(&provider) as Arc<dyn PaymentProvider>),
        ..Extensions::default()
    };
    let engine = Engine::start_with(config, Arc::clone(&store), ext)
        .await
        .expect("the engine starts");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let (addr, server) = ezenroll::http::serve(
        engine.clone(),
        "127.0.0.1:0".parse().expect("an address"),
        http,
        async {
            let _ = rx.await;
        },
    )
    .expect("the server binds");
    let server = tokio::spawn(server);
    TestApp {
        addr,
        admin: Caller {
            base: format!("http://{addr}"),
            client: client_with(Some(&admin_token())),
        },
        engine,
        store,
        provider,
        shutdown: Some(tx),
        server: Some(server),
    }
}

/// A response read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Answer {
    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Asserts a problem document of `status` and the `type` ending in `kind`.
    pub fn assert_problem(&self, status: u16, kind: &str) -> &Value {
        assert_eq!(self.status, status, "status of {}", self.text);
        assert_eq!(
            self.content_type(),
            "application/problem+json",
            "content type of {}",
            self.text
        );
        assert_eq!(
            self.body["type"],
            format!("https://ezenroll.dev/problems/{kind}"),
            "type of {}",
            self.text
        );
        assert_eq!(self.body["status"], status);
        assert!(self.body["title"].is_string(), "a title in {}", self.text);
        assert!(self.body["detail"].is_string(), "a detail in {}", self.text);
        &self.body
    }
}

impl std::ops::Deref for TestApp {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.admin
    }
}

impl TestApp {
    /// A caller that sends `token`, whatever it is.
    pub fn with_token(&self, token: &str) -> Caller {
        Caller {
            base: self.admin.base.clone(),
            client: client_with(Some(token)),
        }
    }

    /// A caller with a valid customer token for `customer_no`.
    pub fn as_customer(&self, customer_no: &str) -> Caller {
        self.with_token(&customer_token(customer_no))
    }

    /// A caller without any token.
    pub fn anonymous(&self) -> Caller {
        Caller {
            base: self.admin.base.clone(),
            client: client_with(None),
        }
    }

    /// Signals the server to stop and waits until it has; then stops the engine.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("the server ends cleanly");
        }
        self.engine.shutdown().await;
    }
}

impl Caller {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::Null)
        };
        Answer {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(self.client.get(self.url(path))).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.send(self.client.post(self.url(path)).json(body)).await
    }

    pub async fn post_raw(&self, path: &str, body: &str) -> Answer {
        self.send(
            self.client
                .post(self.url(path))
                .header("content-type", "application/json")
                .body(body.to_owned()),
        )
        .await
    }

    pub async fn post_empty(&self, path: &str) -> Answer {
        self.send(self.client.post(self.url(path))).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Answer {
        self.send(self.client.put(self.url(path)).json(body)).await
    }

    /// Registers a customer and returns its number.
    pub async fn customer(&self, name: &str) -> String {
        let a = self
            .post(
                "/customers",
                &json!({"name": name, "birthDate": "1986-05-01", "gender": "male",
                        "mobilePhone": "010-1234-5678"}),
            )
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
        a.body["customerNo"]
            .as_str()
            .expect("a customer number")
            .to_owned()
    }

    /// Saves an EZ-TERM plan and returns the enrollment id.
    pub async fn plan(&self, customer_no: &str) -> String {
        let a = self.post("/enrollments", &plan_body(customer_no)).await;
        assert_eq!(a.status, 201, "{}", a.text);
        a.body["id"].as_str().expect("an id").to_owned()
    }

    /// Saves a plan, requests its document and waits until it is issued.
    pub async fn issued(&self, customer_no: &str) -> String {
        let id = self.plan(customer_no).await;
        let a = self
            .post_empty(&format!("/enrollments/{id}/document"))
            .await;
        assert_eq!(a.status, 202, "{}", a.text);
        self.wait_status(&id, "DocumentIssued").await;
        id
    }

    /// Polls `GET /enrollments/{id}` until it shows `status`.
    pub async fn wait_status(&self, id: &str, status: &str) -> Value {
        let path = format!("/enrollments/{id}");
        self.eventually(&format!("{id} to reach {status}"), || async {
            let a = self.get(&path).await;
            (a.status == 200 && a.body["status"] == status).then_some(a.body)
        })
        .await
    }

    pub async fn eventually<T, F, Fut>(&self, what: &str, mut probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(found) = probe().await {
                return found;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out after {WAIT:?} waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// One server-sent event as read off the wire.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SseMessage {
    pub id: Option<String>,
    pub event: Option<String>,
    /// The `data` lines, joined with newlines.
    pub data: String,
    /// A comment line (`:`), as keep-alives are.
    pub comment: Option<String>,
}

impl SseMessage {
    /// `data` as JSON (`Null` if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or(Value::Null)
    }

    fn parse(block: &str) -> SseMessage {
        let mut m = SseMessage::default();
        let mut data: Vec<&str> = Vec::new();
        for line in block.lines() {
            if let Some(comment) = line.strip_prefix(':') {
                m.comment = Some(comment.trim_start().to_owned());
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => m.id = Some(value.to_owned()),
                "event" => m.event = Some(value.to_owned()),
                "data" => data.push(value),
                _ => {}
            }
        }
        m.data = data.join("\n");
        m
    }
}

/// A `text/event-stream` response read message by message as it arrives.
pub struct EventStream {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl EventStream {
    /// The next message, keep-alive comments included; `None` when the server ended the
    /// stream. Panics if nothing arrives within [`WAIT`].
    pub async fn next_message(&mut self) -> Option<SseMessage> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let text = String::from_utf8(block).expect("UTF-8 events");
                return Some(SseMessage::parse(&text));
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .unwrap_or_else(|_| panic!("no server-sent event within {WAIT:?}"))
                .expect("the stream reads");
            match chunk {
                Some(bytes) => self.buffer.extend_from_slice(&bytes),
                None => {
                    assert!(self.buffer.is_empty(), "a message cut off at the end");
                    return None;
                }
            }
        }
    }

    /// The next event (comments skipped); `None` at the end of the stream.
    pub async fn next_event(&mut self) -> Option<SseMessage> {
        loop {
            let m = self.next_message().await?;
            if m.comment.is_none() || m.event.is_some() || !m.data.is_empty() {
                return Some(m);
            }
        }
    }

    /// Events up to and including the first one `done` accepts (panics at the end of the
    /// stream or after [`WAIT`] without one).
    pub async fn until(
        &mut self,
        what: &str,
        done: impl Fn(&SseMessage) -> bool,
    ) -> Vec<SseMessage> {
        let mut seen = Vec::new();
        loop {
            let m = self
                .next_event()
                .await
                .unwrap_or_else(|| panic!("the stream ended before {what}; saw {seen:?}"));
            let finished = done(&m);
            seen.push(m);
            if finished {
                return seen;
            }
        }
    }

    /// Events of one enrollment up to and including its event of type `event_type`.
    pub async fn until_event(&mut self, enrollment_id: &str, event_type: &str) -> Vec<SseMessage> {
        self.until(&format!("{event_type} of {enrollment_id}"), |m| {
            m.event.as_deref() == Some(event_type) && m.json()["enrollmentId"] == enrollment_id
        })
        .await
    }
}

impl Caller {
    /// Opens `GET path` as an event stream: `Ok` once a 200 `text/event-stream` response's
    /// head is in (events follow as they happen), `Err` with the answer otherwise.
    pub async fn open_stream(&self, path: &str) -> Result<EventStream, Answer> {
        let response = self
            .client
            .get(self.url(path))
            .header("accept", "text/event-stream")
            .send()
            .await
            .expect("the server answers");
        let is_stream = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/event-stream"));
        if response.status().as_u16() == 200 && is_stream {
            return Ok(EventStream {
                response,
                buffer: Vec::new(),
            });
        }
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Err(Answer {
            status,
            headers,
            body,
            text,
        })
    }
}

pub fn plan_body(customer_no: &str) -> Value {
    json!({
        "customerNo": customer_no,
        "productCode": "EZ-TERM",
        "sumInsured": 100_000_000u64,
        "coveragePeriod": 20,
        "paymentPeriod": 20,
        "paymentCycle": "monthly"
    })
}

pub fn quote_body() -> Value {
    json!({
        "productCode": "EZ-TERM",
        "insured": {"birthDate": "1986-05-01", "gender": "male"},
        "quoteDate": "2026-11-24",
        "sumInsured": 100_000_000u64,
        "coveragePeriod": 20,
        "paymentPeriod": 20,
        "paymentCycle": "monthly"
    })
}
