//! Redis fixtures for tests: a real `redis-server` that the test starts, owns and kills
//! ([`RedisServer`]), a three-master cluster ([`RedisCluster`]), and [`TestRedis`], the
//! entry point for tests that only need *a* Redis: it starts one of its own, or uses the
//! server named by `REDIS_URL` when that is set (a CI service, a developer's instance).
//!
//! Include it with `#[path = "common/redis.rs"] mod redis_fixture;`.
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

use std::collections::HashSet;
use std::fmt;
use std::fs;
use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use tempfile::TempDir;

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

// ---------------------------------------------------------------------------------------
// One server
// ---------------------------------------------------------------------------------------

/// A `redis-server` process this test started and owns.
///
/// Process control takes `&mut self`: [`stop`](Self::stop) (SHUTDOWN NOSAVE, then wait),
/// [`kill`](Self::kill) (SIGKILL, then wait), [`restart`](Self::restart) (same port, same
/// directory, so an AOF is reloaded). Drop kills and reaps the process.
pub struct RedisServer {
    // Declared (and so dropped) before `dir`; `Drop` reaps the child before the directory
    // it writes into is removed.
    child: Option<Child>,
    port: u16,
    options: RedisOptions,
    /// Arguments after the common ones (the cluster flags).
    extra_args: Vec<String>,
    dir: TempDir,
}

impl RedisServer {
    /// Starts a pure in-memory server on a free port; panics (with the tail of its log) if
    /// it cannot.
    pub fn start() -> Self {
        Self::start_with(RedisOptions::default())
    }

    /// Starts a server persisting as `options` say; panics (with the tail of its log) if it
    /// cannot.
    pub fn start_with(options: RedisOptions) -> Self {
        Self::start_inner(options, Vec::new(), PortKind::Plain)
    }

    fn start_inner(options: RedisOptions, extra_args: Vec<String>, kind: PortKind) -> Self {
        let mut attempt = 1;
        loop {
            let mut server = RedisServer {
                child: None,
                port: pick_port(kind),
                options,
                extra_args: extra_args.clone(),
                dir: tempfile::Builder::new()
                    .prefix("ezenroll-redis-")
                    .tempdir()
                    .expect("cannot create a temporary directory for redis-server"),
            };
            match server.launch() {
                Ok(()) => return server,
                Err(e) if e.is_port_taken(&server) && attempt < START_ATTEMPTS => attempt += 1,
                Err(e) => panic!("{}", server.failure("start", &e)),
            }
        }
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The TCP port; it stays the same across [`restart`](Self::restart).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's working directory: AOF, `nodes.conf` (cluster), `redis.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log file (appended to across restarts).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join(LOG_FILE)
    }

