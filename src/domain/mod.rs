//! The pure domain: no async, no IO, no actix/redis/warp. Every rule is testable without a
//! runtime; the outer layers put what a decision needs (a quote date, a product version)
//! into its inputs.

pub mod catalog;
pub mod commutation;
pub mod customer;
pub mod document;
pub mod enrollment;
pub mod money;
pub mod mortality;
pub mod period;
pub mod premium;
pub mod product;
pub mod text;
pub mod time;
