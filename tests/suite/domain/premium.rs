//! The premium core against the textbook and against itself: AMLCR values through real
//! products, the identities between term, endowment and whole life, an independent
//! brute-force valuation, and properties over many generated requests.

use chrono::NaiveDate;
use ezenroll::domain::catalog::Catalog;
use ezenroll::domain::customer::{BirthDate, Gender, Insured};
use ezenroll::domain::money::Won;
use ezenroll::domain::mortality::MortalityTable;
use ezenroll::domain::period::{CoveragePeriod, PaymentCycle, Years};
use ezenroll::domain::premium::{PricedProduct, Quote, QuoteInput, TableCache};
use ezenroll::domain::product::{Product, ProductSpec};
use proptest::prelude::*;
use serde_json::json;

const QUOTE_DATE: (i32, u32, u32) = (2026, 11, 24);

fn quote_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(QUOTE_DATE.0, QUOTE_DATE.1, QUOTE_DATE.2).expect("date")
}

/// Born exactly `age` years before the quote date: insurance age = `age`.
fn insured_aged(age: u8, gender: Gender) -> Insured {
    let birth = NaiveDate::from_ymd_opt(QUOTE_DATE.0 - i32::from(age), QUOTE_DATE.1, QUOTE_DATE.2)
        .expect("birth");
    Insured {
        birth_date: BirthDate::new(birth).expect("birth date"),
        gender,
    }
}

/// A product on the SULT with the given cover and interest and no loadings, wide open
/// underwriting: the net premium is what it prices.
fn net_product(coverage: &str, interest: f64) -> PricedProduct {
    let mut underwriting = json!({
        "entryAge": {"min": 20, "max": 120},
        "sumInsured": {"min": 1, "max": 10_000_000_000_i64, "unit": 1},
        "coveragePeriods": (1..=111).collect::<Vec<u32>>(),
        "paymentPeriods": (1..=111).collect::<Vec<u32>>(),
        "paymentCycles": ["annual", "semiannual", "quarterly", "monthly"],
        "minInstallment": 0
    });
    if coverage == "wholeLife" {
        // Paying for 20 years from age 111 reaches ω + 1 = 131, the end of the SULT.
        underwriting["entryAge"] = json!({"min": 20, "max": 111});
        underwriting["paymentPeriods"] = json!((1..=20).collect::<Vec<u32>>());
    } else {
        underwriting["maxMaturityAge"] = json!(131);
    }
    let spec: ProductSpec = serde_json::from_value(json!({
        "code": "NET",
        "name": "net premium test product",
        "coverage": coverage,
        "rateBasis": {
            "interest": interest,
            "mortality": {"table": "sult"},
            "loadings": {"alpha": 0.0, "beta": 0.0, "betaPrime": 0.0, "gamma": 0.0}
        },
        "underwriting": underwriting
    }))
    .expect("spec");
    PricedProduct::new(
        Product::new(spec).expect("valid product"),
        &mut TableCache::new(),
    )
}

fn years(n: u8) -> Years {
    Years::new(u64::from(n)).expect("years")
}

fn price(
    product: &PricedProduct,
    age: u8,
    coverage: CoveragePeriod,
    payment: u8,
    cycle: PaymentCycle,
) -> Quote {
    product
        .quote(&QuoteInput {
            insured: insured_aged(age, Gender::Male),
            quote_date: quote_date(),
            sum_insured: Won::new(100_000_000),
            coverage,
            payment_period: years(payment),
            cycle,
        })
        .unwrap_or_else(|r| panic!("refused: {r}"))
}

#[test]
fn whole_life_product_reproduces_amlcr_at_5_percent() {
    let wl = net_product("wholeLife", 0.05);
    for (age, a_due, ins) in [
        (20, 19.9664, 0.04922),
        (40, 18.4578, 0.12106),
        (60, 14.9041, 0.29028),
    ] {
        let q = price(&wl, age, CoveragePeriod::WholeLife, 1, PaymentCycle::Annual);
        assert!((q.factors.insurance - ins).abs() < 1e-5, "A_{age}");
        assert!(
            (q.factors.annuity_due_coverage - a_due).abs() / a_due < 1e-5,
            "ä_{age}"
        );
    }
}

