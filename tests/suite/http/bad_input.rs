//! What an abuse probe sends: arrays for objects, numbers and dates out of range, control
//! characters, huge strings, deep nesting, duplicate keys, bodies that are not JSON,
//! queries out of range. Each is a 4xx problem naming what was wrong, and the store is
//! left as it was: no event appended, no product, no customer number taken.

use crate::support::app::*;
use ezenroll::domain::enrollment::CustomerNo;
use ezenroll::store::Store;
use serde_json::{Value, json};
use std::sync::Arc;

/// The store's state that any write would change.
#[derive(Debug, PartialEq)]
struct Mark {
    log_end: Vec<String>,
    products: usize,
}

async fn mark(app: &TestApp) -> Mark {
    Mark {
        log_end: app.store.log_end().await.expect("the log's end"),
        products: app.store.products().await.expect("the products").len(),
    }
}

/// Asserts nothing was written since `before`, and that the next customer registered
/// takes the number after `last_customer` (a refused registration took none).
async fn assert_nothing_stored(app: &TestApp, before: &Mark, last_customer: &str) {
    assert_eq!(
        &mark(app).await,
        before,
        "a refused request wrote to the store"
    );
    let last = CustomerNo::parse(last_customer).expect("a customer number");
    let next = CustomerNo::new(last.get() + 1);
    assert!(
        app.store.customer(next).await.expect("a read").is_none(),
        "{next} was registered by a refused request"
    );
}

/// Arrays where objects belong, at the top and nested, on every route that takes a body:
/// 400 naming the place and saying that an object was expected.
pub async fn arrays_for_objects_are_400_naming_the_place(store: Arc<dyn Store>) {
    let mut app = spawn_app(store).await;
    let customer_no = app.customer("배열검사").await;
    let id = app.plan(&customer_no).await;
    let product = app.get("/products/EZ-TERM").await.body;
    let before = mark(&app).await;

    let mut sult_as_array = product.clone();
    sult_as_array["rateBasis"]["mortality"] = json!(["sult"]);
    let mut table_as_array = product.clone();
    table_as_array["rateBasis"]["mortality"] = json!({"table": "custom", "male": [0, [0.1, 1.0]], "female": {"startAge": 0, "qx": [0.1, 1.0]}});
    let mut range_as_array = product.clone();
    range_as_array["underwriting"]["entryAge"] = json!([20, 60]);
    let mut quote_insured = quote_body();
    quote_insured["insured"] = json!(["1986-05-01", "male"]);
    let mut inline = quote_body();
    inline.as_object_mut().map(|o| o.remove("productCode"));
    inline["product"] = json!(["EZ-X", "x", 1, "term"]);

    let plan_path = format!("/enrollments/{id}/plan");
    let proposal_path = format!("/enrollments/{id}/proposal");
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        (
            "POST",
            "/customers",
            json!(["배열", "1986-05-01", "male", "010-1234-5678"]),
            "",
        ),
        (
            "POST",
            "/enrollments",
            json!([customer_no, "EZ-TERM", 100_000_000u64, 20, 20, "monthly"]),
            "",
        ),
        (
            "PUT",
            &plan_path,
            json!([customer_no, "EZ-TERM", 100_000_000u64, 20, 20, "monthly"]),
            "",
        ),
        ("POST", &proposal_path, json!(["card"]), ""),
        ("POST", "/products", json!([product.clone()]), ""),
        (
            "PUT",
            "/products/EZ-TERM",
            sult_as_array,
            "rateBasis.mortality",
        ),
        (
            "POST",
            "/products",
            table_as_array,
            "rateBasis.mortality.male",
        ),
        ("POST", "/products", range_as_array, "underwriting.entryAge"),
        ("POST", "/quotes", quote_insured.clone(), "insured"),
        ("POST", "/quotes", json!([quote_insured]), "[0].insured"),
        ("POST", "/quotes", json!([[quote_body()]]), "[0]"),
        ("POST", "/quotes", inline, "product"),
    ];
    for (method, path, body, at) in cases {
        let request = match method {
            "PUT" => app.client.put(app.url(path)),
            _ => app.client.post(app.url(path)),
        };
        let a = app.send(request.json(&body)).await;
        let what = format!("{method} {path} {body}");
        let problem = a.assert_problem(400, "malformed-request");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("expected a JSON object"),
            "{what}: {}",
            a.text
        );
        if at.is_empty() {
            assert!(problem.get("path").is_none(), "{what}: {}", a.text);
        } else {
            assert_eq!(problem["path"], at, "{what}: {}", a.text);
        }
    }
    assert_nothing_stored(&app, &before, &customer_no).await;
    let state = app.get(&format!("/enrollments/{id}")).await;
    assert_eq!(
        (
            state.body["status"].as_str(),
            state.body["version"].as_u64()
        ),
        (Some("Planned"), Some(1)),
        "{}",
        state.text
    );
    app.stop().await;
}

