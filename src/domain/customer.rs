//! The insured person as pricing sees them: birth date, gender and the insurance age
//! (보험나이) derived from them on a given date.

use super::text::quoted;
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Parses `YYYY-MM-DD` without going through chrono's format machinery: dates are parsed
/// for every quote request, and the general parser does far more than this shape needs.
pub fn parse_iso_date(text: &str) -> Result<NaiveDate, String> {
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    if !shape_ok {
        return Err(format!(
            "expected a date as YYYY-MM-DD, got {}",
            quoted(text)
        ));
    }
    let num = |range: std::ops::Range<usize>| {
        bytes[range]
            .iter()
            .fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0'))
    };
    let (year, month, day) = (num(0..4), num(5..7), num(8..10));
    i32::try_from(year)
        .ok()
        .and_then(|y| NaiveDate::from_ymd_opt(y, month, day))
        .ok_or_else(|| format!("{text:?} is not a calendar date"))
}

/// A date written and read as `YYYY-MM-DD` (the quote date, the contract date).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IsoDate(pub NaiveDate);

impl Serialize for IsoDate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        super::time::date::serialize(&self.0, serializer)
    }
}

crate::json_schema!(
    IsoDate,
    super::schema::string(
        "A date, YYYY-MM-DD.",
        Some(utoipa::openapi::schema::KnownFormat::Date),
        None,
        "2026-12-03",
    )
);

impl<'de> Deserialize<'de> for IsoDate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if !deserializer.is_human_readable() {
            return super::time::date::deserialize(deserializer).map(IsoDate);
        }
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = IsoDate;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a date as \"YYYY-MM-DD\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<IsoDate, E> {
                parse_iso_date(v).map(IsoDate).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// Birth date of a living customer: from 1900-01-01 on. Whether it lies before the quote
/// date is checked where both are known ([`InsuranceAge::at`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct BirthDate(IsoDate);

impl BirthDate {
    pub fn parse(text: &str) -> Result<Self, String> {
        Self::new(parse_iso_date(text)?)
    }

    pub fn new(date: NaiveDate) -> Result<Self, String> {
        if date.year() < 1900 {
            return Err(format!("birth date {date} is before 1900-01-01"));
        }
        Ok(BirthDate(IsoDate(date)))
    }

    pub fn date(self) -> NaiveDate {
        self.0.0
    }
}

crate::json_schema!(
    BirthDate,
    super::schema::string(
        "A birth date, YYYY-MM-DD, from 1900-01-01 on and not after today (in Korea).",
        Some(utoipa::openapi::schema::KnownFormat::Date),
        Some("^(19|[2-9][0-9])[0-9]{2}-"),
        "1990-04-15",
    )
);

impl<'de> Deserialize<'de> for BirthDate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let IsoDate(date) = IsoDate::deserialize(deserializer)?;
        BirthDate::new(date).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Gender {
    Male,
    Female,
}

impl Gender {
    pub const ALL: [Gender; 2] = [Gender::Male, Gender::Female];

    pub fn index(self) -> usize {
        match self {
            Gender::Male => 0,
            Gender::Female => 1,
        }
    }
}

impl fmt::Display for Gender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Gender::Male => "male",
            Gender::Female => "female",
        })
    }
}

/// Who is insured: all that pricing needs to know of a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Insured {
    pub birth_date: BirthDate,
    pub gender: Gender,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AgeError {
    #[error("the date {date} is before the birth date {birth}")]
    BeforeBirth { birth: NaiveDate, date: NaiveDate },
    #[error("born {birth}, the insured would be {years} on {date}, above the plausible {max}", max = InsuranceAge::MAX)]
    Implausible {
        birth: NaiveDate,
        date: NaiveDate,
        years: i64,
    },
}

/// 보험나이: the age in whole years on a date, where a remainder of six months or more
/// counts as one more year (standard policy terms art. 21).
///
/// Months are counted as 민법 §160 counts them: a month is complete on the same day of
/// the month, and when that day does not exist in the month (a 31st, or 29 February in a
/// common year) it is complete when the month ends, i.e. on the 1st of the next month.
/// So someone born on 29 February has their birthday on 1 March in common years.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InsuranceAge(u8);

impl InsuranceAge {
    pub const MAX: u8 = 150;

    /// ```
    /// use ezenroll::domain::customer::{parse_iso_date, BirthDate, InsuranceAge};
    ///
    /// let age = |birth: &str, on: &str| {
    ///     let birth = BirthDate::parse(birth).expect("a birth date");
    ///     InsuranceAge::at(birth, parse_iso_date(on).expect("a date")).map(|a| a.years())
    /// };
    /// assert_eq!(age("1988-10-02", "2014-04-13"), Ok(26)); // 25 y 6 m counts as 26
    /// assert_eq!(age("1983-03-01", "2023-01-01"), Ok(40)); // 39 y 10 m
    /// assert!(age("2000-06-01", "2000-05-31").is_err()); // not born yet
    /// ```
    pub fn at(birth: BirthDate, date: NaiveDate) -> Result<InsuranceAge, AgeError> {
        let birth = birth.date();
        // Whole months elapsed. "day >= birth day" is right even when the birth day does
        // not exist in the current month: then the day is always smaller, and the month
        // completes on the 1st of the next month, as the rule above says.
        let months = (i64::from(date.year()) - i64::from(birth.year())) * 12
            + (i64::from(date.month()) - i64::from(birth.month()))
            - i64::from(date.day() < birth.day());
        if date < birth {
            return Err(AgeError::BeforeBirth { birth, date });
        }
        let years = months / 12 + i64::from(months % 12 >= 6);
        u8::try_from(years)
            .ok()
            .filter(|&y| y <= Self::MAX)
            .map(InsuranceAge)
            .ok_or(AgeError::Implausible { birth, date, years })
    }