/// A brute-force valuation from q_x, not using commutation columns at all.
fn brute_force(age: u8, n: u8, m: u8, interest: f64) -> (f64, f64, f64) {
    let table = MortalityTable::sult();
    let v = 1.0 / (1.0 + interest);
    let (mut term, mut annuity, mut survival) = (0.0, 0.0, 1.0);
    for t in 0..n {
        let q = table.q(age + t).expect("inside the table");
        if t < m {
            annuity += v.powi(i32::from(t)) * survival;
        }
        term += v.powi(i32::from(t) + 1) * survival * q;
        survival *= 1.0 - q;
    }
    let pure_endowment = v.powi(i32::from(n)) * survival;
    (term, annuity, pure_endowment)
}

#[test]
fn commutation_results_equal_a_brute_force_valuation() {
    let term = net_product("term", 0.025);
    let endowment = net_product("endowment", 0.025);
    for (age, n, m) in [
        (20, 10, 10),
        (35, 30, 20),
        (50, 20, 5),
        (64, 40, 40),
        (90, 41, 7),
    ] {
        let (a_term, a_due, pure) = brute_force(age, n, m, 0.025);
        let cover = CoveragePeriod::Years(years(n));
        let t = price(&term, age, cover, m, PaymentCycle::Annual);
        let e = price(&endowment, age, cover, m, PaymentCycle::Annual);
        assert!(
            (t.factors.insurance - a_term).abs() < 1e-10,
            "term A at {age}/{n}"
        );
        assert!(
            (t.factors.annuity_due - a_due).abs() < 1e-9,
            "ä at {age}/{m}"
        );
        // endowment = term + pure endowment
        assert!(
            (e.factors.insurance - (t.factors.insurance + pure)).abs() < 1e-10,
            "endowment at {age}/{n}"
        );
    }
}

#[test]
fn whole_life_is_term_to_the_end_of_the_table() {
    let wl = net_product("wholeLife", 0.03);
    let term = net_product("term", 0.03);
    for age in [20, 45, 70, 100, 111] {
        let to_end = 131 - age; // ω + 1 − x
        let w = price(&wl, age, CoveragePeriod::WholeLife, 1, PaymentCycle::Annual);
        let t = price(
            &term,
            age,
            CoveragePeriod::Years(years(to_end)),
            1,
            PaymentCycle::Annual,
        );
        assert!(
            (w.factors.insurance - t.factors.insurance).abs() < 1e-12,
            "age {age}"
        );
        assert!(
            (w.factors.annuity_due_coverage - t.factors.annuity_due_coverage).abs() < 1e-12,
            "age {age}"
        );
    }
}

#[test]
fn with_no_loadings_the_gross_premium_is_the_net_premium() {
    let endowment = net_product("endowment", 0.025);
    for cycle in PaymentCycle::ALL {
        let q = price(&endowment, 40, CoveragePeriod::Years(years(20)), 10, cycle);
        assert_eq!(q.annualized_premium, q.net_annual_premium, "{cycle:?}");
    }
}

