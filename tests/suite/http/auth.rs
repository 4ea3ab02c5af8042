//! Bearer-token auth over a real socket: which routes need a token, which tokens are
//! refused (missing, garbage, forged, expired, alg=none, another algorithm), admin-only
//! writes, and a customer confined to its own data (others' are 404, never 403).
//!
//! Every check takes a fresh `Arc<dyn Store>`, so the memory backend
//! (tests/suite/memory/http_auth.rs) and Redis (tests/suite/redis_backend/http.rs) run the
//! same suite by expanding [`http_auth_suite!`] with an expression making a store (it may
//! `.await`).

/// One `#[actix_rt::test]` per check. `$module` is the name the suite is in scope under;
/// `$make` makes a fresh store and may `.await`.
macro_rules! http_auth_suite {
    ($module:ident, $make:expr) => {
        http_auth_suite!(
            @each $module, $make;
            public_routes_need_no_token_and_the_rest_do,
            bad_tokens_are_401,
            customers_cannot_write_products_or_register_customers,
            a_customer_sees_only_its_own_data,
            a_customer_runs_its_own_journey,
            idempotency_keys_are_per_caller,
            ezenroll_token_mints_tokens_the_server_accepts,
        );
    };
    (@each $module:ident, $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[actix_rt::test]
            async fn $check() {
                let store: ::std::sync::Arc<dyn ::ezenroll::store::Store> = $make;
                $module::$check(store).await;
            }
        )*
    };
}

use crate::support::app::*;
use ezenroll::http::auth::{Claims, Role};
use ezenroll::store::Store;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use std::process::Command;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

fn sign(alg: Algorithm, secret: &[u8], claims: &Claims) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret))
        .expect("a token")
}

fn admin_claims(exp: u64) -> Claims {
    Claims {
        sub: "someone".to_owned(),
        role: Role::Admin,
        exp,
        iat: now(),
        nbf: None,
    }
}

/// base64url without padding, enough to hand-craft an unsigned token.
fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

fn assert_unauthorized(a: &Answer) {
    a.assert_problem(401, "unauthorized");
    let challenge = a.headers["www-authenticate"].to_str().expect("a challenge");
    assert!(challenge.starts_with("Bearer"), "{challenge}");
}

pub async fn public_routes_need_no_token_and_the_rest_do(store: Arc<dyn Store>) {
    let mut app = spawn_app(store).await;
    let anon = app.anonymous();
    assert_eq!(anon.get("/livez").await.status, 200);
    assert_eq!(anon.get("/readyz").await.status, 200);
    assert_eq!(anon.get("/products").await.status, 200);
    assert_eq!(anon.get("/products/EZ-TERM").await.status, 200);
    let q = anon.post("/quotes", &quote_body()).await;
    assert_eq!(q.status, 200, "{}", q.text);

    let customer_no = app.customer("홍길동").await;
    let id = app.plan(&customer_no).await;
    for path in [
        format!("/customers/{customer_no}"),
        format!("/enrollments/{id}"),
        format!("/enrollments/{id}/events"),
        format!("/enrollments/{id}/document"),
        format!("/mypage/{id}"),
        "/mypage".to_owned(),
        "/alarms".to_owned(),
    ] {
        assert_unauthorized(&anon.get(&path).await);
    }
    assert_unauthorized(&anon.post("/customers", &json!({})).await);
    assert_unauthorized(&anon.post("/enrollments", &plan_body(&customer_no)).await);
    assert_unauthorized(&anon.post("/products", &json!({})).await);
    assert_unauthorized(
        &anon
            .put(&format!("/enrollments/{id}/plan"), &json!({}))
            .await,
    );
    for action in ["document", "payment", "withdrawal"] {
        assert_unauthorized(
            &anon
                .post_empty(&format!("/enrollments/{id}/{action}"))
                .await,
        );
    }
    assert_unauthorized(
        &anon
            .post(
                &format!("/enrollments/{id}/proposal"),
                &json!({"paymentMethod": "card"}),
            )
            .await,
    );
    // Nothing happened to the enrollment.
    assert_eq!(
        app.get(&format!("/enrollments/{id}")).await.body["status"],
        "Planned"
    );
    app.stop().await;
}

