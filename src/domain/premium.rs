//! The premium core: underwriting first, then the gross premium by the DESIGN.md formula
//! from shared commutation columns. A quote is a handful of loads and one division; it
//! allocates nothing unless it refuses.

use super::commutation::{CommutationColumns, Row};
use super::customer::{AgeError, InsuranceAge, Insured};
use super::money::Won;
use super::mortality::MortalityTable;
use super::period::{CoveragePeriod, PaymentCycle, Years};
use super::product::{CoverageKind, MortalitySpec, Product};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// What a quote is asked for, in domain types (the JSON edge builds it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuoteInput {
    pub insured: Insured,
    pub quote_date: NaiveDate,
    pub sum_insured: Won,
    pub coverage: CoveragePeriod,
    pub payment_period: Years,
    pub cycle: PaymentCycle,
}

/// The actuarial factors a premium was computed from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Factors {
    /// A: the insurance (term, endowment or whole life) per unit sum insured.
    pub insurance: f64,
    /// ä_{x:m}: annuity-due over the payment period.
    pub annuity_due: f64,
    /// ä^(k)_{x:m}: the same paid k times a year.
    pub annuity_due_k: f64,
    /// ä_{x:n}: annuity-due over the coverage period.
    pub annuity_due_coverage: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Quote {
    pub insurance_age: InsuranceAge,
    /// What the customer pays each time: G / k truncated to the won.
    pub installment: Won,
    /// installment × k: what the customer pays in a year.
    pub annualized_premium: Won,
    /// The same for the net premium (all loadings 0), truncated by the same rule.
    pub net_annual_premium: Won,
    pub factors: Factors,
}

/// Stable codes of underwriting refusals; clients switch on these, never on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ViolationCode {
    InsuredNotBorn,
    AgeOutOfRange,
    EntryAgeBelowMinimum,
    EntryAgeAboveMaximum,
    MaturityAgeExceeded,
    SumInsuredBelowMinimum,
    SumInsuredAboveMaximum,
    SumInsuredNotMultipleOfUnit,
    CoveragePeriodNotAllowed,
    PaymentPeriodNotAllowed,
    PaymentPeriodExceedsCoverage,
    PaymentCycleNotAllowed,
    InstallmentBelowMinimum,
    OutsideMortalityTable,
}

impl ViolationCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ViolationCode::InsuredNotBorn => "INSURED_NOT_BORN",
            ViolationCode::AgeOutOfRange => "AGE_OUT_OF_RANGE",
            ViolationCode::EntryAgeBelowMinimum => "ENTRY_AGE_BELOW_MINIMUM",
            ViolationCode::EntryAgeAboveMaximum => "ENTRY_AGE_ABOVE_MAXIMUM",
            ViolationCode::MaturityAgeExceeded => "MATURITY_AGE_EXCEEDED",
            ViolationCode::SumInsuredBelowMinimum => "SUM_INSURED_BELOW_MINIMUM",
            ViolationCode::SumInsuredAboveMaximum => "SUM_INSURED_ABOVE_MAXIMUM",
            ViolationCode::SumInsuredNotMultipleOfUnit => "SUM_INSURED_NOT_MULTIPLE_OF_UNIT",
            ViolationCode::CoveragePeriodNotAllowed => "COVERAGE_PERIOD_NOT_ALLOWED",
            ViolationCode::PaymentPeriodNotAllowed => "PAYMENT_PERIOD_NOT_ALLOWED",
            ViolationCode::PaymentPeriodExceedsCoverage => "PAYMENT_PERIOD_EXCEEDS_COVERAGE",
            ViolationCode::PaymentCycleNotAllowed => "PAYMENT_CYCLE_NOT_ALLOWED",
            ViolationCode::InstallmentBelowMinimum => "INSTALLMENT_BELOW_MINIMUM",
            ViolationCode::OutsideMortalityTable => "OUTSIDE_MORTALITY_TABLE",
        }
    }
}

impl fmt::Display for ViolationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One broken underwriting rule: a stable code and a message with the numbers in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Violation {
    pub code: ViolationCode,
    pub message: String,
}

/// Every rule a request broke, never just the first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub violations: Vec<Violation>,
}

impl Refusal {
    pub fn codes(&self) -> Vec<ViolationCode> {
        self.violations.iter().map(|v| v.code).collect()
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.violations.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", v.code, v.message)?;
        }
        Ok(())
    }
}

/// A product joined to the commutation columns of its tables at its interest rate:
/// everything a quote needs, immutable and shared.
#[derive(Debug, Clone)]
pub struct PricedProduct {
    product: Product,
    /// The code once more, shareable into every answer without copying it.
    code: Arc<str>,
    /// Indexed by gender; products on one unisex table share one `Arc`.
    columns: [Arc<CommutationColumns>; 2],
}

impl PricedProduct {
    pub fn new(product: Product, cache: &mut TableCache) -> PricedProduct {
        let columns = cache.columns_for(&product);
        let code = Arc::from(product.code().as_str());
        PricedProduct {
            product,
            code,
            columns,
        }
    }

