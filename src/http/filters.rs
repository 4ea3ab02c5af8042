//! Routes: one function per endpoint returning a filter. Each checks its path first and
//! its method second, so an unknown path is a 404 and a known one with the wrong method
//! a 405; the body is read last, only for a route that matched.

use super::auth::Principal;
use super::context::Api;
use super::errors::ApiError;
use super::handlers;
use super::idempotency::Idem;
use futures_util::StreamExt;
use std::convert::Infallible;
use std::sync::Arc;
use warp::hyper::body::Bytes;
use warp::{Filter, Rejection, Reply};

/// Every route, with errors mapped to problems and each request logged and counted.
pub fn routes(
    api: Arc<Api>,
) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone + Send + Sync + 'static {
    let limit = api.config.body_limit;
    let health = livez()
        .or(readyz(api.clone()))
        .or(metrics(api.clone()))
        .or(openapi_json());
    let products = get_products(api.clone())
        .or(get_product(api.clone()))
        .or(post_product(api.clone(), limit))
        .or(put_product(api.clone(), limit));
    let customers = post_customer(api.clone(), limit).or(get_customer(api.clone()));
    let enrollments = post_enrollment(api.clone(), limit)
        .or(list_enrollments(api.clone()))
        .or(put_plan(api.clone(), limit))
        .or(post_document(api.clone()))
        .or(post_proposal(api.clone(), limit))
        .or(post_payment(api.clone()))
        .or(post_withdrawal(api.clone()))
        .or(get_enrollment(api.clone()))
        .or(get_events(api.clone()))
        .or(get_document(api.clone()))
        .or(get_document_by_number(api.clone()));
    let read_model = get_mypage(api.clone())
        .or(get_mypage_view(api.clone()))
        .or(get_alarms(api.clone()))
        .or(get_event_stream(api.clone()));
    let counted = api.clone();
    health
        .or(post_quotes(api, limit))
        .or(products)
        .or(customers)
        .or(enrollments)
        .or(read_model)
        .recover(super::errors::recover)
        .with(warp::log::custom(move |info| {
            counted.http_metrics.record(
                info.method(),
                info.path(),
                info.status().as_u16(),
                info.elapsed(),
            );
            tracing::info!(
                target: "ezenroll::http",
                method = %info.method(),
                path = info.path(),
                status = info.status().as_u16(),
                micros = u64::try_from(info.elapsed().as_micros()).unwrap_or(u64::MAX),
                "request"
            );
        }))
}

fn with_api(api: Arc<Api>) -> impl Filter<Extract = (Arc<Api>,), Error = Infallible> + Clone {
    warp::any().map(move || Arc::clone(&api))
}

/// The request body, at most `limit` bytes. A declared length over the limit is refused
/// before anything is read; a chunked body is cut off as soon as it passes the limit. A
/// body that is not empty must be sent as JSON (415 otherwise, naming what was sent).
fn body(limit: u64) -> impl Filter<Extract = (Bytes,), Error = Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::body::stream())
        .and_then(
            move |declared: Option<u64>, media: Option<String>, stream| async move {
                if declared.is_some_and(|n| n > limit) {
                    return Err(too_large(limit));
                }
                let body = read_limited(stream, limit).await?;
                if !body.iter().all(u8::is_ascii_whitespace) && !is_json(media.as_deref()) {
                    return Err(not_json(media.as_deref()));
                }
                Ok(body)
            },
        )
}

/// `application/json` or a `+json` type, with or without parameters (`charset=utf-8`).
fn is_json(media: Option<&str>) -> bool {
    let Some(media) = media else { return false };
    let essence = media
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"))
}

fn not_json(media: Option<&str>) -> Rejection {
    let sent = match media {
        Some(m) => format!("Content-Type {m:?}"),
        None => "no Content-Type".to_owned(),
    };
    let p = super::errors::Problem::new(
        warp::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        "Unsupported media type",
        format!("the body must be sent as application/json; the request has {sent}"),
    );
    warp::reject::custom(ApiError::from(p))
}

async fn read_limited<S, B>(stream: S, limit: u64) -> Result<Bytes, Rejection>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>>,
    B: warp::hyper::body::Buf,
{
    let mut stream = std::pin::pin!(stream);
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk.map_err(|e| {
            warp::reject::custom(ApiError::BadRequest {
                path: String::new(),
                message: format!("the body could not be read: {e}"),
            })
        })?;
        if (out.len() + chunk.remaining()) as u64 > limit {
            return Err(too_large(limit));
        }
        while chunk.has_remaining() {
            let piece = chunk.chunk();
            out.extend_from_slice(piece);
            let n = piece.len();
            chunk.advance(n);
        }
    }
    Ok(Bytes::from(out))
}

