//! Mortality tables (사망률표): q_x by age from a start age to the table's last age ω,
//! where q_ω = 1. The Standard Ultimate Life Table (SULT) of Dickson–Hardy–Waters is built
//! in; products may bring their own table per gender.

use std::sync::{Arc, LazyLock};

/// Oldest age any table may reach. Insurance ages above it are refused earlier.
pub const MAX_TABLE_AGE: u8 = 150;

/// A validated table: every q_x is in [0, 1), the last one is exactly 1.
#[derive(Debug, Clone, PartialEq)]
pub struct MortalityTable {
    start_age: u8,
    qx: Box<[f64]>,
}

impl MortalityTable {
    /// Refuses a table that makes no sense, listing every reason.
    pub fn new(start_age: u8, qx: Vec<f64>) -> Result<MortalityTable, Vec<String>> {
        let mut reasons = Vec::new();
        if qx.len() < 2 {
            reasons.push(format!(
                "a mortality table needs at least two ages, got {}",
                qx.len()
            ));
        }
        let last_age = usize::from(start_age) + qx.len().saturating_sub(1);
        if last_age > usize::from(MAX_TABLE_AGE) {
            reasons.push(format!(
                "the table runs to age {last_age}, beyond the last supported age {MAX_TABLE_AGE}"
            ));
        }
        let last = qx.len().saturating_sub(1);
        for (i, &q) in qx.iter().enumerate() {
            let age = usize::from(start_age) + i;
            if !q.is_finite() || !(0.0..=1.0).contains(&q) {
                reasons.push(format!("q at age {age} is {q}, outside [0, 1]"));
            } else if i < last && q == 1.0 {
                reasons.push(format!(
                    "q at age {age} is 1 but the table goes on; only the last age has q = 1"
                ));
            }
        }
        if let Some(&q) = qx.last()
            && q != 1.0
        {
            reasons.push(format!(
                "the last q (age {last_age}) is {q}; a table must end with q = 1"
            ));
        }
        if reasons.is_empty() {
            Ok(MortalityTable {
                start_age,
                qx: qx.into_boxed_slice(),
            })
        } else {
            Err(reasons)
        }
    }

    /// The Standard Ultimate Life Table (AMLCR): Makeham μ_x = A + B·c^x with
    /// A = 0.00022, B = 2.7e-6, c = 1.124, ages 20 to 130, q_130 = 1, unisex.
    pub fn sult() -> Arc<MortalityTable> {
        static SULT: LazyLock<Arc<MortalityTable>> =
            LazyLock::new(|| Arc::new(MortalityTable::makeham(20, 130, 0.00022, 2.7e-6, 1.124)));
        Arc::clone(&SULT)
    }

    /// q_x from Makeham's law: p_x = exp(−A − B·c^x·(c − 1)/ln c), closed at `last_age`.
    pub fn makeham(start_age: u8, last_age: u8, a: f64, b: f64, c: f64) -> MortalityTable {
        let ln_c = c.ln();
        let qx = (start_age..=last_age)
            .map(|age| {
                if age == last_age {
                    1.0
                } else {
                    let integral = a + b * c.powi(i32::from(age)) * (c - 1.0) / ln_c;
                    1.0 - (-integral).exp()
                }
            })
            .collect::<Vec<_>>();
        MortalityTable {
            start_age,
            qx: qx.into_boxed_slice(),
        }
    }

    pub fn start_age(&self) -> u8 {
        self.start_age
    }

    /// ω: the last age, the one with q = 1.
    pub fn last_age(&self) -> u8 {
        // The constructor keeps start + len − 1 ≤ MAX_TABLE_AGE, so this fits.
        self.start_age + (self.qx.len() - 1) as u8
    }

    pub fn qx(&self) -> &[f64] {
        &self.qx
    }

    pub fn q(&self, age: u8) -> Option<f64> {
        age.checked_sub(self.start_age)
            .and_then(|i| self.qx.get(usize::from(i)))
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sult_spans_20_to_130() {
        let t = MortalityTable::sult();
        assert_eq!((t.start_age(), t.last_age()), (20, 130));
        assert_eq!(t.q(130), Some(1.0));
        // q_20 = 0.000250 to six places; the A_x and ä_x checks in `commutation` cover
        // the rest of the table against AMLCR.
        let q20 = t.q(20).unwrap_or_default();
        assert!((q20 - 0.000250).abs() < 5e-7, "q20 = {q20}");
        // Makeham mortality rises with age.
        assert!(t.qx().windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn refuses_nonsense_with_every_reason() {
        let reasons = MortalityTable::new(0, vec![0.1, -0.2, 1.0, f64::NAN, 0.5])
            .expect_err("nonsense table");
        assert_eq!(reasons.len(), 4, "{reasons:?}");
        assert!(
            reasons
                .iter()
                .any(|r| r.contains("age 1") && r.contains("outside"))
        );
        assert!(
            reasons
                .iter()
                .any(|r| r.contains("age 2") && r.contains("goes on"))
        );
        assert!(reasons.iter().any(|r| r.contains("NaN")));
        assert!(reasons.iter().any(|r| r.contains("must end with q = 1")));
        assert!(MortalityTable::new(0, vec![1.0]).is_err());
        assert!(MortalityTable::new(140, vec![0.5; 20]).is_err());
        assert!(MortalityTable::new(0, vec![0.0, 0.5, 1.0]).is_ok());
    }
}
