//! Money is integer won (원). Actuarial factors may be `f64`; the conversion to won happens
//! once, in [`Won::truncate`], by the rule of DESIGN.md (원 미만 절사: drop the fraction).

use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;

/// An amount of Korean won. Never negative, never fractional.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct Won(u64);

/// A JSON amount is a whole number from 0 to `u64::MAX`, refused in words a client reads:
/// serde says "expected u64", and for an integer past `u64::MAX` (which serde_json reads
/// as a float) "invalid type: floating point". Binary formats read the `u64` as is.
impl<'de> Deserialize<'de> for Won {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Won, D::Error> {
        if !deserializer.is_human_readable() {
            return u64::deserialize(deserializer).map(Won);
        }
        struct Amount;
        impl Visitor<'_> for Amount {
            type Value = Won;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a whole number of won from 0 to {}", u64::MAX)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Won, E> {
                Ok(Won(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Won, E> {
                u64::try_from(v)
                    .map(Won)
                    .map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Won, E> {
                Err(if v.fract() == 0.0 {
                    E::invalid_value(Unexpected::Other(&format!("the number {v:e}")), &self)
                } else {
                    E::invalid_value(Unexpected::Other(&format!("the fraction {v}")), &self)
                })
            }
        }
        deserializer.deserialize_u64(Amount)
    }
}

impl Won {
    pub const ZERO: Won = Won(0);

    pub const fn new(amount: u64) -> Self {
        Won(amount)
    }

    pub const fn get(self) -> u64 {
        self.0
    }

    /// The one rounding rule: an exact won amount computed in `f64` is truncated to the
    /// won. `None` for values that are not a finite, non-negative amount that fits.
    pub fn truncate(amount: f64) -> Option<Won> {
        // 2^63 is far above any premium and keeps the cast exact-or-truncating.
        if amount.is_finite() && (0.0..9.2e18).contains(&amount) {
            Some(Won(amount as u64))
        } else {
            None
        }
    }

    pub fn checked_add(self, other: Won) -> Option<Won> {
        self.0.checked_add(other.0).map(Won)
    }

    pub fn checked_sub(self, other: Won) -> Option<Won> {
        self.0.checked_sub(other.0).map(Won)
    }

    pub fn checked_mul(self, times: u64) -> Option<Won> {
        self.0.checked_mul(times).map(Won)
    }

    /// Whether this amount is a whole number of `unit`s (a zero unit divides nothing).
    pub fn is_multiple_of(self, unit: Won) -> bool {
        unit.0 != 0 && self.0.is_multiple_of(unit.0)
    }
}

crate::json_schema!(
    Won,
    super::schema::integer(
        "An amount of won (원): whole, never negative.",
        0,
        i64::MAX,
        100_000_000
    )
);

impl Won {
    /// Bytes [`grouped`](Self::grouped) needs: u64::MAX has 20 digits, plus 6 separators.
    pub const GROUPED_LEN: usize = 26;

    /// The amount with thousands separators (`12,345`), written into `buf`.
    pub fn grouped(self, buf: &mut [u8; Won::GROUPED_LEN]) -> &str {
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(self.0).as_bytes();
        // The first group has 1 to 3 digits, every later one 3, each after a comma.
        let first = match digits.len() % 3 {
            0 => 3,
            r => r,
        };
        buf[..first].copy_from_slice(&digits[..first]);
        let mut at = first;
        for group in digits[first..].chunks_exact(3) {
            buf[at] = b',';
            buf[at + 1..at + 4].copy_from_slice(group);
            at += 4;
        }
        // Only ASCII digits and commas were written.
        std::str::from_utf8(&buf[..at]).unwrap_or("?")
    }
}

impl fmt::Display for Won {
    /// `12,345원`: thousands separators, as amounts are shown to Korean customers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.grouped(&mut [0; Won::GROUPED_LEN]))?;
        f.write_str("원")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_the_fraction_once() {
        assert_eq!(Won::truncate(12_345.999), Some(Won::new(12_345)));
        assert_eq!(Won::truncate(0.4), Some(Won::ZERO));
        assert_eq!(Won::truncate(-0.1), None);
        assert_eq!(Won::truncate(f64::NAN), None);
        assert_eq!(Won::truncate(f64::INFINITY), None);
    }

    #[test]
    fn displays_with_separators() {
        assert_eq!(Won::new(0).to_string(), "0원");
        assert_eq!(Won::new(999).to_string(), "999원");
        assert_eq!(Won::new(1_000).to_string(), "1,000원");
        assert_eq!(Won::new(100_000_000).to_string(), "100,000,000원");
        assert_eq!(Won::new(12_345).to_string(), "12,345원");
        for (n, text) in [
            (7, "7"),
            (42, "42"),
            (123_456, "123,456"),
            (1_234_567, "1,234,567"),
        ] {
            assert_eq!(Won::new(n).to_string(), format!("{text}원"));
        }
        assert_eq!(
            Won::new(u64::MAX).to_string(),
            "18,446,744,073,709,551,615원"
        );
    }

    #[test]
    fn json_amounts_are_whole_won_and_refusals_say_so() {
        let read = |text: &str| serde_json::from_str::<Won>(text).map_err(|e| e.to_string());
        assert_eq!(read("0"), Ok(Won::ZERO));
        assert_eq!(read("18446744073709551615"), Ok(Won::new(u64::MAX)));
        for (text, says) in [
            ("-5", "integer `-5`"),
            ("100000000.5", "the fraction 100000000.5"),
            ("18446744073709551616", "the number 1.8446744073709552e19"),
            ("1e308", "the number 1e308"),
            ("\"1000\"", "string \"1000\""),
        ] {
            let refused = read(text).expect_err(text);
            assert!(
                refused.contains(says) && refused.contains("a whole number of won"),
                "{text}: {refused}"
            );
        }
        let cfg = bincode::config::standard();
        let bin = bincode::serde::encode_to_vec(Won::new(42), cfg).unwrap_or_default();
        let back = bincode::serde::decode_from_slice::<Won, _>(&bin, cfg).map(|(w, _)| w);
        assert_eq!(back.ok(), Some(Won::new(42)));
    }

    #[test]
    fn multiples() {
        assert!(Won::new(10_000_000).is_multiple_of(Won::new(1_000_000)));
        assert!(!Won::new(10_500_000).is_multiple_of(Won::new(1_000_000)));
        assert!(!Won::new(10).is_multiple_of(Won::ZERO));
    }
}
