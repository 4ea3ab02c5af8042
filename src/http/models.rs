//! Request and response bodies (camelCase JSON, the same schemas as `ezenroll quote`).
//!
//! Request DTOs deny unknown fields and are parsed with `serde_path_to_error`, so a
//! malformed body is a 400 that names the field; they convert into domain inputs with
//! `TryFrom` here, at the edge, and nothing past this module sees raw input.

use super::errors::ApiError;
use crate::actors::PlanRequest;
use crate::api::json;
use crate::domain::customer::{BirthDate, CustomerName, Gender, MobilePhone, NewCustomer};
use crate::domain::enrollment::{CustomerNo, Enrollment, EnrollmentId, PaymentMethod, Status};
use crate::domain::money::Won;
use crate::domain::period::{CoveragePeriod, PaymentCycle, Years};
use crate::domain::premium::Quote;
use crate::domain::product::ProductCode;
use crate::store::MyPageView;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Parses a JSON body; a failure names the field it is about. Every struct in it must be
/// a JSON object, nested ones too ([`json`]): serde alone would take an array.
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let bad = |path: String, message: String| ApiError::BadRequest { path, message };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad(
            String::new(),
            "the body is empty; it must be a JSON object".to_owned(),
        ));
    }
    // Whole numbers written as `345.0` or `1e8` are read as the integers they are.
    let body = crate::api::whole_numbers::whole_numbers(body);
    let text = std::str::from_utf8(&body)
        .map_err(|e| bad(String::new(), format!("the body is not UTF-8: {e}")))?;
    json::from_str_with_path(text).map_err(|(path, message)| bad(path, message))
}

/// `POST /customers`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomerBody {
    pub name: CustomerName,
    pub birth_date: BirthDate,
    pub gender: Gender,
    pub mobile_phone: MobilePhone,
}

impl From<CustomerBody> for NewCustomer {
    fn from(b: CustomerBody) -> Self {
        NewCustomer {
            name: b.name,
            birth_date: b.birth_date,
            gender: b.gender,
            mobile_phone: b.mobile_phone,
        }
    }
}

/// `POST /enrollments` and `PUT /enrollments/{id}/plan`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlanBody {
    pub customer_no: CustomerNo,
    #[schema(value_type = ProductCode)]
    pub product_code: String,
    pub sum_insured: Won,
    pub coverage_period: CoveragePeriod,
    pub payment_period: Years,
    pub payment_cycle: PaymentCycle,
}

/// A plan request with a product code that is well formed; borrow it as a
/// [`PlanRequest`] for the engine.
#[derive(Debug)]
pub struct PlanInput {
    pub customer_no: CustomerNo,
    pub product_code: ProductCode,
    pub sum_insured: Won,
    pub coverage_period: CoveragePeriod,
    pub payment_period: Years,
    pub payment_cycle: PaymentCycle,
}

impl TryFrom<PlanBody> for PlanInput {
    type Error = ApiError;

    fn try_from(b: PlanBody) -> Result<Self, ApiError> {
        let product_code =
            ProductCode::parse(&b.product_code).map_err(|message| ApiError::BadRequest {
                path: "productCode".to_owned(),
                message,
            })?;
        Ok(PlanInput {
            customer_no: b.customer_no,
            product_code,
            sum_insured: b.sum_insured,
            coverage_period: b.coverage_period,
            payment_period: b.payment_period,
            payment_cycle: b.payment_cycle,
        })
    }
}

impl PlanInput {
    pub fn request(&self) -> PlanRequest<'_> {
        PlanRequest {
            customer_no: self.customer_no,
            product_code: self.product_code.as_str(),
            sum_insured: self.sum_insured,
            coverage_period: self.coverage_period,
            payment_period: self.payment_period,
            payment_cycle: self.payment_cycle,
        }
    }
}

/// `POST /enrollments/{id}/proposal`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProposalBody {
    pub payment_method: PaymentMethod,
}

/// `GET /products/{code}?version=N`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProductQuery {
    /// An older version of the product (1 is the first).
    #[param(minimum = 1)]
    pub version: Option<u32>,
}

/// `GET /mypage?customerNo=&status=&limit=`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MyPageQuery {
    /// Only this customer's (an admin's filter; a customer's token sees only its own).
    #[param(value_type = Option<CustomerNo>)]
    pub customer_no: Option<String>,
    /// Only enrollments in this status.
    #[param(value_type = Option<Status>)]
    pub status: Option<String>,
    /// At most this many (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// `GET /enrollments?status=&customerNo=&productCode=&limit=&cursor=`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EnrollmentListQuery {
    /// Only this customer's (an admin's filter; a customer's token sees only its own).
    #[param(value_type = Option<CustomerNo>)]
    pub customer_no: Option<String>,
    /// Only enrollments in this status.
    #[param(value_type = Option<Status>)]
    pub status: Option<String>,
    /// Only enrollments of this product.
    #[param(value_type = Option<ProductCode>)]
    pub product_code: Option<String>,
    /// At most this many per page (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// The `nextCursor` of the page before, as it came (with the same filters).
    // The pattern is `crate::store::CURSOR_PATTERN`; a test holds them equal.
    #[param(
        pattern = "^-?[0-9]{1,18}\\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
    )]
    pub cursor: Option<String>,
}

