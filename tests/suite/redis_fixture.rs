//! Tests of the Redis test fixture itself (tests/support/redis_fixture), against real
//! `redis-server` processes: the Redis backend's tests rely on every promise checked here.
//!
//! With `REDIS_URL` set, the tests that start or control processes print why they skip.

use crate::support::redis_fixture;

use redis::AsyncTypedCommands;
use redis::aio::{ConnectionManager, MultiplexedConnection};
use redis_fixture::{RedisCluster, RedisOptions, RedisServer, TestRedis, skip_if_external};
use std::path::Path;
use std::time::{Duration, Instant};

/// Bound on any single network step, so a broken fixture fails instead of hanging.
const STEP: Duration = Duration::from_secs(10);

async fn connect(url: &str) -> MultiplexedConnection {
    let client = redis::Client::open(url).expect("fixture URL parses");
    tokio::time::timeout(STEP, client.get_multiplexed_async_connection())
        .await
        .expect("connecting timed out")
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"))
}

fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test]
async fn set_get_round_trip_under_the_prefix() {
    let redis = TestRedis::new();
    assert!(redis.url().starts_with("redis://"), "{}", redis.url());
    let mut con = connect(&redis.url()).await;
    let key = redis.key("greeting");
    assert!(key.starts_with(redis.prefix()));
    con.set(&key, "hello").await.expect("SET");
    assert_eq!(con.get(&key).await.expect("GET").as_deref(), Some("hello"));

    // The same through a ConnectionManager, the backend's likely connection type.
    let mut manager = ConnectionManager::new(redis.client())
        .await
        .expect("ConnectionManager connects");
    assert_eq!(
        manager.get(&key).await.expect("GET").as_deref(),
        Some("hello")
    );
}

#[tokio::test]
async fn prefixes_are_unique_per_handle() {
    let a = TestRedis::new();
    let b = TestRedis::new();
    assert_ne!(a.prefix(), b.prefix());
    for prefix in [a.prefix(), b.prefix()] {
        assert!(prefix.starts_with('t') && prefix.ends_with(':'), "{prefix}");
        assert!(
            !prefix.contains(['*', '?', '[', ']', '\\', '{', '}']),
            "a prefix must be glob- and hash-tag-free: {prefix}"
        );
    }
}

#[tokio::test]
async fn a_killed_server_refuses_fresh_connections() {
    let mut redis = TestRedis::new();
    let Some(server) = redis.owned_or_skip("a_killed_server_refuses_fresh_connections") else {
        return;
    };
    let pid = server.pid().expect("a started server has a pid");
    assert!(server.is_running());
    server.kill();
    assert!(!server.is_running());
    assert_eq!(server.pid(), None);
    assert!(!process_exists(pid), "pid {pid} survived kill()");

    let client = server.client();
    let attempt = tokio::time::timeout(STEP, client.get_multiplexed_async_connection())
        .await
        .expect("a connection attempt to a dead server should fail fast, not hang");
    let Err(error) = attempt else {
        panic!("connected to a killed server");
    };
    assert!(error.is_connection_refusal(), "{error}");
}

#[tokio::test]
async fn restart_after_kill_keeps_acknowledged_writes_with_fsync_always() {
    let mut redis = TestRedis::new_with(RedisOptions::DURABLE);
    let key = redis.key("durable");
    let url = redis.url();
    let Some(server) = redis.owned_or_skip("restart_after_kill_keeps_acknowledged_writes") else {
        return;
    };
    let port = server.port();

    let mut con = connect(&url).await;
    con.set(&key, "written-before-the-crash")
        .await
        .expect("SET");
    let mut manager = ConnectionManager::new(server.client())
        .await
        .expect("ConnectionManager connects");

    server.kill();
    server.restart();
    assert!(server.is_running());
    assert_eq!(server.port(), port, "restart must keep the port");
    assert_eq!(server.url(), url);
    assert!(
        server.dir().join("appendonlydir").is_dir(),
        "no AOF directory in {}",
        server.dir().display()
    );

    let mut fresh = connect(&url).await;
    assert_eq!(
        fresh.get(&key).await.expect("GET after restart").as_deref(),
        Some("written-before-the-crash")
    );

    // A manager made before the crash reaches the restarted server at the same address.
    let deadline = Instant::now() + STEP;
    loop {
        match manager.get(&key).await {
            Ok(value) => {
                assert_eq!(value.as_deref(), Some("written-before-the-crash"));
                break;
            }
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("the old ConnectionManager never reconnected: {e}"),
        }
    }
}

#[tokio::test]
async fn graceful_stop_flushes_the_aof_and_restart_reloads_it() {
    if skip_if_external("graceful_stop_flushes_the_aof_and_restart_reloads_it") {
        return;
    }
    // everysec: only the graceful shutdown guarantees the write reached the file.
    let mut server = RedisServer::start_with(RedisOptions {
        aof: true,
        fsync_always: false,
    });
    let mut con = connect(&server.url()).await;
    con.set("k", "v").await.expect("SET");
    drop(con);

    let pid = server.pid().expect("running");
    server.stop();
    assert!(!server.is_running());
    assert!(!process_exists(pid), "pid {pid} survived stop()");
    assert!(
        std::fs::read_to_string(server.log_path())
            .expect("the log exists")
            .contains("ready to exit"),
        "no graceful shutdown in the log:\n{}",
        server.log_tail()
    );

    server.restart();
    let mut con = connect(&server.url()).await;
    assert_eq!(con.get("k").await.expect("GET").as_deref(), Some("v"));

    // stop() and kill() on a stopped server are no-ops; restart() on a running one is a
    // stop and a start.
    server.restart();
    assert!(server.is_running());
    server.stop();
    server.stop();
    server.kill();
    assert!(!server.is_running());
}

