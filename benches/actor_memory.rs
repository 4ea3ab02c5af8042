//! Memory per active enrollment actor, measured at 100,000 live actors: heap bytes held
//! (counted by a wrapping global allocator) and resident set growth, between all actors
//! passivated and all 100,000 re-activated from the store. Prints, does not time.
//!
//! `cargo bench --bench actor_memory` (ACTORS=N to change the count)

use ezenroll::actors::{Engine, EngineConfig, EngineHandle, PlanRequest};
use ezenroll::domain::customer::NewCustomer;
use ezenroll::domain::enrollment::EnrollmentId;
use ezenroll::domain::money::Won;
use ezenroll::domain::period::{CoveragePeriod, PaymentCycle, Years};
use ezenroll::store::memory::MemoryStore;
use std::alloc::{GlobalAlloc, Layout};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

struct Counting;

static HELD: AtomicIsize = AtomicIsize::new(0);
static INNER: mimalloc::MiMalloc = mimalloc::MiMalloc;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to mimalloc.
        unsafe { INNER.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to mimalloc.
        unsafe { INNER.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        HELD.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: forwarded unchanged to mimalloc.
        unsafe { INNER.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

async fn settle() {
    // Let stopped actors finish tearing down on their arbiters.
    tokio::time::sleep(Duration::from_millis(500)).await;
}

async fn activate_all(engine: &EngineHandle, ids: &[EnrollmentId]) {
    for chunk in ids.chunks(1_000) {
        let gets: Vec<_> = chunk.iter().map(|id| engine.enrollment(*id)).collect();
        for get in gets {
            get.await.expect("enrollment");
        }
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` asks benchmarks to list themselves
    }
    let count: usize = std::env::var("ACTORS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let system = actix_rt::System::new();
    system.block_on(async move {
        let config = EngineConfig {
            passivate_after: Duration::from_secs(3600),
            run_notifier: false,
            run_projector: false,
            ..EngineConfig::default()
        };
        let engine = Engine::start(config, Arc::new(MemoryStore::new(16))).await.expect("engine");
        let new: NewCustomer = serde_json::from_value(serde_json::json!({
            "name": "메모리", "birthDate": "1986-05-01", "gender": "female", "mobilePhone": "01012345678"
        }))
        .expect("customer");
        let customer = engine.register_customer(new).await.expect("customer").customer_no;
        let mut ids = Vec::with_capacity(count);
        for _ in 0..count {
            let plan = engine
                .save_plan(PlanRequest {
                    customer_no: customer,
                    product_code: "EZ-TERM",
                    sum_insured: Won::new(100_000_000),
                    coverage_period: CoveragePeriod::Years(Years::new(20).expect("years")),
                    payment_period: Years::new(20).expect("years"),
                    payment_cycle: PaymentCycle::Monthly,
                })
                .await
                .expect("plan");
            ids.push(plan.state.id);
        }
        engine.passivate_idle(Duration::ZERO);
        settle().await;
        assert_eq!(engine.active_actors(), 0);
        let (heap0, rss0) = (HELD.load(Ordering::Relaxed), rss_bytes());
        activate_all(&engine, &ids).await;
        settle().await;
        let (heap1, rss1) = (HELD.load(Ordering::Relaxed), rss_bytes());
        assert_eq!(engine.active_actors(), count);
        let per = |a: i64, b: i64| (b - a) as f64 / count as f64;
        println!(
            "actor memory at {count} active enrollment actors: heap {:.0} B/actor, resident {:.0} B/actor (target ≤ 4096)",
            per(heap0 as i64, heap1 as i64),
            per(rss0 as i64, rss1 as i64)
        );
        engine.passivate_idle(Duration::ZERO);
        settle().await;
        println!(
            "after passivating them all again: heap {:.0} B/actor above the passivated baseline",
            per(heap0 as i64, HELD.load(Ordering::Relaxed) as i64)
        );
        engine.shutdown().await;
    });
}
