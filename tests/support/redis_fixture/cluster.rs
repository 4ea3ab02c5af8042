//! A Redis Cluster of masters the test started and owns.

use std::fmt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::launch::*;
use super::server::*;
use super::*;

/// A Redis Cluster of masters only (no replicas), each an own [`RedisServer`] with AOF, in
/// its own directory, created with `redis-cli --cluster create`. Ready means every node
/// reports `cluster_state:ok` with all 16384 slots assigned and knows every other node.
///
/// Killing a master loses its slots (there is no replica to fail over to): the cluster goes
/// down after the node timeout (2 s) until [`restart_node`](Self::restart_node).
pub struct RedisCluster {
    pub(super) nodes: Vec<RedisServer>,
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

    pub(super) fn create(&self) {
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

    pub(super) fn info_is_ok(&self, info: &str) -> bool {
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

    pub(super) fn logs(&self) -> String {
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
