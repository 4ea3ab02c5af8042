//! The HTTP gateway as a client sees it: a real server on port 0, a real HTTP client,
//! every route of the enrollment journey and every class of error. Eventually-consistent
//! things (document issuance, read model, alarms, refunds) are polled for, never timed.
//!
//! Every check takes nothing but an `Arc<dyn Store>` (fresh and empty), so the memory
//! backend (tests/suite/memory/http.rs) and Redis (tests/suite/redis_backend/http.rs) run
//! the very same suite. The checks live one concern per file; a backend runs them by
//! expanding [`http_suite!`] with an expression that makes a store (it may `.await`). The
//! auth, metrics and event-stream suites sit beside them, each with its own macro:
//!
//! ```ignore
//! use crate::http as http_suite;
//! http_suite!(http_suite, Arc::new(MemoryStore::new(4)));
//! ```

/// One `#[actix_rt::test]` per check. `$module` is the name the suite is in scope under;
/// `$make` makes a fresh store and may `.await`.
macro_rules! http_suite {
    ($module:ident, $make:expr) => {
        http_suite!(
            @each $module, $make;
            health_endpoints_answer,
            the_whole_journey_from_product_to_withdrawal,
            a_quote_burst_answers_in_order,
            malformed_bodies_are_400_naming_the_field,
            unknown_things_are_404_and_wrong_methods_405,
            every_route_answers_its_methods_and_names_them_in_allow,
            illegal_transitions_are_409_with_the_current_status,
            underwriting_refusals_are_422_with_every_violation,
            product_writes_version_and_refuse_bad_definitions,
            a_declined_payment_is_402_and_a_retry_can_succeed,
            an_unavailable_payment_is_503_with_retry_after,
            bodies_over_the_limit_are_413,
            bodies_not_sent_as_json_are_415,
            a_repeated_idempotency_key_answers_the_first_response_and_acts_once,
            a_key_names_the_resource_however_its_path_spells_it,
            two_servers_on_one_store_do_a_keyed_request_once_and_share_data,
            graceful_shutdown_stops_accepting,
            a_long_poll_answers_when_the_document_is_issued,
            documents_are_served_by_number_with_their_digest_as_etag,
            enrollments_are_listed_page_by_page,
            arrays_for_objects_are_400_naming_the_place,
            bad_queries_are_400_naming_the_parameter,
            bad_bodies_are_4xx_naming_the_field_and_store_nothing,
            random_bodies_are_4xx_problems_and_store_nothing,
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

mod bad_input;
mod documents;
mod errors;
mod idempotency;
mod journey;
mod listing;

pub use bad_input::*;
pub use documents::*;
pub use errors::*;
pub use idempotency::*;
pub use journey::*;
pub use listing::*;

#[macro_use]
pub mod auth;
#[macro_use]
pub mod metrics;
#[macro_use]
pub mod sse;
#[macro_use]
pub mod front_door;
