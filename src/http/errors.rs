//! Every failure leaves the gateway as `application/problem+json` (RFC 9457):
//! `{type, title, status, detail}` plus, where they help a client, `violations`
//! (underwriting), `currentStatus` (illegal transitions), `path` (the field a malformed
//! body got wrong) or `reasons` (a refused product definition). `type` URIs are stable;
//! clients switch on them, never on `detail`.
//!
//! Handlers return [`ApiError`]; warp's own rejections (no route, wrong method, a body
//! over the limit) are mapped by the one [`recover`].

use crate::actors::EngineError;
use crate::domain::catalog::CatalogError;
use crate::domain::enrollment::{DomainError, PaymentFailure, Status};
use crate::domain::premium::Violation;
use crate::store::StoreError;
use serde::Serialize;
use std::convert::Infallible;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

const TYPE_BASE: &str = "https://ezenroll.dev/problems/";

/// A problem document. `kind` is the last segment of its `type` URI.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub violations: Option<Vec<Violation>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_status: Option<Status>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// The place in the request body a malformed-input problem is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasons: Option<Vec<String>>,
    /// Seconds to wait before retrying; also sent as the `Retry-After` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u32>,
}

impl Problem {
    pub fn new(status: StatusCode, kind: &str, title: &'static str, detail: String) -> Problem {
        Problem {
            type_uri: format!("{TYPE_BASE}{kind}"),
            title,
            status: status.as_u16(),
            detail,
            violations: None,
            current_status: None,
            version: None,
            path: None,
            reasons: None,
            retry_after: None,
        }
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self).unwrap_or_else(|_| {
            // A problem is plain data; this branch exists only so nothing can panic.
            br#"{"type":"https://ezenroll.dev/problems/internal","title":"Internal error","status":500,"detail":"the error could not be described"}"#.to_vec()
        });
        let mut response = Response::new(body.into());
        *response.status_mut() = self.status_code();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED.as_u16() {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"ezenroll\""),
            );
        }
        response
    }
}

/// Why a request failed, as handlers report it.
#[derive(Debug, Clone)]
pub enum ApiError {
    /// The body is not JSON of the expected shape; `path` names the field.
    BadRequest {
        path: String,
        message: String,
    },
    /// A query string that does not parse.
    BadQuery(String),
    /// A malformed or unknown path parameter (an id that names nothing).
    NotFound(String),
    /// A product code that exists already (`POST /products`).
    Conflict(String),
    /// A request that is well formed but cannot be processed as sent.
    Unprocessable(String),
    Engine(EngineError),
    /// A problem already built.
    Problem(Box<Problem>),
}

impl warp::reject::Reject for ApiError {}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        ApiError::Engine(e)
    }
}

impl From<Problem> for ApiError {
    fn from(p: Problem) -> Self {
        ApiError::Problem(Box::new(p))
    }
}

impl ApiError {
    pub fn into_problem(self) -> Problem {
        match self {
            ApiError::BadRequest { path, message } => {
                let detail = if path.is_empty() || path == "." {
                    message
                } else {
                    format!("{path}: {message}")
                };
                let mut p = Problem::new(
                    StatusCode::BAD_REQUEST,
                    "malformed-request",
                    "Malformed request",
                    detail,
                );
                p.path = Some(path).filter(|p| !p.is_empty() && p != ".");
                p
            }
            ApiError::BadQuery(detail) => Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed-query",
                "Malformed query string",
                detail,
            ),
            ApiError::NotFound(detail) => {
                Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
            }
            ApiError::Conflict(detail) => {
                Problem::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
            }
            ApiError::Unprocessable(detail) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unprocessable",
                "Unprocessable request",
                detail,
            ),
            ApiError::Engine(e) => engine_problem(e),
            ApiError::Problem(p) => *p,
        }
    }

    pub fn into_response(self) -> Response {
        self.into_problem().into_response()
    }
}