pub async fn bad_tokens_are_401(store: Arc<dyn Store>) {
    let mut app = spawn_app(store).await;
    let later = now() + 600;

    let garbage = app.with_token("not.a.jwt");
    assert_unauthorized(&garbage.get("/mypage").await);

    let basic = app.anonymous();
    assert_unauthorized(
        &basic
            .send(
                basic
                    .client
                    .get(basic.url("/mypage"))
                    .header("authorization", "Basic YWRtaW46YWRtaW4="),
            )
            .await,
    );

    let forged = sign(
        Algorithm::HS256,
        b"another-secret-of-enough-length",
        &admin_claims(later),
    );
    assert_unauthorized(&app.with_token(&forged).get("/mypage").await);

    let expired = sign(
        Algorithm::HS256,
        TEST_SECRET.as_bytes(),
        &admin_claims(now() - 3600),
    );
    assert_unauthorized(&app.with_token(&expired).get("/mypage").await);

    // Right secret, other algorithm: refused, validation is pinned to HS256.
    let hs512 = sign(
        Algorithm::HS512,
        TEST_SECRET.as_bytes(),
        &admin_claims(later),
    );
    assert_unauthorized(&app.with_token(&hs512).get("/mypage").await);

    // Unsigned. (The encoder is checked against a known header first.)
    assert_eq!(
        b64url(br#"{"alg":"HS256","typ":"JWT"}"#),
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    );
    let claims = serde_json::to_vec(&admin_claims(later)).expect("json");
    for header in [
        r#"{"alg":"none","typ":"JWT"}"#,
        r#"{"alg":"None","typ":"JWT"}"#,
    ] {
        let unsigned = format!("{}.{}.", b64url(header.as_bytes()), b64url(&claims));
        assert_unauthorized(&app.with_token(&unsigned).get("/mypage").await);
    }

    // No exp at all.
    let no_exp = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "x", "role": "admin", "iat": now()}),
        &EncodingKey::from_secret(TEST_SECRET.as_bytes()),
    )
    .expect("a token");
    assert_unauthorized(&app.with_token(&no_exp).get("/mypage").await);

    // A customer token whose subject is not a customer number.
    let odd = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "alice", "role": "customer", "iat": now(), "exp": later}),
        &EncodingKey::from_secret(TEST_SECRET.as_bytes()),
    )
    .expect("a token");
    assert_unauthorized(&app.with_token(&odd).get("/mypage").await);

    // The sanity check: a good one passes.
    assert_eq!(app.get("/mypage").await.status, 200);
    app.stop().await;
}

pub async fn customers_cannot_write_products_or_register_customers(store: Arc<dyn Store>) {
    let mut app = spawn_app(store).await;
    let customer_no = app.customer("김철수").await;
    let me = app.as_customer(&customer_no);
    let mut spec = app.get("/products/EZ-TERM").await.body;
    spec.as_object_mut().expect("an object").remove("version");
    me.post("/products", &spec)
        .await
        .assert_problem(403, "forbidden");
    me.put("/products/EZ-TERM", &spec)
        .await
        .assert_problem(403, "forbidden");
    me.post(
        "/customers",
        &json!({"name": "이영희", "birthDate": "1990-01-01", "gender": "female",
                "mobilePhone": "010-1111-2222"}),
    )
    .await
    .assert_problem(403, "forbidden");
    assert_eq!(app.get("/products/EZ-TERM").await.body["version"], 1);
    app.stop().await;
}

