//! `POST /quotes` and `ezenroll quote`: one request or a JSON array of them (a burst).
//!
//! The burst path parses with borrowed strings, prices against an immutable catalog
//! snapshot and serializes straight into one buffer. Inline product definitions are
//! priced once per distinct definition in a batch.

use super::json;
use crate::domain::catalog::Catalog;
use crate::domain::customer::{Insured, IsoDate};
use crate::domain::money::Won;
use crate::domain::period::{CoveragePeriod, PaymentCycle, Years};
use crate::domain::premium::{Factors, PricedProduct, QuoteInput, Refusal, Violation};
use crate::domain::product::ProductSpec;
use crate::domain::text::quoted;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

/// A quote request as it arrives. Either `product` (a whole definition) or
/// `productCode` (optionally with `productVersion`) names what to price.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QuoteRequest<'a> {
    #[serde(default, borrow)]
    #[schema(value_type = Option<ProductSpec>)]
    pub product: Option<&'a RawValue>,
    #[serde(default, borrow)]
    #[schema(value_type = Option<crate::domain::product::ProductCode>)]
    pub product_code: Option<Cow<'a, str>>,
    #[serde(default)]
    pub product_version: Option<u32>,
    pub insured: Insured,
    /// Defaults to today in Korea (UTC+9).
    #[serde(default)]
    pub quote_date: Option<IsoDate>,
    pub sum_insured: Won,
    pub coverage_period: CoveragePeriod,
    pub payment_period: Years,
    pub payment_cycle: PaymentCycle,
}

/// The answer to one request: the premium, or every underwriting violation.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum QuoteOutcome {
    Quoted(QuoteBody),
    Refused { violations: Vec<Violation> },
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuoteBody {
    #[schema(value_type = String)]
    pub product_code: Arc<str>,
    pub product_version: u32,
    pub insurance_age: u8,
    pub installment: Won,
    pub annualized_premium: Won,
    pub net_annual_premium: Won,
    pub factors: Factors,
}

/// Input that cannot be priced at all: malformed JSON, a wrong field, an unknown product.
/// `path` names the place (`[3].insured.birthDate`); empty for the document itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if path.is_empty() { String::new() } else { format!("{path}: ") })]
pub struct InputError {
    pub path: String,
    pub message: String,
    pub kind: InputErrorKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputErrorKind {
    /// Not JSON, or not the shape of a quote request.
    Malformed,
    /// An inline product definition that makes no sense.
    InvalidProduct,
    /// `productCode` (and version) names nothing in the catalog.
    UnknownProduct,
}

impl InputError {
    fn new(path: impl Into<String>, kind: InputErrorKind, message: impl Into<String>) -> Self {
        InputError {
            path: path.into(),
            message: message.into(),
            kind,
        }
    }

    /// `inner` is the path within the parsed text (`.` or empty for the text itself).
    fn from_json(prefix: &str, inner: &str, message: String) -> Self {
        let path = match (prefix.is_empty(), inner) {
            (_, "." | "") => prefix.to_owned(),
            (true, p) => p.to_owned(),
            (false, p) if p.starts_with('[') => format!("{prefix}{p}"),
            (false, p) => format!("{prefix}.{p}"),
        };
        // serde_json appends " at line L column C"; keep it, it helps with big bursts.
        InputError::new(path, InputErrorKind::Malformed, message)
    }
}

/// Prices quote requests against one catalog snapshot.
#[derive(Debug, Clone)]
pub struct QuoteService {
    catalog: Arc<Catalog>,
}

/// Whether the input was one request or an array of them: answers keep the same shape.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Answer {
    One(QuoteOutcome),
    Many(Vec<QuoteOutcome>),
}

