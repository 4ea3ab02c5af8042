//! The HTTP API as an OpenAPI 3.1 document (`GET /openapi.json`, `ezenroll openapi`).
//!
//! Each route's operation is declared on its handler (`#[utoipa::path]` in
//! [`super::handlers`]) and every schema is derived from the request, response and error
//! types the handlers use, so the document changes with them. What every route of a
//! kind shares (the problems any authenticated, body-taking or keyed request may meet,
//! the `Idempotency-Key` header, the rate limit) is added here once, by [`Shared`].

use super::errors::Problem;
use super::handlers;
use crate::api::quote::QuoteRequest;
use serde_json::Value;
use std::sync::OnceLock;
use utoipa::openapi::path::{HttpMethod, Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{AllOfBuilder, OneOfBuilder, Schema};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, ObjectBuilder, Ref, RefOr, Required, Type};
use utoipa::{Modify, OpenApi, ToSchema};

/// The media type of every error answer (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The JSON document, built once.
pub fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        serde_json::to_value(ApiDoc::openapi())
            .and_then(|mut doc| {
                bound_integers(&mut doc);
                deny_unknown_fields(&mut doc, "MortalitySpec");
                link(&mut doc);
                serde_json::to_string_pretty(&doc)
            })
            .unwrap_or_else(|e| {
                // Plain data with string keys; this branch exists only so nothing can panic.
                format!("{{\"error\":\"the OpenAPI document could not be written: {e}\"}}")
            })
    })
}

/// The derive writes unsigned integers as `u-int8` … `u-int64`, formats no validator knows;
/// this gives them the bounds of their Rust type and a standard format instead, so a
/// number past them is refused by the document as the server refuses it.
fn bound_integers(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let bound = match map.get("format").and_then(Value::as_str) {
                Some("u-int8" | "uint8") => Some((u64::from(u8::MAX), "int32")),
                Some("u-int16" | "uint16") => Some((u64::from(u16::MAX), "int32")),
                Some("u-int32" | "uint32") => Some((u64::from(u32::MAX), "int64")),
                Some("u-int64" | "uint64") => Some((i64::MAX as u64, "int64")),
                _ => None,
            };
            if let Some((max, format)) = bound {
                map.insert("format".to_owned(), format.into());
                map.insert("minimum".to_owned(), 0.into());
                let narrower = map
                    .get("maximum")
                    .and_then(Value::as_u64)
                    .is_some_and(|m| m < max);
                if !narrower {
                    map.insert("maximum".to_owned(), max.into());
                }
            }
            map.values_mut().for_each(bound_integers);
        }
        Value::Array(items) => items.iter_mut().for_each(bound_integers),
        _ => {}
    }
}

/// `#[serde(deny_unknown_fields)]` on an internally tagged enum: the derive leaves its
/// variants open to other fields, which the server refuses.
fn deny_unknown_fields(doc: &mut Value, schema: &str) {
    let pointer = format!("/components/schemas/{schema}/oneOf");
    if let Some(variants) = doc.pointer_mut(&pointer).and_then(Value::as_array_mut) {
        for variant in variants.iter_mut().filter_map(Value::as_object_mut) {
            variant.insert("additionalProperties".to_owned(), false.into());
        }
    }
}

