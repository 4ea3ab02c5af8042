//! [`RedisStore`]: its state and its constructor; each store trait is implemented in a
//! file of its own beside this one.

use super::config::RedisConfig;
use super::conn::Conn;
use super::keys::PartitionKeys;
use super::scripts::Scripts;

use crate::domain::customer::Customer;
use crate::domain::enrollment::{CustomerNo, IdHash};
use crate::store::backend::Store;
use crate::store::error::{StoreError, StoreResult};
use crate::store::event_log::Delivery;
use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;

/// The Redis backend of every store trait.
/// Entries a consumer's read took beyond what it asked for: (stream key, consumer).
pub(super) type LeftoverKey = (String, String);

pub struct RedisStore {
    pub(super) conn: Conn,
    /// For blocking reads on a single server (a cluster polls instead).
    pub(super) client: Option<redis::Client>,
    pub(super) blocking: Mutex<Vec<MultiplexedConnection>>,
    pub(super) config: RedisConfig,
    pub(super) parts: Vec<PartitionKeys>,
    /// Stream key → partition.
    pub(super) part_of_log: HashMap<String, u16>,
    pub(super) scripts: Scripts,
    pub(super) ownership_scripts: super::ownership::OwnershipScripts,
    /// Entries a read took beyond its `max` (one XREADGROUP reads every partition), handed
    /// out first by the next read of the same consumer. They are pending in Redis under
    /// that consumer, so nothing is lost if this process dies.
    pub(super) leftovers: Mutex<HashMap<LeftoverKey, VecDeque<Delivery>>>,
    pub(super) read_turn: AtomicUsize,
    pub(super) timer_turn: AtomicUsize,
    /// Customer records as read or written: a record never changes once registered (there
    /// is no update and no delete), so a plan save needs no GET for a customer seen before.
    pub(super) customers: dashmap::DashMap<CustomerNo, Customer, IdHash>,
    /// Kept alive as long as the store (a test's own redis-server).
    pub(super) _guard: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.config.url)
            .field("prefix", &self.config.prefix)
            .field("partitions", &self.parts.len())
            .field("cluster", &matches!(self.conn, Conn::Cluster(_)))
            .finish()
    }
}

impl RedisStore {
    /// Connects (and checks the connection with a PING). Fails as unavailable when Redis
    /// cannot be reached; once connected, the store reconnects by itself.
    pub async fn connect(config: RedisConfig) -> StoreResult<RedisStore> {
        config.check()?;
        let (conn, client) = Conn::open(&config).await?;
        let parts = PartitionKeys::layout(&config.prefix, config.partitions);
        let part_of_log = parts
            .iter()
            .enumerate()
            .map(|(p, k)| (k.log.clone(), p as u16))
            .collect();
        let store = RedisStore {
            conn,
            client,
            blocking: Mutex::new(Vec::new()),
            config,
            parts,
            part_of_log,
            scripts: Scripts::new(),
            ownership_scripts: super::ownership::OwnershipScripts::new(),
            leftovers: Mutex::new(HashMap::new()),
            read_turn: AtomicUsize::new(0),
            timer_turn: AtomicUsize::new(0),
            customers: dashmap::DashMap::default(),
            _guard: None,
        };
        store.ping().await?;
        Ok(store)
    }

    /// Keeps `guard` alive as long as the store (tests hand it their redis-server).
    pub fn with_guard(mut self, guard: impl std::any::Any + Send + Sync) -> RedisStore {
        self._guard = Some(Box::new(guard));
        self
    }

    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self.conn, Conn::Cluster(_))
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn ping(&self) -> StoreResult<()> {
        let pong: String = self.query(&redis::cmd("PING")).await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(StoreError::Unavailable(format!(
                "redis answered PING with {pong:?}"
            )))
        }
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}
