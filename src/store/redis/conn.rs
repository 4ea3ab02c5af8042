//! The connection: one multiplexed, self-reconnecting connection to a single server or a
//! cluster for every command (blocking reads get pooled connections of their own, see
//! `commands`).

use super::config::RedisConfig;
use crate::store::error::{StoreError, StoreResult, rejected};
use redis::RedisFuture;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, RedisError, Value};
use std::time::Duration;

/// Blocking-read connections kept for reuse.
pub(super) const BLOCKING_POOL: usize = 16;

/// How often a cluster reader looks again while it waits (no BLOCK across slots).
pub(super) const CLUSTER_POLL: Duration = Duration::from_millis(20);

/// Commands queued for the shared connection's writer before callers wait (default 50).
pub(super) const PIPELINE_BUFFER: usize = 1024;

/// A redis error as the store reports it.
pub(super) fn unavailable(e: RedisError) -> StoreError {
    StoreError::Unavailable(format!("redis: {e}"))
}

/// One connection (single server or cluster), cheap to clone.
#[derive(Clone)]
pub(super) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Conn {
    /// Connects to what `config` names: a cluster, or a single server (then also the
    /// client that opens connections for blocking reads).
    pub(super) async fn open(config: &RedisConfig) -> StoreResult<(Conn, Option<redis::Client>)> {
        match config.cluster_nodes() {
            Some(nodes) => {
                let client = ClusterClient::builder(nodes)
                    .connection_timeout(config.connect_timeout)
                    .response_timeout(config.response_timeout)
                    .retries(3)
                    .build()
                    .map_err(unavailable)?;
                let conn = client.get_async_connection().await.map_err(unavailable)?;
                Ok((Conn::Cluster(conn), None))
            }
            None => {
                let client = redis::Client::open(config.url.as_str())
                    .map_err(|e| rejected(format!("{:?} is not a Redis URL: {e}", config.url)))?;
                let manager = ConnectionManager::new_with_config(
                    client.clone(),
                    ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(config.connect_timeout))
                        .set_response_timeout(Some(config.response_timeout))
                        .set_number_of_retries(2)
                        .set_max_delay(Duration::from_secs(1))
                        // Room for a consumer's whole batch of reads and the actors'
                        // commands: a full queue parks each further caller.
                        .set_pipeline_buffer_size(PIPELINE_BUFFER),
                )
                .await
                .map_err(unavailable)?;
                Ok((Conn::Single(manager), Some(client)))
            }
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}
