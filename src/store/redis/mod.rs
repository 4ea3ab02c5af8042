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
//! | `<prefix>{p<N>}:enr:<id>` | hash | `v` version, `s` snapshot (bincode, format byte; format 3 names its document), `doc:<number>` the text of each document issued, written once by the append that issues it (records of earlier builds: `d`) |
//! | `<prefix>{p<N>}:hist:<id>` | list | every event JSON of the enrollment, oldest first |
//! | `<prefix>{p<N>}:log` | stream | partition N of the event log (`e` = event JSON; entries of builds before 2026-12-03: an append's last one also `s` = the snapshot it wrote) |
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

mod reply;
mod scripts;

use super::codec;
use super::customers::numbered_customer;
use super::enrollments::validate_append;
use super::products::stored_version;
use super::{
    Alarm, Append, CarriedState, CustomerStore, Delivery, EnrollmentStore, EventEnvelope, EventLog,
    IdempotencyClaim, IdempotencyStore, MyPageView, ProductStore, ReadModelStore, Reservation,
    Store, StoreError, StoreResult, Timer, TimerKind, TimerOp, TimerStore, ViewFilter,
};
use crate::domain::customer::{Customer, NewCustomer};
use crate::domain::enrollment::{
    CustomerNo, Enrollment, EnrollmentId, IdHash, ProductDocument, Status,
};
use crate::domain::money::Won;
use crate::domain::product::ProductSpec;
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Cmd, RedisError, RedisFuture, Script, Value};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The Lua source of the append script (the transactional outbox), for measuring it on
/// its own (`scripts/load-redis.sh` feeds it to redis-benchmark). KEYS: enrollment hash,
/// history list, partition stream, timer zset, timer attempts; ARGV: expected version, new
/// version, snapshot, stream cap, the field of a document issued by this append or '', its
/// text or '', event count n, n events, then timer ops (`S member due-µs attempt` or
/// `C member`).
pub fn append_script() -> String {
    scripts::append()
}

/// Blocking-read connections kept for reuse.
const BLOCKING_POOL: usize = 16;

/// How often a cluster reader looks again while it waits (no BLOCK across slots).
const CLUSTER_POLL: Duration = Duration::from_millis(20);

/// Dead letters kept per group (the oldest go first beyond it).
const DEAD_LETTERS_KEPT: u64 = 100_000;

/// Commands queued for the shared connection's writer before callers wait (default 50).
const PIPELINE_BUFFER: usize = 1024;

/// Customer records kept in memory (all are dropped when it is reached).
const CUSTOMERS_KEPT: usize = 100_000;

/// The most alarms or views one call returns.
const MAX_LIST: usize = 10_000;

/// The most MyPage views one script call writes. A projector that lingers gathers a few
/// hundred events a batch; written in one call they held Redis for 2–5 ms, and every
/// append behind them waited.
const VIEWS_PER_SCRIPT: usize = 64;

/// How to reach Redis and lay out the keys.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://host:port/db` for one server; `redis+cluster://host:port,host:port,…` (or
    /// several comma-separated `redis://` URLs) for a cluster.
    pub url: String,
    /// Starts every key; no braces (they would change the hash slots).
    pub prefix: String,
    /// Partitions of the event log (default 16). Every process sharing the prefix must
    /// use the same count.
    pub partitions: u16,
    /// Approximate cap per partition stream (`XADD MAXLEN ~`).
    pub stream_max_len: u64,
    /// A command that takes longer fails as unavailable.
    pub response_timeout: Duration,
    pub connect_timeout: Duration,
    /// Alarms kept per customer (the oldest go first beyond it); at least 1.
    pub alarms_per_customer: u64,
    /// Entries of the index of every customer's alarms (`GET /alarms` as admin); at least 1.
    pub alarm_index_len: u64,
    /// Entries of the index of every MyPage view (`GET /mypage` as admin); the views
    /// themselves and the per-customer indexes are kept. At least 1.
    pub view_index_len: u64,
    /// A retention setting from the environment that did not parse (`connect` refuses it).
    env_error: Option<String>,
}

/// Default of [`RedisConfig::alarms_per_customer`].
pub const ALARMS_PER_CUSTOMER: u64 = 100;
/// Default of [`RedisConfig::alarm_index_len`].
pub const ALARM_INDEX_LEN: u64 = 100_000;
/// Default of [`RedisConfig::view_index_len`].
pub const VIEW_INDEX_LEN: u64 = 100_000;

/// A retention setting: the default, or the environment variable `name` when it is set.
fn retention_from_env(name: &str, default: u64, errors: &mut Option<String>) -> u64 {
    match std::env::var(name) {
        Err(_) => default,
        Ok(text) => match text.trim().parse::<u64>() {
            Ok(n) if n >= 1 => n,
            _ => {
                errors.get_or_insert_with(|| {
                    format!("{name}={text:?}: expected a whole number of at least 1")
                });
                default
            }
        },
    }
}

impl RedisConfig {
    /// The defaults, with the retention of alarms and indexes taken from the environment
    /// when set: `EZENROLL_REDIS_ALARMS_PER_CUSTOMER` (default 100),
    /// `EZENROLL_REDIS_ALARM_INDEX` (100,000) and `EZENROLL_REDIS_VIEW_INDEX` (100,000).
    pub fn new(url: impl Into<String>) -> RedisConfig {
        let mut env_error = None;
        RedisConfig {
            url: url.into(),
            prefix: "ez:".to_owned(),
            partitions: 16,
            stream_max_len: 1_000_000,
            response_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(3),
            alarms_per_customer: retention_from_env(
                "EZENROLL_REDIS_ALARMS_PER_CUSTOMER",
                ALARMS_PER_CUSTOMER,
                &mut env_error,
            ),
            alarm_index_len: retention_from_env(
                "EZENROLL_REDIS_ALARM_INDEX",
                ALARM_INDEX_LEN,
                &mut env_error,
            ),
            view_index_len: retention_from_env(
                "EZENROLL_REDIS_VIEW_INDEX",
                VIEW_INDEX_LEN,
                &mut env_error,
            ),
            env_error,
        }
    }

    /// How much history of alarms and views is kept (each at least 1).
    pub fn with_retention(
        mut self,
        alarms_per_customer: u64,
        alarm_index_len: u64,
        view_index_len: u64,
    ) -> RedisConfig {
        self.alarms_per_customer = alarms_per_customer;
        self.alarm_index_len = alarm_index_len;
        self.view_index_len = view_index_len;
        self
    }

    pub fn with_prefix(mut self, prefix: impl Into<String>) -> RedisConfig {
        self.prefix = prefix.into();
        self
    }

    pub fn with_partitions(mut self, partitions: u16) -> RedisConfig {
        self.partitions = partitions;
        self
    }

    pub fn with_stream_max_len(mut self, max_len: u64) -> RedisConfig {
        self.stream_max_len = max_len;
        self
    }

    /// The node URLs when this names a cluster.
    fn cluster_nodes(&self) -> Option<Vec<String>> {
        let url = self.url.trim();
        let (cluster, rest) = match url.strip_prefix("redis+cluster://") {
            Some(rest) => (true, rest),
            None => (url.contains(','), url),
        };
        if !cluster {
            return None;
        }
        Some(
            rest.split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(|n| {
                    if n.contains("://") {
                        n.to_owned()
                    } else {
                        format!("redis://{n}")
                    }
                })
                .collect(),
        )
    }
}

/// A redis error as the store reports it.
fn unavailable(e: RedisError) -> StoreError {
    StoreError::Unavailable(format!("redis: {e}"))
}

fn rejected(message: impl Into<String>) -> StoreError {
    StoreError::Rejected(message.into())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn from_micros(what: &str, us: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us).ok_or_else(|| StoreError::Corrupt {
        key: what.to_owned(),
        reason: format!("{us} µs is not a time"),
    })
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn kind_code(kind: TimerKind) -> &'static str {
    match kind {
        TimerKind::IssueDocument => "doc",
        TimerKind::ExpirePlan => "exp",
        TimerKind::Refund => "ref",
    }
}

