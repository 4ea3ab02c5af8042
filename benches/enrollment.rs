//! Full enrollments per second through the engine on the memory store: save plan →
//! request document (issued by the durable timer, delay 0) → proposal with the first
//! premium paid through the PaymentGateway actor (instant simulated provider) →
//! Contracted. The Notifier and MyPage projector run alongside, as in production.
//!
//! `cargo bench --bench enrollment`
//!
//! `-- "fresh engine"` runs each sample on a new engine and store instead (see
//! [`enrollment_fresh`]). `BENCH_ARBITERS=N` puts the actors on N arbiters (default one
//! per core; 0: on the System's thread, as `serve --threads 1` does).
//!
//! `BENCH_ONCE=N` skips criterion and runs N enrollments once (after as many to warm up),
//! printing the rate: a fixed workload for `valgrind --tool=callgrind`, whose instruction
//! counts do not depend on how busy the machine is.

// mimalloc: the engine allocates many small, short-lived objects across threads
// (messages, envelopes, futures), where glibc malloc does poorly; as the binary does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group};
use ezenroll::actors::payment::{GatewayConfig, Simulation};
use ezenroll::actors::{Engine, EngineConfig, EngineHandle, PlanRequest};
use ezenroll::domain::customer::NewCustomer;
use ezenroll::domain::enrollment::{CustomerNo, PaymentMethod, Status};
use ezenroll::domain::money::Won;
use ezenroll::domain::period::{CoveragePeriod, PaymentCycle, Years};
use ezenroll::store::memory::MemoryStore;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Enrollments in flight at once, like that many customers clicking through.
const CONCURRENCY: usize = 512;

fn config() -> EngineConfig {
    EngineConfig {
        // BENCH_ARBITERS=N: the actors on N arbiters (default one per core; 0: on the
        // System's own thread).
        arbiters: std::env::var("BENCH_ARBITERS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(EngineConfig::default().arbiters),
        document_delay: Duration::ZERO,
        passivate_after: Duration::from_secs(3600),
        // BENCH_NO_CONSUMERS=1 measures the command path without the Notifier and
        // the MyPage projector.
        run_notifier: std::env::var("BENCH_NO_CONSUMERS").is_err(),
        run_projector: std::env::var("BENCH_NO_CONSUMERS").is_err(),
        simulation: Simulation {
            latency: Duration::ZERO,
            decline_rate: 0.0,
            failure_rate: 0.0,
        },
        payment: GatewayConfig {
            mailbox_capacity: 4 * CONCURRENCY,
            ..GatewayConfig::default()
        },
        ..EngineConfig::default()
    }
}

/// Two registrations, parsed once: what a library caller hands the engine is the typed
/// `NewCustomer`; parsing JSON is the HTTP layer's work, measured by scripts/load.sh.
static CUSTOMERS: std::sync::LazyLock<[NewCustomer; 2]> = std::sync::LazyLock::new(|| {
    ["male", "female"].map(|gender| {
        serde_json::from_value(serde_json::json!({
            "name": "김이지",
            "birthDate": "1986-05-01",
            "gender": gender,
            "mobilePhone": "010-1234-5678"
        }))
        .expect("customer")
    })
});

fn new_customer(i: u64) -> NewCustomer {
    CUSTOMERS[(i % 2) as usize].clone()
}

/// A new customer's whole journey: registration, plan, document, paid proposal.
async fn one_enrollment(engine: &EngineHandle, i: u64) {
    let customer: CustomerNo = engine
        .register_customer(new_customer(i))
        .await
        .expect("registered")
        .customer_no;
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
        .expect("plan saved");
    let id = plan.state.id;
    engine
        .request_document(id)
        .await
        .expect("document requested");
    engine
        .wait_for(id, Duration::from_secs(30), |e| {
            e.status == Status::DocumentIssued
        })
        .await
        .expect("waiting")
        .expect("document issued");
    let done = engine
        .submit_proposal(id, PaymentMethod::Card)
        .await
        .expect("contracted");
    assert_eq!(done.state.status, Status::Contracted);
}

/// Runs `total` enrollments with `CONCURRENCY` in flight.
async fn run(engine: &EngineHandle, total: u64) -> Duration {
    let start = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (engine, next) = (engine.clone(), Arc::clone(&next));
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    one_enrollment(&engine, i).await;
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("worker");
    }
    start.elapsed()
}

