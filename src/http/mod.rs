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
//! - [`metrics`]: `GET /metrics` in the Prometheus text format, and the request counters;
//! - [`sse`]: `GET /events/stream`, the engine's live event feed as server-sent events.
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
pub mod sse;

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
    /// The longest `GET /events/stream` stays silent: a comment is sent after this long
    /// without events, so proxies do not drop an idle stream.
    pub sse_keep_alive: Duration,
}

impl HttpConfig {
    /// The default limits with the given token keys.
    pub fn new(auth: AuthKeys) -> HttpConfig {
        HttpConfig {
            body_limit: 64 * 1024,
            idempotency_ttl: Duration::from_secs(24 * 3600),
            auth,
            sse_keep_alive: Duration::from_secs(15),
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
    /// Turns `true` when the server starts shutting down: event streams end then, since
    /// a graceful shutdown waits for every response to finish.
    closing: tokio::sync::watch::Sender<bool>,
}

impl Api {
    pub fn new(engine: EngineHandle, config: HttpConfig) -> Arc<Api> {
        Arc::new(Api {
            engine,
            config,
            idempotency_locks: dashmap::DashMap::new(),
            http_metrics: metrics::HttpMetrics::default(),
            closing: tokio::sync::watch::Sender::new(false),
        })
    }

    /// Ends the event streams and refuses new ones (the server is shutting down).
    pub fn begin_shutdown(&self) {
        self.closing.send_replace(true);
    }

    /// `true` from [`Api::begin_shutdown`] on.
    pub fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closing.subscribe()
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
/// future. When `shutdown` completes the server closes its listening socket (new
/// connections are refused), ends the event streams, and the future ends once the
/// requests in flight are answered; stop the engine after that. Run it inside an actix
/// `System` (the engine's actors live there) on a tokio runtime.
pub fn serve(
    engine: EngineHandle,
    addr: SocketAddr,
    config: HttpConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, impl Future<Output = ()> + Send + 'static), BindError> {
    let api = Api::new(engine, config);
    let closing = Arc::clone(&api);
    let shutdown = async move {
        shutdown.await;
        tracing::info!("HTTP: no longer accepting; answering the requests in flight");
        closing.begin_shutdown();
    };
    warp::serve(routes(api))
        .try_bind_with_graceful_shutdown(addr, shutdown)
        .map_err(|source| BindError { addr, source })
}