/// Business refusals keep their meaning; infrastructure failures say as little as they
/// must (the details go to the log, not to the client).
fn engine_problem(e: EngineError) -> Problem {
    match e {
        EngineError::NotFound(what) => Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            format!("no such {what}"),
        ),
        // Well formed, and only wrong against facts the server holds (today's date).
        EngineError::Invalid(detail) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
            "Invalid request",
            detail,
        ),
        EngineError::Domain(d) => domain_problem(d),
        EngineError::Underwriting(refusal) => {
            let mut p = Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "underwriting",
                "Underwriting refused the plan",
                refusal.to_string(),
            );
            p.violations = Some(refusal.violations);
            p
        }
        e @ EngineError::LimitExceeded { .. } => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "limit-exceeded",
            "Cumulative limit exceeded",
            e.to_string(),
        ),
        EngineError::Payment {
            failure,
            version,
            state,
        } => {
            let mut p = match failure {
                PaymentFailure::Declined { reason } => Problem::new(
                    StatusCode::PAYMENT_REQUIRED,
                    "payment-declined",
                    "Payment declined",
                    format!("the first premium was declined: {reason}"),
                ),
                PaymentFailure::Unavailable {
                    reason,
                    retry_after_secs,
                } => {
                    let mut p = Problem::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "payment-unavailable",
                        "Payment unavailable",
                        format!(
                            "payment is unavailable ({reason}); retry the payment after {retry_after_secs} s"
                        ),
                    );
                    p.retry_after = Some(retry_after_secs.max(1));
                    p
                }
            };
            p.current_status = Some(state.status);
            p.version = Some(version);
            p
        }
        EngineError::RefundPending { attempt, retry_at } => {
            let mut p = Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "refund-pending",
                "Refund pending",
                format!(
                    "the refund did not go through yet (attempt {attempt}); it is retried at {retry_at}"
                ),
            );
            p.retry_after = Some(1);
            p
        }
        EngineError::Catalog(CatalogError::Invalid(invalid)) => {
            let mut p = Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-product",
                "Invalid product definition",
                invalid.reasons.join("; "),
            );
            p.reasons = Some(invalid.reasons);
            p
        }
        EngineError::Catalog(e @ CatalogError::VersionConflict { .. }) => Problem::new(
            StatusCode::CONFLICT,
            "version-conflict",
            "Version conflict",
            e.to_string(),
        ),
        EngineError::Store(StoreError::Unavailable(reason)) => {
            tracing::warn!(%reason, "store unavailable");
            let mut p = Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store-unavailable",
                "Store unavailable",
                "the store is unavailable; try again shortly".to_owned(),
            );
            p.retry_after = Some(1);
            p
        }
        EngineError::Store(StoreError::Conflict { .. }) => Problem::new(
            StatusCode::CONFLICT,
            "concurrent-update",
            "Concurrent update",
            "the resource was changed concurrently; read it again and retry".to_owned(),
        ),
        EngineError::Stopping => shutting_down(),
        EngineError::NotOwner { .. } | EngineError::Store(StoreError::Fenced { .. }) => {
            ownership_moving()
        }
        e @ (EngineError::Store(_) | EngineError::Internal(_)) => internal(&e),
    }
}

fn domain_problem(d: DomainError) -> Problem {
    let detail = d.to_string();
    let (status, kind, title) = match &d {
        DomainError::IllegalTransition { .. } => (
            StatusCode::CONFLICT,
            "illegal-transition",
            "Illegal transition",
        ),
        DomainError::NotStarted { .. } => (StatusCode::NOT_FOUND, "not-found", "Not found"),
        DomainError::AlreadyStarted => (StatusCode::CONFLICT, "conflict", "Conflict"),
        DomainError::StaleDocument { .. } => {
            (StatusCode::CONFLICT, "stale-document", "Stale document")
        }
        DomainError::NotExpired { .. } => (StatusCode::CONFLICT, "not-expired", "Not expired"),
        DomainError::PlanExpired { .. } => (StatusCode::CONFLICT, "plan-expired", "Plan expired"),
        DomainError::WithdrawalPeriodOver { .. } => (
            StatusCode::CONFLICT,
            "withdrawal-period-over",
            "Withdrawal period over",
        ),
        DomainError::AmountMismatch { .. } => {
            (StatusCode::CONFLICT, "amount-mismatch", "Amount mismatch")
        }
        DomainError::WrongCustomer { .. } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "wrong-customer",
            "Wrong customer",
        ),
    };
    let mut p = Problem::new(status, kind, title, detail);
    p.current_status = d.status();
    p
}

