//! 상품설명서: the document describing the product and the quoted terms, rendered from the
//! pinned plan and the product version it was quoted on.

use super::ids::EnrollmentId;
use super::period::CoveragePeriod;
use super::plan::PlanTerms;
use super::product::{CoverageKind, Product, ProductText};
use super::text::Text;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// 상품설명서: rendered text with the terms it describes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductDocument {
    pub document_no: String,
    pub plan_revision: u32,
    #[serde(with = "super::time::utc")]
    pub issued_at: DateTime<Utc>,
    pub title: String,
    pub body: String,
}

impl ProductDocument {
    /// What the enrollment and its event keep of this document.
    pub fn reference(&self) -> DocumentRef {
        DocumentRef {
            document_no: self.document_no.clone(),
            plan_revision: self.plan_revision,
            issued_at: self.issued_at,
            title: self.title.clone(),
            body_sha256: self.body_sha256(),
        }
    }

    /// Lower-case hex SHA-256 of the body's UTF-8 bytes.
    pub fn body_sha256(&self) -> String {
        sha256_hex(self.body.as_bytes())
    }

    /// Whether this is the document `reference` names: same number and revision, and
    /// a body with the digest it recorded (a reference decoded from an event written
    /// before digests were recorded has none, and names the document by number alone).
    pub fn is_named_by(&self, reference: &DocumentRef) -> bool {
        self.document_no == reference.document_no
            && self.plan_revision == reference.plan_revision
            && (reference.body_sha256.is_empty() || self.body_sha256() == reference.body_sha256)
    }
}

/// The product document as the enrollment and its `DocumentIssued` event name it: its
/// number, the plan revision it shows, when it was issued, its title and the SHA-256 of
/// its text. The text itself is kept once, apart, and read by
/// `GET /enrollments/{id}/document` (the claim-check pattern): it does not travel with
/// every later snapshot, the event history, each consumer's delivery and every
/// enrollment answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DocumentRef {
    pub document_no: String,
    pub plan_revision: u32,
    #[serde(with = "super::time::utc")]
    pub issued_at: DateTime<Utc>,
    pub title: String,
    /// Lower-case hex SHA-256 of the body's UTF-8 bytes. Empty only in a reference read
    /// from a schema-1 event, which carried the whole document instead.
    #[serde(default)]
    pub body_sha256: String,
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for byte in digest {
        for nibble in [byte >> 4, byte & 0x0f] {
            out.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
        }
    }
    out
}

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