fn timer_member(id: EnrollmentId, kind: TimerKind) -> String {
    format!("{id}:{}", kind_code(kind))
}

fn parse_timer_member(member: &str) -> StoreResult<(EnrollmentId, TimerKind)> {
    let corrupt = || StoreError::Corrupt {
        key: member.to_owned(),
        reason: "not a timer (<enrollment id>:<kind>)".to_owned(),
    };
    let (id, kind) = member.rsplit_once(':').ok_or_else(corrupt)?;
    let kind = match kind {
        "doc" => TimerKind::IssueDocument,
        "exp" => TimerKind::ExpirePlan,
        "ref" => TimerKind::Refund,
        _ => return Err(corrupt()),
    };
    Ok((EnrollmentId::parse(id).map_err(|_| corrupt())?, kind))
}

fn status_of(what: &str, text: &str) -> StoreResult<Status> {
    Status::ALL
        .into_iter()
        .find(|s| s.as_str() == text)
        .ok_or_else(|| StoreError::Corrupt {
            key: what.to_owned(),
            reason: format!("{text:?} is not a status"),
        })
}

fn decode_json<T: serde::de::DeserializeOwned>(key: &str, bytes: &[u8]) -> StoreResult<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: key.to_owned(),
        reason: format!("JSON: {e}"),
    })
}

fn encode_json<T: serde::Serialize>(key: &str, value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt {
        key: key.to_owned(),
        reason: format!("cannot encode: {e}"),
    })
}

/// A stream entry id (`<ms>-<seq>`), checked before it reaches a command.
fn check_entry_id(entry_id: &str) -> StoreResult<()> {
    let valid = entry_id.split_once('-').is_some_and(|(ms, seq)| {
        !ms.is_empty()
            && !seq.is_empty()
            && ms.bytes().all(|b| b.is_ascii_digit())
            && seq.bytes().all(|b| b.is_ascii_digit())
    });
    if valid {
        Ok(())
    } else {
        Err(rejected(format!(
            "{entry_id:?} is not an entry id of this log"
        )))
    }
}

/// One connection (single server or cluster), cheap to clone.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
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

/// The keys of one partition.
struct PartitionKeys {
    /// `<prefix>{p<N>}`: the hash-tagged stem of every key of the partition.
    stem: String,
    log: String,
    timers: String,
    timer_attempts: String,
}

struct Scripts {
    append: Script,
    timer_ops: Script,
    claim_timers: Script,
    claim_stale: Script,
    reserve: Script,
    upsert_views: Script,
    record_alarms: Script,
    views: Script,
    alarms: Script,
    compact: Script,
    idem_claim: Script,
    idem_put: Script,
    idem_release: Script,
}

impl Scripts {
    fn new() -> Scripts {
        Scripts {
            append: Script::new(&scripts::append()),
            timer_ops: Script::new(&scripts::timer_ops()),
            claim_timers: Script::new(scripts::CLAIM_TIMERS),
            claim_stale: Script::new(scripts::CLAIM_STALE),
            reserve: Script::new(scripts::RESERVE),
            upsert_views: Script::new(scripts::UPSERT_VIEWS),
            record_alarms: Script::new(scripts::RECORD_ALARMS),
            views: Script::new(scripts::VIEWS),
            alarms: Script::new(scripts::ALARMS),
            compact: Script::new(scripts::COMPACT),
            idem_claim: Script::new(scripts::IDEM_CLAIM),
            idem_put: Script::new(scripts::IDEM_PUT),
            idem_release: Script::new(scripts::IDEM_RELEASE),
        }
    }
}

type LeftoverKey = (String, String);

/// A stream entry as read, before its event is decoded.
struct RawEntry {
    partition: u16,
    id: String,
    /// The event JSON (field `e`); `None` for an entry deleted meanwhile.
    event: Option<Vec<u8>>,
    /// The snapshot its append wrote (field `s`), when the entry carries one (written by
    /// a build before 2026-12-03).
    state: Option<Vec<u8>>,
    deliveries: u32,
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

/// The field of an enrollment's hash that holds the text of its document `document_no`.
fn document_field(document_no: &str) -> String {
    format!("doc:{document_no}")
}

impl RedisStore {
    /// One enrollment: `v` and `s` (and, for a format-2 snapshot of an earlier build that
    /// has a document, `d`, where its text was).
    async fn load_state(&self, id: EnrollmentId) -> StoreResult<Option<(u64, Arc<Enrollment>)>> {
        let key = self.enrollment_key(id);
        let (version, snapshot): (Option<u64>, Option<Vec<u8>>) = self
            .query(redis::cmd("HMGET").arg(&key).arg("v").arg("s"))
            .await?;
        match (version, snapshot) {
            (None, None) => Ok(None),
            (Some(version), Some(bytes)) => {
                let old_document: Option<Vec<u8>> = if codec::needs_old_document(&bytes) {
                    self.query(redis::cmd("HGET").arg(&key).arg("d")).await?
                } else {
                    None
                };
                let stored = codec::decode_stored(&key, &bytes, old_document.as_deref())?;
                if let Some(document) = &stored.old_document {
                    self.keep_old_document(&key, id, document).await?;
                }
                Ok(Some((version, Arc::new(stored.state))))
            }
            _ => Err(StoreError::Corrupt {
                key,
                reason: "the record lacks its version or its snapshot".to_owned(),
            }),
        }
    }

    /// The text of a document that an earlier build's snapshot held (format 1) or kept in
    /// `d` (format 2), stored where this build keeps it, before an append of this build
    /// replaces that snapshot. Idempotent (HSETNX), so any reader may do it.
    async fn keep_old_document(
        &self,
        key: &str,
        id: EnrollmentId,
        document: &ProductDocument,
    ) -> StoreResult<()> {
        let bytes = codec::encode_document(id, document)?;
        let _: i64 = self
            .query(
                redis::cmd("HSETNX")
                    .arg(key)
                    .arg(document_field(&document.document_no))
                    .arg(bytes),
            )
            .await?;
        Ok(())
    }

    /// Connects (and checks the connection with a PING). Fails as unavailable when Redis
    /// cannot be reached; once connected, the store reconnects by itself.
    pub async fn connect(config: RedisConfig) -> StoreResult<RedisStore> {
        if let Some(e) = &config.env_error {
            return Err(rejected(e.clone()));
        }
        if config.alarms_per_customer == 0
            || config.alarm_index_len == 0
            || config.view_index_len == 0
        {
            return Err(rejected(
                "alarms per customer and the alarm and view index lengths must be at least 1",
            ));
        }
        if config.prefix.contains(['{', '}']) {
            return Err(rejected(format!(
                "the key prefix {:?} may not contain braces (they pick hash slots)",
                config.prefix
            )));
        }
        let (conn, client) = match config.cluster_nodes() {
            Some(nodes) => {
                let client = ClusterClient::builder(nodes)
                    .connection_timeout(config.connect_timeout)
                    .response_timeout(config.response_timeout)
                    .retries(3)
                    .build()
                    .map_err(unavailable)?;
                let conn = client.get_async_connection().await.map_err(unavailable)?;
                (Conn::Cluster(conn), None)
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
                        // Room for a consumer's whole batch of reads (256 at a time) and
                        // the actors' commands: a full queue parks each further caller.
                        .set_pipeline_buffer_size(PIPELINE_BUFFER),
                )
                .await
                .map_err(unavailable)?;
                (Conn::Single(manager), Some(client))
            }
        };
        let n = config.partitions.max(1);
        let parts: Vec<PartitionKeys> = (0..n)
            .map(|p| {
                let stem = format!("{}{{p{p}}}", config.prefix);
                PartitionKeys {
                    log: format!("{stem}:log"),
                    timers: format!("{stem}:timers"),
                    timer_attempts: format!("{stem}:timer-attempts"),
                    stem,
                }
            })
            .collect();
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

    fn con(&self) -> Conn {
        self.conn.clone()
    }

    fn partition_of(&self, id: EnrollmentId) -> usize {
        (id.partition_hash() % self.parts.len() as u64) as usize
    }

    /// The key of an enrollment's record (hash: `v` version, `s` snapshot), for operators.
    pub fn enrollment_key(&self, id: EnrollmentId) -> String {
        format!("{}:enr:{id}", self.parts[self.partition_of(id)].stem)
    }

