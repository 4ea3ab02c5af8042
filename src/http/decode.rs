//! Every request's input decoded in one place: bodies into domain inputs, query strings
//! and path segments into typed parameters. The handlers call these and read no raw
//! input themselves, so the property tests (tests/suite/decoders.rs) check exactly what
//! the routes run: whatever arrives is a value or an [`ApiError`] that is a 4xx.

use super::errors::{ApiError, Problem};
use super::models::{
    self, AlarmQuery, CustomerBody, EnrollmentListQuery, EnrollmentQuery, EventStreamQuery,
    MyPageQuery, PlanBody, PlanInput, ProductQuery, ProposalBody, parse_body, parse_query,
};
use crate::api::{InputError, InputErrorKind, QuoteService};
use crate::domain::customer::NewCustomer;
use crate::domain::enrollment::{CustomerNo, EnrollmentId, PaymentMethod, Status};
use crate::domain::product::{ProductCode, ProductSpec};
use crate::domain::text::quoted;
use crate::store::ViewCursor;
use chrono::NaiveDate;
use std::time::Duration;
use warp::http::StatusCode;

// ---- bodies

/// `POST /customers`.
pub fn customer(body: &[u8]) -> Result<NewCustomer, ApiError> {
    parse_body::<CustomerBody>(body).map(NewCustomer::from)
}

/// `POST /enrollments` and `PUT /enrollments/{id}/plan`.
pub fn plan(body: &[u8]) -> Result<PlanInput, ApiError> {
    PlanInput::try_from(parse_body::<PlanBody>(body)?)
}

/// `POST /enrollments/{id}/proposal`.
pub fn proposal(body: &[u8]) -> Result<PaymentMethod, ApiError> {
    parse_body::<ProposalBody>(body).map(|p| p.payment_method)
}

/// `POST /products` and `PUT /products/{code}`: the definition as sent; whether it makes
/// sense is the catalog's to say (422 `invalid-product`).
pub fn product(body: &[u8]) -> Result<ProductSpec, ApiError> {
    parse_body(body)
}

/// `POST /quotes`: parses and prices one request or a burst, writing the answer to `out`.
pub fn quotes(
    service: &QuoteService,
    body: &[u8],
    today: NaiveDate,
    out: &mut Vec<u8>,
) -> Result<(), ApiError> {
    let text = std::str::from_utf8(body).map_err(|e| ApiError::BadRequest {
        path: String::new(),
        message: format!("the body is not UTF-8: {e}"),
    })?;
    service
        .quote_json_into(text, today, out)
        .map_err(ApiError::from)
}

impl From<InputError> for ApiError {
    fn from(e: InputError) -> ApiError {
        let kind = match e.kind {
            InputErrorKind::Malformed => {
                return ApiError::BadRequest {
                    path: e.path,
                    message: e.message,
                };
            }
            InputErrorKind::UnknownProduct => "unknown-product",
            InputErrorKind::InvalidProduct => "invalid-product",
        };
        let mut p = Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            kind,
            "Product cannot be priced",
            format!("{}: {}", e.path, e.message),
        );
        p.path = Some(e.path);
        p.into()
    }
}

// ---- path segments: an id that is not one names nothing (404, as an unknown one)

pub fn enrollment_id(segment: &str) -> Result<EnrollmentId, ApiError> {
    EnrollmentId::parse(segment).map_err(|_| no_such_enrollment())
}

pub fn customer_no(segment: &str) -> Result<CustomerNo, ApiError> {
    CustomerNo::parse(segment).map_err(|_| no_such_customer())
}

pub fn no_such_customer() -> ApiError {
    ApiError::NotFound("no such customer".to_owned())
}

pub fn no_such_enrollment() -> ApiError {
    ApiError::NotFound("no such enrollment".to_owned())
}

// ---- query strings: a bad parameter is 400 naming it

/// Entries a list answers when the query names no `limit`.
pub const DEFAULT_LIST_LIMIT: usize = 100;
/// The most entries a list answers at once.
pub const MAX_LIST_LIMIT: usize = 1000;

/// `GET /products/{code}?version=N`.
pub fn product_version(raw: &str) -> Result<Option<u32>, ApiError> {
    parse_query::<ProductQuery>(raw).map(|q| q.version)
}

/// `GET /enrollments/{id}?waitWhileStatus=&waitSeconds=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongPoll {
    /// Wait while the enrollment is in this status; `None` answers at once.
    pub wait_while: Option<Status>,
    pub wait: Duration,
}

