//! Commutation columns (계산기수): D_x, N_x, C_x-sums M_x for one table at one interest
//! rate, built once and shared by every quote, which then needs only a few loads.

use super::mortality::MortalityTable;

/// One age's columns. Death benefits are paid at the end of the year of death.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Row {
    /// D_x = v^x · l_x
    pub d: f64,
    /// N_x = Σ_{y ≥ x} D_y
    pub n: f64,
    /// M_x = Σ_{y ≥ x} C_y, with C_x = v^(x+1) · d_x
    pub m: f64,
}

/// The columns from the table's start age to ω + 1 (where all three are 0, so that
/// "to the end of the table" needs no special case).
#[derive(Debug, Clone, PartialEq)]
pub struct CommutationColumns {
    start_age: u8,
    interest: f64,
    rows: Box<[Row]>,
}

/// The radix l at the table's start age (SULT: l_20 = 100,000). Ratios do not depend on it.
const RADIX: f64 = 100_000.0;

impl CommutationColumns {
    /// `interest` must be finite and > −1 (products validate ≥ 0).
    pub fn build(table: &MortalityTable, interest: f64) -> CommutationColumns {
        let v = 1.0 / (1.0 + interest);
        let qx = table.qx();
        let len = qx.len() + 1;
        let mut rows = vec![Row::default(); len].into_boxed_slice();
        // Forward: D_x and C_x (kept in `m` until the backward pass sums it).
        let mut l = RADIX;
        let mut v_x = v.powi(i32::from(table.start_age()));
        for (row, &q) in rows.iter_mut().zip(qx) {
            let deaths = l * q;
            row.d = v_x * l;
            v_x *= v;
            row.m = v_x * deaths;
            l -= deaths;
        }
        // Backward: N_x and M_x as tail sums; the extra last row stays zero.
        let (mut n, mut m) = (0.0, 0.0);
        for row in rows.iter_mut().rev() {
            n += row.d;
            m += row.m;
            row.n = n;
            row.m = m;
        }
        CommutationColumns {
            start_age: table.start_age(),
            interest,
            rows,
        }
    }

    pub fn interest(&self) -> f64 {
        self.interest
    }

    pub fn start_age(&self) -> u8 {
        self.start_age
    }

    /// ω + 1: the first age with no one left.
    pub fn end_age(&self) -> u8 {
        // rows.len() = table length + 1, and tables end at ≤ MAX_TABLE_AGE.
        self.start_age + (self.rows.len() - 1) as u8
    }

    #[inline]
    pub fn row(&self, age: u8) -> Option<&Row> {
        self.rows.get(usize::from(age.checked_sub(self.start_age)?))
    }

    /// ä_x: whole-life annuity-due.
    pub fn annuity_due(&self, age: u8) -> Option<f64> {
        self.row(age).map(|r| r.n / r.d)
    }

    /// A_x: whole-life insurance.
    pub fn whole_life_insurance(&self, age: u8) -> Option<f64> {
        self.row(age).map(|r| r.m / r.d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sult5() -> CommutationColumns {
        CommutationColumns::build(&MortalityTable::sult(), 0.05)
    }

    /// AMLCR Tables 5.1/5.2 print ä_x to 4 places and A_x to 5: equal to the printed
    /// value within its rounding, and our value rounds to the printed one.
    #[test]
    fn sult_at_5_percent_matches_amlcr() {
        let c = sult5();
        for (age, a_due, ins) in [
            (20, 19.9664, 0.04922),
            (40, 18.4578, 0.12106),
            (60, 14.9041, 0.29028),
        ] {
            let got_a = c.annuity_due(age).unwrap_or(f64::NAN);
            let got_ins = c.whole_life_insurance(age).unwrap_or(f64::NAN);
            assert!(
                (got_a - a_due).abs() / a_due < 1e-5,
                "ä_{age} = {got_a}, AMLCR {a_due}"
            );
            assert!(
                (got_ins - ins).abs() < 1e-5,
                "A_{age} = {got_ins}, AMLCR {ins}"
            );
        }
    }

    #[test]
    fn insurance_and_annuity_satisfy_a_equals_1_minus_d_a() {
        let c = sult5();
        let d = 0.05 / 1.05;
        for age in 20..=130 {
            let a = c.whole_life_insurance(age).unwrap_or(f64::NAN);
            let annuity = c.annuity_due(age).unwrap_or(f64::NAN);
            assert!((a - (1.0 - d * annuity)).abs() < 1e-12, "age {age}");
        }
    }

    #[test]
    fn ends_with_a_zero_row() {
        let c = sult5();
        assert_eq!(c.end_age(), 131);
        assert_eq!(c.row(131), Some(&Row::default()));
        assert_eq!(c.row(132), None);
        assert_eq!(c.row(19), None);
        // At ω the annuity is one payment and death within the year is certain.
        assert_eq!(c.annuity_due(130), Some(1.0));
        assert!((c.whole_life_insurance(130).unwrap_or(0.0) - 1.0 / 1.05).abs() < 1e-12);
    }
}
