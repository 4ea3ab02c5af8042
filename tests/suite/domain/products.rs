//! Product definitions (상품): what `Product::new` and `Catalog::register` accept and
//! refuse, the JSON shape (unknown fields are errors) and round trips.

use ezenroll::domain::catalog::{Catalog, CatalogError, demo_specs};
use ezenroll::domain::customer::{BirthDate, Gender, Insured, parse_iso_date};
use ezenroll::domain::money::Won;
use ezenroll::domain::period::{CoveragePeriod, PaymentCycle, Years};
use ezenroll::domain::premium::QuoteInput;
use ezenroll::domain::product::{CoverageKind, Product, ProductSpec};
use serde_json::{Value, json};

/// The demo EZ-TERM definition, as JSON to be bent by each test.
fn ez_term() -> Value {
    json!({
        "code": "EZ-TERM",
        "name": "이지 정기보험",
        "coverage": "term",
        "rateBasis": {
            "interest": 0.025,
            "mortality": { "table": "sult" },
            "loadings": { "alpha": 0.004, "beta": 0.0003, "betaPrime": 0.0, "gamma": 0.03 }
        },
        "underwriting": {
            "entryAge": { "min": 20, "max": 60 },
            "maxMaturityAge": 80,
            "sumInsured": { "min": 10_000_000, "max": 1_000_000_000, "unit": 1_000_000 },
            "coveragePeriods": [10, 20, 30],
            "paymentPeriods": [5, 10, 20, 30],
            "paymentCycles": ["annual", "semiannual", "quarterly", "monthly"],
            "minInstallment": 10_000,
            "maxCumulativeSumInsured": 2_000_000_000
        }
    })
}

/// Replaces the value at a JSON pointer (its parent must exist).
fn set(doc: &mut Value, pointer: &str, value: Value) {
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer with a key");
    let parent = doc
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("no object at {parent:?}"));
    parent.insert(key.to_owned(), value);
}

fn remove(doc: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer with a key");
    doc.pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("no object at {parent:?}"))
        .remove(key)
        .unwrap_or_else(|| panic!("nothing at {pointer:?}"));
}

fn spec(doc: Value) -> ProductSpec {
    serde_json::from_value(doc).expect("a well-formed product definition")
}

/// The reasons a definition is refused for.
fn reasons(doc: Value) -> Vec<String> {
    match Product::new(spec(doc)) {
        Ok(p) => panic!("expected a refusal, got {:?}", p.spec()),
        Err(e) => e.reasons,
    }
}

/// Checks that `reasons` is exactly one reason per expected substring.
fn assert_reasons(reasons: &[String], expected: &[&str]) {
    assert_eq!(
        reasons.len(),
        expected.len(),
        "expected {} reasons, got {reasons:#?}",
        expected.len()
    );
    for part in expected {
        assert!(
            reasons.iter().any(|r| r.contains(part)),
            "no reason mentions {part:?}: {reasons:#?}"
        );
    }
}

/// q_x from age 0, closing with q = 1 at 110: a Gompertz-like curve scaled by `factor`.
fn qx(factor: f64) -> Vec<f64> {
    (0..=110)
        .map(|age| {
            if age == 110 {
                1.0
            } else {
                factor * (0.0002 + 0.00003 * 1.09f64.powi(age))
            }
        })
        .collect()
}

fn custom_mortality(male: &[f64], female: &[f64]) -> Value {
    json!({
        "table": "custom",
        "male": { "startAge": 0, "qx": male },
        "female": { "startAge": 0, "qx": female }
    })
}

/// A term product on its own tables, taking entry ages from 0.
fn custom_term(male: &[f64], female: &[f64]) -> Value {
    let mut doc = ez_term();
    set(&mut doc, "/code", json!("CUSTOM-TERM"));
    set(&mut doc, "/name", json!("자체 사망률 정기보험"));
    set(
        &mut doc,
        "/rateBasis/mortality",
        custom_mortality(male, female),
    );
    set(
        &mut doc,
        "/underwriting/entryAge",
        json!({ "min": 0, "max": 60 }),
    );
    set(&mut doc, "/underwriting/maxMaturityAge", json!(100));
    set(&mut doc, "/underwriting/minInstallment", json!(0));
    doc
}