/// Query parameters out of range or of the wrong kind: 400 `malformed-query` naming the
/// parameter, whatever the route. Ids in a path are 404, as ids that name nothing are.
pub async fn bad_queries_are_400_naming_the_parameter(store: Arc<dyn Store>) {
    let mut app = spawn_app(store).await;
    let customer_no = app.customer("질의검사").await;
    let id = app.plan(&customer_no).await;
    // Long, yet under the 8 KiB request target past which any request is 414.
    let long = "A".repeat(2_000);
    let one = format!("/enrollments/{id}");
    let cases: Vec<(String, &str)> = vec![
        ("/enrollments?limit=0".into(), "limit"),
        ("/enrollments?limit=1001".into(), "limit"),
        ("/enrollments?limit=-1".into(), "limit"),
        ("/enrollments?limit=99999999999999999999999".into(), "limit"),
        ("/enrollments?limit=1&limit=2".into(), "limit"),
        ("/enrollments?cursor=%00%01".into(), "cursor"),
        ("/enrollments?cursor=%EA%B0%80".into(), "cursor"),
        ("/enrollments?productCode=ez-term".into(), "productCode"),
        ("/enrollments?productCode=%00".into(), "productCode"),
        (format!("/enrollments?productCode={long}"), "productCode"),
        (format!("/enrollments?customerNo={long}"), "customerNo"),
        ("/enrollments?status=".into(), "status"),
        ("/enrollments?sort=name".into(), "sort"),
        ("/mypage?limit=0".into(), "limit"),
        ("/mypage?limit=5000".into(), "limit"),
        ("/mypage?customerNo=C1".into(), "customerNo"),
        ("/mypage?status=Sleeping".into(), "status"),
        ("/alarms?limit=99999".into(), "limit"),
        ("/alarms?customerNo=%00".into(), "customerNo"),
        ("/alarms?x=1".into(), "x"),
        ("/events/stream?enrollmentId=xyz".into(), "enrollmentId"),
        ("/events/stream?customerNo=xyz".into(), "customerNo"),
        ("/events/stream?nope=1".into(), "nope"),
        (format!("{one}?waitSeconds=31"), "waitSeconds"),
        (format!("{one}?waitSeconds=-1"), "waitSeconds"),
        (format!("{one}?waitSeconds=1e3"), "waitSeconds"),
        (format!("{one}?waitSeconds="), "waitSeconds"),
        (format!("{one}?waitSeconds={long}"), "waitSeconds"),
        (format!("{one}?waitWhileStatus=Bogus"), "waitWhileStatus"),
        (format!("{one}?bogus=1"), "bogus"),
        ("/products/EZ-TERM?version=-1".into(), "version"),
        ("/products/EZ-TERM?version=4294967296".into(), "version"),
        ("/products/EZ-TERM?v=1".into(), "v"),
    ];
    for (path, names) in &cases {
        let a = if path.starts_with("/events/stream") {
            match app.open_stream(path).await {
                Ok(_) => panic!("{path} opened a stream"),
                Err(a) => a,
            }
        } else {
            app.get(path).await
        };
        let what = head(path, 120);
        let problem = a.assert_problem(400, "malformed-query");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(names), "{what}: {detail}");
        // A refused value is named, not sent back whole.
        assert!(
            detail.len() < 400,
            "{what}: a detail of {} bytes",
            detail.len()
        );
    }
    // In range, the same parameters answer.
    for path in [
        "/enrollments?limit=1".to_owned(),
        "/enrollments?limit=1000&productCode=EZ-TERM".to_owned(),
        "/mypage?limit=1000".to_owned(),
        "/alarms?limit=1".to_owned(),
        format!("{one}?waitSeconds=0&waitWhileStatus=Planned"),
    ] {
        let a = app.get(&path).await;
        assert_eq!(a.status, 200, "{path}: {}", a.text);
    }
    for path in [
        "/enrollments/not-an-id".to_owned(),
        format!("/enrollments/{id}x"),
        "/customers/C1".to_owned(),
        format!("/customers/{long}"),
        "/mypage/%00".to_owned(),
        format!("/enrollments/{id}/documents/%00"),
    ] {
        app.get(&path).await.assert_problem(404, "not-found");
    }
    app.stop().await;
}

