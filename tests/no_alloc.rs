//! "A quote allocates nothing": counted with a global allocator, so a change that sneaks
//! an allocation into the hot path fails here rather than only in a benchmark.

use chrono::NaiveDate;
use ezenroll::domain::catalog::Catalog;
use ezenroll::domain::customer::{BirthDate, Gender, Insured};
use ezenroll::domain::money::Won;
use ezenroll::domain::period::{CoveragePeriod, PaymentCycle, Years};
use ezenroll::domain::premium::QuoteInput;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATIONS.with(Cell::get);
    let value = f();
    (value, ALLOCATIONS.with(Cell::get) - before)
}

#[test]
fn an_accepted_quote_allocates_nothing_and_a_refusal_does() {
    let catalog = Catalog::demo();
    let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("date");
    for (code, coverage, payment) in [
        (
            "EZ-TERM",
            CoveragePeriod::Years(Years::new(20).expect("years")),
            10,
        ),
        ("EZ-WL", CoveragePeriod::WholeLife, 20),
        (
            "EZ-ENDOW",
            CoveragePeriod::Years(Years::new(15).expect("years")),
            15,
        ),
    ] {
        let product = catalog.latest(code).expect("demo product");
        let mut input = QuoteInput {
            insured: Insured {
                birth_date: BirthDate::new(date(1986, 5, 1)).expect("birth"),
                gender: Gender::Female,
            },
            quote_date: date(2026, 11, 24),
            sum_insured: Won::new(100_000_000),
            coverage,
            payment_period: Years::new(payment).expect("years"),
            cycle: PaymentCycle::Monthly,
        };
        let (result, count) = allocations_during(|| product.quote(&input));
        assert!(result.is_ok(), "{code}: {result:?}");
        assert_eq!(
            count, 0,
            "{code}: an accepted quote allocated {count} times"
        );

        // The counter works: a refusal builds its messages.
        input.sum_insured = Won::new(1);
        let (result, count) = allocations_during(|| product.quote(&input));
        assert!(result.is_err());
        assert!(count > 0);
    }
}