fn quote_input(gender: Gender, coverage: u64, cycle: PaymentCycle) -> QuoteInput {
    QuoteInput {
        insured: Insured {
            birth_date: BirthDate::parse("1986-01-01").expect("birth date"),
            gender,
        },
        quote_date: parse_iso_date("2026-01-01").expect("quote date"),
        sum_insured: Won::new(100_000_000),
        coverage: CoveragePeriod::Years(Years::new(coverage).expect("coverage")),
        payment_period: Years::new(coverage).expect("payment"),
        cycle,
    }
}

#[test]
fn a_sensible_product_is_accepted() {
    let product = Product::new(spec(ez_term())).expect("EZ-TERM makes sense");
    assert_eq!(product.code().as_str(), "EZ-TERM");
    assert_eq!(product.version(), 1, "a missing version becomes 1");
    assert_eq!(product.spec().version, Some(1));
    assert_eq!(product.coverage(), CoverageKind::Term);
    assert_eq!(product.coverage_years().to_string(), "10, 20, 30");
    assert_eq!(product.payment_years().to_string(), "5, 10, 20, 30");
    assert!(PaymentCycle::ALL.iter().all(|&c| product.allows_cycle(c)));

    // The same JSON as the built-in demo definition.
    let demo = demo_specs()
        .into_iter()
        .find(|s| s.code == "EZ-TERM")
        .expect("demo EZ-TERM");
    assert_eq!(spec(ez_term()), demo);

    let mut catalog = Catalog::new();
    let v1 = catalog.register(spec(ez_term())).expect("registered");
    assert_eq!(v1.product().version(), 1);
    let v2 = catalog.register(spec(ez_term())).expect("a second version");
    assert_eq!(v2.product().version(), 2);
    assert_eq!(catalog.len(), 1);
    assert_eq!(
        catalog.column_sets(),
        1,
        "both versions share the SULT columns"
    );
    v2.quote(&quote_input(Gender::Male, 20, PaymentCycle::Monthly))
        .expect("a quote on the registered product");
}

#[test]
fn every_demo_product_is_accepted() {
    let specs = demo_specs();
    assert_eq!(specs.len(), 3);
    for s in specs {
        let code = s.code.clone();
        Product::new(s).unwrap_or_else(|e| panic!("{code}: {e}"));
    }
}

/// Negative interest, γ out of range, a male table with q outside [0, 1] that does not
/// end in 1, entry age min above max, unit 0, payment longer than any cover.
fn nonsense_with_a_broken_table() -> Value {
    let mut doc = ez_term();
    set(&mut doc, "/rateBasis/interest", json!(-0.01));
    set(&mut doc, "/rateBasis/loadings/gamma", json!(0.6));
    set(
        &mut doc,
        "/rateBasis/mortality",
        custom_mortality(&[0.001, 1.5, 0.2], &qx(1.0)),
    );
    set(
        &mut doc,
        "/underwriting/entryAge",
        json!({ "min": 50, "max": 30 }),
    );
    set(&mut doc, "/underwriting/sumInsured/unit", json!(0));
    set(&mut doc, "/underwriting/coveragePeriods", json!([10, 20]));
    set(&mut doc, "/underwriting/paymentPeriods", json!([5, 10, 30]));
    doc
}

#[test]
fn nonsense_is_refused_with_every_reason() {
    let expected = [
        "interest -0.01 is outside",
        "loading gamma = 0.6 is outside [0, 0.5]",
        "male table: q at age 1 is 1.5, outside [0, 1]",
        "male table: the last q (age 2) is 0.2",
        "entry age min 50 is above max 30",
        "the sum insured unit is 0",
        "payment period 30 is longer than the longest coverage period 20",
    ];
    assert_reasons(&reasons(nonsense_with_a_broken_table()), &expected);
    // Nothing about the female table, which is fine.
    assert!(
        !reasons(nonsense_with_a_broken_table())
            .iter()
            .any(|r| r.starts_with("female"))
    );

    // The catalog refuses it for the same reasons and stays as it was.
    let mut catalog = Catalog::demo();
    match catalog.register(spec(nonsense_with_a_broken_table())) {
        Err(CatalogError::Invalid(e)) => assert_reasons(&e.reasons, &expected),
        Err(other) => panic!("expected an invalid product, got {other}"),
        Ok(p) => panic!("registered nonsense: {:?}", p.product().spec()),
    }
    assert_eq!(catalog.len(), 3);
}

