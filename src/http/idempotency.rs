//! `Idempotency-Key` on POST and PUT: the first response (status, body and the headers
//! that matter) is kept in the store's [`IdempotencyStore`](crate::store::IdempotencyStore)
//! under the key scoped by method, path and caller, and a repeat gets it back without anything
//! being done twice. Responses of 5xx are not kept: they are transient (payment busy,
//! store down) and a retry with the same key should try again.
//!
//! The key is claimed in the store before the work is done, so two copies of the server
//! on one store never both do it: a request whose key another process is working on gets
//! 409 `idempotency-key-in-use` with `Retry-After` (the IETF Idempotency-Key draft's
//! answer), and a retry then gets the first answer. A claim whose holder died runs out
//! after [`CLAIM_LEASE`]. In one process, same-key requests are serialized by a lock per
//! key, so the second simply waits for the first one's answer.
//!
//! A repeat must be the same request: the kept answer carries a digest of the first
//! request's body, and the same key with another body is 422 `idempotency-key-reused`
//! rather than someone else's answer replayed.
//!
//! A claim names the copy holding it. A copy that dies after the work but before keeping
//! its answer leaves only the claim: a retry takes it over once that copy is gone from the
//! live copies (its heartbeat ran out), or after [`CLAIM_LEASE`] in a single process, and
//! does the work again. The events a command appends name the request that sent it
//! ([`crate::actors::request`]), so a step the first try already took is answered from
//! them ("outcome known, here it is": the enrollment as it is now, with
//! `Idempotent-Replayed: recovered`) instead of being refused. `POST /enrollments` saves
//! its plan under an id derived from the key
//! ([`EnrollmentId::for_request`](crate::domain::enrollment::EnrollmentId::for_request)),
//! so its retry finds the enrollment the first try saved. Without a key, a transition
//! repeated is refused by the state machine (409 with the current status).

use super::context::Api;
use super::errors::{ApiError, Problem};
use crate::actors::EngineError;
use crate::store::IdempotencyClaim;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::Arc;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

