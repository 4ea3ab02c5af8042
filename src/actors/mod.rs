//! Actix actors: one supervised [`enrollment::EnrollmentActor`] per enrollment, started and
//! passivated by the [`registry`], and the services it talks to: the [`payment`] gateway
//! (bounded mailbox = circuit breaker), the [`document`] issuer, the durable [`timers`],
//! the event-log [`consumers`] (Notifier, MyPage projector) and the live event [`feed`].
//! [`engine`] starts them all and hands out the typed [`engine::EngineHandle`].

pub mod consumers;
pub mod document;
pub mod engine;
pub mod enrollment;
pub mod feed;
pub mod payment;
pub mod registry;
pub mod timers;

pub use engine::{Engine, EngineConfig, EngineError, EngineHandle, Extensions, PlanRequest};