#[test]
fn the_gross_premium_follows_the_design_formula() {
    let catalog = Catalog::demo();
    let wl = catalog.latest("EZ-WL").expect("demo product");
    let q = price(wl, 45, CoveragePeriod::WholeLife, 20, PaymentCycle::Monthly);
    let l = wl.product().loadings();
    let f = q.factors;
    let k = 12.0;
    // ä^(k) = ä − (k−1)/(2k)·(1 − D_{x+m}/D_x), recomputed from the columns.
    let cols = wl.columns(Gender::Male);
    let (dx, dxm) = (cols.row(45).expect("row").d, cols.row(65).expect("row").d);
    let annuity_k = f.annuity_due - (k - 1.0) / (2.0 * k) * (1.0 - dxm / dx);
    assert!((f.annuity_due_k - annuity_k).abs() < 1e-12);
    let s = 100_000_000.0;
    let gross = s
        * (f.insurance
            + l.alpha
            + l.beta * f.annuity_due
            + l.beta_prime * (f.annuity_due_coverage - f.annuity_due))
        / ((1.0 - l.gamma) * f.annuity_due_k);
    // Truncated to the won once: G/k − 1 < installment ≤ G/k.
    let installment = q.installment.get() as f64;
    assert!(installment <= gross / k && installment > gross / k - 1.0);
    assert_eq!(q.annualized_premium.get(), q.installment.get() * 12);
    assert!(q.net_annual_premium < q.annualized_premium);
}

#[test]
fn more_installments_a_year_cost_more_in_a_year() {
    let wl = net_product("wholeLife", 0.025);
    let annual = price(&wl, 40, CoveragePeriod::WholeLife, 20, PaymentCycle::Annual);
    let monthly = price(
        &wl,
        40,
        CoveragePeriod::WholeLife,
        20,
        PaymentCycle::Monthly,
    );
    assert!(monthly.annualized_premium > annual.annualized_premium);
    assert!(monthly.factors.annuity_due_k < annual.factors.annuity_due_k);
    assert_eq!(annual.factors.annuity_due_k, annual.factors.annuity_due);
}

