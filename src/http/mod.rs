//! The warp HTTP gateway over an [`EngineHandle`]: JSON in camelCase (the same schemas as
//! `ezenroll quote`), `application/problem+json` for every failure, request bodies
//! size-limited, `Idempotency-Key` on writes.
//!
//! # Layout
//!
//! - [`filters`]: one filter per route (path, method, body), composed by [`routes`];
//! - [`handlers`]: one async fn per route, calling the engine;
//! - [`models`]: request DTOs (unknown fields refused, `TryFrom` into domain inputs) and
//!   response bodies;
//! - [`errors`]: problem documents, the engine-error mapping and the one `recover`;
//! - [`idempotency`]: first-response replay for POST and PUT;
//! - [`auth`]: bearer tokens (HS256 JWT), roles and the access rules;
//! - [`metrics`]: `GET /metrics` in the Prometheus text format, and the request counters.
//!
//! Quotes are priced on the request's own task against the engine's catalog snapshot;
//! everything stateful goes through the engine's actors.

pub mod auth;
pub mod errors;
pub mod filters;
pub mod handlers;
pub mod idempotency;
pub mod metrics;
pub mod models;

use crate::actors::EngineHandle;
use auth::AuthKeys;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use filters::routes;

/// The gateway's settings. There is no `Default`: the token keys must come from the
/// caller, as no secret is built in.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Largest request body accepted, in bytes (413 beyond it).
    pub body_limit: u64,
    /// How long the first response to an `Idempotency-Key` is kept.
    pub idempotency_ttl: Duration,
    /// The keys bearer tokens are verified with.
    pub auth: AuthKeys,
}

impl HttpConfig {
    /// The default limits with the given token keys.
    pub fn new(auth: AuthKeys) -> HttpConfig {
        HttpConfig {
            body_limit: 64 * 1024,
            idempotency_ttl: Duration::from_secs(24 * 3600),
            auth,
        }
    }
}

/// What every handler shares.
pub struct Api {
    pub engine: EngineHandle,
    pub config: HttpConfig,
    /// One lock per idempotency key in flight (see [`idempotency`]): tokio's mutex, not
    /// std's, because the holder awaits the engine while it holds the lock.
    idempotency_locks: dashmap::DashMap<String, Arc<tokio::sync::Mutex<()>>>,
    /// Request counters and durations by route template, for `GET /metrics`.
    pub http_metrics: metrics::HttpMetrics,
}

impl Api {
    pub fn new(engine: EngineHandle, config: HttpConfig) -> Arc<Api> {
        Arc::new(Api {
            engine,
            config,
            idempotency_locks: dashmap::DashMap::new(),
            http_metrics: metrics::HttpMetrics::default(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    pub addr: SocketAddr,
    #[source]
    pub source: warp::Error,
}

/// Binds `addr` (port 0 picks a free port) and returns the address bound and the server
/// future. The server stops accepting when `shutdown` completes and the future ends once
/// the requests in flight are answered. Run it inside an actix `System` (the engine's
/// actors live there) on a tokio runtime.
pub fn serve(
    engine: EngineHandle,
    addr: SocketAddr,
    config: HttpConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, impl Future<Output = ()> + Send + 'static), BindError> {
    let api = Api::new(engine, config);
    warp::serve(routes(api))
        .try_bind_with_graceful_shutdown(addr, shutdown)
        .map_err(|source| BindError { addr, source })
}
