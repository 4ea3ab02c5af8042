//! Binding the gateway to a socket and running it until a graceful shutdown.

use super::context::{Api, HttpConfig};
use super::filters::routes;
use crate::actors::EngineHandle;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

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
