//! The store contract: what every backend of `ezenroll::store::Store` must do, as checks
//! that take nothing but an `Arc<dyn Store>`, so the memory backend and the Redis one run
//! the very same checks.
//!
//! Each check needs a fresh, empty store (on Redis each gets a server or key prefix of its
//! own). The checks live one concern per file over the shared `fixtures`. A backend runs
//! them by expanding [`store_contract_suite!`] with an expression that makes a store (it
//! may `.await`), as tests/suite/memory/store_contract.rs and
//! tests/suite/redis_backend/store_contract.rs do; the check that needs to corrupt a stored
//! snapshot takes a backend-specific closure and is written out by hand:
//!
//! ```ignore
//! use crate::store_contract;
//! store_contract_suite!(store_contract, Arc::new(MemoryStore::new(4)));
//! ```
//!
//! Timing: waits here are semantic (a lease or TTL running out, a blocked read being woken);
//! nothing asserts how fast anything is.

/// One `#[tokio::test]` (multi-threaded, so concurrent checks really race) per
/// backend-agnostic check. `$module` is the name the suite is in scope under; `$make` makes
/// a fresh store and may `.await`.
macro_rules! store_contract_suite {
    ($module:ident, $make:expr) => {
        store_contract_suite!(
            @each $module, $make;
            ping_answers,
            append_and_load_round_trip,
            stale_append_conflicts_and_writes_nothing,
            concurrent_appends_one_wins,
            history_is_oldest_first,
            malformed_append_is_rejected,
            a_documents_text_is_kept_with_the_append_that_names_it,
            events_reach_their_partition_once,
            consumers_of_a_group_share_entries,
            a_read_fills_its_batch_from_one_busy_partition,
            unacked_entries_are_claimable_after_min_idle,
            ack_prevents_redelivery,
            new_group_sees_earlier_events,
            reading_an_unknown_group_fails,
            lag_counts_unread_and_pending,
            dead_letters_are_kept_and_acknowledged,
            blocked_read_returns_an_event_appended_meanwhile,
            blocked_read_on_nothing_returns_empty,
            read_after_tails_the_log_from_its_end,
            blocked_read_after_is_woken_by_an_append,
            timers_claim_lease_move_and_cancel,
            timer_ops_apply_with_the_append,
            customers_are_numbered_from_one,
            customers_are_registered_once_per_request,
            reservations_respect_the_limit,
            concurrent_reservations_stay_within_the_limit,
            products_conflict_and_list_by_code_then_version,
            views_are_written_only_forward,
            views_filter_order_and_count,
            views_are_listed_page_by_page,
            alarms_are_recorded_once_and_listed_newest_first,
            idempotency_is_put_if_absent_with_ttl,
            idempotency_claims_are_exclusive,
            a_dead_holders_claim_can_be_taken_over,
            batches_of_alarms_and_views_behave_like_one_at_a_time,
            a_large_batch_of_views_is_written_whole_and_in_order,
            members_heartbeat_leave_and_run_out,
            a_lease_has_one_holder_and_a_new_fence_per_take,
            a_former_owners_append_is_fenced,
            the_cluster_secret_is_made_once,
            the_first_approval_of_a_reference_holds,
            the_first_refund_of_a_payment_holds,
            racing_approvals_take_money_once,
        );
    };
    (@each $module:ident, $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let store: ::std::sync::Arc<dyn ::ezenroll::store::Store> = $make;
                $module::$check(store).await;
            }
        )*
    };
}

mod customers;
mod enrollments;
mod event_log;
mod fixtures;
mod idempotency;
mod ownership;
mod payment_ledger;
mod products;
mod read_model;
mod tailing;
mod timers;

pub use customers::*;
pub use enrollments::*;
pub use event_log::*;
pub use fixtures::*;
pub use idempotency::*;
pub use ownership::*;
pub use payment_ledger::*;
pub use products::*;
pub use read_model::*;
pub use tailing::*;
pub use timers::*;