/// The resource a path names, spelled one way: ids in their lowercase hyphenated form
/// and no trailing slash, so the same key on `/enrollments/{ID}/plan`, the id in capitals,
/// without dashes or with a `/` at the end, is one request, not four.
pub fn canonical_path(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".to_owned();
    }
    trimmed
        .split('/')
        .map(|segment| match uuid::Uuid::try_parse(segment) {
            Ok(id) => id.hyphenated().to_string(),
            Err(_) => segment.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// How long a claimed key stays claimed if its answer never comes (the process died).
/// Longer than any request takes: a payment waits for the provider at most this long.
pub const CLAIM_LEASE: std::time::Duration = std::time::Duration::from_secs(120);

/// The scope and key of one write request.
#[derive(Debug, Clone)]
pub struct Idem {
    scope: String,
    key: Option<String>,
    /// SHA-256 of the request body, hex; `None` for requests without one.
    body_digest: Option<String>,
}

impl Idem {
    /// `key` is the raw header; it must be 1 to 255 visible ASCII characters.
    pub fn new(method: &str, path: &str, key: Option<String>) -> Result<Idem, Box<Problem>> {
        if let Some(k) = &key
            && (k.is_empty() || k.len() > 255 || !k.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(Box::new(Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed-header",
                "Malformed header",
                "Idempotency-Key must be 1 to 255 visible ASCII characters".to_owned(),
            )));
        }
        Ok(Idem {
            scope: format!("http:{method}:{}", canonical_path(path)),
            key,
            body_digest: None,
        })
    }

    /// The request's body, which a repeat with the same key must have too.
    pub fn with_body(mut self, body: &[u8]) -> Idem {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(body);
        self.body_digest = Some(digest.iter().map(|b| format!("{b:02x}")).collect());
        self
    }

    /// The same key scoped to one caller, so nobody replays somebody else's response.
    pub fn scoped_to(mut self, caller: &str) -> Idem {
        self.scope = format!("{}:{caller}", self.scope);
        self
    }

    /// The key with its scope (method, path, caller), as the store keeps it; `None` without
    /// an `Idempotency-Key`.
    pub fn store_key(&self) -> Option<String> {
        self.key.as_ref().map(|key| format!("{}:{key}", self.scope))
    }

    /// Runs `work` unless a response for this key exists; keeps its response if it is
    /// not a server error.
    pub async fn run<F, Fut>(self, api: &Api, work: F) -> Response
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Response, ApiError>>,
    {
        let Some(store_key) = self.store_key() else {
            return work().await.unwrap_or_else(ApiError::into_response);
        };
        let lock = Arc::clone(
            api.idempotency_locks
                .entry(store_key.clone())
                .or_default()
                .value(),
        );
        let response = {
            let _one_at_a_time = lock.lock_owned().await;
            run_once(api, &store_key, self.body_digest, work).await
        };
        api.idempotency_locks
            .remove_if(&store_key, |_, l| Arc::strong_count(l) == 1);
        response
    }
}

async fn run_once<F, Fut>(
    api: &Api,
    store_key: &str,
    body_digest: Option<String>,
    work: F,
) -> Response
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Response, ApiError>>,
{
    let store = api.engine.store();
    let me = holder_id(api);
    match store.idempotent_claim(store_key, CLAIM_LEASE, &me).await {
        Ok(IdempotencyClaim::Done(bytes)) => match serde_json::from_slice::<Kept>(&bytes) {
            Ok(kept) if kept.request_digest.is_some() && kept.request_digest != body_digest => {
                return Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency-key-reused",
                    "Idempotency key reused",
                    "this Idempotency-Key was used for a request with another body; a new \
                     request needs a new key"
                        .to_owned(),
                )
                .into_response();
            }
            Ok(kept) => return kept.into_response(),
            Err(e) => {
                return super::errors::internal(&format!(
                    "the kept response of {store_key} does not decode: {e}"
                ))
                .into_response();
            }
        },
        Ok(IdempotencyClaim::InProgress { holder })
            if holder_died(api, &holder, &me).await
                && store
                    .idempotent_take_over(store_key, &holder, &me, CLAIM_LEASE)
                    .await
                    .unwrap_or(false) =>
        {
            // Its copy died with the work done or not: do it here. The events a first
            // try made name this request, so a step already taken answers from them.
            tracing::info!(key = store_key, %holder, "took over the claim of a copy that died");
        }
        Ok(IdempotencyClaim::InProgress { .. }) => {
            let mut problem = Problem::new(
                StatusCode::CONFLICT,
                "idempotency-key-in-use",
                "Idempotency key in use",
                "a request with this Idempotency-Key is being processed; retry to get its answer"
                    .to_owned(),
            );
            problem.retry_after = Some(1);
            return problem.into_response();
        }
        Ok(IdempotencyClaim::Claimed) => {}
        Err(e) => return ApiError::Engine(EngineError::Store(e)).into_response(),
    }
    let tag = crate::actors::request::tag_of(store_key);
    let response = crate::actors::request::scope(Some(tag), work())
        .await
        .unwrap_or_else(ApiError::into_response);
    if response.status().is_server_error() {
        // Transient (payment busy, store down): a retry with the key should try again.
        if let Err(e) = store.idempotent_release(store_key).await {
            tracing::warn!(key = store_key, error = %e, "could not release an idempotency claim");
        }
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = match warp::hyper::body::to_bytes(body).await {
        Ok(b) => b,
        Err(e) => return super::errors::internal(&e).into_response(),
    };
    let kept = Kept {
        status: parts.status.as_u16(),
        content_type: header_text(&parts.headers, header::CONTENT_TYPE),
        location: header_text(&parts.headers, header::LOCATION),
        body: String::from_utf8_lossy(&bytes).into_owned(),
        request_digest: body_digest,
    };
    match serde_json::to_vec(&kept) {
        Ok(encoded) => {
            if let Err(e) = store
                .idempotent_put(store_key, &encoded, api.config.idempotency_ttl)
                .await
            {
                // The work is done; failing the request now would invite a second try
                // that does it again. Answer it and say so in the log.
                tracing::warn!(key = store_key, error = %e, "could not keep the idempotent response");
            }
        }
        Err(e) => tracing::warn!(key = store_key, error = %e, "could not encode the response"),
    }
    warp::http::Response::from_parts(parts, bytes.into())
}

/// Who claims keys here: this copy's member id, or its instance name in a single process.
fn holder_id(api: &Api) -> String {
    match api.engine.ownership().me() {
        Some(me) => me.id.clone(),
        None => api.engine.config().instance.clone(),
    }
}

/// Whether the copy holding a claim is gone: not this one and not among the live copies
/// on the store, read fresh (a copy that has just joined must not look dead). Only copies
/// sharing a store take part; a claim of an older build names nobody and just runs out.
async fn holder_died(api: &Api, holder: &str, me: &str) -> bool {
    if holder.is_empty() || holder == me || !api.engine.ownership().is_clustered() {
        return false;
    }
    match api.engine.store().members().await {
        Ok(live) => !live.iter().any(|m| m.id == holder),
        Err(_) => false,
    }
}

fn header_text(headers: &warp::http::HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A response as it is kept.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Kept {
    status: u16,
    content_type: Option<String>,
    location: Option<String>,
    body: String,
    /// The digest of the request body it answered; absent in answers kept without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request_digest: Option<String>,
}

impl Kept {
    fn into_response(self) -> Response {
        let mut response = Response::new(self.body.into());
        *response.status_mut() = StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK);
        let headers = response.headers_mut();
        for (name, value) in [
            (header::CONTENT_TYPE, self.content_type),
            (header::LOCATION, self.location),
        ] {
            if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
                headers.insert(name, v);
            }
        }
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::canonical_path;

    #[test]
    fn one_resource_has_one_spelling() {
        let id = "01900000-0000-7000-8000-00000000abcd";
        let canonical = format!("/enrollments/{id}/plan");
        for spelled in [
            format!("/enrollments/{}/plan", id.to_uppercase()),
            format!("/enrollments/{}/plan", id.replace('-', "")),
            format!("/enrollments/{id}/plan/"),
            canonical.clone(),
        ] {
            assert_eq!(canonical_path(&spelled), canonical, "{spelled}");
        }
        assert_eq!(canonical_path("/customers/"), "/customers");
        assert_eq!(canonical_path("/"), "/");
        assert_eq!(canonical_path("/products/EZ-TERM"), "/products/EZ-TERM");
    }
}