/// 429: the caller is over its rate limit on this copy; `retry_after_secs` is when its next
/// request is accepted.
pub fn rate_limited(per_second: u32, burst: u32, who: &str, retry_after_secs: u32) -> Problem {
    let mut p = Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate-limited",
        "Too many requests",
        format!(
            "{who} is over this server's rate limit of {per_second} requests/s per caller \
             (bursts of up to {burst}); retry after {retry_after_secs} s"
        ),
    );
    p.retry_after = Some(retry_after_secs.max(1));
    p
}

/// 414: the request target (path and query) is longer than the server reads.
pub fn uri_too_long(length: usize, limit: usize) -> Problem {
    Problem::new(
        StatusCode::URI_TOO_LONG,
        "uri-too-long",
        "URI too long",
        format!("the request target is {length} bytes long; at most {limit} are accepted"),
    )
}

/// 431: the header fields add up to more than the server reads; `largest` names the
/// biggest one, the likely culprit.
pub fn headers_too_large(total: usize, limit: usize, largest: (&str, usize)) -> Problem {
    let (name, size) = largest;
    Problem::new(
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "request-header-fields-too-large",
        "Request header fields too large",
        format!(
            "the request's header fields take {total} bytes; at most {limit} are accepted \
             (the largest is {name}, {size} bytes)"
        ),
    )
}

/// 503: every connection this copy accepts is open and busy.
pub fn too_many_connections(max: usize) -> Problem {
    let mut p = Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "too-many-connections",
        "Too many connections",
        format!("this server has its {max} connections open and busy; retry shortly"),
    );
    p.retry_after = Some(1);
    p
}

/// 503: the server is stopping; another copy (or this one, restarted) will answer.
pub fn shutting_down() -> Problem {
    let mut p = Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "shutting-down",
        "Shutting down",
        "the server is shutting down; retry shortly".to_owned(),
    );
    p.retry_after = Some(1);
    p
}

/// The enrollment's owner changed while the request was on its way (copies handing
/// partitions over): nothing was done, and a retry reaches the new owner.
pub fn ownership_moving() -> Problem {
    let mut p = Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        OWNERSHIP_MOVING,
        "Ownership moving",
        "the enrollment is moving to another copy of the server; nothing was done, retry shortly"
            .to_owned(),
    );
    p.retry_after = Some(1);
    p
}

/// The problem type of [`ownership_moving`]: a copy that forwarded the request retries
/// it once on the new owner when the answer is this.
pub const OWNERSHIP_MOVING: &str = "ownership-moving";

/// A 500 that names nothing internal; the cause is logged with an id the client sees.
pub fn internal(cause: &dyn std::fmt::Display) -> Problem {
    let incident = uuid::Uuid::new_v4().simple().to_string();
    tracing::error!(%incident, error = %cause, "internal error");
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "Internal error",
        format!("the request could not be completed (incident {incident})"),
    )
}

/// The one place rejections become responses.
pub async fn recover(rejection: warp::Rejection) -> Result<Response, Infallible> {
    use warp::reject;
    let problem = if rejection.is_not_found() {
        Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            "no such resource".to_owned(),
        )
    } else if let Some(e) = rejection.find::<ApiError>() {
        // Rejections are shared, so the error is rebuilt from what it says.
        e.clone().into_problem()
    } else if rejection.find::<reject::PayloadTooLarge>().is_some() {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Payload too large",
            "the request body is larger than the configured limit".to_owned(),
        )
    } else if let Some(e) = rejection.find::<reject::InvalidHeader>() {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed-header",
            "Malformed header",
            format!("the {} header is not valid", e.name()),
        )
    } else if let Some(e) = rejection.find::<reject::InvalidQuery>() {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed-query",
            "Malformed query string",
            e.to_string(),
        )
    } else if rejection.find::<reject::UnsupportedMediaType>().is_some() {
        Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "send application/json".to_owned(),
        )
    // Last: the other routes of a path refuse its other methods, and the route whose
    // method matched has the better answer (its header or query is malformed).
    } else if rejection.find::<reject::MethodNotAllowed>().is_some() {
        Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not allowed",
            "the resource does not support this method".to_owned(),
        )
    } else {
        internal(&format!("unhandled rejection: {rejection:?}"))
    };
    Ok(problem.into_response())
}
