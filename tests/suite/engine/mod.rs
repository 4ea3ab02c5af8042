//! The engine end to end, as checks that take nothing but an `Arc<dyn Store>`, so the
//! memory backend and the Redis one run the very same suite: real actors, a real store, the
//! simulated payment provider. Nothing here asserts on how long something took;
//! eventually-consistent things (timers, the read model, alarms) are waited for with
//! generous timeouts, and "X happened before Y" is checked by what was observed when X
//! completed.
//!
//! Each check needs a fresh, empty store; a check that needs the same store twice (a second
//! engine on what the first left) reuses the one it is given. The checks live one concern
//! per file. A backend runs them by expanding [`engine_suite!`] with an expression that
//! makes a store (it may `.await`), as tests/suite/memory/engine.rs and
//! tests/suite/redis_backend/engine.rs do; the check that needs to corrupt a stored
//! snapshot takes a backend-specific closure and is written out by hand:
//!
//! ```ignore
//! use crate::engine as engine_suite;
//! engine_suite!(engine_suite, Arc::new(MemoryStore::new(4)));
//! ```

/// One `#[actix_rt::test]` per backend-agnostic check. `$module` is the name the suite
/// is in scope under; `$make` makes a fresh store and may `.await`.
macro_rules! engine_suite {
    ($module:ident, $make:expr) => {
        engine_suite!(
            @each $module, $make;
            seed_scenario_from_plan_to_withdrawal,
            payment_overload_answers_busy_at_once_and_plans_keep_working,
            provider_errors_open_the_breaker_and_a_good_trial_closes_it,
            declines_fail_the_payment_but_never_open_the_breaker,
            a_panic_restarts_only_that_enrollment_with_its_state_intact,
            passivated_actors_reactivate_from_the_store,
            the_sweeper_passivates_idle_actors,
            a_new_engine_on_the_same_store_finishes_what_the_old_one_left,
            concurrent_proposals_never_pass_the_cumulative_limit,
            a_plan_expires_by_itself_and_then_refuses_commands,
            illegal_transitions_are_refused_and_change_nothing,
            a_withdrawal_is_refunded_exactly_once_while_a_read_waits,
            an_interrupted_payment_is_reconciled_with_the_provider,
            an_interrupted_unpaid_proposal_can_be_retried,
            payments_run_concurrently_up_to_the_limit,
            two_engines_on_one_store_decide_on_fresh_state,
            a_plan_saved_under_a_chosen_id_is_saved_once,
            without_arbiters_everything_runs_on_the_system_thread,
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

/// The engine fixtures (tests/support/engine.rs), here for the checks and for the backends.
pub use crate::support::engine as fixtures;

mod actors;
mod helpers;
mod interrupted;
mod lifecycle;
mod payments;
mod shared_store;

pub use actors::*;
pub use interrupted::*;
pub use lifecycle::*;
pub use payments::*;
pub use shared_store::*;