pub fn long_poll(raw: &str) -> Result<LongPoll, ApiError> {
    let q: EnrollmentQuery = parse_query(raw)?;
    let wait_while = models::parse_status_named("waitWhileStatus", q.wait_while_status.as_deref())?;
    let wait = match q.wait_seconds.as_deref() {
        None => Duration::from_secs(10),
        Some(text) => match text.parse::<u64>() {
            Ok(s) if s <= models::MAX_WAIT_SECONDS => Duration::from_secs(s),
            _ => {
                return Err(ApiError::BadQuery(format!(
                    "waitSeconds: {} is not a whole number of seconds from 0 to {}",
                    quoted(text),
                    models::MAX_WAIT_SECONDS
                )));
            }
        },
    };
    Ok(LongPoll { wait_while, wait })
}

/// `GET /enrollments?status=&customerNo=&productCode=&limit=&cursor=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentPage {
    pub customer_no: Option<CustomerNo>,
    pub status: Option<Status>,
    pub product_code: Option<ProductCode>,
    pub after: Option<ViewCursor>,
    pub limit: usize,
}

pub fn enrollment_page(raw: &str) -> Result<EnrollmentPage, ApiError> {
    let q: EnrollmentListQuery = parse_query(raw)?;
    let after = q
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<ViewCursor>().map_err(|e| {
                ApiError::BadQuery(format!("cursor: {e}; pass back a nextCursor as it came"))
            })
        })
        .transpose()?;
    Ok(EnrollmentPage {
        customer_no: models::parse_customer_no(q.customer_no.as_deref())?,
        status: models::parse_status(q.status.as_deref())?,
        product_code: q
            .product_code
            .as_deref()
            .map(|c| {
                ProductCode::parse(c).map_err(|e| ApiError::BadQuery(format!("productCode: {e}")))
            })
            .transpose()?,
        after,
        limit: limit(q.limit)?,
    })
}

/// `GET /mypage?customerNo=&status=&limit=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MyPage {
    pub customer_no: Option<CustomerNo>,
    pub status: Option<Status>,
    pub limit: usize,
}

pub fn mypage(raw: &str) -> Result<MyPage, ApiError> {
    let q: MyPageQuery = parse_query(raw)?;
    Ok(MyPage {
        customer_no: models::parse_customer_no(q.customer_no.as_deref())?,
        status: models::parse_status(q.status.as_deref())?,
        limit: limit(q.limit)?,
    })
}

/// `GET /alarms?customerNo=&limit=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alarms {
    pub customer_no: Option<CustomerNo>,
    pub limit: usize,
}

pub fn alarms(raw: &str) -> Result<Alarms, ApiError> {
    let q: AlarmQuery = parse_query(raw)?;
    Ok(Alarms {
        customer_no: models::parse_customer_no(q.customer_no.as_deref())?,
        limit: limit(q.limit)?,
    })
}

/// `GET /events/stream?customerNo=&enrollmentId=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventFilter {
    pub customer_no: Option<CustomerNo>,
    pub enrollment_id: Option<EnrollmentId>,
}

pub fn event_stream(raw: &str) -> Result<EventFilter, ApiError> {
    let q: EventStreamQuery = parse_query(raw)?;
    Ok(EventFilter {
        customer_no: models::parse_customer_no(q.customer_no.as_deref())?,
        // A parameter, not a path: one that is no id is a malformed query, not a 404.
        enrollment_id: q
            .enrollment_id
            .as_deref()
            .map(|t| {
                EnrollmentId::parse(t).map_err(|e| ApiError::BadQuery(format!("enrollmentId: {e}")))
            })
            .transpose()?,
    })
}

/// A list's `limit`: 1 to [`MAX_LIST_LIMIT`]. Refused outside, not bent into range, so a
/// client asking for 5,000 learns that it gets at most 1,000 a page.
fn limit(requested: Option<usize>) -> Result<usize, ApiError> {
    match requested {
        None => Ok(DEFAULT_LIST_LIMIT),
        Some(n @ 1..=MAX_LIST_LIMIT) => Ok(n),
        Some(n) => Err(ApiError::BadQuery(format!(
            "limit: {n} is out of range; a list answers 1 to {MAX_LIST_LIMIT} entries at a time"
        ))),
    }
}
