//! The HTTP suites on the Redis backend: the very checks the memory backend passes in
//! tests/http.rs, http_auth.rs, http_metrics.rs, http_sse.rs, shutdown.rs and event_feed.rs,
//! one module per suite, each check on its own redis-server started for it (or, with
//! `REDIS_URL`, on that server under a key prefix of its own).

#[path = "common/http.rs"]
mod app;
#[allow(dead_code, unused_macros)]
#[path = "common/store_contract.rs"]
mod store_contract;
#[macro_use]
#[path = "common/http_suite.rs"]
mod http_suite;
#[macro_use]
#[path = "common/http_auth_suite.rs"]
mod http_auth_suite;
#[macro_use]
#[path = "common/http_metrics_suite.rs"]
mod http_metrics_suite;
#[macro_use]
#[path = "common/http_sse_suite.rs"]
mod http_sse_suite;
#[macro_use]
#[path = "common/shutdown_suite.rs"]
mod shutdown_suite;
#[macro_use]
#[path = "common/event_feed_suite.rs"]
mod event_feed_suite;
#[path = "common/redis.rs"]
mod redis_fixture;

use ezenroll::store::Store;
use std::sync::Arc;

/// A store on a fresh Redis; the server lives as long as the store.
async fn redis() -> Arc<dyn Store> {
    redis_fixture::ezenroll_store(4).await.0
}

mod http {
    use super::{http_suite, redis};
    http_suite!(http_suite, redis().await);
}

mod auth {
    use super::{http_auth_suite, redis};
    http_auth_suite!(http_auth_suite, redis().await);
}

mod metrics {
    use super::{http_metrics_suite, redis};
    http_metrics_suite!(http_metrics_suite, redis().await);
}

mod sse {
    use super::{http_sse_suite, redis};
    http_sse_suite!(http_sse_suite, redis().await);
}

mod shutdown {
    use super::{redis, shutdown_suite};
    shutdown_suite!(shutdown_suite, redis().await);
}

mod event_feed {
    use super::{event_feed_suite, redis};
    event_feed_suite!(event_feed_suite, redis().await);
}
