//! Recovery with real processes: `ezenroll serve` and `ezenroll worker` run as child
//! processes of the test against a redis-server (or a Redis Cluster) the test owns, and are
//! driven over HTTP with tokens signed with the test secret. Each test SIGKILLs or SIGTERMs
//! a server, a worker or Redis itself mid-flow and checks what must survive:
//!
//! - every answer of 2xx is in the store afterwards (status and version at least as far);
//! - durable work in flight (document issuance, refunds) completes by itself;
//! - the consumers catch up: MyPage shows every enrollment's latest status, and there is
//!   exactly one alarm per event (the Notifier sends one for every event), delivered at most
//!   once (exactly once when no notifier was killed), counted in the notifiers' logs.
//!
//! Waits are semantic (poll until a condition holds, up to [`WAIT`]); nothing asserts speed.
//! With `REDIS_URL` set, the tests that kill Redis or start a cluster print why they skip;
//! the others use that server under their own key prefix.

#[path = "../support/app.rs"]
mod app;
#[path = "../support/procs.rs"]
mod procs;
#[path = "../support/redis_fixture/mod.rs"]
mod redis_fixture;

use std::time::Duration;

/// How long anything eventual may take; only a broken system reaches it.
const WAIT: Duration = Duration::from_secs(30);

/// An answer that takes longer is a hang, and fails the test.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Alarms and views one listing returns (the API's maximum); more than any test makes.
const LIST: usize = 1000;

mod caught_up;
mod copies;
mod driver;
mod journeys;
mod processes;
mod redis_restarted;
mod server_killed;
mod workers;