/// The first `n` characters of `text`, for messages.
fn head(text: &str, n: usize) -> String {
    text.chars().take(n).collect()
}

/// One request of the abuse table: a body sent as is, and what the answer must be.
struct Case {
    method: &'static str,
    path: String,
    body: Vec<u8>,
    content_type: Option<&'static str>,
    status: u16,
    kind: &'static str,
    /// Named by the detail or the `path` of the problem.
    names: &'static str,
}

fn case(method: &'static str, path: &str, body: impl Into<Vec<u8>>) -> Case {
    Case {
        method,
        path: path.to_owned(),
        body: body.into(),
        content_type: Some("application/json"),
        status: 400,
        kind: "malformed-request",
        names: "",
    }
}

impl Case {
    fn names(mut self, names: &'static str) -> Case {
        self.names = names;
        self
    }

    fn is(mut self, status: u16, kind: &'static str) -> Case {
        self.status = status;
        self.kind = kind;
        self
    }

    fn typed(mut self, content_type: Option<&'static str>) -> Case {
        self.content_type = content_type;
        self
    }
}

/// `body` with `value` at `pointer` (a JSON pointer whose parent exists), as text.
fn with(body: &Value, pointer: &str, value: Value) -> String {
    let mut doc = body.clone();
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
    doc.pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .expect("an object")
        .insert(key.to_owned(), value);
    doc.to_string()
}

/// `body` with the field at `pointer` given the raw JSON text `raw` (numbers serde_json
/// would not write, nesting, duplicate keys).
fn with_raw(body: &Value, key: &str, raw: &str) -> String {
    let text = body.to_string();
    let rest = text.strip_prefix('{').expect("an object");
    format!("{{\"{key}\":{raw},{rest}")
}

