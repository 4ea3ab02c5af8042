//! The pure domain: no async, no IO, no actix/redis/warp. Every rule is testable without a
//! runtime; the outer layers put what a decision needs (a quote date, a product version)
//! into its inputs.
//!
//! The enrollment's vocabulary builds upward: [`ids`] and [`status`], the [`plan`] terms
//! and the [`document`], the [`events`] and commands over them, and [`enrollment`], which
//! decides and folds (and re-exports the rest, so `domain::enrollment::*` names it all).

pub mod alarm;
pub mod catalog;
pub mod commutation;
pub mod customer;
pub mod document;
pub mod enrollment;
pub mod events;
pub mod ids;
pub mod money;
pub mod mortality;
pub mod period;
pub mod plan;
pub mod premium;
pub mod product;
pub mod schema;
pub mod status;
pub mod text;
pub mod time;
