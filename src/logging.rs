//! Log output batched in memory and written by a background thread.
//!
//! Every request logs a line, so a write(2) per line, or a channel to a writer thread
//! that wakes for every few lines, would cost the request threads dearly. Here a line is
//! appended to a shared buffer under a mutex, nothing more; the writer thread wakes every
//! [`FLUSH_EVERY`], or sooner when [`WAKE_AT`] bytes are waiting, and writes them in one
//! go.
//!
//! Nothing is dropped: when [`MAX_PENDING`] bytes are waiting (the output is stuck), a
//! logger waits for the writer. A crash loses at most the last [`FLUSH_EVERY`] of lines;
//! [`LogGuard`]'s drop writes out everything before the process exits.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a line may wait in memory.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Waiting bytes that wake the writer early.
pub const WAKE_AT: usize = 256 * 1024;
/// Waiting bytes at which loggers wait for the writer.
pub const MAX_PENDING: usize = 16 * 1024 * 1024;

struct Shared {
    state: Mutex<State>,
    /// Signalled for the writer: a lot is waiting, or the log is closing.
    wake_writer: Condvar,
    /// Signalled for loggers: the writer took what was waiting.
    room: Condvar,
}

#[derive(Default)]
struct State {
    pending: Vec<u8>,
    closed: bool,
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    // A logger that panicked mid-line leaves at worst a partial line.
    shared.state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Hands out [`LineWriter`]s (for `tracing_subscriber::fmt().with_writer`).
#[derive(Clone)]
pub struct BatchedLog {
    shared: Arc<Shared>,
}

/// Keeps the writer thread; dropping it writes out what is waiting and stops the thread.
pub struct LogGuard {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
}

impl BatchedLog {
    /// Starts the writer thread, writing to `out`.
    pub fn start<W: Write + Send + 'static>(
        out: W,
        thread_name: &str,
    ) -> std::io::Result<(BatchedLog, LogGuard)> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake_writer: Condvar::new(),
            room: Condvar::new(),
        });
        let for_writer = Arc::clone(&shared);
        let writer = std::thread::Builder::new()
            .name(thread_name.to_owned())
            .spawn(move || write_out(&for_writer, out))?;
        Ok((
            BatchedLog {
                shared: Arc::clone(&shared),
            },
            LogGuard {
                shared,
                writer: Some(writer),
            },
        ))
    }
}

/// The writer thread: takes what is waiting and writes it, until closed and drained.
fn write_out<W: Write>(shared: &Shared, mut out: W) {
    let mut taken = Vec::new();
    loop {
        let closed = {
            let mut state = lock(shared);
            if !state.closed && state.pending.len() < WAKE_AT {
                state = shared
                    .wake_writer
                    .wait_timeout(state, FLUSH_EVERY)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            std::mem::swap(&mut state.pending, &mut taken);
            state.closed
        };
        shared.room.notify_all();
        if !taken.is_empty() {
            // Nowhere to report a failing log output; the lines are dropped then.
            let _ = out.write_all(&taken).and_then(|()| out.flush());
            taken.clear();
            // Keep a buffer of a usual size, not the largest burst's.
            taken.shrink_to(WAKE_AT);
        }
        if closed && lock(shared).pending.is_empty() {
            return;
        }
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        lock(&self.shared).closed = true;
        self.shared.wake_writer.notify_one();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// Appends to the shared buffer; one `write_all` per log line (tracing-subscriber formats
/// a line first, then writes it whole).
pub struct LineWriter<'a> {
    shared: &'a Shared,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut state = lock(self.shared);
        while state.pending.len() >= MAX_PENDING && !state.closed {
            state = self
                .shared
                .room
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if state.closed {
            // After the guard is gone (the process is ending): straight out.
            drop(state);
            return std::io::stderr().write(bytes);
        }
        state.pending.extend_from_slice(bytes);
        let wake = state.pending.len() >= WAKE_AT;
        drop(state);
        if wake {
            self.shared.wake_writer.notify_one();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BatchedLog {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            shared: &self.shared,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::fmt::MakeWriter;

    /// An output the test can read back.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Sink {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner))
                .into_owned()
        }
    }

    #[test]
    fn every_line_from_every_thread_is_written_whole_by_the_time_the_guard_is_dropped() {
        let sink = Sink::default();
        let (log, guard) = BatchedLog::start(sink.clone(), "test-log").expect("a thread");
        std::thread::scope(|s| {
            for t in 0..4 {
                let log = log.clone();
                s.spawn(move || {
                    for i in 0..5_000 {
                        let line = format!("thread {t} line {i} {}\n", "x".repeat(i % 200));
                        log.make_writer()
                            .write_all(line.as_bytes())
                            .expect("written");
                    }
                });
            }
        });
        drop(guard);
        let text = sink.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 20_000);
        for t in 0..4 {
            let mine: Vec<usize> = lines
                .iter()
                .filter_map(|l| l.strip_prefix(&format!("thread {t} line ")))
                .map(|rest| {
                    let (i, xs) = rest.split_once(' ').expect("a whole line");
                    let i: usize = i.parse().expect("a number");
                    assert_eq!(xs.len(), i % 200, "line {i} of thread {t} is whole");
                    i
                })
                .collect();
            assert_eq!(mine, (0..5_000).collect::<Vec<_>>(), "in order, none lost");
        }
    }

    #[test]
    fn a_quiet_log_is_written_within_the_flush_interval() {
        let sink = Sink::default();
        let (log, _guard) = BatchedLog::start(sink.clone(), "test-log").expect("a thread");
        log.make_writer().write_all(b"one line\n").expect("written");
        // Generous: the writer wakes every FLUSH_EVERY; a loaded machine may be slow.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while sink.text().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(sink.text(), "one line\n");
    }
}
