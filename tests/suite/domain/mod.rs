//! The domain without a store: premiums, products, underwriting, the enrollment aggregate.

mod enrollment_aggregate;
mod premium;
mod products;
mod underwriting;
