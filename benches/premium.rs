//! The premium core's speed: one quote against cached columns, a burst of 10,000 varied
//! quotes, building one table's commutation columns, and the JSON burst path.
//!
//! `cargo bench --bench premium`; medians go in the closing notes, see README.md.

use chrono::NaiveDate;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ezenroll::api::QuoteService;
use ezenroll::domain::catalog::Catalog;
use ezenroll::domain::commutation::CommutationColumns;
use ezenroll::domain::customer::{BirthDate, Gender, Insured};
use ezenroll::domain::money::Won;
use ezenroll::domain::mortality::MortalityTable;
use ezenroll::domain::period::{CoveragePeriod, PaymentCycle, Years};
use ezenroll::domain::premium::{PricedProduct, QuoteInput};
use std::hint::black_box;
use std::sync::Arc;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("bench date")
}

fn years(n: u64) -> Years {
    Years::new(n).expect("bench period")
}

/// A deterministic spread over the demo products, ages, genders, sums and cycles; mostly
/// accepted, some refused, as a comparison site's traffic would be.
fn varied_inputs(catalog: &Catalog, count: usize) -> Vec<(Arc<PricedProduct>, QuoteInput)> {
    let products = ["EZ-TERM", "EZ-WL", "EZ-ENDOW"]
        .map(|c| Arc::clone(catalog.latest(c).expect("demo product")));
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    (0..count)
        .map(|_| {
            let which = next(3) as usize;
            let product = Arc::clone(&products[which]);
            let birth = date(
                1966 + next(39) as i32,
                1 + next(12) as u32,
                1 + next(28) as u32,
            );
            let (coverage, payment) = match which {
                0 => {
                    let n = [10, 20, 30][next(3) as usize];
                    (
                        CoveragePeriod::Years(years(n)),
                        years([5, 10, 20, 30][next(4) as usize].min(n)),
                    )
                }
                1 => (
                    CoveragePeriod::WholeLife,
                    years([10, 15, 20][next(3) as usize]),
                ),
                _ => {
                    let n = [10, 15, 20][next(3) as usize];
                    (
                        CoveragePeriod::Years(years(n)),
                        years([5, 10, 15, 20][next(4) as usize].min(n)),
                    )
                }
            };
            let input = QuoteInput {
                insured: Insured {
                    birth_date: BirthDate::new(birth).expect("bench birth"),
                    gender: Gender::ALL[next(2) as usize],
                },
                quote_date: date(2026, 11, 24),
                sum_insured: Won::new((10 + next(290)) * 1_000_000),
                coverage,
                payment_period: payment,
                cycle: PaymentCycle::ALL[next(4) as usize],
            };
            (product, input)
        })
        .collect()
}

fn quote_json_burst(count: usize) -> String {
    let catalog = Catalog::demo();
    let items: Vec<String> = varied_inputs(&catalog, count)
        .iter()
        .map(|(p, i)| {
            format!(
                r#"{{"productCode":"{}","insured":{{"birthDate":"{}","gender":"{}"}},"quoteDate":"2026-11-24","sumInsured":{},"coveragePeriod":{},"paymentPeriod":{},"paymentCycle":"{}"}}"#,
                p.product().code(),
                i.insured.birth_date.date(),
                i.insured.gender,
                i.sum_insured.get(),
                serde_json::to_string(&i.coverage).expect("coverage json"),
                i.payment_period.get(),
                serde_json::to_value(i.cycle).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

fn premium(c: &mut Criterion) {
    let catalog = Catalog::demo();
    let term = Arc::clone(catalog.latest("EZ-TERM").expect("demo product"));
    let one = QuoteInput {
        insured: Insured {
            birth_date: BirthDate::new(date(1986, 5, 1)).expect("birth"),
            gender: Gender::Male,
        },
        quote_date: date(2026, 11, 24),
        sum_insured: Won::new(100_000_000),
        coverage: CoveragePeriod::Years(years(20)),
        payment_period: years(20),
        cycle: PaymentCycle::Monthly,
    };
    assert!(
        term.quote(&one).is_ok(),
        "the single bench quote must be accepted"
    );
    c.bench_function("quote/one (underwriting + age + premium)", |b| {
        b.iter(|| black_box(&term).quote(black_box(&one)))
    });

    let burst = varied_inputs(&catalog, 10_000);
    let mut group = c.benchmark_group("quote/burst");
    group.throughput(Throughput::Elements(burst.len() as u64));
    group.bench_function(BenchmarkId::from_parameter(burst.len()), |b| {
        b.iter(|| {
            let mut accepted = 0u32;
            for (product, input) in &burst {
                accepted += u32::from(black_box(product).quote(black_box(input)).is_ok());
            }
            accepted
        })
    });
    group.finish();

    let sult = MortalityTable::sult();
    c.bench_function("commutation/build SULT (111 ages)", |b| {
        b.iter(|| CommutationColumns::build(black_box(&sult), black_box(0.025)))
    });

    let service = QuoteService::new(Arc::new(Catalog::demo()));
    let json = quote_json_burst(10_000);
    let today = date(2026, 11, 24);
    let mut group = c.benchmark_group("quote/json burst");
    group.throughput(Throughput::Elements(10_000));
    group.sample_size(20);
    group.bench_function(BenchmarkId::from_parameter(10_000), |b| {
        let mut out = Vec::with_capacity(json.len() * 2);
        b.iter(|| {
            out.clear();
            service
                .quote_json_into(black_box(&json), today, &mut out)
                .expect("bench burst is valid");
            out.len()
        })
    });
    group.finish();
}

criterion_group!(benches, premium);
criterion_main!(benches);