/// Answers that name a resource another operation takes link to it (`operationId` and
/// the parameter it fills), so a client, or a stateful tester, can follow the workflow.
fn link(doc: &mut Value) {
    /// The operation, its answer's status, the field of its body, and the operations
    /// with the parameter that field fills.
    type Links = &'static [(&'static str, &'static str, &'static str, Targets)];
    type Targets = &'static [(&'static str, &'static str)];
    const LINKS: Links = &[
        (
            "create_enrollment",
            "201",
            "/id",
            &[
                ("get_enrollment", "id"),
                ("resave_plan", "id"),
                ("request_document", "id"),
                ("document", "id"),
                ("events", "id"),
                ("propose", "id"),
                ("retry_payment", "id"),
                ("withdraw", "id"),
                ("mypage_view", "id"),
            ],
        ),
        (
            "create_customer",
            "201",
            "/customerNo",
            &[
                ("customer", "no"),
                ("list_enrollments", "customerNo"),
                ("mypage", "customerNo"),
                ("alarms", "customerNo"),
            ],
        ),
        (
            "create_product",
            "201",
            "/code",
            &[("product", "code"), ("put_product", "code")],
        ),
        ("put_product", "201", "/code", &[("product", "code")]),
        (
            "document",
            "200",
            "/documentNo",
            &[("document_by_number", "documentNo")],
        ),
    ];
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for operation in paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
    {
        let id = operation
            .get("operationId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let Some((_, status, field, targets)) = LINKS.iter().find(|(from, ..)| *from == id) else {
            continue;
        };
        let Some(response) = operation
            .pointer_mut(&format!("/responses/{status}"))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        let mut links = serde_json::Map::new();
        for (target, parameter) in *targets {
            let mut parameters = serde_json::Map::new();
            parameters.insert(
                (*parameter).to_owned(),
                format!("$response.body#{field}").into(),
            );
            if id == "document" {
                parameters.insert("id".to_owned(), "$request.path.id".into());
            }
            links.insert(
                (*target).to_owned(),
                serde_json::json!({"operationId": target, "parameters": parameters}),
            );
        }
        response.insert("links".to_owned(), Value::Object(links));
    }
}

/// The body of `POST /quotes`: one request or an array of them.
#[derive(serde::Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // describes what `QuoteService` parses by hand; never built
pub enum QuoteRequests<'a> {
    #[serde(borrow)]
    One(QuoteRequest<'a>),
    Many(Vec<QuoteRequest<'a>>),
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ezenroll",
        description = "Insurance enrollment (보험가입) as a workflow: save a plan (가입설계), \
            have its product document (상품설명서) issued, submit the proposal (청약) and pay \
            the first premium to become a contract (계약), or withdraw (청약철회) and get the \
            premium refunded. Errors are `application/problem+json`; clients switch on \
            `type`. See docs/http-api.md in the repository for how the routes behave.",
        license(name = "UNLICENSED")
    ),
    paths(
        handlers::livez,
        handlers::readyz,
        super::metrics::metrics,
        openapi_json,
        handlers::quotes,
        handlers::products,
        handlers::product,
        handlers::create_product,
        handlers::put_product,
        handlers::create_customer,
        handlers::customer,
        handlers::create_enrollment,
        handlers::list_enrollments,
        handlers::get_enrollment,
        handlers::resave_plan,
        handlers::request_document,
        handlers::document,
        handlers::document_by_number,
        handlers::events,
        handlers::propose,
        handlers::retry_payment,
        handlers::withdraw,
        handlers::mypage,
        handlers::mypage_view,
        handlers::alarms,
        handlers::event_stream,
    ),
    components(schemas(Problem)),
    modifiers(&Shared),
    tags(
        (name = "health", description = "Liveness, readiness and metrics."),
        (name = "quotes", description = "Premiums, without saving anything."),
        (name = "products", description = "The catalog (상품)."),
        (name = "customers", description = "Customers (고객)."),
        (name = "enrollments", description = "One enrollment's lifecycle: plan, document, proposal, payment, withdrawal."),
        (name = "read model", description = "MyPage (내보험 조회), alarms (알림) and the live event stream."),
    )
)]
pub struct ApiDoc;

/// `GET /openapi.json`: this document.
#[utoipa::path(
    get, path = "/openapi.json", tag = "health",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API.", content_type = "application/json", body = Object))
)]
#[allow(dead_code)] // the route is served by `filters`; this only declares it
fn openapi_json() {}

/// The parts every operation of a kind shares.
struct Shared;

impl Modify for Shared {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An HS256 JWT with `sub`, `role` (`admin` or `customer`), `exp` and `iat`. \
                 Routes whose requirement lists `admin` take an admin's token only; the others \
                 take any, and a customer's reaches only its own data.",
                    ))
                    .build(),
            ),
        );
        if let Some(RefOr::T(schema)) = components.schemas.get_mut("QuoteRequest") {
            name_one_product(schema);
        }
        for (path, item) in doc.paths.paths.iter_mut() {
            let operations = [
                (HttpMethod::Get, item.get.as_mut()),
                (HttpMethod::Post, item.post.as_mut()),
                (HttpMethod::Put, item.put.as_mut()),
            ];
            for (method, operation) in operations {
                if let Some(operation) = operation {
                    share(path, &method, operation);
                }
            }
        }
    }
}