#[test]
fn nonsense_on_a_table_too_short_is_refused_with_every_reason() {
    // Valid tables ending at 90 (ω + 1 = 91), but cover may run to 100.
    let short = |factor: f64| {
        let mut q = qx(factor);
        q.truncate(90);
        q.push(1.0);
        q
    };
    let mut doc = nonsense_with_a_broken_table();
    set(
        &mut doc,
        "/rateBasis/mortality",
        custom_mortality(&short(1.0), &short(0.8)),
    );
    set(&mut doc, "/underwriting/maxMaturityAge", json!(100));
    assert_reasons(
        &reasons(doc),
        &[
            "interest -0.01 is outside",
            "loading gamma = 0.6 is outside [0, 0.5]",
            "the male table is too short for maxMaturityAge 100: it ends at age 90",
            "the female table is too short for maxMaturityAge 100: it ends at age 90",
            "entry age min 50 is above max 30",
            "the sum insured unit is 0",
            "payment period 30 is longer than the longest coverage period 20",
        ],
    );
}

#[test]
fn max_maturity_age_beyond_the_sult_is_refused() {
    let mut doc = ez_term();
    set(&mut doc, "/underwriting/maxMaturityAge", json!(140));
    let reasons = reasons(doc);
    // One unisex table: one reason per gender, or one in all; each names both ages.
    assert!(!reasons.is_empty());
    for r in &reasons {
        assert!(
            r.contains("too short for maxMaturityAge 140") && r.contains("ends at age 130"),
            "{reasons:#?}"
        );
    }
    // ω + 1 = 131 is the last age cover may run to.
    let mut doc = ez_term();
    set(&mut doc, "/underwriting/maxMaturityAge", json!(131));
    Product::new(spec(doc)).expect("cover to the end of the SULT");
}

#[test]
fn whole_life_with_max_maturity_age_is_refused() {
    let wl = demo_specs()
        .into_iter()
        .find(|s| s.code == "EZ-WL")
        .expect("demo EZ-WL");
    let mut doc = serde_json::to_value(&wl).expect("EZ-WL as JSON");
    set(&mut doc, "/underwriting/maxMaturityAge", json!(100));
    assert_reasons(
        &reasons(doc),
        &["maxMaturityAge does not apply to whole-life cover"],
    );
}

#[test]
fn term_without_max_maturity_age_is_refused() {
    let mut doc = ez_term();
    remove(&mut doc, "/underwriting/maxMaturityAge");
    assert_reasons(
        &reasons(doc),
        &["maxMaturityAge is required for term cover"],
    );
}

#[test]
fn endowment_without_max_maturity_age_is_refused() {
    let mut doc = ez_term();
    set(&mut doc, "/coverage", json!("endowment"));
    remove(&mut doc, "/underwriting/maxMaturityAge");
    assert_reasons(
        &reasons(doc),
        &["maxMaturityAge is required for endowment cover"],
    );
}

#[test]
fn custom_tables_price_each_gender_on_its_own() {
    // Female mortality 70% of male at every age but the last.
    let mut female = qx(0.7);
    *female.last_mut().expect("a last age") = 1.0;
    let mut catalog = Catalog::demo();
    let sets_before = catalog.column_sets();
    let priced = catalog
        .register(spec(custom_term(&qx(1.0), &female)))
        .expect("custom-table product");
    assert_eq!(
        catalog.column_sets(),
        sets_before + 2,
        "one column set per gender"
    );

    for coverage in [10, 20, 30] {
        for cycle in [PaymentCycle::Annual, PaymentCycle::Monthly] {
            let male = priced
                .quote(&quote_input(Gender::Male, coverage, cycle))
                .unwrap_or_else(|r| panic!("male: {r}"));
            let female = priced
                .quote(&quote_input(Gender::Female, coverage, cycle))
                .unwrap_or_else(|r| panic!("female: {r}"));
            assert!(
                female.factors.insurance < male.factors.insurance,
                "{coverage} years"
            );
            assert!(
                female.installment < male.installment,
                "{coverage} years {cycle:?}: female {} male {}",
                female.installment.get(),
                male.installment.get()
            );
        }
    }
}

