//! Every request decoder fed what an abuse probe sends: random JSON trees of mixed types,
//! random bytes, and valid bodies mutated (a field of the wrong type, an array for an
//! object, numbers past any range, strings with control characters, fields removed,
//! repeated or unknown). Each is decoded through the function its route calls
//! (`ezenroll::http::decode`), and the answer is a value (checked to be a valid one) or
//! an `ApiError` whose response is a 4xx `application/problem+json` with a detail. A
//! panic fails the property.
//!
//! The HTTP routes themselves are probed with a sample of these bodies over a real socket
//! by tests/suite/http/bad_input.rs.

use ezenroll::actors::EngineError;
use ezenroll::api::QuoteService;
use ezenroll::domain::catalog::{Catalog, CatalogError, demo_specs};
use ezenroll::domain::product::Product;
use ezenroll::http::decode;
use ezenroll::http::errors::ApiError;
use proptest::prelude::*;
use serde_json::{Value, json};
use std::sync::{Arc, OnceLock};

/// Cases per decoder and input kind: enough to find a missed shape, few enough that the
/// suite stays fast in a debug build.
const CASES: u32 = 256;

// ---- what is fed

/// JSON texts that are out of range or of a wrong kind almost anywhere.
const BAD_RAW: &[&str] = &[
    "null",
    "true",
    "0",
    "-1",
    "1.5",
    "-0.0",
    "1e308",
    "-1e308",
    "1e400",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "\"\"",
    "\" \"",
    "\"\\u0000\"",
    "\"김\\u0007\\u001b[2J보험\"",
    "\"\\u202eevil\\u202c\"",
    "\"\\ud800\"",
    "\"0000-01-01\"",
    "\"9999-12-31\"",
    "\"2026-02-30\"",
    "\"1986-5-1\"",
    "\"C000000000\"",
    "\"C1\"",
    "\"wholeLife\"",
    "\"monthly\"",
    "\"card\"",
    "\"sult\"",
    "[]",
    "{}",
    "[1, 2]",
    "[\"1986-05-01\", \"male\"]",
    "{\"table\": \"custom\"}",
];

/// A JSON text of `depth` nested arrays or objects.
fn nested(depth: usize, objects: bool) -> String {
    if objects {
        format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
    } else {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }
}

/// Strings as they come: any characters, control characters among them, long ones too.
fn arb_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\\x00-\\x1f가-힣a-zA-Z0-9 \\-]{0,12}",
        (0usize..3, 1usize..12_000).prop_map(|(c, n)| ["가", "1", "\u{0}"][c].repeat(n)),
    ]
}

fn arb_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(Value::from),
        (0u64..200).prop_map(Value::from),
    ]
}

/// Keys that are fields of some request, and others.
fn arb_key() -> impl Strategy<Value = String> {
    const FIELDS: &[&str] = &[
        "name",
        "birthDate",
        "gender",
        "mobilePhone",
        "customerNo",
        "productCode",
        "productVersion",
        "product",
        "sumInsured",
        "coveragePeriod",
        "paymentPeriod",
        "paymentCycle",
        "paymentMethod",
        "insured",
        "quoteDate",
        "code",
        "version",
        "coverage",
        "rateBasis",
        "underwriting",
        "table",
        "male",
        "female",
    ];
    prop_oneof![
        3 => proptest::sample::select(FIELDS).prop_map(str::to_owned),
        1 => arb_string(),
    ]
}

