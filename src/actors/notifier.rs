//! The Notifier (알림): an [`EventHandler`] that renders an alimtalk message per event
//! ([`crate::domain::alarm`]), records it once per event id, then hands it to an
//! [`AlarmChannel`].

use super::consumers::{self, ConsumerConfig, ConsumerHandle, EventHandler, NOTIFIER_GROUP};
use crate::domain::customer::Customer;
use crate::domain::ids::{CustomerNo, IdHash};
use crate::store::{Alarm, Delivery, EventEnvelope, Store, StoreResult};
use async_trait::async_trait;
use std::sync::Arc;

/// Where alarms go after they are recorded (카카오 알림톡, SMS...). Recording in the store
/// happens first and only once per event, so a channel sees each alarm at most once.
#[async_trait]
pub trait AlarmChannel: Send + Sync + 'static {
    async fn deliver(&self, alarm: &Alarm, customer: Option<&Customer>) -> Result<(), String>;
}

/// The default channel: the alarm is recorded in the store (see `GET /alarms`) and
/// logged at debug level (`RUST_LOG=ezenroll::alarm=debug`). Not at info: the text names
/// the customer, which does not belong in an operator's log by default, and a line per
/// event would make logging a real share of the server's work under load.
pub struct StoreChannel;

#[async_trait]
impl AlarmChannel for StoreChannel {
    async fn deliver(&self, alarm: &Alarm, customer: Option<&Customer>) -> Result<(), String> {
        tracing::debug!(
            target: "ezenroll::alarm",
            customer = %alarm.customer_no,
            phone = customer.map(|c| c.mobile_phone.masked()).unwrap_or_default(),
            status = %alarm.status,
            "{}",
            alarm.message
        );
        Ok(())
    }
}

/// Starts the Notifier as consumer `<instance>-notifier` of its group.
pub async fn start(
    store: Arc<dyn Store>,
    config: ConsumerConfig,
    instance: &str,
    channel: Arc<dyn AlarmChannel>,
) -> StoreResult<ConsumerHandle> {
    let handler = Arc::new(Notifier {
        store: Arc::clone(&store),
        channel,
    });
    consumers::start(
        store,
        NOTIFIER_GROUP,
        format!("{instance}-notifier"),
        handler,
        config,
    )
    .await
}

/// 알림: renders a message per event, records it once per event id, then delivers it.
/// Customer lookups go to the store, which keeps them at hand (the memory store holds
/// them; the Redis store caches them, as a record never changes once registered).
pub struct Notifier {
    store: Arc<dyn Store>,
    channel: Arc<dyn AlarmChannel>,
}

impl Notifier {
    async fn customer(&self, no: CustomerNo) -> Result<Option<Customer>, String> {
        self.store.customer(no).await.map_err(|e| e.to_string())
    }
}

impl Notifier {
    fn alarm(event: &EventEnvelope, customer: Option<&Customer>) -> Alarm {
        Alarm {
            event_id: event.id,
            enrollment_id: event.enrollment_id,
            customer_no: event.customer_no,
            status: event.event.status_after(None),
            message: crate::domain::alarm::render(
                &event.event,
                event.enrollment_id,
                customer.map(|c| &c.name),
            ),
            // At the precision the stores keep (the Redis one keeps microseconds).
            sent_at: crate::domain::time::now(),
        }
    }
}

#[async_trait]
impl EventHandler for Notifier {
    /// Customers looked up at the same time, every alarm recorded in one go, then the new
    /// ones handed to the channel in log order.
    async fn handle_batch(&self, batch: &[Delivery]) -> Vec<Result<(), String>> {
        let mut wanted: Vec<CustomerNo> = batch.iter().map(|d| d.envelope.customer_no).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let found =
            futures_util::future::join_all(wanted.iter().map(|&no| self.customer(no))).await;
        let customers: std::collections::HashMap<_, _, IdHash> =
            wanted.into_iter().zip(found).collect();
        let mut results: Vec<Result<(), String>> = Vec::with_capacity(batch.len());
        let mut alarms = Vec::with_capacity(batch.len());
        let mut of_alarm = Vec::with_capacity(batch.len());
        for (i, delivery) in batch.iter().enumerate() {
            let event = &delivery.envelope;
            match customers.get(&event.customer_no) {
                Some(Ok(customer)) => {
                    alarms.push(Arc::new(Self::alarm(event, customer.as_ref())));
                    of_alarm.push(i);
                    results.push(Ok(()));
                }
                Some(Err(e)) => results.push(Err(e.clone())),
                None => results.push(Err("the customer lookup went missing".to_owned())),
            }
        }
        let new = match self.store.record_alarms(&alarms).await {
            Ok(new) => new,
            Err(e) => {
                let failed = e.to_string();
                for &i in &of_alarm {
                    results[i] = Err(failed.clone());
                }
                return results;
            }
        };
        for ((alarm, &i), new) in alarms.iter().zip(&of_alarm).zip(new) {
            if new {
                let customer = customers
                    .get(&alarm.customer_no)
                    .and_then(|c| c.as_ref().ok())
                    .and_then(|c| c.as_ref());
                results[i] = self.channel.deliver(alarm, customer).await;
            }
        }
        results
    }

    async fn handle(&self, event: &EventEnvelope) -> Result<(), String> {
        let customer = self.customer(event.customer_no).await?;
        let alarm = Self::alarm(event, customer.as_ref());
        if self
            .store
            .record_alarm(&alarm)
            .await
            .map_err(|e| e.to_string())?
        {
            self.channel.deliver(&alarm, customer.as_ref()).await?;
        }
        Ok(())
    }
}
