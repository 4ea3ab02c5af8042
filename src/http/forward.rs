//! Sending a request to the copy that owns its enrollment. Every copy answers every
//! route; a request about one enrollment (`/enrollments/{id}…`, `/mypage/{id}`, and a
//! keyed `POST /enrollments`, whose id comes from its key) is handled where the
//! enrollment's actor lives ([`crate::actors::ownership`]), so every copy answers fresh,
//! long polls wake on every change and an enrollment's commands never run in two places.
//!
//! The request goes on unchanged, with the caller's own token, so the owner checks it as
//! if it had been sent there; a header signed with the secret the copies share says that
//! a copy sent it, so the owner handles it itself instead of sending it on again. While a
//! partition changes hands the request waits for the new owner (see [`owner_wait`]);
//! an owner that no longer owns it, or does not answer, is replaced by the next one.

use super::context::Api;
use super::errors::{OWNERSHIP_MOVING, Problem, ownership_moving};
use super::idempotency::Idem;
use crate::actors::ownership::{Ownership, Route};
use crate::domain::enrollment::EnrollmentId;
use hmac::{Hmac, Mac};
use hyper::body::{Bytes, HttpBody};
use hyper::client::HttpConnector;
use hyper::{Body, Request, Response, StatusCode, Uri};
use sha2::Sha256;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::OnceCell;

/// The header a copy marks a forwarded request with: `<member>;<unix secs>;<hex HMAC>`.
pub const FORWARDED: &str = "ezenroll-forwarded";

/// How long a request waits for an owner while a partition changes hands: long enough
/// for a dead owner's lease to run out and the next copy to take the partition (half a
/// lease more), so a copy dying costs its callers time rather than errors.
pub fn owner_wait(lease: Duration) -> Duration {
    lease.saturating_mul(3) / 2
}

/// How far a forwarded request's time may be from the receiver's clock.
const SIGNATURE_WINDOW_SECS: u64 = 60;

/// Headers that belong to one connection and are not passed on (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "host",
];

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct ForwardStats {
    /// Requests sent on to their owner.
    pub forwarded: AtomicU64,
    /// Forwarded requests tried a second time (the owner was gone or had moved on).
    pub retried: AtomicU64,
    /// Requests answered 503 because no owner appeared in time.
    pub unowned: AtomicU64,
}

/// Sends requests to their owners; one per server.
pub struct Forwarder {
    api: Arc<Api>,
    client: hyper::Client<HttpConnector, Body>,
    secret: OnceCell<Vec<u8>>,
}

/// What a request's [`FORWARDED`] header says ([`Forwarder::mark`]).
pub enum Mark {
    /// None, or one that is not looked at (no copies).
    None,
    /// Signed by a copy: the request was routed (and its caller rate-limited) there.
    Verified,
    /// Not signed by a copy (403), or the secret to check it with cannot be read.
    Refused(Response<Body>),
}

/// Where one request is handled.
enum Target {
    Local,
    /// The owner of this partition.
    Partition(u16),
    /// Any copy that owns something (a new enrollment on a copy that owns nothing).
    AnyOwner,
}

impl Forwarder {
    pub fn new(api: Arc<Api>) -> Forwarder {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        Forwarder {
            api,
            client: hyper::Client::builder()
                // Below the owners' header-read timeout, which closes idle connections:
                // a pooled connection is dropped here before the owner drops it.
                .pool_idle_timeout(Duration::from_secs(5))
                .build(connector),
            secret: OnceCell::new(),
        }
    }

    fn ownership(&self) -> &Arc<Ownership> {
        self.api.engine.ownership()
    }

    async fn secret(&self) -> Result<&[u8], Problem> {
        self.secret
            .get_or_try_init(|| async { self.api.engine.store().cluster_secret().await })
            .await
            .map(Vec::as_slice)
            .map_err(|e| {
                tracing::warn!(error = %e, "cannot read the cluster secret");
                ownership_moving()
            })
    }

