//! The front door over a real socket: the per-caller rate limit (429 with `Retry-After`,
//! one caller's flood leaving the others alone, probes never limited), the service's own
//! size limits (414, 431 as problem documents) and the connection cap (idle connections
//! make room for new ones; with every one busy a new one is told 503).
//!
//! Nothing here depends on the store, so only the memory backend runs it
//! (tests/suite/memory/http_front_door.rs), through [`http_front_door_suite!`].

/// One `#[actix_rt::test]` per check. `$module` is the name the suite is in scope under;
/// `$make` makes a fresh store and may `.await`.
macro_rules! http_front_door_suite {
    ($module:ident, $make:expr) => {
        http_front_door_suite!(
            @each $module, $make;
            a_caller_over_its_rate_gets_429_and_no_one_else_does,
            probes_and_scrapes_are_never_rate_limited,
            oversized_targets_and_header_fields_are_414_and_431_problems,
            idle_connections_make_room_at_the_cap,
            with_every_connection_busy_a_new_one_is_told_503,
        );
    };
    (@each $module:ident, $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[actix_rt::test]
            async fn $check() {
                let store: ::std::sync::Arc<dyn ::ezenroll::store::Store> = $make;
                $module::$check(store).await;
            }
        )*
    };
}

use crate::support::app::*;
use ezenroll::http::auth::{AuthKeys, Role};
use ezenroll::http::{HttpConfig, RateLimit};
use ezenroll::store::Store;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One request a second with bursts of [`BURST`]: a test sends its requests far faster,
/// so the bucket cannot refill between them unless a request takes a whole second.
const BURST: u32 = 4;

fn limited() -> HttpConfig {
    HttpConfig {
        rate_limit: RateLimit {
            per_second: 1,
            burst: BURST,
        },
        ..http_config()
    }
}

async fn app_with(store: Arc<dyn Store>, http: HttpConfig) -> TestApp {
    spawn_app_with(store, engine_config(), healthy(), http).await
}

/// The value of the sample line starting with `series`, if any.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Sends `GET path` until it is refused; returns the statuses before the refusal and the
/// refusal. Panics if no 429 comes within a few requests past the burst.
async fn until_limited(caller: &Caller, path: &str) -> (Vec<u16>, Answer) {
    let mut before = Vec::new();
    for _ in 0..BURST + 4 {
        let a = caller.get(path).await;
        if a.status == 429 {
            return (before, a);
        }
        before.push(a.status);
    }
    panic!("no 429 for {path} after {before:?}");
}

pub async fn a_caller_over_its_rate_gets_429_and_no_one_else_does(store: Arc<dyn Store>) {
    let mut app = app_with(store, limited()).await;
    let customer = app.customer("한도").await;

    // The admin: the burst passes, then 429 with Retry-After in the header and the body.
    let (passed, refused) = until_limited(&app.admin, "/products").await;
    assert!(
        passed.len() >= (BURST - 1) as usize && passed.iter().all(|s| *s == 200),
        "{passed:?}"
    );
    let problem = refused.assert_problem(429, "rate-limited");
    let retry_after: u32 = refused
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("Retry-After in whole seconds: {:?}", refused.headers));
    assert!(retry_after >= 1, "{retry_after}");
    assert_eq!(problem["retryAfter"], retry_after);
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("rate limit of 1 requests/s")
            && detail.contains(&format!("bursts of up to {BURST}")),
        "the detail names the limit: {detail}"
    );

    // Other callers have buckets of their own: a customer, and the address without a token.
    assert_eq!(
        app.as_customer(&customer).get("/products").await.status,
        200
    );
    assert_eq!(app.anonymous().get("/products").await.status, 200);

    // A token that does not verify is charged to its address, never to the subject it
    // claims: this one names the admin, and the admin's bucket is empty, yet it is a 401,
    // not a 429.
    let forged = AuthKeys::from_secret(b"not the server's secret at all")
        .expect("keys")
        .mint(Role::Admin, "test-admin", Duration::from_secs(600))
        .expect("a token");
    let a = app.with_token(&forged).get("/customers/C000000001").await;
    a.assert_problem(401, "unauthorized");
    // The address's bucket: the anonymous request and the forged one came from it.
    let (_, refused) = until_limited(&app.with_token(&forged), "/products").await;
    refused.assert_problem(429, "rate-limited");

    // Counted: in the limiter's counter and the request counters.
    let text = app.anonymous().get("/metrics").await.text;
    let limited = sample(&text, "ezenroll_rate_limited_total").unwrap_or(0.0);
    assert!(limited >= 2.0, "{text}");
    let counted = sample(
        &text,
        "ezenroll_http_requests_total{route=\"/products\",method=\"GET\",status=\"429\"}",
    )
    .unwrap_or(0.0);
    assert!(counted >= 2.0, "{text}");
    app.stop().await;
}

