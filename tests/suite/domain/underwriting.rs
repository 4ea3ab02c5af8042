//! Underwriting (인수조건) against the demo catalog: one test per violation code, every
//! violation returned together, and what an accepted quote promises.
//!
//! Demo products (src/domain/demo_catalog.json), all on the SULT:
//! - EZ-TERM: entry 20–60, maturity ≤ 80, sum insured 10M–1B by 1M, cover 10/20/30,
//!   payment 5/10/20/30, every cycle, installment ≥ 10,000.
//! - EZ-WL: entry 20–65, sum insured 10M–500M by 1M, payment 10/15/20, annual and
//!   monthly, installment ≥ 30,000.
//! - EZ-ENDOW: entry 20–60, maturity ≤ 80, sum insured 10M–300M by 1M, cover 10/15/20,
//!   payment 5/10/15/20, every cycle, installment ≥ 50,000.

use ezenroll::domain::catalog::{Catalog, demo_specs};
use ezenroll::domain::customer::{BirthDate, Gender, Insured, parse_iso_date};
use ezenroll::domain::money::Won;
use ezenroll::domain::period::{CoveragePeriod, PaymentCycle, Years};
use ezenroll::domain::premium::{PricedProduct, Quote, QuoteInput, Refusal, ViolationCode};
use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

use Gender::{Female, Male};
use PaymentCycle::{Annual, Monthly, Quarterly, Semiannual};
use ViolationCode as V;

static CATALOG: LazyLock<Catalog> = LazyLock::new(Catalog::demo);

/// Every quote below is dated this day unless a test needs another.
const TODAY: &str = "2026-01-01";

const WHOLE_LIFE: CoveragePeriod = CoveragePeriod::WholeLife;

fn years(n: u64) -> CoveragePeriod {
    CoveragePeriod::Years(Years::new(n).expect("test coverage period"))
}

fn input(
    birth: &str,
    date: &str,
    gender: Gender,
    sum: u64,
    coverage: CoveragePeriod,
    payment: u64,
    cycle: PaymentCycle,
) -> QuoteInput {
    QuoteInput {
        insured: Insured {
            birth_date: BirthDate::parse(birth).expect("test birth date"),
            gender,
        },
        quote_date: parse_iso_date(date).expect("test quote date"),
        sum_insured: Won::new(sum),
        coverage,
        payment_period: Years::new(payment).expect("test payment period"),
        cycle,
    }
}

fn product(code: &str) -> &'static Arc<PricedProduct> {
    CATALOG.latest(code).expect("demo product")
}

fn quote(code: &str, input: &QuoteInput) -> Result<Quote, Refusal> {
    product(code).quote(input)
}

/// The refusal, checked to carry exactly `expected` (no more, no fewer, no repeats).
fn refused(code: &str, input: &QuoteInput, expected: &[ViolationCode]) -> Refusal {
    let refusal = match quote(code, input) {
        Ok(q) => panic!("{code}: expected a refusal with {expected:?}, got a quote {q:?}"),
        Err(r) => r,
    };
    let got: HashSet<ViolationCode> = refusal.codes().into_iter().collect();
    let want: HashSet<ViolationCode> = expected.iter().copied().collect();
    assert_eq!(got, want, "{code}: {refusal}");
    assert_eq!(
        refusal.violations.len(),
        expected.len(),
        "{code}: {refusal}"
    );
    refusal
}

/// The one violation of a refusal that carries a single code, checked to mention `parts`.
fn assert_message(refusal: &Refusal, code: ViolationCode, parts: &[&str]) {
    let v = refusal
        .violations
        .iter()
        .find(|v| v.code == code)
        .expect("violation with this code");
    for part in parts {
        assert!(
            v.message.contains(part),
            "{code}: message {:?} does not mention {part:?}",
            v.message
        );
    }
}

// A born 1986-01-01 is 40 on TODAY: a plain, acceptable insured for every demo product.
const BORN_40: &str = "1986-01-01";