pub async fn a_customer_sees_only_its_own_data(store: Arc<dyn Store>) {
    let mut app = spawn_app(store).await;
    let a_no = app.customer("고객A").await;
    let b_no = app.customer("고객B").await;
    let a_id = app.issued(&a_no).await;
    let b_id = app.issued(&b_no).await;
    let paid = app
        .post(
            &format!("/enrollments/{b_id}/proposal"),
            &json!({"paymentMethod": "card"}),
        )
        .await;
    assert_eq!(paid.status, 200, "{}", paid.text);
    // B's enrollment reaches the read model and B gets an alarm.
    app.eventually("B's alarm", || async {
        let a = app.get(&format!("/alarms?customerNo={b_no}")).await;
        a.body.as_array().filter(|v| !v.is_empty()).map(|_| ())
    })
    .await;
    app.eventually("A's view", || async {
        (app.get(&format!("/mypage/{a_id}")).await.status == 200).then_some(())
    })
    .await;

    let a = app.as_customer(&a_no);
    let ghost = "01900000-0000-7000-8000-000000000000";
    let ghost_answer = a.get(&format!("/enrollments/{ghost}")).await;
    ghost_answer.assert_problem(404, "not-found");

    // Reads of B's things: 404, exactly as for an id that names nothing.
    a.get(&format!("/customers/{b_no}"))
        .await
        .assert_problem(404, "not-found");
    let theirs = a.get(&format!("/enrollments/{b_id}")).await;
    theirs.assert_problem(404, "not-found");
    assert_eq!(theirs.body["detail"], ghost_answer.body["detail"]);
    for path in [
        format!("/enrollments/{b_id}/document"),
        format!("/enrollments/{b_id}/events"),
        format!("/mypage/{b_id}"),
        format!("/mypage?customerNo={b_no}"),
        format!("/alarms?customerNo={b_no}"),
    ] {
        a.get(&path).await.assert_problem(404, "not-found");
    }
    // Writes on B's things: 404, and nothing changes.
    a.post("/enrollments", &plan_body(&b_no))
        .await
        .assert_problem(404, "not-found");
    a.put(&format!("/enrollments/{b_id}/plan"), &plan_body(&b_no))
        .await
        .assert_problem(404, "not-found");
    for action in ["document", "payment", "withdrawal"] {
        a.post_empty(&format!("/enrollments/{b_id}/{action}"))
            .await
            .assert_problem(404, "not-found");
    }
    a.post(
        &format!("/enrollments/{b_id}/proposal"),
        &json!({"paymentMethod": "card"}),
    )
    .await
    .assert_problem(404, "not-found");
    // Re-saving one's own plan for someone else is refused too.
    a.put(&format!("/enrollments/{a_id}/plan"), &plan_body(&b_no))
        .await
        .assert_problem(404, "not-found");
    assert_eq!(
        app.get(&format!("/enrollments/{b_id}")).await.body["status"],
        "Contracted"
    );

    // Lists are forced to A's own number.
    let mine = a.get("/mypage").await;
    assert_eq!(mine.status, 200, "{}", mine.text);
    let views = mine.body.as_array().expect("a list");
    assert!(!views.is_empty());
    assert!(
        views.iter().all(|v| v["customerNo"] == a_no.as_str()),
        "{}",
        mine.text
    );
    let explicit = a.get(&format!("/mypage?customerNo={a_no}")).await;
    assert_eq!(explicit.status, 200);
    let alarms = a.get("/alarms").await;
    assert_eq!(alarms.status, 200, "{}", alarms.text);
    assert!(
        alarms
            .body
            .as_array()
            .expect("a list")
            .iter()
            .all(|x| x["customerNo"] == a_no.as_str()),
        "{}",
        alarms.text
    );
    // The admin sees both.
    assert_eq!(app.get(&format!("/customers/{b_no}")).await.status, 200);
    app.stop().await;
}