    /// The last lines of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log_path())
    }

    /// How this server persists.
    pub fn options(&self) -> RedisOptions {
        self.options
    }

    /// A client for this server (connecting happens later, when asked).
    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("the fixture's own redis URL does not parse")
    }

    /// The process id while the server runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is alive (it may have exited on its own, e.g. after a SHUTDOWN
    /// sent by the test).
    pub fn is_running(&mut self) -> bool {
        let Some(child) = self.child.as_mut() else {
            return false;
        };
        match child.try_wait() {
            Ok(None) => true,
            Ok(Some(_)) | Err(_) => {
                self.child = None;
                false
            }
        }
    }

    /// Stops the server gracefully (SHUTDOWN NOSAVE; SIGTERM if that cannot be sent) and
    /// waits for it to exit. An AOF is flushed on the way out. Falls back to SIGKILL, with a
    /// warning, if it has not exited within [`STOP_TIMEOUT`]. No-op if not running.
    pub fn stop(&mut self) {
        if !self.is_running() {
            return;
        }
        let Some(pid) = self.pid() else { return };
        if send_shutdown(self.port).is_err() {
            // Could not even connect; a signal does the same job.
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if !self.is_running() {
                return;
            }
            std::thread::sleep(POLL);
        }
        eprintln!(
            "redis fixture: redis-server (pid {pid}, port {}) ignored SHUTDOWN for {:?}; killing it",
            self.port, STOP_TIMEOUT
        );
        self.kill();
    }

    /// SIGKILLs the server and waits for it: nothing is flushed, as in a crash. No-op if not
    /// running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Fails only if it has already exited, which is what we want anyway.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port in the same directory (so an AOF is
    /// reloaded) and waits until it answers PING with PONG — not merely LOADING. If it is
    /// running, it is first stopped gracefully. Panics, with the log's tail, if it cannot.
    pub fn restart(&mut self) {
        self.stop();
        let mut attempt = 1;
        loop {
            match self.launch() {
                Ok(()) => return,
                // The port is ours by contract; someone may hold it for a moment.
                Err(e) if e.is_port_taken(self) && attempt < START_ATTEMPTS => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("{}", self.failure("restart", &e)),
            }
        }
    }

    fn command(&self) -> Command {
        let dir = self.dir.path();
        let mut cmd = Command::new(binary("redis-server"));
        cmd.arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(dir)
            .args(["--save", ""])
            .args(["--appendonly", yes_no(self.options.aof)])
            .args([
                "--appendfsync",
                if self.options.fsync_always {
                    "always"
                } else {
                    "everysec"
                },
            ])
            .args(["--daemonize", "no", "--protected-mode", "no"])
            .arg("--logfile")
            .arg(dir.join(LOG_FILE))
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    }

    /// Spawns the process and waits until it (and not some other server on the same port)
    /// answers PING.
    fn launch(&mut self) -> Result<(), LaunchError> {
        debug_assert!(self.child.is_none(), "launch with a live child");
        let child = self.command().spawn().map_err(LaunchError::Spawn)?;
        let pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(LaunchError::Exited(status));
            }
            let last = match probe(self.port) {
                Ok(answering) if answering == pid => return Ok(()),
                Ok(other) => format!("port answered by another redis-server (pid {other})"),
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                self.kill();
                return Err(LaunchError::TimedOut(last));
            }
            std::thread::sleep(POLL);
        }
    }

    fn failure(&self, what: &str, error: &LaunchError) -> String {
        format!(
            "redis fixture: redis-server on 127.0.0.1:{} (dir {}) failed to {what}: {error}\n\
             --- last lines of {} ---\n{}",
            self.port,
            self.dir.path().display(),
            self.log_path().display(),
            self.log_tail()
        )
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

impl fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisServer")
            .field("port", &self.port)
            .field("pid", &self.pid())
            .field("dir", &self.dir.path())
            .field("options", &self.options)
            .finish()
    }
}

#[derive(Debug)]
enum LaunchError {
    Spawn(io::Error),
    Exited(ExitStatus),
    TimedOut(String),
}

impl LaunchError {
    /// An exit because the port (or the cluster bus port) was already bound.
    fn is_port_taken(&self, server: &RedisServer) -> bool {
        matches!(self, LaunchError::Exited(_))
            && server.log_tail().contains("Address already in use")
    }
}

impl fmt::Display for LaunchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LaunchError::Spawn(e) => write!(f, "could not spawn `redis-server`: {e}"),
            LaunchError::Exited(status) => write!(f, "it exited during startup ({status})"),
            LaunchError::TimedOut(last) => write!(
                f,
                "no PONG within {START_TIMEOUT:?} (last answer: {last}); the process was killed"
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------
// REDIS_URL or an own server
// ---------------------------------------------------------------------------------------

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
    backend: Backend,
    prefix: String,
}

enum Backend {
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

fn print_skip(test: &str, why: &str) {
    // stdout, so `cargo test -- --nocapture` shows it and a normal run keeps quiet.
    println!("skipping {test}: {REDIS_URL_ENV} is set (external Redis) and {why}");
}

fn unique_prefix() -> String {
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

fn delete_prefixed(url: &str, prefix: &str) -> redis::RedisResult<()> {
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

// ---------------------------------------------------------------------------------------
// Cluster
// ---------------------------------------------------------------------------------------

/// A Redis Cluster of masters only (no replicas), each an own [`RedisServer`] with AOF, in
/// its own directory, created with `redis-cli --cluster create`. Ready means every node
/// reports `cluster_state:ok` with all 16384 slots assigned and knows every other node.
///
/// Killing a master loses its slots (there is no replica to fail over to): the cluster goes
/// down after the node timeout (2 s) until [`restart_node`](Self::restart_node).
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// `masters` (at least 3, as `redis-cli --cluster create` requires) with AOF and
    /// `appendfsync everysec`.
    pub fn start(masters: usize) -> Self {
        Self::start_with(
            masters,
            RedisOptions {
                aof: true,
                fsync_always: false,
            },
        )
    }

    /// Like [`start`](Self::start), persisting as `options` say (use
    /// [`RedisOptions::DURABLE`] for kill-and-restart tests).
    pub fn start_with(masters: usize, options: RedisOptions) -> Self {
        assert!(
            masters >= 3,
            "redis fixture: a Redis Cluster needs at least 3 masters, asked for {masters}"
        );
        let cluster_args: Vec<String> = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "2000",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        let nodes = (0..masters)
            .map(|_| RedisServer::start_inner(options, cluster_args.clone(), PortKind::Cluster))
            .collect();
        let cluster = RedisCluster { nodes };
        cluster.create();
        cluster.wait_ok(CLUSTER_TIMEOUT);
        cluster
    }

    fn create(&self) {
        let output = Command::new(binary("redis-cli"))
            .arg("--cluster")
            .arg("create")
            .args(self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)))
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis fixture: could not run `redis-cli --cluster create`");
        if !output.status.success() {
            panic!(
                "redis fixture: `redis-cli --cluster create` failed ({}):\n{}{}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
                self.logs()
            );
        }
    }