/// Adds to one operation what its kind shares.
fn share(path: &str, method: &HttpMethod, op: &mut Operation) {
    let health = matches!(path, "/livez" | "/readyz" | "/metrics" | "/openapi.json");
    let authed = op.security.as_ref().is_some_and(|s| !s.is_empty());
    // `POST /quotes` changes nothing and takes no key.
    let writes = matches!(method, HttpMethod::Post | HttpMethod::Put) && path != "/quotes";
    let has_body = op.request_body.is_some();
    let has_input = has_body
        || op
            .parameters
            .as_ref()
            .is_some_and(|p| p.iter().any(|p| p.parameter_in != ParameterIn::Header));
    if writes {
        let key = ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "1 to 255 visible ASCII characters. The first answer for a key is kept for \
                 24 hours and a repeat of the same request gets it back without anything \
                 being done twice.",
            ))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(255))
                    .pattern(Some("^[\\x21-\\x7e]+$")),
            ))
            .build();
        op.parameters.get_or_insert_with(Vec::new).push(key);
    }
    let responses = &mut op.responses.responses;
    let mut add = |status: &str, kinds: &str, retry_after: bool| {
        let text = format!("{kinds}.");
        match responses.get_mut(status) {
            Some(RefOr::T(existing)) => {
                if !existing.description.contains(kinds) {
                    existing.description = format!("{} Also {text}", existing.description);
                }
            }
            Some(RefOr::Ref(_)) => {}
            None => {
                responses.insert(status.to_owned(), RefOr::T(problem(&text, retry_after)));
            }
        }
    };
    if has_input {
        add(
            "400",
            "`malformed-request`, `malformed-query` or `malformed-header`: the body, the query or a header does not parse; `path` or the detail names the field",
            false,
        );
    }
    if has_body {
        add(
            "413",
            "`payload-too-large`: the body is over the server's limit",
            false,
        );
        add(
            "415",
            "`unsupported-media-type`: a body not sent as `application/json`",
            false,
        );
    }
    if authed {
        add(
            "401",
            "`unauthorized`: no token, or one that is not valid (`WWW-Authenticate` says so)",
            false,
        );
        add(
            "403",
            "`forbidden`: a customer's token on an admin's route, or a forged `ezenroll-forwarded` header",
            false,
        );
    }
    if writes {
        add(
            "409",
            "`idempotency-key-in-use`: another request with this `Idempotency-Key` is still being worked on",
            true,
        );
        add(
            "422",
            "`idempotency-key-reused`: this `Idempotency-Key` was used for another request",
            false,
        );
    }
    if !health {
        add(
            "429",
            "`rate-limited`: this caller sent more than its rate",
            true,
        );
        add(
            "503",
            "`store-unavailable`, `shutting-down`, `ownership-moving` or `too-many-connections`: \
             try again after `Retry-After`",
            true,
        );
    }
    add(
        "414",
        "`uri-too-long`: the request target is over 8 KiB",
        false,
    );
    add(
        "431",
        "`request-header-fields-too-large`: the header fields are over 16 KiB",
        false,
    );
    add(
        "500",
        "`internal`: a bug; the detail gives an incident id that is also in the log",
        false,
    );
    if writes {
        for (status, response) in responses.iter_mut() {
            if let (true, RefOr::T(response)) = (status.starts_with('2'), response) {
                replayed(response);
            }
        }
    }
}

/// `POST /quotes` prices either an inline `product` (which carries its own version) or
/// a `productCode` (with an optional `productVersion`), never both and never neither: a
/// rule over two fields, which the derive cannot state.
fn name_one_product(schema: &mut Schema) {
    let original = std::mem::take(schema);
    let inline = ObjectBuilder::new()
        .required("product")
        .property("product", ObjectBuilder::new().schema_type(Type::Object))
        .property("productCode", ObjectBuilder::new().schema_type(Type::Null))
        .property(
            "productVersion",
            ObjectBuilder::new().schema_type(Type::Null),
        );
    let named = ObjectBuilder::new()
        .required("productCode")
        .property("product", ObjectBuilder::new().schema_type(Type::Null))
        .property(
            "productCode",
            ObjectBuilder::new().schema_type(Type::String),
        );
    *schema = AllOfBuilder::new()
        .item(original)
        .item(OneOfBuilder::new().item(inline).item(named))
        .description(Some(
            "A quote request. Either `product` (a whole definition, which carries its own \
             version) or `productCode` (optionally with `productVersion`) names what to price.",
        ))
        .into();
}

