//! The terms a saved plan (가입설계) pins: what was quoted, on which product version.

use super::customer::Insured;
use super::money::Won;
use super::period::{CoveragePeriod, PaymentCycle, Years};
use super::premium::{PricedProduct, Quote, QuoteInput};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// The quoted terms a plan pins: the product version it was priced on and the premium.
/// Changing the product later never reprices it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanTerms {
    pub product_code: String,
    pub product_version: u32,
    pub product_name: String,
    pub insured: Insured,
    #[serde(with = "super::time::date")]
    pub quote_date: NaiveDate,
    pub sum_insured: Won,
    pub coverage_period: CoveragePeriod,
    pub payment_period: Years,
    pub payment_cycle: PaymentCycle,
    pub quote: Quote,
}

impl PlanTerms {
    /// Prices `input` on `product` and pins the result, or returns every violation.
    pub fn quote(
        product: &PricedProduct,
        input: &QuoteInput,
    ) -> Result<PlanTerms, super::premium::Refusal> {
        let quote = product.quote(input)?;
        let p = product.product();
        Ok(PlanTerms {
            product_code: p.code().to_string(),
            product_version: p.version(),
            product_name: p.name().to_owned(),
            insured: input.insured,
            quote_date: input.quote_date,
            sum_insured: input.sum_insured,
            coverage_period: input.coverage,
            payment_period: input.payment_period,
            payment_cycle: input.cycle,
            quote,
        })
    }
}