    pub fn product(&self) -> &Product {
        &self.product
    }

    pub fn code_arc(&self) -> Arc<str> {
        Arc::clone(&self.code)
    }

    pub fn columns(&self, gender: super::customer::Gender) -> &Arc<CommutationColumns> {
        &self.columns[gender.index()]
    }

    /// Underwriting (all violations together), then the premium.
    pub fn quote(&self, input: &QuoteInput) -> Result<Quote, Refusal> {
        let product = &self.product;
        let uw = product.underwriting();
        // `Vec::new` does not allocate: the accepted path stays allocation-free.
        let mut violations = Vec::new();

        let age = match InsuranceAge::at(input.insured.birth_date, input.quote_date) {
            Ok(age) => Some(age),
            Err(e @ AgeError::BeforeBirth { .. }) => {
                refuse(
                    &mut violations,
                    ViolationCode::InsuredNotBorn,
                    e.to_string(),
                );
                None
            }
            Err(e @ AgeError::Implausible { .. }) => {
                refuse(&mut violations, ViolationCode::AgeOutOfRange, e.to_string());
                None
            }
        };
        if let Some(age) = age {
            let x = age.years();
            if x < uw.entry_age.min {
                refuse(
                    &mut violations,
                    ViolationCode::EntryAgeBelowMinimum,
                    format!(
                        "insurance age {x} is below the minimum entry age {}",
                        uw.entry_age.min
                    ),
                );
            }
            if x > uw.entry_age.max {
                refuse(
                    &mut violations,
                    ViolationCode::EntryAgeAboveMaximum,
                    format!(
                        "insurance age {x} is above the maximum entry age {}",
                        uw.entry_age.max
                    ),
                );
            }
            if let (CoveragePeriod::Years(n), Some(max)) = (input.coverage, uw.max_maturity_age)
                && u16::from(x) + u16::from(n.get()) > u16::from(max)
            {
                refuse(
                    &mut violations,
                    ViolationCode::MaturityAgeExceeded,
                    format!(
                        "insurance age {x} plus {} years of cover ends at age {}, past the maximum maturity age {max}",
                        n.get(),
                        u16::from(x) + u16::from(n.get())
                    ),
                );
            }
        }

        let si = input.sum_insured;
        let rule = uw.sum_insured;
        if si < rule.min {
            refuse(
                &mut violations,
                ViolationCode::SumInsuredBelowMinimum,
                format!(
                    "sum insured {} is below the minimum {}",
                    si.get(),
                    rule.min.get()
                ),
            );
        }
        if si > rule.max {
            refuse(
                &mut violations,
                ViolationCode::SumInsuredAboveMaximum,
                format!(
                    "sum insured {} is above the maximum {}",
                    si.get(),
                    rule.max.get()
                ),
            );
        }
        if !si.is_multiple_of(rule.unit) {
            refuse(
                &mut violations,
                ViolationCode::SumInsuredNotMultipleOfUnit,
                format!(
                    "sum insured {} is not a multiple of {}",
                    si.get(),
                    rule.unit.get()
                ),
            );
        }

        let whole_life = product.coverage() == CoverageKind::WholeLife;
        match input.coverage {
            CoveragePeriod::WholeLife if !whole_life => refuse(
                &mut violations,
                ViolationCode::CoveragePeriodNotAllowed,
                format!(
                    "\"wholeLife\" is the coverage period of whole-life products only; this one offers {} years",
                    product.coverage_years()
                ),
            ),
            CoveragePeriod::Years(n) if whole_life => refuse(
                &mut violations,
                ViolationCode::CoveragePeriodNotAllowed,
                format!(
                    "this whole-life product covers for life: coveragePeriod must be \"wholeLife\", not {}",
                    n.get()
                ),
            ),
            CoveragePeriod::Years(n) if !product.coverage_years().contains(n.get()) => refuse(
                &mut violations,
                ViolationCode::CoveragePeriodNotAllowed,
                format!(
                    "coverage period {} years is not offered; offered: {}",
                    n.get(),
                    product.coverage_years()
                ),
            ),
            _ => {}
        }
        let m = input.payment_period.get();
        if !product.payment_years().contains(m) {
            refuse(
                &mut violations,
                ViolationCode::PaymentPeriodNotAllowed,
                format!(
                    "payment period {m} years is not offered; offered: {}",
                    product.payment_years()
                ),
            );
        }
        if let CoveragePeriod::Years(n) = input.coverage
            && m > n.get()
        {
            refuse(
                &mut violations,
                ViolationCode::PaymentPeriodExceedsCoverage,
                format!(
                    "payment period {m} years is longer than the coverage period {} years",
                    n.get()
                ),
            );
        }
        if !product.allows_cycle(input.cycle) {
            refuse(
                &mut violations,
                ViolationCode::PaymentCycleNotAllowed,
                format!(
                    "payment cycle {} is not offered; offered: {}",
                    input.cycle.as_str(),
                    PaymentCycle::ALL
                        .iter()
                        .filter(|c| product.allows_cycle(**c))
                        .map(|c| c.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }

        let age = match age {
            Some(age) if violations.is_empty() => age,
            _ => return Err(Refusal { violations }),
        };
        let Some(quote) = self.price(age, input) else {
            // Product validation keeps requests that pass underwriting inside the table;
            // this is the guard that keeps a gap there from ever becoming a panic.
            refuse(
                &mut violations,
                ViolationCode::OutsideMortalityTable,
                format!(
                    "the product's mortality table does not cover age {} for this term",
                    age.years()
                ),
            );
            return Err(Refusal { violations });
        };
        let min = uw.min_installment.max(Won::new(1));
        if quote.installment < min {
            refuse(
                &mut violations,
                ViolationCode::InstallmentBelowMinimum,
                format!(
                    "the installment of {} won is below the minimum {} won",
                    quote.installment.get(),
                    min.get()
                ),
            );
            return Err(Refusal { violations });
        }
        Ok(quote)
    }

    /// The premium by DESIGN.md; `None` only if an age falls outside the columns or the
    /// result is not a finite amount.
    #[inline]
    fn price(&self, age: InsuranceAge, input: &QuoteInput) -> Option<Quote> {
        let cols = &self.columns[input.insured.gender.index()];
        let x = age.years();
        let m = input.payment_period.get();
        let end_of_cover = match input.coverage {
            CoveragePeriod::Years(n) => x.checked_add(n.get())?,
            CoveragePeriod::WholeLife => cols.end_age(),
        };
        let end_of_payment = x.checked_add(m)?;
        let at_x: Row = *cols.row(x)?;
        let at_n: Row = *cols.row(end_of_cover)?;
        let at_m: Row = *cols.row(end_of_payment)?;
        if at_x.d <= 0.0 || end_of_payment > end_of_cover {
            return None;
        }

        let term = (at_x.m - at_n.m) / at_x.d;
        let insurance = match self.product.coverage() {
            CoverageKind::Endowment => term + at_n.d / at_x.d,
            CoverageKind::Term | CoverageKind::WholeLife => term,
        };
        let annuity_due = (at_x.n - at_m.n) / at_x.d;
        let annuity_due_coverage = (at_x.n - at_n.n) / at_x.d;
        let k = input.cycle.per_year();
        let kf = f64::from(k);
        let annuity_due_k = annuity_due - (kf - 1.0) / (2.0 * kf) * (1.0 - at_m.d / at_x.d);

        let l = self.product.loadings();
        let s = input.sum_insured.get() as f64;
        let gross = s
            * (insurance
                + l.alpha
                + l.beta * annuity_due
                + l.beta_prime * (annuity_due_coverage - annuity_due))
            / ((1.0 - l.gamma) * annuity_due_k);
        let net = s * insurance / annuity_due_k;

        let installment = Won::truncate(gross / kf)?;
        let net_installment = Won::truncate(net / kf)?;
        Some(Quote {
            insurance_age: age,
            installment,
            annualized_premium: installment.checked_mul(u64::from(k))?,
            net_annual_premium: net_installment.checked_mul(u64::from(k))?,
            factors: Factors {
                insurance,
                annuity_due,
                annuity_due_k,
                annuity_due_coverage,
            },
        })
    }
}

fn refuse(violations: &mut Vec<Violation>, code: ViolationCode, message: String) {
    violations.push(Violation { code, message });
}

/// Commutation columns are built once per (table, interest) and shared by every product
/// that uses them.
#[derive(Debug, Clone, Default)]
pub struct TableCache {
    columns: HashMap<TableKey, Arc<CommutationColumns>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum TableKey {
    Sult {
        interest: u64,
    },
    Custom {
        start_age: u8,
        qx: Vec<u64>,
        interest: u64,
    },
}

impl TableCache {
    pub fn new() -> TableCache {
        TableCache::default()
    }

    /// How many distinct column sets are held.
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    fn columns_for(&mut self, product: &Product) -> [Arc<CommutationColumns>; 2] {
        let interest = product.interest();
        let bits = interest.to_bits();
        let mut get = |key: TableKey, table: &MortalityTable| {
            Arc::clone(
                self.columns
                    .entry(key)
                    .or_insert_with(|| Arc::new(CommutationColumns::build(table, interest))),
            )
        };
        use super::customer::Gender::{Female, Male};
        match product.mortality() {
            MortalitySpec::Sult {} => {
                let cols = get(TableKey::Sult { interest: bits }, product.table(Male));
                [Arc::clone(&cols), cols]
            }
            MortalitySpec::Custom { .. } => [Male, Female].map(|g| {
                let table = product.table(g);
                let key = TableKey::Custom {
                    start_age: table.start_age(),
                    qx: table.qx().iter().map(|q| q.to_bits()).collect(),
                    interest: bits,
                };
                get(key, table)
            }),
        }
    }
}