fn too_large(limit: u64) -> Rejection {
    let p = super::errors::Problem::new(
        warp::http::StatusCode::PAYLOAD_TOO_LARGE,
        "payload-too-large",
        "Payload too large",
        format!("the request body is larger than the limit of {limit} bytes"),
    );
    warp::reject::custom(ApiError::from(p))
}

/// The caller named by a valid bearer token (401 otherwise).
fn authed(api: Arc<Api>) -> impl Filter<Extract = (Principal,), Error = Rejection> + Clone {
    warp::header::optional::<String>("authorization").and_then(move |header: Option<String>| {
        let api = Arc::clone(&api);
        async move {
            api.config
                .auth
                .authenticate(header.as_deref())
                .map_err(warp::reject::custom)
        }
    })
}

/// An admin's token (401 without a valid one, 403 for a customer's).
fn admin(api: Arc<Api>) -> impl Filter<Extract = (Principal,), Error = Rejection> + Clone {
    authed(api).and_then(|who: Principal| async move {
        who.require_admin()
            .map(|()| who)
            .map_err(warp::reject::custom)
    })
}

/// The caller and the idempotency key of a write, scoped to that caller.
fn write(
    who: impl Filter<Extract = (Principal,), Error = Rejection> + Clone,
) -> impl Filter<Extract = (Principal, Idem), Error = Rejection> + Clone {
    who.and(idem())
        .map(|who: Principal, idem: Idem| {
            let idem = idem.scoped_to(&who.label());
            (who, idem)
        })
        .untuple_one()
}

/// The idempotency scope (method and path) and key of a write.
fn idem() -> impl Filter<Extract = (Idem,), Error = Rejection> + Clone {
    warp::method()
        .and(warp::path::full())
        .and(warp::header::optional::<String>("idempotency-key"))
        .and_then(
            |method: warp::http::Method, path: warp::path::FullPath, key| async move {
                Idem::new(method.as_str(), path.as_str(), key)
                    .map_err(|p| warp::reject::custom(ApiError::Problem(p)))
            },
        )
}

/// The raw query string, empty when there is none.
fn query() -> impl Filter<Extract = (String,), Error = Infallible> + Clone {
    warp::query::raw().or(warp::any().map(String::new)).unify()
}

// ---- health

fn livez() -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::path!("livez")
        .and(warp::get())
        .and_then(handlers::livez)
}

/// The OpenAPI document ([`super::openapi`]), built once.
fn openapi_json() -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::path!("openapi.json")
        .and(warp::get())
        .and_then(handlers::openapi_json)
}

fn readyz(
    api: Arc<Api>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::path!("readyz")
        .and(warp::get())
        .and(with_api(api))
        .and_then(handlers::readyz)
}

fn metrics(
    api: Arc<Api>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::path!("metrics")
        .and(warp::get())
        .and(with_api(api))
        .and_then(super::metrics::metrics)
}

// ---- quotes

fn post_quotes(
    api: Arc<Api>,
    limit: u64,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::path!("quotes")
        .and(warp::post())
        .and(with_api(api))
        .and(body(limit))
        .and_then(handlers::quotes)
}

// ---- products

fn get_products(
    api: Arc<Api>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::path!("products")
        .and(warp::get())
        .and(with_api(api))
        .and_then(handlers::products)
}

fn get_product(
    api: Arc<Api>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::path!("products" / String)
        .and(warp::get())
        .and(with_api(api))
        .and(query())
        .and_then(|code, api, query| handlers::product(api, code, query))
}

fn post_product(
    api: Arc<Api>,
    limit: u64,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::path!("products")
        .and(warp::post())
        .and(with_api(api.clone()))
        .and(write(admin(api)))
        .and(body(limit))
        .and_then(|api, _admin, idem, body| handlers::create_product(api, idem, body))
}

fn put_product(
    api: Arc<Api>,
    limit: u64,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::path!("products" / String)
        .and(warp::put())
        .and(with_api(api.clone()))
        .and(write(admin(api)))
        .and(body(limit))
        .and_then(|code, api, _admin, idem, body| handlers::put_product(api, idem, code, body))
}

// ---- customers

fn post_customer(
    api: Arc<Api>,
    limit: u64,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::path!("customers")
        .and(warp::post())
        .and(with_api(api.clone()))
        .and(write(admin(api)))
        .and(body(limit))
        .and_then(|api, _admin, idem, body| handlers::create_customer(api, idem, body))
}