pub async fn a_customer_runs_its_own_journey(store: Arc<dyn Store>) {
    let mut app = spawn_app(store).await;
    let no = app.customer("정하늘").await;
    let me = app.as_customer(&no);
    assert_eq!(me.get(&format!("/customers/{no}")).await.status, 200);
    let id = me.plan(&no).await;
    let mut bigger = plan_body(&no);
    bigger["sumInsured"] = json!(200_000_000u64);
    let resaved = me.put(&format!("/enrollments/{id}/plan"), &bigger).await;
    assert_eq!(resaved.status, 200, "{}", resaved.text);
    let requested = me.post_empty(&format!("/enrollments/{id}/document")).await;
    assert_eq!(requested.status, 202, "{}", requested.text);
    me.wait_status(&id, "DocumentIssued").await;
    assert_eq!(
        me.get(&format!("/enrollments/{id}/document")).await.status,
        200
    );
    let proposed = me
        .post(
            &format!("/enrollments/{id}/proposal"),
            &json!({"paymentMethod": "bankTransfer"}),
        )
        .await;
    assert_eq!(proposed.status, 200, "{}", proposed.text);
    assert_eq!(proposed.body["status"], "Contracted");
    me.eventually("my contract on my page", || async {
        let a = me.get(&format!("/mypage/{id}")).await;
        (a.status == 200 && a.body["status"] == "Contracted").then_some(())
    })
    .await;
    me.eventually("my alarm", || async {
        let a = me.get("/alarms").await;
        a.body
            .as_array()
            .is_some_and(|v| v.iter().any(|x| x["enrollmentId"] == id.as_str()))
            .then_some(())
    })
    .await;
    let w = me
        .post_empty(&format!("/enrollments/{id}/withdrawal"))
        .await;
    assert_eq!(w.status, 202, "{}", w.text);
    me.wait_status(&id, "Withdrawn").await;
    assert_eq!(
        me.get(&format!("/enrollments/{id}/events")).await.status,
        200
    );
    app.stop().await;
}

pub async fn idempotency_keys_are_per_caller(store: Arc<dyn Store>) {
    let mut app = spawn_app(store).await;
    let a_no = app.customer("가").await;
    let b_no = app.customer("나").await;
    let send = |no: &str| {
        let caller = app.as_customer(no);
        let body = plan_body(no);
        async move {
            caller
                .send(
                    caller
                        .client
                        .post(caller.url("/enrollments"))
                        .header("Idempotency-Key", "same-key")
                        .json(&body),
                )
                .await
        }
    };
    let first = send(&a_no).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let other = send(&b_no).await;
    assert_eq!(other.status, 201, "{}", other.text);
    assert_eq!(other.body["customerNo"], b_no.as_str());
    assert_ne!(other.body["id"], first.body["id"]);
    assert_eq!(send(&a_no).await.text, first.text);
    app.stop().await;
}

/// The `ezenroll` binary, without the secret from the environment.
pub fn cli() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ezenroll"));
    c.env_remove("EZENROLL_JWT_SECRET");
    c
}

pub async fn ezenroll_token_mints_tokens_the_server_accepts(store: Arc<dyn Store>) {
    let mut app = spawn_app(store).await;
    let no = app.customer("오세훈").await;
    let other = app.customer("한겨울").await;

    let out = cli()
        .args(["token", "--role", "admin", "--ttl", "10m"])
        .env("EZENROLL_JWT_SECRET", TEST_SECRET)
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let admin = String::from_utf8(out.stdout)
        .expect("text")
        .trim()
        .to_owned();
    let a = app
        .with_token(&admin)
        .get(&format!("/customers/{other}"))
        .await;
    assert_eq!(a.status, 200, "{}", a.text);

    let out = cli()
        .args(["token", "--role", "customer", "--sub", &no])
        .args(["--jwt-secret", TEST_SECRET])
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mine = String::from_utf8(out.stdout)
        .expect("text")
        .trim()
        .to_owned();
    let me = app.with_token(&mine);
    assert_eq!(me.get(&format!("/customers/{no}")).await.status, 200);
    me.get(&format!("/customers/{other}"))
        .await
        .assert_problem(404, "not-found");

    // A token minted with another secret is refused.
    let out = cli()
        .args(["token", "--role", "admin"])
        .env("EZENROLL_JWT_SECRET", "some-other-secret-0123456789")
        .output()
        .expect("the binary runs");
    assert!(out.status.success());
    let foreign = String::from_utf8(out.stdout)
        .expect("text")
        .trim()
        .to_owned();
    assert_unauthorized(&app.with_token(&foreign).get("/mypage").await);
    app.stop().await;
}