#[test]
fn the_same_custom_table_for_both_genders_prices_them_alike() {
    let mut catalog = Catalog::new();
    let priced = catalog
        .register(spec(custom_term(&qx(1.0), &qx(1.0))))
        .expect("unisex custom table");
    assert_eq!(catalog.column_sets(), 1, "identical tables share columns");
    let male = priced
        .quote(&quote_input(Gender::Male, 20, PaymentCycle::Annual))
        .expect("male");
    let female = priced
        .quote(&quote_input(Gender::Female, 20, PaymentCycle::Annual))
        .expect("female");
    assert_eq!(male, female);
}

#[test]
fn unknown_fields_are_refused_at_every_level() {
    let custom = custom_term(&qx(1.0), &qx(0.8));
    spec(custom.clone());
    for (doc, pointer) in [
        (ez_term(), ""),
        (ez_term(), "/rateBasis"),
        (ez_term(), "/rateBasis/loadings"),
        (ez_term(), "/underwriting"),
        (ez_term(), "/underwriting/entryAge"),
        (ez_term(), "/underwriting/sumInsured"),
        (custom.clone(), "/rateBasis/mortality"),
        (custom.clone(), "/rateBasis/mortality/male"),
        (custom.clone(), "/rateBasis/mortality/female"),
    ] {
        let mut doc = doc;
        set(&mut doc, &format!("{pointer}/bogusField"), json!(1));
        match serde_json::from_value::<ProductSpec>(doc) {
            Ok(s) => panic!("{pointer:?}: an unknown field was accepted: {s:?}"),
            Err(e) => assert!(
                e.to_string().contains("unknown field `bogusField`"),
                "{pointer:?}: {e}"
            ),
        }
    }
}

#[test]
fn unknown_fields_next_to_the_sult_are_refused() {
    let mut doc = ez_term();
    set(&mut doc, "/rateBasis/mortality/bogusField", json!(1));
    assert!(serde_json::from_value::<ProductSpec>(doc).is_err());
}

/// Product → JSON text → ProductSpec → Product, checked to give back the same thing.
fn round_trip_text(product: &Product) -> Product {
    let code = product.code();
    let text = serde_json::to_string(product).expect("product as JSON");
    let back: ProductSpec = serde_json::from_str(&text).expect("JSON as a spec");
    assert_eq!(&back, product.spec(), "{code}: {text}");
    Product::new(back).unwrap_or_else(|e| panic!("{code} again: {e}"))
}

/// The same through `serde_json::Value`, which keeps every `f64` as it is.
fn round_trip_value(product: &Product) -> Product {
    let code = product.code();
    let value = serde_json::to_value(product).expect("product as JSON");
    let back: ProductSpec = serde_json::from_value(value).expect("JSON as a spec");
    assert_eq!(&back, product.spec(), "{code}");
    Product::new(back).unwrap_or_else(|e| panic!("{code} again: {e}"))
}

fn custom_product() -> Product {
    let mut female = qx(0.7);
    *female.last_mut().expect("a last age") = 1.0;
    Product::new(spec(custom_term(&qx(1.0), &female))).expect("custom-table product")
}

