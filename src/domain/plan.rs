//! The terms a saved plan (가입설계) pins: what was quoted, on which product version.

use super::customer::Insured;
use super::money::Won;
use super::period::{CoveragePeriod, PaymentCycle, Years};
use super::premium::{PricedProduct, Quote, QuoteInput};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// The quoted terms a plan pins: the product version it was priced on and the premium.
/// Changing the product later never reprices it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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

/// An EZ-TERM plan of the demo catalog, for the tests of what carries a plan.
#[cfg(test)]
pub(crate) fn demo_plan() -> std::sync::Arc<PlanTerms> {
    use super::catalog::Catalog;
    use super::customer::{BirthDate, Gender};
    let catalog = Catalog::demo();
    let product = catalog.latest("EZ-TERM").expect("a demo product");
    let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("a date");
    let input = QuoteInput {
        insured: Insured {
            birth_date: BirthDate::new(date(1986, 5, 1)).expect("a birth date"),
            gender: Gender::Male,
        },
        quote_date: date(2026, 11, 24),
        sum_insured: Won::new(100_000_000),
        coverage: CoveragePeriod::Years(Years::new(20).expect("years")),
        payment_period: Years::new(20).expect("years"),
        cycle: PaymentCycle::Monthly,
    };
    std::sync::Arc::new(PlanTerms::quote(product, &input).expect("an acceptable quote"))
}
