//! The Redis backend: durable, shared by any number of ezenroll processes, on one Redis
//! server or a Redis Cluster.
//!
//! # Keys
//!
//! Every key starts with the configured prefix (default `ez:`). An enrollment lives in the
//! hash slot of its partition, `{p<N>}`, with everything an append writes:
//!
//! | key | type | what |
//! |---|---|---|
//! | `<prefix>{p<N>}:enr:<id>` | hash | `v` version, `s` snapshot (bincode, format byte; format 3 names its document), `doc:<number>` the text of each document issued, written once by the append that issues it (format-2 records: `d`) |
//! | `<prefix>{p<N>}:hist:<id>` | list | every event JSON of the enrollment, oldest first |
//! | `<prefix>{p<N>}:log` | stream | partition N of the event log (`e` = event JSON; in the older entry layout, an append's last entry also has `s` = the snapshot it wrote) |
//! | `<prefix>{p<N>}:timers` | zset | durable timers `<id>:<kind>`, score = due (µs) |
//! | `<prefix>{p<N>}:timer-attempts` | hash | timer → how often it fired (absent: 0) |
//! | `<prefix>dead:<group>` | stream | dead letters of a consumer group |
//! | `<prefix>customer:seq`, `<prefix>customer:<no>` | string | customer numbers, records |
//! | `<prefix>customer-of:<request>` | string with TTL | the number a keyed registration took |
//! | `<prefix>{c<no>}:limit:<product>` | hash | cumulative-limit holdings, enrollment → won |
//! | `<prefix>products` | hash | `<code>:<version>` → product JSON |
//! | `<prefix>{rm}:view:<id>`, `{rm}:views`, `{rm}:views:c:<no>`, `{rm}:status` | hashes, zsets | the MyPage read model: views, the global index (capped), per-customer indexes, counts by status |
//! | `<prefix>{rm}:alarms:of:<no>` | hash | a customer's alarms, event id → `<sent at µs> <status> <enrollment id> <message>` (capped) |
//! | `<prefix>{rm}:alarm-index` | zset | every customer's alarms, `<no>:<event id>` → sent at (capped) |
//! | `<prefix>idem:<key>` | string with TTL | idempotency records |
//!
//! So [`EnrollmentStore::append`] is ONE Lua script on one slot (the transactional outbox:
//! version check, snapshot, history, XADD to the partition stream, timer changes), a
//! version mismatch writes nothing, and the whole backend runs unchanged on a cluster. On a
//! single server, the reads that cover every partition (XREADGROUP, due timers, stale
//! entries) take all partitions in one command; on a cluster they go partition by
//! partition.
//!
//! # Connections and failures
//!
//! Commands share one multiplexed, self-reconnecting connection (`ConnectionManager`, or
//! the cluster client's connection). Blocking stream reads get their own connections from
//! a small pool, so a `BLOCK` never holds up the commands behind it. Every Redis failure
//! (down, unreachable, timed out, still loading) is a [`StoreError::Unavailable`] for the
//! caller (the HTTP layer's 503); the connection heals by itself when Redis comes back.

//!
//! # Files
//!
//! This file holds [`RedisStore`] and its constructor. The rest, one concern each:
//! `config` ([`RedisConfig`]), `conn` (connections and sending commands and scripts),
//! `keys` (the key layout above and member encodings), `encoding` (times, JSON, events as
//! stored), `upgrade` (loading snapshots of older formats), `scripts` (the Lua), `reply`
//! (reading replies), `stream_reads` (consumer-group reads), and one file per store
//! trait: `enrollments`, `timers`, `event_log`, `customers`, `products`, `read_model`
//! (views; its alarms in `alarms`), `idempotency`.

mod alarms;
mod config;
mod conn;
mod customers;
mod encoding;
mod enrollments;
mod event_log;
mod idempotency;
mod keys;
mod products;
mod read_model;
mod reply;
mod scripts;
mod stream_reads;
mod timers;
mod upgrade;

pub use crate::store::read_model::{ALARM_INDEX_LEN, ALARMS_PER_CUSTOMER, VIEW_INDEX_LEN};
pub use config::RedisConfig;

use conn::Conn;
use keys::PartitionKeys;
use scripts::Scripts;
use stream_reads::LeftoverKey;

use crate::domain::customer::Customer;
use crate::domain::enrollment::{CustomerNo, IdHash};
use crate::store::Store;
use crate::store::error::{StoreError, StoreResult};
use crate::store::event_log::Delivery;
use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;

/// The Lua source of the append script (the transactional outbox), for running it on
/// its own (`scripts/load-redis.sh` feeds it to redis-benchmark). KEYS: enrollment hash,
/// history list, partition stream, timer zset, timer attempts; ARGV: expected version, new
/// version, snapshot, stream cap, the field of a document issued by this append or '', its
/// text or '', event count n, n events, then timer ops (`S member due-µs attempt` or
/// `C member`).
pub fn append_script() -> String {
    scripts::append()
}

/// The Redis backend of every store trait.
pub struct RedisStore {
    conn: Conn,
    /// For blocking reads on a single server (a cluster polls instead).
    client: Option<redis::Client>,
    blocking: Mutex<Vec<MultiplexedConnection>>,
    config: RedisConfig,
    parts: Vec<PartitionKeys>,
    /// Stream key → partition.
    part_of_log: HashMap<String, u16>,
    scripts: Scripts,
    /// Entries a read took beyond its `max` (one XREADGROUP reads every partition), handed
    /// out first by the next read of the same consumer. They are pending in Redis under
    /// that consumer, so nothing is lost if this process dies.
    leftovers: Mutex<HashMap<LeftoverKey, VecDeque<Delivery>>>,
    read_turn: AtomicUsize,
    timer_turn: AtomicUsize,
    /// Customer records as read or written: a record never changes once registered (there
    /// is no update and no delete), so a plan save needs no GET for a customer seen before.
    customers: dashmap::DashMap<CustomerNo, Customer, IdHash>,
    /// Kept alive as long as the store (a test's own redis-server).
    _guard: Option<Box<dyn std::any::Any + Send + Sync>>,
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
