//! Sending commands and scripts over the store's connections: one command, independent
//! commands pipelined or concurrent, Lua scripts by hash, and blocking reads on pooled
//! connections of their own.

use super::conn::{BLOCKING_POOL, Conn, unavailable};
use super::store::RedisStore;
use crate::store::error::{StoreError, StoreResult, rejected};
use crate::store::locks::lock;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Cmd, RedisError, Script, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

impl RedisStore {
    pub(super) fn con(&self) -> Conn {
        self.conn.clone()
    }

    /// How a script over several partitions is called: once with every partition's keys on
    /// a single server, once per partition (one hash slot each) on a cluster.
    pub(super) fn script_batches<'p>(&self, partitions: &'p [usize]) -> Vec<&'p [usize]> {
        match self.conn {
            Conn::Single(_) => vec![partitions],
            Conn::Cluster(_) => partitions.chunks(1).collect(),
        }
    }

    /// Partition indexes starting at a rotating turn, so no partition is always last.
    pub(super) fn rotation(&self, turn: &AtomicUsize) -> Vec<usize> {
        let n = self.parts.len();
        let start = turn.fetch_add(1, Ordering::Relaxed) % n;
        (0..n).map(|k| (start + k) % n).collect()
    }

    /// An `EVALSHA` of `script` taking `keys` keys: the caller adds the keys, then the
    /// arguments, straight into the one command (no per-argument buffers as a
    /// `ScriptInvocation` keeps, no second copy of the snapshot and the events).
    pub(super) fn evalsha(script: &Script, keys: usize, args: usize, bytes: usize) -> Cmd {
        let mut cmd = Cmd::with_capacity(3 + keys + args, 64 + bytes);
        cmd.arg("EVALSHA").arg(script.get_hash()).arg(keys);
        cmd
    }

    /// Runs an [`evalsha`](Self::evalsha) command, loading the script first when Redis
    /// does not know it (a restarted or new server).
    pub(super) async fn eval<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        cmd: &Cmd,
    ) -> Result<T, RedisError> {
        let mut con = self.con();
        match cmd.query_async(&mut con).await {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                script.load_async(&mut con).await?;
                cmd.query_async(&mut con).await
            }
            other => other,
        }
    }

    pub(super) async fn query<T: redis::FromRedisValue>(&self, cmd: &Cmd) -> StoreResult<T> {
        cmd.query_async(&mut self.con()).await.map_err(unavailable)
    }

    /// Runs independent commands: pipelined on one server, concurrently on a cluster
    /// (their keys may live on different nodes). Errors are per command.
    pub(super) async fn run_each(&self, cmds: Vec<Cmd>) -> Vec<Result<Value, RedisError>> {
        match &self.conn {
            Conn::Single(_) => {
                let mut pipe = redis::pipe();
                pipe.ignore_errors();
                for cmd in &cmds {
                    pipe.add_command(cmd.clone());
                }
                match pipe
                    .query_async::<Vec<redis::RedisResult<Value>>>(&mut self.con())
                    .await
                {
                    Ok(results) => results,
                    Err(e) => cmds.iter().map(|_| Err(e.clone())).collect(),
                }
            }
            Conn::Cluster(_) => {
                let futures = cmds.into_iter().map(|cmd| {
                    let mut con = self.con();
                    async move { cmd.query_async::<Value>(&mut con).await }
                });
                futures_util::future::join_all(futures).await
            }
        }
    }

    pub(super) async fn blocking_conn(&self) -> StoreResult<MultiplexedConnection> {
        if let Some(con) = lock(&self.blocking).pop() {
            return Ok(con);
        }
        let Some(client) = &self.client else {
            return Err(rejected("blocking reads are for a single server"));
        };
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.config.connect_timeout))
            .set_response_timeout(None);
        client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(unavailable)
    }

    /// Runs a blocking command on its own connection, with a deadline of `block` plus
    /// the response timeout. A connection that failed is dropped, not pooled.
    pub(super) async fn query_blocking(&self, cmd: &Cmd, block: Duration) -> StoreResult<Value> {
        let mut con = self.blocking_conn().await?;
        let limit = block.saturating_add(self.config.response_timeout);
        match tokio::time::timeout(limit, cmd.query_async::<Value>(&mut con)).await {
            Ok(Ok(value)) => {
                let mut pool = lock(&self.blocking);
                if pool.len() < BLOCKING_POOL {
                    pool.push(con);
                }
                Ok(value)
            }
            Ok(Err(e)) => {
                if e.code().is_some() {
                    // A server error (NOGROUP…): the connection itself is fine.
                    let mut pool = lock(&self.blocking);
                    if pool.len() < BLOCKING_POOL {
                        pool.push(con);
                    }
                }
                Err(self.read_error(e))
            }
            Err(_) => Err(StoreError::Unavailable(format!(
                "redis: no answer to a blocking read within {limit:?}"
            ))),
        }
    }
}
