//! The backend-agnostic suites on the memory backend, plus what only that backend has.

mod engine;
mod event_feed;
mod http;
mod http_auth;
mod http_front_door;
mod http_metrics;
mod http_sse;
mod shutdown;
mod store_contract;