#[test]
fn a_product_definition_round_trips() {
    for original in demo_specs() {
        let code = original.code.clone();
        let product = Product::new(original).unwrap_or_else(|e| panic!("{code}: {e}"));
        for again in [round_trip_text(&product), round_trip_value(&product)] {
            assert_eq!(again.spec(), product.spec(), "{code}");
            assert_eq!(again, product, "{code}");
        }
    }
    let custom = custom_product();
    assert_eq!(round_trip_value(&custom), custom);

    // A registered product carries the version the catalog gave it.
    let mut catalog = Catalog::demo();
    let v2 = catalog
        .register(spec(ez_term()))
        .expect("EZ-TERM version 2");
    let value = serde_json::to_value(v2.product()).expect("as JSON");
    assert_eq!(value["version"], json!(2));
    assert_eq!(round_trip_text(v2.product()).spec(), v2.product().spec());
}

#[test]
fn a_custom_table_round_trips_through_json_text() {
    let custom = custom_product();
    assert_eq!(round_trip_text(&custom), custom);
}

#[test]
fn periods_listed_twice_and_an_impossible_minimum_installment_are_refused() {
    let mut doc = ez_term();
    let many: Vec<u32> = std::iter::repeat_n(10, 9_600).chain([20, 20, 30]).collect();
    set(&mut doc, "/underwriting/coveragePeriods", json!(many));
    set(&mut doc, "/underwriting/minInstallment", json!(u64::MAX));
    assert_reasons(
        &reasons(doc),
        &[
            "coverage period 10 is listed 9600 times",
            "coverage period 20 is listed 2 times",
            "the minimum installment 18446744073709551615 is above",
        ],
    );
}

#[test]
fn names_with_control_or_invisible_characters_and_huge_cumulative_limits_are_refused() {
    for name in [
        "이지\u{0}보험",
        "이지\n보험",
        "\u{202e}이지보험",
        "이지\u{200b}보험",
    ] {
        let mut doc = ez_term();
        set(&mut doc, "/name", json!(name));
        assert_reasons(
            &reasons(doc),
            &["the product name contains a control or invisible"],
        );
    }
    let mut doc = ez_term();
    set(
        &mut doc,
        "/underwriting/maxCumulativeSumInsured",
        json!(u64::MAX),
    );
    assert_reasons(
        &reasons(doc),
        &["the cumulative limit 18446744073709551615 is above the supported"],
    );
}

/// The mortality table is an object with its tag, whatever order its fields come in;
/// an array for it or for a table is refused (serde's tagged enum took one).
#[test]
fn the_mortality_table_is_an_object_with_its_tag() {
    let female = json!({"startAge": 0, "qx": qx(0.7)});
    let mut doc = ez_term();
    set(
        &mut doc,
        "/rateBasis/mortality",
        json!({"female": female, "male": {"startAge": 0, "qx": qx(1.0)}, "table": "custom"}),
    );
    assert!(serde_json::from_value::<ProductSpec>(doc).is_ok());
    for (mortality, says) in [
        (
            json!({"table": "sult", "male": female}),
            "takes no `male` table",
        ),
        (
            json!({"table": "sult", "female": female}),
            "takes no `female` table",
        ),
        (
            json!({"table": "custom", "female": female}),
            "missing field `male`",
        ),
        (
            json!({"table": "custom", "male": female}),
            "missing field `female`",
        ),
        (json!({"male": female}), "missing field `table`"),
        (json!({"table": "gompertz"}), "unknown variant `gompertz`"),
    ] {
        let mut doc = ez_term();
        set(&mut doc, "/rateBasis/mortality", mortality.clone());
        let text = doc.to_string();
        let refused = ezenroll::api::json::from_str_with_path::<ProductSpec>(&text)
            .expect_err(&mortality.to_string());
        assert!(
            refused.0.starts_with("rateBasis.mortality"),
            "{mortality}: {refused:?}"
        );
        assert!(refused.1.contains(says), "{mortality}: {refused:?}");
    }
    for mortality in [
        json!(["sult"]),
        json!({"table": "custom", "male": [0, [0.5, 1.0]], "female": female}),
    ] {
        let mut doc = ez_term();
        set(&mut doc, "/rateBasis/mortality", mortality.clone());
        let text = doc.to_string();
        let refused = ezenroll::api::json::from_str_with_path::<ProductSpec>(&text)
            .expect_err(&mortality.to_string());
        assert!(
            refused.1.contains("expected a JSON object"),
            "{mortality}: {refused:?}"
        );
    }
}