    /// Every node's URL, in node order.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// Every node's port, in node order.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(RedisServer::port).collect()
    }

    /// How many nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> &RedisServer {
        &self.nodes[i]
    }

    /// Node `i`, for process control; prefer [`kill_node`](Self::kill_node) and
    /// [`restart_node`](Self::restart_node), which keep the cluster consistent.
    pub fn node_mut(&mut self, i: usize) -> &mut RedisServer {
        &mut self.nodes[i]
    }

    /// A cluster client seeded with every node.
    pub fn client(&self) -> redis::cluster::ClusterClient {
        redis::cluster::ClusterClient::new(self.urls())
            .expect("redis fixture: the cluster's own node URLs are rejected")
    }

    /// SIGKILLs node `i` and waits for it.
    pub fn kill_node(&mut self, i: usize) {
        self.nodes[i].kill();
    }

    /// Restarts node `i` (same port, same directory: its AOF and `nodes.conf`; stopping it
    /// first if it runs) and waits until the whole cluster is ok again.
    pub fn restart_node(&mut self, i: usize) {
        self.nodes[i].restart();
        self.wait_ok(CLUSTER_TIMEOUT);
    }

    /// Waits until every node reports `cluster_state:ok`, all slots assigned and ok, and
    /// knows all nodes; panics with every node's CLUSTER INFO and log tail if that takes
    /// longer than `timeout`. Meaningless right after a kill: the others notice a dead node
    /// only after the node timeout.
    pub fn wait_ok(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let states: Vec<Result<String, String>> =
                self.nodes.iter().map(|n| cluster_info(n.port)).collect();
            let ok = states
                .iter()
                .all(|s| s.as_ref().is_ok_and(|info| self.info_is_ok(info)));
            if ok {
                return;
            }
            if Instant::now() >= deadline {
                let report: Vec<String> = self
                    .nodes
                    .iter()
                    .zip(&states)
                    .map(|(n, s)| match s {
                        Ok(info) => format!("node :{}:\n{}", n.port, info.trim_end()),
                        Err(e) => format!("node :{}: {e}", n.port),
                    })
                    .collect();
                panic!(
                    "redis fixture: cluster not ok within {timeout:?}\n{}\n{}",
                    report.join("\n"),
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn info_is_ok(&self, info: &str) -> bool {
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(':'))
                .map(str::to_owned)
        };
        let number = |name: &str| field(name).and_then(|v| v.parse::<u32>().ok());
        field("cluster_state").as_deref() == Some("ok")
            && number("cluster_slots_assigned") == Some(CLUSTER_SLOTS)
            && number("cluster_slots_ok") == Some(CLUSTER_SLOTS)
            && number("cluster_known_nodes") == u32::try_from(self.nodes.len()).ok()
    }

    fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| {
                format!(
                    "--- last lines of {} ---\n{}",
                    n.log_path().display(),
                    n.log_tail()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl fmt::Debug for RedisCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.nodes).finish()
    }
}

// Dropping `nodes` drops every RedisServer, which kills and reaps it.

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum PortKind {
    Plain,
    /// The port and port + 10000 (the cluster bus) both free.
    Cluster,
}

/// Ports this process has handed to a server, so concurrent tests in one binary never pick
/// the same one (bus ports included). Never released: a test binary starts few servers.
fn reserved() -> &'static Mutex<HashSet<u16>> {
    static RESERVED: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    RESERVED.get_or_init(|| Mutex::new(HashSet::new()))
}