/// The product's own lines of its document, kept by the product
/// ([`Product::document_text`]) so they are written once per product.
fn product_text(p: &Product) -> ProductText {
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

/// Renders the document for plan revision `revision`. `product` is the pinned version
/// (absent only if the catalog lost it; the document then says so instead of guessing).
/// The product's own lines are rendered once per product, which keeps them
/// (`Product::document_text`).
pub fn render(
    id: EnrollmentId,
    plan: &PlanTerms,
    revision: u32,
    product: Option<&Product>,
    issued_at: DateTime<Utc>,
) -> ProductDocument {
    let q = &plan.quote;
    let mut no = Text::with_capacity(32);
    no.s("DOC-")
        .s(&yyyymmdd(issued_at.date_naive()))
        .s("-")
        .s(&id.short())
        .s("-")
        .n(revision);
    let document_no = no.into_string();
    let mut title = Text::with_capacity(plan.product_name.len() + 32);
    title
        .s(&plan.product_name)
        .s(" 상품설명서 (v")
        .n(plan.product_version)
        .s(")");
    let title = title.into_string();
    let text = product.map(|p| p.document_text(product_text));
    let mut body =
        Text::with_capacity(768 + text.map_or(0, |t| t.coverage.len() + t.underwriting.len()));
    body.s("■ 문서번호: ").s(&document_no).s("\n");
    body.s("■ 상품: ")
        .s(&plan.product_name)
        .s(" (")
        .s(&plan.product_code)
        .s(" v")
        .n(plan.product_version)
        .s(")\n");
    body.s(match text {
        Some(t) => &t.coverage,
        None => "■ 상품 정의를 찾을 수 없어 보장 내용은 약관을 따릅니다.\n",
    });
    body.s("■ 피보험자: ")
        .date(plan.insured.birth_date.date())
        .s(match plan.insured.gender {
            super::customer::Gender::Male => " 생, 남 (보험나이 ",
            super::customer::Gender::Female => " 생, 여 (보험나이 ",
        })
        .n(q.insurance_age.years())
        .s("세)\n");
    body.s("■ 보험가입금액: ").won(plan.sum_insured).s("\n");
    body.s("■ 보험기간: ");
    match plan.coverage_period {
        CoveragePeriod::WholeLife => body.s("종신"),
        CoveragePeriod::Years(y) => body.n(y.get()).s("년"),
    };
    body.s("  납입기간: ")
        .n(plan.payment_period.get())
        .s("년  납입주기: ")
        .s(plan.payment_cycle.label())
        .s("\n");
    body.s("■ 보험료: 회당 ")
        .won(q.installment)
        .s(" (연 ")
        .won(q.annualized_premium)
        .s("), 순보험료 연 ")
        .won(q.net_annual_premium)
        .s("\n");
    body.s("■ 산출기준일: ").date(plan.quote_date).s("\n");
    if let Some(t) = text {
        body.s(&t.underwriting);
    }
    body.s(
        "■ 청약철회: 청약일로부터 정해진 기간 안에 철회할 수 있으며, 납입한 보험료는 환급됩니다.\n",
    );
    let body = body.into_string();
    ProductDocument {
        document_no,
        plan_revision: revision,
        issued_at,
        title,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::Catalog;
    use crate::domain::customer::{BirthDate, Gender, Insured};
    use crate::domain::money::Won;
    use crate::domain::period::{PaymentCycle, Years};
    use crate::domain::premium::QuoteInput;
    use chrono::{NaiveDate, TimeZone};

    fn document(code: &str, gender: Gender, coverage: CoveragePeriod) -> ProductDocument {
        let catalog = Catalog::demo();
        let product = catalog.latest(code).expect("a demo product");
        let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("a date");
        let input = QuoteInput {
            insured: Insured {
                birth_date: BirthDate::new(date(1986, 5, 1)).expect("a birth date"),
                gender,
            },
            quote_date: date(2026, 11, 24),
            sum_insured: Won::new(100_000_000),
            coverage,
            payment_period: Years::new(20).expect("years"),
            cycle: PaymentCycle::Monthly,
        };
        let plan = PlanTerms::quote(product, &input).expect("an acceptable quote");
        let id = EnrollmentId::parse("0190f5a4-7c2e-7d3b-9a41-5e6f7a8b9c0d").expect("an id");
        let issued_at = Utc
            .with_ymd_and_hms(2026, 11, 24, 9, 30, 0)
            .single()
            .expect("a time");
        render(id, &plan, 2, Some(product.product()), issued_at)
    }

    /// The whole text, line by line, for a term plan and a whole-life plan (the two
    /// coverage-period branches, both genders): what a customer reads.
    #[test]
    fn a_document_reads_in_full() {
        let term = document(
            "EZ-TERM",
            Gender::Male,
            CoveragePeriod::Years(Years::new(20).expect("years")),
        );
        assert_eq!(term.document_no, "DOC-20261124-7a8b9c0d-2");
        assert_eq!(term.title, "이지 정기보험 상품설명서 (v1)");
        assert_eq!(
            term.body,
            concat!(
                "■ 문서번호: DOC-20261124-7a8b9c0d-2\n",
                "■ 상품: 이지 정기보험 (EZ-TERM v1)\n",
                "■ 보장유형: 정기보험\n",
                "  보험기간 중 사망 시 보험가입금액을 지급합니다. 만기 시 지급금은 없습니다.\n",
                "■ 예정이율: 2.50%\n",
                "■ 피보험자: 1986-05-01 생, 남 (보험나이 41세)\n",
                "■ 보험가입금액: 100,000,000원\n",
                "■ 보험기간: 20년  납입기간: 20년  납입주기: 월납\n",
                "■ 보험료: 회당 16,709원 (연 200,508원), 순보험료 연 138,588원\n",
                "■ 산출기준일: 2026-11-24\n",
                "■ 인수조건\n",
                "  - 가입나이: 20세 ~ 60세\n",
                "  - 만기나이: 80세 이하\n",
                "  - 보험가입금액: 10,000,000원 ~ 1,000,000,000원 (1,000,000원 단위)\n",
                "  - 1인 누적 가입한도: 2,000,000,000원\n",
                "  - 최저 보험료: 10,000원\n",
                "  - 위 가입조건을 모두 충족하여 보험료가 산출되었습니다.\n",
                "■ 청약철회: 청약일로부터 정해진 기간 안에 철회할 수 있으며, 납입한 보험료는 환급됩니다.\n"
            )
        );
        let whole_life = document("EZ-WL", Gender::Female, CoveragePeriod::WholeLife);
        assert_eq!(whole_life.document_no, "DOC-20261124-7a8b9c0d-2");
        assert_eq!(whole_life.title, "이지 종신보험 상품설명서 (v1)");
        assert_eq!(
            whole_life.body,
            concat!(
                "■ 문서번호: DOC-20261124-7a8b9c0d-2\n",
                "■ 상품: 이지 종신보험 (EZ-WL v1)\n",
                "■ 보장유형: 종신보험\n",
                "  평생 보장: 사망 시 보험가입금액을 지급합니다.\n",
                "■ 예정이율: 2.25%\n",
                "■ 피보험자: 1986-05-01 생, 여 (보험나이 41세)\n",
                "■ 보험가입금액: 100,000,000원\n",
                "■ 보험기간: 종신  납입기간: 20년  납입주기: 월납\n",
                "■ 보험료: 회당 214,727원 (연 2,576,724원), 순보험료 연 2,327,484원\n",
                "■ 산출기준일: 2026-11-24\n",
                "■ 인수조건\n",
                "  - 가입나이: 20세 ~ 65세\n",
                "  - 보험가입금액: 10,000,000원 ~ 500,000,000원 (1,000,000원 단위)\n",
                "  - 1인 누적 가입한도: 1,000,000,000원\n",
                "  - 최저 보험료: 30,000원\n",
                "  - 위 가입조건을 모두 충족하여 보험료가 산출되었습니다.\n",
                "■ 청약철회: 청약일로부터 정해진 기간 안에 철회할 수 있으며, 납입한 보험료는 환급됩니다.\n"
            )
        );
    }
}