/// A problem answer, with `Retry-After` where the problem says when to try again.
fn problem(description: &str, retry_after: bool) -> Response {
    let mut response = ResponseBuilder::new().description(description).content(
        PROBLEM_JSON,
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    );
    if retry_after {
        response = response.header("Retry-After", seconds());
    }
    response.build()
}

fn seconds() -> utoipa::openapi::Header {
    HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        )
        .description(Some("Seconds to wait before trying again."))
        .build()
}

/// `Idempotent-Replayed` on the answers of keyed writes.
fn replayed(response: &mut Response) {
    response.headers.insert(
        "Idempotent-Replayed".to_owned(),
        HeaderBuilder::new()
            .schema(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["true", "recovered"])),
            )
            .description(Some(
                "`true`: the kept answer of an earlier request with this key; `recovered`: \
                 an earlier try took the step and its answer was lost, so this is the \
                 enrollment as it is now.",
            ))
            .build(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        serde_json::from_str(document()).unwrap_or_default()
    }

    /// The document names exactly the routes the server has, with their methods (the
    /// `Allow` table, which the HTTP tests hold to the routes themselves).
    #[test]
    fn the_document_names_every_route_and_method_the_server_has() {
        let doc = doc();
        assert_eq!(doc["openapi"], "3.1.0");
        let Some(paths) = doc["paths"].as_object() else {
            panic!("no paths in {doc}");
        };
        let mut documented: Vec<(String, String)> = Vec::new();
        for (path, item) in paths {
            let pattern: Vec<&str> = path
                .split('/')
                .map(|s| if s.starts_with('{') { "*" } else { s })
                .collect();
            for method in item.as_object().into_iter().flat_map(|m| m.keys()) {
                documented.push((pattern.join("/"), method.to_uppercase()));
            }
        }
        let mut served: Vec<(String, String)> = super::super::allow::ROUTES
            .iter()
            .flat_map(|(p, ms)| ms.iter().map(move |m| ((*p).to_owned(), (*m).to_owned())))
            .collect();
        documented.sort();
        served.sort();
        assert_eq!(documented, served);
    }

    #[test]
    fn operations_say_who_may_call_them_and_what_they_can_answer() {
        let doc = doc();
        let op = |path: &str, method: &str| doc["paths"][path][method].clone();
        assert_eq!(
            op("/customers", "post")["security"][0]["bearer"][0],
            "admin"
        );
        assert!(op("/quotes", "post")["security"].is_null());
        let create = op("/enrollments", "post");
        for status in [
            "201", "400", "401", "403", "404", "409", "413", "415", "422", "429", "503",
        ] {
            assert!(
                create["responses"][status].is_object(),
                "POST /enrollments {status}"
            );
        }
        assert_eq!(
            create["responses"]["422"]["content"][PROBLEM_JSON]["schema"]["$ref"],
            "#/components/schemas/Problem"
        );
        assert!(
            create["parameters"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["name"] == "Idempotency-Key"))
        );
        assert_eq!(
            create["responses"]["201"]["links"]["propose"]["parameters"]["id"],
            "$response.body#/id"
        );
        let cursor = op("/enrollments", "get")["parameters"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == "cursor").cloned())
            .unwrap_or_default();
        assert_eq!(cursor["schema"]["pattern"], crate::store::CURSOR_PATTERN);
        assert!(
            op("/events/stream", "get")["responses"]["200"]["content"]["text/event-stream"]
                .is_object()
        );
        // Unsigned integers carry the bounds of their type.
        let age = &doc["components"]["schemas"]["AgeRange"]["properties"]["min"];
        assert_eq!(
            (age["minimum"].as_u64(), age["maximum"].as_u64()),
            (Some(0), Some(255))
        );
    }
}
