//! `ezenroll serve`: the HTTP gateway, the engine and its consumers in one process.

use super::args::{Consumers, ServeArgs, consumer_config};
use super::dev_mode::ServeKeys;
use super::process::{init_tracing, shutdown_signal};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

pub fn serve(args: ServeArgs) -> ExitCode {
    let _log = init_tracing(args.log_format);
    // Actors need an actix System, which runs on the tokio runtime that serves HTTP: a
    // multi-thread one, or with --threads 1 a current-thread one, where the engine puts
    // its actors on the System's own arbiter and one thread does everything.
    let built = match args.threads {
        Some(1) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Some(n) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(usize::from(n))
            .enable_all()
            .build(),
        None => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    };
    let runtime = match built {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    let system = actix_rt::System::with_tokio_rt(move || runtime);
    match system.block_on(run_server(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "ezenroll serve failed");
            ExitCode::FAILURE
        }
    }
}

async fn run_server(args: ServeArgs) -> anyhow::Result<()> {
    use ezenroll::actors::ownership::ClusterConfig;
    use ezenroll::actors::payment::{GatewayConfig, Simulation};
    use ezenroll::actors::{Engine, EngineConfig};
    use ezenroll::http::{self, HttpConfig};

    let auth = ServeKeys::new(args.jwt_secret, args.max_token_lifetime)?;
    let config = EngineConfig {
        document_delay: args.document_delay,
        payment: GatewayConfig {
            mailbox_capacity: args.payment_queue,
            max_in_flight: args.payment_concurrency.max(1),
            ..GatewayConfig::default()
        },
        simulation: Simulation {
            latency: args.payment_latency,
            decline_rate: args.payment_decline_rate,
            failure_rate: args.payment_failure_rate,
        },
        timer_lease: args.timer_lease,
        consumers: consumer_config(args.claim_idle, args.linger.notifier_linger),
        projector_linger: args.linger.mypage_linger,
        run_notifier: matches!(args.consumers, Consumers::All | Consumers::Notifier),
        run_projector: matches!(args.consumers, Consumers::All | Consumers::Mypage),
        ..EngineConfig::default()
    };
    let config = match args.threads {
        // On the System's arbiter, this very thread.
        Some(1) => EngineConfig {
            arbiters: 0,
            ..config
        },
        Some(n) => EngineConfig {
            arbiters: usize::from(n),
            ..config
        },
        None => config,
    };
    let store = args
        .store
        .layout
        .open(args.store.redis_url.as_deref())
        .await?;
    // Bound before the engine starts: on Redis, the copy tells the others where it listens.
    let listener = http::bind(args.listen)?;
    let bound = listener.local_addr()?;
    let config = EngineConfig {
        cluster: args.store.redis_url.is_some().then(|| ClusterConfig {
            advertise: advertised(args.advertise.as_deref(), bound),
            lease: args.ownership_lease,
        }),
        ..config
    };
    let engine = Engine::start(config, store).await?;
    let http_config = HttpConfig {
        body_limit: args.body_limit,
        rate_limit: http::RateLimit {
            per_second: args.rate_limit,
            burst: args
                .rate_burst
                .unwrap_or(args.rate_limit.saturating_mul(2))
                .max(1),
        },
        max_connections: args.max_connections,
        ..HttpConfig::new(auth.keys.clone())
    };
    let signalled = Arc::new(tokio::sync::Notify::new());
    let shutdown = {
        let signalled = Arc::clone(&signalled);
        let engine = engine.clone();
        let delay = args.drain_delay;
        async move {
            shutdown_signal().await;
            // Not ready from now on; the other copies take this one's enrollments while
            // it still accepts, and sends on, what the load balancer sends meanwhile.
            tracing::info!("handing the enrollments over to the other copies");
            engine.hand_over().await;
            if !delay.is_zero() {
                tracing::info!(
                    delay_secs = delay.as_secs_f64(),
                    "draining before closing the socket"
                );
                tokio::time::sleep(delay).await;
            }
            // A stored permit: the wait below cannot miss it.
            signalled.notify_one();
        }
    };
    let (addr, server) = match http::serve_on(engine.clone(), listener, http_config, shutdown) {
        Ok(bound) => bound,
        Err(e) => {
            engine.shutdown().await;
            return Err(e.into());
        }
    };
    tracing::info!(%addr, backend = engine.store().backend(), "ezenroll is listening");
    // Removed when the server stops, so `token --dev` finds no secret of a server gone.
    let _dev_secret = match auth.announce(addr) {
        Ok(file) => file,
        Err(e) => {
            engine.shutdown().await;
            return Err(e);
        }
    };
    let mut server = std::pin::pin!(server);
    // The server ends only after a signal, so either way its requests are answered here.
    tokio::select! {
        () = &mut server => tracing::info!("in-flight requests answered"),
        () = signalled.notified() => drain(server, args.shutdown_grace).await,
    }
    // The HTTP server has answered what it accepted, so its events are in the log for
    // the consumers to handle before they stop.
    tracing::info!("stopping the engine");
    engine.shutdown().await;
    Ok(())
}

/// Where the other copies reach this one: `--advertise`, else the address it listens on,
/// with 127.0.0.1 for all interfaces (copies on one host).
fn advertised(advertise: Option<&str>, bound: std::net::SocketAddr) -> String {
    match advertise {
        Some(address) => address.to_owned(),
        None if bound.ip().is_unspecified() => {
            tracing::warn!(%bound, "listening on all interfaces without --advertise: other copies are told 127.0.0.1, which works on this host only");
            format!("127.0.0.1:{}", bound.port())
        }
        None => bound.to_string(),
    }
}

/// Waits for the HTTP server to answer the requests in flight, for up to `grace` or until
/// a second signal: a stuck client must not keep the process from stopping.
async fn drain(server: std::pin::Pin<&mut impl std::future::Future<Output = ()>>, grace: Duration) {
    tokio::select! {
        () = server => tracing::info!("in-flight requests answered"),
        () = tokio::time::sleep(grace) => tracing::warn!(
            grace_secs = grace.as_secs_f64(),
            "requests still in flight after the shutdown grace; stopping anyway"
        ),
        () = shutdown_signal() => tracing::warn!("second signal: not waiting for requests in flight"),
    }
}