#[test]
fn the_baseline_requests_are_accepted() {
    // Each test below breaks exactly one rule of one of these.
    for (code, coverage, payment) in [
        ("EZ-TERM", years(20), 20),
        ("EZ-WL", WHOLE_LIFE, 20),
        ("EZ-ENDOW", years(20), 20),
    ] {
        let i = input(BORN_40, TODAY, Male, 100_000_000, coverage, payment, Annual);
        let q = quote(code, &i).unwrap_or_else(|r| panic!("{code}: {r}"));
        assert_eq!(q.insurance_age.years(), 40, "{code}");
    }
}

#[test]
fn insured_not_born() {
    let i = input(
        "2026-06-01",
        TODAY,
        Male,
        100_000_000,
        years(20),
        20,
        Annual,
    );
    let r = refused("EZ-TERM", &i, &[V::InsuredNotBorn]);
    assert_message(&r, V::InsuredNotBorn, &["2026-06-01", TODAY]);
}

#[test]
fn age_out_of_range() {
    // 160 years old on the quote date: beyond any plausible insurance age (150).
    let i = input(
        "1900-01-01",
        "2060-01-01",
        Female,
        100_000_000,
        years(20),
        20,
        Annual,
    );
    let r = refused("EZ-TERM", &i, &[V::AgeOutOfRange]);
    assert_message(&r, V::AgeOutOfRange, &["150", "2060-01-01"]);
}

#[test]
fn entry_age_below_minimum() {
    // Exactly 19 on the quote date (EZ-TERM takes 20 to 60).
    let i = input(
        "2007-01-01",
        TODAY,
        Male,
        100_000_000,
        years(20),
        20,
        Annual,
    );
    let r = refused("EZ-TERM", &i, &[V::EntryAgeBelowMinimum]);
    assert_message(&r, V::EntryAgeBelowMinimum, &["19", "20"]);
}

#[test]
fn entry_age_below_minimum_counts_insurance_age() {
    // 19 years and 6 months is insurance age 20: accepted, while 19 y 5 m is not.
    let ok = input(
        "2006-07-01",
        TODAY,
        Male,
        100_000_000,
        years(20),
        20,
        Annual,
    );
    let q = quote("EZ-TERM", &ok).unwrap_or_else(|r| panic!("{r}"));
    assert_eq!(q.insurance_age.years(), 20);
    let young = input(
        "2006-07-02",
        TODAY,
        Male,
        100_000_000,
        years(20),
        20,
        Annual,
    );
    let r = refused("EZ-TERM", &young, &[V::EntryAgeBelowMinimum]);
    assert_message(&r, V::EntryAgeBelowMinimum, &["19"]);
}

#[test]
fn entry_age_above_maximum() {
    // 61 with 10 years of cover ends at 71: only the entry age is wrong.
    let i = input(
        "1965-01-01",
        TODAY,
        Male,
        100_000_000,
        years(10),
        10,
        Annual,
    );
    let r = refused("EZ-TERM", &i, &[V::EntryAgeAboveMaximum]);
    assert_message(&r, V::EntryAgeAboveMaximum, &["61", "60"]);
}

#[test]
fn entry_age_above_maximum_whole_life() {
    let i = input(
        "1960-01-01",
        TODAY,
        Female,
        100_000_000,
        WHOLE_LIFE,
        10,
        Annual,
    );
    let r = refused("EZ-WL", &i, &[V::EntryAgeAboveMaximum]);
    assert_message(&r, V::EntryAgeAboveMaximum, &["66", "65"]);
}

#[test]
fn maturity_age_exceeded() {
    // 55 + 30 years = 85, past EZ-TERM's maximum maturity age 80.
    let i = input(
        "1971-01-01",
        TODAY,
        Male,
        100_000_000,
        years(30),
        20,
        Annual,
    );
    let r = refused("EZ-TERM", &i, &[V::MaturityAgeExceeded]);
    assert_message(&r, V::MaturityAgeExceeded, &["55", "30", "85", "80"]);
}

#[test]
fn maturity_age_exactly_at_the_maximum_is_accepted() {
    // 60 + 20 = 80 on EZ-ENDOW (maximum maturity age 80).
    let i = input(
        "1966-01-01",
        TODAY,
        Male,
        100_000_000,
        years(20),
        20,
        Annual,
    );
    let q = quote("EZ-ENDOW", &i).unwrap_or_else(|r| panic!("{r}"));
    assert_eq!(q.insurance_age.years(), 60);
}

