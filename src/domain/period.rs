//! Coverage period (보험기간), payment period (납입기간) and payment cycle (납입주기).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Longest period in years that any product may name.
pub const MAX_PERIOD_YEARS: u8 = 120;

/// Years of cover, or cover for the whole of life (종신).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoveragePeriod {
    Years(Years),
    WholeLife,
}

crate::json_schema!(
    CoveragePeriod,
    super::schema::one_of(
        "Years of cover, or \"wholeLife\" (종신).",
        [
            <Years as utoipa::PartialSchema>::schema(),
            super::schema::constant("wholeLife"),
        ],
    )
);

/// A whole number of years from 1 to [`MAX_PERIOD_YEARS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Years(u8);

impl Years {
    pub fn new(years: u64) -> Result<Years, String> {
        u8::try_from(years)
            .ok()
            .filter(|y| (1..=MAX_PERIOD_YEARS).contains(y))
            .map(Years)
            .ok_or_else(|| format!("a period is 1 to {MAX_PERIOD_YEARS} years, got {years}"))
    }

    pub const fn get(self) -> u8 {
        self.0
    }
}

crate::json_schema!(
    Years,
    super::schema::integer(
        "A whole number of years.",
        1,
        i64::from(MAX_PERIOD_YEARS),
        20
    )
);

impl<'de> Deserialize<'de> for Years {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Years::new(u64::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Years {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}년", self.0)
    }
}

impl fmt::Display for CoveragePeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoveragePeriod::Years(y) => y.fmt(f),
            CoveragePeriod::WholeLife => f.write_str("종신"),
        }
    }
}

/// JSON: a number of years or `"wholeLife"`. Binary formats (bincode snapshots) have no
/// "any" type, so there it is one byte: the years, or 0 for whole life.
impl Serialize for CoveragePeriod {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if !serializer.is_human_readable() {
            return serializer.serialize_u8(match self {
                CoveragePeriod::Years(y) => y.get(),
                CoveragePeriod::WholeLife => 0,
            });
        }
        match self {
            CoveragePeriod::Years(y) => serializer.serialize_u8(y.get()),
            CoveragePeriod::WholeLife => serializer.serialize_str("wholeLife"),
        }
    }
}

impl<'de> Deserialize<'de> for CoveragePeriod {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if !deserializer.is_human_readable() {
            return match u8::deserialize(deserializer)? {
                0 => Ok(CoveragePeriod::WholeLife),
                y => Years::new(u64::from(y))
                    .map(CoveragePeriod::Years)
                    .map_err(serde::de::Error::custom),
            };
        }
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = CoveragePeriod;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number of years or \"wholeLife\"")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<CoveragePeriod, E> {
                Years::new(v).map(CoveragePeriod::Years).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<CoveragePeriod, E> {
                Err(E::custom(format!(
                    "a period is 1 to {MAX_PERIOD_YEARS} years, got {v}"
                )))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<CoveragePeriod, E> {
                if v == "wholeLife" {
                    Ok(CoveragePeriod::WholeLife)
                } else {
                    let shown = format!("string {}", super::text::quoted(v));
                    Err(E::invalid_value(
                        serde::de::Unexpected::Other(&shown),
                        &self,
                    ))
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// 납입주기: how many installments a year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum PaymentCycle {
    Annual,
    Semiannual,
    Quarterly,
    Monthly,
}

impl PaymentCycle {
    pub const ALL: [PaymentCycle; 4] = [
        PaymentCycle::Annual,
        PaymentCycle::Semiannual,
        PaymentCycle::Quarterly,
        PaymentCycle::Monthly,
    ];

    /// k: installments a year.
    pub const fn per_year(self) -> u32 {
        match self {
            PaymentCycle::Annual => 1,
            PaymentCycle::Semiannual => 2,
            PaymentCycle::Quarterly => 4,
            PaymentCycle::Monthly => 12,
        }
    }

    /// The JSON name (`"semiannual"`), for messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            PaymentCycle::Annual => "annual",
            PaymentCycle::Semiannual => "semiannual",
            PaymentCycle::Quarterly => "quarterly",
            PaymentCycle::Monthly => "monthly",
        }
    }

    /// One bit per cycle, for the allowed-cycles set of a product.
    pub const fn bit(self) -> u8 {
        match self {
            PaymentCycle::Annual => 1,
            PaymentCycle::Semiannual => 2,
            PaymentCycle::Quarterly => 4,
            PaymentCycle::Monthly => 8,
        }
    }

    /// What customers read (`월납`); also its `Display`.
    pub const fn label(self) -> &'static str {
        match self {
            PaymentCycle::Annual => "연납",
            PaymentCycle::Semiannual => "6개월납",
            PaymentCycle::Quarterly => "3개월납",
            PaymentCycle::Monthly => "월납",
        }
    }
}

impl fmt::Display for PaymentCycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_period_json() {
        let p: CoveragePeriod = serde_json::from_str("20").expect("years");
        assert_eq!(p, CoveragePeriod::Years(Years(20)));
        let p: CoveragePeriod = serde_json::from_str("\"wholeLife\"").expect("whole life");
        assert_eq!(p, CoveragePeriod::WholeLife);
        assert_eq!(serde_json::to_string(&p).expect("ser"), "\"wholeLife\"");
        for bad in ["0", "121", "-3", "\"forever\"", "2.5", "null"] {
            assert!(
                serde_json::from_str::<CoveragePeriod>(bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn cycles() {
        let c: PaymentCycle = serde_json::from_str("\"semiannual\"").expect("cycle");
        assert_eq!(c.per_year(), 2);
        assert!(serde_json::from_str::<PaymentCycle>("\"weekly\"").is_err());
    }
}