fn get_customer(
    api: Arc<Api>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::path!("customers" / String)
        .and(warp::get())
        .and(with_api(api.clone()))
        .and(authed(api))
        .and_then(|no, api, who| handlers::customer(api, who, no))
}

// ---- enrollments

fn post_enrollment(
    api: Arc<Api>,
    limit: u64,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::path!("enrollments")
        .and(warp::post())
        .and(with_api(api.clone()))
        .and(write(authed(api)))
        .and(body(limit))
        .and_then(handlers::create_enrollment)
}

fn list_enrollments(
    api: Arc<Api>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::path!("enrollments")
        .and(warp::get())
        .and(with_api(api.clone()))
        .and(authed(api))
        .and(query())
        .and_then(handlers::list_enrollments)
}

fn put_plan(
    api: Arc<Api>,
    limit: u64,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::path!("enrollments" / String / "plan")
        .and(warp::put())
        .and(with_api(api.clone()))
        .and(write(authed(api)))
        .and(body(limit))
        .and_then(|id, api, who, idem, body| handlers::resave_plan(api, who, idem, id, body))
}

fn post_document(
    api: Arc<Api>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::path!("enrollments" / String / "document")
        .and(warp::post())
        .and(with_api(api.clone()))
        .and(write(authed(api)))
        .and_then(|id, api, who, idem| handlers::request_document(api, who, idem, id))
}

fn post_proposal(
    api: Arc<Api>,
    limit: u64,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::path!("enrollments" / String / "proposal")
        .and(warp::post())
        .and(with_api(api.clone()))
        .and(write(authed(api)))
        .and(body(limit))
        .and_then(|id, api, who, idem, body| handlers::propose(api, who, idem, id, body))
}

fn post_payment(
    api: Arc<Api>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::path!("enrollments" / String / "payment")
        .and(warp::post())
        .and(with_api(api.clone()))
        .and(write(authed(api)))
        .and_then(|id, api, who, idem| handlers::retry_payment(api, who, idem, id))
}

fn post_withdrawal(
    api: Arc<Api>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::path!("enrollments" / String / "withdrawal")
        .and(warp::post())
        .and(with_api(api.clone()))
        .and(write(authed(api)))
        .and_then(|id, api, who, idem| handlers::withdraw(api, who, idem, id))
}

fn get_enrollment(
    api: Arc<Api>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::path!("enrollments" / String)
        .and(warp::get())
        .and(with_api(api.clone()))
        .and(authed(api))
        .and(query())
        .and_then(|id, api, who, query| handlers::get_enrollment(api, who, id, query))
}

fn get_events(
    api: Arc<Api>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::path!("enrollments" / String / "events")
        .and(warp::get())
        .and(with_api(api.clone()))
        .and(authed(api))
        .and_then(|id, api, who| handlers::events(api, who, id))
}

fn get_document(
    api: Arc<Api>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::path!("enrollments" / String / "document")
        .and(warp::get())
        .and(with_api(api.clone()))
        .and(authed(api))
        .and(warp::header::optional::<String>("if-none-match"))
        .and_then(|id, api, who, tag| handlers::document(api, who, id, tag))
}

fn get_document_by_number(
    api: Arc<Api>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::path!("enrollments" / String / "documents" / String)
        .and(warp::get())
        .and(with_api(api.clone()))
        .and(authed(api))
        .and(warp::header::optional::<String>("if-none-match"))
        .and_then(|id, no, api, who, tag| handlers::document_by_number(api, who, id, no, tag))
}

// ---- read model

fn get_mypage(
    api: Arc<Api>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::path!("mypage")
        .and(warp::get())
        .and(with_api(api.clone()))
        .and(authed(api))
        .and(query())
        .and_then(handlers::mypage)
}

fn get_mypage_view(
    api: Arc<Api>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::path!("mypage" / String)
        .and(warp::get())
        .and(with_api(api.clone()))
        .and(authed(api))
        .and_then(|id, api, who| handlers::mypage_view(api, who, id))
}

fn get_alarms(
    api: Arc<Api>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::path!("alarms")
        .and(warp::get())
        .and(with_api(api.clone()))
        .and(authed(api))
        .and(query())
        .and_then(handlers::alarms)
}

// ---- live events

fn get_event_stream(
    api: Arc<Api>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::path!("events" / "stream")
        .and(warp::get())
        .and(with_api(api.clone()))
        .and(authed(api))
        .and(query())
        .and_then(handlers::event_stream)
}
