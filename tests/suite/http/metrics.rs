//! `GET /metrics`: open, in the Prometheus text format, counting requests by route
//! template and exposing the engine's gauges.
//!
//! The check takes a fresh `Arc<dyn Store>`, so the memory backend
//! (tests/suite/memory/http_metrics.rs) and Redis (tests/suite/redis_backend/http.rs) run
//! the same suite by expanding [`http_metrics_suite!`] with an expression making a store.

/// One `#[actix_rt::test]` per check. `$module` is the name the suite is in scope under;
/// `$make` makes a fresh store and may `.await`.
macro_rules! http_metrics_suite {
    ($module:ident, $make:expr) => {
        http_metrics_suite!(
            @each $module, $make;
            metrics_are_exposed_in_the_prometheus_text_format,
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
use ezenroll::store::Store;
use std::sync::Arc;

/// The value of the sample line starting with `series` (name and labels), if any.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

pub async fn metrics_are_exposed_in_the_prometheus_text_format(store: Arc<dyn Store>) {
    let mut app = spawn_app(store).await;
    let quote = app.post("/quotes", &quote_body()).await;
    assert_eq!(quote.status, 200, "{}", quote.text);
    let customer_no = app.customer("홍길동").await;
    let id = app.plan(&customer_no).await;
    assert_eq!(app.get(&format!("/enrollments/{id}")).await.status, 200);

    let anonymous = app.anonymous();
    let text = app
        .eventually("the projector to count the plan", || async {
            let a = anonymous.get("/metrics").await;
            assert_eq!(a.status, 200, "{}", a.text);
            assert_eq!(a.content_type(), "text/plain; version=0.0.4");
            (sample(&a.text, "ezenroll_enrollments{status=\"Planned\"}")? >= 1.0).then_some(a.text)
        })
        .await;

    let quotes = sample(
        &text,
        "ezenroll_http_requests_total{route=\"/quotes\",method=\"POST\",status=\"200\"}",
    );
    assert!(quotes.is_some_and(|n| n >= 1.0), "{text}");
    assert!(
        text.contains("route=\"/enrollments/{id}\""),
        "ids are folded into the route template: {text}"
    );
    assert!(!text.contains(&id), "no raw ids in labels: {text}");
    assert!(
        text.lines()
            .any(|l| l == "ezenroll_payment_breaker_state{state=\"closed\"} 1"),
        "{text}"
    );
    for name in [
        "ezenroll_payment_inflight",
        "ezenroll_actors_active",
        "ezenroll_consumer_lag{group=\"mypage\"}",
    ] {
        assert!(sample(&text, name).is_some(), "{name} missing: {text}");
    }

    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line.rsplit_once(' ').expect("name{labels} value");
        assert!(
            value.parse::<f64>().is_ok() || value == "+Inf",
            "not a number: {line}"
        );
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name: {line}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "unterminated labels: {line}");
            let labels = &series[name_end + 1..series.len() - 1];
            for pair in labels.split("\",") {
                let (k, v) = pair.split_once("=\"").expect("label=\"value\"");
                assert!(
                    k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "bad label name: {line}"
                );
                let v = v.strip_suffix('"').unwrap_or(v);
                assert!(!v.contains('"'), "bad label value: {line}");
            }
        }
    }
    app.stop().await;
}
