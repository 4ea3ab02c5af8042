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
//! | `<prefix>{p<N>}:lease` | hash with TTL | the partition's owner (`o`) and its fencing number (`f`) |
//! | `<prefix>{p<N>}:fence` | string | the last fencing number given out for the partition |
//! | `<prefix>{cluster}:members`, `{cluster}:addresses` | zset, hash | live copies (id → heartbeat expiry, ms), their addresses |
//! | `<prefix>{cluster}:secret` | string | the secret copies sign forwarded requests with |
//! | `<prefix>dead:<group>` | stream | dead letters of a consumer group |
//! | `<prefix>customer:seq`, `<prefix>customer:<no>` | string | customer numbers, records |
//! | `<prefix>customer-of:<request>` | string with TTL | the number a keyed registration took |
//! | `<prefix>{c<no>}:limit:<product>` | hash | cumulative-limit holdings, enrollment → won |
//! | `<prefix>products` | hash | `<code>:<version>` → product JSON |
//! | `<prefix>{rm}:view:<id>`, `{rm}:views`, `{rm}:views:c:<no>`, `{rm}:status` | hashes, zsets | the MyPage read model: views, the global index (capped), per-customer indexes, counts by status |
//! | `<prefix>{rm}:alarms:of:<no>` | hash | a customer's alarms, event id → `<sent at µs> <status> <enrollment id> <message>` (capped) |
//! | `<prefix>{rm}:alarm-index` | zset | every customer's alarms, `<no>:<event id>` → sent at (capped) |
//! | `<prefix>idem:<key>` | string with TTL | idempotency records |
//! | `<prefix>ledger:charge:<reference>` | hash | the payment ledger's approval of a reference: `p` payment id, `n` times money was taken (kept for good) |
//! | `<prefix>ledger:refund:<payment id>` | string | the payment ledger's refund id of a payment (kept for good) |
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
//! `store` holds [`RedisStore`] and its constructor. The rest, one concern each:
//! `config` ([`RedisConfig`]), `conn` (connections and sending commands and scripts),
//! `keys` (the key layout above and member encodings), `encoding` (times, JSON, events as
//! stored), `upgrade` (loading snapshots of older formats), `scripts` (the Lua), `reply`
//! (reading replies), `stream_reads` (consumer-group reads), and one file per store
//! trait: `enrollments`, `timers`, `event_log`, `customers`, `products`, `read_model`
//! (views; its alarms in `alarms`), `idempotency`, `ownership` (members and leases, with
//! their scripts), `payment_ledger`.

mod alarms;
mod commands;
mod config;
mod conn;
mod customers;
mod encoding;
mod enrollments;
mod event_log;
mod idempotency;
mod keys;
mod ownership;
mod payment_ledger;
mod products;
mod read_model;
mod reply;
mod scripts;
mod store;
mod store_keys;
mod stream_reads;
mod timers;
mod upgrade;

pub use crate::store::read_model::{ALARM_INDEX_LEN, ALARMS_PER_CUSTOMER, VIEW_INDEX_LEN};
pub use config::RedisConfig;
pub use store::RedisStore;

/// The Lua source of the append script (the transactional outbox), for running it on
/// its own (`scripts/load-redis.sh` feeds it to redis-benchmark). KEYS: enrollment hash,
/// history list, partition stream, timer zset, timer attempts, partition lease; ARGV:
/// expected version, new version, snapshot, stream cap, the field of a document issued by
/// this append or '', its text or '', event count n, fencing number or '', n events, then
/// timer ops (`S member due-µs attempt` or `C member`).
pub fn append_script() -> String {
    scripts::append()
}
