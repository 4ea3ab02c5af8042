//! The front door: what every request goes through before the routes, in this order.
//!
//! 1. A request target over [`HttpConfig::uri_limit`] is 414 and header fields over
//!    [`HttpConfig::header_limit`] are 431, problem documents naming the size (hyper's own
//!    limits lie far above and answer with empty bodies). Such a request is charged to its
//!    address's rate-limit bucket, unread: it is too large to look into.
//! 2. `/livez`, `/readyz` and `/metrics` go straight to the routes: probes and scrapes are
//!    never rate-limited.
//! 3. A request another copy forwarded (its signed `ezenroll-forwarded` header checks out)
//!    was charged there and is handled here as it is.
//! 4. Anything else takes one request from its caller's bucket ([`super::rate_limit`]):
//!    429 `rate-limited` with `Retry-After` when empty.
//! 5. Then it is sent on to the copy owning its enrollment ([`super::forward`]) or
//!    answered by the routes here ([`local`]).

use super::context::{Api, HttpConfig};
use super::errors::{Problem, headers_too_large, rate_limited, uri_too_long};
use super::forward::{Forwarder, Mark};
use super::rate_limit::{Caller, Limited};
use hyper::{Body, Request, Response};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;
use tower_service::Service;

/// Where a request goes from the door.
pub enum Door {
    /// Answered already: refused, or by the copy it was sent on to.
    Answered(Response<Body>),
    /// To the routes here ([`local`]).
    Local(Request<Body>),
}

/// Takes one request that arrived from `peer` through steps 1 to 5. The routes are not
/// run here but by the caller ([`local`]): their future is large, and each level of
/// `async fn` around it would copy it once more per request.
pub async fn admit(forwarder: &Forwarder, api: &Api, peer: SocketAddr, req: Request<Body>) -> Door {
    let limiter = &api.rate_limiter;
    if let Some(problem) = oversized(&req, &api.config) {
        let problem = match limiter.check(Caller::address(peer.ip())) {
            Ok(()) => problem,
            Err(limited) => too_many(api, Caller::address(peer.ip()).describe(), limited),
        };
        return Door::Answered(refuse(api, &req, problem));
    }
    if is_probe(req.uri().path()) {
        return Door::Local(req);
    }
    let mark = forwarder.mark(&req).await;
    if !matches!(mark, Mark::Verified) && !limiter.limit().is_off() {
        let caller = caller(&req, peer, &api.config);
        let who = caller.describe();
        if let Err(limited) = limiter.check(caller) {
            return Door::Answered(refuse(api, &req, too_many(api, who, limited)));
        }
    }
    match mark {
        Mark::Refused(answer) => Door::Answered(answer),
        Mark::Verified => Door::Local(req),
        Mark::None => match forwarder.route(req).await {
            Ok(req) => Door::Local(req),
            Err(answer) => Door::Answered(answer),
        },
    }
}

/// Runs a request through the routes: `HEAD` as the `GET` it stands for (hyper sends
/// the headers only), and a 405 with the `Allow` header its path calls for.
pub async fn local<S>(routes: &mut S, mut req: Request<Body>) -> Response<Body>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
{
    if req.method() == hyper::Method::HEAD {
        *req.method_mut() = hyper::Method::GET;
    }
    // A reference-counted clone, not a copy: every request pays for it, quotes too.
    let uri = req.uri().clone();
    let mut response = match routes.call(req).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    if response.status() == hyper::StatusCode::METHOD_NOT_ALLOWED
        && let Some(allow) = super::allow::allow(uri.path())
        && let Ok(value) = hyper::header::HeaderValue::from_str(&allow)
    {
        response.headers_mut().insert(hyper::header::ALLOW, value);
    }
    response
}

/// The paths that are never rate-limited: what load balancers and Prometheus poll.
fn is_probe(path: &str) -> bool {
    matches!(path, "/livez" | "/readyz" | "/metrics")
}

/// Whose bucket pays: the principal of a token that verifies, else the address. A token
/// that does not verify is charged to the address it came from, never to the subject it
/// claims.
fn caller(req: &Request<Body>, peer: SocketAddr, config: &HttpConfig) -> Caller {
    let verified = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| config.auth.authenticate(Some(value)).ok());
    match verified {
        Some(principal) => Caller::Token(principal),
        None => Caller::address(peer.ip()),
    }
}

/// 414 or 431 for a request over the service's own limits.
fn oversized(req: &Request<Body>, config: &HttpConfig) -> Option<Problem> {
    let uri = req.uri();
    let target = uri.path_and_query().map_or(0, |p| p.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.scheme_str().map_or(0, |s| s.len() + "://".len());
    if target > config.uri_limit {
        return Some(uri_too_long(target, config.uri_limit));
    }
    let mut total = 0;
    let mut largest = ("", 0);
    for (name, value) in req.headers() {
        // As sent: `name: value` and CRLF.
        let size = name.as_str().len() + value.len() + 4;
        total += size;
        if size > largest.1 {
            largest = (name.as_str(), size);
        }
    }
    (total > config.header_limit).then(|| headers_too_large(total, config.header_limit, largest))
}

fn too_many(api: &Api, who: &str, limited: Limited) -> Problem {
    let limit = api.rate_limiter.limit();
    rate_limited(
        limit.per_second,
        limit.burst,
        who,
        limited.retry_after_secs(),
    )
}

/// A problem answered at the door, counted in the request metrics as the routes' are (in
/// no time: nothing was done for it, and no clock is read on the way in for it).
fn refuse(api: &Api, req: &Request<Body>, problem: Problem) -> Response<Body> {
    let status = problem.status;
    let response = problem.into_response();
    api.http_metrics
        .record(req.method(), req.uri().path(), status, Duration::ZERO);
    // Debug, not info: a caller flooding the server must not flood the log as well.
    tracing::debug!(
        target: "ezenroll::http",
        method = %req.method(),
        status,
        "refused at the front door"
    );
    response
}
