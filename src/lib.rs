//! # ezenroll
//!
//! An insurance-enrollment (보험가입) workflow engine: an actuarial premium core, one
//! supervised actor per enrollment, Redis for durable state and event streams, and a thin
//! warp HTTP gateway. `docs/architecture.md` in the repository has the whole picture.
//!
//! # Layout
//!
//! Dependencies point inward: `http → actors → store → domain`.
//!
//! - [`domain`]: pure rules: money, customers and insurance age, products, mortality,
//!   commutation columns, the premium core and the catalog.
//! - [`api`]: the JSON contract (camelCase DTOs) shared by `ezenroll quote` and the HTTP
//!   gateway, and the batch quote service on top of the catalog.
//! - [`store`]: store traits, the codec, the embedded memory backend and the Redis
//!   backend (a single server or a Redis Cluster).
//! - [`actors`]: the engine: enrollment actors, registry, payment gateway, document
//!   issuer, durable timers, notifier and MyPage consumers, and the `EngineHandle`.
//! - [`http`]: the warp gateway over the engine handle.
//! - [`logging`]: log output batched in memory, written by a background thread.
//! - [`os`]: process-wide operating-system settings (huge pages).

pub mod actors;
pub mod api;
pub mod domain;
pub mod http;
pub mod logging;
pub mod os;
pub mod store;
