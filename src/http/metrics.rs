//! `GET /metrics`: the Prometheus text exposition format (0.0.4), hand-written. The
//! request series come from [`super::request_metrics`]; everything else (read-model
//! counts, payment gateway, actors, consumer lag) is read when scraped.

use super::context::Api;
use crate::actors::consumers::{NOTIFIER_GROUP, PROJECTOR_GROUP};
use crate::actors::payment::BreakerState;
use crate::domain::enrollment::Status;
use std::convert::Infallible;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

fn describe(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A metric with one unlabelled value.
fn scalar(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    describe(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

/// `GET /metrics`.
#[utoipa::path(
    get, path = "/metrics", tag = "health",
    responses((status = 200, description = "The Prometheus text format (0.0.4).", content_type = "text/plain; version=0.0.4", body = String))
)]
pub async fn metrics(api: Arc<Api>) -> Result<Response, Infallible> {
    let engine = &api.engine;
    let store = engine.store();
    let mut out = String::with_capacity(8 * 1024);
    api.http_metrics.render(&mut out);

    match store.count_by_status().await {
        Ok(counts) => {
            describe(
                &mut out,
                "ezenroll_enrollments",
                "gauge",
                "Enrollments by status, by the read model.",
            );
            for status in Status::ALL {
                let n: u64 = counts
                    .iter()
                    .filter(|(s, _)| *s == status)
                    .map(|(_, n)| n)
                    .sum();
                let _ = writeln!(
                    out,
                    "ezenroll_enrollments{{status=\"{}\"}} {n}",
                    status.as_str()
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot count enrollments by status"),
    }

    let payment = engine.payment_stats();
    scalar(
        &mut out,
        "ezenroll_payment_inflight",
        "gauge",
        "Payments accepted and not yet answered.",
        payment.depth.load(Ordering::Relaxed),
    );
    scalar(
        &mut out,
        "ezenroll_payment_busy_total",
        "counter",
        "Payments refused because the gateway was full.",
        payment.busy.load(Ordering::Relaxed),
    );
    describe(
        &mut out,
        "ezenroll_payment_breaker_state",
        "gauge",
        "The payment circuit breaker's state (1 for the current one).",
    );
    let current = payment.breaker_state();
    for state in [
        BreakerState::Closed,
        BreakerState::Open,
        BreakerState::HalfOpen,
    ] {
        let _ = writeln!(
            out,
            "ezenroll_payment_breaker_state{{state=\"{}\"}} {}",
            state.as_str(),
            u8::from(state == current)
        );
    }

    let stats = engine.stats();
    describe(
        &mut out,
        "ezenroll_actors_active",
        "gauge",
        "Live enrollment actors.",
    );
    let _ = writeln!(out, "ezenroll_actors_active {}", engine.active_actors());
    scalar(
        &mut out,
        "ezenroll_actor_restarts_total",
        "counter",
        "Enrollment actors restarted after a panic.",
        stats.restarts.load(Ordering::Relaxed),
    );
    scalar(
        &mut out,
        "ezenroll_actors_passivated_total",
        "counter",
        "Idle enrollment actors passivated.",
        stats.passivated.load(Ordering::Relaxed),
    );

    scalar(
        &mut out,
        "ezenroll_rate_limited_total",
        "counter",
        "Requests answered 429 because their caller was over its rate limit on this copy.",
        api.rate_limiter.limited_total(),
    );
    scalar(
        &mut out,
        "ezenroll_rate_limit_callers",
        "gauge",
        "Callers with a rate-limit bucket on this copy (those that sent requests lately).",
        api.rate_limiter.tracked(),
    );
    let connections = &api.connections;
    scalar(
        &mut out,
        "ezenroll_connections_open",
        "gauge",
        "HTTP connections open.",
        connections.open(),
    );
    scalar(
        &mut out,
        "ezenroll_connections_max",
        "gauge",
        "The cap on open HTTP connections (0 for none).",
        connections.max(),
    );
    scalar(
        &mut out,
        "ezenroll_connections_shed_total",
        "counter",
        "Idle connections closed to make room for new ones.",
        connections.shed_total(),
    );
    scalar(
        &mut out,
        "ezenroll_connections_refused_total",
        "counter",
        "Connections answered 503 and closed because every open one was busy.",
        connections.refused_total(),
    );
    scalar(
        &mut out,
        "ezenroll_accept_errors_total",
        "counter",
        "Connections that could not be accepted (out of file descriptors, mostly).",
        connections.accept_errors_total(),
    );

    let forward = &api.forward_stats;
    scalar(
        &mut out,
        "ezenroll_forwarded_requests_total",
        "counter",
        "Requests sent on to the copy that owns their enrollment.",
        forward.forwarded.load(Ordering::Relaxed),
    );
    scalar(
        &mut out,
        "ezenroll_forward_retries_total",
        "counter",
        "Forwarded requests tried again because the owner had gone or moved on.",
        forward.retried.load(Ordering::Relaxed),
    );
    scalar(
        &mut out,
        "ezenroll_unowned_requests_total",
        "counter",
        "Requests answered 503 because no copy owned their enrollment in time.",
        forward.unowned.load(Ordering::Relaxed),
    );
    let ownership = engine.ownership();
    scalar(
        &mut out,
        "ezenroll_partitions_owned",
        "gauge",
        "Partitions of the event log (and their enrollments) this copy owns.",
        if ownership.is_clustered() {
            ownership.held_count() as u64
        } else {
            u64::from(ownership.partitions())
        },
    );
    scalar(
        &mut out,
        "ezenroll_cluster_members",
        "gauge",
        "Copies of the server this copy sees on its store (1 when it runs alone).",
        if ownership.is_clustered() {
            ownership.members().len() as u64
        } else {
            1
        },
    );

    scalar(
        &mut out,
        "ezenroll_event_stream_subscribers",
        "gauge",
        "Open event streams (GET /events/stream) of this process.",
        engine.feed_subscribers().await,
    );

    describe(
        &mut out,
        "ezenroll_consumer_lag",
        "gauge",
        "Events not yet handled by a consumer group.",
    );
    for group in [NOTIFIER_GROUP, PROJECTOR_GROUP] {
        match store.lag(group).await {
            Ok(lag) => {
                let _ = writeln!(out, "ezenroll_consumer_lag{{group=\"{group}\"}} {lag}");
            }
            Err(e) => tracing::warn!(error = %e, group, "metrics: cannot read consumer lag"),
        }
    }

    let mut response = Response::new(out.into());
    *response.status_mut() = StatusCode::OK;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    Ok(response)
}
