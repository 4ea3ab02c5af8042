//! One async fn per endpoint. Each answers a whole response: success, or the problem
//! its [`ApiError`] maps to (so idempotent writes can keep either).

use super::auth::Principal;
use super::context::Api;
use super::decode::{self, enrollment_id, no_such_customer, no_such_enrollment};
use super::errors::{ApiError, Problem};
use super::idempotency::Idem;
use super::models::{
    AlarmQuery, CustomerBody, EnrollmentBody, EnrollmentList, EnrollmentListQuery, EnrollmentQuery,
    EventStreamQuery, Health, MyPageQuery, PlanBody, ProductQuery, ProposalBody,
};
#[allow(unused_imports)] // named by the handlers' `#[utoipa::path]` declarations
use super::openapi::QuoteRequests;
use super::sse;
use crate::actors::EngineError;
use crate::actors::EnrollmentSnapshot;
use crate::actors::handle::korean_today;
use crate::api::{Answer, QuoteService};
use crate::domain::customer::{Customer, NewCustomer};
use crate::domain::enrollment::{CustomerNo, DomainError, EnrollmentId, ProductDocument};
use crate::domain::product::ProductSpec;
use crate::store::{Alarm, EventEnvelope, MyPageView, ViewFilter, ViewQuery};
use serde::Serialize;
use std::convert::Infallible;
use std::sync::Arc;
use warp::http::{HeaderValue, StatusCode, header};
use warp::hyper::body::Bytes;
use warp::reply::Response;

type Reply = Result<Response, Infallible>;

pub fn json<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> Result<Response, ApiError> {
    let bytes =
        serde_json::to_vec(body).map_err(|e| ApiError::from(super::errors::internal(&e)))?;
    Ok(json_bytes(status, bytes))
}

fn json_bytes(status: StatusCode, bytes: Vec<u8>) -> Response {
    let mut response = Response::new(bytes.into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn with_location(mut response: Response, location: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

fn answer(result: Result<Response, ApiError>) -> Reply {
    Ok(result.unwrap_or_else(ApiError::into_response))
}

/// `text` as an enrollment id the caller may act on. A customer's own enrollments only;
/// anyone else's is 404, the same answer as for an id that names nothing.
async fn owned(api: &Api, who: &Principal, text: &str) -> Result<EnrollmentId, ApiError> {
    let id = enrollment_id(text)?;
    if let Some(me) = who.confined_to() {
        let s = api.engine.enrollment(id).await?;
        if s.state.customer_no != me {
            return Err(no_such_enrollment());
        }
    }
    Ok(id)
}

/// A customer may only name itself as the customer of a plan.
fn own_customer(who: &Principal, no: CustomerNo) -> Result<(), ApiError> {
    if who.may_see(no) {
        Ok(())
    } else {
        Err(no_such_customer())
    }
}

/// The customer a read-model query is about: a customer's own number (a query naming
/// anyone else is 404); for an admin, whatever the query names, if anything.
fn query_customer(
    who: &Principal,
    asked: Option<CustomerNo>,
) -> Result<Option<CustomerNo>, ApiError> {
    match (who.confined_to(), asked) {
        (None, asked) => Ok(asked),
        (Some(me), Some(other)) if other != me => Err(no_such_customer()),
        (Some(me), _) => Ok(Some(me)),
    }
}

fn enrollment(status: StatusCode, s: &EnrollmentSnapshot) -> Result<Response, ApiError> {
    let mut response = json(status, &EnrollmentBody::new(&s.state, s.version))?;
    if s.recovered {
        // Not run now: the same request ran it before and its answer was lost.
        response.headers_mut().insert(
            "idempotent-replayed",
            warp::http::HeaderValue::from_static("recovered"),
        );
    }
    Ok(response)
}

// ---- health

#[utoipa::path(
    get, path = "/livez", tag = "health",
    responses((status = 200, description = "The process is up.", body = Health))
)]
pub async fn livez() -> Reply {
    answer(json(
        StatusCode::OK,
        &Health {
            status: "ok",
            store: None,
        },
    ))
}

#[utoipa::path(
    get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "The store answers and this copy holds its share of the enrollments.", body = Health),
        (status = 503, description = "`not-ready`, `shutting-down` or `store-unavailable`.", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait.")))
    )
)]
pub async fn readyz(api: Arc<Api>) -> Reply {
    let ownership = api.engine.ownership();
    if !ownership.is_ready() {
        // Stopping, or not yet holding its share of the enrollments: a load balancer
        // sends the traffic elsewhere meanwhile.
        let (kind, title, detail) = if ownership.is_draining() {
            (
                "shutting-down",
                "Shutting down",
                "this copy is handing its enrollments over and stopping",
            )
        } else {
            (
                "not-ready",
                "Not ready",
                "this copy has not taken its share of the enrollments yet",
            )
        };
        let mut p = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            kind,
            title,
            detail.to_owned(),
        );
        p.retry_after = Some(1);
        return answer(Err(p.into()));
    }
    let store = api.engine.store();
    answer(match store.ping().await {
        Ok(()) => json(
            StatusCode::OK,
            &Health {
                status: "ok",
                store: Some(store.backend()),
            },
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: the store does not answer");
            let mut p = Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store-unavailable",
                "Store unavailable",
                format!("the {} store does not answer", store.backend()),
            );
            p.retry_after = Some(1);
            Err(p.into())
        }
    })
}

