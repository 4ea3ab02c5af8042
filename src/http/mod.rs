//! The warp HTTP gateway over an [`EngineHandle`]: JSON in camelCase (the same schemas as
//! `ezenroll quote`), `application/problem+json` for every failure, request bodies
//! size-limited, `Idempotency-Key` on writes.
//!
//! # Layout
//!
//! - [`filters`]: one filter per route (path, method, body), composed by [`routes`];
//! - [`handlers`]: one async fn per route, calling the engine;
//! - [`models`]: request DTOs (unknown fields refused, `TryFrom` into domain inputs) and
//!   response bodies;
//! - [`decode`]: every body, query string and path id of a request into typed input, or
//!   a 4xx [`ApiError`](errors::ApiError): the one place handlers read raw input;
//! - [`errors`]: problem documents, the engine-error mapping and the one `recover`;
//! - [`idempotency`]: first-response replay for POST and PUT;
//! - [`auth`]: bearer tokens (HS256 JWT), roles and the access rules;
//! - [`context`]: the settings and state every handler shares ([`Api`]);
//! - [`server`]: binding a socket and the graceful shutdown ([`serve`]);
//! - [`connections`]: accepting connections under a cap, shedding idle ones for new ones;
//! - [`front`]: what every request goes through first: size limits (414, 431), the rate
//!   limit (429), forwarding;
//! - [`rate_limit`]: a token bucket per caller (verified token, else address);
//! - [`forward`]: sending a request about an enrollment to the copy that owns it;
//! - [`openapi`]: the OpenAPI 3.1 document, from the handlers' declarations and types;
//! - [`allow`]: the methods of each path, for 405's `Allow` and for `HEAD`;
//! - [`metrics`]: `GET /metrics` in the Prometheus text format;
//! - [`request_metrics`]: the request counters and durations it reports;
//! - [`sse`]: `GET /events/stream`, the engine's live event feed as server-sent events.
//!
//! Quotes are priced on the request's own task against the engine's catalog snapshot;
//! everything stateful goes through the engine's actors.

pub mod allow;
pub mod auth;
pub mod connections;
pub mod context;
pub mod decode;
pub mod errors;
pub mod filters;
pub mod forward;
pub mod front;
pub mod handlers;
pub mod idempotency;
pub mod metrics;
pub mod models;
pub mod openapi;
pub mod rate_limit;
pub mod request_metrics;
pub mod server;
pub mod sse;

pub use context::{Api, HttpConfig};
pub use filters::routes;
pub use rate_limit::RateLimit;
pub use server::{BindError, bind, serve, serve_on};