/// One page of `GET /enrollments`: the enrollments' MyPage views, most recently changed
/// first, and the cursor of the next page (`null`: this is the last).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnrollmentList<'a> {
    pub items: &'a [MyPageView],
    pub next_cursor: Option<String>,
}

/// `GET /enrollments/{id}?waitWhileStatus=&waitSeconds=`: a long poll. While the
/// enrollment is in `waitWhileStatus`, the answer waits (up to `waitSeconds`, default
/// 10, at most 30) for it to move on, so a client waiting for its document need not
/// ask again and again.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EnrollmentQuery {
    /// Wait while the enrollment is in this status (a long poll).
    #[param(value_type = Option<Status>)]
    pub wait_while_status: Option<String>,
    /// How long to wait at most, in seconds (default 10).
    /// Text, parsed by the handler, so that a bad value is named in the error.
    #[param(value_type = Option<u64>, minimum = 0, maximum = 30)]
    pub wait_seconds: Option<String>,
}

/// The longest a long poll may wait.
pub const MAX_WAIT_SECONDS: u64 = 30;

/// `GET /alarms?customerNo=&limit=`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AlarmQuery {
    /// Only this customer's (an admin's filter; a customer's token sees only its own).
    #[param(value_type = Option<CustomerNo>)]
    pub customer_no: Option<String>,
    /// At most this many (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// `GET /events/stream?customerNo=&enrollmentId=`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventStreamQuery {
    /// Only this customer's events (an admin's filter; a customer's token sees only its own).
    #[param(value_type = Option<CustomerNo>)]
    pub customer_no: Option<String>,
    /// Only this enrollment's events.
    #[param(value_type = Option<EnrollmentId>)]
    pub enrollment_id: Option<String>,
}

pub fn parse_customer_no(text: Option<&str>) -> Result<Option<CustomerNo>, ApiError> {
    text.map(|t| CustomerNo::parse(t).map_err(|e| ApiError::BadQuery(format!("customerNo: {e}"))))
        .transpose()
}

pub fn parse_status(text: Option<&str>) -> Result<Option<Status>, ApiError> {
    parse_status_named("status", text)
}

/// A status given in the query parameter `name`; an unknown one is named in the error.
pub fn parse_status_named(name: &str, text: Option<&str>) -> Result<Option<Status>, ApiError> {
    text.map(|t| {
        Status::parse(t).ok_or_else(|| {
            let known: Vec<_> = Status::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::BadQuery(format!(
                "{name}: {} is not a status (one of {})",
                crate::domain::text::quoted(t),
                known.join(", ")
            ))
        })
    })
    .transpose()
}

/// Parses a query string (possibly empty) into `T`.
pub fn parse_query<T: DeserializeOwned>(raw: &str) -> Result<T, ApiError> {
    serde_urlencoded::from_str(raw)
        .map_err(|e| ApiError::BadQuery(naming_the_parameter::<T>(raw, e)))
}

/// The query's error with the parameter it is about: serde_urlencoded says "invalid digit
/// found in string" without naming `limit`, so each parameter is tried alone (every query
/// type takes each of its parameters alone).
fn naming_the_parameter<T: DeserializeOwned>(
    raw: &str,
    error: serde_urlencoded::de::Error,
) -> String {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw).unwrap_or_default();
    for (name, value) in &pairs {
        let Ok(alone) = serde_urlencoded::to_string([(name, value)]) else {
            continue;
        };
        if let Err(e) = serde_urlencoded::from_str::<T>(&alone) {
            let text = e.to_string();
            return if text.contains(name.as_str()) {
                text
            } else {
                format!("{name}: {text}")
            };
        }
    }
    error.to_string()
}

/// An enrollment as the API shows it: its state, its version, and (for convenience) the
/// pinned product version and quote of its current plan.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnrollmentBody<'a> {
    #[serde(flatten)]
    pub state: &'a Enrollment,
    pub version: u64,
    pub product_code: &'a str,
    pub product_version: u32,
    pub quote: &'a Quote,
}

impl<'a> EnrollmentBody<'a> {
    pub fn new(state: &'a Enrollment, version: u64) -> Self {
        EnrollmentBody {
            state,
            version,
            product_code: &state.plan.product_code,
            product_version: state.plan.product_version,
            quote: &state.plan.quote,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<&'static str>,
}
