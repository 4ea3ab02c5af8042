//! The JSON contract (camelCase), shared by `ezenroll quote` and the HTTP gateway, and
//! the quote service that turns requests into domain inputs against a catalog snapshot.

pub mod json;
pub mod quote;
pub mod whole_numbers;

pub use quote::{Answer, InputError, InputErrorKind, QuoteOutcome, QuoteRequest, QuoteService};