/// Any JSON tree of mixed types, a few levels deep.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        arb_number(),
        arb_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((arb_key(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// Every JSON pointer in `doc`, the document itself (`""`) first.
fn pointers(doc: &Value) -> Vec<String> {
    fn walk(at: String, v: &Value, out: &mut Vec<String>) {
        out.push(at.clone());
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let key = k.replace('~', "~0").replace('/', "~1");
                    walk(format!("{at}/{key}"), v, out);
                }
            }
            Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    walk(format!("{at}/{i}"), v, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(String::new(), doc, &mut out);
    out
}

/// How a valid body is broken.
#[derive(Debug, Clone)]
enum Mutation {
    /// The value at the pointer replaced by a JSON text (any, not only what serde_json
    /// writes: `1e400`, `18446744073709551616`, deep nesting).
    Raw(String),
    /// The value replaced by a random tree.
    Tree(Value),
    /// An object as the array of its values; anything else inside an array.
    ArrayForObject,
    /// The field or element removed (the document itself: an empty body).
    Remove,
    /// An object with its first entry repeated.
    DuplicateKey,
    /// An object with one more field.
    Unknown(String, Value),
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => proptest::sample::select(BAD_RAW).prop_map(|r| Mutation::Raw(r.to_owned())),
        1 => (1usize..400, any::<bool>()).prop_map(|(d, o)| Mutation::Raw(nested(d, o))),
        2 => arb_string().prop_map(|s| Mutation::Tree(Value::String(s))),
        2 => arb_json().prop_map(Mutation::Tree),
        3 => Just(Mutation::ArrayForObject),
        1 => Just(Mutation::Remove),
        1 => Just(Mutation::DuplicateKey),
        1 => (arb_key(), arb_json()).prop_map(|(k, v)| Mutation::Unknown(k, v)),
    ]
}

/// What stands in for a raw JSON text while the document is serialized.
const PLACEHOLDER: &str = "\u{1}raw\u{1}";

/// `doc` as text, broken at its `choice`-th pointer (modulo their number) by `m`.
fn mutate(doc: &Value, choice: usize, m: &Mutation) -> String {
    let all = pointers(doc);
    let at = &all[choice % all.len()];
    let mut doc = doc.clone();
    if let Mutation::Remove = m {
        let Some((parent, key)) = at.rsplit_once('/') else {
            return String::new();
        };
        match doc.pointer_mut(parent) {
            Some(Value::Object(o)) => {
                o.remove(&key.replace("~1", "/").replace("~0", "~"));
            }
            Some(Value::Array(a)) => {
                if let Ok(i) = key.parse::<usize>()
                    && i < a.len()
                {
                    a.remove(i);
                }
            }
            _ => {}
        }
        return doc.to_string();
    }
    let mut raw = None;
    let Some(target) = doc.pointer_mut(at) else {
        return doc.to_string();
    };
    match m {
        Mutation::Raw(text) => {
            raw = Some(text.clone());
            *target = Value::String(PLACEHOLDER.to_owned());
        }
        Mutation::Tree(v) => *target = v.clone(),
        Mutation::ArrayForObject => {
            *target = match target.take() {
                Value::Object(m) => Value::Array(m.into_iter().map(|(_, v)| v).collect()),
                other => json!([other]),
            }
        }
        Mutation::Remove => {}
        Mutation::DuplicateKey => {
            if let Value::Object(m) = target
                && let Some((k, v)) = m.iter().next()
            {
                let first = format!("{}:{}", Value::from(k.as_str()), v);
                let whole = Value::Object(m.clone()).to_string();
                let rest = whole.strip_prefix('{').unwrap_or(&whole);
                raw = Some(format!("{{{first},{rest}"));
                *target = Value::String(PLACEHOLDER.to_owned());
            }
        }
        Mutation::Unknown(k, v) => {
            if let Value::Object(m) = target {
                m.insert(k.clone(), v.clone());
            }
        }
    }
    let text = doc.to_string();
    let placeholder = Value::from(PLACEHOLDER).to_string();
    match raw {
        Some(r) => text.replace(&placeholder, &r),
        None => text,
    }
}

/// A body: a random tree, random bytes, random text, or a valid body broken.
fn arb_body(valid: Value) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => arb_json().prop_map(|v| v.to_string().into_bytes()),
        1 => proptest::collection::vec(any::<u8>(), 0..256),
        1 => arb_string().prop_map(String::into_bytes),
        6 => (any::<usize>(), arb_mutation())
            .prop_map(move |(choice, m)| mutate(&valid, choice, &m).into_bytes()),
    ]
}

/// `n` bodies as the properties are fed them (`valid` broken, random trees, bytes and
/// text), the same ones on every run: for the HTTP routes, probed over a socket.
pub fn sample(valid: Value, n: usize) -> Vec<Vec<u8>> {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = arb_body(valid);
    (0..n)
        .filter_map(|_| strategy.new_tree(&mut runner).ok())
        .map(|tree| tree.current())
        .collect()
}

// ---- the valid bodies broken

fn customer() -> Value {
    json!({"name": "김보험", "birthDate": "1986-05-01", "gender": "male",
           "mobilePhone": "010-1234-5678"})
}

fn plan() -> Value {
    json!({"customerNo": "C000000001", "productCode": "EZ-TERM", "sumInsured": 100_000_000u64,
           "coveragePeriod": 20, "paymentPeriod": 20, "paymentCycle": "monthly"})
}