/// Binds 127.0.0.1:0 to have the OS pick a free port, then releases it for the server.
/// Another process may take it in between; `start` notices and tries another.
fn pick_port(kind: PortKind) -> u16 {
    for _ in 0..1000 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .expect("redis fixture: cannot bind 127.0.0.1:0 to find a free port");
        let port = listener
            .local_addr()
            .expect("redis fixture: a bound socket has no local address")
            .port();
        let mut reserved = reserved()
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if reserved.contains(&port) {
            continue;
        }
        match kind {
            PortKind::Plain => {
                reserved.insert(port);
                return port;
            }
            PortKind::Cluster => {
                let Some(bus) = port.checked_add(CLUSTER_BUS_OFFSET) else {
                    continue;
                };
                if reserved.contains(&bus) || TcpListener::bind((Ipv4Addr::LOCALHOST, bus)).is_err()
                {
                    continue;
                }
                reserved.insert(port);
                reserved.insert(bus);
                return port;
            }
        }
    }
    panic!("redis fixture: found no free port on 127.0.0.1 in 1000 tries");
}

/// A free port on 127.0.0.1 for another server a test starts (an `ezenroll serve`), never
/// one handed to a redis-server of this process (whose port must stay free for a restart).
pub fn free_port() -> u16 {
    pick_port(PortKind::Plain)
}

/// `name` found on PATH (cached), or a panic that says how to get it.
fn binary(name: &'static str) -> PathBuf {
    static FOUND: OnceLock<Mutex<Vec<(&'static str, PathBuf)>>> = OnceLock::new();
    let found = FOUND.get_or_init(|| Mutex::new(Vec::new()));
    let mut found = found.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, path)) = found.iter().find(|(n, _)| *n == name) {
        return path.clone();
    }
    let path = find_on_path(name).unwrap_or_else(|| {
        panic!(
            "redis fixture: `{name}` is not on PATH. Install Redis (e.g. `apt-get install \
             redis-server`, which brings redis-server and redis-cli), or set {REDIS_URL_ENV} \
             to a running Redis for the tests that can use one."
        )
    });
    found.push((name, path.clone()));
    path
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Whether `redis-server` and `redis-cli` are on PATH.
pub fn redis_installed() -> bool {
    find_on_path("redis-server").is_some() && find_on_path("redis-cli").is_some()
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn connect(port: u16) -> redis::RedisResult<redis::Connection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
    let con = client.get_connection_with_timeout(Duration::from_millis(500))?;
    con.set_read_timeout(Some(Duration::from_secs(2)))?;
    con.set_write_timeout(Some(Duration::from_secs(2)))?;
    Ok(con)
}

/// PING (a real PONG: a server still loading its AOF answers LOADING) and the answering
/// server's process id, from INFO.
fn probe(port: u16) -> Result<u32, String> {
    let mut con = connect(port).map_err(|e| e.to_string())?;
    let pong: String = redis::cmd("PING")
        .query(&mut con)
        .map_err(|e| e.to_string())?;
    if pong != "PONG" {
        return Err(format!("PING answered {pong:?}"));
    }
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query(&mut con)
        .map_err(|e| e.to_string())?;
    info.lines()
        .find_map(|l| l.trim().strip_prefix("process_id:"))
        .and_then(|pid| pid.parse().ok())
        .ok_or_else(|| "INFO server has no process_id".to_owned())
}

/// Sends SHUTDOWN NOSAVE. Err only if no connection could be made; the server closing the
/// connection in answer is the expected outcome.
fn send_shutdown(port: u16) -> redis::RedisResult<()> {
    let mut con = connect(port)?;
    let _ = redis::cmd("SHUTDOWN").arg("NOSAVE").query::<()>(&mut con);
    Ok(())
}

fn cluster_info(port: u16) -> Result<String, String> {
    let mut con = connect(port).map_err(|e| e.to_string())?;
    redis::cmd("CLUSTER")
        .arg("INFO")
        .query(&mut con)
        .map_err(|e| e.to_string())
}

fn log_tail(path: &Path) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(LOG_TAIL_LINES);
            if lines.is_empty() {
                "(empty log)".to_owned()
            } else {
                lines[start..].join("\n")
            }
        }
        Err(e) => format!("(no log: {e})"),
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