    /// Whether `req` was sent by another copy: its [`FORWARDED`] header, checked. Without
    /// copies (no cluster) the header means nothing and is not looked at.
    pub async fn mark(&self, req: &Request<Body>) -> Mark {
        if !self.ownership().is_clustered() {
            return Mark::None;
        }
        let Some(mark) = req.headers().get(FORWARDED) else {
            return Mark::None;
        };
        let mark = mark.to_str().unwrap_or("");
        match self.secret().await {
            Ok(secret) if verify(secret, mark, req.method().as_str(), path_of(req)) => {
                Mark::Verified
            }
            Ok(_) => Mark::Refused(problem(Problem::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "Forbidden",
                format!("the {FORWARDED} header is not one a copy of this server signed"),
            ))),
            Err(p) => Mark::Refused(problem(p)),
        }
    }

    /// Handles `req` here (`Ok(req)`, to go to the routes) or answers it, from the owner.
    /// For a request without a [`Mark`]: one a copy sent is handled here, as it is.
    pub async fn route(&self, req: Request<Body>) -> Result<Request<Body>, Response<Body>> {
        if !self.ownership().is_clustered() {
            return Ok(req);
        }
        match self.target(&req) {
            Target::Local => Ok(req),
            target => self.forward(req, target).await,
        }
    }

    fn target(&self, req: &Request<Body>) -> Target {
        let path = req.uri().path();
        let mut segments = path.trim_start_matches('/').split('/');
        let (first, second) = (segments.next(), segments.next());
        let ownership = self.ownership();
        let id = match (first, second) {
            (Some("enrollments" | "mypage"), Some(id)) if !id.is_empty() => {
                EnrollmentId::parse(id).ok()
            }
            (Some("enrollments"), None | Some("")) if req.method() == hyper::Method::POST => {
                match self.keyed_enrollment(req) {
                    Some(id) => Some(id),
                    // A new enrollment is made in a partition of the copy that takes it.
                    None if ownership.owns_any() => return Target::Local,
                    None => return Target::AnyOwner,
                }
            }
            _ => None,
        };
        match id {
            Some(id) if ownership.route(id) != Route::Local => {
                Target::Partition(ownership.partition_of(id))
            }
            // Not about one enrollment (or not a valid id: the routes say so).
            _ => Target::Local,
        }
    }

    /// The id a keyed `POST /enrollments` names its enrollment with (see
    /// [`super::idempotency`]), computed as the route does, from the caller and the key.
    fn keyed_enrollment(&self, req: &Request<Body>) -> Option<EnrollmentId> {
        let key = req.headers().get("idempotency-key")?.to_str().ok()?;
        let token = req
            .headers()
            .get(hyper::header::AUTHORIZATION)?
            .to_str()
            .ok();
        let who = self.api.config.auth.authenticate(token).ok()?;
        let idem = Idem::new("POST", req.uri().path(), Some(key.to_owned()))
            .ok()?
            .scoped_to(&who.label());
        Some(EnrollmentId::for_request(&idem.store_key()?))
    }

    /// Where `target` is handled now, waiting for an owner while there is none.
    async fn owner(&self, target: &Target, avoid: Option<&str>) -> Option<String> {
        let ownership = self.ownership();
        let mut changes = ownership.watch();
        let lease = self
            .api
            .engine
            .config()
            .cluster
            .as_ref()
            .map_or(Duration::from_secs(10), |c| c.lease);
        let deadline = tokio::time::Instant::now() + owner_wait(lease).max(Duration::from_secs(2));
        loop {
            let found = match target {
                Target::Partition(p) => match ownership.route_partition(*p) {
                    Route::Local => Some(None),
                    Route::Remote(address) if Some(address.as_str()) != avoid => {
                        Some(Some(address))
                    }
                    _ => None,
                },
                Target::AnyOwner if ownership.owns_any() => Some(None),
                Target::AnyOwner => ownership.any_owner().map(Some),
                Target::Local => Some(None),
            };
            match found {
                // Local after all: `None` with the request handled here by the caller.
                Some(None) => return Some(String::new()),
                Some(Some(address)) => return Some(address),
                None => {}
            }
            if tokio::time::timeout_at(deadline, changes.changed())
                .await
                .is_err()
            {
                return None;
            }
        }
    }

    /// The owner's answer (`Err`), or the request back (`Ok`) when this copy turned out
    /// to own it after all.
    async fn forward(
        &self,
        req: Request<Body>,
        target: Target,
    ) -> Result<Request<Body>, Response<Body>> {
        let (parts, body) = req.into_parts();
        let body = collect(body, self.api.config.body_limit).await?;
        let secret = self.secret().await.map_err(problem)?.to_vec();
        let mut avoid: Option<String> = None;
        let mut failures = 0;
        for attempt in 0..3 {
            let Some(address) = self.owner(&target, avoid.as_deref()).await else {
                self.api
                    .forward_stats
                    .unowned
                    .fetch_add(1, Ordering::Relaxed);
                return Err(problem(ownership_moving()));
            };
            if address.is_empty() {
                // This copy took the partition meanwhile: its routes answer.
                return Ok(Request::from_parts(parts, Body::from(body)));
            }
            if attempt > 0 {
                self.api
                    .forward_stats
                    .retried
                    .fetch_add(1, Ordering::Relaxed);
            }
            self.api
                .forward_stats
                .forwarded
                .fetch_add(1, Ordering::Relaxed);
            match self.send(&parts, &body, &address, &secret).await {
                Ok(answer) if !moved_on(&answer) => return Err(answer.into_response()),
                Ok(_) => {
                    tracing::debug!(%address, "the owner moved on; asking the new one");
                    avoid = Some(address);
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(%address, error = %e, "the owner did not answer; asking again");
                    if failures == 1 {
                        // Perhaps only the connection: the same owner once more.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        avoid = None;
                    } else {
                        // It is gone: wait for its lease to pass to another copy.
                        avoid = Some(address);
                    }
                }
            }
        }
        Err(problem(ownership_moving()))
    }

    async fn send(
        &self,
        parts: &hyper::http::request::Parts,
        body: &Bytes,
        address: &str,
        secret: &[u8],
    ) -> Result<Answer, hyper::Error> {
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let uri: Uri = match format!("http://{address}{path}").parse() {
            Ok(uri) => uri,
            Err(_) => return Ok(Answer::Refused),
        };
        let mut out = Request::builder().method(parts.method.clone()).uri(uri);
        for (name, value) in &parts.headers {
            if !HOP_BY_HOP.contains(&name.as_str()) && name.as_str() != FORWARDED {
                out = out.header(name, value);
            }
        }
        let me = self
            .ownership()
            .me()
            .map(|m| m.id.clone())
            .unwrap_or_default();
        let mark = sign(secret, &me, parts.method.as_str(), path, unix_now());
        let Ok(request) = out.header(FORWARDED, mark).body(Body::from(body.clone())) else {
            return Ok(Answer::Refused);
        };
        let response = self.client.request(request).await?;
        if response.status() != StatusCode::SERVICE_UNAVAILABLE {
            return Ok(Answer::Passed(response));
        }
        // A 503 is small: read it to tell "not the owner any more" from the others.
        let (head, body) = response.into_parts();
        let bytes = hyper::body::to_bytes(body).await?;
        Ok(Answer::Unavailable(head, bytes))
    }
}

