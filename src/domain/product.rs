//! Products (상품): a versioned definition with its rate basis (예정기초율) and
//! underwriting rules (인수조건). [`ProductSpec`] is the JSON shape; [`Product`] is a spec
//! that has been checked as a whole, with every reason listed when it makes no sense.
//! Somewhat over 500 lines: the spec, its checks and the checked product are one concept,
//! and the checks read best next to the fields they check.

use super::money::Won;
use super::mortality::MortalityTable;
use super::period::{MAX_PERIOD_YEARS, PaymentCycle};
use super::text::quoted;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// Largest sum insured any product may allow: keeps every amount exact in `f64`.
pub const MAX_SUM_INSURED: u64 = 10_000_000_000_000; // 10조 원

/// `TERM-20`, `WL_01`: 1 to 32 of A–Z, 0–9, `-`, `_`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ProductCode(String);

impl ProductCode {
    pub fn parse(text: &str) -> Result<ProductCode, String> {
        let ok = (1..=32).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(ProductCode(text.to_owned()))
        } else {
            Err(format!(
                "product code {} must be 1 to 32 characters of A-Z, 0-9, '-' and '_'",
                quoted(text)
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

crate::json_schema!(
    ProductCode,
    super::schema::string(
        "A product code: 1 to 32 of A-Z, 0-9, '-' and '_'.",
        None,
        Some("^[A-Z0-9_-]{1,32}$"),
        "TERM-20",
    )
);

impl fmt::Display for ProductCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the product pays: on death within the term (정기), on death within the term or
/// survival to its end (양로), or on death whenever it happens (종신).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum CoverageKind {
    Term,
    Endowment,
    WholeLife,
}

impl fmt::Display for CoverageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CoverageKind::Term => "정기보험",
            CoverageKind::Endowment => "양로보험",
            CoverageKind::WholeLife => "종신보험",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProductSpec {
    pub code: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    pub coverage: CoverageKind,
    pub rate_basis: RateBasisSpec,
    pub underwriting: UnderwritingSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateBasisSpec {
    /// 예정이율 i, e.g. 0.025.
    pub interest: f64,
    pub mortality: MortalitySpec,
    pub loadings: Loadings,
}

/// `{"table": "sult"}` or `{"table": "custom", "male": {...}, "female": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(tag = "table", rename_all = "lowercase")]
pub enum MortalitySpec {
    /// The built-in Standard Ultimate Life Table, unisex. (A struct variant, not a unit
    /// one, so that it serializes as an object with its tag.)
    Sult {},
    /// The product's own table per gender.
    Custom { male: TableSpec, female: TableSpec },
}

/// Read as a struct, not as serde's internally tagged enum: that one buffers the value
/// first and then takes an array for the object or for either table, out of sight of the
/// strict reader of request JSON (`api::json`).
impl<'de> Deserialize<'de> for MortalitySpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;

        #[derive(Deserialize)]
        #[serde(rename_all = "lowercase")]
        enum Table {
            Sult,
            Custom,
        }

        #[derive(Deserialize)]
        #[serde(rename = "MortalitySpec", deny_unknown_fields)]
        struct Tagged {
            table: Table,
            #[serde(default)]
            male: Option<TableSpec>,
            #[serde(default)]
            female: Option<TableSpec>,
        }

        let tagged = Tagged::deserialize(deserializer)?;
        match (tagged.table, tagged.male, tagged.female) {
            (Table::Sult, None, None) => Ok(MortalitySpec::Sult {}),
            (Table::Sult, male, _) => Err(D::Error::custom(format!(
                "the SULT table takes no `{}` table of its own",
                if male.is_some() { "male" } else { "female" }
            ))),
            (Table::Custom, Some(male), Some(female)) => Ok(MortalitySpec::Custom { male, female }),
            (Table::Custom, None, _) => Err(D::Error::missing_field("male")),
            (Table::Custom, _, None) => Err(D::Error::missing_field("female")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TableSpec {
    pub start_age: u8,
    pub qx: Vec<f64>,
}

/// Expense loadings per unit of sum insured, except γ, a share of the gross premium.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Loadings {
    /// α: acquisition (신계약비), once.
    pub alpha: f64,
    /// β: maintenance (유지비) a year while premiums are paid.
    pub beta: f64,
    /// β': maintenance a year after the payment period (납입완료 후).
    pub beta_prime: f64,
    /// γ: collection (수금비), a share of the gross premium.
    pub gamma: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UnderwritingSpec {
    pub entry_age: AgeRange,
    /// Highest age at the end of cover; required for term and endowment products,
    /// meaningless (and refused) for whole life.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_maturity_age: Option<u8>,
    pub sum_insured: SumInsuredRule,
    /// Years of cover offered (term, endowment); ignored for whole life.
    #[serde(default)]
    pub coverage_periods: Vec<u32>,
    pub payment_periods: Vec<u32>,
    pub payment_cycles: Vec<PaymentCycle>,
    #[serde(default)]
    pub min_installment: Won,
    /// 누적한도: the most one customer may hold of this product in sum insured, over all
    /// their live proposals and contracts. Reserved at proposal, released on withdrawal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cumulative_sum_insured: Option<Won>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgeRange {
    pub min: u8,
    pub max: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SumInsuredRule {
    pub min: Won,
    pub max: Won,
    pub unit: Won,
}

/// A product definition that makes sense, with its tables and its sets of allowed
/// periods ready for O(1) checks. Only [`Product::new`] makes one.
#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    spec: ProductSpec,
    code: ProductCode,
    version: u32,
    /// Indexed by [`super::customer::Gender::index`]; SULT products share one table.
    tables: [Arc<MortalityTable>; 2],
    coverage_years: YearSet,
    payment_years: YearSet,
    cycles: u8,
    /// The parts of its product document that no plan changes, rendered on first use.
    document_text: DocumentText,
}

/// The lines of a product document (상품설명서) that depend on the product alone: its
/// coverage and rate (after the product line) and its underwriting terms (after the quote
/// date). The document renderer writes them ([`super::document`]); the product only keeps
/// them, so they are rendered once per product and the product need not know the wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductText {
    pub coverage: String,
    pub underwriting: String,
}

/// A cache inside [`Product`]: derived from the spec, so it takes no part in equality.
#[derive(Clone, Default)]
struct DocumentText(std::sync::OnceLock<ProductText>);

impl PartialEq for DocumentText {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl fmt::Debug for DocumentText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DocumentText")
    }
}

/// A set of years 1..=127 as a bit mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct YearSet(u128);

impl YearSet {
    fn from_years(years: &[u32]) -> YearSet {
        YearSet(
            years
                .iter()
                .filter(|&&y| y < 128)
                .fold(0, |mask, &y| mask | 1u128 << y),
        )
    }

    #[inline]
    pub fn contains(self, years: u8) -> bool {
        years < 128 && self.0 & (1u128 << years) != 0
    }

    pub fn iter(self) -> impl Iterator<Item = u8> {
        (0u8..128).filter(move |&y| self.contains(y))
    }

    pub fn max(self) -> Option<u8> {
        (self.0 != 0).then(|| 127 - self.0.leading_zeros() as u8)
    }

    pub fn min(self) -> Option<u8> {
        (self.0 != 0).then(|| self.0.trailing_zeros() as u8)
    }
}

impl fmt::Display for YearSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for y in self.iter() {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{y}")?;
        }
        Ok(())
    }
}

/// Every reason a product definition was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the product definition was refused: {}", .reasons.join("; "))]
pub struct InvalidProduct {
    pub reasons: Vec<String>,
}

impl Product {
    /// Checks the whole definition and lists every reason it makes no sense. A missing
    /// version becomes 1 (the catalog assigns versions when it registers products).
    pub fn new(spec: ProductSpec) -> Result<Product, InvalidProduct> {
        let mut reasons = Vec::new();
        let code = ProductCode::parse(&spec.code)
            .map_err(|r| reasons.push(r))
            .ok();
        if spec.name.trim().is_empty() {
            reasons.push("the product name is empty".to_owned());
        } else if spec.name.chars().count() > 100 {
            reasons.push("the product name is longer than 100 characters".to_owned());
        } else if let Some(c) = spec
            .name
            .chars()
            .find(|&c| c.is_control() || super::customer::is_invisible_format(c))
        {
            // The name is printed on documents and sent in every alimtalk.
            reasons.push(format!(
                "the product name contains a control or invisible character (U+{:04X})",
                u32::from(c)
            ));
        }
        let version = spec.version.unwrap_or(1);
        if version == 0 {
            reasons.push("versions start at 1".to_owned());
        }

        let basis = &spec.rate_basis;
        if !basis.interest.is_finite() || !(0.0..=0.2).contains(&basis.interest) {
            reasons.push(format!(
                "interest {} is outside [0, 0.2] (a rate of at most 20% a year, never negative)",
                basis.interest
            ));
        }
        let l = basis.loadings;
        for (name, value, max) in [
            ("alpha", l.alpha, 1.0),
            ("beta", l.beta, 1.0),
            ("betaPrime", l.beta_prime, 1.0),
            ("gamma", l.gamma, 0.5),
        ] {
            if !value.is_finite() || !(0.0..=max).contains(&value) {
                reasons.push(format!("loading {name} = {value} is outside [0, {max}]"));
            }
        }

        // Each gender's table on its own: a broken female table must not hide what is
        // wrong with the male one. Unisex tables are named once.
        let tables: Vec<(&str, Option<Arc<MortalityTable>>)> = match &basis.mortality {
            MortalitySpec::Sult {} => vec![("SULT", Some(MortalityTable::sult()))],
            MortalitySpec::Custom { male, female } => [("male", male), ("female", female)]
                .into_iter()
                .map(|(gender, t)| {
                    let table = MortalityTable::new(t.start_age, t.qx.clone())
                        .map_err(|rs| {
                            reasons.extend(rs.into_iter().map(|r| format!("{gender} table: {r}")))
                        })
                        .ok()
                        .map(Arc::new);
                    (gender, table)
                })
                .collect(),
        };

        let uw = &spec.underwriting;
        let entry = uw.entry_age;
        if entry.min > entry.max {
            reasons.push(format!(
                "entry age min {} is above max {}",
                entry.min, entry.max
            ));
        }
        let si = uw.sum_insured;
        if si.unit == Won::ZERO {
            reasons.push("the sum insured unit is 0".to_owned());
        }
        if si.min == Won::ZERO {
            reasons.push("the minimum sum insured is 0".to_owned());
        }
        if si.min > si.max {
            reasons.push(format!(
                "sum insured min {} is above max {}",
                si.min.get(),
                si.max.get()
            ));
        }
        if si.max.get() > MAX_SUM_INSURED {
            reasons.push(format!(
                "sum insured max {} is above the supported {MAX_SUM_INSURED}",
                si.max.get()
            ));
        }
        if uw.min_installment.get() > MAX_SUM_INSURED {
            reasons.push(format!(
                "the minimum installment {} is above the largest supported sum insured {MAX_SUM_INSURED}",
                uw.min_installment.get()
            ));
        }
        if let Some(limit) = uw.max_cumulative_sum_insured
            && limit.get() > MAX_SUM_INSURED
        {
            // Redis adds holdings up in Lua numbers, which print in exponent notation
            // from 10^14 on; held under this limit, a total always reads back as an integer.
            reasons.push(format!(
                "the cumulative limit {} is above the supported {MAX_SUM_INSURED}",
                limit.get()
            ));
        }
        if let Some(limit) = uw.max_cumulative_sum_insured
            && limit < si.max
        {
            reasons.push(format!(
                "the cumulative limit {} is below the maximum sum insured {}",
                limit.get(),
                si.max.get()
            ));
        }
        if si.unit != Won::ZERO && !(si.min.is_multiple_of(si.unit)) {
            reasons.push(format!(
                "sum insured min {} is not a multiple of the unit {}",
                si.min.get(),
                si.unit.get()
            ));
        }

        let check_years = |what: &str, years: &[u32], reasons: &mut Vec<String>| {
            if years.is_empty() {
                reasons.push(format!("no {what} periods are offered"));
            }
            for &y in years {
                if y == 0 || y > u32::from(MAX_PERIOD_YEARS) {
                    reasons.push(format!(
                        "{what} period {y} is outside 1 to {MAX_PERIOD_YEARS} years"
                    ));
                }
            }
            // One reason per period listed more than once, however often.
            let mut sorted = years.to_vec();
            sorted.sort_unstable();
            for run in sorted.chunk_by(|a, b| a == b).filter(|run| run.len() > 1) {
                reasons.push(format!(
                    "{what} period {} is listed {} times",
                    run[0],
                    run.len()
                ));
            }
        };
        let whole_life = spec.coverage == CoverageKind::WholeLife;
        if !whole_life {
            check_years("coverage", &uw.coverage_periods, &mut reasons);
        }
        check_years("payment", &uw.payment_periods, &mut reasons);
        if uw.payment_cycles.is_empty() {
            reasons.push("no payment cycles are offered".to_owned());
        }
        let coverage_years = YearSet::from_years(&uw.coverage_periods);
        let payment_years = YearSet::from_years(&uw.payment_periods);

        if !whole_life
            && let (Some(longest_pay), Some(longest_cover)) =
                (payment_years.max(), coverage_years.max())
            && longest_pay > longest_cover
        {
            reasons.push(format!(
                "payment period {longest_pay} is longer than the longest coverage period {longest_cover}"
            ));
        }
        match (whole_life, uw.max_maturity_age) {
            (true, Some(_)) => reasons.push(
                "maxMaturityAge does not apply to whole-life cover, which runs to the end of the table"
                    .to_owned(),
            ),
            (false, None) => reasons.push(format!(
                "maxMaturityAge is required for {} cover",
                if spec.coverage == CoverageKind::Term { "term" } else { "endowment" }
            )),
            (false, Some(max_maturity)) => {
                if let Some(shortest) = coverage_years.min()
                    && u16::from(entry.min) + u16::from(shortest) > u16::from(max_maturity)
                {
                    reasons.push(format!(
                        "no entry age can take any coverage period: {} + {shortest} years is past maxMaturityAge {max_maturity}",
                        entry.min
                    ));
                }
            }
            (true, None) => {}
        }

        for (gender, table) in &tables {
            if let Some(table) = table {
                // ω + 1: the age at which the table has no one left.
                let end = u16::from(table.last_age()) + 1;
                if entry.min < table.start_age() {
                    reasons.push(format!(
                        "the {gender} table starts at age {}, above the minimum entry age {}",
                        table.start_age(),
                        entry.min
                    ));
                }
                if u16::from(entry.max) > u16::from(table.last_age()) {
                    reasons.push(format!(
                        "the {gender} table ends at age {}, below the maximum entry age {}",
                        table.last_age(),
                        entry.max
                    ));
                }
                if let Some(max_maturity) = uw.max_maturity_age
                    && !whole_life
                    && u16::from(max_maturity) > end
                {
                    reasons.push(format!(
                        "the {gender} table is too short for maxMaturityAge {max_maturity}: it ends at age {}",
                        table.last_age()
                    ));
                }
                if whole_life
                    && let Some(longest_pay) = payment_years.max()
                    && u16::from(entry.max) + u16::from(longest_pay) > end
                {
                    reasons.push(format!(
                        "the {gender} table is too short for entry age {} paying {longest_pay} years: it ends at age {}",
                        entry.max,
                        table.last_age()
                    ));
                }
            }
        }

        let tables = match tables.as_slice() {
            [(_, Some(unisex))] => Some([Arc::clone(unisex), Arc::clone(unisex)]),
            [(_, Some(male)), (_, Some(female))] => Some([Arc::clone(male), Arc::clone(female)]),
            _ => None,
        };
        match (reasons.is_empty(), code, tables) {
            (true, Some(code), Some(tables)) => {
                let cycles = uw.payment_cycles.iter().fold(0, |m, c| m | c.bit());
                let mut spec = spec;
                spec.version = Some(version);
                Ok(Product {
                    spec,
                    code,
                    version,
                    tables,
                    coverage_years,
                    payment_years,
                    cycles,
                    document_text: DocumentText::default(),
                })
            }
            _ => Err(InvalidProduct { reasons }),
        }
    }

    /// The same definition as a new version (the catalog numbers versions).
    pub fn with_version(mut self, version: u32) -> Product {
        self.version = version;
        self.spec.version = Some(version);
        self.document_text = DocumentText::default();
        self
    }

    /// The product's own lines of its document (상품설명서), the same for every plan:
    /// rendered by `render` on first use, not per document. Only the document renderer
    /// calls this, so the first `render` is the only one.
    pub(crate) fn document_text(
        &self,
        render: impl FnOnce(&Product) -> ProductText,
    ) -> &ProductText {
        self.document_text.0.get_or_init(|| render(self))
    }

    pub fn spec(&self) -> &ProductSpec {
        &self.spec
    }

    pub fn code(&self) -> &ProductCode {
        &self.code
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn coverage(&self) -> CoverageKind {
        self.spec.coverage
    }

    pub fn interest(&self) -> f64 {
        self.spec.rate_basis.interest
    }

    pub fn loadings(&self) -> &Loadings {
        &self.spec.rate_basis.loadings
    }

    pub fn underwriting(&self) -> &UnderwritingSpec {
        &self.spec.underwriting
    }

    pub fn mortality(&self) -> &MortalitySpec {
        &self.spec.rate_basis.mortality
    }

    pub fn table(&self, gender: super::customer::Gender) -> &Arc<MortalityTable> {
        &self.tables[gender.index()]
    }

    pub fn coverage_years(&self) -> YearSet {
        self.coverage_years
    }

    pub fn payment_years(&self) -> YearSet {
        self.payment_years
    }

    #[inline]
    pub fn allows_cycle(&self, cycle: PaymentCycle) -> bool {
        self.cycles & cycle.bit() != 0
    }
}

impl Serialize for Product {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.spec.serialize(serializer)
    }
}
