//! One `redis-server` process the test started and owns: start, stop, kill, restart.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

use super::launch::*;
use super::*;

/// A `redis-server` process this test started and owns.
///
/// Process control takes `&mut self`: [`stop`](Self::stop) (SHUTDOWN NOSAVE, then wait),
/// [`kill`](Self::kill) (SIGKILL, then wait), [`restart`](Self::restart) (same port, same
/// directory, so an AOF is reloaded). Drop kills and reaps the process.
pub struct RedisServer {
    // Declared (and so dropped) before `dir`; `Drop` reaps the child before the directory
    // it writes into is removed.
    pub(super) child: Option<Child>,
    pub(super) port: u16,
    pub(super) options: RedisOptions,
    /// Arguments after the common ones (the cluster flags).
    pub(super) extra_args: Vec<String>,
    pub(super) dir: TempDir,
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

    pub(super) fn start_inner(
        options: RedisOptions,
        extra_args: Vec<String>,
        kind: PortKind,
    ) -> Self {
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

    pub(super) fn command(&self) -> Command {
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
    pub(super) fn launch(&mut self) -> Result<(), LaunchError> {
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

    pub(super) fn failure(&self, what: &str, error: &LaunchError) -> String {
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
pub(super) enum LaunchError {
    Spawn(io::Error),
    Exited(ExitStatus),
    TimedOut(String),
}

impl LaunchError {
    /// An exit because the port (or the cluster bus port) was already bound.
    pub(super) fn is_port_taken(&self, server: &RedisServer) -> bool {
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
