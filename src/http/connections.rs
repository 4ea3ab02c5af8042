//! Accepting connections, at most so many at once.
//!
//! Every connection holds a file descriptor, and a process out of descriptors can accept
//! nothing, not even a liveness probe. So the server keeps at most [`Connections::max`]
//! open: at the cap, a new connection takes the place of the one idle the longest (no
//! request in flight: a keep-alive connection between requests, or one that has not sent
//! a whole request head yet), which is closed; when every one is busy, the new one is
//! answered 503 `too-many-connections` and closed. A request in flight is never cut off.
//!
//! Accepting can still fail for want of descriptors (the store's connections and files
//! count too): the server then closes the connection idle the longest, waits a little
//! (longer while nothing can be closed, up to a second) and tries again, and says so in
//! the log at most once a minute; each failure is counted in `/metrics`.
//!
//! A graceful shutdown works as hyper's own: the listening socket is closed, every
//! connection finishes the request it is on and closes, and the server's future ends
//! when the last one has.

use super::context::Api;
use super::errors::too_many_connections;
use futures_util::task::AtomicWaker;
use hyper::body::{Bytes, HttpBody, SizeHint};
use hyper::server::conn::Http;
use hyper::{Body, HeaderMap, Request, Response};
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// The first wait after a failed accept when no connection could be closed; it doubles
/// with each failure in a row, up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// The wait after a failed accept that closed an idle connection: long enough for its
/// task to let go of the descriptor.
const FREED_BACKOFF: Duration = Duration::from_millis(1);
/// How often a run of failed accepts is logged at most.
const REPORT_EVERY: Duration = Duration::from_secs(60);

/// What a connection is told ([`Conn::tell`]); a later word never weakens an earlier one.
const CARRY_ON: u8 = 0;
/// Close now if idle, else after the request in flight: room is needed.
const SHED: u8 = 1;
/// The server is shutting down: finish the request in flight, then close.
const DRAIN: u8 = 2;

/// The open connections of one server, and what `/metrics` says about them.
pub struct Connections {
    /// The cap; 0 for none.
    max: usize,
    epoch: Instant,
    open: Mutex<HashMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
    shed: AtomicU64,
    refused: AtomicU64,
    accept_errors: AtomicU64,
}

impl Connections {
    pub fn new(max: usize) -> Connections {
        Connections {
            max,
            epoch: Instant::now(),
            open: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            shed: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            accept_errors: AtomicU64::new(0),
        }
    }