pub async fn openapi_json() -> Reply {
    let mut response = Response::new(super::openapi::document().into());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

// ---- quotes: the burst path. Prices on the request's task against the catalog
// snapshot; no actor, no store.

#[utoipa::path(
    post, path = "/quotes", tag = "quotes",
    request_body(content = QuoteRequests, description = "One quote request, or an array of them (a burst).",
        example = json!({"productCode": "EZ-TERM", "insured": {"birthDate": "1986-05-01", "gender": "male"},
            "sumInsured": 100000000, "coveragePeriod": 20, "paymentPeriod": 20, "paymentCycle": "monthly"})),
    responses(
        (status = 200, description = "The premium or every underwriting violation, for each request in the order sent (an array for an array).", body = Answer),
        (status = 422, description = "`unknown-product` (no such product or version) or `invalid-product` (an inline definition that makes no sense); `path` names the request.", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn quotes(api: Arc<Api>, body: Bytes) -> Reply {
    answer(quote(&api, &body))
}

fn quote(api: &Api, body: &[u8]) -> Result<Response, ApiError> {
    let service = QuoteService::new(api.engine.catalog());
    let today = korean_today(crate::domain::time::now());
    let mut out = Vec::with_capacity(256);
    decode::quotes(&service, body, today, &mut out)?;
    Ok(json_bytes(StatusCode::OK, out))
}

// ---- products

#[utoipa::path(
    get, path = "/products", tag = "products",
    responses((status = 200, description = "Each product's latest version.", body = Vec<ProductSpec>))
)]
pub async fn products(api: Arc<Api>) -> Reply {
    let catalog = api.engine.catalog();
    let products: Vec<_> = catalog.latest_all().map(|p| p.product()).collect();
    answer(json(StatusCode::OK, &products))
}

#[utoipa::path(
    get, path = "/products/{code}", tag = "products",
    params(("code" = String, Path, description = "The product code."), ProductQuery),
    responses(
        (status = 200, description = "The product (its latest version, or the version asked for).", body = ProductSpec),
        (status = 404, description = "`not-found`: no such product or version.", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn product(api: Arc<Api>, code: String, query: String) -> Reply {
    answer((|| {
        let version = decode::product_version(&query)?;
        let catalog = api.engine.catalog();
        let found = match version {
            Some(v) => catalog.version(&code, v),
            None => catalog.latest(&code),
        };
        match found {
            Some(p) => json(StatusCode::OK, p.product()),
            None => Err(ApiError::NotFound(match version {
                Some(v) => format!("no version {v} of product {code}"),
                None => format!("no product {code}"),
            })),
        }
    })())
}

#[utoipa::path(
    post, path = "/products", tag = "products",
    security(("bearer" = ["admin"])),
    request_body(content = ProductSpec, description = "A new product's definition."),
    responses(
        (status = 201, description = "Registered as version 1.", body = ProductSpec,
            headers(("Location" = String, description = "The product version's address."))),
        (status = 409, description = "`conflict`: the product exists (register a new version with PUT).", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid-product`: the definition makes no sense; `reasons` lists why.", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn create_product(api: Arc<Api>, idem: Idem, body: Bytes) -> Reply {
    let response = idem
        .with_body(&body)
        .run(&api, || async {
            let spec = decode::product(&body)?;
            if api.engine.catalog().latest(&spec.code).is_some() {
                return Err(ApiError::Conflict(format!(
                    "product {} exists; PUT /products/{} registers a new version",
                    spec.code, spec.code
                )));
            }
            register(&api, spec).await
        })
        .await;
    Ok(response)
}

#[utoipa::path(
    put, path = "/products/{code}", tag = "products",
    security(("bearer" = ["admin"])),
    params(("code" = String, Path, description = "The product code.")),
    request_body(content = ProductSpec, description = "The product's next version."),
    responses(
        (status = 201, description = "Registered as the next version.", body = ProductSpec,
            headers(("Location" = String, description = "The product version's address."))),
        (status = 404, description = "`not-found`: no such product (register it with POST).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version-conflict`: the version named is not the next one.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid-product` (`reasons` lists why) or `unprocessable` (the body names another product).", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn put_product(api: Arc<Api>, idem: Idem, code: String, body: Bytes) -> Reply {
    let response = idem
        .with_body(&body)
        .run(&api, || async {
            let spec = decode::product(&body)?;
            if spec.code != code {
                return Err(ApiError::Unprocessable(format!(
                    "the body is product {:?}, the path names {code:?}",
                    spec.code
                )));
            }
            if api.engine.catalog().latest(&code).is_none() {
                return Err(ApiError::NotFound(format!(
                    "no product {code}; POST /products registers a new one"
                )));
            }
            register(&api, spec).await
        })
        .await;
    Ok(response)
}

async fn register(api: &Api, spec: ProductSpec) -> Result<Response, ApiError> {
    let priced = api.engine.register_product(spec).await?;
    let p = priced.product();
    let location = format!("/products/{}?version={}", p.code(), p.version());
    Ok(with_location(json(StatusCode::CREATED, p)?, &location))
}

// ---- customers

#[utoipa::path(
    post, path = "/customers", tag = "customers",
    security(("bearer" = ["admin"])),
    request_body(content = CustomerBody,
        example = json!({"name": "김보험", "birthDate": "1986-05-01", "gender": "male", "mobilePhone": "010-1234-5678"})),
    responses(
        (status = 201, description = "Registered; `customerNo` names the customer.", body = Customer,
            headers(("Location" = String, description = "The customer's address."))),
        (status = 422, description = "`invalid-request`: the birth date is after today (in Korea).", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn create_customer(api: Arc<Api>, idem: Idem, body: Bytes) -> Reply {
    // Keyed: the request is linked to the number it registered, so a retry whose first
    // try registered the customer but died before its answer was kept finds that
    // customer instead of registering a second one (see `idempotency`).
    let keyed = idem.store_key();
    let response = idem
        .with_body(&body)
        .run(&api, || async {
            let new = decode::customer(&body)?;
            let customer = match &keyed {
                None => api.engine.register_customer(new).await?,
                Some(request) => {
                    let keep = api.config.idempotency_ttl;
                    let customer = api
                        .engine
                        .register_customer_for(request, new.clone(), keep)
                        .await?;
                    let registered = NewCustomer {
                        name: customer.name.clone(),
                        birth_date: customer.birth_date,
                        gender: customer.gender,
                        mobile_phone: customer.mobile_phone.clone(),
                    };
                    if registered != new {
                        return Err(Problem::new(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "idempotency-key-reused",
                            "Idempotency key reused",
                            format!(
                                "this Idempotency-Key registered customer {} with other \
                                 details; a new registration needs a new key",
                                customer.customer_no
                            ),
                        )
                        .into());
                    }
                    customer
                }
            };
            let location = format!("/customers/{}", customer.customer_no);
            Ok(with_location(
                json(StatusCode::CREATED, &customer)?,
                &location,
            ))
        })
        .await;
    Ok(response)
}

#[utoipa::path(
    get, path = "/customers/{no}", tag = "customers",
    security(("bearer" = [])),
    params(("no" = String, Path, description = "The customer number.", example = "C000000001")),
    responses(
        (status = 200, description = "The customer record.", body = Customer),
        (status = 404, description = "`not-found`: no such customer, or not the caller's.", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn customer(api: Arc<Api>, who: Principal, no: String) -> Reply {
    answer(
        async {
            let no = decode::customer_no(&no)?;
            own_customer(&who, no)?;
            let customer = api.engine.customer(no).await?;
            json(StatusCode::OK, &customer)
        }
        .await,
    )
}

// ---- enrollments

#[utoipa::path(
    post, path = "/enrollments", tag = "enrollments",
    security(("bearer" = [])),
    request_body(content = PlanBody, description = "가입설계: the plan to save.",
        example = json!({"customerNo": "C000000001", "productCode": "EZ-TERM", "sumInsured": 100000000,
            "coveragePeriod": 20, "paymentPeriod": 20, "paymentCycle": "monthly"})),
    responses(
        (status = 201, description = "A new enrollment, `Planned`.", body = EnrollmentBody,
            headers(("Location" = String, description = "The enrollment's address."))),
        (status = 404, description = "`not-found`: no such customer, or not the caller's.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`underwriting` (`violations` lists every broken rule), `unknown-product` or `limit-exceeded`.", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn create_enrollment(api: Arc<Api>, who: Principal, idem: Idem, body: Bytes) -> Reply {
    // Keyed: the enrollment's id comes from the key, so a retry whose first try saved the
    // plan but died before its answer was kept finds that plan (see `idempotency`).
    let keyed_id = idem.store_key().map(|k| EnrollmentId::for_request(&k));
    let response = idem
        .with_body(&body)
        .run(&api, || async {
            let input = decode::plan(&body)?;
            own_customer(&who, input.customer_no)?;
            let saved = match keyed_id {
                None => api.engine.save_plan(input.request()).await?,
                Some(id) => match api.engine.save_plan_as(id, input.request()).await {
                    Err(EngineError::Domain(DomainError::AlreadyStarted)) => {
                        let saved = api.engine.enrollment(id).await?;
                        if saved.state.customer_no != input.customer_no {
                            return Err(Problem::new(
                                StatusCode::UNPROCESSABLE_ENTITY,
                                "idempotency-key-reused",
                                "Idempotency key reused",
                                format!(
                                    "this Idempotency-Key made an enrollment of customer {}; \
                                     a new enrollment needs a new key",
                                    saved.state.customer_no
                                ),
                            )
                            .into());
                        }
                        saved
                    }
                    other => other?,
                },
            };
            let location = format!("/enrollments/{}", saved.state.id);
            Ok(with_location(
                enrollment(StatusCode::CREATED, &saved)?,
                &location,
            ))
        })
        .await;
    Ok(response)
}

#[utoipa::path(
    put, path = "/enrollments/{id}/plan", tag = "enrollments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The enrollment id.")),
    request_body(content = PlanBody, description = "The new plan (a new quote)."),
    responses(
        (status = 200, description = "The plan is re-saved; the enrollment is `Planned` again.", body = EnrollmentBody),
        (status = 404, description = "`not-found`: no such enrollment or customer, or not the caller's.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`illegal-transition` (`currentStatus` says which), `plan-expired` or `concurrent-update`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`underwriting` (`violations`), `unknown-product`, `limit-exceeded` or `wrong-customer`.", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn resave_plan(
    api: Arc<Api>,
    who: Principal,
    idem: Idem,
    id: String,
    body: Bytes,
) -> Reply {
    let response = idem
        .with_body(&body)
        .run(&api, || async {
            let id = owned(&api, &who, &id).await?;
            let input = decode::plan(&body)?;
            own_customer(&who, input.customer_no)?;
            let saved = api.engine.resave_plan(id, input.request()).await?;
            enrollment(StatusCode::OK, &saved)
        })
        .await;
    Ok(response)
}

#[utoipa::path(
    post, path = "/enrollments/{id}/document", tag = "enrollments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The enrollment id.")),
    responses(
        (status = 202, description = "상품설명서 requested: `DocumentRequested`; it is issued shortly (long-poll with `waitWhileStatus`).", body = EnrollmentBody),
        (status = 404, description = "`not-found`: no such enrollment, or not the caller's.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`illegal-transition`, `plan-expired` or `concurrent-update`.", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn request_document(api: Arc<Api>, who: Principal, idem: Idem, id: String) -> Reply {
    let response = idem
        .run(&api, || async {
            let id = owned(&api, &who, &id).await?;
            let s = api.engine.request_document(id).await?;
            enrollment(StatusCode::ACCEPTED, &s)
        })
        .await;
    Ok(response)
}

#[utoipa::path(
    post, path = "/enrollments/{id}/proposal", tag = "enrollments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The enrollment id.")),
    request_body(content = ProposalBody, example = json!({"paymentMethod": "card"})),
    responses(
        (status = 200, description = "청약 submitted and the first premium paid: `Contracted`.", body = EnrollmentBody),
        (status = 402, description = "`payment-declined`: the enrollment is `PaymentFailed`; retry with POST /payment.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not-found`: no such enrollment, or not the caller's.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`illegal-transition`, `stale-document`, `plan-expired` or `concurrent-update`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`limit-exceeded`: the customer's cumulative sum insured would pass the product's limit.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`payment-unavailable` (the gateway is busy or its breaker open), `store-unavailable`, `shutting-down` or `ownership-moving`.", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait.")))
    )
)]
pub async fn propose(api: Arc<Api>, who: Principal, idem: Idem, id: String, body: Bytes) -> Reply {
    let response = idem
        .with_body(&body)
        .run(&api, || async {
            let id = owned(&api, &who, &id).await?;
            let payment_method = decode::proposal(&body)?;
            let s = api.engine.submit_proposal(id, payment_method).await?;
            enrollment(StatusCode::OK, &s)
        })
        .await;
    Ok(response)
}

#[utoipa::path(
    post, path = "/enrollments/{id}/payment", tag = "enrollments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The enrollment id.")),
    responses(
        (status = 200, description = "The first premium is paid: `Contracted`.", body = EnrollmentBody),
        (status = 402, description = "`payment-declined`: declined again.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not-found`: no such enrollment, or not the caller's.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`illegal-transition`, `amount-mismatch` or `concurrent-update`.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`payment-unavailable`, `store-unavailable`, `shutting-down` or `ownership-moving`.", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait.")))
    )
)]
pub async fn retry_payment(api: Arc<Api>, who: Principal, idem: Idem, id: String) -> Reply {
    let response = idem
        .run(&api, || async {
            let id = owned(&api, &who, &id).await?;
            let s = api.engine.retry_payment(id).await?;
            enrollment(StatusCode::OK, &s)
        })
        .await;
    Ok(response)
}