impl QuoteService {
    pub fn new(catalog: Arc<Catalog>) -> QuoteService {
        QuoteService { catalog }
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// Parses and prices a JSON document (one request or an array), writing the JSON
    /// answer (one outcome or an array in the same order) into `out`.
    pub fn quote_json_into(
        &self,
        input: &str,
        today: NaiveDate,
        out: &mut Vec<u8>,
    ) -> Result<(), InputError> {
        serde_json::to_writer(&mut *out, &self.quote_json(input, today)?)
            .map_err(|e| InputError::new("", InputErrorKind::Malformed, e.to_string()))
    }

    pub fn quote_json(&self, input: &str, today: NaiveDate) -> Result<Answer, InputError> {
        let rewritten = super::whole_numbers::whole_numbers(input.as_bytes());
        // Only ASCII number tokens were rewritten, so this is still the text it was.
        let input = std::str::from_utf8(&rewritten)
            .map_err(|e| InputError::new("", InputErrorKind::Malformed, e.to_string()))?;
        let start = input.trim_start();
        if start.is_empty() {
            return Err(InputError::new(
                "",
                InputErrorKind::Malformed,
                "the input is empty; it must be a quote request (a JSON object) or an array of them",
            ));
        }
        if start.starts_with('[') {
            let requests: Vec<QuoteRequest> = parse(input, "")?;
            let mut resolver = Resolver::new(&self.catalog);
            requests
                .iter()
                .enumerate()
                .map(|(i, r)| resolver.quote(r, today, Some(i)))
                .collect::<Result<Vec<_>, _>>()
                .map(Answer::Many)
        } else {
            let request: QuoteRequest = parse(input, "")?;
            Resolver::new(&self.catalog)
                .quote(&request, today, None)
                .map(Answer::One)
        }
    }

    /// Prices one parsed request.
    pub fn quote(
        &self,
        request: &QuoteRequest,
        today: NaiveDate,
    ) -> Result<QuoteOutcome, InputError> {
        Resolver::new(&self.catalog).quote(request, today, None)
    }
}

/// Parses JSON fast; only a failure is parsed again to find the path of the fault. Every
/// struct must be a JSON object ([`json`]): serde alone would take an array.
fn parse<'a, T: Deserialize<'a>>(input: &'a str, prefix: &str) -> Result<T, InputError> {
    match json::from_str(input) {
        Ok(value) => Ok(value),
        Err(fast) => match json::from_str_with_path::<T>(input) {
            Ok(_) => Err(InputError::new(
                prefix,
                InputErrorKind::Malformed,
                fast.to_string(),
            )),
            Err((inner, message)) => Err(InputError::from_json(prefix, &inner, message)),
        },
    }
}

/// Resolves what each request prices; inline definitions are priced once per distinct
/// text within a batch.
struct Resolver<'c, 'a> {
    catalog: &'c Catalog,
    inline: HashMap<&'a str, Arc<PricedProduct>>,
}

impl<'c, 'a> Resolver<'c, 'a> {
    fn new(catalog: &'c Catalog) -> Self {
        Resolver {
            catalog,
            inline: HashMap::new(),
        }
    }

    fn quote(
        &mut self,
        request: &QuoteRequest<'a>,
        today: NaiveDate,
        at: Option<usize>,
    ) -> Result<QuoteOutcome, InputError> {
        let priced = self.product(request, at)?;
        let input = QuoteInput {
            insured: request.insured,
            quote_date: request.quote_date.map_or(today, |d| d.0),
            sum_insured: request.sum_insured,
            coverage: request.coverage_period,
            payment_period: request.payment_period,
            cycle: request.payment_cycle,
        };
        Ok(outcome(&priced, priced.quote(&input)))
    }

    fn product(
        &mut self,
        request: &QuoteRequest<'a>,
        at: Option<usize>,
    ) -> Result<Arc<PricedProduct>, InputError> {
        // Built only on the way to an error: the burst path formats nothing.
        let field = |name: &str| match at {
            None => name.to_owned(),
            Some(i) => format!("[{i}].{name}"),
        };
        match (request.product, &request.product_code) {
            (Some(_), Some(_)) => Err(InputError::new(
                field("product"),
                InputErrorKind::Malformed,
                "give either product or productCode, not both",
            )),
            (None, None) => Err(InputError::new(
                field("productCode"),
                InputErrorKind::Malformed,
                "missing field `productCode` (or an inline `product`)",
            )),
            (Some(raw), None) => {
                if let Some(version) = request.product_version {
                    return Err(InputError::new(
                        field("productVersion"),
                        InputErrorKind::Malformed,
                        format!(
                            "productVersion {version} goes with productCode; an inline product carries its own version"
                        ),
                    ));
                }
                let text = raw.get();
                if let Some(p) = self.inline.get(text) {
                    return Ok(Arc::clone(p));
                }
                let spec: ProductSpec = parse(text, &field("product"))?;
                let priced = self.catalog.price_unregistered(spec).map_err(|e| {
                    InputError::new(
                        field("product"),
                        InputErrorKind::InvalidProduct,
                        e.reasons.join("; "),
                    )
                })?;
                let priced = Arc::new(priced);
                self.inline.insert(text, Arc::clone(&priced));
                Ok(priced)
            }
            (None, Some(code)) => {
                let found = match request.product_version {
                    Some(v) => self.catalog.version(code, v),
                    None => self.catalog.latest(code),
                };
                found.cloned().ok_or_else(|| {
                    let (at, message) = match request.product_version {
                        Some(v) if self.catalog.latest(code).is_some() => (
                            "productVersion",
                            format!("product {} has no version {v}", quoted(code)),
                        ),
                        _ => (
                            "productCode",
                            format!("no product with code {}", quoted(code)),
                        ),
                    };
                    InputError::new(field(at), InputErrorKind::UnknownProduct, message)
                })
            }
        }
    }
}

fn outcome(
    priced: &PricedProduct,
    result: Result<crate::domain::premium::Quote, Refusal>,
) -> QuoteOutcome {
    match result {
        Ok(q) => QuoteOutcome::Quoted(QuoteBody {
            product_code: priced.code_arc(),
            product_version: priced.product().version(),
            insurance_age: q.insurance_age.years(),
            installment: q.installment,
            annualized_premium: q.annualized_premium,
            net_annual_premium: q.net_annual_premium,
            factors: q.factors,
        }),
        Err(r) => QuoteOutcome::Refused {
            violations: r.violations,
        },
    }
}
