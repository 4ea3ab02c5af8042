//! Real `ezenroll` processes for recovery tests: `ezenroll serve` on a free port (ready when
//! `GET /livez` answers) and `ezenroll worker`s, each logging JSON to its own file, that a
//! test can kill (SIGKILL), stop (SIGTERM) and start again with the same arguments.
//!
//! Dropping an [`Ezenroll`] SIGKILLs and reaps its process, also when the test panics, so no
//! process outlives its test (unless the test process itself is SIGKILLed).
//!
//! tests/recovery mounts it as `procs`, next to tests/support/redis_fixture (mounted as
//! `redis_fixture`, whose `free_port` it uses).

#![allow(dead_code)]

use std::fmt;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a process may take to start (listen, or log that its worker runs).
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a SIGTERMed process may take to finish before it is killed.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// Attempts at starting `serve` when the port picked was taken meanwhile.
const START_ATTEMPTS: usize = 5;

const LOG_TAIL_LINES: usize = 30;

/// The directory a test's processes log into: removed when the test passes, kept (and
/// named on stderr) when it panics, for the post-mortem.
pub struct LogsDir(Option<tempfile::TempDir>);

impl LogsDir {
    pub fn new() -> LogsDir {
        let dir = tempfile::Builder::new()
            .prefix("ezenroll-logs-")
            .tempdir()
            .expect("a temporary directory for the logs");
        LogsDir(Some(dir))
    }

    pub fn path(&self) -> &Path {
        self.0.as_ref().expect("the logs directory").path()
    }
}

impl Drop for LogsDir {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(dir) = self.0.take()
        {
            eprintln!("the processes' logs are kept in {}", dir.keep().display());
        }
    }
}

/// The binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_ezenroll")
}

/// One `ezenroll` process (and its later incarnations).
pub struct Ezenroll {
    name: String,
    /// Everything after the binary except `--listen`.
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// `serve` (listens, answers `/livez`) or a worker.
    serves: bool,
    dir: PathBuf,
    child: Option<Child>,
    port: Option<u16>,
    /// One log file per incarnation, oldest first.
    logs: Vec<PathBuf>,
}

impl Ezenroll {
    /// `ezenroll serve <args> --listen 127.0.0.1:<free port>`, not started yet; logs go to
    /// `dir`. `jwt_secret` goes in through `EZENROLL_JWT_SECRET`, never on the command line.
    pub fn serve(name: &str, dir: &Path, jwt_secret: &str, args: &[String]) -> Ezenroll {
        let mut all = vec!["serve".to_owned()];
        all.extend(args.iter().cloned());
        Ezenroll::new(name, dir, all, true).with_env("EZENROLL_JWT_SECRET", jwt_secret)
    }

    /// `ezenroll worker <args>`, not started yet.
    pub fn worker(name: &str, dir: &Path, args: &[String]) -> Ezenroll {
        let mut all = vec!["worker".to_owned()];
        all.extend(args.iter().cloned());
        Ezenroll::new(name, dir, all, false)
    }

    fn new(name: &str, dir: &Path, args: Vec<String>, serves: bool) -> Ezenroll {
        Ezenroll {
            name: name.to_owned(),
            args,
            // Alarms are read back from the log (their lines are at debug level);
            // whatever the caller's RUST_LOG.
            env: vec![(
                "RUST_LOG".to_owned(),
                "info,ezenroll::alarm=debug".to_owned(),
            )],
            serves,
            dir: dir.to_owned(),
            child: None,
            port: None,
            logs: Vec::new(),
        }
    }

