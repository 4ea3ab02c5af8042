//! The engine's start-up: starts the actors and services on a store, wires them together
//! and hands out an [`EngineHandle`]. Only this module knows all the parts; the parts
//! share what they need through [`Deps`] ([`super::context`]).

use super::config::EngineConfig;
use super::consumers::{NOTIFIER_GROUP, PROJECTOR_GROUP};
use super::context::load_catalog;
use super::context::{Deps, Extensions};
use super::document::DocumentIssuer;
use super::error::EngineError;
use super::feed::EventFeed;
use super::handle::EngineHandle;
use super::handle::Inner;
use super::membership;
use super::notifier::{self, AlarmChannel, StoreChannel};
use super::ownership::Ownership;
use super::payment::{PaymentClient, PaymentProvider, SimulatedProvider};
use super::projector;
use super::registry::Registry;
use super::timers;
use crate::store::{EventLog, Member, PaymentLedger, Store};
use actix::Actor;
use actix_rt::{Arbiter, ArbiterHandle};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

pub struct Engine;

impl Engine {
    /// Starts the engine on `store` with the simulated payment provider, whose ledger is
    /// kept in `store`. Must be called inside an actix `System`.
    pub async fn start(
        config: EngineConfig,
        store: Arc<dyn Store>,
    ) -> Result<EngineHandle, EngineError> {
        Engine::start_with(config, store, Extensions::default()).await
    }

    pub async fn start_with(
        config: EngineConfig,
        store: Arc<dyn Store>,
        ext: Extensions,
    ) -> Result<EngineHandle, EngineError> {
        let catalog = load_catalog(store.as_ref(), config.seed_demo_products).await?;
        let provider = ext.payment_provider.unwrap_or_else(|| {
            let ledger = Arc::clone(&store) as Arc<dyn PaymentLedger>;
            Arc::new(SimulatedProvider::new(config.simulation, 0x5EED, ledger))
                as Arc<dyn PaymentProvider>
        });
        let arbiters: Vec<Arbiter> = (0..config.arbiters).map(|_| Arbiter::new()).collect();
        // No arbiters of its own: everything runs on the System's arbiter, the thread
        // that runs the System (`serve --threads 1`).
        let handles: Vec<ArbiterHandle> = if arbiters.is_empty() {
            match actix_rt::System::try_current() {
                Some(system) => vec![system.arbiter().clone()],
                None => {
                    return Err(EngineError::Internal(
                        "an engine without arbiters needs a running actix System".to_owned(),
                    ));
                }
            }
        } else {
            arbiters.iter().map(Arbiter::handle).collect()
        };
        // The gateway and the issuer live on arbiters too, not on the caller's thread.
        let payment = PaymentClient::start(provider, config.payment, handles.first());
        let registry = Registry::new(handles.clone());
        let ownership = Arc::new(match &config.cluster {
            Some(cluster) => Ownership::member(
                Member {
                    id: config.instance.clone(),
                    address: cluster.advertise.clone(),
                },
                store.partitions(),
            ),
            None => Ownership::single(store.partitions()),
        });
        let deps = Arc::new(Deps::new(
            Arc::clone(&store),
            config.clone(),
            payment,
            ext.chaos,
            catalog,
            Arc::clone(&ownership),
        ));
        let registry = Arc::new(registry);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let issuer = {
            let (deps, registry) = (Arc::clone(&deps), Arc::clone(&registry));
            let arbiter = &handles[handles.len() - 1];
            DocumentIssuer::start_in_arbiter(arbiter, move |_| DocumentIssuer::new(deps, registry))
        };

        let mut tasks = vec![
            tokio::spawn(timers::run(
                Arc::clone(&deps),
                Arc::clone(&registry),
                issuer.clone(),
                shutdown_rx.clone(),
            )),
            tokio::spawn(passivation(
                Arc::clone(&deps),
                Arc::clone(&registry),
                shutdown_rx.clone(),
            )),
            tokio::spawn(refresh_catalog(Arc::clone(&deps), shutdown_rx.clone())),
        ];
        if let Some(cluster) = config.cluster.clone() {
            tasks.push(tokio::spawn(membership::run(
                Arc::clone(&store),
                Arc::clone(&ownership),
                Arc::clone(&registry),
                cluster,
                shutdown_rx.clone(),
            )));
        }
        let mut consumers_running = Vec::new();
        if config.run_notifier {
            let channel = ext
                .alarm_channel
                .unwrap_or_else(|| Arc::new(StoreChannel) as Arc<dyn AlarmChannel>);
            consumers_running.push(
                notifier::start(
                    Arc::clone(&store),
                    config.consumer_config(NOTIFIER_GROUP),
                    &config.instance,
                    channel,
                )
                .await?,
            );
        }
        if config.run_projector {
            consumers_running.push(
                projector::start(
                    Arc::clone(&store),
                    config.consumer_config(PROJECTOR_GROUP),
                    &config.instance,
                )
                .await?,
            );
        }
        let feed = EventFeed::new(
            Arc::clone(&store) as Arc<dyn EventLog>,
            config.event_feed_capacity,
            shutdown_rx.clone(),
        );
        tracing::info!(backend = store.backend(), arbiters = config.arbiters, instance = %config.instance, "engine started");
        Ok(EngineHandle {
            inner: Arc::new(Inner {
                deps,
                registry,
                issuer,
                arbiters: Mutex::new(arbiters),
                shutdown: shutdown_tx,
                tasks: Mutex::new(tasks),
                consumers: Mutex::new(consumers_running),
                product_writes: tokio::sync::Mutex::new(()),
                feed,
            }),
        })
    }
}

/// Housekeeping now and then: reloads the catalog (another process may have registered a
/// product) and drops log entries every consumer group has acknowledged.
async fn refresh_catalog(deps: Arc<Deps>, mut shutdown: watch::Receiver<bool>) {
    let every = deps.config.catalog_refresh.max(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(every) => {
                deps.reload_catalog().await;
                match deps.store.compact().await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(entries = n, "compacted the event log"),
                    Err(e) => tracing::warn!(error = %e, "cannot compact the event log"),
                }
            }
        }
    }
}

async fn passivation(
    deps: Arc<Deps>,
    registry: Arc<Registry>,
    mut shutdown: watch::Receiver<bool>,
) {
    let idle = deps.config.passivate_after;
    let every = (idle / 4).clamp(Duration::from_millis(10), Duration::from_secs(30));
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(every) => {
                let n = registry.passivate_idle(idle);
                deps.stats.passivated.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    }
}
