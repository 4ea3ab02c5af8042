//! 상품설명서: the document describing the product and the quoted terms, rendered from the
//! pinned plan and the product version it was quoted on.

use super::enrollment::{EnrollmentId, PlanTerms, ProductDocument};
use super::period::CoveragePeriod;
use super::product::{CoverageKind, Product};
use chrono::{DateTime, Utc};
use std::fmt::Write;

/// `20261124`, without chrono's format-string parser or padded formatting (this runs
/// per document and per contract).
pub fn yyyymmdd(date: chrono::NaiveDate) -> String {
    use chrono::Datelike;
    let (year, month, day) = (date.year(), date.month(), date.day());
    match u32::try_from(year) {
        Ok(y) if y <= 9999 => [y / 1000, y / 100 % 10, y / 10 % 10, y % 10]
            .into_iter()
            .chain([month / 10, month % 10, day / 10, day % 10])
            .filter_map(|digit| char::from_digit(digit, 10))
            .collect(),
        _ => format!("{year:04}{month:02}{day:02}"),
    }
}

/// The lines of a document that depend on the product alone: its coverage and rate
/// (after the product line) and its underwriting terms (after the quote date).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductText {
    coverage: String,
    underwriting: String,
}

impl ProductText {
    pub(crate) fn render(p: &Product) -> ProductText {
        // Writing to a String cannot fail; the results are ignored on purpose.
        let mut coverage = String::with_capacity(256);
        let _ = writeln!(coverage, "■ 보장유형: {}", p.coverage());
        let _ = writeln!(
            coverage,
            "  {}",
            match p.coverage() {
                CoverageKind::Term =>
                    "보험기간 중 사망 시 보험가입금액을 지급합니다. 만기 시 지급금은 없습니다.",
                CoverageKind::Endowment =>
                    "보험기간 중 사망 시 또는 만기까지 생존 시 보험가입금액을 지급합니다.",
                CoverageKind::WholeLife => "평생 보장: 사망 시 보험가입금액을 지급합니다.",
            }
        );
        let basis = &p.spec().rate_basis;
        let _ = writeln!(coverage, "■ 예정이율: {:.2}%", basis.interest * 100.0);
        let uw = p.underwriting();
        let mut underwriting = String::with_capacity(512);
        let _ = writeln!(underwriting, "■ 인수조건");
        let _ = writeln!(
            underwriting,
            "  - 가입나이: {}세 ~ {}세",
            uw.entry_age.min, uw.entry_age.max
        );
        if let Some(max) = uw.max_maturity_age {
            let _ = writeln!(underwriting, "  - 만기나이: {max}세 이하");
        }
        let _ = writeln!(
            underwriting,
            "  - 보험가입금액: {} ~ {} ({} 단위)",
            uw.sum_insured.min, uw.sum_insured.max, uw.sum_insured.unit
        );
        if let Some(limit) = uw.max_cumulative_sum_insured {
            let _ = writeln!(underwriting, "  - 1인 누적 가입한도: {limit}");
        }
        let _ = writeln!(underwriting, "  - 최저 보험료: {}", uw.min_installment);
        let _ = writeln!(
            underwriting,
            "  - 위 가입조건을 모두 충족하여 보험료가 산출되었습니다."
        );
        ProductText {
            coverage,
            underwriting,
        }
    }
}

/// Renders the document for plan revision `revision`. `product` is the pinned version
/// (absent only if the catalog lost it; the document then says so instead of guessing).
/// The product's own lines are rendered once per product ([`Product::document_text`]).
pub fn render(
    id: EnrollmentId,
    plan: &PlanTerms,
    revision: u32,
    product: Option<&Product>,
    issued_at: DateTime<Utc>,
) -> ProductDocument {
    let document_no = format!(
        "DOC-{}-{}-{revision}",
        yyyymmdd(issued_at.date_naive()),
        id.short()
    );
    let title = format!(
        "{} 상품설명서 (v{})",
        plan.product_name, plan.product_version
    );
    let text = product.map(Product::document_text);
    let q = &plan.quote;
    let mut body =
        String::with_capacity(768 + text.map_or(0, |t| t.coverage.len() + t.underwriting.len()));
    // Writing to a String cannot fail; the results are ignored on purpose.
    let _ = writeln!(body, "■ 문서번호: {document_no}");
    let _ = writeln!(
        body,
        "■ 상품: {} ({} v{})",
        plan.product_name, plan.product_code, plan.product_version
    );
    match text {
        Some(t) => body.push_str(&t.coverage),
        None => body.push_str("■ 상품 정의를 찾을 수 없어 보장 내용은 약관을 따릅니다.\n"),
    }
    let _ = writeln!(
        body,
        "■ 피보험자: {} 생, {} (보험나이 {})",
        plan.insured.birth_date.date(),
        match plan.insured.gender {
            super::customer::Gender::Male => "남",
            super::customer::Gender::Female => "여",
        },
        q.insurance_age
    );
    let _ = writeln!(body, "■ 보험가입금액: {}", plan.sum_insured);
    body.push_str("■ 보험기간: ");
    let _ = match plan.coverage_period {
        CoveragePeriod::WholeLife => body.write_str("종신"),
        CoveragePeriod::Years(y) => write!(body, "{y}"),
    };
    let _ = writeln!(
        body,
        "  납입기간: {}  납입주기: {}",
        plan.payment_period, plan.payment_cycle
    );
    let _ = writeln!(
        body,
        "■ 보험료: 회당 {} (연 {}), 순보험료 연 {}",
        q.installment, q.annualized_premium, q.net_annual_premium
    );
    let _ = writeln!(body, "■ 산출기준일: {}", plan.quote_date);
    if let Some(t) = text {
        body.push_str(&t.underwriting);
    }
    body.push_str(
        "■ 청약철회: 청약일로부터 정해진 기간 안에 철회할 수 있으며, 납입한 보험료는 환급됩니다.\n",
    );
    ProductDocument {
        document_no,
        plan_revision: revision,
        issued_at,
        title,
        body,
    }
}