/// Out-of-range numbers and dates, control characters, 10,000-character strings, deep
/// nesting, duplicate keys, wrong types, empty and non-JSON bodies on every write route:
/// each a 4xx problem naming the field, the store left as it was.
pub async fn bad_bodies_are_4xx_naming_the_field_and_store_nothing(store: Arc<dyn Store>) {
    let mut app = spawn_app(store).await;
    let customer_no = app.customer("본문검사").await;
    let id = app.plan(&customer_no).await;
    let product = app.get("/products/EZ-TERM").await.body;
    // New codes, so that POST /products would register them but for what is wrong.
    let fresh = with(&product, "/code", json!("EZ-ABUSE"));
    let fresh: Value = serde_json::from_str(&fresh).expect("a product");
    let before = mark(&app).await;

    let customer = json!({"name": "김보험", "birthDate": "1986-05-01", "gender": "male",
                          "mobilePhone": "010-1234-5678"});
    let plan = plan_body(&customer_no);
    let quote = quote_body();
    let long = "가".repeat(10_000);
    let digits = "1".repeat(10_000);
    let deep = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
    let deep_objects = format!("{}1{}", "{\"a\":".repeat(3_000), "}".repeat(3_000));
    let plan_path = format!("/enrollments/{id}/plan");
    let proposal_path = format!("/enrollments/{id}/proposal");

    let mut cases = vec![
        // Customers: dates, names, phones, types, keys.
        case(
            "POST",
            "/customers",
            with(&customer, "/birthDate", json!("0000-01-01")),
        )
        .names("birthDate"),
        case(
            "POST",
            "/customers",
            with(&customer, "/birthDate", json!("2026-02-30")),
        )
        .names("birthDate"),
        case(
            "POST",
            "/customers",
            with(&customer, "/birthDate", json!("9999-12-31")),
        )
        .is(422, "invalid-request")
        .names("birthDate"),
        case(
            "POST",
            "/customers",
            with(&customer, "/birthDate", json!(digits)),
        )
        .names("birthDate"),
        case(
            "POST",
            "/customers",
            with(&customer, "/birthDate", json!(19860501)),
        )
        .names("birthDate"),
        case(
            "POST",
            "/customers",
            with(&customer, "/name", json!("김\u{0}보험")),
        )
        .names("name"),
        case(
            "POST",
            "/customers",
            with(&customer, "/name", json!("\u{0}")),
        )
        .names("name"),
        case(
            "POST",
            "/customers",
            with(&customer, "/name", json!("김\u{7}\u{1b}[2J")),
        )
        .names("name"),
        case("POST", "/customers", with(&customer, "/name", json!(long))).names("name"),
        case(
            "POST",
            "/customers",
            with(&customer, "/mobilePhone", json!(digits)),
        )
        .names("mobilePhone"),
        case(
            "POST",
            "/customers",
            with(&customer, "/gender", json!(["male"])),
        )
        .names("gender"),
        case("POST", "/customers", with(&customer, "/gender", json!(1))).names("gender"),
        case(
            "POST",
            "/customers",
            with(&customer, "/gender", json!(long)),
        )
        .names("gender"),
        case("POST", "/customers", with_raw(&customer, "name", "\"둘\""))
            .names("duplicate field `name`"),
        case("POST", "/customers", with_raw(&customer, "name", &deep)).names("name"),
        case(
            "POST",
            "/customers",
            with_raw(&customer, "nickname", &deep_objects),
        )
        .names("nickname"),
        case("POST", "/customers", deep.clone()).names("expected a JSON object"),
        case("POST", "/customers", "").names("empty"),
        case("POST", "/customers", " \n\t ").names("empty"),
        case("POST", "/customers", "null").names("expected a JSON object"),
        case("POST", "/customers", "{}").names("missing field `name`"),
        case("POST", "/customers", &b"\xff\xfe{\x00}"[..]).names("UTF-8"),
        case("POST", "/customers", format!("{customer} {customer}")).names("trailing characters"),
        case("POST", "/customers", customer.to_string())
            .typed(Some("text/plain"))
            .is(415, "unsupported-media-type")
            .names("text/plain"),
        case("POST", "/customers", customer.to_string())
            .typed(None)
            .is(415, "unsupported-media-type")
            .names("no Content-Type"),
        case("POST", "/customers", customer.to_string())
            .typed(Some("application/jsonx"))
            .is(415, "unsupported-media-type")
            .names("application/jsonx"),
        // Plans: amounts and periods out of range, ids that are not ids.
        case(
            "POST",
            "/enrollments",
            with_raw(&plan, "sumInsured", "18446744073709551616"),
        )
        .names("sumInsured"),
        case(
            "POST",
            "/enrollments",
            with_raw(&plan, "sumInsured", "1e308"),
        )
        .names("sumInsured"),
        case(
            "POST",
            "/enrollments",
            with_raw(&plan, "sumInsured", "1e400"),
        )
        .names("sumInsured"),
        case(
            "POST",
            "/enrollments",
            with_raw(&plan, "sumInsured", "-100000000"),
        )
        .names("sumInsured"),
        case(
            "POST",
            "/enrollments",
            with_raw(&plan, "sumInsured", "100000000.5"),
        )
        .names("sumInsured"),
        case(
            "POST",
            "/enrollments",
            with_raw(&plan, "sumInsured", &digits),
        )
        .names("sumInsured"),
        case(
            "POST",
            "/enrollments",
            with(&plan, "/sumInsured", json!(9_223_372_036_854_775_808u64)),
        )
        .is(422, "underwriting")
        .names("sum insured"),
        case(
            "POST",
            "/enrollments",
            with_raw(&plan, "coveragePeriod", "1e308"),
        )
        .names("coveragePeriod"),
        case(
            "POST",
            "/enrollments",
            with_raw(&plan, "coveragePeriod", "-20"),
        )
        .names("coveragePeriod"),
        case(
            "POST",
            "/enrollments",
            with_raw(&plan, "paymentPeriod", "256"),
        )
        .names("paymentPeriod"),
        case(
            "POST",
            "/enrollments",
            with_raw(&plan, "paymentPeriod", "-1"),
        )
        .names("paymentPeriod"),
        case(
            "POST",
            "/enrollments",
            with(&plan, "/paymentCycle", json!(["monthly"])),
        )
        .names("paymentCycle"),
        case(
            "POST",
            "/enrollments",
            with(&plan, "/customerNo", json!("C1")),
        )
        .names("customerNo"),
        case(
            "POST",
            "/enrollments",
            with(&plan, "/customerNo", json!(long)),
        )
        .names("customerNo"),
        case(
            "POST",
            "/enrollments",
            with(&plan, "/productCode", json!(long)),
        )
        .names("productCode"),
        case(
            "POST",
            "/enrollments",
            with(&plan, "/productCode", json!("EZ\u{0}TERM")),
        )
        .names("productCode"),
        case("POST", "/enrollments", with_raw(&plan, "sumInsured", "1"))
            .names("duplicate field `sumInsured`"),
        case("POST", "/enrollments", "").names("empty"),
        case("PUT", &plan_path, with_raw(&plan, "sumInsured", "-1")).names("sumInsured"),
        case("PUT", &plan_path, with_raw(&plan, "coveragePeriod", &deep)).names("coveragePeriod"),
        case("PUT", &plan_path, "").names("empty"),
        case("PUT", &plan_path, plan.to_string())
            .typed(Some("text/plain"))
            .is(415, "unsupported-media-type"),
        // Proposals.
        case("POST", &proposal_path, r#"{"paymentMethod": ["card"]}"#).names("paymentMethod"),
        case("POST", &proposal_path, r#"{"paymentMethod": "cash"}"#).names("paymentMethod"),
        case(
            "POST",
            &proposal_path,
            r#"{"paymentMethod": "card", "paymentMethod": "card"}"#,
        )
        .names("duplicate field `paymentMethod`"),
        case("POST", &proposal_path, "").names("empty"),
        case("POST", &proposal_path, r#"{"paymentMethod": "card"}"#)
            .typed(Some("application/x-www-form-urlencoded"))
            .is(415, "unsupported-media-type"),
        // Products: numbers out of range, names, nesting.
        case(
            "POST",
            "/products",
            fresh
                .to_string()
                .replace("이지 정기보험", "이지\\u0000보험"),
        )
        .is(422, "invalid-product")
        .names("control"),
        case(
            "POST",
            "/products",
            with(
                &with(&product, "/code", json!("EZ-BIG"))
                    .parse()
                    .unwrap_or(Value::Null),
                "/underwriting/maxCumulativeSumInsured",
                json!(u64::MAX),
            ),
        )
        .is(422, "invalid-product")
        .names("cumulative limit"),
        case("POST", "/products", with(&fresh, "/name", json!(long)))
            .is(422, "invalid-product")
            .names("longer than 100"),
        case("POST", "/products", with(&product, "/code", json!(long)))
            .is(422, "invalid-product")
            .names("product code"),
        case("POST", "/products", with_raw(&fresh, "version", "-1")).names("version"),
        case(
            "PUT",
            "/products/EZ-TERM",
            with_raw(&product, "coverage", "[\"term\"]"),
        )
        .names("coverage"),
        case(
            "PUT",
            "/products/EZ-TERM",
            with_raw(&product, "rateBasis", &deep),
        )
        .names("rateBasis"),
        case("POST", "/products", "").names("empty"),
        // Quotes: the burst route decodes the same way.
        case(
            "POST",
            "/quotes",
            with_raw(&quote, "quoteDate", "\"2026-02-30\""),
        )
        .names("quoteDate"),
        case("POST", "/quotes", with_raw(&quote, "productVersion", "-1")).names("productVersion"),
        case(
            "POST",
            "/quotes",
            with_raw(&quote, "productVersion", "4294967296"),
        )
        .names("productVersion"),
        case("POST", "/quotes", with(&quote, "/sumInsured", json!(-1))).names("sumInsured"),
        case("POST", "/quotes", with(&quote, "/productCode", json!(long)))
            .is(422, "unknown-product")
            .names("productCode"),
        case("POST", "/quotes", with_raw(&quote, "product", &deep)).names("product"),
        case("POST", "/quotes", with_raw(&quote, "insured", "null")).names("insured"),
        case("POST", "/quotes", deep.clone()).names("[0]"),
        case("POST", "/quotes", "").names("empty"),
        case("POST", "/quotes", &b"{\"productCode\": \"\xff\"}"[..]).names("UTF-8"),
    ];
    // The nested insured of a quote, every field.
    for (pointer, value, names) in [
        (
            "/insured/birthDate",
            json!("2026-02-30"),
            "insured.birthDate",
        ),
        (
            "/insured/birthDate",
            json!("0000-01-01"),
            "insured.birthDate",
        ),
        ("/insured/gender", json!(["male"]), "insured.gender"),
        ("/insured/age", json!(40), "insured"),
    ] {
        cases.push(case("POST", "/quotes", with(&quote, pointer, value)).names(names));
    }

    for c in &cases {
        let url = app.url(&c.path);
        let mut request = match c.method {
            "PUT" => app.client.put(url),
            _ => app.client.post(url),
        };
        if let Some(t) = c.content_type {
            request = request.header("content-type", t);
        }
        let a = app.send(request.body(c.body.clone())).await;
        let shown = String::from_utf8_lossy(&c.body);
        let what = format!("{} {} {}", c.method, c.path, head(&shown, 150));
        assert!(a.status < 500, "{what}: {}", a.text);
        let problem = a.assert_problem(c.status, c.kind);
        let detail = problem["detail"].as_str().unwrap_or_default();
        let path = problem["path"].as_str().unwrap_or_default();
        assert!(
            detail.contains(c.names) || path.contains(c.names),
            "{what}: the problem does not name {:?}: {}",
            c.names,
            head(&a.text, 600)
        );
        // A refused value is named, not sent back whole.
        assert!(
            a.text.len() < 2_000,
            "{what}: a problem of {} bytes",
            a.text.len()
        );
    }
    assert_nothing_stored(&app, &before, &customer_no).await;
    let state = app.get(&format!("/enrollments/{id}")).await;
    assert_eq!(
        (
            state.body["status"].as_str(),
            state.body["version"].as_u64()
        ),
        (Some("Planned"), Some(1)),
        "{}",
        state.text
    );

    // Dates a quote can be priced on but nobody insured: answered as refusals, as any
    // underwriting refusal of a quote is (docs/quotes.md), never as an error.
    for (pointer, value, code) in [
        ("/quoteDate", json!("0000-01-01"), "INSURED_NOT_BORN"),
        ("/quoteDate", json!("9999-12-31"), "AGE_OUT_OF_RANGE"),
        (
            "/insured/birthDate",
            json!("9999-12-31"),
            "INSURED_NOT_BORN",
        ),
    ] {
        let a = app.post_raw("/quotes", &with(&quote, pointer, value)).await;
        assert_eq!(a.status, 200, "{pointer}: {}", a.text);
        assert_eq!(
            a.body["violations"][0]["code"], code,
            "{pointer}: {}",
            a.text
        );
    }
    app.stop().await;
}

/// Asserts a 4xx problem+json that says what was wrong.
fn assert_client_problem(a: &Answer, what: &str) {
    assert!(
        (400..500).contains(&a.status),
        "{what}: {} {}",
        a.status,
        head(&a.text, 300)
    );
    assert_eq!(
        a.content_type(),
        "application/problem+json",
        "{what}: {}",
        head(&a.text, 300)
    );
    assert_eq!(a.body["status"], a.status, "{what}");
    assert!(
        a.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{what}: {}",
        head(&a.text, 300)
    );
}

/// A sample of the property tests' random bodies (tests/suite/decoders.rs) posted to
/// every write route: none is a 5xx. Those the route's decoder refuses are each a 4xx
/// problem+json and leave the store as it was; those it accepts go on to the engine
/// (a 2xx, or a 4xx problem such as a 404 for a customer that does not exist).
pub async fn random_bodies_are_4xx_problems_and_store_nothing(store: Arc<dyn Store>) {
    use ezenroll::http::decode;
    const PER_ROUTE: usize = 64;
    let mut app = spawn_app(store).await;
    let customer_no = app.customer("무작위").await;
    let id = app.plan(&customer_no).await;
    let mut product = app.get("/products/EZ-TERM").await.body;
    product["code"] = json!("EZ-RANDOM");
    product.as_object_mut().map(|p| p.remove("version"));
    let customer = json!({"name": "김보험", "birthDate": "1986-05-01", "gender": "male",
                          "mobilePhone": "010-1234-5678"});
    let mut inline = quote_body();
    inline.as_object_mut().map(|q| q.remove("productCode"));
    inline["product"] = product.clone();

    type Decoder = fn(&[u8]) -> bool;
    let routes: Vec<(&str, String, Value, Decoder)> = vec![
        ("POST", "/customers".into(), customer, |b| {
            decode::customer(b).is_ok()
        }),
        (
            "POST",
            "/enrollments".into(),
            plan_body(&customer_no),
            |b| decode::plan(b).is_ok(),
        ),
        (
            "PUT",
            format!("/enrollments/{id}/plan"),
            plan_body(&customer_no),
            |b| decode::plan(b).is_ok(),
        ),
        (
            "POST",
            format!("/enrollments/{id}/proposal"),
            json!({"paymentMethod": "card"}),
            |b| decode::proposal(b).is_ok(),
        ),
        ("POST", "/products".into(), product.clone(), |b| {
            decode::product(b).is_ok()
        }),
        ("PUT", "/products/EZ-TERM".into(), product, |b| {
            decode::product(b).is_ok()
        }),
    ];
    let send = |method: &str, path: &str, body: Vec<u8>| {
        let url = app.url(path);
        let request = match method {
            "PUT" => app.client.put(url),
            _ => app.client.post(url),
        };
        app.send(
            request
                .header("content-type", "application/json")
                .body(body),
        )
    };

    // What the decoders refuse: 4xx, nothing stored.
    let before = mark(&app).await;
    let mut accepted = Vec::new();
    let mut refused = 0;
    for (method, path, valid, decodes) in &routes {
        for body in crate::decoders::sample(valid.clone(), PER_ROUTE) {
            if decodes(&body) {
                accepted.push((*method, path.clone(), body));
                continue;
            }
            refused += 1;
            let what = format!(
                "{method} {path} {}",
                head(&String::from_utf8_lossy(&body), 200)
            );
            let a = send(method, path, body).await;
            assert_client_problem(&a, &what);
        }
    }
    assert!(
        refused > routes.len() * PER_ROUTE / 2,
        "only {refused} bodies were refused"
    );
    assert_nothing_stored(&app, &before, &customer_no).await;
    let state = app.get(&format!("/enrollments/{id}")).await;
    assert_eq!(state.body["version"], 1, "{}", state.text);

    // What they accept goes on, and is answered without a 5xx.
    for (method, path, body) in accepted {
        let what = format!(
            "{method} {path} {}",
            head(&String::from_utf8_lossy(&body), 200)
        );
        let a = send(method, &path, body).await;
        if !(200..300).contains(&a.status) {
            assert_client_problem(&a, &what);
        }
    }

    // Quotes store nothing: every body is priced or a 4xx.
    for valid in [quote_body(), json!([quote_body(), quote_body()]), inline] {
        for body in crate::decoders::sample(valid, PER_ROUTE) {
            let what = format!(
                "POST /quotes {}",
                head(&String::from_utf8_lossy(&body), 200)
            );
            let a = send("POST", "/quotes", body).await;
            if a.status != 200 {
                assert_client_problem(&a, &what);
            }
        }
    }
    app.stop().await;
}
