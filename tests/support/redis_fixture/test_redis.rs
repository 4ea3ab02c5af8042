//! `REDIS_URL` or an own server: [`TestRedis`], for tests that only need *a* Redis, and
//! an ezenroll store on one.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::server::*;
use super::*;

/// A Redis for one test: its own [`RedisServer`], or the external server named by
/// `REDIS_URL` when that variable is set (and not empty).
///
/// Every handle has a unique key [`prefix`](Self::prefix); a test that keeps all its keys
/// under it stays isolated from other tests sharing an external server. On drop, keys under
/// the prefix are deleted from an external server (best effort, standalone servers only);
/// an own server is simply killed.
///
/// Tests that control the process (kill, restart) ask for [`owned`](Self::owned) or
/// [`owned_or_skip`](Self::owned_or_skip); on an external server there is none.
pub struct TestRedis {
    pub(super) backend: Backend,
    pub(super) prefix: String,
}

pub(super) enum Backend {
    Owned(RedisServer),
    External { url: String },
}

impl TestRedis {
    /// A pure in-memory own server, or `REDIS_URL`.
    pub fn new() -> Self {
        Self::new_with(RedisOptions::default())
    }

    /// An own server persisting as `options` say, or `REDIS_URL` (whose persistence is
    /// whatever it is: `options` are ignored there).
    pub fn new_with(options: RedisOptions) -> Self {
        let backend = match external_url() {
            Some(url) => Backend::External { url },
            None => Backend::Owned(RedisServer::start_with(options)),
        };
        TestRedis {
            backend,
            prefix: unique_prefix(),
        }
    }

    /// The URL to connect to.
    pub fn url(&self) -> String {
        match &self.backend {
            Backend::Owned(server) => server.url(),
            Backend::External { url } => url.clone(),
        }
    }

    /// A client for [`url`](Self::url).
    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url())
            .unwrap_or_else(|e| panic!("redis fixture: cannot parse {:?}: {e}", self.url()))
    }

    /// This handle's key prefix, `t<pid>-<counter>-<random>:`; unique per handle, across
    /// processes and machines sharing one server. Contains no glob characters.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `name` under this handle's prefix.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Whether this handle uses the `REDIS_URL` server.
    pub fn is_external(&self) -> bool {
        matches!(self.backend, Backend::External { .. })
    }

    /// The own server, for process control; `None` on an external server.
    pub fn owned(&mut self) -> Option<&mut RedisServer> {
        match &mut self.backend {
            Backend::Owned(server) => Some(server),
            Backend::External { .. } => None,
        }
    }

    /// The own server; on an external one, prints that `test` is skipped and why, and
    /// returns `None`:
    ///
    /// ```ignore
    /// let Some(server) = redis.owned_or_skip("restart_reloads_aof") else { return };
    /// ```
    pub fn owned_or_skip(&mut self, test: &str) -> Option<&mut RedisServer> {
        if self.is_external() {
            print_skip(test, "it controls the redis-server process");
        }
        self.owned()
    }
}

impl Default for TestRedis {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        if let Backend::External { url } = &self.backend {
            // Best effort: a test that failed may have left the server unreachable.
            if let Err(e) = delete_prefixed(url, &self.prefix) {
                eprintln!(
                    "redis fixture: could not delete keys {}* on {url}: {e}",
                    self.prefix
                );
            }
        }
    }
}

impl fmt::Debug for TestRedis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TestRedis");
        match &self.backend {
            Backend::Owned(server) => d.field("owned", server),
            Backend::External { url } => d.field("external", url),
        };
        d.field("prefix", &self.prefix).finish()
    }
}

/// `REDIS_URL`, if set and not empty.
pub fn external_url() -> Option<String> {
    std::env::var(REDIS_URL_ENV)
        .ok()
        .map(|url| url.trim().to_owned())
        .filter(|url| !url.is_empty())
}

/// For tests that start their own processes ([`RedisServer`], [`RedisCluster`]) however
/// they are run: `true` (and a printed reason) when `REDIS_URL` is set, the signal that
/// this environment provides Redis from outside and may not have `redis-server` at all.
pub fn skip_if_external(test: &str) -> bool {
    let external = external_url().is_some();
    if external {
        print_skip(test, "it starts its own redis-server processes");
    }
    external
}

pub(super) fn print_skip(test: &str, why: &str) {
    // stdout, so `cargo test -- --nocapture` shows it and a normal run keeps quiet.
    println!("skipping {test}: {REDIS_URL_ENV} is set (external Redis) and {why}");
}

pub(super) fn unique_prefix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random = getrandom::u64().unwrap_or_else(|_| {
        // No OS randomness: the clock still separates processes on one machine.
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    format!("t{}-{n}-{:08x}:", std::process::id(), random as u32)
}

pub(super) fn delete_prefixed(url: &str, prefix: &str) -> redis::RedisResult<()> {
    let client = redis::Client::open(url)?;
    let mut con = client.get_connection_with_timeout(Duration::from_secs(1))?;
    con.set_read_timeout(Some(Duration::from_secs(5)))?;
    let pattern = format!("{prefix}*");
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query(&mut con)?;
        if !keys.is_empty() {
            redis::cmd("UNLINK").arg(&keys).query::<()>(&mut con)?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// An ezenroll Redis store on a fresh [`TestRedis`] (its own server, or `REDIS_URL` under
/// a key prefix of its own) with `partitions` log partitions, and the URL of that Redis
/// for tests that reach into it. The server lives as long as the store.
pub async fn ezenroll_store(
    partitions: u16,
) -> (std::sync::Arc<ezenroll::store::redis::RedisStore>, String) {
    use ezenroll::store::redis::{RedisConfig, RedisStore};
    let redis = TestRedis::new();
    let url = redis.url();
    let config = RedisConfig::new(url.clone())
        .with_prefix(redis.prefix())
        .with_partitions(partitions);
    let store = RedisStore::connect(config)
        .await
        .expect("connect to the test's redis-server")
        .with_guard(redis);
    (std::sync::Arc::new(store), url)
}