#[test]
fn sum_insured_below_minimum() {
    let i = input(BORN_40, TODAY, Male, 5_000_000, years(20), 20, Annual);
    let r = refused("EZ-TERM", &i, &[V::SumInsuredBelowMinimum]);
    assert_message(&r, V::SumInsuredBelowMinimum, &["5000000", "10000000"]);
}

#[test]
fn sum_insured_above_maximum() {
    let i = input(BORN_40, TODAY, Male, 2_000_000_000, years(20), 20, Annual);
    let r = refused("EZ-TERM", &i, &[V::SumInsuredAboveMaximum]);
    assert_message(&r, V::SumInsuredAboveMaximum, &["2000000000", "1000000000"]);
}

#[test]
fn sum_insured_not_multiple_of_unit() {
    let i = input(BORN_40, TODAY, Male, 10_500_000, years(20), 20, Annual);
    let r = refused("EZ-TERM", &i, &[V::SumInsuredNotMultipleOfUnit]);
    assert_message(&r, V::SumInsuredNotMultipleOfUnit, &["10500000", "1000000"]);
}

#[test]
fn coverage_period_whole_life_on_a_term_product() {
    let i = input(BORN_40, TODAY, Male, 100_000_000, WHOLE_LIFE, 20, Annual);
    let r = refused("EZ-TERM", &i, &[V::CoveragePeriodNotAllowed]);
    assert_message(
        &r,
        V::CoveragePeriodNotAllowed,
        &["wholeLife", "10, 20, 30"],
    );
}

#[test]
fn coverage_period_years_on_a_whole_life_product() {
    let i = input(BORN_40, TODAY, Male, 100_000_000, years(20), 20, Annual);
    let r = refused("EZ-WL", &i, &[V::CoveragePeriodNotAllowed]);
    assert_message(&r, V::CoveragePeriodNotAllowed, &["wholeLife", "20"]);
}

#[test]
fn coverage_period_years_not_offered() {
    let i = input(BORN_40, TODAY, Male, 100_000_000, years(15), 10, Annual);
    let r = refused("EZ-TERM", &i, &[V::CoveragePeriodNotAllowed]);
    assert_message(&r, V::CoveragePeriodNotAllowed, &["15", "10, 20, 30"]);
}

#[test]
fn payment_period_not_allowed() {
    let i = input(BORN_40, TODAY, Male, 100_000_000, years(20), 15, Annual);
    let r = refused("EZ-TERM", &i, &[V::PaymentPeriodNotAllowed]);
    assert_message(&r, V::PaymentPeriodNotAllowed, &["15", "5, 10, 20, 30"]);
}

#[test]
fn payment_period_exceeds_coverage() {
    // 20 years of payment is offered, and so are 10 years of cover, but not together.
    let i = input(BORN_40, TODAY, Male, 100_000_000, years(10), 20, Annual);
    let r = refused("EZ-TERM", &i, &[V::PaymentPeriodExceedsCoverage]);
    assert_message(&r, V::PaymentPeriodExceedsCoverage, &["20", "10"]);
}

#[test]
fn payment_cycle_not_allowed() {
    let i = input(BORN_40, TODAY, Male, 100_000_000, WHOLE_LIFE, 20, Quarterly);
    let r = refused("EZ-WL", &i, &[V::PaymentCycleNotAllowed]);
    let message = &r.violations[0].message;
    assert!(
        message.to_lowercase().contains("quarterly"),
        "message {message:?} does not name the cycle"
    );
}

#[test]
fn installment_below_minimum() {
    // 20 years old, the smallest sum insured, 10 years of cover paid monthly: the
    // installment is far under EZ-TERM's 10,000 won.
    let i = input(
        "2006-01-01",
        TODAY,
        Female,
        10_000_000,
        years(10),
        10,
        Monthly,
    );

    // The same product without a minimum tells what the installment is.
    let mut spec = demo_specs()
        .into_iter()
        .find(|s| s.code == "EZ-TERM")
        .expect("EZ-TERM spec");
    spec.underwriting.min_installment = Won::ZERO;
    let unlimited = CATALOG
        .price_unregistered(spec)
        .expect("EZ-TERM without a minimum");
    let installment = unlimited
        .quote(&i)
        .expect("quote without a minimum")
        .installment
        .get();
    assert!(
        (1..10_000).contains(&installment),
        "installment {installment}"
    );

    let r = refused("EZ-TERM", &i, &[V::InstallmentBelowMinimum]);
    assert_message(
        &r,
        V::InstallmentBelowMinimum,
        &[&installment.to_string(), "10000"],
    );
}

