//! Redis fixtures for tests: a real `redis-server` that the test starts, owns and kills
//! ([`RedisServer`]), a three-master cluster ([`RedisCluster`]), and [`TestRedis`], the
//! entry point for tests that only need *a* Redis: it starts one of its own, or uses the
//! server named by `REDIS_URL` when that is set (a CI service, a developer's instance).
//!
//! Every server runs on 127.0.0.1 on a port picked free at start, in its own temporary
//! directory (`dir()`, removed on drop) that holds its AOF and `redis.log`. Nothing here
//! ever talks to a Redis it did not start, except the `REDIS_URL` one, and there it only
//! touches keys under the handle's own [`TestRedis::prefix`]: no FLUSHALL, no FLUSHDB.
//!
//! Dropping a fixture SIGKILLs its processes and reaps them, also when a test panics, so no
//! `redis-server` outlives the test that started it (unless the test process itself is
//! killed with SIGKILL; then there is no code left to run).
//!
//! The fixture is synchronous (std::process and the redis crate's blocking client), so it
//! works from plain and `#[tokio::test]` tests alike; starting a server blocks the calling
//! thread for the few milliseconds it takes.

#![allow(dead_code)]

use std::time::Duration;

/// The environment variable naming an external Redis for [`TestRedis`].
pub const REDIS_URL_ENV: &str = "REDIS_URL";

/// How long a server may take to answer PING after it was spawned (or restarted).
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a cluster may take to report `cluster_state:ok` on every node.
pub const CLUSTER_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a graceful stop may take before the fixture falls back to SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);

const POLL: Duration = Duration::from_millis(10);

/// How many fresh ports `start` tries when a picked port turns out to be taken by the time
/// the server binds it (another process grabbed it between our probe and the spawn).
const START_ATTEMPTS: usize = 5;

const LOG_FILE: &str = "redis.log";
const LOG_TAIL_LINES: usize = 40;
const CLUSTER_SLOTS: u32 = 16384;
/// Redis Cluster's bus listens on the client port + 10000.
const CLUSTER_BUS_OFFSET: u16 = 10000;

/// How a [`RedisServer`] persists. The default is a pure in-memory server (no AOF, no RDB):
/// fastest, and what most tests want.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RedisOptions {
    /// `--appendonly yes`: every write goes to the append-only file, reloaded on restart.
    pub aof: bool,
    /// `--appendfsync always` (else `everysec`): a write acknowledged before a SIGKILL
    /// survives it. Only meaningful with `aof`.
    pub fsync_always: bool,
}

impl RedisOptions {
    /// AOF with fsync on every write: what a kill-and-restart durability test needs.
    pub const DURABLE: Self = Self {
        aof: true,
        fsync_always: true,
    };
}

mod cluster;
mod launch;
mod server;
mod test_redis;

pub use cluster::*;
// Not every binary that mounts the fixture asks for a free port or whether Redis is installed.
#[allow(unused_imports)]
pub use launch::{free_port, redis_installed};
pub use server::*;
pub use test_redis::*;