fn demo_request() -> impl Strategy<Value = (usize, QuoteInput)> {
    (
        0usize..3,
        (1900i32..2030, 1u32..=12, 1u32..=31),
        (2020i32..2032, 1u32..=12, 1u32..=28),
        0u64..600,
        prop_oneof![1u64..=30, 1u64..=120],
        prop_oneof![1u64..=20, 1u64..=120],
        any::<bool>(),
        0usize..4,
        any::<bool>(),
    )
        .prop_filter_map(
            "a calendar birth date",
            |(product, (by, bm, bd), (qy, qm, qd), si, n, m, whole, cycle, male)| {
                let birth = BirthDate::new(NaiveDate::from_ymd_opt(by, bm, bd)?).ok()?;
                Some((
                    product,
                    QuoteInput {
                        insured: Insured {
                            birth_date: birth,
                            gender: if male { Gender::Male } else { Gender::Female },
                        },
                        quote_date: NaiveDate::from_ymd_opt(qy, qm, qd)?,
                        sum_insured: Won::new(si * 1_000_000),
                        coverage: if whole {
                            CoveragePeriod::WholeLife
                        } else {
                            CoveragePeriod::Years(Years::new(n).ok()?)
                        },
                        payment_period: Years::new(m).ok()?,
                        cycle: PaymentCycle::ALL[cycle],
                    },
                ))
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Any request a customer can form is answered, never a panic; an accepted one has
    /// a positive premium that is installment × k, and finite factors.
    #[test]
    fn every_request_is_answered(
        (which, input) in demo_request(),
    ) {
        let catalog = Catalog::demo();
        let product = ["EZ-TERM", "EZ-WL", "EZ-ENDOW"][which];
        let priced = catalog.latest(product).expect("demo product");
        match priced.quote(&input) {
            Ok(q) => {
                prop_assert!(q.installment.get() >= 1);
                prop_assert!(q.installment >= priced.product().underwriting().min_installment);
                prop_assert_eq!(
                    q.annualized_premium.get(),
                    q.installment.get() * u64::from(input.cycle.per_year())
                );
                prop_assert!(q.net_annual_premium <= q.annualized_premium);
                let f = q.factors;
                for v in [f.insurance, f.annuity_due, f.annuity_due_k, f.annuity_due_coverage] {
                    prop_assert!(v.is_finite() && v > 0.0);
                }
                prop_assert!(f.annuity_due_k <= f.annuity_due);
                prop_assert!(f.annuity_due <= f.annuity_due_coverage);
            }
            Err(refusal) => prop_assert!(!refusal.violations.is_empty()),
        }
    }

    /// Term cover costs more the older the insured, all else equal.
    #[test]
    fn term_premiums_grow_with_age(
        age in 20u8..=59,
        n_index in 0usize..3,
        m_index in 0usize..4,
        cycle in 0usize..4,
        si in 10u64..=1_000,
        male in any::<bool>(),
    ) {
        let catalog = Catalog::demo();
        let term = catalog.latest("EZ-TERM").expect("demo product");
        let n = [10u8, 20, 30][n_index];
        let m = [5u8, 10, 20, 30][m_index].min(n);
        prop_assume!(age + 1 + n <= 80);
        let gender = if male { Gender::Male } else { Gender::Female };
        let at = |age: u8| term.quote(&QuoteInput {
            insured: insured_aged(age, gender),
            quote_date: quote_date(),
            sum_insured: Won::new(si * 1_000_000),
            coverage: CoveragePeriod::Years(years(n)),
            payment_period: years(m),
            cycle: PaymentCycle::ALL[cycle],
        });
        if let (Ok(younger), Ok(older)) = (at(age), at(age + 1)) {
            prop_assert!(older.installment >= younger.installment,
                "age {} pays {} but age {} pays {}", age, younger.installment, age + 1, older.installment);
            prop_assert!(older.factors.insurance > younger.factors.insurance);
        }
    }

    /// Any product definition that is accepted prices every request without a panic.
    #[test]
    fn accepted_products_never_panic(
        interest in 0.0f64..0.2,
        alpha in 0.0f64..0.05,
        beta in 0.0f64..0.01,
        gamma in 0.0f64..0.3,
        start in 0u8..30,
        len in 2usize..100,
        q0 in 0.0f64..0.2,
        growth in 1.0f64..1.3,
        whole in any::<bool>(),
        (age, n, m) in (0u8..140, 1u8..=120, 1u8..=120),
    ) {
        let qx: Vec<f64> = (0..len)
            .map(|i| if i + 1 == len { 1.0 } else { (q0 * growth.powi(i as i32)).min(0.999) })
            .collect();
        let table = json!({"startAge": start, "qx": qx});
        let last = u32::from(start) + len as u32 - 1;
        let mut underwriting = json!({
            "entryAge": {"min": start, "max": last.min(u32::from(start) + 30)},
            "sumInsured": {"min": 1_000_000, "max": 1_000_000_000, "unit": 1_000_000},
            "coveragePeriods": [1, 5, 10, 20, 40, 80, 120],
            "paymentPeriods": [1, 5, 10, 20],
            "paymentCycles": ["annual", "monthly"]
        });
        if !whole {
            underwriting["maxMaturityAge"] = json!(last + 1);
        }
        let spec: ProductSpec = serde_json::from_value(json!({
            "code": "PROP",
            "name": "generated",
            "coverage": if whole { "wholeLife" } else { "endowment" },
            "rateBasis": {
                "interest": interest,
                "mortality": {"table": "custom", "male": table, "female": table},
                "loadings": {"alpha": alpha, "beta": beta, "betaPrime": beta / 2.0, "gamma": gamma}
            },
            "underwriting": underwriting
        })).expect("spec shape");
        if let Ok(product) = Product::new(spec) {
            let priced = PricedProduct::new(product, &mut TableCache::new());
            let result = priced.quote(&QuoteInput {
                insured: insured_aged(age.min(120), Gender::Female),
                quote_date: quote_date(),
                sum_insured: Won::new(100_000_000),
                coverage: if whole { CoveragePeriod::WholeLife } else { CoveragePeriod::Years(years(n)) },
                payment_period: years(m),
                cycle: PaymentCycle::Monthly,
            });
            if let Ok(q) = result {
                prop_assert!(q.installment.get() >= 1);
                prop_assert!(q.factors.annuity_due_k > 0.0);
            }
        }
    }
}