    pub fn with_env(mut self, key: &str, value: &str) -> Ezenroll {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `http://127.0.0.1:<port>` of the running (or last) `serve` incarnation.
    pub fn base(&self) -> String {
        let port = self
            .port
            .unwrap_or_else(|| panic!("{} has never listened", self.name));
        format!("http://127.0.0.1:{port}")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts a new incarnation and waits until it is ready: `serve` answers `GET /livez`
    /// on a new free port, a worker has logged that it runs. Panics, with the log's tail,
    /// if it exits or is not ready within [`START_TIMEOUT`].
    pub async fn start(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let mut attempt = 1;
        loop {
            match self.launch().await {
                Ok(()) => return,
                Err(why) if self.serves && attempt < START_ATTEMPTS && self.port_taken() => {
                    eprintln!("{}: {why}; the port was taken, trying another", self.name);
                    attempt += 1;
                }
                Err(why) => panic!("{}", self.failure(&why)),
            }
        }
    }

    fn port_taken(&self) -> bool {
        let tail = self.log_tail();
        tail.contains("Address already in use") || tail.contains("cannot listen")
    }

    async fn launch(&mut self) -> Result<(), String> {
        let incarnation = self.logs.len() + 1;
        let log = self.dir.join(format!("{}.{incarnation}.log", self.name));
        let stderr = File::create(&log).map_err(|e| format!("cannot create {log:?}: {e}"))?;
        self.logs.push(log);
        let mut cmd = Command::new(binary());
        cmd.args(&self.args).args(["--log-format", "json"]);
        if self.serves {
            let port = super::redis_fixture::free_port();
            self.port = Some(port);
            cmd.arg("--listen").arg(format!("127.0.0.1:{port}"));
        }
        // Only what the test says: no EZENROLL_* or REDIS_URL of whoever runs the tests.
        for (k, _) in std::env::vars_os() {
            if k.to_str()
                .is_some_and(|k| k.starts_with("EZENROLL_") || k == "REDIS_URL")
            {
                cmd.env_remove(k);
            }
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot spawn {}: {e}", binary()))?;
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        let probe = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| e.to_string())?;
        loop {
            if let Some(status) = self.exited() {
                return Err(format!("it exited while starting ({status})"));
            }
            let ready = if self.serves {
                probe
                    .get(format!("{}/livez", self.base()))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            } else {
                self.log_lines()
                    .iter()
                    .any(|l| l.message() == "worker running")
            };
            if ready {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(format!("not ready within {START_TIMEOUT:?}"));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// `Some(status)` (and forgets the child) if the process has exited.
    fn exited(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => {
                self.child = None;
                Some(status)
            }
            Ok(None) => None,
            Err(e) => panic!("{}: cannot wait for the process: {e}", self.name),
        }
    }

    /// Whether the process is alive (a crash shows here).
    pub fn is_running(&mut self) -> bool {
        self.child.is_some() && self.exited().is_none()
    }

    /// Panics, with the log's tail, unless the process is alive.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.exited() {
            panic!(
                "{}",
                self.failure(&format!("it exited unexpectedly ({status})"))
            );
        }
        assert!(self.child.is_some(), "{} was not started", self.name);
    }

    /// SIGKILL (kill -9) and reap: a crash, nothing flushed. No-op if not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP: the process hangs, its connections stay open (a stuck consumer: what it
    /// has read stays pending under its name). [`kill`](Self::kill) still ends it.
    pub fn pause(&mut self) {
        self.signal("-STOP");
    }

    fn signal(&mut self, signal: &str) {
        let pid = self
            .pid()
            .unwrap_or_else(|| panic!("{} is not running", self.name));
        let sent = Command::new("kill")
            .args([signal, &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        assert!(
            sent.is_ok_and(|s| s.success()),
            "cannot send {signal} to {}",
            self.name
        );
    }

    /// SIGTERM and wait for the exit (SIGKILL after [`STOP_TIMEOUT`], which panics).
    pub async fn terminate(&mut self) -> ExitStatus {
        self.signal("-TERM");
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            if Instant::now() >= deadline {
                self.kill();
                panic!(
                    "{}",
                    self.failure(&format!("it ignored SIGTERM for {STOP_TIMEOUT:?}"))
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Every JSON log line of every incarnation, oldest first (a line cut off by a kill is
    /// skipped).
    pub fn log_lines(&self) -> Vec<LogLine> {
        self.logs
            .iter()
            .filter_map(|path| fs::read_to_string(path).ok())
            .flat_map(|text| {
                text.lines()
                    .filter_map(|l| serde_json::from_str(l).ok().map(LogLine))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The messages of the alarms this process delivered (logged by the notifier's
    /// channel, target `ezenroll::alarm`), in every incarnation.
    pub fn delivered_alarms(&self) -> Vec<String> {
        self.log_lines()
            .iter()
            .filter(|l| l.target() == "ezenroll::alarm")
            .map(|l| l.message().to_owned())
            .collect()
    }

    /// The last lines of the newest log, for failure messages.
    pub fn log_tail(&self) -> String {
        let Some(path) = self.logs.last() else {
            return "(no log)".to_owned();
        };
        match fs::read_to_string(path) {
            Ok(text) => {
                let lines: Vec<&str> = text.lines().collect();
                lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
            }
            Err(e) => format!("(no log: {e})"),
        }
    }

    fn failure(&self, why: &str) -> String {
        format!(
            "{} ({} {}) failed: {why}\n--- last lines of its log ---\n{}",
            self.name,
            binary(),
            self.args.join(" "),
            self.log_tail()
        )
    }
}

impl Drop for Ezenroll {
    fn drop(&mut self) {
        self.kill();
    }
}

impl fmt::Debug for Ezenroll {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ezenroll")
            .field("name", &self.name)
            .field("pid", &self.pid())
            .field("port", &self.port)
            .finish()
    }
}

/// One line of `--log-format json` (tracing-subscriber's JSON format).
#[derive(Debug, Clone)]
pub struct LogLine(pub serde_json::Value);

impl LogLine {
    pub fn target(&self) -> &str {
        self.0["target"].as_str().unwrap_or("")
    }

    pub fn level(&self) -> &str {
        self.0["level"].as_str().unwrap_or("")
    }

    pub fn message(&self) -> &str {
        self.0["fields"]["message"].as_str().unwrap_or("")
    }
}
