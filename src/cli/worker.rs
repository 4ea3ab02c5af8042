//! `ezenroll worker`: one event-log consumer on the shared Redis.

use super::args::{WorkerArgs, WorkerRole, consumer_config};
use super::process::{init_tracing, shutdown_signal};
use std::process::ExitCode;
use std::sync::Arc;

pub fn worker(args: WorkerArgs) -> ExitCode {
    let _log = init_tracing(args.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_worker(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "ezenroll worker failed");
            ExitCode::FAILURE
        }
    }
}

async fn run_worker(args: WorkerArgs) -> anyhow::Result<()> {
    use ezenroll::actors::EngineConfig;
    use ezenroll::actors::notifier::{self, AlarmChannel, StoreChannel};
    use ezenroll::actors::projector;
    let store = args.store.layout.open(Some(&args.store.redis_url)).await?;
    let defaults = EngineConfig::default();
    let consumer = match args.role {
        WorkerRole::Notifier => {
            notifier::start(
                store,
                consumer_config(args.claim_idle, args.linger.notifier_linger),
                &defaults.instance,
                Arc::new(StoreChannel) as Arc<dyn AlarmChannel>,
            )
            .await?
        }
        WorkerRole::Mypage => {
            projector::start(
                store,
                consumer_config(args.claim_idle, args.linger.mypage_linger),
                &defaults.instance,
            )
            .await?
        }
    };
    tracing::info!(consumer = consumer.name(), "worker running");
    shutdown_signal().await;
    tracing::info!("stopping after the batch in hand");
    consumer.stop().await;
    Ok(())
}