/// As `serve` runs: a multi-thread tokio runtime for callers (HTTP), actors on arbiters.
fn system() -> actix_rt::SystemRunner {
    actix_rt::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime")
    })
}

fn engine_group(c: &mut Criterion) -> BenchmarkGroup<'_, WallTime> {
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group
}

fn enrollment(c: &mut Criterion) {
    let system = system();
    let engine = system.block_on(async {
        Engine::start(config(), Arc::new(MemoryStore::new(16)))
            .await
            .expect("engine")
    });
    let mut group = engine_group(c);
    group.bench_function(
        "full enrollment (plan → document → proposal → contract)",
        |b| b.iter_custom(|iters| system.block_on(run(&engine, iters))),
    );
    group.finish();
    system.block_on(engine.shutdown());
}

/// The same journeys, each sample on a fresh engine and store (started and stopped outside
/// the timing): a burst into an engine that holds little yet. The benchmark above keeps
/// one engine for every sample, so what it holds (every enrollment, its live actor, its
/// alarms, ≈ 7 KB each) grows to half a million and more, and its figure falls the longer
/// criterion runs; this one holds at most one sample's enrollments (tens of thousands).
fn enrollment_fresh(c: &mut Criterion) {
    let system = system();
    let mut group = engine_group(c);
    group.bench_function("full enrollment, a fresh engine per sample", |b| {
        b.iter_custom(|iters| {
            system.block_on(async {
                let engine = Engine::start(config(), Arc::new(MemoryStore::new(16)))
                    .await
                    .expect("engine");
                let took = run(&engine, iters).await;
                engine.shutdown().await;
                took
            })
        })
    });
    group.finish();
}

/// How fast a caller hears "payment busy" from a full gateway mailbox: the provider hangs,
/// the mailbox is full, and each further charge must be refused at once.
fn busy_answer(c: &mut Criterion) {
    use ezenroll::actors::payment::{
        ChargeRequest, PaymentAnswer, PaymentClient, PaymentProvider, SimulatedProvider,
    };
    let system = actix_rt::System::new();
    let client = system.block_on(async {
        let provider = Arc::new(SimulatedProvider::new(
            Simulation {
                latency: Duration::from_secs(3600),
                ..Simulation::default()
            },
            1,
            Arc::new(MemoryStore::new(1)),
        ));
        let config = GatewayConfig {
            mailbox_capacity: 1,
            max_in_flight: 1,
            ..GatewayConfig::default()
        };
        Arc::new(PaymentClient::start(
            provider as Arc<dyn PaymentProvider>,
            config,
            None,
        ))
    });
    let request = ChargeRequest {
        reference: "bench".to_owned(),
        amount: Won::new(16_709),
        method: PaymentMethod::Card,
    };
    system.block_on(async {
        // One charge hangs in the provider (one call in flight), the next fills the mailbox.
        for _ in 0..2 {
            let (client, request) = (Arc::clone(&client), request.clone());
            actix_rt::spawn(async move { client.charge(request).await });
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let answer = client.charge(request.clone()).await;
        assert!(
            matches!(answer, PaymentAnswer::Unavailable { .. }),
            "{answer:?}"
        );
    });
    c.bench_function("payment/busy answer from a full mailbox", |b| {
        b.iter(|| system.block_on(client.charge(request.clone())))
    });
}

/// `BENCH_ONCE=N`: N enrollments after N to warm up, outside criterion (for profilers).
fn once(n: u64) {
    let system = system();
    let store = Arc::new(MemoryStore::new(16));
    system.block_on(async {
        let engine = Engine::start(config(), Arc::clone(&store) as _)
            .await
            .expect("engine");
        run(&engine, n).await;
        let took = run(&engine, n).await;
        println!(
            "{n} enrollments in {took:?}: {:.0}/s",
            n as f64 / took.as_secs_f64()
        );
        engine.shutdown().await;
    });
    // Freeing every enrollment at exit is no part of the workload.
    std::mem::forget(store);
}

criterion_group!(benches, enrollment, enrollment_fresh, busy_answer);

fn main() {
    // As `ezenroll` itself runs (src/main.rs).
    ezenroll::os::disable_transparent_huge_pages();
    match std::env::var("BENCH_ONCE")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        Some(n) => once(n),
        None => {
            benches();
            Criterion::default().configure_from_args().final_summary();
        }
    }
}
