//! What every long-running subcommand shares: logging, signals and stdout.

use super::args::LogFormat;
use std::io::Write;
use std::process::ExitCode;

/// Logs to stderr, batched in memory and written by a background thread (see
/// `ezenroll::logging`), so a line never costs a request its own write. Keep the returned
/// guard alive: dropping it writes out what is still waiting.
pub fn init_tracing(format: LogFormat) -> Option<ezenroll::logging::LogGuard> {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person at a terminal, not in files or log collectors.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (writer, guard) =
        match ezenroll::logging::BatchedLog::start(std::io::stderr(), "ezenroll-log") {
            Ok(started) => started,
            Err(e) => {
                eprintln!("ezenroll: logging is not available: {e}");
                return None;
            }
        };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    match installed {
        Ok(()) => Some(guard),
        Err(e) => {
            eprintln!("ezenroll: logging is not available: {e}");
            None
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}

/// Writes to stdout; a reader that went away (`| head`) is not an error.
pub fn write_stdout(write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> ExitCode {
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    match write(&mut lock).and_then(|()| lock.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ezenroll: cannot write to stdout: {e}");
            ExitCode::FAILURE
        }
    }
}
