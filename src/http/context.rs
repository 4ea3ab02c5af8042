//! What every handler shares: the gateway's settings and the engine handle, with the
//! per-process state of the gateway (idempotency locks, request counters, rate-limit
//! buckets, open connections, shutdown flag).

use super::auth::AuthKeys;
use super::connections::Connections;
use super::rate_limit::{RateLimit, RateLimiter};
use super::request_metrics::HttpMetrics;
use crate::actors::EngineHandle;
use std::sync::Arc;
use std::time::Duration;

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
    /// How long a connection may take to send a request's headers, also while it waits
    /// idle for its next request: a client that trickles headers or holds an idle
    /// connection cannot keep the socket (or a graceful shutdown) forever.
    pub header_read_timeout: Duration,
    /// Requests a second per caller on this copy, and the burst allowed above it
    /// ([`super::rate_limit`]); [`RateLimit::OFF`] for none.
    pub rate_limit: RateLimit,
    /// Connections open at once; `None` derives the cap from the descriptor limit
    /// ([`default_max_connections`]), `Some(0)` sets none.
    pub max_connections: Option<usize>,
    /// The longest request target (path and query) read, in bytes (414 beyond it), well
    /// below what hyper refuses with an empty 414 of its own.
    pub uri_limit: usize,
    /// The most bytes of header fields read (names, values and their separators; 431
    /// beyond it), well below what hyper refuses with an empty 431 of its own.
    pub header_limit: usize,
}

impl HttpConfig {
    /// The default limits with the given token keys.
    pub fn new(auth: AuthKeys) -> HttpConfig {
        HttpConfig {
            body_limit: 64 * 1024,
            idempotency_ttl: Duration::from_secs(24 * 3600),
            auth,
            sse_keep_alive: Duration::from_secs(15),
            header_read_timeout: Duration::from_secs(10),
            rate_limit: RateLimit::DEFAULT,
            max_connections: None,
            uri_limit: 8 * 1024,
            header_limit: 16 * 1024,
        }
    }
}

/// The connection cap when none is set: half the descriptor limit, the other half left for
/// the store's connections, requests forwarded to other copies, and files; 16,384 when the
/// limit is unknown.
pub fn default_max_connections() -> usize {
    crate::os::descriptor_limit().map_or(16_384, |fds| {
        usize::try_from(fds / 2).unwrap_or(usize::MAX).max(1)
    })
}

/// What every handler shares.
pub struct Api {
    pub engine: EngineHandle,
    pub config: HttpConfig,
    /// One lock per idempotency key in flight (see [`super::idempotency`]): tokio's mutex, not
    /// std's, because the holder awaits the engine while it holds the lock.
    pub(super) idempotency_locks: dashmap::DashMap<String, Arc<tokio::sync::Mutex<()>>>,
    /// Request counters and durations by route template, for `GET /metrics`.
    pub http_metrics: HttpMetrics,
    /// Requests sent on to the copy that owns their enrollment.
    pub forward_stats: super::forward::ForwardStats,
    /// Every caller's bucket ([`HttpConfig::rate_limit`]).
    pub rate_limiter: RateLimiter,
    /// The open connections, for the cap and for `/metrics`.
    pub connections: Connections,
    /// Turns `true` when the server starts shutting down: event streams end then, since
    /// a graceful shutdown waits for every response to finish.
    closing: tokio::sync::watch::Sender<bool>,
}

impl Api {
    pub fn new(engine: EngineHandle, config: HttpConfig) -> Arc<Api> {
        let max_connections = config
            .max_connections
            .unwrap_or_else(default_max_connections);
        Arc::new(Api {
            engine,
            rate_limiter: RateLimiter::new(config.rate_limit),
            connections: Connections::new(max_connections),
            config,
            idempotency_locks: dashmap::DashMap::new(),
            http_metrics: HttpMetrics::default(),
            forward_stats: super::forward::ForwardStats::default(),
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
