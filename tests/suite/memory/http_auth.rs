//! The HTTP auth suite (tests/suite/http/auth.rs) on the memory backend.
//! tests/suite/redis_backend/http.rs runs the same checks on Redis.

use crate::http::auth as http_auth_suite;
use crate::support::app;

use app::TEST_SECRET;
use ezenroll::store::Store;
use ezenroll::store::memory::MemoryStore;
use http_auth_suite::cli;
use std::sync::Arc;

fn memory() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new(4))
}

http_auth_suite!(http_auth_suite, memory());

/// Store-independent (the CLI alone, no server): run once, here, not per backend.
#[test]
fn ezenroll_token_refuses_without_a_secret_or_a_subject() {
    let out = cli()
        .args(["token", "--role", "admin"])
        .output()
        .expect("the binary runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("EZENROLL_JWT_SECRET"));

    let out = cli()
        .args(["token", "--role", "admin"])
        .env("EZENROLL_JWT_SECRET", "")
        .output()
        .expect("the binary runs");
    assert_eq!(out.status.code(), Some(2));

    let out = cli()
        .args(["token", "--role", "customer"])
        .env("EZENROLL_JWT_SECRET", TEST_SECRET)
        .output()
        .expect("the binary runs");
    assert_eq!(out.status.code(), Some(2), "a customer token needs --sub");

    let out = cli()
        .args(["token", "--role", "customer", "--sub", "alice"])
        .env("EZENROLL_JWT_SECRET", TEST_SECRET)
        .output()
        .expect("the binary runs");
    assert_eq!(
        out.status.code(),
        Some(2),
        "--sub must be a customer number"
    );
}