fn proposal() -> Value {
    json!({"paymentMethod": "bankTransfer"})
}

fn product() -> Value {
    let spec = demo_specs().into_iter().next().expect("a demo product");
    serde_json::to_value(spec).expect("a product as JSON")
}

fn custom_table_product() -> Value {
    let mut p = product();
    let qx: Vec<f64> = (0..=110)
        .map(|a| {
            if a == 110 {
                1.0
            } else {
                0.001 + f64::from(a) * 0.005
            }
        })
        .collect();
    p["rateBasis"]["mortality"] = json!({"table": "custom",
        "male": {"startAge": 0, "qx": qx}, "female": {"startAge": 0, "qx": qx}});
    p
}

fn quote() -> Value {
    json!({"productCode": "EZ-TERM", "insured": {"birthDate": "1986-05-01", "gender": "male"},
           "quoteDate": "2026-11-24", "sumInsured": 100_000_000u64, "coveragePeriod": 20,
           "paymentPeriod": 20, "paymentCycle": "monthly"})
}

fn inline_quote() -> Value {
    let mut q = quote();
    q.as_object_mut().map(|o| o.remove("productCode"));
    q["product"] = product();
    q
}

// ---- what must come out

/// Asserts `e` answers a 4xx problem+json with a detail, as the route would send it.
fn assert_4xx(e: ApiError, input: &[u8]) -> Result<(), TestCaseError> {
    let shown = String::from_utf8_lossy(input);
    let shown: String = shown.chars().take(300).collect();
    let problem = e.clone().into_problem();
    prop_assert!(
        problem.status_code().is_client_error(),
        "{} for {shown:?}: {}",
        problem.status,
        problem.detail
    );
    prop_assert!(!problem.detail.is_empty(), "no detail for {shown:?}");
    let response = e.into_response();
    prop_assert!(response.status().is_client_error());
    prop_assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    Ok(())
}

fn catalog() -> &'static Arc<Catalog> {
    static CATALOG: OnceLock<Arc<Catalog>> = OnceLock::new();
    CATALOG.get_or_init(|| Arc::new(Catalog::demo()))
}

/// A decoded product definition goes on to the catalog's check, which must not panic on
/// it either: it is accepted, or refused with reasons (422 `invalid-product`).
fn check_product(body: &[u8]) -> Result<(), TestCaseError> {
    match decode::product(body) {
        Err(e) => assert_4xx(e, body),
        Ok(spec) => match Product::new(spec.clone()) {
            Ok(_) => {
                // Pricing builds its commutation columns: no panic there either.
                let _ = catalog().price_unregistered(spec);
                Ok(())
            }
            Err(invalid) => {
                prop_assert!(!invalid.reasons.is_empty());
                let e = ApiError::Engine(EngineError::Catalog(CatalogError::Invalid(invalid)));
                prop_assert_eq!(e.into_problem().status, 422);
                Ok(())
            }
        },
    }
}

/// Quotes are priced as well as parsed: an answer is JSON, a failure a 4xx.
fn check_quote(body: &[u8]) -> Result<(), TestCaseError> {
    let service = QuoteService::new(Arc::clone(catalog()));
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 24).expect("a date");
    let mut out = Vec::new();
    match decode::quotes(&service, body, today, &mut out) {
        Err(e) => assert_4xx(e, body),
        Ok(()) => {
            let answer: Result<Value, _> = serde_json::from_slice(&out);
            prop_assert!(answer.is_ok(), "the answer is not JSON");
            Ok(())
        }
    }
}