pub async fn probes_and_scrapes_are_never_rate_limited(store: Arc<dyn Store>) {
    let mut app = app_with(store, limited()).await;
    let anonymous = app.anonymous();
    let (_, refused) = until_limited(&anonymous, "/products").await;
    refused.assert_problem(429, "rate-limited");
    // The address's bucket is empty; what load balancers and Prometheus poll still answers.
    for _ in 0..3 * BURST {
        for path in ["/livez", "/readyz", "/metrics"] {
            let a = anonymous.get(path).await;
            assert_eq!(a.status, 200, "{path}: {}", a.text);
        }
    }
    app.stop().await;
}

pub async fn oversized_targets_and_header_fields_are_414_and_431_problems(store: Arc<dyn Store>) {
    let mut app = spawn_app(store).await;
    let limits = http_config();

    let long = format!("/products?code={}", "x".repeat(limits.uri_limit));
    let a = app.get(&long).await;
    let problem = a.assert_problem(414, "uri-too-long");
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&limits.uri_limit.to_string()),
        "the detail names the limit: {detail}"
    );

    let a = app
        .send(
            app.client
                .get(app.url("/products"))
                .header("x-padding", "p".repeat(limits.header_limit)),
        )
        .await;
    let problem = a.assert_problem(431, "request-header-fields-too-large");
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("x-padding") && detail.contains(&limits.header_limit.to_string()),
        "the detail names the field and the limit: {detail}"
    );

    // Just under the limits, the same requests are served.
    let a = app.get("/products?code=EZ-TERM").await;
    assert_eq!(a.status, 200, "{}", a.text);
    let text = app.anonymous().get("/metrics").await.text;
    for status in ["414", "431"] {
        assert!(
            sample(
                &text,
                &format!(
                    "ezenroll_http_requests_total{{route=\"/products\",method=\"GET\",status=\"{status}\"}}"
                )
            )
            .is_some_and(|n| n >= 1.0),
            "{status} counted: {text}"
        );
    }
    app.stop().await;
}

/// `GET /livez` on a raw connection of its own; the status, 0 when the connection was
/// closed without an answer.
async fn livez_raw(addr: SocketAddr) -> u16 {
    let answer = tokio::time::timeout(WAIT, async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        stream
            .write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        Some(answer)
    })
    .await
    .unwrap_or_else(|_| panic!("no answer to GET /livez within {WAIT:?}"));
    answer
        .and_then(|a| String::from_utf8_lossy(&a).get(9..12)?.parse().ok())
        .unwrap_or(0)
}

pub async fn idle_connections_make_room_at_the_cap(store: Arc<dyn Store>) {
    const CAP: usize = 4;
    let mut app = app_with(
        store,
        HttpConfig {
            max_connections: Some(CAP),
            ..http_config()
        },
    )
    .await;
    // Three times the cap of connections that never send a request.
    let mut idle = Vec::new();
    for _ in 0..3 * CAP {
        idle.push(
            tokio::net::TcpStream::connect(app.addr)
                .await
                .expect("connect"),
        );
    }
    // Each probe takes the place of the connection idle the longest.
    for _ in 0..3 {
        assert_eq!(livez_raw(app.addr).await, 200);
    }
    let text = app.anonymous().get("/metrics").await.text;
    let open = sample(&text, "ezenroll_connections_open").unwrap_or(f64::MAX);
    assert!(open <= CAP as f64, "{text}");
    let shed = sample(&text, "ezenroll_connections_shed_total").unwrap_or(0.0);
    assert!(shed >= (2 * CAP) as f64, "{text}");
    assert_eq!(sample(&text, "ezenroll_connections_max"), Some(CAP as f64));
    drop(idle);
    app.stop().await;
}

pub async fn with_every_connection_busy_a_new_one_is_told_503(store: Arc<dyn Store>) {
    let mut app = app_with(
        store,
        HttpConfig {
            max_connections: Some(1),
            sse_keep_alive: Duration::from_millis(100),
            ..http_config()
        },
    )
    .await;
    // An event stream keeps its connection busy for as long as it is open.
    let mut stream = app
        .open_stream("/events/stream")
        .await
        .unwrap_or_else(|a| panic!("a stream: {}", a.text));
    let mut refused = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, refused.read_to_end(&mut answer))
        .await
        .expect("the refusal within WAIT")
        .expect("the refusal reads");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.contains("application/problem+json")
            && answer.contains("/problems/too-many-connections")
            && answer.to_ascii_lowercase().contains("retry-after: 1"),
        "{answer}"
    );
    // The stream was not cut off to make room: its keep-alives still come.
    let kept_alive = stream.next_message().await.expect("the stream is open");
    assert!(kept_alive.comment.is_some(), "{kept_alive:?}");
    // Once it closes, its place is free again.
    drop(stream);
    let addr = app.addr;
    app.eventually("a connection once the stream is gone", || async move {
        (livez_raw(addr).await == 200).then_some(())
    })
    .await;
    app.stop().await;
}