    pub const fn years(self) -> u8 {
        self.0
    }
}

crate::json_schema!(
    InsuranceAge,
    super::schema::integer(
        "보험나이: the age in whole years, six months or more counting as one more.",
        0,
        InsuranceAge::MAX as i64,
        36,
    )
);

impl fmt::Display for InsuranceAge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}세", self.0)
    }
}

/// 휴대폰 번호, normalized to `010-1234-5678`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct MobilePhone(String);

impl MobilePhone {
    /// Accepts `01012345678`, `010-1234-5678` or `010 1234 5678` (010/011/016/017/018/019).
    pub fn parse(text: &str) -> Result<MobilePhone, String> {
        let digits: String = text.chars().filter(|c| !matches!(c, '-' | ' ')).collect();
        let ok = digits.bytes().all(|b| b.is_ascii_digit())
            && matches!(digits.len(), 10 | 11)
            && ["010", "011", "016", "017", "018", "019"]
                .iter()
                .any(|p| digits.starts_with(p));
        if !ok {
            return Err(format!(
                "{} is not a Korean mobile number like 010-1234-5678",
                quoted(text)
            ));
        }
        let (head, rest) = digits.split_at(3);
        let (mid, tail) = rest.split_at(rest.len() - 4);
        Ok(MobilePhone(format!("{head}-{mid}-{tail}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `010-****-5678`, for logs and notifications.
    pub fn masked(&self) -> String {
        let mut parts = self.0.split('-');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(b), Some(c)) => format!("{a}-{}-{c}", "*".repeat(b.len())),
            _ => "***".to_owned(),
        }
    }
}

crate::json_schema!(
    MobilePhone,
    super::schema::string(
        "A Korean mobile number (010, 011, 016, 017, 018 or 019, then 7 or 8 digits), \
         with or without dashes or spaces; answered as 010-1234-5678.",
        None,
        Some("^[- ]*0[- ]*1[- ]*[016789]([- ]*[0-9]){7,8}[- ]*$"),
        "010-1234-5678",
    )
);

impl<'de> Deserialize<'de> for MobilePhone {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
        MobilePhone::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A customer's name: 1 to 50 characters, not blank.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct CustomerName(String);

impl CustomerName {
    pub fn parse(text: &str) -> Result<CustomerName, String> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err("the name is empty".to_owned());
        }
        if trimmed.chars().count() > 50 {
            return Err("the name is longer than 50 characters".to_owned());
        }
        if trimmed.chars().any(char::is_control) {
            return Err("the name contains control characters".to_owned());
        }
        if let Some(c) = trimmed.chars().find(|&c| is_invisible_format(c)) {
            return Err(format!(
                "the name contains an invisible formatting character (U+{:04X}); a name is \
                 shown to people and printed on contracts as it is written",
                u32::from(c)
            ));
        }
        Ok(CustomerName(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

crate::json_schema!(
    CustomerName,
    super::schema::text(
        "A person's name: 1 to 50 characters once the white space around it is trimmed, \
         with no control characters and no invisible formatting characters (zero-width \
         spaces, bidirectional overrides).",
        &name_pattern(),
        "홍길동",
    )
);

/// What [`CustomerName::parse`] accepts, as a regular expression: white space around a
/// visible character, or around 2 to 50 characters starting and ending with a visible
/// one, and nothing refused anywhere. (Tag characters, U+E0001 and U+E0020–U+E007F, are
/// refused too; a JSON Schema pattern cannot name characters past U+FFFF.)
fn name_pattern() -> String {
    // White space as `str::trim` sees it (Unicode White_Space).
    const SPACE: &str =
        r"\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
    const REFUSED: &str = r"\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb";
    format!("^[{SPACE}]*[^{SPACE}{REFUSED}]([^{REFUSED}]{{0,48}}[^{SPACE}{REFUSED}])?[{SPACE}]*$")
}

/// Characters that change how text around them is shown but show nothing themselves:
/// zero-width spaces and joiners, bidirectional overrides and isolates, the byte-order
/// mark, soft hyphens and tag characters (Unicode's format category, Cf). A name of them
/// alone looks empty, and a bidi override makes a name read as something else.
pub(crate) fn is_invisible_format(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x061C
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0xE0001
            | 0xE0020..=0xE007F
    )
}

impl<'de> Deserialize<'de> for CustomerName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
        CustomerName::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A registration as it arrives (`POST /customers`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewCustomer {
    pub name: CustomerName,
    pub birth_date: BirthDate,
    pub gender: Gender,
    pub mobile_phone: MobilePhone,
}

/// 고객: a registered customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    pub customer_no: super::ids::CustomerNo,
    pub name: CustomerName,
    pub birth_date: BirthDate,
    pub gender: Gender,
    pub mobile_phone: MobilePhone,
    pub registered_at: chrono::DateTime<chrono::Utc>,
}

impl Customer {
    pub fn insured(&self) -> Insured {
        Insured {
            birth_date: self.birth_date,
            gender: self.gender,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age(birth: &str, on: &str) -> u8 {
        let birth = BirthDate::parse(birth).expect("test birth date");
        let on = parse_iso_date(on).expect("test date");
        InsuranceAge::at(birth, on).expect("test age").years()
    }

    #[test]
    fn design_examples() {
        assert_eq!(age("1988-10-02", "2014-04-13"), 26);
        assert_eq!(age("1983-03-01", "2023-01-01"), 40);
    }

    #[test]
    fn exactly_six_months_counts_as_a_year() {
        assert_eq!(age("1990-01-15", "2020-07-15"), 31);
        assert_eq!(age("1990-01-15", "2020-07-14"), 30);
    }

    #[test]
    fn the_birthday_itself_and_the_day_before() {
        assert_eq!(age("1990-05-20", "2020-05-20"), 30);
        assert_eq!(age("1990-05-20", "2020-05-19"), 30); // 29 y 11 m rounds up
        assert_eq!(age("1990-05-20", "2019-11-19"), 29); // 29 y 5 m
        assert_eq!(age("1990-05-20", "2019-11-20"), 30); // 29 y 6 m
        assert_eq!(age("2000-01-01", "2000-01-01"), 0);
    }

    #[test]
    fn twenty_ninth_of_february() {
        // Half-birthday of 29 Feb is 29 Aug.
        assert_eq!(age("1996-02-29", "2022-08-28"), 26);
        assert_eq!(age("1996-02-29", "2022-08-29"), 27);
        // In a leap year the birthday is 29 Feb.
        assert_eq!(age("1996-02-29", "2024-02-29"), 28);
        // A month ending on a day that does not exist completes on the 1st of the next
        // month: born 31 Aug, six months are complete on 1 March, not on 28 February.
        assert_eq!(age("1990-08-31", "2021-02-28"), 30);
        assert_eq!(age("1990-08-31", "2021-03-01"), 31);
        assert_eq!(age("1996-02-29", "2024-02-28"), 28); // 27 y 11 m
    }

    #[test]
    fn refuses_dates_before_birth_and_implausible_ages() {
        let birth = BirthDate::parse("2000-06-01").expect("birth");
        let before = parse_iso_date("2000-05-31").expect("date");
        assert!(matches!(
            InsuranceAge::at(birth, before),
            Err(AgeError::BeforeBirth { .. })
        ));
        let far = parse_iso_date("2300-01-01").expect("date");
        assert!(matches!(
            InsuranceAge::at(birth, far),
            Err(AgeError::Implausible { .. })
        ));
    }

    #[test]
    fn mobile_phones_and_names() {
        let p = MobilePhone::parse("01012345678").expect("phone");
        assert_eq!(p.as_str(), "010-1234-5678");
        assert_eq!(p.masked(), "010-****-5678");
        assert_eq!(
            MobilePhone::parse("011 234 5678").expect("phone").as_str(),
            "011-234-5678"
        );
        for bad in ["02-123-4567", "010-1234-567a", "", "0101234567890"] {
            assert!(MobilePhone::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            CustomerName::parse("  김보험 ").expect("name").as_str(),
            "김보험"
        );
        assert!(CustomerName::parse("   ").is_err());
        assert!(CustomerName::parse(&"가".repeat(51)).is_err());
    }

    #[test]
    fn parses_iso_dates_strictly() {
        assert!(parse_iso_date("2026-11-24").is_ok());
        assert!(parse_iso_date("2026-02-30").is_err());
        assert!(parse_iso_date("2026-2-03").is_err());
        assert!(parse_iso_date("26-11-2024").is_err());
        assert!(parse_iso_date("2026-11-24T00:00").is_err());
        assert!(parse_iso_date("２０２６-11-24").is_err());
        assert!(BirthDate::parse("1899-12-31").is_err());
    }

    #[test]
    fn names_of_invisible_or_reordering_characters_are_refused() {
        for name in [
            "\u{200b}\u{200b}",
            "\u{202e}evil\u{202c}",
            "김\u{feff}보험",
            "a\u{2066}b",
        ] {
            let refused = CustomerName::parse(name).expect_err(name);
            assert!(refused.contains("invisible"), "{name:?}: {refused}");
        }
        for name in ["김보험", "O'Brien", "Anne-Marie Müller", "李 小龍"] {
            assert_eq!(
                CustomerName::parse(name).map(|n| n.as_str().to_owned()),
                Ok(name.to_owned())
            );
        }
    }
}