    /// The cap; 0 for none.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().len()
    }

    /// Idle connections closed to make room, at the cap or out of descriptors.
    pub fn shed_total(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    /// Connections answered 503 and closed because every open one was busy.
    pub fn refused_total(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Accepts that failed (out of descriptors, mostly).
    pub fn accept_errors_total(&self) -> u64 {
        self.accept_errors.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        // The map stays consistent whatever panicked while holding it.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> u64 {
        nanos_since(self.epoch)
    }

    /// Registers a new connection, making room at the cap; `None` when every open
    /// connection is busy.
    fn admit(&self) -> Option<Arc<Conn>> {
        let mut open = self.lock();
        if self.max > 0 && open.len() >= self.max && !self.shed_oldest_idle(&mut open) {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let conn = Arc::new(Conn {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            epoch: self.epoch,
            in_flight: AtomicU32::new(0),
            idle_since: AtomicU64::new(self.now()),
            told: AtomicU8::new(CARRY_ON),
            waker: AtomicWaker::new(),
        });
        open.insert(conn.id, Arc::clone(&conn));
        Some(conn)
    }

    /// Closes the connection idle the longest, if any is idle.
    fn shed_one(&self) -> bool {
        let mut open = self.lock();
        self.shed_oldest_idle(&mut open)
    }

    fn shed_oldest_idle(&self, open: &mut HashMap<u64, Arc<Conn>>) -> bool {
        let oldest = open
            .values()
            .filter(|c| c.is_idle())
            .min_by_key(|c| c.idle_since.load(Ordering::Acquire))
            .map(|c| c.id);
        let Some(conn) = oldest.and_then(|id| open.remove(&id)) else {
            return false;
        };
        conn.tell(SHED);
        self.shed.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Tells every open connection that the server is shutting down.
    fn drain_all(&self) {
        for conn in self.lock().values() {
            conn.tell(DRAIN);
        }
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }
}

/// One open connection, as the cap sees it.
pub struct Conn {
    id: u64,
    epoch: Instant,
    /// Requests whose answer is not finished (its body still being sent counts).
    in_flight: AtomicU32,
    /// When the connection last had nothing in flight, in nanoseconds since the epoch of
    /// [`Connections`]: accepted, or its last answer finished.
    idle_since: AtomicU64,
    /// [`CARRY_ON`], [`SHED`] or [`DRAIN`]. A flag and a waker rather than a channel: the
    /// connection's task checks it on every wake-up, which must cost next to nothing.
    told: AtomicU8,
    waker: AtomicWaker,
}

impl Conn {
    /// Marks a request in flight until the guard (kept by its answer's body) is dropped.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(self))
    }

    fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }

    fn tell(&self, word: u8) {
        self.told.fetch_max(word, Ordering::AcqRel);
        self.waker.wake();
    }
}

/// A request in flight on a [`Conn`].
pub struct InFlight(Arc<Conn>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let conn = &self.0;
        conn.idle_since
            .store(nanos_since(conn.epoch), Ordering::Release);
        conn.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An answer's body that keeps its request in flight until it is sent whole (or dropped):
/// an event stream or a long answer is busy, not idle.
pub struct Tracked {
    body: Body,
    _in_flight: InFlight,
}

impl Tracked {
    pub fn new(body: Body, in_flight: InFlight) -> Tracked {
        Tracked {
            body,
            _in_flight: in_flight,
        }
    }
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_data(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, hyper::Error>>> {
        Pin::new(&mut self.body).poll_data(cx)
    }

    fn poll_trailers(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<HeaderMap>, hyper::Error>> {
        Pin::new(&mut self.body).poll_trailers(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Accepts connections on `listener` and serves each with the service `make` builds for
/// it (from the peer's address and the connection), until `shutdown` completes; then
/// drains as hyper's graceful shutdown does.
pub async fn serve<M, S, F>(
    listener: TcpListener,
    http: Http,
    api: Arc<Api>,
    make: M,
    shutdown: impl Future<Output = ()>,
) where
    M: Fn(SocketAddr, Arc<Conn>) -> S,
    S: hyper::service::Service<
            Request<Body>,
            Response = Response<Tracked>,
            Error = Infallible,
            Future = F,
        > + Send
        + 'static,
    F: Future<Output = Result<Response<Tracked>, Infallible>> + Send + 'static,
{
    // Every connection's task holds a sender; `recv` ends when the last one is gone.
    let (running, mut all_done) = mpsc::channel::<()>(1);
    let mut errors = AcceptErrors::default();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                errors.recovered();
                let Some(conn) = api.connections.admit() else {
                    refuse(&stream, api.connections.max());
                    continue;
                };
                // As hyper's own listener did: answers go out without waiting to fill
                // a segment.
                let _ = stream.set_nodelay(true);
                let connection = http.serve_connection(stream, make(peer, Arc::clone(&conn)));
                tokio::spawn(run_connection(
                    connection,
                    conn,
                    Arc::clone(&api),
                    running.clone(),
                ));
            }
            // The peer gave up before it was accepted: nothing to wait for.
            Err(e) if is_connection_error(&e) => {}
            Err(e) => {
                api.connections
                    .accept_errors
                    .fetch_add(1, Ordering::Relaxed);
                let freed = api.connections.shed_one();
                let wait = errors.failed(&e, freed);
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
    // New connections are refused from here on.
    drop(listener);
    api.connections.drain_all();
    drop(running);
    let _ = all_done.recv().await;
}

/// Serves one connection until it closes, is shed, or the server drains.
async fn run_connection<S, F>(
    connection: hyper::server::conn::Connection<TcpStream, S>,
    conn: Arc<Conn>,
    api: Arc<Api>,
    _running: mpsc::Sender<()>,
) where
    S: hyper::service::Service<
            Request<Body>,
            Response = Response<Tracked>,
            Error = Infallible,
            Future = F,
        > + Send
        + 'static,
    F: Future<Output = Result<Response<Tracked>, Infallible>> + Send + 'static,
{
    let mut connection = std::pin::pin!(connection);
    let mut graceful = false;
    let ended = std::future::poll_fn(|cx| {
        if !graceful {
            // Registered before the flag is read: a word said in between wakes this task.
            conn.waker.register(cx.waker());
            match conn.told.load(Ordering::Acquire) {
                CARRY_ON => {}
                // Dropping the connection closes its socket.
                SHED if conn.is_idle() => return Poll::Ready(None),
                // Draining, or a request came in since it was picked to make room: the
                // request in flight is answered, then the connection closes (an idle one
                // at once).
                _ => {
                    connection.as_mut().graceful_shutdown();
                    graceful = true;
                }
            }
        }
        connection.as_mut().poll(cx).map(Some)
    })
    .await;
    match ended {
        None => tracing::debug!("closed an idle connection to make room for a new one"),
        Some(Err(e)) => tracing::debug!(error = %e, "connection error"),
        Some(Ok(())) => {}
    }
    api.connections.remove(conn.id);
}

/// Answers a connection there is no room for with 503 and closes it, without reading its
/// request: whatever it sent is refused the same way.
fn refuse(stream: &TcpStream, max: usize) {
    let problem = too_many_connections(max);
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let mut answer = head.into_bytes();
    answer.extend_from_slice(&body);
    // A fresh socket's send buffer takes it whole; if not, the peer sees the close alone.
    let _ = stream.try_write(&answer);
    tracing::debug!(max, "every connection busy: refused a new one");
}

/// A peer that reset or aborted before its connection was accepted (as hyper tells them).
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// Failed accepts in a row: how long to wait before the next try, and when to say so.
struct AcceptErrors {
    /// Failures since the last accept that worked.
    in_a_row: u64,
    /// Whether this run of failures was logged.
    reported: bool,
    last_report: Option<Instant>,
    /// Failures since the last one logged.
    unreported: u64,
    backoff: Duration,
}

impl Default for AcceptErrors {
    fn default() -> AcceptErrors {
        AcceptErrors {
            in_a_row: 0,
            reported: false,
            last_report: None,
            unreported: 0,
            backoff: MIN_BACKOFF,
        }
    }
}

impl AcceptErrors {
    /// One more failure; `freed` when an idle connection was closed for it. Returns how
    /// long to wait before accepting again.
    fn failed(&mut self, e: &std::io::Error, freed: bool) -> Duration {
        self.in_a_row += 1;
        self.unreported += 1;
        if self.in_a_row == 1 && self.last_report.is_none_or(|t| t.elapsed() >= REPORT_EVERY) {
            tracing::warn!(
                error = %e,
                failures = self.unreported,
                "cannot accept connections; closing idle ones to make room and retrying \
                 (logged at most once a minute; every failure counts in \
                 ezenroll_accept_errors_total)"
            );
            self.last_report = Some(Instant::now());
            self.unreported = 0;
            self.reported = true;
        }
        if freed {
            self.backoff = MIN_BACKOFF;
            return FREED_BACKOFF;
        }
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        wait
    }

    /// An accept worked.
    fn recovered(&mut self) {
        if self.in_a_row == 0 {
            return;
        }
        if self.reported {
            tracing::info!(failures = self.in_a_row, "accepting connections again");
        }
        self.in_a_row = 0;
        self.reported = false;
        self.backoff = MIN_BACKOFF;
    }
}

fn nanos_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_cap_the_connection_idle_the_longest_makes_room() {
        let connections = Connections::new(2);
        let first = connections.admit().expect("room");
        let second = connections.admit().expect("room");
        let busy = first.begin();
        // `first` is busy, so `second` (idle) is shed for the third.
        let third = connections.admit().expect("room made");
        assert_eq!(connections.open(), 2);
        assert_eq!(connections.shed_total(), 1);
        let _busy_too = third.begin();
        assert!(
            connections.admit().is_none(),
            "every connection busy: no room"
        );
        assert_eq!(connections.refused_total(), 1);
        drop(busy);
        assert!(connections.admit().is_some(), "first is idle again");
        drop(second);
    }

    #[test]
    fn no_cap_admits_everyone() {
        let connections = Connections::new(0);
        let all: Vec<_> = (0..100).filter_map(|_| connections.admit()).collect();
        assert_eq!(all.len(), 100);
        assert_eq!(connections.shed_total(), 0);
    }
}