fn check<T>(
    decoded: Result<T, ApiError>,
    input: &[u8],
    valid: impl FnOnce(T) -> bool,
) -> Result<(), TestCaseError> {
    match decoded {
        Ok(v) => {
            prop_assert!(
                valid(v),
                "an invalid value decoded from {:?}",
                String::from_utf8_lossy(input)
            );
            Ok(())
        }
        Err(e) => assert_4xx(e, input),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn customer_bodies_decode_or_are_4xx(body in arb_body(customer())) {
        check(decode::customer(&body), &body, |c| {
            let name = c.name.as_str();
            !name.is_empty() && !name.chars().any(char::is_control) && name.chars().count() <= 50
        })?;
    }

    #[test]
    fn plan_bodies_decode_or_are_4xx(body in arb_body(plan())) {
        check(decode::plan(&body), &body, |p| {
            (1..=32).contains(&p.product_code.as_str().len())
                && (1..=120).contains(&p.payment_period.get())
        })?;
    }

    #[test]
    fn proposal_bodies_decode_or_are_4xx(body in arb_body(proposal())) {
        check(decode::proposal(&body), &body, |_| true)?;
    }

    #[test]
    fn product_bodies_decode_or_are_4xx(body in arb_body(product())) {
        check_product(&body)?;
    }

    #[test]
    fn custom_table_product_bodies_decode_or_are_4xx(body in arb_body(custom_table_product())) {
        check_product(&body)?;
    }

    #[test]
    fn quote_requests_decode_or_are_4xx(body in arb_body(quote())) {
        check_quote(&body)?;
    }

    #[test]
    fn quote_bursts_decode_or_are_4xx(body in arb_body(json!([quote(), quote()]))) {
        check_quote(&body)?;
    }

    #[test]
    fn inline_product_quotes_decode_or_are_4xx(body in arb_body(inline_quote())) {
        check_quote(&body)?;
    }
}

/// Every object of `doc` (by pointer) with the place a problem names it by: `""` for
/// the document, `insured.birthDate`, `[0].insured`.
fn objects(doc: &Value) -> Vec<(String, String)> {
    pointers(doc)
        .into_iter()
        .filter(|p| doc.pointer(p).is_some_and(Value::is_object))
        .map(|p| {
            let place = p.split('/').skip(1).fold(String::new(), |at, seg| {
                match (seg.parse::<usize>(), at.is_empty()) {
                    (Ok(i), _) => format!("{at}[{i}]"),
                    (Err(_), true) => seg.to_owned(),
                    (Err(_), false) => format!("{at}.{seg}"),
                }
            });
            (p, place)
        })
        .collect()
}

/// The bug the probe found, as a property: an array in place of any object of a valid
/// body, however deep, is refused with 400 naming that place and an object.
fn assert_array_refused(
    valid: &Value,
    choice: usize,
    decode: impl Fn(&[u8]) -> Result<(), ApiError>,
) -> Result<(), TestCaseError> {
    let all = objects(valid);
    let (pointer, place) = &all[choice % all.len()];
    // A quote request sent as an array is a burst, whose first element is no request.
    let quote = valid.get("insured").is_some();
    let place = if place.is_empty() && quote {
        "[0]"
    } else {
        place
    };
    let mut doc = valid.clone();
    if let Some(target) = doc.pointer_mut(pointer)
        && let Value::Object(m) = target.take()
    {
        *target = Value::Array(m.into_iter().map(|(_, v)| v).collect());
    }
    let body = doc.to_string();
    let problem = match decode(body.as_bytes()) {
        Ok(()) => return Err(TestCaseError::fail(format!("{body} was accepted"))),
        Err(e) => e.into_problem(),
    };
    prop_assert_eq!(problem.status, 400, "{}", &problem.detail);
    prop_assert!(
        problem.detail.contains("expected a JSON object"),
        "{}: {}",
        place,
        &problem.detail
    );
    prop_assert_eq!(problem.path.as_deref().unwrap_or(""), place);
    Ok(())
}

fn quoted_body(body: &[u8]) -> Result<(), ApiError> {
    let service = QuoteService::new(Arc::clone(catalog()));
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 24).expect("a date");
    decode::quotes(&service, body, today, &mut Vec::new())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn an_array_for_any_object_is_refused_naming_it(which in 0usize..7, choice in any::<usize>()) {
        match which {
            0 => assert_array_refused(&customer(), choice, |b| decode::customer(b).map(drop))?,
            1 => assert_array_refused(&plan(), choice, |b| decode::plan(b).map(drop))?,
            2 => assert_array_refused(&proposal(), choice, |b| decode::proposal(b).map(drop))?,
            3 => assert_array_refused(&product(), choice, |b| decode::product(b).map(drop))?,
            4 => assert_array_refused(&custom_table_product(), choice, |b| decode::product(b).map(drop))?,
            5 => assert_array_refused(&json!([quote(), quote()]), choice, quoted_body)?,
            _ => assert_array_refused(&inline_quote(), choice, quoted_body)?,
        }
    }
}

// ---- query strings and path ids

