//! Binding the gateway to a socket and running it until a graceful shutdown.

use super::connections::{self, Conn, Tracked};
use super::context::{Api, HttpConfig};
use super::filters::routes;
use super::forward::Forwarder;
use super::front::{self, Door};
use crate::actors::EngineHandle;
use hyper::server::conn::Http;
use hyper::service::service_fn;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    pub addr: SocketAddr,
    #[source]
    pub source: std::io::Error,
}

/// Binds `addr` (port 0 picks a free port) for [`serve_on`]: the address is known before
/// the engine starts, so a copy can tell the others where it listens.
pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, BindError> {
    let listener =
        std::net::TcpListener::bind(addr).map_err(|source| BindError { addr, source })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| BindError { addr, source })?;
    Ok(listener)
}

/// Binds `addr` (port 0 picks a free port) and returns the address bound and the server
/// future. When `shutdown` completes the server closes its listening socket (new
/// connections are refused), ends the event streams, and the future ends once the
/// requests in flight are answered; stop the engine after that. Run it inside an actix
/// `System` (the engine's actors live there) on a tokio runtime.
///
/// A request about an enrollment another copy owns is sent there ([`super::forward`]);
/// everything else goes to the routes, once past the front door ([`super::front`]: size
/// limits and the rate limit). At most [`HttpConfig::max_connections`] are open at once
/// ([`super::connections`]).
pub fn serve(
    engine: EngineHandle,
    addr: SocketAddr,
    config: HttpConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, impl Future<Output = ()> + Send + 'static), BindError> {
    serve_on(engine, bind(addr)?, config, shutdown)
}

/// [`serve`] on a socket already bound ([`bind`]). Must be called on a tokio runtime.
pub fn serve_on(
    engine: EngineHandle,
    listener: std::net::TcpListener,
    config: HttpConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, impl Future<Output = ()> + Send + 'static), BindError> {
    let addr = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let failed = |source: std::io::Error| BindError { addr, source };
    let listener = tokio::net::TcpListener::from_std(listener).map_err(failed)?;
    let bound = listener.local_addr().unwrap_or(addr);
    let api = Api::new(engine, config);
    let closing = Arc::clone(&api);
    let shutdown = async move {
        shutdown.await;
        tracing::info!("HTTP: no longer accepting; answering the requests in flight");
        closing.begin_shutdown();
    };
    let mut http = Http::new();
    http.http1_header_read_timeout(api.config.header_read_timeout);
    let routes = warp::service(routes(Arc::clone(&api)));
    let forwarder = Arc::new(Forwarder::new(Arc::clone(&api)));
    let front = Arc::clone(&api);
    // One service per connection; each request keeps the connection busy (not idle, so
    // not shed at the cap) until its answer is sent whole.
    let make = move |peer: SocketAddr, conn: Arc<Conn>| {
        let (routes, forwarder, api) = (routes.clone(), Arc::clone(&forwarder), Arc::clone(&front));
        service_fn(move |req| {
            let in_flight = conn.begin();
            let (mut routes, forwarder, api) =
                (routes.clone(), Arc::clone(&forwarder), Arc::clone(&api));
            async move {
                let answer = match front::admit(&forwarder, &api, peer, req).await {
                    Door::Local(req) => front::local(&mut routes, req).await,
                    Door::Answered(answer) => answer,
                };
                Ok::<_, Infallible>(answer.map(|body| Tracked::new(body, in_flight)))
            }
        })
    };
    let limit = api.rate_limiter.limit();
    tracing::info!(
        max_connections = api.connections.max(),
        rate_limit = limit.per_second,
        rate_burst = if limit.is_off() { 0 } else { limit.burst },
        "HTTP limits (0: none)"
    );
    let server = connections::serve(listener, http, api, make, shutdown);
    Ok((bound, server))
}
