//! `ezenroll serve` and workers as real processes on a Redis, each logging to the test's
//! directory.

use crate::app::TEST_SECRET;
use crate::procs::{Ezenroll, LogsDir};

/// How a test's `serve` runs, beyond the store.
#[derive(Clone, Copy)]
pub(crate) struct Serve {
    pub(crate) document_delay: &'static str,
    pub(crate) payment_latency: &'static str,
    /// `all`, `notifier`, `mypage` or `none`.
    pub(crate) consumers: &'static str,
}

impl Default for Serve {
    fn default() -> Self {
        Serve {
            document_delay: "200ms",
            payment_latency: "20ms",
            consumers: "all",
        }
    }
}

/// Where the state lives: every process of a test shares these.
pub(crate) fn store_args(url: &str, prefix: &str) -> Vec<String> {
    [
        "--redis-url",
        url,
        "--redis-prefix",
        prefix,
        "--partitions",
        "4",
        // Events a dead consumer had read and not acknowledged are taken over after
        // this long (30 s by default).
        "--claim-idle",
        "1s",
    ]
    .map(String::from)
    .to_vec()
}

pub(crate) fn serve_args(url: &str, prefix: &str, serve: Serve) -> Vec<String> {
    let mut args = store_args(url, prefix);
    args.extend(
        [
            // Timers a dead server had claimed fire again after this long (30 s by
            // default); above the slowest payment latency used here (2 s).
            "--timer-lease",
            "3s",
            // A copy killed here has its enrollments taken over after this long (10 s
            // by default), so a restarted server is serving again soon.
            "--ownership-lease",
            "2s",
            "--document-delay",
            serve.document_delay,
            "--payment-latency",
            serve.payment_latency,
            "--consumers",
            serve.consumers,
        ]
        .map(String::from),
    );
    args
}

pub(crate) fn server(dir: &LogsDir, name: &str, url: &str, prefix: &str, s: Serve) -> Ezenroll {
    Ezenroll::serve(name, dir.path(), TEST_SECRET, &serve_args(url, prefix, s))
}

pub(crate) fn worker(dir: &LogsDir, name: &str, role: &str, url: &str, prefix: &str) -> Ezenroll {
    let mut args = vec!["--role".to_owned(), role.to_owned()];
    args.extend(store_args(url, prefix));
    Ezenroll::worker(name, dir.path(), &args)
}

pub(crate) fn logs_dir() -> LogsDir {
    LogsDir::new()
}
