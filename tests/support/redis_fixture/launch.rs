//! Finding the binaries, picking free ports, and probing servers the fixture started.

use std::collections::HashSet;
use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::*;

#[derive(Clone, Copy, Debug)]
pub(super) enum PortKind {
    Plain,
    /// The port and port + 10000 (the cluster bus) both free.
    Cluster,
}

/// Ports this process has handed to a server, so concurrent tests in one binary never pick
/// the same one (bus ports included). Never released: a test binary starts few servers.
pub(super) fn reserved() -> &'static Mutex<HashSet<u16>> {
    static RESERVED: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    RESERVED.get_or_init(|| Mutex::new(HashSet::new()))
}

/// Binds 127.0.0.1:0 to have the OS pick a free port, then releases it for the server.
/// Another process may take it in between; `start` notices and tries another.
pub(super) fn pick_port(kind: PortKind) -> u16 {
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
pub(super) fn binary(name: &'static str) -> PathBuf {
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

pub(super) fn find_on_path(name: &str) -> Option<PathBuf> {
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

pub(super) fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

pub(super) fn connect(port: u16) -> redis::RedisResult<redis::Connection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
    let con = client.get_connection_with_timeout(Duration::from_millis(500))?;
    con.set_read_timeout(Some(Duration::from_secs(2)))?;
    con.set_write_timeout(Some(Duration::from_secs(2)))?;
    Ok(con)
}

/// PING (a real PONG: a server still loading its AOF answers LOADING) and the answering
/// server's process id, from INFO.
pub(super) fn probe(port: u16) -> Result<u32, String> {
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
pub(super) fn send_shutdown(port: u16) -> redis::RedisResult<()> {
    let mut con = connect(port)?;
    let _ = redis::cmd("SHUTDOWN").arg("NOSAVE").query::<()>(&mut con);
    Ok(())
}

pub(super) fn cluster_info(port: u16) -> Result<String, String> {
    let mut con = connect(port).map_err(|e| e.to_string())?;
    redis::cmd("CLUSTER")
        .arg("INFO")
        .query(&mut con)
        .map_err(|e| e.to_string())
}

pub(super) fn log_tail(path: &Path) -> String {
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
