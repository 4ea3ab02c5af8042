//! The engine's settings ([`EngineConfig`]) and their defaults.

use super::consumers::{ConsumerConfig, DEFAULT_LINGER, PROJECTOR_GROUP};
use super::payment::{GatewayConfig, Simulation};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Arbiters (threads) the enrollment actors are spread over; default one per core.
    /// 0: no threads of its own; the actors, the payment gateway and the document issuer
    /// run on the arbiter of the actix System the engine is started in.
    pub arbiters: usize,
    /// How long document issuance takes (상품설명서 발행).
    pub document_delay: Duration,
    /// How long a saved plan stays valid before it expires.
    pub plan_ttl: Duration,
    /// How long after the proposal a customer may withdraw (청약철회 기간).
    pub withdrawal_period: Duration,
    /// An enrollment actor idle this long is passivated.
    pub passivate_after: Duration,
    /// How often the timer store is polled for due timers.
    pub timer_poll: Duration,
    /// How long a claimed timer is leased before it comes due again.
    pub timer_lease: Duration,
    /// First refund retry delay; doubles per attempt up to `refund_backoff_max`.
    pub refund_backoff_initial: Duration,
    pub refund_backoff_max: Duration,
    pub payment: GatewayConfig,
    /// Settings of the simulated payment provider used when none is given.
    pub simulation: Simulation,
    /// Both consumers' settings; `consumers.linger` is the Notifier's, the MyPage
    /// projector's is `projector_linger` ([`EngineConfig::consumer_config`]).
    pub consumers: ConsumerConfig,
    /// After a read that found less than a full batch, how long the MyPage projector lets
    /// events gather before reading again. A view is written once for all the events of an
    /// enrollment in a batch, so lingering writes fewer views (`ezenroll serve` lingers
    /// 20 ms by default, see `--mypage-linger`); views lag by up to this much more.
    pub projector_linger: Duration,
    /// Run the Notifier and MyPage projector in this process.
    pub run_notifier: bool,
    pub run_projector: bool,
    /// Unique per process: consumer names and logs.
    pub instance: String,
    /// Store the demo products when the store has none.
    pub seed_demo_products: bool,
    /// How often the product catalog is reloaded from the store, so products registered
    /// by another process sharing the store become visible here (an unknown product code
    /// also triggers a reload).
    pub catalog_refresh: Duration,
    /// Events a subscriber of the live feed may fall behind before it loses the oldest.
    pub event_feed_capacity: usize,
    /// Share the enrollments with the other copies on the store, under partition leases;
    /// `None`: a single process that owns everything.
    pub cluster: Option<super::ownership::ClusterConfig>,
}

impl EngineConfig {
    /// The settings the consumer of `group` runs with: [`EngineConfig::consumers`], with
    /// the MyPage projector's own linger.
    pub fn consumer_config(&self, group: &str) -> ConsumerConfig {
        let mut config = self.consumers.clone();
        if group == PROJECTOR_GROUP {
            config.linger = self.projector_linger;
        }
        config
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            arbiters: std::thread::available_parallelism().map_or(2, usize::from),
            document_delay: Duration::from_secs(3),
            plan_ttl: Duration::from_secs(30 * 24 * 3600),
            withdrawal_period: Duration::from_secs(30 * 24 * 3600),
            passivate_after: Duration::from_secs(300),
            timer_poll: Duration::from_millis(100),
            timer_lease: Duration::from_secs(30),
            refund_backoff_initial: Duration::from_secs(1),
            refund_backoff_max: Duration::from_secs(300),
            payment: GatewayConfig::default(),
            simulation: Simulation::default(),
            consumers: ConsumerConfig::default(),
            projector_linger: DEFAULT_LINGER,
            run_notifier: true,
            run_projector: true,
            // Short: Redis writes the consumer name (`<instance>-<group>`) into the AOF
            // with every entry a group reads (an XCLAIM each). The pid and 32 random bits
            // tell processes apart.
            instance: format!(
                "{}-{:08x}",
                std::process::id(),
                uuid::Uuid::new_v4().as_u128() as u32
            ),
            seed_demo_products: true,
            catalog_refresh: Duration::from_secs(5),
            event_feed_capacity: 4096,
            cluster: None,
        }
    }
}

pub(super) fn chrono_of(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl EngineConfig {
    pub fn document_delay_chrono(&self) -> chrono::Duration {
        chrono_of(self.document_delay)
    }

    pub fn withdrawal_period_chrono(&self) -> chrono::Duration {
        chrono_of(self.withdrawal_period)
    }

    /// Delay before refund attempt `attempt` (1-based): exponential, capped.
    pub fn refund_backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
        self.refund_backoff_initial
            .saturating_mul(factor)
            .min(self.refund_backoff_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::consumers::NOTIFIER_GROUP;

    #[test]
    fn the_projector_lingers_on_its_own_setting_and_the_notifier_on_the_shared_one() {
        let config = EngineConfig {
            consumers: ConsumerConfig {
                linger: Duration::from_millis(3),
                batch: 77,
                ..ConsumerConfig::default()
            },
            projector_linger: Duration::from_millis(20),
            ..EngineConfig::default()
        };
        let notifier = config.consumer_config(NOTIFIER_GROUP);
        let projector = config.consumer_config(PROJECTOR_GROUP);
        assert_eq!(notifier.linger, Duration::from_millis(3));
        assert_eq!(projector.linger, Duration::from_millis(20));
        assert_eq!((notifier.batch, projector.batch), (77, 77));
    }
}