#[utoipa::path(
    post, path = "/enrollments/{id}/withdrawal", tag = "enrollments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The enrollment id.")),
    responses(
        (status = 202, description = "청약철회 requested: `WithdrawalRequested` while a paid premium is refunded, or `Withdrawn` when nothing was paid.", body = EnrollmentBody),
        (status = 404, description = "`not-found`: no such enrollment, or not the caller's.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`illegal-transition`, `withdrawal-period-over` or `concurrent-update`.", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn withdraw(api: Arc<Api>, who: Principal, idem: Idem, id: String) -> Reply {
    let response = idem
        .run(&api, || async {
            let id = owned(&api, &who, &id).await?;
            let s = api.engine.request_withdrawal(id).await?;
            enrollment(StatusCode::ACCEPTED, &s)
        })
        .await;
    Ok(response)
}

#[utoipa::path(
    get, path = "/enrollments/{id}", tag = "enrollments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The enrollment id."), EnrollmentQuery),
    responses(
        (status = 200, description = "The enrollment: at once, or once it leaves `waitWhileStatus` or the wait is up.", body = EnrollmentBody),
        (status = 404, description = "`not-found`: no such enrollment, or not the caller's.", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_enrollment(api: Arc<Api>, who: Principal, id: String, query: String) -> Reply {
    answer(
        async {
            let decode::LongPoll { wait_while, wait } = decode::long_poll(&query)?;
            let id = enrollment_id(&id)?;
            let mut s = api.engine.enrollment(id).await?;
            if !who.may_see(s.state.customer_no) {
                return Err(no_such_enrollment());
            }
            if let Some(status) = wait_while
                && s.state.status == status
                && !wait.is_zero()
            {
                // Whatever it is when the wait ends (moved on, or still there) is the answer.
                s = match api
                    .engine
                    .wait_for(id, wait, |e| e.status != status)
                    .await?
                {
                    Some(moved) => moved,
                    None => api.engine.enrollment(id).await?,
                };
            }
            enrollment(StatusCode::OK, &s)
        }
        .await,
    )
}

#[utoipa::path(
    get, path = "/enrollments/{id}/events", tag = "enrollments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The enrollment id.")),
    responses(
        (status = 200, description = "Its events, oldest first.", body = Vec<EventEnvelope>),
        (status = 404, description = "`not-found`: no such enrollment, or not the caller's.", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn events(api: Arc<Api>, who: Principal, id: String) -> Reply {
    answer(
        async {
            let id = owned(&api, &who, &id).await?;
            let events = api.engine.history(id).await?;
            json(StatusCode::OK, &events)
        }
        .await,
    )
}

/// `GET /enrollments/{id}/document`: the current document.
#[utoipa::path(
    get, path = "/enrollments/{id}/document", tag = "enrollments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The enrollment id."),
        ("If-None-Match" = Option<String>, Header, description = "The ETag of a copy the client holds.")),
    responses(
        (status = 200, description = "상품설명서: the current document with its text.", body = ProductDocument,
            headers(("ETag" = String, description = "The SHA-256 of the text, quoted."))),
        (status = 304, description = "The client's copy is current.",
            headers(("ETag" = String, description = "The SHA-256 of the text, quoted."))),
        (status = 404, description = "`not-found`: no such enrollment, not the caller's, or no document issued yet.", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn document(
    api: Arc<Api>,
    who: Principal,
    id: String,
    if_none_match: Option<String>,
) -> Reply {
    answer(
        async {
            let id = owned(&api, &who, &id).await?;
            let document = api.engine.document(id).await?;
            document_answer(&document, if_none_match.as_deref())
        }
        .await,
    )
}

/// `GET /enrollments/{id}/documents/{documentNo}`: any document issued for the enrollment,
/// one a re-saved plan superseded too.
#[utoipa::path(
    get, path = "/enrollments/{id}/documents/{documentNo}", tag = "enrollments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The enrollment id."),
        ("documentNo" = String, Path, description = "A document number from the enrollment's events."),
        ("If-None-Match" = Option<String>, Header, description = "The ETag of a copy the client holds.")),
    responses(
        (status = 200, description = "That document with its text.", body = ProductDocument,
            headers(("ETag" = String, description = "The SHA-256 of the text, quoted."))),
        (status = 304, description = "The client's copy is current.",
            headers(("ETag" = String, description = "The SHA-256 of the text, quoted."))),
        (status = 404, description = "`not-found`: no such enrollment or document, or not the caller's.", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn document_by_number(
    api: Arc<Api>,
    who: Principal,
    id: String,
    document_no: String,
    if_none_match: Option<String>,
) -> Reply {
    answer(
        async {
            let id = owned(&api, &who, &id).await?;
            let document = api.engine.document_by_number(id, &document_no).await?;
            document_answer(&document, if_none_match.as_deref())
        }
        .await,
    )
}

/// A document with its ETag, the SHA-256 its enrollment and event name (`bodySha256`); a
/// client that holds that text asks with `If-None-Match` and gets 304 without it.
/// `no-cache`: an enrollment's current document changes when its plan is re-saved.
fn document_answer(
    document: &ProductDocument,
    if_none_match: Option<&str>,
) -> Result<Response, ApiError> {
    let tag = format!("\"{}\"", document.body_sha256());
    let mut response = if if_none_match.is_some_and(|header| etag_matches(header, &tag)) {
        let mut response = Response::new(Vec::new().into());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else {
        json(StatusCode::OK, document)?
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&tag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    Ok(response)
}

/// `If-None-Match`: `*`, or a list of entity tags compared weakly (a `W/` prefix is
/// ignored), as RFC 9110 13.1.2 asks.
fn etag_matches(header: &str, tag: &str) -> bool {
    header.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == tag
    })
}

// ---- live events

/// `GET /events/stream`: server-sent events of the enrollments the caller may see.
#[utoipa::path(
    get, path = "/events/stream", tag = "read model",
    security(("bearer" = [])),
    params(EventStreamQuery),
    responses(
        (status = 200, description = "Server-sent events: one message per lifecycle event (`event:` its type, `data:` the envelope as in GET /enrollments/{id}/events), `event: lagged` when the client fell behind, a comment every 15 s.",
            content_type = "text/event-stream", body = String),
        (status = 404, description = "`not-found`: `customerNo` or `enrollmentId` names what the caller may not see.", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn event_stream(api: Arc<Api>, who: Principal, query: String) -> Reply {
    answer(
        async {
            let q = decode::event_stream(&query)?;
            let customer_no = query_customer(&who, q.customer_no)?;
            let enrollment_id = match q.enrollment_id {
                Some(id) => {
                    let s = api.engine.enrollment(id).await?;
                    if !who.may_see(s.state.customer_no) {
                        return Err(no_such_enrollment());
                    }
                    Some(s.state.id)
                }
                None => None,
            };
            let closing = api.closing();
            if *closing.borrow() {
                return Err(super::errors::shutting_down().into());
            }
            let events = api.engine.subscribe().await?;
            let filter = sse::StreamFilter {
                customer_no,
                enrollment_id,
            };
            let stream = warp::sse::keep_alive()
                .interval(api.config.sse_keep_alive)
                .stream(sse::stream(events, filter, closing));
            Ok(warp::reply::Reply::into_response(warp::sse::reply(stream)))
        }
        .await,
    )
}

// ---- read model

#[utoipa::path(
    get, path = "/mypage", tag = "read model",
    security(("bearer" = [])),
    params(MyPageQuery),
    responses(
        (status = 200, description = "내보험 조회: MyPage views, most recently changed first.", body = Vec<MyPageView>),
        (status = 404, description = "`not-found`: `customerNo` names someone other than the caller.", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn mypage(api: Arc<Api>, who: Principal, query: String) -> Reply {
    answer(
        async {
            let q = decode::mypage(&query)?;
            let filter = ViewFilter {
                customer_no: query_customer(&who, q.customer_no)?,
                status: q.status,
            };
            let views = api.engine.mypage(filter, q.limit).await?;
            json(StatusCode::OK, &views)
        }
        .await,
    )
}

/// `GET /enrollments`: a page of the read model's views, narrowed to the caller for a
/// customer as `/mypage` is.
#[utoipa::path(
    get, path = "/enrollments", tag = "enrollments",
    security(("bearer" = [])),
    params(EnrollmentListQuery),
    responses(
        (status = 200, description = "A page of enrollments, most recently changed first.", body = EnrollmentList),
        (status = 404, description = "`not-found`: `customerNo` names someone other than the caller.", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_enrollments(api: Arc<Api>, who: Principal, query: String) -> Reply {
    answer(
        async {
            let q = decode::enrollment_page(&query)?;
            let query = ViewQuery {
                customer_no: query_customer(&who, q.customer_no)?,
                status: q.status,
                product_code: q.product_code.map(|c| c.as_str().to_owned()),
                after: q.after,
                limit: q.limit,
            };
            let page = api.engine.enrollment_page(&query).await?;
            json(
                StatusCode::OK,
                &EnrollmentList {
                    items: &page.views,
                    next_cursor: page.next.map(|c| c.to_string()),
                },
            )
        }
        .await,
    )
}

#[utoipa::path(
    get, path = "/mypage/{id}", tag = "read model",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The enrollment id.")),
    responses(
        (status = 200, description = "One enrollment's MyPage view.", body = MyPageView),
        (status = 404, description = "`not-found`: no such view, or not the caller's.", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn mypage_view(api: Arc<Api>, who: Principal, id: String) -> Reply {
    answer(
        async {
            let view = api.engine.mypage_view(enrollment_id(&id)?).await?;
            if !who.may_see(view.customer_no) {
                return Err(no_such_enrollment());
            }
            json(StatusCode::OK, &view)
        }
        .await,
    )
}

#[utoipa::path(
    get, path = "/alarms", tag = "read model",
    security(("bearer" = [])),
    params(AlarmQuery),
    responses(
        (status = 200, description = "알림: notifications sent, newest first.", body = Vec<Alarm>),
        (status = 404, description = "`not-found`: `customerNo` names someone other than the caller.", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn alarms(api: Arc<Api>, who: Principal, query: String) -> Reply {
    answer(
        async {
            let q = decode::alarms(&query)?;
            let customer = query_customer(&who, q.customer_no)?;
            let alarms = api.engine.alarms(customer, q.limit).await?;
            json(StatusCode::OK, &alarms)
        }
        .await,
    )
}