/// What the owner answered.
enum Answer {
    Passed(Response<Body>),
    Unavailable(hyper::http::response::Parts, Bytes),
    /// The request could not be built for that address.
    Refused,
}

impl Answer {
    fn into_response(self) -> Response<Body> {
        match self {
            Answer::Passed(r) => r,
            Answer::Unavailable(head, body) => Response::from_parts(head, Body::from(body)),
            Answer::Refused => problem(ownership_moving()),
        }
    }
}

/// Whether the owner said the enrollment is no longer its own (nothing was done there).
fn moved_on(answer: &Answer) -> bool {
    match answer {
        Answer::Unavailable(_, body) => {
            let needle = format!("/{OWNERSHIP_MOVING}\"");
            body.windows(needle.len()).any(|w| w == needle.as_bytes())
        }
        Answer::Refused => true,
        Answer::Passed(_) => false,
    }
}

fn path_of(req: &Request<Body>) -> &str {
    req.uri().path_and_query().map_or("/", |p| p.as_str())
}

fn problem(p: Problem) -> Response<Body> {
    p.into_response()
}

/// The request body, whole (it is sent again on a retry), up to `limit` bytes.
async fn collect(mut body: Body, limit: u64) -> Result<Bytes, Response<Body>> {
    let too_large = || {
        problem(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Payload too large",
            format!("the request body is larger than {limit} bytes"),
        ))
    };
    if body.size_hint().lower() > limit {
        return Err(too_large());
    }
    let mut out = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(|e| {
            problem(Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed-body",
                "Malformed body",
                format!("the request body could not be read: {e}"),
            ))
        })?;
        if (out.len() + chunk.len()) as u64 > limit {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn mac(secret: &[u8], member: &str, method: &str, path: &str, time: u64) -> Hmac<Sha256> {
    // Any key length is accepted by HMAC; the error cannot happen.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => Hmac::<Sha256>::new_from_slice(b"-").unwrap_or_else(|_| unreachable!()),
    };
    for part in [member, method, path, &time.to_string()] {
        mac.update(part.as_bytes());
        mac.update(b"\n");
    }
    mac
}

/// The [`FORWARDED`] header for a request sent by `member`.
pub fn sign(secret: &[u8], member: &str, method: &str, path: &str, time: u64) -> String {
    let tag = mac(secret, member, method, path, time)
        .finalize()
        .into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("{member};{time};{hex}")
}

/// Whether `mark` is a [`FORWARDED`] header a copy signed for this request, recently.
pub fn verify(secret: &[u8], mark: &str, method: &str, path: &str) -> bool {
    let mut parts = mark.rsplitn(3, ';');
    let (Some(hex), Some(time), Some(member)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Ok(time) = time.parse::<u64>() else {
        return false;
    };
    if unix_now().abs_diff(time) > SIGNATURE_WINDOW_SECS || hex.len() != 64 {
        return false;
    }
    let Some(tag) = (0..32)
        .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()
    else {
        return false;
    };
    // Constant-time comparison.
    mac(secret, member, method, path, time)
        .verify_slice(&tag)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_mark_verifies_for_its_request_only() {
        let secret = b"a secret the copies share";
        let now = unix_now();
        let mark = sign(secret, "copy-1", "GET", "/enrollments/x", now);
        assert!(verify(secret, &mark, "GET", "/enrollments/x"));
        assert!(!verify(secret, &mark, "POST", "/enrollments/x"));
        assert!(!verify(secret, &mark, "GET", "/enrollments/y"));
        assert!(!verify(b"another secret", &mark, "GET", "/enrollments/x"));
        let old = sign(secret, "copy-1", "GET", "/enrollments/x", now - 3600);
        assert!(!verify(secret, &old, "GET", "/enrollments/x"));
        assert!(!verify(secret, "copy-1;1;zz", "GET", "/enrollments/x"));
        assert!(!verify(secret, "", "GET", "/"));
    }
}