#[test]
fn several_violations_come_back_together() {
    // 70 years old (EZ-WL takes 20 to 65), 10.5M (not a multiple of 1M), quarterly
    // (EZ-WL offers annual and monthly).
    let i = input(
        "1956-01-01",
        TODAY,
        Male,
        10_500_000,
        WHOLE_LIFE,
        10,
        Quarterly,
    );
    let r = refused(
        "EZ-WL",
        &i,
        &[
            V::EntryAgeAboveMaximum,
            V::SumInsuredNotMultipleOfUnit,
            V::PaymentCycleNotAllowed,
        ],
    );
    assert_message(&r, V::EntryAgeAboveMaximum, &["70"]);
    assert_message(&r, V::SumInsuredNotMultipleOfUnit, &["10500000"]);
}

#[test]
fn every_rule_is_reported_not_just_the_first() {
    // On EZ-ENDOW: 55 + 30 = 85 is past maturity age 80; 19.5M is within the limits but
    // not a multiple of 1M; 30 years is neither an offered cover (10/15/20) nor an
    // offered payment period (5/10/15/20). Paying 30 years for 30 years of cover is fine.
    let i = input(
        "1971-01-01",
        TODAY,
        Male,
        19_500_000,
        years(30),
        30,
        Monthly,
    );
    refused(
        "EZ-ENDOW",
        &i,
        &[
            V::MaturityAgeExceeded,
            V::SumInsuredNotMultipleOfUnit,
            V::CoveragePeriodNotAllowed,
            V::PaymentPeriodNotAllowed,
        ],
    );
}

#[test]
fn a_valid_request_is_priced_for_every_allowed_cycle() {
    for (code, coverage, payment) in [
        ("EZ-TERM", years(20), 20),
        ("EZ-WL", WHOLE_LIFE, 20),
        ("EZ-ENDOW", years(20), 10),
    ] {
        let priced = product(code);
        let min = priced.product().underwriting().min_installment;
        for cycle in [Annual, Semiannual, Quarterly, Monthly] {
            let allowed = priced.product().allows_cycle(cycle);
            for gender in [Male, Female] {
                let i = input(
                    BORN_40,
                    TODAY,
                    gender,
                    100_000_000,
                    coverage,
                    payment,
                    cycle,
                );
                if !allowed {
                    refused(code, &i, &[V::PaymentCycleNotAllowed]);
                    continue;
                }
                let q = quote(code, &i).unwrap_or_else(|r| panic!("{code} {cycle:?}: {r}"));
                let k = u64::from(cycle.per_year());
                assert_eq!(q.insurance_age.years(), 40);
                assert!(
                    q.installment >= min,
                    "{code} {cycle:?}: installment {} below minimum {}",
                    q.installment.get(),
                    min.get()
                );
                assert_eq!(
                    q.annualized_premium.get(),
                    q.installment.get() * k,
                    "{code} {cycle:?}"
                );
                // Loadings are positive on every demo product: gross above net.
                assert!(
                    q.net_annual_premium < q.annualized_premium,
                    "{code} {cycle:?}: net {} gross {}",
                    q.net_annual_premium.get(),
                    q.annualized_premium.get()
                );
            }
        }
    }
}

#[test]
fn paying_more_often_costs_more_a_year() {
    // ä^(k) falls as k rises, so the annualized premium rises with the cycle.
    let annual = |cycle| {
        let i = input(BORN_40, TODAY, Male, 100_000_000, years(20), 20, cycle);
        quote("EZ-TERM", &i)
            .unwrap_or_else(|r| panic!("{r}"))
            .annualized_premium
    };
    let by_cycle = [Annual, Semiannual, Quarterly, Monthly].map(annual);
    assert!(
        by_cycle.windows(2).all(|w| w[0] < w[1]),
        "{:?}",
        by_cycle.map(Won::get)
    );
}