#[tokio::test]
async fn without_aof_a_restart_starts_empty() {
    if skip_if_external("without_aof_a_restart_starts_empty") {
        return;
    }
    let mut server = RedisServer::start();
    let mut con = connect(&server.url()).await;
    con.set("k", "v").await.expect("SET");
    server.kill();
    server.restart();
    let mut con = connect(&server.url()).await;
    assert_eq!(con.get("k").await.expect("GET"), None);
}

#[tokio::test]
async fn two_servers_at_once_get_their_own_port_and_dir() {
    if skip_if_external("two_servers_at_once_get_their_own_port_and_dir") {
        return;
    }
    let a = RedisServer::start();
    let b = RedisServer::start();
    assert_ne!(a.port(), b.port());
    assert_ne!(a.dir(), b.dir());
    assert_ne!(
        a.port(),
        6379,
        "the fixture must never use the default port"
    );

    let mut con_a = connect(&a.url()).await;
    let mut con_b = connect(&b.url()).await;
    con_a.set("only-in-a", "1").await.expect("SET");
    assert_eq!(con_b.get("only-in-a").await.expect("GET"), None);
}

#[tokio::test]
async fn drop_kills_the_server_even_when_the_test_panics() {
    if skip_if_external("drop_kills_the_server_even_when_the_test_panics") {
        return;
    }
    let server = RedisServer::start();
    let (pid, dir) = (server.pid().expect("running"), server.dir().to_owned());
    drop(server);
    assert!(!process_exists(pid), "pid {pid} survived drop");
    assert!(!dir.exists(), "{} survived drop", dir.display());

    let (tx, rx) = std::sync::mpsc::channel();
    let outcome = std::thread::spawn(move || {
        let server = RedisServer::start();
        tx.send(server.pid().expect("running"))
            .expect("the test thread listens");
        panic!("a failing test holding a server");
    })
    .join();
    assert!(outcome.is_err(), "the thread was meant to panic");
    let pid = rx.recv().expect("the thread started a server");
    assert!(!process_exists(pid), "pid {pid} survived a panicking test");
}

#[tokio::test]
async fn cluster_routes_keys_to_every_master() {
    if skip_if_external("cluster_routes_keys_to_every_master") {
        return;
    }
    let cluster = RedisCluster::start(3);
    let urls = cluster.urls();
    assert_eq!(urls.len(), 3);

    let client = cluster.client();
    let mut con = tokio::time::timeout(STEP, client.get_async_connection())
        .await
        .expect("cluster connection timed out")
        .expect("cluster connection");
    // {a}, {b}, {c} hash to slots 15495, 3300 and 7365: one in each master's third.
    for tag in ["a", "b", "c"] {
        let key = format!("{{{tag}}}x");
        con.set(&key, tag).await.expect("SET through the cluster");
    }
    for tag in ["a", "b", "c"] {
        let key = format!("{{{tag}}}x");
        assert_eq!(con.get(&key).await.expect("GET").as_deref(), Some(tag));
    }

    for url in &urls {
        let mut node = connect(url).await;
        let info: String = redis::cmd("CLUSTER")
            .arg("INFO")
            .query_async(&mut node)
            .await
            .expect("CLUSTER INFO");
        assert!(info.contains("cluster_state:ok"), "{url}: {info}");
        assert!(
            info.contains("cluster_slots_assigned:16384"),
            "{url}: {info}"
        );
        let keys: u64 = redis::cmd("DBSIZE")
            .query_async(&mut node)
            .await
            .expect("DBSIZE");
        assert_eq!(keys, 1, "{url} should hold exactly one of the three keys");
    }
}

#[tokio::test]
async fn cluster_node_restart_brings_back_its_keys() {
    if skip_if_external("cluster_node_restart_brings_back_its_keys") {
        return;
    }
    let mut cluster = RedisCluster::start_with(3, RedisOptions::DURABLE);
    let mut con = cluster
        .client()
        .get_async_connection()
        .await
        .expect("cluster connection");
    // Slot 3300: the first master's range (redis-cli gives out slots in node order).
    con.set("{b}x", "kept").await.expect("SET");
    drop(con);
    let mut node0 = connect(&cluster.urls()[0]).await;
    let keys: u64 = redis::cmd("DBSIZE")
        .query_async(&mut node0)
        .await
        .expect("DBSIZE");
    assert_eq!(keys, 1, "the key should live on node 0");
    drop(node0);

    let url = cluster.urls()[0].clone();
    let pid = cluster.node(0).pid().expect("running");
    cluster.kill_node(0);
    assert!(!process_exists(pid), "node pid {pid} survived kill_node");
    let refused = redis::Client::open(url.as_str())
        .expect("URL parses")
        .get_multiplexed_async_connection()
        .await;
    assert!(refused.is_err(), "connected to a killed node");

    cluster.restart_node(0);
    assert_eq!(
        cluster.urls()[0],
        url,
        "restart must keep the node's address"
    );
    let mut fresh = cluster
        .client()
        .get_async_connection()
        .await
        .expect("cluster connection after restart");
    assert_eq!(
        fresh.get("{b}x").await.expect("GET").as_deref(),
        Some("kept")
    );
}
