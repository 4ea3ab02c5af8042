//! One async fn per endpoint. Each answers a whole response: success, or the problem
//! its [`ApiError`] maps to (so idempotent writes can keep either).

use super::auth::Principal;
use super::context::Api;
use super::decode::{self, enrollment_id, no_such_customer, no_such_enrollment};
use super::errors::{ApiError, Problem};
use super::idempotency::Idem;
use super::models::{EnrollmentBody, EnrollmentList, Health};
use super::sse;
use crate::actors::EngineError;
use crate::actors::EnrollmentSnapshot;
use crate::actors::handle::korean_today;
use crate::api::QuoteService;
use crate::domain::customer::NewCustomer;
use crate::domain::enrollment::{CustomerNo, DomainError, EnrollmentId, ProductDocument};
use crate::domain::product::ProductSpec;
use crate::store::{ViewFilter, ViewQuery};
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

pub async fn livez() -> Reply {
    answer(json(
        StatusCode::OK,
        &Health {
            status: "ok",
            store: None,
        },
    ))
}

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

// ---- quotes: the burst path. Prices on the request's task against the catalog
// snapshot; no actor, no store.

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

pub async fn products(api: Arc<Api>) -> Reply {
    let catalog = api.engine.catalog();
    let products: Vec<_> = catalog.latest_all().map(|p| p.product()).collect();
    answer(json(StatusCode::OK, &products))
}

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