    fn history_key(&self, id: EnrollmentId) -> String {
        format!("{}:hist:{id}", self.parts[self.partition_of(id)].stem)
    }

    fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.config.prefix)
    }

    fn rm(&self, rest: &str) -> String {
        format!("{}{{rm}}:{rest}", self.config.prefix)
    }

    /// A customer's alarms: hash event id → `<sent at, µs> <status> <enrollment id> <message>`.
    fn customer_alarms_key(&self, no: CustomerNo) -> String {
        self.rm(&format!("alarms:of:{no}"))
    }

    fn dead_key(&self, group: &str) -> String {
        self.key(&format!("dead:{group}"))
    }

    fn check_partition(&self, partition: u16) -> StoreResult<usize> {
        let p = usize::from(partition);
        if p < self.parts.len() {
            Ok(p)
        } else {
            Err(rejected(format!(
                "partition {partition} does not exist (the log has {})",
                self.parts.len()
            )))
        }
    }

    /// How a script over several partitions is called: once with every partition's keys on
    /// a single server, once per partition (one hash slot each) on a cluster.
    fn script_batches<'p>(&self, partitions: &'p [usize]) -> Vec<&'p [usize]> {
        match self.conn {
            Conn::Single(_) => vec![partitions],
            Conn::Cluster(_) => partitions.chunks(1).collect(),
        }
    }

    /// Partition indexes starting at a rotating turn, so no partition is always last.
    fn rotation(&self, turn: &AtomicUsize) -> Vec<usize> {
        let n = self.parts.len();
        let start = turn.fetch_add(1, Ordering::Relaxed) % n;
        (0..n).map(|k| (start + k) % n).collect()
    }

    /// An `EVALSHA` of `script` taking `keys` keys: the caller adds the keys, then the
    /// arguments, straight into the one command (no per-argument buffers as a
    /// `ScriptInvocation` keeps, no second copy of the snapshot and the events).
    fn evalsha(script: &Script, keys: usize, args: usize, bytes: usize) -> Cmd {
        let mut cmd = Cmd::with_capacity(3 + keys + args, 64 + bytes);
        cmd.arg("EVALSHA").arg(script.get_hash()).arg(keys);
        cmd
    }

    /// Runs an [`evalsha`](Self::evalsha) command, loading the script first when Redis
    /// does not know it (a restarted or new server).
    async fn eval<T: redis::FromRedisValue>(
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

    async fn query<T: redis::FromRedisValue>(&self, cmd: &Cmd) -> StoreResult<T> {
        cmd.query_async(&mut self.con()).await.map_err(unavailable)
    }

    /// Runs independent commands: pipelined on one server, concurrently on a cluster
    /// (their keys may live on different nodes). Errors are per command.
    async fn run_each(&self, cmds: Vec<Cmd>) -> Vec<Result<Value, RedisError>> {
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

    async fn blocking_conn(&self) -> StoreResult<MultiplexedConnection> {
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
    async fn query_blocking(&self, cmd: &Cmd, block: Duration) -> StoreResult<Value> {
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

    fn read_error(&self, e: RedisError) -> StoreError {
        if e.code() == Some("NOGROUP") {
            rejected(format!(
                "no such consumer group: {e}; ensure_group creates it"
            ))
        } else {
            unavailable(e)
        }
    }

    /// Turns stream entries into deliveries. An entry whose event does not decode goes
    /// straight to the dead letters (it would fail every time); one deleted meanwhile is
    /// acknowledged away.
    async fn deliveries(&self, group: &str, raw: Vec<RawEntry>) -> StoreResult<Vec<Delivery>> {
        let mut out = Vec::with_capacity(raw.len());
        for entry in raw {
            let RawEntry {
                partition,
                id: entry_id,
                event: payload,
                state,
                deliveries,
            } = entry;
            let key = &self.parts[usize::from(partition)].log;
            let decoded = match &payload {
                Some(bytes) => std::str::from_utf8(bytes)
                    .map_err(|e| StoreError::Corrupt {
                        key: format!("{key} {entry_id}"),
                        reason: format!("not UTF-8: {e}"),
                    })
                    .and_then(|text| {
                        // The key for the error only: named when it is needed.
                        codec::decode_event("", text).map_err(|e| match e {
                            StoreError::Corrupt { reason, .. } => StoreError::Corrupt {
                                key: format!("{key} {entry_id}"),
                                reason,
                            },
                            other => other,
                        })
                    }),
                None => {
                    self.query::<Value>(redis::cmd("XACK").arg(key).arg(group).arg(&entry_id))
                        .await?;
                    continue;
                }
            };
            match decoded {
                Ok(envelope) => out.push(Delivery {
                    partition,
                    entry_id,
                    envelope: Arc::new(envelope),
                    deliveries,
                    state: state.map(CarriedState::new),
                }),
                Err(e) => {
                    tracing::error!(%key, %entry_id, error = %e, "undecodable event: dead-lettered");
                    let raw = payload.unwrap_or_default();
                    self.query::<Value>(
                        redis::cmd("XADD")
                            .arg(self.dead_key(group))
                            .arg("*")
                            .arg("raw")
                            .arg(raw)
                            .arg("r")
                            .arg(e.to_string())
                            .arg("p")
                            .arg(partition)
                            .arg("i")
                            .arg(&entry_id),
                    )
                    .await?;
                    self.query::<Value>(redis::cmd("XACK").arg(key).arg(group).arg(&entry_id))
                        .await?;
                }
            }
        }
        Ok(out)
    }

    fn parse_read(&self, value: &Value) -> StoreResult<Vec<RawEntry>> {
        let mut raw = Vec::new();
        for (key, entries) in reply::streams("XREADGROUP", value)? {
            let Some(&partition) = self.part_of_log.get(key) else {
                return Err(reply::unexpected("XREADGROUP stream", value));
            };
            for (id, [event, state]) in reply::stream_fields("XREADGROUP", entries, [b"e", b"s"])? {
                raw.push(RawEntry {
                    partition,
                    id: id.to_owned(),
                    event: event.map(<[u8]>::to_vec),
                    state: state.map(<[u8]>::to_vec),
                    deliveries: 1,
                });
            }
        }
        Ok(raw)
    }

    fn remember_customer(&self, customer: &Customer) {
        if self.customers.len() >= CUSTOMERS_KEPT {
            self.customers.clear();
        }
        self.customers
            .insert(customer.customer_no, customer.clone());
    }

    fn take_leftovers(&self, group: &str, consumer: &str, max: usize) -> Vec<Delivery> {
        let mut all = lock(&self.leftovers);
        let key = (group.to_owned(), consumer.to_owned());
        let Some(queue) = all.get_mut(&key) else {
            return Vec::new();
        };
        let n = max.min(queue.len());
        let out: Vec<Delivery> = queue.drain(..n).collect();
        if queue.is_empty() {
            all.remove(&key);
        }
        out
    }

    fn keep_leftovers(&self, group: &str, consumer: &str, extra: Vec<Delivery>) {
        if extra.is_empty() {
            return;
        }
        lock(&self.leftovers)
            .entry((group.to_owned(), consumer.to_owned()))
            .or_default()
            .extend(extra);
    }

    /// One XREADGROUP over the given partitions, no blocking unless `block` is set (single
    /// server only).
    fn read_cmd(
        &self,
        group: &str,
        consumer: &str,
        per: usize,
        block: Option<Duration>,
        partitions: &[usize],
    ) -> Cmd {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(group)
            .arg(consumer)
            .arg("COUNT")
            .arg(per);
        if let Some(block) = block {
            cmd.arg("BLOCK")
                .arg(millis(block).clamp(1, u64::from(u32::MAX)));
        }
        cmd.arg("STREAMS");
        for &p in partitions {
            cmd.arg(&self.parts[p].log);
        }
        for _ in partitions {
            cmd.arg(">");
        }
        cmd
    }

    /// Never-delivered entries, at most `max`, from the partitions in the order given.
    /// Plain XREADGROUPs, not a script: Redis writes the entries into the reply as they
    /// are, where a script turned every entry into Lua tables and back (draining 160,000
    /// entries: 3.8–4.9 µs of Redis CPU per entry, the script 5.6–6.3).
    ///
    /// On a single server, first one read over every partition, COUNT `max` ÷ partitions
    /// each (so at most `max` in all); then, while room is left, one partition at a time,
    /// but only those that filled their share and may hold more. Most reads find little:
    /// one round trip. On a cluster, partition by partition.
    async fn read_exact(
        &self,
        group: &str,
        consumer: &str,
        max: usize,
        partitions: &[usize],
    ) -> StoreResult<Vec<RawEntry>> {
        let mut raw = Vec::new();
        for batch in self.script_batches(partitions) {
            let room = max.saturating_sub(raw.len());
            if room == 0 {
                break;
            }
            let per = room / batch.len();
            let mut filled = Vec::new();
            if per == 0 {
                filled.extend_from_slice(batch);
            } else {
                let found = self.read_new(group, consumer, per, batch).await?;
                let mut counts = vec![0usize; self.parts.len()];
                for entry in &found {
                    counts[usize::from(entry.partition)] += 1;
                }
                filled.extend(batch.iter().copied().filter(|&p| counts[p] >= per));
                raw.extend(found);
            }
            for p in filled {
                let room = max.saturating_sub(raw.len());
                if room == 0 {
                    break;
                }
                raw.extend(self.read_new(group, consumer, room, &[p]).await?);
            }
        }
        Ok(raw)
    }

    /// One non-blocking XREADGROUP of up to `count` new entries from each partition given.
    async fn read_new(
        &self,
        group: &str,
        consumer: &str,
        count: usize,
        partitions: &[usize],
    ) -> StoreResult<Vec<RawEntry>> {
        let value: Value = self
            .read_cmd(group, consumer, count, None, partitions)
            .query_async(&mut self.con())
            .await
            .map_err(|e| self.read_error(e))?;
        self.parse_read(&value)
    }

    async fn timer_script(&self, id: EnrollmentId, args: &[String]) -> StoreResult<()> {
        let keys = &self.parts[self.partition_of(id)];
        let mut invocation = self.scripts.timer_ops.prepare_invoke();
        invocation.key(&keys.timers).key(&keys.timer_attempts);
        for a in args {
            invocation.arg(a);
        }
        invocation
            .invoke_async::<Value>(&mut self.con())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    fn timer_args(&self, op: &TimerOp, id: EnrollmentId, out: &mut Vec<String>) {
        match *op {
            TimerOp::Set(t) => {
                out.push("S".to_owned());
                out.push(timer_member(t.enrollment_id, t.kind));
                out.push(micros(t.due).to_string());
                out.push(t.attempt.to_string());
            }
            TimerOp::Cancel(kind) => {
                out.push("C".to_owned());
                out.push(timer_member(id, kind));
            }
        }
    }

    fn parse_timers(&self, value: &Value, out: &mut Vec<Timer>) -> StoreResult<()> {
        let items = reply::items("timers", value)?;
        for t in items.chunks(3) {
            let [member, due, attempt] = t else {
                return Err(reply::unexpected("timers", value));
            };
            let (enrollment_id, kind) = parse_timer_member(reply::text("timer", member)?)?;
            let due = from_micros("timer due", reply::int("timer due", due)?)?;
            let attempt = u32::try_from(reply::uint("timer attempt", attempt)?)
                .map_err(|_| reply::unexpected("timer attempt", value))?;
            out.push(Timer {
                enrollment_id,
                kind,
                due,
                attempt,
            });
        }
        Ok(())
    }

    fn parse_claimed(&self, value: &Value, partitions: &[usize]) -> StoreResult<Vec<RawEntry>> {
        let items = reply::items("claim", value)?;
        let mut raw = Vec::with_capacity(items.len() / 4);
        for e in items.chunks(4) {
            let [index, id, payload, deliveries] = e else {
                return Err(reply::unexpected("claim", value));
            };
            let index = reply::uint("claim", index)? as usize;
            let Some(&p) = index.checked_sub(1).and_then(|i| partitions.get(i)) else {
                return Err(reply::unexpected("claim", value));
            };
            let payload = reply::bytes("claim", payload)?;
            // The claim script returns the event only: a projector reads the state back.
            raw.push(RawEntry {
                partition: p as u16,
                id: reply::text("claim", id)?.to_owned(),
                event: (!payload.is_empty()).then(|| payload.to_vec()),
                state: None,
                deliveries: u32::try_from(reply::uint("claim", deliveries)?).unwrap_or(u32::MAX),
            });
        }
        Ok(raw)
    }

    async fn lag_of_partition(&self, p: usize, group: &str) -> StoreResult<Option<u64>> {
        let key = &self.parts[p].log;
        let info = match self
            .query::<Value>(redis::cmd("XINFO").arg("GROUPS").arg(key))
            .await
        {
            Ok(info) => info,
            Err(StoreError::Unavailable(e)) if e.contains("no such key") => return Ok(None),
            Err(e) => return Err(e),
        };
        for g in reply::items("XINFO GROUPS", &info)? {
            let fields = reply::pairs("XINFO GROUPS", g)?;
            let field = |name: &str| {
                fields
                    .iter()
                    .find(|(k, _)| reply::bytes("XINFO", k).is_ok_and(|b| b == name.as_bytes()))
                    .map(|(_, v)| *v)
            };
            let is_group = field("name")
                .and_then(|v| reply::text("XINFO", v).ok())
                .is_some_and(|n| n == group);
            if !is_group {
                continue;
            }
            let pending = field("pending")
                .map(|v| reply::uint("XINFO pending", v))
                .transpose()?
                .unwrap_or(0);
            let lag = match field("lag") {
                Some(Value::Nil) | None => {
                    // Redis cannot tell (entries deleted after the group's position):
                    // count what lies after the last delivered entry.
                    let last = field("last-delivered-id")
                        .map(|v| reply::text("XINFO", v).map(str::to_owned))
                        .transpose()?
                        .unwrap_or_else(|| "0-0".to_owned());
                    self.count_after(key, &last).await?
                }
                Some(v) => reply::uint("XINFO lag", v)?,
            };
            return Ok(Some(lag + pending));
        }
        Ok(None)
    }

    async fn count_after(&self, key: &str, last: &str) -> StoreResult<u64> {
        let mut from = format!("({last}");
        let mut count = 0u64;
        loop {
            let page: Value = self
                .query(
                    redis::cmd("XRANGE")
                        .arg(key)
                        .arg(&from)
                        .arg("+")
                        .arg("COUNT")
                        .arg(1000),
                )
                .await?;
            let entries = reply::stream_entries("XRANGE", &page, b"e")?;
            let Some((last_id, _)) = entries.last() else {
                return Ok(count);
            };
            count += entries.len() as u64;
            from = format!("({last_id}");
        }
    }
}

#[async_trait]
impl EnrollmentStore for RedisStore {
    async fn load(&self, id: EnrollmentId) -> StoreResult<Option<(u64, Arc<Enrollment>)>> {
        self.load_state(id).await
    }

    async fn append(&self, append: Append<'_>) -> StoreResult<u64> {
        let new_version = validate_append(&append)?;
        let id = append.id;
        let snapshot = codec::encode_snapshot(append.state)?;
        let events = append
            .events
            .iter()
            .map(|e| codec::encode_event(e))
            .collect::<StoreResult<Vec<String>>>()?;
        let mut timer_args = Vec::new();
        for op in append.timers {
            self.timer_args(op, id, &mut timer_args);
        }
        // The document's text goes to Redis once, with the event that names it.
        let (document_field, document_bytes) = match append.document {
            Some(d) => (
                document_field(&d.document_no),
                codec::encode_document(id, d)?,
            ),
            None => (String::new(), Vec::new()),
        };
        let part = &self.parts[self.partition_of(id)];
        let key = self.enrollment_key(id);
        let script = &self.scripts.append;
        let bytes = snapshot.len()
            + document_bytes.len()
            + events.iter().map(String::len).sum::<usize>()
            + timer_args.iter().map(String::len).sum::<usize>()
            + 256;
        let mut cmd = Self::evalsha(script, 5, 7 + events.len() + timer_args.len(), bytes);
        cmd.arg(&key)
            .arg(self.history_key(id))
            .arg(&part.log)
            .arg(&part.timers)
            .arg(&part.timer_attempts)
            .arg(append.expected_version)
            .arg(new_version)
            .arg(&snapshot)
            .arg(self.config.stream_max_len)
            .arg(&document_field)
            .arg(&document_bytes)
            .arg(events.len());
        for e in &events {
            cmd.arg(e);
        }
        for a in &timer_args {
            cmd.arg(a);
        }
        let result: Value = self.eval(script, &cmd).await.map_err(unavailable)?;
        let [ok, version] = reply::items("append", &result)? else {
            return Err(reply::unexpected("append", &result));
        };
        let version = reply::uint("append version", version)?;
        match reply::int("append", ok)? {
            1 => Ok(version),
            0 => Err(StoreError::Conflict {
                key,
                expected: append.expected_version,
                actual: version,
            }),
            _ => Err(reply::unexpected("append", &result)),
        }
    }

    async fn history(&self, id: EnrollmentId) -> StoreResult<Vec<EventEnvelope>> {
        let key = self.history_key(id);
        let events: Vec<Vec<u8>> = self
            .query(redis::cmd("LRANGE").arg(&key).arg(0).arg(-1))
            .await?;
        events
            .iter()
            .map(|bytes| {
                let text = std::str::from_utf8(bytes).map_err(|e| StoreError::Corrupt {
                    key: key.clone(),
                    reason: format!("not UTF-8: {e}"),
                })?;
                codec::decode_event(&key, text)
            })
            .collect()
    }

    async fn document(
        &self,
        id: EnrollmentId,
        document_no: &str,
    ) -> StoreResult<Option<ProductDocument>> {
        let key = self.enrollment_key(id);
        let bytes: Option<Vec<u8>> = self
            .query(
                redis::cmd("HGET")
                    .arg(&key)
                    .arg(document_field(document_no)),
            )
            .await?;
        bytes
            .map(|bytes| codec::decode_document(&key, &bytes))
            .transpose()
    }
}

#[async_trait]
impl TimerStore for RedisStore {
    async fn claim_due_timers(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        max: usize,
    ) -> StoreResult<Vec<Timer>> {
        let mut out = Vec::new();
        if max == 0 {
            return Ok(out);
        }
        let until = TimeDelta::from_std(lease)
            .ok()
            .and_then(|d| now.checked_add_signed(d))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let order = self.rotation(&self.timer_turn);
        for batch in self.script_batches(&order) {
            let room = max - out.len();
            if room == 0 {
                break;
            }
            let script = &self.scripts.claim_timers;
            let mut cmd = Self::evalsha(script, 2 * batch.len(), 3, 64 * batch.len());
            for &p in batch {
                cmd.arg(&self.parts[p].timers)
                    .arg(&self.parts[p].timer_attempts);
            }
            cmd.arg(micros(now)).arg(micros(until)).arg(room);
            let value: Value = self.eval(script, &cmd).await.map_err(unavailable)?;
            self.parse_timers(&value, &mut out)?;
        }
        Ok(out)
    }

    async fn set_timer(&self, timer: Timer) -> StoreResult<()> {
        let mut args = Vec::with_capacity(4);
        self.timer_args(&TimerOp::Set(timer), timer.enrollment_id, &mut args);
        self.timer_script(timer.enrollment_id, &args).await
    }

    async fn cancel_timer(&self, id: EnrollmentId, kind: TimerKind) -> StoreResult<()> {
        let mut args = Vec::with_capacity(2);
        self.timer_args(&TimerOp::Cancel(kind), id, &mut args);
        self.timer_script(id, &args).await
    }
}

#[async_trait]
impl EventLog for RedisStore {
    fn partitions(&self) -> u16 {
        self.parts.len() as u16
    }

    async fn ensure_group(&self, group: &str) -> StoreResult<()> {
        let cmds = self
            .parts
            .iter()
            .map(|p| {
                let mut cmd = redis::cmd("XGROUP");
                cmd.arg("CREATE")
                    .arg(&p.log)
                    .arg(group)
                    .arg("0")
                    .arg("MKSTREAM");
                cmd
            })
            .collect();
        for result in self.run_each(cmds).await {
            match result {
                Ok(_) => {}
                Err(e) if e.code() == Some("BUSYGROUP") => {}
                Err(e) => return Err(unavailable(e)),
            }
        }
        Ok(())
    }

    async fn read_group(
        &self,
        group: &str,
        consumer: &str,
        max: usize,
        block: Duration,
    ) -> StoreResult<Vec<Delivery>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let left = self.take_leftovers(group, consumer, max);
        if !left.is_empty() {
            return Ok(left);
        }
        let n = self.parts.len();
        let order = self.rotation(&self.read_turn);
        // Exactly `max` at most: so an empty answer to one consumer means nothing unread
        // is held back for another.
        let mut raw = self.read_exact(group, consumer, max, &order).await?;
        if raw.is_empty() && !block.is_zero() {
            match self.conn {
                Conn::Single(_) => {
                    // Wait for anything new. COUNT keeps the answer within `max`, except
                    // when more partitions than `max` get entries at once; the extra wait
                    // for this consumer's next read (they are pending under its name).
                    let per = (max / n).max(1);
                    let value = self
                        .query_blocking(
                            &self.read_cmd(group, consumer, per, Some(block), &order),
                            block,
                        )
                        .await?;
                    raw = self.parse_read(&value)?;
                }
                Conn::Cluster(_) => {
                    let deadline = tokio::time::Instant::now() + block;
                    loop {
                        let now = tokio::time::Instant::now();
                        if now >= deadline {
                            break;
                        }
                        tokio::time::sleep(CLUSTER_POLL.min(deadline - now)).await;
                        raw = self.read_exact(group, consumer, max, &order).await?;
                        if !raw.is_empty() {
                            break;
                        }
                    }
                }
            }
        }
        let mut found = self.deliveries(group, raw).await?;
        if found.len() > max {
            let extra = found.split_off(max);
            self.keep_leftovers(group, consumer, extra);
        }
        Ok(found)
    }

    async fn ack(&self, group: &str, entries: &[(u16, String)]) -> StoreResult<()> {
        let mut by_partition: HashMap<usize, Vec<&str>> = HashMap::new();
        for (partition, entry_id) in entries {
            let p = self.check_partition(*partition)?;
            check_entry_id(entry_id)?;
            by_partition.entry(p).or_default().push(entry_id);
        }
        if by_partition.is_empty() {
            return Ok(());
        }
        let cmds = by_partition
            .into_iter()
            .map(|(p, ids)| {
                let mut cmd = redis::cmd("XACK");
                cmd.arg(&self.parts[p].log).arg(group).arg(ids);
                cmd
            })
            .collect();
        for result in self.run_each(cmds).await {
            result.map_err(unavailable)?;
        }
        Ok(())
    }

    async fn claim_stale(
        &self,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        max: usize,
    ) -> StoreResult<Vec<Delivery>> {
        let mut raw = Vec::new();
        if max == 0 {
            return Ok(Vec::new());
        }
        let order = self.rotation(&self.read_turn);
        for batch in self.script_batches(&order) {
            let room = max - raw.len();
            if room == 0 {
                break;
            }
            let mut invocation = self.scripts.claim_stale.prepare_invoke();
            for &p in batch {
                invocation.key(&self.parts[p].log);
            }
            invocation
                .arg(group)
                .arg(consumer)
                .arg(millis(min_idle))
                .arg(room);
            let value: Value = invocation
                .invoke_async(&mut self.con())
                .await
                .map_err(|e| self.read_error(e))?;
            raw.extend(self.parse_claimed(&value, batch)?);
        }
        self.deliveries(group, raw).await
    }

    async fn dead_letter(&self, group: &str, delivery: &Delivery, reason: &str) -> StoreResult<()> {
        let p = self.check_partition(delivery.partition)?;
        check_entry_id(&delivery.entry_id)?;
        let event = codec::encode_event(&delivery.envelope)?;
        // Kept first, acknowledged second: a crash between the two re-delivers the entry
        // (and it is dead-lettered again), never loses it.
        self.query::<Value>(
            redis::cmd("XADD")
                .arg(self.dead_key(group))
                .arg("MAXLEN")
                .arg("~")
                .arg(DEAD_LETTERS_KEPT)
                .arg("*")
                .arg("e")
                .arg(event)
                .arg("r")
                .arg(reason)
                .arg("p")
                .arg(delivery.partition)
                .arg("i")
                .arg(&delivery.entry_id),
        )
        .await?;
        self.query::<Value>(
            redis::cmd("XACK")
                .arg(&self.parts[p].log)
                .arg(group)
                .arg(&delivery.entry_id),
        )
        .await?;
        Ok(())
    }

    async fn dead_letters(&self, group: &str) -> StoreResult<Vec<EventEnvelope>> {
        let key = self.dead_key(group);
        let value: Value = self
            .query(redis::cmd("XRANGE").arg(&key).arg("-").arg("+"))
            .await?;
        reply::stream_entries("dead letters", &value, b"e")?
            .into_iter()
            .filter_map(|(id, event)| event.map(|e| (id, e)))
            .map(|(id, event)| {
                let what = format!("{key} {id}");
                let text = std::str::from_utf8(event).map_err(|e| StoreError::Corrupt {
                    key: what.clone(),
                    reason: format!("not UTF-8: {e}"),
                })?;
                codec::decode_event(&what, text)
            })
            .collect()
    }

    async fn lag(&self, group: &str) -> StoreResult<u64> {
        let mut total = 0u64;
        let mut found = false;
        for p in 0..self.parts.len() {
            if let Some(lag) = self.lag_of_partition(p, group).await? {
                total += lag;
                found = true;
            }
        }
        if found {
            Ok(total)
        } else {
            Err(rejected(format!(
                "no consumer group {group:?}; ensure_group creates it"
            )))
        }
    }

    async fn compact(&self) -> StoreResult<u64> {
        let mut removed = 0;
        for part in &self.parts {
            let n: u64 = self
                .scripts
                .compact
                .key(&part.log)
                .invoke_async(&mut self.con())
                .await
                .map_err(unavailable)?;
            removed += n;
        }
        Ok(removed)
    }

    async fn log_end(&self) -> StoreResult<Vec<String>> {
        let cmds = self
            .parts
            .iter()
            .map(|p| {
                let mut cmd = redis::cmd("XREVRANGE");
                cmd.arg(&p.log).arg("+").arg("-").arg("COUNT").arg(1);
                cmd
            })
            .collect();
        let mut out = Vec::with_capacity(self.parts.len());
        for result in self.run_each(cmds).await {
            let value = result.map_err(unavailable)?;
            let last = reply::stream_entries("XREVRANGE", &value, b"e")?
                .first()
                .map_or_else(|| "0-0".to_owned(), |(id, _)| (*id).to_owned());
            out.push(last);
        }
        Ok(out)
    }

    async fn read_after(
        &self,
        positions: &mut [String],
        max: usize,
        block: Duration,
    ) -> StoreResult<Vec<Arc<EventEnvelope>>> {
        if positions.len() != self.parts.len() {
            return Err(rejected(format!(
                "{} positions for a log of {} partitions",
                positions.len(),
                self.parts.len()
            )));
        }
        for position in positions.iter() {
            check_entry_id(position)?;
        }
        if max == 0 {
            return Ok(Vec::new());
        }
        let xread = |partitions: &[usize], block: Option<Duration>| {
            let mut cmd = redis::cmd("XREAD");
            cmd.arg("COUNT").arg(max);
            if let Some(block) = block {
                cmd.arg("BLOCK")
                    .arg(millis(block).clamp(1, u64::from(u32::MAX)));
            }
            cmd.arg("STREAMS");
            for &p in partitions {
                cmd.arg(&self.parts[p].log);
            }
            for &p in partitions {
                cmd.arg(&positions[p]);
            }
            cmd
        };
        let all: Vec<usize> = (0..self.parts.len()).collect();
        let values: Vec<Value> = match self.conn {
            Conn::Single(_) if !block.is_zero() => {
                vec![
                    self.query_blocking(&xread(&all, Some(block)), block)
                        .await?,
                ]
            }
            Conn::Single(_) => vec![self.query(&xread(&all, None)).await?],
            Conn::Cluster(_) => {
                let deadline = tokio::time::Instant::now() + block;
                loop {
                    let cmds = all.iter().map(|&p| xread(&[p], None)).collect();
                    let mut values = Vec::new();
                    for result in self.run_each(cmds).await {
                        let value = result.map_err(unavailable)?;
                        if !matches!(value, Value::Nil) {
                            values.push(value);
                        }
                    }
                    let now = tokio::time::Instant::now();
                    if !values.is_empty() || now >= deadline {
                        break values;
                    }
                    tokio::time::sleep(CLUSTER_POLL.min(deadline - now)).await;
                }
            }
        };
        let mut out = Vec::new();
        for value in &values {
            for (key, entries) in reply::streams("XREAD", value)? {
                let Some(&partition) = self.part_of_log.get(key) else {
                    return Err(reply::unexpected("XREAD stream", value));
                };
                for (id, payload) in reply::stream_entries("XREAD", entries, b"e")? {
                    if out.len() >= max {
                        break;
                    }
                    positions[usize::from(partition)] = id.to_owned();
                    let Some(bytes) = payload else { continue };
                    let what = format!("{key} {id}");
                    let decoded = std::str::from_utf8(bytes)
                        .map_err(|e| StoreError::Corrupt {
                            key: what.clone(),
                            reason: format!("not UTF-8: {e}"),
                        })
                        .and_then(|text| codec::decode_event(&what, text));
                    match decoded {
                        Ok(envelope) => out.push(Arc::new(envelope)),
                        // A reader without a group cannot park it: skip it, loudly.
                        Err(e) => {
                            tracing::error!(%key, %id, error = %e, "undecodable event skipped")
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl CustomerStore for RedisStore {
    async fn create_customer(&self, new: NewCustomer, now: DateTime<Utc>) -> StoreResult<Customer> {
        let n: u64 = self
            .query(redis::cmd("INCR").arg(self.key("customer:seq")))
            .await?;
        let customer = numbered_customer(n, new, now)?;
        let key = self.key(&format!("customer:{}", customer.customer_no));
        let json = encode_json(&key, &customer)?;
        self.query::<Value>(redis::cmd("SET").arg(&key).arg(json))
            .await?;
        self.remember_customer(&customer);
        Ok(customer)
    }

    /// The link (`customer-of:<request>` → number, with a TTL) is written with SET NX
    /// before the customer, so a first try that dies anywhere leaves either nothing the
    /// retry could see (an unused number at most) or the link, which the retry follows.
    /// Separate keys, no script: customer keys have no common hash slot.
    async fn create_customer_for(
        &self,
        request: &str,
        new: NewCustomer,
        now: DateTime<Utc>,
        keep: Duration,
    ) -> StoreResult<Customer> {
        let link = self.key(&format!("customer-of:{request}"));
        // Twice at most: a link lost to a concurrent try is read back on the second turn.
        for _ in 0..2 {
            let linked: Option<u64> = self.query(redis::cmd("GET").arg(&link)).await?;
            let n = match linked {
                Some(n) => n,
                None => {
                    let n: u64 = self
                        .query(redis::cmd("INCR").arg(self.key("customer:seq")))
                        .await?;
                    let won: Option<String> = self
                        .query(
                            redis::cmd("SET")
                                .arg(&link)
                                .arg(n)
                                .arg("NX")
                                .arg("PX")
                                .arg(millis(keep).max(1)),
                        )
                        .await?;
                    if won.is_none() {
                        continue;
                    }
                    n
                }
            };
            let customer = numbered_customer(n, new.clone(), now)?;
            if linked.is_some()
                && let Some(found) = self.customer(customer.customer_no).await?
            {
                return Ok(found);
            }
            let key = self.key(&format!("customer:{}", customer.customer_no));
            let json = encode_json(&key, &customer)?;
            let written: Option<String> = self
                .query(redis::cmd("SET").arg(&key).arg(json).arg("NX"))
                .await?;
            if written.is_none() {
                // Another try under this request wrote it first.
                if let Some(found) = self.customer(customer.customer_no).await? {
                    return Ok(found);
                }
            }
            self.remember_customer(&customer);
            return Ok(customer);
        }
        Err(StoreError::Unavailable(format!(
            "the registration link {link} keeps changing"
        )))
    }

    async fn customer(&self, no: CustomerNo) -> StoreResult<Option<Customer>> {
        if let Some(known) = self.customers.get(&no) {
            return Ok(Some(known.clone()));
        }
        let key = self.key(&format!("customer:{no}"));
        let json: Option<Vec<u8>> = self.query(redis::cmd("GET").arg(&key)).await?;
        let found: Option<Customer> = json.map(|j| decode_json(&key, &j)).transpose()?;
        if let Some(customer) = &found {
            self.remember_customer(customer);
        }
        Ok(found)
    }

    async fn reserve_limit(
        &self,
        no: CustomerNo,
        product_code: &str,
        enrollment: EnrollmentId,
        amount: Won,
        limit: Won,
    ) -> StoreResult<Reservation> {
        let key = self.key(&format!("{{c{no}}}:limit:{product_code}"));
        let script = &self.scripts.reserve;
        let mut cmd = Self::evalsha(script, 1, 3, 128);
        cmd.arg(&key)
            .arg(enrollment.to_string())
            .arg(amount.get())
            .arg(limit.get());
        let value: Value = self.eval(script, &cmd).await.map_err(unavailable)?;
        match reply::items("reserve", &value)? {
            [ok, total] => {
                let total = Won::new(reply::uint("reserve total", total)?);
                if reply::int("reserve", ok)? == 1 {
                    Ok(Reservation::Reserved { total })
                } else {
                    Ok(Reservation::Exceeded { held: total, limit })
                }
            }
            _ => Err(reply::unexpected("reserve", &value)),
        }
    }

    async fn release_limit(
        &self,
        no: CustomerNo,
        product_code: &str,
        enrollment: EnrollmentId,
    ) -> StoreResult<()> {
        let key = self.key(&format!("{{c{no}}}:limit:{product_code}"));
        self.query::<Value>(redis::cmd("HDEL").arg(key).arg(enrollment.to_string()))
            .await?;
        Ok(())
    }
}

#[async_trait]
impl ProductStore for RedisStore {
    async fn put_product(&self, spec: &ProductSpec) -> StoreResult<()> {
        let version = stored_version(spec)?;
        let key = self.key("products");
        let field = format!("{}:{version}", spec.code);
        let json = encode_json(&field, spec)?;
        let stored: bool = self
            .query(redis::cmd("HSETNX").arg(&key).arg(&field).arg(json))
            .await?;
        if stored {
            return Ok(());
        }
        let latest = self
            .products()
            .await?
            .iter()
            .filter(|p| p.code == spec.code)
            .filter_map(|p| p.version)
            .max()
            .unwrap_or(version);
        Err(StoreError::Conflict {
            key: format!("product:{}:{version}", spec.code),
            expected: u64::from(version),
            actual: u64::from(latest),
        })
    }

    async fn products(&self) -> StoreResult<Vec<ProductSpec>> {
        let key = self.key("products");
        let all: Vec<Vec<u8>> = self.query(redis::cmd("HVALS").arg(&key)).await?;
        let mut products = all
            .iter()
            .map(|json| decode_json::<ProductSpec>(&key, json))
            .collect::<StoreResult<Vec<_>>>()?;
        products.sort_by(|a, b| (&a.code, a.version).cmp(&(&b.code, b.version)));
        Ok(products)
    }
}

#[async_trait]
impl ReadModelStore for RedisStore {
    async fn upsert_view(&self, view: &MyPageView) -> StoreResult<bool> {
        let written = self.upsert_views(std::slice::from_ref(view)).await?;
        Ok(written.first().copied().unwrap_or(false))
    }

    /// In scripts of at most [`VIEWS_PER_SCRIPT`] views, one after another, so no single
    /// call holds Redis (and every append behind it) for long. A chunk that fails leaves
    /// the earlier ones written; the batch is redelivered and their version check skips
    /// them.
    async fn upsert_views(&self, views: &[MyPageView]) -> StoreResult<Vec<bool>> {
        let mut written = Vec::with_capacity(views.len());
        for chunk in views.chunks(VIEWS_PER_SCRIPT) {
            written.extend(self.upsert_views_in_one_script(chunk).await?);
        }
        Ok(written)
    }

    async fn view(&self, id: EnrollmentId) -> StoreResult<Option<MyPageView>> {
        let key = self.rm(&format!("view:{id}"));
        let json: Option<Vec<u8>> = self.query(redis::cmd("HGET").arg(&key).arg("j")).await?;
        json.map(|j| decode_json(&key, &j)).transpose()
    }

    async fn views(&self, filter: ViewFilter, limit: usize) -> StoreResult<Vec<MyPageView>> {
        let limit = limit.min(MAX_LIST);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let index = match filter.customer_no {
            Some(no) => self.rm(&format!("views:c:{no}")),
            None => self.rm("views"),
        };
        let found: Vec<Vec<u8>> = self
            .scripts
            .views
            .key(&index)
            .arg(limit)
            .arg(filter.status.map_or("", Status::as_str))
            .arg(self.rm("view:"))
            .invoke_async(&mut self.con())
            .await
            .map_err(unavailable)?;
        found.iter().map(|j| decode_json(&index, j)).collect()
    }

    async fn count_by_status(&self) -> StoreResult<Vec<(Status, u64)>> {
        let key = self.rm("status");
        let counts: HashMap<String, i64> = self.query(redis::cmd("HGETALL").arg(&key)).await?;
        for name in counts.keys() {
            status_of(&key, name)?;
        }
        Ok(Status::ALL
            .iter()
            .map(|&s| {
                let n = counts.get(s.as_str()).copied().unwrap_or(0);
                (s, u64::try_from(n).unwrap_or(0))
            })
            .collect())
    }

    async fn record_alarm(&self, alarm: &Alarm) -> StoreResult<bool> {
        let new = self.record_alarms(&[Arc::new(alarm.clone())]).await?;
        Ok(new.first().copied().unwrap_or(false))
    }

    async fn record_alarms(&self, alarms: &[Arc<Alarm>]) -> StoreResult<Vec<bool>> {
        if alarms.is_empty() {
            return Ok(Vec::new());
        }
        let index = self.rm("alarm-index");
        // See `encode_alarm`: the time first, for trimming by age.
        let stored: Vec<String> = alarms.iter().map(|alarm| encode_alarm(alarm)).collect();
        let script = &self.scripts.record_alarms;
        let bytes = stored.iter().map(|j| j.len() + 112).sum::<usize>();
        let mut cmd = Self::evalsha(script, 1 + alarms.len(), 2 + 4 * alarms.len(), bytes);
        cmd.arg(&index);
        for alarm in alarms {
            cmd.arg(self.customer_alarms_key(alarm.customer_no));
        }
        cmd.arg(self.config.alarm_index_len)
            .arg(self.config.alarms_per_customer);
        for (alarm, value) in alarms.iter().zip(&stored) {
            let id = alarm.event_id.to_string();
            cmd.arg(&id)
                .arg(value)
                .arg(micros(alarm.sent_at))
                .arg(format!("{}:{id}", alarm.customer_no));
        }
        let new: Vec<i64> = self.eval(script, &cmd).await.map_err(unavailable)?;
        if new.len() != alarms.len() {
            return Err(StoreError::Corrupt {
                key: index,
                reason: format!("{} answers for {} alarms", new.len(), alarms.len()),
            });
        }
        Ok(new.into_iter().map(|n| n == 1).collect())
    }

    async fn alarms(&self, customer: Option<CustomerNo>, limit: usize) -> StoreResult<Vec<Alarm>> {
        let limit = limit.min(MAX_LIST);
        if limit == 0 {
            return Ok(Vec::new());
        }
        match customer {
            Some(no) => {
                // A customer keeps a bounded number of alarms: all of them, sorted here.
                let key = self.customer_alarms_key(no);
                let all: Vec<(Vec<u8>, Vec<u8>)> =
                    self.query(redis::cmd("HGETALL").arg(&key)).await?;
                let mut found = all
                    .iter()
                    .map(|(id, stored)| decode_alarm(&key, no, id, stored))
                    .collect::<StoreResult<Vec<Alarm>>>()?;
                // Newest first; the same time in event id order, newest first too.
                found.sort_unstable_by_key(|a| std::cmp::Reverse((a.sent_at, a.event_id)));
                found.truncate(limit);
                Ok(found)
            }
            None => {
                let index = self.rm("alarm-index");
                let script = &self.scripts.alarms;
                let mut cmd = Self::evalsha(script, 1, 2, 64);
                cmd.arg(&index).arg(limit).arg(self.rm("alarms:of:"));
                let found: Vec<Vec<u8>> = self.eval(script, &cmd).await.map_err(unavailable)?;
                found
                    .chunks(2)
                    .map(|pair| {
                        let [member, stored] = pair else {
                            return Err(corrupt_alarm(&index));
                        };
                        let (customer, id) = std::str::from_utf8(member)
                            .ok()
                            .and_then(|m| m.split_once(':'))
                            .ok_or_else(|| corrupt_alarm(&index))?;
                        let customer =
                            CustomerNo::parse(customer).map_err(|_| corrupt_alarm(&index))?;
                        decode_alarm(&index, customer, id.as_bytes(), stored)
                    })
                    .collect()
            }
        }
    }
}

/// An alarm as its customer's hash keeps it (the field is its event id):
/// `<sent at, µs> <status> <enrollment id> <message>`. The event id and the customer
/// number are in the field and the key already, the time in microseconds is what the
/// alarm's `sent_at` holds; the JSON this replaced repeated all three and the field names
/// (about 450 bytes an alarm, this about 230).
fn encode_alarm(alarm: &Alarm) -> String {
    let mut id = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let id = alarm
        .enrollment_id
        .as_uuid()
        .hyphenated()
        .encode_lower(&mut id);
    let mut value = String::with_capacity(64 + alarm.message.len());
    let _ = write!(
        value,
        "{} {} {id} {}",
        micros(alarm.sent_at),
        alarm.status.as_str(),
        alarm.message
    );
    value
}

fn corrupt_alarm(key: &str) -> StoreError {
    StoreError::Corrupt {
        key: key.to_owned(),
        reason: "an alarm is not stored as `<sent at, µs> <status> <enrollment id> <message>`"
            .to_owned(),
    }
}

/// Reads what [`encode_alarm`] wrote, or `<sent at, µs> <JSON>` as alarms were kept
/// before it.
fn decode_alarm(
    key: &str,
    customer_no: CustomerNo,
    event_id: &[u8],
    stored: &[u8],
) -> StoreResult<Alarm> {
    let text = std::str::from_utf8(stored).map_err(|_| corrupt_alarm(key))?;
    let (at, rest) = text.split_once(' ').ok_or_else(|| corrupt_alarm(key))?;
    if rest.starts_with('{') {
        return decode_json(key, rest.as_bytes());
    }
    let sent_at = at
        .parse::<i64>()
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_micros)
        .ok_or_else(|| corrupt_alarm(key))?;
    let mut parts = rest.splitn(3, ' ');
    let (Some(status), Some(enrollment), Some(message)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(corrupt_alarm(key));
    };
    let event_id = std::str::from_utf8(event_id)
        .ok()
        .and_then(|id| uuid::Uuid::parse_str(id).ok())
        .ok_or_else(|| corrupt_alarm(key))?;
    Ok(Alarm {
        event_id,
        enrollment_id: EnrollmentId::parse(enrollment).map_err(|_| corrupt_alarm(key))?,
        customer_no,
        status: Status::parse(status).ok_or_else(|| corrupt_alarm(key))?,
        message: message.to_owned(),
        sent_at,
    })
}

impl RedisStore {
    /// One UPSERT_VIEWS call for `views` (none: no call).
    async fn upsert_views_in_one_script(&self, views: &[MyPageView]) -> StoreResult<Vec<bool>> {
        if views.is_empty() {
            return Ok(Vec::new());
        }
        let script = &self.scripts.upsert_views;
        let first = self.rm(&format!("view:{}", views[0].enrollment_id));
        let ids: Vec<String> = views.iter().map(|v| v.enrollment_id.to_string()).collect();
        let keys: Vec<String> = ids
            .iter()
            .map(|id| self.rm(&format!("view:{id}")))
            .collect();
        let jsons = views
            .iter()
            .zip(&keys)
            .map(|(view, key)| encode_json(key, view))
            .collect::<StoreResult<Vec<String>>>()?;
        let bytes = jsons.iter().map(|j| j.len() + 160).sum::<usize>();
        let mut cmd = Self::evalsha(script, 3 + views.len(), 2 + 6 * views.len(), bytes);
        cmd.arg(&first).arg(self.rm("views")).arg(self.rm("status"));
        for key in &keys {
            cmd.arg(key);
        }
        cmd.arg(self.rm("views:c:")).arg(self.config.view_index_len);
        for ((view, json), id) in views.iter().zip(&jsons).zip(&ids) {
            cmd.arg(view.version)
                .arg(view.status.as_str())
                .arg(view.customer_no.to_string())
                .arg(json)
                .arg(micros(view.updated_at))
                .arg(id);
        }
        let written: Vec<i64> = self.eval(script, &cmd).await.map_err(unavailable)?;
        if written.len() != views.len() {
            return Err(StoreError::Corrupt {
                key: first,
                reason: format!("{} answers for {} views", written.len(), views.len()),
            });
        }
        Ok(written.into_iter().map(|w| w == 1).collect())
    }
}

#[async_trait]
impl IdempotencyStore for RedisStore {
    async fn idempotent_get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let record = self.key(&format!("idem:{key}"));
        let value: Option<Vec<u8>> = self.query(redis::cmd("GET").arg(&record)).await?;
        match value.as_deref() {
            None | Some(b"P") => Ok(None),
            Some([b'D', answer @ ..]) => Ok(Some(answer.to_vec())),
            Some(_) => Err(StoreError::Corrupt {
                key: record,
                reason: "not an idempotency record".to_owned(),
            }),
        }
    }

    async fn idempotent_put(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<bool> {
        if ttl.is_zero() {
            return Err(rejected("an idempotency record needs a positive TTL"));
        }
        let kept: i64 = self
            .scripts
            .idem_put
            .key(self.key(&format!("idem:{key}")))
            .arg(value)
            .arg(millis(ttl).max(1))
            .invoke_async(&mut self.con())
            .await
            .map_err(unavailable)?;
        Ok(kept == 1)
    }

    async fn idempotent_claim(&self, key: &str, lease: Duration) -> StoreResult<IdempotencyClaim> {
        if lease.is_zero() {
            return Err(rejected("an idempotency claim needs a positive lease"));
        }
        let value: Value = self
            .scripts
            .idem_claim
            .key(self.key(&format!("idem:{key}")))
            .arg(millis(lease).max(1))
            .invoke_async(&mut self.con())
            .await
            .map_err(unavailable)?;
        match reply::items("idempotency claim", &value)? {
            [code] if reply::int("idempotency claim", code)? == 1 => Ok(IdempotencyClaim::Claimed),
            [code] if reply::int("idempotency claim", code)? == 2 => {
                Ok(IdempotencyClaim::InProgress)
            }
            [_, answer] => Ok(IdempotencyClaim::Done(
                reply::bytes("idempotency answer", answer)?.to_vec(),
            )),
            _ => Err(reply::unexpected("idempotency claim", &value)),
        }
    }

    async fn idempotent_release(&self, key: &str) -> StoreResult<()> {
        self.scripts
            .idem_release
            .key(self.key(&format!("idem:{key}")))
            .invoke_async::<Value>(&mut self.con())
            .await
            .map_err(unavailable)?;
        Ok(())
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