/// Values a query parameter might be given.
fn arb_query_value() -> impl Strategy<Value = String> {
    const VALUES: &[&str] = &[
        "",
        "0",
        "1",
        "-1",
        "30",
        "31",
        "1000",
        "1001",
        "1e3",
        "99999999999999999999",
        "abc",
        "Planned",
        "DocumentRequested",
        "Sleeping",
        "planned",
        "C000000001",
        "C1",
        "01900000-0000-7000-8000-000000000000",
        "1795000000123456.01900000-0000-7000-8000-000000000000",
        "12.not-an-id",
        "EZ-TERM",
        "ez-term",
        "\u{0}",
        "가",
    ];
    prop_oneof![
        3 => proptest::sample::select(VALUES).prop_map(str::to_owned),
        1 => arb_string(),
    ]
}

/// A query string of `names` (and others) with values as above, encoded; or any text.
fn arb_query(names: &'static [&'static str]) -> impl Strategy<Value = String> {
    let name = prop_oneof![
        4 => proptest::sample::select(names).prop_map(str::to_owned),
        1 => arb_string(),
    ];
    prop_oneof![
        4 => proptest::collection::vec((name, arb_query_value()), 0..5).prop_map(|pairs| {
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        }),
        1 => "[a-zA-Z0-9%&=+._~-]{0,40}",
        1 => any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn product_version_queries_decode_or_are_4xx(q in arb_query(&["version"])) {
        check(decode::product_version(&q), q.as_bytes(), |_| true)?;
    }

    #[test]
    fn long_poll_queries_decode_or_are_4xx(q in arb_query(&["waitWhileStatus", "waitSeconds"])) {
        check(decode::long_poll(&q), q.as_bytes(), |p| p.wait.as_secs() <= 30)?;
    }

    #[test]
    fn enrollment_list_queries_decode_or_are_4xx(
        q in arb_query(&["status", "customerNo", "productCode", "limit", "cursor"]),
    ) {
        check(decode::enrollment_page(&q), q.as_bytes(), |p| (1..=1000).contains(&p.limit))?;
    }

    #[test]
    fn mypage_queries_decode_or_are_4xx(q in arb_query(&["customerNo", "status", "limit"])) {
        check(decode::mypage(&q), q.as_bytes(), |p| (1..=1000).contains(&p.limit))?;
    }

    #[test]
    fn alarm_queries_decode_or_are_4xx(q in arb_query(&["customerNo", "limit"])) {
        check(decode::alarms(&q), q.as_bytes(), |p| (1..=1000).contains(&p.limit))?;
    }

    #[test]
    fn event_stream_queries_decode_or_are_4xx(q in arb_query(&["customerNo", "enrollmentId"])) {
        check(decode::event_stream(&q), q.as_bytes(), |_| true)?;
    }

    /// An id in a path that is not one names nothing: 404, as an unknown id.
    #[test]
    fn path_ids_decode_or_are_404(segment in prop_oneof![arb_query_value(), any::<String>()]) {
        for e in [decode::enrollment_id(&segment).err(), decode::customer_no(&segment).err()]
            .into_iter()
            .flatten()
        {
            prop_assert_eq!(e.clone().into_problem().status, 404);
            assert_4xx(e, segment.as_bytes())?;
        }
    }
}

/// The mutations reach what they aim at: a sample of broken bodies holds each kind of
/// breakage, so the properties above are not fed only valid or only unreadable input.
#[test]
fn the_mutations_break_valid_bodies_in_every_way() {
    let valid = plan();
    let text = |m: Mutation, at: &str| {
        let all = pointers(&valid);
        let choice = all.iter().position(|p| p == at).expect("a pointer");
        mutate(&valid, choice, &m)
    };
    assert!(text(Mutation::Raw("1e400".into()), "/sumInsured").contains("\"sumInsured\":1e400"));
    let array = text(Mutation::ArrayForObject, "");
    assert!(
        array.starts_with('[') && array.contains("\"C000000001\""),
        "{array}"
    );
    assert!(!text(Mutation::Remove, "/paymentCycle").contains("monthly"));
    let doubled = text(Mutation::DuplicateKey, "");
    assert_eq!(
        doubled.matches("\"coveragePeriod\"").count(),
        2,
        "{doubled}"
    );
    for body in [
        text(Mutation::Raw("1e400".into()), "/sumInsured"),
        text(Mutation::Remove, "/paymentCycle"),
        array,
        doubled,
    ] {
        let refused = decode::plan(body.as_bytes()).expect_err(&body);
        assert_eq!(refused.into_problem().status, 400);
    }
    assert!(decode::plan(valid.to_string().as_bytes()).is_ok());
}
