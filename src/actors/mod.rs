//! Actix actors: one supervised [`enrollment::EnrollmentActor`] per enrollment, started and
//! passivated by the [`registry`], and the services it talks to: the [`payment`] gateway
//! (bounded mailbox, and a [`breaker`] in front of the [`payment_provider`]), the
//! [`document`] issuer, the durable [`timers`],
//! the event-log [`consumers`] ([`notifier`], MyPage [`projector`]) and the live event
//! [`feed`]. Copies of the server on one store share the enrollments out by partition:
//! [`ownership`] says which this copy owns, [`membership`] keeps that current.
//!
//! What they share is in [`context`] ([`Deps`]), configured by [`config`], failing with
//! [`error`]. [`engine`] starts them all (the only module that wires the others together)
//! and hands out the typed [`handle::EngineHandle`].

pub mod breaker;
pub mod config;
pub mod consumers;
pub mod context;
pub mod document;
pub mod engine;
pub mod enrollment;
pub mod enrollment_payment;
pub mod enrollment_step;
pub mod error;
pub mod feed;
pub mod handle;
pub mod membership;
pub mod notifier;
pub mod ownership;
pub mod payment;
pub mod payment_provider;
pub mod projector;
pub mod registry;
pub mod request;
pub mod timers;

pub use config::EngineConfig;
pub use context::{ChaosHook, Deps, EngineStats, Extensions};
pub use engine::Engine;
pub use error::EngineError;
pub use handle::{EngineHandle, EnrollmentSnapshot, PlanRequest};
