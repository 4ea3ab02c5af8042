//! Every in-process integration test, in one binary so the crate is linked once.
//!
//! - `store_contract`, `engine`, `event_feed`, `http`, `shutdown`: backend-agnostic suites,
//!   checks that take a store; `memory` and `redis_backend` run each on their backend.
//! - `domain`: premiums, products, underwriting and the enrollment aggregate, no store.
//! - `decoders`: property tests of every request decoder, no store and no server.
//! - `redis_fixture`: the fixture that starts redis-servers for the tests, tested itself.
//!
//! The fixtures live in tests/support. Every test makes its own store, server and
//! redis-server (on a port picked free), so the tests run side by side in one process.

#[path = "../support/mod.rs"]
mod support;

#[macro_use]
mod store_contract;
#[macro_use]
mod engine;
#[macro_use]
mod event_feed;
#[macro_use]
mod http;
#[macro_use]
mod shutdown;

mod decoders;
mod domain;
mod memory;
mod redis_backend;
mod redis_fixture;
