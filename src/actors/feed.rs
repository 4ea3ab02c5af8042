//! The live event feed behind `GET /events/stream`: one tail per engine over the store's
//! event log, fanned out to any number of subscribers.
//!
//! The tail reads the log ([`EventLog::read_after`]), not this process's appends, so with
//! several copies of the server on one shared store every copy sees every change, made by
//! whichever copy. It runs only while someone listens: the first subscriber starts it at
//! the end of the log, and it stops by itself (within one read) after the last one leaves,
//! so an engine nobody watches pays nothing for it.
//!
//! Fan-out is a `tokio::sync::broadcast` ring of `capacity` events: sending never waits
//! for a receiver, and a receiver that falls more than `capacity` behind loses the oldest
//! events and is told how many ([`broadcast::error::RecvError::Lagged`]). A slow client
//! therefore holds up nobody and costs no memory beyond the one shared ring.
//!
//! [`EventLog::read_after`]: crate::store::EventLog::read_after

use super::error::EngineError;
use crate::store::{EventEnvelope, EventLog, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, broadcast, watch};

/// How long one read of the log waits for new entries. Also how long the tail outlives
/// its last subscriber.
const BLOCK: Duration = Duration::from_secs(1);
/// The first wait after a failed read; doubles per failure up to [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// One event as subscribers get it, shared between them.
pub type FeedEvent = Arc<EventEnvelope>;

pub struct EventFeed {
    log: Arc<dyn EventLog>,
    capacity: usize,
    /// The engine's shutdown signal: `true` once it is stopping.
    shutdown: watch::Receiver<bool>,
    /// The running tail, if any. tokio's mutex: `subscribe` holds it across `log_end`, so
    /// that the tail it starts is positioned before anyone can be handed a receiver.
    running: Mutex<Option<Tail>>,
}

struct Tail {
    sender: broadcast::Sender<FeedEvent>,
    task: tokio::task::JoinHandle<()>,
}

impl EventFeed {
    /// A feed over `log` whose subscribers may fall `capacity` events behind (at least 1).
    /// It stops when `shutdown` turns `true` (or its sender goes) and [`EventFeed::stop`]
    /// is called.
    pub fn new(
        log: Arc<dyn EventLog>,
        capacity: usize,
        shutdown: watch::Receiver<bool>,
    ) -> Arc<EventFeed> {
        Arc::new(EventFeed {
            log,
            capacity: capacity.max(1),
            shutdown,
            running: Mutex::new(None),
        })
    }

    /// A receiver of every event appended to the log from now on (by any process on the
    /// store), in each enrollment's order. Starts the tail if it is not running.
    pub async fn subscribe(
        self: &Arc<Self>,
    ) -> Result<broadcast::Receiver<FeedEvent>, EngineError> {
        let mut running = self.running.lock().await;
        if *self.shutdown.borrow() {
            return Err(EngineError::Stopping);
        }
        if let Some(tail) = running.as_ref()
            && !tail.task.is_finished()
        {
            return Ok(tail.sender.subscribe());
        }
        let positions = self.log.log_end().await?;
        let (sender, receiver) = broadcast::channel(self.capacity);
        let task = tokio::spawn(tail(
            Arc::clone(self),
            positions,
            sender.clone(),
            self.shutdown.clone(),
        ));
        *running = Some(Tail { sender, task });
        tracing::debug!("event feed started");
        Ok(receiver)
    }

    /// Subscribers now (for metrics and tests).
    pub async fn subscribers(&self) -> usize {
        self.running
            .lock()
            .await
            .as_ref()
            .map_or(0, |t| t.sender.receiver_count())
    }

    /// Whether the tail runs (someone subscribed and has not left for long).
    pub async fn is_running(&self) -> bool {
        self.running
            .lock()
            .await
            .as_ref()
            .is_some_and(|t| !t.task.is_finished())
    }

    /// Ends the tail (the engine's shutdown signal must be sent first); every receiver
    /// then sees the channel closed.
    pub async fn stop(&self) {
        let stopped = self.running.lock().await.take();
        if let Some(Tail { sender, task }) = stopped {
            drop(sender);
            let _ = task.await;
        }
    }
}

async fn tail(
    feed: Arc<EventFeed>,
    mut positions: Vec<String>,
    sender: broadcast::Sender<FeedEvent>,
    mut shutdown: watch::Receiver<bool>,
) {
    // A ring must hold a whole batch, or every receiver would lag on a busy log.
    let batch = (feed.capacity / 2).clamp(1, 512);
    let mut backoff = BACKOFF_MIN;
    loop {
        if *shutdown.borrow() {
            return;
        }
        if sender.receiver_count() == 0 {
            // Decided under the lock `subscribe` takes, so no one subscribes to a tail
            // that is about to end.
            let mut running = feed.running.lock().await;
            if sender.receiver_count() == 0 {
                *running = None;
                tracing::debug!("event feed stopped: no subscribers");
                return;
            }
        }
        let read = tokio::select! {
            changed = shutdown.changed() => match changed {
                Ok(()) => continue,
                Err(_) => return,
            },
            read = feed.log.read_after(&mut positions, batch, BLOCK) => read,
        };
        match read {
            Ok(events) => {
                backoff = BACKOFF_MIN;
                for event in events {
                    // An error only means nobody listens right now.
                    let _ = sender.send(event);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "event feed: cannot read the event log; retrying");
                tokio::select! {
                    changed = shutdown.changed() => if changed.is_err() { return },
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                if matches!(e, StoreError::Rejected(_)) {
                    // Positions the store no longer takes (its partitioning changed):
                    // start again at the end rather than fail forever.
                    match feed.log.log_end().await {
                        Ok(fresh) => positions = fresh,
                        Err(e) => {
                            tracing::warn!(error = %e, "event feed: cannot find the end of the log")
                        }
                    }
                }
            }
        }
    }
}
